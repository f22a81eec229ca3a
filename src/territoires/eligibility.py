"""Decide, for one place or millions, whether a tiers-lieu is eligible.

``classify`` reads the places (file, DataFrame or GeoDataFrame, see
:mod:`territoires.places`), routes each point to its territory, projects it to the
territory's legal metric CRS and answers, with shapely STRtree bulk queries and no
Python loop over rows: which QPV contain it, how far the nearest QPV is, which commune
it lies in and how that commune is classified, then a verdict by precedence and a French
``motif`` giving the figures used. Every input row comes out, in input order.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree
from tqdm.auto import tqdm

from . import crs, loaders, places
from .rules import VERDICTS, Rules, decide, preset

#: A point outside every (simplified) commune boundary but closer than this to one is
#: attached to the nearest commune, with a note in the motif: published boundaries are
#: generalised, so harbours and shore points may fall just outside them.
COMMUNE_TOLERANCE_M: float = 1000.0

#: Rows classified together by one thread in :func:`classify`.
CHUNK_SIZE: int = 100_000

#: Suffix given to an input column that bears the name of an output column (e.g. an
#: input ``commune`` column comes out as ``commune_entree``): nothing is dropped.
INPUT_SUFFIX = "_entree"

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
    """Reference polygons of one territory, indexed for containment and for distances.

    Containment is tested on the published EPSG:4326 polygons, against the points as
    given. Distances are measured in the territory's legal metric CRS. To find the
    nearest polygon quickly, each polygon is summarised by its minimum bounding circle
    (centre in a k-d tree, radius): ``|p - c| - r`` and ``|p - c| + r`` bound its
    distance from below and above, so exact distances are computed only for the few
    polygons that can still be the nearest (see :func:`_nearest`).
    """

    rows: np.ndarray  # positions in the reference table
    tree: shapely.STRtree  # EPSG:4326 polygons
    metric: shapely.STRtree  # same polygons in the metric CRS

    @classmethod
    def build(cls, frame: gpd.GeoDataFrame, rows: np.ndarray, territory: str) -> _Layer:
        """Index the polygons of ``frame`` (EPSG:4326) at reference positions ``rows``."""
        return cls(
            rows=rows,
            tree=shapely.STRtree(frame.geometry.to_numpy()),
            metric=shapely.STRtree(crs.to_metric(frame, territory).geometry.to_numpy()),
        )

    @cached_property
    def radii(self) -> np.ndarray:
        """Radii of the polygons' minimum bounding circles (metric).

        Computed on first use: only layers searched for their nearest polygon (the QPV)
        need the circles, not the communes.
        """
        return shapely.minimum_bounding_radius(self.metric.geometries)

    @cached_property
    def centres(self) -> cKDTree:
        """k-d tree of the centres of the polygons' minimum bounding circles (metric)."""
        centres = shapely.centroid(shapely.minimum_bounding_circle(self.metric.geometries))
        return cKDTree(np.column_stack([shapely.get_x(centres), shapely.get_y(centres)]))


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
        self.commune_reasons = pa.concat_arrays(
            [
                _join(" ; ", _text(communes["raison_urbaine"]), ".").cast(pa.large_string()),
                pa.array([""], type=pa.large_string()),
            ]
        )
        self.commune_text = {c: _text(communes[c]) for c in ("code_insee", "nom", "dep", "reg")}
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
        covered = loaders.qpv_departements(qpv)
        return cls(
            rules=rules,
            qpv=pd.DataFrame(qpv.drop(columns="geometry")).reset_index(drop=True),
            communes=table,
            qpv_departements=None if covered is None else frozenset(covered),
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
        layers[name] = _Layer.build(frame.iloc[rows], rows, name)
    return layers


@lru_cache(maxsize=2)
def _loaded(qpv_vintage: int, data_dir: str | None) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """QPV and communes as loaded, shared by every rule set of the same QPV vintage."""
    folder = Path(data_dir) if data_dir else None
    return (
        loaders.load_qpv(qpv_vintage, data_dir=folder),
        loaders.load_communes(data_dir=folder),
    )


@lru_cache(maxsize=8)
def _cached_reference(rules: Rules, data_dir: str | None) -> Reference:
    return Reference.build(rules, *_loaded(rules.qpv_vintage, data_dir))


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


def _metric_points(lon: np.ndarray, lat: np.ndarray, territory: str) -> np.ndarray:
    x, y = _transformer(territory).transform(lon, lat)
    return shapely.points(x, y)


def _first_hit(n: int, hit_point: np.ndarray, hit_rows: np.ndarray) -> np.ndarray:
    """Smallest reference row hit by each point, -1 for none (independent of hit order)."""
    none = np.iinfo(np.int64).max
    found = np.full(n, none)
    np.minimum.at(found, hit_point, hit_rows)
    return np.where(found == none, -1, found)


def _find_communes(
    points: np.ndarray, lon: np.ndarray, lat: np.ndarray, layer: _Layer | None, territory: str
) -> tuple[np.ndarray, np.ndarray]:
    """Commune row of each point (-1 if none) and its distance to the commune (0 inside).

    Parameters
    ----------
    points : numpy.ndarray of shapely.Point
        The places in EPSG:4326.
    lon, lat : numpy.ndarray
        Their coordinates, projected only for the few points outside every commune.
    """
    commune = np.full(len(points), -1)
    gap = np.zeros(len(points))
    if layer is None:
        return commune, gap
    # Query each (prepared) commune polygon against a tree of the points: far faster than
    # testing every point against unprepared polygons. On a shared boundary the commune
    # listed first in the reference wins.
    hit_poly, hit_point = shapely.STRtree(points).query(
        layer.tree.geometries, predicate="intersects"
    )
    commune = _first_hit(len(points), hit_point, layer.rows[hit_poly])
    missing = np.flatnonzero(commune < 0)
    if len(missing):
        (near_point, near_poly), distance = layer.metric.query_nearest(
            _metric_points(lon[missing], lat[missing], territory),
            max_distance=COMMUNE_TOLERANCE_M,
            return_distance=True,
            all_matches=False,
        )
        commune[missing[near_point]] = layer.rows[near_poly]
        gap[missing[near_point]] = distance
    return commune, gap


#: Candidate polygons examined per point by :func:`_nearest` before falling back.
NEAREST_CANDIDATES: int = 8


def _nearest(layer: _Layer, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact nearest polygon of each metric point and its distance, vectorised.

    For the :data:`NEAREST_CANDIDATES` polygons whose bounding-circle centres are
    nearest, the distance lies in ``[|p-c| - r, |p-c| + r]``; exact distances are computed
    only for candidates whose lower bound does not exceed the smallest upper bound.
    Polygons beyond the candidates are at least ``d_k - max(r)`` away: when that bound
    does not prove the answer, the point falls back to an exhaustive STRtree search.

    Returns
    -------
    found : numpy.ndarray of int
        Position of the nearest polygon in the layer.
    distance : numpy.ndarray of float
        Metres to it (0 when inside).
    """
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    k = min(NEAREST_CANDIDATES, len(layer.radii))
    centre_distance, candidate = layer.centres.query(
        np.column_stack([x, y]), k=list(range(1, k + 1))
    )
    radius = layer.radii[candidate]
    upper = (centre_distance + radius).min(axis=1)
    point, slot = np.nonzero(centre_distance - radius <= upper[:, None])
    polygon = candidate[point, slot]
    exact = shapely.distance(shapely.points(x[point], y[point]), layer.metric.geometries[polygon])
    distance = np.full(n, np.inf)
    np.minimum.at(distance, point, exact)
    found = np.full(n, -1)
    best = exact == distance[point]
    found[point[best]] = polygon[best]
    if k < len(layer.radii):
        unproven = np.flatnonzero(centre_distance[:, -1] - layer.radii.max() < distance)
        (hit, polygon), exact = layer.metric.query_nearest(
            shapely.points(x[unproven], y[unproven]), return_distance=True, all_matches=False
        )
        found[unproven[hit]] = polygon
        distance[unproven[hit]] = exact
    return found, distance


def _find_qpv(
    points: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    layer: _Layer | None,
    territory: str,
    codes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """QPV containing each point and nearest QPV with its distance in metres.

    Parameters
    ----------
    points : numpy.ndarray of shapely.Point
        The places in EPSG:4326 (containment is tested on the published polygons).
    lon, lat : numpy.ndarray
        Their coordinates, projected to the territory's metric CRS for distances.
    layer : _Layer or None
        The territory's QPV.
    territory : str
        Territory name.
    codes : numpy.ndarray
        QPV codes by reference row.

    Returns
    -------
    containing : numpy.ndarray of object
        ``;``-joined codes of the QPV containing (or touching) the point, else None.
    nearest : numpy.ndarray of int
        Row of the nearest QPV (the first containing one when inside), -1 if none.
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
    hit_rows = layer.rows[hit_poly]
    outside = np.ones(n, dtype=bool)
    if len(hit_point):
        joined = (
            pd.Series(codes[hit_rows]).groupby(hit_point).agg(lambda group: ";".join(sorted(group)))
        )
        containing[joined.index.to_numpy()] = joined.to_numpy()
        inside = _first_hit(n, hit_point, hit_rows)
        outside = inside < 0
        nearest[~outside] = inside[~outside]
        distance[~outside] = 0.0
    far = np.flatnonzero(outside)
    x, y = _transformer(territory).transform(lon[far], lat[far])
    found, distance[far] = _nearest(layer, x, y)
    nearest[far] = layer.rows[found]
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
    """Concatenate arrow strings and str scalars element-wise (null if any part is null).

    Parts are brought to one string type (``large_string`` as soon as one part is).
    """
    large = any(getattr(part, "type", None) == pa.large_string() for part in parts)
    kind = pa.large_string() if large else pa.string()
    same = [pa.scalar(part, kind) if isinstance(part, str) else part.cast(kind) for part in parts]
    return pc.binary_join_element_wise(*same, pa.scalar("", kind))


def _distance_text(metres: np.ndarray) -> pa.Array:
    """``230 m`` below one kilometre, ``12,3 km`` above."""
    below = _join(
        pc.cast(pa.array(np.round(metres), from_pandas=True).cast(pa.int64()), pa.string()), " m"
    )
    km = pc.replace_substring(pc.cast(pa.array(np.round(metres / 1000, 1)), pa.string()), ".", ",")
    return pc.if_else(pa.array(metres < 1000), below, _join(km, " km"))


#: Kinds of QPV sentence in a motif, see :func:`_motifs`.
_INVALID, _UNCHECKED, _INSIDE, _NO_QPV, _NEAR, _FAR = range(6)


def _motifs(
    verdict: np.ndarray, sentence: np.ndarray, parts: dict[str, Any], ref: Reference
) -> pa.Array:
    """Compose the French motif of each row, with arrow string kernels.

    Rows are grouped by kind of QPV sentence; each group's sentences are built on the
    group's rows only and put back in row order with one ``take``; the verdict label
    and the commune's reason (prepared once per commune) are then joined to them.

    Parameters
    ----------
    verdict : numpy.ndarray of int
        Position of each row's verdict in :data:`VERDICTS`.
    sentence : numpy.ndarray of int
        Kind of QPV sentence (``_INVALID``…``_FAR``).
    parts : dict
        Per-row ``distance``, ``gap`` (numpy), ``commune``, ``nearest`` (row positions
        in the reference, -1 for none), ``qpv_code``, ``qpv_nom``, ``probleme`` (arrow).
    ref : Reference
    """
    rules = ref.rules
    geography = f"géographie prioritaire {rules.qpv_vintage}"
    threshold = f"{rules.near_distance_m:g} m"
    labels = pa.array(list(VERDICTS.values()))

    def nearest(rows: np.ndarray) -> pa.Array:
        taken = pa.array(parts["nearest"][rows])
        return _join(
            "à ",
            _distance_text(parts["distance"][rows]),
            " du QPV le plus proche ",
            ref.qpv_text["code_qpv"].take(taken),
            " « ",
            ref.qpv_text["nom_qpv"].take(taken),
            " »",
        )

    builders = {
        _UNCHECKED: lambda rows, taken: _join(
            "QPV non vérifiable : département ",
            ref.commune_text["dep"].take(pa.array(parts["commune"][rows])),
            f" absent de la couche QPV {rules.qpv_vintage} chargée (extrait régional)",
        ),
        _INSIDE: lambda rows, taken: _join(
            "dans le QPV ",
            parts["qpv_code"].take(taken),
            " « ",
            parts["qpv_nom"].take(taken),
            f" » ({geography})",
        ),
        _NO_QPV: lambda rows, taken: pa.array(
            [f"aucun QPV {rules.qpv_vintage} dans ce territoire"] * len(rows)
        ),
        _NEAR: lambda rows, taken: _join(
            nearest(rows), f", à moins de {threshold} : proximité immédiate ({geography})"
        ),
        _FAR: lambda rows, taken: _join(nearest(rows), f", au-delà de {threshold} ({geography})"),
    }
    pieces, order = [], []
    for kind in range(_FAR + 1):
        rows = np.flatnonzero(sentence == kind)
        if not len(rows):
            continue
        taken = pa.array(rows)
        if kind == _INVALID:
            piece = parts["probleme"].take(taken)
        else:
            piece = builders[kind](rows, taken)
            gap = parts["gap"][rows]
            if (gap > 0).any():
                note = _join(
                    piece,
                    " ; point à ",
                    _distance_text(gap),
                    " des contours communaux simplifiés, rattaché à la commune la plus proche",
                )
                piece = pc.if_else(pa.array(gap > 0), note, piece)
        pieces.append(piece.cast(pa.large_string()))
        order.append(rows)
    n = len(sentence)
    if not n:
        return pa.array([], type=pa.large_string())
    position = np.empty(n, dtype=np.int64)
    position[np.concatenate(order)] = np.arange(n)
    sentences = pa.concat_arrays(pieces).take(pa.array(position))
    # The commune's reason, with its separators, is taken once per row; invalid rows
    # point past the end, at an empty string.
    commune = np.where(sentence == _INVALID, len(ref.commune_reasons) - 1, parts["commune"])
    return _join(
        labels.take(pa.array(verdict)),
        " : ",
        sentences,
        ref.commune_reasons.take(pa.array(commune)),
    )


def classify_frame(frame: gpd.GeoDataFrame, ref: Reference) -> gpd.GeoDataFrame:
    """Classify places already read by :func:`territoires.places.read_places`.

    This is the pure core of :func:`classify`, applied per partition by the dask
    backend.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        Output of ``read_places`` (``lon``, ``lat``, ``probleme``, ``territoire``); its
        geometry is ignored: points are built from ``lon``/``lat``.
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
    names = [territory.name for territory in crs.TERRITORIES]
    territory = pd.Categorical(frame["territoire"], categories=["", *names]).codes - 1
    lon = frame["lon"].to_numpy(dtype=float)
    lat = frame["lat"].to_numpy(dtype=float)
    points = np.full(n, None, dtype=object)
    points[valid] = shapely.points(lon[valid], lat[valid])
    commune = np.full(n, -1)
    gap = np.zeros(n)
    containing = np.full(n, None, dtype=object)
    nearest = np.full(n, -1)
    distance = np.full(n, np.nan)
    checked = np.zeros(n, dtype=bool)
    for code, name in enumerate(names):
        rows = np.flatnonzero(valid & (territory == code))
        if not len(rows):
            continue
        commune[rows], gap[rows] = _find_communes(
            points[rows], lon[rows], lat[rows], ref.commune_layers.get(name), name
        )
        located = commune[rows] >= 0
        located[located] = ref.commune_qpv_covered[commune[rows][located]]
        subset = rows[located]
        checked[subset] = True
        containing[subset], nearest[subset], distance[subset] = _find_qpv(
            points[subset], lon[subset], lat[subset], ref.qpv_layers.get(name), name, ref.qpv_codes
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
    commune[~valid] = -1
    nearest[~checked] = -1
    distance[~checked] = np.nan

    missing = pa.array(commune, mask=commune < 0)
    columns = {name: values.take(missing) for name, values in ref.commune_text.items()}
    in_qpv = pd.array(pd.notna(containing), dtype="boolean")
    in_qpv[~checked] = pd.NA
    near = pd.array(distance <= ref.rules.near_distance_m, dtype="boolean")
    near[~checked] = pd.NA
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
    densite7 = pd.array(ref.commune_densite7[np.maximum(commune, 0)], dtype="Int64")
    cateaav = pd.array(ref.commune_cateaav[np.maximum(commune, 0)], dtype="Int64")
    densite7[~valid] = pd.NA
    cateaav[~valid] = pd.NA
    verdict = pd.Categorical(
        decide(valid, in_qpv, near, outside_urban), categories=list(VERDICTS)
    ).codes
    sentence = np.select(
        [~valid, ~checked, in_qpv.fillna(False), np.isnan(distance), near.fillna(False)],
        [_INVALID, _UNCHECKED, _INSIDE, _NO_QPV, _NEAR],
        default=_FAR,
    )
    motif = _motifs(
        verdict,
        sentence,
        {
            "distance": distance,
            "gap": gap,
            "commune": commune,
            "nearest": nearest,
            "qpv_code": qpv_code,
            "qpv_nom": qpv_nom,
            "probleme": problems,
        },
        ref,
    )
    result = pd.DataFrame(
        {
            "lon": frame["lon"].where(valid),
            "lat": frame["lat"].where(valid),
            "territoire": _series(
                pa.array(["", *names]).take(pa.array(np.where(valid, territory + 1, 0))), index
            ),
            "qpv_code": _series(qpv_code, index),
            "qpv_nom": _series(qpv_nom, index),
            "in_qpv": pd.Series(in_qpv, index=index),
            "distance_qpv_m": pd.Series(np.round(distance, 1), index=index),
            "nearest_qpv_code": _series(ref.qpv_text["code_qpv"].take(nearest_take), index),
            "near_qpv": pd.Series(near, index=index),
            "code_insee": _series(columns["code_insee"], index),
            "commune": _series(columns["nom"], index),
            "dep": _series(columns["dep"], index),
            "reg": _series(columns["reg"], index),
            "densite7": pd.Series(densite7, index=index),
            "cateaav2020": pd.Series(cateaav, index=index),
            "hors_grands_centres_urbains": pd.Series(outside_urban, index=index),
            "verdict": _series(pa.array(list(VERDICTS)).take(pa.array(verdict)), index),
            "motif": _series(motif, index),
        },
        index=index,
    )
    user = frame.drop(columns=["lon", "lat", "probleme", "territoire", "geometry"])
    user = user.rename(columns={c: f"{c}{INPUT_SUFFIX}" for c in OUTPUT_COLUMNS if c in user})
    out = pd.concat([user, result], axis=1)
    points[~valid] = None
    return gpd.GeoDataFrame(out, geometry=points, crs=crs.GEOGRAPHIC)


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
        Mirror folder; defaults to :func:`territoires.settings.data_dir`.
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
            raise ValueError(
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
    chunks = [frame.iloc[start : start + chunk_size] for start in range(0, len(frame), chunk_size)]
    with (
        ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool,
        tqdm(total=len(frame), disable=not progress, unit=" lieux", desc="classement") as bar,
    ):

        def run(chunk: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
            done = classify_frame(chunk, ref)
            bar.update(len(chunk))
            return done

        parts = list(pool.map(run, chunks)) or [classify_frame(frame, ref)]
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
