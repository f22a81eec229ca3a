"""The open JSON API, version 1: eligibility of one place, classification of a file.

Every error is a JSON object ``{"erreur": …, "detail": …}`` in French (see
:mod:`territoires.web.app` for the handlers): 400 unusable coordinates, 413 file too
large, 415 unsupported format, 422 bad parameters, 429 too many requests, 503 while the
reference data loads.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from .._errors import InputError
from ..rules import PRESETS, URBAN_RULES, VERDICTS
from .service import RequestError, Service, rules_for
from .uploads import TempRoot, receive_upload, safe_stem

router = APIRouter()

#: Output formats of ``POST /api/v1/classement``: extension and media type.
OUTPUTS: dict[str, tuple[str, str]] = {
    "csv": (".csv", "text/csv; charset=utf-8"),
    "xlsx": (".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "geojson": (".geojson", "application/geo+json"),
    "carte": (".html", "text/html; charset=utf-8"),
}
_BY_MEDIA = {
    "text/csv": "csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/geo+json": "geojson",
    "application/json": "geojson",
    "text/html": "carte",
}
_BY_SUFFIX = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".xlsx": "xlsx"}


class Erreur(BaseModel):
    """Error answered by every endpoint."""

    erreur: str = Field(description="Nature de l'erreur, en quelques mots.")
    detail: str = Field(description="Ce qui ne va pas et ce qu'il faut faire.")


class Verdict(BaseModel):
    """Eligibility of one place, with the figures and the rules used."""

    model_config = ConfigDict(extra="allow")

    verdict: str = Field(description=f"Code du verdict : {', '.join(VERDICTS)}.")
    label: str = Field(description="Libellé français du verdict.")
    motif: str = Field(description="Explication en français, chiffres et règle appliquée.")
    lon: float | None = Field(description="Longitude WGS84 du lieu.")
    lat: float | None = Field(description="Latitude WGS84 du lieu.")
    qpv_code: str | None = Field(description="Code du QPV contenant le lieu.")
    qpv_nom: str | None = Field(description="Nom du QPV contenant le lieu.")
    distance_qpv_m: float | None = Field(description="Distance au QPV le plus proche (m).")
    nearest_qpv_code: str | None = Field(description="Code du QPV le plus proche.")
    code_insee: str | None = Field(description="Code INSEE de la commune.")
    commune: str | None = Field(description="Nom de la commune.")
    densite7: int | None = Field(description="Niveau de la grille communale de densité.")
    regles: dict[str, Any] = Field(description="Jeu de règles appliqué (nom, version…).")
    sources: list[dict[str, Any]] = Field(description="Données de référence et millésimes.")


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Erreur, "description": text}
    for code, text in (
        (400, "Coordonnées inutilisables (non numériques, hors de France, en mer…)."),
        (422, "Paramètres invalides, manquants ou inconnus."),
        (429, "Trop de requêtes de ce client ; réessayer après le délai indiqué."),
        (503, "Données de référence en cours de chargement ou indisponibles."),
    )
}

Regles = Annotated[
    str | None,
    Query(description=f"Jeu de règles nommé : {', '.join(PRESETS)} (défaut : le premier)."),
]
Distance = Annotated[
    float | None,
    Query(description="Distance de « proximité immédiate » d'un QPV, en mètres (0 à 10 000)."),
]


def service(request: Request) -> Service:
    """The service of the running application."""
    return request.app.state.service


def reject_unknown(request: Request, allowed: set[str]) -> None:
    """422 when the query string holds a parameter the endpoint does not know."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise RequestError(
            422,
            "paramètre invalide",
            f"paramètre(s) inconnu(s) : {', '.join(unknown)} ; acceptés : "
            f"{', '.join(sorted(allowed))}",
        )
    repeated = sorted(
        k for k in set(request.query_params) if len(request.query_params.getlist(k)) > 1
    )
    if repeated:
        raise RequestError(
            422,
            "paramètre invalide",
            f"paramètre(s) donné(s) plusieurs fois : {', '.join(repeated)}",
        )


@router.get(
    "/api/v1/eligibilite",
    tags=["éligibilité"],
    summary="Éligibilité d'un lieu",
    response_model=None,
    responses={200: {"model": Verdict}, **_ERRORS},
)
async def eligibilite(
    request: Request,
    lon: Annotated[float | None, Query(description="Longitude WGS84 en degrés, ex. 1.402.")] = None,
    lat: Annotated[float | None, Query(description="Latitude WGS84 en degrés, ex. 43.575.")] = None,
    adresse: Annotated[
        str | None, Query(description="Adresse postale, géocodée.", max_length=300)
    ] = None,
    code_insee: Annotated[
        str | None, Query(description="Code INSEE de la commune (5 caractères).", max_length=5)
    ] = None,
    regles: Regles = None,
    distance: Distance = None,
) -> JSONResponse:
    """Donne le verdict d'éligibilité d'un lieu désigné par ses coordonnées (`lon` et `lat`),
    son adresse (`adresse`) ou sa commune (`code_insee`), avec le motif, le QPV, la
    distance, la commune, sa densité, les règles appliquées et les sources (millésimes).
    """
    reject_unknown(request, {"lon", "lat", "adresse", "code_insee", "regles", "distance"})
    given = [
        name
        for name, value in (
            ("coordonnées", lon is not None or lat is not None),
            ("adresse", adresse is not None),
            ("code_insee", code_insee is not None),
        )
        if value
    ]
    if len(given) != 1:
        raise RequestError(
            422,
            "paramètre invalide",
            "désignez le lieu d'une seule façon : lon et lat, ou adresse, ou code_insee"
            + (f" (reçu : {', '.join(given)})" if given else ""),
        )
    rules = rules_for(regles, distance)
    svc = service(request)
    if given[0] == "coordonnées":
        if lon is None or lat is None:
            raise RequestError(
                422, "paramètre invalide", "lon et lat vont ensemble : donnez les deux"
            )
        record = await svc.check_point(lon, lat, rules)
    else:
        record = await svc.check_text(adresse or code_insee or "", rules, given[0])
    return JSONResponse(record)


