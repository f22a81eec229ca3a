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
and a fingerprint of every usable row before classifying, so a first, cheaper pass over
the input (reading and validating only) runs when :func:`classify_dask` is called; the
classification itself stays lazy. Fingerprints are two independent 64-bit row hashes
(16 bytes, plus 8 for the position, per usable row, gathered on the client): two
different rows are taken for duplicates only if both hashes collide (odds about
n² / 2¹²⁹ for n rows: below 10⁻²⁰ for a billion).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
from dask.base import get_scheduler, tokenize
from dask.diagnostics import ProgressBar
from distributed import Client
from distributed import progress as distributed_progress

from . import _csv, catalogue, engine, outputs, places
from ._errors import InputError, OutputError
from .rules import Rules, preset

#: Output formats of :func:`classify_file_in_partitions`, by extension.
PARTITION_FORMATS = {".parquet": "Parquet, un dossier d'un fichier par bloc", ".csv": "CSV"}
#: Columns added by ``read_places`` (never part of a row's fingerprint).
_ADDED = ("probleme", "territoire", "geometry")
#: Second hash key (16 bytes), independent of pandas' default one.
_SECOND_HASH_KEY = "territoires-2nd!"
#: Start value of :func:`_second_hash`.
_SEED = np.uint64(0x9E3779B97F4A7C15)
#: Text columns read with the dtype pandas gives them, as ``territoires.classify(path)``.
_PANDAS_STRINGS = partial(dask.config.set, {"dataframe.convert-string": False})


@dataclass(frozen=True)
class _Reader:
    """How to read one partition, and which of its columns identify a row.

    Attributes
    ----------
    read : callable
        ``read_places`` with the coordinate options bound.
    ignored : tuple
        Columns left out of a row's fingerprint: the added ones and the input columns
        holding the coordinates (compared through their parsed ``lon``/``lat`` values,
        as ``read_places`` does).
    first_line : int
        Line number of the first row: 2 for a CSV file (line 1 is the header), else 1.
    renumber : bool
        Give the rows a global ``RangeIndex`` (files), instead of keeping the input index.
    """

    read: Callable[[pd.DataFrame], gpd.GeoDataFrame]
    ignored: tuple[Hashable, ...]
    first_line: int
    renumber: bool

    def keys(self, frame: gpd.GeoDataFrame) -> pd.DataFrame:
        """The columns that identify a row of ``frame`` (read places)."""
        return pd.DataFrame(frame.drop(columns=list(self.ignored)))


def _first_hash(keys: pd.DataFrame) -> np.ndarray:
    """pandas' 64-bit row hash."""
    return pd.util.hash_pandas_object(keys, index=False).to_numpy()


