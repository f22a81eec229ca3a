"""Freed memory handed back to the operating system around the reading of a large table.

Allocators keep freed memory for later allocations of their own, which the process
still counts: arrow's allocator (mimalloc) purges freed pages only after a delay, so
a million places classified just before (and deleted) leave about 600 MB in it; the
GNU C library keeps the temporary arrays freed while reading and validating a million
places (:func:`territoires.places.read_places`, more than a hundred megabytes) in the
reading thread's heap, while the classification runs in worker threads that allocate
from heaps of their own. Both would add to the peak of a large classification:
:func:`before_reading` asks arrow to return what it holds, :func:`after_reading` asks
the C library (``malloc_trim``, as dask's workers do; nothing on macOS, Windows or
musl). Small tables are left alone: a service classifying many small batches keeps
its memory at hand.
"""

from __future__ import annotations

import ctypes
import threading
from functools import cache
from typing import Any

import pyarrow as pa

#: Rows from which :func:`territoires.classify` hands freed memory back.
TRIM_FROM: int = 100_000


def before_reading(source: Any) -> None:
    """Return the memory arrow's allocator holds before reading a large ``source``.

    Only for a source of known length (a table) of at least :data:`TRIM_FROM` rows.
    """
    try:
        rows = len(source)
    except TypeError:  # a path: its size is known after reading
        return
    if rows >= TRIM_FROM:
        pa.default_memory_pool().release_unused()


@cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim`` (from the symbols the interpreter is linked with), or None."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # no such symbol; Windows
        return None


def after_reading(rows: int) -> threading.Thread | None:
    """Return the freed memory of the C heaps to the system after reading ``rows`` rows.

    The trim (tens of milliseconds over a large heap, without the GIL) runs in a thread
    of its own, beside the classification; the caller joins it. Nothing is done under
    :data:`TRIM_FROM` rows (nothing worth the call) or without glibc.

    Returns
    -------
    threading.Thread or None
        The started thread, or None when there is nothing to do.
    """
    malloc_trim = _malloc_trim() if rows >= TRIM_FROM else None
    if malloc_trim is None:
        return None
    thread = threading.Thread(target=malloc_trim, args=(0,), name="territoires-trim")
    thread.start()
    return thread
