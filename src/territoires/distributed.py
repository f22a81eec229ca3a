"""Classify more places than fit in memory, partition by partition, with dask.

:func:`classify_dask` applies :func:`territoires.places.read_places` and
:func:`territoires.engine.classify_frame` to every partition of a dask DataFrame
(lon/lat columns) or dask-geopandas GeoDataFrame (points), on the local scheduler or on
a ``distributed`` cluster; :func:`classify_file_in_partitions` streams a large CSV or
Parquet file through it to a Parquet or CSV output with bounded memory.

The reference is prepared once and shared by every partition through a single graph
key, never re-read per partition: on the local scheduler, the rules and mirror folder
only, each thread using the process's prepared :class:`~territoires.engine.Reference`
(each process of the ``processes`` scheduler reads it once from the user cache); when a
``distributed.Client`` is active, the loaded QPV and commune layers (about 12 MB),
scattered to every worker, each worker process then preparing its Reference once.

The result is the one :func:`territoires.classify` gives on the whole table, row for
row: line numbers in ``probleme``/``motif`` are global, and a row identical to an
earlier row of another partition is a ``doublon`` too. This needs the partition lengths
and a fingerprint of every row before classifying, so a first, cheaper pass over the
input (reading only, and hashing the values ``read_places`` compares, see
:func:`territoires.places.duplicate_keys`) runs first; the classification itself is
lazy in :func:`classify_dask`, and done, with the writing, by one task per block in
:func:`classify_file_in_partitions` (nothing big comes back to the client).
Fingerprints are two independent 64-bit row hashes (16 bytes per row, gathered on the
client): two different rows are taken for duplicates only if both hashes collide (odds
about n² / 2¹²⁹ for n rows: below 10⁻²⁰ for a billion).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import dask.multiprocessing
import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
from dask.base import get_scheduler, tokenize
from dask.diagnostics import ProgressBar
from dask.system import CPU_COUNT
from dask.utils import parse_bytes
from distributed import Client
from distributed import progress as distributed_progress

from . import _csv, _geoparquet, catalogue, engine, export, outputs, places
from ._errors import InputError, OutputError
from .rules import Rules, preset

#: Output formats of :func:`classify_file_in_partitions`, by extension.
PARTITION_FORMATS = {".parquet": "Parquet, un dossier d'un fichier par bloc", ".csv": "CSV"}
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
#: Text columns read with the dtype pandas gives them, as ``territoires.classify(path)``.
_PANDAS_STRINGS = partial(dask.config.set, {"dataframe.convert-string": False})


@dataclass(frozen=True)
class _Reader:
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
class _Block:
    """One byte range of a CSV file, read by the task that uses it (no data travels)."""

    layout: _csv.Layout
    offset: int
    length: int


def _rows(part: pd.DataFrame | _Block) -> pd.DataFrame:
    """The input rows of a partition: a partition of a dask DataFrame, or a CSV block."""
    if isinstance(part, _Block):
        return _csv.read_block(part.layout, part.offset, part.length)
    return part


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
class _Positions:
    """Global position of every partition, and of the earlier occurrence of its rows.

    Attributes
    ----------
    offsets : numpy.ndarray
        Global position of the first row of each partition.
    repeats : list of tuple
        For each partition, the local positions of its rows repeating an earlier row of
        the input, and the global position of that row's first occurrence.
    """

    offsets: np.ndarray
    repeats: list[tuple[np.ndarray, np.ndarray]]


def _client() -> Client | None:
    """The ``distributed`` client that dask computes with now, if any.

    ``dask.config.set(scheduler="threads")`` (or ``"sync"``) selects the local scheduler
    even while a client exists.
    """
    client = getattr(get_scheduler(), "__self__", None)
    return client if isinstance(client, Client) else None


@dataclass(frozen=True, eq=False)
class _Layers:
    """Loaded QPV and communes, shipped to the workers instead of a built Reference.

    A built :class:`~territoires.engine.Reference` holds hundreds of thousands of
    indexed geometries, slow to pickle; the loaded layers travel as WKB in a fraction of
    a second, and each worker process builds its Reference from them once
    (:func:`_built`), identified by ``token``.
    """

    token: str
    rules: Rules
    qpv: gpd.GeoDataFrame
    communes: gpd.GeoDataFrame

    def __hash__(self) -> int:
        return hash(self.token)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Layers) and other.token == self.token

    def reference(self) -> engine.Reference:
        """The Reference of these layers, built once per worker process."""
        return _built(self)


@dataclass(frozen=True)
class _Prepared:
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


@lru_cache(maxsize=4)
def _built(layers: _Layers) -> engine.Reference:
    """The Reference of ``layers``, built once per worker process."""
    return engine.Reference.build(layers.rules, layers.qpv, layers.communes)


def _shared_reference(rules: Rules | None, data_dir: Path | None) -> tuple[Any, Any]:
    """The Reference for the caller, and one graph key giving it to every partition.

    With a ``distributed`` client, the loaded layers are scattered to every worker and
    the Reference rebuilt there once; on the local scheduler, the graph key holds only
    the rules and the mirror folder (:class:`_Prepared`).
    """
    ref = engine.reference(rules, data_dir)
    client = _client()
    if client is None:
        return ref, dask.delayed(
            _Prepared(ref.rules, catalogue.mirror_folder(data_dir)), traverse=False
        )
    layers = _loaded(ref.rules, Path(data_dir) if data_dir else None)
    return ref, dask.delayed(client.scatter(layers, broadcast=True, hash=False))


@lru_cache(maxsize=4)
def _loaded(rules: Rules, data_dir: Path | None) -> _Layers:
    """The layers :func:`territoires.engine.reference` builds from, as shipped."""
    qpv, communes = engine.load_layers(rules.qpv_vintage, data_dir)
    sources = qpv.attrs["sources"] + communes.attrs["sources"]
    return _Layers(
        token=tokenize(rules, [source["sha256"] for source in sources]),
        rules=rules,
        qpv=qpv,
        communes=communes,
    )


#: Input size (bytes) from which ``scheduler="auto"`` runs the blocks in processes.
PROCESSES_FROM: int = 128 * 2**20


def auto_scheduler(path: str | Path) -> str | None:
    """The scheduler ``scheduler="auto"`` chooses for the file at ``path``.

    Measured on two cores (``docs/performance.md``): a 10-million-row CSV (320 MB) is
    classified 1.2 times faster by a pool of processes than by threads, which wait for
    each other's GIL; a 1-million-row one (32 MB) 1.3 times slower, the pool taking
    seconds to start and to load the prepared reference in each process.

    Parameters
    ----------
    path : str or path-like
        The input file (or Parquet folder).

    Returns
    -------
    str or None
        ``None`` (keep it) when a ``distributed.Client`` is active, ``"processes"``
        for an input of at least :data:`PROCESSES_FROM` bytes on a machine of several
        cores, else ``"threads"``.
    """
    if _client() is not None:
        return None
    path = Path(path)
    files = path.rglob("*") if path.is_dir() else [path]
    size = sum(file.stat().st_size for file in files if file.is_file())
    return "processes" if CPU_COUNT > 1 and size >= PROCESSES_FROM else "threads"


@contextlib.contextmanager
def _scheduler(scheduler: str | None) -> Iterator[None]:
    """Run on ``scheduler`` (else the active one); with processes, one pool for all passes.

    dask's ``processes`` scheduler starts a pool per computation otherwise, each
    process importing the library and loading the prepared reference again; blocks are
    handed out one at a time (dask batches six by default: two workers, 16 blocks, one
    worker would do ten).
    """
    with dask.config.set(scheduler=scheduler) if scheduler else contextlib.nullcontext():
        if _client() is not None or get_scheduler() is not dask.multiprocessing.get:
            yield
            return
        if dask.config.get("pool", None) is not None:
            yield
            return
        context = multiprocessing.get_context(dask.config.get("multiprocessing.context", "spawn"))
        workers = dask.config.get("num_workers", None) or CPU_COUNT
        with (
            ProcessPoolExecutor(workers, mp_context=context, initializer=_end_at_once) as pool,
            dask.config.set(pool=pool, chunksize=1),
        ):
            yield


def _end_at_once() -> None:
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


def _compute(*collections: Any, progress: bool) -> tuple[Any, ...]:
    """Compute on the active scheduler, with its progress bar when asked."""
    client = _client()
    if client is None:
        # on stderr: the output of a command piped or redirected stays clean
        with ProgressBar(out=sys.stderr) if progress else contextlib.nullcontext():
            return dask.compute(*collections)
    futures = client.compute(list(collections))
    if progress:
        distributed_progress(futures)
    return tuple(client.gather(futures))


def _reader(
    meta: pd.DataFrame, read: Callable, lon: str | None, lat: str | None, first_line: int = 1
) -> _Reader:
    """Check the coordinate columns on the empty ``meta`` and describe the reading."""
    read(meta)  # raises InputError now, not on a worker
    return _Reader(read=read, lon=lon, lat=lat, first_line=first_line, renumber=first_line > 1)


def _fingerprint(part: pd.DataFrame | _Block, reader: _Reader) -> tuple[np.ndarray, np.ndarray]:
    """The two hashes of every row of a partition, on what ``read_places`` compares."""
    keys = places.duplicate_keys(_rows(part), reader.lon, reader.lat)
    return _hashes(keys)


def _positions(parts: list[Any], reader: _Reader, progress: bool) -> _Positions:
    """First pass: partition lengths, and the rows repeating an earlier one.

    Only the first hash of every row is sorted; the rows sharing it with another (a few)
    are then grouped on both hashes, the first of each group being the occurrence the
    others repeat.
    """
    tasks = [dask.delayed(_fingerprint)(part, reader) for part in parts]
    hashes = _compute(*tasks, progress=progress)
    lengths = np.array([len(first) for first, _ in hashes], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    repeats = [(np.empty(0, np.int64), np.empty(0, np.int64)) for _ in hashes]
    first = np.concatenate([first for first, _ in hashes]) if hashes else np.empty(0, np.uint64)
    ordered = np.sort(first)
    shared = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    if not len(shared):
        return _Positions(offsets=offsets, repeats=repeats)
    spot = np.minimum(np.searchsorted(shared, first), len(shared) - 1)
    candidates = np.flatnonzero(shared[spot] == first)
    part = np.searchsorted(offsets, candidates, side="right") - 1
    second = np.concatenate(
        [hashes[k][1][candidates[part == k] - offsets[k]] for k in range(len(hashes))]
    )
    group = (
        pd.DataFrame({"h1": first[candidates], "h2": second})
        .groupby(["h1", "h2"], sort=False)
        .ngroup()
        .to_numpy()
    )
    _, first_of_group = np.unique(group, return_index=True)
    origin = candidates[first_of_group[group]]
    later = origin < candidates
    for k in np.unique(part[later]):
        mine = later & (part == k)
        repeats[k] = (candidates[mine] - offsets[k], origin[mine])
    return _Positions(offsets=offsets, repeats=repeats)


def _global_lines(
    frame: gpd.GeoDataFrame,
    reader: _Reader,
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
class _Work:
    """One partition to classify in the second pass.

    Attributes
    ----------
    part : pandas.DataFrame or _Block
        Its input rows (see :func:`_rows`).
    shared : _Prepared or _Layers
        Gives the Reference.
    repeats : tuple of numpy.ndarray
        Its rows repeating an earlier row, and where that row first occurs (see
        :class:`_Positions`).
    offset : int
        Global position of its first row.
    reader : _Reader
        How it is read and numbered.
    """

    part: pd.DataFrame | _Block
    shared: _Prepared | _Layers
    repeats: tuple[np.ndarray, np.ndarray]
    offset: int
    reader: _Reader

    def classified(self) -> gpd.GeoDataFrame:
        """Read, renumber and classify the partition."""
        reader = self.reader
        frame = _global_lines(reader.read(_rows(self.part)), reader, self.repeats, self.offset)
        ref = self.shared.reference()
        lines = self.offset + np.arange(len(frame)) + reader.first_line  # as _global_lines
        out = engine.classify_frame(frame, ref, lines)
        out.attrs = {"regles": ref.rules.describe(), "sources": ref.sources}
        return out


def _classify_partition(
    part: pd.DataFrame,
    shared: _Prepared | _Layers,
    positions: _Positions,
    reader: _Reader,
    partition_info: dict[str, Any] | None = None,
) -> gpd.GeoDataFrame:
    """Second pass over one partition of a dask DataFrame."""
    number = partition_info["number"]
    offset = int(positions.offsets[number])
    return _Work(part, shared, positions.repeats[number], offset, reader).classified()


def _classify(
    ddf: dd.DataFrame,
    rules: Rules | None,
    data_dir: Path | None,
    reader: _Reader,
) -> dask_geopandas.GeoDataFrame:
    """Both passes over ``ddf``, the first computed now, the second lazy."""
    positions = _positions(ddf.to_delayed(), reader, progress=False)
    ref, shared = _shared_reference(rules, data_dir)
    meta = engine.classify_frame(reader.read(ddf._meta), ref)
    return ddf.map_partitions(
        _classify_partition,
        shared,
        dask.delayed(positions, traverse=False),
        reader,
        meta=meta,
    )


def _rules(rules: Rules | str | None) -> Rules | None:
    return preset(rules) if isinstance(rules, str) else rules


def classify_dask(
    ddf: dd.DataFrame,
    rules: Rules | str | None = None,
    *,
    lon: str | None = None,
    lat: str | None = None,
    input_crs: str | int | None = None,
    data_dir: Path | None = None,
) -> dask_geopandas.GeoDataFrame:
    """Classify places held in a dask DataFrame, partition by partition.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame or dask_geopandas.GeoDataFrame
        Places with longitude/latitude (or projected x/y with ``input_crs``) columns,
        or point geometries with a CRS.
    rules : Rules or str, optional
        Rule set or preset name; defaults to ``"fabriques-2019"``.
    lon, lat : str, optional
        Coordinate column names when they cannot be detected.
    input_crs : str or int, optional
        CRS of x/y columns (e.g. 2154).
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.

    Returns
    -------
    dask_geopandas.GeoDataFrame
        Lazy; once computed, equal row for row to ``territoires.classify(ddf.compute())``
        (same index, columns, dtypes, line numbers and doublons), each partition with
        ``attrs["regles"]`` and ``attrs["sources"]``. Count the verdicts with
        ``result["verdict"].value_counts()``.

    Raises
    ------
    InputError
        When the coordinate columns cannot be found (checked on the metadata, at once).

    Notes
    -----
    The input is read and hashed once at call time (first pass, see the module
    docstring), then read again when the result is computed: persist a costly input
    first.
    The local scheduler is used unless a ``distributed.Client`` is dask's current
    scheduler; ``dask.config.set(scheduler="threads")`` forces it.
    """
    read = partial(places.read_places, lon=lon, lat=lat, crs=input_crs, geometry=False)
    reader = _reader(ddf._meta, read, lon, lat)
    return _classify(ddf, _rules(rules), data_dir, reader)


def _parts(path: Path, blocksize: str | int) -> tuple[list[Any], pd.DataFrame, int]:
    """The partitions of a CSV (byte blocks) or Parquet file, their columns, first line."""
    if not path.exists():
        raise InputError(f"fichier introuvable : {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        with _PANDAS_STRINGS():
            ddf = dd.read_parquet(path, blocksize=blocksize)
        return ddf.to_delayed(), ddf._meta, 1
    if suffix not in (".csv", ".tsv", ".txt"):
        raise InputError(
            f"format non reconnu pour {path} (extension {suffix or 'absente'}) ; "
            "formats acceptés en partitions : .csv, .tsv, .txt, .parquet"
        )
    layout = _csv.layout(path)
    blocks = _csv.blocks(layout, parse_bytes(blocksize))
    meta = _csv.read_block(layout, layout.start, 0)
    return [_Block(layout, *block) for block in blocks], meta, layout.first_line


def _to_parquet(work: _Work, path: Path) -> pd.Series:
    """Classify one partition and write it as GeoParquet; return its verdict counts."""
    frame = work.classified()
    encoded = [column for column in engine.OUTPUT_COLUMNS if column not in _PLAIN]
    _geoparquet.write_points(frame, path, use_dictionary=encoded)
    return frame["verdict"].value_counts()


def _to_csv(work: _Work, header: bool) -> tuple[pd.Series, bytes]:
    """Classify one partition; return its verdict counts and its CSV text.

    The text of :func:`territoires.export.csv_text`: the file is the one
    ``territoires classify -o x.csv`` writes for the whole input (header and byte order
    mark with the first partition only).
    """
    frame = work.classified()
    return frame["verdict"].value_counts(), export.csv_text(frame, header=header)


def _write_csv(block: tuple[pd.Series, bytes], path: Path, previous: pd.Series | None) -> pd.Series:
    """Write (first partition) or append one classified partition; return its counts.

    ``previous`` is the result of the preceding partition's write, so that the writes
    run in order.
    """
    counts, text = block
    with open(path, "wb" if previous is None else "ab") as handle:
        handle.write(text)
    return counts


def classify_file_in_partitions(
    path: str | Path,
    output: str | Path,
    *,
    blocksize: str | int = "4MB",
    rules: Rules | str | None = None,
    progress: bool = True,
    data_dir: Path | None = None,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Classify a large CSV or Parquet file into Parquet or CSV, with bounded memory.

    The file is read in blocks of ``blocksize`` bytes, twice: a first pass hashes every
    row (line numbers and duplicates are those of the whole file), then one task per
    block reads, validates, classifies and writes it, returning only its verdict counts.
    Memory grows with the block size and the number of workers, not with the file, but
    for the 16 bytes per row of the fingerprints (see the module docstring).

    Parameters
    ----------
    path : str or path-like
        ``.csv``/``.tsv``/``.txt`` (encoding, separator and Excel's ``sep=;`` line
        detected as :func:`territoires.places.read_places` does, on the first megabyte;
        cells read as text, decimal commas accepted; UTF-8 or Windows-1252, every record
        on one line with as many fields as the header) or ``.parquet`` (file or folder).
    output : str or path-like
        ``.parquet``: a new GeoParquet folder, one file per partition
        (``part.00000.parquet``…), the row's position in the input as index;
        ``.csv``: one UTF-8 file without the geometry column (``lon`` and ``lat`` give
        the point). Written beside the target and renamed when the last partition is
        written: an interrupted run leaves the previous file or nothing. On a
        multi-machine cluster, the output must be on a file system shared by the workers.
    blocksize : str or int, default ``"4MB"``
        Bytes of the file per partition. About 60 MiB of memory per MB of block and per
        worker (see ``docs/performance.md``); larger blocks cost memory without
        speeding anything up.
    rules : Rules or str, optional
        Rule set or preset name.
    progress : bool, default True
        Show a progress bar per pass: ``dask.diagnostics.ProgressBar`` on the local
        scheduler, ``distributed.progress`` when a ``distributed.Client`` is active.
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.
    scheduler : str, optional
        dask scheduler for this call (``"threads"``, ``"processes"``, ``"sync"``), or
        ``"auto"``: the one :func:`auto_scheduler` chooses for the file's size (the
        command line's default); the active one when omitted (a
        ``distributed.Client``, else dask's threads).
        ``"processes"`` starts one pool of worker processes for both passes, each
        loading the prepared reference once: no thread waits for the GIL, for twice the
        memory; like any ``spawn`` pool, a script calling it needs an
        ``if __name__ == "__main__":`` guard.

    Returns
    -------
    dict
        ``lignes`` (rows), ``partitions``, ``verdicts`` (count per verdict), ``sortie``
        (output path), ``regles`` and ``sources``.

    Raises
    ------
    InputError
        Missing, empty or unreadable file, unknown format, no coordinate column; a CSV
        that cannot be read by blocks (UTF-16, a ragged line, a quoted cell spanning
        lines, bytes out of the encoding guessed): the message names the line and says
        to classify the file whole, which reports such lines row by row.
    OutputError
        Output neither ``.parquet`` nor ``.csv``, or a Parquet folder that is not empty.

    Notes
    -----
    Rows are numbered as in the file for a CSV (the header is line 1, or 2 after
    Excel's ``sep=;`` line; a blank line is a row of empty cells, blank lines at the
    end none), from 1 for Parquet, exactly as ``territoires.classify`` numbers them.
    """
    path, output = Path(path), outputs.check_path(output, PARTITION_FORMATS)
    suffix = output.suffix.lower()
    if suffix == ".parquet" and output.exists() and any(output.iterdir()):
        raise OutputError(
            f"le dossier de sortie {output} existe et n'est pas vide : choisissez-en un autre"
        )
    parts, meta, first_line = _parts(path, blocksize)
    reader = _reader(meta, partial(places.read_places, geometry=False), None, None, first_line)
    reader = dataclasses.replace(reader, renumber=True)
    with _scheduler(auto_scheduler(path) if scheduler == "auto" else scheduler):
        positions = _positions(parts, reader, progress)
        ref, shared = _shared_reference(_rules(rules), data_dir)
        work = [
            _Work(part, shared, positions.repeats[number], int(positions.offsets[number]), reader)
            for number, part in enumerate(parts)
        ]
        if suffix == ".parquet" and output.is_dir():
            output.rmdir()  # empty (checked above): replaced by the complete folder at the end
        # Written beside the target and renamed only once every partition is written: an
        # interrupted run leaves the previous file (or nothing), never a partial output.
        with outputs.replacing(output, export.provenance_path(output)) as (target, provenance):
            if suffix == ".parquet":
                target.mkdir()
                writes = [
                    dask.delayed(_to_parquet)(task, target / f"part.{number:05d}.parquet")
                    for number, task in enumerate(work)
                ]
            else:
                writes = []
                for number, task in enumerate(work):  # appended in order, each after the previous
                    block = dask.delayed(_to_csv)(task, header=number == 0)
                    writes.append(
                        dask.delayed(_write_csv)(block, target, writes[-1] if writes else None)
                    )
            counts = pd.concat(_compute(*writes, progress=progress)).groupby(level=0).sum()
            verdicts = {str(key): int(value) for key, value in counts.items()}
            described = {"regles": ref.rules.describe(), "sources": ref.sources}
            export.write_provenance(provenance, {**described, "verdicts": verdicts})
    return {
        "lignes": int(counts.sum()),
        "partitions": len(parts),
        "verdicts": verdicts,
        "sortie": str(output),
        **described,
    }
