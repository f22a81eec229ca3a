"""Places given by their commune: codes, names with département or postcode (real data)."""

from __future__ import annotations

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest

from territoires import communes, coverage, loaders
from territoires.places import read_places
from territoires.rules import preset


@pytest.fixture(scope="module")
def known(data_dir) -> pd.DataFrame:
    return loaders.load_commune_codes(data_dir=data_dir)


def _resolve(table: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
    code, dep, problem = communes.resolve(table, communes.find_columns(table.columns), known)
    return pd.DataFrame({"code": code, "dep": dep, "probleme": problem})


def test_codes_current_old_and_arrondissements(known) -> None:
    table = pd.DataFrame({"codgeo": ["31555", "01004", "75101", "01015", "99999", "1004"]})
    out = _resolve(table, known)
    # Toulouse; Ambérieu-en-Bugey; Paris 1er → Paris; Arbignieu, delegated commune → its
    # chef-lieu
    assert out["code"].tolist()[:4] == ["31555", "01004", "75056", "01015"]
    assert out["dep"].tolist()[:4] == ["31", "01", "75", "01"]
    assert out["probleme"].isna().tolist() == [True, True, True, True, False, False]
    assert "code commune '99999' inconnu (colonne 'codgeo')" in out["probleme"][4]
    # a code that lost its leading zero is never guessed: it is reported
    assert "zéro initial perdu par un tableur ? (01004 ?)" in out["probleme"][5]


def test_numeric_code_is_quoted_as_typed_in_the_spreadsheet(tmp_path, data_dir, known) -> None:
    """A workbook's number 1001 (shown 01001 by an Excel format « 00000 ») is quoted as
    typed, never as numpy writes it (« np.int64(1001) »), in a column of numbers with an
    empty cell (read as integers) or among texts."""
    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["nom", "code_insee"], ["A", 1001], ["B", 31555], ["C", None], ["D", 1001.5]):
        sheet.append(row)
    sheet["B2"].number_format = "00000"
    path = tmp_path / "lieux.xlsx"
    book.save(path)

    problems = read_places(path, data_dir=data_dir)["probleme"]

    assert problems[0] == (
        "ligne 2 : code commune 1001 inconnu (colonne 'code_insee') : attendu un code INSEE "
        "de commune à 5 caractères, par exemple 31555 pour Toulouse ; zéro initial perdu "
        "par un tableur ? (01001 ?)"
    )
    assert problems[3].startswith("ligne 5 : code commune 1001.5 inconnu")
    integers = pd.DataFrame({"code_insee": pd.array([1001, 31555, None], dtype="Int64")})
    problem = _resolve(integers, known)["probleme"][0]
    assert problem.startswith("code commune 1001 inconnu (colonne 'code_insee')")


def test_old_code_is_bridged_to_current_commune(known) -> None:
    old = known[known["code"] != known["code_insee"]].iloc[0]
    out = _resolve(pd.DataFrame({"code_insee": [old["code"]]}), known)
    assert out["code"][0] == old["code_insee"]


def test_names_with_departement_or_postcode(known) -> None:
    table = pd.DataFrame(
        {
            "commune": [
                "Albi",
                "St-Étienne",
                "Saint-Denis",
                "Le Mans",
                "Nulleville",
                "Saint-Denis",
            ],
            "departement": ["81", None, "93", "72", "31", None],
            "code_postal": [None, "42000", None, None, None, None],
        }
    )
    out = _resolve(table, known)
    assert out["code"].tolist()[:4] == ["81004", "42218", "93066", "72181"]
    assert "introuvable (colonne 'commune') dans le département '31'" in out["probleme"][4]
    assert "sans département ni code postal" in out["probleme"][5]


