"""Output files: every path is checked once, before any work, and written atomically.

Each writer declares the formats it writes, as a mapping of extension to a short French
description (:data:`territoires.export.FORMATS`, :data:`territoires.export.REPORT_FORMATS`,
:data:`territoires.maps.MAP_FORMATS`, :data:`territoires.distributed.PARTITION_FORMATS`),
and calls :func:`check_path` first; the command line calls the same function on its
``-o`` options before reading anything, with the input files: a wrong extension, an
output that would overwrite the input, or a folder that is a file never costs a long run.

:func:`replacing` writes files through temporaries in their own folder and renames them
onto their targets together at the end: an interrupted run (Ctrl-C, a crash, a full
disk) leaves the previous files, or nothing, never a half-written file.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ._errors import OutputError


def check_path(
    path: str | Path,
    formats: Mapping[str, str] | None,
    inputs: Iterable[str | Path] = (),
) -> Path:
    """Check that an output path names a format of the writer and can be written safely.

    Parameters
    ----------
    path : str or pathlib.Path
        The file (or, for Parquet, folder) to write.
    formats : mapping of str to str or None
        Accepted extensions (lower case, with the dot) and their French description;
        None accepts any extension.
    inputs : iterable of str or pathlib.Path
        Files read by the same run: none of them may be the output.

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`pathlib.Path`.

    Raises
    ------
    OutputError
        When the extension (compared without case) is not one of ``formats`` (the
        message lists the accepted ones), when ``path`` is one of ``inputs`` (the same
        file, however spelled), or when one of its parent folders is a file.
    """
    path = Path(path)
    if formats is not None and path.suffix.lower() not in formats:
        *others, last = formats
        accepted = f"{', '.join(others)} ou {last}" if others else last
        labels = " ; ".join(dict.fromkeys(formats.values()))
        raise OutputError(
            f"format de sortie inconnu pour {path.name} (extension "
            f"{path.suffix or 'absente'}) : attendu {accepted} ({labels})"
        )
    for source in inputs:
        source = Path(source)
        same = path.exists() and source.exists() and os.path.samefile(path, source)
        if same or path.resolve() == source.resolve():
            raise OutputError(
                f"le fichier de sortie {path} est le fichier d'entrée : il serait écrasé ; "
                "choisissez un autre nom de sortie"
            )
    for folder in path.absolute().parents:
        if folder.exists():
            if not folder.is_dir():
                raise OutputError(
                    f"impossible d'écrire {path} : {folder} est un fichier, pas un dossier"
                )
            break
    return path


@contextmanager
def replacing(*paths: str | Path) -> Iterator[tuple[Path, ...]]:
    """Write files atomically, together: yield temporary paths, rename them at the end.

    Each temporary path lies in a hidden folder created beside its target, with the
    target's own name (writers choose their format from the extension). When the block
    ends without error, every temporary file is renamed onto its target (an atomic
    operation on one file system), with Ctrl-C held back during the renames; on any
    error or interruption the temporaries are deleted and the targets left untouched.

    Parameters
    ----------
    *paths : str or pathlib.Path
        The files to write, e.g. a result and its provenance.

    Yields
    ------
    tuple of pathlib.Path
        Where to write each file, in the same order. A writer need not create all of
        them: only the files that exist at the end replace their targets.

    Raises
    ------
    OutputError
        When a target's folder cannot be created, or a target is a folder.
    """
    targets = [check_path(path, None) for path in paths]
    folders: list[Path] = []
    try:
        for target in targets:
            if target.is_dir():
                raise OutputError(f"la sortie {target} est un dossier : donnez un nom de fichier")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                folders.append(Path(tempfile.mkdtemp(prefix=".partiel-", dir=target.parent)))
            except OSError as error:
                raise OutputError(f"impossible d'écrire {target} : {error.strerror}") from error
        temporaries = tuple(
            folder / target.name for folder, target in zip(folders, targets, strict=True)
        )
        yield temporaries
        with _no_interruption():
            for temporary, target in zip(temporaries, targets, strict=True):
                if temporary.exists():
                    os.replace(temporary, target)
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _no_interruption() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the duration of the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "pthread_sigmask"
    ):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
