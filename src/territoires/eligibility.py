"""Decide, for one place or millions, whether a tiers-lieu is eligible.

The public entry points: :func:`classify` reads the places (file, DataFrame or
GeoDataFrame, see :mod:`territoires.places`) and classifies them in parallel chunks
with the spatial engine (:mod:`territoires.engine`), or hands a dask DataFrame to
:mod:`territoires.distributed`; :func:`check` answers for one point. Every input row
comes out, in input order, with a verdict and a French motif (:mod:`territoires.motifs`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import places
from ._errors import InputError
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
    "CHUNK_SIZE",
    "COMMUNE_TOLERANCE_M",
    "INPUT_SUFFIX",
    "OUTPUT_COLUMNS",
    "Reference",
    "check",
    "classify",
    "classify_frame",
    "reference",
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
        Show a progress bar (one step per chunk of ``chunk_size`` rows).
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

    Returns
    -------
    geopandas.GeoDataFrame
        Every input row, in input order and with the input index and columns (an input
        column named like an output column gets the suffix :data:`INPUT_SUFFIX`), plus
        :data:`OUTPUT_COLUMNS`; point geometry in EPSG:4326 (``None`` when invalid).
        ``attrs["regles"]`` describes the rules, ``attrs["sources"]`` the data files
        and vintages, ``attrs["verdicts"]`` the count per verdict and, when addresses
        were geocoded, ``attrs["geocodage"]`` the geocoder, the dates of its answers and
        the requests sent; ``attrs["lignes"]`` the input line of each row
        (:func:`territoires.places.lines`), which names unnamed places in maps and reports.
    """
    if hasattr(source, "__dask_graph__"):  # a dask (geo)DataFrame: see territoires.distributed
        if ref is not None:
            raise InputError(
                "ref= n'est pas pris en charge avec un DataFrame dask : passez rules= et data_dir="
            )
        from .distributed import classify_dask

        return classify_dask(
            source, rules, lon=lon, lat=lat, input_crs=input_crs, data_dir=data_dir
        )
    frame = places.read_places(
        source,
        lon=lon,
        lat=lat,
        crs=input_crs,
        sheet=sheet,
        geometry=False,
        min_score=min_score,
        offline=offline,
    )
    if ref is None:
        chosen = preset(rules) if isinstance(rules, str) else rules
        ref = reference(chosen, data_dir)
    numbers = places.lines(frame)
    chunks = [
        (
            frame.iloc[start : start + chunk_size],
            None if numbers is None else numbers[start : start + chunk_size],
        )
        for start in range(0, len(frame), chunk_size)
    ]
    with (
        ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool,
        tqdm(total=len(frame), disable=not progress, unit=" lieux", desc="classement") as bar,
    ):

        def run(chunk: tuple[gpd.GeoDataFrame, np.ndarray | None]) -> gpd.GeoDataFrame:
            done = classify_frame(chunk[0], ref, chunk[1])
            bar.update(len(chunk[0]))
            return done

        parts = list(pool.map(run, chunks)) or [classify_frame(frame, ref, numbers)]
    out = pd.concat(parts) if len(parts) > 1 else parts[0]
    out.attrs = {
        **({"lignes": frame.attrs["lignes"]} if "lignes" in frame.attrs else {}),
        "regles": ref.rules.describe(),
        "sources": ref.sources,
        "verdicts": {key: int(value) for key, value in out["verdict"].value_counts().items()},
    }
    if "geocodage" in frame.attrs:
        out.attrs["geocodage"] = frame.attrs["geocodage"]
    return out


def check(
    lon: float | str,
    lat: float | None = None,
    rules: Rules | str | None = None,
    **kwargs: Any,
) -> pd.Series:
    """Classify one place given by WGS84 longitude and latitude, or by its address.

    Parameters
    ----------
    lon : float or str
        Longitude in decimal degrees (longitude first, as on a map: x then y), or a
        postal address (``"12 rue de Metz 31000 Toulouse"``), geocoded with one request
        (see :mod:`territoires.geocode`).
    lat : float, optional
        Latitude in decimal degrees; omitted with an address.
    rules : Rules or str, optional
        Rule set or preset name.
    **kwargs
        Passed to :func:`classify` (``data_dir``, ``ref``, ``min_score``, ``offline``).

    Returns
    -------
    pandas.Series
        The result row: ``verdict``, ``motif``, ``qpv_code``, ``distance_qpv_m``… and,
        for an address, ``adresse`` and the ``geocodage_*`` columns.

    Raises
    ------
    InputError
        When an address is given with a latitude, or coordinates without one.

    Examples
    --------
    >>> check(1.4442, 43.6047)["verdict"]  # doctest: +SKIP
    'non_eligible'
    >>> check("1 place du Capitole 31000 Toulouse")["geocodage_type"]  # doctest: +SKIP
    'housenumber'
    """
    if isinstance(lon, str):
        if lat is not None:
            raise InputError(
                f"adresse {lon!r} suivie d'une latitude ({lat!r}) : donnez une adresse seule, "
                "ou une longitude et une latitude"
            )
        table = pd.DataFrame({"adresse": [lon]})
    elif lat is None:
        raise InputError(f"longitude {lon!r} sans latitude : donnez les deux, ou une adresse")
    else:
        table = pd.DataFrame({"lon": [lon], "lat": [lat]})
    result = classify(table, rules, **kwargs)
    row = result.iloc[0].drop(labels="geometry")
    row.attrs = result.attrs
    return row
