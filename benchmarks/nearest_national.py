"""Nearest QPV on a national-size layer: the search by outline pieces against the previous one.

Run on demand (not part of the test suite)::

    TERRITOIRES_DATA_DIR=../shared/data python benchmarks/nearest_national.py
        [--n 1000000] [--copies 13] [--repeat 3]

The mirror holds the QPV of Occitanie only (105 in métropole), so that most places of
``benchmarks/classify_1m.py`` are far from any QPV and cheap to answer; users download
the national layer (about 1,360 QPV in métropole). A layer of national size is built
here at run time, never stored: the Occitanie QPV of each host commune, as one cluster,
are copied ``--copies`` times onto communes of at least 10,000 inhabitants drawn by
population (each copy turned by a random angle about its cluster's centre), so that QPV
lie in towns, as real ones do. Places are drawn as in ``classify_1m.py`` (a commune by
population, a uniform point in its bounding box); those outside every QPV are searched,
in Lambert-93, as ``engine._find_qpv`` does.

In one run, alternately (so that a load change on the shared machine affects both
alike), the CPU time of the current :func:`territoires.engine.nearest_polygons` and of
the previous search (the k-d tree of bounding circles, then GEOS's distance to whole
polygons and GEOS's nearest search for points the circles leave unproven; kept below
as it was) is measured with ``time.thread_time``; their medians per million points and
their ratio are printed. Both must give the same distances bit for bit and the same
polygons except where two lie at exactly the same distance; GEOS's own nearest search
(``STRtree.query_nearest``) is compared on a subsample.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import shapely
from classify_1m import metropole, national_qpv, random_places
from vs_postgis import machine

import territoires
from territoires import engine


def national_layer(copies: int, seed: int = 0) -> engine.Layer:
    """The synthetic national layer of ``classify_1m.national_qpv``, indexed."""
    frame = national_qpv(copies, seed)
    return engine.Layer.build(frame, np.arange(len(frame)), "metropole")


def outside_places(layer: engine.Layer, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Lambert-93 coordinates of the places outside every QPV of ``layer``."""
    places = random_places(metropole(territoires.load_communes()), n, seed=1)
    lon, lat = places["lon"].to_numpy(), places["lat"].to_numpy()
    inside, _ = layer.tree.query(shapely.points(lon, lat), predicate="intersects")
    outside = np.setdiff1d(np.arange(n), inside)
    return engine.transformer("metropole").transform(lon[outside], lat[outside])


def previous_nearest(layer: engine.Layer, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """The search before outline pieces (commit 8889a2b), as it was, for comparison."""
    n = len(x)
    k = min(engine.NEAREST_CANDIDATES, len(layer.radii))
    centre_distance, candidate = layer.centres.query(
        np.column_stack([x, y]), k=list(range(1, k + 1))
    )
    radius = layer.radii[candidate]
    points = shapely.points(x, y)
    first = shapely.distance(points, layer.metric_geometries[candidate[:, 0]])
    upper = np.minimum((centre_distance + radius).min(axis=1), first)
    measured = centre_distance - radius <= (upper + 1e-6 * (1.0 + upper))[:, None]
    measured[:, 0] = True
    point, slot = np.nonzero(measured)
    polygon = candidate[point, slot]
    exact = np.empty(len(point))
    again = slot > 0
    exact[~again] = first[point[~again]]
    exact[again] = shapely.distance(points[point[again]], layer.metric_geometries[polygon[again]])
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


def same_answers(
    layer: engine.Layer, x: np.ndarray, y: np.ndarray, ours: tuple, theirs: tuple
) -> tuple[bool, int]:
    """Whether the distances are equal bit for bit and the polygons equal except at exact
    ties (the other polygon at exactly the same distance), and the number of such ties."""
    (found, distance), (other, expected) = ours, theirs
    tied = np.flatnonzero(found != other)
    points = shapely.points(x[tied], y[tied])
    ties_hold = np.array_equal(
        shapely.distance(points, layer.metric_geometries[found[tied]]), expected[tied]
    )
    return bool(np.array_equal(distance, expected) and ties_hold), len(tied)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="places drawn (at most 1 M)")
    parser.add_argument("--copies", type=int, default=13, help="copies of the Occitanie QPV")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument("--geos-n", type=int, default=50_000, help="subsample checked by GEOS")
    args = parser.parse_args()

    layer = national_layer(args.copies)
    x, y = outside_places(layer, min(args.n, 1_000_000))
    started = time.process_time()
    layer.centres  # noqa: B018 (built on first use, as by Reference.prepare)
    circles = time.process_time() - started
    started = time.process_time()
    layer.pieces  # noqa: B018
    pieces = time.process_time() - started
    vertices = shapely.get_num_coordinates(layer.metric_geometries)
    print(f"Machine : {machine()}")
    print(
        f"Couche synthétique : {len(layer.rows):,} QPV ({vertices.mean():.0f} sommets en "
        f"moyenne) ; {len(x):,} lieux hors QPV sur {args.n:,}"
    )
    print(f"Préparation : cercles {circles:.2f} s CPU, morceaux des contours {pieces:.2f} s CPU")

    runs: dict[str, list[float]] = {"précédente": [], "par morceaux": []}
    for _ in range(args.repeat):
        for name, search in (
            ("précédente", previous_nearest),
            ("par morceaux", engine.nearest_polygons),
        ):
            started = time.thread_time()
            answer = search(layer, x, y)
            runs[name].append(time.thread_time() - started)
            if name == "précédente":
                theirs = answer
            else:
                ours = answer
    agree, ties = same_answers(layer, x, y, ours, theirs)
    sample = slice(0, min(args.geos_n, len(x)))
    (_, polygon), expected = layer.metric.query_nearest(
        shapely.points(x[sample], y[sample]), return_distance=True, all_matches=False
    )
    geos_agree, geos_ties = same_answers(
        layer,
        x[sample],
        y[sample],
        (ours[0][sample], ours[1][sample]),
        (polygon, expected),
    )
    per_million = {name: statistics.median(times) / len(x) * 1e6 for name, times in runs.items()}
    for name, seconds in per_million.items():
        print(f"Recherche {name:>12} : {seconds:.2f} s CPU par million de points")
    print(f"Rapport : {per_million['précédente'] / per_million['par morceaux']:.2f}x")
    print(f"Mêmes réponses que la recherche précédente : {agree} ({ties} égalités exactes)")
    print(
        f"Mêmes réponses que GEOS (query_nearest) sur {len(expected):,} points : "
        f"{geos_agree} ({geos_ties} égalités exactes)"
    )
    print(
        "Distances (m) : "
        + ", ".join(
            f"q{int(q * 100)} {value:,.0f}"
            for q, value in zip((0.1, 0.5, 0.9), np.quantile(ours[1], [0.1, 0.5, 0.9]), strict=True)
        )
    )


if __name__ == "__main__":
    main()
