"""``territoires serve``: every endpoint over HTTP on 127.0.0.1, good and bad input.

The server runs in a thread of the test process (uvicorn), on the real reference data;
answers are compared with the library's own, so the service adds no classification of
its own.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import psutil
import pytest
import requests
from conftest import start_chromium
from webserver import free_port, running

from territoires import check, classify, preset, settings
from territoires.rules import VERDICTS
from territoires.testing import GeocoderStub
from territoires.web import ServeConfig
from territoires.web.app import RateLimiter
from territoires.web.page import parse_query
from territoires.web.uploads import safe_stem

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lieux_exemple.csv"
REYNERIE = (1.4020, 43.5750)  # inside QPV QP031007 « Grand Mirail »
CAPITOLE = (1.4442, 43.6047)  # Toulouse, 1.5 km from the nearest QPV
CAPITOLE_ADDRESS = "1 place du Capitole 31000 Toulouse"  # known by the geocoder stub
XSS = "<script>alert('xss')</script>"
LIMIT_MB = 0.5


@pytest.fixture(scope="module")
def server(data_dir):
    """The service on the real data, upload limit 0.5 MB, no rate limit."""
    config = ServeConfig(data_dir=str(data_dir), max_upload_mb=LIMIT_MB, rate_limit=0)
    with running(config) as served:
        yield served


@pytest.fixture(scope="module")
def base(server):
    return server[0]


def assert_error(answer: requests.Response, status: int, *words: str) -> dict:
    """The answer is a French JSON error {erreur, detail} with that status."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"erreur", "detail"}
    assert "Traceback" not in answer.text
    for word in words:
        assert word in body["detail"], body
    return body


def get(base: str, path: str, **params) -> requests.Response:
    return requests.get(f"{base}{path}", params=params, timeout=30)


# --- GET /api/v1/eligibilite -------------------------------------------------------


def test_check_by_coordinates_matches_the_library(base, data_dir):
    answer = get(base, "/api/v1/eligibilite", lon=REYNERIE[0], lat=REYNERIE[1])
    assert answer.status_code == 200
    body = answer.json()
    expected = check(*REYNERIE, preset(), data_dir=data_dir)
    assert body["verdict"] == expected["verdict"] == "qpv"
    assert body["motif"] == expected["motif"]
    assert body["qpv_code"] == "QP031007"
    assert body["label"] == "Dans un quartier prioritaire (QPV)"
    assert body["commune"] == "Toulouse" and body["code_insee"] == "31555"
    assert body["densite7"] == 1 and body["distance_qpv_m"] == 0.0
    assert body["regles"]["nom"] == "fabriques-2019"
    vintages = {source["jeu"]: source["millesime"] for source in body["sources"]}
    assert vintages["qpv2015_occitanie"] == 2015
    assert all("fichier" not in source for source in body["sources"])  # no server paths
    assert "lon_entree" not in body


def test_distance_and_rules_parameters(base):
    default = get(base, "/api/v1/eligibilite", lon=CAPITOLE[0], lat=CAPITOLE[1]).json()
    assert default["verdict"] == "non_eligible"
    assert 1000 < default["distance_qpv_m"] < 2000
    wider = get(base, "/api/v1/eligibilite", lon=CAPITOLE[0], lat=CAPITOLE[1], distance=2000)
    assert wider.status_code == 200
    assert wider.json()["verdict"] == "proximite_qpv"
    assert wider.json()["regles"]["distance_proximite_m"] == 2000


def test_concurrent_checks_are_each_answered_like_the_library(base, data_dir):
    points = [(1.40 + i * 0.004, 43.57 + (i % 7) * 0.003) for i in range(30)]
    points += points[:10]  # the same point twice in a batch is not a duplicate row
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(
            pool.map(lambda p: get(base, "/api/v1/eligibilite", lon=p[0], lat=p[1]), points)
        )
    for (lon, lat), answer in zip(points, answers, strict=True):
        assert answer.status_code == 200, answer.text
        expected = check(lon, lat, preset(), data_dir=data_dir)
        assert answer.json()["verdict"] == expected["verdict"]
        assert answer.json()["motif"] == expected["motif"]


