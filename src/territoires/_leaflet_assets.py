"""Leaflet files inlined into a map page, so it opens with content delivery networks blocked.

folium links its pages to Leaflet on a CDN. :func:`inline` replaces each link by the
content of the same file shipped by a PyPI package (``xstatic-leaflet``,
``xstatic-leaflet-markercluster``; CSS images as data URIs) and drops folium's stock
assets that the maps of :mod:`territoires.maps` never use.
"""

from __future__ import annotations

import base64
import importlib
import re
from pathlib import Path

import folium

from ._errors import InputError

#: Leaflet files folium links to, and the PyPI package that ships each of them.
ASSETS: dict[str, tuple[str, str, str]] = {
    "leaflet.js": ("xstatic.pkg.leaflet", "leaflet.js", "Leaflet 1.9 (BSD-2-Clause)"),
    "leaflet.css": ("xstatic.pkg.leaflet", "leaflet.css", "Leaflet 1.9 (BSD-2-Clause)"),
    "leaflet.markercluster.js": (
        "xstatic.pkg.leaflet_markercluster",
        "leaflet.markercluster.js",
        "Leaflet.markercluster 1.4 (MIT)",
    ),
    "MarkerCluster.css": (
        "xstatic.pkg.leaflet_markercluster",
        "MarkerCluster.css",
        "Leaflet.markercluster 1.4 (MIT)",
    ),
    "MarkerCluster.Default.css": (
        "xstatic.pkg.leaflet_markercluster",
        "MarkerCluster.Default.css",
        "Leaflet.markercluster 1.4 (MIT)",
    ),
}
#: folium's stock page assets (jQuery, Bootstrap, Font Awesome, awesome-markers) that
#: the maps of :mod:`territoires.maps` never use.
_UNUSED_STOCK_URLS = frozenset(
    url
    for name, url in [*folium.Map.default_js, *folium.Map.default_css]
    if name not in {"leaflet", "leaflet_css"}
)
_SCRIPT_LINK = re.compile(r'<script src="(?P<url>[^"]+)"></script>')
_CSS_LINK = re.compile(r'<link rel="stylesheet" href="(?P<url>[^"]+)"/>')
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)
_CSS_IMAGE = re.compile(r"url\((?P<path>images/[\w.-]+\.png)\)")


def asset(url: str) -> tuple[str, str, str]:
    """Content of a Leaflet file from its PyPI package.

    Parameters
    ----------
    url : str
        Address of the file in the page (only its file name is used).

    Returns
    -------
    tuple of str
        The content (ready to sit between ``<script>`` or ``<style>`` tags), its kind
        (``"js"`` or ``"css"``) and the credit of its author and licence.

    Raises
    ------
    InputError
        When no installed package ships that file.
    """
    filename = url.rsplit("/", 1)[-1]
    if filename not in ASSETS:
        raise InputError(f"ressource externe sans copie locale connue : {url}")
    module, member, credit = ASSETS[filename]
    base = Path(importlib.import_module(module).BASE_DIR)
    text = _SOURCE_MAP.sub("", (base / member).read_text(encoding="utf-8"))
    if member.endswith(".css"):

        def data_uri(match: re.Match[str]) -> str:
            image = base64.b64encode((base / match["path"]).read_bytes()).decode("ascii")
            return f"url(data:image/png;base64,{image})"

        return _CSS_IMAGE.sub(data_uri, text), "css", credit
    return text.replace("</script", "<\\/script"), "js", credit


def inline(page: str) -> str:
    """Replace links to Leaflet files by their content; drop folium's unused stock ones.

    Parameters
    ----------
    page : str
        HTML page rendered by folium.

    Returns
    -------
    str
        The page, opening with content delivery networks blocked.

    Raises
    ------
    InputError
        When the page links to a script or stylesheet that no installed package ships.
    """

    def replace(match: re.Match[str]) -> str:
        url = match["url"]
        if url in _UNUSED_STOCK_URLS:
            return ""
        text, kind, credit = asset(url)
        comment = f"/* {credit}, copie de {url.rsplit('/', 1)[-1]} du paquet PyPI */\n"
        return (
            f"<script>{comment}{text}</script>"
            if kind == "js"
            else f"<style>{comment}{text}</style>"
        )

    return _CSS_LINK.sub(replace, _SCRIPT_LINK.sub(replace, page))
