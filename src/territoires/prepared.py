"""The prepared reference, persisted in the user cache so that a new process starts fast.

Reading the official files and indexing them takes seconds; a prepared
:class:`~territoires.engine.Reference` (indexes and commune grids included) is written
once to ``<cache>/references/<key>.ref`` and read back by the next processes.

The file name (the key) is a SHA-256 of everything the reference is made from: the
package version and source code, the rules (every field of the rules object, whatever
rules are added later), the resolved mirror folder, the catalogue, and the file (path,
size, date) each catalogued dataset would be read from (mirror, else download cache).
The file itself records the CRC-32 of its own payload and the SHA-256 of every source
file the reference was built from (``Reference.sources``, whatever datasets the loaders
read). It is used only when all of them still match: an edited source, an edited or
truncated cache file is detected before anything is unpickled, and the reference is
rebuilt and written again, atomically (temporary file, then rename). At most
:data:`KEEP` files are kept, the least recently used are removed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import mmap
import os
import pickle
import tempfile
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import _http, catalogue, settings

#: First bytes of a persisted reference file (format version included).
MAGIC = b"territoires-reference-1\n"

#: Persisted references kept in the cache (the least recently used are removed).
KEEP: int = 8


def folder() -> Path:
    """Folder of the persisted references, in the user cache."""
    return Path(settings.cache_dir) / "references"


def key(rules: Any, data_dir: Path | None) -> str:
    """SHA-256 naming the persisted reference of ``rules`` read from ``data_dir``.

    Parameters
    ----------
    rules : Rules
        Any frozen dataclass: every field is part of the key.
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.
    """
    from . import __version__

    mirror = catalogue.mirror_folder(data_dir)
    mirror = mirror.resolve() if mirror is not None else None
    described = {
        "version": __version__,
        "code": _code(),
        "regles": _canonical(rules),
        "miroir": str(mirror),
        "catalogue": _canonical(catalogue.datasets()),
        # a reference built from files accepted as modified is never read by a run
        # that refuses them (it would skip the checksum check of the loaders)
        "modifies_acceptes": settings.accept_modified,
        "fichiers": {
            name: _stat(dataset.local_path(mirror))
            for name, dataset in catalogue.datasets().items()
        },
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def path(rules: Any, data_dir: Path | None) -> Path:
    """File of the persisted reference of ``rules`` read from ``data_dir`` (see :func:`key`)."""
    return folder() / f"{key(rules, data_dir)}.ref"


def load_or_build(rules: Any, data_dir: Path | None, build: Callable[[], Any]) -> Any:
    """The persisted reference of ``rules`` if still valid, else ``build()`` persisted.

    Parameters
    ----------
    rules : Rules
        Rules of the reference.
    data_dir : pathlib.Path, optional
        Mirror folder.
    build : callable
        Builds the prepared reference (with a ``sources`` list of provenance dicts, each
        with ``fichier`` and ``sha256``).

    Returns
    -------
    Reference
        Read from the cache, or built (and then written to the cache).
    """
    target = path(rules, data_dir)
    ref = read(target)
    if ref is None:
        ref = build()
        try:
            write(target, ref)
        except OSError as error:
            warnings.warn(
                f"référence préparée non enregistrée dans le cache ({target}) : {error}",
                stacklevel=2,
            )
    return ref


def read(path: Path) -> Any | None:
    """The reference stored in ``path``, or ``None`` if absent, stale or corrupt.

    Nothing is unpickled before the payload's CRC-32 and the sources' SHA-256 have
    been checked against the header.
    """
    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            ref = _checked_load(mapped)  # mapped, not copied: a new process reads it once
    except (OSError, ValueError):  # unreadable, or an empty file (nothing to map)
        return None
    if ref is not None:
        os.utime(path)  # most recently used
    return ref


def _checked_load(mapped: mmap.mmap) -> Any | None:
    """Unpickle the payload of a reference file once its header's checks pass."""
    if mapped[: len(MAGIC)] != MAGIC:
        return None
    end = mapped.find(b"\n", len(MAGIC))
    if end < 0:
        return None
    header = json.loads(mapped[len(MAGIC) : end])
    with memoryview(mapped)[end + 1 :] as payload:
        if not isinstance(header, dict) or _digest(payload) != header.get("crc32"):
            return None
        for source in header.get("sources", []):
            try:
                if _http.sha256sum(Path(source["fichier"])) != source["sha256"]:
                    return None
            except (OSError, KeyError, TypeError):
                return None
        try:
            return pickle.loads(payload)  # checked against the header's digest first
        except Exception:  # a corrupt payload may raise anything
            return None


def write(path: Path, ref: Any) -> Path:
    """Write ``ref`` (prepared) to ``path`` atomically, then prune old references.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    payload = pickle.dumps(ref, protocol=pickle.HIGHEST_PROTOCOL)
    header = {
        "crc32": _digest(payload),
        "sources": [
            {"fichier": source["fichier"], "sha256": source["sha256"]} for source in ref.sources
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(MAGIC)
            fh.write(json.dumps(header).encode() + b"\n")
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    _prune(path.parent)
    return path


def _digest(payload: bytes | memoryview) -> int:
    """CRC-32 of a payload, to detect a truncated or damaged file.

    Several times faster than SHA-256 on the tens of megabytes every new process reads.
    """
    return zlib.crc32(payload)


def _prune(where: Path) -> None:
    """Keep the :data:`KEEP` most recently used references of ``where``."""
    files = sorted(where.glob("*.ref"), key=lambda file: file.stat().st_mtime, reverse=True)
    for old in files[KEEP:]:
        old.unlink(missing_ok=True)


def _code() -> str:
    """SHA-256 of the package's source files: a changed engine never reads old files."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _stat(path: Path | None) -> list[Any] | None:
    """Path, size and modification time of the file a dataset would be read from."""
    if path is None:
        return None
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def _canonical(value: Any) -> Any:
    """A JSON-able description of ``value`` that does not depend on hash order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "type": type(value).__qualname__,
            **{
                field.name: _canonical(getattr(value, field.name))
                for field in dataclasses.fields(value)
            },
        }
    if isinstance(value, dict):
        return sorted([[_canonical(k), _canonical(v)] for k, v in value.items()], key=repr)
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(item) for item in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
