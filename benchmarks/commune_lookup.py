"""Commune lookup of a million places in métropole: the grid plus the exact test.

Run on demand (not part of the test suite)::

    TERRITOIRES_DATA_DIR=../shared/data python benchmarks/commune_lookup.py [--repeat 5]
        [--compare OTHER/src]

The places are those of ``benchmarks/classify_1m.py`` (address-like: a commune drawn by
population, a uniform point in its bounding box). Each run, in a new process with the
prepared reference read from the user cache, looks up their communes as the engine
does, by batches of 100,000 (the engine's commune lookup: the commune grid, the exact
polygon test for the points the grid leaves, the nearest commune within the tolerance
for points outside every commune), and prints its CPU time (``time.process_time``) and
the share of points the grid leaves to the exact test. With ``--compare``, the same
runs with another source tree first on ``PYTHONPATH`` (e.g. the main branch) alternate
with this one, so that a load change on the shared machine affects both alike; the
medians and their ratio are printed. Both trees must give the same communes: their
digests are compared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import shapely

BATCH = 100_000


def child(n: int) -> dict[str, float | str]:
    """Look the communes up in this process; times, share tested exactly, digest."""
    import territoires
    from territoires import engine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # commune join report
        ref = territoires.reference().prepare()
    layer = ref.commune_layers["metropole"]
    rng = np.random.default_rng(0)
    population = ref.communes["population"].to_numpy(dtype=float, na_value=0)[layer.rows] + 1
    picked = rng.choice(len(layer.rows), size=n, p=population / population.sum())
    bounds = shapely.bounds(layer.geometries[picked])
    lon, lat = rng.uniform(bounds[:, 0], bounds[:, 2]), rng.uniform(bounds[:, 1], bounds[:, 3])

    points = shapely.points(lon, lat)
    find = engine._find_communes  # the engine's own lookup, timed alone
    find(points[:BATCH], lon[:BATCH], lat[:BATCH], layer, "metropole")  # warm-up: decoding
    cpu, communes = time.process_time(), []
    for start in range(0, n, BATCH):
        part = slice(start, start + BATCH)
        communes.append(find(points[part], lon[part], lat[part], layer, "metropole")[0])
    cpu = time.process_time() - cpu
    known = np.concatenate(
        [layer.grid.lookup(lon[s : s + BATCH], lat[s : s + BATCH])[0] for s in range(0, n, BATCH)]
    )
    digest = hashlib.sha256(np.concatenate(communes).astype(np.int64).tobytes()).hexdigest()
    return {"cpu": cpu, "tested": 1 - known.mean(), "digest": digest}


def run(tree: str | None, n: int) -> dict[str, float | str]:
    """:func:`child` in a new process, with ``tree`` (a ``src`` folder) first on the path."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(tree).resolve()), *filter(None, [env.get("PYTHONPATH")])]
        )
    found = subprocess.run(
        [sys.executable, __file__, "--child", "--n", str(n)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(found.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="places")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--compare", help="another src folder, measured in the same rounds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.n)))
        return
    trees = {"ce code": None, **({args.compare: args.compare} if args.compare else {})}
    for tree in trees.values():
        run(tree, 1000)  # the prepared reference written to the cache, unmeasured
    runs: dict[str, list[dict[str, float | str]]] = {name: [] for name in trees}
    for _ in range(args.repeat):
        for name, tree in trees.items():
            runs[name].append(run(tree, args.n))
    print(f"charge moyenne : {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    cpu = {}
    for name, measured in runs.items():
        cpu[name] = statistics.median(float(m["cpu"]) for m in measured)
        print(
            f"{name:24s}: {args.n:,} lieux, CPU {cpu[name]:.3f} s (médiane de {args.repeat}, "
            f"de {min(float(m['cpu']) for m in measured):.3f} à "
            f"{max(float(m['cpu']) for m in measured):.3f} s) ; testés exactement : "
            f"{float(measured[0]['tested']):.2%}"
        )
    if args.compare:
        same = {m["digest"] for measured in runs.values() for m in measured}
        print(f"communes identiques : {'oui' if len(same) == 1 else 'NON'}")
        print(f"rapport {args.compare} / ce code : {cpu[args.compare] / cpu['ce code']:.2f}×")


if __name__ == "__main__":
    main()
