"""Benchmark: territoires against geopandas on a million places in métropole.

Run on demand (not part of the test suite)::

    TERRITOIRES_DATA_DIR=../shared/data python benchmarks/classify_1m.py [--n 1000000]

Places are drawn like real addresses in métropole: a commune picked with probability
proportional to its population, then a uniform point in the commune's bounding box (so
some points fall in a neighbouring commune, at sea or abroad, as real data does). In
one run, on the same points:

* **territoires**: ``territoires.classify`` end to end from a lon/lat table (validation,
  projection, commune and QPV lookups, nearest-QPV distance, verdicts and French motifs:
  every output column), the reference prepared beforehand (timed apart);
* **strong geopandas pipeline**: what a geopandas user writes in three lines, in
  Lambert-93 with the layers projected beforehand — points from lon/lat projected to
  Lambert-93, ``gpd.sjoin(points, communes, predicate="within")`` and
  ``gpd.sjoin_nearest(points, qpv, max_distance=d)`` with the rules' proximity
  distance ``d``. It answers less (no validation, no motif, no distance beyond ``d``);
* **row-by-row baseline**: ``sjoin`` then ``qpv.distance(point).min()`` per row, on a
  subsample (far too slow for a million rows).

The answers are compared: commune (where geopandas finds exactly one), QPV within
``d`` and its distance. Then a cold ``territoires check lon lat`` (new
process, prepared reference in the user cache) is timed against
``python -c "import geopandas"``, median of ``--repeat`` runs each, with the
package's bytecode compiled first as in an installed package (see
``benchmarks/cold_check.py``, which measures that ratio alone).

Throughput, ratios, the kernel share of the classification's CPU time and the peak
resident memory it adds are printed. The machine is shared: compare ratios measured in
the same run.
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psutil
import shapely
from vs_postgis import machine  # same description of the machine

import territoires
from territoires import crs, engine
from territoires.rules import preset

L93 = 2154


class PeakMemory:
    """Sample the resident memory of this process in a background thread."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._process = psutil.Process(os.getpid())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self.start = self._process.memory_info().rss
        self.peak = self.start
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def metropole(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Rows of ``frame`` (with a ``dep`` column) that lie in métropole."""
    return frame[crs.territory_names(frame["dep"].astype(str).to_numpy()) == "metropole"]


def random_places(communes: gpd.GeoDataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """Population-weighted random places in the bounding boxes of ``communes``."""
    rng = np.random.default_rng(seed)
    population = communes["population"].fillna(0).to_numpy(dtype=float) + 1.0
    picked = rng.choice(len(communes), size=n, p=population / population.sum())
    bounds = communes.geometry.bounds.to_numpy()[picked]
    return pd.DataFrame(
        {
            "lon": rng.uniform(bounds[:, 0], bounds[:, 2]),
            "lat": rng.uniform(bounds[:, 1], bounds[:, 3]),
        }
    )


def national_qpv(copies: int, seed: int = 0) -> gpd.GeoDataFrame:
    """A QPV layer of national size, built at run time (never stored).

    The mirror holds the QPV of Occitanie only, so that most places in métropole are in
    départements it does not cover (QPV « non vérifiable », cheap to answer); users
    download the national layer (about 1,300 QPV in métropole), where every place needs
    its QPV and its nearest QPV. The Occitanie QPV of each host commune, as one cluster,
    are copied ``copies`` times onto communes of at least 10,000 inhabitants drawn by
    population, each copy turned by a random angle about its cluster's centre, so that
    QPV lie in towns as real ones do. Each copy gets a code of its own (``QS…``), its
    name, and the département and commune of its host. Without provenance, the layer
    counts as covering the whole of France (:func:`territoires.loaders.qpv_departements`).
    """
    rng = np.random.default_rng(seed)
    qpv = territoires.load_qpv(2015).to_crs(L93)
    communes = metropole(territoires.load_communes())
    towns = communes[communes["population"].fillna(0) >= 10_000]
    population = towns["population"].to_numpy(dtype=float)
    clusters = list(qpv.groupby("insee_com").indices.values())
    hosts = rng.choice(
        len(towns), size=copies * len(clusters), replace=False, p=population / population.sum()
    )
    centres = shapely.centroid(towns.to_crs(L93).geometry.to_numpy()[hosts])
    polygons = qpv.geometry.to_numpy()
    rows = []
    for copy, centre in enumerate(centres):
        members = clusters[copy % len(clusters)]
        origin = shapely.centroid(shapely.union_all(polygons[members]))
        turned = shapely.affinity.rotate(
            shapely.GeometryCollection(list(polygons[members])), rng.uniform(0, 360), origin=origin
        )
        moved = shapely.affinity.translate(turned, centre.x - origin.x, centre.y - origin.y)
        host = towns.iloc[hosts[copy]]
        for member, shape in zip(members, moved.geoms, strict=True):
            rows.append(
                {
                    "code_qpv": f"QS{len(rows):06d}",
                    "nom_qpv": qpv["nom_qpv"].iloc[member],
                    "insee_com": host["code_insee"],
                    "dep": host["dep"],
                    "geometry": shape,
                }
            )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=L93).to_crs(crs.GEOGRAPHIC)


def geopandas_pipeline(
    table: pd.DataFrame,
    communes_l93: gpd.GeoDataFrame,
    qpv_l93: gpd.GeoDataFrame,
    within_m: float,
) -> pd.DataFrame:
    """The strong geopandas pipeline: ``sjoin(within)`` + ``sjoin_nearest(max_distance)``."""
    points = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(table["lon"], table["lat"]), crs=crs.GEOGRAPHIC
    ).to_crs(L93)
    communes = gpd.sjoin(points, communes_l93, how="left", predicate="within")
    qpv = gpd.sjoin_nearest(points, qpv_l93, how="left", max_distance=within_m, distance_col="d")
    return pd.DataFrame(
        {
            "code_insee": communes["code_insee"].groupby(level=0).agg(list),
            "code_qpv": qpv["code_qpv"].groupby(level=0).first(),
            "distance": qpv["d"].groupby(level=0).first(),
        }
    )


def row_by_row(
    table: pd.DataFrame, communes_l93: gpd.GeoDataFrame, qpv_l93: gpd.GeoDataFrame
) -> pd.DataFrame:
    """The naive way: ``sjoin`` then the nearest QPV distance computed row by row."""
    points = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(table["lon"], table["lat"]),
        crs=crs.GEOGRAPHIC,
        index=table.index,
    ).to_crs(L93)
    communes = gpd.sjoin(points, communes_l93, how="left")
    communes = communes[~communes.index.duplicated()]
    distance = points.geometry.apply(lambda point: qpv_l93.distance(point).min())
    return pd.DataFrame({"code_insee": communes["code_insee"], "distance": distance})


def compare(
    ours: pd.DataFrame, theirs: pd.DataFrame, communes_l93: gpd.GeoDataFrame, within_m: float
) -> dict[str, str]:
    """Agreement of territoires with the geopandas pipeline, on what both answer.

    territoires tests containment on the published EPSG:4326 polygons, geopandas on the
    same polygons projected to Lambert-93, whose edges differ by centimetres: the points
    where the communes differ are measured against the commune outlines.
    """
    single = theirs["code_insee"].map(lambda codes: len(codes) == 1 and pd.notna(codes[0]))
    single = single.to_numpy(dtype=bool)
    their_commune = theirs["code_insee"].map(lambda codes: codes[0]).to_numpy(dtype=object)
    differ = single & (ours["code_insee"].fillna("").to_numpy(dtype=object) != their_commune)
    outlines = shapely.union_all(communes_l93.boundary.to_numpy())
    points = gpd.GeoSeries(ours.geometry.to_numpy()[differ], crs=crs.GEOGRAPHIC).to_crs(L93)
    to_outline = shapely.distance(points.to_numpy(), outlines)
    checked = ours["in_qpv"].notna().to_numpy()
    distance = ours["distance_qpv_m"].to_numpy(dtype=float)
    ours_near = (distance <= within_m) & checked
    theirs_near = theirs["code_qpv"].notna().to_numpy()
    # the column is rounded to the decimetre: within 5 cm of the threshold it cannot say
    # on which side the exact distance lies (the verdict, taken before rounding, can)
    edge = np.abs(distance - within_m) <= 0.05
    near = (ours_near == theirs_near)[checked & ~edge].mean()
    both = checked & ours_near & theirs_near
    gap = np.abs(ours["distance_qpv_m"].to_numpy()[both] - theirs["distance"].to_numpy()[both])
    nearest = ours["nearest_qpv_code"].to_numpy()[both]
    other = nearest != theirs["code_qpv"].to_numpy()[both]
    same_qpv = 1 - other.mean() if len(other) else 1.0
    # a point inside two QPV (overlapping copies of the synthetic national layer) is at
    # 0 m of both: territoires names the first of the reference, geopandas either
    inside_two = (ours["qpv_code"].fillna("").str.contains(";").to_numpy()[both] & other).sum()
    return {
        "commune identique (point dans une seule commune)": (
            f"{1 - differ.sum() / single.sum():.4%} de {single.sum():,} ; les "
            f"{differ.sum()} autres à {to_outline.max(initial=0) * 100:.1f} cm au plus "
            "d'une limite communale"
        ),
        f"à {within_m:g} m d'un QPV au plus, même réponse": (
            f"{near:.4%} de {(checked & ~edge).sum():,} (hors {(checked & edge).sum()} à "
            "5 cm du seuil, que la colonne arrondie au dm ne départage pas)"
        ),
        f"même QPV le plus proche (à {within_m:g} m au plus)": (
            f"{same_qpv:.4%} de {both.sum():,}"
            + (
                f" ; {other.sum()} autres, dont {inside_two} dans deux QPV à la fois (à 0 m "
                "des deux)"
                if other.any()
                else ""
            )
        ),
        "écart max de distance (arrondi au dm)": f"{gap.max(initial=0):.3f} m",
    }


def cold_ratio(lon: float, lat: float, repeat: int) -> tuple[float, float]:
    """Median seconds of a cold ``territoires check`` and of ``import geopandas``."""
    cli = [str(Path(sys.executable).with_name("territoires")), "check", str(lon), str(lat)]
    bare = [sys.executable, "-c", "import geopandas"]
    compileall.compile_dir(Path(territoires.__file__).parent, quiet=1)  # as pip install does
    subprocess.run(cli, check=True, capture_output=True)  # writes the prepared reference
    times: dict[str, list[float]] = {"cli": [], "bare": []}
    for _ in range(repeat):
        for name, command in (("bare", bare), ("cli", cli)):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times[name].append(time.perf_counter() - started)
    return float(np.median(times["cli"])), float(np.median(times["bare"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="places to classify")
    parser.add_argument("--baseline-n", type=int, default=2_000, help="row-by-row subsample")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (median reported)")
    parser.add_argument(
        "--qpv-national",
        type=int,
        default=0,
        metavar="COPIES",
        help="QPV layer of national size: the Occitanie QPV copied COPIES times "
        "(13 gives about 1,400 QPV in métropole); default: the mirror's layer",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    if args.qpv_national:
        qpv = national_qpv(args.qpv_national)
        ref = engine.Reference.build(preset(), qpv, territoires.load_communes())
    else:
        ref = territoires.reference()
        qpv = territoires.load_qpv(ref.rules.qpv_vintage)
    ref.prepare()
    prepared = time.perf_counter() - started
    communes = metropole(territoires.load_communes())
    communes_l93 = communes[["code_insee", "geometry"]].to_crs(L93)
    qpv_l93 = metropole(qpv)[["code_qpv", "geometry"]].to_crs(L93)
    table = random_places(communes, args.n)

    territoires.classify(table.head(10_000), ref=ref)  # warm-up: CRS transformers, threads
    within_m = ref.rules.near_distance_m
    geopandas_pipeline(table.head(10_000), communes_l93, qpv_l93, within_m)
    ours_times, theirs_times, ours_cpu, theirs_cpu, ours_system = [], [], [], [], []
    with PeakMemory() as memory:
        for _ in range(args.repeat):
            started, cpu, system = time.perf_counter(), time.process_time(), os.times().system
            result = territoires.classify(table, ref=ref)
            ours_times.append(time.perf_counter() - started)
            ours_cpu.append(time.process_time() - cpu)
            ours_system.append(os.times().system - system)
            if _ < args.repeat - 1:
                del result
    ours_memory = memory.peak - memory.start
    for _ in range(args.repeat):
        started, cpu = time.perf_counter(), time.process_time()
        theirs = geopandas_pipeline(table, communes_l93, qpv_l93, within_m)
        theirs_times.append(time.perf_counter() - started)
        theirs_cpu.append(time.process_time() - cpu)
    ours, strong = float(np.median(ours_times)), float(np.median(theirs_times))

    sample = table.sample(min(args.baseline_n, len(table)), random_state=0)
    started = time.perf_counter()
    naive = row_by_row(sample, communes_l93, qpv_l93)
    naive_rate = len(sample) / (time.perf_counter() - started)
    naive_ok = (naive["code_insee"] == result.loc[sample.index, "code_insee"]).mean()
    checked = result.loc[sample.index, "distance_qpv_m"].notna()
    naive_gap = np.abs(
        naive["distance"][checked].to_numpy(dtype=float)
        - result.loc[sample.index, "distance_qpv_m"][checked].to_numpy(dtype=float)
    )

    cold, bare = cold_ratio(1.4442, 43.6047, args.repeat)

    print(f"machine                  : {machine()}, Python {platform.python_version()}")
    print(f"charge (1, 5, 15 min)    : {os.getloadavg()}")
    layer = f"nationale synthétique, {len(qpv):,} QPV" if args.qpv_national else "du miroir"
    print(f"couche QPV               : {layer} ; {len(metropole(qpv)):,} QPV en métropole")
    print(f"référence préparée       : {prepared:.2f} s (une fois ; grille des communes comprise)")
    print(
        f"territoires              : {args.n:,} lieux en {ours:.2f} s (médiane de {args.repeat}, "
        f"meilleur {min(ours_times):.2f} s) = {args.n / ours:,.0f} lieux/s"
    )
    print(f"  mémoire ajoutée (pic)  : {ours_memory / 2**20:,.0f} Mio")
    print(
        f"geopandas sjoin+nearest  : {args.n:,} lieux en {strong:.2f} s (médiane, meilleur "
        f"{min(theirs_times):.2f} s) = {args.n / strong:,.0f} lieux/s"
    )
    print(f"  rapport territoires / geopandas (temps écoulé) : {strong / ours:.2f}×")
    print(
        f"  temps CPU (médianes) : territoires {np.median(ours_cpu):.2f} s (2 threads), "
        f"geopandas {np.median(theirs_cpu):.2f} s : rapport "
        f"{np.median(theirs_cpu) / np.median(ours_cpu):.2f}×"
    )
    print(
        f"  dont temps noyau (territoires) : {np.median(ours_system):.2f} s "
        "(surtout les pages de mémoire touchées pour la première fois)"
    )
    for label, value in compare(result, theirs, communes_l93, within_m).items():
        print(f"  {label:48s}: {value}")
    print(
        f"ligne à ligne (naïf)     : {naive_rate:,.0f} lieux/s sur {len(sample):,} ; "
        f"territoires {args.n / ours / naive_rate:,.0f}× plus rapide ; commune identique "
        f"{naive_ok:.2%}, écart max de distance {naive_gap.max(initial=0):.3f} m"
    )
    print(
        f"check à froid            : {cold:.2f} s contre {bare:.2f} s pour import geopandas "
        f"(rapport {cold / bare:.2f}, médianes de {args.repeat})"
    )
    print("verdicts                 :", result.attrs["verdicts"])


if __name__ == "__main__":
    main()
