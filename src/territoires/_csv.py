"""The one place that guesses how a CSV file is written (encoding and separator).

French files come as UTF-8 (with or without BOM), Windows-1252 or UTF-16 (Excel's
« Texte Unicode »), separated by ``;`` (with decimal commas), tabs or commas, sometimes
with Excel's ``sep=;`` first line.

A large file is also read here in byte blocks (:func:`layout`, :func:`read_block`), each
block giving the rows, cells and column names that :func:`territoires.places.read_places`
gives for the same lines of the whole file.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from . import french
from ._errors import InputError

#: Encodings tried in order, after UTF-16 recognised by its byte order mark or its zeros.
ENCODINGS = ("utf-8-sig", "cp1252")
#: Excel's first line naming the separator (``sep=;``).
_EXCEL_SEPARATOR = re.compile(r"^\ufeff?sep=(.)\r?\n?$")
#: Separators tried, the most common in French files first.
SEPARATORS = (";", "\t", ",")
#: Lines looked at to choose the separator.
SNIFF_LINES = 50
#: Bytes read from a large file to guess its encoding and separator.
SNIFF_BYTES = 1 << 20


def decode(data: bytes, name: str | Path) -> tuple[str, str]:
    """Decode bytes as UTF-8 (with or without BOM), else Windows-1252.

    Returns
    -------
    text, encoding : str

    Raises
    ------
    InputError
        When neither encoding fits; the message names ``name``.
    """
    encodings: tuple[str, ...] = ENCODINGS
    odd, even = data[1:400:2], data[0:400:2]
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encodings = ("utf-16",)
    elif len(odd) >= 2 and odd.count(0) >= 0.75 * len(odd):  # Latin text, no BOM
        encodings = ("utf-16-le",)
    elif len(even) >= 2 and even.count(0) >= 0.75 * len(even):
        encodings = ("utf-16-be",)
    for encoding in encodings:
        try:
            return data.decode(encoding).removeprefix("\ufeff"), encoding
        except UnicodeDecodeError:
            continue
    raise InputError(f"encodage non reconnu pour {name} : attendu UTF-8, Windows-1252 ou UTF-16")


def sample(path: Path) -> tuple[str, str]:
    """Decode the first whole lines of a file (at most :data:`SNIFF_BYTES`).

    Returns
    -------
    text, encoding : str
    """
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if len(head) == SNIFF_BYTES:
        head = head[: head.rfind(b"\n") + 1]
    return decode(head, path)


def sniff_separator(text: str) -> str:
    """Return the separator splitting the header (> 1 fields) like most first lines.

    ``csv.Sniffer`` is not used: decimal commas fool it on ``;``-separated files. A
    ragged line among the first ones does not change the choice; Excel's ``sep=;``
    first line, when present, decides (see :func:`excel_separator`).
    """
    declared = excel_separator(text)
    if declared is not None:
        return declared
    lines = list(itertools.islice(io.StringIO(text, newline=""), SNIFF_LINES))

    def score(separator: str) -> tuple[int, int]:
        widths = [len(row) for row in csv.reader(lines, delimiter=separator) if row]
        header = widths[0] if widths else 0
        return (sum(width == header for width in widths) if header > 1 else 0), header

    return max(SEPARATORS, key=score)


def excel_separator(text: str) -> str | None:
    """Return the separator named by Excel's ``sep=;`` first line, or None without one."""
    first = next(iter(io.StringIO(text, newline="")), "")
    match = _EXCEL_SEPARATOR.match(first)
    return match.group(1) if match else None


def header_names(cells: list[Any]) -> list[str]:
    """Column names from header cells: blanks named ``colonne_N``, repeats ``name.1``.

    Repeated names are numbered as pandas does, so that ``lon="longitude.1"`` chooses
    the second of two ``longitude`` columns.
    """
    names: list[str] = []
    for position, cell in enumerate(cells, start=1):
        text = "" if cell is None or (isinstance(cell, float) and np.isnan(cell)) else str(cell)
        name = text if text.strip() else f"colonne_{position}"
        base, count = name, 0
        while name in names:
            count += 1
            name = f"{base}.{count}"
        names.append(name)
    return names


