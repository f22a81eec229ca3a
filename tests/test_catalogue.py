"""Tests of territoires.catalogue: the entries as data, and finding or downloading a file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from territoires import _http, catalogue, loaders, settings
from territoires._errors import CatalogueError, ChecksumError, DataNotFoundError, DownloadError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
QPV2024 = (FIXTURES / "qpv2024_national_extrait.geojson").read_bytes()
QPV_SLUG = "quartiers-prioritaires-de-la-politique-de-la-ville-qpv"
FORMATS = {"geojson", "gpkg", "csv", "json", "xlsx"}
KINDS = {
    "communes_contours",
    "densite",
    "zonages",
    "populations",
    "qpv",
    "qpv_indicateurs",
    "qpv_npnru",
    "zonages_libelles",
    "qpv_communes",
    "departements",
    "regions",
}


# --- the catalogue as data ---------------------------------------------------------------------


def test_every_entry_can_be_obtained() -> None:
    for dataset in catalogue.datasets().values():
        assert dataset.url or dataset.datagouv or dataset.mirror, dataset.name
        if dataset.url:
            assert dataset.url.startswith("https://"), dataset.name
        if dataset.datagouv:
            assert set(dataset.datagouv) == {"dataset", "resource"}, dataset.name


def test_entries_are_well_formed() -> None:
    datasets = catalogue.datasets()
    assert len(datasets) >= 14
    for name, dataset in datasets.items():
        assert dataset.name == name
        assert dataset.kind in KINDS, name
        assert dataset.format in FORMATS, name
        assert 2010 <= dataset.vintage <= 2030, name
        assert dataset.title and dataset.publisher and dataset.licence, name
        assert dataset.sha256 is None or len(bytes.fromhex(dataset.sha256)) == 32, name
        assert dataset.columns, name
        assert next(iter(dataset.columns.values())) in {
            "code_insee",
            "code_qpv",
            "code_zone",
            "dep",
            "reg",
        }
        for column in dataset.values:
            assert column in dataset.columns.values(), name
        if dataset.format in {"geojson", "gpkg"}:
            assert dataset.crs == "EPSG:4326", name
        if dataset.departements is not None:
            assert dataset.coverage != "France", name
    filenames = Counter((ds.kind, ds.filename) for ds in datasets.values())
    assert max(filenames.values()) == 1


def test_qpv_entries() -> None:
    qpv = catalogue.candidates("qpv")
    assert {ds.vintage for ds in qpv} == {2015, 2024}
    for dataset in qpv:
        assert dataset.columns[next(iter(dataset.columns))] == "code_qpv"
        assert {"code_qpv", "nom_qpv", "communes"} <= set(dataset.columns.values())
    assert [ds.name for ds in catalogue.candidates("qpv", 2015)] == ["qpv2015", "qpv2015_occitanie"]


def test_official_publishers_are_catalogued() -> None:
    urls = {ds.url for ds in catalogue.datasets().values()}
    insee = "https://www.insee.fr/fr/statistiques/fichier"
    assert {
        f"{insee}/6439600/grille_densite_7_niveaux_2024.xlsx",
        f"{insee}/4803954/AAV2020_au_01-01-2024.zip",
        f"{insee}/4802589/UU2020_au_01-01-2024.zip",
        "https://etalab-datasets.geo.data.gouv.fr/contours-administratifs/2024/geojson/"
        "communes-100m.geojson.gz",
    } <= urls
    resources = {ds.datagouv["resource"] for ds in catalogue.candidates("qpv") if ds.datagouv}
    assert resources == {
        "QP2024_France_Hexagonale_Outre_Mer_WGS84",
        "QP_METROPOLEOUTREMER_WGS84_EPSG4326",
    }


def test_mirror_files_match_catalogue_checksums(data_dir: Path) -> None:
    """Every file of the mirror has its checksum in the catalogue, and matches it."""
    checked = 0
    for dataset in catalogue.datasets().values():
        path = dataset.mirror_path(data_dir)
        if path is not None:
            assert dataset.sha256 is not None, f"{dataset.name} : sha256 absent du catalogue"
            assert _http.sha256sum(path) == dataset.sha256, dataset.name
            checked += 1
    assert checked >= 8


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(CatalogueError) as info:
        catalogue.get("qpv2030")
    message = str(info.value)
    assert "'qpv2030'" in message
    for name in catalogue.datasets():
        assert name in message


def test_repr_html() -> None:
    html = catalogue.get("qpv2024")._repr_html_()
    assert "Licence Ouverte 2.0" in html and "<table>" in html and "2024" in html


# --- choosing and finding files ----------------------------------------------------------------


def test_choose_prefers_files_on_disk(data_dir: Path) -> None:
    assert catalogue.choose("qpv", 2015, data_dir).name == "qpv2015_occitanie"
    assert catalogue.choose("densite", data_dir=data_dir).name == "grille_densite_cog2026_anct"
    assert catalogue.choose("communes_contours").name == "communes_cog2024_cartelette"


def test_choose_offline_with_nothing_on_disk(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        catalogue.choose("qpv", 2024, tmp_path)
    message = str(info.value)
    assert "qpv/QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson" in message
    assert settings.DATA_DIR_ENV in message and str(tmp_path) in message
    with pytest.raises(DataNotFoundError, match="aucun jeu de données qpv millésime 1996"):
        catalogue.choose("qpv", 1996)


def test_a_mistyped_mirror_folder_is_named_as_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TERRITOIRES_DATA_DIR naming no folder: the message says so, not only « introuvable »."""
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "cache")
    typo = tmp_path / "mirorr"
    for attempt in (
        lambda: catalogue.choose("qpv", 2024, typo),
        lambda: catalogue.fetch("qpv2024", data_dir=typo),
    ):
        with pytest.raises(DataNotFoundError, match=rf"{typo} n'existe pas : vérifiez le chemin"):
            attempt()
    with pytest.raises(DataNotFoundError) as info:  # an existing folder: nothing added
        catalogue.choose("qpv", 2024, tmp_path)
    assert "n'existe pas" not in str(info.value)


