"""The ``territoires`` command speaks French, in an 80-column terminal, to non-programmers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from territoires import _cli_french, catalogue, settings
from territoires.cli import app, cli_message
from territoires.places import parse_point
from territoires.rules import PRESETS, URBAN_RULES

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]

#: English strings that typer or click would write (help furniture, types, errors).
ENGLISH = (
    "Usage:",
    "Show this message",
    "[required]",
    "[default:",
    "<bool>",
    "<float",
    "<int>",
    "<str>",
    "<file>",
    "<path>",
    "<dir>",
    "<list",
    "Commands",
    "Error",
    "Missing",
    "Invalid value",
    "No such",
    "Try '",
    "does not exist",
    "Input should",
)


def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the application, groups included."""
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _commands(sub, (*path, name))
    return paths


COMMANDS = _commands(typer.main.get_command(app))


def _flat(text: str) -> str:
    """Text without whitespace nor rich box characters (help columns wrap their lines)."""
    return "".join(char for char in text if not char.isspace() and char not in "│╭╮╰╯─")


def _help(path: tuple[str, ...]) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_is_listed() -> None:
    assert {("check",), ("classify",), ("map",), ("coverage",), ("data", "list")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "territoires")
def test_help_has_no_english_and_fits_80_columns(path: tuple[str, ...]) -> None:
    text = _help(path)
    for english in ENGLISH:
        assert english not in text, (english, path)
    assert "Utilisation : territoires" in text
    assert "Affichecetteaideets'arrête." in _flat(text)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "…" not in text  # nothing cut by rich


@pytest.mark.parametrize("path", [("check",), ("classify",), ("map",), ("coverage",)])
def test_rule_names_are_never_cut(path: tuple[str, ...]) -> None:
    """Values a user must type stand whole on one line of the help page."""
    lines = _help(path).splitlines()
    for name in [*PRESETS, *URBAN_RULES]:
        assert any(re.search(rf"(^|\s){re.escape(name)}[,.]", line) for line in lines), name


def test_options_that_read_files_offer_a_name_column() -> None:
    for command in ("classify", "map", "coverage"):
        assert "--nom" in _help((command,))
    assert "--carte" in _help(("classify",))


@pytest.mark.parametrize(
    ("args", "french"),
    [
        (["classify"], "Argument manquant : 'FICHIER'."),
        (["classify", "absent.csv", "-o", "x.csv"], "fichier introuvable : 'absent.csv'"),
        (["check", "1.4", "43.6", "--distance", "abc"], "un nombre est attendu"),
        (["check", "1.4", "43.6", "--distance", "-5"], "supérieure ou égale à 0"),
        (["classify", "--inconnue"], "Option inconnue : --inconnue"),
        (["chek"], "Commande inconnue : 'chek' ; vouliez-vous dire 'check'"),
        (["--pas-une-option"], "Option inconnue : --pas-une-option"),
        (["data", "info"], "Argument manquant : 'JEU'."),
    ],
)
def test_usage_errors_are_french(args: list[str], french: str) -> None:
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert french in result.stderr
    assert "Erreur" in result.stderr and "Aide : territoires" in result.stderr
    for english in ENGLISH:
        assert english not in result.stderr, english


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("précisez lon=", "précisez --lon"),
        ("lon= et lat= ne s'appliquent qu'aux tableaux", "--lon et --lat ne s'appliquent"),
        ("colonne lon='X' absente", "colonne --lon 'X' absente"),
        ("mais crs='2154' est précisé : retirez crs= ou", "mais --crs '2154' est précisé : "),
        ("point hors de France (lon=-74.0, lat=40.7)", "point hors de France (lon=-74.0, lat="),
    ],
)
def test_library_messages_name_the_options(message: str, expected: str) -> None:
    assert expected in cli_message(message)


def test_column_errors_name_the_option(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "lieux.csv"
    source.write_text("nom;x;y\nA;1,4;43,6\n", encoding="utf-8")
    result = runner.invoke(
        app, ["classify", str(source), "-o", str(tmp_path / "r.csv"), "--lon", "longitude"]
    )
    assert result.exit_code == 1
    assert "--lon 'longitude' absente" in result.stderr
    assert "lon=" not in result.stderr


@pytest.mark.parametrize(
    ("text", "point"),
    [
        ("1.4020 43.5750", (1.402, 43.575)),
        ("1,4020 43,5750", (1.402, 43.575)),
        ("43.5750, 1.4020", (1.402, 43.575)),
        ("43.5750,1.4020", (1.402, 43.575)),
        ("-52.33 4.93", (-52.33, 4.93)),
        ("4.93, -52.33", (-52.33, 4.93)),
        ("43,5750 ; 1,4020", (1.402, 43.575)),  # decimal commas: a semicolon between
        ("-21,1151;55,5364", (55.5364, -21.1151)),
    ],
)
def test_parse_point(text: str, point: tuple[float, float]) -> None:
    assert parse_point(text) == pytest.approx(point)


@pytest.mark.parametrize("text", ["1,4020, 43,5750", "1.4 43.6 7", "Toulouse", "1,4020"])
def test_parse_point_refuses_ambiguous_text(text: str) -> None:
    with pytest.raises(ValueError, match="longitude latitude"):
        parse_point(text)


@pytest.mark.parametrize(
    "args",
    [["1,4020", "43,5750"], ["43.5750, 1.4020"], ["43.5750,", "1.4020"], ["43,5750 ; 1,4020"]],
)
def test_check_reads_what_people_type(data_dir: Path, args: list[str]) -> None:
    result = runner.invoke(app, ["check", *args])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "Dans un quartier prioritaire (QPV)"
    assert "Coordonnées lues : longitude 1.402, latitude 43.575" in result.stdout


def test_data_list_fits_80_columns_with_coverage(data_dir: Path) -> None:
    result = runner.invoke(app, ["data", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "couverture" in result.stdout and "…" not in result.stdout
    for name in catalogue.datasets():
        assert any(line.split()[:1] == [name] for line in lines), name
    occitanie = next(line for line in lines if line.startswith("qpv2015_occitanie "))
    assert "région" in occitanie


def _module_run(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m territoires`` with an empty cache: the reference is built from the mirror."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "COLUMNS": "80",
        settings.CACHE_DIR_ENV: str(cache),
    }
    return subprocess.run(
        [sys.executable, "-m", "territoires", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )


def test_python_m_runs_the_command_and_verbose_shows_the_log(
    data_dir: Path, tmp_path: Path
) -> None:
    """``python -m territoires`` is the command; ``-v`` shows unmatched commune codes."""
    quiet = _module_run(tmp_path / "a", "check", "1,4020", "43,5750")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.startswith("Dans un quartier prioritaire (QPV)")
    assert "sans correspondance" not in quiet.stderr
    verbose = _module_run(tmp_path / "b", "-v", "check", "1,4020", "43,5750")
    assert verbose.returncode == 0, verbose.stderr
    assert "commune(s) sans correspondance" in verbose.stderr
    assert "load_communes().attrs['jointures']" in verbose.stderr


def test_translation_keeps_unknown_messages() -> None:
    assert _cli_french.translate_error("déjà en français") == "déjà en français"