#: Separators as a message names them.
SEPARATOR_NAMES = {";": "point-virgule", ",": "virgule", "\t": "tabulation"}


def separator_name(separator: str) -> str:
    """The separator as a message names it: ``point-virgule``, ``'|'``."""
    return SEPARATOR_NAMES.get(separator, repr(separator))


@dataclass(frozen=True)
class Layout:
    """How a CSV file is written and where its records lie, to read it in byte blocks.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    encoding : str
        ``utf-8-sig`` or ``cp1252``, as :func:`decode` guesses it on the first megabyte.
    separator : str
        As :func:`sniff_separator` chooses it.
    names : tuple of str
        Column names, as :func:`header_names` gives them.
    first_line : int
        Line of the file holding the first record (2, or 3 after Excel's ``sep=;``
        line, later below a title).
    start, end : int
        Bytes of the records: from the first one to the last one, blank lines at the end
        of the file left out (``read_places`` drops them).
    """

    path: Path
    encoding: str
    separator: str
    names: tuple[str, ...]
    first_line: int
    start: int
    end: int


def layout(path: Path, header: Callable[[str, Path], tuple[int, str]]) -> Layout:
    """Read the header and find the records of a CSV file, as ``read_places`` does.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    header : callable
        Given the first lines of the file and its path, the physical lines above the
        header (Excel's ``sep=;`` line, a title) and the separator:
        :func:`territoires.places.csv_header`, which ``read_places`` uses too.

    Raises
    ------
    InputError
        An empty file, a file without header or without rows, or a UTF-16 file (whose
        lines cannot be found by their bytes: the message says to save it as UTF-8).
    """
    text, encoding = sample(path)
    if not text.strip():
        raise InputError(f"fichier vide : {path} ne contient aucune ligne de données")
    if encoding.startswith("utf-16"):
        raise InputError(
            f"{path} est en UTF-16 (« Texte Unicode » d'Excel), illisible par blocs : "
            "ouvrez-le dans le tableur et enregistrez-le en « CSV UTF-8 », puis relancez"
        )
    skipped, separator = header(text, path)
    lines = io.StringIO(text, newline="")
    for _ in range(skipped):  # physical lines, as read_places skips them
        lines.readline()
    reader = csv.reader(lines, delimiter=separator)
    names = next(reader, [])
    if not names:
        raise InputError(f"fichier vide : {path} n'a pas de ligne d'en-tête")
    read = text[: lines.tell()]
    with open(path, "rb") as handle:
        bom = len(codecs.BOM_UTF8) if handle.read(3) == codecs.BOM_UTF8 else 0
        handle.seek(0, io.SEEK_END)
        end = handle.tell()
        while end > 0:  # blank lines at the end of the file are no rows
            handle.seek(max(end - (1 << 16), 0))
            tail = handle.read(end - handle.tell())
            kept = tail.rstrip(b"\r\n")
            end -= len(tail) - len(kept)
            if kept:
                break
    start = bom + len(read.encode("utf-8" if encoding == "utf-8-sig" else encoding))
    if end <= start:
        raise InputError(f"fichier vide : {path} ne contient aucune ligne de données")
    return Layout(
        path=path,
        encoding=encoding,
        separator=separator,
        names=tuple(header_names(names)),
        first_line=skipped + reader.line_num + 1,
        start=start,
        end=end,
    )


def blocks(where: Layout, blocksize: int) -> list[tuple[int, int]]:
    """Byte ranges ``(offset, length)`` of about ``blocksize`` bytes covering the records.

    Each range is cut by :func:`read_block` at line starts: every record falls in one.
    """
    size = max(int(blocksize), 1)
    return [
        (offset, min(size, where.end - offset)) for offset in range(where.start, where.end, size)
    ]


def _line_start(handle: Any, position: int, where: Layout) -> int:
    """The first position at or after ``position`` that starts a line (or ``where.end``)."""
    if position <= where.start:
        return where.start
    handle.seek(position - 1)
    while True:
        chunk = handle.read(1 << 16)
        found = chunk.find(b"\n")
        if found >= 0:
            return min(handle.tell() - len(chunk) + found + 1, where.end)
        if not chunk:
            return where.end


