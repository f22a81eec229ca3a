"""Global settings: where reference data is read from, cached and downloaded.

Every knob can be set from the environment, so that the CLI, notebooks and CI share
one configuration:

``TERRITOIRES_DATA_DIR``
    Offline mirror folder, read instead of downloading (e.g. ``../shared/data``).
``TERRITOIRES_CACHE_DIR``
    Download cache (default: the platform's user cache folder).
``TERRITOIRES_OFFLINE``
    ``1`` forbids any network access: a dataset missing from the mirror and the
    cache raises :class:`territoires.DataNotFoundError`.
``TERRITOIRES_DATAGOUV_API``
    Base URL of the data.gouv.fr API used to resolve dataset resources.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DATA_DIR_ENV = "TERRITOIRES_DATA_DIR"
CACHE_DIR_ENV = "TERRITOIRES_CACHE_DIR"
OFFLINE_ENV = "TERRITOIRES_OFFLINE"
DATAGOUV_API_ENV = "TERRITOIRES_DATAGOUV_API"

#: Seconds to wait for a server to answer (connect, then between two bytes).
timeout: float = 60.0
#: Attempts per download before giving up (with exponential backoff between them).
retries: int = 4
#: First backoff delay in seconds; doubled after each failed attempt.
backoff: float = 1.0
#: User agent sent to publishers, so they can tell who downloads their files.
user_agent: str = "territoires (https://pypi.org/project/territoires)"


def data_dir() -> Path | None:
    """Return the offline mirror folder named by ``TERRITOIRES_DATA_DIR``, if any.

    Returns
    -------
    pathlib.Path or None
        The folder, or ``None`` when the variable is unset or empty.
    """
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Return the download cache folder (created on demand by the downloader).

    Returns
    -------
    pathlib.Path
        ``TERRITOIRES_CACHE_DIR`` when set, else the user cache folder of the platform.
    """
    value = os.environ.get(CACHE_DIR_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    return Path(platformdirs.user_cache_dir("territoires"))


def offline() -> bool:
    """Return True when network access is forbidden by ``TERRITOIRES_OFFLINE``."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "oui"}


def datagouv_api() -> str:
    """Return the base URL of the data.gouv.fr API (overridable for tests)."""
    return os.environ.get(DATAGOUV_API_ENV, "https://www.data.gouv.fr/api/1").rstrip("/")
