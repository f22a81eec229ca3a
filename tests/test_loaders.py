"""Tests of territoires.loaders on the real mirror and on small synthetic national files."""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import time
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely

from territoires import catalogue, crs, loaders, settings
from territoires._errors import CatalogueError, DataNotFoundError
from territoires.nomenclatures import CATEAAV2020, DENSITE7, DENSITE7_TO_4, TAAV2017, TUU2017
from territoires.rules import preset

FIXTURES = Path(__file__).resolve().parent / "fixtures"
N_COMMUNES = 34_935
DROM = {"971": 32, "972": 34, "973": 22, "974": 24, "976": 17}
OCCITANIE = ["09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"]
#: Communes of the 2024 boundaries missing from the 2023 table d'appartenance (created in 2024).
ABSENT_FROM_ZONAGES_2023 = ["60694", "85165", "85212"]
#: "Villages morts pour la France" (Meuse): legal population 0.
VILLAGES_MORTS = {"55039", "55050", "55139", "55189", "55239", "55307"}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def loaded(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """``load_communes`` on the real mirror, once per module, with its log and warnings."""
    logger = logging.getLogger("territoires.loaders")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "offline", True)
        patch.setattr(settings, "cache_dir", tmp_path_factory.mktemp("cache"))
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = loaders.load_communes(data_dir=data_dir)
        print(f"\nload_communes : {time.perf_counter() - start:.2f} s")
    logger.removeHandler(handler)
    logger.setLevel(level)
    messages = [str(warning.message) for warning in caught]
    return frame, messages + [record.getMessage() for record in records]


@pytest.fixture(scope="module")
def communes(loaded) -> gpd.GeoDataFrame:
    return loaded[0]


@pytest.fixture(scope="module")
def by_code(communes: gpd.GeoDataFrame) -> pd.DataFrame:
    return communes.set_index("code_insee")


@pytest.fixture(scope="module")
def reports(communes: gpd.GeoDataFrame) -> dict[str, dict]:
    return {report["jeu"]: report for report in communes.attrs["jointures"]}


@pytest.fixture(scope="module")
def mapping(data_dir: Path) -> pd.Series:
    """Old or current commune code → COG 2026 code, from the populations file."""
    populations, _ = loaders.read("populations_cog2026_etalab", data_dir)
    return loaders.bridge(populations)


@pytest.fixture(scope="module")
def raw_density(data_dir: Path) -> pd.Series:
    """The density grid as published: commune code → level 1..7 decoded from its label."""
    raw = pd.read_csv(
        data_dir / "communes" / "grille_densite_7_niveaux_cog2026.csv",
        dtype=str,
        encoding="utf-8-sig",
    )
    levels = {label: level for level, label in DENSITE7.items()}
    return raw.set_index("insee_com")["niveau_densite"].map(levels)


# --- load_communes on the real mirror ------------------------------------------------------


def test_communes_shape_and_crs(communes: gpd.GeoDataFrame) -> None:
    assert len(communes) == N_COMMUNES
    assert list(communes.columns) == loaders.COMMUNE_COLUMNS
    assert communes.crs.to_epsg() == 4326
    assert communes["code_insee"].is_unique
    assert communes["code_insee"].str.fullmatch(r"\d[\dAB]\d{3}").all()


def test_communes_dtypes(communes: gpd.GeoDataFrame) -> None:
    for column in ("densite7", "densite4", "cateaav2020", "taav2017", "tuu2017", "population"):
        assert communes[column].dtype == "Int64", column
    for column in ("nom", "dep", "reg", "aav2020", "uu2020"):
        assert isinstance(communes[column].dtype, pd.StringDtype), column


def test_communes_geometries(communes: gpd.GeoDataFrame) -> None:
    assert communes.attrs["geometries_reparees"] == 0
    assert shapely.is_valid(communes.geometry.values).all()
    assert communes.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    # every commune lies in the territory of its département (DROM in true position)
    points = communes.representative_point()
    located = crs.locate(points.x.to_numpy(), points.y.to_numpy())
    expected = crs.territory_names(communes["dep"].to_numpy(dtype=object))
    assert (located == expected).all()


