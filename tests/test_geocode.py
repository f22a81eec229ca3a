"""Geocoding of addresses against a local imitation of the geocoder (127.0.0.1)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import territoires
from territoires import catalogue, export, geocode, places, settings
from territoires._errors import InputError
from territoires.cli import app
from territoires.testing import KNOWN, GeocoderStub

CAPITOLE = "1 place du Capitole 31000 Toulouse"
LAMARTINE = "2 rue Lamartine 31300 Toulouse"
SAINT_FLOUR = "Saint-Flour"
CAHORS = "3 chemin incertain 46000 Cahors"
NOWHERE = "99 avenue de Nulle Part 00000 Ailleurs"
CAPITOLE_SHOUTED = "1, PLACE du Capitole  31000 toulouse"


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The stub geocoder, the library pointed at it, a private cache, network allowed."""
    monkeypatch.setattr(settings, "offline", False)
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "cache")
    monkeypatch.setattr(settings, "backoff", 0)
    monkeypatch.setattr(settings, "timeout", 5.0)
    with GeocoderStub(slow_seconds=1.0) as server:
        monkeypatch.setattr(settings, "geocoder_url", server.url)
        yield server


def test_address_columns_without_case_or_accents() -> None:
    found = geocode.address_columns(["Nom", "Adresse", "CP", "Ville"])
    assert found == {"adresse": "Adresse", "code_postal": "CP", "commune": "Ville"}
    assert geocode.address_columns(["nom", "adresse postale"]) == {"adresse": "adresse postale"}
    assert geocode.address_columns(["nom", "code_postal", "commune"]) == {}
    with pytest.raises(InputError, match="plusieurs colonnes possibles pour adresse"):
        geocode.address_columns(["adresse", "Adresse "])


def test_address_queries_join_cells_and_keep_postcodes() -> None:
    frame = pd.DataFrame(
        {
            "adresse": ["1 place du Capitole", None, "  Le Bourg ", "12 rue de Metz"],
            "cp": [31000.0, 31000.0, 1000.0, np.nan],
            "ville": ["Toulouse", "Toulouse", "Ambérieu", "Toulouse"],
        }
    )
    before = frame.copy()
    queries = geocode.address_queries(frame, geocode.address_columns(frame.columns))
    assert queries.tolist()[0] == CAPITOLE
    assert queries.isna().tolist() == [False, True, False, False]
    assert queries[2] == "Le Bourg 01000 Ambérieu"
    assert queries[3] == "12 rue de Metz Toulouse"
    pd.testing.assert_frame_equal(frame, before)


def test_batch_results_cache_and_provenance(stub: GeocoderStub) -> None:
    queries = pd.Series(
        [CAPITOLE, LAMARTINE, SAINT_FLOUR, None, NOWHERE, CAHORS, CAPITOLE_SHOUTED],
        index=[10, 11, 12, 13, 14, 15, 16],
    )
    out = geocode.geocode(queries)
    assert list(out.columns) == list(geocode.COLUMNS)
    assert out.index.tolist() == queries.index.tolist()
    capitole = out.loc[10]
    assert (capitole.lon, capitole.lat) == (KNOWN[CAPITOLE][4], KNOWN[CAPITOLE][5])
    assert capitole.geocodage_type == "housenumber"
    assert capitole.geocodage_citycode == "31555"
    assert capitole.precision_m == geocode.PRECISION_M["housenumber"]
    assert pd.isna(capitole.probleme) and pd.isna(capitole.commune_donnee)
    assert out.loc[11, "precision_m"] == geocode.PRECISION_M["street"]
    # a commune-level result: located by its commune, no point
    assert out.loc[12, "commune_donnee"] == "15187"
    assert np.isnan(out.loc[12, "lon"]) and pd.isna(out.loc[12, "probleme"])
    assert out.loc[13, "probleme"] == "adresse manquante"
    assert "introuvable" in out.loc[14, "probleme"]
    # below the minimum score: not placed, the candidate is shown and the reason given
    assert np.isnan(out.loc[15, "lon"])
    assert out.loc[15, "geocodage_label"] == KNOWN[CAHORS][0]
    assert "score de 0,31 inférieur au minimum 0,50" in out.loc[15, "probleme"]
    # same address written differently: one query, same answer
    assert out.loc[16, "lon"] == capitole.lon
    assert stub.requests["/geocodage/search/csv"] == 1
    assert stub.rows["/geocodage/search/csv"] == 5
    provenance = out.attrs["geocodage"]
    assert provenance["service"] == stub.url
    assert provenance["requetes"] == 1 and provenance["depuis_cache"] == 0
    assert provenance["dates_reponses"][0] == time.strftime("%Y-%m-%d")

    again = geocode.geocode(queries)
    pd.testing.assert_frame_equal(again, out)
    assert stub.requests["/geocodage/search/csv"] == 1
    assert again.attrs["geocodage"]["depuis_cache"] == 5
    assert again.attrs["geocodage"]["requetes"] == 0