def test_fetch_reads_the_mirror(data_dir: Path) -> None:
    assert catalogue.fetch("regions_anct2025") == data_dir / "admin" / "regions.geojson"


def test_mirror_wins_over_cache(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "cache_dir", tmp_path)
    dataset = catalogue.get("regions_anct2025")
    dataset.cache_path.parent.mkdir(parents=True)
    dataset.cache_path.write_bytes((data_dir / "admin" / "regions.geojson").read_bytes())
    assert dataset.local_path() == data_dir / "admin" / "regions.geojson"
    assert catalogue.fetch(dataset) == data_dir / "admin" / "regions.geojson"
    assert catalogue.fetch(dataset, data_dir=tmp_path / "vide") == dataset.cache_path


def test_altered_cache_file_is_quarantined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "cache_dir", tmp_path)
    dataset = catalogue.get("regions_anct2025")
    dataset.cache_path.parent.mkdir(parents=True)
    dataset.cache_path.write_text("{}")
    with (
        pytest.warns(UserWarning, match="mis en quarantaine"),
        pytest.raises(DataNotFoundError, match="regions_anct2025"),
    ):
        catalogue.fetch(dataset, data_dir=tmp_path / "vide")
    assert not dataset.cache_path.exists()
    (kept,) = (tmp_path / "quarantaine" / "regions").iterdir()
    assert kept.read_text() == "{}"


def test_mirror_checksum_mismatch_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "admin").mkdir()
    (tmp_path / "admin" / "regions.geojson").write_text("{}")
    with pytest.raises(ChecksumError) as info:
        catalogue.fetch("regions_anct2025", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "admin" / "regions.geojson") in message
    assert catalogue.get("regions_anct2025").sha256 in message
    assert "--accepter-modifie" in message
    monkeypatch.setattr(settings, "accept_modified", True)
    path = catalogue.fetch("regions_anct2025", data_dir=tmp_path)
    assert path == tmp_path / "admin" / "regions.geojson"


def test_offline_and_not_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "cache")
    with pytest.raises(DataNotFoundError) as info:
        catalogue.fetch("qpv2024", data_dir=tmp_path)
    message = str(info.value)
    assert "qpv2024" in message and settings.OFFLINE_ENV in message
    assert "qpv/QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson" in message
    assert f"{settings.DATA_DIR_ENV}={tmp_path}" in message
    with pytest.raises(DataNotFoundError, match="grille_densite_cog2026_anct n'est publié qu'hors"):
        catalogue.fetch("grille_densite_cog2026_anct", data_dir=tmp_path)
    assert not (tmp_path / "cache").exists()


