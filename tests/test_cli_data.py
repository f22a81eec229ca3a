"""Tests of the ``territoires data`` commands, on the real mirror."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from territoires import catalogue, settings
from territoires.cli import app

runner = CliRunner()


def _table(output: str) -> dict[str, list[str]]:
    """Rows of the ``data list`` table, by dataset name."""
    names = set(catalogue.datasets())
    rows = (line.split() for line in output.splitlines())
    return {row[0]: row for row in rows if row and row[0] in names}


def test_help_is_french() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Éligibilité des tiers-lieux" in result.output
    assert "--data-dir" in result.output
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0
    for command in ("list", "fetch", "info"):
        assert command in result.output


def test_list_shows_every_dataset(data_dir: Path) -> None:
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    rows = _table(result.stdout)
    assert set(rows) == set(catalogue.datasets())
    for name, dataset in catalogue.datasets().items():
        assert rows[name][1:3] == [dataset.kind, str(dataset.vintage)]
        expected = "miroir" if dataset.mirror_path(data_dir) else "absent"
        assert rows[name][3] == expected, name
    assert rows["qpv2015_occitanie"][3] == "miroir"
    assert rows["qpv2024"][3] == "absent"


def test_list_with_data_dir_option(tmp_path: Path, data_dir: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "data", "list"])
    assert result.exit_code == 0, result.output
    rows = _table(result.stdout)
    assert set(rows) == set(catalogue.datasets())
    assert {row[3] for row in rows.values()} == {"absent"}
    # the option only lasts for the command
    assert settings.data_dir == data_dir


def test_data_dir_must_exist(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path / "nulle-part"), "data", "list"])
    assert result.exit_code == 2


def test_info_communes(data_dir: Path) -> None:
    result = runner.invoke(app, ["data", "info", "communes_cog2024_cartelette"])
    assert result.exit_code == 0, result.output
    fields = dict(line.split(" : ", 1) for line in result.output.splitlines())
    fields = {key.strip(): value for key, value in fields.items()}
    assert fields["lignes"] == "34935"
    assert fields["licence"] == "ODbL / Licence Ouverte"
    assert fields["millésime"] == "2024"
    expected_sha = catalogue.get("communes_cog2024_cartelette").sha256
    assert fields["sha256 attendu"] == expected_sha
    assert fields["sha256 obtenu"] == f"{expected_sha} (conforme)"
    assert fields["fichier local"] == f"{data_dir / 'communes' / 'communes_cog2024.gpkg'} (miroir)"


def test_info_regional_extract() -> None:
    result = runner.invoke(app, ["data", "info", "qpv2015_occitanie"])
    assert result.exit_code == 0, result.output
    assert "lignes" in result.output and ": 105" in result.output
    assert "départements 09, 11, 12" in result.output
    expected = catalogue.get("qpv2015_occitanie").sha256
    assert f"{expected} (conforme)" in result.output


def test_info_absent_dataset() -> None:
    result = runner.invoke(app, ["data", "info", "qpv2024"])
    assert result.exit_code == 0, result.output
    assert "absent" in result.output
    assert "QP2024_France_Hexagonale_Outre_Mer_WGS84" in result.output
    assert "territoires data fetch qpv2024" in result.output


def test_info_unknown_name() -> None:
    result = runner.invoke(app, ["data", "info", "qpv2030"])
    assert result.exit_code == 1
    assert "Erreur" in result.stderr and "'qpv2030'" in result.stderr
    for name in catalogue.datasets():
        assert name in result.stderr
    assert "Traceback" not in result.output


def test_fetch_mirror_dataset(data_dir: Path) -> None:
    result = runner.invoke(app, ["data", "fetch", "qpv2015_occitanie", "regions_anct2025"])
    assert result.exit_code == 0, result.output
    assert f"qpv2015_occitanie : {data_dir / 'qpv' / 'qpv2015_occitanie.geojson'}" in result.stdout
    assert f"regions_anct2025 : {data_dir / 'admin' / 'regions.geojson'}" in result.stdout


def test_fetch_offline_failure(data_dir: Path) -> None:
    result = runner.invoke(app, ["data", "fetch", "qpv2024", "regions_anct2025"])
    assert result.exit_code == 1
    assert str(data_dir / "admin" / "regions.geojson") in result.stdout
    assert "Erreur" in result.stderr and "qpv2024" in result.stderr
    assert settings.OFFLINE_ENV in result.stderr


def test_fetch_default_datasets(data_dir: Path) -> None:
    """By default, QPV 2024 and what load_communes() reads: QPV 2024 is missing offline."""
    result = runner.invoke(app, ["data", "fetch"])
    assert result.exit_code == 1
    fetched = dict(line.split(" : ", 1) for line in result.stdout.splitlines())
    assert set(fetched) == {
        "communes_cog2024_cartelette",
        "populations_cog2026_etalab",
        "grille_densite_cog2026_anct",
        "appartenance_cog2023",
    }
    assert all(Path(path).is_relative_to(data_dir) for path in fetched.values())
    assert "qpv millésime 2024" in result.stderr


@pytest.mark.parametrize("args", [["--all", "qpv2024"], ["inconnu"]])
def test_fetch_bad_arguments(args: list[str]) -> None:
    result = runner.invoke(app, ["data", "fetch", *args])
    assert result.exit_code in {1, 2}
    assert result.stdout == ""
    assert result.stderr
