"""The prepared reference persisted in the user cache: reused, never trusted blindly.

A small hand-made reference (two communes, one QPV) is written and read back; damaged,
truncated or stale files are rejected and rebuilt; the key follows the rules and the
files the catalogue would read. The CLI command ``territoires data prepare`` runs on the
real mirror.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box
from typer.testing import CliRunner

import territoires
from territoires import catalogue, engine, prepared, settings
from territoires.cli import app
from territoires.rules import preset


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A stand-in source file whose checksum the reference records."""
    path = tmp_path / "source.csv"
    path.write_text("code;nom\n1;un\n", encoding="utf-8")
    return path


def _reference(source: Path) -> engine.Reference:
    """Two communes side by side and one QPV, prepared, built from ``source``."""
    recorded = {"fichier": str(source), "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    communes = gpd.GeoDataFrame(
        {
            "code_insee": ["31001", "31002"],
            "nom": ["Un", "Deux"],
            "population": [100, 200],
            "dep": ["31", "31"],
            "reg": ["76", "76"],
            "densite7": pd.array([1, 6], dtype="Int64"),
            "cateaav2020": pd.array([11, 30], dtype="Int64"),
            "taav2017": pd.array([5, 0], dtype="Int64"),
            "tuu2017": pd.array([8, 0], dtype="Int64"),
        },
        geometry=[box(1.0, 43.0, 1.1, 43.1), box(1.1, 43.0, 1.2, 43.1)],
        crs=4326,
    )
    communes.attrs["sources"] = [recorded]
    qpv = gpd.GeoDataFrame(
        {"code_qpv": ["QP031001"], "nom_qpv": ["Centre"], "dep": ["31"]},
        geometry=[box(1.04, 43.04, 1.06, 43.06)],
        crs=4326,
    )
    return engine.Reference.build(preset(), qpv, communes).prepare()


def _places() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {"lon": rng.uniform(0.99, 1.21, 500), "lat": rng.uniform(42.99, 43.11, 500)}
    )


def test_written_reference_reads_back_and_classifies_the_same(source, tmp_path) -> None:
    ref = _reference(source)
    path = prepared.write(tmp_path / "ref.ref", ref)

    again = prepared.read(path)

    assert again is not None and again.commune_layers["metropole"].has_grid
    pd.testing.assert_frame_equal(
        territoires.classify(_places(), ref=again), territoires.classify(_places(), ref=ref)
    )


def test_layers_read_back_the_same_polygons(source, tmp_path) -> None:
    ref = _reference(source)

    again = prepared.read(prepared.write(tmp_path / "ref.ref", ref))

    for kind in ("commune_layers", "qpv_layers"):
        for name, layer in getattr(ref, kind).items():
            restored = getattr(again, kind)[name]
            for polygons in ("geometries", "metric_geometries"):
                assert list(shapely.to_wkb(getattr(restored, polygons))) == list(
                    shapely.to_wkb(getattr(layer, polygons))
                )


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-100] + bytes(b ^ 0xFF for b in data[-100:]),  # bytes flipped
        lambda data: b"autre chose" + data[11:],  # not a reference file
        lambda data: b"",
    ],
    ids=["tronque", "octets-modifies", "entete", "vide"],
)
def test_damaged_file_is_rejected_before_unpickling(source, tmp_path, damage) -> None:
    path = prepared.write(tmp_path / "ref.ref", _reference(source))
    path.write_bytes(damage(path.read_bytes()))

    assert prepared.read(path) is None


def test_changed_source_makes_the_file_stale(source, tmp_path) -> None:
    path = prepared.write(tmp_path / "ref.ref", _reference(source))
    source.write_text("code;nom\n1;autre\n", encoding="utf-8")

    assert prepared.read(path) is None
    source.unlink()
    assert prepared.read(path) is None


def test_load_or_build_rebuilds_a_corrupt_file_and_rewrites_it(
    source, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "cache")
    built = []

    def build() -> engine.Reference:
        built.append(1)
        return _reference(source)

    rules = preset()
    first = prepared.load_or_build(rules, None, build)
    second = prepared.load_or_build(rules, None, build)
    assert len(built) == 1 and second is not first  # the second one was read from disk

    path = prepared.path(rules, None)
    path.write_bytes(path.read_bytes()[:-10])
    prepared.load_or_build(rules, None, build)
    assert len(built) == 2
    assert prepared.read(path) is not None  # written again, whole


def test_key_follows_rules_code_and_source_files(tmp_path) -> None:
    rules = preset()
    base = prepared.key(rules, tmp_path)

    assert prepared.key(rules, tmp_path) == base
    assert prepared.key(rules.replace(near_distance_m=300), tmp_path) != base
    dataset = next(iter(catalogue.datasets().values()))
    target = tmp_path / dataset.mirror[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"nouveau fichier")
    assert prepared.key(rules, tmp_path) != base
    os.utime(target, ns=(1, 1))
    assert prepared.key(rules, tmp_path) != base


def test_only_the_most_recently_used_files_are_kept(source, tmp_path) -> None:
    ref = _reference(source)
    for number in range(prepared.KEEP + 2):
        path = prepared.write(tmp_path / f"{number}.ref", ref)
        os.utime(path, ns=(number * 10**9, number * 10**9))

    kept = sorted(int(path.stem) for path in tmp_path.glob("*.ref"))
    assert kept == list(range(2, prepared.KEEP + 2))


def test_cli_data_prepare_writes_the_reference(data_dir) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["data", "prepare"])
    assert result.exit_code == 0, result.output
    path = prepared.path(preset("fabriques-2019"), None)
    assert str(path) in result.output and path.is_file()
    assert Path(settings.cache_dir) in path.parents

    result = runner.invoke(app, ["data", "prepare", "--reconstruire"])
    assert result.exit_code == 0, result.output
    ref = prepared.read(path)
    assert len(ref.communes) > 30_000 and ref.commune_layers["metropole"].has_grid
