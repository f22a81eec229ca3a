"""Places known by their commune, imprecise points and « incertain », on real data.

The QPV 2015 contours of the mirror cover Occitanie; the QPV 2024 contours are not in
the mirror, so the 2024 presets answer from the national list of QPV 2024 by commune.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from territoires import classify, loaders
from territoires.cli import app
from territoires.eligibility import BY_VINTAGE, side_by_side
from territoires.rules import preset

P2015 = preset("fabriques-2019")
P2024 = preset("fabriques-2019-qpv2024")


@pytest.fixture(scope="module")
def qpv2015(data_dir) -> gpd.GeoDataFrame:
    return loaders.load_qpv(2015, data_dir=data_dir).to_crs(2154)


def _at(qpv: gpd.GeoDataFrame, code: str, metres: float) -> tuple[float, float]:
    """A point at ``metres`` from the boundary of QPV ``code`` (negative: inside)."""
    shape = qpv.set_index("code_qpv").geometry[code].buffer(metres, quad_segs=64)
    if shape.geom_type == "MultiPolygon":
        shape = max(shape.geoms, key=lambda part: part.area)
    point = gpd.GeoSeries([shapely.Point(shape.exterior.coords[0])], crs=2154).to_crs(4326)
    return float(point.x[0]), float(point.y[0])


def _classify(rows: dict, rules, data_dir, **kwargs) -> pd.DataFrame:
    return classify(pd.DataFrame(rows), rules, data_dir=data_dir, **kwargs)


# --- places known only by their commune --------------------------------------------------


def test_large_city_hosting_qpv_2024_is_incertain_naming_them(data_dir) -> None:
    out = _classify({"nom": ["Mairie"], "code_insee": ["31555"]}, P2024, data_dir)
    row = out.iloc[0]
    assert row["verdict"] == "incertain"
    assert row["localisation"] == "commune" and pd.isna(row["lon"])
    assert pd.isna(row["in_qpv"]) and pd.isna(row["near_qpv"])
    assert row["commune"] == "Toulouse" and row["code_insee"] == "31555"
    assert "QN03108M « Arènes »" in row["qpv_a_verifier"]
    assert "QN03107M « Grand Mirail »" in row["motif"]
    assert row["motif"].startswith("Incertain")
    assert "la commune compte des QPV 2024" in row["motif"]
    assert "liste nationale ANCT des QPV 2024 par commune" in row["motif"]
    assert "grand centre urbain" in row["motif"]


def test_rural_commune_is_neither_in_nor_near_a_qpv(data_dir) -> None:
    for rules in (P2015, P2024):
        out = _classify({"code_insee": ["31001"]}, rules, data_dir)
        row = out.iloc[0]
        assert row["verdict"] == "hors_grands_centres_urbains", rules.name
        assert row["in_qpv"] == False and row["near_qpv"] == False  # noqa: E712
        assert "aucun QPV" in row["motif"] and "ni à 300 m ou moins de ses limites" in row["motif"]
        assert "Agassac (31001)" in row["motif"]


def test_commune_without_qpv_next_to_a_hosting_one(data_dir) -> None:
    # Balma hosts no QPV 2024; Toulouse, its neighbour, hosts twelve
    pairs = loaders.load_qpv_communes(data_dir=data_dir)
    assert "31044" not in set(pairs["code_insee"])
    out = _classify({"code_insee": ["31044"]}, P2024, data_dir)
    row = out.iloc[0]
    assert row["verdict"] == "incertain"
    assert "aucun QPV 2024 dans la commune, mais à 300 m ou moins de ses limites" in row["motif"]
    assert "QN03113M « Soupetard »" in row["qpv_a_verifier"]


def test_commune_rows_with_2015_contours_and_without(data_dir) -> None:
    out = _classify({"code_insee": ["31555", "75056"]}, P2015, data_dir)
    toulouse, paris = out.iloc[0], out.iloc[1]
    assert toulouse["verdict"] == "incertain"
    assert "(contours des QPV 2015" in toulouse["motif"]
    assert "QP031008 « Arènes »" in toulouse["qpv_a_verifier"]
    # the 2015 contours of the mirror cover Occitanie only; there is no 2015 list
    assert paris["verdict"] == "indetermine"
    assert "QPV non vérifiable : département 75" in paris["motif"]


def test_commune_name_with_departement_and_unknown_code(data_dir) -> None:
    rows = {
        "nom": ["A", "B", "C"],
        "commune": ["Albi", "Toulouse", None],
        "departement": ["81", "31", None],
        "code_insee": [None, None, "99999"],
    }
    out = _classify(rows, P2024, data_dir)
    assert out["nom"].tolist() == ["A", "B", "C"]
    assert out["code_insee"].tolist()[:2] == ["81004", "31555"]
    # Albi hosts QPV but lies outside large urban centres: eligible wherever the place
    # is in the commune, with the QPV to check still named; Toulouse is a large centre
    assert out["verdict"].tolist() == ["hors_grands_centres_urbains", "incertain", "invalide"]
    assert "QN" in out["qpv_a_verifier"][0]
    assert "ligne 3 : code commune '99999' inconnu (colonne 'code_insee')" in out["motif"][2]


# --- points answered by the list of QPV 2024 by commune ----------------------------------


def test_points_without_2024_contours(data_dir) -> None:
    rows = {"nom": ["Capitole", "campagne"], "lon": [1.4442, 0.95], "lat": [43.6047, 43.3]}
    out = _classify(rows, P2024, data_dir)
    capitole, campagne = out.iloc[0], out.iloc[1]
    # a precise point in a hosting commune without contours stays indetermine, naming
    # the QPV to check
    assert capitole["verdict"] == "indetermine"
    assert "QN03108M « Arènes »" in capitole["qpv_a_verifier"]
    assert "à vérifier à l'adresse" in capitole["motif"]
    assert campagne["verdict"] == "hors_grands_centres_urbains"
    assert campagne["in_qpv"] == False and campagne["near_qpv"] == False  # noqa: E712
    assert (
        "aucun QPV 2024 dans la commune ni dans les communes à 300 m ou moins"
        in (campagne["motif"])
    )


def test_2024_indetermine_only_where_a_qpv_is_named(data_dir) -> None:
    communes = loaders.load_communes(data_dir=data_dir)
    sample = communes.sample(400, random_state=8)
    points = sample.geometry.representative_point()
    out = _classify({"lon": points.x.to_numpy(), "lat": points.y.to_numpy()}, P2024, data_dir)
    assert (out["verdict"] != "invalide").all()
    undecided = out["verdict"] == "indetermine"
    assert out.loc[undecided, "qpv_a_verifier"].notna().all()
    # most of France hosts no QPV: most places get a QPV answer
    assert out["in_qpv"].notna().mean() > 0.8


# --- « incertain » within the precision of a point ----------------------------------------


def test_incertain_at_the_qpv_boundary(data_dir, qpv2015) -> None:
    inside = _at(qpv2015, "QP031007", -20)
    outside = _at(qpv2015, "QP031007", 20)
    rows = {
        "lon": [inside[0], inside[0], outside[0], outside[0]],
        "lat": [inside[1], inside[1], outside[1], outside[1]],
        "precision_m": [50, 5, 50, 5],
    }
    out = _classify(rows, P2015, data_dir)
    assert out["verdict"].tolist() == ["incertain", "qpv", "incertain", "proximite_qpv"]
    assert "dans le QPV QP031007 « Grand Mirail » mais à 20 m de sa limite" in out["motif"][0]
    assert (
        "moins que la précision de la position (50 m) : peut-être hors du QPV" in (out["motif"][0])
    )
    assert "à 20 m du QPV le plus proche QP031007" in out["motif"][2]
    assert "peut-être dans le QPV" in out["motif"][2]
    assert pd.isna(out["in_qpv"][0]) and out["precision_m"].tolist() == [50, 5, 50, 5]


def test_incertain_at_the_proximity_threshold(data_dir, qpv2015) -> None:
    near = _at(qpv2015, "QP031007", 290)
    far = _at(qpv2015, "QP031007", 310)
    rows = {"lon": [near[0], far[0]], "lat": [near[1], far[1]]}
    # without precision: today's behaviour
    exact = _classify(rows, P2015, data_dir)
    assert exact["verdict"].tolist() == ["proximite_qpv", "non_eligible"]
    unsure = _classify(rows, P2015, data_dir, precision=30)
    assert unsure["verdict"].tolist() == ["incertain", "incertain"]
    for motif, metres in zip(unsure["motif"], ("290 m", "310 m"), strict=True):
        assert f"à {metres} du QPV le plus proche QP031007" in motif
        assert "écart au seuil de proximité de 300 m, moins que la précision de la position" in (
            motif
        )
        assert "(30 m)" in motif and "278 sexies" in motif
    sure = _classify(rows, P2015, data_dir, precision=5)
    assert sure["verdict"].tolist() == ["proximite_qpv", "non_eligible"]


def test_both_vintages_side_by_side(data_dir) -> None:
    rows = {"nom": ["Mirail", "Agassac"], "lon": [1.4020, None], "lat": [43.5750, None]}
    rows["code_insee"] = [None, "31001"]
    out = _classify(rows, P2015, data_dir, qpv_vintages=(2015, 2024))
    assert out["verdict_2015"].tolist() == ["qpv", "hors_grands_centres_urbains"]
    assert out["verdict_2024"].tolist() == ["indetermine", "hors_grands_centres_urbains"]
    # Mirail is in a QPV 2015; without the 2024 contours it may still be in a QPV 2024:
    # unknown, not a change
    assert out["changement_qpv"].isna().tolist() == [True, False]
    assert out["changement_qpv"][1] == False  # noqa: E712
    assert "verdict" not in out and "motif_2024" in out
    assert set(out.attrs["verdicts"]) == {"2015", "2024"}


def test_no_change_claimed_where_a_vintage_lacks_data(data_dir) -> None:
    rows = {
        "nom": ["Paris", "Rodez", "Capitole", "Pibrac"],
        "lon": [2.3522, 2.5734, 1.4442, 1.2856],
        "lat": [48.8566, 44.3506, 43.6047, 43.6167],
    }
    out = _classify(rows, P2015, data_dir, qpv_vintages=(2015, 2024))
    # Paris: no QPV 2015 contours outside Occitanie, no 2024 contours: both unknown
    assert out["verdict_2015"][0] == out["verdict_2024"][0] == "indetermine"
    # Rodez: outside large urban centres both times, but a QPV 2024 in the commune might
    # contain it (verdict qpv then); Capitole: non_eligible in 2015, indetermine in 2024
    assert out["verdict_2015"].tolist()[1:3] == ["hors_grands_centres_urbains", "non_eligible"]
    assert out["verdict_2024"].tolist()[1:3] == ["hors_grands_centres_urbains", "indetermine"]
    # Pibrac: no QPV 2024 in or near its commune, known under both geographies
    assert out["changement_qpv"].isna().tolist() == [True, True, True, False]
    assert out["changement_qpv"][3] == False  # noqa: E712


def _run(verdicts: list[str], in_qpv: list, near_qpv: list) -> gpd.GeoDataFrame:
    frame = pd.DataFrame({column: [pd.NA] * len(verdicts) for column in BY_VINTAGE})
    frame["verdict"], frame["motif"] = verdicts, "motif"
    frame["in_qpv"] = pd.array(in_qpv, dtype="boolean")
    frame["near_qpv"] = pd.array(near_qpv, dtype="boolean")
    run = gpd.GeoDataFrame(frame, geometry=[None] * len(verdicts), crs=4326)
    run.attrs = {"regles": {}, "verdicts": {}}
    return run


def test_side_by_side_claims_a_change_only_between_settled_verdicts() -> None:
    first = _run(
        ["qpv", "qpv", "non_eligible", "invalide", "proximite_qpv", "qpv"],
        [True, True, False, None, None, True],
        [True, True, False, None, True, True],
    )
    second = _run(
        [
            "non_eligible",
            "hors_grands_centres_urbains",
            "non_eligible",
            "invalide",
            "qpv",
            "incertain",
        ],
        [False, None, False, None, True, None],
        [False, None, False, None, True, None],
    )
    changed = side_by_side({2015: first, 2024: second})["changement_qpv"]
    assert changed.tolist()[:4] == [True, pd.NA, False, False]
    # proximite_qpv with in_qpv unknown (precision) might be qpv: unknown; incertain too
    assert changed.isna().tolist() == [False, True, False, False, True, True]


# --- command line -------------------------------------------------------------------------


def test_cli_classify_commune_codes_only_and_mixed(data_dir, tmp_path) -> None:
    runner = CliRunner()
    codes = tmp_path / "communes.csv"
    codes.write_text("nom,code_insee\nMairie,31555\nFerme,31001\nErreur,3155\n", encoding="utf-8")
    result = runner.invoke(app, ["classify", str(codes), "-o", str(tmp_path / "a.csv")])
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "a.csv", sep=";", dtype=str, encoding="utf-8-sig")
    assert out["nom"].tolist() == ["Mairie", "Ferme", "Erreur"]
    assert out["verdict"].tolist() == ["incertain", "hors_grands_centres_urbains", "invalide"]
    assert "code commune '3155' inconnu (colonne 'code_insee')" in out["motif"][2]

    mixed = tmp_path / "mixte.csv"
    mixed.write_text(
        "nom;longitude;latitude;code_insee\nPoint;1,4020;43,5750;\nCommune;;;31001\nRien;;;\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["classify", str(mixed), "-o", str(tmp_path / "b.csv"), "--qpv", "2015,2024"]
    )
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "b.csv", sep=";", dtype=str, encoding="utf-8-sig")
    assert out["nom"].tolist() == ["Point", "Commune", "Rien"]
    assert out["localisation"].fillna("").tolist() == ["point", "commune", ""]
    assert out["verdict_2015"].tolist() == ["qpv", "hors_grands_centres_urbains", "invalide"]
    assert out["verdict_2024"].tolist()[:2] == ["indetermine", "hors_grands_centres_urbains"]
    assert "latitude manquante ; commune absente aussi" in out["motif_2015"][2]
    # Point: qpv in 2015, indetermine in 2024 (no 2024 contours): unknown, empty cell
    assert out["changement_qpv"].fillna("").tolist() == ["", "non", "non"]
