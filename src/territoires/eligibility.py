"""Decide, for one place or millions, whether a tiers-lieu is eligible.

``classify`` reads the places (file, DataFrame or GeoDataFrame, see
:mod:`territoires.places`), routes each point to its territory, projects it to the
territory's legal metric CRS and answers, with shapely STRtree bulk queries and no
Python loop over rows: which QPV contain it, how far the nearest QPV is, which commune
it lies in and how that commune is classified, then a verdict by precedence and a French
``motif`` giving the figures used. Every input row comes out, in input order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import Transformer

from . import crs, loaders, places
from .rules import VERDICTS, Rules, decide, preset

#: A point outside every (simplified) commune boundary but closer than this to one is
#: attached to the nearest commune, with a note in the motif: published boundaries are
#: generalised, so harbours and shore points may fall just outside them.
COMMUNE_TOLERANCE_M: float = 1000.0

#: Columns added by :func:`classify`, in order, before the geometry.
OUTPUT_COLUMNS = [
    "lon",
    "lat",
    "territoire",
    "qpv_code",
    "qpv_nom",
    "in_qpv",
    "distance_qpv_m",
    "nearest_qpv_code",
    "near_qpv",
    "code_insee",
    "commune",
    "dep",
    "reg",
    "densite7",
    "cateaav2020",
    "hors_grands_centres_urbains",
    "verdict",
    "motif",
]

_STR = pd.StringDtype("pyarrow")


@dataclass
class _Layer:
    """Reference polygons of one territory, projected and indexed."""

    rows: np.ndarray  # positions in the reference table
    tree: shapely.STRtree


@dataclass
class Reference:
    """QPV and communes prepared for classification, one STRtree per territory.

    Built once per rule set and reused (also broadcast once to every partition by the
    dask backend).

    Attributes
    ----------
    rules : Rules
        Rules the reference was prepared for.
    qpv : pandas.DataFrame
        QPV attributes (``code_qpv``, ``nom_qpv``, ``dep``), positional.
    communes : pandas.DataFrame
        Commune attributes plus ``hors_gcu`` and ``raison_urbaine`` from the urban rule.
    qpv_departements : frozenset of str or None
        Départements the QPV layer covers; ``None`` for the whole of France.
    sources : list of dict
        Provenance of every file read.
    """

    rules: Rules
    qpv: pd.DataFrame
    communes: pd.DataFrame
    qpv_departements: frozenset[str] | None
    sources: list[dict[str, Any]]
    qpv_layers: dict[str, _Layer] = field(repr=False)
    commune_layers: dict[str, _Layer] = field(repr=False)

    def __post_init__(self) -> None:
        """Column arrays taken per point, so that classification never loops in Python."""
        self.qpv_codes = self.qpv["code_qpv"].to_numpy(dtype=object)
        self.qpv_names = dict(
            zip(self.qpv["code_qpv"], self.qpv["nom_qpv"].fillna(""), strict=True)
        )
        self.qpv_text = {c: _text(self.qpv[c]) for c in ("code_qpv", "nom_qpv")}
        communes = self.communes
        self.commune_qpv_covered = (
            np.ones(len(communes), dtype=bool)
            if self.qpv_departements is None
            else communes["dep"].isin(self.qpv_departements).to_numpy()
        )
        self.commune_text = {
            c: _text(communes[c]) for c in ("code_insee", "nom", "dep", "reg", "raison_urbaine")
        }
        self.commune_outside = communes["hors_gcu"].to_numpy(dtype=object, na_value=None)
        self.commune_densite7 = communes["densite7"].to_numpy(dtype=object, na_value=None)
        self.commune_cateaav = communes["cateaav2020"].to_numpy(dtype=object, na_value=None)

    @classmethod
    def build(cls, rules: Rules, qpv: gpd.GeoDataFrame, communes: gpd.GeoDataFrame) -> Reference:
        """Prepare loaded layers (EPSG:4326 with a ``dep`` column) for ``rules``."""
        outside, reason = rules.urban.evaluate(communes)
        table = pd.DataFrame(communes.drop(columns="geometry")).reset_index(drop=True)
        table["hors_gcu"] = outside.to_numpy()
        table["raison_urbaine"] = reason.to_numpy()
        covered = None
        for source in qpv.attrs.get("sources", []):
            if source.get("departements"):
                covered = frozenset(source["departements"])
        return cls(
            rules=rules,
            qpv=pd.DataFrame(qpv.drop(columns="geometry")).reset_index(drop=True),
            communes=table,
            qpv_departements=covered,
            sources=qpv.attrs.get("sources", []) + communes.attrs.get("sources", []),
            qpv_layers=_layers(qpv),
            commune_layers=_layers(communes),
        )


def _layers(frame: gpd.GeoDataFrame) -> dict[str, _Layer]:
    """Project each territory's polygons to its metric CRS and index them."""
    names = crs.territory_names(frame["dep"].astype(str).to_numpy())
    layers = {}
    for name in np.unique(names):
        rows = np.flatnonzero(names == name)
        geoms = crs.to_metric(frame.iloc[rows], name).geometry.to_numpy()
        layers[name] = _Layer(rows=rows, tree=shapely.STRtree(geoms))
    return layers


