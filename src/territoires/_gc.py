"""Python's cyclic garbage collector, paused while millions of places are classified.

Every shapely geometry is an object the cyclic collector tracks: classifying a million
points creates a million of them (the output geometry), which triggers hundreds of
collections, each traversing every tracked object of the process. Measured on a
million places, those collections took a third of the CPU time of
:func:`territoires.classify`, holding the GIL while the other thread waited. The
engine creates no reference cycle worth collecting meanwhile: the collector is paused
for the duration of a classification and restored afterwards (reference counting still
frees every object as usual). When the pause ends, the objects created meanwhile (a
million geometries) are handed to the oldest generation at once (:func:`_promote`)
rather than traversed by the first collection that follows, then again by the next
generation's. Small classifications (fewer than :data:`PAUSE_FROM` rows)
leave it alone: their collections cost nothing worth saving, and a long-running process
that classifies small batches without pause (the web service under load) would otherwise
never collect its own cycles.

A process that ends (the command line) hands its objects over before exiting:
:func:`freeze_for_exit`.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Rows from which a classification pauses the collector.
PAUSE_FROM: int = 10_000


class _Pause:
    """Nested and concurrent pauses: the collector comes back after the last one ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.was_enabled = False

    @contextmanager
    def __call__(self, rows: int) -> Iterator[None]:
        if rows < PAUSE_FROM:
            yield
            return
        with self.lock:
            if self.depth == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.depth += 1
        try:
            yield
        finally:
            with self.lock:
                self.depth -= 1
                if self.depth == 0 and self.was_enabled:
                    _promote()
                    gc.enable()


def _promote() -> None:
    """Move every tracked object to the oldest generation, without traversing any.

    ``gc.freeze`` then ``gc.unfreeze`` splice the generations' lists (constant time)
    and reset the young generation's count: the next collections see only the objects
    created afterwards, and a full collection still examines everything as usual. Not
    done when the process keeps frozen objects of its own (``gc.freeze`` before forking
    workers, or :func:`freeze_for_exit`): unfreezing would hand them back.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


#: Context manager: ``with paused(len(frame)): ...`` runs without cyclic collections
#: when ``frame`` has at least :data:`PAUSE_FROM` rows, from any thread, nested or
#: concurrently; the collector's state on entry of the outermost pause is restored when
#: the last pause ends.
paused = _Pause()


def freeze_for_exit() -> None:
    """Spare the process the collections of interpreter shutdown, as it is about to exit.

    Shutdown runs full collections that traverse every tracked object (pandas,
    geopandas, the prepared reference): about a tenth of a second for a cold
    ``territoires check``, longer than answering it. Frozen objects are still freed by
    reference counting; only garbage in reference cycles is left to the operating
    system, which reclaims the whole memory of the process anyway.
    """
    gc.freeze()
