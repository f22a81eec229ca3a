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

Then the command itself, ``python -m territoires classify FILE -o OUT.parquet
--partitions``, is run in a new process (Python's start, imports, pool, both passes,
writing, exit: what a user waits for), its time and CPU time printed beside the
function's (``--no-command`` to skip it).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
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
    parser.add_argument(
        "--no-command", action="store_true", help="skip the run of the command itself"
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
    if not args.no_command:
        rate = measure_command(source, args.folder, args.blocksize)
        for scheduler, function_rate in rates.items():
            print(f"commande / fonction sur {scheduler} : {rate / function_rate:.2f}× (débit)")
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


def measure_command(source: Path, folder: Path, blocksize: str | None) -> float:
    """Run ``territoires classify --partitions`` in a new process; print it, return places/s."""
    output = folder / f"{source.stem}_commande.parquet"
    shutil.rmtree(output, ignore_errors=True)
    command = [sys.executable, "-m", "territoires", "classify", str(source), "-o", str(output)]
    command += ["--partitions", *(["--bloc", blocksize] if blocksize else [])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_time = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    rows = sum(1 for _ in source.open("rb")) - 1
    rate = rows / elapsed
    print(
        f"commande   : {' '.join(command[1:])}\n"
        f"{'':10s}   {rows:,} lieux en {elapsed:.1f} s = {rate:,.0f} lieux/s (démarrage de "
        f"Python, imports, pool et sortie compris) ; CPU {cpu_time:.1f} s = "
        f"{cpu_time / rows * 1e6:.2f} µs par lieu"
    )
    shutil.rmtree(output, ignore_errors=True)
    return rate


if __name__ == "__main__":
    main()
