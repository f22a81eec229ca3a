"""Geocoding of postal addresses with the national geocoder (IGN Géoplateforme).

The service (``settings.geocoder_url``, ``https://data.geopf.fr/geocodage`` by default,
or any self-hosted addok/BAN instance with the same API) answers one address on
``/search`` (GeoCodeJSON) and a CSV file of addresses on ``/search/csv`` (the input
columns plus ``result_*`` columns, ``latitude`` and ``longitude``). Its URLs, limits and
their sources are in the catalogue (``data/geocodage/services.json``).

:func:`geocode` sends files of addresses to the batch endpoint, or one request per
address, at most ``settings.geocoder_rate`` requests per second, with the retry policy
of :mod:`territoires._http` (backoff, ``Retry-After``, time-outs). Every answer, found
or not, is kept in a cache on disk (``<settings.cache_dir>/geocodage.sqlite``) keyed by
the service and the normalised address, so that a second run of the same file sends no
request and works offline. A failed request never loses an address: it comes out
unplaced, with a French reason.

Each address gets a result type (``housenumber``, ``street``, ``locality``,
``municipality``) and a score between 0 and 1. An address is placed (``lon``/``lat``)
when its score reaches the minimum score and its type is finer than the commune, with
the default precision of its type (:data:`PRECISION_M`); a ``municipality`` result
locates the place by its commune only (``commune_donnee``, no point).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sqlite3
import unicodedata
import warnings
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from . import _http, _progress, catalogue, french, settings
from ._errors import DownloadError, InputError

if TYPE_CHECKING:  # imported by _http on the first request
    import requests

#: Result types of the address index, from the most to the least precise.
TYPES: tuple[str, ...] = ("housenumber", "street", "locality", "municipality")

#: French name of each result type, for messages and legends.
TYPE_LABELS: dict[str, str] = {
    "housenumber": "numéro",
    "street": "voie",
    "locality": "lieu-dit",
    "municipality": "commune",
}

#: Default precision, in metres, of a point placed by geocoding, by result type:
#: ``housenumber`` is the position of the number (entrance or parcel, 30 m);
#: ``street`` the middle of the street (250 m: half of a long street);
#: ``locality`` a lieu-dit (500 m). ``municipality`` gives no point: the place is
#: located by its commune only (NaN).
PRECISION_M: dict[str, float] = {
    "housenumber": 30.0,
    "street": 250.0,
    "locality": 500.0,
    "municipality": float("nan"),
}

#: Accepted names of address columns, compared without case, accents or punctuation.
ADDRESS_NAMES: dict[str, tuple[str, ...]] = {
    "adresse": (
        "adresse",
        "adresse_postale",
        "adresse_complete",
        "adresse1",
        "adresse_1",
        "address",
        "voie",
        "rue",
    ),
    "code_postal": ("code_postal", "cp", "codepostal", "code_post", "postcode", "cpostal"),
    "commune": ("commune", "ville", "city", "localite", "nom_commune", "libelle_commune"),
}

#: Columns of the result of :func:`geocode`, in order.
COLUMNS: tuple[str, ...] = (
    "lon",
    "lat",
    "precision_m",
    "commune_donnee",
    "geocodage_label",
    "geocodage_score",
    "geocodage_type",
    "geocodage_citycode",
    "probleme",
)

_SERVICE = "geocodage_geoplateforme"
_SEPARATORS = re.compile(r"[^0-9a-z]+")
_CACHE_FILE = "geocodage.sqlite"
_SQL_BATCH = 500
_CSV_COLUMNS = ("result_score", "result_type", "result_label", "result_citycode")


@dataclass(frozen=True)
class Answer:
    """What the geocoder answered for one address (kept in the cache).

    Attributes
    ----------
    found : bool
        False when the address matched nothing.
    label, type, citycode : str
        Address found, result type and INSEE code of its commune (``""`` if not found).
    score : float
        Score between 0 and 1 (NaN if not found).
    lon, lat : float
        WGS84 position of the result (NaN if not found).
    date : str
        Day of the answer (ISO 8601).
    """

    found: bool
    label: str = ""
    score: float = float("nan")
    type: str = ""
    citycode: str = ""
    lon: float = float("nan")
    lat: float = float("nan")
    date: str = ""


def address_columns(columns: Iterable[Hashable]) -> dict[str, Hashable]:
    """Find the address columns of a table.

    Parameters
    ----------
    columns : iterable
        Column names, compared without case, accents or punctuation with
        :data:`ADDRESS_NAMES`.

    Returns
    -------
    dict
        Role (``adresse``, ``code_postal``, ``commune``) → column, for the roles
        found; empty when the table has no ``adresse`` column (a postcode or commune
        alone locates a commune, not an address).

    Raises
    ------
    InputError
        When two columns fit the same role.
    """
    names = list(columns)
    found: dict[str, Hashable] = {}
    for role, accepted in ADDRESS_NAMES.items():
        matches = [column for column in names if _plain(column, "_") in accepted]
        if len(matches) > 1:
            raise InputError(
                f"plusieurs colonnes possibles pour {role} ({', '.join(map(repr, matches))}) : "
                "renommez celle qui ne doit pas servir au géocodage"
            )
        if matches:
            found[role] = matches[0]
    return found if "adresse" in found else {}


def address_queries(frame: pd.DataFrame, columns: dict[str, Hashable]) -> pd.Series:
    """Build the text sent to the geocoder for each row: address, postcode, commune.

    Parameters
    ----------
    frame : pandas.DataFrame
        Table holding the columns (left unchanged).
    columns : dict
        Output of :func:`address_columns`.

    Returns
    -------
    pandas.Series
        ``string`` dtype, indexed like `frame`; ``<NA>`` when the address cell is empty.
        A postcode read as a number (``1000.0`` from a spreadsheet) is written on five
        digits (``01000``).
    """
    parts = []
    for role in ("adresse", "code_postal", "commune"):
        if role in columns:
            values = frame[columns[role]]
            parts.append(_postcodes(values) if role == "code_postal" else _cells(values))
    text = parts[0]
    for part in parts[1:]:
        text = text.str.cat(part, sep=" ", na_rep="")
    text = text.str.replace(r"\s+", " ", regex=True).str.strip()
    return text.where(parts[0].notna() & (text != ""), pd.NA)


def normalise_query(text: str) -> str:
    """Return the cache key of an address: lower case, no accents, single spaces.

    ``"12, Rue  de l'Église"`` and ``"12 rue de l eglise"`` share one key.
    """
    return _plain(text, " ")


def geocode(
    queries: Sequence[str | None] | pd.Series,
    *,
    min_score: float | None = None,
    offline: bool | None = None,
    batch: bool | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Geocode addresses, with the on-disk cache, in files or one by one.

    Parameters
    ----------
    queries : sequence of str or pandas.Series
        Full addresses (``"12 rue de Metz 31000 Toulouse"``); ``None``/NA/empty for
        rows without address. A Series keeps its index.
    min_score : float, optional
        Lowest score (0 to 1) for an address to be placed; defaults to
        ``settings.geocoder_min_score``.
    offline : bool, optional
        Use the cache only, send no request; always so when ``settings.offline`` is
        set (no network access at all). Addresses missing from the cache come out
        unplaced and say so.
    batch : bool, optional
        ``True`` sends files of ``settings.geocoder_batch_size`` addresses to the CSV
        endpoint, ``False`` one request per address; by default, files when more than
        one address is missing from the cache, else one request.
    progress : bool, default False
        Show a progress bar per file (or per address) sent.

    Returns
    -------
    pandas.DataFrame
        One row per query, same index, columns :data:`COLUMNS`: ``lon``/``lat``
        (WGS84, NaN when not placed), ``precision_m`` (:data:`PRECISION_M`),
        ``commune_donnee`` (INSEE code for a ``municipality`` result, else NA), the
        ``geocodage_*`` columns (the best result, even when it is not used) and
        ``probleme`` (NA when the address was placed or located by its commune, else a
        French reason). ``attrs["geocodage"]`` records the service, the dates of the
        answers, the requests sent and the cache hits.

    Raises
    ------
    InputError
        When `min_score` is not between 0 and 1.
    """
    min_score = settings.geocoder_min_score if min_score is None else float(min_score)
    if not 0 <= min_score <= 1:
        raise InputError(f"score minimum {min_score!r} invalide : attendu un nombre entre 0 et 1")
    offline = bool(offline) or settings.offline  # settings.offline forbids any request
    texts = _cells(pd.Series(queries) if not isinstance(queries, pd.Series) else queries)
    texts = texts.str.replace(r"\s+", " ", regex=True).str.strip().replace("", pd.NA)
    keys = texts.map(normalise_query, na_action="ignore").replace("", pd.NA)
    texts = texts.where(keys.notna(), pd.NA)
    wanted = dict(zip(keys.dropna(), texts.dropna(), strict=True))
    service = settings.geocoder_url
    cache = _Cache(settings.cache_dir / _CACHE_FILE)
    answers = cache.get(service, wanted)
    failures: dict[str, str] = {}
    missing = {key: text for key, text in wanted.items() if key not in answers}
    requests_sent = 0
    mode = "aucune requête"
    if missing and offline:
        failures = dict.fromkeys(
            missing,
            "adresse absente du cache de géocodage (mode hors ligne) : relancez sans "
            "--offline, avec accès au réseau, pour la géocoder",
        )
    elif missing:
        batch = len(missing) > 1 if batch is None else batch
        fetch = _fetch_files if batch else _fetch_each
        mode = "fichiers CSV" if batch else "une requête par adresse"
        fetched, failures, requests_sent = fetch(service, missing, progress)
        cache.put(service, fetched)
        answers.update(fetched)
    out = _table(texts.index, keys, answers, failures, min_score)
    dates = sorted({answers[key].date for key in wanted if key in answers})
    out.attrs["geocodage"] = {
        "service": service,
        "source": _service_title(service),
        "dates_reponses": [dates[0], dates[-1]] if dates else [],
        "adresses": len(wanted),
        "depuis_cache": len(wanted) - len(missing),
        "requetes": requests_sent,
        "score_minimum": min_score,
        "hors_ligne": offline,
        "mode": mode,
    }
    return out


