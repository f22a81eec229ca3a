"""Coverage of priority neighbourhoods and rural communes by a set of places.

Given places (tiers-lieux, typically the output of ``territoires.classify``), this module
measures how far each QPV and each commune outside large urban centres lies from the
nearest place, counts the places within a few distances and aggregates the result by
département or région; :func:`territoires.export.write_report` writes the report.
Distances are in metres, measured in the legal projected CRS of each territory
(:mod:`territoires.crs`): a polygon only sees the places of its own territory. A QPV
layer may be a regional extract: QPV figures are only reported for the départements it
covers, and are NA (not zero) elsewhere.

Every function but :func:`analyse` is pure: it reads no file, takes what it needs as
arguments, never modifies its inputs, keeps the input's index and row order, and
records its parameters and sources in ``attrs``. :func:`analyse` runs the whole
analysis, reading the reference data it is not given through :mod:`territoires.loaders`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import _progress, crs, french, loaders
from ._errors import ColumnError, DataNotFoundError, DownloadError, InputError, UnknownNameError
from .places import place_labels
from .rules import Rules, preset

#: Default distances, in metres, at which places are counted around each QPV.
DISTANCES_QPV_M: tuple[float, ...] = (500, 1000, 5000)
#: Default distances, in metres, at which places are counted around each commune.
DISTANCES_COMMUNES_M: tuple[float, ...] = (5000, 10000, 20000)
#: Tolerance, in metres, of the simplification of communes before dissolving them.
SIMPLIFICATION_M: float = 200.0
#: Values of ``qpv_donnees`` in aggregates.
QPV_DONNEES_COMPLET = "complet"
QPV_DONNEES_ABSENT = "non couvert par la couche QPV"
#: Aggregation levels: column → name of the outlines (and of the report sheet).
LEVELS: dict[str, str] = {"dep": "departements", "reg": "regions"}
#: Why places are left out of the analysis, by the code counted in ``attrs["lieux_exclus"]``.
EXCLUSION_REASONS: dict[str, str] = {
    "invalide": "verdict « invalide »",
    "sans_geometrie": "sans géométrie",
    "hors_territoire": "hors de tout territoire",
}
_COMMUNE_COLUMNS = ["code_insee", "nom", "dep", "reg", "population", "densite7"]


def _count_column(distance: float) -> str:
    value = int(distance) if float(distance).is_integer() else distance
    return f"nb_lieux_{value}m"


def _check_distances(distances_m: Sequence[float], covered_within_m: float) -> list[float]:
    distances = sorted({float(d) for d in distances_m})
    if not distances or not all(np.isfinite(d) and d > 0 for d in distances):
        raise InputError(f"distances_m={list(distances_m)!r} : attendu des mètres > 0")
    if not np.isfinite(covered_within_m) or covered_within_m < 0:
        raise InputError(f"covered_within_m={covered_within_m!r} : attendu ≥ 0 mètre")
    return distances


def _places(
    places: gpd.GeoDataFrame, name_column: str | None
) -> tuple[gpd.GeoSeries, np.ndarray, np.ndarray, dict]:
    """Select the places to analyse.

    Returns
    -------
    geometry : geopandas.GeoSeries
        Geometries of the places kept, in EPSG:4326.
    territories : numpy.ndarray of str
        Territory name of each place kept.
    labels : numpy.ndarray of str
        Name of each place kept (:func:`territoires.places.place_labels`: its name, else
        ``ligne N``, its line in the input file).
    report : dict
        ``nb_lieux_analyses`` and ``lieux_exclus`` (counts by reason) for ``attrs``.
    """
    geometry, territories, (invalid, missing, outside) = _located(places)
    keep = ~(invalid | missing | outside)
    labels = place_labels(places, name_column)
    report = {
        "nb_lieux_analyses": int(keep.sum()),
        "lieux_exclus": {
            "invalide": int(invalid.sum()),
            "sans_geometrie": int(missing.sum()),
            "hors_territoire": int(outside.sum()),
        },
    }
    return geometry[keep], territories[keep], labels.to_numpy(dtype=object)[keep], report


def _located(
    places: gpd.GeoDataFrame,
) -> tuple[gpd.GeoSeries, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Geometry (EPSG:4326) and territory of each place, and the rows left out.

    Returns
    -------
    geometry : geopandas.GeoSeries
    territories : numpy.ndarray of str
        Territory name of each place, ``""`` outside every territory.
    left_out : tuple of numpy.ndarray of bool
        Rows whose verdict is ``invalide``, rows without geometry, rows outside every
        territory (the reasons of :data:`EXCLUSION_REASONS`, in order).
    """
    if places.crs is None:
        raise InputError("les lieux n'ont pas de CRS déclaré ; il n'est jamais deviné")
    geometry = places.geometry.to_crs(crs.GEOGRAPHIC)
    invalid = (
        places["verdict"].eq("invalide").fillna(False).to_numpy(dtype=bool)
        if "verdict" in places
        else np.zeros(len(places), dtype=bool)
    )
    missing = ~invalid & (geometry.isna() | geometry.is_empty).to_numpy()
    anchors = shapely.point_on_surface(geometry.to_numpy())
    territories = crs.locate(shapely.get_x(anchors), shapely.get_y(anchors))
    outside = ~invalid & ~missing & (territories == "")
    return geometry, territories, (invalid, missing, outside)


