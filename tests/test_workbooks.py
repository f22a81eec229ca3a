"""Every workbook territoires writes is ready for staff; names from « Nom du lieu » reach
the maps and the coverage report. Runs the CLI on the real mirror."""

from __future__ import annotations

import html
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from jinja2.utils import htmlsafe_json_dumps
from typer.testing import CliRunner

from territoires import VERDICTS
from territoires.cli import app

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lieux_exemple.csv"


@pytest.fixture(scope="module")
def named_xlsx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example places in a workbook whose header says « Nom du lieu » and « Commune »."""
    table = pd.read_csv(EXAMPLE, sep=";", dtype=str).rename(columns={"nom": "Nom du lieu"})
    table.insert(1, "Commune", "saisie par l'utilisateur")
    path = tmp_path_factory.mktemp("entree") / "lieux.xlsx"
    table.to_excel(path, index=False)
    return path


@pytest.fixture(scope="module")
def names(named_xlsx: Path) -> list[str]:
    return pd.read_excel(named_xlsx, dtype=str)["Nom du lieu"].tolist()


@pytest.fixture(scope="module")
def classified(data_dir: Path, named_xlsx: Path, tmp_path_factory: pytest.TempPathFactory):
    """``classify`` of the workbook to XLSX and CSV, with the map in the same run."""
    folder = tmp_path_factory.mktemp("classify")
    out, carte = folder / "resultats.xlsx", folder / "carte.html"
    result = runner.invoke(
        app, ["classify", str(named_xlsx), "-o", str(out), "--carte", str(carte)]
    )
    assert result.exit_code == 0, result.output
    csv = folder / "resultats.csv"
    assert runner.invoke(app, ["classify", str(named_xlsx), "-o", str(csv)]).exit_code == 0
    return {"xlsx": out, "carte": carte, "csv": csv}


@pytest.fixture(scope="module")
def covered(data_dir: Path, named_xlsx: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("coverage")
    out, carte = folder / "couverture.xlsx", folder / "couverture.html"
    result = runner.invoke(
        app, ["coverage", str(named_xlsx), "-o", str(out), "--carte", str(carte)]
    )
    assert result.exit_code == 0, result.output
    return {"xlsx": out, "carte": carte, "output": result.stderr}


def _in_page(text: str) -> str:
    """``text`` as a map page embeds it: HTML-escaped, then as HTML-safe JSON."""
    return str(htmlsafe_json_dumps(html.escape(text)))[1:-1]


def _check_staff_sheet(sheet: openpyxl.worksheet.worksheet.Worksheet) -> list[str]:
    """Header bold on a band, frozen under it, autofilter from it; return the header."""
    header = [cell.value for cell in sheet[1]]
    assert all(cell.font.b for cell in sheet[1] if cell.value is not None), sheet.title
    assert all(cell.fill.fgColor.rgb.endswith("305496") for cell in sheet[1] if cell.value)
    assert sheet.freeze_panes == "A2", sheet.title
    assert sheet.auto_filter.ref and sheet.auto_filter.ref.startswith("A1:"), sheet.title
    for index in range(1, len([h for h in header if h is not None]) + 1):
        letter = openpyxl.utils.get_column_letter(index)
        assert 6 <= sheet.column_dimensions[letter].width <= 70, (sheet.title, letter)
    return header


def _column(sheet, header: list[str], name: str) -> list:
    index = header.index(name) + 1
    return [row[0] for row in sheet.iter_rows(min_row=2, min_col=index, max_col=index)]


def test_classification_workbook(classified, names) -> None:
    workbook = openpyxl.load_workbook(classified["xlsx"])
    assert workbook.sheetnames == ["Synthèse", "resultats"]
    for sheet in workbook:
        _check_staff_sheet(sheet)
    sheet = workbook["resultats"]
    header = [cell.value for cell in sheet[1]]
    # the user's « Commune » no longer sits next to the output « commune » unexplained
    assert "Commune_entree" in header and "Commune" not in header and "commune" in header
    assert header[header.index("verdict") + 1] == "verdict (libellé)"
    assert [c.value for c in _column(sheet, header, "Nom du lieu")] == names
    labels = {c.value for c in _column(sheet, header, "verdict (libellé)")}
    assert labels <= set(VERDICTS.values())
    distances = [c for c in _column(sheet, header, "distance_qpv_m") if c.value is not None]
    assert distances and all(c.number_format == "#,##0" for c in distances)
    assert all(float(c.value).is_integer() for c in distances)  # rounded to the metre
    assert {c.value for c in _column(sheet, header, "in_qpv")} <= {"oui", "non", None}
    motifs = _column(sheet, header, "motif")
    assert all(c.alignment.wrap_text for c in motifs)
    assert all(c.number_format == "0.000000" for c in _column(sheet, header, "lon") if c.value)

    summary = workbook["Synthèse"]
    header = [cell.value for cell in summary[1] if cell.value is not None]
    assert header == ["verdict", "code", "lieux", "part des lieux"]
    rows = {row[1]: row for row in summary.iter_rows(min_row=2, max_row=8, values_only=True)}
    assert rows["invalide"][2] == 5
    shares = [row[3] for row in summary.iter_rows(min_row=2, max_row=8)]
    assert all(cell.number_format == "0.0%" for cell in shares)
    text = " ".join(str(v) for row in summary.iter_rows(values_only=True) for v in row if v)
    for words in (
        "Lieux par département et par verdict",
        "Lieux par région et par verdict",
        "Règles appliquées",
        "à 300 m ou moins",
        "Sources des données de référence",
        "licence",
    ):
        assert words in text
    assert '{"' not in text  # rules and sources in words, not raw JSON


def test_csv_is_readable(classified) -> None:
    table = pd.read_csv(classified["csv"], sep=";", decimal=",", encoding="utf-8-sig")
    assert set(table["in_qpv"].dropna()) <= {"oui", "non"}
    assert set(table["hors_grands_centres_urbains"].dropna()) <= {"oui", "non"}
    distances = table["distance_qpv_m"].dropna()
    assert (distances == distances.round()).all()
    assert table["verdict (libellé)"].tolist() == table["verdict"].map(VERDICTS).tolist()


def test_names_reach_the_eligibility_map(classified, names) -> None:
    page = classified["carte"].read_text(encoding="utf-8")
    placed = [name for name in names if _in_page(name) in page]
    assert len(placed) >= len(names) - 5  # the 5 invalid rows have no marker
    assert "Lieu 0" not in page and "ligne 2)" in page  # names with their file line


def test_coverage_report_and_its_names(covered, names) -> None:
    workbook = openpyxl.load_workbook(covered["xlsx"])
    assert workbook.sheetnames[0] == "Synthèse"
    for sheet in workbook:
        _check_staff_sheet(sheet)
    synthese = [row[1] for row in workbook["Synthèse"].iter_rows(min_row=2, values_only=True)]
    assert any("QPV couverts sur" in str(value) for value in synthese)
    qpv = workbook["qpv"]
    header = [cell.value for cell in qpv[1]]
    nearest = {c.value for c in _column(qpv, header, "lieu_proche")}
    assert nearest and nearest <= set(names)  # real names, never an index
    covered_cells = {c.value for c in _column(qpv, header, "couvert")}
    assert covered_cells <= {"oui", "non"}
    deps = [c.value for c in _column(qpv, header, "dep")]
    assert deps == sorted(deps)
    regions = workbook["regions"]
    header = [cell.value for cell in regions[1]]
    shares = [c for c in _column(regions, header, "part_population_couverte") if c.value]
    assert shares and all(c.number_format == "0.0%" for c in shares)
    counts = [c for c in _column(regions, header, "population_hors_gcu") if c.value]
    assert all(c.number_format == "#,##0" for c in counts)
    assert "QPV couverts sur" in covered["output"]  # closing summary on the terminal


def test_coverage_map_names_places_and_states_its_limits(covered, names) -> None:
    page = covered["carte"].read_text(encoding="utf-8")
    assert _in_page("Tiers-lieux (22)") in page or "Tiers-lieux (22)" in page
    assert sum(_in_page(name) in page for name in names) >= 20  # places layer and tooltips
    assert "Lieu le plus proche : " in page and "aucun dans ce territoire" in page
    assert "QPV connus : r" in page  # the partial QPV layer is said on the map itself
    assert "imperial: false" in page and "control_scale" not in page


def test_eligibility_map_states_its_limits(classified) -> None:
    page = classified["carte"].read_text(encoding="utf-8")
    assert "QPV connus : r" in page and "imperial: false" in page


def test_result_explore_works_out_of_the_box(data_dir: Path, tmp_path: Path) -> None:
    """``GeoDataFrame.explore`` on a result: its dependencies are declared and installed."""
    import folium
    import geopandas as gpd

    import territoires

    table = pd.read_csv(EXAMPLE, sep=";", dtype=str)
    lon = pd.to_numeric(table["longitude"].str.replace(",", "."), errors="coerce")
    lat = pd.to_numeric(table["latitude"].str.replace(",", "."), errors="coerce")
    mainland = lon.between(-5, 10) & lat.between(41, 52)
    lambert = gpd.GeoDataFrame(
        table[mainland].drop(columns=["longitude", "latitude"]),
        geometry=gpd.points_from_xy(lon[mainland], lat[mainland], crs="EPSG:4326"),
    ).to_crs(2154)
    result = territoires.classify(lambert)
    assert result.crs.to_epsg() == 4326  # said in the docstring: results are in WGS84
    fmap = result.explore(column="verdict")
    assert isinstance(fmap, folium.Map)
    fmap.save(tmp_path / "explore.html")
    assert "qpv" in (tmp_path / "explore.html").read_text(encoding="utf-8")