def _plain(text: Hashable, separator: str) -> str:
    """Lower-case ASCII text without accents, runs of other characters turned into a separator.

    Characters without an ASCII form (``œ``, ``ß``) are dropped.
    """
    plain = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return _SEPARATORS.sub(separator, plain.lower()).strip(separator)


def _cells(values: pd.Series) -> pd.Series:
    """Cells as stripped text (``string`` dtype), NA for empty cells."""
    text = values.astype("string").str.strip()
    return text.where(text != "", pd.NA)


def _postcodes(values: pd.Series) -> pd.Series:
    """Postcode cells as text, a number read from a spreadsheet written on five digits."""
    text = _cells(values)
    numeric = text.str.fullmatch(r"\d{1,5}(\.0+)?").fillna(False)
    return text.mask(numeric, text.str.replace(r"\.0+$", "", regex=True).str.zfill(5))


def _service_title(service: str) -> str:
    """Name of the catalogued service at `service`, else the URL itself (self-hosted)."""
    entry = catalogue.services()[_SERVICE]
    return entry["title"] if service == entry["url"] else f"géocodeur à {service}"


def _today() -> str:
    """Today's date, ISO 8601."""
    return dt.date.today().isoformat()


def _number(text: str | None) -> float:
    """A float from a CSV or JSON value, NaN when empty or not a number."""
    try:
        return float(text) if text not in (None, "") else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _answer(
    label: str | None,
    score: float,
    kind: str | None,
    citycode: str | None,
    lon: float,
    lat: float,
) -> Answer:
    """An answer, not found when the score or the position is missing."""
    if np.isnan(score) or np.isnan(lon) or np.isnan(lat):
        return Answer(found=False, date=_today())
    return Answer(
        found=True,
        label=label or "",
        score=score,
        type=kind or "",
        citycode=citycode or "",
        lon=lon,
        lat=lat,
        date=_today(),
    )


