"""Faults: a hostile server, a damaged cache or mirror, an interrupted write.

Downloads are served by a scripted HTTP server on 127.0.0.1 (500, 429, bodies cut short
with and without ``Content-Length``, an HTML page, altered bytes). After each failure
the cache holds nothing (no partial file, no bad file), and the next run, once the
server answers properly, works. A damaged cached file is quarantined, reported and
replaced; a damaged mirror file is an error naming the file and the fix. A result
interrupted by Ctrl-C while the CLI writes a 100,000-row workbook leaves the previous
file (or nothing), never a partial one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from territoires import ChecksumError, DataFileError, DownloadError, catalogue, loaders, settings
from territoires.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


class Server:
    """Answers ``/regions.geojson`` with the next scripted behaviour, then the last one."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.script: list[str] = ["ok"]
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests += 1
                behaviour = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                body = server.body
                if behaviour in ("500", "429"):
                    self.send_error(int(behaviour))
                    return
                if behaviour == "html":
                    body = b"<!DOCTYPE html><html><body>Maintenance</body></html>"
                elif behaviour == "altered":
                    body = body.replace(b"Occitanie", b"Occitania")
                self.send_response(200)
                if behaviour == "cut-announced":
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if behaviour == "cut-unannounced":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/regions.geojson"