@pytest.mark.parametrize(
    ("params", "status", "word"),
    [
        ({"lon": "nan", "lat": "43.5"}, 400, "finis"),
        ({"lon": "1.4", "lat": "inf"}, 400, "finis"),
        ({"lon": "200", "lat": "43.5"}, 400, "-180"),
        ({"lon": "-30", "lat": "48.85"}, 400, "hors de France"),
        ({"lon": "-4.8", "lat": "46.0"}, 400, "hors"),  # Atlantic, off Brittany
        ({"lon": "abc", "lat": "43.5"}, 422, "nombre attendu"),
        ({"lon": "1.4"}, 422, "vont ensemble"),
        ({}, 422, "une seule façon"),
        ({"lon": "1.4", "lat": "43.5", "code_insee": "31555"}, 422, "une seule façon"),
        ({"lon": "1.4", "lat": "43.5", "rayon": "3"}, 422, "rayon"),
        ({"lon": "1.4", "lat": "43.5", "regles": "inconnues"}, 422, "fabriques-2019"),
        ({"lon": "1.4", "lat": "43.5", "distance": "-5"}, 422, "distance"),
        ({"lon": "1.4", "lat": "43.5", "distance": "nan"}, 422, "distance"),
        ({"lon": "1.4", "lat": "43.5", "regles": XSS}, 422, "inconnu"),
    ],
)
def test_bad_check_parameters(base, params, status, word):
    assert_error(get(base, "/api/v1/eligibilite", **params), status, word)


@pytest.fixture
def geocoder(monkeypatch):
    """The local geocoder stub; the in-process server geocodes through it."""
    with GeocoderStub() as stub:
        monkeypatch.setattr(settings, "offline", False)
        monkeypatch.setattr(settings, "geocoder_url", stub.url)
        yield stub


def test_check_by_address_matches_the_library(base, geocoder, data_dir):
    answer = get(base, "/api/v1/eligibilite", adresse=CAPITOLE_ADDRESS)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = check(CAPITOLE_ADDRESS, None, preset(), data_dir=data_dir)
    assert body["verdict"] == expected["verdict"]
    assert body["motif"] == expected["motif"]
    assert body["commune"] == "Toulouse"
    assert body["geocodage_label"] == "1 Place du Capitole 31000 Toulouse"
    assert (body["lon"], body["lat"]) == (pytest.approx(1.44337), pytest.approx(43.604468))
    assert_error(get(base, "/api/v1/eligibilite", adresse="zzz rue de nulle part"), 422)
    assert_error(get(base, "/api/v1/eligibilite", adresse="  "), 422, "vide")


def test_check_by_commune_code_matches_the_library(base, data_dir):
    answer = get(base, "/api/v1/eligibilite", code_insee="31555")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = classify(pd.DataFrame({"code_insee": ["31555"]}), preset(), data_dir=data_dir)
    assert body["verdict"] == expected["verdict"].iloc[0]
    assert body["motif"] == expected["motif"].iloc[0]
    assert body["commune"] == "Toulouse" and body["lon"] is None
    assert_error(get(base, "/api/v1/eligibilite", code_insee="99999"), 422, "99999")


def test_repeated_parameter_is_refused(base):
    answer = requests.get(f"{base}/api/v1/eligibilite?lon=1.4&lon=1.5&lat=43.5", timeout=30)
    assert_error(answer, 422, "plusieurs fois")


# --- other endpoints --------------------------------------------------------------


def test_rules_sources_and_health(base):
    rules = get(base, "/api/v1/regles").json()
    assert "fabriques-2019" in [item["nom"] for item in rules["jeux"]]
    assert rules["regles_urbaines"][0]["description"]
    sources = get(base, "/api/v1/sources").json()
    names = {item["jeu"] for item in sources["catalogue"]}
    assert "qpv2015_occitanie" in names
    assert all(item["licence"] for item in sources["catalogue"])
    assert {item["jeu"] for item in sources["chargees"]} <= names
    health = get(base, "/sante")
    assert health.status_code == 200
    assert health.json()["etat"] == "pret"
    assert "fabriques-2019" in health.json()["regles_preparees"]


def test_unknown_path_and_method_are_french_json(base):
    assert_error(get(base, "/api/v1/nulle-part"), 404, "introuvable")
    assert_error(requests.delete(f"{base}/api/v1/regles", timeout=30), 405, "non autorisée")


