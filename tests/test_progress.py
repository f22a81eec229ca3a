"""Progress bars: live in a terminal, one final line in a log, a CI job or a pipe."""

from __future__ import annotations

import ast
import io
import sys
import time
from pathlib import Path

import dask
import geopandas as gpd
import pandas as pd
import pytest

import territoires
from territoires import _progress, coverage
from territoires.eligibility import classify

SOURCES = Path(territoires.__file__).resolve().parent


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _drawn(err: str, label: str) -> int:
    """How many times a bar labelled ``label`` was drawn (each draw starts with \\r)."""
    return sum(label in part for part in err.split("\r"))


def _steps(progress: bool) -> None:
    with _progress.bar(progress, total=3, desc="étapes") as bar:
        for step in range(3):
            bar.update()
            bar.set_postfix_str(f"étape {step}")  # refreshes a live bar at once


def test_a_bar_in_a_log_writes_one_final_line(capsys: pytest.CaptureFixture[str]) -> None:
    _steps(progress=True)
    err = capsys.readouterr().err  # captured: not a terminal
    assert _drawn(err, "étapes") == 1
    assert "3/3" in err and err.endswith("\n") and err.count("\n") == 1


def test_a_bar_in_a_terminal_is_live(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _steps(progress=True)
    assert _drawn(terminal.getvalue(), "étapes") > 3


def test_no_bar_unless_asked(capsys: pytest.CaptureFixture[str]) -> None:
    _steps(progress=False)
    assert capsys.readouterr().err == ""
    assert list(_progress.bar(False, iterable=[1, 2])) == [1, 2]


def test_an_iterated_bar_in_a_log_writes_one_final_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert list(_progress.bar(True, iterable=range(5), desc="géocodage")) == list(range(5))
    err = capsys.readouterr().err
    assert _drawn(err, "géocodage") == 1 and "5/5" in err


def test_dask_bar_in_a_log_writes_its_final_line_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    slow = dask.delayed(time.sleep)(0.5)  # dask redraws its live bar every 0.1 s
    with _progress.dask_bar(True):
        dask.compute(slow, scheduler="sync")
    err = capsys.readouterr().err
    assert _drawn(err, "Completed") == 1 and "100% Completed" in err


def test_classify_in_a_log_writes_one_line(data_dir, capsys: pytest.CaptureFixture[str]) -> None:
    places = pd.DataFrame({"lon": [1.4442, 1.4020, 2.5740], "lat": [43.6047, 43.5750, 44.3506]})
    classify(places, progress=True, data_dir=data_dir)
    err = capsys.readouterr().err
    assert _drawn(err, "classement") == 1 and "3/3" in err


def test_coverage_in_a_log_writes_one_line(data_dir, capsys: pytest.CaptureFixture[str]) -> None:
    places = gpd.GeoDataFrame(geometry=gpd.points_from_xy([2.5740], [44.3506]), crs=4326)
    coverage.analyse(places, progress=True, data_dir=data_dir)
    err = capsys.readouterr().err
    assert _drawn(err, "couverture") == 1 and "5/5" in err


def _imports(path: Path) -> set[str]:
    """Modules imported by a source file (``from x import y`` gives ``x`` and ``x.y``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update({node.module, *(f"{node.module}.{a.name}" for a in node.names)})
    return names


def test_every_bar_is_made_by_the_progress_module() -> None:
    """One place makes the bars: no other module imports tqdm or a dask progress bar."""
    bars = ("tqdm", "dask.diagnostics.ProgressBar", "distributed.progress")
    offenders = {
        str(path.relative_to(SOURCES)): sorted(found)
        for path in sorted(SOURCES.rglob("*.py"))
        if path.name != "_progress.py"
        and (found := {n for n in _imports(path) if n.split(".")[0] == "tqdm" or n in bars})
    }
    assert offenders == {}
