"""Where the time of ``classify`` goes: validation, projection, lookups, motif, assembly.

Run on demand (not part of the test suite)::

    TERRITOIRES_DATA_DIR=../shared/data python benchmarks/breakdown.py [--n 1000000]

The places of ``benchmarks/classify_1m.py`` (métropole, population-weighted) are read
by ``read_places`` then classified by ``engine.classify_frame`` in one thread (no
chunking), under :mod:`cProfile`, with the reference prepared beforehand. The inclusive
time of the functions that make each stage is printed, in seconds and as a share of
the total; profiling adds some overhead, so the shares matter more than the seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import territoires
from territoires import engine, places

#: Stages, each the inclusive time of functions (file name suffix, function name).
STAGES: dict[str, list[tuple[str, str]]] = {
    "validation (read_places)": [("places.py", "read_places")],
    "points EPSG:4326 (géométrie de sortie comprise)": [("creation.py", "points")],
    "commune (grille + tests exacts + tolérance)": [("engine.py", "_find_communes")],
    "QPV : contenance": [("engine.py", "_find_qpv")],
    "QPV : distance au plus proche": [("engine.py", "nearest_polygons")],
    "projection (CRS métrique)": [("transformer.py", "transform")],
    "motif": [("motifs.py", "compose")],
    "assemblage (colonnes, verdict)": [("engine.py", "assemble")],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="places to classify")
    args = parser.parse_args()

    from classify_1m import metropole, random_places  # the same places

    ref = territoires.reference()
    ref.prepare()
    table = random_places(metropole(territoires.load_communes()), args.n)
    engine.classify_frame(places.read_places(table.head(1000), geometry=False), ref)

    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    frame = places.read_places(table, geometry=False)
    engine.classify_frame(frame, ref)
    profile.disable()
    total = time.perf_counter() - started

    stats = pstats.Stats(profile).stats
    inclusive: dict[tuple[str, str], float] = {}
    for (file, _, name), (_, _, _, cumulative, _) in stats.items():
        for stage in STAGES.values():
            for suffix, function in stage:
                if file.endswith(suffix) and name == function:
                    inclusive[(suffix, function)] = max(
                        inclusive.get((suffix, function), 0.0), cumulative
                    )
    times = {label: sum(inclusive.get(key, 0.0) for key in keys) for label, keys in STAGES.items()}
    # Nested stages: the QPV containment includes the nearest search, the commune lookup
    # its own points, the assembly the motif.
    times["QPV : contenance"] -= times["QPV : distance au plus proche"]
    times["assemblage (colonnes, verdict)"] -= times["motif"]
    print(f"{args.n:,} lieux, un seul thread, sous cProfile : {total:.2f} s")
    for label, seconds in times.items():
        print(f"  {label:48s} {seconds:6.2f} s  {seconds / total:6.1%}")


if __name__ == "__main__":
    main()