def test_communes_drom(communes: gpd.GeoDataFrame) -> None:
    counts = communes.loc[communes["dep"].str.startswith("97"), "dep"].value_counts()
    assert counts.to_dict() == DROM
    assert communes["reg"].nunique() == 18


def test_density_levels(communes: gpd.GeoDataFrame) -> None:
    assert communes["densite7"].notna().all()
    assert set(communes["densite7"].unique()) == set(range(1, 8))
    assert communes["densite7"].between(1, 7).all()
    expected = communes["densite7"].map(DENSITE7_TO_4).astype("Int64")
    assert communes["densite4"].equals(expected)
    assert communes["densite7"].value_counts().sort_index().tolist() == [
        700,
        637,
        1997,
        952,
        5081,
        18320,
        7248,
    ]


def test_density_matches_raw_grid(
    communes: gpd.GeoDataFrame, raw_density: pd.Series, mapping: pd.Series
) -> None:
    direct = communes["code_insee"].isin(raw_density.index)
    got = communes.loc[direct].set_index("code_insee")["densite7"]
    assert (got == raw_density.reindex(got.index)).all()
    # bridged communes carry the level of their COG 2026 commune
    bridged = communes.loc[~direct].set_index("code_insee")["densite7"]
    assert len(bridged) == 68
    current = bridged.index.map(mapping)
    assert (bridged.to_numpy() == raw_density.reindex(current).to_numpy()).all()


def test_density_join_report(
    communes: gpd.GeoDataFrame, reports: dict[str, dict], raw_density: pd.Series, mapping
) -> None:
    report = reports["grille_densite_cog2026_anct"]
    assert report["directes"] + len(report["passerelles"]) + len(report["absentes"]) == N_COMMUNES
    assert report["directes"] == 34_867
    assert len(report["passerelles"]) == 68
    assert report["absentes"] == []
    grid = set(raw_density.index)
    used = (set(communes["code_insee"]) & grid) | {mapping[c] for c in report["passerelles"]}
    unused = set(report["non_utilisees"])
    assert used.isdisjoint(unused)
    assert used | unused == grid
    # communes re-created after 2024 (Cantal) have no 2024 boundary
    assert sorted(unused) == ["15031", "15035", "15047", "15171"]


def test_bridged_commune(by_code: pd.DataFrame, reports, raw_density: pd.Series, mapping) -> None:
    assert "01330" in reports["grille_densite_cog2026_anct"]["passerelles"]
    assert "01330" not in raw_density.index
    current = mapping["01330"]
    assert current != "01330"
    assert by_code.loc["01330", "densite7"] == raw_density[current]
    assert by_code.loc["01330", "nom"] == "Ruffieu"


def test_populations(communes: gpd.GeoDataFrame, reports: dict[str, dict]) -> None:
    population = communes["population"]
    assert population.notna().all()
    assert (population >= 0).all()
    assert set(communes.loc[population == 0, "code_insee"]) == VILLAGES_MORTS
    assert population.sum() == pytest.approx(68_350_000, rel=0.02)
    sources = communes["population_source"].value_counts().to_dict()
    assert sources == {"populations_cog2026_etalab": 34_825, "communes_cog2024_cartelette": 110}
    report = reports["populations_cog2026_etalab"]
    assert report["directes"] + len(report["passerelles"]) + len(report["absentes"]) == N_COMMUNES


def test_zonings(communes: gpd.GeoDataFrame, by_code: pd.DataFrame) -> None:
    known = ~communes["code_insee"].isin(ABSENT_FROM_ZONAGES_2023)
    zoned = communes[known]
    assert zoned[["aav2020", "cateaav2020", "taav2017", "uu2020", "tuu2017"]].notna().all().all()
    assert set(zoned["cateaav2020"].unique()) == set(CATEAAV2020)
    assert set(zoned["taav2017"].unique()) <= set(TAAV2017)
    assert set(zoned["tuu2017"].unique()) <= set(TUU2017)
    assert zoned["aav2020"].str.fullmatch(r"[0-9A-Z]{3}").all()
    assert zoned["uu2020"].str.fullmatch(r"[0-9A-Z]{5}").all()
    absent = by_code.loc[ABSENT_FROM_ZONAGES_2023]
    assert absent[["aav2020", "cateaav2020", "taav2017", "uu2020", "tuu2017"]].isna().all().all()


