"""Benchmark: ``classify --partitions`` on a large CSV, throughput and bounded memory.

Run on demand (not part of the test suite)::

    TERRITOIRES_DATA_DIR=../shared/data python benchmarks/partitions.py --n 10000000

A CSV of ``--n`` rows (``nom,lon,lat``; places drawn like addresses: a commune picked
with probability proportional to its population, a uniform point in its bounding box;
1 % of coordinates missing) is written once in ``--folder`` (reused by later runs),
then classified by :func:`territoires.distributed.classify_file_in_partitions` into a
GeoParquet folder, on the local scheduler, with the reference prepared beforehand. The
resident memory of the process and of its children is sampled every 50 ms; the time
covers both passes (reading and validating, then classifying and writing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

import territoires
from territoires.distributed import classify_file_in_partitions


def write_places(path: Path, n: int, seed: int = 10) -> None:
    """Write ``n`` population-weighted random places to a CSV file, in blocks."""
    communes = territoires.load_communes()
    rng = np.random.default_rng(seed)
    weight = communes["population"].fillna(0).to_numpy(float) + 1
    bounds = communes.geometry.bounds.to_numpy()
    block = 1_000_000
    part = path.with_suffix(".part")
    for start in range(0, n, block):
        size = min(block, n - start)
        picked = bounds[rng.choice(len(communes), size, p=weight / weight.sum())]
        lat = rng.uniform(picked[:, 1], picked[:, 3])
        lat[rng.random(size) < 0.01] = np.nan
        pd.DataFrame(
            {
                "nom": [f"lieu {i}" for i in range(start, start + size)],
                "lon": rng.uniform(picked[:, 0], picked[:, 2]),
                "lat": lat,
            }
        ).to_csv(
            part, mode="a" if start else "w", header=not start, index=False, float_format="%.6f"
        )
    part.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="rows of the CSV")
    parser.add_argument("--folder", type=Path, default=Path("/tmp"), help="where files go")
    parser.add_argument(
        "--blocksize", default=None, help="bytes per partition (default: the library's)"
    )
    parser.add_argument(
        "--scheduler", default=None, help="dask scheduler: threads, processes (default: dask's)"
    )
    args = parser.parse_args()

    source = args.folder / f"lieux_{args.n}.csv"
    if not source.is_file():
        started = time.perf_counter()
        write_places(source, args.n)
        print(f"CSV écrit : {source} en {time.perf_counter() - started:.0f} s")
    output = args.folder / f"lieux_{args.n}.parquet"
    shutil.rmtree(output, ignore_errors=True)

    territoires.reference().prepare()
    process, peak, done = psutil.Process(), [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            rss = process.memory_info().rss
            rss += sum(child.memory_info().rss for child in process.children(recursive=True))
            peak[0] = max(peak[0], rss)
            time.sleep(0.05)

    def cpu() -> float:
        times = process.cpu_times()
        return times.user + times.system + times.children_user + times.children_system

    before = process.memory_info().rss
    threading.Thread(target=watch, daemon=True).start()
    started, cpu_started = time.perf_counter(), cpu()
    options = {"blocksize": args.blocksize} if args.blocksize else {}
    summary = classify_file_in_partitions(
        source, output, progress=False, scheduler=args.scheduler, **options
    )
    elapsed, cpu_time = time.perf_counter() - started, cpu() - cpu_started
    done.set()
    rate = summary["lignes"] / elapsed
    print(f"machine    : {os.cpu_count()} cœurs, charge {os.getloadavg()}")
    print(
        f"partitions : {summary['lignes']:,} lieux, {summary['partitions']} partitions de "
        f"{args.blocksize or 'taille par défaut'} ({args.scheduler or 'threads'}), "
        f"en {elapsed:.1f} s = {rate:,.0f} lieux/s"
    )
    print(
        f"temps CPU  : {cpu_time:.1f} s = {cpu_time / summary['lignes'] * 1e6:.2f} µs par lieu "
        "(processus et ses fils)"
    )
    print(
        f"mémoire    : pic {peak[0] / 2**30:.2f} Gio (dont {before / 2**30:.2f} Gio avant "
        "l'appel : référence préparée et interpréteur)"
    )
    print(f"verdicts   : {summary['verdicts']}")


if __name__ == "__main__":
    main()
