"""Benchmark: geocoding throughput against the local geocoder, batch vs one by one.

Run on demand (not part of the test suite)::

    python benchmarks/geocode.py [--n 10000] [--rate 0]

The local imitation of the geocoder (``territoires.testing``, synthetic answers for
any address) runs on 127.0.0.1 in this process, so the figures measure the client
(building the files, parsing the answers, the cache) and the HTTP round trips, not the
real service. Three runs of the same ``n`` distinct addresses, each with an empty cache
except the last:

* baseline: one ``/search`` request per address (``geocode(..., batch=False)``);
* batch: files of ``settings.geocoder_batch_size`` addresses sent to ``/search/csv``;
* cache: the batch run again, every answer read from the on-disk cache (no request).

The rate limit (``settings.geocoder_rate``, 50 requests/s for the Géoplateforme) is
lifted by default (``--rate 0``) so that the local round trip is measured; the time one
request per address would take at the real limit is printed beside it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from territoires import geocode, settings
from territoires.testing import GeocoderStub


def _addresses(n: int) -> list[str]:
    """``n`` distinct, plausible addresses."""
    streets = ("rue de la République", "avenue Jean Jaurès", "place du Marché", "chemin des Vignes")
    towns = ("31000 Toulouse", "69002 Lyon", "33000 Bordeaux", "59000 Lille", "13001 Marseille")
    return [
        f"{i // 20 + 1} {streets[i % len(streets)]} {towns[i % len(towns)]} lot {i}"
        for i in range(n)
    ]


def _timed(label: str, queries: list[str], *, batch: bool) -> float:
    start = time.perf_counter()
    out = geocode.geocode(queries, batch=batch)
    elapsed = time.perf_counter() - start
    placed = int(out["lon"].notna().sum())
    print(
        f"{label:<28} {elapsed:8.2f} s  {len(queries) / elapsed:10,.0f} adresses/s  "
        f"({placed:,} placées, {out.attrs['geocodage']['requetes']:,} requêtes)"
    )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="adresses (défaut 10 000)")
    parser.add_argument("--rate", type=float, default=0.0, help="requêtes/s (0 : sans limite)")
    args = parser.parse_args()
    queries = _addresses(args.n)
    settings.geocoder_rate = args.rate
    with tempfile.TemporaryDirectory() as folder, GeocoderStub(synthetic=True) as stub:
        settings.geocoder_url = stub.url
        settings.offline = False
        settings.cache_dir = Path(folder) / "single"
        single = _timed("une requête par adresse", queries, batch=False)
        settings.cache_dir = Path(folder) / "batch"
        batch = _timed(f"fichiers de {settings.geocoder_batch_size:,}", queries, batch=True)
        cached = _timed("cache (nouvelle exécution)", queries, batch=True)
    print(f"batch / une par une : {single / batch:6.1f} × plus rapide")
    print(f"cache / batch       : {batch / cached:6.1f} × plus rapide")
    print(
        f"à 50 requêtes/s (Géoplateforme), une requête par adresse prendrait au moins "
        f"{args.n / 50:,.0f} s pour {args.n:,} adresses"
    )


if __name__ == "__main__":
    main()
