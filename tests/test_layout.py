"""Layout rules of the package that no single behaviour test would notice."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import territoires

SOURCES = Path(territoires.__file__).resolve().parent


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_uses(path: Path) -> list[str]:
    """Private names of sibling modules that `path` imports or reaches through a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    siblings: set[str] = set()  # local names bound to modules of the package
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (
            node.level > 0 or (node.module or "").split(".")[0] == "territoires"
        ):
            # from . import module / from territoires import module: a sibling module
            package = node.module is None or (node.level == 0 and node.module == "territoires")
            for alias in node.names:
                if package:
                    siblings.add(alias.asname or alias.name)
                elif _is_private(alias.name):
                    found.append(f"from {'.' * node.level}{node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("territoires."):
                    siblings.add(alias.asname or alias.name)
                    if any(_is_private(part) for part in alias.name.split(".")[1:]):
                        found.append(f"import {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in siblings
            and _is_private(node.attr)
        ):
            found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
    return found


def test_no_module_uses_a_private_name_of_another() -> None:
    """Private helpers stay private: share a function by giving it a public name.

    Private *modules* (``_errors``, ``_http``…) are the package's internals and may be
    imported by their siblings; their own ``_names`` may not.
    """
    offences = {
        str(path.relative_to(SOURCES)): found
        for path in sorted(SOURCES.rglob("*.py"))
        if (found := _private_uses(path))
    }
    assert offences == {}


def test_the_check_sees_an_offence(tmp_path: Path) -> None:
    """The check above is not vacuous: it flags both ways of reaching a private name."""
    module = tmp_path / "offender.py"
    module.write_text(
        "from . import loaders\nfrom .maps import _asset\nloaders._read(1)\n"
        "from territoires import crs\nfrom territoires.rules import _x\ncrs._y\n",
        encoding="utf-8",
    )
    assert sorted(_private_uses(module)) == [
        "crs._y (line 6)",
        "from .maps import _asset",
        "from territoires.rules import _x",
        "loaders._read (line 3)",
    ]


def test_lazy_submodules() -> None:
    """``import territoires`` gives every module as an attribute, loaded on first use."""
    for name in ("coverage", "maps", "export", "outputs", "french", "settings", "loaders"):
        assert getattr(territoires, name).__name__ == f"territoires.{name}"
    assert {"coverage", "maps", "export", "outputs"} <= set(dir(territoires))


def test_heavy_modules_load_only_when_used() -> None:
    """``import territoires`` (hence ``territoires check``) does not load folium or openpyxl."""
    code = (
        "import sys, territoires\n"
        "lazy = ['territoires.maps', 'territoires.coverage', 'territoires.export', 'folium']\n"
        "assert not [m for m in lazy if m in sys.modules], sys.modules.keys()\n"
        "assert territoires.maps.__name__ == 'territoires.maps'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