def test_min_score_option_and_setting(stub: GeocoderStub, monkeypatch: pytest.MonkeyPatch) -> None:
    assert geocode.geocode([CAHORS], min_score=0.3, batch=True)["lon"].notna().all()
    monkeypatch.setattr(settings, "geocoder_min_score", 0.8)
    out = geocode.geocode([CAPITOLE, LAMARTINE])
    assert out["lon"].notna().tolist() == [True, False]
    assert "inférieur au minimum 0,80" in out.loc[1, "probleme"]
    assert stub.requests["/geocodage/search/csv"] == 2  # 1 for Cahors, then 2 new addresses
    with pytest.raises(InputError, match="entre 0 et 1"):
        geocode.geocode([CAPITOLE], min_score=1.5)


def test_offline_uses_the_cache_only(stub: GeocoderStub) -> None:
    assert geocode.geocode([CAPITOLE]).attrs["geocodage"]["mode"] == "une requête par adresse"
    out = geocode.geocode([CAPITOLE, LAMARTINE], offline=True)
    assert out["lon"].notna().tolist() == [True, False]
    assert "absente du cache de géocodage (mode hors ligne)" in out.loc[1, "probleme"]
    assert sum(stub.requests.values()) == 1
    assert out.attrs["geocodage"]["mode"] == "aucune requête"
    assert out.attrs["geocodage"]["hors_ligne"] is True


def test_offline_setting_sends_nothing(stub: GeocoderStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "offline", True)
    out = geocode.geocode([CAPITOLE])
    assert "mode hors ligne" in out.loc[0, "probleme"]
    assert sum(stub.requests.values()) == 0


def test_single_requests(stub: GeocoderStub) -> None:
    out = geocode.geocode([CAPITOLE, NOWHERE, SAINT_FLOUR, CAPITOLE], batch=False)
    assert stub.requests["/geocodage/search"] == 3
    assert out.loc[0, "lon"] == KNOWN[CAPITOLE][4]
    assert "introuvable" in out.loc[1, "probleme"]
    assert out.loc[2, "commune_donnee"] == "15187"
    assert out.attrs["geocodage"]["mode"] == "une requête par adresse"
    assert geocode.geocode([LAMARTINE, CAHORS]).attrs["geocodage"]["mode"] == "fichiers CSV"


@pytest.mark.parametrize("fault", ["429", "500", "truncated", "partial", "garbage"])
def test_batch_recovers_from_one_fault(stub: GeocoderStub, fault: str) -> None:
    stub.fail_next(fault)
    out = geocode.geocode([CAPITOLE, LAMARTINE])
    assert out["probleme"].isna().all()
    assert stub.requests["/geocodage/search/csv"] == 2


@pytest.mark.parametrize("fault", ["429", "500", "truncated", "garbage"])
def test_single_recovers_from_one_fault(stub: GeocoderStub, fault: str) -> None:
    stub.fail_next(fault)
    out = geocode.geocode([CAPITOLE], batch=False)
    assert out.loc[0, "lon"] == KNOWN[CAPITOLE][4]
    assert stub.requests["/geocodage/search"] == 2


