"""Write results to the files staff open: CSV, XLSX, GeoPackage, GeoJSON.

:func:`write_results` writes a classification: every row, invalid ones included (with
an empty geometry in spatial formats), and beside the file ``<name>.provenance.json``
records the rules and the reference data (files, vintages, checksums) that produced it,
so a result can always be audited. :func:`write_report` writes a coverage analysis
(:mod:`territoires.coverage`), one sheet or layer per table after a sheet of parameters
and sources (« Synthèse » in a workbook, ``lisez-moi`` layer in a GeoPackage).

Every workbook is written for staff who open and forward it (:func:`_write_workbook`):
bold frozen header, autofilter, fitted widths, wrapped motifs, counts grouped by
thousands, shares as percentages, booleans as oui/non, distances to the metre, a
« verdict (libellé) » column; CSV files get the same readable values (:func:`readable`).
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from . import coverage, crs, french, loaders, outputs
from ._errors import OutputError
from .coverage import EXCLUSION_REASONS, LEVELS
from .nomenclatures import LABELS_BY_COLUMN
from .rules import ELIGIBLE, URBAN_RULES, VERDICTS

if TYPE_CHECKING:
    from .bilan import Bilan

#: Output formats of a classification (:func:`write_results`), by file extension.
FORMATS = {".csv": "CSV", ".xlsx": "Excel", ".gpkg": "GeoPackage", ".geojson": "GeoJSON"}
#: Format of a count toward the call's envelopes (:func:`write_bilan`).
BILAN_FORMATS = {".xlsx": "Excel"}
#: Formats of a coverage report (:func:`write_report`), which holds several tables.
REPORT_FORMATS = {
    ".xlsx": "Excel, une feuille par table",
    ".gpkg": "GeoPackage, une couche par table",
}


def _spatial(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Make columns writable by OGR: nullable booleans as ``oui``/``non``, strings as str."""
    out = frame.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if isinstance(dtype, pd.BooleanDtype):
            out[column] = out[column].map({True: "oui", False: "non"}).astype(object)
        elif isinstance(dtype, pd.StringDtype):
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


def _is_text(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.StringDtype) or values.dtype == object


def _excel_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop the control characters a worksheet cannot hold (openpyxl refuses them)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    out = frame.copy()
    for column in out.columns:
        if _is_text(out[column]):
            out[column] = out[column].map(
                lambda v: ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v
            )
    out.columns = [
        ILLEGAL_CHARACTERS_RE.sub("", c) if isinstance(c, str) else c for c in out.columns
    ]
    return out


#: Text a spreadsheet would run as a formula when opening a CSV (OWASP: a cell starting
#: with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)…
_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
#: …except a genuine negative number (``-1.5``, ``-0,25``, ``-2e-3``), kept as is so that
#: it stays a number: ``-1+1+cmd|' /C calc'!A0`` is not one.
_NEGATIVE_NUMBER = re.compile(r"^-(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?$")


