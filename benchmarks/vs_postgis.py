"""Benchmark: the same classification in PostGIS and in territoires, side by side.

The script installs nothing and starts nothing: it needs a PostgreSQL server with
PostGIS, reachable through the libpq connection string in ``TERRITOIRES_PG_DSN``, and
the ``psycopg`` package (``pip install "psycopg[binary]>=3.1"``). On Debian 12, as root,
a throw-away server listening on the loopback interface only::

    apt-get update
    apt-get install -y --no-install-recommends postgresql-15 postgresql-15-postgis-3
    PGBIN=/usr/lib/postgresql/15/bin
    PGDATA=$(mktemp -d /tmp/pg-territoires.XXXX) && chown postgres "$PGDATA"
    su postgres -c "$PGBIN/initdb -D $PGDATA -U postgres -A trust --no-sync" >/dev/null
    su postgres -c "$PGBIN/pg_ctl -D $PGDATA -l $PGDATA/server.log -w start \\
        -o '-c listen_addresses=127.0.0.1 -p 54329 -c unix_socket_directories=$PGDATA'"
    export TERRITOIRES_PG_DSN="host=127.0.0.1 port=54329 user=postgres dbname=postgres"
    TERRITOIRES_DATA_DIR=../shared/data python benchmarks/vs_postgis.py --n 1000000
    su postgres -c "$PGBIN/pg_ctl -D $PGDATA -m fast stop" && rm -rf "$PGDATA"

(``-A trust`` is acceptable only because the server listens on 127.0.0.1 alone and is
deleted afterwards.)

What is compared, in the same run and on the same points:

* the reference layers are the ones territoires uses (QPV of the default rules' vintage,
  i.e. the 2015 mirror, and the communes with their "hors grands centres urbains" flag
  from the urban rule); **métropole only**, in Lambert-93 (EPSG:2154) for distances and
  EPSG:4326 for containment, as territoires does (overseas territories have other
  metric CRSs: left out here for simplicity);
* ``--n`` places drawn like real addresses over métropole (a commune picked with
  probability proportional to its population, a uniform point in its bounding box: some
  fall at sea or abroad), loaded with ``COPY``;
* PostGIS: GiST indexes on every geometry, then one SQL statement per step: commune
  containing the point (``ST_Intersects``, lowest row on a shared boundary, as
  territoires), else nearest commune within 1 km (KNN ``<->`` + ``ST_DWithin``); for
  points whose département the QPV layer covers, inside a QPV (``ST_Intersects``),
  nearest QPV and its distance (``LATERAL`` KNN ``<->`` + ``ST_Distance``) and
  proximity (``ST_DWithin`` 500 m); the verdict by the same precedence;
* territoires: :func:`territoires.classify` on the same lon/lat table (validation,
  projection, spatial queries, verdicts and French motifs), reference prepared once
  beforehand (its time is printed apart, like the PostGIS loading and indexing).

Both times and their ratio are printed, then the agreement: verdicts compared row by row,
mismatches counted by pair of verdicts, with examples. Points lying exactly on a shared
commune boundary or at a few millimetres from a distance threshold (500 m from a QPV,
1 km from the communes) may differ: the two engines project points with their own PROJ
build and evaluate boundaries with their own floating-point code.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import subprocess
import sys
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import psutil
import shapely

import territoires
from territoires import crs

DSN_ENV = "TERRITOIRES_PG_DSN"

SCHEMA = """
DROP SCHEMA IF EXISTS territoires_bench CASCADE;
CREATE SCHEMA territoires_bench;
SET search_path = territoires_bench, public;
CREATE UNLOGGED TABLE communes (
    gid integer PRIMARY KEY, code_insee text, dep text, hors_gcu boolean,
    qpv_verifiable boolean, geom geometry(Geometry, 4326), geom_l93 geometry(Geometry, 2154));
CREATE UNLOGGED TABLE qpv (
    gid integer PRIMARY KEY, code_qpv text,
    geom geometry(Geometry, 4326), geom_l93 geometry(Geometry, 2154));