def _proximity(
    polygons: gpd.GeoSeries,
    departements: pd.Series,
    places: gpd.GeoSeries,
    place_territories: np.ndarray,
    distances: list[float],
) -> tuple[np.ndarray, np.ndarray, dict[float, np.ndarray]]:
    """Nearest place and number of places within each distance, per polygon.

    Returns
    -------
    distance : numpy.ndarray of float
        Metres from each polygon to its nearest place of the same territory (0 when a
        place lies inside), NaN when its territory has no place.
    nearest : numpy.ndarray of int
        Position of that place in ``places``, -1 when none.
    counts : dict of float to numpy.ndarray of int
        Places within each distance of each polygon.
    """
    size = len(polygons)
    distance = np.full(size, np.nan)
    nearest = np.full(size, -1)
    counts = {d: np.zeros(size, dtype=np.int64) for d in distances}
    territories = crs.territory_names(departements.to_numpy(dtype=object, na_value=""))
    for name in np.unique(territories):
        candidates = np.flatnonzero(place_territories == name)
        if not len(candidates):
            continue
        rows = np.flatnonzero(territories == name)
        shapes = crs.to_metric(polygons.iloc[rows], name).to_numpy()
        tree = shapely.STRtree(crs.to_metric(places.iloc[candidates], name).to_numpy())
        (found, hit), metres = tree.query_nearest(shapes, return_distance=True, all_matches=False)
        distance[rows[found]] = metres
        nearest[rows[found]] = candidates[hit]
        for d in distances:
            within, _ = tree.query(shapes, predicate="dwithin", distance=d)
            counts[d][rows] = np.bincount(within, minlength=len(rows))
    return distance, nearest, counts


def _coverage_columns(
    out: pd.DataFrame,
    proximity: tuple[np.ndarray, np.ndarray, dict[float, np.ndarray]],
    labels: np.ndarray,
    covered_within_m: float,
) -> None:
    distance, nearest, counts = proximity
    out["distance_lieu_m"] = distance
    out["lieu_proche"] = pd.array(
        np.where(nearest >= 0, labels[nearest] if len(labels) else None, None), dtype="string"
    )
    for d, values in counts.items():
        out[_count_column(d)] = values
    out["couvert"] = distance <= covered_within_m


def _dep_to_reg(*frames: pd.DataFrame | None) -> pd.Series:
    """Région of each département, from any frames with ``dep`` and ``reg`` columns."""
    pairs = [f[["dep", "reg"]] for f in frames if f is not None and {"dep", "reg"} <= set(f)]
    if not pairs:
        return pd.Series(dtype="string")
    table = pd.concat(pairs).dropna().astype("string").drop_duplicates("dep")
    return table.set_index("dep")["reg"]


def _qpv_scope(departements: list[str] | None) -> str:
    if departements is None:
        return "couche QPV nationale : couverture des QPV évaluée dans tous les départements"
    return (
        f"couche QPV limitée aux départements {', '.join(departements)} : la couverture des "
        "QPV n'est évaluée que pour eux ; ailleurs les chiffres QPV sont laissés vides (inconnus)"
    )