def _second_hash(keys: pd.DataFrame) -> np.ndarray:
    """A 64-bit row hash independent of :func:`_first_hash`.

    Text is hashed with another SipHash key (numbers are hashed bijectively by pandas),
    and the column hashes are chained through the SplitMix64 finaliser instead of
    pandas' multiply-xor combination.
    """
    with np.errstate(over="ignore"):
        chained = np.full(len(keys), _SEED, dtype=np.uint64)
        for position in range(keys.shape[1]):
            column = pd.util.hash_pandas_object(
                keys.iloc[:, position], index=False, hash_key=_SECOND_HASH_KEY
            ).to_numpy()
            chained = _mix(chained ^ column)
    return chained


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, a bijection of 64-bit integers."""
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


@dataclass(frozen=True)
class _Positions:
    """Global position of every partition and of the first occurrence of repeated rows.

    Attributes
    ----------
    offsets : numpy.ndarray
        Global position of the first row of each partition.
    first : pandas.Series
        Global position of the first occurrence, indexed by the two hashes, of the
        usable rows found in several partitions.
    """

    offsets: np.ndarray
    first: pd.Series


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


def _compute(*collections: Any, progress: bool) -> tuple[Any, ...]:
    """Compute on the active scheduler, with its progress bar when asked."""
    client = _client()
    if client is None:
        with ProgressBar() if progress else contextlib.nullcontext():
            return dask.compute(*collections)
    futures = client.compute(list(collections))
    if progress:
        distributed_progress(futures)
    return tuple(client.gather(futures))


def _reader(ddf: dd.DataFrame, read: Callable, lon: str | None, lat: str | None) -> _Reader:
    """Check the coordinate columns on the empty ``_meta`` and describe the reading."""
    meta = ddf._meta
    renamed = read(meta).attrs["colonnes_entree"]  # raises InputError now, not on a worker
    ignored: list[Hashable] = list(_ADDED)
    if not (isinstance(meta, gpd.GeoDataFrame) and meta.active_geometry_name is not None):
        found = places.coordinate_columns(meta.columns, lon, lat, optional=True)
        columns = found[:2] if found else ()  # a table of places located by their commune
        # the user's coordinate cells (``lon`` kept as ``lon_entree``) are compared
        # through their parsed values, as read_places does
        ignored += [renamed.get(str(column), column) for column in columns]
    return _Reader(read=read, ignored=tuple(ignored), first_line=1, renumber=False)


def _fingerprint(part: pd.DataFrame, reader: _Reader) -> tuple[int, pd.DataFrame]:
    """Length of a partition, hashes and local positions of its usable rows."""
    frame = reader.read(part)
    usable = frame["probleme"].isna().to_numpy()
    keys = reader.keys(frame)[usable]
    hashes = pd.DataFrame(
        {"h1": _first_hash(keys), "h2": _second_hash(keys), "position": np.flatnonzero(usable)}
    )
    return len(frame), hashes


def _positions(ddf: dd.DataFrame, reader: _Reader, progress: bool) -> _Positions:
    """First pass: partition lengths, and rows repeated across partitions."""
    tasks = [dask.delayed(_fingerprint)(part, reader) for part in ddf.to_delayed()]
    results = _compute(*tasks, progress=progress)
    lengths = np.array([length for length, _ in results], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    keys = pd.concat(
        [
            part.assign(position=part["position"] + offset)
            for (_, part), offset in zip(results, offsets, strict=True)
        ],
        ignore_index=True,
    )
    del results
    repeated = keys[keys.duplicated(["h1", "h2"], keep=False)]
    first = repeated.groupby(["h1", "h2"])["position"].min()
    return _Positions(offsets=offsets, first=first)


def _global_lines(
    frame: gpd.GeoDataFrame, reader: _Reader, positions: _Positions, offset: int
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
    if len(positions.first):
        keys = reader.keys(frame)[usable]
        h1 = _first_hash(keys)
        candidate = np.isin(h1, positions.first.index.get_level_values(0))
        h2 = _second_hash(keys[candidate])
        found = positions.first.reindex(pd.MultiIndex.from_arrays([h1[candidate], h2])).to_numpy()
        known = ~np.isnan(found)
        first[np.flatnonzero(usable)[candidate][known]] = found[known]
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
    out.loc[repeated, ["lon", "lat"]] = np.nan
    if reader.renumber:
        out.index = pd.RangeIndex(offset, offset + len(out))
    return out


def _classify_partition(
    part: pd.DataFrame,
    shared: _Prepared | _Layers,
    positions: _Positions,
    reader: _Reader,
    partition_info: dict[str, Any] | None = None,
) -> gpd.GeoDataFrame:
    """Second pass: read, renumber and classify one partition."""
    offset = int(positions.offsets[partition_info["number"]])
    frame = _global_lines(reader.read(part), reader, positions, offset)
    ref = shared.reference()
    lines = offset + np.arange(len(frame)) + reader.first_line  # as _global_lines numbers
    out = engine.classify_frame(frame, ref, lines)
    out.attrs = {"regles": ref.rules.describe(), "sources": ref.sources}
    return out


def _classify(
    ddf: dd.DataFrame,
    rules: Rules | None,
    data_dir: Path | None,
    reader: _Reader,
    progress: bool,
) -> tuple[dask_geopandas.GeoDataFrame, engine.Reference]:
    """Both passes over ``ddf`` (the first computed now, the second lazy), and the rules."""
    positions = _positions(ddf, reader, progress)
    ref, shared = _shared_reference(rules, data_dir)
    meta = engine.classify_frame(reader.read(ddf._meta), ref)
    if reader.renumber:
        meta.index = pd.RangeIndex(0)
    result = ddf.map_partitions(
        _classify_partition,
        shared,
        dask.delayed(positions, traverse=False),
        reader,
        meta=meta,
        clear_divisions=reader.renumber,
    )
    return result, ref


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
    The input is read and validated once at call time (first pass, see the module
    docstring), then again when the result is computed: persist a costly input first.
    The local scheduler is used unless a ``distributed.Client`` is dask's current
    scheduler; ``dask.config.set(scheduler="threads")`` forces it.
    """
    read = partial(places.read_places, lon=lon, lat=lat, crs=input_crs, geometry=False)
    reader = _reader(ddf, read, lon, lat)
    return _classify(ddf, _rules(rules), data_dir, reader, progress=False)[0]


