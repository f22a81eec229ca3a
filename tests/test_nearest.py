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
