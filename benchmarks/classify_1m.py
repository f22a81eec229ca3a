"""Benchmark: classify a million places over France, against a naive geopandas baseline.

Run on demand (not part of the test suite)::

    TERRITOIRES_DATA_DIR=../shared/data python benchmarks/classify_1m.py [--n 1000000]

Places are drawn like real addresses: a commune picked with probability proportional to
its population, then a uniform point in the commune's bounding box (so some points fall
in a neighbouring commune, at sea or abroad, as real data does), plus 1 % of rows with
missing coordinates. Both engines classify in the same run:

* territoires: ``territoires.classify`` end to end from a lon/lat table (validation,
  projection per territory, STRtree bulk queries, verdicts and French motifs), with the
  reference layers prepared once beforehand (timed separately);
* baseline: what one writes naively with geopandas — ``gpd.sjoin`` with the communes
  and the QPV, then the distance to the nearest QPV computed row by row
  (``qpv.distance(point).min()``). It is timed on a subsample (it is far too slow for a
  million rows) and its throughput compared; the two engines' answers are checked equal
  on that subsample.

Throughput, ratio and the peak resident memory of the process are printed.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import psutil

import territoires
from territoires import crs


class PeakMemory:
    """Sample the resident memory of this process in a background thread."""

    def __init__(self, interval: float = 0.01) -> None:
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
        self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def random_places(communes: gpd.GeoDataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """Population-weighted random places with 1 % missing coordinates."""
    rng = np.random.default_rng(seed)
    population = communes["population"].fillna(0).to_numpy(dtype=float) + 1.0
    picked = rng.choice(len(communes), size=n, p=population / population.sum())
    bounds = communes.geometry.bounds.to_numpy()[picked]
    lon = rng.uniform(bounds[:, 0], bounds[:, 2])
    lat = rng.uniform(bounds[:, 1], bounds[:, 3])
    lat[rng.random(n) < 0.01] = np.nan
    return pd.DataFrame({"nom": [f"lieu {i}" for i in range(n)], "lon": lon, "lat": lat})


def naive_baseline(
    table: pd.DataFrame, qpv: gpd.GeoDataFrame, communes: gpd.GeoDataFrame
) -> pd.DataFrame:
    """The straightforward geopandas way, métropole only (Lambert-93)."""
    points = gpd.GeoDataFrame(
        table, geometry=gpd.points_from_xy(table["lon"], table["lat"]), crs=crs.GEOGRAPHIC
    ).to_crs(2154)
    qpv_l93 = qpv.to_crs(2154)
    in_commune = gpd.sjoin(points, communes.to_crs(2154)[["code_insee", "geometry"]], "left")
    in_commune = in_commune[~in_commune.index.duplicated()]
    in_qpv = gpd.sjoin(points, qpv_l93[["code_qpv", "geometry"]], "left", predicate="intersects")
    in_qpv = in_qpv[~in_qpv.index.duplicated()]
    distance = points.geometry.apply(lambda point: qpv_l93.distance(point).min())
    return pd.DataFrame(
        {
            "code_insee": in_commune["code_insee"],
            "in_qpv": in_qpv["code_qpv"].notna(),
            "distance_qpv_m": distance,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="places to classify")
    parser.add_argument("--baseline-n", type=int, default=5_000, help="baseline subsample")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (median reported)")
    args = parser.parse_args()

    started = time.perf_counter()
    ref = territoires.reference()
    prepared = time.perf_counter() - started
    communes = territoires.load_communes()
    qpv = territoires.load_qpv(ref.rules.qpv_vintage)
    table = random_places(communes, args.n)

    territoires.classify(table.head(1_000), ref=ref)  # warm-up: CRS transformers, threads
    times = []
    with PeakMemory() as memory:
        before = memory.peak
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = territoires.classify(table, ref=ref)
            times.append(time.perf_counter() - started)
    elapsed = float(np.median(times))
    ours = args.n / elapsed

    # Baseline on a métropole subsample of valid rows (it knows nothing of other CRSs).
    valid = result[(result["territoire"] == "metropole") & result["code_insee"].notna()]
    sample = valid.sample(min(args.baseline_n, len(valid)), random_state=0).index
    started = time.perf_counter()
    naive = naive_baseline(table.loc[sample], qpv, communes)
    naive_elapsed = time.perf_counter() - started
    baseline = len(sample) / naive_elapsed

    checked = result.loc[sample, "in_qpv"].notna()
    same_commune = (naive["code_insee"] == result.loc[sample, "code_insee"]).mean()
    same_qpv = (naive["in_qpv"][checked] == result.loc[sample, "in_qpv"][checked]).all()
    gap = (naive["distance_qpv_m"][checked] - result.loc[sample, "distance_qpv_m"][checked]).abs()

    print(
        f"machine                  : {os.cpu_count()} cœurs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} Gio"
    )
    print(f"référence préparée       : {prepared:.2f} s (une fois, mise en cache)")
    print(
        f"territoires              : {args.n:,} lieux en {elapsed:.2f} s (médiane de "
        f"{args.repeat} ; meilleur {min(times):.2f} s) = {ours:,.0f} lieux/s"
    )
    print(
        f"mémoire (RSS)            : pic {memory.peak / 2**20:,.0f} Mio, "
        f"+{(memory.peak - before) / 2**20:,.0f} Mio pendant la classification"
    )
    print(
        f"référence naïve geopandas: {len(sample):,} lieux en {naive_elapsed:.2f} s "
        f"= {baseline:,.0f} lieux/s"
    )
    print(f"rapport                  : territoires {ours / baseline:,.0f} fois plus rapide")
    print(
        f"accord sur l'échantillon : commune {same_commune:.2%}, "
        f"dans un QPV identique={same_qpv}, écart max de distance {gap.max():.3f} m"
    )
    print("verdicts                 :", result.attrs["verdicts"])


if __name__ == "__main__":
    main()