@lru_cache(maxsize=4)
def _cached_reference(rules: Rules, data_dir: str | None) -> Reference:
    folder = Path(data_dir) if data_dir else None
    return Reference.build(
        rules,
        loaders.load_qpv(rules.qpv_vintage, data_dir=folder),
        loaders.load_communes(data_dir=folder),
    )


def reference(rules: Rules | None = None, data_dir: Path | None = None) -> Reference:
    """Return the prepared reference layers for ``rules`` (cached per rule set).

    Parameters
    ----------
    rules : Rules, optional
        Defaults to :func:`territoires.rules.preset`.
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :func:`territoires.settings.data_dir`.
    """
    return _cached_reference(rules or preset(), str(data_dir) if data_dir else None)


@lru_cache(maxsize=8)
def _transformer(territory: str) -> Transformer:
    return Transformer.from_crs(crs.GEOGRAPHIC, crs.territory(territory).epsg, always_xy=True)


def _project(lon: np.ndarray, lat: np.ndarray, territory: str) -> np.ndarray:
    x, y = _transformer(territory).transform(lon, lat)
    return shapely.points(x, y)


def _find_communes(points: np.ndarray, layer: _Layer | None) -> tuple[np.ndarray, np.ndarray]:
    """Commune row of each point (-1 if none) and its distance to the commune (0 inside)."""
    commune = np.full(len(points), -1)
    gap = np.zeros(len(points))
    if layer is None:
        return commune, gap
    hit_point, hit_poly = layer.tree.query(points, predicate="intersects")
    first = np.ones(len(hit_point), dtype=bool)  # hits come sorted by point
    first[1:] = hit_point[1:] != hit_point[:-1]
    commune[hit_point[first]] = layer.rows[hit_poly[first]]
    missing = np.flatnonzero(commune < 0)
    if len(missing):
        (near_point, near_poly), distance = layer.tree.query_nearest(
            points[missing],
            max_distance=COMMUNE_TOLERANCE_M,
            return_distance=True,
            all_matches=False,
        )
        commune[missing[near_point]] = layer.rows[near_poly]
        gap[missing[near_point]] = distance
    return commune, gap