@pytest.fixture
def server(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A local server for the régions outlines; no mirror, downloads allowed, fast retries."""
    srv = Server((data_dir / "admin" / "regions.geojson").read_bytes())
    monkeypatch.setattr(settings, "data_dir", tmp_path / "miroir-vide")
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "cache")
    monkeypatch.setattr(settings, "offline", False)
    monkeypatch.setattr(settings, "backoff", 0)
    monkeypatch.setattr(settings, "retries", 2)
    monkeypatch.setattr(settings, "timeout", 5.0)
    served = dataclasses.replace(catalogue.get("regions_anct2025"), url=srv.url)
    monkeypatch.setitem(catalogue.datasets(), "regions_anct2025", served)
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _cache_files(tmp_path: Path) -> list[str]:
    """Every file under the cache, relative (quarantine included)."""
    cache = tmp_path / "cache"
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def _without_checksum(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the catalogue entry checksum-less: only parsing can catch a bad body."""
    entry = dataclasses.replace(catalogue.get("regions_anct2025"), sha256=None)
    monkeypatch.setitem(catalogue.datasets(), "regions_anct2025", entry)


@pytest.mark.parametrize(
    ("script", "error", "message", "checksum"),
    [
        (["500"], DownloadError, r"réponse HTTP 500 .*après 2 tentative", True),
        (["429"], DownloadError, r"réponse HTTP 429", True),
        (["cut-announced"], DownloadError, r"transfert interrompu|interrompu", True),
        (["cut-unannounced"], DownloadError, r"illisible .*rien n'a été mis en cache", False),
        (["html"], DownloadError, r"page HTML au lieu du fichier", False),
        (["html"], ChecksumError, r"somme de contrôle différente", True),
        (["altered"], ChecksumError, r"somme de contrôle différente .*pas été mis en cache", True),
    ],
    ids=[
        "http-500",
        "http-429",
        "cut-with-length",
        "cut-without-length",
        "html-page",
        "html-page-known-checksum",
        "wrong-checksum",
    ],
)
def test_failed_download_leaves_cache_clean_and_next_run_works(
    server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    script: list[str],
    error: type[Exception],
    message: str,
    checksum: bool,
) -> None:
    if not checksum:
        _without_checksum(monkeypatch)
    server.script = list(script)
    with pytest.raises(error, match=message) as info:
        loaders.load_admin("regions")
    assert "regions_anct2025" in str(info.value)
    assert _cache_files(tmp_path) == []  # nothing partial, nothing bad

    server.script = ["ok"]
    regions = loaders.load_admin("regions")
    assert len(regions) == 18
    assert _cache_files(tmp_path) == ["regions/regions.geojson"]


def test_transient_errors_are_retried(server: Server, tmp_path: Path) -> None:
    server.script = ["429", "ok"]
    assert len(loaders.load_admin("regions")) == 18
    assert server.requests == 2


@pytest.mark.parametrize("checksum", [True, False], ids=["checksum-known", "no-checksum"])
def test_corrupt_cached_file_is_quarantined_and_fetched_again(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checksum: bool
) -> None:
    if not checksum:
        _without_checksum(monkeypatch)
    cached = catalogue.get("regions_anct2025").cache_path
    cached.parent.mkdir(parents=True)
    cached.write_bytes(server.body[:1000])  # a body cut short, cached by an older version

    with pytest.warns(UserWarning, match="mis en quarantaine"):
        regions = loaders.load_admin("regions")

    assert len(regions) == 18
    files = _cache_files(tmp_path)
    assert "regions/regions.geojson" in files
    (kept,) = [name for name in files if name.startswith("quarantaine/regions/")]
    assert (tmp_path / "cache" / kept).read_bytes() == server.body[:1000]
    assert cached.read_bytes() == server.body


def test_corrupt_cached_file_offline_is_reported_not_used(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_checksum(monkeypatch)
    monkeypatch.setattr(settings, "offline", True)
    cached = catalogue.get("regions_anct2025").cache_path
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b'{"type": "FeatureCollection", "feat')

    with pytest.warns(UserWarning, match="mis en quarantaine"), pytest.raises(Exception) as info:
        loaders.load_admin("regions")

    assert "regions" in str(info.value) and not cached.exists()
    assert server.requests == 0


# --- damaged mirror ----------------------------------------------------------------------


@pytest.fixture
def damaged_mirror(data_dir: Path, tmp_path: Path) -> Path:
    """A mirror whose régions file is cut in half; every other file is the real one."""
    mirror = tmp_path / "miroir"
    (mirror / "admin").mkdir(parents=True)
    for folder in ("communes", "qpv"):
        (mirror / folder).symlink_to(data_dir / folder)
    (mirror / "admin" / "departements.geojson").symlink_to(
        data_dir / "admin" / "departements.geojson"
    )
    body = (data_dir / "admin" / "regions.geojson").read_bytes()
    (mirror / "admin" / "regions.geojson").write_bytes(body[: len(body) // 2])
    return mirror


def test_truncated_mirror_file_is_an_error_naming_file_and_fix(
    damaged_mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "data_dir", damaged_mirror)
    damaged = damaged_mirror / "admin" / "regions.geojson"
    with pytest.raises(ChecksumError, match="--accepter-modifie") as info:
        loaders.load_admin("regions")
    assert str(damaged) in str(info.value)
    # accepted as modified, it still cannot be read: the error names the file and the fix
    monkeypatch.setattr(settings, "accept_modified", True)
    with pytest.raises(DataFileError) as info:
        loaders.load_admin("regions")
    assert str(damaged) in str(info.value)
    assert "remplacez-le par le fichier officiel" in str(info.value)


def test_cli_truncated_mirror_gives_a_french_error(damaged_mirror: Path) -> None:
    result = runner.invoke(
        app,
        [
            "--data-dir",
            str(damaged_mirror),
            "--accepter-modifie",
            "data",
            "info",
            "regions_anct2025",
        ],
    )
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Erreur : " in result.output and "regions.geojson" in result.output


def test_modified_mirror_accepted_is_recorded_in_provenance_and_attrs(
    data_dir: Path, tmp_path: Path
) -> None:
    """The density grid with Toulouse edited: refused, then accepted and said so."""
    mirror = tmp_path / "miroir"
    (mirror / "communes").mkdir(parents=True)
    for folder in ("admin", "qpv"):
        (mirror / folder).symlink_to(data_dir / folder)
    for file in (data_dir / "communes").iterdir():
        (mirror / "communes" / file.name).symlink_to(file)
    grid = mirror / "communes" / "grille_densite_7_niveaux_cog2026.csv"
    text = (data_dir / "communes" / grid.name).read_text(encoding="utf-8-sig")
    grid.unlink()
    edited = text.replace("31555,Toulouse,Grands centres urbains", "31555,Toulouse,Bourgs ruraux")
    assert edited != text
    grid.write_text(edited, encoding="utf-8-sig")
    source = tmp_path / "lieux.csv"
    source.write_text("id;lon;lat\na;1.4442;43.6047\n", encoding="utf-8")
    output = tmp_path / "r.csv"

    refused = runner.invoke(
        app, ["--data-dir", str(mirror), "classify", str(source), "-o", str(output)]
    )
    assert refused.exit_code == 1 and "Erreur : " in refused.output
    assert "grille_densite_7_niveaux_cog2026.csv" in refused.output
    assert not output.exists()

    accepted = runner.invoke(
        app,
        [
            "--data-dir",
            str(mirror),
            "--accepter-modifie",
            "classify",
            str(source),
            "-o",
            str(output),
        ],
    )
    assert accepted.exit_code == 0, accepted.output
    provenance = json.loads(output.with_name("r.csv.provenance.json").read_text(encoding="utf-8"))
    (grid_source,) = [s for s in provenance["sources"] if s["fichier"] == str(grid)]
    assert grid_source["modifie_localement"] is True
    assert grid_source["sha256_catalogue"] == catalogue.get("grille_densite_cog2026_anct").sha256
    assert grid_source["sha256"] == hashlib.sha256(grid.read_bytes()).hexdigest()


# --- outputs -------------------------------------------------------------------------------


def test_output_equal_to_input_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "lieux.csv"
    source.write_text("id;lon;lat\na;1.4020;43.5750\n", encoding="utf-8")
    before = source.read_bytes()
    for spelled in (source, tmp_path / "." / "lieux.csv"):
        result = runner.invoke(app, ["classify", str(source), "-o", str(spelled)])
        assert result.exit_code != 0
        assert "fichier d'entrée" in " ".join(result.output.split())
        assert source.read_bytes() == before


def test_output_under_a_file_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "lieux.csv"
    source.write_text("id;lon;lat\na;1.4020;43.5750\n", encoding="utf-8")
    blocker = tmp_path / "pas-un-dossier"
    blocker.write_text("x")
    result = runner.invoke(app, ["classify", str(source), "-o", str(blocker / "r.csv")])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "est un fichier, pas un dossier" in " ".join(result.output.split())


def _big_input(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "id": np.arange(rows),
            "nom": [f"lieu {i}" for i in range(rows)],
            "lon": np.round(rng.uniform(1.30, 1.50, rows), 5),
            "lat": np.round(rng.uniform(43.50, 43.70, rows), 5),
        }
    ).to_csv(path, sep=";", index=False)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from territoires.cli import main; main()", *args]


@pytest.mark.parametrize("previous", [True, False], ids=["previous-file", "no-file"])
def test_interrupted_xlsx_write_leaves_previous_file_or_nothing(
    tmp_path: Path, data_dir: Path, previous: bool
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        settings.DATA_DIR_ENV: str(data_dir),
        settings.CACHE_DIR_ENV: str(tmp_path / "cache"),
        settings.OFFLINE_ENV: "1",
    }
    output = tmp_path / "sortie" / "resultat.xlsx"
    output.parent.mkdir()  # the command creates no folder (a typo would create a tree)
    provenance = output.with_name("resultat.xlsx.provenance.json")
    if previous:
        small = tmp_path / "petit.csv"
        small.write_text("id;lon;lat\na;1.4020;43.5750\n", encoding="utf-8")
        subprocess.run(_cli("classify", str(small), "-o", str(output)), env=env, check=True)
        before = (output.read_bytes(), provenance.read_bytes())
    big = tmp_path / "grand.csv"
    _big_input(big, 100_000)

    process = subprocess.Popen(
        _cli("classify", str(big), "-o", str(output)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # a test run in the background of a shell ignores SIGINT, and so would the
        # command: Python keeps a signal ignored at start-up (Ctrl-C then does nothing)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not any(output.parent.glob(".partiel-*")):  # the write has started
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.5)  # well inside the workbook's rows
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode != 0, stderr.decode()
    assert b"Traceback" not in stderr
    assert not any(output.parent.glob(".partiel-*"))
    if previous:
        assert (output.read_bytes(), provenance.read_bytes()) == before
    else:
        assert not output.exists() and not provenance.exists()
