"""A local imitation of the national geocoder, for tests, benchmarks, notebooks and demos.

It answers on 127.0.0.1 like the IGN Géoplateforme (and the former API Adresse):

* ``GET  /geocodage/search?q=…`` — GeoCodeJSON feature collection (best result first);
* ``POST /geocodage/search/csv`` — multipart form with the file ``data`` and the
  ``columns`` to join as the query; answers the input CSV plus ``latitude``,
  ``longitude``, ``result_label``, ``result_score``, ``result_type``,
  ``result_citycode`` and ``result_status``;
* ``GET  /geocodage/getCapabilities`` — a short capabilities document.

Known addresses are listed in :data:`KNOWN` (compared like the library's cache keys:
without case, accents or punctuation); any other address matches nothing, unless the
stub is started with ``synthetic=True`` (every address then gets a deterministic
``housenumber`` result somewhere in mainland France: for benchmarks).

Faults are scripted per request with :meth:`GeocoderStub.fail_next`: ``"429"``,
``"500"``, ``"truncated"`` (a body cut short of its ``Content-Length``), ``"partial"``
(a CSV missing half of its rows, well formed), ``"slow"`` (answer after
``slow_seconds``) and ``"garbage"`` (an HTML page with status 200).

In a test::

    from territoires.testing import GeocoderStub
    with GeocoderStub() as stub:
        settings.geocoder_url = stub.url   # http://127.0.0.1:<port>/geocodage
        ...

From a shell (e.g. for a browser test of ``territoires serve``)::

    python -m territoires.testing --port 8765 [--synthetic]
    export TERRITOIRES_GEOCODER_URL=http://127.0.0.1:8765/geocodage
    territoires check "1 place du Capitole 31000 Toulouse"
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import socket
import threading
import time
from collections import Counter
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from territoires.geocode import normalise_query

#: Addresses the stub knows: query → (label, score, type, INSEE code, lon, lat).
KNOWN: dict[str, tuple[str, float, str, str, float, float]] = {
    "1 place du Capitole 31000 Toulouse": (
        "1 Place du Capitole 31000 Toulouse",
        0.97,
        "housenumber",
        "31555",
        1.443370,
        43.604468,
    ),
    "12 rue de Metz 31000 Toulouse": (
        "12 Rue de Metz 31000 Toulouse",
        0.95,
        "housenumber",
        "31555",
        1.446580,
        43.600270,
    ),
    "2 rue Lamartine 31300 Toulouse": (
        "Rue Lamartine 31300 Toulouse",
        0.78,
        "street",
        "31555",
        1.402010,
        43.575000,
    ),
    "Place de l'Hôtel de Ville 93200 Saint-Denis": (
        "Place de l'Hôtel de Ville 93200 Saint-Denis",
        0.82,
        "street",
        "93066",
        2.359200,
        48.935600,
    ),
    "Le Bourg 15100 Saint-Flour": (
        "Le Bourg 15100 Saint-Flour",
        0.71,
        "locality",
        "15187",
        3.093000,
        45.034000,
    ),
    "Saint-Flour": ("Saint-Flour", 0.90, "municipality", "15187", 3.093000, 45.034000),
    "3 chemin incertain 46000 Cahors": (
        "Chemin des Vignes 46090 Mercuès",
        0.31,
        "street",
        "46191",
        1.388000,
        44.493000,
    ),
}

FAULTS = ("429", "500", "truncated", "partial", "slow", "garbage")

_INDEX = {normalise_query(query): result for query, result in KNOWN.items()}
_RESULT_COLUMNS = (
    "latitude",
    "longitude",
    "result_label",
    "result_score",
    "result_type",
    "result_citycode",
    "result_status",
)


class GeocoderStub:
    """A geocoder on 127.0.0.1 with scripted faults; a context manager.

    Parameters
    ----------
    port : int, default 0
        Port to listen on; 0 picks a free one.
    synthetic : bool, default False
        Answer every unknown address with a deterministic housenumber result.
    slow_seconds : float, default 2.0
        Delay of a ``"slow"`` answer.
    retry_after : int, default 0
        Seconds sent in the ``Retry-After`` header of a ``"429"`` answer (the
        Géoplateforme sends 5).

    Attributes
    ----------
    url : str
        Base URL to give to ``settings.geocoder_url``.
    requests : collections.Counter
        Requests received, by path (``/geocodage/search``, ``/geocodage/search/csv``).
    rows : collections.Counter
        Addresses received, by path.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        synthetic: bool = False,
        slow_seconds: float = 2.0,
        retry_after: int = 0,
    ):
        self.synthetic = synthetic
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.requests: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self._faults: list[str] = []
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/geocodage"
        self._thread: threading.Thread | None = None

    def fail_next(self, *faults: str) -> None:
        """Script the answers of the next requests (one fault per request, in order)."""
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        with self._lock:
            self._faults.extend(faults)

    def start(self) -> GeocoderStub:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> GeocoderStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def result(self, query: str) -> tuple[str, float, str, str, float, float] | None:
        """The result given for `query`, None when it matches nothing."""
        key = normalise_query(query)
        if key in _INDEX:
            return _INDEX[key]
        if not self.synthetic or not key:
            return None
        digest = hashlib.sha256(key.encode()).digest()
        lon = -1.0 + 8.0 * int.from_bytes(digest[:4], "big") / 2**32
        lat = 43.5 + 5.0 * int.from_bytes(digest[4:8], "big") / 2**32
        return (query, 0.9, "housenumber", "75056", round(lon, 6), round(lat, 6))

    def _next_fault(self, path: str, rows: int) -> str | None:
        with self._lock:
            self.requests[path] += 1
            self.rows[path] += rows
            return self._faults.pop(0) if self._faults else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # answer at once: without this, headers and body sent in two writes
                # wait for the client's delayed acknowledgement (about 40 ms each)
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def handle(self) -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().handle()  # the client may give up waiting (time-out tests)

            def reply(self, body: bytes, content_type: str, fault: str | None) -> None:
                if fault == "slow":
                    time.sleep(stub.slow_seconds)
                if fault in ("429", "500"):
                    status = int(fault)
                    body = b'{"error": "scripted fault"}'
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", str(stub.retry_after))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if fault == "garbage":
                    body, content_type = b"<html><body>maintenance</body></html>", "text/html"
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                if fault == "truncated":
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                path = parsed.path.rstrip("/")
                if path == "/geocodage/getCapabilities":
                    body = json.dumps(CAPABILITIES).encode()
                    self.reply(body, "application/json", stub._next_fault(path, 0))
                elif path == "/geocodage/search":
                    query = parse_qs(parsed.query).get("q", [""])[0]
                    fault = stub._next_fault(path, 1)
                    found = stub.result(query)
                    features = [] if found is None else [_feature(found)]
                    body = json.dumps({"type": "FeatureCollection", "features": features})
                    self.reply(body.encode(), "application/json", fault)
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                path = urlparse(self.path).path.rstrip("/")
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length)
                if path != "/geocodage/search/csv":
                    self.send_error(404)
                    return
                fields = _form(self.headers.get("Content-Type", ""), payload)
                if "data" not in fields:
                    self.send_error(400, "missing data file")
                    return
                table = list(csv.DictReader(io.StringIO(fields["data"][0].decode("utf-8-sig"))))
                fault = stub._next_fault(path, len(table))
                columns = fields.get("columns", [])
                self.reply(_csv_answer(stub, table, columns, fault), "text/csv", fault)

        return Handler


