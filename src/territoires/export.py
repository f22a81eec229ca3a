"""Write results to the files staff open: CSV, XLSX, GeoPackage, GeoJSON.

:func:`write_results` writes a classification: every row, invalid ones included (with
an empty geometry in spatial formats), and beside the file ``<name>.provenance.json``
records the rules and the reference data (files, vintages, checksums) that produced it,
so a result can always be audited. :func:`write_report` writes a coverage analysis
(:mod:`territoires.coverage`), one sheet or layer per table after a ``lisez-moi`` sheet
of parameters and sources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import openpyxl
import pandas as pd
import pyogrio
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from . import crs, french, outputs
from ._errors import OutputError
from .coverage import EXCLUSION_REASONS, LEVELS

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


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop the geometry and turn nullable booleans into ``oui``/``non``/empty."""
    out = pd.DataFrame(frame.drop(columns=frame.geometry.name, errors="ignore"))
    for column in out.columns:
        if isinstance(out[column].dtype, pd.BooleanDtype):
            out[column] = out[column].map({True: "oui", False: "non"}).astype("string")
    return out


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


def _no_formulas(sheet: Any, frame: pd.DataFrame) -> None:
    """Keep text that starts with ``=`` as text: openpyxl would write it as a formula.

    Place names and other columns come from the user's file; a name such as
    ``=HYPERLINK(…)`` must not become a live formula in the workbook staff open.
    """
    for col, name in enumerate(frame.columns, start=1):
        if isinstance(name, str) and name.startswith("="):
            sheet.cell(row=1, column=col).data_type = "s"
        if not _is_text(frame[name]):
            continue
        starts = frame[name].map(lambda v: isinstance(v, str) and v.startswith("="))
        for row in starts.to_numpy(dtype=bool).nonzero()[0]:
            sheet.cell(row=int(row) + 2, column=col).data_type = "s"


#: Text a spreadsheet would run as a formula when opening a CSV (OWASP: a cell starting
#: with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)…
_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
#: …except a genuine negative number (``-1.5``, ``-0,25``, ``-2e-3``), kept as is so that
#: it stays a number: ``-1+1+cmd|' /C calc'!A0`` is not one.
_NEGATIVE_NUMBER = re.compile(r"^-(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?$")


def _csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix with ``'`` the text cells a spreadsheet would execute (CSV injection)."""
    out = frame.copy()
    for column in out.columns:
        if _is_text(out[column]):
            out[column] = out[column].map(
                lambda v: (
                    f"'{v}"
                    if isinstance(v, str)
                    and _FORMULA_START.match(v)
                    and not _NEGATIVE_NUMBER.match(v)
                    else v
                )
            )
    return out


def provenance_path(path: Path) -> Path:
    """Path of the provenance file written beside ``path``."""
    return path.with_name(path.name + ".provenance.json")