def read_block(where: Layout, offset: int, length: int) -> pd.DataFrame:
    """The records of one byte range, with the cells ``read_places`` reads for them.

    The records are those whose line starts in ``[offset, offset + length)`` (see
    :func:`blocks`); cells are text (pandas ``str``), empty ones missing, columns named
    as in the whole file.

    Raises
    ------
    InputError
        A record with more or fewer fields than the header, a quoted cell spanning
        several lines, or bytes that are not in the file's encoding: the message names
        the first such line, what was found there and expected, and how to correct the
        file (see :func:`_irregular`).
    """
    with open(where.path, "rb") as handle:
        begin = _line_start(handle, offset, where)
        stop = _line_start(handle, offset + length, where)
        handle.seek(begin)
        data = handle.read(stop - begin)
    names = list(where.names)
    try:
        data.decode(where.encoding)
    except UnicodeDecodeError as error:
        raise _irregular(where, begin, data[: error.start], encoding=True) from error
    if not data:
        return pd.DataFrame({name: pd.Series([], dtype="str") for name in names})
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(
                column_names=[str(position) for position in range(len(names))],
                encoding="utf8" if where.encoding == "utf-8-sig" else where.encoding,
            ),
            parse_options=pa_csv.ParseOptions(delimiter=where.separator, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(map(str, range(len(names))), pa.string()),
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except pa.ArrowInvalid as error:
        raise _irregular(where, begin, data) from error
    records = data.count(b"\n") + (not data.endswith(b"\n"))
    if b"\r" in data:  # a lone CR ends a line too
        records += data.count(b"\r") - data.count(b"\r\n")
    if table.num_rows != records:
        raise _irregular(where, begin, data)
    frame = table.to_pandas()
    frame.columns = names
    return frame


def _irregular(where: Layout, begin: int, data: bytes, *, encoding: bool = False) -> InputError:
    """The error for a block that cannot be read line by line, naming the first bad line.

    The message says what was found and expected there and how to correct the file: a
    line with more or fewer fields than the header, a quoted cell spanning lines, or
    (``encoding``: ``data`` stops where its bytes leave the encoding) bytes outside the
    encoding.
    """
    with open(where.path, "rb") as handle:
        before = handle.read(begin).count(b"\n")
    text = data.decode(where.encoding, errors="replace")
    if encoding:
        number = before + text.count("\n") + 1
        problem = (
            f"caractères hors de l'encodage {where.encoding} du début du fichier (encodages "
            "mêlés ?) : ouvrez le fichier dans le tableur et enregistrez-le entier en "
            "« CSV UTF-8 »"
        )
    else:
        number, problem = before + 1, "vérifiez ses guillemets et ses séparateurs"
        for line_number, line in enumerate(io.StringIO(text, newline=""), start=before + 1):
            found = _line_problem(line, where)
            if found is not None:
                number, problem = line_number, found
                break
    return InputError(
        f"{where.path}, ligne {number} : {problem} ; corrigez cette ligne du fichier et "
        "relancez (la lecture par blocs s'arrête à la première ligne irrégulière)"
    )


def _line_problem(line: str, where: Layout) -> str | None:
    """What is wrong with one line of the file and how to correct it, None if nothing."""
    if line.count('"') % 2:
        return (
            "guillemet ouvert et non refermé sur la ligne (cellule sur plusieurs lignes ?) : "
            "refermez le guillemet, ou retirez les retours à la ligne de la cellule"
        )
    fields = len(next(csv.reader([line], delimiter=where.separator), []))
    width, separator = len(where.names), separator_name(where.separator)
    if not fields or fields == width:
        return None
    if fields > width:
        fix = (
            f"un {separator} en trop dans une cellule ? retirez-le ou mettez la cellule "
            'entre guillemets ("…")'
        )
    else:
        missing = width - fields
        fix = (
            f"il manque {french.count(missing, 'champ', 'champs')} : ajoutez "
            f"{'le séparateur manquant' if missing == 1 else 'les séparateurs manquants'} "
            "(une cellule vide compte comme un champ)"
        )
    return (
        f"{french.count(fields, 'champ trouvé', 'champs trouvés')}, {width} attendus comme "
        f"dans l'en-tête (séparateur {separator}) : {fix}"
    )
