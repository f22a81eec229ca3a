"""The one place that guesses how a CSV file is written (encoding and separator).

French files come as UTF-8 (with or without BOM) or Windows-1252, separated by ``;``
(with decimal commas), tabs or commas.
"""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

from ._errors import InputError

#: Encodings tried in order.
ENCODINGS = ("utf-8-sig", "cp1252")
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
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise InputError(f"encodage non reconnu pour {name} : attendu UTF-8 ou Windows-1252")


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
    """Return the separator giving the same number (> 1) of fields on the first lines.

    ``csv.Sniffer`` is not used: decimal commas fool it on ``;``-separated files.
    """
    lines = list(itertools.islice(io.StringIO(text), SNIFF_LINES))

    def score(separator: str) -> tuple[bool, int]:
        widths = [len(row) for row in csv.reader(lines, delimiter=separator) if row]
        return bool(widths) and len(set(widths)) == 1 and widths[0] > 1, max(widths, default=0)

    return max(SEPARATORS, key=score)