def test_openapi_in_french_and_assets_served_locally(base):
    schema = get(base, "/openapi.json").json()
    assert schema["paths"]["/api/v1/eligibilite"]["get"]["summary"] == "Éligibilité d'un lieu"
    params = schema["paths"]["/api/v1/eligibilite"]["get"]["parameters"]
    assert any("Longitude" in p["description"] for p in params)
    docs = get(base, "/docs")
    assert docs.status_code == 200
    assert "/static/docs/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert get(base, "/static/docs/swagger-ui-bundle.js").status_code == 200
    assert get(base, "/static/leaflet/leaflet.js").status_code == 200
    assert get(base, "/static/territoires/carte.js").status_code == 200


# --- POST /api/v1/classement ------------------------------------------------------


def post_file(base: str, name: str, content: bytes, **params) -> requests.Response:
    headers = params.pop("headers", {})
    return requests.post(
        f"{base}/api/v1/classement",
        params=params,
        files={"fichier": (name, content)},
        headers=headers,
        timeout=60,
    )


def places_csv(names: list[str]) -> bytes:
    rows = ["nom;longitude;latitude"]
    rows += [
        f"{name};1,4020;43,5750" if i % 2 else f"{name};1,4442;43,6047"
        for i, name in enumerate(names)
    ]
    return ("\n".join(rows) + "\n").encode("utf-8")


def test_csv_upload_gives_every_row_in_order(base, server):
    content = EXAMPLE.read_bytes()
    answer = post_file(base, "lieux_exemple.csv", content)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'filename="lieux_exemple_classe.csv"' in answer.headers["content-disposition"]
    out = pd.read_csv(io.BytesIO(answer.content), sep=";", dtype=str, encoding="utf-8-sig")
    source = pd.read_csv(EXAMPLE, sep=";", dtype=str)
    assert len(out) == len(source) == int(answer.headers["x-territoires-lignes"])
    pd.testing.assert_frame_equal(out[source.columns], source)  # user cells unchanged
    assert out["verdict"].notna().all() and out["motif"].notna().all()


def test_output_format_by_parameter_or_accept(base):
    content = EXAMPLE.read_bytes()
    xlsx = post_file(base, "lieux.csv", content, format="xlsx")
    assert xlsx.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)
    assert book.sheetnames == ["Synthèse", "resultats"]
    geojson = post_file(base, "lieux.csv", content, headers={"Accept": "application/geo+json"})
    assert geojson.status_code == 200
    frame = gpd.read_file(io.BytesIO(geojson.content))
    assert len(frame) == len(pd.read_csv(EXAMPLE, sep=";"))
    carte = post_file(base, "lieux.csv", content, format="carte")
    assert carte.status_code == 200
    assert carte.headers["content-type"].startswith("text/html")
    assert "L.map" in carte.text or "L.map(" in carte.text or "leaflet" in carte.text.lower()
    assert_error(post_file(base, "lieux.csv", content, format="pdf"), 422, "csv, xlsx")


def test_xlsx_and_geojson_uploads(base, tmp_path):
    source = pd.read_csv(EXAMPLE, sep=";", dtype=str)
    for column in ("longitude", "latitude"):
        source[column] = pd.to_numeric(source[column].str.replace(",", "."), errors="coerce")
    source.to_excel(tmp_path / "lieux.xlsx", index=False)
    answer = post_file(base, "lieux.xlsx", (tmp_path / "lieux.xlsx").read_bytes())
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    result = pd.read_excel(io.BytesIO(answer.content), sheet_name="resultats")
    assert result["nom"].tolist() == source["nom"].tolist()
    layer = gpd.GeoDataFrame(
        source[["nom"]],
        geometry=gpd.points_from_xy(source["longitude"], source["latitude"]),
        crs="EPSG:4326",
    )
    answer = post_file(base, "lieux.geojson", layer.to_json().encode(), format="csv")
    assert answer.status_code == 200
    out = pd.read_csv(io.BytesIO(answer.content), sep=";", encoding="utf-8-sig")
    assert out["nom"].tolist() == source["nom"].tolist()


