"""The fast GeoParquet writer gives the very file ``GeoDataFrame.to_parquet`` writes."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from territoires import _geoparquet


def _places(n: int = 1_000) -> gpd.GeoDataFrame:
    """Points with missing ones, text, nullable and dictionary-encoded columns, attrs."""
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(-5, 9, n), rng.uniform(41, 51, n)
    lon[::7] = np.nan
    points = gpd.points_from_xy(lon, lat, crs=4326)
    points[np.isnan(lon)] = None
    frame = gpd.GeoDataFrame(
        {
            "nom": pd.array([f"lieu {i}" for i in range(n)], dtype="str"),
            "lon": lon,
            "lat": lat,
            "verdict": pd.array(rng.choice(["qpv", "non_eligible", None], n), dtype="string"),
            "in_qpv": pd.array(rng.choice([True, False, None], n), dtype="boolean"),
            "densite7": pd.array(rng.choice([1, 7, None], n), dtype="Int64"),
        },
        geometry=points,
        index=pd.RangeIndex(5_000, 5_000 + n),
    )
    frame.attrs = {"regles": {"nom": "fabriques-2019"}, "sources": [{"sha256": "x"}]}
    return frame


def _both(
    frame: gpd.GeoDataFrame, folder: Path, fast: pytest.MonkeyPatch | None = None, **options
) -> tuple[bytes, bytes]:
    """Write ``frame`` by geopandas, then by ``write_points`` (without geopandas if ``fast``)."""
    frame.to_parquet(folder / "geopandas.parquet", index=True, **options)
    if fast is not None:  # the fast path does not hand the frame to geopandas
        real = gpd.GeoDataFrame.to_parquet

        def refused(written: gpd.GeoDataFrame, *args, **kwargs) -> None:
            assert written is not frame
            real(written, *args, **kwargs)

        fast.setattr(gpd.GeoDataFrame, "to_parquet", refused)
    _geoparquet.write_points(frame, folder / "rapide.parquet", **options)
    return (folder / "geopandas.parquet").read_bytes(), (folder / "rapide.parquet").read_bytes()


@pytest.mark.parametrize("case", ["points", "all_missing", "no_row", "no_attrs"])
def test_same_file_as_geopandas(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _places()
    if case == "all_missing":
        frame = frame.set_geometry(gpd.GeoSeries([None] * len(frame), crs=4326, index=frame.index))
    elif case == "no_row":
        frame = frame.iloc[:0]
    elif case == "no_attrs":
        frame.attrs = {}
    ours, theirs = _both(frame, tmp_path, monkeypatch, use_dictionary=["verdict", "in_qpv"])
    assert ours == theirs
    monkeypatch.undo()
    pd.testing.assert_frame_equal(gpd.read_parquet(tmp_path / "rapide.parquet"), frame)


@pytest.mark.parametrize("case", ["polygon", "empty_point", "z", "no_crs"])
def test_other_geometries_written_by_geopandas(case: str, tmp_path: Path) -> None:
    frame = _places(50)
    geometry = frame.geometry.copy()
    if case == "polygon":
        geometry.iloc[3] = shapely.box(0, 45, 1, 46)
    elif case == "empty_point":
        geometry.iloc[3] = shapely.Point()
    elif case == "z":
        geometry.iloc[3] = shapely.Point(1, 45, 12)
    frame = frame.set_geometry(geometry, crs=None if case == "no_crs" else 4326)
    ours, theirs = _both(frame, tmp_path)
    assert ours == theirs