# --- downloads from a local server -------------------------------------------------------------


class Server:
    """Local HTTP server: a data.gouv.fr API answer and a few files."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.files: dict[str, bytes] = {"/files/qp2024.geojson": QPV2024}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.counts[self.path] += 1
                if self.path == f"/api/1/datasets/{QPV_SLUG}/":
                    body = json.dumps(server.datagouv()).encode()
                elif self.path in server.files:
                    body = server.files[self.path]
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def datagouv(self) -> dict:
        return {
            "resources": [
                {"title": "Notice QPV", "url": f"{self.url}/files/notice.pdf"},
                {
                    "title": "QP2024_France_Hexagonale_Outre_Mer_WGS84",
                    "url": f"{self.url}/files/qp2024.geojson",
                },
            ]
        }


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A running local server; downloads allowed, into a private cache, with no mirror."""
    monkeypatch.setattr(settings, "backoff", 0)
    monkeypatch.setattr(settings, "timeout", 5.0)
    monkeypatch.setattr(settings, "offline", False)
    monkeypatch.setattr(settings, "data_dir", None)
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "cache")
    srv = Server()
    monkeypatch.setattr(settings, "datagouv_api", f"{srv.url}/api/1")
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def test_fetch_downloads_url_into_cache(server: Server, tmp_path: Path) -> None:
    content = b"insee_com,lib_com,niveau_densite\n31555,Toulouse,Grands centres urbains\n"
    server.files["/files/grille.csv"] = content
    dataset = dataclasses.replace(
        catalogue.get("grille_densite_cog2026_anct"),
        url=f"{server.url}/files/grille.csv",
        sha256=hashlib.sha256(content).hexdigest(),
    )
    path = catalogue.fetch(dataset)
    assert path == tmp_path / "cache" / "densite" / "grille_densite_7_niveaux_cog2026.csv"
    assert path.read_bytes() == content
    assert catalogue.fetch(dataset) == path  # the cache answers, no second request
    assert server.counts["/files/grille.csv"] == 1
    assert list(path.parent.iterdir()) == [path]


def test_fetch_resolves_datagouv_resource(server: Server, tmp_path: Path) -> None:
    path = catalogue.fetch("qpv2024", progress=True)
    assert path == tmp_path / "cache" / "qpv" / "QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson"
    assert path.read_bytes() == QPV2024
    assert server.counts == {f"/api/1/datasets/{QPV_SLUG}/": 1, "/files/qp2024.geojson": 1}
    qpv = loaders.load_qpv(2024)
    assert len(qpv) == 5
    assert qpv.attrs["sources"][0]["fichier"] == str(path)
    assert sum(server.counts.values()) == 2


def test_load_qpv_downloads_when_missing(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # The 6-feature extract served here is refused as an incomplete national file…
    with pytest.raises(DownloadError, match=r"qpv2024.*6 lignes, attendu entre 1400 et 1800"):
        loaders.load_qpv(2024)
    assert not catalogue.get("qpv2024").cache_path.exists()
    # …and accepted once the catalogue expects that many rows.
    extract = dataclasses.replace(catalogue.get("qpv2024"), rows=(1, 10))
    monkeypatch.setitem(catalogue.datasets(), "qpv2024", extract)
    qpv = loaders.load_qpv(2024)
    assert sorted(qpv["code_qpv"])[:2] == ["QN02A01M", "QN03101M"]
    assert server.counts["/files/qp2024.geojson"] == 2


def test_fetch_checksum_mismatch(server: Server) -> None:
    dataset = dataclasses.replace(catalogue.get("qpv2024"), sha256="0" * 64)
    with pytest.raises(ChecksumError) as info:
        catalogue.fetch(dataset)
    assert "0" * 64 in str(info.value)
    assert hashlib.sha256(QPV2024).hexdigest() in str(info.value)
    assert not dataset.cache_path.exists()
    assert list(dataset.cache_path.parent.iterdir()) == []


def test_fetch_http_error_names_the_dataset(server: Server) -> None:
    dataset = dataclasses.replace(
        catalogue.get("grille_densite_2024_insee"), url=f"{server.url}/files/absent.xlsx"
    )
    with pytest.raises(DownloadError, match=r"grille_densite_2024_insee.*404"):
        catalogue.fetch(dataset)
    assert not dataset.cache_path.exists()