def test_zonings_absent_codes_are_reported(loaded, reports: dict[str, dict]) -> None:
    report = reports["appartenance_cog2023"]
    assert report["absentes"] == ABSENT_FROM_ZONAGES_2023
    assert report["directes"] == N_COMMUNES - 3
    assert report["passerelles"] == []
    _, messages = loaded
    [message] = [m for m in messages if m.startswith("appartenance_cog2023")]
    assert "3 commune(s)" in message
    assert all(code in message for code in ABSENT_FROM_ZONAGES_2023)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "31555",
            {"nom": "Toulouse", "dep": "31", "reg": "76", "densite7": 1, "densite4": 1,
             "cateaav2020": 11, "aav2020": "005", "taav2017": 4, "tuu2017": 7,
             "population": 514_819},
        ),
        (
            "75056",
            {"nom": "Paris", "dep": "75", "densite7": 1, "cateaav2020": 11, "aav2020": "001",
             "taav2017": 5, "uu2020": "00851", "tuu2017": 8},
        ),
        (
            "48001",
            {"nom": "Albaret-le-Comtal", "dep": "48", "densite7": 7, "densite4": 4,
             "cateaav2020": 20, "tuu2017": 0, "population": 131},
        ),
        (
            "97411",
            {"nom": "Saint-Denis", "dep": "974", "reg": "04", "densite7": 1, "densite4": 1,
             "cateaav2020": 11, "population": 155_634},
        ),
        ("2A004", {"nom": "Ajaccio", "dep": "2A", "reg": "94", "cateaav2020": 11}),
        ("97611", {"nom": "Mamoudzou", "dep": "976"}),
    ],
)  # fmt: skip
def test_known_communes(by_code: pd.DataFrame, code: str, expected: dict) -> None:
    row = by_code.loc[code]
    assert {key: row[key] for key in expected} == expected


def test_drom_commune_geometry(by_code: pd.DataFrame) -> None:
    point = by_code.loc["97411", "geometry"].representative_point()
    assert crs.locate(np.array([point.x]), np.array([point.y])).tolist() == ["reunion"]
    assert crs.metric_crs(by_code.loc["97411", "dep"]) == 2975


def test_communes_sources(communes: gpd.GeoDataFrame, data_dir: Path) -> None:
    sources = communes.attrs["sources"]
    assert [(s["jeu"], s["millesime"]) for s in sources] == [
        ("communes_cog2024_cartelette", 2024),
        ("populations_cog2026_etalab", 2026),
        ("grille_densite_cog2026_anct", 2026),
        ("appartenance_cog2023", 2023),
        ("libelles_appartenance_cog2023", 2023),
    ]
    for source in sources:
        path = Path(source["fichier"])
        assert path.is_relative_to(data_dir)
        assert source["sha256"] == _sha256(path)
        assert source["sha256"] == catalogue.get(source["jeu"]).sha256
        assert source["licence"] and source["titre"]
        assert source["colonnes_absentes"] == []
    assert sources[0]["lignes"] == N_COMMUNES