CREATE UNLOGGED TABLE points (id bigint PRIMARY KEY, lon float8, lat float8);
"""

INDEXES = """
CREATE INDEX ON communes USING gist (geom);
CREATE INDEX ON communes USING gist (geom_l93);
CREATE INDEX ON qpv USING gist (geom);
CREATE INDEX ON qpv USING gist (geom_l93);
ANALYZE communes; ANALYZE qpv; ANALYZE points;
"""

#: Point geometries, then the classification, as territoires defines it.
CLASSIFY = [
    """
    CREATE UNLOGGED TABLE located AS
    SELECT p.id, g.geom, ST_Transform(g.geom, 2154) AS geom_l93
    FROM points p, LATERAL (SELECT ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326) AS geom) g
    """,
    """
    CREATE UNLOGGED TABLE in_commune AS
    SELECT l.id, l.geom, l.geom_l93, COALESCE(inside.gid, near.gid) AS gid
    FROM located l
    LEFT JOIN LATERAL (
        SELECT c.gid FROM communes c WHERE ST_Intersects(c.geom, l.geom)
        ORDER BY c.gid LIMIT 1) inside ON true
    LEFT JOIN LATERAL (
        SELECT c.gid FROM communes c
        WHERE inside.gid IS NULL AND ST_DWithin(c.geom_l93, l.geom_l93, 1000)
        ORDER BY c.geom_l93 <-> l.geom_l93 LIMIT 1) near ON true
    """,
    """
    CREATE UNLOGGED TABLE verdicts AS
    WITH measured AS (
        SELECT i.id, c.code_insee, c.hors_gcu,
               q.dans_qpv, n.distance_qpv_m, q.proche_qpv
        FROM in_commune i
        LEFT JOIN communes c ON c.gid = i.gid
        LEFT JOIN LATERAL (
            SELECT EXISTS (SELECT 1 FROM qpv WHERE ST_Intersects(qpv.geom, i.geom)) AS dans_qpv,
                   EXISTS (SELECT 1 FROM qpv WHERE ST_DWithin(qpv.geom_l93, i.geom_l93, {near}))
                       AS proche_qpv
            WHERE c.qpv_verifiable) q ON true
        LEFT JOIN LATERAL (
            SELECT ST_Distance(qpv.geom_l93, i.geom_l93) AS distance_qpv_m FROM qpv
            WHERE c.qpv_verifiable ORDER BY qpv.geom_l93 <-> i.geom_l93 LIMIT 1) n ON true
    )
    SELECT id, code_insee, dans_qpv, proche_qpv, distance_qpv_m,
        CASE WHEN code_insee IS NULL THEN 'invalide'
             WHEN dans_qpv THEN 'qpv'
             WHEN proche_qpv THEN 'proximite_qpv'
             WHEN hors_gcu THEN 'hors_grands_centres_urbains'
             WHEN dans_qpv IS NULL OR proche_qpv IS NULL OR hors_gcu IS NULL
                 THEN 'indetermine'
             ELSE 'non_eligible' END AS verdict
    FROM measured
    """,
]


def metropole(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Rows of ``frame`` (with a ``dep`` column) that lie in métropole."""
    return crs.territory_names(frame["dep"].astype(str).to_numpy()) == "metropole"