def _chunks(items: dict[str, str], size: int, max_bytes: int) -> Iterator[dict[str, str]]:
    """Split addresses into files of at most `size` rows and about `max_bytes` bytes."""
    chunk: dict[str, str] = {}
    weight = 0
    for key, text in items.items():
        cost = len(text.encode()) + 16
        if chunk and (len(chunk) >= size or weight + cost > max_bytes):
            yield chunk
            chunk, weight = {}, 0
        chunk[key] = text
        weight += cost
    if chunk:
        yield chunk


def _fetch_files(
    service: str, missing: dict[str, str], progress: bool
) -> tuple[dict[str, Answer], dict[str, str], int]:
    """Geocode addresses through the CSV endpoint, file by file.

    Returns the answers, the French reason of each address whose file failed, and the
    number of files sent.
    """
    max_bytes = catalogue.services()[_SERVICE]["csv_max_bytes"] // 2
    chunks = list(_chunks(missing, max(1, settings.geocoder_batch_size), max_bytes))
    answers: dict[str, Answer] = {}
    failures: dict[str, str] = {}
    url = f"{service}/search/csv"
    for chunk in _progress.bar(progress, iterable=chunks, unit=" fichier", desc="géocodage"):
        ids = [str(position) for position in range(len(chunk))]
        body = io.StringIO()
        writer = csv.writer(body, lineterminator="\n")
        writer.writerow(["id", "q"])
        writer.writerows(zip(ids, chunk.values(), strict=True))
        try:
            rows = _http.request(
                url,
                lambda response, ids=ids: _read_csv_answer(response, ids),
                method="POST",
                files={"data": ("adresses.csv", body.getvalue().encode("utf-8"), "text/csv")},
                data={"columns": "q"},
                rate=settings.geocoder_rate,
            )
        except DownloadError as error:
            failures.update(dict.fromkeys(chunk, _failure(error, url)))
            continue
        for key, position in zip(chunk, ids, strict=True):
            if position in rows:
                answers[key] = rows[position]
            else:
                failures[key] = "le géocodeur a signalé une erreur pour cette adresse"
    return answers, failures, len(chunks)


