"""Tests of territoires.export.write_results on a small synthetic classified frame."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point

from territoires import OutputError, export

ATTRS = {
    "regles": {"nom": "fabriques-2019", "millesime_qpv": 2015, "distance_proximite_m": 500.0},
    "sources": [{"jeu": "qpv2015_occitanie", "sha256": "abc123", "millesime": 2015}],
    "verdicts": {"qpv": 1, "invalide": 2, "indetermine": 1, "non_eligible": 1},
}
SPATIAL = [".gpkg", ".geojson"]


@pytest.fixture
def classified() -> gpd.GeoDataFrame:
    """Five rows like classify's output: nullable booleans and text with NA, 2 invalid rows."""
    frame = gpd.GeoDataFrame(
        {
            "nom": pd.array(
                ["Café « Le Point ; Virgule »", 'Atelier "B"', None, "Fablab", "Lieu"],
                dtype="string",
            ),
            "qpv_code": pd.array(["QP031007", None, None, None, None], dtype="string"),
            "in_qpv": pd.array([True, False, pd.NA, False, pd.NA], dtype="boolean"),
            "near_qpv": pd.array([True, False, pd.NA, pd.NA, pd.NA], dtype="boolean"),
            "distance_qpv_m": [0.0, 1506.6, np.nan, 12.25, np.nan],
            "densite7": pd.array([1, 5, pd.NA, 7, pd.NA], dtype="Int64"),
            "verdict": pd.array(
                ["qpv", "non_eligible", "invalide", "indetermine", "invalide"],
                dtype=pd.StringDtype("pyarrow"),
            ),
            "motif": [
                "dans le QPV",
                "à 1,5 km",
                "coordonnées absentes",
                "QPV inconnu",
                "illisible",
            ],
        },
        geometry=[Point(1.402, 43.575), Point(1.4442, 43.6047), None, Point(55.45, -20.88), None],
        crs="EPSG:4326",
    )
    frame.attrs = json.loads(json.dumps(ATTRS))
    return frame


def _invalid(frame: pd.DataFrame) -> np.ndarray:
    return (frame["verdict"] == "invalide").to_numpy(dtype=bool)


