"""territoires: is this tiers-lieu eligible? Official French public data, by vintage."""

from ._errors import (
    CatalogueError,
    ChecksumError,
    DataNotFoundError,
    DownloadError,
    InputError,
    TerritoiresError,
)
from .loaders import load_admin, load_communes, load_qpv

__all__ = [
    "CatalogueError",
    "ChecksumError",
    "DataNotFoundError",
    "DownloadError",
    "InputError",
    "TerritoiresError",
    "load_admin",
    "load_communes",
    "load_qpv",
]
__version__ = "0.1.0"
