"""Read and validate the places to classify.

:func:`read_places` turns a CSV, XLSX, GeoJSON or GeoPackage file, a DataFrame or a
GeoDataFrame into one GeoDataFrame that the eligibility engine can classify. The contract:

* exactly the input rows, in input order, with the input index (a ``RangeIndex`` for a
  file), every original column and cell left as read (a CSV is read as text); the input
  object is never modified;
* seven columns are added (:data:`ADDED_COLUMNS`): ``lon`` and ``lat`` (float WGS84
  degrees), ``probleme`` (pandas ``string`` dtype: ``<NA>`` for a usable row, else a
  French message naming the line and what was expected), ``territoire``
  (:func:`territoires.crs.locate` name, ``""`` for an unusable row), ``precision_m``
  (float metres: how far the true place may lie from the point, read from an input
  ``precision_m`` column or given by ``precision=``; NaN for exact coordinates or
  unknown), ``commune_donnee`` (``string``: current INSEE code of the commune when the
  row is located only by its commune, else ``<NA>``) and ``geometry`` (points, the
  active geometry, EPSG:4326). An input column bearing one of these names keeps its
  cells under the name with the suffix :data:`INPUT_SUFFIX` (``lon`` → ``lon_entree``:
  ``43,5750``, ``abc`` or ``1e400`` as written), listed in ``attrs["colonnes_entree"]``;
  only the geometry column of a layer, renamed ``geometry``, is replaced by the points;
* coordinates come from two columns (longitude and latitude, or x and y with a CRS), a
  layer's points, or one column holding « latitude, longitude » as a web map copies
  them (``coordonnées GPS``: ``43.5750, 1.4020`` or ``43,5750 ; 1,4020``), read in
  that order and never guessed otherwise;
* a row without coordinates but with a commune (an INSEE code column, or a commune name
  with a département or a postcode, see :mod:`territoires.communes`) is located by its
  commune: ``commune_donnee`` is set, ``territoire`` is the commune's, and it has no
  point. A commune that cannot be found makes the row unusable, naming the field;
* ``lon``, ``lat``, ``territoire`` and the geometry are filled for usable rows only: an
  unusable row has NaN, ``""`` and ``None``, and its ``probleme`` says why. Nothing is
  silently corrected: swapped coordinates, points outside France, coordinates in the
  wrong CRS, ragged CSV lines and duplicated rows are reported, never fixed; wrong
  coordinates are never replaced by the commune of the row;
* messages start with ``ligne N : ``, the line of the file for CSV and XLSX (the header
  is line 1 unless a ``sep=;`` line or a title precedes it; a record whose quoted cell
  spans several lines is numbered by its first line), the 1-based position for tables
  and layers; a later row identical to an earlier one on every input column
  (coordinates compared as numbers) is a ``doublon``;
* a CSV line with more or fewer fields than the header is unusable (``ligne N : 4
  champs au lieu de 3 …``), its cells kept (those beyond the header in an added column
  ``champs_en_trop``); the other rows are read normally; only empty cells left by a
  separator ending every line are not counted;
* an input that cannot be used at all (missing file, unknown format, no row, neither
  coordinate, address nor commune columns, two candidate coordinate columns, unknown
  CRS, coordinates whose CRS is not known: a layer without CRS, ``x``/``y`` columns
  without ``crs``, since the CRS is the file's and no row could be placed) raises
  :class:`InputError`; so does a workbook or GeoPackage whose first sheet or layer has
  no usable row while others exist (the message lists them); when it has, a warning
  names the sheets or layers left unread.

Everything is vectorised: messages are built for the flagged rows only.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import warnings
import zipfile
from collections.abc import Callable, Hashable, Iterable, Sequence, Set
from dataclasses import dataclass
from numbers import Real
from os import PathLike
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from . import _csv, communes, geocode, loaders
from . import crs as _crs
from ._arrow import scattered
from ._errors import ColumnError, DataNotFoundError, InputError

#: Name of the column giving the precision of each point, in metres.
PRECISION_COLUMN = "precision_m"
#: Columns added by :func:`read_places`, in order.
ADDED_COLUMNS = (
    "lon",
    "lat",
    "probleme",
    "territoire",
    PRECISION_COLUMN,
    "commune_donnee",
    "geometry",
)
#: Suffix given to an input column named like an added one: the user's ``lon`` column
#: (the cells as written, ``43,5750`` or ``abc``) comes out as ``lon_entree`` beside the
#: parsed ``lon``; nothing is dropped or overwritten.
INPUT_SUFFIX = "_entree"

#: Accepted names of coordinate columns, compared without case, accents or punctuation;
#: ``lat_lon`` names one column holding latitude then longitude (« 43.5750, 1.4020 », see
#: :func:`read_places`).
COORDINATE_NAMES: dict[str, tuple[str, ...]] = {
    "lon": ("lon", "lng", "long", "longitude", "x_wgs84", "lon_wgs84", "longitude_wgs84"),
    "lat": ("lat", "latitude", "y_wgs84", "lat_wgs84", "latitude_wgs84"),
    "x": ("x",),
    "y": ("y",),
    "lat_lon": (
        "coordonnees",
        "coordonnees_gps",
        "coordonnees_gps_lat_lon",
        "coordonnees_geographiques",
        "coord_gps",
        "position_gps",
        "gps",
        "latlon",
        "lat_lon",
        "latlong",
        "lat_long",
        "latlng",
        "lat_lng",
        "latitude_longitude",
    ),
}

_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_XLSX_SUFFIXES = (".xlsx", ".xlsm")
_LAYER_SUFFIXES = (".geojson", ".json", ".gpkg")
_WGS84 = CRS.from_user_input(_crs.GEOGRAPHIC)
#: How to give the CRS of coordinates that declare none, closing the messages that say so.
_CRS_HOW = (
    "(--crs 2154 pour du Lambert-93, --crs 4326 pour des degrés, en ligne de commande ; "
    "input_crs=2154 en Python)"
)

Source = str | PathLike[str] | pd.DataFrame


@dataclass(frozen=True)
class _Coordinates:
    """Coordinates read from the input, before any check on their values.

    Attributes
    ----------
    x, y : numpy.ndarray
        Floats in the source CRS, NaN where no number could be read.
    problems : numpy.ndarray
        Object array: message without line number, or None when the values were read.
    source_crs : pyproj.CRS
        CRS of ``x``/``y`` (WGS84 when no row gives coordinates).
    columns : dict
        Output column → input column it is read from: ``lon`` and ``lat`` for a table,
        ``geometry`` for a layer; empty when the table has no coordinate columns.
    absent : numpy.ndarray of bool
        Rows that give no coordinates at all (both cells empty, or no geometry): they
        may be located by their address.
    """

    x: np.ndarray
    y: np.ndarray
    problems: np.ndarray
    source_crs: CRS
    columns: dict[str, Hashable]
    absent: np.ndarray


@dataclass(frozen=True)
class _Table:
    """What was read from the source, before any check on coordinates.

    Attributes
    ----------
    frame : pandas.DataFrame
        The rows, every cell as read.
    lines : numpy.ndarray
        Line of each row in the file (a record spanning several lines by a quoted line
        break counts from its first line), or its 1-based position for a table.
    problems : numpy.ndarray or None
        Object array of reading problems (a ragged CSV line), None for a row read whole.
    others : tuple of str
        The other sheets (XLSX) or layers (GeoPackage) of the file, when none was named.
    part : str
        ``feuille`` or ``couche``: what ``others`` lists, for messages.
    """

    frame: pd.DataFrame
    lines: np.ndarray
    problems: np.ndarray | None = None
    others: tuple[str, ...] = ()
    part: str = ""


def read_places(
    source: Source,
    *,
    lon: str | None = None,
    lat: str | None = None,
    crs: str | int | None = None,
    sheet: str | int | None = None,
    geometry: bool = True,
    min_score: float | None = None,
    offline: bool | None = None,
    precision: float | None = None,
    data_dir: Path | None = None,
) -> gpd.GeoDataFrame:
    """Read places and check their coordinates, row by row; geocode their addresses.

    Parameters
    ----------
    source : str, path-like, pandas.DataFrame or geopandas.GeoDataFrame
        A CSV (``,``, ``;`` or tab separated, UTF-8, Windows-1252 or UTF-16, any line
        endings, Excel's ``sep=;`` first line understood, decimal commas accepted),
        XLSX, GeoJSON or GeoPackage file, or a table. A GeoDataFrame (and a GeoJSON or
        GeoPackage file) is located by its point geometry and its CRS.
    lon, lat : str, optional
        Coordinate columns of a table; detected when omitted, without case or accents,
        among :data:`COORDINATE_NAMES` (``x``/``y`` require ``crs``). Two candidate
        columns (e.g. two ``longitude`` columns, read ``longitude`` and
        ``longitude.1``) are an error asking for ``lon=``. Without a longitude and a
        latitude column, one column named as ``COORDINATE_NAMES["lat_lon"]``
        (« coordonnées GPS », ``gps``, ``latlon``…), or named by both ``lon=`` and
        ``lat=``, holds each point as a web map or a GPS copies it: **latitude first**,
        then longitude, in decimal degrees WGS84, separated by a comma (``43.5750,
        1.4020``, decimal points) or a semicolon (``43,5750 ; 1,4020``, decimal points
        or commas); any other cell (``1.4020 43.5750``, ``43,5750, 1,4020``, text) makes
        its row unusable, the message naming the column and the expected form.
    crs : str or int, optional
        CRS of the coordinate columns (``2154``, ``"EPSG:2154"``); WGS84 when omitted for
        longitude/latitude columns; required for ``x``/``y`` columns unless all their
        cells are empty (the rows are then located by their address or commune). For a
        layer, only used when the layer declares none, and then required.
    sheet : str or int, optional
        Sheet of an XLSX workbook or layer of a GeoPackage. When omitted, the first one,
        with a warning naming the others; an error listing them when it has no usable
        row. The header of a sheet, as of a CSV, is the first of its 20 first rows
        (lines) naming a coordinate, address or commune column (rows above it, a title,
        are reported by a warning).
    geometry : bool, default True
        Build the point geometries; ``False`` leaves the geometry empty for a caller
        that builds them itself from ``lon``/``lat`` (the eligibility engine does, chunk
        by chunk, in parallel with its spatial queries).
    min_score : float, optional
        Lowest geocoding score for an address to be placed (see
        :func:`territoires.geocode.geocode`).
    offline : bool, optional
        Geocode from the cache only; defaults to :data:`territoires.settings.offline`.
    precision : float, optional
        Precision in metres of the points given with coordinates whose ``precision_m``
        cell is empty (or of all of them when there is no such column); NaN (exact) when
        omitted. A geocoded point has the precision of its result type
        (:data:`territoires.geocode.PRECISION_M`).
    data_dir : pathlib.Path, optional
        Mirror folder of the table of communes, read only when rows are located by their
        commune; defaults to :data:`territoires.settings.data_dir`.

    Returns
    -------
    geopandas.GeoDataFrame
        The input rows and columns plus ``lon``, ``lat``, ``probleme``, ``territoire``
        and a point geometry, in EPSG:4326 (see the module docstring); with addresses,
        the :data:`GEOCODING_COLUMNS` too and ``attrs["geocodage"]``.

    Raises
    ------
    InputError
        When ``source`` is neither a path nor a table (a list, a dict), or when no row
        can be used: missing or unreadable file, no row, neither coordinate,
        address nor commune columns, ambiguous columns, unknown CRS, coordinates without
        a CRS (``x``/``y`` columns without ``crs``, a layer without CRS): the message
        names the columns and the option to give (``--crs 2154``, ``input_crs=2154``).
    """
    if precision is not None and not (
        isinstance(precision, Real)
        and not isinstance(precision, bool)
        and np.isfinite(precision)
        and precision >= 0
    ):
        raise InputError(
            f"précision {precision!r} ({type(precision).__name__}) : attendu un nombre de "
            "mètres ≥ 0, ex. precision=30"
        )
    if not isinstance(source, str | PathLike | pd.DataFrame):
        raise InputError(
            f"lieux de type {type(source).__name__} non pris en charge : attendu le chemin "
            "d'un fichier (CSV, XLSX, GeoJSON, GeoPackage), un DataFrame pandas ou un "
            "GeoDataFrame geopandas, ou un DataFrame dask (classify) ; pour quelques points, "
            "pd.DataFrame({'lon': [1.402], 'lat': [43.575]}) ou check(1.402, 43.575)"
        )
    wanted = {communes.simplify(name) for name in (lon, lat) if name is not None}
    table = _read(source, sheet, wanted)
    frame = table.frame
    located = None
    commune_columns = communes.find_columns(frame.columns)
    if not communes.designates(commune_columns):
        commune_columns = {}
    try:
        address = geocode.address_columns(frame.columns)
        if isinstance(frame, gpd.GeoDataFrame) and frame.active_geometry_name is not None:
            coordinates = _from_geometry(frame, lon, lat, crs)
        else:
            coordinates = _from_columns(
                frame, lon, lat, crs, bool(address) or bool(commune_columns)
            )
        if address:
            coordinates, located = _geocode_absent(frame, coordinates, address, min_score, offline)
        lon_values, lat_values, problems, territoire, commune = _validate(
            frame,
            coordinates,
            table.lines,
            table.problems,
            commune_columns,
            data_dir,
            None if located is None else located["commune_donnee"],
        )
    except InputError as error:
        if table.others:
            raise type(error)(f"{error} ; {_others(source, table)}") from error
        raise
    if table.others:
        if pd.notna(problems).all():
            raise InputError(
                f"aucune ligne utilisable dans la première {table.part} de {source} "
                f"(ex. {problems[0]}) ; {_others(source, table)}"
            )
        warnings.warn(
            f"{source} : seule la première {table.part} est lue ; {_others(source, table)}",
            stacklevel=2,
        )
    precision_m, wrong = _precision(frame, problems, table.lines, precision)
    if located is not None:
        geocoded = located[PRECISION_COLUMN].notna().to_numpy()
        precision_m[geocoded] = located[PRECISION_COLUMN].to_numpy(dtype=float)[geocoded]
    lon_values[wrong], lat_values[wrong], territoire[wrong] = np.nan, np.nan, -1
    commune[wrong] = pd.NA
    precision_m[np.isnan(lon_values)] = np.nan
    return _assemble(
        frame,
        coordinates,
        {"lon": lon_values, "lat": lat_values, PRECISION_COLUMN: precision_m},
        problems,
        territoire,
        commune,
        geometry,
        table.lines,
        located,
    )


#: Columns added by :func:`read_places` to a table with addresses (see
#: :func:`territoires.geocode.geocode`); empty for the rows that were not geocoded. The
#: precision of a geocoded point goes to ``precision_m``; a result of type
#: ``municipality`` locates the row by its commune (``commune_donnee``).
#: Name under which the commune of a geocoding result is resolved (never an output column).
_GEOCODED_CODE = "code_insee_geocode"

GEOCODING_COLUMNS = (
    "geocodage_label",
    "geocodage_score",
    "geocodage_type",
    "geocodage_citycode",
)


def _geocode_absent(
    frame: pd.DataFrame,
    coordinates: _Coordinates,
    address: dict[str, Hashable],
    min_score: float | None,
    offline: bool | None,
) -> tuple[_Coordinates, pd.DataFrame]:
    """Geocode the rows that give no coordinates but an address.

    Coordinates given by the user are never replaced, even when they are wrong. A
    geocoded row gets the point found (in the source CRS, so that it is checked like
    the others) or, when it cannot be placed, the French reason. Returns the updated
    coordinates and the :data:`GEOCODING_COLUMNS` of every row (empty when not
    geocoded), with the provenance in ``attrs["geocodage"]``.
    """
    queries = geocode.address_queries(frame, address)
    todo = coordinates.absent & queries.notna().to_numpy()
    result = geocode.geocode(queries[todo], min_score=min_score, offline=offline)
    x, y, problems = coordinates.x.copy(), coordinates.y.copy(), coordinates.problems.copy()
    x[todo], y[todo] = _from_wgs84(
        result["lon"].to_numpy(), result["lat"].to_numpy(), coordinates.source_crs
    )
    reasons = result["probleme"].to_numpy(dtype=object, na_value=None)
    # a result of type municipality is no point: the row is located by that commune
    commune_only = result["commune_donnee"].notna().to_numpy()
    reasons[commune_only] = "coordonnées absentes"
    problems[todo] = reasons
    x[np.flatnonzero(todo)[commune_only]] = np.nan
    y[np.flatnonzero(todo)[commune_only]] = np.nan
    absent = coordinates.absent & ~todo
    absent[np.flatnonzero(todo)[commune_only]] = True
    if not coordinates.columns:  # a table of addresses only: say what is missing
        problems[absent] = "adresse manquante"
    located = pd.DataFrame(index=frame.index)
    for column in (*GEOCODING_COLUMNS, PRECISION_COLUMN, "commune_donnee"):
        values = result[column]
        located[column] = pd.Series(
            pd.NA if values.dtype == "string" else np.nan, index=frame.index, dtype=values.dtype
        )
        located.loc[todo, column] = values.to_numpy()
    located.attrs["geocodage"] = result.attrs["geocodage"]
    updated = _Coordinates(
        x=x,
        y=y,
        problems=problems,
        source_crs=coordinates.source_crs,
        columns=coordinates.columns,
        absent=absent,
    )
    return updated, located


def _others(source: Source, table: _Table) -> str:
    """Part of a message listing the other sheets or layers and the option to choose one."""
    option = "--feuille" if table.part == "feuille" else "--couche"
    names = ", ".join(f"« {name} »" for name in table.others)
    return f"autres {table.part}s de {source} : {names} ; choisissez-en une avec {option}"


def _read(source: Source, sheet: str | int | None, wanted: set[str]) -> _Table:
    """Read the rows to validate, with their line numbers."""
    if isinstance(source, pd.DataFrame):
        return _Table(source, np.arange(1, len(source) + 1))
    path = Path(source)
    if not path.is_file():
        raise InputError(f"fichier introuvable : {path}")
    suffix = path.suffix.lower()
    if suffix in _CSV_SUFFIXES:
        table = _read_csv(path, wanted)
    elif suffix in _XLSX_SUFFIXES:
        table = _read_xlsx(path, sheet, wanted)
    elif suffix in _LAYER_SUFFIXES:
        table = _read_layer(path, sheet)
    else:
        accepted = ", ".join(_CSV_SUFFIXES + _XLSX_SUFFIXES + _LAYER_SUFFIXES)
        raise InputError(
            f"format non reconnu pour {path} (extension {suffix or 'absente'}) ; "
            f"formats acceptés : {accepted}"
        )
    if len(table.frame) == 0:
        where = f" (première {table.part})" if table.others else ""
        raise InputError(f"fichier vide : {path}{where} ne contient aucune ligne de données")
    return table


def _read_csv(path: Path, wanted: set[str]) -> _Table:
    """Read a CSV as text cells, sniffing its encoding and separator.

    Records are read with the ``csv`` module so that each keeps the line it starts on
    (quoted cells may span lines) and a ragged record is reported on its own row:
    missing cells are left empty, cells beyond the header go, joined by the separator,
    into an added column ``champs_en_trop``. The header is found by :func:`csv_header`.
    """
    text = _csv.decode(path.read_bytes(), path)[0]
    if not text.strip():
        raise InputError(f"fichier vide : {path} ne contient aucune ligne de données")
    skipped, separator = csv_header(text, path, wanted)
    regular = _read_regular_csv(text, separator, skipped)
    if regular is not None:
        return regular
    # A cell may be long (a pasted description): no row is refused for its size.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    stream = io.StringIO(text, newline="")
    for _ in range(skipped):  # physical lines: a quote in a title spans nothing
        stream.readline()
    reader = csv.reader(stream, delimiter=separator)
    records: list[list[str]] = []
    starts: list[int] = []
    ends: list[int] = []
    try:
        header = next(reader, [])
        previous = reader.line_num
        for record in reader:
            records.append(record)
            starts.append(skipped + previous + 1)
            ends.append(skipped + reader.line_num)
            previous = reader.line_num
    except csv.Error as error:
        raise InputError(
            f"CSV illisible : {path}, ligne {skipped + reader.line_num + 1} : {error}"
        ) from error
    while records and not records[-1]:  # blank lines at the end of the file
        records.pop()
        starts.pop()
        ends.pop()
    names = _csv.header_names(header)
    width = len(names)
    if not width:
        raise InputError(f"fichier vide : {path} n'a pas de ligne d'en-tête")
    lengths = np.fromiter((len(record) for record in records), dtype=np.int64, count=len(records))
    # A blank line inside the file is a row of empty cells: not ragged.
    longer = lengths > width
    if longer.any() and _trailing_separators(header, records):
        content = width  # columns before the header's own trailing separators
        while content and not header[content - 1].strip():
            content -= 1
        longer[longer] = [any(record[content:]) for record in itertools.compress(records, longer)]
    ragged = ((lengths < width) & (lengths > 0)) | longer
    problems = None
    frame_extra: dict[str, pd.Series] = {}
    if ragged.any():
        problems = np.full(len(records), None, dtype=object)
        problems[ragged] = [
            f"{length} champs au lieu de {width} (séparateur {_csv.separator_name(separator)}) : "
            + (
                f"guillemet ouvert et jamais refermé ? l'enregistrement s'étend jusqu'à la "
                f"ligne {last}, dont les lignes sont dans ses cellules"
                if last > first
                else "ligne mal formée, guillemet ou séparateur en trop ou manquant ?"
            )
            for length, first, last in zip(
                lengths[ragged],
                np.asarray(starts)[ragged],
                np.asarray(ends)[ragged],
                strict=True,
            )
        ]
    if longer.any():
        extra = [separator.join(record[width:]) or np.nan for record in records]
        frame_extra[_free_name(pd.Index(names), "champs_en_trop")] = pd.Series(extra, dtype=object)
    if (lengths != width).any():
        records = [
            record if len(record) == width else (record + [""] * width)[:width]
            for record in records
        ]
    cells = list(zip(*records, strict=True)) if records else [()] * width
    columns = {}
    for name, values in zip(names, cells, strict=True):
        column = pd.Series(values, dtype=object)
        columns[name] = column.where(column != "", np.nan)
    frame = pd.DataFrame({**columns, **frame_extra}, index=pd.RangeIndex(len(records)))
    return _Table(frame, np.asarray(starts, dtype=np.int64), problems)


def _trailing_separators(header: list[str], records: list[list[str]]) -> bool:
    """Whether the lines of a CSV file end with a separator, as some exports write them.

    Either the header ends with one (an empty last cell) or every record (blank lines
    aside) does. Only then are empty cells past the last named column, in a record
    longer than the header, nothing but trailing separators (``a;1.40;43.57;;``); in
    any other file, and whenever such a cell is filled, the record is ragged: a stray
    separator (``43;575`` written for ``43,575``) shifts its cells, which must never be
    read into the next columns.
    """
    return not header[-1].strip() or all(not record[-1] for record in records if record)


def csv_header(text: str, path: Path, wanted: Set[str] | None = None) -> tuple[int, str]:
    """Where the header of a CSV file lies, and the separator of its fields.

    The header is the first of the 20 first lines (below Excel's ``sep=;`` line) naming
    a column of ``wanted``, or else a coordinate, address or commune column, as in a
    workbook; the lines above it, a title, are reported by a warning. :func:`read_places`
    and :func:`territoires.distributed.classify_file_in_partitions` both find the header
    here, so that they read the same rows with the same line numbers.

    Parameters
    ----------
    text : str
        The decoded file, or its first lines.
    path : pathlib.Path
        The file, named by the warning.
    wanted : set of str, optional
        The ``lon``/``lat`` columns given, simplified (:func:`territoires.communes.simplify`).

    Returns
    -------
    skipped : int
        Physical lines above the header (Excel's ``sep=;`` line, a title).
    separator : str
        The one declared by the ``sep=;`` line, else the one splitting the header like
        most lines below it.
    """
    declared = _csv.excel_separator(text)
    skipped = 0 if declared is None else 1
    stream = io.StringIO(text, newline="")
    lines = [stream.readline() for _ in range(skipped + _HEADER_ROWS)]
    title = _header_row([_line_cells(line) for line in lines[skipped:]], wanted or set())
    header_start = sum(len(line) for line in lines[: skipped + title])
    separator = declared or _csv.sniff_separator(text[header_start:] if title else text)
    if title:
        cells = [
            cell
            for line in lines[skipped : skipped + title]
            for cell in next(csv.reader([line], delimiter=separator), [])
        ]
        _warn_title(path, skipped + 1, skipped + title + 1, cells)
    return skipped + title, separator


def _read_regular_csv(text: str, separator: str, skipped: int) -> _Table | None:
    """Fast path of :func:`_read_csv` for a file without quotes whose lines all fit.

    Without a quote, every record is one line, so that pandas' C parser gives the same
    rows, cells and line numbers as the ``csv`` module, several times faster. Returns
    None (take the general path) when the file has a quote or a lone carriage return,
    a single column, or a line (other than a blank one) whose number of fields differs
    from the header's.
    """
    if '"' in text or "\r" in text.replace("\r\n", ""):
        return None
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")[skipped:]
    fields = np.fromiter((line.count(separator) for line in lines), np.int64, len(lines)) + 1
    blank = np.fromiter((not line for line in lines), bool, len(lines))
    if len(lines) < 2 or fields[0] < 2 or not ((fields == fields[0]) | blank).all():
        return None
    frame = pd.read_csv(
        io.StringIO("\n".join(lines)),
        sep=separator,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        skip_blank_lines=False,
        quoting=csv.QUOTE_NONE,
    ).astype(object)  # as the general path: text cells, NaN for an empty one
    frame.columns = _csv.header_names(lines[0].split(separator))
    first = skipped + 2
    return _Table(frame, np.arange(first, first + len(frame), dtype=np.int64))


def suffixed(
    columns: Iterable[Hashable], names: Iterable[str], keep: Hashable | None = None
) -> dict[Hashable, str]:
    """New names of the input ``columns`` named like one of ``names``, so that both stay.

    The comparison ignores case (« LON » clashes with ``lon`` as « lon » does); a column
    gets the suffix :data:`INPUT_SUFFIX` (``lon`` → ``lon_entree``), or ``_entree_2``…
    when the table already has that name.

    Parameters
    ----------
    columns : iterable of hashable
        The input's columns, in order.
    names : iterable of str
        The names the output adds.
    keep : hashable, optional
        A column never renamed (the active geometry of a layer).

    Returns
    -------
    dict
        Old name → new name, for the columns to rename (for ``DataFrame.rename``).
    """
    columns = list(columns)
    folded = {name.casefold() for name in names}
    renames: dict[Hashable, str] = {}
    for column in columns:
        if str(column).casefold() in folded and column != keep:
            taken = pd.Index([*columns, *renames.values()])
            renames[column] = _free_name(taken, f"{column}{INPUT_SUFFIX}")
    return renames


def _free_name(columns: pd.Index, name: str) -> str:
    """``name``, or ``name_2``, ``name_3``… when the table already has that column."""
    candidate, count = name, 1
    while candidate in columns:
        count += 1
        candidate = f"{name}_{count}"
    return candidate


def _line_cells(line: str) -> list[str]:
    """The cells of a CSV line under every separator, to look for column names in it."""
    return [
        cell
        for separator in _csv.SEPARATORS
        for cell in next(csv.reader([line], delimiter=separator), [])
    ]


#: Column names that make a row the header when no ``lon``/``lat`` is given: coordinate,
#: address and commune columns, compared with :func:`territoires.communes.simplify`.
_HEADER_NAMES = frozenset(
    name
    for names in (
        *COORDINATE_NAMES.values(),
        geocode.ADDRESS_NAMES["adresse"],
        communes.COMMUNE_COLUMN_NAMES["code"],
        communes.COMMUNE_COLUMN_NAMES["nom"],
    )
    for name in names
)


def _header_row(rows: Sequence[Sequence[object]], wanted: Set[str]) -> int:
    """Position of the header among the first :data:`_HEADER_ROWS` rows of a sheet or CSV.

    The first row holding a column name of ``wanted`` (the ``lon``/``lat`` given), or
    else of :data:`_HEADER_NAMES`; the first row when none does. The rows above it are a
    title (see :func:`_warn_title`).
    """
    known = wanted or _HEADER_NAMES
    return next(
        (
            position
            for position, row in enumerate(rows[:_HEADER_ROWS])
            if any(communes.simplify(cell) in known for cell in row if pd.notna(cell))
        ),
        0,
    )


def _warn_title(path: Path, first: int, header: int, title: Sequence[object]) -> None:
    """Warn that lines ``first`` to ``header - 1`` above the header were read as a title."""
    words = " ".join(str(cell).strip() for cell in title if pd.notna(cell) and str(cell).strip())
    if not words:  # blank lines above the header hold nothing
        return
    lines = (
        f"ligne {first} ignorée"
        if header - first == 1
        else f"lignes {first} à {header - 1} ignorées"
    )
    warnings.warn(
        f"{path} : en-tête lu ligne {header} ; {lines} (titre : {words[:80]!r})", stacklevel=4
    )


#: Rows of a sheet (lines of a CSV) searched for its header.
_HEADER_ROWS = 20


def _read_xlsx(path: Path, sheet: str | int | None, wanted: set[str]) -> _Table:
    """Read one sheet of a workbook (the first one by default), finding its header row
    (:func:`_header_row`)."""
    try:
        with pd.ExcelFile(path, engine="openpyxl") as book:
            names = [str(name) for name in book.sheet_names]
            position = isinstance(sheet, int) and 0 <= sheet < len(names)
            if sheet is not None and sheet not in names and not position:
                raise InputError(
                    f"feuille {sheet!r} absente de {path} ; feuilles : {', '.join(names)}"
                )
            _keep_error_values(book)
            raw = pd.read_excel(
                book,
                sheet_name=0 if sheet is None else sheet,
                header=None,
                keep_default_na=False,  # « NA », « n/a », « null »… are the user's text
                na_values=[""],
            )
    except InputError:  # a ValueError too, but already worded for the user
        raise
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError) as error:
        raise InputError(f"classeur XLSX illisible : {path} ({error})") from error
    others = tuple(names[1:]) if sheet is None else ()
    header = _header_row(raw.iloc[:_HEADER_ROWS].to_numpy().tolist(), wanted)
    if header:
        _warn_title(path, 1, header + 1, raw.iloc[:header].to_numpy().ravel())
    if len(raw) == 0:
        return _Table(pd.DataFrame(), np.arange(0), others=others, part="feuille")
    frame = raw.iloc[header + 1 :].reset_index(drop=True)
    frame.columns = _csv.header_names(list(raw.iloc[header]))
    unnamed = [
        name
        for position, name in enumerate(frame.columns, start=1)
        if name == f"colonne_{position}" and frame[name].isna().all()
    ]
    frame = _whole_numbers(frame.drop(columns=unnamed)).infer_objects()
    return _Table(frame, np.arange(len(frame)) + header + 2, others=others, part="feuille")


def _keep_error_values(book: pd.ExcelFile) -> None:
    """Read an Excel error value (``#N/A``, ``#DIV/0!``…) as its text, as the sheet shows it.

    pandas' openpyxl reader makes it an empty cell, and the user's cell would vanish from
    the output. Its cell conversion is private: with another reader, nothing changes.
    """
    reader = getattr(book, "_reader", None)
    convert = getattr(reader, "_convert_cell", None)
    if convert is not None:
        reader._convert_cell = lambda cell: cell.value if cell.data_type == "e" else convert(cell)


def _whole_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of whole numbers with empty cells as nullable integers (``Int64``).

    ``infer_objects`` would make them floats, and a SIRET ``12345678901234`` would come
    out as ``12345678901234,0``.
    """
    out = frame.copy(deep=False)
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object or not column.isna().any():
            continue
        present = column.dropna()
        if len(present) and all(
            isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
            for value in present
        ):
            out[name] = column.astype("Int64")
    return out


def _read_layer(path: Path, layer: str | int | None) -> _Table:
    """Read a GeoJSON or GeoPackage layer (the first one by default)."""
    import pyogrio  # imported here: `territoires check` starts faster

    unreadable = (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError)
    try:
        layers = [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    except unreadable as error:
        raise InputError(f"couche géographique illisible : {path} ({error})") from error
    try:
        frame = gpd.read_file(path, layer=layer)
    except unreadable as error:
        raise InputError(
            f"couche {layer!r} absente ou illisible dans {path} ({error}) ; "
            f"couches : {', '.join(layers)}"
        ) from error
    others = tuple(layers[1:]) if layer is None else ()
    return _Table(frame, np.arange(1, len(frame) + 1), others=others, part="couche")


def _from_columns(
    frame: pd.DataFrame,
    lon: str | None,
    lat: str | None,
    crs: str | int | None,
    elsewhere: bool,
) -> _Coordinates:
    """Read coordinates from two columns of a table, or from one « latitude, longitude ».

    A table without any coordinate column but with address or commune columns
    (``elsewhere``) gives no coordinates: every row is to be located by its address or
    its commune. So does such a table whose « latitude, longitude » column was found by
    its name only and holds no readable pair (« Coordonnées » may be contact details),
    with a warning.
    """
    pair = _pair_column(frame.columns, lon, lat)
    if pair is not None:
        read = _from_pair(frame, pair, crs)
        # « Coordonnées » may hold contact details beside an address: not one point read
        if lon is not None or not elsewhere or not np.isnan(read.y).all() or read.absent.all():
            return read
        warnings.warn(
            f"colonne « {pair} » ignorée : aucune de ses cellules ne se lit « latitude, "
            "longitude » ; les lieux sont localisés par leur adresse ou leur commune",
            stacklevel=3,
        )
    found = coordinate_columns(frame.columns, lon, lat, optional=elsewhere)
    if found is None:
        nothing = np.full(len(frame), np.nan)
        return _Coordinates(
            x=nothing,
            y=nothing,
            problems=np.full(len(frame), "coordonnées absentes", dtype=object),
            source_crs=_WGS84,
            columns={},
            absent=np.ones(len(frame), dtype=bool),
        )
    lon_column, lat_column, projected = found
    labels = ("coordonnée x", "coordonnée y") if projected else ("longitude", "latitude")
    x, x_problems = _parse_numbers(frame[lon_column], labels[0])
    y, y_problems = _parse_numbers(frame[lat_column], labels[1])
    absent = _empty(frame[lon_column]) & _empty(frame[lat_column])
    if crs is not None:
        source_crs = _parse_crs(crs)
    elif projected and not absent.all():  # a property of the file: refused as a whole
        raise InputError(
            f"CRS non précisé pour les colonnes x/y « {lon_column} » et « {lat_column} » : "
            f"donnez leur système de coordonnées {_CRS_HOW}"
        )
    else:  # longitude/latitude, or x/y columns left empty: no coordinate to convert
        source_crs = _WGS84
    return _Coordinates(
        x=x,
        y=y,
        problems=_join(x_problems, y_problems),
        source_crs=source_crs,
        columns={"lon": lon_column, "lat": lat_column},
        absent=absent,
    )


def _pair_column(columns: pd.Index, lon: str | None, lat: str | None) -> Hashable | None:
    """The one column holding latitude and longitude together, None when there is none.

    The column named by both ``lon=`` and ``lat=``, else, when no longitude, latitude,
    x or y column is present, the one named as ``COORDINATE_NAMES["lat_lon"]``.
    """
    if lon is not None and lon == lat:
        return _given_column(columns, lon, "lon")
    if lon is not None or lat is not None:
        return None
    roles = {
        role: [column for column in columns if communes.simplify(column) in names]
        for role, names in COORDINATE_NAMES.items()
    }
    pairs = roles.pop("lat_lon")
    if any(roles.values()) or not pairs:  # two columns, or half of them: read as such
        return None
    if len(pairs) > 1:
        names = ", ".join(repr(column) for column in pairs)
        raise InputError(
            f"plusieurs colonnes possibles pour « latitude, longitude » ({names}) : "
            "précisez laquelle avec lon= et lat= (le même nom)"
        )
    return pairs[0]


def _from_pair(frame: pd.DataFrame, column: Hashable, crs: str | int | None) -> _Coordinates:
    """Read coordinates from one column holding « latitude, longitude » (:data:`_LAT_LON`)."""
    if crs is not None and not _parse_crs(crs).equals(_WGS84):
        raise InputError(
            f"la colonne « {column} » donne latitude et longitude en degrés WGS84 : crs= "
            f"{crs!r} ne s'y applique pas ; retirez-le, ou donnez des colonnes x et y"
        )
    text = frame[column].astype("string").str.strip()
    absent = (text.isna() | (text == "")).to_numpy(dtype=bool, na_value=True)
    parts = text.str.extract(_LAT_LON.pattern)
    lat, _ = _parse_numbers(parts[0].fillna(parts[2]), "latitude")
    lon, _ = _parse_numbers(parts[1].fillna(parts[3]), "longitude")
    problems = np.full(len(frame), None, dtype=object)
    problems[absent] = f"coordonnées manquantes (colonne « {column} »)"
    wrong = ~absent & np.isnan(lat)
    problems[wrong] = [
        f"coordonnées illisibles dans la colonne « {column} » ({str(value)!r}) : {_LAT_LON_FORM}"
        for value in frame[column][wrong]
    ]
    return _Coordinates(
        x=lon,
        y=lat,
        problems=problems,
        source_crs=_WGS84,
        columns={"lon": column, "lat": column},
        absent=absent,
    )


def _empty(values: pd.Series) -> np.ndarray:
    """True for empty cells (NA or blank text)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.isna().to_numpy()  # numbers are never blank: no text conversion
    text = values.astype("string").str.strip()
    return (text.isna() | (text == "")).to_numpy(dtype=bool, na_value=True)


def _from_geometry(
    frame: gpd.GeoDataFrame, lon: str | None, lat: str | None, crs: str | int | None
) -> _Coordinates:
    """Read coordinates from the point geometry of a layer."""
    if lon is not None or lat is not None:
        raise InputError(
            "lon= et lat= ne s'appliquent qu'aux tableaux (CSV, XLSX, DataFrame) : une "
            "couche géographique est localisée par sa géométrie"
        )
    source_crs = frame.crs
    if crs is not None:
        given = _parse_crs(crs)
        if source_crs is not None and not given.equals(source_crs):
            raise InputError(
                f"la couche déclare le CRS {source_crs.to_string()} mais crs={crs!r} est "
                "précisé : retirez crs= ou corrigez la couche"
            )
        source_crs = given
    geometries = frame.geometry.to_numpy()
    type_ids = shapely.get_type_id(geometries)
    missing = (type_ids < 0) | shapely.is_empty(geometries)
    if source_crs is None and not missing.all():  # a property of the layer: refused whole
        raise InputError(
            "CRS absent : la couche n'a pas de système de coordonnées déclaré ; donnez-le "
            f"{_CRS_HOW}"
        )
    points = ~missing & (type_ids == shapely.GeometryType.POINT)
    x = np.full(len(frame), np.nan)
    y = np.full(len(frame), np.nan)
    x[points] = shapely.get_x(geometries[points])
    y[points] = shapely.get_y(geometries[points])
    problems = np.full(len(frame), None, dtype=object)
    problems[missing] = "géométrie manquante"
    other = ~missing & ~points
    problems[other] = [
        f"géométrie non ponctuelle ({kind})" for kind in frame.geom_type.to_numpy()[other]
    ]
    return _Coordinates(
        x=x,
        y=y,
        problems=problems,
        source_crs=source_crs or _WGS84,
        columns={"geometry": frame.active_geometry_name},
        absent=missing,
    )


def coordinate_columns(
    columns: pd.Index, lon: str | None, lat: str | None, *, optional: bool = False
) -> tuple[Hashable, Hashable, bool] | None:
    """Find the coordinate columns of a table, as :func:`read_places` does.

    Parameters
    ----------
    columns : pandas.Index
        The table's columns.
    lon, lat : str, optional
        Column names given by the user (matched exactly, else without case and accents).
    optional : bool, default False
        Return None instead of raising when the table has no coordinate column at all
        and none were named (a table of addresses); half a pair still raises.

    Returns
    -------
    tuple or None
        The longitude (or x) column, the latitude (or y) one, and whether they are
        projected x/y (``crs=`` needed).

    Raises
    ------
    InputError
        No pair of coordinate columns (unless ``optional``), several candidates for one
        role, or a given name absent or ambiguous. A repeated header (``longitude`` twice, read
        ``longitude`` and ``longitude.1``) gives two candidates.
    """
    present = {str(column) for column in columns}

    def base(column: Hashable) -> str:
        """``longitude`` for ``longitude.1`` when ``longitude`` is also a column."""
        stripped = re.sub(r"\.\d+$", "", str(column))
        return stripped if stripped in present else str(column)

    found = {
        role: [column for column in columns if communes.simplify(base(column)) in names]
        for role, names in COORDINATE_NAMES.items()
        if role != "lat_lon"  # one column of both: see _pair_column
    }
    for role, given in (("lon", lon), ("lat", lat)):
        if given is not None:
            found[role] = [_given_column(columns, given, role)]
    pairs = [("lon", "lat", False)]
    if lon is None and lat is None:
        pairs.append(("x", "y", True))
    for first, second, projected in pairs:
        if found[first] and found[second]:
            for role in (first, second):
                if len(found[role]) > 1:
                    names = ", ".join(repr(column) for column in found[role])
                    option = "lon" if role in ("lon", "x") else "lat"
                    raise InputError(
                        f"plusieurs colonnes possibles pour {role} ({names}) : précisez "
                        f"laquelle avec {option}="
                    )
            return found[first][0], found[second][0], projected
    if optional and lon is None and lat is None and not any(found.values()):
        return None
    raise InputError(
        "aucune paire de colonnes de coordonnées trouvée ; colonnes présentes : "
        f"{_listing(columns)} ; noms acceptés (sans casse ni accents) : longitude = "
        f"{', '.join(COORDINATE_NAMES['lon'])} ; latitude = "
        f"{', '.join(COORDINATE_NAMES['lat'])} ; ou une seule colonne « latitude, longitude » "
        f"({', '.join(COORDINATE_NAMES['lat_lon'][:8])}…) ; ou x et y projetés avec crs= "
        "(ex. 2154) ; "
        f"ou une adresse : {', '.join(geocode.ADDRESS_NAMES['adresse'])} ; ou une commune : "
        f"{', '.join(communes.COMMUNE_COLUMN_NAMES['code'])}, ou commune avec departement "
        "ou code_postal. "
        "Précisez les colonnes avec lon= et lat="
    )


def _given_column(columns: pd.Index, name: str, role: str) -> Hashable:
    """Return the column named ``name``, exactly or else without case and accents."""
    for matches in (
        [column for column in columns if column == name],
        [column for column in columns if communes.simplify(column) == communes.simplify(name)],
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InputError(
                f"colonne {role}={name!r} ambiguë : {', '.join(map(repr, matches))} correspondent"
            )
    raise ColumnError(f"colonne {role}={name!r} absente ; colonnes présentes : {_listing(columns)}")


def _listing(columns: pd.Index) -> str:
    """Columns for a message."""
    return ", ".join(repr(str(column)) for column in columns) or "(aucune)"


def _parse_numbers(values: pd.Series, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Return floats (decimal commas accepted) and a problem per row (None when read)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(numbers)
        wrong = np.zeros(len(values), dtype=bool)
    else:
        text = values.astype("string").str.strip()
        missing = (text.isna() | (text == "")).to_numpy(dtype=bool, na_value=True)
        cleaned = text.str.replace(",", ".", regex=False).str.replace("\u2212", "-", regex=False)
        numbers = _to_floats(cleaned)
        wrong = ~missing & np.isnan(numbers)
    problems = np.full(len(values), None, dtype=object)
    problems[missing] = f"{label} manquante"
    problems[wrong] = [f"{label} non numérique ({str(value)!r})" for value in values[wrong]]
    return numbers, problems


#: A decimal number as people write coordinates: sign, digits, point (no exponent).
_PLAIN_DECIMAL = r"^[-+]?(?:\d+\.?\d*|\.\d+)$"
#: Longest plain decimal read by arrow: 15 characters hold at most 15 digits.
_PLAIN_LENGTH = 15


def _to_floats(cleaned: pd.Series) -> np.ndarray:
    """``pd.to_numeric(cleaned, errors="coerce")`` as floats, fast for plain decimals.

    When every non-empty cell is a :data:`_PLAIN_DECIMAL` of at most
    :data:`_PLAIN_LENGTH` characters, arrow's cast reads the column (ten times faster):
    a number of at most 15 digits is an exact integer divided by an exact power of ten,
    which both arrow and pandas round correctly, so the floats are the same. Any other
    column is read by pandas.
    """
    text = pa.array(cleaned.array)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
    plain = pc.match_substring_regex(text, _PLAIN_DECIMAL)
    if (
        pc.all(plain).as_py() is not False
        and (pc.max(pc.binary_length(text)).as_py() or 0) <= _PLAIN_LENGTH
    ):
        return pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    return pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _join(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Join two object arrays of optional messages with `` ; ``."""
    both = pd.notna(first) & pd.notna(second)
    joined = np.where(pd.notna(first), first, second)
    joined[both] = [f"{a} ; {b}" for a, b in zip(first[both], second[both], strict=True)]
    return joined


def _parse_crs(crs: str | int) -> CRS:
    """Return the CRS given by the user (``2154``, ``"2154"``, ``"EPSG:2154"``…)."""
    code = int(crs) if isinstance(crs, str) and crs.strip().isdigit() else crs
    try:
        return CRS.from_user_input(code)
    except CRSError as error:
        raise InputError(
            f"CRS non reconnu : {crs!r} ; attendu un code EPSG, par exemple 2154 ou 'EPSG:2154'"
        ) from error


def _validate(
    frame: pd.DataFrame,
    coordinates: _Coordinates,
    lines: np.ndarray,
    read_problems: np.ndarray | None = None,
    commune_columns: dict[str, Hashable] | None = None,
    data_dir: Path | None = None,
    geocoded: pd.Series | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pd.Series]:
    """Return lon, lat, problem, territory and commune code of each row.

    The territory is a position in :data:`territoires.crs.TERRITORIES`. Unusable rows
    get NaN, NaN, a message, -1 and ``<NA>``; rows located by their commune
    (``commune_columns``, or ``geocoded``: the commune of a geocoding result of type
    municipality) NaN, NaN, None, the commune's territory and its code.
    ``read_problems`` (a ragged CSV line) replace the row's coordinate problems (its
    cells are misplaced) and make it unusable whatever its coordinates or commune.
    """
    commune = pd.Series(pd.NA, index=frame.index, dtype="string")
    lon, lat = _to_wgs84(coordinates.x, coordinates.y, coordinates.source_crs)
    problems = coordinates.problems.copy()
    if read_problems is not None:  # a ragged line: its cells are misplaced, say only that
        problems = np.where(pd.notna(read_problems), read_problems, problems)
    pending = pd.isna(problems)
    out_of_bounds = pending & ~((np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    _describe(problems, out_of_bounds, lon, lat, _out_of_bounds)
    territoire = _crs.locate_positions(lon, lat)
    nowhere = pending & ~out_of_bounds & (territoire < 0)
    swapped = nowhere.copy()
    swapped[nowhere] = _crs.locate_positions(lat[nowhere], lon[nowhere]) >= 0
    _describe(problems, swapped, lon, lat, _swapped)
    _describe(problems, nowhere & ~swapped, lon, lat, _outside)
    if commune_columns or geocoded is not None:
        pending |= _locate_communes(
            frame, coordinates, commune_columns, problems, territoire, commune, data_dir, geocoded
        )
    if read_problems is not None:  # a ragged line stays unusable, whatever its commune
        ragged = pd.notna(read_problems)
        problems[ragged] = read_problems[ragged]
        pending &= ~ragged
    first = _first_occurrences(frame, coordinates)
    duplicate = pending & (territoire >= 0) & (first >= 0)
    problems[duplicate] = [f"doublon de la ligne {line}" for line in lines[first[duplicate]]]
    flagged = pd.notna(problems)
    if "geometry" not in coordinates.columns and frame.shape[1] > 1:
        problems[_blank(frame, flagged)] = BLANK_ROW  # a blank line says only that
    problems[flagged] = [
        f"ligne {line} : {text}"
        for line, text in zip(lines[flagged], problems[flagged], strict=True)
    ]
    territoire[flagged] = -1
    commune[flagged] = pd.NA
    lon, lat = np.where(flagged, np.nan, lon), np.where(flagged, np.nan, lat)
    return lon, lat, problems, territoire, commune


#: Problem of a row of a table of several columns whose every cell is empty (a blank
#: line inside a file); a table of one column names that column (``adresse manquante``).
BLANK_ROW = "ligne vide (aucune cellule remplie)"


def _blank(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Among ``rows`` (a mask), those whose every cell is empty."""
    positions = np.flatnonzero(rows)
    blank = np.ones(len(positions), dtype=bool)
    for column in frame.columns:
        blank &= _empty(frame[column].iloc[positions])
    found = np.zeros(len(frame), dtype=bool)
    found[positions[blank]] = True
    return found


def _locate_communes(
    frame: pd.DataFrame,
    coordinates: _Coordinates,
    columns: dict[str, Hashable],
    problems: np.ndarray,
    territoire: np.ndarray,
    commune: pd.Series,
    data_dir: Path | None,
    geocoded: pd.Series | None = None,
) -> np.ndarray:
    """Locate the rows without coordinates by their commune, in place.

    The commune is the one of the row's cells, or ``geocoded`` (the commune of a
    geocoding result of type municipality) for a row whose address found no more.
    Returns the rows located (their problem is cleared); the others without coordinates
    get a message naming the commune field, or saying that they give neither.
    """
    absent = coordinates.absent
    by_geocoding = np.zeros(len(frame), dtype=bool)
    if geocoded is not None:
        by_geocoding = absent & geocoded.notna().to_numpy()
        frame = frame.assign(**{_GEOCODED_CODE: geocoded.to_numpy()})
    by_cells = absent & ~by_geocoding
    if columns:
        by_cells &= communes.has_cells(frame, columns)
        listing = ", ".join(repr(str(column)) for column in columns.values())
        alone = absent & ~by_cells & ~by_geocoding
        also = f"commune absente aussi (colonnes {listing} vides)"
        problems[alone] = [
            f"{problem or 'coordonnées absentes'} ; {also}" for problem in problems[alone]
        ]
    else:
        by_cells[:] = False
    given = by_cells | by_geocoding
    located = np.zeros(len(frame), dtype=bool)
    if not given.any():
        return located
    # in a table that has coordinate columns, say that the coordinates are missing too
    missing = "coordonnées manquantes ; " if coordinates.columns else ""
    try:
        known = loaders.load_commune_codes(data_dir=data_dir)
    except DataNotFoundError as error:
        problems[given] = (
            f"{missing}commune non vérifiable : table des communes introuvable ({error})"
        )
        return located
    # the user's commune cells for their rows, the geocoder's commune for the others
    for rows, roles in ((by_cells, columns), (by_geocoding, {"code": _GEOCODED_CODE})):
        if not rows.any():
            continue
        code, dep, issue = communes.resolve(frame[rows], roles, known)
        problems[rows] = (missing + issue).to_numpy(dtype=object, na_value=None)
        found = np.zeros(len(frame), dtype=bool)
        found[np.flatnonzero(rows)[code.notna().to_numpy()]] = True
        commune[found] = code[code.notna()].to_numpy()
        territoire[found] = _crs.territory_positions(dep[code.notna()].to_numpy(dtype=object))
        located |= found
    return located


def _precision(
    frame: pd.DataFrame, problems: np.ndarray, lines: np.ndarray, default: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Precision of each row in metres, from the ``precision_m`` column or ``default``.

    A non-numeric or negative precision makes a usable row unusable: its message is
    written in place in ``problems`` and it is returned in the mask of such rows.
    """
    fill = np.nan if default is None else float(default)
    if PRECISION_COLUMN not in frame.columns:
        return np.full(len(frame), fill), np.zeros(len(frame), dtype=bool)
    values, issues = _parse_numbers(frame[PRECISION_COLUMN], "précision")
    values = values.copy()
    missing = _empty(frame[PRECISION_COLUMN])
    issues[missing] = None
    values[missing] = fill
    negative = values < 0
    issues[negative] = [f"précision négative ({value:g} m)" for value in values[negative]]
    wrong = pd.notna(issues) & pd.isna(problems)
    problems[wrong] = [
        f"ligne {line} : {text} (colonne {PRECISION_COLUMN!r}) : attendu un nombre de mètres ≥ 0"
        for line, text in zip(lines[wrong], issues[wrong], strict=True)
    ]
    return values, wrong


def _from_wgs84(lon: np.ndarray, lat: np.ndarray, target: CRS) -> tuple[np.ndarray, np.ndarray]:
    """Transform WGS84 longitude/latitude to `target` (NaN stays NaN)."""
    if target.equals(_WGS84, ignore_axis_order=True):
        return lon, lat
    x, y = Transformer.from_crs(_WGS84, target, always_xy=True).transform(lon, lat)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _to_wgs84(x: np.ndarray, y: np.ndarray, source_crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    """Transform finite coordinates to WGS84 longitude/latitude (inf outside the domain)."""
    if source_crs.equals(_WGS84, ignore_axis_order=True):
        return x, y
    finite = np.isfinite(x) & np.isfinite(y)
    lon = np.full(x.shape, np.nan)
    lat = np.full(y.shape, np.nan)
    transformer = Transformer.from_crs(source_crs, _WGS84, always_xy=True)
    lon[finite], lat[finite] = transformer.transform(x[finite], y[finite])
    return lon, lat


def _first_occurrences(frame: pd.DataFrame, coordinates: _Coordinates) -> np.ndarray:
    """Position of the first identical earlier row for each duplicate, -1 elsewhere.

    Rows are compared on every input column, coordinates by their parsed value so that
    ``2,35`` and ``2.350`` are equal. Row hashes find the candidates quickly; rows are
    then compared exactly among the candidates only.
    """
    keys = _keys(frame, coordinates)
    first = np.full(len(keys), -1)
    candidates = np.flatnonzero(repeated(pd.util.hash_pandas_object(keys, index=False).to_numpy()))
    if candidates.size:
        subset = keys.iloc[candidates]
        later = subset.duplicated(keep="first").to_numpy()
        groups = subset.groupby(list(keys.columns), dropna=False, sort=False).ngroup().to_numpy()
        _, first_of_group = np.unique(groups, return_index=True)
        first[candidates[later]] = candidates[first_of_group[groups[later]]]
    return first


def repeated(values: np.ndarray) -> np.ndarray:
    """Whether each value occurs more than once (``duplicated(keep=False)``).

    Sorting a copy of the numbers finds the repeated ones (numpy's vectorised sort:
    a few milliseconds for a million, where a hash table takes tens). Used on row hashes
    by :func:`read_places` and by the first pass of
    :func:`territoires.distributed.classify_file_in_partitions`.

    Parameters
    ----------
    values : numpy.ndarray of int
        Numbers, e.g. 64-bit row hashes.

    Returns
    -------
    numpy.ndarray of bool
    """
    ordered = np.sort(values)
    twice = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if not len(twice):
        return np.zeros(len(values), dtype=bool)
    return twice[np.minimum(np.searchsorted(twice, values), len(twice) - 1)] == values


def _keys(frame: pd.DataFrame, coordinates: _Coordinates) -> pd.DataFrame:
    """What identifies a row: its cells, the coordinates by their parsed value."""
    keys = pd.DataFrame(frame.drop(columns=list(coordinates.columns.values())))
    keys.columns = range(keys.shape[1])
    for column in keys.columns:
        values = keys[column]
        if values.dtype == object and pd.api.types.infer_dtype(values) not in _HASHABLE_KINDS:
            keys[column] = values.map(_hashable)
    keys[keys.shape[1]] = coordinates.x
    keys[keys.shape[1]] = coordinates.y
    return keys


#: Kinds of object columns (``pandas.api.types.infer_dtype``) whose cells are all hashable.
_HASHABLE_KINDS = frozenset({"string", "empty", "floating", "integer", "boolean", "bytes"})


def _hashable(cell: object) -> object:
    """A cell as duplicates compare it: a list, a dict or an array (a GeoJSON or Parquet
    property) by a stable text form, tagged so as not to equal a text cell."""
    try:
        hash(cell)
    except TypeError:
        text = json.dumps(cell, sort_keys=True, ensure_ascii=False, default=_plain)
        return ("valeur composée", text)
    return cell


def _plain(value: object) -> object:
    """What :func:`json.dumps` writes for a value it does not know (numpy's, a set)."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, Set):
        return sorted(value, key=repr)
    return repr(value)


def duplicate_keys(
    frame: pd.DataFrame, lon: str | None = None, lat: str | None = None
) -> pd.DataFrame:
    """The values that :func:`read_places` compares to find a ``doublon``.

    Parameters
    ----------
    frame : pandas.DataFrame or geopandas.GeoDataFrame
        Places as given to ``read_places`` (a table, or a layer with its geometry).
    lon, lat : str, optional
        Coordinate columns, when they cannot be detected.

    Returns
    -------
    pandas.DataFrame
        One row per row of ``frame``, columns numbered: every cell except the
        coordinates, then the x and y read from them (floats, NaN when unreadable).
        Two rows are duplicates for ``read_places`` when their keys are equal; read
        places in parts this way to find duplicates across the parts.
    """
    if isinstance(frame, gpd.GeoDataFrame) and frame.active_geometry_name is not None:
        return _keys(frame, _from_geometry(frame, lon, lat, None))
    return _keys(frame, _from_columns(frame, lon, lat, None, elsewhere=True))


def _describe(
    problems: np.ndarray,
    mask: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    message: Callable[[float, float], str],
) -> None:
    """Write ``message(lon, lat)`` into ``problems`` for the rows of ``mask``."""
    problems[mask] = [message(x, y) for x, y in zip(lon[mask], lat[mask], strict=True)]


#: Ends of problem messages that speak of a file or of the ``--crs`` option, and what
#: :func:`point_wording` says instead for one point typed alone.
_FIX_FILE = "corrigez le fichier"
_OR_CRS = ", ou précisez --crs"
_ONE_POINT_WORDING = (
    ("ligne 1 : ", ""),
    (_FIX_FILE, "donnez la longitude puis la latitude"),
    (_OR_CRS, ""),
)


def point_wording(problem: str) -> str:
    """Word a problem (or a motif quoting it) for one point typed alone, not a file.

    Parameters
    ----------
    problem : str
        A problem of :func:`read_places` on a table of one row, or a motif quoting it
        (``Entrée invalide : ligne 1 : …``).

    Returns
    -------
    str
        The same text without the line number, and without the advice to correct the
        file or to give ``--crs`` (``territoires check`` reads no file and has no such
        option).
    """
    for file_wording, point in _ONE_POINT_WORDING:
        problem = problem.replace(file_wording, point, 1)
    return problem


def _number(value: float) -> str:
    """A coordinate for a message: ``652000.0``, ``-74.006``."""
    return repr(round(float(value), 6))


def _out_of_bounds(lon: float, lat: float) -> str:
    """Message for coordinates that are not degrees."""
    parts = [f"lon={_number(lon)}"] if not abs(lon) <= 180 else []
    parts += [f"lat={_number(lat)}"] if not abs(lat) <= 90 else []
    return (
        f"coordonnées hors des bornes WGS84 ({', '.join(parts)}) : CRS erroné ? "
        f"attendu : degrés décimaux{_OR_CRS}"
    )


def _swapped(lon: float, lat: float) -> str:
    """Message for a point that would be in France with lon and lat exchanged."""
    return (
        f"latitude et longitude semblent inversées (lon={_number(lon)}, lat={_number(lat)}) : "
        f"{_FIX_FILE}"
    )


def _outside(lon: float, lat: float) -> str:
    """Message for a point in no territory."""
    return f"point hors de France (lon={_number(lon)}, lat={_number(lat)})"


#: Text of the ``territoire`` column by territory position in
#: :data:`territoires.crs.TERRITORIES` plus one (``""``: none), as :func:`read_places`
#: and the engine's output write it.
TERRITORY_TEXT = pa.array(["", *(territory.name for territory in _crs.TERRITORIES)])


def _assemble(
    frame: pd.DataFrame,
    coordinates: _Coordinates,
    numbers: dict[str, np.ndarray],
    problems: np.ndarray,
    territoire: np.ndarray,
    commune: pd.Series,
    geometry: bool,
    lines: np.ndarray,
    located: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Copy the input and add the output columns (the input object is left untouched).

    ``numbers`` holds the ``lon``, ``lat`` and ``precision_m`` arrays, ``territoire``
    the positions in :data:`territoires.crs.TERRITORIES` (-1: none), ``located`` the
    geocoding columns of a table with addresses.
    """
    out = pd.DataFrame(frame).copy(deep=False)
    geometry_column = coordinates.columns.get("geometry")
    added = [*ADDED_COLUMNS, *(GEOCODING_COLUMNS if located is not None else ())]
    renames = suffixed(out.columns, added, keep=geometry_column)
    out = out.rename(columns=renames)
    if geometry_column is not None:
        out = out.rename(columns={geometry_column: "geometry"})
    lon, lat = numbers["lon"], numbers["lat"]
    out["lon"] = lon
    out["lat"] = lat
    flagged = np.flatnonzero(pd.notna(problems))  # few: converted alone
    out["probleme"] = pd.arrays.ArrowStringArray(scattered(len(out), flagged, problems[flagged]))
    out["territoire"] = pd.arrays.ArrowStringArray(TERRITORY_TEXT.take(pa.array(territoire + 1)))
    out[PRECISION_COLUMN] = numbers[PRECISION_COLUMN]
    out["commune_donnee"] = commune.array
    if geometry:
        points = gpd.points_from_xy(lon, lat, crs=_crs.GEOGRAPHIC)
        points[np.isnan(lon)] = None
    else:
        points = gpd.array.from_shapely(np.full(len(out), None, dtype=object), _crs.GEOGRAPHIC)
    out["geometry"] = points
    if located is not None:
        for column in GEOCODING_COLUMNS:
            out[column] = located[column].to_numpy()
    result = gpd.GeoDataFrame(out, geometry="geometry", copy=False)  # no consolidating copy
    result.attrs["colonnes_entree"] = {str(old): new for old, new in renames.items()}
    result.attrs["lignes"] = line_ranges(lines)
    if located is not None:
        result.attrs["geocodage"] = located.attrs["geocodage"]
    return result


def line_ranges(lines: np.ndarray | Sequence[int]) -> str:
    """Input lines as ranges, the text kept in ``attrs["lignes"]``: ``"2-28,31-40"``.

    Text, so that a result's ``attrs`` stay readable in its provenance file and
    serialisable by ``to_parquet`` (JSON), and cost nothing when pandas copies them; one
    range for the usual file, whatever its length.

    Parameters
    ----------
    lines : array-like of int
        The line of each row, in row order; a ``range`` of step 1 (the lines of a file
        read in blocks, one record per line) is never expanded.

    Returns
    -------
    str
        Comma-separated runs of consecutive lines, ``first-last`` (or ``first`` alone).
    """
    if isinstance(lines, range) and lines.step == 1 and len(lines) > 1:
        return f"{lines.start}-{lines.stop - 1}"
    numbers = np.asarray(lines, dtype=np.int64)
    if not len(numbers):
        return ""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(numbers) != 1) + 1])
    ends = np.concatenate([starts[1:], [len(numbers)]]) - 1
    return ",".join(
        str(first) if first == last else f"{first}-{last}"
        for first, last in zip(numbers[starts].tolist(), numbers[ends].tolist(), strict=True)
    )


def lines(frame: pd.DataFrame) -> np.ndarray | None:
    """Line in the input file of each row of a frame read by :func:`read_places`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`read_places` (``attrs["lignes"]``, see :func:`line_ranges`),
        not reordered or filtered.

    Returns
    -------
    numpy.ndarray of int or None
        The lines (1-based positions for a table), None when the frame does not carry
        them or no longer has one row per line.
    """
    stored = frame.attrs.get("lignes")
    if not isinstance(stored, str) or not re.fullmatch(r"(\d+(-\d+)?(,\d+(-\d+)?)*)?", stored):
        return None
    runs = [run.partition("-") for run in stored.split(",")] if stored else []
    first = np.array([int(start) for start, _, _ in runs], dtype=np.int64)
    last = np.array([int(end or start) for start, _, end in runs], dtype=np.int64)
    counts = last - first + 1
    if (counts < 1).any() or counts.sum() != len(frame):
        return None
    return np.repeat(first - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())


#: Headers naming a place, compared without case, accents or punctuation; the first
#: present in this order is used when no name column is given.
NAME_COLUMNS: tuple[str, ...] = (
    "nom",
    "nom_du_lieu",
    "nom_lieu",
    "nom_du_tiers_lieu",
    "nom_tiers_lieu",
    "nom_de_la_structure",
    "nom_structure",
    "libelle",
    "raison_sociale",
    "denomination",
    "enseigne",
    "structure",
    "lieu",
    "tiers_lieu",
    "name",
)


def name_column(columns: pd.Index, given: str | None = None) -> Hashable | None:
    """Return the column that names the places.

    Parameters
    ----------
    columns : pandas.Index
        Columns of the places (read or classified).
    given : str, optional
        Column chosen by the user (``--nom``), matched exactly or else without case
        and accents; detected among :data:`NAME_COLUMNS` when omitted.

    Returns
    -------
    hashable or None
        The column, or None when no header looks like a name.

    Raises
    ------
    InputError
        When ``given`` is not a column, or matches several.
    """
    if given is not None:
        return _given_column(columns, given, "nom")
    normalised = {communes.simplify(column): column for column in reversed(columns)}
    return next((normalised[name] for name in NAME_COLUMNS if name in normalised), None)


def place_lines(places: pd.DataFrame) -> pd.Series:
    """Return ``ligne N`` for each place, N numbered as in the problem messages.

    Parameters
    ----------
    places : pandas.DataFrame
        Read or classified places; ``attrs["lignes"]`` (set by :func:`read_places`, kept
        by ``classify``, see :func:`lines`) gives the line of each row in the file;
        without it rows are numbered from 1.

    Returns
    -------
    pandas.Series
        ``string`` dtype, same index as ``places``.
    """
    numbers = lines(places)
    if numbers is None:
        numbers = np.arange(1, len(places) + 1)
    return pd.Series([f"ligne {line}" for line in numbers], index=places.index, dtype="string")


def place_labels(places: pd.DataFrame, column: str | None = None) -> pd.Series:
    """Name each place for a map popup or a report, falling back to its line.

    Parameters
    ----------
    places : pandas.DataFrame
        Read or classified places (rows numbered as by :func:`place_lines`).
    column : str, optional
        Name column (``--nom``); detected with :func:`name_column` when omitted.

    Returns
    -------
    pandas.Series
        ``string`` dtype, same index: the place's name, ``ligne N`` when it has none.

    Raises
    ------
    InputError
        When ``column`` is not a column of ``places``.
    """
    lines = place_lines(places)
    found = name_column(places.columns, column)
    if found is None:
        return lines
    names = places[found].astype("string").str.strip()
    return names.mask(names.fillna("").eq(""), lines)


#: Where the text of an invalid row's problem starts, after its verdict label and line.
_PROBLEM_START = re.compile(r"^(?:.*? : )?ligne \d+ : ")
#: Values a problem quotes (cells, numbers), left out of its kind.
_QUOTED_VALUES = r"'[^']*'|« [^»]* »|(?<![\w.])[-+\u2212]?\d+(?:[.,]\d+)?(?![\w])"


def problem_tally(classified: pd.DataFrame, suffix: str = "") -> pd.DataFrame:
    """Count the invalid rows of a classified frame by kind of problem.

    The kind of a problem is its text without the line number and what follows the
    first `` (`` or `` : ``, quoted values and numbers replaced by ``…``:
    ``ligne 2 : coordonnées hors des bornes WGS84 (lon=200.0) : CRS erroné ? …`` and
    ``ligne 3 : coordonnées hors des bornes WGS84 (lat=95.0) …`` are both
    « coordonnées hors des bornes WGS84 ».

    Parameters
    ----------
    classified : pandas.DataFrame
        Output of :func:`territoires.classify` (or a partition of it), with its
        ``verdict`` and ``motif`` columns.
    suffix : str, optional
        Suffix of those columns (``_2015``) when several QPV vintages sit side by side.

    Returns
    -------
    pandas.DataFrame
        One row per kind (the index), most frequent first: ``lignes`` (number of rows)
        and ``exemple`` (the problem of the first such row, from its line number on).
    """
    invalid = classified[f"verdict{suffix}"].eq("invalide").to_numpy(dtype=bool)
    motifs = classified[f"motif{suffix}"][invalid].astype("string")
    start = motifs.str.replace(r"^.*? : (?=ligne \d+ : )", "", regex=True)
    text = motifs.str.replace(_PROBLEM_START, "", regex=True)
    kinds = text.str.split(r" \(| : ", n=1, regex=True).str[0]
    kinds = kinds.str.replace(_QUOTED_VALUES, "…", regex=True)
    tally = (
        pd.DataFrame({"lignes": 1, "exemple": start.to_numpy(dtype=object)}, index=kinds.array)
        .groupby(level=0, sort=False)
        .agg(lignes=("lignes", "sum"), exemple=("exemple", "first"))
    )
    return tally.sort_values("lignes", ascending=False, kind="stable")


_NUMBER = r"[-+\u2212]?\d+(?:[.,]\d+)?"
_DOT_NUMBER = r"[-+\u2212]?\d+\.\d+"
#: « latitude, longitude » as copied from a web map or a GPS: dot decimals with a comma
#: or a semicolon between the two numbers (``43.5750, 1.4020``; groups 1 and 2), or any
#: decimals with a semicolon between them (``43,5750 ; 1,4020``; groups 3 and 4). A
#: comma between numbers with decimal commas (``43,5750, 1,4020``) is not read: which
#: comma separates them is a guess.
_LAT_LON = re.compile(
    rf"^\s*(?:({_DOT_NUMBER})\s*[,;]\s*({_DOT_NUMBER})|({_NUMBER})\s*;\s*({_NUMBER}))\s*$"
)
#: The forms of :data:`_LAT_LON`, for messages.
_LAT_LON_FORM = (
    "attendu la latitude puis la longitude en degrés décimaux, séparées par une virgule "
    "(43.5750, 1.4020) ou par un point-virgule (43,5750 ; 1,4020)"
)
_TWO_NUMBERS = re.compile(rf"^\s*({_NUMBER})\s+({_NUMBER})\s*$")


def parse_point(text: str) -> tuple[float, float]:
    """Read one place typed by a person: ``lon lat``, or ``lat, lon`` from a web map.

    Parameters
    ----------
    text : str
        Either longitude then latitude separated by spaces, with decimal points or
        commas (``1.4020 43.5750``, ``1,4020 43,5750``), or latitude then longitude
        as web maps copy them: separated by a comma, with decimal points (``43.5750,
        1.4020``), or by a semicolon (``43,5750 ; 1,4020``), the form a column
        « coordonnées GPS » of :func:`read_places` holds.

    Returns
    -------
    tuple of float
        Longitude and latitude (not checked against France: the classification does).

    Raises
    ------
    ValueError
        In French, with the accepted forms, when the text is neither form.
    """
    pair = _LAT_LON.match(text)
    if pair:
        groups = pair.groups()
        lat, lon = (_typed_number(value) for value in (groups[:2] if groups[0] else groups[2:]))
        return lon, lat
    numbers = _TWO_NUMBERS.match(text)
    if numbers:
        lon, lat = (_typed_number(value) for value in numbers.groups())
        return lon, lat
    raise ValueError(
        f"coordonnées illisibles : {text!r} ; attendu « longitude latitude » "
        "(ex. 1.4020 43.5750 ou 1,4020 43,5750) ou « latitude, longitude » copié d'une "
        'carte en ligne (ex. "43.5750, 1.4020" ou "43,5750 ; 1,4020")'
    )


def _typed_number(text: str) -> float:
    """A :data:`_NUMBER` as typed: decimal comma and typographic minus accepted."""
    return float(text.replace(",", ".").replace("\u2212", "-"))


def parse_lon_lat(lon: float | str, lat: float | str) -> tuple[float, float]:
    """Read a longitude and a latitude given apart, as numbers or as typed text.

    Parameters
    ----------
    lon, lat : float or str
        Decimal degrees: numbers, or text written as :func:`parse_point` reads each
        number (``"1.4020"``, ``"1,4020"``, ``"−52,33"``, spaces around allowed).

    Returns
    -------
    tuple of float
        Longitude and latitude (not checked against France: the classification does).

    Raises
    ------
    ValueError
        In French, naming the coordinate and the accepted forms, for a text that is not
        one number or a value that is neither a number nor a text.
    """
    read = []
    for value, label in ((lon, "longitude"), (lat, "latitude")):
        if isinstance(value, str):
            if not re.fullmatch(_NUMBER, value.strip()):
                raise ValueError(
                    f"{label} {value!r} illisible : attendu des degrés décimaux, point ou "
                    "virgule décimale (ex. 1.4020 ou 1,4020) ; pour une adresse, donnez "
                    "l'adresse seule, sans latitude"
                )
            read.append(_typed_number(value.strip()))
        elif isinstance(value, Real) and not isinstance(value, bool):
            read.append(float(value))
        else:
            raise ValueError(
                f"{label} {value!r} ({type(value).__name__}) : attendu un nombre de degrés décimaux"
            )
    return read[0], read[1]


#: One number meant as degrees: at most three digits before the decimal part, or not a
#: number at all (``nan``, ``inf``).
_DEGREES = re.compile(r"[-+\u2212]?(?:\d{1,3}(?:[.,]\d+)?|nan|inf(?:inity)?)", re.IGNORECASE)
#: A number that can only be meant as degrees beside a word: a decimal part or a sign.
_DECIMAL_DEGREES = re.compile(
    r"[-+\u2212]?(?:\d{1,3}[.,]\d+|nan|inf(?:inity)?)|[-+\u2212]\d{1,3}", re.IGNORECASE
)
#: One coordinate in degrees, minutes, seconds: ``43°34'30"N``, ``1° 24′ 7.5″ E``.
_DMS = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*°\s*(?:(\d+(?:[.,]\d+)?)\s*['′’]\s*)?"
    r"(?:(\d+(?:[.,]\d+)?)\s*(?:\"|″|”|'')\s*)?([NSEWO])?",
    re.IGNORECASE,
)


def read_place(text: str) -> tuple[float, float] | str:
    """Read one place typed by a person: a point, else an address to geocode.

    Parameters
    ----------
    text : str
        A point as :func:`parse_point` reads it (``1,4020 43,5750``, ``43.5750,
        1.4020``), or a postal address (``12 rue de Metz 31000 Toulouse``, ``31000
        Toulouse``).

    Returns
    -------
    tuple of float or str
        Longitude and latitude, or the text itself, an address.

    Raises
    ------
    ValueError
        In French, with the form expected, when the text is clearly meant as
        coordinates but cannot be read: one number alone (``1.4020``), two words of which
        one is a number of degrees (``1.4020 nan``, ``abc 43.5``), or degrees, minutes,
        seconds (``43°34'30"N 1°24'07"E``, not read: the message gives them in decimal
        degrees). Such a text would otherwise be sent to the geocoder.
    """
    try:
        return parse_point(text)
    except ValueError as error:
        unreadable = error
    if re.search(r"\d\s*°", text):  # not « n° 12 rue… »
        raise ValueError(_dms_message(text)) from None
    words = text.split()
    if len(words) == 1 and _DEGREES.fullmatch(words[0].rstrip(",;")):
        raise ValueError(
            f"latitude manquante après {words[0]!r} : attendu « longitude latitude » "
            "(ex. 1.4020 43.5750), ou une adresse"
        )
    if len(words) == 2 and any(_DECIMAL_DEGREES.fullmatch(word.rstrip(",;")) for word in words):
        first, second = words
        if first[-1] in ",;":  # « latitude, longitude » as copied from a web map
            second, first = first[:-1], second
        parse_lon_lat(first, second)  # names the coordinate that is not a number
        raise unreadable  # two numbers in a form parse_point does not read
    return text


def _dms_message(text: str) -> str:
    """Message for coordinates in degrees, minutes, seconds, with their decimal form."""
    decimal = "1.4020 43.5750"
    parts = [part for part in _DMS.findall(text) if part[3]]
    hemispheres = "".join(sorted(part[3].upper() for part in parts))
    if len(parts) == 2 and hemispheres in ("EN", "ES", "NW", "NO", "OS", "SW"):
        degrees = {}
        for whole, minutes, seconds, hemisphere in parts:
            value = sum(
                _typed_number(number) / 60**rank
                for rank, number in enumerate((whole, minutes, seconds))
                if number
            )
            sign = -1 if hemisphere.upper() in "SWO" else 1
            degrees["lat" if hemisphere.upper() in "NS" else "lon"] = sign * value
        decimal = " ".join(
            f"{degrees[name]:.6f}".rstrip("0").rstrip(".") for name in ("lon", "lat")
        )
    return (
        f"coordonnées illisibles : « {text.strip()} » ; les degrés, minutes, secondes ne sont pas "
        f"lus : donnez des degrés décimaux, longitude puis latitude (ex. {decimal})"
    )