def qpv_coverage(
    places: gpd.GeoDataFrame,
    qpv: gpd.GeoDataFrame,
    distances_m: Sequence[float] = DISTANCES_QPV_M,
    covered_within_m: float = 1000.0,
    qpv_population: pd.Series | None = None,
    communes: pd.DataFrame | None = None,
    name_column: str | None = None,
) -> gpd.GeoDataFrame:
    """Distance from each QPV to the nearest place, and places around it.

    Parameters
    ----------
    places : geopandas.GeoDataFrame
        Points with a declared CRS (EPSG:4326 expected). Rows whose ``verdict`` is
        ``"invalide"``, without geometry or outside every territory are excluded and
        counted in ``attrs["lieux_exclus"]``.
    qpv : geopandas.GeoDataFrame
        Output of :func:`territoires.load_qpv` (``code_qpv``, ``nom_qpv``, ``dep``).
    distances_m : sequence of float, default (500, 1000, 5000)
        Distances from the QPV boundary at which places are counted.
    covered_within_m : float, default 1000
        A QPV is ``couvert`` when a place lies within this distance.
    qpv_population : pandas.Series, optional
        Population indexed by ``code_qpv`` (strings are converted to numbers).
    communes : pandas.DataFrame, optional
        Communes with ``dep`` and ``reg`` (e.g. :func:`territoires.load_communes`), to
        give each QPV its région.
    name_column : str, optional
        Column naming the places, for ``lieu_proche``; detected among
        :data:`territoires.places.NAME_COLUMNS` when omitted. A place without a name is
        called by its line in the input file (``ligne 14``).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per QPV, same index and order as ``qpv``: ``code_qpv``, ``nom_qpv``,
        ``dep``, ``reg``, ``population`` (NA when unknown), ``distance_lieu_m`` (NaN when
        the QPV's territory has no place), ``lieu_proche``, ``nb_lieux_<d>m`` per
        distance, ``couvert`` and the QPV geometry (EPSG:4326). ``attrs`` holds the
        distances, the threshold, the départements covered by the QPV layer, the places
        analysed and excluded, and the sources.
    """
    distances = _check_distances(distances_m, covered_within_m)
    points, territories, labels, report = _places(places, name_column)
    shapes = qpv.geometry.to_crs(crs.GEOGRAPHIC)
    out = pd.DataFrame(
        {
            "code_qpv": qpv["code_qpv"].astype("string"),
            "nom_qpv": qpv["nom_qpv"].astype("string"),
            "dep": qpv["dep"].astype("string"),
        },
        index=qpv.index,
    )
    out["reg"] = out["dep"].map(_dep_to_reg(communes)).astype("string")
    sources = list(qpv.attrs.get("sources", []))
    if qpv_population is None:
        out["population"] = pd.array([pd.NA] * len(out), dtype="Int64")
    else:
        if qpv_population.index.duplicated().any():
            raise InputError("qpv_population : plusieurs valeurs pour un même code_qpv")
        values = pd.to_numeric(qpv_population, errors="coerce").round().astype("Int64")
        out["population"] = values.reindex(out["code_qpv"]).array
        sources += list(qpv_population.attrs.get("sources", []))
    proximity = _proximity(shapes, out["dep"], points, territories, distances)
    _coverage_columns(out, proximity, labels, covered_within_m)
    departements = loaders.qpv_departements(qpv, unsourced="present")
    result = gpd.GeoDataFrame(out, geometry=shapes, crs=crs.GEOGRAPHIC)
    result.attrs = {
        "analyse": "couverture des QPV",
        "distances_m": distances,
        "seuil_couverture_m": float(covered_within_m),
        "departements_qpv": departements,
        "couverture_qpv": _qpv_scope(departements),
        "millesime_qpv": qpv.attrs.get("millesime_qpv"),
        **report,
        "sources": sources,
    }
    return result


def commune_coverage(
    places: gpd.GeoDataFrame,
    communes: gpd.GeoDataFrame,
    rules: Rules | None = None,
    distances_m: Sequence[float] = DISTANCES_COMMUNES_M,
    covered_within_m: float = 10_000.0,
    name_column: str | None = None,
) -> gpd.GeoDataFrame:
    """Distance from each commune outside large urban centres to the nearest place.

    Parameters
    ----------
    places : geopandas.GeoDataFrame
        As for :func:`qpv_coverage`.
    communes : geopandas.GeoDataFrame
        Output of :func:`territoires.load_communes` (``code_insee``, ``nom``, ``dep``,
        ``reg``, ``population``, ``densite7`` and the rule's columns).
    rules : Rules, optional
        Rule set whose ``urban`` rule selects the communes; default
        :func:`territoires.rules.preset`.
    distances_m : sequence of float, default (5000, 10000, 20000)
        Distances from the commune boundary at which places are counted.
    covered_within_m : float, default 10000
        A commune is ``couvert`` when a place lies within this distance.
    name_column : str, optional
        As for :func:`qpv_coverage`.

    Returns
    -------
    geopandas.GeoDataFrame
        The communes the rule says are outside large urban centres, in input order and
        index: ``code_insee``, ``nom``, ``dep``, ``reg``, ``population``, ``densite7``
        (and the rule's column when another), ``distance_lieu_m`` (0 when a place lies
        inside, NaN when the territory has no place), ``lieu_proche``,
        ``nb_lieux_<d>m``, ``couvert`` and geometry (EPSG:4326). Communes where the rule
        cannot be applied are left out and counted in
        ``attrs["communes_regle_non_applicable"]``.
    """
    rules = rules or preset()
    distances = _check_distances(distances_m, covered_within_m)
    columns = list(dict.fromkeys([*_COMMUNE_COLUMNS, rules.urban.column]))
    required = [*columns, "cateaav2020"] if rules.urban.pole_only else columns
    absent = [column for column in required if column not in communes]
    if absent:
        raise ColumnError(f"communes : colonnes absentes {absent} (voir load_communes)")
    points, territories, labels, report = _places(places, name_column)
    outside, _ = rules.urban.evaluate(communes)
    keep = outside.fillna(False).to_numpy(dtype=bool)
    selected = communes[keep]
    shapes = selected.geometry.to_crs(crs.GEOGRAPHIC)
    out = pd.DataFrame(selected[columns])
    proximity = _proximity(shapes, out["dep"], points, territories, distances)
    _coverage_columns(out, proximity, labels, covered_within_m)
    result = gpd.GeoDataFrame(out, geometry=shapes, crs=crs.GEOGRAPHIC)
    unknown = outside.isna()
    result.attrs = {
        "analyse": "couverture des communes hors grands centres urbains",
        "distances_m": distances,
        "seuil_couverture_m": float(covered_within_m),
        "regles": rules.describe(),
        "nb_communes": len(communes),
        "communes_grands_centres_urbains": int(outside.eq(False).sum()),
        "communes_regle_non_applicable": int(unknown.sum()),
        "codes_regle_non_applicable": sorted(communes.loc[unknown, "code_insee"].astype(str)),
        **report,
        "sources": list(communes.attrs.get("sources", [])),
    }
    return result