def test_communes_without_geometry(data_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = loaders.load_communes(data_dir=data_dir, geometry=False)
    assert type(frame) is pd.DataFrame
    assert list(frame.columns) == loaders.COMMUNE_COLUMNS[:-1]
    assert len(frame) == N_COMMUNES


# --- load_qpv on the real mirror -------------------------------------------------------------


@pytest.fixture(scope="module")
def qpv_occitanie(data_dir: Path) -> gpd.GeoDataFrame:
    return loaders.load_qpv(2015, dataset="qpv2015_occitanie", data_dir=data_dir)


def test_qpv_occitanie(qpv_occitanie: gpd.GeoDataFrame) -> None:
    qpv = qpv_occitanie
    assert len(qpv) == 105
    assert list(qpv.columns) == loaders.QPV_COLUMNS
    assert qpv.crs.to_epsg() == 4326
    assert qpv["code_qpv"].is_unique
    assert qpv["code_qpv"].str.fullmatch(r"QP\d{6}").all()
    assert qpv["nom_qpv"].notna().all()
    assert qpv.attrs["millesime_qpv"] == 2015


def test_qpv_occitanie_geometries(qpv_occitanie: gpd.GeoDataFrame) -> None:
    assert qpv_occitanie.attrs["geometries_reparees"] == 32
    assert shapely.is_valid(qpv_occitanie.geometry.values).all()
    assert qpv_occitanie.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert (shapely.area(qpv_occitanie.geometry.values) > 0).all()


def test_qpv_occitanie_departements(qpv_occitanie: gpd.GeoDataFrame) -> None:
    qpv = qpv_occitanie
    assert (qpv["dep"] == qpv["code_qpv"].str[3:5]).all()
    assert set(qpv["dep"]) <= set(OCCITANIE)
    assert qpv["dep"].value_counts()[["34", "31", "30"]].tolist() == [22, 19, 18]
    assert (qpv["insee_com"].str[:2] == qpv["dep"]).all()
    [source] = qpv.attrs["sources"]
    assert source["jeu"] == "qpv2015_occitanie"
    assert source["departements"] == OCCITANIE
    assert "Occitanie" in source["couverture"]
    assert source["lignes"] == 105


def test_qpv_inside_their_commune(qpv_occitanie: gpd.GeoDataFrame, by_code: pd.DataFrame) -> None:
    points = qpv_occitanie.representative_point().to_numpy()
    boundaries = by_code.loc[qpv_occitanie["insee_com"], "geometry"].to_numpy()
    assert shapely.contains(boundaries, points).all()


def test_qpv_2015_default_dataset_covers_occitanie(
    qpv_occitanie: gpd.GeoDataFrame, data_dir: Path
) -> None:
    qpv = loaders.load_qpv(2015, data_dir=data_dir)
    assert len(qpv) >= 105
    assert set(qpv_occitanie["code_qpv"]) <= set(qpv["code_qpv"])


def test_qpv_default_geography_is_the_default_rules_one(data_dir: Path) -> None:
    # the QPV drawn beside classify()'s verdicts (default rules) are those it applied
    qpv = loaders.load_qpv(data_dir=data_dir)
    assert qpv.attrs["millesime_qpv"] == preset().qpv_vintage == 2015
    assert qpv["code_qpv"].str.startswith("QP").all()


def test_qpv_2024_missing_offline(data_dir: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        loaders.load_qpv(2024, data_dir=data_dir)
    message = str(info.value)
    assert "QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson" in message
    assert settings.DATA_DIR_ENV in message
    assert str(data_dir) in message


# --- load_qpv on synthetic national files ----------------------------------------------------


def _mirror_with(tmp_path: Path, fixture: str, name: str) -> Path:
    """A mirror folder holding one fixture under the file name the catalogue expects."""
    (tmp_path / "qpv").mkdir()
    shutil.copyfile(FIXTURES / fixture, tmp_path / "qpv" / name)
    return tmp_path


def test_qpv_2024_national_schema(tmp_path: Path) -> None:
    mirror = _mirror_with(
        tmp_path,
        "qpv2024_national_extrait.geojson",
        "QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson",
    )
    qpv = loaders.load_qpv(2024, data_dir=mirror)
    assert list(qpv.columns) == loaders.QPV_COLUMNS
    assert qpv.crs.to_epsg() == 4326
    assert qpv.attrs["millesime_qpv"] == 2024
    assert qpv.attrs["sources"][0]["jeu"] == "qpv2024"
    assert qpv.attrs["sources"][0]["fichier"] == str(
        mirror / "qpv" / "QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson"
    )
    rows = qpv.set_index("code_qpv")
    assert sorted(rows.index) == ["QN02A01M", "QN03101M", "QN06902M", "QN07501M", "QN97401M"]
    # insee_dep as published, derived from the code when empty (QN02A01M)
    assert rows["dep"].to_dict() == {
        "QN02A01M": "2A",
        "QN03101M": "31",
        "QN06902M": "69",
        "QN07501M": "75",
        "QN97401M": "974",
    }
    assert rows.loc["QN03101M", "nom_qpv"] == "Grand Mirail"
    assert rows.loc["QN03101M", "communes"] == "Toulouse"
    assert rows.loc["QN03101M", "insee_com"] == "31555"


def test_qpv_2024_merge_and_repair(tmp_path: Path) -> None:
    mirror = _mirror_with(
        tmp_path,
        "qpv2024_national_extrait.geojson",
        "QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson",
    )
    qpv = loaders.load_qpv(2024, data_dir=mirror).set_index("code_qpv")
    raw = gpd.read_file(FIXTURES / "qpv2024_national_extrait.geojson")
    # two features sharing a code: one MultiPolygon row, both communes kept
    merged = qpv.loc["QN06902M"]
    assert merged["geometry"].geom_type == "MultiPolygon"
    assert len(merged["geometry"].geoms) == 2
    parts = raw.loc[raw["code_qp"] == "QN06902M", "geometry"]
    assert merged["geometry"].area == pytest.approx(shapely.area(parts.values).sum())
    assert merged["insee_com"] == "69256;69266"
    assert merged["communes"] == "Vaulx-en-Velin;Villeurbanne"
    # the bow-tie is repaired into its two triangles, not dropped
    assert qpv.attrs["geometries_reparees"] == 1
    bow_tie = qpv.loc["QN07501M", "geometry"]
    assert bow_tie.is_valid
    assert bow_tie.geom_type == "MultiPolygon"
    assert len(bow_tie.geoms) == 2
    assert bow_tie.area == pytest.approx(0.010 * 0.008 / 2)
    assert shapely.is_valid(qpv.geometry.values).all()


def test_qpv_2015_national_schema(tmp_path: Path) -> None:
    mirror = _mirror_with(
        tmp_path,
        "qpv2015_national_extrait.geojson",
        "QP_METROPOLEOUTREMER_WGS84_EPSG4326.geojson",
    )
    qpv = loaders.load_qpv(2015, data_dir=mirror)
    assert list(qpv.columns) == loaders.QPV_COLUMNS
    assert qpv.attrs["sources"][0]["jeu"] == "qpv2015"
    assert qpv.attrs["sources"][0]["departements"] is None
    rows = qpv.set_index("code_qpv")
    # no département column in this schema: derived from the codes
    assert rows["dep"].to_dict() == {
        "QP02A001": "2A",
        "QP075001": "75",
        "QP093010": "93",
        "QP971002": "971",
    }
    assert isinstance(qpv["dep"].dtype, pd.StringDtype)
    # upper-case publisher columns are normalised
    assert rows.loc["QP075001", "nom_qpv"] == "Porte Saint-Denis"
    assert rows.loc["QP971002", "communes"] == "Pointe-à-Pitre"
    # no commune code column in this schema: kept, empty
    assert qpv["insee_com"].isna().all()
    merged = rows.loc["QP093010"]
    assert merged["geometry"].geom_type == "MultiPolygon"
    assert merged["communes"] == "Bondy;Noisy-le-Sec"
    assert qpv.attrs["geometries_reparees"] == 1
    assert rows.loc["QP971002", "geometry"].is_valid
    assert rows.loc["QP971002", "geometry"].area == pytest.approx(0.010 * 0.008 / 2)


def test_qpv_national_files_in_true_position(tmp_path: Path) -> None:
    mirror = _mirror_with(
        tmp_path,
        "qpv2015_national_extrait.geojson",
        "QP_METROPOLEOUTREMER_WGS84_EPSG4326.geojson",
    )
    qpv = loaders.load_qpv(2015, data_dir=mirror)
    points = qpv.representative_point()
    located = crs.locate(points.x.to_numpy(), points.y.to_numpy())
    assert (located == crs.territory_names(qpv["dep"].to_numpy(dtype=object))).all()


# --- spreadsheets ------------------------------------------------------------------------------


def _insee_workbook(
    header: list[str], rows: list[list[object]], sheet: str, *, notes: bool = True
) -> bytes:
    """An xlsx laid out like INSEE files: title rows above the header, maybe a notes sheet."""
    book = openpyxl.Workbook()
    if notes:
        book.active.title = "Documentation"
        book.active.append(["Lisez-moi"])
        table = book.create_sheet(sheet)
    else:
        table = book.active
        table.title = sheet
    table.append(["Aires d'attraction des villes 2020 : composition communale"])
    table.append(["Découpage géographique au 1er janvier 2024"])
    table.append([])
    table.append(["Source : Insee"])
    table.append([])
    table.append(header)
    for row in rows:
        table.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_read_xlsx_in_zip_finds_header_row(tmp_path: Path) -> None:
    dataset = catalogue.get("aav2020_insee_2024")
    header = ["CODGEO", "LIBGEO", "AAV2020", "LIBAAV2020", "CATEAAV2020", "DEP", "REG"]
    content = _insee_workbook(
        header,
        [
            ["31555", "Toulouse", "005", "Toulouse", "11", "31", "76"],
            ["48001", "Albaret-le-Comtal", "393", "Saint-Chély-d'Apcher", "20", "48", "76"],
            ["2A004", "Ajaccio", "153", "Ajaccio", "11", "2A", "94"],
        ],
        dataset.sheet,
    )
    (tmp_path / "communes").mkdir()
    with zipfile.ZipFile(tmp_path / "communes" / "AAV2020_au_01-01-2024.zip", "w") as archive:
        archive.writestr("lisez-moi.txt", "notes")
        archive.writestr(dataset.member, content)
    raw = loaders.read_raw(dataset, tmp_path / "communes" / "AAV2020_au_01-01-2024.zip")
    assert list(raw.columns) == header
    assert len(raw) == 3
    frame, source = loaders.read("aav2020_insee_2024", data_dir=tmp_path)
    assert list(frame.columns) == ["code_insee", "aav2020", "cateaav2020"]
    assert frame["code_insee"].tolist() == ["31555", "48001", "2A004"]
    assert frame["aav2020"].tolist() == ["005", "393", "153"]
    assert frame["cateaav2020"].tolist() == ["11", "20", "11"]
    assert source["millesime"] == 2024 and source["lignes"] == 3


def test_read_plain_xlsx_with_numbers_and_lower_case_header(tmp_path: Path) -> None:
    dataset = catalogue.get("grille_densite_2024_insee")
    path = tmp_path / "grille.xlsx"
    path.write_bytes(
        _insee_workbook(
            ["codgeo", "libgeo", "dens"],
            [["31555", "Toulouse", 1], ["48001", "Albaret", 7]],
            "Grille",
            notes=False,
        )
    )
    raw = loaders.read_raw(dataset, path)
    assert raw.to_dict("list") == {
        "codgeo": ["31555", "48001"],
        "libgeo": ["Toulouse", "Albaret"],
        "dens": ["1", "7"],
    }
    assert loaders.normalise(raw, dataset).columns.tolist() == ["code_insee", "densite7"]


def test_read_xlsx_without_header_row(tmp_path: Path) -> None:
    dataset = catalogue.get("grille_densite_2024_insee")
    path = tmp_path / "grille.xlsx"
    path.write_bytes(_insee_workbook(["code", "niveau"], [["31555", 1]], "Grille", notes=False))
    with pytest.raises(CatalogueError, match=r"grille_densite_2024_insee.*CODGEO"):
        loaders.read_raw(dataset, path)


def test_read_zip_without_the_workbook(tmp_path: Path) -> None:
    dataset = catalogue.get("aav2020_insee_2024")
    path = tmp_path / "AAV2020_au_01-01-2024.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("AAV2020_au_01-01-2023.xlsx", b"")
    with pytest.raises(CatalogueError, match=r"AAV2020_au_01-01-2024.xlsx.*AAV2020_au_01-01-2023"):
        loaders.read_raw(dataset, path)


def test_normalise_missing_key_column() -> None:
    dataset = catalogue.get("appartenance_cog2023")
    with pytest.raises(CatalogueError, match=r"CODGEO.*LIBGEO"):
        loaders.normalise(pd.DataFrame({"LIBGEO": ["Toulouse"]}), dataset)


def test_communes_name_their_zones(data_dir) -> None:
    """The aire d'attraction and unité urbaine of a commune come with their names."""
    communes = loaders.load_communes(data_dir=data_dir, geometry=False).set_index("code_insee")
    toulouse = communes.loc["31555"]
    assert (toulouse["aav2020"], toulouse["aav2020_nom"]) == ("005", "Toulouse")
    assert (toulouse["uu2020"], toulouse["uu2020_nom"]) == ("00758", "Toulouse")
    assert toulouse["epci_nom"] == "Toulouse Métropole"
