"""Output paths: one check, shared by every writer and by the command line."""

from __future__ import annotations

from pathlib import Path

import folium
import pytest
from typer.testing import CliRunner

from territoires import OutputError, export, maps, outputs
from territoires.cli import app

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lieux_exemple.csv"


def test_check_path_accepts_the_formats_without_case(tmp_path: Path) -> None:
    assert outputs.check_path(str(tmp_path / "r.XLSX"), export.FORMATS) == tmp_path / "r.XLSX"


@pytest.mark.parametrize("name", ["r.txt", "r", "r.xlsx.bak", "dossier/"])
def test_check_path_lists_what_is_accepted(name: str) -> None:
    with pytest.raises(OutputError) as info:
        outputs.check_path(name, export.REPORT_FORMATS)
    message = str(info.value)
    assert "format de sortie inconnu" in message
    assert message.endswith(
        "attendu .xlsx ou .gpkg (Excel, une feuille par table ; GeoPackage, une couche par table)"
    )


def test_every_writer_checks_first(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"\.html"):
        maps.save(folium.Map(), tmp_path / "carte.png")
    assert list(tmp_path.iterdir()) == []
    assert maps.save(folium.Map(), tmp_path / "carte.HTML").is_file()


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["map", str(EXAMPLE), "-o", "carte.png"], "-o"),
        (["coverage", str(EXAMPLE), "-o", "rapport.csv"], "-o"),
        (["coverage", str(EXAMPLE), "-o", "rapport.xlsx", "--carte", "carte.pdf"], "--carte"),
    ],
)
def test_cli_refuses_before_any_work(
    command: list[str], option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert "format de sortie inconnu" in " ".join(result.stderr.split())
    assert option in result.stderr
    assert "Lecture" not in result.output  # nothing read
    assert list(tmp_path.iterdir()) == []