CAPABILITIES = {
    "info": {"name": "Géocodage", "description": "Imitation locale pour les tests."},
    "api": {"name": "rest", "version": "1.0.0"},
    "operations": [
        {"id": "search", "url": "/search?", "methods": ["GET"]},
        {"id": "reverse", "url": "/reverse?", "methods": ["GET"]},
    ],
}


def _feature(found: tuple[str, float, str, str, float, float]) -> dict:
    label, score, kind, citycode, lon, lat = found
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "label": label,
            "score": score,
            "type": kind,
            "citycode": citycode,
            "_type": "address",
        },
    }


def _form(content_type: str, payload: bytes) -> dict[str, list[bytes]]:
    """Fields of a multipart/form-data body: name → values."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + payload
    )
    fields: dict[str, list[bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields.setdefault(name, []).append(part.get_payload(decode=True) or b"")
    return {name: values for name, values in fields.items()}


def _csv_answer(
    stub: GeocoderStub, table: list[dict[str, str]], columns: list[bytes], fault: str | None
) -> bytes:
    """The CSV answer: input columns plus the result columns."""
    names = [name.decode() for name in columns]
    out = io.StringIO()
    header = list(table[0].keys()) if table else ["q"]
    writer = csv.DictWriter(out, [*header, *_RESULT_COLUMNS], lineterminator="\n")
    writer.writeheader()
    rows = table[: len(table) // 2] if fault == "partial" else table
    for row in rows:
        query = " ".join(row.get(name) or "" for name in (names or header)).strip()
        found = stub.result(query)
        extra = dict.fromkeys(_RESULT_COLUMNS, "")
        if found is None:
            extra["result_status"] = "not-found"
        else:
            label, score, kind, citycode, lon, lat = found
            extra.update(
                latitude=lat,
                longitude=lon,
                result_label=label,
                result_score=score,
                result_type=kind,
                result_citycode=citycode,
                result_status="ok",
            )
        writer.writerow({**row, **extra})
    return out.getvalue().encode("utf-8")


def main() -> None:
    """Serve until interrupted (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Imitation locale du géocodeur national.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--synthetic", action="store_true")
    args = parser.parse_args()
    stub = GeocoderStub(args.port, synthetic=args.synthetic)
    print(f"géocodeur local : {stub.url}", flush=True)
    try:
        stub.httpd.serve_forever()
    except KeyboardInterrupt:
        stub.httpd.server_close()


if __name__ == "__main__":
    main()
