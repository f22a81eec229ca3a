"""Tests of territoires._http against a scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from territoires import _http, settings
from territoires._errors import ChecksumError, DownloadError

PAYLOAD = bytes(range(256)) * 800  # 200 KB
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()

DATASET = {
    "resources": [
        {
            "title": "Contours des communes 2024",
            "url": "https://static.example.org/communes-2024.zip",
            "format": "zip",
            "checksum": {"type": "sha256", "value": "ab" * 32},
        },
        {
            "title": "Contours des communes",
            "url": "https://static.example.org/communes-latest.zip",
            "format": "zip",
            "checksum": None,
        },
        {
            "title": "Notice",
            "url": "https://static.example.org/docs/lisez-moi.pdf",
            "format": "pdf",
            "checksum": None,
        },
    ]
}


class Server:
    """Scripted server: per-path behaviours, request counts and headers seen."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.user_agents: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def send_body(self, body: bytes, *, announced: int | None = None) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(announced or len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                with server.lock:
                    server.counts[self.path] += 1
                    count = server.counts[self.path]
                    server.user_agents.append(self.headers.get("User-Agent", ""))
                if self.path == "/ok.bin":
                    self.send_body(PAYLOAD)
                elif self.path in ("/flaky", "/busy"):
                    if count <= 2:
                        self.send_error(503 if self.path == "/flaky" else 429)
                    else:
                        self.send_body(PAYLOAD)
                elif self.path == "/truncated" or (self.path == "/truncated-once" and count == 1):
                    self.close_connection = True
                    self.send_body(PAYLOAD[:1000], announced=len(PAYLOAD))
                elif self.path == "/truncated-once":
                    self.send_body(PAYLOAD)
                elif self.path == "/api/1/datasets/communes/":
                    self.send_body(json.dumps(DATASET).encode())
                elif self.path == "/api/1/datasets/broken/":
                    self.send_body(b"<html>not json</html>")
                else:
                    self.send_error(404)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(settings, "backoff", 0)
    monkeypatch.setattr(settings, "timeout", 5.0)
    monkeypatch.setattr(settings, "offline", False)
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    monkeypatch.setattr(settings, "datagouv_api", f"{srv.url}/api/1")
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def test_download_ok(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "ok.bin"
    result = _http.download(f"{server.url}/ok.bin", dest, sha256=PAYLOAD_SHA256)
    assert result == dest
    assert dest.read_bytes() == PAYLOAD
    assert list(dest.parent.iterdir()) == [dest]
    assert server.counts["/ok.bin"] == 1
    assert server.user_agents == [settings.user_agent]


def test_download_progress(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = _http.download(f"{server.url}/ok.bin", tmp_path / "ok.bin", progress=True)
    assert dest.read_bytes() == PAYLOAD
    assert "ok.bin" in capsys.readouterr().err


def test_sha256sum(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    assert _http.sha256sum(path) == PAYLOAD_SHA256


@pytest.mark.parametrize("path", ["/flaky", "/busy"])
def test_download_retries_5xx_and_429(server: Server, tmp_path: Path, path: str) -> None:
    dest = _http.download(f"{server.url}{path}", tmp_path / "f.bin")
    assert dest.read_bytes() == PAYLOAD
    assert server.counts[path] == 3


def test_download_gives_up_after_retries(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "retries", 2)
    with pytest.raises(DownloadError, match="503"):
        _http.download(f"{server.url}/flaky", tmp_path / "f.bin")
    assert server.counts["/flaky"] == 2
    assert list(tmp_path.iterdir()) == []


def test_backoff_doubles(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    monkeypatch.setattr(settings, "backoff", 0.5)
    monkeypatch.setattr(_http.time, "sleep", delays.append)
    with pytest.raises(DownloadError):
        _http.download(f"{server.url}/truncated", tmp_path / "f.bin")
    assert delays == [0.5, 1.0, 2.0]


def test_download_truncated_every_time(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="/truncated"):
        _http.download(f"{server.url}/truncated", dest)
    assert server.counts["/truncated"] == settings.retries
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_download_truncated_once(server: Server, tmp_path: Path) -> None:
    dest = _http.download(f"{server.url}/truncated-once", tmp_path / "f.bin", sha256=PAYLOAD_SHA256)
    assert dest.read_bytes() == PAYLOAD
    assert server.counts["/truncated-once"] == 2


def test_checksum_mismatch(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    with pytest.raises(ChecksumError) as info:
        _http.download(f"{server.url}/ok.bin", dest, sha256="0" * 64)
    message = str(info.value)
    assert "/ok.bin" in message and "0" * 64 in message and PAYLOAD_SHA256 in message
    assert list(tmp_path.iterdir()) == []


def test_failed_download_keeps_good_dest(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"good old content")
    with pytest.raises(ChecksumError):
        _http.download(f"{server.url}/ok.bin", dest, sha256="0" * 64)
    with pytest.raises(DownloadError):
        _http.download(f"{server.url}/truncated", dest)
    assert dest.read_bytes() == b"good old content"
    assert list(tmp_path.iterdir()) == [dest]


def test_interrupt_removes_temporary_file(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_http.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        _http.download(f"{server.url}/ok.bin", tmp_path / "f.bin")
    assert list(tmp_path.iterdir()) == []


def test_download_404_not_retried(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="404") as info:
        _http.download(f"{server.url}/missing", tmp_path / "f.bin")
    assert f"{server.url}/missing" in str(info.value)
    assert server.counts["/missing"] == 1
    assert list(tmp_path.iterdir()) == []


def test_unreachable_host(server: Server, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/f.bin"
    with pytest.raises(DownloadError) as info:
        _http.download(url, tmp_path / "f.bin")
    message = str(info.value)
    assert f"127.0.0.1:{port} injoignable" in message
    assert url in message and settings.DATA_DIR_ENV in message
    assert info.value.__cause__ is not None
    assert list(tmp_path.iterdir()) == []


def test_offline_makes_no_request(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "offline", True)
    with pytest.raises(DownloadError, match=settings.OFFLINE_ENV):
        _http.download(f"{server.url}/ok.bin", tmp_path / "f.bin")
    with pytest.raises(DownloadError, match=settings.OFFLINE_ENV):
        _http.resolve_datagouv("communes", "Notice")
    assert sum(server.counts.values()) == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("Contours des communes", "https://static.example.org/communes-latest.zip"),
        ("contours des communes 20", "https://static.example.org/communes-2024.zip"),
        ("LISEZ-MOI", "https://static.example.org/docs/lisez-moi.pdf"),
    ],
)
def test_resolve_datagouv(server: Server, resource: str, expected: str) -> None:
    assert _http.resolve_datagouv("communes", resource) == expected
    assert server.counts["/api/1/datasets/communes/"] == 1


def test_resolve_datagouv_no_match(server: Server) -> None:
    with pytest.raises(DownloadError) as info:
        _http.resolve_datagouv("communes", "IRIS")
    message = str(info.value)
    assert "'IRIS'" in message and "'communes'" in message
    for res in DATASET["resources"]:
        assert repr(res["title"]) in message


def test_resolve_datagouv_errors(server: Server) -> None:
    with pytest.raises(DownloadError, match="404"):
        _http.resolve_datagouv("inconnu", "Notice")
    with pytest.raises(DownloadError, match="réponse inattendue"):
        _http.resolve_datagouv("broken", "Notice")
    assert server.counts["/api/1/datasets/inconnu/"] == 1
