"""Tests of the ``territoires`` eligibility and coverage commands, on the real mirror.

The reference layers are loaded once per process (``eligibility.reference`` is cached),
so only the first command run here pays for reading the mirror.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

import territoires
from territoires import cli, export
from territoires.cli import app
from territoires.rules import PRESETS, URBAN_RULES

runner = CliRunner()
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lieux_exemple.csv"
EXAMPLE_ROWS = 27
SPATIAL = {".gpkg", ".geojson"}


def _flat(text: str) -> str:
    """Text without whitespace nor rich box characters (error panels wrap their lines)."""
    return "".join(char for char in text if not char.isspace() and char not in "│╭╮╰╯─")


@pytest.fixture(scope="module")
def example_names() -> list[str]:
    return pd.read_csv(EXAMPLE, sep=";", dtype=str)["nom"].tolist()


# --- check ---------------------------------------------------------------------------------


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"territoires {territoires.__version__}"


def test_one_place_is_singular(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "un.csv"
    source.write_text("nom;lon;lat\nA;1,4020;43,5750\n", encoding="utf-8")
    result = runner.invoke(app, ["classify", str(source), "-o", str(tmp_path / "r.csv")])
    assert result.exit_code == 0, result.output
    assert "1 lieu classé →" in result.stderr
    result = runner.invoke(app, ["map", str(source), "-o", str(tmp_path / "c.html")])
    assert result.exit_code == 0, result.output
    assert "Carte de 1 lieu →" in result.stderr


def test_check_in_qpv(data_dir: Path) -> None:
    result = runner.invoke(app, ["check", "1.4020", "43.5750"])
    assert result.exit_code == 0, result.output
    assert "Dans un quartier prioritaire (QPV)" in result.stdout
    assert "QP031007" in result.stdout
    assert "Traceback" not in result.output


def test_check_imports_only_what_answers_a_point(data_dir: Path) -> None:
    """A new ``territoires check`` process skips help drawing, progress bars, file readers."""
    # persisted in the cache by `data prepare`, even when an earlier test built it in this
    # process and the cache has pruned its file since (it keeps the 8 most recent)
    prepare = runner.invoke(app, ["data", "prepare"])
    assert prepare.exit_code == 0, prepare.output
    code = (
        "import sys\n"
        "from territoires.cli import main\n"
        "sys.argv = ['territoires', 'check', '1.4020', '43.5750']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as end:\n"
        "    assert not end.code, end.code\n"
        "unused = ['typer.rich_utils', 'rich.markdown', 'tqdm', 'pyogrio', 'scipy', 'folium']\n"
        "print('chargés :', [name for name in unused if name in sys.modules])\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Dans un quartier prioritaire (QPV)" in run.stdout
    assert run.stdout.strip().endswith("chargés : []"), run.stdout


@pytest.mark.parametrize(
    "args", [["--", "-52.33", "4.93"], ["-52.33", "4.93"]], ids=["double-dash", "plain"]
)
def test_check_negative_longitude(data_dir: Path, args: list[str]) -> None:
    """Cayenne: a negative longitude is a coordinate, with or without « -- »."""
    result = runner.invoke(app, ["check", *args])
    assert result.exit_code == 0, result.output
    assert "Cayenne (97302)" in result.stdout
    assert "département 973 absent de la couche QPV 2015" in result.stdout


def test_check_negative_latitude_with_options(data_dir: Path) -> None:
    result = runner.invoke(app, ["check", "55.45", "-20.88", "--distance", "100"])
    assert result.exit_code == 0, result.output
    assert "Saint-Denis (97411)" in result.stdout


def test_check_swapped_coordinates(data_dir: Path) -> None:
    result = runner.invoke(app, ["check", "43.6", "1.44"])
    assert result.exit_code == 1
    assert "Entrée invalide" in result.stdout
    assert "inversées" in result.stdout
    # One point typed at the command line: no line of a file, no file to correct.
    assert "ligne 1" not in result.stdout
    assert "corrigez le fichier" not in result.stdout
    assert "donnez la longitude puis la latitude" in result.stdout


def test_check_out_of_bounds_does_not_advise_an_option_check_lacks(data_dir: Path) -> None:
    result = runner.invoke(app, ["check", "500", "43"])
    assert result.exit_code == 1
    assert "hors des bornes WGS84 (lon=500.0)" in result.stdout
    assert "ligne 1" not in result.stdout
    assert "--crs" not in result.stdout  # check has no --crs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1.4020"], "latitude manquante après '1.4020' : attendu « longitude latitude »"),
        (["1.4020", "nan"], "latitude 'nan' illisible : attendu des degrés décimaux"),
        (["abc", "43.5"], "longitude 'abc' illisible : attendu des degrés décimaux"),
        (["43.5,", "abc"], "longitude 'abc' illisible"),  # « lat, lon » of a web map
        (
            ["43°34'30\"N 1°24'07\"E"],
            "les degrés, minutes, secondes ne sont pas lus : donnez des degrés décimaux, "
            "longitude puis latitude (ex. 1.401944 43.575)",
        ),
    ],
    ids=["lone-number", "nan", "word-and-number", "web-map", "dms"],
)
def test_check_mistyped_coordinates_fail_at_once_in_french(args: list[str], message: str) -> None:
    """Text meant as coordinates is refused before any geocoding (it used to wait for the
    geocoder, then say it was unreachable)."""
    result = runner.invoke(app, ["check", *args, "--offline"])
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.output.split())
    assert "géocod" not in result.output


@pytest.mark.parametrize(
    "args", [["31000", "Toulouse"], ["12 rue de Metz, Toulouse"], ["n° 12 rue de Metz Toulouse"]]
)
def test_check_addresses_still_go_to_the_geocoder(data_dir: Path, args: list[str]) -> None:
    result = runner.invoke(app, ["check", *args, "--offline"])
    assert result.exit_code == 1, result.output
    assert "adresse absente du cache de géocodage (mode hors ligne)" in result.stdout
    assert "ligne 1" not in result.stdout


def _verdict(*args: str) -> tuple[str, str]:
    result = runner.invoke(app, ["check", *args])
    assert result.exit_code == 0, result.output
    first, motif = result.stdout.splitlines()[:2]
    return first, motif


#: Toulouse, 400 m from the boundary of QP031010 « Empalot » (QPV 2015), farther from any
#: other QPV: found by buffering the polygon by 400 m in Lambert-93.
AT_400_M = ("1.4332", "43.57269")


def test_check_400_m_from_a_qpv_default_and_500_m_preset(data_dir: Path) -> None:
    """The legal 300 m says « non éligible »; the 500 m preset says « à proximité »."""
    first, motif = _verdict(*AT_400_M)
    assert first == "Non éligible"
    assert "à 400 m du QPV le plus proche QP031010 « Empalot », au-delà de 300 m" in motif
    assert "(300 m : Code général des impôts, art. 278 sexies ; géographie prioritaire 2015)" in (
        motif
    )
    assert "Toulouse (31555)" in motif
    first, motif = _verdict(*AT_400_M, "--regles", "fabriques-2019-npnru-500m")
    assert first == "À proximité immédiate d'un QPV"
    assert "à 400 m du QPV le plus proche QP031010 « Empalot », à 500 m ou moins" in motif
    assert (
        "500 m : distance fixée par le Code général des impôts, art. 278 sexies, pour les QPV "
        "en renouvellement urbain (NPNRU), appliquée ici à tous les QPV"
    ) in motif


def test_check_distance_changes_the_verdict(data_dir: Path) -> None:
    """Montpellier, Figuerolles: 425 m from QP034010."""
    first, motif = _verdict("3.8767", "43.6108", "--distance", "450")
    assert first == "À proximité immédiate d'un QPV"
    assert "425 m" in motif and "QP034010" in motif and "à 450 m ou moins" in motif
    assert "distance choisie par l'utilisateur" in motif  # not passed off as the legal one
    first, motif = _verdict("3.8767", "43.6108", "--distance", "10")
    assert first == "Non éligible"
    assert "425 m" in motif and "au-delà de 10 m" in motif


def test_check_with_npnru_list(data_dir: Path) -> None:
    """Figuerolles (QP034010) is on the test list: 500 m around it, with its text."""
    listed = str(FIXTURES / "npnru" / "liste_npnru_essai.csv")
    first, motif = _verdict("3.8767", "43.6108", "--npnru", listed)
    assert first == "À proximité immédiate d'un QPV"
    assert "à 425 m du QPV QP034010 « Figuerolles », en renouvellement urbain (NPNRU)" in motif
    assert "500 m : QPV en renouvellement urbain (NPNRU), Code général des impôts" in motif
    # Empalot is not on the list: 300 m still applies there
    first, motif = _verdict(*AT_400_M, "--npnru", listed)
    assert first == "Non éligible"
    assert "au-delà de 300 m, et à plus de 500 m de tout QPV de la liste NPNRU" in motif


def test_check_with_invalid_npnru_list(data_dir: Path) -> None:
    listed = str(FIXTURES / "npnru" / "liste_npnru_invalide.csv")
    result = runner.invoke(app, ["check", *AT_400_M, "--npnru", listed])
    assert result.exit_code == 1
    error = _flat(result.stderr)
    assert "ligne3:'QX12';ligne4:''" in error
    assert "QPsuivide6caractères" in error


def test_check_unknown_urban_rule() -> None:
    result = runner.invoke(app, ["check", "1.4", "43.6", "--regle-urbaine", "inconnue"])
    assert result.exit_code == 2
    error = _flat(result.stderr)
    assert "inconnue" in error
    for name in URBAN_RULES:
        assert name in error


def test_check_unknown_preset() -> None:
    result = runner.invoke(app, ["check", "1.4", "43.6", "--regles", "fabriques-2030"])
    assert result.exit_code == 2
    for name in PRESETS:
        assert name in _flat(result.stderr)


def test_check_negative_distance_refused() -> None:
    result = runner.invoke(app, ["check", "1.4", "43.6", "--distance", "-5"])
    assert result.exit_code == 2


def test_check_missing_qpv_2024_contours_offline_uses_the_list_by_commune(data_dir: Path) -> None:
    # no QPV 2024 contours in the mirror: the national list by commune answers, never aborts
    result = runner.invoke(app, ["check", "1.4020", "43.5750", "--qpv", "2024"])
    assert result.exit_code == 0
    assert result.stdout.startswith("Indéterminé")
    assert "QN03107M « Grand Mirail »" in result.stdout
    assert "Traceback" not in result.output


# --- classify --------------------------------------------------------------------------------


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, sep=";", decimal=",", encoding="utf-8-sig")
    if path.suffix == ".xlsx":
        return pd.read_excel(path, sheet_name="resultats")
    return gpd.read_file(path)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".gpkg", ".geojson"])
def test_classify_every_format(data_dir, tmp_path, example_names, suffix) -> None:
    output = tmp_path / f"resultats{suffix}"
    result = runner.invoke(app, ["classify", str(EXAMPLE), "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert f"{EXAMPLE_ROWS} lieux classés" in result.stderr
    table = _read(output)
    assert len(table) == EXAMPLE_ROWS
    assert table["nom"].tolist() == example_names  # every row, in input order
    assert {"verdict", "motif"} <= set(table.columns)
    assert table["verdict"].notna().all() and table["motif"].notna().all()
    counts = table["verdict"].value_counts().to_dict()
    assert counts["invalide"] == 5 and counts["qpv"] >= 1
    assert table.loc[1, "verdict"] == "qpv" and table.loc[1, "qpv_code"] == "QP031007"
    assert table.loc[22, "verdict"] == "invalide" and "inversées" in table.loc[22, "motif"]
    assert set(table["in_qpv"].dropna()) <= {"oui", "non"}
    if suffix in SPATIAL:
        invalid = (table["verdict"] == "invalide").to_numpy()
        assert table.geometry.isna().to_numpy().tolist() == invalid.tolist()
    provenance = json.loads(export.provenance_path(output).read_text(encoding="utf-8"))
    assert provenance["regles"]["nom"] == "fabriques-2019"
    assert provenance["sources"] and provenance["verdicts"]["invalide"] == 5


def test_classify_csv_is_french(data_dir, tmp_path) -> None:
    output = tmp_path / "resultats.csv"
    result = runner.invoke(app, ["classify", str(EXAMPLE), "-o", str(output), "--distance", "300"])
    assert result.exit_code == 0, result.output
    text = output.read_text(encoding="utf-8-sig")
    header = text.splitlines()[0].split(";")
    assert header[:4] == ["nom", "porteur", "longitude", "latitude"]
    assert "distance_qpv_m" in header and "geometry" not in header
    table = pd.read_csv(output, sep=";", decimal=",", encoding="utf-8-sig")
    assert pd.api.types.is_float_dtype(table["distance_qpv_m"])
    assert pd.api.types.is_float_dtype(table["lat"])
    assert table.loc[0, "lat"] == pytest.approx(43.6047)
    assert ";43,6047;" in text  # decimal comma
    assert table.loc[2, "verdict"] == "non_eligible"  # 425 m > 300 m
    provenance = json.loads(export.provenance_path(output).read_text(encoding="utf-8"))
    assert provenance["regles"]["distance_proximite_m"] == 300


def test_classify_unknown_format_fails_before_any_work(tmp_path) -> None:
    output = tmp_path / "resultats.txt"
    result = runner.invoke(app, ["classify", str(EXAMPLE), "-o", str(output)])
    assert result.exit_code == 2
    assert "Chargement" not in result.output
    for suffix in export.FORMATS:
        assert suffix in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_classify_without_coordinate_columns(data_dir, tmp_path) -> None:
    source = tmp_path / "lieux.csv"
    source.write_text("nom;telephone;code postal\nFablab;0561000000;31000\n", encoding="utf-8")
    result = runner.invoke(app, ["classify", str(source), "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 1
    assert "Erreur" in result.stderr
    for column in ("'nom'", "'telephone'", "'code postal'"):
        assert column in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("content", ["", "nom;longitude;latitude\n"], ids=["empty", "header"])
def test_classify_empty_file(data_dir, tmp_path, content) -> None:
    source = tmp_path / "vide.csv"
    source.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["classify", str(source), "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 1
    assert "fichier vide" in result.stderr and "vide.csv" in result.stderr
    assert "Traceback" not in result.output


def test_classify_missing_file(tmp_path) -> None:
    missing = tmp_path / "absent.csv"
    result = runner.invoke(app, ["classify", str(missing), "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 2
    assert "absent.csv" in _flat(result.stderr)


# --- map -------------------------------------------------------------------------------------


def test_map_offline(data_dir, tmp_path) -> None:
    output = tmp_path / "carte.html"
    result = runner.invoke(app, ["map", str(EXAMPLE), "-o", str(output), "--offline"])
    assert result.exit_code == 0, result.output
    assert f"Carte de {EXAMPLE_ROWS} lieux" in result.stderr
    page = output.read_text(encoding="utf-8")
    for cdn in ("https://cdn", "unpkg", "jsdelivr"):
        assert cdn not in page
    assert "<script src=" not in page and '<link rel="stylesheet" href=' not in page
    assert "leaflet" in page.lower()
    assert "Leaflet 1.9" in page  # inlined from the xstatic package
    assert "Fabrique de la Reynerie" in page


# --- coverage --------------------------------------------------------------------------------


def test_coverage_report_and_map(data_dir, tmp_path) -> None:
    report, carte = tmp_path / "couverture.xlsx", tmp_path / "carte.html"
    result = runner.invoke(
        app, ["coverage", str(EXAMPLE), "-o", str(report), "--carte", str(carte), "--offline"]
    )
    assert result.exit_code == 0, result.output
    workbook = openpyxl.load_workbook(report, read_only=True)
    assert workbook.sheetnames == ["Synthèse", "qpv", "communes", "departements", "regions"]
    workbook.close()
    departements = pd.read_excel(report, sheet_name="departements")
    assert len(departements) > 100
    page = carte.read_text(encoding="utf-8")
    for layer in (  # names in the layer control, JSON-encoded in the page
        "Communes couvertes ou non",
        "Part de la population couverte, par département",
        "QPV non couverts (",
    ):
        assert json.dumps(layer)[1:-1] in page
    assert carte.stat().st_size < 5_000_000
    for cdn in ("https://cdn", "unpkg", "jsdelivr"):
        assert cdn not in page


def test_coverage_of_a_list_in_one_region_measures_that_region(data_dir, tmp_path) -> None:
    """The Occitanie places of the example: other régions are not reported uncovered."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    occitanie = [line for line in lines[1:17] if "Creuse" not in line]
    source = tmp_path / "occitanie.csv"
    source.write_text("\n".join([lines[0], *occitanie]) + "\n", encoding="utf-8")
    report = tmp_path / "couverture.xlsx"
    result = runner.invoke(app, ["coverage", str(source), "-o", str(report)])
    assert result.exit_code == 0, result.output
    assert "Territoire analysé : région Occitanie (76), où sont tous les lieux" in result.stderr
    assert "--regions, --departements ou --france" in result.stderr
    departements = pd.read_excel(report, sheet_name="departements", dtype={"dep": str})
    assert len(departements) == 13
    communes = pd.read_excel(report, sheet_name="communes", dtype={"reg": str})
    assert set(communes["reg"]) == {"76"}
    readme = pd.read_excel(report, sheet_name="Synthèse")
    assert readme["valeur"][0].startswith("Territoire analysé : région Occitanie (76)")

    result = runner.invoke(app, ["coverage", str(source), "-o", str(report), "--france"])
    assert result.exit_code == 0, result.output
    assert _flat("faute de lieux dans la liste, non faute de tiers-lieux") in _flat(result.stderr)
    assert len(pd.read_excel(report, sheet_name="departements")) == 101

    both = runner.invoke(
        app, ["coverage", str(source), "-o", str(report), "--regions", "76", "--france"]
    )
    assert both.exit_code == 2
    assert _flat("--regions et --france s'excluent") in _flat(both.stderr)


