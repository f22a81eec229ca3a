"""Global settings: where reference data is read from, cached and downloaded.

Every knob is a module attribute, read by the library as ``settings.x`` at the moment
it is needed, so a notebook or a program changes the configuration by assigning it::

    from territoires import settings
    settings.data_dir = Path("../shared/data")
    settings.offline = True

The attributes are filled once, at import, from the environment, so that the CLI,
notebooks and CI share one configuration:

``TERRITOIRES_DATA_DIR`` → :data:`data_dir`
    Offline mirror folder, read instead of downloading (e.g. ``../shared/data``).
``TERRITOIRES_CACHE_DIR`` → :data:`cache_dir`
    Download cache (default: the platform's user cache folder).
``TERRITOIRES_OFFLINE`` → :data:`offline`
    ``1`` forbids any network access: a dataset missing from the mirror and the
    cache raises :class:`territoires.DataNotFoundError`.
``TERRITOIRES_DATAGOUV_API`` → :data:`datagouv_api`
    Base URL of the data.gouv.fr API used to resolve dataset resources.
``TERRITOIRES_GEOCODER_URL`` → :data:`geocoder_url`
    Base URL of the address geocoder (``…/search`` and ``…/search/csv`` below it): the
    IGN Géoplateforme by default, or a self-hosted addok/BAN instance.
``TERRITOIRES_SERVE_CONFIG`` → :data:`serve_config`
    Set by ``territoires serve --workers N`` for its worker processes (JSON).
``TERRITOIRES_ACCEPT_MODIFIED`` → :data:`accept_modified`
    ``1`` reads a mirror or cached file whose checksum differs from the catalogue's
    (a file edited locally on purpose) instead of refusing it; the difference is
    recorded in the provenance of every result.

Changing an environment variable after import has no effect: assign the attribute.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DATA_DIR_ENV = "TERRITOIRES_DATA_DIR"
CACHE_DIR_ENV = "TERRITOIRES_CACHE_DIR"
OFFLINE_ENV = "TERRITOIRES_OFFLINE"
DATAGOUV_API_ENV = "TERRITOIRES_DATAGOUV_API"
GEOCODER_URL_ENV = "TERRITOIRES_GEOCODER_URL"
SERVE_CONFIG_ENV = "TERRITOIRES_SERVE_CONFIG"
ACCEPT_MODIFIED_ENV = "TERRITOIRES_ACCEPT_MODIFIED"
#: Attributes filled at import from an environment variable, by attribute name.
FROM_ENVIRONMENT = {
    "data_dir": DATA_DIR_ENV,
    "cache_dir": CACHE_DIR_ENV,
    "offline": OFFLINE_ENV,
    "datagouv_api": DATAGOUV_API_ENV,
    "geocoder_url": GEOCODER_URL_ENV,
    "accept_modified": ACCEPT_MODIFIED_ENV,
}


def _env_path(name: str) -> Path | None:
    """Return the folder named by the environment variable `name`, or None when unset."""
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


#: Offline mirror folder read instead of downloading, or ``None`` (``TERRITOIRES_DATA_DIR``).
data_dir: Path | None = _env_path(DATA_DIR_ENV)
#: Download cache folder, created on demand (``TERRITOIRES_CACHE_DIR``, else the user
#: cache folder of the platform).
cache_dir: Path = _env_path(CACHE_DIR_ENV) or Path(platformdirs.user_cache_dir("territoires"))
#: True forbids any network access (``TERRITOIRES_OFFLINE`` = 1, true, yes or oui).
offline: bool = os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "oui"}
#: True reads a reference file whose checksum differs from the catalogue's (edited on
#: purpose) instead of refusing it with :class:`territoires.ChecksumError`; the results'
#: provenance then flags it ``modifie_localement`` (``TERRITOIRES_ACCEPT_MODIFIED``).
accept_modified: bool = os.environ.get(ACCEPT_MODIFIED_ENV, "").strip().lower() in {
    "1",
    "true",
    "yes",
    "oui",
}
#: Base URL of the data.gouv.fr API (``TERRITOIRES_DATAGOUV_API``; overridable for tests).
datagouv_api: str = os.environ.get(DATAGOUV_API_ENV, "https://www.data.gouv.fr/api/1").rstrip("/")
#: Seconds to wait for a server to answer (connect, then between two bytes).
timeout: float = 60.0
#: Attempts per download before giving up (with exponential backoff between them).
retries: int = 4
#: First backoff delay in seconds; doubled after each failed attempt.
backoff: float = 1.0
#: User agent sent to publishers, so they can tell who downloads their files.
user_agent: str = "territoires (https://pypi.org/project/territoires)"

#: Base URL of the address geocoder: ``{geocoder_url}/search`` answers one address
#: (GeoCodeJSON), ``{geocoder_url}/search/csv`` a CSV file of addresses. Any service
#: with the API of the former « API Adresse » (addok) fits, e.g. a self-hosted BAN.
geocoder_url: str = (
    os.environ.get(GEOCODER_URL_ENV, "").strip() or "https://data.geopf.fr/geocodage"
).rstrip("/")
#: Lowest score (0 to 1) of a geocoding result for the address to be placed.
geocoder_min_score: float = 0.5
#: Most requests per second sent to the geocoder (the Géoplateforme allows 50 per IP).
geocoder_rate: float = 50.0
#: Addresses per file sent to the batch endpoint (its files are capped at 50 MiB).
geocoder_batch_size: int = 5000

#: Configuration of ``territoires serve`` as JSON, handed by the command to its worker
#: processes (``TERRITOIRES_SERVE_CONFIG``); ``None`` in any other process.
serve_config: str | None = os.environ.get(SERVE_CONFIG_ENV, "").strip() or None