def _read_csv_answer(response: requests.Response, ids: list[str]) -> dict[str, Answer]:
    """Read the CSV answer of the batch endpoint: id → answer (rows in error left out).

    Raises
    ------
    _http.IncompleteResponse
        When the body is not the expected CSV or lacks some of the rows sent (a cut
        answer): the file is sent again.
    """
    text = response.content.decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    absent = [c for c in ("id", "latitude", "longitude", *_CSV_COLUMNS) if c not in header]
    if absent:
        raise _http.IncompleteResponse(
            f"réponse CSV du géocodeur inattendue : colonnes {', '.join(absent)} absentes"
        )
    rows = {row["id"]: row for row in reader if row.get("id") is not None}
    if set(ids) - set(rows):
        raise _http.IncompleteResponse(
            f"réponse CSV du géocodeur incomplète : {len(set(ids) & set(rows))} lignes "
            f"sur {len(ids)}"
        )
    return {
        position: _answer(
            row["result_label"],
            _number(row["result_score"]),
            row["result_type"],
            row["result_citycode"],
            _number(row["longitude"]),
            _number(row["latitude"]),
        )
        for position, row in rows.items()
        if position in ids and (row.get("result_status") or "ok") != "error"
    }


def _fetch_each(
    service: str, missing: dict[str, str], progress: bool
) -> tuple[dict[str, Answer], dict[str, str], int]:
    """Geocode addresses with one request each on ``/search``."""
    answers: dict[str, Answer] = {}
    failures: dict[str, str] = {}
    url = f"{service}/search"
    for key, text in _progress.bar(
        progress, iterable=missing.items(), unit=" adresse", desc="géocodage"
    ):
        try:
            answers[key] = _http.request(
                url,
                _read_json_answer,
                params={"q": text, "limit": 1},
                rate=settings.geocoder_rate,
            )
        except DownloadError as error:
            failures[key] = _failure(error, url)
    return answers, failures, len(missing)


