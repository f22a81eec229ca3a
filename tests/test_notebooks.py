"""The notebooks run top to bottom on the real data mirror, offline, and show their results.

Each notebook is executed once (module-scoped fixture) with nbclient, in a kernel started
from this interpreter (a private kernelspec pointing to ``sys.executable``, so that a
``python3`` kernelspec installed elsewhere cannot be picked up), with the mirror of
``conftest.data_dir`` and network access forbidden. A missing mirror FAILS the tests.

The notebooks are run from a copy in a temporary folder outside the repository (their
working directory): they must find the example places and the local geocoder in the
installed package and the mirror in ``TERRITOIRES_DATA_DIR``, never through the
repository's layout.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from territoires import settings

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("01_eligibilite", "02_couverture")
#: Each notebook must run in well under two minutes.
TIME_LIMIT_S = 110
_CHECK_KERNEL = "import sys\nprint(sys.executable)"


def _kernel_manager(folder: Path) -> AsyncKernelManager:
    """A kernel manager whose only ``python3`` kernelspec runs this interpreter."""
    spec = folder / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (territoires, tests)",
                "language": "python",
            }
        ),
        encoding="utf-8",
    )
    specs = KernelSpecManager(kernel_dirs=[str(folder)], ensure_native_kernel=False)
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)


def _execute(name: str, data_dir: Path, scratch: Path) -> tuple[nbformat.NotebookNode, float]:
    """Run a copy of a notebook outside the repository (plus a last cell printing the
    kernel's interpreter); time it."""
    elsewhere = scratch / "carnet"
    elsewhere.mkdir()
    copy = Path(shutil.copy(NOTEBOOKS / f"{name}.ipynb", elsewhere))
    assert NOTEBOOKS.parent not in copy.resolve().parents
    nb = nbformat.read(copy, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_CHECK_KERNEL, id="test-kernel"))
    env = {
        **os.environ,
        settings.DATA_DIR_ENV: str(data_dir),
        settings.CACHE_DIR_ENV: str(scratch / "cache"),
        settings.OFFLINE_ENV: "1",
    }
    client = NotebookClient(
        nb,
        km=_kernel_manager(scratch / "kernels"),
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(elsewhere)}},
    )
    start = time.perf_counter()
    client.execute(env=env)
    return nb, time.perf_counter() - start


@pytest.fixture(scope="module")
def executed(data_dir, tmp_path_factory) -> dict[str, tuple[nbformat.NotebookNode, float]]:
    """Executed notebook and run time in seconds, by name."""
    return {name: _execute(name, data_dir, tmp_path_factory.mktemp(name)) for name in NAMES}


def _cell(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"one cell tagged {tag!r} expected, found {len(cells)}"
    return cells[0]


def _text(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell printed or displayed, as one string."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in {"execute_result", "display_data"}:
            parts.extend(str(value) for value in output.data.values())
    return "\n".join(parts)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: outputs stored in cell {cell.id}"
            assert cell.execution_count is None, f"{name}: execution count in cell {cell.id}"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_copied_outside_the_repository_runs_in_the_project_interpreter(executed, name):
    nb, seconds = executed[name]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert _text(nb.cells[-1]).strip() == sys.executable
    assert seconds < TIME_LIMIT_S, f"{name} took {seconds:.0f} s"


def test_eligibility_notebook_shows_verdicts_rules_changes_and_map(executed):
    nb, _ = executed["01_eligibilite"]
    assert "Grand Mirail" in _text(_cell(nb, "check"))
    table = _text(_cell(nb, "table-verdicts"))
    for verdict in ("qpv", "proximite_qpv", "hors_grands_centres_urbains", "invalide"):
        assert verdict in table
    assert "fabriques-2019" in _text(_cell(nb, "regles"))
    undetermined = _text(_cell(nb, "indetermine"))
    assert "indetermine" in undetermined and "Aubusson" in undetermined
    addresses = _text(_cell(nb, "adresses"))
    # found at the street only (250 m): inside the Mirail QPV but nearer its boundary
    assert "incertain — Rue Lamartine 31300 Toulouse (street)" in addresses
    assert "1 requête(s) au géocodeur" in addresses and "housenumber" in addresses
    assert "inférieur au minimum 0,50" in addresses and "introuvable" in addresses
    assert "4 adresses lues dans le cache, 0 requête" in _text(_cell(nb, "adresses-cache"))
    changes = _text(_cell(nb, "variantes"))
    assert "fabriques-2019+personnalisé" in changes and "Figuerolles" in changes
    summary = _text(_cell(nb, "bilan"))
    assert "Hors grands centres urbains : 11 / 150" in summary
    assert "Fabriques numériques en QPV ou à proximité immédiate" in summary
    html = _cell(nb, "carte").outputs[0].data["text/html"]
    assert "<iframe" in html and "leaflet" in html.lower()
    assert "resultats.csv" in _text(_cell(nb, "export"))


def test_coverage_notebook_shows_underserved_areas_uncovered_qpv_and_map(executed):
    nb, _ = executed["02_couverture"]
    assert "synthétique" in _text(_cell(nb, "lieux"))
    assert "couche QPV limitée aux départements" in _text(_cell(nb, "analyse"))
    ranking = _text(_cell(nb, "sous-desservis"))
    assert "rang" in ranking and "Lozère" in ranking
    assert "QPV non couverts sur 105" in _text(_cell(nb, "qpv-non-couverts"))
    assert "non couvert par la couche QPV" in _text(_cell(nb, "regions"))
    html = _cell(nb, "carte").outputs[0].data["text/html"]
    assert "<iframe" in html and "leaflet" in html.lower()
    assert "Synthèse" in _text(_cell(nb, "rapport"))
