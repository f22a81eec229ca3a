"""The ASGI application of ``territoires serve``: API, staff page, safety guards.

:func:`create_app` assembles the FastAPI application: the JSON API
(:mod:`territoires.web.api`), the staff page (:mod:`territoires.web.page`), local
static files (Leaflet from ``xstatic-leaflet``, Swagger UI from ``fastapi-offline``:
no CDN), French error handlers that never show a stack trace, and :class:`Guard`, which
applies the per-client rate limit and the request time-out, adds security headers and
writes one structured access-log line per request (never the uploaded content).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from xstatic.pkg import leaflet

from .. import __version__, french, settings
from ..rules import DEFAULT_PRESET
from . import api, page
from .service import NotReadyError, RequestError, Service
from .uploads import TempRoot

access_log = logging.getLogger("territoires.web.acces")
error_log = logging.getLogger("territoires.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one ``territoires serve`` process.

    Attributes
    ----------
    data_dir : str or None
        Mirror folder of the reference data (default: :mod:`territoires.settings`).
    max_upload_mb : float
        Largest uploaded file, in megabytes (10⁶ bytes).
    rate_limit : int
        Requests per minute per client address (burst of the same size); 0 disables.
    timeout_s : float
        Longest time a request may take, upload included.
    concurrent_uploads : int
        Files classified at the same time; others wait their turn.
    preload : tuple of str
        Rule presets prepared at start-up.
    batch_window_s : float
        Seconds a single check waits for others to be classified with it.
    results_ttl_s : float
        Seconds the staff page's result files stay downloadable.
    """

    data_dir: str | None = None
    max_upload_mb: float = 20.0
    rate_limit: int = 300
    timeout_s: float = 120.0
    concurrent_uploads: int = 2
    preload: tuple[str, ...] = (DEFAULT_PRESET,)
    batch_window_s: float = 0.002
    results_ttl_s: float = 1800.0

    @property
    def max_bytes(self) -> int:
        """Largest uploaded file, in bytes."""
        return int(self.max_upload_mb * 1_000_000)

    def to_json(self) -> str:
        """The configuration as JSON (see :meth:`from_json`)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """Read a configuration written by :meth:`to_json`."""
        values = json.loads(text)
        values["preload"] = tuple(values.get("preload", (DEFAULT_PRESET,)))
        return cls(**values)


def error_body(title: str, detail: str) -> bytes:
    """The JSON body of every error: ``{"erreur": …, "detail": …}``."""
    return json.dumps({"erreur": title, "detail": detail}, ensure_ascii=False).encode("utf-8")


def error_response(status: int, title: str, detail: str, **headers: str) -> JSONResponse:
    """A French JSON error response."""
    return JSONResponse({"erreur": title, "detail": detail}, status_code=status, headers=headers)


class RateLimiter:
    """Token bucket per client: ``per_minute`` requests a minute, bursts as large.

    Parameters
    ----------
    per_minute : int
        Sustained rate and burst size.
    """

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}

    def wait(self, client: str, now: float | None = None) -> float:
        """Take a token for ``client``; returns 0, or the seconds to wait when refused."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[client] = (tokens - 1, now)
        if len(self._buckets) > 10_000:  # forget clients whose bucket has refilled
            full = self.capacity / self.rate
            self._buckets = {
                key: value for key, value in self._buckets.items() if now - value[1] < full
            }
        return 0.0


