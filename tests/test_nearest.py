"""The k-d tree nearest-polygon search gives exactly GEOS's exhaustive answer."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from territoires import engine


def _layer(seed: int, count: int) -> engine.Layer:
    """Random non-trivial polygons (stars, rings with holes, multipolygons) in Lambert-93."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform([600_000, 6_200_000], [700_000, 6_300_000], size=(count, 2))
    radii = rng.uniform(50, 1500, count)
    shapes = []
    for (x, y), r in zip(centres, radii, strict=True):
        angles = np.sort(rng.uniform(0, 2 * np.pi, 12))
        lengths = r * rng.uniform(0.3, 1.0, 12)
        star = shapely.make_valid(
            shapely.Polygon(
                np.column_stack([x + lengths * np.cos(angles), y + lengths * np.sin(angles)])
            )
        )
        kind = rng.integers(3)
        if kind == 1:
            star = star.difference(shapely.Point(x, y).buffer(r * 0.2))
        elif kind == 2:
            star = shapely.MultiPolygon([star, shapely.Point(x + 3 * r, y).buffer(r * 0.3)])
        shapes.append(shapely.make_valid(star))
    frame = gpd.GeoDataFrame(geometry=shapes, crs=2154).to_crs(4326)
    return engine.Layer.build(frame, np.arange(count), "metropole")


@pytest.mark.parametrize("candidates", [1, 2, 8])
def test_nearest_matches_exhaustive_search(monkeypatch, candidates: int) -> None:
    monkeypatch.setattr(engine, "NEAREST_CANDIDATES", candidates)
    layer = _layer(seed=candidates, count=300)
    rng = np.random.default_rng(42)
    x = rng.uniform(550_000, 750_000, 5_000)
    y = rng.uniform(6_150_000, 6_350_000, 5_000)

    found, distance = engine.nearest_polygons(layer, x, y)
    (point, polygon), expected = layer.metric.query_nearest(
        shapely.points(x, y), return_distance=True, all_matches=False
    )

    assert (point == np.arange(len(x))).all()
    np.testing.assert_allclose(distance, expected, rtol=0, atol=1e-6)
    same = found == polygon
    # ties (two polygons at exactly the same distance) may name either polygon
    assert np.allclose(
        shapely.distance(shapely.points(x[~same], y[~same]), layer.metric.geometries[found[~same]]),
        expected[~same],
    )
    assert (found >= 0).all()


def test_nearest_of_no_point_is_empty() -> None:
    found, distance = engine.nearest_polygons(_layer(seed=0, count=5), np.zeros(0), np.zeros(0))
    assert found.shape == (0,) and distance.shape == (0,)


def _tiled(columns: int, rows: int, side: float) -> tuple[shapely.STRtree, np.ndarray]:
    """A grid of square polygons sharing edges and vertices (a coverage, as communes)."""
    squares = np.array(
        [
            shapely.box(
                600_000 + i * side,
                6_200_000 + j * side,
                *(600_000 + (i + 1) * side, 6_200_000 + (j + 1) * side),
            )
            for j in range(rows)
            for i in range(columns)
        ],
        dtype=object,
    )[np.random.default_rng(0).permutation(columns * rows)]  # GEOS's tie choice is its own
    return shapely.STRtree(squares), squares


def test_nearest_within_is_query_nearest_with_ties_and_reach() -> None:
    tree, squares = _tiled(6, 4, 800.0)
    rng = np.random.default_rng(3)
    xy = rng.uniform([598_000, 6_198_000], [607_000, 6_205_400], size=(20_000, 2))
    corners = shapely.get_coordinates(shapely.boundary(squares))
    xy = np.vstack(
        [
            xy,
            corners,  # on shared vertices: several squares at distance 0
            corners[:200] - [500.0, 500.0],  # facing a shared vertex from outside
            [[599_000.0, 6_200_400.0], [598_999.9999, 6_200_400.0]],  # 1000 m, just beyond
        ]
    )
    points = shapely.points(xy)

    point, nearest, distance = engine._nearest_within(tree, squares, points, 1000.0)
    (expected_point, expected), expected_distance = tree.query_nearest(
        points, max_distance=1000.0, return_distance=True, all_matches=False
    )

    np.testing.assert_array_equal(point, expected_point)
    np.testing.assert_array_equal(nearest, expected)  # ties: GEOS's own choice
    np.testing.assert_array_equal(distance, expected_distance)  # bit for bit
    assert len(xy) - 2 in point and len(xy) - 1 not in point  # exactly 1000 m is within


