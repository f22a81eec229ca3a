"""Decide, for one place or millions, whether a tiers-lieu is eligible.

The public entry points: :func:`classify` reads the places (file, DataFrame or
GeoDataFrame, see :mod:`territoires.places`) and classifies them in parallel chunks
with the spatial engine (:mod:`territoires.engine`), or hands a dask DataFrame to
:mod:`territoires.distributed`; :func:`check` answers for one point. Every input row
comes out, in input order, with a verdict and a French motif (:mod:`territoires.motifs`).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _progress, engine, places
from ._errors import InputError
from ._gc import paused
from ._trim import after_reading, before_reading
from .engine import (
    COMMUNE_TOLERANCE_M,
    INPUT_SUFFIX,
    OUTPUT_COLUMNS,
    Reference,
    classify_frame,
    reference,
)
from .rules import Rules, preset

__all__ = [
    "BY_VINTAGE",
    "CHUNK_SIZE",
    "COMMUNE_TOLERANCE_M",
    "INPUT_SUFFIX",
    "OUTPUT_ATTRS",
    "OUTPUT_COLUMNS",
    "Reference",
    "carried_attrs",
    "check",
    "classify",
    "classify_frame",
    "reference",
    "side_by_side",
]

#: Rows classified together by one thread in :func:`classify`.
CHUNK_SIZE: int = 100_000


def classify(
    source: Any,
    rules: Rules | str | None = None,
    *,
    lon: str | None = None,
    lat: str | None = None,
    input_crs: str | int | None = None,
    sheet: str | int | None = None,
    data_dir: Path | None = None,
    ref: Reference | None = None,
    progress: bool = False,
    chunk_size: int = CHUNK_SIZE,
    workers: int | None = None,
    min_score: float | None = None,
    offline: bool | None = None,
    precision: float | None = None,
    qpv_vintages: Sequence[int] | None = None,
    on_read: Callable[[int], None] | None = None,
) -> gpd.GeoDataFrame:
    """Classify places: in or near a QPV, outside large urban centres, with reasons.

    Parameters
    ----------
    source : path, pandas.DataFrame or geopandas.GeoDataFrame
        Places: a CSV/XLSX/GeoJSON/GPKG file, a table with longitude/latitude (or
        projected x/y with ``input_crs``) columns, or point geometries. Rows without
        coordinates but with a postal address (``adresse``, ``code_postal``,
        ``commune`` columns) are geocoded (see :mod:`territoires.geocode`).
        A dask (geo)DataFrame is classified partition by partition with the same
        results (see :func:`territoires.distributed.classify_dask`) and a lazy
        ``dask_geopandas.GeoDataFrame`` is returned.
    rules : Rules or str, optional
        Rule set or preset name; defaults to ``"fabriques-2019"``.
    lon, lat : str, optional
        Coordinate column names when they cannot be detected.
    input_crs : str or int, optional
        CRS of x/y columns (e.g. 2154).
    sheet : str or int, optional
        Sheet of an XLSX workbook or layer of a GeoPackage (see
        :func:`territoires.places.read_places`).
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.
    ref : Reference, optional
        Prepared reference layers (e.g. built from your own QPV/commune frames with
        :meth:`Reference.build`); ``rules`` is then taken from it.
    progress : bool, default False
        Show a progress bar (one step per chunk of ``chunk_size`` rows); outside a
        terminal or a notebook (log, CI, pipe), one final line.
    chunk_size : int, default :data:`CHUNK_SIZE`
        Rows classified together; chunks run in parallel threads (shapely and arrow
        release the GIL), which also bounds the memory of intermediate arrays.
    workers : int, optional
        Threads; defaults to the number of CPU cores.
    min_score : float, optional
        Lowest geocoding score (0 to 1) for an address to be placed; defaults to
        :data:`territoires.settings.geocoder_min_score`.
    offline : bool, optional
        Geocode from the cache only, without any request; defaults to
        :data:`territoires.settings.offline`.
    precision : float, optional
        Precision in metres of the points without a ``precision_m`` cell (e.g. points
        placed by hand on a map): a point closer than that to a QPV boundary, or to the
        proximity threshold, is ``incertain``. Exact (NaN) when omitted.
    qpv_vintages : sequence of int, optional
        Several QPV geographies, e.g. ``(2015, 2024)``: the places are classified under
        each, with ``rules`` otherwise unchanged, and the QPV columns, ``verdict`` and
        ``motif`` come out once per geography, suffixed ``_2015``, ``_2024``…, followed
        by ``changement_qpv`` (True where the verdicts differ), so that staff see what
        changed for each place; ``changement_qpv`` is NA (empty cell in the files)
        where a verdict could still change once a missing datum is known (see
        :func:`side_by_side`): the 2024 contours absent, a département not covered.
    on_read : callable, optional
        Called with the number of places once they are read, before any is classified;
        an exception it raises stops the run (the command line refuses there a result
        too long for its output file).

    Returns
    -------
    geopandas.GeoDataFrame
        Every input row, in input order and with the input index and columns (an input
        column named like an output column gets the suffix :data:`INPUT_SUFFIX`), plus
        :data:`OUTPUT_COLUMNS`; point geometry in EPSG:4326 (``None`` when invalid),
        **whatever the CRS of the input**: a layer in Lambert-93 comes back in WGS84
        degrees (``lon``/``lat``); use ``result.to_crs(source.crs)`` to go back. The
        result can be drawn at once with ``result.explore(column="verdict")``.
        ``attrs["regles"]`` describes the rules, ``attrs["sources"]`` the data files
        and vintages, ``attrs["verdicts"]`` the count per verdict and, when addresses
        were geocoded, ``attrs["geocodage"]`` the geocoder, the dates of its answers and
        the requests sent; ``attrs["lignes"]`` the input lines of the rows as ranges
        (``"2-28"``, read back by :func:`territoires.places.lines`), which name unnamed
        places in maps and reports. The input's own ``attrs`` (a DataFrame's) come first,
        copied (see :func:`carried_attrs`): on a clash the output's keys
        (:data:`OUTPUT_ATTRS`) win. ``attrs`` hold only text, numbers, lists and dicts:
        ``to_parquet`` stores them, and they are the provenance file of the outputs.
    """
    if hasattr(source, "__dask_graph__"):  # a dask (geo)DataFrame: see territoires.distributed
        if ref is not None:
            raise InputError(
                "ref= n'est pas pris en charge avec un DataFrame dask : passez rules= et data_dir="
            )
        given = {
            "sheet": sheet,
            "workers": workers,
            "min_score": min_score,
            "offline": offline,
            "precision": precision,
            "qpv_vintages": qpv_vintages,
            "on_read": on_read,
            "chunk_size": None if chunk_size == CHUNK_SIZE else chunk_size,
            "progress": progress or None,
        }
        refused = [f"{name}=" for name, value in given.items() if value is not None]
        if refused:  # never silently ignored: precision= or qpv_vintages= change verdicts
            raise InputError(
                f"{', '.join(refused)} : non pris en charge avec un DataFrame dask "
                "(seuls rules=, lon=, lat=, input_crs= et data_dir= s'appliquent) ; mettez la "
                "précision dans une colonne precision_m, classez un millésime QPV par appel"
            )
        from .distributed import classify_dask

        return classify_dask(
            source, rules, lon=lon, lat=lat, input_crs=input_crs, data_dir=data_dir
        )
    chosen = preset(rules) if isinstance(rules, str) else rules
    vintages = list(dict.fromkeys(qpv_vintages or ()))
    if len(vintages) > 1:
        if ref is not None:
            raise InputError("ref= et qpv_vintages= s'excluent : passez rules= et data_dir=")
        base = chosen or preset()
        runs = {
            vintage: classify(
                source,
                base if vintage == base.qpv_vintage else base.replace(qpv_vintage=vintage),
                lon=lon,
                lat=lat,
                input_crs=input_crs,
                data_dir=data_dir,
                progress=progress,
                chunk_size=chunk_size,
                workers=workers,
                min_score=min_score,
                offline=offline,
                precision=precision,
                on_read=on_read,
            )
            for vintage in vintages
        }
        return side_by_side(runs)
    if vintages and ref is None:
        chosen = (chosen or preset()).replace(qpv_vintage=vintages[0])
    before_reading(source)
    frame = places.read_places(
        source,
        lon=lon,
        lat=lat,
        crs=input_crs,
        sheet=sheet,
        geometry=False,
        min_score=min_score,
        offline=offline,
        precision=precision,
        data_dir=data_dir,
    )
    if on_read is not None:
        on_read(len(frame))
    trimming = after_reading(len(frame))  # freed memory would add to the classification's peak
    if ref is None:
        ref = reference(chosen, data_dir)
    numbers = places.lines(frame)
    if len(frame) <= chunk_size and not progress:  # one chunk (a check): no thread, no bar
        columns = engine.classify_columns(frame, ref, numbers)
        tallies = [pc.value_counts(columns["verdict"])]
    else:
        columns, tallies = _classify_chunks(frame, ref, numbers, chunk_size, workers, progress)
    out = engine.framed(frame, columns)
    del columns
    if trimming is not None:
        trimming.join()
    out.attrs = {
        **carried_attrs(source),
        **({"lignes": frame.attrs["lignes"]} if "lignes" in frame.attrs else {}),
        "regles": ref.rules.describe(),
        "sources": ref.sources,
        "verdicts": _verdict_counts(tallies),
    }
    if "geocodage" in frame.attrs:
        out.attrs["geocodage"] = frame.attrs["geocodage"]
    return out


def _classify_chunks(
    frame: pd.DataFrame,
    ref: Reference,
    numbers: np.ndarray | None,
    chunk_size: int,
    workers: int | None,
    progress: bool,
) -> tuple[dict[str, Any], list[pa.StructArray]]:
    """Output columns of ``frame`` (see :func:`territoires.engine.assemble`), classified by
    chunks of ``chunk_size`` rows in parallel threads, and each chunk's count of verdicts
    (``pyarrow.compute.value_counts``), in order."""
    collected = engine.Collected(len(frame))
    tallies: dict[int, pa.StructArray] = {}
    with (
        paused(len(frame)),  # see territoires._gc: a geometry per place
        ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool,
        _progress.bar(progress, total=len(frame), unit=" lieux", desc="classement") as bar,
    ):

        def run(start: int) -> None:
            chunk = frame.iloc[start : start + chunk_size]
            lines = None if numbers is None else numbers[start : start + chunk_size]
            columns = engine.classify_columns(chunk, ref, lines)
            tallies[start] = pc.value_counts(columns["verdict"])
            collected.put(start, columns)
            bar.update(len(chunk))

        list(pool.map(run, range(0, len(frame), chunk_size)))
    if not len(frame):
        columns = engine.classify_columns(frame, ref, numbers)
        return columns, [pc.value_counts(columns["verdict"])]
    return collected.columns(), [tallies[start] for start in sorted(tallies)]


def _verdict_counts(tallies: list[pa.StructArray]) -> dict[str, int]:
    """Places per verdict, as ``out["verdict"].value_counts()`` gives them (most frequent
    first, ties in order of first appearance), from the counts of consecutive chunks."""
    total: dict[str, int] = {}
    for tally in tallies:
        counts = tally.field("counts").to_pylist()
        for verdict, count in zip(tally.field("values").to_pylist(), counts, strict=True):
            total[verdict] = total.get(verdict, 0) + count
    ordered = pd.Series(total, dtype="int64").sort_values(ascending=False, kind="stable")
    return {str(verdict): int(count) for verdict, count in ordered.items()}


#: Keys of the ``attrs`` that :func:`classify` and :func:`side_by_side` write.
OUTPUT_ATTRS: tuple[str, ...] = (
    "lignes",
    "regles",
    "sources",
    "verdicts",
    "geocodage",
    "millesimes_qpv",
)


def carried_attrs(source: Any) -> dict[str, Any]:
    """The ``attrs`` of the places given to :func:`classify` that its output carries.

    Parameters
    ----------
    source : Any
        What :func:`classify` was given: a DataFrame, a GeoDataFrame (or a partition of
        a dask one), a path…

    Returns
    -------
    dict
        A copy of ``source.attrs`` made JSON-safe (:func:`_plain`: a date becomes its ISO
        text, a numpy number a Python one), so that ``to_parquet`` and the provenance
        file hold it, without the keys of :data:`OUTPUT_ATTRS`, which
        the output writes for its own run: a previous run's ``verdicts`` or
        ``geocodage`` never passes for this one's. Empty when ``source`` has no
        ``attrs`` (a path).
    """
    attrs = getattr(source, "attrs", None)
    if not isinstance(attrs, dict):
        return {}
    return _plain({key: value for key, value in attrs.items() if key not in OUTPUT_ATTRS})


def _plain(value: Any) -> Any:
    """A copy of ``value`` made of text, numbers, booleans, None, lists and dicts only.

    What ``to_parquet`` and the provenance file (JSON) can hold: numpy numbers become
    Python numbers, arrays, tuples and sets lists, dates and times their ISO text, dict
    keys text, anything else its ``str``.
    """
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


#: Output columns that depend on the QPV geography (``qpv_code`` … ``qpv_a_verifier``,
#: ``verdict``, ``motif``), suffixed by vintage in :func:`side_by_side`.
BY_VINTAGE = [
    *OUTPUT_COLUMNS[OUTPUT_COLUMNS.index("qpv_code") : OUTPUT_COLUMNS.index("code_insee")],
    "verdict",
    "motif",
]


def side_by_side(runs: dict[int, gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Put classifications of the same places under several QPV geographies side by side.

    Parameters
    ----------
    runs : dict of int to geopandas.GeoDataFrame
        Output of :func:`classify` per QPV vintage, same rows in the same order.

    Returns
    -------
    geopandas.GeoDataFrame
        The first run without its :data:`BY_VINTAGE` columns, then those columns of every
        run suffixed ``_<vintage>``, then ``changement_qpv``: True where the verdicts
        differ, False where they are the same, NA (unknown) where, under any of the
        geographies, the verdict could still change once a missing datum is known: an
        ``indetermine`` verdict, or a QPV answer (``in_qpv``, ``near_qpv``) unknown for
        lack of contours (QPV 2024 contours absent, département not covered by the
        contours read) or of a precise position (``incertain``), unless the verdict is
        ``invalide`` or ``qpv``, which nothing outranks. No change is claimed then: a
        place ``qpv`` in 2015 and ``indetermine`` in 2024 for lack of the 2024
        contours may well still be in a QPV. The geometry last. ``attrs`` hold, per
        vintage, the rules and the count per verdict (``regles``, ``verdicts`` keyed by
        vintage), and every source read, after the first run's other ``attrs`` (the
        user's, see :func:`carried_attrs`).
    """
    first = next(iter(runs.values()))
    out = pd.DataFrame(first.drop(columns=[*BY_VINTAGE, "geometry"]))
    for vintage, run in runs.items():
        for column in BY_VINTAGE:
            out[f"{column}_{vintage}"] = run[column].to_numpy()
    verdicts = [run["verdict"].to_numpy() for run in runs.values()]
    changed = pd.array(np.any([v != verdicts[0] for v in verdicts[1:]], axis=0), dtype="boolean")
    changed[np.any([_open(run) for run in runs.values()], axis=0)] = pd.NA
    out["changement_qpv"] = changed
    result = gpd.GeoDataFrame(out, geometry=first.geometry.to_numpy(), crs=first.crs)
    sources = [source for run in runs.values() for source in run.attrs.get("sources", [])]
    result.attrs = {
        **carried_attrs(first),
        "regles": {str(vintage): run.attrs["regles"] for vintage, run in runs.items()},
        "sources": list({repr(s): s for s in sources}.values()),
        "verdicts": {str(vintage): run.attrs["verdicts"] for vintage, run in runs.items()},
        "millesimes_qpv": list(runs),
    }
    return result