def random_places(communes: gpd.GeoDataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """Population-weighted random places in métropole communes' bounding boxes."""
    rng = np.random.default_rng(seed)
    population = communes["population"].fillna(0).to_numpy(dtype=float) + 1.0
    picked = rng.choice(len(communes), size=n, p=population / population.sum())
    bounds = communes.geometry.bounds.to_numpy()[picked]
    return pd.DataFrame(
        {
            "lon": np.round(rng.uniform(bounds[:, 0], bounds[:, 2]), 6),
            "lat": np.round(rng.uniform(bounds[:, 1], bounds[:, 3]), 6),
        }
    )


def copy_rows(cursor, table: str, columns: list[str], frame: pd.DataFrame) -> None:
    """``COPY`` a frame into ``table`` (geometries as hex EWKB)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, sep="\t", header=False, index=False, na_rep="\\N")
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def ewkb(geometries: gpd.GeoSeries) -> np.ndarray:
    """Hex EWKB of geometries, with the SRID of their CRS."""
    values = shapely.set_srid(geometries.to_numpy(), geometries.crs.to_epsg())
    return shapely.to_wkb(values, hex=True, include_srid=True)


def load_reference(cursor, ref: territoires.Reference) -> None:
    """QPV and communes of métropole, as territoires prepared them, with GiST indexes."""
    communes = territoires.load_communes()
    qpv = territoires.load_qpv(ref.rules.qpv_vintage)
    keep = metropole(communes)
    table = ref.communes
    if not (table["code_insee"].to_numpy() == communes["code_insee"].to_numpy()).all():
        sys.exit("les communes chargées ne sont pas dans l'ordre de la référence territoires")
    commune_rows = pd.DataFrame(
        {
            "gid": np.flatnonzero(keep),
            "code_insee": table["code_insee"].to_numpy()[keep],
            "dep": table["dep"].to_numpy()[keep],
            "hors_gcu": table["hors_gcu"].astype("boolean").to_numpy()[keep],
            "qpv_verifiable": ref.commune_qpv_covered[keep],
            "geom": ewkb(communes.geometry[keep]),
            "geom_l93": ewkb(communes.geometry[keep].to_crs(2154)),
        }
    )
    copy_rows(cursor, "communes", list(commune_rows.columns), commune_rows)
    keep = metropole(qpv)
    qpv_rows = pd.DataFrame(
        {
            "gid": np.flatnonzero(keep),
            "code_qpv": qpv["code_qpv"].to_numpy()[keep],
            "geom": ewkb(qpv.geometry[keep]),
            "geom_l93": ewkb(qpv.geometry[keep].to_crs(2154)),
        }
    )
    copy_rows(cursor, "qpv", list(qpv_rows.columns), qpv_rows)


def machine() -> str:
    """Processor, cores and memory of this machine."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "inconnu"
    memory = psutil.virtual_memory().total / 2**30
    return f"{model}, {os.cpu_count()} cœurs, {memory:.0f} Gio"


def compare(ours: pd.DataFrame, theirs: pd.DataFrame, examples: int) -> None:
    """Print the agreement of the two engines' verdicts, mismatches with examples."""
    joined = ours.join(theirs, rsuffix="_postgis")
    same = joined["verdict"] == joined["verdict_postgis"]
    print(f"verdicts identiques      : {same.sum():,} / {len(joined):,} ({same.mean():.4%})")
    if same.all():
        return
    pairs = joined[~same].groupby(["verdict", "verdict_postgis"]).size()
    print("écarts (territoires → PostGIS) :")
    for (left, right), count in pairs.sort_values(ascending=False).items():
        print(f"  {left} → {right} : {count:,}")
    columns = [
        "lon",
        "lat",
        "verdict",
        "verdict_postgis",
        "code_insee",
        "code_insee_postgis",
        "distance_qpv_m",
        "distance_qpv_m_postgis",
    ]
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(joined.loc[~same, columns].head(examples).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="places to classify")
    parser.add_argument("--examples", type=int, default=10, help="mismatches shown")
    args = parser.parse_args()
    dsn = os.environ.get(DSN_ENV, "").strip()
    if not dsn:
        sys.exit(
            f"{DSN_ENV} n'est pas défini : voir la docstring de ce script pour démarrer PostGIS"
        )
    import psycopg  # optional dependency of the benchmark only

    started = time.perf_counter()
    ref = territoires.reference()
    prepared = time.perf_counter() - started
    communes = territoires.load_communes()
    table = random_places(communes[metropole(communes)], args.n)
    table.index.name = "id"

    with psycopg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        server = cursor.execute("SHOW server_version").fetchone()[0]
        cursor.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        postgis = cursor.execute("SELECT postgis_lib_version()").fetchone()[0]
        workers = cursor.execute("SHOW max_parallel_workers_per_gather").fetchone()[0]
        cursor.execute(SCHEMA)
        started = time.perf_counter()
        load_reference(cursor, ref)
        cursor.execute(INDEXES)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        copy_rows(cursor, "points", ["id", "lon", "lat"], table.reset_index())
        cursor.execute("ANALYZE points")
        copied = time.perf_counter() - started
        steps = []
        for statement in CLASSIFY:
            started = time.perf_counter()
            cursor.execute(statement.format(near=float(ref.rules.near_distance_m)))
            steps.append(time.perf_counter() - started)
        sql = sum(steps)
        theirs = pd.DataFrame(
            cursor.execute(
                "SELECT id, verdict, code_insee, distance_qpv_m FROM verdicts ORDER BY id"
            ).fetchall(),
            columns=["id", "verdict", "code_insee", "distance_qpv_m"],
        ).set_index("id")
        cursor.execute("DROP SCHEMA territoires_bench CASCADE")

    started = time.perf_counter()
    result = territoires.classify(table, ref=ref)
    ours_elapsed = time.perf_counter() - started
    ours = pd.DataFrame(result[["lon", "lat", "verdict", "code_insee", "distance_qpv_m"]])
    ours["lon"], ours["lat"] = table["lon"], table["lat"]

    print(f"machine                  : {machine()}")
    print(f"PostgreSQL / PostGIS     : {server} / {postgis} (parallélisme par requête : {workers})")
    print(f"lieux                    : {args.n:,} en métropole (Lambert-93)")
    print(f"PostGIS, chargement      : référence + index GiST {loaded:.1f} s, COPY {copied:.1f} s")
    print(
        f"PostGIS, classification  : {sql:.1f} s = {args.n / sql:,.0f} lieux/s "
        f"(géométries {steps[0]:.1f} s, communes {steps[1]:.1f} s, QPV et verdict {steps[2]:.1f} s)"
    )
    print(f"territoires, référence   : {prepared:.1f} s (une fois, mise en cache)")
    print(
        f"territoires, classify    : {ours_elapsed:.1f} s = {args.n / ours_elapsed:,.0f} lieux/s "
        "(validation et motifs compris)"
    )
    print(f"rapport PostGIS / territoires : {sql / ours_elapsed:.2f}")
    print("verdicts territoires     :", result.attrs["verdicts"])
    compare(ours, theirs, args.examples)


if __name__ == "__main__":
    main()