def _csv_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The cells of text columns as a French spreadsheet should show them (:func:`_csv_cell`)."""
    out = frame.copy()
    for column in out.columns:
        if _is_text(out[column]):
            out[column] = out[column].map(_csv_cell)
    return out


def _csv_cell(value: Any) -> Any:
    """One cell of a text column, for a CSV.

    Text a spreadsheet would execute gets a leading ``'`` (CSV injection); a number
    among words (a workbook's column holding ``ABC`` and ``12345``) is written like the
    numbers of a numeric column, with a decimal comma, and a whole one without decimals
    (``12345``, not ``12345.0``); a date-time at midnight (a date-only cell of a
    workbook) is written as its date. Anything else is left to pandas.
    """
    if isinstance(value, str):
        if _FORMULA_START.match(value) and not _NEGATIVE_NUMBER.match(value):
            return f"'{value}"
        return value
    if isinstance(value, float | np.floating) and math.isfinite(value):
        text = repr(float(value))
        return (text[:-2] if text.endswith(".0") else text).replace(".", ",")
    if _is_date(value):
        return value.date().isoformat()
    return value


def _is_date(value: Any) -> bool:
    """Whether a cell is a date-time at midnight without time zone (a date-only cell)."""
    return (
        isinstance(value, datetime.datetime)
        and value.tzinfo is None
        and value.time() == datetime.time()
    )


def provenance_path(path: Path) -> Path:
    """Path of the provenance file written beside ``path``."""
    return path.with_name(path.name + ".provenance.json")


def write_provenance(path: Path, attrs: Mapping[str, Any]) -> Path:
    """Write the provenance of a result (rules, sources, verdicts…) as indented JSON."""
    path.write_text(json.dumps(attrs, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return path


#: Cells pandas formats at a time when it writes a CSV (its own default step, passed
#: explicitly): a date-time column is written date-only in a step whose values all fall
#: at midnight, so blocks made of whole steps write the bytes of the file written at once.
_CSV_STEP_CELLS = 100_000
#: Rows of a CSV formatted and written at a time (rounded down to whole steps): memory
#: holds the result and the text of one block, never the text of the whole file.
_CSV_BLOCK_ROWS = 60_000


def csv_blocks(result: pd.DataFrame, *, header: bool = True) -> Iterator[bytes]:
    """Classified places as the CSV staff open in a French spreadsheet, block by block.

    Semicolons, decimal commas, :func:`readable` values, text a spreadsheet would run as
    a formula neutralised, CRLF line ends (as Excel writes them, so that a cell holding a
    lone carriage return is quoted instead of breaking its row in two), UTF-8 with a
    byte order mark before the header. Numbers in a text column (a cell of a workbook
    holding a number among words) are written as in a numeric column, whole numbers
    without decimals. The blocks, joined, are the same bytes however many there are.

    Parameters
    ----------
    result : pandas.DataFrame
        Classified places (their geometry is left out: ``lon`` and ``lat`` give it).
    header : bool, default True
        Start with the byte order mark and the header line. Without it, the rows alone:
        the blocks of a large file (:func:`territoires.distributed.classify_file_in_partitions`)
        append to the first one's text.

    Yields
    ------
    bytes
        The text of a few tens of thousands of rows (the first block also when
        ``result`` has no row).
    """
    columns = len(readable(result.iloc[:0]).columns)
    step = max(_CSV_STEP_CELLS // max(columns, 1), 1)
    rows = max(_CSV_BLOCK_ROWS // step, 1) * step
    for start in range(0, max(len(result), 1), rows):
        first = header and start == 0
        text = _csv_cells(readable(result.iloc[start : start + rows])).to_csv(
            sep=";",
            decimal=",",
            index=False,
            header=first,
            lineterminator="\r\n",
            chunksize=step,
        )
        yield (("\ufeff" if first else "") + text).encode("utf-8")


def csv_text(result: pd.DataFrame, *, header: bool = True) -> bytes:
    """Classified places as one CSV text: the blocks of :func:`csv_blocks`, joined.

    Parameters
    ----------
    result : pandas.DataFrame
        Classified places.
    header : bool, default True
        Start with the byte order mark and the header line.

    Returns
    -------
    bytes
    """
    return b"".join(csv_blocks(result, header=header))


def write_results(result: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write a classified GeoDataFrame by file extension, with its provenance beside it.

    Parameters
    ----------
    result : geopandas.GeoDataFrame
        Output of :func:`territoires.classify` (``attrs`` holds rules and sources).
    path : str or pathlib.Path
        ``.csv`` (semicolon separated, decimal comma, UTF-8 with BOM: opens as is in a
        French Excel; text that a spreadsheet would run as a formula, such as a name
        starting with ``=``, gets a leading ``'``), ``.xlsx`` (a « Synthèse » sheet:
        places per verdict, per département and région (code and name), rules and
        sources in words;
        then ``resultats``, every row), ``.gpkg`` or ``.geojson`` (point geometry,
        empty for invalid rows). CSV and XLSX get :func:`readable` values.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    OutputError
        For an unknown extension (the message lists the accepted ones), or a workbook
        of more places than a sheet holds (:func:`check_rows`).
    """
    path = outputs.check_path(path, FORMATS)
    check_rows(path, len(result))
    suffix = path.suffix.lower()
    with outputs.replacing(path, provenance_path(path)) as (target, provenance):
        if suffix == ".csv":
            with target.open("wb") as file:
                file.writelines(csv_blocks(result))
        elif suffix == ".xlsx":
            sheets = {"Synthèse": _summary_blocks(result), "resultats": [(None, readable(result))]}
            _write_workbook(target, sheets)
        else:
            driver = "GPKG" if suffix == ".gpkg" else "GeoJSON"
            _spatial(result).to_file(target, driver=driver, engine="pyogrio")
        write_provenance(provenance, result.attrs)
    return path


def check_rows(path: str | Path, rows: int) -> None:
    """Refuse a classification of more places than its output file can show.

    A worksheet holds :data:`XLSX_ROWS` rows, header included: the rows past it would
    vanish when the workbook is opened. The command line calls this as soon as the
    places are read, before classifying them; :func:`write_results` calls it too.

    Parameters
    ----------
    path : str or pathlib.Path
        The output file (only ``.xlsx`` has a limit).
    rows : int
        Places to write.

    Raises
    ------
    OutputError
        For a workbook of more than ``XLSX_ROWS - 1`` places; the message names the
        formats without a limit.
    """
    if Path(path).suffix.lower() == ".xlsx" and rows >= XLSX_ROWS:
        raise OutputError(
            f"{french.number(rows)} lieux : une feuille de classeur ne tient que "
            f"{french.number(XLSX_ROWS - 1)} lignes sous l'en-tête (Excel, LibreOffice "
            "n'ouvriraient pas les autres) ; écrivez un .csv, un .gpkg ou, avec "
            "--partitions, un .parquet"
        )


def write_bilan(report: Bilan, path: str | Path) -> Path:
    """Write a bilan (see :func:`territoires.bilan.assess`) as a workbook.

    Parameters
    ----------
    report : territoires.bilan.Bilan
        The bilan.
    path : str or pathlib.Path
        ``.xlsx``: sheets ``bilan`` (one row per envelope: target, places, gap, rate,
        places to check, and the summary), ``regions`` (count and share of each
        envelope by région), ``lieux`` (every input row with its verdict, the envelopes
        it counts toward and its status) and ``regles`` (rules, envelopes, sources).
        The provenance is written beside it.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    OutputError
        For another extension.
    """
    path = outputs.check_path(path, BILAN_FORMATS)
    summary = pd.DataFrame({"code": ["", "synthèse"], "titre": ["", report.resume()]})
    envelopes = pd.concat([report.enveloppes, summary], ignore_index=True)
    words = pd.concat(
        [
            _rules_in_words(report.attrs.get("regles", {})),
            _sources_in_words(report.attrs).rename(columns={"source": "rubrique"}),
        ],
        ignore_index=True,
    ).rename(columns={"rubrique": "clé"})
    called = pd.DataFrame(
        [("enveloppes", json.dumps(report.attrs["enveloppes"], ensure_ascii=False))],
        columns=["clé", "valeur"],
    )
    with outputs.replacing(path, provenance_path(path)) as (target, provenance):
        _write_workbook(
            target,
            {
                "bilan": [(None, readable(envelopes))],
                "regions": [(None, readable(report.regions))],
                "lieux": [(None, readable(report.lieux))],
                "regles": [(None, pd.concat([words, called], ignore_index=True))],
            },
        )
        provenance.write_text(
            json.dumps(report.attrs, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
        )
    return path


# --- coverage report ---------------------------------------------------------------


def _readme(
    qpv_cov: pd.DataFrame, commune_cov: pd.DataFrame, sheets: Sequence[str]
) -> pd.DataFrame:
    """The "lisez-moi" table: parameters, places analysed and sources."""
    q, c = qpv_cov.attrs, commune_cov.attrs
    rules = c.get("regles", {})
    epsg = ", ".join(f"{t.label} EPSG:{t.epsg}" for t in crs.TERRITORIES)
    summary = coverage.summary({"qpv": qpv_cov, "communes": commune_cov})
    rows: list[tuple[str, Any]] = [
        *(("En bref", line) for line in summary.splitlines()),
        ("Contenu", f"feuilles {', '.join(sheets)} ; distances en mètres"),
        ("Mesure des distances", f"dans le système légal de chaque territoire ({epsg})"),
        ("Lieux analysés", q.get("nb_lieux_analyses")),
        *(
            (f"Lieux exclus : {EXCLUSION_REASONS.get(reason, reason)}", count)
            for reason, count in q.get("lieux_exclus", {}).items()
        ),
        ("Millésime QPV", q.get("millesime_qpv")),
        ("Couverture de la couche QPV", q.get("couverture_qpv")),
        ("Distances de comptage autour des QPV (m)", _join(q.get("distances_m"))),
        ("QPV couvert si un tiers-lieu est", _within(q.get("seuil_couverture_m"))),
        ("Règle « hors grands centres urbains »", rules.get("regle_urbaine_description")),
        ("Grand centre urbain si", _urban_codes(rules)),
        (
            "Règle (nom, version)",
            f"{rules.get('regle_urbaine')} {rules.get('regle_urbaine_version')}",
        ),
        ("Communes où la règle est non applicable", c.get("communes_regle_non_applicable")),
        ("Distances de comptage autour des communes (m)", _join(c.get("distances_m"))),
        ("Commune couverte si un tiers-lieu est", _within(c.get("seuil_couverture_m"))),
    ]
    for source in [*q.get("sources", []), *c.get("sources", [])]:
        rows.append(
            (
                f"Source : {source.get('jeu')}",
                f"{source.get('titre')} ; millésime {source.get('millesime')} ; "
                f"{source.get('editeur')} ; licence {source.get('licence')} ; "
                f"couverture {source.get('couverture')} ; fichier {source.get('fichier')} ; "
                f"sha256 {source.get('sha256')}",
            )
        )
    return pd.DataFrame(rows, columns=["rubrique", "valeur"]).astype({"valeur": "string"})


def _within(metres: float | None) -> str | None:
    """A coverage threshold in words (« à 1 km ou moins »); None if unknown."""
    return None if metres is None else french.within(metres)


def _join(values: Sequence[float | None] | None) -> str | None:
    """Distances of the report, French-style (``500 ; 1 000 ; 5 000``); None if unknown."""
    if values is None or None in values:
        return None
    return " ; ".join(french.number(value, None) for value in values)


def write_report(
    path: str | Path,
    qpv_cov: pd.DataFrame,
    commune_cov: pd.DataFrame,
    aggregates_by_level: Mapping[str, pd.DataFrame],
) -> Path:
    """Write the coverage results, one sheet (or layer) per table.

    Parameters
    ----------
    path : str or pathlib.Path
        ``.xlsx`` (sheets without geometry) or ``.gpkg`` (layers, with geometry when the
        table has one). An existing file is replaced.
    qpv_cov, commune_cov : pandas.DataFrame
        Outputs of :func:`territoires.coverage.qpv_coverage` and
        :func:`territoires.coverage.commune_coverage`.
    aggregates_by_level : mapping of str to pandas.DataFrame
        Outputs of :func:`territoires.coverage.aggregate`, by level; ``"dep"`` and
        ``"reg"`` are written as ``departements`` and ``regions``, other keys as given.

    Returns
    -------
    pathlib.Path
        The file written. Its first sheet (« Synthèse » in a workbook, layer
        ``lisez-moi`` in a GeoPackage) sums the coverage up in words, then lists the
        parameters, the places analysed and excluded, and the sources. QPV and communes
        are sorted by département, then by name.

    Raises
    ------
    OutputError
        For another file format, or an invalid or duplicate sheet name.
    """
    path = outputs.check_path(path, REPORT_FORMATS)
    suffix = path.suffix.lower()
    tables = {"qpv": qpv_cov, "communes": commune_cov}
    for level, frame in aggregates_by_level.items():
        sheet = LEVELS.get(level, level)
        if sheet in tables or sheet in ("lisez-moi", "Synthèse"):
            raise OutputError(f"nom de feuille en double : {sheet!r}")
        if len(sheet) > 31 or any(char in sheet for char in "[]:*?/\\"):
            raise OutputError(f"nom de feuille invalide pour un classeur : {sheet!r}")
        tables[sheet] = frame
    tables["qpv"] = _by_place(qpv_cov, "nom_qpv")
    tables["communes"] = _by_place(commune_cov, "nom")
    readme = _readme(qpv_cov, commune_cov, list(tables))
    with outputs.replacing(path) as (target,):
        if suffix == ".xlsx":
            sheets: dict[str, Sheet] = {"Synthèse": [(None, readme)]}
            for sheet, frame in tables.items():
                sheets[sheet] = [(None, readable(frame))]
            _write_workbook(target, sheets)
        else:
            import pyogrio  # imported here: `territoires check` starts faster

            pyogrio.write_dataframe(readme, target, layer="lisez-moi")
            for layer, frame in tables.items():
                if isinstance(frame, gpd.GeoDataFrame):
                    frame.to_file(target, layer=layer, driver="GPKG")
                else:
                    pyogrio.write_dataframe(pd.DataFrame(frame), target, layer=layer)
    return path


def _by_place(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows sorted by département, then by name, as staff look them up."""
    keys = [column for column in ("dep", name) if column in frame.columns]
    return frame.sort_values(keys, kind="stable", na_position="last") if keys else frame


# --- workbooks ---------------------------------------------------------------------

#: Rows of a worksheet in Excel and LibreOffice (header included).
XLSX_ROWS: int = 1_048_576
#: A sheet: blocks of rows, each an optional bold title and a table with its header.
Sheet = Sequence[tuple[str | None, pd.DataFrame]]
#: Number formats of the workbooks (French Excel shows ``1 234``, ``45,3 %``).
_INTEGER, _PERCENT, _DEGREES = "#,##0", "0.0%", "0.000000"
#: Number formats of a date, and of a date-time (openpyxl's own, given to every date-time).
_DATE, _DATE_TIME = "yyyy-mm-dd", "yyyy-mm-dd h:mm:ss"
#: Columns of counts or people, written with thousands grouped.
_COUNT = re.compile(r"^(nb_|population|lieux$|cible$|ecart$|dont_)")
#: Columns of shares (0–1), written as percentages.
_SHARE = re.compile(r"^(part_|taux$|part des)")
#: Columns of long text, wrapped at a fixed width.
_LONG_TEXT = {"motif", "valeur", "titre", "description", "reference", "probleme"}
_MIN_WIDTH, _MAX_WIDTH, _TEXT_WIDTH = 6, 45, 70
#: Height of one line of text (points), and most lines a row is made tall for.
_LINE_HEIGHT, _MAX_LINES = 15, 12


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as staff read it, in CSV and XLSX alike.

    Booleans become ``oui``/``non`` (empty when unknown), distances in metres
    (``*_m`` columns) are rounded to the metre, and a ``verdict (libellé)`` column
    follows ``verdict``, as a ``densite7 (libellé)`` column follows ``densite7`` (and so
    for every column of :data:`territoires.nomenclatures.LABELS_BY_COLUMN`: a code is
    never shown without its name). The geometry is dropped. The input is not modified.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table written by this module (classified places, coverage tables…).

    Returns
    -------
    pandas.DataFrame
        A new table, same rows and order.
    """
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    out = pd.DataFrame(frame.drop(columns=geometry) if geometry else frame).copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_bool_dtype(values.dtype):
            out[column] = values.map({True: "oui", False: "non"}).astype("string")
        elif str(column).endswith("_m") and pd.api.types.is_float_dtype(values.dtype):
            out[column] = french.whole_metres(values)
    labelled = {column: VERDICTS for column in _verdict_columns(out).values()}
    labelled.update({c: names for c, names in LABELS_BY_COLUMN.items() if c in out.columns})
    for column, names in labelled.items():
        label = f"{column} (libellé)"
        if label not in out.columns:
            position = out.columns.get_loc(column) + 1
            out.insert(position, label, out[column].map(names).astype("string"))
    return out


def _verdict_columns(result: pd.DataFrame) -> dict[int | None, str]:
    """The verdict column of each QPV geography: ``{None: "verdict"}``, or, side by side
    (``territoires.eligibility.side_by_side``), ``{2015: "verdict_2015", 2024: …}``."""
    if "verdict" in result.columns:
        return {None: "verdict"}
    found = (re.fullmatch(r"verdict_(\d{4})", str(column)) for column in result.columns)
    return {int(match[1]): match[0] for match in found if match}


def _number_format(name: str, values: pd.Series) -> str | None:
    """Excel number format of a column, from its name and type (None: as is).

    A column of date-times all at midnight (date-only cells of the user's workbook) is
    shown as dates, as in a CSV.
    """
    if isinstance(values.dtype, np.dtypes.DateTime64DType):
        present = values.dropna()
        return _DATE if len(present) and (present == present.dt.normalize()).all() else _DATE_TIME
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values):
        return None
    if _SHARE.match(name):
        return _PERCENT
    if name in ("lon", "lat"):
        return _DEGREES
    if _COUNT.match(name) or name.endswith("_m"):
        return _INTEGER
    return None


def _longest(values: pd.Series, number_format: str | None = None) -> int:
    """Characters of the longest value of a column (the first 2,000 values)."""
    sample = values.dropna().head(2000)
    if not len(sample):
        return 0
    if number_format == _INTEGER:
        return len(f"{float(sample.abs().max()):,.0f}") + 1
    return int(sample.astype(str).str.len().max())


def _width(name: str, values: pd.Series, number_format: str | None) -> float:
    """Column width: its header's longest word or its longest value, within bounds."""
    header = max((len(word) for word in name.split()), default=0) + 2
    longest = _longest(values, number_format) + 2
    return float(min(max(_MIN_WIDTH, header, longest), _MAX_WIDTH))


@cache
def _styles() -> dict[str, Any]:
    """Fonts, fill and alignments of the workbooks.

    openpyxl is imported here, on the first workbook written, and not with the module:
    a ``territoires check`` never pays for it.
    """
    from openpyxl.styles import Alignment, Font, PatternFill

    return {
        "header_font": Font(bold=True, color="FFFFFF"),
        "header_fill": PatternFill("solid", fgColor="305496"),
        "title_font": Font(bold=True, size=12),
        "wrap": Alignment(wrap_text=True, vertical="top"),
        "top": Alignment(vertical="top"),
    }


def _cell(sheet: Any, value: Any, number_format: str | None, wrap: bool) -> Any:
    """A write-only cell: text starting with ``=`` stays text, never a live formula; a
    date-time at midnight in a column of mixed cells is shown as a date."""
    if value is None and number_format is None:
        return None
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value)
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"
    if number_format is not None and value is not None:
        cell.number_format = number_format
    elif _is_date(value):
        cell.number_format = _DATE
    cell.alignment = _styles()["wrap" if wrap else "top"]
    return cell


def _write_workbook(path: Path, sheets: Mapping[str, Sheet]) -> None:
    """Write the sheets of a workbook that staff open and forward.

    Every sheet has a bold header on a coloured band, frozen under the header, an
    autofilter over its first table, widths fitted to the content, long text (motifs,
    descriptions) wrapped; counts are grouped by thousands, shares shown as
    percentages. Control characters are dropped and text starting with ``=`` (a place
    name from the user's file) stays text. Rows are streamed (openpyxl write-only mode).
    An interrupted write (Ctrl-C) is not saved.
    """
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    try:
        _fill_workbook(workbook, sheets)
    except BaseException:
        # interrupted (Ctrl-C) or failed: close the streamed sheets without saving
        for sheet in workbook.worksheets:
            with contextlib.suppress(Exception):
                sheet.close()
        raise
    workbook.save(path)


def _fill_workbook(workbook: Any, sheets: Mapping[str, Sheet]) -> None:
    """Stream the sheets into a write-only workbook (see :func:`_write_workbook`)."""
    from openpyxl.cell import WriteOnlyCell

    for name, blocks in sheets.items():
        sheet = workbook.create_sheet(name)
        tables = [(title, _excel_text(table)) for title, table in blocks]
        widths = _layout(sheet, tables)
        rows = itertools.count(1)  # line of the next row appended
        for position, (title, table) in enumerate(tables):
            if position:
                sheet.append([])
                next(rows)
            if title is not None:
                cell = WriteOnlyCell(sheet, title)
                cell.font = _styles()["title_font"]
                sheet.append([cell])
                next(rows)
            _append_table(sheet, table, widths, rows)


def _fit_height(sheet: Any, line: int, texts: list[Any], widths: list[float]) -> None:
    """Give a row the height of its tallest wrapped text (spreadsheets do not always)."""
    lines = max(
        (
            math.ceil(len(text) / max(width - 1, 1))
            for text, width in zip(texts, widths, strict=False)
            if isinstance(text, str)
        ),
        default=1,
    )
    if lines > 1:
        sheet.row_dimensions[line].height = _LINE_HEIGHT * min(lines, _MAX_LINES)


def _layout(sheet: Any, tables: list[tuple[str | None, pd.DataFrame]]) -> list[float]:
    """Set widths, frozen header and autofilter before any row is streamed.

    Returns the width of each column, shared by the tables of the sheet.
    """
    from openpyxl.utils import get_column_letter

    widths: list[float] = []
    for _, table in tables:
        for index, column in enumerate(table.columns):
            name = str(column)
            width = _width(name, table[column], _number_format(name, table[column]))
            width = _TEXT_WIDTH if name in _LONG_TEXT else width
            if index < len(widths):
                widths[index] = max(widths[index], width)
            else:
                widths.append(width)
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    title, first = tables[0]
    header_row = 2 if title is not None else 1
    sheet.freeze_panes = f"A{header_row + 1}"
    # printed in landscape, as wide as the page, the header repeated on every page
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = f"{header_row}:{header_row}"
    if len(first.columns):
        last = get_column_letter(len(first.columns))
        sheet.auto_filter.ref = f"A{header_row}:{last}{header_row + len(first)}"
    return widths


def _append_table(
    sheet: Any, table: pd.DataFrame, widths: list[float], rows: Iterator[int]
) -> None:
    """Append a header and the rows of one table; text longer than its column wraps,
    and its row is made tall enough to show it."""
    from openpyxl.cell import WriteOnlyCell

    styles = _styles()
    header = []
    for column in table.columns:
        cell = WriteOnlyCell(sheet, str(column))
        if str(column).startswith("="):
            cell.data_type = "s"
        cell.font, cell.fill = styles["header_font"], styles["header_fill"]
        cell.alignment = styles["wrap"]
        header.append(cell)
    _fit_height(sheet, next(rows), [str(column) for column in table.columns], widths)
    sheet.append(header)
    formats = [_number_format(str(column), table[column]) for column in table.columns]
    wraps = [
        str(column) in _LONG_TEXT or (number_format is None and _longest(table[column]) + 2 > width)
        for column, number_format, width in zip(table.columns, formats, widths, strict=False)
    ]
    cells = table.astype(object).where(table.notna(), None)
    wrapped = [width if wrap else math.inf for wrap, width in zip(wraps, widths, strict=False)]
    for row in cells.itertuples(index=False, name=None):
        _fit_height(sheet, next(rows), list(row), wrapped)
        sheet.append(
            [
                _cell(sheet, value, number_format, wrap)
                for value, number_format, wrap in zip(row, formats, wraps, strict=True)
            ]
        )


def _summary_blocks(result: pd.DataFrame) -> Sheet:
    """The « Synthèse » of classified places: counts, then rules and sources in words.

    Places classified under several QPV geographies side by side get the counts and the
    rules of each geography, one after the other.
    """
    levels = [
        (level, label)
        for level, label in (("dep", "département"), ("reg", "région"))
        if level in result.columns
    ]
    names = {level: loaders.admin_names(LEVELS[level]) for level, _ in levels}  # read once
    blocks: list[tuple[str | None, pd.DataFrame]] = []
    for vintage, column in _verdict_columns(result).items():
        within = "" if vintage is None else f", géographie prioritaire {vintage}"
        blocks.append((f"Lieux par verdict{within}" if within else None, _counts(result[column])))
        for level, label in levels:
            pivot = _pivot(result, level, label, names[level], column)
            blocks.append((f"Lieux par {label} et par verdict{within}", pivot))
        rules = result.attrs.get("regles", {})
        rules = rules if vintage is None else rules.get(str(vintage), {})
        blocks.append((f"Règles appliquées{within}", _rules_in_words(rules)))
    blocks.append(("Sources des données de référence", _sources_in_words(result.attrs)))
    return blocks


def _counts(verdicts: pd.Series) -> pd.DataFrame:
    """Places and share of places per verdict, then the total."""
    counts = verdicts.value_counts()
    total = len(verdicts)
    by_verdict = pd.DataFrame(
        {
            "verdict": list(VERDICTS.values()),
            "code": list(VERDICTS),
            "lieux": [int(counts.get(code, 0)) for code in VERDICTS],
        }
    )
    by_verdict["part des lieux"] = by_verdict["lieux"] / total if total else 0.0
    by_verdict.loc[len(by_verdict)] = ["Total", "", total, 1.0 if total else 0.0]
    eligible = int(verdicts.isin(ELIGIBLE).sum())
    by_verdict.loc[len(by_verdict)] = [
        "dont éligibles (QPV, proximité immédiate, hors grands centres urbains)",
        "",
        eligible,
        eligible / total if total else 0.0,
    ]
    return by_verdict


def _pivot(
    result: pd.DataFrame, column: str, label: str, names: Mapping[str, str], verdict: str
) -> pd.DataFrame:
    """Places per département (or région) and verdict; places without one as « aucun ».

    The name follows the code when ``names`` has it (empty when the outlines are absent).
    """
    keys = result[column].astype("string").fillna("aucun")
    table = pd.crosstab(keys, result[verdict]).reindex(columns=list(VERDICTS), fill_value=0)
    table = table.loc[:, table.sum() > 0].rename(columns=VERDICTS)
    table.insert(0, "lieux", table.sum(axis=1))
    if names:
        table.insert(0, "nom", [names.get(code, "") for code in table.index])
    table.index.name = label
    return table.reset_index()


def _rules_in_words(rules: Mapping[str, Any]) -> pd.DataFrame:
    """A rule set (``attrs["regles"]`` of a result) as labelled sentences."""
    rows: list[tuple[str, Any]] = [
        ("Jeu de règles", f"{rules.get('nom')} (version {rules.get('version')})"),
        ("Intitulé", rules.get("titre")),
        ("Texte de référence", rules.get("reference")),
        ("Géographie prioritaire", f"QPV {rules.get('millesime_qpv')}"),
    ]
    if rules.get("distance_proximite_m") is not None:
        rows.append(
            (
                "Proximité immédiate d'un QPV",
                f"{french.within(rules['distance_proximite_m'])} de sa limite "
                f"({rules.get('distance_proximite_base')})",
            )
        )
    if rules.get("distance_npnru_m"):
        rows.append(
            (
                "QPV en renouvellement urbain (NPNRU)",
                f"{rules.get('qpv_npnru')} QPV : {french.within(rules['distance_npnru_m'])}",
            )
        )
    rows += [
        ("Hors grands centres urbains", rules.get("regle_urbaine_description")),
        ("Grand centre urbain si", _urban_codes(rules)),
        (
            "Lecture de la règle",
            f"{rules.get('regle_urbaine_lecture')} (règle {rules.get('regle_urbaine')}, "
            f"version {rules.get('regle_urbaine_version')})",
        ),
    ]
    return pd.DataFrame(
        [(key, value) for key, value in rows if value is not None], columns=["rubrique", "valeur"]
    )


def _urban_codes(rules: Mapping[str, Any]) -> str | None:
    """The codes the urban rule of ``attrs["regles"]`` reads, with their names (None if
    the rule is not one of :data:`territoires.rules.URBAN_RULES`)."""
    rule = URBAN_RULES.get(rules.get("regle_urbaine", ""))
    return rule.codes_in_words() if rule else None


def _sources_in_words(attrs: Mapping[str, Any]) -> pd.DataFrame:
    """The reference files of a result, one sentence each."""
    rows = [
        (
            source.get("titre") or source.get("jeu"),
            f"{source.get('editeur')}, millésime {source.get('millesime')} ; licence "
            f"{source.get('licence')} ; couverture : {source.get('couverture')} ; "
            f"jeu {source.get('jeu')}, empreinte sha256 {source.get('sha256')}",
        )
        for source in attrs.get("sources", [])
    ]
    return pd.DataFrame(rows, columns=["source", "valeur"])