def test_csv_for_a_french_excel(classified, tmp_path):
    path = export.write_results(classified, tmp_path / "out.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
    text = raw.decode("utf-8-sig")
    assert text.splitlines()[0].split(";")[:3] == ["nom", "qpv_code", "in_qpv"]
    assert ";1507,0;" in text and ";12,0;" in text and "1506" not in text  # to the metre
    assert "geometry" not in text.splitlines()[0]
    back = pd.read_csv(path, sep=";", decimal=",", encoding="utf-8-sig", dtype={"densite7": str})
    assert len(back) == len(classified)
    assert back["nom"].tolist()[:2] == ["Café « Le Point ; Virgule »", 'Atelier "B"']
    assert back["nom"].isna().tolist() == [False, False, True, False, False]
    assert back["in_qpv"].tolist()[:2] == ["oui", "non"] and back["in_qpv"].isna()[[2, 4]].all()
    assert back["distance_qpv_m"].tolist()[:2] == [0.0, 1507.0]
    assert back["verdict (libellé)"].tolist()[:2] == [
        "Dans un quartier prioritaire (QPV)",
        "Non éligible",
    ]
    assert back["densite7"].fillna("").tolist() == ["1", "5", "", "7", ""]
    assert back["verdict"].tolist() == classified["verdict"].tolist()


def test_xlsx_sheets(classified, tmp_path):
    path = export.write_results(classified, tmp_path / "out.xlsx")
    assert openpyxl.load_workbook(path).sheetnames == ["Synthèse", "resultats"]
    sheets = pd.read_excel(path, sheet_name=None)
    results = sheets["resultats"]
    assert len(results) == len(classified)
    assert "geometry" not in results.columns
    assert results["in_qpv"].tolist()[:2] == ["oui", "non"]
    assert results["in_qpv"].isna().tolist() == [False, False, True, False, True]
    assert results["distance_qpv_m"].tolist()[:2] == [0.0, 1507.0]
    assert results["verdict"].tolist() == classified["verdict"].tolist()
    summary = sheets["Synthèse"]
    counts = dict(zip(summary["code"], summary["lieux"], strict=False))
    assert counts["invalide"] == 2 and counts["qpv"] == 1
    words = " ".join(map(str, summary.to_numpy().ravel()))
    assert "fabriques-2019" in words and "à 500 m ou moins" in words
    assert "empreinte sha256 abc123" in words and "{" not in words  # words, not JSON


def test_xlsx_keeps_user_text_as_text(classified, tmp_path):
    """User text never becomes a formula, and control characters do not break the export."""
    classified["nom"] = pd.array(
        ['=HYPERLINK("http://exemple.invalid";"clic")', "=1+2", "Tab\x0bverticale", None, "A"],
        dtype="string",
    )
    path = export.write_results(classified, tmp_path / "out.xlsx")
    sheet = openpyxl.load_workbook(path)["resultats"]
    cells = [cell for (cell,) in sheet.iter_rows(min_row=2, max_col=1)]
    assert [cell.value for cell in cells][:3] == [
        '=HYPERLINK("http://exemple.invalid";"clic")',
        "=1+2",
        "Tabverticale",
    ]
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


@pytest.mark.parametrize("suffix", SPATIAL)
def test_spatial_formats_keep_every_row(classified, tmp_path, suffix):
    path = export.write_results(classified, tmp_path / f"out{suffix}")
    back = gpd.read_file(path)
    assert len(back) == len(classified)
    assert back.crs.to_epsg() == 4326
    invalid = _invalid(classified)
    assert back.geometry.isna().to_numpy().tolist() == invalid.tolist()  # null, not dropped
    written = back.geometry[~invalid].to_numpy()
    assert shapely.equals(written, classified.geometry[~invalid].to_numpy()).all()
    assert back["in_qpv"].tolist()[:2] == ["oui", "non"] and back["in_qpv"].isna()[[2, 4]].all()
    assert back["near_qpv"].isna().tolist() == [False, False, True, True, True]
    assert back["qpv_code"].isna().tolist() == [False, True, True, True, True]
    assert back["verdict"].tolist() == classified["verdict"].tolist()
    assert back["motif"].tolist() == classified["motif"].tolist()


@pytest.mark.parametrize("suffix", SPATIAL)
def test_spatial_overwrite_and_all_invalid(classified, tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    export.write_results(classified, path)
    export.write_results(classified, path)  # written again, not appended
    assert len(gpd.read_file(path)) == len(classified)
    invalid = classified[_invalid(classified)]
    export.write_results(invalid, path)
    back = gpd.read_file(path)
    assert len(back) == 2 and back.geometry.isna().all()


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", *SPATIAL])
def test_provenance_beside_every_format(classified, tmp_path, suffix):
    before = classified.dtypes.copy()
    path = export.write_results(classified, tmp_path / "sous-dossier" / f"res{suffix}")
    assert path.is_file()
    provenance = export.provenance_path(path)
    assert provenance == path.with_name(f"res{suffix}.provenance.json")
    assert json.loads(provenance.read_text(encoding="utf-8")) == ATTRS
    assert classified.dtypes.equals(before)  # input untouched


def test_uppercase_extension(classified, tmp_path):
    path = export.write_results(classified, tmp_path / "OUT.CSV")
    assert len(pd.read_csv(path, sep=";", encoding="utf-8-sig")) == len(classified)


@pytest.mark.parametrize("name", ["out.txt", "out.shp", "out", "out.csv.gz"])
def test_unknown_extension_lists_formats(classified, tmp_path, name):
    with pytest.raises(ValueError, match="format de sortie inconnu") as error:
        export.write_results(classified, tmp_path / name)
    for suffix in export.FORMATS:
        assert suffix in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_provenance_of_non_json_values(classified, tmp_path):
    classified.attrs["regles"]["chemin"] = Path("/données/qpv.geojson")
    path = export.write_results(classified, tmp_path / "out.csv")
    provenance = json.loads(export.provenance_path(path).read_text(encoding="utf-8"))
    assert provenance["regles"]["chemin"] == "/données/qpv.geojson"


def test_csv_neutralises_spreadsheet_formulas(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {
            "nom": ['=HYPERLINK("http://x")', "@SUM(A1)", "+33 6 12", "-cmd", "Normal"],
            "longitude": ["-52,33", "-0.5", "2,35", "-,5", "1"],
            "note": ["-1+1+cmd|' /C calc'!A0", '-0+HYPERLINK("x")', "\tx", "\rx", "-2e-3"],
            "verdict": ["qpv"] * 5,
        },
        geometry=[None] * 5,
        crs="EPSG:4326",
    )
    path = export.write_results(frame, tmp_path / "r.csv")
    back = pd.read_csv(path, sep=";", encoding="utf-8-sig", dtype=str)
    assert back["nom"].tolist() == [
        '\'=HYPERLINK("http://x")',
        "'@SUM(A1)",
        "'+33 6 12",
        "'-cmd",
        "Normal",
    ]
    assert back["longitude"].tolist() == ["-52,33", "-0.5", "2,35", "-,5", "1"]
    # OWASP: a leading minus followed by a formula is escaped, a negative number is not
    assert back["note"].tolist() == [
        "'-1+1+cmd|' /C calc'!A0",
        '\'-0+HYPERLINK("x")',
        "'\tx",
        "'\rx",
        "-2e-3",
    ]


def _summary_rows(path: Path, heading: str) -> pd.DataFrame:
    """The block of the « Synthèse » sheet under ``heading``, with its own header."""
    sheet = pd.read_excel(path, sheet_name="Synthèse", header=None)
    start = sheet.index[sheet[0] == heading][0] + 1
    block = sheet.iloc[start + 1 :].copy()
    block.columns = sheet.iloc[start]
    return block.iloc[: block.iloc[:, 0].isna().argmax()]


def test_xlsx_summary_names_departements_and_regions(classified, tmp_path):
    """Staff read « Haute-Garonne » and « Occitanie » beside the codes (mirror outlines)."""
    classified["dep"] = pd.array(["31", "31", None, "974", None], dtype="string")
    classified["reg"] = pd.array(["76", "76", None, "04", None], dtype="string")
    path = export.write_results(classified, tmp_path / "out.xlsx")
    deps = _summary_rows(path, "Lieux par département et par verdict")
    assert deps["département"].tolist() == ["31", "974", "aucun"]
    assert deps["nom"].fillna("").tolist() == ["Haute-Garonne", "La Réunion", ""]
    assert deps["lieux"].tolist() == [2, 1, 2]
    regs = _summary_rows(path, "Lieux par région et par verdict")
    assert dict(zip(regs["région"], regs["nom"], strict=True))["76"] == "Occitanie"


def test_xlsx_summary_keeps_codes_without_outlines(classified, tmp_path, monkeypatch):
    """Without the outlines (not in the mirror nor the cache) the codes stay, unnamed."""
    from territoires import settings

    monkeypatch.setattr(settings, "data_dir", tmp_path / "vide")
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "cache")
    monkeypatch.setattr(settings, "offline", True)
    classified["dep"] = pd.array(["31", "31", None, "974", None], dtype="string")
    path = export.write_results(classified, tmp_path / "out.xlsx")
    deps = _summary_rows(path, "Lieux par département et par verdict")
    assert "nom" not in deps.columns
    assert deps["département"].tolist() == ["31", "974", "aucun"]


def test_xlsx_refuses_more_rows_than_a_sheet_holds(classified, tmp_path, monkeypatch):
    """Rows past a worksheet's limit would vanish when opened: refused, nothing written."""
    monkeypatch.setattr(export, "XLSX_ROWS", len(classified))
    with pytest.raises(OutputError, match=r"lignes sous l'en-tête .* écrivez un \.csv"):
        export.write_results(classified, tmp_path / "out.xlsx")
    assert not (tmp_path / "out.xlsx").exists()
    monkeypatch.setattr(export, "XLSX_ROWS", len(classified) + 1)
    assert export.write_results(classified, tmp_path / "out.xlsx").exists()


def test_xlsx_summary_counts_the_eligible(classified, tmp_path):
    """Staff read how many places are eligible without adding verdicts up."""
    path = export.write_results(classified, tmp_path / "out.xlsx")
    summary = pd.read_excel(path, sheet_name="Synthèse")
    row = summary[summary["verdict"].astype(str).str.startswith("dont éligibles")]
    assert row["lieux"].tolist() == [1]  # one place in a QPV, the others not eligible


def _blocks_frame() -> gpd.GeoDataFrame:
    """40 classified-like rows whose cells pandas formats per step: date-times all at
    midnight in the first rows only, formulas, numbers among words, NA everywhere."""
    rows = 40
    stamps = pd.to_datetime(["2024-03-01"] * 25 + ["2024-03-01 10:30"] * 15, format="ISO8601")
    frame = gpd.GeoDataFrame(
        {
            "nom": pd.array(
                [
                    None if i % 7 == 0 else f"=lieu {i}" if i % 5 == 0 else f"lieu {i}"
                    for i in range(rows)
                ],
                dtype="string",
            ),
            "code": [["ABC", 12345, 12.5, None][i % 4] for i in range(rows)],
            "ouverture": stamps.where(np.arange(rows) % 9 != 0),
            "in_qpv": pd.array([[True, False, pd.NA][i % 3] for i in range(rows)], dtype="boolean"),
            "distance_qpv_m": [i * 10.26 if i % 6 else np.nan for i in range(rows)],
            "verdict": ["qpv", "non_eligible", "invalide", "indetermine"] * (rows // 4),
            "motif": [f"motif « {i} » ; ligne\r{i}" for i in range(rows)],
        },
        geometry=[Point(1.4 + i / 100, 43.6) if i % 4 else None for i in range(rows)],
        crs="EPSG:4326",
    )
    frame.attrs = json.loads(json.dumps(ATTRS))
    return frame


def test_csv_in_blocks_is_the_file_written_at_once(tmp_path, monkeypatch):
    """A large CSV is formatted and written block by block (memory holds one block of
    text, not the file); the bytes are those of the file written in one block: BOM and
    header once, date-times formatted per pandas step as before."""
    frame = _blocks_frame()
    at_once = export.write_results(frame, tmp_path / "un.csv").read_bytes()
    assert at_once == export.csv_text(frame)
    assert b"".join(export.csv_blocks(frame, header=False)) == export.csv_text(frame, header=False)
    columns = len(export.readable(frame).columns)
    monkeypatch.setattr(export, "_CSV_STEP_CELLS", 3 * columns)  # 3 rows per pandas step
    written = export.write_results(frame, tmp_path / "un_pas.csv").read_bytes()
    monkeypatch.setattr(export, "_CSV_BLOCK_ROWS", 7)  # blocks of 2 steps
    assert len(list(export.csv_blocks(frame))) == 7
    blocks = export.write_results(frame, tmp_path / "blocs.csv").read_bytes()

    assert blocks == written
    assert blocks.count(b"\xef\xbb\xbf") == 1 and blocks.startswith(b"\xef\xbb\xbf")
    text = blocks.decode("utf-8-sig")
    assert text.count("nom;code;ouverture") == 1
    assert "2024-03-01 00:00:00" in text and "\r\n'=lieu 5;" in text


def test_csv_file_is_written_without_its_whole_text_in_memory(tmp_path, monkeypatch):
    """Memory while writing a CSV stays far below the size of the file."""
    import tracemalloc

    rows = 40_000
    frame = pd.DataFrame(
        {
            "nom": pd.array([f"lieu numéro {i} " + "x" * 200 for i in range(rows)], dtype="string"),
            "verdict": pd.array(["qpv"] * rows, dtype="string"),
        }
    )
    frame.attrs = json.loads(json.dumps(ATTRS))
    # 500 rows per pandas step, blocks of 2,000 rows
    monkeypatch.setattr(export, "_CSV_STEP_CELLS", 3 * 500, raising=False)
    monkeypatch.setattr(export, "_CSV_BLOCK_ROWS", 2_000, raising=False)
    tracemalloc.start()
    try:
        path = export.write_results(frame, tmp_path / "grand.csv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path.stat().st_size > 9_000_000
    assert peak < path.stat().st_size / 3


def test_csv_numbers_and_dates_among_words_as_the_sheet_shows_them(tmp_path):
    """A text column holding numbers (a workbook's mixed column) keeps them as the user
    wrote them: whole numbers without decimals, a decimal comma, a date-only cell as its
    date; numbers of numeric columns and text are unchanged."""
    import datetime

    frame = pd.DataFrame(
        {
            "code": ["ABC", 12345, 12345.0, 12.5, -0.25, 1e20, None, np.nan, True],
            "quand": [
                "lundi",
                datetime.datetime(2024, 3, 1),
                pd.Timestamp("2024-03-01 10:30"),
                datetime.date(2023, 12, 25),
                None,
                None,
                None,
                None,
                None,
            ],
            "ratio": [1.5, 2.0, 3.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0],
            "verdict": ["qpv"] * 9,
        }
    )
    frame.attrs = json.loads(json.dumps(ATTRS))
    path = export.write_results(frame, tmp_path / "out.csv")
    lines = path.read_bytes().decode("utf-8-sig").split("\r\n")[1:-1]
    cells = [line.split(";")[:3] for line in lines]
    assert [row[0] for row in cells] == [
        "ABC",
        "12345",
        "12345",
        "12,5",
        "-0,25",
        "1e+20",
        "",
        "",
        "True",
    ]
    assert [row[1] for row in cells][:5] == [
        "lundi",
        "2024-03-01",
        "2024-03-01 10:30:00",
        "2023-12-25",
        "",
    ]
    assert [row[2] for row in cells][:2] == ["1,5", "2,0"]


def test_xlsx_date_only_cells_stay_dates(tmp_path):
    """A column of dates without time (read from a workbook as date-times at midnight)
    is shown as dates, not « 00:00:00 »; a column with times keeps them; a date among
    words is shown as a date."""
    import datetime

    frame = pd.DataFrame(
        {
            "ouverture": pd.to_datetime(["2024-03-01", "2023-12-25", None]),
            "horodate": pd.to_datetime(["2024-03-01 10:30", "2024-03-02", None], format="ISO8601"),
            "divers": ["ABC", datetime.datetime(2024, 3, 1), datetime.datetime(2024, 3, 1, 8)],
            "verdict": ["qpv"] * 3,
        }
    )
    frame.attrs = json.loads(json.dumps(ATTRS))
    path = export.write_results(frame, tmp_path / "out.xlsx")
    sheet = openpyxl.load_workbook(path)["resultats"]
    formats = {
        column[0].value: [(cell.value, cell.number_format) for cell in column[1:3]]
        for column in sheet.iter_cols(max_col=3)
    }
    assert formats["ouverture"] == [
        (datetime.datetime(2024, 3, 1), "yyyy-mm-dd"),
        (datetime.datetime(2023, 12, 25), "yyyy-mm-dd"),
    ]
    assert [number_format for _, number_format in formats["horodate"]] == ["yyyy-mm-dd h:mm:ss"] * 2
    assert formats["divers"][1] == (datetime.datetime(2024, 3, 1), "yyyy-mm-dd")
    assert sheet["C4"].number_format == "yyyy-mm-dd h:mm:ss"


def test_check_rows_only_limits_workbooks(monkeypatch):
    monkeypatch.setattr(export, "XLSX_ROWS", 10)
    export.check_rows("r.csv", 10**7)
    export.check_rows("r.xlsx", 9)
    with pytest.raises(OutputError, match=r"^10 lieux : une feuille de classeur ne tient que 9 "):
        export.check_rows("R.XLSX", 10)


def test_codes_come_with_their_names(classified, tmp_path):
    """A density level or an AAV category is never a bare code in a file staff open."""
    classified["cateaav2020"] = pd.array([11, 20, pd.NA, 30, pd.NA], dtype="Int64")
    table = export.readable(classified)
    columns = list(table.columns)
    assert columns[columns.index("densite7") + 1] == "densite7 (libellé)"
    assert columns[columns.index("cateaav2020") + 1] == "cateaav2020 (libellé)"
    assert table["densite7 (libellé)"].tolist()[:2] == ["Grands centres urbains", "Bourgs ruraux"]
    assert table["densite7 (libellé)"].isna().tolist() == [False, False, True, False, True]
    assert table["cateaav2020 (libellé)"][0] == "Commune-centre"
    assert "densite7 (libellé)" not in classified.columns  # the input is not modified

    classified.attrs["regles"]["regle_urbaine"] = "densite-hors-grands-centres"
    path = export.write_results(classified, tmp_path / "out.xlsx")
    rules = _summary_rows(path, "Règles appliquées")
    words = dict(zip(rules["rubrique"], rules["valeur"], strict=True))
    assert words["Grand centre urbain si"] == "densite7 = 1 « Grands centres urbains »"