def _find_qpv(
    points: np.ndarray, layer: _Layer | None, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """QPV containing each point and nearest QPV with its distance.

    Returns
    -------
    containing : numpy.ndarray of object
        ``;``-joined codes of the QPV containing (or touching) the point, else None.
    nearest : numpy.ndarray of int
        Row of the nearest QPV, -1 when the territory has none.
    distance : numpy.ndarray of float
        Metres to the nearest QPV boundary, 0 inside, NaN when the territory has none.
    """
    n = len(points)
    containing = np.full(n, None, dtype=object)
    nearest = np.full(n, -1)
    distance = np.full(n, np.nan)
    if layer is None or n == 0:
        return containing, nearest, distance
    hit_point, hit_poly = layer.tree.query(points, predicate="intersects")
    if len(hit_point):
        joined = (
            pd.Series(codes[layer.rows[hit_poly]])
            .groupby(hit_point)
            .agg(lambda group: ";".join(sorted(group)))
        )
        containing[joined.index.to_numpy()] = joined.to_numpy()
    (near_point, near_poly), found = layer.tree.query_nearest(
        points, return_distance=True, all_matches=False
    )
    nearest[near_point] = layer.rows[near_poly]
    distance[near_point] = found
    return containing, nearest, distance


def _text(values: Any) -> pa.Array:
    """Arrow string array from a pandas/numpy column (None/NA → null)."""
    if isinstance(values, pd.Series):
        values = values.astype(_STR).array
    if isinstance(values, pd.arrays.ArrowStringArray):
        return pa.chunked_array(values._pa_array).combine_chunks().cast(pa.string())
    return pa.array(values, type=pa.string(), from_pandas=True)


def _series(values: pa.Array, index: pd.Index) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(values), index=index)


def _join(*parts: Any) -> pa.Array:
    """Concatenate arrow strings and str scalars element-wise (null if any part is null)."""
    return pc.binary_join_element_wise(*parts, "")


def _distance_text(metres: np.ndarray) -> pa.Array:
    """``230 m`` below one kilometre, ``12,3 km`` above."""
    below = _join(
        pc.cast(pa.array(np.round(metres), from_pandas=True).cast(pa.int64()), pa.string()), " m"
    )
    km = pc.replace_substring(pc.cast(pa.array(np.round(metres / 1000, 1)), pa.string()), ".", ",")
    return pc.if_else(pa.array(metres < 1000), below, _join(km, " km"))


def _motifs(
    verdict: np.ndarray,
    parts: dict[str, Any],
    ref: Reference,
) -> pa.Array:
    """Compose the French motif of each row from its parts, with arrow string kernels."""
    rules = ref.rules
    geography = f"géographie prioritaire {rules.qpv_vintage}"
    threshold = f"{rules.near_distance_m:g} m"
    nearest = _join(
        "à ",
        _distance_text(parts["distance"]),
        " du QPV le plus proche ",
        parts["nearest_code"],
        " « ",
        parts["nearest_name"],
        " »",
    )
    qpv_part = pc.if_else(
        pa.array(parts["distance"] <= rules.near_distance_m),
        _join(nearest, f", à moins de {threshold} : proximité immédiate ({geography})"),
        _join(nearest, f", au-delà de {threshold} ({geography})"),
    )
    qpv_part = pc.if_else(
        parts["in_qpv"],
        _join("dans le QPV ", parts["qpv_code"], " « ", parts["qpv_nom"], f" » ({geography})"),
        qpv_part,
    )
    qpv_part = pc.if_else(
        pa.array(np.isnan(parts["distance"])),
        f"aucun QPV {rules.qpv_vintage} dans ce territoire",
        qpv_part,
    )
    qpv_part = pc.if_else(
        parts["checked"],
        qpv_part,
        _join(
            "QPV non vérifiable : département ",
            parts["dep"],
            f" absent de la couche QPV {rules.qpv_vintage} chargée (extrait régional)",
        ),
    )
    commune_part = pc.if_else(
        pa.array(parts["gap"] > 0),
        _join(
            parts["raison"],
            " ; point à ",
            _distance_text(parts["gap"]),
            " des contours communaux simplifiés, rattaché à la commune la plus proche",
        ),
        parts["raison"],
    )
    labels = pa.array(list(VERDICTS.values())).take(
        pa.array(pd.Categorical(verdict, categories=list(VERDICTS)).codes)
    )
    motif = _join(labels, " : ", qpv_part, " ; ", commune_part, ".")
    return pc.if_else(
        pa.array(verdict == "invalide"), _join(labels, " : ", parts["probleme"]), motif
    )