#: Content security policy of the pages (not of /docs, whose Swagger UI runs inline code).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https://tile.openstreetmap.org; connect-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class Guard:
    """ASGI middleware: rate limit, time-out, security headers and access log.

    Parameters
    ----------
    app : ASGI application
    limiter : RateLimiter or None
        ``None`` disables the rate limit.
    timeout : float
        Seconds before a request is abandoned with a 504.
    """

    def __init__(self, app: Any, limiter: RateLimiter | None, timeout: float) -> None:
        self.app = app
        self.limiter = limiter
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        client = (scope.get("client") or ("inconnu", 0))[0]
        path = scope["path"]
        sent: dict[str, Any] = {"status": None, "bytes": 0}
        received = {"bytes": 0}

        async def counting_receive() -> Message:
            message = await receive()
            received["bytes"] += len(message.get("body", b""))
            return message

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers += _HEADERS
                if not path.startswith("/docs"):
                    headers.append((b"content-security-policy", PAGE_POLICY.encode()))
                message["headers"] = headers
            elif message["type"] == "http.response.body":
                sent["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            wait = 0.0
            if self.limiter is not None and not path.startswith("/static"):
                wait = self.limiter.wait(client)
            if wait:
                await self._error(
                    guarded_send,
                    429,
                    "trop de requêtes",
                    f"limite de débit atteinte pour {client} ; réessayez dans {math.ceil(wait)} s",
                    [(b"retry-after", str(math.ceil(wait)).encode())],
                )
            else:
                async with asyncio.timeout(self.timeout):
                    await self.app(scope, counting_receive, guarded_send)
        except TimeoutError:
            if sent["status"] is None:
                await self._error(
                    guarded_send,
                    504,
                    "délai dépassé",
                    f"la requête a dépassé {french.number(self.timeout, None)} s ; pour un gros "
                    "fichier, utilisez « territoires classify » en ligne de commande",
                )
        finally:
            access_log.info(
                json.dumps(
                    {
                        "horodatage": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "client": client,
                        "methode": scope["method"],
                        "chemin": path,
                        "parametres": sorted(
                            {
                                part.split(b"=", 1)[0].decode("latin-1")
                                for part in scope.get("query_string", b"").split(b"&")
                                if part
                            }
                        ),
                        "statut": sent["status"],
                        "duree_ms": round((time.perf_counter() - start) * 1000, 1),
                        "octets_recus": received["bytes"],
                        "octets_envoyes": sent["bytes"],
                    },
                    ensure_ascii=False,
                )
            )

    @staticmethod
    async def _error(
        send: Send,
        status: int,
        title: str,
        detail: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = error_body(title, detail)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *(headers or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


#: French wording of pydantic's validation error types.
_VALIDATION = {
    "float_parsing": "nombre attendu",
    "float_type": "nombre attendu",
    "finite_number": "nombre fini attendu",
    "int_parsing": "nombre entier attendu",
    "missing": "paramètre obligatoire",
    "string_too_long": "texte trop long",
    "string_type": "texte attendu",
}


def _validation_detail(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "body"))
        what = _VALIDATION.get(item.get("type", ""), "valeur invalide")
        value = item.get("input")
        shown = f" (reçu « {value} »)" if isinstance(value, str) else ""
        parts.append(f"{where} : {what}{shown}")
    return " ; ".join(parts) or "paramètres invalides"


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError) -> JSONResponse:
        return error_response(error.status, error.title, error.detail)

    @app.exception_handler(NotReadyError)
    async def not_ready(request: Request, error: NotReadyError) -> JSONResponse:
        return error_response(503, "service indisponible", str(error), **{"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, "paramètre invalide", _validation_detail(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        titles = {404: "ressource introuvable", 405: "méthode non autorisée"}
        title = titles.get(error.status_code, "requête refusée")
        detail = f"{request.method} {request.url.path} : {title}"
        return error_response(error.status_code, title, detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        error_log.exception("erreur interne sur %s %s", request.method, request.url.path)
        return error_response(
            500,
            "erreur interne",
            "le serveur n'a pas pu répondre ; l'incident est consigné dans son journal",
        )


DESCRIPTION = """
Verdict d'éligibilité des tiers-lieux avec les données publiques officielles : dans un
quartier prioritaire de la politique de la ville (QPV) ou à sa proximité immédiate, hors
des grands centres urbains, avec un motif en français qui cite les chiffres et la règle.

* `GET /api/v1/eligibilite` : un lieu (coordonnées, adresse ou commune) ;
* `POST /api/v1/classement` : un fichier de lieux, rendu classé ligne à ligne ;
* `GET /api/v1/regles`, `GET /api/v1/sources`, `GET /sante`.

Les erreurs sont des objets JSON `{"erreur": …, "detail": …}` en français.
"""


def create_app(config: ServeConfig | None = None, *, load: bool = True) -> FastAPI:
    """Build the application; the reference data loads in the background at start-up.

    Parameters
    ----------
    config : ServeConfig, optional
    load : bool, default True
        Start loading the reference data when the server starts (tests of the 503
        state pass False).

    Returns
    -------
    fastapi.FastAPI
    """
    config = config or ServeConfig()
    service = Service(
        data_dir=Path(config.data_dir) if config.data_dir else None,
        preload=config.preload,
        window=config.batch_window_s,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.temp = TempRoot(config.results_ttl_s)
        app.state.uploads = asyncio.Semaphore(config.concurrent_uploads)
        if load:
            service.start_loading()
        try:
            yield
        finally:
            service.executor.shutdown(wait=False, cancel_futures=True)
            service.lookups.shutdown(wait=False, cancel_futures=True)
            app.state.temp.close()

    app = FastAPIOffline(
        title="territoires : éligibilité des tiers-lieux",
        description=DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
        redoc_url=None,
        static_url="/static/docs",
        swagger_ui_parameters={"defaultModelsExpandDepth": 0},
    )
    app.state.config = config
    app.state.service = service
    _install_handlers(app)
    app.include_router(api.router)
    app.include_router(page.router)
    app.mount("/static/leaflet", StaticFiles(directory=leaflet.BASE_DIR), name="leaflet")
    app.mount(
        "/static/territoires",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="territoires",
    )
    limiter = RateLimiter(config.rate_limit) if config.rate_limit > 0 else None
    app.add_middleware(Guard, limiter=limiter, timeout=config.timeout_s)
    return app


def app_from_environment() -> FastAPI:
    """Application factory of each worker process (``settings.serve_config``)."""
    text = settings.serve_config
    return create_app(ServeConfig.from_json(text) if text else None)
