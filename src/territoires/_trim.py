"""Freed memory handed back to the operating system after reading a large table.

Reading and validating a million places (:func:`territoires.places.read_places`) frees
more than a hundred megabytes of temporary arrays in the reading thread's heap. The C
library keeps that memory for later allocations of the same heap, but the
classification runs in worker threads, which allocate from heaps of their own: the
freed memory would only add to the peak of the process. :func:`trim` asks the GNU C
library to return it (``malloc_trim``, as dask's workers do); elsewhere (macOS,
Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

#: Rows from which :func:`territoires.classify` trims after reading.
TRIM_FROM: int = 100_000


@cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim`` (from the symbols the interpreter is linked with), or None."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # no such symbol; Windows
        return None


def trim(rows: int) -> None:
    """Return the freed memory of the C heaps to the system after reading ``rows`` rows.

    Does nothing under :data:`TRIM_FROM` rows (nothing worth the call) or without glibc.
    """
    malloc_trim = _malloc_trim() if rows >= TRIM_FROM else None
    if malloc_trim is not None:
        malloc_trim(0)
