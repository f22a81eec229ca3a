"""Cold ``territoires check lon lat`` against ``python -c "import geopandas"``, interleaved.

Run on demand (not part of the test suite)::

    TERRITOIRES_DATA_DIR=../shared/data python benchmarks/cold_check.py [--repeat 9]
        [--compare OTHER/src]

Each round runs, in turn, ``import geopandas``, then ``territoires check`` in a new
process (the prepared reference already in the user cache: one unmeasured run writes
it first), and with ``--compare`` the same check with another source tree first on
``PYTHONPATH`` (e.g. the main branch, to measure a change against it in the same
session). Rounds alternate the commands so that a load change on a shared machine
affects them alike. The medians of the elapsed time and of the CPU time (user + system
of the child process) are printed with the ratio to ``import geopandas``: the goal is a
cold check at most twice as long.

The bytecode of each measured ``territoires`` package is compiled first, as ``pip
install`` does for geopandas and for territoires itself: with ``PYTHONDONTWRITEBYTECODE``
set and no ``__pycache__`` (an editable install), every run would compile the package
from source (about 0.05 s), which no installed command does.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: Toulouse, place du Capitole: a point of métropole answered by the commune grid.
LON, LAT = 1.4442, 43.6047


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Elapsed and CPU seconds (user + system) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu


def with_source(tree: str | None) -> dict[str, str]:
    """The environment with ``tree`` (a ``src`` folder) first on ``PYTHONPATH``."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(tree).resolve()), *filter(None, [env.get("PYTHONPATH")])]
        )
    return env


def package_folder(env: dict[str, str]) -> Path:
    """Folder of the ``territoires`` package imported with ``env``."""
    found = subprocess.run(
        [sys.executable, "-c", "import territoires; print(territoires.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return Path(found.stdout.strip()).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="interleaved rounds")
    parser.add_argument("--compare", help="another src folder, checked in the same rounds")
    args = parser.parse_args()
    check = [sys.executable, "-m", "territoires", "check", str(LON), str(LAT)]
    commands = {
        "import geopandas": ([sys.executable, "-c", "import geopandas"], with_source(None)),
        "check": (check, with_source(None)),
    }
    if args.compare:
        commands[f"check ({args.compare})"] = (check, with_source(args.compare))
    for name, (command, env) in commands.items():
        if name != "import geopandas":
            folder = package_folder(env)
            compileall.compile_dir(folder, quiet=1)
            print(f"bytecode compilé : {folder}")
        subprocess.run(command, check=True, capture_output=True, env=env)  # prepared reference
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, (command, env) in commands.items():
            runs[name].append(timed(command, env))
    print(f"charge moyenne : {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    bare_wall = statistics.median(wall for wall, _ in runs["import geopandas"])
    bare_cpu = statistics.median(cpu for _, cpu in runs["import geopandas"])
    for name, measured in runs.items():
        wall = statistics.median(w for w, _ in measured)
        cpu = statistics.median(c for _, c in measured)
        print(
            f"{name:32s}: {wall:.3f} s écoulées ({wall / bare_wall:.2f}×), "
            f"CPU {cpu:.3f} s ({cpu / bare_cpu:.2f}×), médianes de {args.repeat}"
        )


if __name__ == "__main__":
    main()