def classify_frame(frame: gpd.GeoDataFrame, ref: Reference) -> gpd.GeoDataFrame:
    """Classify places already read by :func:`territoires.places.read_places`.

    This is the pure core of :func:`classify`, applied per partition by the dask
    backend.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        Output of ``read_places`` (``lon``, ``lat``, ``probleme``, ``territoire``).
    ref : Reference
        Prepared reference layers.

    Returns
    -------
    geopandas.GeoDataFrame
        ``frame`` with :data:`OUTPUT_COLUMNS` (``probleme`` folded into ``motif``).
    """
    n = len(frame)
    index = frame.index
    valid = frame["probleme"].isna().to_numpy(copy=True)
    territory = frame["territoire"].to_numpy(dtype=object)
    lon = frame["lon"].to_numpy(dtype=float)
    lat = frame["lat"].to_numpy(dtype=float)
    commune = np.full(n, -1)
    gap = np.zeros(n)
    containing = np.full(n, None, dtype=object)
    nearest = np.full(n, -1)
    distance = np.full(n, np.nan)
    checked = np.zeros(n, dtype=bool)
    for name in np.unique(territory[valid]):
        rows = np.flatnonzero(valid & (territory == name))
        points = _project(lon[rows], lat[rows], name)
        commune[rows], gap[rows] = _find_communes(points, ref.commune_layers.get(name))
        located = commune[rows] >= 0
        located[located] = ref.commune_qpv_covered[commune[rows][located]]
        subset = rows[located]
        checked[subset] = True
        containing[subset], nearest[subset], distance[subset] = _find_qpv(
            points[located], ref.qpv_layers.get(name), ref.qpv_codes
        )

    problems = _text(frame["probleme"])
    outside_france = valid & (commune < 0)
    if outside_france.any():
        where = _join(
            "point hors du territoire communal français (mer, pays voisin) : lon=",
            pc.cast(pa.array(np.round(lon, 5)), pa.string()),
            ", lat=",
            pc.cast(pa.array(np.round(lat, 5)), pa.string()),
        )
        problems = pc.if_else(pa.array(outside_france), where, problems)
    valid &= ~outside_france
    checked &= valid

    take = pa.array(np.where(valid, commune, -1), mask=~valid)
    columns = {name: values.take(take) for name, values in ref.commune_text.items()}
    in_qpv = pd.array(pd.notna(containing), dtype="boolean")
    in_qpv[~checked] = pd.NA
    near = pd.array(distance <= ref.rules.near_distance_m, dtype="boolean")
    near[~checked | np.isnan(distance)] = pd.NA
    near[checked & np.isnan(distance)] = False
    outside_urban = pd.array(ref.commune_outside[np.maximum(commune, 0)], dtype="boolean")
    outside_urban[~valid] = pd.NA
    nearest_take = pa.array(nearest, mask=nearest < 0)
    qpv_code = pa.array(containing, type=pa.string(), from_pandas=True)
    qpv_nom = _text(
        pd.Series(containing)
        .dropna()
        .map(lambda codes: " ; ".join(ref.qpv_names[c] for c in codes.split(";")))
        .reindex(range(n))
    )
    int_column = lambda values: pd.array(values, dtype="Int64")  # noqa: E731
    densite7 = int_column(ref.commune_densite7[np.maximum(commune, 0)])
    cateaav = int_column(ref.commune_cateaav[np.maximum(commune, 0)])
    densite7[~valid] = pd.NA
    cateaav[~valid] = pd.NA
    verdict = decide(valid, in_qpv, near, outside_urban)
    motif = _motifs(
        verdict,
        {
            "distance": distance,
            "gap": gap,
            "checked": pa.array(checked),
            "in_qpv": pa.array(in_qpv.fillna(False).to_numpy(dtype=bool)),
            "qpv_code": qpv_code,
            "qpv_nom": qpv_nom,
            "nearest_code": ref.qpv_text["code_qpv"].take(nearest_take),
            "nearest_name": ref.qpv_text["nom_qpv"].take(nearest_take),
            "dep": pc.fill_null(columns["dep"], "?"),
            "raison": pc.fill_null(columns["raison_urbaine"], "commune inconnue"),
            "probleme": problems,
        },
        ref,
    )
    result = pd.DataFrame(
        {
            "lon": frame["lon"],
            "lat": frame["lat"],
            "territoire": pd.Series(np.where(valid, territory, ""), index=index, dtype=_STR),
            "qpv_code": _series(qpv_code, index),
            "qpv_nom": _series(qpv_nom, index),
            "in_qpv": pd.Series(in_qpv, index=index),
            "distance_qpv_m": pd.Series(
                np.round(np.where(checked, distance, np.nan), 1), index=index
            ),
            "nearest_qpv_code": _series(ref.qpv_text["code_qpv"].take(nearest_take), index),
            "near_qpv": pd.Series(near, index=index),
            "code_insee": _series(columns["code_insee"], index),
            "commune": _series(columns["nom"], index),
            "dep": _series(columns["dep"], index),
            "reg": _series(columns["reg"], index),
            "densite7": pd.Series(densite7, index=index),
            "cateaav2020": pd.Series(cateaav, index=index),
            "hors_grands_centres_urbains": pd.Series(outside_urban, index=index),
            "verdict": pd.Series(verdict, index=index, dtype=_STR),
            "motif": _series(motif, index),
        },
        index=index,
    )
    user = frame.drop(columns=["lon", "lat", "probleme", "territoire", "geometry"])
    user = user.drop(columns=[c for c in OUTPUT_COLUMNS if c in user.columns])
    out = pd.concat([user, result], axis=1)
    geometry = frame.geometry.where(valid, None)
    return gpd.GeoDataFrame(out, geometry=geometry, crs=crs.GEOGRAPHIC)


