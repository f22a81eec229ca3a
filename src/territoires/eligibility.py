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
    data_dir: Path | None = None,
    ref: Reference | None = None,
    progress: bool = False,
    chunk_size: int = CHUNK_SIZE,
    workers: int | None = None,
) -> gpd.GeoDataFrame:
    """Classify places: in or near a QPV, outside large urban centres, with reasons.

    Parameters
    ----------
    source : path, pandas.DataFrame or geopandas.GeoDataFrame
        Places: a CSV/XLSX/GeoJSON/GPKG file, a table with longitude/latitude (or
        projected x/y with ``input_crs``) columns, or point geometries.
        A dask (geo)DataFrame is classified partition by partition with the same
        results (see :func:`territoires.distributed.classify_dask`) and a lazy
        ``dask_geopandas.GeoDataFrame`` is returned.
    rules : Rules or str, optional
        Rule set or preset name; defaults to ``"fabriques-2019"``.
    lon, lat : str, optional
        Coordinate column names when they cannot be detected.
    input_crs : str or int, optional
        CRS of x/y columns (e.g. 2154).
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

    Returns
    -------
    geopandas.GeoDataFrame
        Every input row, in input order and with the input index and columns (an input
        column named like an output column gets the suffix :data:`INPUT_SUFFIX`), plus
        :data:`OUTPUT_COLUMNS`; point geometry in EPSG:4326 (``None`` when invalid).
        ``attrs["regles"]`` describes the rules, ``attrs["sources"]`` the data files
        and vintages, ``attrs["verdicts"]`` the count per verdict.
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
    frame = places.read_places(source, lon=lon, lat=lat, crs=input_crs, geometry=False)
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
        "regles": ref.rules.describe(),
        "sources": ref.sources,
        "verdicts": {key: int(value) for key, value in out["verdict"].value_counts().items()},
    }
    return out


def check(lon: float, lat: float, rules: Rules | str | None = None, **kwargs: Any) -> pd.Series:
    """Classify one place given by WGS84 longitude and latitude.

    Parameters
    ----------
    lon, lat : float
        Decimal degrees (longitude first, as on a map: x then y).
    rules : Rules or str, optional
        Rule set or preset name.
    **kwargs
        Passed to :func:`classify` (``data_dir``, ``ref``).

    Returns
    -------
    pandas.Series
        The result row: ``verdict``, ``motif``, ``qpv_code``, ``distance_qpv_m``…

    Examples
    --------
    >>> check(1.4442, 43.6047)["verdict"]  # doctest: +SKIP
    'non_eligible'
    """
    table = pd.DataFrame({"lon": [lon], "lat": [lat]})
    result = classify(table, rules, **kwargs)
    row = result.iloc[0].drop(labels="geometry")
    row.attrs = result.attrs
    return row