def _read_table(path: Path, blocksize: str | int) -> tuple[dd.DataFrame, int]:
    """Open a CSV (as text, like ``read_places``) or Parquet file in partitions."""
    if not path.exists():
        raise InputError(f"fichier introuvable : {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        with _PANDAS_STRINGS():
            return dd.read_parquet(path, blocksize=blocksize), 1
    if suffix not in (".csv", ".tsv", ".txt"):
        raise InputError(
            f"format non reconnu pour {path} (extension {suffix or 'absente'}) ; "
            "formats acceptés en partitions : .csv, .tsv, .txt, .parquet"
        )
    text, encoding = _csv.sample(path)
    if not text.strip():
        raise InputError(f"fichier vide : {path} ne contient aucune ligne de données")
    with _PANDAS_STRINGS():
        ddf = dd.read_csv(
            path,
            blocksize=blocksize,
            sep=_csv.sniff_separator(text.rstrip()),
            encoding=encoding,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
        )
    return ddf, 2


def _write_parquet(frame: gpd.GeoDataFrame, path: Path) -> pd.Series:
    """Write one classified partition as GeoParquet; return its verdict counts."""
    frame.to_parquet(path, index=True)
    return frame["verdict"].value_counts()


def _write_csv(frame: gpd.GeoDataFrame, path: Path, previous: pd.Series | None) -> pd.Series:
    """Write (first partition) or append one classified partition; return its counts.

    ``previous`` is the result of the preceding partition's write, so that the writes
    run in order.
    """
    pd.DataFrame(frame.drop(columns="geometry")).to_csv(
        path, mode="w" if previous is None else "a", header=previous is None, index=False
    )
    return frame["verdict"].value_counts()


def classify_file_in_partitions(
    path: str | Path,
    output: str | Path,
    *,
    blocksize: str | int = "4MB",
    rules: Rules | str | None = None,
    progress: bool = True,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """Classify a large CSV or Parquet file into Parquet or CSV, with bounded memory.

    The file is read in blocks of ``blocksize`` bytes, each block classified and
    written before the next ones are read: memory grows with the block size and the
    number of workers, not with the file (only 24 bytes per usable row are gathered, see
    the module docstring). The file is read twice (first pass, then classification).

    Parameters
    ----------
    path : str or path-like
        ``.csv``/``.tsv``/``.txt`` (separator and encoding detected as
        :func:`territoires.places.read_places` does, on the first megabyte; values read
        as text, decimal commas accepted) or ``.parquet`` (file or folder).
    output : str or path-like
        ``.parquet``: a new GeoParquet folder, one file per partition
        (``part.00000.parquet``…), the row's position in the input as index;
        ``.csv``: one UTF-8 file without the geometry column (``lon`` and ``lat`` give
        the point). Written beside the target and renamed when the last partition is
        written: an interrupted run leaves the previous file or nothing. On a
        multi-machine cluster, the output must be on a file system shared by the workers.
    blocksize : str or int, default ``"4MB"``
        Bytes of the file per partition. About 60 MiB of memory per MB of block and per
        worker thread (see ``docs/performance.md``); larger blocks cost memory without
        speeding anything up (2 million places: 0.9 GiB at peak with 4 MB blocks, 2.2
        GiB with 16 MB, in the same time).
    rules : Rules or str, optional
        Rule set or preset name.
    progress : bool, default True
        Show a progress bar per pass: ``dask.diagnostics.ProgressBar`` on the local
        scheduler, ``distributed.progress`` when a ``distributed.Client`` is active.
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.

    Returns
    -------
    dict
        ``lignes`` (rows), ``partitions``, ``verdicts`` (count per verdict), ``sortie``
        (output path), ``regles`` and ``sources``.

    Raises
    ------
    InputError
        Missing, empty or unreadable file, unknown format, no coordinate column.
    OutputError
        Output neither ``.parquet`` nor ``.csv``, or a Parquet folder that is not empty.

    Notes
    -----
    Rows are numbered as in the file (header = line 1) for a CSV, from 1 for Parquet,
    exactly as ``territoires.classify`` numbers them; a CSV record spanning several
    lines (quoted line break) shifts the numbers of the following rows, in both.
    """
    path, output = Path(path), outputs.check_path(output, PARTITION_FORMATS)
    suffix = output.suffix.lower()
    if suffix == ".parquet" and output.exists() and any(output.iterdir()):
        raise OutputError(
            f"le dossier de sortie {output} existe et n'est pas vide : choisissez-en un autre"
        )
    ddf, first_line = _read_table(path, blocksize)
    reader = _reader(ddf, partial(places.read_places, geometry=False), None, None)
    reader = _Reader(reader.read, reader.ignored, first_line=first_line, renumber=True)
    result, ref = _classify(ddf, _rules(rules), data_dir, reader, progress=progress)
    parts = result.to_delayed()
    if suffix == ".parquet" and output.is_dir():
        output.rmdir()  # empty (checked above): replaced by the complete folder at the end
    # Written beside the target and renamed only once every partition is written: an
    # interrupted run leaves the previous file (or nothing), never a partial output.
    with outputs.replacing(output) as (target,):
        if suffix == ".parquet":
            target.mkdir()
            writes = [
                dask.delayed(_write_parquet)(part, target / f"part.{number:05d}.parquet")
                for number, part in enumerate(parts)
            ]
        else:
            writes = [dask.delayed(_write_csv)(parts[0], target, None)]
            for part in parts[1:]:  # appended in order, each write after the previous one
                writes.append(dask.delayed(_write_csv)(part, target, writes[-1]))
        counts = pd.concat(_compute(*writes, progress=progress)).groupby(level=0).sum()
    return {
        "lignes": int(counts.sum()),
        "partitions": result.npartitions,
        "verdicts": {str(key): int(value) for key, value in counts.items()},
        "sortie": str(output),
        "regles": ref.rules.describe(),
        "sources": ref.sources,
    }