def _dissolve(communes: gpd.GeoDataFrame, key: str) -> gpd.GeoSeries:
    """Communes merged by ``key``, simplified as a coverage in each territory's metric CRS."""
    shapes = communes.geometry.to_crs(crs.GEOGRAPHIC)
    present = ~(shapes.isna() | shapes.is_empty).to_numpy()
    territories = crs.territory_names(communes["dep"].to_numpy(dtype=object, na_value=""))
    parts = []
    for name in np.unique(territories[present]):
        rows = np.flatnonzero(present & (territories == name))
        metric = crs.to_metric(shapes.iloc[rows], name)
        simple = shapely.coverage_simplify(metric.to_numpy(), SIMPLIFICATION_M)
        frame = gpd.GeoDataFrame(
            {key: communes[key].iloc[rows].to_numpy()}, geometry=simple, crs=metric.crs
        )
        parts.append(frame.dissolve(by=key).to_crs(crs.GEOGRAPHIC).geometry)
    return gpd.GeoSeries(pd.concat(parts), crs=crs.GEOGRAPHIC)


def aggregate(
    qpv_cov: pd.DataFrame,
    commune_cov: pd.DataFrame,
    level: str = "dep",
    communes: pd.DataFrame | None = None,
    names: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Sum the coverage by département or région.

    Parameters
    ----------
    qpv_cov : pandas.DataFrame
        Output of :func:`qpv_coverage`; its ``attrs["departements_qpv"]`` says where QPV
        figures are complete.
    commune_cov : pandas.DataFrame
        Output of :func:`commune_coverage` over all the communes of interest.
    level : {"dep", "reg"}, default "dep"
        Aggregation level.
    communes : pandas.DataFrame, optional
        All communes (``dep``, ``reg``), to map départements to régions; when it is a
        GeoDataFrame, the result is a GeoDataFrame of the dissolved communes
        (simplified to about :data:`SIMPLIFICATION_M` metres, EPSG:4326).
    names : pandas.DataFrame, optional
        Codes (column ``level``) and names (``nom``) of all départements or régions,
        such as the outlines of :func:`territoires.load_admin`; their provenance is kept
        in ``attrs["sources"]``. Without it, only the codes found in the coverage tables
        are listed, with no name.

    Returns
    -------
    pandas.DataFrame or geopandas.GeoDataFrame
        One row per code, sorted: ``dep`` or ``reg``, ``nom``, ``qpv_donnees``
        (``"complet"`` or ``"non couvert par la couche QPV"``), ``nb_qpv``,
        ``nb_qpv_couverts``, ``part_qpv_couverts``, ``population_qpv``,
        ``population_qpv_non_couverte`` (QPV figures NA where the QPV layer does not
        cover the area, populations NA where unknown), ``nb_communes_hors_gcu``,
        ``population_hors_gcu``, ``population_hors_gcu_non_couverte``,
        ``part_population_couverte``.
    """
    if level not in LEVELS:
        raise UnknownNameError(f"niveau inconnu {level!r} : {' ou '.join(map(repr, LEVELS))}")
    if names is None:
        names = pd.DataFrame({level: pd.Series(dtype="string"), "nom": pd.Series(dtype="string")})
    dep_reg = _dep_to_reg(communes, commune_cov, qpv_cov)
    qpv_codes = qpv_cov["dep"].astype("string")
    if level == "reg":
        qpv_codes = qpv_cov["reg"].astype("string").fillna(qpv_codes.map(dep_reg))
    codes = sorted(
        set(names[level].dropna().astype(str))
        | set(commune_cov[level].dropna().astype(str))
        | set(qpv_codes.dropna())
    )
    out = pd.DataFrame(index=pd.Index(codes, name=level, dtype="string"))
    out["nom"] = names.drop_duplicates(level).set_index(level)["nom"].astype("string")

    covered = loaders.qpv_departements(qpv_cov, unsourced="present")
    if covered is None:
        complete = pd.Series(True, index=out.index)
    elif level == "dep":
        complete = out.index.to_series().isin(covered)
    else:
        in_layer = dep_reg.index.isin(covered)
        region_complete = pd.Series(in_layer, index=dep_reg.to_numpy()).groupby(level=0).all()
        complete = region_complete.reindex(out.index, fill_value=False)
    out["qpv_donnees"] = np.where(complete, QPV_DONNEES_COMPLET, QPV_DONNEES_ABSENT)
    out["qpv_donnees"] = out["qpv_donnees"].astype("string")

    population = qpv_cov["population"].astype("Int64")
    qpv_groups = pd.DataFrame(
        {
            "couvert": qpv_cov["couvert"].astype(bool),
            "population": population,
            "non_couverte": population.where(~qpv_cov["couvert"].astype(bool), 0),
            "inconnue": population.isna(),
        }
    ).groupby(qpv_codes.to_numpy())
    populations_known = bool(population.notna().any())
    out["nb_qpv"] = qpv_groups.size().reindex(out.index, fill_value=0).astype("Int64")
    out["nb_qpv_couverts"] = (
        qpv_groups["couvert"].sum().reindex(out.index, fill_value=0).astype("Int64")
    )
    out["part_qpv_couverts"] = out["nb_qpv_couverts"].astype("Float64") / out["nb_qpv"].replace(
        0, pd.NA
    )
    unknown = qpv_groups["inconnue"].any().reindex(out.index, fill_value=not populations_known)
    for column, target in (
        ("population", "population_qpv"),
        ("non_couverte", "population_qpv_non_couverte"),
    ):
        total = qpv_groups[column].sum().reindex(out.index, fill_value=0).astype("Int64")
        out[target] = total.mask(unknown.to_numpy())
    qpv_columns = [
        "nb_qpv",
        "nb_qpv_couverts",
        "part_qpv_couverts",
        "population_qpv",
        "population_qpv_non_couverte",
    ]
    out.loc[~complete.to_numpy(), qpv_columns] = pd.NA

    commune_population = commune_cov["population"].astype("Int64")
    commune_groups = pd.DataFrame(
        {
            "population": commune_population,
            "non_couverte": commune_population.where(~commune_cov["couvert"].astype(bool), 0),
        }
    ).groupby(commune_cov[level].astype("string").to_numpy())
    out["nb_communes_hors_gcu"] = (
        commune_groups.size().reindex(out.index, fill_value=0).astype("Int64")
    )
    for column, target in (
        ("population", "population_hors_gcu"),
        ("non_couverte", "population_hors_gcu_non_couverte"),
    ):
        out[target] = commune_groups[column].sum().reindex(out.index, fill_value=0).astype("Int64")
    out["part_population_couverte"] = 1 - out["population_hors_gcu_non_couverte"].astype(
        "Float64"
    ) / out["population_hors_gcu"].replace(0, pd.NA)

    out = out.reset_index()
    attrs = {
        "niveau": level,
        "departements_qpv": covered,
        "couverture_qpv": _qpv_scope(covered),
        "sources": list(names.attrs.get("sources", [])),
    }
    if isinstance(communes, gpd.GeoDataFrame):
        shapes = _dissolve(communes, level).reindex(out[level].astype(str)).to_numpy()
        out = gpd.GeoDataFrame(out, geometry=shapes, crs=crs.GEOGRAPHIC)
    out.attrs = attrs
    return out


def most_underserved(
    aggregated: pd.DataFrame,
    by: str = "population_hors_gcu_non_couverte",
    n: int = 10,
    ascending: bool = False,
) -> pd.DataFrame:
    """Rank the areas of an aggregate by a coverage figure.

    Parameters
    ----------
    aggregated : pandas.DataFrame
        Output of :func:`aggregate`.
    by : str, default "population_hors_gcu_non_couverte"
        Column to rank by; rows where it is NA are left out.
    n : int, default 10
        Number of rows to return.
    ascending : bool, default False
        False ranks the largest values first (uncovered populations, counts); use True
        for shares such as ``part_population_couverte``.

    Returns
    -------
    pandas.DataFrame
        The ``n`` first rows, ``rang`` (1 = most underserved, ties share a rank) first.
    """
    if by not in aggregated:
        raise ColumnError(f"colonne {by!r} absente ; colonnes : {list(aggregated.columns)}")
    known = aggregated[aggregated[by].notna()]
    ranked = known.sort_values(by, ascending=ascending, kind="stable").head(n)
    rank = known[by].astype("Float64").rank(method="min", ascending=ascending)
    return ranked.assign(rang=rank.loc[ranked.index].astype("Int64"))[["rang", *aggregated.columns]]


def _place_zones(places: gpd.GeoDataFrame, communes: pd.DataFrame) -> pd.DataFrame:
    """Département and région (``dep``, ``reg``) of the places a coverage analysis keeps.

    Read from the places' ``dep`` and ``reg`` columns (output of
    :func:`territoires.classify`), else from the commune each place lies in.
    """
    geometry, _, left_out = _located(places)
    keep = ~np.logical_or.reduce(left_out)
    if {"dep", "reg"} <= set(places.columns):
        zones = pd.DataFrame(places[["dep", "reg"]]).iloc[keep].astype("string")
        return zones.dropna().reset_index(drop=True)
    shapes = communes.geometry.to_crs(crs.GEOGRAPHIC).to_numpy()
    point, commune = shapely.STRtree(shapes).query(
        shapely.point_on_surface(geometry.to_numpy()[keep]), predicate="intersects"
    )
    first = np.unique(point, return_index=True)[1]
    rows = commune[first]
    return pd.DataFrame(
        {
            "dep": communes["dep"].to_numpy(dtype=object)[rows],
            "reg": communes["reg"].to_numpy(dtype=object)[rows],
        }
    ).astype("string")


def _codes(given: str | Sequence[str], known: Mapping[str, str], what: str) -> list[str]:
    """Codes of départements or régions as the user gave them, checked and sorted.

    ``"31, 32"`` or ``["31", "32"]``; ``"9"`` is ``"09"``. An unknown code is an
    :class:`UnknownNameError` listing the known ones with their names.
    """
    words = given.replace(";", ",").replace(",", " ").split() if isinstance(given, str) else given
    typed = {str(word).strip(): str(word).strip().upper() for word in words if str(word).strip()}
    codes = {word: code.zfill(2) if code.isdigit() else code for word, code in typed.items()}
    if not codes:
        raise InputError(f"{what} : aucun code donné ; attendu par exemple 31,32")
    unknown = [f"« {word} »" for word, code in codes.items() if code not in known]
    if unknown:
        # names help to find a région; the 101 départements are listed by code only
        listing = ", ".join(
            f"{code} {name}" if len(known) <= 20 and name != code else code
            for code, name in sorted(known.items())
        )
        raise UnknownNameError(
            f"{what} : code {', '.join(unknown)} inconnu ; codes attendus (INSEE) : {listing}"
        )
    return sorted(set(codes.values()))


def _named(codes: Sequence[str], names: Mapping[str, str]) -> str:
    """« Occitanie (76), Corse (94) »: each code after its name (the code alone if unnamed)."""
    return ", ".join(f"{names[c]} ({c})" if names.get(c, c) != c else c for c in codes)


def territory(
    places: gpd.GeoDataFrame,
    communes: pd.DataFrame,
    *,
    departements: str | Sequence[str] | None = None,
    regions: str | Sequence[str] | None = None,
    france: bool = False,
    names: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Choose the territory a coverage analysis measures, and say it in French.

    A list of places says nothing of the communes and QPV far from all of them: measured
    over all of France, a list of one région leaves every commune of the others
    « uncovered » for want of places in the list, not of tiers-lieux. So, unless told
    otherwise, a list whose places all lie in one région is measured over that région;
    a list spread over several régions over all of France, saying which régions have no
    place of the list.

    Parameters
    ----------
    places : geopandas.GeoDataFrame
        As for :func:`qpv_coverage` (``dep`` and ``reg`` columns used when present).
    communes : pandas.DataFrame
        All communes (``dep``, ``reg`` and, without those columns in ``places``, the
        geometry), as :func:`territoires.load_communes` gives them.
    departements, regions : str or sequence of str, optional
        Codes of the départements or régions to measure (``"31,32"`` or
        ``["31", "32"]``); at most one of ``departements``, ``regions`` and ``france``.
    france : bool, default False
        Measure all of France whatever the places.
    names : mapping, optional
        ``{"dep": {code: name}, "reg": {code: name}}``, to name the territory.

    Returns
    -------
    dict
        ``niveau`` (``"france"``, ``"regions"`` or ``"departements"``), ``codes``,
        ``departements`` (those measured, ``None`` for all of France), ``choix``
        (``"demande"``: given by the caller; ``"lieux"``: the région of the places;
        ``"plusieurs_regions"``: France, the places being in several régions),
        ``regions_des_lieux``, ``lieux_hors_territoire`` (places analysed outside the
        territory: they still count for the communes and QPV near its edge) and
        ``texte``, the French sentence that :func:`summary` shows first.

    Raises
    ------
    InputError
        When more than one of ``departements``, ``regions`` and ``france`` is given.
    UnknownNameError
        For a code that is not a département or région of the communes.
    """
    given = [
        option
        for option, value in (("departements", departements), ("regions", regions))
        if value is not None
    ] + (["france"] if france else [])
    if len(given) > 1:
        raise InputError(
            f"{' et '.join(given)} s'excluent : choisissez des départements, des régions ou "
            "la France entière"
        )
    names = names or {}
    dep_names, reg_names = dict(names.get("dep", {})), dict(names.get("reg", {}))
    known_deps = sorted(communes["dep"].dropna().astype(str).unique())
    known_regs = sorted(communes["reg"].dropna().astype(str).unique())
    zones = _place_zones(places, communes)
    place_regions = sorted(zones["reg"].unique())
    choice = "demande"
    if departements is not None:
        level = "departements"
        codes = _codes(departements, {c: dep_names.get(c, c) for c in known_deps}, "départements")
        deps: list[str] | None = codes
    elif regions is not None or (not france and len(place_regions) == 1):
        level = "regions"
        if regions is None:
            codes, choice = place_regions, "lieux"
        else:
            codes = _codes(regions, {c: reg_names.get(c, c) for c in known_regs}, "régions")
        chosen = communes["reg"].astype("string").isin(codes).fillna(False).to_numpy(dtype=bool)
        deps = sorted(communes.loc[chosen, "dep"].dropna().astype(str).unique())
    else:
        level, codes, deps = "france", [], None
        choice = "demande" if france else "plusieurs_regions"
    outside = 0 if deps is None else int((~zones["dep"].isin(deps)).sum())
    missing = [code for code in known_regs if code not in place_regions]
    if level == "france":
        text = "Territoire analysé : France entière" + (
            "" if france else ", les lieux étant dans plusieurs régions"
        )
        if not place_regions:
            text += " ; aucun lieu analysé"
        elif missing:
            text += (
                f" ; aucun lieu de la liste dans {french.count(len(missing), 'région', 'régions')}"
                f" ({_named(missing, reg_names)}) : leurs communes et leurs QPV paraissent non "
                "couverts faute de lieux dans la liste, non faute de tiers-lieux"
            )
    else:
        what = ("région", "régions") if level == "regions" else ("département", "départements")
        named = _named(codes, reg_names if level == "regions" else dep_names)
        text = f"Territoire analysé : {what[len(codes) > 1]} {named}"
        text += ", où sont tous les lieux analysés" if choice == "lieux" else ""
        if outside:
            text += (
                f" ; {french.count(outside, 'lieu', 'lieux')} hors de ce territoire "
                "(comptés pour les communes et les QPV proches de sa limite)"
            )
    return {
        "niveau": level,
        "codes": codes,
        "departements": deps,
        "choix": choice,
        "regions_des_lieux": place_regions,
        "lieux_hors_territoire": outside,
        "texte": text,
    }


