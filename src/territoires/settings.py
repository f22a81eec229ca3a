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
#: Attributes filled at import from an environment variable, by attribute name.
FROM_ENVIRONMENT = {
    "data_dir": DATA_DIR_ENV,
    "cache_dir": CACHE_DIR_ENV,
    "offline": OFFLINE_ENV,
    "datagouv_api": DATAGOUV_API_ENV,
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
