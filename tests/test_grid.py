"""The engine's shortcuts give exactly the answers of the exact computation.

The exact computation (the reference implementation kept in the engine) tests every
point against the commune polygons (STRtree query) and asks GEOS's STRtree for the
nearest QPV; the shortcuts are the commune grid (:mod:`territoires.grid`) and the
k-d tree of bounding circles. Both are run on the same points and every located
field is compared for equality: 200,000 random places per territory, points on commune
boundaries (vertices and edge midpoints), and points around the proximity threshold.
"""

from __future__ import annotations

import dataclasses
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

import territoires
from territoires import crs, engine
from territoires.grid import Grid
from territoires.rules import preset

PER_TERRITORY = 200_000


@pytest.fixture(scope="module")
def refs(data_dir: Path) -> tuple[engine.Reference, engine.Reference]:
    """The prepared reference (grids, k-d trees) and the same without any shortcut."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # commune join report
        fast = territoires.reference(preset(), data_dir).prepare()

    def plain(layers: dict[str, engine.Layer]) -> dict[str, engine.Layer]:
        return {
            name: engine.Layer(layer.rows, layer.geometries, layer.metric_geometries, name)
            for name, layer in layers.items()
        }

    exact = dataclasses.replace(
        fast, qpv_layers=plain(fast.qpv_layers), commune_layers=plain(fast.commune_layers)
    )
    return fast, exact


def _frame(lon: np.ndarray, lat: np.ndarray) -> gpd.GeoDataFrame:
    """Places as ``read_places`` gives them, all valid, routed to their territory."""
    return gpd.GeoDataFrame(
        {
            "lon": lon,
            "lat": lat,
            "probleme": pd.Series([None] * len(lon), dtype=object),
            "territoire": crs.locate(lon, lat),
        },
        geometry=[None] * len(lon),
        crs=crs.GEOGRAPHIC,
    )


def _assert_same_location(frame: gpd.GeoDataFrame, refs, monkeypatch) -> engine.Location:
    """Locate with the shortcuts and exactly; every field must be equal."""
    fast, exact = refs
    with monkeypatch.context() as patch:
        patch.setattr(engine, "GRID_MIN_POINTS", 10**12)
        patch.setattr(engine, "NEAREST_INDEX_MIN_POINTS", 10**12)
        expected = engine.locate(frame, exact)
    assert not any(layer.has_grid for layer in exact.commune_layers.values())
    assert not any(layer.has_centres for layer in exact.qpv_layers.values())
    found = engine.locate(frame, fast)
    for field in dataclasses.fields(engine.Location):
        if field.name == "points":
            continue
        np.testing.assert_array_equal(
            getattr(found, field.name), getattr(expected, field.name), err_msg=field.name
        )
    return found


def _random_places(ref: engine.Reference, territory: str, seed: int) -> tuple:
    """A tenth uniform over the territory's box (sea included), the rest in commune boxes
    drawn by population."""
    rng = np.random.default_rng(seed)
    layer = ref.commune_layers[territory]
    xmin, ymin, xmax, ymax = shapely.total_bounds(layer.geometries)
    lon = rng.uniform(xmin - 0.05, xmax + 0.05, 2 * PER_TERRITORY)
    lat = rng.uniform(ymin - 0.05, ymax + 0.05, 2 * PER_TERRITORY)
    uniform = np.flatnonzero(crs.locate(lon, lat) == territory)[: PER_TERRITORY // 10]
    population = ref.communes["population"].to_numpy(dtype=float, na_value=0)[layer.rows] + 1
    picked = rng.choice(len(layer.rows), PER_TERRITORY, p=population / population.sum())
    bounds = shapely.bounds(layer.geometries[picked])
    lon = np.concatenate([lon[uniform], rng.uniform(bounds[:, 0], bounds[:, 2])])
    lat = np.concatenate([lat[uniform], rng.uniform(bounds[:, 1], bounds[:, 3])])
    routed = np.flatnonzero(crs.locate(lon, lat) == territory)[:PER_TERRITORY]
    return lon[routed], lat[routed]


@pytest.mark.parametrize("territory", [t.name for t in crs.TERRITORIES])
def test_random_places_located_as_exactly(refs, territory, monkeypatch) -> None:
    lon, lat = _random_places(refs[1], territory, seed=len(territory))
    assert len(lon) == PER_TERRITORY
    found = _assert_same_location(_frame(lon, lat), refs, monkeypatch)

    known, _, _ = refs[0].commune_layers[territory].grid.lookup(lon, lat)
    assert known.mean() > 0.5  # the grid answers most points: the shortcut is exercised
    assert (found.commune >= 0).mean() > 0.3


def test_points_on_commune_boundaries_located_as_exactly(refs, monkeypatch) -> None:
    rng = np.random.default_rng(7)
    lon, lat = [], []
    for layer in refs[1].commune_layers.values():
        rings = shapely.boundary(layer.geometries[rng.permutation(len(layer.rows))[:3000]])
        vertices = shapely.get_coordinates(rings)
        middles = (vertices[:-1] + vertices[1:]) / 2  # on an edge (or across two rings)
        for points in (vertices, middles):
            lon.append(points[:, 0])
            lat.append(points[:, 1])
    lon, lat = np.concatenate(lon), np.concatenate(lat)
    routed = crs.locate(lon, lat) != ""
    found = _assert_same_location(_frame(lon[routed], lat[routed]), refs, monkeypatch)
    assert (found.commune >= 0).mean() > 0.99


def test_points_around_the_proximity_threshold_located_as_exactly(refs, monkeypatch) -> None:
    threshold = refs[0].rules.near_distance_m
    layer = refs[1].qpv_layers["metropole"]
    lon, lat = [], []
    for offset in (-0.5, -0.001, 0.0, 0.001, 0.5):
        ring = shapely.get_coordinates(
            shapely.boundary(shapely.buffer(layer.metric_geometries, threshold + offset))
        )
        back = gpd.GeoSeries(shapely.points(ring), crs=2154).to_crs(crs.GEOGRAPHIC)
        lon.append(back.x.to_numpy())
        lat.append(back.y.to_numpy())
    frame = _frame(np.concatenate(lon), np.concatenate(lat))
    found = _assert_same_location(frame, refs, monkeypatch)

    checked = found.checked
    assert checked.sum() > 10_000
    near = found.distance[checked] <= threshold
    assert near.any() and not near.all()  # both sides of the threshold are present


def _first_polygon(
    polygons: np.ndarray, rows: np.ndarray | None = None
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The exact lookup of the engine: the smallest row of the polygons holding each point."""
    rows = np.arange(len(polygons)) if rows is None else rows

    def exact(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        hit_poly, hit_point = shapely.STRtree(shapely.points(lon, lat)).query(
            polygons, predicate="intersects"
        )
        answer = np.full(len(lon), np.iinfo(np.int64).max)
        np.minimum.at(answer, hit_point, rows[hit_poly])
        return np.where(answer == np.iinfo(np.int64).max, -1, answer)

    return exact


def test_grid_cells_on_polygon_edges_are_tested_exactly() -> None:
    """Squares whose sides lie on grid lines, and points on cell and polygon edges."""
    size = 0.25
    squares = np.array(
        [box(x, y, x + size, y + size) for x in np.arange(0, 2, size) for y in (0, size)]
        + [box(0.3, 0.3, 0.7, 0.7)],  # overlaps two squares: the first listed wins
        dtype=object,
    )
    exact = _first_polygon(squares)
    grid = Grid.build(squares, exact, size=size / 8, far=3)
    edges = np.arange(-0.5, 2.5, size / 16)  # cell edges and polygon edges, and between
    lon, lat = (axis.ravel() for axis in np.meshgrid(edges, edges))
    known, answer, _ = grid.lookup(lon, lat)
    assert known.any() and not known.all()
    np.testing.assert_array_equal(answer[known], exact(lon[known], lat[known]))
    assert (answer[known] == -1).any()  # cells outside every square are known too

    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(-0.5, 2.5, 200_000), rng.uniform(-0.5, 1.0, 200_000)
    known, answer, far = grid.lookup(lon, lat)
    np.testing.assert_array_equal(answer[known], exact(lon[known], lat[known]))
    gap = shapely.distance(shapely.points(lon[far], lat[far]), shapely.union_all(squares))
    assert far.any() and gap.min() > 2 * size / 8  # at least far - 1 cells away


def _in_crossed_cells(grid: Grid, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Whether each point falls in a cell a boundary crosses (answered by sub-cells)."""
    column = np.floor((lon - grid.x0) / grid.size).astype(np.intp)
    row = np.floor((lat - grid.y0) / grid.size).astype(np.intp)
    rows, columns = grid.cells.shape
    inside = (column >= 0) & (column < columns) & (row >= 0) & (row < rows)
    crossed = np.zeros(len(lon), dtype=bool)
    crossed[inside] = grid.cells[row[inside], column[inside]] == 0
    return crossed


def test_sub_cells_answer_as_exactly() -> None:
    """Sub-cells of crossed cells: polygons meeting inside a cell, slivers, holes, islands."""
    size = 0.01
    centre = shapely.Point(0.0137, 0.0242)  # five polygons meet inside one cell
    fan = [
        shapely.Polygon(
            [
                (centre.x, centre.y),
                (centre.x + np.cos(a) * 0.05, centre.y + np.sin(a) * 0.05),
                (centre.x + np.cos(b) * 0.05, centre.y + np.sin(b) * 0.05),
            ]
        )
        for a, b in zip(
            np.linspace(0, 2 * np.pi, 6)[:-1], np.linspace(0, 2 * np.pi, 6)[1:], strict=True
        )
    ]
    polygons = np.array(
        [
            *fan,
            box(0.1, 0.1, 0.1003, 0.2),  # a sliver thinner than a sub-cell
            box(0.1007, 0.1, 0.2, 0.2).difference(box(0.1312, 0.1315, 0.1443, 0.1447)),
            box(0.1338, 0.1341, 0.1418, 0.1421),  # an island in the hole: enclosed regions
            shapely.Polygon([(0.2, 0.0), (0.3, 0.1), (0.2, 0.1)]),  # a diagonal edge
        ],
        dtype=object,
    )
    exact = _first_polygon(polygons)
    grid = Grid.build(polygons, exact, size=size, far=2)
    sub = size / grid.split
    # every sub-cell corner and side middle of the area, and points between
    edges = np.arange(-0.06, 0.32, sub / 2)
    lon, lat = (axis.ravel() for axis in np.meshgrid(edges, edges))
    rng = np.random.default_rng(5)
    lon = np.concatenate([lon, rng.uniform(-0.06, 0.32, 300_000)])
    lat = np.concatenate([lat, rng.uniform(-0.06, 0.32, 300_000)])
    known, answer, _ = grid.lookup(lon, lat)
    np.testing.assert_array_equal(answer[known], exact(lon[known], lat[known]))
    crossed = _in_crossed_cells(grid, lon, lat)
    assert known[crossed].mean() > 0.5  # sub-cells answer most points of crossed cells
    assert not known[crossed].all()
    for polygon in {*range(len(polygons))} - {5}:  # all but the sliver, by some sub-cell
        assert (answer[known & crossed] == polygon).any()
    assert (answer[known & crossed] == -1).any()
    # The five polygons of the fan share a cell: the sub-cells of the two answers
    # beyond three (the largest) are tested exactly.
    same_cell = (np.floor(lon / size) == 1) & (np.floor(lat / size) == 2)
    truth = exact(lon, lat)
    assert not known[same_cell & (truth >= 3) & (truth <= 4)].any()
    assert known[same_cell & (truth <= 2)].any()
    assert ((truth[same_cell] >= 3) & (truth[same_cell] <= 4)).any()


@pytest.mark.parametrize("split", [2, 4, 8])
def test_sub_cells_of_any_split_answer_as_exactly(split: int) -> None:
    polygons = np.array(
        [shapely.buffer(shapely.Point(x, y), r) for x, y, r in ((0, 0, 0.03), (0.04, 0.01, 0.02))],
        dtype=object,
    )
    exact = _first_polygon(polygons)
    grid = Grid.build(polygons, exact, size=0.004, split=split)
    rng = np.random.default_rng(split)
    lon, lat = rng.uniform(-0.04, 0.07, 200_000), rng.uniform(-0.04, 0.04, 200_000)
    known, answer, _ = grid.lookup(lon, lat)
    np.testing.assert_array_equal(answer[known], exact(lon[known], lat[known]))
    assert known[_in_crossed_cells(grid, lon, lat)].mean() > 1 - 2 / split


def test_sub_cells_survive_pickling_and_decompress_on_demand() -> None:
    polygons = np.array([box(0, 0, 1, 1), box(1, 0, 2, 1)], dtype=object)
    grid = Grid.build(polygons, _first_polygon(polygons), size=0.001)
    assert len(grid.blocks) > 2
    copy = pickle.loads(pickle.dumps(grid))
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(-0.1, 2.1, 100_000), rng.uniform(-0.1, 1.1, 100_000)
    expected = grid.lookup(lon, lat)
    single = copy.lookup(np.array([0.0006]), np.array([0.5]))  # one block decompressed
    assert single[0][0] and single[1][0] == 0
    for found, wanted in zip(copy.lookup(lon, lat), expected, strict=True):
        np.testing.assert_array_equal(found, wanted)
    assert len(pickle.dumps(grid)) == len(pickle.dumps(copy))  # nothing decompressed kept


@pytest.mark.parametrize("territory", [t.name for t in crs.TERRITORIES])
def test_crossed_cells_answered_by_sub_cells_as_exactly(refs, territory) -> None:
    """Points in the crossed cells of every territory, sub-cell corners included."""
    grid = refs[0].commune_layers[territory].grid
    layer = refs[1].commune_layers[territory]
    rng = np.random.default_rng(len(territory))
    crossed = np.flatnonzero(grid.cells.ravel() == 0)
    row, column = np.divmod(rng.choice(crossed, 100_000), grid.cells.shape[1])
    offsets = rng.uniform(0, 1, (2, 100_000))
    corners = rng.integers(0, grid.split + 1, (2, 20_000)) / grid.split  # sub-cell corners
    offsets[:, :20_000] = corners
    lon = grid.x0 + (column + offsets[0]) * grid.size
    lat = grid.y0 + (row + offsets[1]) * grid.size
    known, answer, _ = grid.lookup(lon, lat)
    expected = _first_polygon(layer.geometries, layer.rows)(lon, lat)
    np.testing.assert_array_equal(answer[known], expected[known])
    assert known.mean() > 0.6
    assert len(np.unique(answer[known])) > min(10, len(layer.rows) // 2)
