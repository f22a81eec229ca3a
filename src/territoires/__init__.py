"""territoires: is this tiers-lieu eligible? Official French public data, by vintage.

>>> import territoires
>>> territoires.check(1.4020, 43.5750)["verdict"]  # doctest: +SKIP
'qpv'
"""

from ._errors import (
    CatalogueError,
    ChecksumError,
    DataNotFoundError,
    DownloadError,
    InputError,
    TerritoiresError,
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
    "DataNotFoundError",
    "DownloadError",
    "InputError",
    "Reference",
    "Rules",
    "TerritoiresError",
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