def _read_json_answer(response: requests.Response) -> Answer:
    """Read the best feature of a GeoCodeJSON answer.

    Raises
    ------
    _http.IncompleteResponse
        When the body is not a GeoCodeJSON feature collection (e.g. cut short).
    """
    try:
        features = json.loads(response.content)["features"]
        if not features:
            return Answer(found=False, date=_today())
        best = features[0]
        properties = best["properties"]
        lon, lat = best["geometry"]["coordinates"][:2]
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise _http.IncompleteResponse(
            f"réponse GeoCodeJSON du géocodeur illisible ou tronquée ({error})"
        ) from error
    return _answer(
        properties.get("label"),
        _number(properties.get("score")),
        properties.get("type"),
        properties.get("citycode"),
        _number(lon),
        _number(lat),
    )


def _failure(error: DownloadError, url: str) -> str:
    """French reason given to the addresses of a failed request."""
    import requests

    cause = error.__cause__
    host = urlparse(url).netloc or url
    if isinstance(cause, requests.Timeout):
        reason = f"le géocodeur {host} n'a pas répondu en {french.number(settings.timeout, None)} s"
    elif isinstance(cause, requests.ConnectionError):
        reason = f"géocodeur {host} injoignable (réseau coupé ou hors ligne)"
    elif isinstance(cause, _http.IncompleteResponse):
        reason = str(cause)
    elif cause is not None:
        reason = f"le géocodeur {host} a échoué ({cause})"
    else:
        reason = f"le géocodeur {host} a refusé la requête ({error})"
    attempts = max(1, settings.retries)
    return (
        f"géocodage impossible : {reason}, après {attempts} tentative(s) ; relancez plus "
        "tard (les adresses déjà géocodées sont gardées en cache)"
    )


def _table(
    index: pd.Index,
    keys: pd.Series,
    answers: dict[str, Answer],
    failures: dict[str, str],
    min_score: float,
) -> pd.DataFrame:
    """One result row per query, from the answers by key."""
    n = len(index)
    records = [answers.get(key) if isinstance(key, str) else None for key in keys]
    found = np.array([a is not None and a.found for a in records], dtype=bool)
    values = {
        "label": [a.label if a is not None and a.found else None for a in records],
        "score": np.array([a.score if a is not None else np.nan for a in records], dtype=float),
        "type": [a.type if a is not None and a.found else None for a in records],
        "citycode": [a.citycode if a is not None and a.found else None for a in records],
        "lon": np.array([a.lon if a is not None else np.nan for a in records], dtype=float),
        "lat": np.array([a.lat if a is not None else np.nan for a in records], dtype=float),
    }
    kinds = np.array([kind or "" for kind in values["type"]], dtype=object)
    good = found & (values["score"] >= min_score)
    municipality = good & (kinds == "municipality")
    placed = good & ~municipality
    problems = np.full(n, None, dtype=object)
    problems[keys.isna().to_numpy()] = "adresse manquante"
    problems[np.array([a is not None and not a.found for a in records], dtype=bool)] = (
        "adresse introuvable par le géocodeur : vérifiez-la (numéro, voie, code postal, commune)"
    )
    low = found & ~good
    problems[low] = [
        f"adresse trouvée avec un score de {french.number(score, 2)} inférieur au minimum "
        f"{french.number(min_score, 2)} (« {label} ») : vérifiez l'adresse ou baissez le "
        "score minimum"
        for score, label in zip(
            values["score"][low], np.array(values["label"], dtype=object)[low], strict=True
        )
    ]
    for position, key in enumerate(keys):
        if isinstance(key, str) and key in failures:
            problems[position] = failures[key]
    precision = np.array(
        [PRECISION_M.get(kind, PRECISION_M["locality"]) for kind in kinds], dtype=float
    )
    out = pd.DataFrame(
        {
            "lon": np.where(placed, values["lon"], np.nan),
            "lat": np.where(placed, values["lat"], np.nan),
            "precision_m": np.where(placed, precision, np.nan),
            "commune_donnee": pd.array(
                np.where(municipality, np.array(values["citycode"], dtype=object), None),
                dtype="string",
            ),
            "geocodage_label": pd.array(values["label"], dtype="string"),
            "geocodage_score": values["score"],
            "geocodage_type": pd.array(values["type"], dtype="string"),
            "geocodage_citycode": pd.array(values["citycode"], dtype="string"),
            "probleme": pd.array(problems, dtype="string"),
        },
        index=index,
    )
    return out