def classify(
    source: Any,
    rules: Rules | str | None = None,
    *,
    lon: str | None = None,
    lat: str | None = None,
    input_crs: str | int | None = None,
    data_dir: Path | None = None,
    ref: Reference | None = None,
) -> gpd.GeoDataFrame:
    """Classify places: in or near a QPV, outside large urban centres, with reasons.

    Parameters
    ----------
    source : path, pandas.DataFrame or geopandas.GeoDataFrame
        Places: a CSV/XLSX/GeoJSON/GPKG file, a table with longitude/latitude (or
        projected x/y with ``input_crs``) columns, or point geometries.
    rules : Rules or str, optional
        Rule set or preset name; defaults to ``"fabriques-2019"``.
    lon, lat : str, optional
        Coordinate column names when they cannot be detected.
    input_crs : str or int, optional
        CRS of x/y columns (e.g. 2154).
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :func:`territoires.settings.data_dir`.
    ref : Reference, optional
        Prepared reference layers (e.g. built from your own QPV/commune frames with
        :meth:`Reference.build`); ``rules`` is then taken from it.

    Returns
    -------
    geopandas.GeoDataFrame
        Every input row, in input order and with the input index and columns, plus
        :data:`OUTPUT_COLUMNS`; point geometry in EPSG:4326 (``None`` when invalid).
        ``attrs["regles"]`` describes the rules, ``attrs["sources"]`` the data files
        and vintages, ``attrs["verdicts"]`` the count per verdict.
    """
    if ref is None:
        chosen = preset(rules) if isinstance(rules, str) else rules
        ref = reference(chosen, data_dir)
    frame = places.read_places(source, lon=lon, lat=lat, crs=input_crs)
    out = classify_frame(frame, ref)
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
