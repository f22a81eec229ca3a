"""Run the application with uvicorn: one process, or several workers sharing a port."""

from __future__ import annotations

import os

import uvicorn

from .. import settings
from .app import ServeConfig, create_app

#: Seconds an idle keep-alive connection is kept open.
KEEP_ALIVE_S = 5


def _log_config(access_log: bool) -> dict[str, object]:
    """uvicorn's logging, plus the JSON access log of :class:`territoires.web.app.Guard`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"ligne": {"format": "%(message)s"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "ligne",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "territoires.web": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "territoires.web.acces": {
                "handlers": ["stderr"],
                "level": "INFO" if access_log else "WARNING",
                "propagate": False,
            },
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


def serve(
    config: ServeConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    access_log: bool = True,
) -> None:
    """Serve the API and the staff page until interrupted.

    Parameters
    ----------
    config : ServeConfig, optional
    host : str, default ``"127.0.0.1"``
        Address to bind; only this machine can connect unless told otherwise.
    port : int, default 8000
    workers : int, default 1
        Processes; each loads its own copy of the reference data.
    access_log : bool, default True
        Write one JSON line per request on stderr.
    """
    config = config or ServeConfig()
    options = {
        "host": host,
        "port": port,
        "log_config": _log_config(access_log),
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "timeout_graceful_shutdown": 10,
    }
    if workers > 1:
        os.environ[settings.SERVE_CONFIG_ENV] = config.to_json()  # read by each worker
        uvicorn.run(
            "territoires.web.app:app_from_environment", factory=True, workers=workers, **options
        )
    else:
        uvicorn.run(create_app(config), **options)
