"""Load test of ``territoires serve`` on 127.0.0.1: single checks and 1,000-row uploads.

Run on demand (not part of the test suite)::

    TERRITOIRES_DATA_DIR=../shared/data python benchmarks/serve_load.py \
        [--checks 3000] [--concurrency 50] [--uploads 40] [--workers 1]

The script starts ``territoires serve`` on a free port of 127.0.0.1 (rate limit off,
access log off), waits for ``/sante``, then sends, with a fixed number of requests so
that it always stops by itself:

1. 200 single checks one at a time (latency without queueing), then ``--checks``
   single checks ``GET /api/v1/eligibilite?lon&lat`` at random points of
   Occitanie (the QPV layer of the mirror), ``--concurrency`` connections at once (the
   few points that fall in Spain or at sea are answered 400, as they should);
2. ``--uploads`` uploads ``POST /api/v1/classement`` of the same 1,000-row CSV,
   ``--upload-concurrency`` at once (the server classifies two files at a time).

The server's CPU time during the checks is printed too: on a machine shared with other
jobs, it tells what the service costs, whatever the others take. The client is a
minimal HTTP/1.1 keep-alive client on asyncio streams, so that it takes
as little of the machine's CPU as possible from the server. It prints the throughput
and the p50/p95/p99 latencies, and, measured in the same run in this process, the
baseline: the library called directly (``territoires.check`` one point after another,
``territoires.classify`` of the 1,000-row file), with the ratio of both.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import requests

import territoires

HOST = "127.0.0.1"
#: Occitanie, where the mirror's QPV layer lies: (west, south, east, north).
BOX = (0.0, 42.5, 4.8, 45.0)
BOUNDARY = "frontiere-territoires"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(port: int, workers: int) -> subprocess.Popen:
    """``territoires serve`` in a subprocess, ready when this returns."""
    command = [
        str(Path(sys.executable).parent / "territoires"),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--limite-debit",
        "0",
        "--sans-journal",
        "--taille-max",
        "50",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode())
        try:
            if requests.get(f"http://{HOST}:{port}/sante", timeout=5).status_code == 200:
                return process
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError("le serveur n'est pas prêt après 300 s")


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response with a Content-Length; returns its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length")
    )
    await reader.readexactly(length)
    return status


async def load(port: int, requests_: list[bytes], concurrency: int) -> tuple[np.ndarray, float]:
    """Send every request over ``concurrency`` keep-alive connections.

    Returns the latencies in seconds and the wall time.
    """
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for item in requests_:
        queue.put_nowait(item)
    latencies: list[float] = []
    failures: list[int] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while not queue.empty():
                request = queue.get_nowait()
                start = time.perf_counter()
                writer.write(request)
                await writer.drain()
                status = await read_response(reader)
                latencies.append(time.perf_counter() - start)
                if status not in (200, 400):  # 400: a random point abroad or at sea
                    failures.append(status)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} réponses en erreur, ex. statut {failures[0]}")
    return np.array(latencies), wall


def check_requests(points: np.ndarray) -> list[bytes]:
    return [
        (
            f"GET /api/v1/eligibilite?lon={lon:.5f}&lat={lat:.5f} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
        ).encode()
        for lon, lat in points
    ]


def upload_request(content: bytes) -> bytes:
    body = (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="fichier"; filename="lieux.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    head = (
        "POST /api/v1/classement?format=csv HTTP/1.1\r\n"
        f"Host: {HOST}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def cpu_seconds(process: subprocess.Popen) -> float:
    """CPU time (user + system) used so far by the server and its worker processes."""
    root = psutil.Process(process.pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def describe(name: str, latencies: np.ndarray, wall: float) -> float:
    rate = len(latencies) / wall
    p50, p95, p99 = np.percentile(latencies * 1000, [50, 95, 99])
    print(
        f"{name:<34} {len(latencies):>6} requêtes en {wall:6.1f} s : {rate:8.1f} /s ; "
        f"p50 {p50:7.1f} ms, p95 {p95:7.1f} ms, p99 {p99:7.1f} ms"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--upload-concurrency", type=int, default=4)
    parser.add_argument("--upload-rows", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    west, south, east, north = BOX
    points = np.column_stack(
        [rng.uniform(west, east, args.checks), rng.uniform(south, north, args.checks)]
    )
    rows = rng.integers(0, len(points), args.upload_rows)
    table = pd.DataFrame(
        {
            "nom": [f"Lieu {i}" for i in range(args.upload_rows)],
            "lon": points[rows, 0],
            "lat": points[rows, 1],
        }
    )
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    csv_bytes = buffer.getvalue().encode()

    print(f"Machine : {os.cpu_count()} cœurs ; serveur : {args.workers} processus")
    port = free_port()
    started = time.perf_counter()
    server = start_server(port, args.workers)
    print(f"Démarrage (données de référence chargées) : {time.perf_counter() - started:.1f} s")
    try:
        asyncio.run(load(port, check_requests(points[:100]), 10))  # warm-up
        alone = points[: min(200, len(points))]
        latencies, wall = asyncio.run(load(port, check_requests(alone), 1))
        describe("vérifications (une à la fois)", latencies, wall)
        cpu = cpu_seconds(server)
        latencies, wall = asyncio.run(load(port, check_requests(points), args.concurrency))
        cpu = cpu_seconds(server) - cpu
        served = describe(f"vérifications ({args.concurrency} simultanées)", latencies, wall)
        print(
            f"  temps CPU du serveur : {cpu * 1000 / len(points):.2f} ms par vérification, "
            f"soit au plus {len(points) / cpu * (os.cpu_count() or 1):.0f} vérifications/s "
            f"si ses {os.cpu_count()} cœurs lui étaient réservés"
        )
        uploads = [upload_request(csv_bytes)] * args.uploads
        latencies, wall = asyncio.run(load(port, uploads, args.upload_concurrency))
        served_files = describe(
            f"envois de {args.upload_rows} lignes ({args.upload_concurrency} simult.)",
            latencies,
            wall,
        )
    finally:
        server.terminate()
        server.wait(30)

    ref = territoires.reference(territoires.preset())
    sample = points[: min(300, len(points))]
    start = time.perf_counter()
    for lon, lat in sample:
        territoires.check(lon, lat, ref=ref)
    direct = len(sample) / (time.perf_counter() - start)
    start = time.perf_counter()
    repeats = 5
    for _ in range(repeats):
        territoires.classify(table, ref=ref)
    direct_files = repeats / (time.perf_counter() - start)
    print(f"référence : territoires.check en boucle, un point après l'autre : {direct:.1f} /s")
    print(f"référence : territoires.classify de {args.upload_rows} lignes : {direct_files:.2f} /s")
    print(f"ratio vérifications service / check en boucle : {served / direct:.1f}")
    print(f"ratio envois service / classify direct : {served_files / direct_files:.2f}")


if __name__ == "__main__":
    main()