def test_coverage_refuses_csv_report(tmp_path) -> None:
    result = runner.invoke(app, ["coverage", str(EXAMPLE), "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert ".xlsx" in result.stderr and ".gpkg" in result.stderr
    assert "Chargement" not in result.output
    assert list(tmp_path.iterdir()) == []


# --- regles ----------------------------------------------------------------------------------


def test_rules_listing_names_every_code() -> None:
    """« densite7 = 1 « Grands centres urbains » »: no rule is explained by a bare code."""
    result = runner.invoke(app, ["regles"])
    assert result.exit_code == 0, result.output
    for rule in URBAN_RULES.values():
        assert f"grand centre urbain si {rule.codes_in_words()}" in result.stdout
    assert "grand centre urbain si densite7 = 1 « Grands centres urbains »" in result.stdout


def test_rules_listing() -> None:
    result = runner.invoke(app, ["regles"])
    assert result.exit_code == 0, result.output
    for rules in PRESETS.values():
        assert f"{rules.name} (version {rules.version})" in result.stdout
        assert rules.title in result.stdout
    for rule in URBAN_RULES.values():
        assert f"{rule.name} (version {rule.version})" in result.stdout
        assert f"lecture : {rule.reading}" in result.stdout
        assert f"depuis : {rule.since}" in result.stdout
    out = result.stdout
    assert "proximité immédiate : à 300 m ou moins" in out
    assert "proximité immédiate : à 500 m ou moins" in out
    assert "distance : 300 m : Code général des impôts, art. 278 sexies" in out
    assert "règle urbaine hors-metropoles : lecture de 2019" in out
    assert "avec --npnru : à 500 m ou moins autour des QPV de la liste ANRU" in out


def test_classify_in_partitions_matches_in_memory(data_dir: Path, tmp_path: Path) -> None:
    parquet = tmp_path / "resultats.parquet"
    memory = tmp_path / "resultats.csv"
    result = runner.invoke(app, ["classify", str(EXAMPLE), "-o", str(parquet), "--partitions"])
    assert result.exit_code == 0, result.output
    assert f"{EXAMPLE_ROWS} lieux classés" in result.output
    assert runner.invoke(app, ["classify", str(EXAMPLE), "-o", str(memory)]).exit_code == 0

    partitioned = gpd.read_parquet(parquet).sort_index()
    expected = pd.read_csv(memory, sep=";", decimal=",", encoding="utf-8-sig", dtype=str)
    assert partitioned["verdict"].tolist() == expected["verdict"].tolist()
    assert partitioned["motif"].tolist() == expected["motif"].tolist()


def test_classify_in_partitions_has_the_provenance_of_a_whole_run(
    data_dir: Path, tmp_path: Path
) -> None:
    """Same provenance keys and values with or without --partitions, ``lignes`` included
    (lines 3-5 after Excel's ``sep=;`` line)."""
    source = tmp_path / "lieux.csv"
    source.write_text(
        "sep=;\nnom;lon;lat\nA;1,4020;43,5750\nB;200;43\nC;1,44;43,60\n", encoding="utf-8"
    )
    provenances = []
    for output, options in (("p.csv", ["--partitions"]), ("m.csv", [])):
        result = runner.invoke(
            app, ["classify", str(source), "-o", str(tmp_path / output), *options]
        )
        assert result.exit_code == 0, result.output
        provenance = export.provenance_path(tmp_path / output).read_text(encoding="utf-8")
        provenances.append(json.loads(provenance))
    assert provenances[0] == provenances[1]
    assert provenances[0]["lignes"] == "3-5"


def test_classify_in_partitions_writes_the_file_of_a_whole_run(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`classify -o x.csv` writes its CSV in blocks (here of 4 rows): the bytes are those
    of `classify --partitions -o x.csv`."""
    monkeypatch.setattr(export, "_CSV_STEP_CELLS", 1)  # one row per pandas step
    monkeypatch.setattr(export, "_CSV_BLOCK_ROWS", 4)
    whole, partitioned = tmp_path / "memoire.csv", tmp_path / "partitions.csv"
    result = runner.invoke(app, ["classify", str(EXAMPLE), "-o", str(whole)])
    assert result.exit_code == 0, result.output
    options = ["--partitions", "--ordonnanceur", "threads"]
    result = runner.invoke(app, ["classify", str(EXAMPLE), "-o", str(partitioned), *options])
    assert result.exit_code == 0, result.output
    assert whole.read_bytes() == partitioned.read_bytes()
    header = whole.read_bytes().split(b"\r\n")[0]
    assert whole.read_bytes().count(header[3:]) == 1  # written once, after the BOM


def test_classify_refuses_a_too_long_workbook_before_classifying(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More places than a sheet holds: refused as soon as the file is read, in French,
    before the reference is loaded or any place classified; nothing written."""
    from territoires import eligibility

    def no_reference(*args: object, **kwargs: object) -> None:
        raise AssertionError("classement commencé")

    monkeypatch.setattr(export, "XLSX_ROWS", EXAMPLE_ROWS)
    monkeypatch.setattr(eligibility, "reference", no_reference)
    output = tmp_path / "resultats.xlsx"
    result = runner.invoke(app, ["classify", str(EXAMPLE), "-o", str(output)])
    assert result.exit_code == 1
    assert "classement commencé" not in result.output
    refusal = f"{EXAMPLE_ROWS} lieux : une feuille de classeur ne tient que {EXAMPLE_ROWS - 1}"
    assert _flat(refusal) in _flat(result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_workbook_cells_come_out_as_written(data_dir: Path, tmp_path: Path) -> None:
    """XLSX in, CSV and XLSX out: numbers among words keep their form (12345, 12,5), a
    date-only column stays dates, an Excel error value (#N/A) is kept, not emptied."""
    import datetime

    source = tmp_path / "lieux.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["nom", "lon", "lat", "code", "ouverture", "note"])
    sheet.append(["A", 1.4442, 43.6047, "ABC", datetime.date(2024, 3, 1), "ok"])
    sheet.append(["B", 1.45, 43.61, 12345, datetime.date(2023, 12, 25), "x"])
    sheet.append(["C", 1.46, 43.62, 12.5, None, None])
    sheet["F4"].value, sheet["F4"].data_type = "#N/A", "e"
    workbook.save(source)

    csv_out, xlsx_out = tmp_path / "r.csv", tmp_path / "r.xlsx"
    for output in (csv_out, xlsx_out):
        result = runner.invoke(app, ["classify", str(source), "-o", str(output)])
        assert result.exit_code == 0, result.output
    rows = [line.split(";")[:6] for line in csv_out.read_text("utf-8-sig").splitlines()[1:]]
    assert [row[3:] for row in rows] == [
        ["ABC", "2024-03-01", "ok"],
        ["12345", "2023-12-25", "x"],
        ["12,5", "", "#N/A"],
    ]
    written = openpyxl.load_workbook(xlsx_out)["resultats"]
    cells = [
        [(cell.value, cell.number_format) for cell in row[3:6]]
        for row in written.iter_rows(min_row=2, max_row=4)
    ]
    assert [value for value, _ in (row[0] for row in cells)] == ["ABC", 12345, 12.5]
    assert cells[0][1] == (datetime.datetime(2024, 3, 1), "yyyy-mm-dd")
    assert cells[1][1] == (datetime.datetime(2023, 12, 25), "yyyy-mm-dd")
    assert cells[2][2][0] == "#N/A" and written["F4"].data_type == "e"


@pytest.mark.parametrize(
    ("output", "options"),
    [("r.csv", []), ("r.csv", ["--qpv", "2015,2024"]), ("r.csv", ["--partitions"])],
    ids=["memoire", "deux-millesimes", "partitions"],
)
def test_classify_nothing_classified_exits_1(
    data_dir: Path, tmp_path: Path, output: str, options: list[str]
) -> None:
    """Every row invalid: the file is written (every row, its motif) but the run fails,
    saying in French that nothing was classified and what went wrong most often."""
    source = tmp_path / "lieux.csv"
    source.write_text(
        "nom;lon;lat\nA;200;43,5\nB;;\nC;1,4;95\nD;652000;6280000\n", encoding="utf-8"
    )
    result = runner.invoke(app, ["classify", str(source), "-o", str(tmp_path / output), *options])
    assert result.exit_code == 1, result.output
    message = _flat(result.stderr)
    assert _flat("Erreur : aucun lieu n'a pu être classé : les 4 lignes sont invalides") in message
    assert _flat("le plus fréquent : « coordonnées hors des bornes WGS84 » (3 lignes sur 4)") in (
        message
    )
    assert _flat("par ex. ligne 2 : coordonnées hors des bornes WGS84 (lon=200.0)") in message
    written = pd.read_csv(tmp_path / output, sep=";", encoding="utf-8-sig", dtype=str)
    assert written["nom"].tolist() == ["A", "B", "C", "D"]
    motifs = written.filter(like="motif").iloc[:, 0]
    assert motifs.str.startswith("Entrée invalide : ligne ").all()
    # one row classified is enough for success
    source.write_text("nom;lon;lat\nA;200;43,5\nB;1,4020;43,5750\n", encoding="utf-8")
    result = runner.invoke(app, ["classify", str(source), "-o", str(tmp_path / "b.csv"), *options])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "written", "ending"),
    [
        (
            ["map", "-o", "{tmp}/c.html"],
            ["c.html"],
            "carte écrite sans aucun lieu dans {tmp}/c.html ; le motif de chaque ligne : "
            "territoires classify {source} -o resultats.csv",
        ),
        (
            ["bilan", "-o", "{tmp}/b.xlsx"],
            ["b.xlsx", "b.xlsx.provenance.json"],
            "le motif de chaque ligne est dans {tmp}/b.xlsx (feuille lieux)",
        ),
        (
            ["bilan"],
            [],
            "relancez avec -o bilan.xlsx : sa feuille lieux donne le motif de chaque ligne",
        ),
        (
            ["coverage", "-o", "{tmp}/r.xlsx", "--carte", "{tmp}/c.html"],
            [],
            "couverture non mesurée, aucun rapport écrit ; le motif de chaque ligne : "
            "territoires classify {source} -o resultats.csv",
        ),
    ],
    ids=["map", "bilan-classeur", "bilan", "coverage"],
)
def test_other_commands_nothing_classified_exit_1(
    data_dir: Path, tmp_path: Path, args: list[str], written: list[str], ending: str
) -> None:
    """Every row invalid: map, bilan and coverage fail as classify does, naming the most
    frequent problem. The map and the bilan are written all the same (the bilan's
    « lieux » sheet gives each motif); a coverage of no place would call every territory
    « non couvert »: nothing is measured or written."""
    folder = tmp_path / "lieux"
    folder.mkdir()
    source = folder / "lieux.csv"
    source.write_text("nom;lon;lat\nA;200;43,5\nB;;\nC;1,4;95\n", encoding="utf-8")
    values = {"tmp": tmp_path, "source": source}
    command = [args[0], str(source), *(arg.format(**values) for arg in args[1:])]
    result = runner.invoke(app, command)
    assert result.exit_code == 1, result.output
    message = _flat(result.stderr)
    expected = _flat(
        "Erreur : aucun lieu n'a pu être classé : les 3 lignes sont invalides ; problème le "
        "plus fréquent : « coordonnées hors des bornes WGS84 » (2 lignes sur 3), par ex. "
        "ligne 2 : coordonnées hors des bornes WGS84 (lon=200.0)"
    )
    assert expected in message, message
    assert message.endswith(_flat(ending.format(**values))), message
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["lieux", *written])
    if "b.xlsx" in written:
        rows = pd.read_excel(tmp_path / "b.xlsx", sheet_name="lieux")
        assert rows["motif"].str.startswith("Entrée invalide : ligne ").all()
    # one row classified is enough for success
    source.write_text("nom;lon;lat\nA;200;43,5\nB;1,4020;43,5750\n", encoding="utf-8")
    assert runner.invoke(app, command).exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["classify", str(EXAMPLE), "-o", "{missing}/r.csv"],
        ["classify", str(EXAMPLE), "-o", "{missing}/r.parquet", "--partitions"],
        ["classify", str(EXAMPLE), "-o", "{tmp}/r.csv", "--carte", "{missing}/c.html"],
        ["map", str(EXAMPLE), "-o", "{missing}/c.html"],
    ],
    ids=["classify", "partitions", "carte", "map"],
)
def test_output_in_a_missing_folder_is_refused(data_dir: Path, tmp_path: Path, args) -> None:
    """A typo in an output folder creates no folders: refused before any work, naming the
    first missing folder."""
    missing = tmp_path / "resultas" / "2025"
    args = [arg.format(missing=missing, tmp=tmp_path) for arg in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert _flat(f"le dossier {tmp_path / 'resultas'} n'existe pas") in _flat(result.output)
    assert _flat(f"mkdir -p {missing}") in _flat(result.output)
    assert sorted(path.name for path in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("sortie.csv", ["classify", str(EXAMPLE), "-o", "{folder}"]),
        ("carte.html", ["classify", str(EXAMPLE), "-o", "{tmp}/r.csv", "--carte", "{folder}"]),
        ("carte.html", ["map", str(EXAMPLE), "-o", "{folder}"]),
    ],
    ids=["classify", "carte", "map"],
)
def test_output_that_is_a_folder_is_refused(
    data_dir: Path, tmp_path: Path, name: str, args: list[str]
) -> None:
    """A folder named like an output file is refused before any work (it was refused
    only once the whole file was classified), with the usage error's exit code."""
    folder = tmp_path / name
    folder.mkdir()
    args = [arg.format(folder=folder, tmp=tmp_path) for arg in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert _flat(f"{folder} est un dossier") in _flat(result.output)
    assert sorted(path.name for path in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("options", [[], ["--partitions"]], ids=["memoire", "partitions"])
def test_classify_reads_a_gps_column(data_dir: Path, tmp_path: Path, options: list[str]) -> None:
    """A column « coordonnées GPS » of « latitude, longitude » pairs is read, with or
    without --partitions; a bad cell is invalid, its motif naming the row and the form."""
    source = tmp_path / "lieux.csv"
    source.write_text(
        'nom;coordonnées GPS\nA;"43.5750, 1.4020"\nB;"43,5750 ; 1,4020"\nC;abc\n', encoding="utf-8"
    )
    output = tmp_path / "r.csv"
    result = runner.invoke(app, ["classify", str(source), "-o", str(output), *options])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(output, sep=";", encoding="utf-8-sig", dtype=str)
    assert written["verdict"].tolist() == ["qpv", "qpv", "invalide"]
    assert (
        written["motif"]
        .iloc[2]
        .startswith(
            "Entrée invalide : ligne 4 : coordonnées illisibles dans la colonne « coordonnées GPS »"
        )
    )
    assert written["coordonnées GPS"].tolist()[:2] == ["43.5750, 1.4020", "43,5750 ; 1,4020"]


def test_classify_in_partitions_on_processes(data_dir: Path, tmp_path: Path) -> None:
    """`python -m territoires … --ordonnanceur processus`: the command runs once (not in
    the spawned worker processes), which classify as in memory."""
    parquet, memory = tmp_path / "resultats.parquet", tmp_path / "resultats.csv"
    command = [sys.executable, "-m", "territoires", "classify", str(EXAMPLE), "-o"]
    run = subprocess.run(
        [*command, str(parquet), "--partitions", "--ordonnanceur", "processus"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("lieux classés en") == 1, run.stderr  # the command ran once
    assert runner.invoke(app, ["classify", str(EXAMPLE), "-o", str(memory)]).exit_code == 0
    partitioned = gpd.read_parquet(parquet).sort_index()
    expected = pd.read_csv(memory, sep=";", decimal=",", encoding="utf-8-sig", dtype=str)
    assert partitioned["motif"].tolist() == expected["motif"].tolist()


WEIRD = ["--ordonnanceur", "fusées"]


def test_classify_in_partitions_unknown_scheduler(data_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["classify", str(EXAMPLE), "-o", str(tmp_path / "r.csv"), "--partitions", *WEIRD],
    )
    assert result.exit_code == 2
    assert _flat("« fusées » : attendu auto, threads ou processus") in _flat(result.output)


def test_classify_in_partitions_rejects_other_formats(data_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["classify", str(EXAMPLE), "-o", str(tmp_path / "r.xlsx"), "--partitions"]
    )
    assert result.exit_code == 2
    assert ".parquetou.csv" in _flat(result.output)


def test_map_with_density_layer(data_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "carte.html"
    result = runner.invoke(app, ["map", str(EXAMPLE), "-o", str(output), "--communes"])
    assert result.exit_code == 0, result.output
    page = output.read_text(encoding="utf-8")
    assert "Communes par densit" in page
    assert "Limites administratives" in page


def test_output_cut_short_by_the_reader_is_not_an_error():
    """`territoires regles | head -1`: the reader closing the pipe is no « Erreur »."""
    process = subprocess.Popen(
        [sys.executable, "-m", "territoires", "regles"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # nobody reads: the first write meets a broken pipe
    stderr = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "Erreur" not in stderr and "Traceback" not in stderr


def test_classify_both_vintages_to_xlsx(data_dir: Path, tmp_path: Path) -> None:
    """`--qpv 2015,2024 -o x.xlsx`: both geographies counted in the Synthèse, labelled."""
    output = tmp_path / "v.xlsx"
    result = runner.invoke(app, ["classify", str(EXAMPLE), "-o", str(output), "--qpv", "2015,2024"])
    assert result.exit_code == 0, result.output
    summary = openpyxl.load_workbook(output)["Synthèse"]
    titles = [row[0] for row in summary.iter_rows(values_only=True) if row[0]]
    assert "Lieux par verdict, géographie prioritaire 2015" in titles
    assert "Règles appliquées, géographie prioritaire 2024" in titles
    rows = pd.read_excel(output, sheet_name="resultats")
    assert {"verdict_2015 (libellé)", "verdict_2024 (libellé)"} <= set(rows.columns)
    assert len(rows) == EXAMPLE_ROWS


def test_both_vintages_warn_once_about_a_title(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--qpv 2015,2024` reads the file once per vintage: its title is reported once."""
    source = tmp_path / "titre.csv"
    source.write_text("Liste des lieux 2025\nnom;lon;lat\nA;1,4020;43,5750\n", encoding="utf-8")
    monkeypatch.setattr(warnings, "showwarning", cli._show_warning)  # as main() does
    monkeypatch.setattr(cli, "_SHOWN", set(), raising=False)  # a run of its own
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # every warning reaches the command's printer
        result = runner.invoke(
            app, ["classify", str(source), "-o", str(tmp_path / "r.csv"), "--qpv", "2015,2024"]
        )
    assert result.exit_code == 0, result.output
    assert result.stderr.count("en-tête lu ligne 2 ; ligne 1 ignorée") == 1, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["classify", str(EXAMPLE), "-o", "{tmp}/v.csv", "--carte", "{tmp}/c.html"],
        ["map", str(EXAMPLE), "-o", "{tmp}/c.html"],
        ["bilan", str(EXAMPLE)],
    ],
    ids=["classify-carte", "map", "bilan"],
)
def test_one_vintage_where_two_cannot_be_shown(data_dir: Path, tmp_path: Path, args) -> None:
    """Two QPV geographies are refused in French where only one can be shown or counted."""
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    result = runner.invoke(app, [*args, "--qpv", "2015,2024"])
    assert result.exit_code == 2, result.output
    assert "relancez" in result.output and "Traceback" not in result.output


def test_no_command_shows_the_help_alone() -> None:
    """`territoires` alone: the help, without an empty « Erreur » box."""
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "Utilisation" in result.output and "Erreur" not in result.output


def test_partitions_refuse_tiny_blocks(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.parquet"
    result = runner.invoke(
        app, ["classify", str(EXAMPLE), "-o", str(out), "--partitions", "--bloc", "4"]
    )
    assert result.exit_code == 2
    assert _flat("au moins 64KB") in _flat(result.output)


def test_partitions_progress_on_stderr(data_dir: Path, tmp_path: Path) -> None:
    """The progress of --partitions goes to stderr: `… | head -1` still writes the output."""
    out = tmp_path / "o.parquet"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "territoires",
            "classify",
            str(EXAMPLE),
            "-o",
            str(out),
            "--partitions",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "Completed" not in run.stdout and "Completed" in run.stderr
    assert out.is_dir()


def test_summary_counts_are_french_numbers_most_frequent_first(capsys) -> None:
    """A partitioned run's counts (sorted by verdict name) print as classify's do."""
    from territoires import cli

    cli._summary({"verdicts": {"invalide": 21, "qpv": 6_699, "non_eligible": 147_603}})

    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "  Non éligible : 147\u202f603",
        "  Dans un quartier prioritaire (QPV) : 6\u202f699",
        "  Entrée invalide : 21",
    ]