def test_malformed_uploads(base):
    assert_error(post_file(base, "notes.md", b"# pas des lieux"), 415, ".md")
    assert_error(post_file(base, "vide.csv", b""), 422, "vide")
    assert_error(post_file(base, "lieux.csv", b"nom;ville\nA;Toulouse\n"), 422, "colonne")
    assert_error(post_file(base, "lieux.xlsx", b"PK\x03\x04 pas un classeur"), 422, "XLSX")
    assert_error(post_file(base, "lieux.geojson", b"{pas du json"), 422)
    no_file = requests.post(
        f"{base}/api/v1/classement", data={"regles": "fabriques-2019"}, files={}, timeout=30
    )
    assert_error(no_file, 415, "multipart")
    only_field = requests.post(
        f"{base}/api/v1/classement", files={"regles": (None, "fabriques-2019")}, timeout=30
    )
    assert_error(only_field, 422, "aucun fichier")
    wrong_field = requests.post(
        f"{base}/api/v1/classement", files={"document": ("a.csv", b"x")}, timeout=30
    )
    assert_error(wrong_field, 422, "fichier")
    raw = requests.post(
        f"{base}/api/v1/classement",
        data=b"lon,lat\n1,43\n",
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert_error(raw, 415, "multipart")
    assert_error(post_file(base, "lieux.csv", b"x", unknown="1"), 422, "unknown")


def test_invalid_rows_come_out_with_their_reason(base):
    content = b"nom;longitude;latitude\nA;1,4020;43,5750\nB;abc;43,5\nC;-30;48,85\n"
    answer = post_file(base, "lieux.csv", content)
    assert answer.status_code == 200
    out = pd.read_csv(io.BytesIO(answer.content), sep=";", dtype=str, encoding="utf-8-sig")
    assert out["nom"].tolist() == ["A", "B", "C"]
    assert out["verdict"].tolist() == ["qpv", "invalide", "invalide"]
    assert "ligne 3" in out["motif"][1]


def test_oversized_upload_is_refused_with_413(base, server):
    big = b"nom;longitude;latitude\n" + b"x;1,4020;43,5750\n" * 40_000  # ~680 kB
    assert len(big) > LIMIT_MB * 1_000_000
    body = assert_error(post_file(base, "gros.csv", big), 413, "0,5 Mo")
    assert "territoires classify" in body["detail"]
    # Without Content-Length (chunked): refused while streaming.
    boundary = "frontiere"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="fichier"; filename="g.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()

    def chunks():
        yield head
        for _ in range(100):
            yield b"x;1,4020;43,5750\n" * 1000
        yield f"\r\n--{boundary}--\r\n".encode()

    try:
        answer = requests.post(
            f"{base}/api/v1/classement",
            data=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=60,
        )
    except requests.ConnectionError:
        pass  # the server may close the connection before the client has sent it all
    else:
        assert_error(answer, 413, "taille maximale")
    app = server[1]
    time.sleep(0.5)
    assert not list(app.state.temp.root.glob("requete-*")), "temporary folders left behind"


def test_html_and_formulas_in_names_stay_inert(base):
    names = [XSS, '=HYPERLINK("http://exemple.invalid")', "<img src=x onerror=alert(1)>"]
    answer = post_file(base, f"{XSS}.csv", places_csv(names))
    assert answer.status_code == 200
    assert "<" not in answer.headers["content-disposition"]
    out = pd.read_csv(io.BytesIO(answer.content), sep=";", dtype=str, encoding="utf-8-sig")
    assert out["nom"][0] == XSS and out["nom"][2] == names[2]
    assert out["nom"][1] == "'" + names[1]  # CSV formula neutralised by the export writer
    page = requests.post(
        f"{base}/classement", files={"fichier": (f"{XSS}.csv", places_csv(names))}, timeout=60
    )
    assert page.status_code == 200
    assert XSS not in page.text and "&lt;script&gt;" in page.text
    checked = get(base, "/", q=XSS)
    assert XSS not in checked.text and "<img src=x" not in checked.text


def test_temporary_folders_are_removed(base, server):
    for _ in range(3):
        assert post_file(base, "lieux.csv", EXAMPLE.read_bytes()).status_code == 200
    post_file(base, "vide.csv", b"")
    time.sleep(0.5)
    assert not list(server[1].state.temp.root.glob("requete-*"))


# --- staff page -------------------------------------------------------------------


def test_page_without_javascript(base):
    page = get(base, "/")
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert '<label for="q">' in page.text and '<label for="fichier">' in page.text
    assert "content-security-policy" in page.headers
    answer = get(base, "/", q="1.402, 43.575")
    assert answer.status_code == 200
    assert 'id="verdict"' in answer.text and "Dans un quartier prioritaire (QPV)" in answer.text
    assert "Grand Mirail" in answer.text
    assert "/static/leaflet/leaflet.js" in answer.text
    data = answer.text.split('id="carte-donnees">', 1)[1].split("</script>", 1)[0]
    geometries = json.loads(data)
    assert geometries["lieu"]["coordinates"] == [1.402, 43.575]
    assert geometries["qpv"]["features"][0]["properties"]["code"] == "QP031007"
    assert geometries["bande"]["features"]
    bad = get(base, "/", q="1.4; 95")
    assert bad.status_code == 400 and 'role="alert"' in bad.text


def test_page_upload_gives_xlsx_and_map(base):
    answer = requests.post(
        f"{base}/classement",
        files={"fichier": ("lieux.csv", EXAMPLE.read_bytes())},
        data={"regles": "fabriques-2019"},
        timeout=60,
    )
    assert answer.status_code == 200
    links = [part.split('"', 1)[0] for part in answer.text.split('href="')[1:]]
    xlsx = next(link for link in links if "resultats.xlsx" in link)
    carte = next(link for link in links if "carte.html" in link)
    book = requests.get(f"{base}{xlsx.replace('&amp;', '&')}", timeout=30)
    assert book.status_code == 200
    assert 'filename="lieux_classe.xlsx"' in book.headers["content-disposition"]
    assert openpyxl.load_workbook(io.BytesIO(book.content)).sheetnames == ["Synthèse", "resultats"]
    page = requests.get(f"{base}{carte.replace('&amp;', '&')}", timeout=30)
    assert page.status_code == 200 and "attachment" in page.headers["content-disposition"]
    assert_error(get(base, "/resultats/inconnu/resultats.xlsx"), 404, "expiré")
    token = xlsx.split("/")[2]
    assert_error(get(base, f"/resultats/{token}/..%2Fentree.csv"), 404)


def test_parse_query():
    assert parse_query("1.402, 43.575") == ("point", (1.402, 43.575))
    assert parse_query(" -52.33 4.93 ") == ("point", (-52.33, 4.93))
    assert parse_query("1,402 ; 43,575") == ("point", (1.402, 43.575))
    assert parse_query("1,402, 43,575") == ("point", (1.402, 43.575))
    assert parse_query("31555") == ("code_insee", "31555")
    assert parse_query("2a004") == ("code_insee", "2A004")
    assert parse_query("12 rue de la Paix, Toulouse") == ("adresse", "12 rue de la Paix, Toulouse")


def test_safe_stem():
    assert safe_stem("../../etc/passwd.csv") == "passwd"
    assert safe_stem("<b onclick=x>lieux.csv") == "b_onclick_x_lieux"
    assert safe_stem(None) == "lieux"


# --- guards ------------------------------------------------------------------------


def test_rate_limiter_refills():
    limiter = RateLimiter(per_minute=2)
    assert limiter.wait("a", now=0) == 0 and limiter.wait("a", now=0) == 0
    assert limiter.wait("a", now=0) == pytest.approx(30)
    assert limiter.wait("b", now=0) == 0  # per client
    assert limiter.wait("a", now=31) == 0


def test_503_while_loading_then_rate_limit_and_timeout():
    config = ServeConfig(rate_limit=4, timeout_s=1.0)
    with running(config, load=False, ready=False) as (base, _):
        health = get(base, "/sante")
        assert health.status_code == 503 and health.json()["etat"] == "chargement"
        body = assert_error(get(base, "/api/v1/eligibilite", lon=1.4, lat=43.5), 503, "chargement")
        assert body["erreur"] == "service indisponible"
        page = get(base, "/", q="1.4, 43.5")
        assert page.status_code == 503
        limited = get(base, "/api/v1/regles")
        assert_error(limited, 429, "réessayez")
        assert int(limited.headers["retry-after"]) >= 1
    with running(ServeConfig(rate_limit=0, timeout_s=1.0), load=False, ready=False) as (base, app):
        app.state.service.state = "pret"  # the upload never completes: no data is needed
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(
                b"POST /api/v1/classement HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n"
            )
            received = b""
            while chunk := slow.recv(4096):
                received += chunk
                if b"}" in chunk:
                    break
            answer = received.decode("utf-8")
        assert answer.startswith("HTTP/1.1 504")
        assert "délai dépassé" in answer


def test_access_log_has_no_uploaded_content(base, caplog):
    secret = "Secret-de-la-ligne-42"
    with caplog.at_level(logging.INFO, logger="territoires.web.acces"):
        post_file(base, "lieux.csv", places_csv([secret]))
        get(base, "/api/v1/eligibilite", lon=REYNERIE[0], lat=REYNERIE[1])
        deadline = time.monotonic() + 10  # a line is written once the answer has been sent
        while time.monotonic() < deadline:
            lines = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("acces")]
            if {"/api/v1/classement", "/api/v1/eligibilite"} <= {x["chemin"] for x in lines}:
                break
            time.sleep(0.05)
    assert {line["chemin"] for line in lines} >= {"/api/v1/classement", "/api/v1/eligibilite"}
    upload = next(line for line in lines if line["chemin"] == "/api/v1/classement")
    assert upload["statut"] == 200 and upload["octets_recus"] > 0
    assert secret not in caplog.text
    checked = next(line for line in lines if line["chemin"] == "/api/v1/eligibilite")
    assert checked["parametres"] == ["lat", "lon"] and "1.402" not in json.dumps(checked)


