"""Exception classes raised by territoires.

Every error carries a message written for the person who must act on it: what was
expected, what was found, and where (file, row, field or URL).
"""

from __future__ import annotations


class TerritoiresError(Exception):
    """Base class of every error raised on purpose by territoires."""


class DataNotFoundError(TerritoiresError):
    """A reference dataset is neither in the mirror, nor in the cache, nor downloadable."""


class DownloadError(TerritoiresError):
    """A download failed (network unreachable, HTTP error, interrupted transfer)."""


class ChecksumError(TerritoiresError):
    """A downloaded file does not match the checksum recorded in the catalogue."""


class CatalogueError(TerritoiresError):
    """The catalogue of sources is malformed or names an unknown dataset."""


class InputError(TerritoiresError):
    """An input file or table cannot be used at all (no row can be classified)."""