def test_border_pieces_measure_as_the_whole_border() -> None:
    layer = _layer(seed=5, count=40)
    border = shapely.MultiLineString(  # two zigzags, as a border and an enclave's outline
        [
            [(590_000 + (k % 3) * 90.0, 6_190_000 + 700 * k) for k in range(60)],
            [(710_000 - 1000 * k, 6_310_000 - (k % 4) * 300.0) for k in range(30)],
        ]
    )
    layer.__dict__["land_border"] = border
    tree, pieces = layer.border_pieces
    rng = np.random.default_rng(8)
    points = shapely.points(rng.uniform([580_000, 6_180_000], [720_000, 6_320_000], (20_000, 2)))

    at, _, closest = engine._pairs_within(tree, pieces, points, 5_000.0)
    first = engine._firsts(at)
    whole = shapely.distance(points, border)

    assert len(pieces) > 2 * len(shapely.get_parts(border))
    np.testing.assert_array_equal(closest[first], whole[at[first]])  # bit for bit
    assert set(at[first]) == set(np.flatnonzero(whole <= 5_000.0))


def _national_layer(seed: int, count: int) -> engine.Layer:
    """Many detailed polygons, as a national QPV layer: streets of 20-60 m, long rings
    (cut into pieces), holes, multipolygons, and a few of many rings (measured whole)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform([600_000, 6_200_000], [640_000, 6_240_000], size=(count, 2))
    shapes = []
    for number, ((x, y), r) in enumerate(zip(centres, rng.uniform(80, 900, count), strict=True)):
        corners = int(np.clip(2 * np.pi * r / rng.uniform(20, 60), 8, 400))
        angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
        lengths = r * rng.uniform(0.6, 1.0, corners)
        shape = shapely.make_valid(
            shapely.Polygon(
                np.column_stack([x + lengths * np.cos(angles), y + lengths * np.sin(angles)])
            )
        )
        if number % 5 == 1:
            shape = shape.difference(shapely.Point(x, y).buffer(r * 0.3))
        elif number % 5 == 2:
            shape = shapely.union(shape, shapely.box(x + 2 * r, y, x + 2.5 * r, y + r))
        elif number % 50 == 3:  # many islands: more rings than pieces
            shape = shapely.union_all([shapely.Point(x + 30 * i, y).buffer(10) for i in range(12)])
        shapes.append(shapely.make_valid(shape))
    frame = gpd.GeoDataFrame(geometry=shapes, crs=2154).to_crs(4326)
    return engine.Layer.build(frame, np.arange(count), "metropole")


def _points_around(layer: engine.Layer, rng: np.random.Generator) -> np.ndarray:
    """Far points, points a few metres or millimetres from outlines, on vertices and on
    segments, and points inside the metric polygons."""
    coordinates = shapely.get_coordinates(shapely.boundary(layer.metric_geometries))
    vertices = coordinates[rng.choice(len(coordinates), 6_000)]
    last = len(coordinates) - 1
    following = coordinates[np.minimum(rng.choice(len(coordinates), 3_000) + 1, last)]
    inside = shapely.get_coordinates(
        shapely.point_on_surface(layer.metric_geometries[rng.choice(len(layer.rows), 2_000)])
    )
    return np.vstack(
        [
            rng.uniform([560_000, 6_160_000], [680_000, 6_280_000], size=(15_000, 2)),
            rng.uniform([598_000, 6_198_000], [642_000, 6_242_000], size=(15_000, 2)),
            vertices[:2_000],  # on vertices (inside or on the outline: distance 0)
            vertices[2_000:4_000] + rng.normal(0, 3.0, (2_000, 2)),  # a few metres off
            vertices[4_000:] + rng.normal(0, 1e-3, (2_000, 2)),  # millimetres off
            (vertices[:3_000] + following) / 2,  # on segments (or across a ring's end)
            inside,
        ]
    )


@pytest.mark.parametrize("pieces", [4, engine.NEAREST_PIECES, 40])
def test_nearest_on_a_national_layer_is_geos_bit_for_bit(monkeypatch, pieces: int) -> None:
    monkeypatch.setattr(engine, "NEAREST_PIECES", pieces)
    layer = _national_layer(seed=pieces, count=600)
    xy = _points_around(layer, np.random.default_rng(pieces))
    points = shapely.points(xy)

    found, distance = engine.nearest_polygons(layer, xy[:, 0], xy[:, 1])
    (point, polygon), expected = layer.metric.query_nearest(
        points, return_distance=True, all_matches=False
    )

    assert len(xy) > 40_000 and (point == np.arange(len(xy))).all()
    assert layer.pieces.whole.any() == (pieces < 2 * 12) and not layer.pieces.whole.all()
    np.testing.assert_array_equal(distance, expected)  # bit for bit
    assert (distance == 0).sum() > 2_000 and (distance > 10_000).sum() > 1_000
    other = found != polygon  # only where two polygons lie at exactly the same distance
    np.testing.assert_array_equal(
        shapely.distance(points[other], layer.metric_geometries[found[other]]), expected[other]
    )
    assert other.mean() < 0.05  # overlapping polygons tie at 0 for points inside both


def test_pieces_measure_as_the_polygon_from_outside() -> None:
    layer = _national_layer(seed=7, count=200)
    pieces = layer.pieces
    rng = np.random.default_rng(7)
    xy = _points_around(layer, rng)
    polygon = rng.integers(len(layer.rows), size=len(xy))
    points = shapely.points(xy)
    whole = shapely.distance(points, layer.metric_geometries[polygon])
    outside = ~pieces.whole[polygon] & ~shapely.intersects(points, layer.metric_geometries[polygon])

    per_piece = shapely.distance(points[outside, None], pieces.lines[polygon[outside]])

    # every segment is in exactly one piece, and in the windows around it
    rings = shapely.get_rings(shapely.get_parts(layer.metric_geometries[~pieces.whole]))
    lines = pieces.lines[~pieces.whole]
    assert np.sum(shapely.get_num_coordinates(lines[lines != None]) - 1) == np.sum(  # noqa: E711
        shapely.get_num_coordinates(rings) - 1
    )
    np.testing.assert_array_equal(np.nanmin(per_piece, axis=1), whole[outside])  # bit for bit
    windows = shapely.distance(points[outside, None], pieces.windows[polygon[outside]])
    assert (np.nanmin(windows, axis=1) == whole[outside]).all()
    assert (pieces.x[pieces.whole] == np.inf).all()
    # a window is the pieces its table names: as many segments
    segments = np.maximum(shapely.get_num_coordinates(pieces.lines) - 1, 0)
    named = np.einsum("ijc,ic->ij", pieces.windowed, segments)
    window_segments = np.maximum(shapely.get_num_coordinates(pieces.windows) - 1, 0)
    np.testing.assert_array_equal(named, window_segments)


def test_joined_codes_join_the_sorted_codes_of_each_point() -> None:
    rng = np.random.default_rng(4)
    point = rng.integers(0, 500, 900)  # many points in one QPV, some in two or three
    code = np.array([f"QP{value:06d}" for value in rng.integers(0, 50, 900)], dtype=object)
    expected = np.full(600, None, dtype=object)
    for at in np.unique(point):
        expected[at] = ";".join(sorted(code[point == at]))

    joined = engine._joined_codes(600, point, code)

    assert joined.tolist() == expected.tolist()
    assert engine._joined_codes(3, np.zeros(0, dtype=int), code[:0]).tolist() == [None] * 3