def _qpv_or_communes(
    vintage: int, communes: gpd.GeoDataFrame, data_dir: Path | None
) -> gpd.GeoDataFrame:
    """The QPV contours of a vintage, else its QPV drawn as their hosting communes."""
    try:
        return loaders.load_qpv(vintage, data_dir=data_dir)
    except (DataNotFoundError, DownloadError) as error:
        try:
            pairs = loaders.load_qpv_communes(vintage, data_dir=data_dir)
        except (DataNotFoundError, DownloadError):
            raise error from None
    warnings.warn(
        f"contours QPV {vintage} indisponibles : chaque QPV est figuré par ses communes "
        f"d'accueil (liste nationale des QPV {vintage} par commune) ; les distances sont "
        "mesurées à ces communes",
        stacklevel=3,
    )
    return loaders.qpv_from_communes(pairs, communes)


def analyse(
    places: gpd.GeoDataFrame,
    *,
    rules: Rules | None = None,
    qpv: gpd.GeoDataFrame | None = None,
    communes: gpd.GeoDataFrame | None = None,
    qpv_population: pd.Series | None = None,
    qpv_covered_within_m: float = 1000.0,
    commune_covered_within_m: float = 10_000.0,
    geometry: bool = False,
    data_dir: Path | None = None,
    name_column: str | None = None,
    progress: bool = False,
    departements: str | Sequence[str] | None = None,
    regions: str | Sequence[str] | None = None,
    france: bool = False,
) -> dict[str, pd.DataFrame]:
    """Run the whole coverage analysis on the reference data, over one territory.

    Parameters
    ----------
    places : geopandas.GeoDataFrame
        As for :func:`qpv_coverage`.
    rules : Rules, optional
        Rule set (QPV vintage and urban rule); default :func:`territoires.rules.preset`.
    qpv, communes : geopandas.GeoDataFrame, optional
        Reference layers; loaded with :func:`territoires.load_qpv` (vintage of
        ``rules``) and :func:`territoires.load_communes` when omitted. When the QPV
        contours cannot be had but the national list of QPV by commune can (QPV 2024),
        each QPV is drawn as its hosting communes
        (:func:`territoires.loaders.qpv_from_communes`), with a warning: distances are
        then measured to those communes, a lower bound of the distance to the QPV.
    qpv_population : pandas.Series, optional
        Population by ``code_qpv``; by default read with
        :func:`territoires.loaders.qpv_population_on_disk`.
    qpv_covered_within_m, commune_covered_within_m : float
        Coverage thresholds of :func:`qpv_coverage` and :func:`commune_coverage`.
    geometry : bool, default False
        Give the aggregates the dissolved outlines of their communes (for GPKG or maps).
    data_dir : pathlib.Path, optional
        Mirror folder.
    name_column : str, optional
        Column naming the places (see :func:`qpv_coverage`).
    progress : bool, default False
        Show a progress bar on stderr, one step per stage (loading the reference,
        measuring QPV and communes, aggregating by département and région); outside a
        terminal or a notebook (log, CI, pipe), one final line.
    departements, regions : str or sequence of str, optional
        Measure only the QPV and communes of these départements or régions (codes,
        ``"31,32"`` or ``["31", "32"]``).
    france : bool, default False
        Measure all of France, even when the places all lie in one région.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``"qpv"``, ``"communes"``, ``"dep"`` and ``"reg"``, ready for
        ``export.write_report(path, r["qpv"], r["communes"], {"dep": r["dep"], "reg": r["reg"]})``,
        each restricted to the territory measured: without ``departements``, ``regions``
        or ``france``, the région of the places when they all lie in one, else all of
        France (see :func:`territory`). Every table's ``attrs["territoire"]`` says which,
        and :func:`summary` says it first. The places outside the territory still count
        for the QPV and communes near its edge.
    """
    rules = rules or preset()
    stages = iter(
        [
            "données de référence",
            "distances des QPV aux lieux",
            "distances des communes aux lieux",
            "totaux par département",
            "totaux par région",
            "terminé",
        ]
    )
    with _progress.bar(
        progress,
        total=5,
        desc="couverture",
        # tqdm writes the postfix after a comma: « … | 00:01, données de référence »
        bar_format="{desc} : étape {n_fmt}/{total_fmt} |{bar}| {elapsed}{postfix}",
    ) as bar:

        def stage(label: str) -> None:
            """Count the previous stage as done and show the next one."""
            bar.update()
            bar.set_postfix_str(label)

        bar.set_postfix_str(next(stages))
        if communes is None:
            communes = loaders.load_communes(data_dir=data_dir)
        if qpv is None:
            qpv = _qpv_or_communes(rules.qpv_vintage, communes, data_dir)
        if qpv_population is None:
            qpv_population = loaders.qpv_population_on_disk(rules.qpv_vintage, data_dir)
        outlines = {level: loaders.load_admin(LEVELS[level], data_dir=data_dir) for level in LEVELS}
        scope = territory(
            places,
            communes,
            departements=departements,
            regions=regions,
            france=france,
            names={level: _names(outlines[level], level) for level in LEVELS},
        )
        deps = scope["departements"]
        if deps is not None:
            qpv = qpv[qpv["dep"].astype("string").isin(deps).fillna(False).to_numpy(dtype=bool)]
            communes = communes[communes["dep"].astype("string").isin(deps).to_numpy(dtype=bool)]
            outlines["dep"] = outlines["dep"][outlines["dep"]["dep"].isin(deps)]
            outlines["reg"] = outlines["reg"][outlines["reg"]["reg"].isin(communes["reg"])]
        stage(next(stages))
        qpv_cov = qpv_coverage(
            places,
            qpv,
            covered_within_m=qpv_covered_within_m,
            qpv_population=qpv_population,
            communes=communes,
            name_column=name_column,
        )
        stage(next(stages))
        commune_cov = commune_coverage(
            places,
            communes,
            rules=rules,
            covered_within_m=commune_covered_within_m,
            name_column=name_column,
        )
        context = communes if geometry else pd.DataFrame(communes.drop(columns="geometry"))
        aggregates = {}
        for level in LEVELS:
            stage(next(stages))
            aggregates[level] = aggregate(
                qpv_cov,
                commune_cov,
                level,
                communes=context,
                names=outlines[level],
            )
        stage(next(stages))
    layers = {"qpv": qpv_cov, "communes": commune_cov, **aggregates}
    for layer in layers.values():
        layer.attrs["territoire"] = scope
    return layers


