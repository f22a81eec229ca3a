"""Run ``territoires serve``'s application on 127.0.0.1 in a thread, for the tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import uvicorn

from territoires.web import ServeConfig, create_app


def free_port() -> int:
    """A TCP port free on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running(
    config: ServeConfig, *, load: bool = True, ready: bool = True
) -> Iterator[tuple[str, Any]]:
    """Serve an application built from ``config``; yields its base URL and the app.

    With ``ready``, waits (up to 120 s) until ``/sante`` answers 200.
    """
    app = create_app(config, load=load)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            answer = requests.get(f"{base}/sante", timeout=5)
            if not ready or answer.status_code == 200:
                break
            if answer.json()["etat"] == "erreur":
                raise RuntimeError(answer.text)
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("le serveur de test n'a pas démarré")
        time.sleep(0.2)
    try:
        yield base, app
    finally:
        server.should_exit = True
        thread.join(30)
