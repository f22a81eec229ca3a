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
:func:`classify_file_in_partitions` (nothing big comes back to the client). What a task
does, and the fingerprints, are in :mod:`territoires._partition`, which workers import
without ``dask.dataframe``, dask-geopandas or ``distributed``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.multiprocessing
import geopandas as gpd
import numpy as np
import pandas as pd
from dask.base import get_scheduler, tokenize
from dask.system import CPU_COUNT
from dask.utils import parse_bytes

from . import _csv, _partition, _progress, catalogue, engine, export, outputs, places
from ._errors import InputError, OutputError
from .rules import Rules, preset

if TYPE_CHECKING:  # loaded when used: a file classified without a cluster needs none
    import dask.dataframe as dd
    import dask_geopandas
    from distributed import Client

#: Output formats of :func:`classify_file_in_partitions`, by extension.
PARTITION_FORMATS = {".parquet": "Parquet, un dossier d'un fichier par bloc", ".csv": "CSV"}
#: Text columns read with the dtype pandas gives them, as ``territoires.classify(path)``.
_PANDAS_STRINGS = partial(dask.config.set, {"dataframe.convert-string": False})


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
    even while a client exists. Without the ``distributed`` package loaded, no client
    can exist: it is not imported to find out.
    """
    if "distributed" not in sys.modules:
        return None
    from distributed import Client

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


@lru_cache(maxsize=4)
def _built(layers: _Layers) -> engine.Reference:
    """The Reference of ``layers``, built once per worker process."""
    return engine.Reference.build(layers.rules, layers.qpv, layers.communes)


def _shared_reference(rules: Rules | None, data_dir: Path | None) -> tuple[Any, Any]:
    """The Reference for the caller, and one graph key giving it to every partition.

    With a ``distributed`` client, the loaded layers are scattered to every worker and
    the Reference rebuilt there once; on the local scheduler, the graph key holds only
    the rules and the mirror folder (:class:`_partition.Prepared`).
    """
    ref = engine.reference(rules, data_dir)
    client = _client()
    if client is None:
        return ref, dask.delayed(
            _partition.Prepared(ref.rules, catalogue.mirror_folder(data_dir)), traverse=False
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
            ProcessPoolExecutor(
                workers, mp_context=context, initializer=_partition.end_at_once
            ) as pool,
            dask.config.set(pool=pool, chunksize=1),
        ):
            yield


def _compute(*collections: Any, progress: bool) -> tuple[Any, ...]:
    """Compute on the active scheduler, with its progress bar when asked."""
    client = _client()
    if client is None:
        # on stderr: the output of a command piped or redirected stays clean
        with _progress.dask_bar(progress):
            return dask.compute(*collections)
    futures = client.compute(list(collections))
    _progress.follow(futures, progress)
    return tuple(client.gather(futures))


def _reader(
    meta: pd.DataFrame, read: Callable, lon: str | None, lat: str | None, first_line: int = 1
) -> _partition.Reader:
    """Check the coordinate columns on the empty ``meta`` and describe the reading."""
    read(meta)  # raises InputError now, not on a worker
    return _partition.Reader(
        read=read, lon=lon, lat=lat, first_line=first_line, renumber=first_line > 1
    )


def _positions(parts: list[Any], reader: _partition.Reader, progress: bool) -> _Positions:
    """First pass: partition lengths, and the rows repeating an earlier one.

    Only the first hash of every row is sorted; the rows sharing it with another (a few)
    are then grouped on both hashes, the first of each group being the occurrence the
    others repeat.
    """
    tasks = [dask.delayed(_partition.fingerprint)(part, reader) for part in parts]
    hashes = _compute(*tasks, progress=progress)
    lengths = np.array([len(first) for first, _ in hashes], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    repeats = [(np.empty(0, np.int64), np.empty(0, np.int64)) for _ in hashes]
    first = np.concatenate([first for first, _ in hashes]) if hashes else np.empty(0, np.uint64)
    candidates = np.flatnonzero(places.repeated(first))
    if not len(candidates):
        return _Positions(offsets=offsets, repeats=repeats)
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


def _classify_partition(
    part: pd.DataFrame,
    shared: _partition.Prepared | _Layers,
    positions: _Positions,
    reader: _partition.Reader,
    partition_info: dict[str, Any] | None = None,
) -> gpd.GeoDataFrame:
    """Second pass over one partition of a dask DataFrame."""
    number = partition_info["number"]
    offset = int(positions.offsets[number])
    return _partition.Work(part, shared, positions.repeats[number], offset, reader).classified()


def _classify(
    ddf: dd.DataFrame,
    rules: Rules | None,
    data_dir: Path | None,
    reader: _partition.Reader,
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
        its input partition's ``attrs`` (see :func:`territoires.eligibility.carried_attrs`),
        then ``attrs["regles"]`` and ``attrs["sources"]``. Count the verdicts with
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
        import dask.dataframe as dd

        with _PANDAS_STRINGS():
            ddf = dd.read_parquet(path, blocksize=blocksize)
        return ddf.to_delayed(), ddf._meta, 1
    if suffix not in (".csv", ".tsv", ".txt"):
        raise InputError(
            f"format non reconnu pour {path} (extension {suffix or 'absente'}) ; "
            "formats acceptés en partitions : .csv, .tsv, .txt, .parquet"
        )
    layout = _csv.layout(path, places.csv_header)
    blocks = _csv.blocks(layout, parse_bytes(blocksize))
    meta = _csv.read_block(layout, layout.start, 0)
    return [_partition.Block(layout, *block) for block in blocks], meta, layout.first_line


def _write_csv(
    block: tuple[_partition.Tally, bytes], path: Path, previous: _partition.Tally | None
) -> _partition.Tally:
    """Write (first partition) or append one classified partition; return its tally.

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
        Drawn live in a terminal or a notebook only: in a log, a CI job or a pipe, each
        pass writes one final line (nothing with a ``distributed.Client``).
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
        ``lignes`` (rows), ``partitions``, ``verdicts`` (count per verdict),
        ``problemes`` (invalid rows by kind of problem, most frequent first: kind →
        ``{"lignes": n, "exemple": "ligne 7 : …"}``, see
        :func:`territoires.places.problem_tally`), ``sortie`` (output path), ``regles``
        and ``sources``. The provenance file beside the output holds ``lignes`` (the
        input lines as ranges), ``regles``, ``sources`` and ``verdicts``, as the one of
        :func:`territoires.export.write_results`.

    Raises
    ------
    InputError
        Missing, empty or unreadable file, unknown format, no coordinate column; a CSV
        that cannot be read by blocks (UTF-16, a ragged line, a quoted cell spanning
        lines, bytes out of the encoding guessed): the message names the first such
        line, what was found there and expected, and how to correct the file.
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
            _partition.Work(
                part, shared, positions.repeats[number], int(positions.offsets[number]), reader
            )
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
                    dask.delayed(_partition.to_parquet)(task, target / f"part.{number:05d}.parquet")
                    for number, task in enumerate(work)
                ]
            else:
                writes = []
                for number, task in enumerate(work):  # appended in order, each after the previous
                    block = dask.delayed(_partition.to_csv)(task, header=number == 0)
                    writes.append(
                        dask.delayed(_write_csv)(block, target, writes[-1] if writes else None)
                    )
            tallies = _compute(*writes, progress=progress)
            counts = pd.concat([counted for counted, _ in tallies]).groupby(level=0).sum()
            problems = (
                pd.concat([problems for _, problems in tallies])
                .groupby(level=0, sort=False)
                .agg(lignes=("lignes", "sum"), exemple=("exemple", "first"))
                .sort_values("lignes", ascending=False, kind="stable")
            )
            counts = counts.sort_values(ascending=False, kind="stable")  # as classify's attrs
            verdicts = {str(key): int(value) for key, value in counts.items()}
            rows = int(counts.sum())
            numbered = places.line_ranges(range(reader.first_line, reader.first_line + rows))
            described = {"regles": ref.rules.describe(), "sources": ref.sources}
            # the provenance of `territoires classify` without --partitions, key for key
            export.write_provenance(
                provenance, {"lignes": numbered, **described, "verdicts": verdicts}
            )
    return {
        "lignes": rows,
        "partitions": len(parts),
        "verdicts": verdicts,
        "problemes": problems.to_dict("index"),
        "sortie": str(output),
        **described,
    }