def write_results(result: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write a classified GeoDataFrame by file extension, with its provenance beside it.

    Parameters
    ----------
    result : geopandas.GeoDataFrame
        Output of :func:`territoires.classify` (``attrs`` holds rules and sources).
    path : str or pathlib.Path
        ``.csv`` (semicolon separated, decimal comma, UTF-8 with BOM: opens as is in a
        French Excel; text that a spreadsheet would run as a formula, such as a name
        starting with ``=``, gets a leading ``'``), ``.xlsx`` (sheets ``resultats`` and
        ``regles``), ``.gpkg`` or ``.geojson`` (point geometry, empty for invalid rows).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    OutputError
        For an unknown extension; the message lists the accepted ones.
    """
    path = outputs.check_path(path, FORMATS)
    suffix = path.suffix.lower()
    with outputs.replacing(path, provenance_path(path)) as (target, provenance):
        if suffix == ".csv":
            _csv_safe(_plain(result)).to_csv(
                # CRLF ends lines (as Excel writes them), so that a cell holding a lone
                # carriage return is quoted instead of breaking its row in two
                target,
                sep=";",
                decimal=",",
                index=False,
                encoding="utf-8-sig",
                lineterminator="\r\n",
            )
        elif suffix == ".xlsx":
            _write_user_sheets(
                target, {"resultats": _plain(result), "regles": _attrs_table(result.attrs)}
            )
        else:
            driver = "GPKG" if suffix == ".gpkg" else "GeoJSON"
            _spatial(result).to_file(target, driver=driver, engine="pyogrio")
        provenance.write_text(
            json.dumps(result.attrs, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
        )
    return path


def _write_user_sheets(path: Path, sheets: Mapping[str, pd.DataFrame]) -> None:
    """Write tables holding the user's cells: no control characters, no live formulas.

    An interrupted write (Ctrl-C) is not saved: closing the writer would save a
    half-built workbook and replace the interruption with its own error.
    """
    writer = pd.ExcelWriter(path, engine="openpyxl")
    try:
        for name, table in sheets.items():
            table = _excel_text(table)
            table.to_excel(writer, sheet_name=name, index=False)
            _no_formulas(writer.sheets[name], table)
    except BaseException:
        writer.book.close()
        raise
    writer.close()


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
    rules = _attrs_table({key: report.attrs.get(key, {}) for key in ("regles", "sources")})
    called = pd.DataFrame(
        [("enveloppes", json.dumps(report.attrs["enveloppes"], ensure_ascii=False))],
        columns=["clé", "valeur"],
    )
    with outputs.replacing(path, provenance_path(path)) as (target, provenance):
        _write_user_sheets(
            target,
            {
                "bilan": envelopes,
                "regions": report.regions,
                "lieux": _plain(report.lieux),
                "regles": pd.concat([rules, called], ignore_index=True),
            },
        )
        provenance.write_text(
            json.dumps(report.attrs, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
        )
    return path


def _attrs_table(attrs: dict[str, Any]) -> pd.DataFrame:
    """Rules, verdict counts and sources as a two-column table."""
    rows = [
        (f"règle : {key}", ", ".join(map(str, value)) if isinstance(value, list) else value)
        for key, value in attrs.get("regles", {}).items()
    ]
    rows += [(f"verdict : {key}", value) for key, value in attrs.get("verdicts", {}).items()]
    for source in attrs.get("sources", []):
        rows.append((f"source : {source.get('jeu')}", json.dumps(source, ensure_ascii=False)))
    return pd.DataFrame(rows, columns=["clé", "valeur"])


# --- coverage report ---------------------------------------------------------------


def _readme(
    qpv_cov: pd.DataFrame, commune_cov: pd.DataFrame, sheets: Sequence[str]
) -> pd.DataFrame:
    """The "lisez-moi" table: parameters, places analysed and sources."""
    q, c = qpv_cov.attrs, commune_cov.attrs
    rules = c.get("regles", {})
    epsg = ", ".join(f"{t.label} EPSG:{t.epsg}" for t in crs.TERRITORIES)
    rows: list[tuple[str, Any]] = [
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
        ("QPV couvert si un lieu est à au plus (m)", _join([q.get("seuil_couverture_m")])),
        ("Règle « hors grands centres urbains »", rules.get("regle_urbaine_description")),
        (
            "Règle (nom, version)",
            f"{rules.get('regle_urbaine')} {rules.get('regle_urbaine_version')}",
        ),
        ("Communes où la règle est non applicable", c.get("communes_regle_non_applicable")),
        ("Distances de comptage autour des communes (m)", _join(c.get("distances_m"))),
        ("Commune couverte si un lieu est à au plus (m)", _join([c.get("seuil_couverture_m")])),
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
        The file written. Its first sheet, ``lisez-moi``, lists the parameters, the
        places analysed and excluded, and the sources.

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
        if sheet in tables or sheet == "lisez-moi":
            raise OutputError(f"nom de feuille en double : {sheet!r}")
        if len(sheet) > 31 or any(char in sheet for char in "[]:*?/\\"):
            raise OutputError(f"nom de feuille invalide pour un classeur : {sheet!r}")
        tables[sheet] = frame
    readme = _readme(qpv_cov, commune_cov, list(tables))
    with outputs.replacing(path) as (target,):
        if suffix == ".xlsx":
            sheets = {"lisez-moi": readme}
            for sheet, frame in tables.items():
                plain = (
                    frame.drop(columns=frame.geometry.name)
                    if isinstance(frame, gpd.GeoDataFrame)
                    else frame
                )
                sheets[sheet] = pd.DataFrame(plain)
            _write_xlsx(target, sheets)
        else:
            pyogrio.write_dataframe(readme, target, layer="lisez-moi")
            for layer, frame in tables.items():
                if isinstance(frame, gpd.GeoDataFrame):
                    frame.to_file(target, layer=layer, driver="GPKG")
                else:
                    pyogrio.write_dataframe(pd.DataFrame(frame), target, layer=layer)
    return path


def _write_xlsx(path: Path, sheets: Mapping[str, pd.DataFrame]) -> None:
    """Write tables as sheets, streaming rows (openpyxl write-only mode); NA as empty cells.

    As in :func:`write_results`, control characters are dropped and text starting with
    ``=`` (a place name from the user's file) stays text, never a live formula.
    """
    workbook = openpyxl.Workbook(write_only=True)
    for name, frame in sheets.items():
        worksheet = workbook.create_sheet(name)

        def text(value: Any, sheet: Any = worksheet) -> Any:
            if not (isinstance(value, str) and value.startswith("=")):
                return value
            cell = WriteOnlyCell(sheet, value)
            cell.data_type = "s"
            return cell

        frame = _excel_text(frame)
        worksheet.append([text(str(column)) for column in frame.columns])
        cells = frame.astype(object).where(frame.notna(), None)
        for row in cells.itertuples(index=False, name=None):
            worksheet.append([text(value) for value in row])
    workbook.save(path)
