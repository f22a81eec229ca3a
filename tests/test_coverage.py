"""Coverage analysis: synthetic geometries with known distances, then the real data."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

import territoires
from territoires import coverage, export, loaders, settings
from territoires.rules import preset

OCCITANIE = ["09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"]


def _from(crs: int, geometries: list) -> gpd.GeoSeries:
    return gpd.GeoSeries(geometries, crs=crs).to_crs(4326)


# --- synthetic data -----------------------------------------------------------------------


@pytest.fixture
def qpv() -> gpd.GeoDataFrame:
    """Two 1 km squares in métropole (Lambert-93) and one in La Réunion (UTM 40S)."""
    metropole = _from(
        2154,
        [
            shapely.box(650_000, 6_860_000, 651_000, 6_861_000),
            shapely.box(660_000, 6_870_000, 661_000, 6_871_000),
        ],
    )
    reunion = _from(2975, [shapely.box(340_000, 7_660_000, 341_000, 7_661_000)])
    frame = gpd.GeoDataFrame(
        {
            "code_qpv": ["QP075001", "QP093001", "QP974001"],
            "nom_qpv": ["Carré A", "Carré B", "Carré R"],
            "communes": ["Paris", "Bobigny", "Saint-Denis"],
            "insee_com": ["75056", "93008", "97411"],
            "dep": pd.array(["75", "93", "974"], dtype="string"),
        },
        geometry=pd.concat([metropole, reunion]).to_numpy(),
        crs=4326,
        index=[10, 5, 7],
    )
    frame.attrs = {"sources": [{"jeu": "synthetique", "departements": ["75", "93", "974"]}]}
    return frame


@pytest.fixture
def places() -> gpd.GeoDataFrame:
    """Places 300 m east of A, 2 km north of A, inside B, plus three rows to exclude."""
    points = _from(
        2154,
        [
            shapely.Point(651_300, 6_860_500),
            shapely.Point(650_500, 6_863_000),
            shapely.Point(660_500, 6_870_500),
            shapely.Point(650_500, 6_860_500),
        ],
    )
    geometry = [*points, None, shapely.Point(-170, 0)]
    return gpd.GeoDataFrame(
        {
            "nom": ["à 300 m", "à 2 km", "dans B", "invalide dans A", "sans lieu", "océan"],
            "verdict": ["qpv", "non_eligible", "qpv", "invalide", "invalide", None],
        },
        geometry=geometry,
        crs=4326,
    )


@pytest.fixture
def communes() -> gpd.GeoDataFrame:
    """Four 5 km squares 20 km apart: a large urban centre, two rural, one unknown."""
    squares = [
        shapely.box(700_000 + 20_000 * i, 6_600_000, 705_000 + 20_000 * i, 6_605_000)
        for i in range(4)
    ]
    frame = gpd.GeoDataFrame(
        {
            "code_insee": ["75056", "75101", "93008", "13001"],
            "nom": ["Ville", "Bourg", "Inconnue", "Hameau"],
            "dep": pd.array(["75", "75", "93", "13"], dtype="string"),
            "reg": pd.array(["11", "11", "11", "93"], dtype="string"),
            "population": pd.array([100_000, 2_000, 500, 300], dtype="Int64"),
            "densite7": pd.array([1, 4, None, 6], dtype="Int64"),
        },
        geometry=_from(2154, squares).to_numpy(),
        crs=4326,
    )
    frame.attrs = {"sources": [{"jeu": "communes synthétiques"}]}
    return frame


@pytest.fixture
def rural_places() -> gpd.GeoDataFrame:
    """One place inside « Bourg », one 7 km east of « Hameau »."""
    points = _from(2154, [shapely.Point(722_500, 6_602_500), shapely.Point(772_000, 6_602_500)])
    return gpd.GeoDataFrame({"name": ["tiers-lieu 1", "tiers-lieu 2"]}, geometry=points)


def test_qpv_coverage_known_distances(qpv, places):
    result = coverage.qpv_coverage(places, qpv)
    assert list(result.index) == [10, 5, 7]
    assert list(result["code_qpv"]) == list(qpv["code_qpv"])
    assert result.crs == "EPSG:4326"
    a, b, r = (result.loc[label] for label in (10, 5, 7))
    assert a["distance_lieu_m"] == pytest.approx(300, abs=1)
    assert a["lieu_proche"] == "à 300 m"
    assert (a["nb_lieux_500m"], a["nb_lieux_1000m"], a["nb_lieux_5000m"]) == (1, 1, 2)
    assert a["couvert"]
    assert b["distance_lieu_m"] == 0
    assert b["lieu_proche"] == "dans B"
    assert (b["nb_lieux_500m"], b["nb_lieux_5000m"]) == (1, 1)
    assert np.isnan(r["distance_lieu_m"])
    assert pd.isna(r["lieu_proche"])
    assert r["nb_lieux_5000m"] == 0
    assert not r["couvert"]
    assert result.attrs["nb_lieux_analyses"] == 3
    assert result.attrs["lieux_exclus"] == {
        "invalide": 2,
        "sans_geometrie": 0,
        "hors_territoire": 1,
    }
    assert result.attrs["departements_qpv"] == ["75", "93", "974"]
    assert "75, 93, 974" in result.attrs["couverture_qpv"]


def test_qpv_coverage_parameters_population_and_regions(qpv, places, communes):
    population = pd.Series(["1200", "800"], index=["QP075001", "QP093001"])
    result = coverage.qpv_coverage(
        places,
        qpv,
        distances_m=(2500.5, 250),
        covered_within_m=250,
        qpv_population=population,
        communes=communes,
    )
    assert [c for c in result if c.startswith("nb_lieux")] == [
        "nb_lieux_250m",
        "nb_lieux_2500.5m",
    ]
    assert list(result["couvert"]) == [False, True, False]
    assert list(result["nb_lieux_2500.5m"]) == [2, 1, 0]
    assert result["population"].dtype == "Int64"
    assert result["population"].tolist()[:2] == [1200, 800]
    assert pd.isna(result["population"].iloc[2])
    assert result["reg"].tolist()[:2] == ["11", "11"]
    assert pd.isna(result["reg"].iloc[2])
    assert result.attrs["distances_m"] == [250.0, 2500.5]


def test_nearest_place_named_by_line_without_name_column(qpv, places):
    """Without names, a place is its line in the input (not a 0-based index label)."""
    unnamed = places.drop(columns="nom").set_index(pd.Index(list("uvwxyz")))
    assert coverage.qpv_coverage(unnamed, qpv)["lieu_proche"].tolist()[:2] == [
        "ligne 1",
        "ligne 3",
    ]
    unnamed.attrs["lignes"] = "2-7"  # as read from a CSV
    assert coverage.qpv_coverage(unnamed, qpv)["lieu_proche"].tolist()[:2] == [
        "ligne 2",
        "ligne 4",
    ]


def test_nearest_place_named_by_any_name_header(qpv, places):
    """« Nom du lieu » (any case, accents) names the places; --nom chooses another column."""
    named = places.rename(columns={"nom": "Nom du Lieu"})
    named["Libellé"] = [f"L{i}" for i in range(len(named))]
    assert coverage.qpv_coverage(named, qpv)["lieu_proche"].tolist()[:2] == [
        named["Nom du Lieu"].iloc[0],
        named["Nom du Lieu"].iloc[2],
    ]
    chosen = coverage.qpv_coverage(named, qpv, name_column="libelle")
    assert chosen["lieu_proche"].tolist()[:2] == ["L0", "L2"]


def test_inputs_not_mutated(qpv, places, communes, rural_places):
    before = (qpv.copy(), places.copy(), communes.copy(), dict(qpv.attrs))
    coverage.qpv_coverage(places, qpv, qpv_population=pd.Series({"QP075001": 3}))
    coverage.commune_coverage(rural_places, communes)
    assert_geodataframe_equal(qpv, before[0])
    assert_geodataframe_equal(places, before[1])
    assert_geodataframe_equal(communes, before[2])
    assert qpv.attrs == before[3]


def test_invalid_arguments(qpv, places):
    with pytest.raises(ValueError, match="CRS"):
        coverage.qpv_coverage(places.set_crs(None, allow_override=True), qpv)
    with pytest.raises(ValueError, match="distances_m"):
        coverage.qpv_coverage(places, qpv, distances_m=(0, 500))
    with pytest.raises(ValueError, match="covered_within_m"):
        coverage.qpv_coverage(places, qpv, covered_within_m=-1)


def test_no_place_at_all(qpv, places):
    result = coverage.qpv_coverage(places.iloc[3:], qpv)
    assert result["distance_lieu_m"].isna().all()
    assert not result["couvert"].any()
    assert result.attrs["nb_lieux_analyses"] == 0


def test_commune_coverage_outside_urban_centres(communes, rural_places):
    result = coverage.commune_coverage(rural_places, communes)
    assert list(result.index) == [1, 3]
    assert list(result["code_insee"]) == ["75101", "13001"]
    bourg, hameau = result.iloc[0], result.iloc[1]
    assert bourg["distance_lieu_m"] == 0
    assert bourg["lieu_proche"] == "tiers-lieu 1"
    assert hameau["distance_lieu_m"] == pytest.approx(7000, abs=1)
    assert (hameau["nb_lieux_5000m"], hameau["nb_lieux_10000m"]) == (0, 1)
    assert list(result["couvert"]) == [True, True]
    assert not coverage.commune_coverage(rural_places, communes, covered_within_m=5000)[
        "couvert"
    ].iloc[1]
    assert result.attrs["communes_regle_non_applicable"] == 1
    assert result.attrs["codes_regle_non_applicable"] == ["93008"]
    assert result.attrs["communes_grands_centres_urbains"] == 1
    assert result.attrs["regles"]["regle_urbaine"] == "densite-hors-grands-centres"


def test_commune_coverage_reports_missing_columns(communes, rural_places):
    with pytest.raises(ValueError, match="densite7"):
        coverage.commune_coverage(rural_places, communes.drop(columns="densite7"))


@pytest.fixture
def names() -> dict[str, pd.DataFrame]:
    return {
        "dep": pd.DataFrame({"dep": ["13", "75", "93", "974"], "nom": ["B", "P", "S", "R"]}),
        "reg": pd.DataFrame({"reg": ["04", "11", "93"], "nom": ["Réunion", "IdF", "PACA"]}),
    }


def test_aggregate_by_departement(qpv, places, communes, rural_places, names):
    population = pd.Series({"QP075001": 1200, "QP093001": 800, "QP974001": 50})
    qpv_cov = coverage.qpv_coverage(places, qpv, qpv_population=population)
    commune_cov = coverage.commune_coverage(rural_places, communes)
    out = coverage.aggregate(qpv_cov, commune_cov, "dep", names=names["dep"])
    out = out.set_index("dep")
    assert list(out.index) == ["13", "75", "93", "974"]
    assert out.loc["13", "qpv_donnees"] == coverage.QPV_DONNEES_ABSENT
    assert out.loc[["13"], ["nb_qpv", "part_qpv_couverts", "population_qpv"]].isna().all(axis=None)
    assert out.loc["974", "qpv_donnees"] == coverage.QPV_DONNEES_COMPLET
    assert (out.loc["974", "nb_qpv"], out.loc["974", "nb_qpv_couverts"]) == (1, 0)
    assert out.loc["974", "part_qpv_couverts"] == 0
    assert out.loc["974", "population_qpv_non_couverte"] == 50
    assert out.loc["75", "population_qpv_non_couverte"] == 0
    assert out.loc["13", "nb_communes_hors_gcu"] == 1
    assert out.loc["13", "population_hors_gcu"] == 300
    assert out.loc["13", "part_population_couverte"] == 1
    assert out.loc["93", "nb_communes_hors_gcu"] == 0
    assert pd.isna(out.loc["93", "part_population_couverte"])
    assert out.loc["75", "nom"] == "P"


def test_aggregate_by_region_and_unknown_populations(qpv, places, communes, rural_places, names):
    qpv_cov = coverage.qpv_coverage(places, qpv)
    commune_cov = coverage.commune_coverage(rural_places, communes)
    out = coverage.aggregate(
        qpv_cov, commune_cov, "reg", communes=pd.DataFrame(communes), names=names["reg"]
    ).set_index("reg")
    assert out.loc["11", "qpv_donnees"] == coverage.QPV_DONNEES_COMPLET
    assert out.loc["11", "nb_qpv"] == 2
    assert pd.isna(out.loc["11", "population_qpv_non_couverte"])
    assert out.loc["93", "qpv_donnees"] == coverage.QPV_DONNEES_ABSENT
    assert out.loc["04", "qpv_donnees"] == coverage.QPV_DONNEES_ABSENT
    assert out.loc["11", "population_hors_gcu"] == 2000


def test_aggregate_national_layer_and_geometry(qpv, places, communes, rural_places, names):
    national = qpv.copy()
    national.attrs = {"sources": [{"jeu": "national", "departements": None}]}
    qpv_cov = coverage.qpv_coverage(places, national)
    commune_cov = coverage.commune_coverage(rural_places, communes)
    out = coverage.aggregate(qpv_cov, commune_cov, "dep", communes=communes, names=names["dep"])
    assert isinstance(out, gpd.GeoDataFrame)
    assert out.crs == "EPSG:4326"
    assert (out["qpv_donnees"] == coverage.QPV_DONNEES_COMPLET).all()
    assert out.set_index("dep").loc["13", "nb_qpv"] == 0
    dissolved = out.set_index("dep").geometry
    assert dissolved.loc["974"] is None
    area = dissolved.loc[["75"]].to_crs(2154).area.iloc[0]
    assert area == pytest.approx(2 * 25e6, rel=1e-3)


def test_report_keeps_user_text_as_text(tmp_path, qpv, places, communes, rural_places):
    """A place named like a formula stays text in the workbook; control characters go."""
    hostile = places.assign(nom=['=HYPERLINK("http://exemple.invalid";"clic")', *places["nom"][1:]])
    qpv_cov = coverage.qpv_coverage(hostile, qpv)
    qpv_cov["nom_qpv"] = qpv_cov["nom_qpv"] + "\x0b"
    commune_cov = coverage.commune_coverage(rural_places, communes)
    written = export.write_report(tmp_path / "r.xlsx", qpv_cov, commune_cov, {})
    sheet = openpyxl.load_workbook(written)["qpv"]
    header = [cell.value for cell in sheet[1]]
    names = [row[header.index("lieu_proche")] for row in sheet.iter_rows(min_row=2)]
    formulas = [cell for cell in names if str(cell.value).startswith("=")]
    assert formulas and all(cell.data_type == "s" for cell in formulas)
    assert not any("\x0b" in str(row[1].value) for row in sheet.iter_rows(min_row=2))


def test_aggregate_reads_no_file(qpv, places, communes, rural_places, monkeypatch):
    """Without names, the areas are the codes of the tables, unnamed: nothing is loaded."""
    monkeypatch.setattr(settings, "data_dir", None)  # a read would fail: no mirror, offline
    qpv_cov = coverage.qpv_coverage(places, qpv)
    commune_cov = coverage.commune_coverage(rural_places, communes)
    out = coverage.aggregate(qpv_cov, commune_cov, "dep")
    assert list(out["dep"]) == sorted(set(commune_cov["dep"]) | set(qpv_cov["dep"]))
    assert out["nom"].isna().all()
    assert out.attrs["sources"] == []


def test_one_qpv_departements_for_layers_and_coverage(qpv, places):
    """Provenance first; a hand-made layer is national, or only where it has QPV."""
    assert loaders.qpv_departements(qpv) == ["75", "93", "974"]  # from its provenance
    handmade = qpv.iloc[:2].copy()
    handmade.attrs = {}
    assert loaders.qpv_departements(handmade) is None
    present = sorted(handmade["dep"].astype(str).unique())
    assert loaders.qpv_departements(handmade, unsourced="present") == present
    regional = qpv.copy()
    regional.attrs = {"sources": [{"jeu": "extrait", "departements": ["75", "92"]}]}
    assert loaders.qpv_departements(regional, unsourced="present") == ["75", "92"]
    qpv_cov = coverage.qpv_coverage(places, regional)
    assert loaders.qpv_departements(qpv_cov) == ["75", "92"]  # recorded in the coverage
    with pytest.raises(territoires.UnknownNameError, match="unsourced"):
        loaders.qpv_departements(qpv, unsourced="tout")


def test_aggregate_rejects_unknown_level(qpv, places, communes, rural_places):
    with pytest.raises(ValueError, match="niveau"):
        coverage.aggregate(
            coverage.qpv_coverage(places, qpv),
            coverage.commune_coverage(rural_places, communes),
            "epci",
        )


def test_most_underserved_ranks():
    frame = pd.DataFrame(
        {"dep": list("abcde"), "manque": pd.array([5, None, 10, 5, 1], dtype="Int64")}
    )
    top = coverage.most_underserved(frame, by="manque", n=3)
    assert list(top.columns) == ["rang", "dep", "manque"]
    assert list(top["dep"]) == ["c", "a", "d"]
    assert list(top["rang"]) == [1, 2, 2]
    assert list(coverage.most_underserved(frame, by="manque", ascending=True)["dep"]) == [
        "e",
        "a",
        "d",
        "c",
    ]
    with pytest.raises(ValueError, match="absente"):
        coverage.most_underserved(frame, by="inconnue")


def test_write_report_formats(tmp_path, qpv, places, communes, rural_places, names):
    qpv_cov = coverage.qpv_coverage(places, qpv)
    commune_cov = coverage.commune_coverage(rural_places, communes)
    by_dep = coverage.aggregate(qpv_cov, commune_cov, "dep", communes=communes, names=names["dep"])
    written = export.write_report(tmp_path / "r.xlsx", qpv_cov, commune_cov, {"dep": by_dep})
    workbook = openpyxl.load_workbook(written)
    assert workbook.sheetnames == ["Synthèse", "qpv", "communes", "departements"]
    header = [cell.value for cell in workbook["qpv"][1]]
    assert "geometry" not in header
    assert header[:3] == ["code_qpv", "nom_qpv", "dep"]
    assert workbook["qpv"].max_row == 4
    assert workbook["qpv"].cell(4, header.index("distance_lieu_m") + 1).value is None
    readme = {row[0].value: row[1].value for row in workbook["Synthèse"].iter_rows(min_row=2)}
    assert readme["Lieux exclus : verdict « invalide »"] == "2"
    assert "75, 93, 974" in readme["Couverture de la couche QPV"]

    gpkg = export.write_report(tmp_path / "r.gpkg", qpv_cov, commune_cov, {"dep": by_dep})
    layers = dict(pyogrio.list_layers(gpkg))
    assert set(layers) == {"lisez-moi", "qpv", "communes", "departements"}
    assert layers["lisez-moi"] is None
    assert len(gpd.read_file(gpkg, layer="departements")) == 4

    with pytest.raises(ValueError, match=r"\.xlsx"):
        export.write_report(tmp_path / "r.csv", qpv_cov, commune_cov, {})
    with pytest.raises(ValueError, match="double"):
        export.write_report(tmp_path / "r.xlsx", qpv_cov, commune_cov, {"qpv": by_dep})


# --- real data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(data_dir, tmp_path_factory) -> dict:
    """Real communes and QPV 2015 Occitanie, loaded once, with 33 places in Occitanie."""
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        patch.setattr(settings, "data_dir", data_dir)
        patch.setattr(settings, "cache_dir", tmp_path_factory.mktemp("cache"))
        patch.setattr(settings, "offline", True)
        communes = loaders.load_communes(data_dir=data_dir)
        qpv = loaders.load_qpv(2015, data_dir=data_dir)
        population = loaders.qpv_population_on_disk(2015, data_dir)
    occitanie = communes[communes["reg"] == "76"]
    chosen = pd.concat(
        [
            occitanie[occitanie["code_insee"].isin(qpv["insee_com"].iloc[:15])],
            occitanie[occitanie["densite7"] >= 5].sample(15, random_state=3),
        ]
    )
    points = [*chosen.representative_point(), qpv.geometry.iloc[20].representative_point()]
    points.append(qpv.geometry.iloc[40].representative_point())
    places = gpd.GeoDataFrame(
        {
            "nom": [*chosen["nom"], "dans un QPV", "invalide"],
            "verdict": ["hors_grands_centres_urbains"] * len(chosen) + ["qpv", "invalide"],
        },
        geometry=points,
        crs=4326,
    )
    qpv_cov = coverage.qpv_coverage(places, qpv, qpv_population=population, communes=communes)
    commune_cov = coverage.commune_coverage(places, communes)
    return {
        "communes": communes,
        "qpv": qpv,
        "population": population,
        "places": places,
        "qpv_cov": qpv_cov,
        "commune_cov": commune_cov,
        "dep": coverage.aggregate(
            qpv_cov,
            commune_cov,
            "dep",
            communes=communes,
            names=loaders.load_admin("departements", data_dir=data_dir),
        ),
        "reg": coverage.aggregate(
            qpv_cov,
            commune_cov,
            "reg",
            communes=pd.DataFrame(communes.drop(columns="geometry")),
            names=loaders.load_admin("regions", data_dir=data_dir),
        ),
    }


def _assert_consistent(result: pd.DataFrame, distances: list[float], threshold: float) -> None:
    distance = result["distance_lieu_m"]
    for d in distances:
        column = result[f"nb_lieux_{d}m"]
        assert ((column > 0) == (distance <= d)).all()
    counts = result[[f"nb_lieux_{d}m" for d in distances]].to_numpy()
    assert (np.diff(counts, axis=1) >= 0).all()
    assert (result["couvert"] == (distance <= threshold)).all()


def _brute_force(polygons: gpd.GeoSeries, places: gpd.GeoSeries) -> np.ndarray:
    """Distance matrix in Lambert-93, the slow obvious way."""
    shapes = polygons.to_crs(2154).to_numpy()[:, None]
    return shapely.distance(shapes, places.to_crs(2154).to_numpy()[None, :])


def test_real_qpv_coverage(real):
    result, qpv, places = real["qpv_cov"], real["qpv"], real["places"]
    assert len(result) == 105
    assert list(result["code_qpv"]) == list(qpv["code_qpv"])
    assert result.index.equals(qpv.index)
    _assert_consistent(result, [500, 1000, 5000], 1000)
    kept = places.geometry.iloc[:-1]
    matrix = _brute_force(qpv.geometry, kept)
    np.testing.assert_allclose(result["distance_lieu_m"], matrix.min(axis=1), atol=1e-3)
    np.testing.assert_array_equal(result["nb_lieux_5000m"], (matrix <= 5000).sum(axis=1))
    assert result["distance_lieu_m"].iloc[20] == 0
    assert result["lieu_proche"].iloc[20] == "dans un QPV"
    assert result["population"].notna().all()
    assert (result["reg"] == "76").all()
    assert result.attrs["departements_qpv"] == OCCITANIE
    assert result.attrs["lieux_exclus"]["invalide"] == 1
    assert result.attrs["sources"][0]["jeu"] == "qpv2015_occitanie"


def test_real_commune_coverage(real):
    result, communes = real["commune_cov"], real["communes"]
    outside, _ = preset().urban.evaluate(communes)
    assert len(result) == int(outside.eq(True).sum())
    assert (result["densite7"] != 1).all()
    assert result.attrs["communes_regle_non_applicable"] == int(outside.isna().sum())
    _assert_consistent(result, [5000, 10000, 20000], 10000)
    assert (result["distance_lieu_m"] == 0).sum() >= 15
    sample = result[result["reg"] == "76"].sample(150, random_state=1)
    matrix = _brute_force(sample.geometry, real["places"].geometry.iloc[:-1])
    np.testing.assert_allclose(sample["distance_lieu_m"], matrix.min(axis=1), atol=1e-3)
    overseas = result[result["dep"].str.len() == 3]
    assert overseas["distance_lieu_m"].isna().all()


def test_real_aggregate_by_departement(real):
    by_dep, commune_cov = real["dep"].set_index("dep"), real["commune_cov"]
    assert isinstance(real["dep"], gpd.GeoDataFrame)
    assert len(by_dep) == 101
    assert (by_dep.loc[OCCITANIE, "qpv_donnees"] == coverage.QPV_DONNEES_COMPLET).all()
    assert by_dep.loc[OCCITANIE, "nb_qpv"].sum() == 105
    assert by_dep.loc["48", "nb_qpv"] == 0
    assert by_dep.loc["31", "nom"] == "Haute-Garonne"
    paris = by_dep.loc["75"]
    assert paris["qpv_donnees"] == coverage.QPV_DONNEES_ABSENT
    assert pd.isna(paris["nb_qpv"]) and pd.isna(paris["population_qpv_non_couverte"])
    assert by_dep["population_hors_gcu"].sum() == commune_cov["population"].sum()
    covered = commune_cov[commune_cov["couvert"]].groupby("dep")["population"].sum()
    assert (
        covered.reindex(by_dep.index, fill_value=0) + by_dep["population_hors_gcu_non_couverte"]
        == by_dep["population_hors_gcu"]
    ).all()
    uncovered_qpv = real["qpv_cov"].query("not couvert")["population"].sum()
    assert by_dep["population_qpv_non_couverte"].sum() == uncovered_qpv
    haute_garonne = real["dep"].set_index("dep").geometry.loc["31"]
    area = gpd.GeoSeries([haute_garonne], crs=4326).to_crs(2154).area.iloc[0]
    communes_area = real["communes"].query("dep == '31'").to_crs(2154).area.sum()
    assert area == pytest.approx(communes_area, rel=0.02)


def test_real_aggregate_by_region_and_ranking(real):
    by_reg = real["reg"].set_index("reg")
    assert len(by_reg) == 18
    assert by_reg.loc["76", "qpv_donnees"] == coverage.QPV_DONNEES_COMPLET
    assert by_reg.loc["76", "nb_qpv"] == 105
    assert by_reg.loc["11", "qpv_donnees"] == coverage.QPV_DONNEES_ABSENT
    assert by_reg.drop(index="76")["nb_qpv"].isna().all()
    top = coverage.most_underserved(real["dep"], n=10)
    assert list(top["rang"]) == list(range(1, 11))
    values = top["population_hors_gcu_non_couverte"].to_numpy(dtype=float)
    assert (np.diff(values) <= 0).all()
    ranked_qpv = coverage.most_underserved(real["dep"], by="population_qpv_non_couverte", n=20)
    assert len(ranked_qpv) == 13
    assert set(ranked_qpv["dep"]) == set(OCCITANIE)


def test_real_write_report_round_trip(real, tmp_path):
    path = export.write_report(
        tmp_path / "couverture.xlsx",
        real["qpv_cov"],
        real["commune_cov"],
        {"dep": real["dep"], "reg": real["reg"]},
    )
    workbook = openpyxl.load_workbook(path, read_only=True)
    assert workbook.sheetnames == ["Synthèse", "qpv", "communes", "departements", "regions"]
    back = pd.read_excel(path, sheet_name=None, dtype={"dep": str, "reg": str})
    assert len(back["qpv"]) == 105
    assert len(back["communes"]) == len(real["commune_cov"])
    assert len(back["departements"]) == 101
    assert back["departements"].set_index("dep").loc["75", "qpv_donnees"] == (
        coverage.QPV_DONNEES_ABSENT
    )
    assert "qpv2015_occitanie" in " ".join(back["Synthèse"]["rubrique"])


def test_real_analyse(real, data_dir):
    result = coverage.analyse(
        real["places"], qpv=real["qpv"], communes=real["communes"], data_dir=data_dir
    )
    assert set(result) == {"qpv", "communes", "dep", "reg"}
    pd.testing.assert_series_equal(
        result["qpv"]["population"], real["qpv_cov"]["population"], check_names=False
    )
    assert not isinstance(result["dep"], gpd.GeoDataFrame)
    assert result["reg"].set_index("reg").loc["76", "nb_qpv"] == 105


# --- the territory measured ------------------------------------------------------------------


def test_a_list_in_one_region_is_measured_over_that_region(real, data_dir):
    """Places all in Occitanie: the communes of other régions are not « uncovered »."""
    result = coverage.analyse(
        real["places"], qpv=real["qpv"], communes=real["communes"], data_dir=data_dir
    )
    assert set(result["communes"]["reg"]) == {"76"}
    assert len(result["communes"]) == len(real["commune_cov"].query("reg == '76'"))
    assert result["dep"]["dep"].tolist() == OCCITANIE
    assert result["reg"]["reg"].tolist() == ["76"]
    assert len(result["qpv"]) == 105
    lines = coverage.summary(result).splitlines()
    assert lines[0] == "Territoire analysé : région Occitanie (76), où sont tous les lieux analysés"
    assert "couche QPV partielle" not in lines[1]  # the layer covers the whole territory
    assert result["communes"].attrs["territoire"]["choix"] == "lieux"


def test_france_on_request_says_where_the_places_are_absent(real, data_dir):
    result = coverage.analyse(
        real["places"], qpv=real["qpv"], communes=real["communes"], data_dir=data_dir, france=True
    )
    pd.testing.assert_series_equal(result["communes"]["couvert"], real["commune_cov"]["couvert"])
    assert len(result["dep"]) == 101
    first = coverage.summary(result).splitlines()[0]
    assert first.startswith("Territoire analysé : France entière ; aucun lieu de la liste dans")
    assert "17 régions" in first and "Bretagne (53)" in first and "Occitanie" not in first
    assert "faute de lieux dans la liste, non faute de tiers-lieux" in first


def test_chosen_departements_keep_the_places_outside_for_distances(real, data_dir):
    result = coverage.analyse(
        real["places"],
        qpv=real["qpv"],
        communes=real["communes"],
        data_dir=data_dir,
        departements="31, 9",
    )
    assert set(result["communes"]["dep"]) == set(result["dep"]["dep"]) == {"09", "31"}
    assert set(result["qpv"]["dep"]) == {"09", "31"}
    national = real["commune_cov"].set_index("code_insee")["distance_lieu_m"]
    here = result["communes"].set_index("code_insee")["distance_lieu_m"]
    pd.testing.assert_series_equal(here, national.loc[here.index])  # places elsewhere count
    scope = result["qpv"].attrs["territoire"]
    assert scope["departements"] == ["09", "31"] and scope["choix"] == "demande"
    outside = scope["lieux_hors_territoire"]
    assert outside > 0
    assert coverage.summary(result).splitlines()[0] == (
        f"Territoire analysé : départements Ariège (09), Haute-Garonne (31) ; {outside} lieux "
        "hors de ce territoire (comptés pour les communes et les QPV proches de sa limite)"
    )


def test_places_in_several_regions_are_measured_over_france(real):
    places = real["places"].copy()
    places.loc[len(places)] = ["Rennes", "non_eligible", shapely.Point(-1.68, 48.11)]
    scope = coverage.territory(places, real["communes"])
    assert scope["niveau"] == "france" and scope["choix"] == "plusieurs_regions"
    assert scope["regions_des_lieux"] == ["53", "76"]
    assert scope["texte"].startswith(
        "Territoire analysé : France entière, les lieux étant dans plusieurs régions ; "
        "aucun lieu de la liste dans 16 régions"
    )


def test_a_territory_is_asked_for_once_with_known_codes(real):
    with pytest.raises(territoires.InputError, match="regions et france s'excluent"):
        coverage.territory(real["places"], real["communes"], regions="76", france=True)
    with pytest.raises(territoires.UnknownNameError, match="départements : code « 3l » inconnu"):
        coverage.territory(real["places"], real["communes"], departements=["3l", "31"])
    names = {"reg": {"76": "Occitanie", "75": "Nouvelle-Aquitaine"}}
    with pytest.raises(territoires.UnknownNameError, match="75 Nouvelle-Aquitaine, 76 Occitanie"):
        coverage.territory(real["places"], real["communes"], regions="77", names=names)