def output_format(request: Request, asked: str | None, suffix: str) -> str:
    """Output format: the ``format`` parameter, else ``Accept``, else the input's."""
    if asked is not None:
        if asked not in OUTPUTS:
            raise RequestError(
                422,
                "paramètre invalide",
                f"format : « {asked} » inconnu ; attendu {', '.join(OUTPUTS)}",
            )
        return asked
    for media in request.headers.get("accept", "").split(","):
        found = _BY_MEDIA.get(media.split(";")[0].strip().lower())
        if found:
            return found
    return _BY_SUFFIX.get(suffix, "geojson")


@router.post(
    "/api/v1/classement",
    tags=["éligibilité"],
    summary="Classement d'un fichier de lieux",
    response_class=FileResponse,
    responses={
        200: {
            "description": "Le fichier classé : chaque ligne, dans l'ordre, avec verdict et motif.",
            "content": {media: {} for _, media in OUTPUTS.values()},
        },
        413: {"model": Erreur, "description": "Fichier trop volumineux."},
        415: {"model": Erreur, "description": "Format de fichier non pris en charge."},
        **_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["fichier"],
                        "properties": {
                            "fichier": {
                                "type": "string",
                                "format": "binary",
                                "description": "Lieux : CSV, XLSX ou GeoJSON.",
                            }
                        },
                    }
                }
            },
        }
    },
)
async def classement(
    request: Request,
    regles: Regles = None,
    distance: Distance = None,
    format: Annotated[
        str | None,
        Query(
            description=(
                "Format du résultat : csv, xlsx, geojson ou carte (HTML) ; à défaut, "
                "l'en-tête Accept, sinon le format du fichier envoyé."
            )
        ),
    ] = None,
    colonne_lon: Annotated[str | None, Query(description="Colonne des longitudes.")] = None,
    colonne_lat: Annotated[str | None, Query(description="Colonne des latitudes.")] = None,
    crs: Annotated[
        str | None, Query(description="CRS des colonnes x/y projetées, ex. 2154.")
    ] = None,
) -> FileResponse:
    """Classe tous les lieux d'un fichier (CSV, XLSX ou GeoJSON, champ `fichier` d'un envoi
    multipart) comme `territoires classify` : chaque ligne ressort, dans l'ordre, avec ses
    colonnes d'origine, le verdict et le motif ; une ligne inutilisable ressort avec le
    verdict `invalide` et la raison. Le fichier est reçu par morceaux dans un dossier
    temporaire privé, supprimé après la réponse.
    """
    reject_unknown(request, {"regles", "distance", "format", "colonne_lon", "colonne_lat", "crs"})
    rules = rules_for(regles, distance)
    svc = service(request)
    svc.ensure_ready()
    temp: TempRoot = request.app.state.temp
    folder = temp.request_folder()
    try:
        async with request.app.state.uploads:
            upload = await receive_upload(request, folder, request.app.state.config.max_bytes)
            chosen = output_format(request, format, upload.path.suffix)
            await svc.prepared(rules)
            result = await svc.run(
                svc.classify_file, upload.path, rules, colonne_lon, colonne_lat, crs
            )
            suffix, media = OUTPUTS[chosen]
            name = f"{safe_stem(upload.filename)}_classe{suffix}"
            path = await svc.run(svc.write, result, folder / name)
    except InputError as error:
        temp.remove(folder)
        raise RequestError(422, "fichier inutilisable", str(error)) from error
    except BaseException:
        temp.remove(folder)
        raise
    return FileResponse(
        path,
        media_type=media,
        filename=name,
        headers={"X-Territoires-Lignes": str(len(result))},
        background=BackgroundTask(temp.remove, folder),
    )


@router.get("/api/v1/regles", summary="Jeux de règles disponibles", tags=["référentiel"])
async def regles() -> dict[str, Any]:
    """Jeux de règles nommés (millésime QPV, distance de proximité, règle urbaine) et
    règles « hors grands centres urbains » disponibles.
    """
    return {
        "jeux": [rules.describe() for rules in PRESETS.values()],
        "regles_urbaines": [
            {"nom": rule.name, "version": rule.version, "description": rule.description}
            for rule in URBAN_RULES.values()
        ],
    }


@router.get("/api/v1/sources", summary="Sources officielles et millésimes", tags=["référentiel"])
async def sources(request: Request) -> dict[str, Any]:
    """Catalogue des sources officielles (éditeur, millésime, licence, adresse) et
    données de référence chargées par ce serveur.
    """
    svc = service(request)
    return {"catalogue": svc.catalogue(), "chargees": svc.describe()["donnees"]}


@router.get(
    "/sante",
    summary="État du service",
    tags=["service"],
    responses={503: {"description": "Données en cours de chargement ou indisponibles."}},
)
async def sante(request: Request) -> JSONResponse:
    """État du service : `pret`, `chargement` ou `erreur`, et millésimes chargés."""
    state = service(request).describe()
    return JSONResponse(state, status_code=200 if state["etat"] == "pret" else 503)