def test_read_places_with_only_name_and_code(data_dir) -> None:
    table = pd.DataFrame(
        {"nom": ["A", "B", "C", "D"], "code_insee": ["31555", "", "99999", "81004"]}
    )
    out = read_places(table, data_dir=data_dir)
    assert out["nom"].tolist() == ["A", "B", "C", "D"]
    assert out["commune_donnee"].tolist()[0] == "31555"
    assert out["commune_donnee"].isna().tolist() == [False, True, True, False]
    assert out["probleme"].isna().tolist() == [True, False, False, True]
    assert out["probleme"][1] == (
        "ligne 2 : coordonnées absentes ; commune absente aussi (colonnes 'code_insee' vides)"
    )
    assert out["probleme"][2].startswith("ligne 3 : code commune '99999' inconnu")
    assert out["territoire"].tolist() == ["metropole", "", "", "metropole"]
    assert out.geometry.isna().all() and out["lon"].isna().all()


def test_read_places_mix_keeps_points_and_never_replaces_wrong_coordinates(data_dir) -> None:
    table = pd.DataFrame(
        {
            "lon": ["1.4442", "", "500", "2.5"],
            "lat": ["43.6047", "", "43.6", ""],
            "code_insee": ["81004", "97411", "31555", "31555"],
            "precision_m": ["20", "", "", ""],
        }
    )
    out = read_places(table, precision=100, data_dir=data_dir)
    # a point keeps its coordinates even with a commune code; a row without coordinates is
    # located by its commune (La Réunion); wrong or half coordinates stay invalid
    assert pd.isna(out["commune_donnee"][0]) and out["commune_donnee"][1] == "97411"
    assert out["territoire"].tolist() == ["metropole", "reunion", "", ""]
    assert "hors des bornes WGS84" in out["probleme"][2]
    assert out["probleme"][3] == "ligne 4 : latitude manquante"
    assert out["precision_m"][0] == 20 and pd.isna(out["precision_m"][1])


def test_precision_column_is_checked(data_dir) -> None:
    table = pd.DataFrame({"lon": [1.44, 1.45], "lat": [43.6, 43.6], "precision_m": ["-5", "près"]})
    out = read_places(table)
    assert out["probleme"][0] == (
        "ligne 1 : précision négative (-5 m) (colonne 'precision_m') : "
        "attendu un nombre de mètres ≥ 0"
    )
    assert "précision non numérique ('près')" in out["probleme"][1]
    assert out["territoire"].tolist() == ["", ""]


def test_qpv_2024_by_commune(data_dir) -> None:
    pairs = loaders.load_qpv_communes(2024, data_dir=data_dir)
    assert list(pairs.columns) == loaders.QPV_COMMUNE_COLUMNS
    assert pairs["code_insee"].nunique() == 824
    assert len(pairs) == 1684 and pairs["code_qpv"].nunique() == 1493
    assert (pairs["code_qpv"].str[2:5] != "097").sum() > 0
    toulouse = pairs[pairs["code_insee"] == "31555"]
    assert len(toulouse) == 12
    assert toulouse.set_index("code_qpv")["nom_qpv"]["QN03108M"] == "Arènes"
    source = pairs.attrs["sources"][0]
    assert source["jeu"] == "qpv2024_communes_anct" and source["millesime"] == 2024
    assert source["sha256"] == "130a00b67eee875c3ecc18a059c4eb0806344a7491af208104d48db05ddc0f9f"


def test_coverage_uses_the_qpv_2024_list_when_contours_are_missing(data_dir) -> None:
    places = gpd.GeoDataFrame(
        {"nom": ["Paris 11e", "Agassac"]},
        geometry=gpd.points_from_xy([2.3795, 0.8963], [48.8590, 43.3706]),
        crs=4326,
    )
    with pytest.warns(UserWarning, match="figuré par ses communes d'accueil"):
        result = coverage.analyse(places, rules=preset("fabriques-2019-qpv2024"), data_dir=data_dir)
    qpv = result["qpv"].set_index("code_qpv")
    assert len(qpv) == 1493  # every QPV 2024 of the list, France entière
    # a place in Paris lies in the communes of every Parisian QPV: distance 0
    assert (qpv.loc[qpv.index.str.startswith("QN075"), "distance_lieu_m"] == 0).all()
    assert qpv.loc["QN03108M", "distance_lieu_m"] > 0  # Arènes, Toulouse