def test_retry_after_is_honoured(stub: GeocoderStub) -> None:
    stub.retry_after = 1
    stub.fail_next("429")
    start = time.monotonic()
    out = geocode.geocode([CAPITOLE])
    assert time.monotonic() - start >= 0.9  # settings.backoff is 0: the wait is the server's
    assert out.loc[0, "lon"] == KNOWN[CAPITOLE][4]


def test_slow_answer_is_retried(stub: GeocoderStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "timeout", 0.3)
    stub.fail_next("slow")
    out = geocode.geocode([CAPITOLE], batch=True)
    assert out["probleme"].isna().all()
    assert stub.requests["/geocodage/search/csv"] == 2


def test_failed_file_loses_no_row_and_is_not_cached(
    stub: GeocoderStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "geocoder_batch_size", 2)
    monkeypatch.setattr(settings, "retries", 2)
    queries = [CAPITOLE, LAMARTINE, SAINT_FLOUR, NOWHERE, CAHORS]
    stub.fail_next("500", "500")  # both attempts of the first file
    out = geocode.geocode(queries)
    assert len(out) == 5 and stub.requests["/geocodage/search/csv"] == 4
    assert out.loc[:1, "probleme"].str.startswith("géocodage impossible : le géocodeur").all()
    assert "HTTP 500" in out.loc[0, "probleme"] and "2 tentative(s)" in out.loc[0, "probleme"]
    assert out.loc[2, "commune_donnee"] == "15187"
    assert "introuvable" in out.loc[3, "probleme"]
    # the failed addresses are asked again on the next run, the others come from the cache
    sent = stub.rows["/geocodage/search/csv"]
    again = geocode.geocode(queries)
    assert again["probleme"].isna().tolist()[:3] == [True, True, True]
    assert stub.rows["/geocodage/search/csv"] - sent == 2


def test_time_out_names_the_delay(stub: GeocoderStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "timeout", 0.2)
    monkeypatch.setattr(settings, "retries", 2)
    stub.fail_next("slow", "slow")
    out = geocode.geocode([CAPITOLE], batch=False)
    assert "n'a pas répondu en 0,2 s" in out.loc[0, "probleme"]


def test_rate_limit_spaces_requests(stub: GeocoderStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "geocoder_rate", 10.0)
    start = time.monotonic()
    geocode.geocode([CAPITOLE, LAMARTINE, SAINT_FLOUR, NOWHERE], batch=False)
    assert time.monotonic() - start >= 0.3  # 4 requests, at least 0.1 s apart


