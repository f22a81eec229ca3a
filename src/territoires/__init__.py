"""territoires: is this tiers-lieu eligible? Official French public data, by vintage.

>>> import territoires
>>> territoires.check(1.4020, 43.5750)["verdict"]  # doctest: +SKIP
'qpv'

Every module is an attribute of the package: ``territoires.settings`` (configuration),
``territoires.coverage``, ``territoires.maps`` and ``territoires.export`` (imported on
first use, so that the command line starts fast).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from . import bilan as bilan  # module: territoires.bilan.bilan(…)
from . import settings as settings  # re-exported: territoires.settings.data_dir = …
from ._errors import (
    CatalogueError,
    ChecksumError,
    ColumnError,
    DataFileError,
    DataNotFoundError,
    DownloadError,
    InputError,
    OutputError,
    ReferenceDataError,
    RulesError,
    TerritoiresError,
    UnknownNameError,
    UnknownRuleError,
)
from .eligibility import Reference, check, classify, reference
from .loaders import load_admin, load_communes, load_qpv
from .places import read_places
from .rules import DISTANCE_PROXIMITE_IMMEDIATE_M, PRESETS, URBAN_RULES, VERDICTS, Rules, preset

__all__ = [
    "DISTANCE_PROXIMITE_IMMEDIATE_M",
    "PRESETS",
    "URBAN_RULES",
    "VERDICTS",
    "CatalogueError",
    "ChecksumError",
    "ColumnError",
    "DataFileError",
    "DataNotFoundError",
    "DownloadError",
    "InputError",
    "OutputError",
    "Reference",
    "ReferenceDataError",
    "Rules",
    "RulesError",
    "TerritoiresError",
    "UnknownNameError",
    "UnknownRuleError",
    "check",
    "classify",
    "load_admin",
    "load_communes",
    "load_qpv",
    "preset",
    "read_places",
    "reference",
]
__version__ = "0.1.0"

#: Sub-modules imported on first access (``territoires.maps``…), so that ``import
#: territoires`` stays fast for the CLI while every module is one attribute away.
_LAZY_MODULES = frozenset({"coverage", "examples", "export", "maps", "outputs"})


def __getattr__(name: str) -> ModuleType:
    """Import the sub-module ``name`` on first access (PEP 562)."""
    if name in _LAZY_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """List the public names, lazy sub-modules included."""
    return sorted(set(globals()) | _LAZY_MODULES)
