"""Benchmark: ``classify --partitions`` on a large CSV, throughput and bounded memory.

Run on demand (not part of the test suite)::

    TERRITOIRES_DATA_DIR=../shared/data python benchmarks/partitions.py --n 10000000

A CSV of ``--n`` rows (``nom,lon,lat``; places drawn like addresses: a commune picked
with probability proportional to its population, a uniform point in its bounding box;
1 % of coordinates missing) is written once in ``--folder`` (reused by later runs),
then classified by :func:`territoires.distributed.classify_file_in_partitions` into a
GeoParquet folder, with the reference prepared beforehand, once on dask's threads and
once on its processes (one pool of worker processes, each loading the prepared
reference), the ratio printed. The resident memory of the process and of its children
is sampled every 50 ms; the time covers both passes (hashing, then reading, validating,
classifying and writing), the CPU time that of the process and of its children.
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
        "--schedulers",
        default="threads,processes",
        help="dask schedulers measured one after the other (comma separated)",
    )
    args = parser.parse_args()

    source = args.folder / f"lieux_{args.n}.csv"
    if not source.is_file():
        started = time.perf_counter()
        write_places(source, args.n)
        print(f"CSV écrit : {source} en {time.perf_counter() - started:.0f} s")
    territoires.reference().prepare()
    print(f"machine    : {os.cpu_count()} cœurs, charge {os.getloadavg()}")
    rates = {}
    for scheduler in args.schedulers.split(","):
        rates[scheduler] = measure(source, args.folder, scheduler, args.blocksize)
    first, *others = rates
    for other in others:
        print(f"{other} / {first} : {rates[other] / rates[first]:.2f}× (débit)")
    print(f"charge     : {os.getloadavg()}")


def measure(source: Path, folder: Path, scheduler: str, blocksize: str | None) -> float:
    """Classify ``source`` on ``scheduler``, print time, CPU and memory; return places/s."""
    output = folder / f"{source.stem}.parquet"
    shutil.rmtree(output, ignore_errors=True)
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
    options = {"blocksize": blocksize} if blocksize else {}
    summary = classify_file_in_partitions(
        source, output, progress=False, scheduler=scheduler, **options
    )
    elapsed, cpu_time = time.perf_counter() - started, cpu() - cpu_started
    done.set()
    rate = summary["lignes"] / elapsed
    print(
        f"{scheduler:10s} : {summary['lignes']:,} lieux, {summary['partitions']} partitions de "
        f"{blocksize or 'taille par défaut'}, en {elapsed:.1f} s = {rate:,.0f} lieux/s ; "
        f"CPU {cpu_time:.1f} s = {cpu_time / summary['lignes'] * 1e6:.2f} µs par lieu "
        f"(processus et ses fils) ; pic de mémoire {peak[0] / 2**30:.2f} Gio (dont "
        f"{before / 2**30:.2f} Gio avant l'appel)"
    )
    print(f"{'':10s}   verdicts {summary['verdicts']}")
    return rate


if __name__ == "__main__":
    main()
