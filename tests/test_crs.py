"""Tests of territoires.crs: legal metric CRS per territory, routing of points, distances."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pytest
from shapely.geometry import Point

from territoires import crs


@pytest.mark.parametrize(
    ("dep", "epsg"),
    [
        ("75", 2154),
        ("31", 2154),
        ("2A", 2154),
        ("2B", 2154),
        ("971", 5490),
        ("972", 5490),
        ("973", 2972),
        ("974", 2975),
        ("976", 4471),
    ],
)
def test_metric_crs(dep: str, epsg: int) -> None:
    assert crs.metric_crs(dep) == epsg


def test_metric_crs_are_projected_in_metres() -> None:
    for territory in crs.TERRITORIES:
        projected = pyproj.CRS.from_epsg(territory.epsg)
        assert projected.is_projected, territory.name
        assert projected.axis_info[0].unit_name == "metre", territory.name


CITIES = {
    "Paris": (2.3522, 48.8566, "metropole"),
    "Ajaccio": (8.7369, 41.9192, "metropole"),
    "Brest": (-4.4861, 48.3904, "metropole"),
    "Pointe-à-Pitre": (-61.5331, 16.2411, "antilles"),
    "Fort-de-France": (-61.0588, 14.6161, "antilles"),
    "Cayenne": (-52.3300, 4.9372, "guyane"),
    "Saint-Denis (La Réunion)": (55.4504, -20.8823, "reunion"),
    "Mamoudzou": (45.2279, -12.7806, "mayotte"),
    "Atlantique nord": (-30.0, 40.0, ""),
    "Golfe de Gascogne": (-8.0, 45.0, ""),
}


def test_locate_cities() -> None:
    names = list(CITIES)
    lon = np.array([CITIES[name][0] for name in names])
    lat = np.array([CITIES[name][1] for name in names])
    found = crs.locate(lon, lat)
    assert dict(zip(names, found, strict=True)) == {name: CITIES[name][2] for name in names}


def test_locate_nan_is_outside() -> None:
    assert crs.locate(np.array([np.nan, 2.35]), np.array([48.85, np.nan])).tolist() == ["", ""]


def test_territory_names_vectorised() -> None:
    deps = ["75", "2A", "971", "972", "973", "974", "976", "31"]
    assert crs.territory_names(deps).tolist() == [
        "metropole",
        "metropole",
        "antilles",
        "antilles",
        "guyane",
        "reunion",
        "mayotte",
        "metropole",
    ]


def test_unknown_territory_lists_known_names() -> None:
    with pytest.raises(KeyError, match=r"metropole.*mayotte"):
        crs.territory("corse")


def test_to_metric_refuses_frame_without_crs() -> None:
    frame = gpd.GeoDataFrame(geometry=[Point(2.35, 48.85)])
    with pytest.raises(ValueError, match="CRS"):
        crs.to_metric(frame, "metropole")


def test_to_metric_does_not_mutate_input() -> None:
    frame = gpd.GeoDataFrame(geometry=[Point(2.35, 48.85)], crs=crs.GEOGRAPHIC)
    projected = crs.to_metric(frame, "metropole")
    assert projected.crs.to_epsg() == 2154
    assert frame.crs.to_epsg() == 4326
    assert frame.geometry.iloc[0].x == pytest.approx(2.35)
    # Paris in Lambert-93: about (652 km, 6 862 km)
    assert projected.geometry.iloc[0].x == pytest.approx(652_000, abs=2_000)
    assert projected.geometry.iloc[0].y == pytest.approx(6_862_000, abs=2_000)


@pytest.mark.parametrize(
    ("name", "lon", "lat"),
    [
        ("metropole", 2.3522, 48.8566),
        ("metropole", 8.7369, 41.9192),
        ("reunion", 55.4504, -20.8823),
        ("antilles", -61.0588, 14.6161),
        ("guyane", -52.3300, 4.9372),
        ("mayotte", 45.2279, -12.7806),
    ],
)
def test_one_kilometre_is_measured_as_1000_m(name: str, lon: float, lat: float) -> None:
    geod = pyproj.Geod(ellps="GRS80")
    east_lon, east_lat, _ = geod.fwd(lon, lat, 90.0, 1_000.0)
    north_lon, north_lat, _ = geod.fwd(lon, lat, 0.0, 1_000.0)
    frame = gpd.GeoDataFrame(
        geometry=[Point(lon, lat), Point(east_lon, east_lat), Point(north_lon, north_lat)],
        crs=crs.GEOGRAPHIC,
    )
    metric = crs.to_metric(frame, name)
    origin = metric.geometry.iloc[0]
    # the legal projections distort lengths by less than 3 m per km on their territory
    assert origin.distance(metric.geometry.iloc[1]) == pytest.approx(1_000, abs=3)
    assert origin.distance(metric.geometry.iloc[2]) == pytest.approx(1_000, abs=3)


def test_wrong_projection_would_be_caught() -> None:
    """Web Mercator at La Réunion stretches 1 km by about 7 %: the test above would fail."""
    geod = pyproj.Geod(ellps="GRS80")
    lon, lat, _ = geod.fwd(55.4504, -20.8823, 90.0, 1_000.0)
    frame = gpd.GeoDataFrame(
        geometry=[Point(55.4504, -20.8823), Point(lon, lat)], crs=crs.GEOGRAPHIC
    ).to_crs(3857)
    assert frame.geometry.iloc[0].distance(frame.geometry.iloc[1]) > 1_050
