"""One partition task, as a worker runs it: read, fingerprint, renumber, classify, write.

Everything a block task of :mod:`territoires.distributed` calls lives here, and nothing
here imports dask: a worker process of the ``processes`` scheduler imports this module
(engine, places, pyarrow) and dask's task runner only, not ``dask.dataframe``,
dask-geopandas or ``distributed`` (half of the 1.1 s a worker took to start).

The first pass hashes every row (:func:`fingerprint`) on the values ``read_places``
compares (see :func:`territoires.places.duplicate_keys`); fingerprints are two
independent 64-bit row hashes (16 bytes per row, gathered on the client): two different
rows are taken for duplicates only if both hashes collide (odds about n² / 2¹²⁹ for n
rows: below 10⁻²⁰ for a billion). The second pass (:class:`Work`) reads its block
again, gives it the line numbers and doublons of the whole input, classifies and writes
it, returning only its verdict counts and its invalid rows by kind of problem.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import geopandas as gpd
import numpy as np
import pandas as pd

from . import _csv, _geoparquet, eligibility, engine, export, places
from .rules import Rules

#: Output columns with mostly distinct values, written plain in Parquet like the user's
#: columns: the other output columns, codes and names, are dictionary-encoded (a
#: dictionary of mostly unique values only costs time).
_PLAIN = ("lon", "lat", "precision_m", "distance_qpv_m", "motif")
#: SipHash keys (16 bytes) of the two row hashes: pandas' default one, and another.
_HASH_KEYS = ("0123456789123456", "territoires-2nd!")
#: Start value of the row hashes (:func:`_hashes`).
_SEED = np.uint64(0x9E3779B97F4A7C15)
#: Hash of a missing text cell.
_MISSING = np.uint64(0x2545F4914F6CDD1D)


class Shared(Protocol):
    """What gives a task the Reference: :class:`Prepared`, or the layers shipped to a
    ``distributed`` cluster."""

    def reference(self) -> engine.Reference:
        """The Reference, built or loaded once per process."""
        ...


@dataclass(frozen=True)
class Reader:
    """How to read one partition, and how its rows are numbered.

    Attributes
    ----------
    read : callable
        ``read_places`` with the coordinate options bound.
    lon, lat : str or None
        Coordinate columns given by the user (the fingerprints read them as
        ``read_places`` does).
    first_line : int
        Line number of the first row: that of the first record for a CSV file (2, or 3
        after Excel's ``sep=;`` line), else 1.
    renumber : bool
        Give the rows a global ``RangeIndex`` (files), instead of keeping the input index.
    """

    read: Callable[[pd.DataFrame], gpd.GeoDataFrame]
    lon: str | None
    lat: str | None
    first_line: int
    renumber: bool


@dataclass(frozen=True)
class Block:
    """One byte range of a CSV file, read by the task that uses it (no data travels)."""

    layout: _csv.Layout
    offset: int
    length: int


def rows(part: pd.DataFrame | Block) -> pd.DataFrame:
    """The input rows of a partition: a partition of a dask DataFrame, or a CSV block."""
    if isinstance(part, Block):
        return _csv.read_block(part.layout, part.offset, part.length)
    return part


def fingerprint(part: pd.DataFrame | Block, reader: Reader) -> tuple[np.ndarray, np.ndarray]:
    """The two hashes of every row of a partition, on what ``read_places`` compares."""
    keys = places.duplicate_keys(rows(part), reader.lon, reader.lat)
    return _hashes(keys)


def _hashes(keys: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of every row of ``keys``.

    pandas hashes each cell (SipHash under two keys for text, a bijection for numbers,
    without categorising first: most cells differ); a missing text cell gets its own
    value (pandas hashes it like the text « nan »); the column hashes are chained
    through the SplitMix64 finaliser.
    """
    rows = [np.full(len(keys), _SEED, dtype=np.uint64) for _ in _HASH_KEYS]
    with np.errstate(over="ignore"):
        for position in range(keys.shape[1]):
            column = keys.iloc[:, position]
            missing = None
            if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biufmM":
                values = column.to_numpy()
            else:  # text, or pandas' nullable types: as objects, converted once
                missing = column.isna().to_numpy()
                values = column.to_numpy(dtype=object)
            for chained, key in zip(rows, _HASH_KEYS, strict=True):
                hashed = pd.util.hash_array(values, hash_key=key, categorize=False)
                if missing is not None:
                    hashed[missing] = _MISSING
                chained[:] = _mix(chained ^ hashed)
    return rows[0], rows[1]


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, a bijection of 64-bit integers."""
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


@dataclass(frozen=True)
class Prepared:
    """Rules and mirror folder of the Reference, shared on the local scheduler.

    A few hundred bytes in the graph instead of the Reference itself: a thread gets the
    process's Reference back from :func:`territoires.engine.reference`'s cache at once,
    and a process of dask's ``processes`` scheduler reads the prepared reference
    persisted in the user cache once, never a copy pickled with each task.
    """

    rules: Rules
    folder: Path | None

    def reference(self) -> engine.Reference:
        """The prepared Reference, cached in this process."""
        return engine.reference(self.rules, self.folder)


def _global_lines(
    frame: gpd.GeoDataFrame,
    reader: Reader,
    repeats: tuple[np.ndarray, np.ndarray],
    offset: int,
) -> gpd.GeoDataFrame:
    """Give a partition read alone the line numbers and doublons of the whole input.

    ``read_places`` numbers a partition's rows from 1 and finds duplicates inside it
    only: messages ``ligne N : …`` are renumbered, ``doublon de la ligne M`` points to
    the first occurrence in the whole input, and a usable row repeating a row of an
    earlier partition becomes a ``doublon``.
    """
    own = offset + np.arange(len(frame))
    usable = frame["probleme"].isna().to_numpy()
    first = own.copy()
    first[repeats[0]] = repeats[1]
    repeated = usable & (first < own)
    line = reader.first_line
    problems = frame["probleme"].copy()

    flagged = problems.notna().to_numpy()
    text = problems[flagged]
    local = pd.to_numeric(text.str.extract(r"^ligne (\d+) : ")[0]).to_numpy(dtype=float)
    doublon = pd.to_numeric(text.str.extract(r": doublon de la ligne (\d+)$")[0]).to_numpy(
        dtype=float
    )
    rest = text.str.replace(r"^ligne \d+ : ", "", regex=True)
    previous = ~np.isnan(doublon)
    of = first[doublon[previous].astype(np.int64) - 1] + line
    rest[previous] = [f"doublon de la ligne {number}" for number in of]
    numbered = ~np.isnan(local)
    renumbered = local[numbered].astype(np.int64) - 1 + offset + line
    text[numbered] = [
        f"ligne {number} : {message}"
        for number, message in zip(renumbered, rest[numbered], strict=True)
    ]
    problems[flagged] = text
    problems[repeated] = [
        f"ligne {number + line} : doublon de la ligne {origin + line}"
        for number, origin in zip(own[repeated], first[repeated], strict=True)
    ]

    out = frame.copy(deep=False)
    out["probleme"] = problems
    if repeated.any():
        out.loc[repeated, ["lon", "lat"]] = np.nan
    if reader.renumber:
        out.index = pd.RangeIndex(offset, offset + len(out))
    return out


@dataclass(frozen=True)
class Work:
    """One partition to classify in the second pass.

    Attributes
    ----------
    part : pandas.DataFrame or Block
        Its input rows (see :func:`rows`).
    shared : Shared
        Gives the Reference.
    repeats : tuple of numpy.ndarray
        Its rows repeating an earlier row, and where that row first occurs in the whole
        input (found by the first pass from the :func:`fingerprint` of every row).
    offset : int
        Global position of its first row.
    reader : Reader
        How it is read and numbered.
    """

    part: pd.DataFrame | Block
    shared: Shared
    repeats: tuple[np.ndarray, np.ndarray]
    offset: int
    reader: Reader

    def classified(self) -> gpd.GeoDataFrame:
        """Read, renumber and classify the partition."""
        reader = self.reader
        frame = _global_lines(reader.read(rows(self.part)), reader, self.repeats, self.offset)
        ref = self.shared.reference()
        lines = self.offset + np.arange(len(frame)) + reader.first_line  # as _global_lines
        out = engine.classify_frame(frame, ref, lines)
        # the same attrs in every partition (the input's, then the rules and sources),
        # kept by pandas when they are gathered
        out.attrs = {
            **eligibility.carried_attrs(self.part),
            "regles": ref.rules.describe(),
            "sources": ref.sources,
        }
        return out


#: What a block task returns: its verdict counts, and its invalid rows by kind of
#: problem (:func:`territoires.places.problem_tally`).
Tally = tuple[pd.Series, pd.DataFrame]


def _tally(frame: pd.DataFrame) -> Tally:
    """The verdict counts and the problem tally of a classified partition."""
    return frame["verdict"].value_counts(), places.problem_tally(frame)


def to_parquet(work: Work, path: Path) -> Tally:
    """Classify one partition and write it as GeoParquet; return its :data:`Tally`."""
    frame = work.classified()
    encoded = [column for column in engine.OUTPUT_COLUMNS if column not in _PLAIN]
    _geoparquet.write_points(frame, path, use_dictionary=encoded)
    return _tally(frame)


def to_csv(work: Work, header: bool) -> tuple[Tally, bytes]:
    """Classify one partition; return its :data:`Tally` and its CSV text.

    The text of :func:`territoires.export.csv_text`: the file is the one
    ``territoires classify -o x.csv`` writes for the whole input (header and byte order
    mark with the first partition only).
    """
    frame = work.classified()
    return _tally(frame), export.csv_text(frame, header=header)


def end_at_once() -> None:
    """Make this worker process end without the interpreter's teardown.

    Run when a worker of the pool starts. When the pool closes, its tasks are done and
    their files closed; the teardown would only free, one by one, the objects of a
    process that ends anyway (the prepared Reference and what its blocks left): 0.3 to
    0.8 s measured at the end of every run.
    """
    atexit.register(_exit_now)


def _exit_now() -> None:
    """End the process at once (its standard streams flushed)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