# --- command line ------------------------------------------------------------------


@pytest.mark.slow
def test_cli_serve_starts_on_localhost_with_two_workers(data_dir, tmp_path):
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "territoires"),
            "--data-dir",
            str(data_dir),
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/sante", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        # Each worker loads its own data: one may still answer 503 while the other is ready.
        while time.monotonic() < deadline:
            answer = requests.get(
                f"http://127.0.0.1:{port}/api/v1/eligibilite",
                params={"lon": REYNERIE[0], "lat": REYNERIE[1]},
                timeout=30,
            )
            if answer.status_code != 503:
                break
            assert "retry-after" in answer.headers
            time.sleep(0.3)
        assert answer.json()["verdict"] == "qpv"
        listening = {
            c.laddr.ip
            for c in psutil.Process(process.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
        assert listening == {"127.0.0.1"}  # bound to this machine only by default
    finally:
        process.terminate()
        process.wait(30)
    text = (tmp_path / "serve.log").read_text()
    assert '"chemin": "/api/v1/eligibilite"' in text


# --- in a browser ------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    downloads = tmp_path_factory.mktemp("telechargements")
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"), downloads)
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.mark.chromium
def test_staff_page_in_chromium(browser, base, geocoder, data_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(f"{base}/")
    assert browser.execute_script(
        "return [...document.querySelectorAll('input, select')].every(e => e.labels.length)"
    )
    field = browser.find_element(By.ID, "q")
    field.send_keys(CAPITOLE_ADDRESS, Keys.ENTER)  # keyboard only
    verdict = wait.until(lambda d: d.find_element(By.ID, "verdict"))
    expected = check(CAPITOLE_ADDRESS, None, preset(), data_dir=data_dir)
    assert verdict.text == VERDICTS[expected["verdict"]]
    assert "Toulouse" in browser.find_element(By.ID, "motif").text
    assert geocoder.requests["/geocodage/search"] >= 1
    wait.until(lambda d: d.execute_script("return window.territoiresCarte !== undefined"))
    shown = browser.execute_script(
        "const c = window.territoiresCarte, p = c.lieu.getLatLng();"
        "return [p.lng, p.lat, c.map.getBounds().contains(p)];"
    )
    assert shown == [pytest.approx(1.44337), pytest.approx(43.604468), True]
    drawn = browser.find_elements(By.CSS_SELECTOR, "#carte path.leaflet-interactive")
    assert len(drawn) >= 2  # the nearest QPV and the place (the band is not interactive)
    assert browser.find_elements(By.CSS_SELECTOR, "#carte path[data-lieu]")
    assert browser.save_screenshot(str(tmp_path / "verification.png"))

    browser.get(f"{base}/")
    browser.find_element(By.ID, "fichier").send_keys(str(EXAMPLE))
    browser.find_element(By.CSS_SELECTOR, "form.fichier button").click()
    summary = wait.until(lambda d: d.find_element(By.ID, "bilan"))
    expected = pd.read_csv(EXAMPLE, sep=";", dtype=str)
    assert summary.text == f"{len(expected)} lieux classés"
    assert browser.save_screenshot(str(tmp_path / "classement.png"))
    browser.find_element(By.ID, "lien-xlsx").click()
    path = browser.downloads / "lieux_exemple_classe.xlsx"
    wait.until(lambda _: path.is_file())
    result = pd.read_excel(path, sheet_name="resultats", dtype=str)
    assert result["nom"].tolist() == expected["nom"].tolist()
    assert result["verdict"].notna().all()
    errors = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and "tile.openstreetmap.org" not in entry["message"]
    ]
    assert not errors
