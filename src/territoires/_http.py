"""Network access: downloads and data.gouv.fr resource resolution.

Every request of the library goes through this module, so that the retry policy,
the timeout, the user agent and the offline switch are applied in one place (see
:mod:`territoires.settings`).

Downloads are atomic: the body is written into a temporary file next to the
destination, checked (length announced, checksum when known, no HTML page in place of
data, then the caller's own validation, e.g. that the file opens with the expected
columns), then moved onto the destination in one step. A failed, interrupted or invalid
download never leaves a partial file and never replaces a good one. Messages are in
French, for the person who must act on them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import urlparse

from territoires import _progress, french, settings
from territoires._errors import ChecksumError, DownloadError

if TYPE_CHECKING:  # requests is imported on the first request: `territoires check` starts sooner
    import requests

T = TypeVar("T")

_CHUNK_SIZE = 1 << 16


class _TransientError(Exception):
    """A failure worth another attempt: HTTP 5xx or 429, or a truncated body.

    Attributes
    ----------
    retry_after : float
        Seconds the server asked to wait (``Retry-After`` header of a 429 or 503
        answer), 0 when it said nothing.
    """

    retry_after: float = 0.0


class IncompleteResponse(_TransientError):
    """Raised by a consumer of :func:`request` when a body is cut or incomplete.

    The request is then sent again, like after an HTTP 5xx answer.
    """


#: Longest wait honoured from a ``Retry-After`` header, in seconds.
_MAX_RETRY_AFTER = 60.0
_last_start: dict[str, float] = {}
_throttle_lock = threading.Lock()


@lru_cache(maxsize=1)
def _session() -> requests.Session:
    """The HTTP session of the process, created (and requests imported) on first use."""
    import requests

    return requests.Session()


#: Found near the start of an HTML page (a portal, login or error page sent with status
#: 200); no catalogued format (GeoJSON, GeoPackage, CSV, JSON, XLSX, zip) starts with ``<``.
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")


def _mirror_hint(url: str) -> str:
    """Return the advice given when a file cannot be downloaded."""
    return (
        f"Téléchargez {url} par un autre moyen et placez-le dans le dossier miroir nommé "
        f"par {settings.DATA_DIR_ENV}, ou faites pointer {settings.DATA_DIR_ENV} vers un "
        "dossier qui le contient."
    )


def _throttle(host: str, rate: float | None) -> None:
    """Wait so that requests to `host` start at most `rate` times per second.

    Threads share the schedule: each one books the next free slot, then sleeps
    until it comes.
    """
    if not rate or rate <= 0:
        return
    with _throttle_lock:
        now = time.monotonic()
        start = max(now, _last_start.get(host, 0.0) + 1.0 / rate)
        _last_start[host] = start
    if start > now:
        time.sleep(start - now)


def _retry_after(response: requests.Response) -> float:
    """Seconds asked by a ``Retry-After`` header given in seconds (0 if absent)."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER)
    except ValueError:
        return 0.0


