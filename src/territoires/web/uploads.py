"""Uploaded files: streamed to a private temporary folder, size-limited, then removed.

A multipart upload is parsed as it arrives (python-multipart's streaming parser): the
file part goes straight to disk in a folder of the service's temporary root, byte
counts are checked on the way, and nothing is held in memory but one chunk. The file
is saved under a fixed name (``entree`` plus an accepted extension): the client's file
name never becomes a path. Results offered for download by the staff page live in
folders named by a random token and expire.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from .. import french
from .service import RequestError

#: Extensions accepted for uploads (same readers as the CLI).
UPLOAD_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".geojson", ".json")

#: Largest text field of a form (rules name, distance…), in bytes.
MAX_FIELD_BYTES = 1024

#: Room for multipart headers and text fields beyond the file itself, in bytes.
_ENVELOPE_BYTES = 64 * 1024

#: An XLSX file is a zip archive; it may expand to this many times the upload limit.
XLSX_EXPANSION = 20

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,64}$")


def _too_large(limit: int) -> RequestError:
    return RequestError(
        413,
        "fichier trop volumineux",
        "le fichier dépasse la taille maximale acceptée de "
        f"{french.number(limit / 1_000_000, None)} Mo ; découpez-le ou utilisez "
        "« territoires classify » en ligne de commande",
    )


def safe_stem(filename: str | None, default: str = "lieux") -> str:
    """File name stem reduced to letters, digits, ``-`` and ``_`` (for downloads)."""
    stem = Path(filename or "").stem
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:60]
    return stem or default


@dataclass
class Upload:
    """A received upload: the saved file, the client's file name and the text fields."""

    path: Path
    filename: str
    fields: dict[str, str] = field(default_factory=dict)


class _Receiver:
    """Callbacks of the streaming multipart parser: one file part, small text fields."""

    def __init__(self, folder: Path, file_field: str, limit: int) -> None:
        self.folder = folder
        self.file_field = file_field
        self.limit = limit
        self.fields: dict[str, str] = {}
        self.upload: Upload | None = None
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._filename: str | None = None
        self._file: IO[bytes] | None = None
        self._text = bytearray()
        self._size = 0

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._text = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._filename = None if filename is None else filename.decode("utf-8", "replace")
        if self._filename is None:
            return
        if self._name != self.file_field:
            raise RequestError(
                422,
                "paramètre invalide",
                f"champ de fichier inattendu « {self._name} » : envoyez le fichier dans "
                f"le champ « {self.file_field} »",
            )
        if self.upload is not None:
            raise RequestError(422, "paramètre invalide", "un seul fichier par envoi")
        suffix = Path(self._filename).suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            raise RequestError(
                415,
                "format non pris en charge",
                f"fichier « {self._filename} » : extension {suffix or '(aucune)'} non acceptée ; "
                f"attendu {', '.join(UPLOAD_SUFFIXES)}",
            )
        path = self.folder / f"entree{suffix}"
        self._file = path.open("wb")
        self.upload = Upload(path=path, filename=self._filename)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._size += end - start
            if self._size > self.limit:
                raise _too_large(self.limit)
            self._file.write(data[start:end])
            return
        self._text += data[start:end]
        if len(self._text) > MAX_FIELD_BYTES:
            raise RequestError(
                422, "paramètre invalide", f"champ « {self._name} » trop long (> 1 Ko)"
            )

    def on_part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self._name:
            self.fields[self._name] = self._text.decode("utf-8", "replace")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


async def receive_upload(
    request: Request, folder: Path, limit: int, file_field: str = "fichier"
) -> Upload:
    """Stream a ``multipart/form-data`` request's file to ``folder``.

    Parameters
    ----------
    request : starlette.requests.Request
    folder : pathlib.Path
        Private temporary folder of this request (removed by the caller).
    limit : int
        Largest file accepted, in bytes.
    file_field : str
        Name of the form field holding the file.

    Returns
    -------
    Upload

    Raises
    ------
    RequestError
        413 over ``limit`` (from ``Content-Length`` before reading, else while reading),
        415 for another content type or file extension, 422 without a file or for an
        empty file, 400 for a malformed body.
    """
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise RequestError(
            415,
            "format non pris en charge",
            "envoyez le fichier en multipart/form-data, dans le champ « fichier » "
            "(curl -F fichier=@lieux.csv …)",
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _ENVELOPE_BYTES:
        raise _too_large(limit)
    receiver = _Receiver(folder, file_field, limit)
    parser = MultipartParser(options[b"boundary"], receiver.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + _ENVELOPE_BYTES:
                raise _too_large(limit)
            parser.write(chunk)
        parser.finalize()
    except RequestError:
        raise
    except Exception as error:
        raise RequestError(
            400, "envoi illisible", f"corps multipart/form-data mal formé ({error})"
        ) from error
    finally:
        receiver.close()
    upload = receiver.upload
    if upload is None:
        raise RequestError(
            422,
            "paramètre invalide",
            f"aucun fichier reçu : joignez-le dans le champ « {file_field} »",
        )
    if upload.path.stat().st_size == 0:
        raise RequestError(422, "fichier inutilisable", f"fichier « {upload.filename} » vide")
    upload.fields = receiver.fields
    if upload.path.suffix == ".xlsx":
        _check_archive(upload, limit)
    return upload


def _check_archive(upload: Upload, limit: int) -> None:
    """Refuse an XLSX that is not a zip archive or would expand beyond reason."""
    try:
        with zipfile.ZipFile(upload.path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as error:
        raise RequestError(
            422,
            "fichier inutilisable",
            f"fichier « {upload.filename} » : ce n'est pas un classeur XLSX valide ({error})",
        ) from error
    if expanded > limit * XLSX_EXPANSION:
        raise RequestError(
            413,
            "fichier trop volumineux",
            f"fichier « {upload.filename} » : le classeur décompressé dépasserait "
            f"{french.number(limit * XLSX_EXPANSION / 1_000_000, None)} Mo",
        )


class TempRoot:
    """The service's temporary root: one folder per request, result folders by token.

    Parameters
    ----------
    ttl : float
        Seconds a result folder stays downloadable.
    """

    def __init__(self, ttl: float = 1800.0) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="territoires-serve-"))
        self.ttl = ttl
        (self.root / "resultats").mkdir()

    def request_folder(self) -> Path:
        """A new private folder for one request (remove it with :meth:`remove`)."""
        return Path(tempfile.mkdtemp(prefix="requete-", dir=self.root))

    @staticmethod
    def remove(folder: Path) -> None:
        """Delete a folder and everything in it."""
        shutil.rmtree(folder, ignore_errors=True)

    def result_folder(self) -> tuple[str, Path]:
        """A new result folder and its unguessable token; expired ones are purged."""
        self.purge()
        token = secrets.token_urlsafe(24)
        folder = self.root / "resultats" / token
        folder.mkdir()
        return token, folder

    def result_file(self, token: str, name: str) -> Path | None:
        """The file ``name`` of result ``token``, or None (unknown, expired, bad name)."""
        self.purge()
        if not _TOKEN.match(token) or "/" in name or name.startswith("."):
            return None
        folder = self.root / "resultats" / token
        path = folder / name
        if not path.is_file() or time.time() - folder.stat().st_mtime > self.ttl:
            return None
        return path

    def purge(self) -> None:
        """Delete the result folders older than ``ttl``."""
        now = time.time()
        for folder in (self.root / "resultats").iterdir():
            if now - folder.stat().st_mtime > self.ttl:
                shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Delete the whole temporary root (at shutdown)."""
        shutil.rmtree(self.root, ignore_errors=True)
