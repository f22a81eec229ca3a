"""Output files: every path is checked once, before any work, by the library and the CLI.

Each writer declares the formats it writes, as a mapping of extension to a short French
description (:data:`territoires.export.FORMATS`, :data:`territoires.export.REPORT_FORMATS`,
:data:`territoires.maps.MAP_FORMATS`, :data:`territoires.distributed.PARTITION_FORMATS`),
and calls :func:`check_path` first; the command line calls the same function on its
``-o`` options before reading anything, so a wrong extension never costs a long run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ._errors import OutputError


def check_path(path: str | Path, formats: Mapping[str, str]) -> Path:
    """Check that an output path names one of the formats a writer produces.

    Parameters
    ----------
    path : str or pathlib.Path
        The file (or, for Parquet, folder) to write.
    formats : mapping of str to str
        Accepted extensions (lower case, with the dot) and their French description.

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`pathlib.Path`.

    Raises
    ------
    OutputError
        When the extension (compared without case) is not one of ``formats``; the
        message lists the accepted ones.
    """
    path = Path(path)
    if path.suffix.lower() not in formats:
        *others, last = formats
        accepted = f"{', '.join(others)} ou {last}" if others else last
        labels = " ; ".join(dict.fromkeys(formats.values()))
        raise OutputError(
            f"format de sortie inconnu pour {path.name} (extension "
            f"{path.suffix or 'absente'}) : attendu {accepted} ({labels})"
        )
    return path
