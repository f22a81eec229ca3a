"""The one place that guesses how a CSV file is written (encoding and separator).

French files come as UTF-8 (with or without BOM), Windows-1252 or UTF-16 (Excel's
« Texte Unicode »), separated by ``;`` (with decimal commas), tabs or commas, sometimes
with Excel's ``sep=;`` first line.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from pathlib import Path

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