def request(
    url: str,
    consume: Callable[[requests.Response], T],
    *,
    method: str = "GET",
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    files: Mapping[str, Any] | None = None,
    rate: float | None = None,
) -> T:
    """Send a request with the retry policy and hand the response to `consume`.

    The request is retried (up to ``settings.retries`` attempts, with a backoff
    starting at ``settings.backoff`` seconds and doubling, or longer when the server
    sends ``Retry-After``) on connection errors, timeouts, HTTP 5xx and 429 answers,
    and on :class:`IncompleteResponse` raised by `consume` (e.g. a body shorter than
    announced). Other HTTP errors fail at once.

    Parameters
    ----------
    url : str
        URL to fetch.
    consume : callable
        Called with the streamed, successful response; its result is returned. It
        runs again on each attempt, so it must start its work from scratch.
    method : str, default "GET"
        HTTP method.
    params, data, files : mapping, optional
        Query string, form fields and multipart files, as for :mod:`requests`.
    rate : float, optional
        Most requests per second sent to the host of `url` (every attempt counts);
        no limit when omitted.

    Returns
    -------
    T
        What `consume` returned.

    Raises
    ------
    DownloadError
        When network access is forbidden, on a non-retryable HTTP error, or when
        every attempt failed.
    """
    if settings.offline:
        raise DownloadError(
            f"accès au réseau interdit ({settings.OFFLINE_ENV} est défini) : impossible "
            f"de télécharger {url}. {_mirror_hint(url)}"
        )
    import requests

    retryable = (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
        _TransientError,
    )
    host = urlparse(url).netloc or url
    attempts = max(1, settings.retries)
    wait = 0.0
    for attempt in range(attempts):
        if attempt:
            time.sleep(max(wait, settings.backoff * 2 ** (attempt - 1)))
        _throttle(host, rate)
        try:
            with _session().request(
                method,
                url,
                params=params,
                data=data,
                files=files,
                stream=True,
                timeout=settings.timeout,
                headers={"User-Agent": settings.user_agent},
            ) as response:
                status = response.status_code
                if status == 429 or status >= 500:
                    error = _TransientError(f"réponse HTTP {status} {response.reason} pour {url}")
                    error.retry_after = _retry_after(response)
                    raise error
                if status >= 400:
                    raise DownloadError(
                        f"réponse HTTP {status} {response.reason} pour {url}. {_mirror_hint(url)}"
                    )
                return consume(response)
        except retryable as exc:
            last_error = exc
            wait = getattr(exc, "retry_after", 0.0)
    if isinstance(last_error, requests.Timeout):
        reason = f"{host} n'a pas répondu en {french.number(settings.timeout, None)} s"
    elif isinstance(last_error, requests.ConnectionError):
        reason = f"{host} injoignable (réseau coupé ou hors ligne)"
    elif isinstance(last_error, requests.exceptions.ChunkedEncodingError):
        reason = f"téléchargement de {url} interrompu (transfert tronqué)"
    else:
        reason = f"échec du téléchargement de {url} : {last_error}"
    raise DownloadError(
        f"{reason}, après {attempts} tentative(s). {_mirror_hint(url)}"
    ) from last_error


