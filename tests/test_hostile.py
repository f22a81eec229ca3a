"""A corpus of hostile inputs, each with its expected outcome, through the CLI.

Every case is a file written by the test (bytes chosen to be hostile: ragged lines,
odd encodings and line endings, formulas, duplicate headers, foreign places, broken
workbooks and layers…). For each one the test asserts what a user relies on:

* the exit code, and no Python traceback (a failure is a French « Erreur : … »);
* every input row comes out, in input order, with the user's own cells as written
  (CSV output read back as text; a cell a spreadsheet would run as a formula carries the
  leading ``'`` of the CSV export, nothing else changes);
* each unusable row has a French motif naming its line and the field at fault.

The reference layers are loaded once per process (``reference`` is cached), so the whole
corpus runs in seconds after the first case.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from territoires.cli import app

runner = CliRunner()

#: Usable places: in a Toulouse QPV, and in central Toulouse (not eligible).
QPV = ("1.4020", "43.5750")
TOULOUSE = ("1.4442", "43.6047")
#: Formula characters the CSV export neutralises with a leading apostrophe.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Case:
    """One hostile input and what must come out of ``territoires classify``.

    Attributes
    ----------
    name : str
        Test id.
    make : callable
        Writes the input into a folder and returns its path.
    cells : list of dict or None
        The user's cells expected back, row by row (column → text, ``""`` for empty);
        None when the whole file is refused.
    motifs : dict
        Row position → regular expression the row's motif must match (``invalide``
        rows name their line and field).
    verdicts : dict
        Row position → expected verdict.
    args : tuple of str
        Extra command-line arguments.
    exit_code : int
        Expected exit code: 1 when the file is refused, and also when every row comes
        out ``invalide`` (the file is still written, every row with its motif).
    error : str or None
        Regular expression expected in the error message when the file is refused.
    """

    name: str
    make: Callable[[Path], Path]
    cells: list[dict[str, str]] | None
    motifs: dict[int, str] = field(default_factory=dict)
    verdicts: dict[int, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    exit_code: int = 0
    error: str | None = None


def text_file(
    name: str, text: str, encoding: str = "utf-8", newline: str = "\n"
) -> Callable[[Path], Path]:
    """A writer of ``text`` (lines joined by ``\\n`` in the source) as given bytes."""

    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(text.replace("\n", newline).encode(encoding))
        return path

    return make


def raw_file(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def workbook(name: str, sheets: dict[str, list[list[object]]]) -> Callable[[Path], Path]:
    """A writer of an XLSX workbook, rows as given (title rows, headers anywhere)."""

    def make(folder: Path) -> Path:
        book = openpyxl.Workbook()
        book.remove(book.active)
        for title, rows in sheets.items():
            sheet = book.create_sheet(title)
            for row in rows:
                sheet.append(row)
        path = folder / name
        book.save(path)
        return path

    return make


def layers(name: str, content: dict[str, gpd.GeoDataFrame]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        for layer, frame in content.items():
            frame.to_file(path, layer=layer, driver="GPKG")
        return path

    return make


def ids(*values: str) -> list[dict[str, str]]:
    return [{"id": value} for value in values]


POINT = gpd.GeoDataFrame(
    {"id": ["p1", "p2"]},
    geometry=[shapely.Point(1.4020, 43.5750), shapely.Point(1.4442, 43.6047)],
    crs=4326,
)
POLYGONS = gpd.GeoDataFrame(
    {"zone": ["z1"]}, geometry=[shapely.box(1.40, 43.57, 1.41, 43.58)], crs=4326
)
GOOD = f"id;lon;lat\na;{QPV[0]};{QPV[1]}\nb;{TOULOUSE[0]};{TOULOUSE[1]}\n"

CASES = [
    # --- CSV structure -------------------------------------------------------------------
    Case(
        "ragged-too-many",
        text_file(
            "l.csv", f"id;lon;lat\na;{QPV[0]};{QPV[1]}\nb;1.44;43.60;extra\nc;1.4442;43.6047\n"
        ),
        [{"id": "a"}, {"id": "b", "champs_en_trop": "extra"}, {"id": "c"}],
        motifs={1: r"^Entrée invalide : ligne 3 : 4 champs au lieu de 3"},
        verdicts={0: "qpv", 2: "non_eligible"},
    ),
    Case(
        "ragged-too-few",
        text_file("l.csv", f"id;lon;lat\na;{QPV[0]};{QPV[1]}\nb;1.44\n"),
        [{"id": "a"}, {"id": "b", "lon_entree": "1.44", "lat_entree": ""}],
        motifs={1: r"ligne 3 : 2 champs au lieu de 3"},
    ),
    Case(
        "ragged-comma-file",
        text_file("l.csv", "id,lon,lat\na,1.4020,43.5750\nb,Toulouse, France,1.44,43.6\n"),
        [
            {"id": "a"},
            {
                "id": "b",
                "lon_entree": "Toulouse",
                "lat_entree": " France",
                "champs_en_trop": "1.44,43.6",
            },
        ],
        motifs={1: r"ligne 3 : 5 champs au lieu de 3 \(séparateur virgule\)"},
    ),
    Case(
        "multiline-quoted-cell-then-bad-row",
        text_file(
            "l.csv",
            'id;note;lon;lat\na;"deux\nlignes";1.4020;43.5750\nb;"trois\nli\ngnes";x;43.6\n'
            "c;;1.4442;\n",
        ),
        [
            {"id": "a", "note": "deux\nlignes"},
            {"id": "b", "note": "trois\nli\ngnes"},
            {"id": "c", "note": ""},
        ],
        motifs={
            1: r"ligne 4 : longitude non numérique \('x'\)",
            2: r"ligne 7 : latitude manquante",
        },
    ),
    Case(
        "unclosed-quote",
        text_file("l.csv", f'id;lon;lat\na;{QPV[0]};{QPV[1]}\nb;"1.44;43.6\nc;1.45;43.6\n'),
        [{"id": "a"}, {"id": "b"}],
        motifs={1: r"ligne 3 : .*guillemet ouvert et jamais refermé.*ligne 4"},
    ),
    Case(
        "trailing-separators",
        text_file("l.csv", f"id;lon;lat\na;{QPV[0]};{QPV[1]};;\nb;{TOULOUSE[0]};{TOULOUSE[1]};\n"),
        ids("a", "b"),
        verdicts={0: "qpv", 1: "non_eligible"},
    ),
    Case(  # a stray separator in « 43,575 »: never read as latitude 43, 575 next to it
        "stray-separator-beside-trailing-ones",
        text_file("l.csv", "nom;lon;lat;\nA;1,402;43,575;\nB;1,402;43;575;\nC;1,4442;43,6047;\n"),
        [{"nom": "A"}, {"nom": "B", "colonne_4": "575"}, {"nom": "C"}],
        motifs={1: r"^Entrée invalide : ligne 3 : 5 champs au lieu de 4 \(séparateur point-v"},
        verdicts={0: "qpv", 1: "invalide", 2: "non_eligible"},
    ),
    Case(
        "stray-separator-and-trailing-one-below-a-header-without",
        text_file("l.csv", "nom;lon;lat;note\nA;1,402;43,575;x\nB;1,402;43;575;\n"),
        [{"nom": "A", "note": "x"}, {"nom": "B", "note": "575"}],
        motifs={1: r"^Entrée invalide : ligne 3 : 5 champs au lieu de 4 \(séparateur point-v"},
        verdicts={0: "qpv", 1: "invalide"},
    ),
    Case(
        "every-line-ends-with-a-separator",
        text_file("l.csv", f"id;lon;lat;\na;{QPV[0]};{QPV[1]};\nb;{TOULOUSE[0]};{TOULOUSE[1]};\n"),
        ids("a", "b"),
        verdicts={0: "qpv", 1: "non_eligible"},
    ),
    Case(
        "blank-lines-inside-and-after",
        text_file("l.csv", f"id;lon;lat\na;{QPV[0]};{QPV[1]}\n\nb;1.4442;43.6047\n\n\n\n"),
        ids("a", "", "b"),
        motifs={1: r"ligne 3 : ligne vide \(aucune cellule remplie\)"},
    ),
    Case(
        "excel-sep-line",
        text_file("l.csv", f"sep=,\nid,lon,lat\na,{QPV[0]},{QPV[1]}\nb,x,43.6\n"),
        ids("a", "b"),
        motifs={1: r"ligne 4 : longitude non numérique \('x'\)"},
        verdicts={0: "qpv"},
    ),
    Case(
        "tab-separated",
        text_file("l.tsv", f"id\tlon\tlat\na\t{QPV[0]}\t{QPV[1]}\n"),
        ids("a"),
        verdicts={0: "qpv"},
    ),
    Case(
        "header-only",
        text_file("l.csv", "id;lon;lat\n"),
        None,
        exit_code=1,
        error=r"fichier vide",
    ),
    Case("empty-file", raw_file("l.csv", b""), None, exit_code=1, error=r"fichier vide"),
    Case(
        "no-coordinate-column",
        text_file("l.csv", "id;nom\na;La Fabrique\n"),
        None,
        exit_code=1,
        error=r"aucune paire de colonnes de coordonnées.*--lon et --lat",
    ),
    # --- encodings and line endings ------------------------------------------------------
    Case(
        "utf16-bom-tabs",
        text_file("l.txt", f"\ufeffid\tlon\tlat\né\t{QPV[0]}\t{QPV[1]}\n", "utf-16-le"),
        ids("é"),
        verdicts={0: "qpv"},
    ),
    Case(
        "utf16-be-no-bom",
        text_file("l.csv", f"id;lon;lat\nà;{QPV[0]};{QPV[1]}\n", "utf-16-be"),
        ids("à"),
        verdicts={0: "qpv"},
    ),
    Case(
        "cp1252-accents-decimal-commas",
        text_file("l.csv", "id;lon;lat\nCafé;1,4020;43,5750\nŒuvre;1,4442;43,6047\n", "cp1252"),
        [
            {"id": "Café", "lon_entree": "1,4020", "lat_entree": "43,5750"},
            {"id": "Œuvre", "lon_entree": "1,4442"},
        ],
        verdicts={0: "qpv", 1: "non_eligible"},
    ),
    Case(
        "cr-only-line-endings",
        text_file("l.csv", GOOD + "c;y;43.6\n", newline="\r"),
        ids("a", "b", "c"),
        motifs={2: r"ligne 4 : longitude non numérique \('y'\)"},
        verdicts={0: "qpv", 1: "non_eligible"},
    ),
    Case(
        "crlf-line-endings",
        text_file("l.csv", GOOD, newline="\r\n"),
        ids("a", "b"),
        verdicts={0: "qpv", 1: "non_eligible"},
    ),
    Case(
        "cr-inside-quoted-cell",
        text_file("l.csv", f'id;note;lon;lat\na;"avant\rapres";{QPV[0]};{QPV[1]}\n'),
        [{"id": "a", "note": "avant\rapres"}],
        verdicts={0: "qpv"},
    ),
    Case(
        "nul-byte-in-cell",
        raw_file("l.csv", f"id;lon;lat\na\x00b;{QPV[0]};{QPV[1]}\n".encode()),
        ids("a\x00b"),
        verdicts={0: "qpv"},
    ),
    Case(
        "not-text-at-all",
        raw_file("l.csv", bytes(range(128, 256)) * 4),
        None,
        exit_code=1,
        error=r"(encodage non reconnu|aucune paire de colonnes)",
    ),
    Case(
        "very-long-cell",
        text_file("l.csv", f"id;note;lon;lat\na;{'x' * 300_000};{QPV[0]};{QPV[1]}\n"),
        [{"id": "a", "note": "x" * 300_000}],
        verdicts={0: "qpv"},
    ),
    # --- coordinate cells ----------------------------------------------------------------
    Case(
        "lon-lat-cells-kept-as-written",
        text_file(
            "l.csv",
            f"id;lon;lat\na;abc;43.5\nb;1.40;43,5750\nc;1e400;43.6\nd;{QPV[0]};{QPV[1]}\n",
        ),
        [
            {"id": "a", "lon_entree": "abc", "lat_entree": "43.5"},
            {"id": "b", "lon_entree": "1.40", "lat_entree": "43,5750"},
            {"id": "c", "lon_entree": "1e400", "lat_entree": "43.6"},
            {"id": "d", "lon_entree": QPV[0], "lat_entree": QPV[1]},
        ],
        motifs={
            0: r"ligne 2 : longitude non numérique \('abc'\)",
            2: r"ligne 4 : coordonnées hors des bornes WGS84 \(lon=inf\)",
        },
        verdicts={1: "proximite_qpv", 3: "qpv"},
    ),
    Case(
        "nan-and-inf-words",
        text_file("l.csv", "id;lon;lat\na;nan;43.5\nb;-inf;43.5\nc;1.4;NaN\n"),
        ids("a", "b", "c"),
        motifs={
            0: r"ligne 2 : longitude non numérique \('nan'\)",
            1: r"ligne 3 : coordonnées hors des bornes WGS84",
            2: r"ligne 4 : latitude non numérique \('NaN'\)",
        },
        exit_code=1,  # no row classified: the file is written, the run fails
    ),
    Case(
        "swapped-coordinates",
        text_file("l.csv", f"id;lon;lat\na;{QPV[1]};{QPV[0]}\n"),
        ids("a"),
        motifs={0: r"ligne 2 : latitude et longitude semblent inversées"},
        exit_code=1,
    ),
    Case(
        "lambert93-without-crs",
        text_file("l.csv", "id;x;y\na;574357.82;6279642.97\n"),
        None,
        exit_code=1,
        error=r"CRS non précisé pour les colonnes x/y « x » et « y ».*--crs 2154",
    ),
    Case(
        "lambert93-with-crs",
        text_file("l.csv", "id;x;y\na;574357.82;6279642.97\n"),
        [{"id": "a", "x": "574357.82"}],
        args=("--crs", "2154"),
        verdicts={0: "non_eligible"},
    ),
    Case(
        "two-longitude-columns",
        text_file("l.csv", f"id;longitude;latitude;longitude\na;{QPV[0]};{QPV[1]};9.9\n"),
        None,
        exit_code=1,
        error=r"plusieurs colonnes possibles pour lon \('longitude', 'longitude\.1'\).*--lon",
    ),
    Case(
        "two-longitude-columns-chosen",
        text_file("l.csv", f"id;longitude;latitude;longitude\na;9.9;{QPV[1]};{QPV[0]}\n"),
        [{"id": "a", "longitude": "9.9", "longitude.1": QPV[0]}],
        args=("--lon", "longitude.1"),
        verdicts={0: "qpv"},
    ),
    Case(
        "duplicate-rows",
        text_file("l.csv", f"id;lon;lat\na;{QPV[0]};{QPV[1]}\na;1.402;43.575\n"),
        ids("a", "a"),
        motifs={1: r"ligne 3 : doublon de la ligne 2"},
    ),
    # --- cells that are code, and names that clash ---------------------------------------
    Case(
        "formula-cells",
        text_file(
            "l.csv",
            "id;nom;lon;lat\n"
            f'a;=HYPERLINK("http://x");{QPV[0]};{QPV[1]}\n'
            f"b;-1+1+cmd|' /C calc'!A0;{TOULOUSE[0]};{TOULOUSE[1]}\n"
            f"c;@SUM(A1);{QPV[0]};43.5751\n"
            f"d;+33 6 12;{QPV[0]};43.5752\n",
        ),
        [
            {"id": "a", "nom": '=HYPERLINK("http://x")'},
            {"id": "b", "nom": "-1+1+cmd|' /C calc'!A0"},
            {"id": "c", "nom": "@SUM(A1)"},
            {"id": "d", "nom": "+33 6 12"},
        ],
        verdicts={0: "qpv", 1: "non_eligible"},
    ),
    Case(
        "output-column-names-in-input",
        text_file(
            "l.csv",
            "id;probleme;territoire;verdict;geometry;;lon;lat\n"
            f"a;aucun;Occitanie;oui;POINT(0 0);vide;{QPV[0]};{QPV[1]}\n",
        ),
        [
            {
                "id": "a",
                "probleme_entree": "aucun",
                "territoire_entree": "Occitanie",
                "verdict_entree": "oui",
                "geometry_entree": "POINT(0 0)",
                "colonne_6": "vide",
            }
        ],
        verdicts={0: "qpv"},
    ),
    # --- places abroad or at sea ---------------------------------------------------------
    Case(
        "abroad-within-tolerance",
        text_file(
            "l.csv",
            "id;lon;lat\nmonaco;7.4246;43.7384\nandorre;1.7300;42.5380\ngeneve;6.2000;46.1930\n"
            "belgique;3.0060;50.7700\nirun;-1.7700;43.3450\n",
        ),
        ids("monaco", "andorre", "geneve", "belgique", "irun"),
        motifs={
            row: rf"ligne {row + 2} : point hors de France, en territoire étranger.*frontière"
            for row in range(5)
        },
        exit_code=1,
    ),
    Case(
        "far-at-sea-and-abroad",
        text_file("l.csv", "id;lon;lat\nlarge;-3.0;47.0\njersey;-2.1065;49.1858\nny;-74;40.7\n"),
        ids("large", "jersey", "ny"),
        motifs={
            0: r"ligne 2 : point hors du territoire communal",
            1: r"ligne 3 : point hors du territoire communal",
            2: r"ligne 4 : point hors de France",
        },
        exit_code=1,
    ),
    Case(
        "harbour-at-sea",
        text_file("l.csv", "id;lon;lat\njoliette;5.3580;43.3080\n"),
        [{"id": "joliette"}],
        motifs={0: r"en mer près de la côte.*rattaché à la commune la plus proche"},
        verdicts={0: "indetermine"},
    ),
    # --- workbooks -----------------------------------------------------------------------
    Case(
        "xlsx-header-below-title",
        workbook(
            "l.xlsx",
            {
                "Lieux": [
                    ["Inventaire 2024"],
                    [],
                    ["id", "lon", "lat"],
                    ["a", 1.4020, 43.5750],
                    ["b", "x", 43.6],
                ]
            },
        ),
        ids("a", "b"),
        motifs={1: r"ligne 5 : longitude non numérique \('x'\)"},
        verdicts={0: "qpv"},
    ),
    Case(
        "xlsx-first-sheet-unusable",
        workbook(
            "l.xlsx",
            {"Notes": [["texte"], ["rien"]], "Lieux": [["id", "lon", "lat"], ["a", 1.402, 43.575]]},
        ),
        None,
        exit_code=1,
        error=r"autres feuilles .*« Lieux ».*--feuille",
    ),
    Case(
        "xlsx-sheet-chosen",
        workbook(
            "l.xlsx", {"Notes": [["texte"]], "Lieux": [["id", "lon", "lat"], ["a", 1.402, 43.575]]}
        ),
        ids("a"),
        args=("--feuille", "Lieux"),
        verdicts={0: "qpv"},
    ),
    Case(
        "xlsx-first-sheet-used-others-named",
        workbook(
            "l.xlsx",
            {"Lieux": [["id", "lon", "lat"], ["a", 1.402, 43.575]], "Archive": [["id"], ["z"]]},
        ),
        ids("a"),
        verdicts={0: "qpv"},
    ),
    Case(
        "xlsx-formulas-and-text-numbers",
        workbook(
            "l.xlsx", {"L": [["id", "nom", "lon", "lat"], ["007", "=1+2", "1,4020", "43,5750"]]}
        ),
        [{"id": "007", "lon_entree": "1,4020"}],
        verdicts={0: "qpv"},
    ),
    Case(
        "xlsx-not-a-zip",
        raw_file("l.xlsx", b"PK\x03\x04 pas vraiment un classeur"),
        None,
        exit_code=1,
        error=r"classeur XLSX illisible",
    ),
    Case(
        "xlsx-zip-without-workbook",
        lambda folder: _zip(folder / "l.xlsx", {"mimetype": b"x", "autre.txt": b"y"}),
        None,
        exit_code=1,
        error=r"classeur XLSX illisible",
    ),
    Case(
        "xlsx-zip-bad-member",
        lambda folder: _zip(
            folder / "l.xlsx", {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<<<"}
        ),
        None,
        exit_code=1,
        error=r"classeur XLSX illisible",
    ),
    # --- layers --------------------------------------------------------------------------
    Case(
        "gpkg-two-layers-first-used",
        layers("l.gpkg", {"lieux": POINT, "zones": POLYGONS}),
        ids("p1", "p2"),
        verdicts={0: "qpv", 1: "non_eligible"},
    ),
    Case(
        "gpkg-first-layer-unusable",
        layers("l.gpkg", {"zones": POLYGONS, "lieux": POINT}),
        None,
        exit_code=1,
        error=r"aucune ligne utilisable dans la première couche.*« lieux ».*--couche",
    ),
    Case(
        "gpkg-layer-chosen",
        layers("l.gpkg", {"zones": POLYGONS, "lieux": POINT}),
        ids("p1", "p2"),
        args=("--couche", "lieux"),
        verdicts={0: "qpv"},
    ),
    Case(
        "geojson-truncated",
        raw_file("l.geojson", b'{"type": "FeatureCollection", "features": [{"type": "Feat'),
        None,
        exit_code=1,
        error=r"couche géographique illisible",
    ),
    Case(
        "geojson-polygon-and-null",
        raw_file(
            "l.geojson",
            b'{"type":"FeatureCollection","features":['
            b'{"type":"Feature","properties":{"id":"a"},"geometry":{"type":"Point",'
            b'"coordinates":[1.402,43.575]}},'
            b'{"type":"Feature","properties":{"id":"b"},"geometry":{"type":"Polygon",'
            b'"coordinates":[[[1.4,43.5],[1.5,43.5],[1.5,43.6],[1.4,43.5]]]}},'
            b'{"type":"Feature","properties":{"id":"c"},"geometry":null}]}',
        ),
        ids("a", "b", "c"),
        motifs={
            1: r"ligne 2 : géométrie non ponctuelle \(Polygon\)",
            2: r"ligne 3 : géométrie manquante",
        },
        verdicts={0: "qpv"},
    ),
    Case(
        "unknown-extension",
        text_file("l.docx", GOOD),
        None,
        exit_code=1,
        error=r"format non reconnu",
    ),
]


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _no_traceback(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output


def _as_written(cell: str) -> str:
    """A cell as the CSV export writes it: formulas neutralised by a leading apostrophe."""
    negative = re.fullmatch(r"-(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?", cell)
    return f"'{cell}" if cell.startswith(FORMULA_START) and not negative else cell


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input(case: Case, tmp_path: Path, data_dir: Path) -> None:
    source = case.make(tmp_path)
    before = source.read_bytes()
    output = tmp_path / "sortie" / "resultat.csv"
    output.parent.mkdir()  # the command creates no folder (a typo would create a tree)

    result = runner.invoke(app, ["classify", str(source), "-o", str(output), *case.args])

    _no_traceback(result)
    assert result.exit_code == case.exit_code, result.output
    assert source.read_bytes() == before  # the input is never touched
    if case.cells is None:
        assert "Erreur : " in result.output
        assert re.search(case.error, " ".join(result.output.split())), result.output
        assert not output.exists()
        return
    out = pd.read_csv(output, sep=";", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(out) == len(case.cells)  # every row, in order
    for position, expected in enumerate(case.cells):
        for column, cell in expected.items():
            assert out.loc[position, column] == _as_written(cell), (position, column)
    for position, pattern in case.motifs.items():
        assert out.loc[position, "verdict"] == "invalide" or "rattaché" in pattern
        assert re.search(pattern, out.loc[position, "motif"]), out.loc[position, "motif"]
    for position, verdict in case.verdicts.items():
        assert out.loc[position, "verdict"] == verdict, out.loc[position, "motif"]
    invalid = out[out["verdict"] == "invalide"]
    assert invalid["motif"].str.contains(r"ligne \d+ : ").all()
