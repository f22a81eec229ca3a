"""The staff page: one field, the verdict in large type, a small map, a file upload.

Everything is rendered on the server (Jinja2, autoescaping every string), so the single
check works without JavaScript: the form is a plain GET of ``/?q=…``. JavaScript only
draws the map (Leaflet served from the ``xstatic-leaflet`` package) from GeoJSON
embedded in the page. The upload form posts to ``/classement``, which answers a page
linking to the classified XLSX and the HTML map, kept for a limited time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .._errors import InputError
from ..rules import DEFAULT_PRESET, PRESETS, VERDICTS
from .service import NotReadyError, RequestError, Service, rules_for
from .uploads import TempRoot, receive_upload, safe_stem

router = APIRouter(include_in_schema=False)

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

_NUMBER = r"-?\d+(?:\.\d+)?"
_COMMA_NUMBER = r"-?\d+(?:,\d+)?"
_COMMUNE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$", re.IGNORECASE)

#: Files offered for download after a classification by the page.
RESULT_FILES = {"resultats.xlsx": ".xlsx", "carte.html": ".html"}


def parse_query(text: str) -> tuple[str, Any]:
    """Tell what the staff typed: ``("point", (lon, lat))``, ``("code_insee", code)``
    or ``("adresse", text)``.

    « lon, lat » with a decimal point, « lon ; lat » or « lon lat » (decimal point or
    comma) are coordinates; five characters such as ``31555`` or ``2A004`` a commune
    code; anything else an address.
    """
    text = text.strip()
    pairs = (
        rf"({_NUMBER})\s*,\s*({_NUMBER})",
        rf"({_COMMA_NUMBER}|{_NUMBER})\s*;\s*({_COMMA_NUMBER}|{_NUMBER})",
        rf"({_COMMA_NUMBER}|{_NUMBER})\s+({_COMMA_NUMBER}|{_NUMBER})",
        rf"({_COMMA_NUMBER}),\s+({_COMMA_NUMBER})",
    )
    for pattern in pairs:
        match = re.fullmatch(pattern, text)
        if match:
            lon, lat = (float(part.replace(",", ".")) for part in match.groups())
            return "point", (lon, lat)
    if _COMMUNE.match(text):
        return "code_insee", text.upper()
    return "adresse", text


def _render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("presets", PRESETS)
    context.setdefault("default_preset", DEFAULT_PRESET)
    return HTMLResponse(templates.get_template(name).render(**context), status_code=status)


@router.get("/", response_class=HTMLResponse)
async def accueil(request: Request, q: str = "", regles: str = DEFAULT_PRESET) -> HTMLResponse:
    """The page; with ``q``, the verdict of that place."""
    svc: Service = request.app.state.service
    context: dict[str, Any] = {"q": q[:300], "regles": regles}
    if not q.strip():
        return _render("accueil.html", **context)
    try:
        rules = rules_for(regles, None)
        kind, value = parse_query(q[:300])
        if kind == "point":
            record = await svc.check_point(*value, rules)
        else:
            record = await svc.check_text(value, rules, kind)
        if record.get("lon") is not None:
            context["carte"] = await svc.run(svc.place_geometries, record, rules)
    except RequestError as error:
        return _render("accueil.html", error.status, erreur=error, **context)
    except NotReadyError as error:
        failure = RequestError(503, "service indisponible", str(error))
        return _render("accueil.html", 503, erreur=failure, **context)
    context["resultat"] = record
    return _render("accueil.html", **context)


@router.post("/classement", response_class=HTMLResponse)
async def classement_page(request: Request) -> HTMLResponse:
    """Classify an uploaded file; the page links to the XLSX and the HTML map."""
    svc: Service = request.app.state.service
    temp: TempRoot = request.app.state.temp
    folder = temp.request_folder()
    try:
        svc.ensure_ready()
        async with request.app.state.uploads:
            upload = await receive_upload(request, folder, request.app.state.config.max_bytes)
            rules = rules_for(upload.fields.get("regles") or DEFAULT_PRESET, None)
            await svc.prepared(rules)
            result = await svc.run(svc.classify_file, upload.path, rules)
            token, target = temp.result_folder()
            for name in RESULT_FILES:
                await svc.run(svc.write, result, target / name)
    except InputError as error:
        failure = RequestError(422, "fichier inutilisable", str(error))
        return _render("accueil.html", 422, erreur_fichier=failure)
    except RequestError as error:
        return _render("accueil.html", error.status, erreur_fichier=error)
    except NotReadyError as error:
        failure = RequestError(503, "service indisponible", str(error))
        return _render("accueil.html", 503, erreur_fichier=failure)
    finally:
        temp.remove(folder)
    counts = result.attrs["verdicts"]
    return _render(
        "classement.html",
        nom=upload.filename,
        stem=safe_stem(upload.filename),
        lignes=len(result),
        verdicts=[(code, VERDICTS[code], counts[code]) for code in VERDICTS if code in counts],
        jeton=token,
        regles_appliquees=result.attrs["regles"],
        duree_min=round(temp.ttl / 60),
    )


@router.get("/resultats/{jeton}/{fichier}")
async def resultat(request: Request, jeton: str, fichier: str, nom: str = "lieux") -> FileResponse:
    """A result file of a classification made by the page (while it has not expired)."""
    temp: TempRoot = request.app.state.temp
    path = temp.result_file(jeton, fichier) if fichier in RESULT_FILES else None
    if path is None:
        raise RequestError(
            404,
            "ressource introuvable",
            "résultat inconnu ou expiré : classez le fichier à nouveau",
        )
    stem = safe_stem(nom)
    return FileResponse(path, filename=f"{stem}_classe{RESULT_FILES[fichier]}")
