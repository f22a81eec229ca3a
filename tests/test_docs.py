"""The generated documentation is up to date with the code and the catalogue.

``docs/api.md`` and ``docs/donnees.md`` are written by ``docs/_build_api.py`` from the live
docstrings and from ``data/*/catalogue.json``; after changing either, run
``python docs/_build_api.py`` and commit the result.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

import territoires

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def builder():
    spec = importlib.util.spec_from_file_location("_build_api", DOCS / "_build_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["api.md", "donnees.md"])
def test_generated_doc_is_up_to_date(builder, name):
    expected = builder.outputs()[DOCS / name]
    current = (DOCS / name).read_text(encoding="utf-8")
    assert current == expected, f"docs/{name} est périmé : lancez python docs/_build_api.py"


def test_api_reference_covers_every_exported_name_and_public_function(builder):
    text = builder.render_api()
    for name in territoires.__all__:
        assert f"`territoires.{name}`" in text
    for module_name, _ in builder.MODULES:
        module = __import__(module_name, fromlist=["_"])
        for name, obj in vars(module).items():
            public = not name.startswith("_") and getattr(obj, "__module__", "") == module_name
            if public and inspect.isfunction(obj) and module_name != "territoires.cli":
                assert f"### `{module_name}.{name}`" in text, f"{module_name}.{name} absent"


def test_data_catalogue_lists_every_dataset_with_its_source(builder):
    text = builder.render_donnees()
    for dataset in territoires.catalogue.datasets().values():
        assert f"### {dataset.name}" in text
        assert dataset.licence in text
        if dataset.url:
            assert dataset.url in text


def test_check_mode_reports_stale_files(builder, tmp_path, monkeypatch):
    stale = tmp_path / "api.md"
    stale.write_text("ancien\n", encoding="utf-8")
    monkeypatch.setattr(builder, "outputs", lambda: {stale: "nouveau\n"})
    assert builder.main(["--check"]) == 1
    assert stale.read_text(encoding="utf-8") == "ancien\n"
    assert builder.main([]) == 0
    assert stale.read_text(encoding="utf-8") == "nouveau\n"
    assert builder.main(["--check"]) == 0
