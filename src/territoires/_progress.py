"""The progress bars of territoires, on stderr, all made here.

A bar is drawn live only where someone watches it: a terminal or a notebook. Where
stderr is a log, a CI job or a pipe, a redrawn bar would write a line per update; there
a bar draws nothing while it runs and one line when it ends (its total and duration).

tqdm is imported on the first bar, not with the module: ``territoires check`` starts
faster.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any


def _notebook() -> bool:
    """Whether tqdm draws its bars as notebook widgets (a Jupyter kernel)."""
    import tqdm.asyncio
    import tqdm.auto

    return tqdm.auto.tqdm is not tqdm.asyncio.tqdm


def live() -> bool:
    """Whether a bar redrawn in place can be watched: stderr is a terminal, or a notebook."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty is not None and isatty()) or _notebook()


def bar(progress: bool, **options: Any) -> Any:
    """A tqdm progress bar on stderr.

    Parameters
    ----------
    progress : bool
        Whether the bar is wanted at all; ``False`` gives a silent bar (its ``update``
        does nothing).
    **options
        Passed to ``tqdm`` (``total``, ``desc``, ``unit``, ``bar_format``, an iterable…).

    Returns
    -------
    tqdm.tqdm
        Drawn live in a terminal or a notebook; elsewhere (log, CI, pipe) silent while it
        runs and written as one line when it is closed.
    """
    from tqdm.auto import tqdm

    if not progress:
        return tqdm(disable=True, **options)
    if live():
        return tqdm(**options)
    return _final_line_class()(**options)


def _final_line_class() -> type:
    """The tqdm class that draws one line, when closed (defined on first use)."""
    from tqdm.std import tqdm

    class FinalLine(tqdm):  # type: ignore[misc]
        """A tqdm bar silent while it runs, drawn once when it is closed."""

        closing = False

        def display(self, *args: Any, **kwargs: Any) -> Any:
            return super().display(*args, **kwargs) if self.closing else None

        def close(self) -> None:
            self.closing = True
            super().close()

    return FinalLine


@contextlib.contextmanager
def dask_bar(progress: bool) -> Iterator[None]:
    """Show the progress of the dask computations run inside, on stderr.

    Drawn live in a terminal or a notebook (``dask.diagnostics.ProgressBar``); elsewhere
    only its final line (« [####] | 100% Completed | 2.1s »).
    """
    if not progress:
        yield
        return
    from dask.diagnostics import ProgressBar

    if live():
        with ProgressBar(out=sys.stderr):
            yield
        return

    class FinalLine(ProgressBar):  # type: ignore[misc]
        """dask's bar without its periodic redraws: its closing line only."""

        def _update_bar(self, elapsed: float) -> None:
            return None

    with FinalLine(out=sys.stderr):
        yield


def follow(futures: list[Any], progress: bool) -> None:
    """Show the progress of futures of a ``distributed.Client`` (live only, else nothing)."""
    if progress and live():
        from distributed import progress as distributed_progress

        distributed_progress(futures)