class _Cache:
    """Answers of the geocoder kept in a SQLite file, keyed by service and address.

    A cache that cannot be opened (read-only folder, damaged file) is skipped with a
    warning: geocoding still works, only without memory.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.usable = True

    def _connect(self) -> sqlite3.Connection | None:
        """Open the database (creating it), or None once it proved unusable."""
        if not self.usable:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30)
            connection.execute(
                "CREATE TABLE IF NOT EXISTS reponses (service TEXT, cle TEXT, trouve INTEGER,"
                " label TEXT, score REAL, type TEXT, citycode TEXT, lon REAL, lat REAL,"
                " date TEXT, PRIMARY KEY (service, cle))"
            )
            return connection
        except (OSError, sqlite3.Error) as error:
            self._give_up(error)
            return None

    def _give_up(self, error: Exception) -> None:
        """Stop using the cache and say so once."""
        self.usable = False
        warnings.warn(
            f"cache de géocodage inutilisable ({self.path} : {error}) : les adresses seront "
            "géocodées sans cache",
            stacklevel=3,
        )

    def get(self, service: str, keys: Iterable[str]) -> dict[str, Answer]:
        """Return the cached answers of `keys` (those absent are left out)."""
        keys = list(keys)
        connection = self._connect() if keys else None
        if connection is None:
            return {}
        found: dict[str, Answer] = {}
        try:
            with connection:
                for start in range(0, len(keys), _SQL_BATCH):
                    part = keys[start : start + _SQL_BATCH]
                    rows = connection.execute(
                        "SELECT cle, trouve, label, score, type, citycode, lon, lat, date "
                        f"FROM reponses WHERE service = ? AND cle IN ({','.join('?' * len(part))})",
                        [service, *part],
                    )
                    for key, hit, label, score, kind, citycode, lon, lat, date in rows:
                        found[key] = Answer(
                            found=bool(hit),
                            label=label or "",
                            score=_number(score),
                            type=kind or "",
                            citycode=citycode or "",
                            lon=_number(lon),
                            lat=_number(lat),
                            date=date or "",
                        )
        except sqlite3.Error as error:
            self._give_up(error)
            return {}
        finally:
            connection.close()
        return found

    def put(self, service: str, answers: dict[str, Answer]) -> None:
        """Store answers (replacing older ones for the same addresses)."""
        connection = self._connect() if answers else None
        if connection is None:
            return
        try:
            with connection:
                connection.executemany(
                    "INSERT OR REPLACE INTO reponses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            service,
                            key,
                            int(a.found),
                            a.label,
                            None if np.isnan(a.score) else a.score,
                            a.type,
                            a.citycode,
                            None if np.isnan(a.lon) else a.lon,
                            None if np.isnan(a.lat) else a.lat,
                            a.date,
                        )
                        for key, a in answers.items()
                    ],
                )
        except sqlite3.Error as error:
            self._give_up(error)
        finally:
            connection.close()