def _open(run: pd.DataFrame) -> np.ndarray:
    """Rows whose verdict could still change once a missing datum is known.

    ``indetermine``, or a QPV answer (``in_qpv``, ``near_qpv``) unknown, for lack of
    contours (QPV 2024 contours absent, département not covered) or of a precise position
    (``incertain``), unless the verdict already is ``invalide`` or ``qpv``, which no other
    answer outranks.
    """
    verdict = run["verdict"].to_numpy(dtype=object)
    unknown = run["in_qpv"].isna().to_numpy() | run["near_qpv"].isna().to_numpy()
    return ~np.isin(verdict, ["invalide", "qpv"]) & (unknown | (verdict == "indetermine"))


def check(
    lon: float | str,
    lat: float | str | None = None,
    rules: Rules | str | None = None,
    **kwargs: Any,
) -> pd.Series:
    """Classify one place given by WGS84 longitude and latitude, or by its address.

    Parameters
    ----------
    lon : float or str
        Longitude in decimal degrees (longitude first, as on a map: x then y), as a
        number or as typed text (``"1,4020"``, ``"1.4020"``); or, alone, what
        ``territoires check`` reads: a point (``"1,4020 43,5750"``, or ``"43.5750,
        1.4020"`` latitude first as copied from a web map, see
        :func:`territoires.places.read_place`) or else a postal address (``"12 rue de
        Metz 31000 Toulouse"``), geocoded with one request (see
        :mod:`territoires.geocode`).
    lat : float or str, optional
        Latitude in decimal degrees, number or text; omitted with a point typed in one
        text or an address.
    rules : Rules or str, optional
        Rule set or preset name.
    **kwargs
        Passed to :func:`classify` (``data_dir``, ``ref``, ``min_score``, ``offline``,
        ``precision``, ``qpv_vintages``).

    Returns
    -------
    pandas.Series
        The result row: ``verdict``, ``motif``, ``qpv_code``, ``distance_qpv_m``… and,
        for an address, ``adresse`` and the ``geocodage_*`` columns.

    Raises
    ------
    InputError
        When a longitude is given without latitude, or a coordinate is not a number
        of degrees (an address given with a latitude, ``"abc"``, a list), or a text
        meant as coordinates cannot be read (``"1.4020"`` alone, ``"abc 43.5"``, degrees
        minutes seconds), or ``precision`` is not a number of metres ≥ 0.

    Notes
    -----
    The motifs of an invalid place speak of the place, not of a file: no line number,
    no advice to correct a file or to give ``--crs``.

    Examples
    --------
    >>> check(1.4442, 43.6047)["verdict"]  # doctest: +SKIP
    'non_eligible'
    >>> check("1 place du Capitole 31000 Toulouse")["geocodage_type"]  # doctest: +SKIP
    'housenumber'
    """
    if isinstance(lon, str) and lat is None:
        try:  # a point typed as at the command line: "1,4020 43,5750", "43.5750, 1.4020"
            place = places.read_place(lon)
        except ValueError as error:
            raise InputError(str(error)) from None
        if isinstance(place, str):
            table = pd.DataFrame({"adresse": [place]})
        else:
            lon, lat = place
    elif lat is None:
        raise InputError(f"longitude {lon!r} sans latitude : donnez les deux, ou une adresse")
    if lat is not None:
        try:
            lon, lat = places.parse_lon_lat(lon, lat)
        except ValueError as error:
            raise InputError(str(error)) from None
        table = pd.DataFrame({"lon": [lon], "lat": [lat]})
    result = classify(table, rules, **kwargs)
    row = result.iloc[0].drop(labels="geometry")
    for label in row.index[row.index.str.startswith("motif")]:  # no file, no line, no --crs
        row[label] = places.point_wording(row[label])
    row.attrs = result.attrs
    return row
