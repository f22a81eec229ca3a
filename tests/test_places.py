"""Tests of territoires.places: reading and validating the places to classify."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import territoires
from territoires import InputError, export, places, settings
from territoires.places import read_places

PLACES = Path(__file__).resolve().parent / "fixtures" / "places"
ADDED = ["lon", "lat", "probleme", "territoire", "precision_m", "commune_donnee", "geometry"]
#: Toulouse (lon 1.4442, lat 43.6047) in Lambert-93.
TOULOUSE_L93 = (574357.82, 6279642.97)


def _problems(frame: gpd.GeoDataFrame) -> list[str | None]:
    """``probleme`` as a list, None for usable rows."""
    return [None if pd.isna(text) else text for text in frame["probleme"]]


@pytest.fixture
def bad_table() -> pd.DataFrame:
    """One row per case, with a non-default index and mixed-type coordinate columns."""
    rows = [
        ("Paris", 2.3522, 48.8566),
        ("manquante", np.nan, 48.0),
        ("texte", 2.0, "abc"),
        ("inversée", 48.8566, 2.3522),
        ("New York", -74.006, 40.7128),
        ("Lambert", 652000.0, 48.85),
        ("Paris", 2.3522, 48.8566),
        ("Saint-Denis", 55.4504, -20.8823),
        ("Cayenne", -52.326, 4.9224),
        ("Mamoudzou", 45.2279, -12.7806),
        ("Pointe-à-Pitre", -61.5331, 16.2411),
        ("Fort-de-France", -61.0588, 14.6161),
        ("Ajaccio", 8.7369, 41.9192),
        ("virgule", "1,4442", "43,6047"),
    ]
    return pd.DataFrame(
        {
            "nom": [row[0] for row in rows],
            "Longitude": np.array([row[1] for row in rows], dtype=object),
            "LAT": np.array([row[2] for row in rows], dtype=object),
        },
        index=[100 - 3 * position for position in range(len(rows))],
    )


def test_each_bad_row_is_reported_and_rows_are_kept(bad_table: pd.DataFrame) -> None:
    before = bad_table.copy(deep=True)
    out = read_places(bad_table)

    pd.testing.assert_frame_equal(bad_table, before)
    assert out.index.equals(bad_table.index)
    # « LAT » clashes with the added « lat » whatever the case: it keeps its cells, renamed
    assert list(out.columns) == ["nom", "Longitude", "LAT_entree", *ADDED]
    kept = pd.DataFrame(out[["nom", "Longitude", "LAT_entree"]]).rename(
        columns={"LAT_entree": "LAT"}
    )
    pd.testing.assert_frame_equal(kept, before)
    assert _problems(out) == [
        None,
        "ligne 2 : longitude manquante",
        "ligne 3 : latitude non numérique ('abc')",
        "ligne 4 : latitude et longitude semblent inversées (lon=48.8566, lat=2.3522) : "
        "corrigez le fichier",
        "ligne 5 : point hors de France (lon=-74.006, lat=40.7128)",
        "ligne 6 : coordonnées hors des bornes WGS84 (lon=652000.0) : CRS erroné ? "
        "attendu : degrés décimaux, ou précisez --crs",
        "ligne 7 : doublon de la ligne 1",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    ]
    assert list(out["territoire"]) == [
        "metropole",
        *[""] * 6,
        "reunion",
        "guyane",
        "mayotte",
        "antilles",
        "antilles",
        "metropole",
        "metropole",
    ]


def test_output_types_and_geometry(bad_table: pd.DataFrame) -> None:
    out = read_places(bad_table)

    assert isinstance(out, gpd.GeoDataFrame)
    assert out.crs == "EPSG:4326"
    assert out["lon"].dtype == np.float64 and out["lat"].dtype == np.float64
    assert isinstance(out["probleme"].dtype, pd.StringDtype)
    usable = out["probleme"].isna().to_numpy()
    assert out["lon"].notna().to_numpy().tolist() == usable.tolist()
    assert out.geometry.notna().to_numpy().tolist() == usable.tolist()
    assert out.geometry.iloc[-1].equals(shapely.Point(1.4442, 43.6047))
    assert out["lon"].iloc[-1] == pytest.approx(1.4442)
    assert out["lat"].iloc[-1] == pytest.approx(43.6047)


def test_both_coordinates_wrong_are_reported_together() -> None:
    table = pd.DataFrame({"lon": ["", "x"], "lat": [None, "48,1,2"]})

    out = read_places(table)

    assert _problems(out) == [
        "ligne 1 : ligne vide (aucune cellule remplie)",
        "ligne 2 : longitude non numérique ('x') ; latitude non numérique ('48,1,2')",
    ]
    assert _problems(read_places(table.assign(nom=["a", "b"])))[0] == (
        "ligne 1 : longitude manquante ; latitude manquante"
    )


def test_lon_lat_coordinate_columns_keep_the_users_cells() -> None:
    table = pd.DataFrame({"lat": ["48,8566", "1e400"], "id": [7, 8], "lon": ["2,3522", "abc"]})
    before = table.copy(deep=True)

    out = read_places(table)

    pd.testing.assert_frame_equal(table, before)
    assert list(out.columns) == [
        "lat_entree",
        "id",
        "lon_entree",
        "lon",
        "lat",
        "probleme",
        "territoire",
        "precision_m",
        "commune_donnee",
        "geometry",
    ]
    assert out["lon_entree"].tolist() == ["2,3522", "abc"]
    assert out["lat_entree"].tolist() == ["48,8566", "1e400"]
    assert out["lon"].tolist()[0] == 2.3522 and out["lat"].tolist()[0] == 48.8566
    assert out.attrs["colonnes_entree"] == {"lat": "lat_entree", "lon": "lon_entree"}


@pytest.mark.parametrize("clash", ["lon", "territoire", "probleme", "geometry"])
def test_unrelated_column_with_an_output_name_is_kept_renamed(clash: str) -> None:
    table = pd.DataFrame({"Longitude": [2.35], "Latitude": [48.85], clash: ["autre"]})

    out = read_places(table, lon="Longitude", lat="Latitude")

    assert out[f"{clash}_entree"].tolist() == ["autre"]
    assert out["probleme"].isna().all()


def test_semicolon_csv_with_decimal_commas() -> None:
    out = read_places(PLACES / "lieux_point_virgule.csv")

    assert isinstance(out.index, pd.RangeIndex) and len(out) == 5
    assert out["longitude"].tolist()[:2] == ["2,3522", "1,4442"]
    assert out["lon"].tolist()[:2] == [2.3522, 1.4442]
    assert out["lat"].tolist()[:2] == [48.8566, 43.6047]
    assert _problems(out) == [
        None,
        None,
        "ligne 4 : longitude manquante",
        "ligne 5 : latitude et longitude semblent inversées (lon=48.8566, lat=2.3522) : "
        "corrigez le fichier",
        "ligne 6 : doublon de la ligne 2",
    ]


def test_cp1252_csv_with_accents() -> None:
    out = read_places(PLACES / "lieux_cp1252.csv")

    assert list(out.columns[:4]) == ["Dénomination", "Lon_entree", "Lat_entree", "Département"]
    assert out["Dénomination"].tolist()[:2] == ["Tiers-lieu d'Évry", "Fabrique à Saint-Étienne"]
    assert out["territoire"].tolist() == ["metropole", "metropole", "guyane"]
    assert out["probleme"].isna().all()


@pytest.mark.parametrize(
    ("separator", "encoding"), [(",", "utf-8"), ("\t", "utf-8-sig"), (";", "cp1252")]
)
def test_csv_separators_and_encodings(tmp_path, separator: str, encoding: str) -> None:
    lines = [["Nom", "Y_WGS84", "X_WGS84"], ["Été", "48.8566", "2.3522"], ["Hiver", "", "1"]]
    path = tmp_path / "lieux.csv"
    path.write_bytes("\n".join(separator.join(line) for line in lines).encode(encoding))

    out = read_places(path)

    assert list(out.columns[:3]) == ["Nom", "Y_WGS84", "X_WGS84"]
    assert out["Nom"].tolist() == ["Été", "Hiver"]
    assert out["lon"].iloc[0] == 2.3522
    assert _problems(out) == [None, "ligne 3 : latitude manquante"]


def test_csv_keeps_codes_as_text_and_interior_blank_lines(tmp_path) -> None:
    path = tmp_path / "lieux.csv"
    path.write_text("code;lon;lat\n01;2.35;48.85\n\nNA;2.36;48.86\n\n\n", encoding="utf-8")

    out = read_places(path)

    assert out["code"].tolist()[::2] == ["01", "NA"]
    assert _problems(out) == [None, "ligne 3 : ligne vide (aucune cellule remplie)", None]


def test_xlsx_first_sheet_or_named_sheet(tmp_path) -> None:
    path = tmp_path / "lieux.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        pd.DataFrame({"nom": ["vide"], "autre": [1]}).to_excel(
            writer, sheet_name="Notes", index=False
        )
        pd.DataFrame({"nom": ["a", "b"], "lng": [2.35, None], "lat": [48.85, 48.0]}).to_excel(
            writer, sheet_name="Lieux", index=False
        )

    with pytest.raises(InputError, match="aucune paire de colonnes"):
        read_places(path)
    out = read_places(path, sheet="Lieux")
    assert out["nom"].tolist() == ["a", "b"]
    assert _problems(out) == [None, "ligne 3 : longitude manquante"]
    assert read_places(path, sheet=1)["lon"].iloc[0] == 2.35
    with pytest.raises(InputError, match=r"feuille 'Absente' absente .* Notes, Lieux"):
        read_places(path, sheet="Absente")


def test_xlsx_cells_are_read_as_written(tmp_path) -> None:
    """Text that pandas takes for missing stays text; whole numbers beside an empty
    cell stay whole (a SIRET is not a decimal). (« #N/A » typed in Excel is an error
    value, not text: see :func:`test_xlsx_error_values_are_kept`.)"""
    path = tmp_path / "lieux.xlsx"
    words = ["n/a", "NA", "null", "None", "nan", "N/A", "NULL", "-", None]
    pd.DataFrame(
        {
            "nom": [f"lieu {i}" for i in range(len(words))],
            "note": words,
            "siret": [12345678901234, None, *range(len(words) - 2)],
            "lon": [1.4020 + i / 1000 for i in range(len(words))],
            "lat": [43.5750] * len(words),
        }
    ).to_excel(path, index=False)

    out = read_places(path)

    assert out["note"].tolist()[:-1] == words[:-1]
    assert pd.isna(out["note"].iloc[-1])
    assert out["siret"].dtype == "Int64"
    assert out["siret"].iloc[0] == 12345678901234 and pd.isna(out["siret"].iloc[1])
    assert "12345678901234;" in export.csv_text(out.drop(columns="geometry")).decode("utf-8-sig")


def test_xlsx_error_values_are_kept(tmp_path) -> None:
    """An Excel error value (#N/A, #DIV/0!, typed or left by a formula) is read as the text
    the sheet shows, not as an empty cell that would vanish from the output; in a
    coordinate it makes the row invalid, naming the value."""
    import openpyxl

    path = tmp_path / "lieux.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["nom", "note", "lon", "lat"])
    sheet.append(["a", 1, 1.4020, 43.5750])
    sheet.append(["b", 2, 1.4030, 43.5750])
    sheet.append(["c", "ok", 1.4040, 43.5750])
    for cell, error in (("B2", "#N/A"), ("B3", "#DIV/0!"), ("C4", "#N/A")):
        sheet[cell].value, sheet[cell].data_type = error, "e"
    workbook.save(path)

    out = read_places(path)

    assert out["note"].tolist() == ["#N/A", "#DIV/0!", "ok"]
    assert _problems(out)[:2] == [None, None]
    assert "#N/A" in _problems(out)[2]


def test_geojson_points_and_other_geometries() -> None:
    out = read_places(PLACES / "points.geojson")

    assert out["nom"].tolist()[0] == "Paris"
    assert out["territoire"].tolist() == ["metropole", "reunion", "", ""]
    assert out["lon"].iloc[1] == pytest.approx(55.4504)
    assert _problems(out) == [
        None,
        None,
        "ligne 3 : géométrie non ponctuelle (Polygon)",
        "ligne 4 : géométrie manquante",
    ]


def test_empty_and_multi_geometries_are_reported() -> None:
    geometries = [shapely.Point(), shapely.MultiPoint([(2.35, 48.85)]), shapely.Point(2.35, 48.85)]
    layer = gpd.GeoDataFrame({"nom": ["a", "b", "c"]}, geometry=geometries, crs=4326)

    assert _problems(read_places(layer)) == [
        "ligne 1 : géométrie manquante",
        "ligne 2 : géométrie non ponctuelle (MultiPoint)",
        None,
    ]


def test_gpkg_in_lambert93_is_reprojected(tmp_path) -> None:
    path = tmp_path / "lieux.gpkg"
    layer = gpd.GeoDataFrame(
        {"nom": ["Toulouse"]}, geometry=[shapely.Point(*TOULOUSE_L93)], crs="EPSG:2154"
    )
    layer.to_file(path, layer="lieux")

    out = read_places(path)

    assert out.crs == "EPSG:4326"
    assert out["lon"].iloc[0] == pytest.approx(1.4442, abs=1e-4)
    assert out["lat"].iloc[0] == pytest.approx(43.6047, abs=1e-4)
    assert out.geometry.iloc[0].x == pytest.approx(1.4442, abs=1e-4)
    assert out["territoire"].tolist() == ["metropole"]


def test_geodataframe_is_not_mutated_and_its_geometry_is_renamed() -> None:
    layer = gpd.GeoDataFrame(
        {"nom": ["Toulouse", "Toulouse"]},
        geometry=[shapely.Point(*TOULOUSE_L93)] * 2,
        crs="EPSG:2154",
        index=["t1", "t2"],
    ).rename_geometry("geom")
    before = layer.copy(deep=True)

    out = read_places(layer)

    pd.testing.assert_frame_equal(layer, before)
    assert layer.crs == "EPSG:2154"
    assert list(out.columns) == ["nom", "geometry", *ADDED[:-1]]
    assert out.geometry.name == "geometry" and out.crs == "EPSG:4326"
    assert list(out.index) == ["t1", "t2"]
    assert _problems(out) == [None, "ligne 2 : doublon de la ligne 1"]


def test_geodataframe_with_another_geometry_column_keeps_it() -> None:
    layer = gpd.GeoDataFrame(
        {"nom": ["a"]}, geometry=[shapely.Point(2.35, 48.85)], crs=4326
    ).rename_geometry("geom")
    layer["geometry"] = "texte"
    assert layer.active_geometry_name == "geom"

    out = read_places(layer)
    assert out["geometry_entree"].tolist() == ["texte"]
    assert out.geometry.name == "geometry" and out.geometry.iloc[0].x == 2.35


def test_geodataframe_without_crs_is_refused_naming_the_option() -> None:
    layer = gpd.GeoDataFrame({"nom": ["a", "b"]}, geometry=[shapely.Point(2.35, 48.85)] * 2)

    # the CRS is the layer's: no row could be placed, the layer is refused as a whole
    with pytest.raises(InputError, match=r"CRS absent : la couche n'a pas de système") as error:
        read_places(layer)
    assert "--crs 2154" in str(error.value) and "input_crs=2154" in str(error.value)
    assert read_places(layer, crs=4326)["probleme"].isna().all()
    # a layer without any geometry has nothing to place: its rows say so, no CRS needed
    empty = gpd.GeoDataFrame({"nom": ["a"]}, geometry=[None])
    assert _problems(read_places(empty)) == ["ligne 1 : géométrie manquante"]


def test_geodataframe_refuses_lon_lat_and_conflicting_crs() -> None:
    layer = gpd.GeoDataFrame({"nom": ["a"]}, geometry=[shapely.Point(2.35, 48.85)], crs=4326)

    with pytest.raises(InputError, match="lon= et lat="):
        read_places(layer, lon="x", lat="y")
    with pytest.raises(InputError, match="déclare le CRS EPSG:4326 mais crs=2154"):
        read_places(layer, crs=2154)


def test_projected_x_y_columns_need_a_crs() -> None:
    table = pd.DataFrame({"X": [TOULOUSE_L93[0]], "Y": [TOULOUSE_L93[1]]})

    out = read_places(table, crs=2154)
    assert out["lon"].iloc[0] == pytest.approx(1.4442, abs=1e-4)
    assert out["lat"].iloc[0] == pytest.approx(43.6047, abs=1e-4)
    assert read_places(table, crs="EPSG:2154")["territoire"].tolist() == ["metropole"]

    with pytest.raises(InputError) as error:
        read_places(table)
    assert str(error.value) == (
        "CRS non précisé pour les colonnes x/y « X » et « Y » : donnez leur système de "
        "coordonnées (--crs 2154 pour du Lambert-93, --crs 4326 pour des degrés, en ligne de "
        "commande ; input_crs=2154 en Python)"
    )


def test_empty_x_y_columns_need_no_crs_when_rows_are_located_by_commune(data_dir) -> None:
    table = pd.DataFrame({"nom": ["Mairie", "Rien"], "x": [None, None], "y": [None, None]})
    table["code_insee"] = ["31555", None]

    out = read_places(table, data_dir=data_dir)

    assert out["commune_donnee"].tolist()[0] == "31555" and out["territoire"][0] == "metropole"
    assert _problems(out)[0] is None
    assert _problems(out)[1].startswith("ligne 2 : coordonnée x manquante")
    # one x/y cell filled: its CRS is needed, the file is refused
    table.loc[1, ["x", "y"]] = TOULOUSE_L93
    with pytest.raises(InputError, match="CRS non précisé pour les colonnes x/y"):
        read_places(table, data_dir=data_dir)


def test_explicit_columns_and_crs() -> None:
    table = pd.DataFrame({"est": [TOULOUSE_L93[0]], "nord": [TOULOUSE_L93[1]], "lat": [0]})

    assert read_places(table, lon="est", lat="nord", crs=2154)["lat_entree"].tolist() == [0]
    out = read_places(table.drop(columns="lat"), lon="EST", lat="Nord", crs=2154)
    assert out["territoire"].tolist() == ["metropole"]
    with pytest.raises(InputError, match="CRS non reconnu"):
        read_places(table.drop(columns="lat"), lon="est", lat="nord", crs="EPSG:99999999")


def test_duplicates_ignore_float_formatting_but_not_other_columns() -> None:
    table = pd.DataFrame(
        {
            "nom": ["a", "a", "b", "a", "a", "c", "c"],
            "lon": ["2,35", "2.350", "2.35", "2.35", "-0.5", "0", "-0,0"],
            "lat": [48.85, 48.85, 48.85, 48.85, 45.0, 45.0, 45.0],
        }
    )

    out = read_places(table)

    assert _problems(out) == [
        None,
        "ligne 2 : doublon de la ligne 1",
        None,
        "ligne 4 : doublon de la ligne 1",
        None,
        None,
        "ligne 7 : doublon de la ligne 6",
    ]


def test_duplicates_compare_list_and_dict_cells_by_their_content(tmp_path) -> None:
    """A GeoJSON property holding a list or an object (or a Parquet array) cannot be
    hashed: equal ones make a doublon, different ones do not, and the cells come out as
    they were read."""
    point = {"type": "Point", "coordinates": [1.402, 43.575]}
    tags = [["a", "b"], ["a", "b"], ["a", "c"], {"k": 1, "j": [2]}, {"j": [2], "k": 1}]
    layer = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"nom": "A", "tags": value}, "geometry": point}
            for value in tags
        ],
    }
    source = tmp_path / "lieux.geojson"
    source.write_text(json.dumps(layer), encoding="utf-8")

    out = read_places(source)

    assert _problems(out) == [
        None,
        "ligne 2 : doublon de la ligne 1",
        None,
        None,
        "ligne 5 : doublon de la ligne 4",
    ]
    assert out["tags"].tolist() == tags
    arrays = pd.DataFrame(
        {
            "tags": pd.Series([np.array(["a", "b"]), np.array(["a", "b"]), np.array(["b"])]),
            "lon": [1.402] * 3,
            "lat": [43.575] * 3,
        }
    )
    out = read_places(arrays)
    assert _problems(out) == [None, "ligne 2 : doublon de la ligne 1", None]
    assert out["tags"].iloc[2] is arrays["tags"].iloc[2]


def test_empty_dataframe_gives_an_empty_result() -> None:
    table = pd.DataFrame({"nom": pd.Series(dtype=str), "lon": [], "lat": []})

    out = read_places(table)

    assert len(out) == 0
    assert list(out.columns) == ["nom", "lon_entree", "lat_entree", *ADDED]
    assert out.crs == "EPSG:4326"


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "absent.csv", "fichier introuvable"),
        (b"", "vide.csv", "fichier vide"),
        (b"nom;lon;lat\n\n", "entete.csv", "fichier vide"),
        (b"a,b\n1,2\n", "lieux.docx", r"format non reconnu.*\.csv.*\.xlsx.*\.geojson.*\.gpkg"),
        (b"pas du json", "lieux.geojson", "couche géographique illisible"),
        (b'{"type": "FeatureCollection", "features": []}', "vide.geojson", "fichier vide"),
        (b"pas un classeur", "lieux.xlsx", "classeur XLSX illisible"),
    ],
)
def test_unusable_files_raise(tmp_path, content: bytes | None, name: str, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(InputError, match=message):
        read_places(path)


def test_no_coordinate_columns_lists_columns_and_accepted_names() -> None:
    table = pd.DataFrame({"nom": ["a"], "adresse": ["1 rue"], "latitude": [48.8]})

    with pytest.raises(InputError) as error:
        read_places(table)

    message = str(error.value)
    assert "'nom', 'adresse', 'latitude'" in message
    assert "longitude = lon, lng, long, longitude" in message
    assert "lon= et lat=" in message


def test_given_column_absent_or_ambiguous_detection() -> None:
    table = pd.DataFrame({"lng": [2.35], "Longitude": [2.35], "lat": [48.85]})

    with pytest.raises(InputError, match=r"colonne lat='latitude_x' absente .* 'Longitude'"):
        read_places(table, lon="lng", lat="latitude_x")
    with pytest.raises(InputError, match=r"plusieurs colonnes possibles pour lon \('lng', 'Lon"):
        read_places(table)
    assert read_places(table, lon="Longitude")["probleme"].isna().all()
    with pytest.raises(InputError, match=r"colonne lon='LONGITUDE' ambiguë : 'Longitude', 'lo"):
        read_places(table.assign(longitude=1.0), lon="LONGITUDE")


def test_quote_free_fast_path_reads_like_the_general_path(tmp_path) -> None:
    """A file without quotes goes through pandas' C parser: same cells, same lines."""
    rows = "id;nom;;lon;lat\n01;A;x;1.40;43.57\n\n02;;;abc;43,6\nNA;B;y;1.42;\n"
    fast, general = tmp_path / "rapide.csv", tmp_path / "general.csv"
    fast.write_text("sep=;\n" + rows, encoding="utf-8")
    general.write_text('sep=;\n"id"' + rows[2:], encoding="utf-8")  # a quote: general path

    one, other = read_places(fast), read_places(general)

    pd.testing.assert_frame_equal(pd.DataFrame(one), pd.DataFrame(other))
    assert one["id"].tolist()[::2] == ["01", "02"] and one["id"].isna().tolist()[1]
    assert one.columns[2] == "colonne_3"
    assert _problems(one)[1:3] == [
        "ligne 4 : ligne vide (aucune cellule remplie)",
        "ligne 5 : longitude non numérique ('abc')",
    ]


@pytest.mark.parametrize(
    ("title", "ignored"),
    [
        ("Inventaire des tiers-lieux 2024\n", "ligne 1 ignorée"),
        ("Inventaire des tiers-lieux 2024;;\n;;\n", "lignes 1 à 2 ignorées"),
        ('"Inventaire, export du 12/03"\n\n', "lignes 1 à 2 ignorées"),
        ("sep=;\nInventaire 2024\n", "ligne 2 ignorée"),
    ],
)
@pytest.mark.parametrize("quoted", [False, True])
def test_csv_title_above_the_header_is_skipped_as_in_a_workbook(
    tmp_path, title: str, ignored: str, quoted: bool
) -> None:
    header = '"nom";lon;lat\n' if quoted else "nom;lon;lat\n"  # a quote: general path
    path = tmp_path / "lieux.csv"
    path.write_text(title + header + "a;1,40;43,57\nb;abc;43,6\n", encoding="utf-8")
    first = len(title.splitlines()) + 2  # the line of the first place

    with pytest.warns(UserWarning, match=rf"en-tête lu ligne {first - 1} ; {ignored} \(titre"):
        out = read_places(path)

    assert out["nom"].tolist() == ["a", "b"] and out["lon"].iloc[0] == 1.40
    assert _problems(out) == [None, f"ligne {first + 1} : longitude non numérique ('abc')"]


def test_blank_line_says_so_not_commune_absente(tmp_path, data_dir) -> None:
    path = tmp_path / "lieux.csv"
    path.write_text("nom;lon;lat;code_insee\nA;;;31001\n;;;\n\nC;;;\n", encoding="utf-8")

    out = read_places(path, data_dir=data_dir)

    assert _problems(out) == [
        None,
        "ligne 3 : ligne vide (aucune cellule remplie)",
        "ligne 4 : ligne vide (aucune cellule remplie)",
        "ligne 5 : longitude manquante ; latitude manquante ; commune absente aussi "
        "(colonnes 'code_insee' vides)",
    ]


def test_xlsx_title_and_commune_flag_cells(tmp_path) -> None:
    path = tmp_path / "lieux.xlsx"
    rows = [
        ["Inventaire 2024", None, None],
        ["nom", "code_insee", "numerique"],
        ["a", "31555", "x"],
    ]
    pd.DataFrame(rows).to_excel(path, header=False, index=False)

    with pytest.warns(UserWarning, match=r"en-tête lu ligne 2 ; ligne 1 ignorée"):
        out = read_places(path)
    assert out["nom"].tolist() == ["a"] and out["commune_donnee"].tolist() == ["31555"]
    # a cell « x » (a yes flag) is no header: the commune code column names the header
    pd.DataFrame(rows[1:]).to_excel(path, header=False, index=False)
    assert read_places(path)["numerique"].tolist() == ["x"]


def test_decimals_read_exactly_as_pandas_reads_them():
    """Plain decimals (read by arrow) give pandas' floats, bit for bit, commas or points."""
    rng = np.random.default_rng(7)
    n = 50_000
    lon, lat = rng.uniform(-4.5, 7.5, n), rng.uniform(43.5, 49.5, n)
    decimals = rng.integers(0, 13, size=(2, n))
    text = [
        [f"{value:.{digits}f}" for value, digits in zip(values, places, strict=True)]
        for values, places in zip((lon, lat), decimals, strict=True)
    ]
    text[0][::3] = [value.replace(".", ",") for value in text[0][::3]]
    frame = read_places(pd.DataFrame({"lon": text[0], "lat": text[1]}), geometry=False)
    usable = frame["probleme"].isna().to_numpy()
    assert usable.sum() > n // 2
    for column, values in zip(("lon", "lat"), text, strict=True):
        expected = pd.to_numeric(pd.Series(values).str.replace(",", "."), errors="coerce")
        read = frame[column].to_numpy()[usable]
        assert read.tobytes() == expected.to_numpy(dtype=float)[usable].tobytes(), column


@pytest.mark.parametrize(
    ("numbers", "text"),
    [([2, 3, 4, 5], "2-5"), ([1], "1"), ([2, 3, 5, 7, 8, 9], "2-3,5,7-9"), ([], "")],
)
def test_line_ranges_round_trip(numbers, text):
    """Lines kept as readable ranges, read back exactly; a filtered frame has none."""
    assert places.line_ranges(numbers) == text
    frame = pd.DataFrame({"x": range(len(numbers))})
    frame.attrs["lignes"] = text
    assert places.lines(frame).tolist() == numbers
    assert places.lines(frame.iloc[1:]) is None or not numbers


@pytest.mark.parametrize("header", ["coordonnées GPS", "Coordonnées", "gps", "latlon", "Lat/Lon"])
def test_one_column_of_latitude_then_longitude(tmp_path, header: str) -> None:
    """« coordonnées GPS » as a web map copies them: latitude first, a comma (decimal
    points) or a semicolon (decimal points or commas); anything else is refused row by
    row, naming the column and the form expected, never guessed."""
    path = tmp_path / "gps.csv"
    path.write_text(
        f"nom;{header}\n"
        'a;"43.5750, 1.4020"\n'
        'b;"43,5750 ; 1,4020"\n'
        'c;"-21.1151;55.5364"\n'  # no space, dot decimals, negative latitude (La Réunion)
        'd;"43,5750, 1,4020"\n'  # which comma separates? not guessed
        "e;1.4020 43.5750\n"  # no separator: the order is not guessed either
        "f;\n"
        "g;abc\n"
        'h;"1.4020, 43.5750"\n',  # longitude first: read as written, then reported swapped
        encoding="utf-8",
    )
    frame = read_places(path)
    assert frame["lon"].tolist()[:3] == [1.402, 1.402, 55.5364]
    assert frame["lat"].tolist()[:3] == [43.575, 43.575, -21.1151]
    assert frame["probleme"].isna().tolist() == [True] * 3 + [False] * 5
    assert frame[header].tolist()[:2] == ["43.5750, 1.4020", "43,5750 ; 1,4020"]  # as written
    expected = f"coordonnées illisibles dans la colonne « {header} »"
    for line, cell in ((5, "43,5750, 1,4020"), (6, "1.4020 43.5750"), (8, "abc")):
        problem = frame["probleme"].iloc[line - 2]
        assert problem.startswith(f"ligne {line} : {expected} ({cell!r}) : attendu la latitude")
    assert frame["probleme"].iloc[5] == f"ligne 7 : coordonnées manquantes (colonne « {header} »)"
    assert (
        frame["probleme"].iloc[7].startswith("ligne 9 : latitude et longitude semblent inversées")
    )


def test_lat_lon_column_named_by_the_user_or_beside_two_columns() -> None:
    """``lon=`` and ``lat=`` naming the same column read it as « latitude, longitude »;
    two coordinate columns win over a « gps » column (kept as written); a projected CRS
    is refused for such a column."""
    table = pd.DataFrame({"Position": ["43.5750, 1.4020"], "gps": ["0, 0"]})
    frame = read_places(table, lon="Position", lat="Position")
    assert (frame["lon"].iloc[0], frame["lat"].iloc[0]) == (1.402, 43.575)
    both = pd.DataFrame({"lon": ["1,4020"], "lat": ["43,5750"], "gps": ["0, 0"]})
    assert read_places(both)["lat"].iloc[0] == 43.575
    with pytest.raises(
        InputError, match="plusieurs colonnes possibles pour « latitude, longitude »"
    ):
        read_places(pd.DataFrame({"gps": ["43.5, 1.4"], "latlon": ["43.5, 1.4"]}))
    with pytest.raises(InputError, match="degrés WGS84 : crs= 2154 ne s'y applique pas"):
        read_places(pd.DataFrame({"gps": ["43.5, 1.4"]}), crs=2154)


def test_contact_details_named_coordonnees_beside_an_address(tmp_path, monkeypatch) -> None:
    """« Coordonnées » holding contact details beside an address is no coordinate column:
    with a warning, the places go to the geocoder (here offline, with an empty cache)."""
    monkeypatch.setattr(settings, "cache_dir", tmp_path)
    table = pd.DataFrame(
        {"adresse": ["1 rue A 31000 Toulouse"], "Coordonnées": ["contact@tiers-lieu.fr"]}
    )
    with pytest.warns(UserWarning, match="colonne « Coordonnées » ignorée"):
        frame = read_places(table, offline=True)
    assert "absente du cache de géocodage" in frame["probleme"].iloc[0]
    # without an address, the column is read, and its cell refused in French
    alone = read_places(table.drop(columns="adresse"))
    assert "coordonnées illisibles dans la colonne « Coordonnées »" in alone["probleme"].iloc[0]


def test_line_ranges_of_a_range_are_not_expanded():
    """The lines of a file read in blocks: a range, written without building an array."""
    assert places.line_ranges(range(3, 10**12)) == f"3-{10**12 - 1}"
    assert places.line_ranges(range(3, 4)) == "3"
    assert places.line_ranges(range(3, 3)) == ""


def test_problem_tally_counts_invalid_rows_by_kind():
    """Invalid rows grouped by what is wrong, values and line numbers aside, most
    frequent first, each with its first example from its line number on."""
    classified = pd.DataFrame(
        {
            "verdict": ["invalide", "qpv", "invalide", "invalide", "invalide"],
            "motif": [
                "Entrée invalide : ligne 2 : longitude non numérique ('abc')",
                "Dans un quartier prioritaire (QPV) : ligne 3 : …",
                "Entrée invalide : ligne 4 : coordonnées hors des bornes WGS84 (lon=200.0) : CRS",
                "Entrée invalide : ligne 5 : coordonnées hors des bornes WGS84 (lat=95.0) : CRS",
                "Entrée invalide : ligne 6 : 4 champs au lieu de 3 (séparateur virgule) : …",
            ],
        }
    )
    tally = places.problem_tally(classified)
    assert tally.index.tolist() == [
        "coordonnées hors des bornes WGS84",
        "longitude non numérique",
        "… champs au lieu de …",
    ]
    assert tally["lignes"].tolist() == [2, 1, 1]
    assert tally.loc["coordonnées hors des bornes WGS84", "exemple"] == (
        "ligne 4 : coordonnées hors des bornes WGS84 (lon=200.0) : CRS"
    )
    assert places.problem_tally(classified.iloc[[1]]).empty


def test_classified_attrs_serialise(data_dir, tmp_path):
    """A result goes to Parquet (pandas stores attrs as JSON) and its provenance is text."""
    table = pd.DataFrame({"lon": [1.44, None, 1.45], "lat": [43.6, None, 43.61]})
    result = territoires.classify(table)
    assert result.attrs["lignes"] == "1-3"
    result.to_parquet(tmp_path / "r.parquet")
    assert (
        gpd.read_parquet(tmp_path / "r.parquet")["verdict"].tolist() == result["verdict"].tolist()
    )
    written = export.write_results(result, tmp_path / "r.csv")
    assert (
        json.loads(export.provenance_path(written).read_text(encoding="utf-8"))["lignes"] == "1-3"
    )


@pytest.mark.parametrize("source", [[(1.402, 43.575)], {"lon": [1.402], "lat": [43.575]}, 3])
def test_a_source_neither_path_nor_table_is_refused_in_french(source) -> None:
    """A list or a dict raised ``TypeError: expected str, bytes or os.PathLike``."""
    expected = r"non pris en charge : attendu le chemin d'un fichier .* un DataFrame pandas"
    with pytest.raises(InputError, match=rf"lieux de type {type(source).__name__} {expected}"):
        read_places(source)
    with pytest.raises(InputError, match="DataFrame dask"):
        territoires.classify(source)


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("1,4020 43,5750", (1.402, 43.575)),
        ("43.5750, 1.4020", (1.402, 43.575)),
        ("31000 Toulouse", "31000 Toulouse"),
        ("31000", "31000"),
        ("12 Toulouse", "12 Toulouse"),
        ("n° 12 rue de Metz, Toulouse", "n° 12 rue de Metz, Toulouse"),
        ("1.4020 43.5750 Toulouse", "1.4020 43.5750 Toulouse"),
    ],
)
def test_read_place_points_and_addresses(text, read) -> None:
    assert places.read_place(text) == read


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-52.33", r"latitude manquante après '-52.33'"),
        ("nan", r"latitude manquante après 'nan'"),
        ("1.4020 abc", r"latitude 'abc' illisible"),
        ("nan 43", r"longitude 'nan' illisible"),
        ("43.5750; abc", r"longitude 'abc' illisible"),
        ("43°34'30\"N 1°24'07\"E", r"\(ex\. 1\.401944 43\.575\)"),
        ("1° 24′ 7″ O 43° 34′ 30″ S", r"\(ex\. -1\.401944 -43\.575\)"),
        ("43°34'N", r"ne sont pas lus : donnez des degrés décimaux.*\(ex\. 1\.4020 43\.5750\)"),
    ],
)
def test_read_place_refuses_text_meant_as_coordinates(text, message) -> None:
    with pytest.raises(ValueError, match=message):
        places.read_place(text)


@pytest.mark.parametrize(
    "values",
    [
        [],
        [7],
        [3, 1, 2],
        [5, 5, 5, 5],
        [2**64 - 1, 0, 2**64 - 1, 9, 0, 4],
        list(np.random.default_rng(2).integers(0, 50, 2_000)),
    ],
)
def test_repeated_is_duplicated_keep_false(values: list[int]) -> None:
    array = np.array(values, dtype=np.uint64)
    expected = pd.Series(array).duplicated(keep=False).to_numpy()
    np.testing.assert_array_equal(places.repeated(array), expected)