def _names(outlines: pd.DataFrame, level: str) -> dict[str, str]:
    """Code → name of the départements or régions of :func:`territoires.load_admin`."""
    return dict(zip(outlines[level].astype(str), outlines["nom"].astype(str), strict=True))


def summary(layers: Mapping[str, pd.DataFrame]) -> str:
    """Say in a few French sentences what a coverage analysis found.

    Parameters
    ----------
    layers : mapping
        Output of :func:`analyse` (``"qpv"`` and ``"communes"`` are read).

    Returns
    -------
    str
        The territory measured, when :func:`analyse` recorded it (« Territoire analysé :
        région Occitanie (76), où sont tous les lieux analysés »), then lines such as
        « 12 QPV couverts sur 105 (tiers-lieu à 1 km ou moins) » and
        « 3 184 communes hors grands centres urbains sur 29 010 sans tiers-lieu à 10 km
        ou moins », then the places analysed and excluded.
    """
    qpv, communes = layers["qpv"], layers["communes"]
    measured = communes.attrs.get("territoire")
    scope = loaders.qpv_departements(qpv, unsourced="present")
    assessed = qpv if scope is None else qpv[qpv["dep"].isin(scope)]
    covered = int(assessed["couvert"].sum())
    qpv_line = (
        f"{french.count(covered, 'QPV couvert', 'QPV couverts')} sur "
        f"{french.number(len(assessed))} "
        f"(tiers-lieu {french.within(qpv.attrs['seuil_couverture_m'])})"
    )
    measured_deps = measured["departements"] if measured else None
    if scope is not None and (measured_deps is None or not set(measured_deps) <= set(scope)):
        # the QPV layer lacks part of the territory measured
        qpv_line += f" ; couche QPV partielle : départements {', '.join(scope)} seulement"
    uncovered = int((~communes["couvert"].astype(bool)).sum())
    commune_line = (
        f"{french.count(uncovered, 'commune', 'communes')} hors grands centres urbains (sur "
        f"{french.number(len(communes))}) sans tiers-lieu "
        f"{french.within(communes.attrs['seuil_couverture_m'])}"
    )
    excluded = qpv.attrs.get("lieux_exclus", {})
    reasons = [f"{french.number(n)} {EXCLUSION_REASONS[key]}" for key, n in excluded.items() if n]
    analysed = qpv.attrs.get("nb_lieux_analyses", 0)
    places_line = french.count(analysed, "lieu analysé", "lieux analysés")
    if reasons:
        places_line += f" ; écartés : {', '.join(reasons)}"
    lines = [qpv_line, commune_line, places_line]
    return "\n".join([measured["texte"], *lines] if measured else lines)