def test_unusable_cache_warns_and_geocodes(stub: GeocoderStub, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setattr(settings, "cache_dir", blocker)
    with pytest.warns(UserWarning, match="cache de géocodage inutilisable"):
        out = geocode.geocode([CAPITOLE])
    assert out.loc[0, "lon"] == KNOWN[CAPITOLE][4]


def test_catalogue_describes_the_service() -> None:
    entry = catalogue.services()["geocodage_geoplateforme"]
    assert entry["url"] == "https://data.geopf.fr/geocodage"
    assert entry["search_csv"] == entry["url"] + "/search/csv"
    assert entry["rate_limit_per_s"] == 50
    assert set(entry["sources"]) >= {"urls", "rate_limit_per_s", "csv_max_bytes"}
    assert tuple(entry["result_types"]) == geocode.TYPES


# --- reading places with addresses, classify, check, CLI -----------------------------------


def test_read_places_geocodes_rows_without_coordinates(stub: GeocoderStub) -> None:
    table = pd.DataFrame(
        {
            "Nom": ["a", "b", "c", "d", "e"],
            "lon": ["1.40", None, "abc", None, None],
            "lat": ["43.57", None, None, None, None],
            "Adresse": [LAMARTINE, "1 place du Capitole", CAPITOLE, None, NOWHERE],
            "CP": [None, "31000", None, None, None],
            "Ville": [None, "Toulouse", None, None, None],
        }
    )
    before = table.copy()
    out = places.read_places(table)
    pd.testing.assert_frame_equal(table, before)
    assert out.index.tolist() == [0, 1, 2, 3, 4]
    # given coordinates are kept, never geocoded (even when wrong)
    assert (out.loc[0, "lon"], out.loc[0, "lat"]) == (1.40, 43.57)
    assert pd.isna(out.loc[0, "geocodage_type"]) and np.isnan(out.loc[0, "precision_m"])
    assert "longitude non numérique ('abc')" in out.loc[2, "probleme"]
    assert pd.isna(out.loc[2, "geocodage_label"])
    # a row without coordinates is placed at its address
    assert out.loc[1, "lon"] == KNOWN[CAPITOLE][4] and out.loc[1, "territoire"] == "metropole"
    assert out.loc[1, "geocodage_type"] == "housenumber" and out.loc[1, "precision_m"] == 30.0
    assert out.loc[1, "geometry"].x == KNOWN[CAPITOLE][4]
    assert out.loc[3, "probleme"].startswith("ligne 4 : longitude manquante ; latitude manquante")
    assert out.loc[4, "probleme"].startswith("ligne 5 : adresse introuvable par le géocodeur")
    # only the two addresses without coordinates were sent, in one file
    assert stub.rows["/geocodage/search/csv"] == 2


def test_read_places_with_every_coordinate_given_sends_nothing(stub: GeocoderStub) -> None:
    table = pd.DataFrame({"lon": [1.40, 1.44], "lat": [43.57, 43.60], "adresse": [LAMARTINE, None]})
    out = places.read_places(table)
    assert out["probleme"].isna().all()
    assert out["geocodage_label"].isna().all() and out["precision_m"].isna().all()
    assert out.attrs["geocodage"]["adresses"] == 0
    assert sum(stub.requests.values()) == 0
    assert geocode.geocode([]).columns.tolist() == list(geocode.COLUMNS)


def test_read_places_workbook_of_addresses(stub: GeocoderStub, tmp_path: Path) -> None:
    path = tmp_path / "lieux.xlsx"
    pd.DataFrame({"Nom": ["a", "b"], "Adresse": [CAPITOLE, LAMARTINE]}).to_excel(path, index=False)
    out = places.read_places(path)
    assert out["probleme"].isna().all()
    assert out["geocodage_type"].tolist() == ["housenumber", "street"]


def test_read_places_addresses_only_and_projected_columns(stub: GeocoderStub) -> None:
    only = places.read_places(pd.DataFrame({"adresse": [CAPITOLE, None]}))
    assert only.loc[0, "lon"] == KNOWN[CAPITOLE][4]
    assert only.loc[1, "probleme"] == "ligne 2 : adresse manquante"
    lambert = pd.DataFrame({"x": [None], "y": [None], "adresse": [CAPITOLE]})
    out = places.read_places(lambert, crs=2154)
    assert out.loc[0, "lon"] == pytest.approx(KNOWN[CAPITOLE][4])
    assert out.loc[0, "lat"] == pytest.approx(KNOWN[CAPITOLE][5])


def test_read_places_keeps_a_user_column_named_like_a_geocoding_one(stub: GeocoderStub) -> None:
    out = places.read_places(pd.DataFrame({"adresse": [CAPITOLE], "geocodage_label": ["x"]}))
    assert out.loc[0, "geocodage_label_entree"] == "x"
    assert out.loc[0, "geocodage_label"] == KNOWN[CAPITOLE][0]
    assert out.attrs["colonnes_entree"] == {"geocodage_label": "geocodage_label_entree"}


def test_classify_a_file_of_addresses(stub: GeocoderStub, data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "lieux.csv"
    source.write_text(
        "nom,adresse,code_postal,commune\n"
        "Capitole,1 place du Capitole,31000,Toulouse\n"
        "Mirail,2 rue Lamartine,31300,Toulouse\n"
        "Inconnu,99 avenue de Nulle Part,00000,Ailleurs\n",
        encoding="utf-8",
    )
    result = territoires.classify(source)
    assert result["nom"].tolist() == ["Capitole", "Mirail", "Inconnu"]
    # found at the street only: 250 m of precision, less than its distance to the QPV edge
    assert result["verdict"].tolist()[1] == "incertain"
    assert "moins que la précision de la position (250 m)" in result.loc[1, "motif"]
    assert result.loc[2, "verdict"] == "invalide"
    assert "adresse introuvable" in result.loc[2, "motif"]
    assert result["geocodage_type"].tolist()[:2] == ["housenumber", "street"]
    assert result.attrs["geocodage"]["service"] == stub.url
    written = export.write_results(result, tmp_path / "resultats.csv")
    provenance = json.loads(export.provenance_path(written).read_text(encoding="utf-8"))
    assert provenance["geocodage"]["adresses"] == 3


def test_check_an_address(stub: GeocoderStub, data_dir: Path) -> None:
    row = territoires.check(LAMARTINE)
    assert row["verdict"] == "incertain" and row["precision_m"] == 250
    assert row["geocodage_label"] == KNOWN[LAMARTINE][0]
    assert stub.requests == {"/geocodage/search": 1}
    assert row.attrs["geocodage"]["mode"] == "une requête par adresse"
    with pytest.raises(InputError, match="adresse seule"):
        territoires.check(LAMARTINE, 43.6)


def test_cli_check_classify_and_offline(stub: GeocoderStub, data_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["check", "2", "rue", "Lamartine", "31300", "Toulouse"])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[0] == (
        "Incertain (la réponse dépend de la position exacte du lieu)"
    )
    assert "Adresse trouvée : Rue Lamartine 31300 Toulouse (voie, score 0,78)" in done.stdout
    low = runner.invoke(app, ["check", CAHORS, "--score-min", "0.2"])
    assert low.exit_code == 0, low.output
    refused = runner.invoke(app, ["check", CAHORS, "--score-min", "0.9", "--offline"])
    assert refused.exit_code == 1
    assert "inférieur au minimum 0,90" in refused.stdout
    source = tmp_path / "lieux.csv"
    source.write_text(f"nom;adresse\nA;{CAPITOLE}\nB;{SAINT_FLOUR} centre\n", encoding="utf-8")
    out = tmp_path / "resultats.csv"
    geocode.geocode([CAPITOLE])  # in the cache, unlike the second address
    sent = sum(stub.requests.values())
    offline = runner.invoke(app, ["classify", str(source), "-o", str(out), "--offline"])
    assert offline.exit_code == 0, offline.output
    assert sum(stub.requests.values()) == sent  # nothing sent
    table = pd.read_csv(out, sep=";", dtype=str)
    assert table["verdict"].tolist() == ["non_eligible", "invalide"]
    assert "ligne 3 : adresse absente du cache de géocodage" in table.loc[1, "motif"]
    assert "Géocodage de 2 adresses" in offline.stderr


def test_classify_a_mix_of_coordinates_addresses_and_commune_codes(
    stub: GeocoderStub, data_dir: Path
) -> None:
    """Every row comes out, in order; a commune-level geocoding result and a commune code
    of the user are both located by their commune."""
    table = pd.DataFrame(
        {
            "nom": ["point", "adresse", "code", "commune seule", "rien"],
            "lon": ["1.4020", None, None, None, None],
            "lat": ["43.5750", None, None, None, None],
            "adresse": [None, CAPITOLE, None, SAINT_FLOUR, None],
            "code_insee": [None, None, "46042", None, None],
        }
    )
    result = territoires.classify(table)
    assert result["nom"].tolist() == table["nom"].tolist()
    assert result["localisation"].tolist()[:4] == ["point", "point", "commune", "commune"]
    assert result.loc[0, "verdict"] == "qpv"
    assert result.loc[1, "geocodage_type"] == "housenumber"
    assert "Cahors (46042)" in result.loc[2, "motif"]
    assert result.loc[3, "geocodage_type"] == "municipality"
    assert "Saint-Flour (15187)" in result.loc[3, "motif"]
    assert result.loc[4, "verdict"] == "invalide"