def sha256sum(path: Path) -> str:
    """Return the SHA-256 digest of a file.

    Parameters
    ----------
    path : pathlib.Path
        File to hash, read in chunks.

    Returns
    -------
    str
        Lower-case hexadecimal digest.
    """
    stat = Path(path).stat()
    return _sha256_of(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _sha256_of(path: str, mtime_ns: int, size: int) -> str:
    """Digest of a file, remembered while its modification time and size are unchanged."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _write_body(response: requests.Response, *, fh: BinaryIO, desc: str, progress: bool) -> str:
    """Write a streamed response body into `fh` and return its SHA-256 digest.

    Parameters
    ----------
    response : requests.Response
        Successful, streamed response.
    fh : binary file
        Open file, emptied first so that a retried attempt starts afresh.
    desc : str
        Label of the progress bar.
    progress : bool
        Show a progress bar sized from the ``Content-Length`` header.

    Returns
    -------
    str
        Lower-case hexadecimal SHA-256 digest of the body.

    Raises
    ------
    _TransientError
        When fewer bytes arrived than announced by ``Content-Length``.
    """
    fh.seek(0)
    fh.truncate()
    digest = hashlib.sha256()
    announced = response.headers.get("Content-Length", "")
    total = int(announced) if announced.isdigit() else None
    with _progress.bar(progress, total=total, unit="B", unit_scale=True, desc=desc) as bar:
        for chunk in response.iter_content(_CHUNK_SIZE):
            fh.write(chunk)
            digest.update(chunk)
            bar.update(len(chunk))
    received = response.raw.tell()  # bytes on the wire, before any decompression
    if total is not None and received < total:
        raise _TransientError(f"transfert interrompu : {received} octets reçus sur {total}")
    return digest.hexdigest()


def _check_not_html(path: Path, url: str) -> None:
    """Refuse a body that is an HTML page (maintenance, login or error page sent as 200)."""
    with path.open("rb") as fh:
        head = fh.read(512).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<") and any(marker in head for marker in _HTML_MARKERS):
        raise DownloadError(
            f"{url} a renvoyé une page HTML au lieu du fichier de données attendu (page "
            f"de maintenance, de connexion ou d'erreur ?) ; rien n'a été mis en cache. "
            f"{_mirror_hint(url)}"
        )


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    progress: bool = False,
    validate: Callable[[Path], None] | None = None,
) -> Path:
    """Download `url` into `dest` atomically, with retries, checksum and validation.

    Parameters
    ----------
    url : str
        URL of the file.
    dest : pathlib.Path
        Destination file; its folder is created if needed. It is replaced only once
        the whole body has been received and checked.
    sha256 : str, optional
        Expected SHA-256 hexadecimal digest of the file.
    progress : bool, default False
        Show a progress bar sized from the ``Content-Length`` header.
    validate : callable, optional
        Called with the received file (a temporary path ending like `dest`) before it
        replaces `dest`; raises to refuse it (e.g. a body cut short without
        ``Content-Length`` that no longer parses).

    Returns
    -------
    pathlib.Path
        `dest`.

    Raises
    ------
    DownloadError
        When network access is forbidden, the server answers an HTTP error or an HTML
        page, or every attempt failed (unreachable host, timeout, interrupted transfer).
    ChecksumError
        When the received file does not match `sha256`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the destination's suffixes (``.geojson.gz``): readers
    # that validate it choose their driver from them.
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=".partiel-", suffix=f"-{dest.name}")
    tmp_path = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            actual = request(url, partial(_write_body, fh=fh, desc=dest.name, progress=progress))
            fh.flush()
            os.fsync(fh.fileno())
        if sha256 is not None and actual != sha256.strip().lower():
            raise ChecksumError(
                f"somme de contrôle différente pour {url} : sha256 attendu {sha256}, obtenu "
                f"{actual} ; le fichier reçu n'a pas été mis en cache"
            )
        _check_not_html(tmp_path, url)
        if validate is not None:
            validate(tmp_path)
        os.replace(tmp_path, dest)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return dest


def resolve_datagouv(dataset: str, resource: str) -> str:
    """Return the download URL of a data.gouv.fr resource, through the official API.

    Parameters
    ----------
    dataset : str
        Dataset slug or identifier on data.gouv.fr.
    resource : str
        Resource title. An exact title match wins; otherwise the first resource
        whose title or URL file name starts with `resource` (case-insensitive).

    Returns
    -------
    str
        URL of the resource.

    Raises
    ------
    DownloadError
        When the API cannot be reached or answers garbage, or when no resource
        matches (the message lists the available titles).
    """
    api_url = settings.datagouv_api.rstrip("/") + f"/datasets/{dataset}/"
    try:
        resources = request(api_url, lambda response: response.json())["resources"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DownloadError(
            f"réponse inattendue de l'API data.gouv.fr ({api_url}) : {exc!r}"
        ) from exc
    for res in resources:
        if res.get("title") == resource:
            return res["url"]
    prefix = resource.lower()
    for res in resources:
        title = (res.get("title") or "").lower()
        filename = PurePosixPath(urlparse(res.get("url") or "").path).name.lower()
        if title.startswith(prefix) or filename.startswith(prefix):
            return res["url"]
    titles = ", ".join(repr(res.get("title")) for res in resources) or "aucune"
    raise DownloadError(
        f"aucune ressource intitulée {resource!r} dans le jeu data.gouv.fr {dataset!r} "
        f"({api_url}). Ressources disponibles : {titles}"
    )
