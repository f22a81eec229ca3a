"""Which QPV a place may be in or near, when its exact position is not known.

Two sources answer the question "is there a QPV within the proximity distance of this
place?" when the answer cannot be read from a point and the QPV contours:

* the QPV contours themselves, for a place known only by its commune: the QPV that
  touch the commune, or lie within the distance of its boundary;
* the national list of QPV by commune (:func:`territoires.loaders.load_qpv_communes`),
  wherever the QPV contours are missing: a QPV lies inside the communes that host it,
  so a place (point or commune) with no hosting commune within the distance is neither
  in nor near a QPV, and otherwise the QPV of the hosting communes within the distance
  are the ones to check.

One function, :func:`within_reach`, serves both sources and both kinds of place; the
spatial engine (:mod:`territoires.engine`) decides which applies to each row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from .rules import Rules


@dataclass(frozen=True)
class Hosts:
    """Communes hosting QPV, from the national list of QPV by commune.

    Attributes
    ----------
    vintage : int
        QPV geography of the list.
    pairs : pandas.DataFrame
        ``row`` (reference commune row) and ``code_qpv``, one line per QPV it hosts.
    names : dict of str to str
        QPV code → name.
    trees : dict of str to shapely.STRtree
        Per territory, the hosting communes' polygons in the territory's metric CRS.
    rows : dict of str to numpy.ndarray
        Per territory, the reference commune row of each polygon of ``trees``.
    unmatched : tuple of str
        Commune codes of the list found in no reference commune (reported, never
        silently dropped: their QPV cannot be reached).
    """

    vintage: int
    pairs: pd.DataFrame
    names: dict[str, str]
    trees: dict[str, shapely.STRtree]
    rows: dict[str, np.ndarray]
    unmatched: tuple[str, ...]

    @classmethod
    def build(
        cls,
        pairs: pd.DataFrame,
        commune_rows: Mapping[str, int],
        metric: Mapping[str, tuple[np.ndarray, np.ndarray]],
        vintage: int,
    ) -> Hosts:
        """Index the hosting communes of ``pairs``.

        Parameters
        ----------
        pairs : pandas.DataFrame
            ``code_insee``, ``code_qpv``, ``nom_qpv`` (output of
            :func:`territoires.loaders.load_qpv_communes`), with ``code_actuel`` (the
            current code of the commune) when known.
        commune_rows : mapping of str to int
            Commune code (as in the reference, or current) → reference commune row.
        metric : mapping of str to (numpy.ndarray, numpy.ndarray)
            Per territory, reference commune rows and their metric polygons.
        vintage : int
            QPV geography of the list.
        """
        row = pairs["code_insee"].map(commune_rows)
        if "code_actuel" in pairs:
            row = row.fillna(pairs["code_actuel"].map(commune_rows))
        found = pairs[row.notna()].assign(row=row.dropna().astype(int))
        found = found[["row", "code_qpv"]].drop_duplicates().reset_index(drop=True)
        trees, rows = {}, {}
        for territory, (territory_rows, polygons) in metric.items():
            hosting = np.isin(territory_rows, found["row"].to_numpy())
            if hosting.any():
                trees[territory] = shapely.STRtree(polygons[hosting])
                rows[territory] = territory_rows[hosting]
        return cls(
            vintage=vintage,
            pairs=found,
            names=dict(zip(pairs["code_qpv"], pairs["nom_qpv"], strict=True)),
            trees=trees,
            rows=rows,
            unmatched=tuple(sorted(set(pairs.loc[row.isna(), "code_insee"]))),
        )


def distance(rules: Rules) -> float:
    """Metres around a place within which a QPV makes it "near": the rules' proximity
    distance, or the NPNRU distance when the rules carry an NPNRU list and it is larger.
    """
    if rules.npnru:
        return max(rules.near_distance_m, rules.npnru_distance_m)
    return rules.near_distance_m


def within_reach(
    geometries: np.ndarray,
    tree: shapely.STRtree | None,
    rows: np.ndarray,
    distance: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of (place, reference row) whose polygon lies within ``distance`` of the place.

    Parameters
    ----------
    geometries : numpy.ndarray of shapely geometries
        Places (points or commune polygons) in the metric CRS of the tree.
    tree : shapely.STRtree or None
        Polygons (QPV, or hosting communes) in the same CRS; None when there are none.
    rows : numpy.ndarray of int
        Reference row of each polygon of the tree.
    distance : float or numpy.ndarray
        Metres, one for all places or one per place (0 finds the polygons touched).

    Returns
    -------
    place : numpy.ndarray of int
        Position of the place in ``geometries``.
    row : numpy.ndarray of int
        Reference row of a polygon within reach of it.
    """
    if tree is None or not len(geometries):
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    place, polygon = tree.query(geometries, predicate="dwithin", distance=distance)
    return place, rows[polygon]


def listing(places: np.ndarray, codes: np.ndarray, names: Mapping[str, str], n: int) -> np.ndarray:
    """``CODE « name », …`` of the QPV found for each place, None for places with none.

    Parameters
    ----------
    places : numpy.ndarray of int
        Position of a place, repeated for each of its QPV.
    codes : numpy.ndarray of str
        QPV code of each pair.
    names : mapping of str to str
        QPV code → name.
    n : int
        Number of places.

    Returns
    -------
    numpy.ndarray of object
        Sorted, without repeats.
    """
    out = np.full(n, None, dtype=object)
    if not len(places):
        return out
    pairs = pd.DataFrame({"place": places, "code": codes}).drop_duplicates()
    pairs = pairs.sort_values(["place", "code"])
    pairs["text"] = pairs["code"] + " « " + pairs["code"].map(names).fillna("") + " »"
    joined = pairs.groupby("place", sort=False)["text"].agg(", ".join)
    out[joined.index.to_numpy()] = joined.to_numpy()
    return out
