"""Folium maps of eligibility and coverage, saved as one HTML file.

:func:`eligibility_map` shows classified places over the QPV, their proximity band and
(optionally) the communes by density level; :func:`coverage_map` shows how much of each
département's population a network of places covers. :func:`save` writes one HTML
file; with ``self_contained=True`` Leaflet and its plugins are inlined from PyPI packages
(``xstatic-leaflet``, ``xstatic-leaflet-markercluster``) so the file works with content
delivery networks blocked (base tiles still need the network; every other layer is
vector data embedded in the page).

Display geometries are simplified in each territory's legal metric CRS and their
coordinates rounded to 5 decimals (about 1 m); the ~34,000 communes of a national
coverage map are simplified at the map's scale, rounded to 4 decimals and embedded in a
compact encoding, so the file stays around 4 MB (see :func:`coverage_map`). All text
coming from data is HTML-escaped.
"""

from __future__ import annotations

import html
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.colormap import StepColormap
from branca.element import MacroElement
from jinja2 import Template
from jinja2.utils import htmlsafe_json_dumps

from . import _leaflet_assets, french, loaders, outputs
from ._errors import InputError
from ._packed_polygons import PackedPolygons
from .crs import GEOGRAPHIC, TERRITORIES, locate, territory_names, to_metric
from .french import NO_BREAK_SPACE
from .nomenclatures import DENSITE7
from .places import place_labels, place_lines
from .rules import VERDICTS

#: Output format of :func:`save`, by extension.
MAP_FORMATS = {".html": "page web", ".htm": "page web"}
#: Fill colour of the place markers, per verdict.
VERDICT_COLOURS: dict[str, str] = {
    "invalide": "#7f7f7f",
    "qpv": "#6a3d9a",
    "proximite_qpv": "#1f78b4",
    "incertain": "#b15928",
    "hors_grands_centres_urbains": "#33a02c",
    "non_eligible": "#e31a1c",
    "indetermine": "#ff7f00",
}
#: Fill colour of communes per level of the INSEE 7-level density grid.
DENSITE7_COLOURS: dict[int, str] = {
    1: "#67000d",
    2: "#cb181d",
    3: "#fb6a4a",
    4: "#fcbba1",
    5: "#c7e9c0",
    6: "#74c476",
    7: "#238b45",
}
#: Classes and colours of the share of population covered, per département.
COVERAGE_STEPS: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
COVERAGE_COLOURS: tuple[str, ...] = ("#f0f9e8", "#bae4bc", "#7bccc4", "#43a2ca", "#0868ac")
_MISSING_COLOUR = "#bdbdbd"
_QPV_COLOUR = "#6a3d9a"
_BAND_COLOUR = "#cab2d6"
_COVERED_COLOUR = "#1a9850"
_UNCOVERED_COLOUR = "#fc8d59"
_UNCOVERED_QPV_COLOUR = "#d7191c"
_PLACE_COLOUR = "#ffd92f"
_COMMUNE_STYLE = {"color": "#777", "weight": 0.4, "fillOpacity": 0.6}
_DECIMALS = 5
#: Decimals of the commune outlines of the coverage map (about 10 m).
_COMMUNE_DECIMALS = 4
#: Width, in tolerances, of a territory's extent (see :func:`_scale_tolerances`).
_VIEW_PIXELS = 2500
#: Largest simplification tolerance chosen for a map's scale, in metres.
_MAX_SIMPLIFY_M = 500.0
#: Smallest half-extent of the initial view, in degrees (about 2 km).
_MIN_HALF_EXTENT = 0.02
_TILE_NAME = "Fond OpenStreetMap (en ligne)"
#: Name of the layer of places located by their commune only (no point).
_COMMUNE_PLACES = "Lieux localisés par leur commune"
#: Colour of the clusters of places located by their commune.
_COMMUNE_CLUSTER_COLOUR = "#555555"
#: Cluster icons in the colour of their verdict (COLOUR is replaced).
_CLUSTER_ICON = """
function (cluster) {
    return L.divIcon({
        html: '<div style="background:COLOUR;color:#fff;font-weight:bold"><span>'
            + cluster.getChildCount() + '</span></div>',
        className: "marker-cluster",
        iconSize: new L.Point(40, 40)
    });
}
"""


class _Legend(MacroElement):
    """A Leaflet control showing a legend given as already-escaped HTML."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>
        .territoires-legende {background: rgba(255, 255, 255, 0.92); padding: 6px 10px;
            border-radius: 5px; box-shadow: 0 1px 5px rgba(0, 0, 0, 0.4); max-width: 330px;
            font: 12px/1.5 "Helvetica Neue", Arial, Helvetica, sans-serif; color: #222;}
        .territoires-legende h4 {margin: 0 0 4px; font-size: 13px;}
        .territoires-legende h5 {margin: 6px 0 2px; font-size: 12px;}
        .territoires-legende i {display: inline-block; width: 14px; height: 14px;
            margin-right: 6px; vertical-align: -2px; box-sizing: border-box;}
        .territoires-legende i.rond {border-radius: 50%; border: 1px solid #333;}
        .territoires-legende p {margin: 4px 0 0; color: #555;}
        .territoires-legende p.limites {margin: 0 0 6px; padding: 3px 6px; color: #7a4100;
            background: #fff3cd; border: 1px solid #e0b252; border-radius: 3px;}
        </style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: "bottomleft"});
        {{ this.get_name() }}.onAdd = function () {
            var div = L.DomUtil.create("div", "territoires-legende");
            div.innerHTML = {{ this.content|tojson }};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, content: str) -> None:
        super().__init__()
        self._name = "Legende"
        self.content = content


def _esc(value: Any) -> str:
    """HTML-escape any value; missing values give an empty string."""
    return "" if pd.isna(value) else html.escape(str(value))


def _swatch(
    fill: str, *, outline: str | None = None, round_: bool = False, dash: bool = False
) -> str:
    """HTML of one legend key."""
    style = f"background:{fill};"
    if outline:
        style += f"border:2px {'dashed' if dash else 'solid'} {outline};"
    return f'<i class="{"rond" if round_ else ""}" style="{style}"></i>'


def _territories(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Territory name of each row: from ``dep`` when present, else from its location."""
    if "dep" in frame.columns:
        return territory_names(frame["dep"].astype("string").fillna("").to_numpy(dtype=object))
    points = frame.geometry.representative_point()
    names = locate(points.x.to_numpy(), points.y.to_numpy())
    names[names == ""] = TERRITORIES[0].name
    return names


def _rounded(geometries: gpd.GeoSeries) -> gpd.GeoSeries:
    """Coordinates rounded to :data:`_DECIMALS` decimals (about 1 m)."""
    values = shapely.transform(geometries.values, lambda xy: np.round(xy, _DECIMALS))
    return gpd.GeoSeries(values, index=geometries.index, crs=geometries.crs)


def _display_polygons(
    frame: gpd.GeoDataFrame, simplify_m: float, tolerances: dict[str, float] | None = None
) -> gpd.GeoDataFrame:
    """Polygons simplified in each territory's metric CRS, in EPSG:4326, rounded.

    ``tolerances`` overrides ``simplify_m`` for the territories it names. Rows with a
    missing or empty geometry are dropped; index and columns are kept.
    """
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty].to_crs(GEOGRAPHIC)
    geometries = frame.geometry.copy()
    names = _territories(frame) if len(frame) else np.array([], dtype=object)
    for name in np.unique(names):
        tolerance = (tolerances or {}).get(name, simplify_m)
        if tolerance > 0:
            part = to_metric(frame[names == name], name).geometry
            simplified = part.simplify(tolerance, preserve_topology=True)
            geometries[names == name] = simplified.to_crs(GEOGRAPHIC).values
    out = frame.set_geometry(_rounded(geometries))
    return out[~out.geometry.is_empty]


def _scale_tolerances(frame: gpd.GeoDataFrame, floor_m: float) -> dict[str, float]:
    """Simplification tolerance per territory, adapted to the scale the territory is seen at.

    About half a screen pixel when the whole territory fills a map 1,250 pixels wide:
    the extent divided by :data:`_VIEW_PIXELS`, at least ``floor_m`` and at most
    :data:`_MAX_SIMPLIFY_M`: about 490 m for métropole, 160 m for the communes of one
    region such as Occitanie, a few tens of metres for La Réunion.
    """
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty].to_crs(GEOGRAPHIC)
    if frame.empty:
        return {}
    names = _territories(frame)
    tolerances = {}
    for name in np.unique(names):
        corners = gpd.GeoDataFrame(
            geometry=[shapely.box(*frame[names == name].total_bounds)], crs=GEOGRAPHIC
        )
        west, south, east, north = to_metric(corners, name).total_bounds
        extent = max(east - west, north - south)
        tolerances[str(name)] = float(np.clip(extent / _VIEW_PIXELS, floor_m, _MAX_SIMPLIFY_M))
    return tolerances


def _proximity_bands(
    qpv: gpd.GeoDataFrame, distance_m: float | np.ndarray, simplify_m: float
) -> gpd.GeoDataFrame:
    """QPV buffered by ``distance_m`` (one value, or one per QPV) in each territory's
    metric CRS, dissolved.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per territory (index: territory name), EPSG:4326.
    """
    names = _territories(qpv)
    rows = {}
    for name in np.unique(names):
        metric = to_metric(qpv[names == name], name)
        widths = distance_m[names == name] if np.ndim(distance_m) else distance_m
        band = metric.geometry.buffer(widths).union_all()
        band = shapely.simplify(band, simplify_m, preserve_topology=True)
        rows[name] = gpd.GeoSeries([band], crs=metric.crs).to_crs(GEOGRAPHIC).iloc[0]
    bands = gpd.GeoSeries(rows, crs=GEOGRAPHIC)
    return gpd.GeoDataFrame(geometry=_rounded(bands))


def _feature_collection(
    frame: gpd.GeoDataFrame, ids: pd.Series, **properties: pd.Series
) -> dict[str, Any]:
    """GeoJSON dict with feature ids ``ids`` and only the given (string) properties."""
    data = gpd.GeoDataFrame(
        {key: values.to_numpy(dtype=object) for key, values in properties.items()},
        geometry=frame.geometry.to_numpy(),
        crs=GEOGRAPHIC,
        index=pd.Index(ids.astype(str).to_numpy(), name=None),
    )
    return data.to_geo_dict(drop_id=False)


def _main_bounds(frame: gpd.GeoDataFrame) -> list[list[float]]:
    """``[[south, west], [north, east]]`` of the territory holding most rows.

    A national frame then opens on métropole, overseas rows staying reachable by panning.
    Degenerate extents (one point) are widened to about 2 km either side.
    """
    if frame.empty:
        raise InputError("rien à cartographier : aucune géométrie")
    names = _territories(frame)
    main = pd.Series(names).value_counts().index[0]
    west, south, east, north = frame[names == main].total_bounds
    x, y = (west + east) / 2, (south + north) / 2
    half_x = max((east - west) / 2, _MIN_HALF_EXTENT)
    half_y = max((north - south) / 2, _MIN_HALF_EXTENT)
    return [[y - half_y, x - half_x], [y + half_y, x + half_x]]


class _MetricScale(MacroElement):
    """Leaflet's scale bar in metres and kilometres only (no miles, no feet)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        L.control.scale({metric: true, imperial: false, position: "bottomright"})
            .addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )


def _new_map(title: str, self_contained: bool) -> folium.Map:
    """An empty map with a French-named OSM base layer and a metric scale."""
    fmap = folium.Map(tiles=None, control_scale=False, zoom_snap=0.25)
    folium.TileLayer("OpenStreetMap", name=_TILE_NAME).add_to(fmap)
    _MetricScale().add_to(fmap)
    fmap.get_root().title = html.escape(title)
    if self_contained:
        # Only Leaflet itself: folium's stock jQuery, Bootstrap, Font Awesome and
        # awesome-markers are never used by these maps.
        fmap.default_js = [item for item in folium.Map.default_js if item[0] == "leaflet"]
        fmap.default_css = [item for item in folium.Map.default_css if item[0] == "leaflet_css"]
    return fmap


def _qpv_limits(qpv: pd.DataFrame) -> str:
    """Legend line saying where QPV are known, when the QPV layer is partial ('' if not)."""
    departements = loaders.qpv_departements(qpv, unsourced="present")
    if departements is None:
        return ""
    scopes = [
        source["couverture"]
        for source in qpv.attrs.get("sources", [])
        if source.get("departements") and source.get("couverture")
    ]
    where = " ; ".join(dict.fromkeys(scopes)) or f"départements {', '.join(departements)}"
    return (
        f'<p class="limites"><b>QPV connus : {_esc(where)}</b>. Ailleurs, la proximité '
        "d'un QPV n'est pas vérifiable.</p>"
    )


def _qpv_vintage(classified: pd.DataFrame, qpv: gpd.GeoDataFrame) -> Any:
    """QPV vintage to show, warning when the layer's differs from the classification's."""
    used = classified.attrs.get("regles", {}).get("millesime_qpv")
    shown = qpv.attrs.get("millesime_qpv", used)
    if used is not None and shown != used:
        warnings.warn(
            f"les lieux ont été classés avec les QPV {used} mais la couche affichée est celle "
            f"des QPV {shown}",
            stacklevel=3,
        )
    return shown


def _qpv_layer(fmap: folium.Map, qpv: gpd.GeoDataFrame, name: str, simplify_m: float) -> None:
    """Add the QPV polygons, with their code and name as tooltip."""
    shapes = _display_polygons(qpv, simplify_m)
    info = "<b>" + shapes["code_qpv"].map(_esc) + "</b> " + shapes["nom_qpv"].map(_esc)
    folium.GeoJson(
        _feature_collection(shapes, shapes["code_qpv"], info=info),
        name=html.escape(name),
        style_function=lambda _: {
            "color": _QPV_COLOUR,
            "weight": 1.5,
            "fillColor": _QPV_COLOUR,
            "fillOpacity": 0.35,
        },
        tooltip=folium.GeoJsonTooltip(fields=["info"], labels=False),
    ).add_to(fmap)


def _communes_layer(
    fmap: folium.Map, communes: gpd.GeoDataFrame, bounds: list[list[float]], simplify_m: float
) -> None:
    """Add the communes of the view coloured by density level, hidden at opening."""
    (south, west), (north, east) = bounds
    margin_x, margin_y = (east - west) / 4, (north - south) / 4
    inside = communes.cx[west - margin_x : east + margin_x, south - margin_y : north + margin_y]
    shapes = _display_polygons(inside, simplify_m)
    level = pd.to_numeric(shapes["densite7"], errors="coerce").astype("Int64")
    label = level.map(lambda v: f"{v} – {DENSITE7[int(v)]}" if pd.notna(v) else "inconnue")
    info = (
        "<b>" + shapes["nom"].map(_esc) + "</b> (" + shapes["code_insee"].map(_esc) + ")<br>"
        "Densité : " + label.map(_esc)
    )
    colour = {str(k): v for k, v in DENSITE7_COLOURS.items()}
    folium.GeoJson(
        _feature_collection(
            shapes, shapes["code_insee"], info=info, d=level.astype("string").fillna("")
        ),
        name="Communes par densité (grille INSEE à 7 niveaux)",
        show=False,
        style_function=lambda feature: {
            "color": "#666",
            "weight": 0.5,
            "fillColor": colour.get(feature["properties"]["d"], _MISSING_COLOUR),
            "fillOpacity": 0.5,
        },
        tooltip=folium.GeoJsonTooltip(fields=["info"], labels=False),
    ).add_to(fmap)


def _markers(
    parent: Any,
    points: gpd.GeoSeries,
    popups: pd.Series,
    titles: pd.Series,
    marker: folium.CircleMarker,
) -> None:
    """Add one GeoJSON layer of ``marker`` at ``points`` with popups and tooltips (HTML)."""
    folium.GeoJson(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [x, y]},
                    "properties": {"popup": text, "titre": title},
                }
                for x, y, text, title in zip(points.x, points.y, popups, titles, strict=True)
            ],
        },
        marker=marker,
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False, localize=False, max_width=320),
        tooltip=folium.GeoJsonTooltip(fields=["titre"], labels=False),
        control=False,
    ).add_to(parent)


def _places_layers(
    fmap: folium.Map, places: gpd.GeoDataFrame, names: pd.Series, cluster: bool
) -> dict[str, int]:
    """Add one toggleable layer of circle markers per verdict; return counts drawn."""
    popup = (
        "<b>"
        + names.map(_esc)
        + "</b><br>"
        + places["verdict"].map(VERDICTS).map(_esc)
        + "<br><small>"
        + places["motif"].map(_esc)
        + "</small>"
    )
    drawn = {}
    for verdict in VERDICTS:
        rows = places["verdict"] == verdict
        if not rows.any():
            continue
        drawn[verdict] = int(rows.sum())
        group = folium.FeatureGroup(
            name=html.escape(f"{VERDICTS[verdict]} ({french.number(drawn[verdict])})")
        ).add_to(fmap)
        parent = (
            folium.plugins.MarkerCluster(
                control=False,
                icon_create_function=_CLUSTER_ICON.replace("COLOUR", VERDICT_COLOURS[verdict]),
            ).add_to(group)
            if cluster
            else group
        )
        _markers(
            parent,
            places.geometry[rows],
            popup[rows],
            names[rows].map(_esc),
            folium.CircleMarker(
                radius=6,
                color="#333333",
                weight=1,
                fill=True,
                fill_color=VERDICT_COLOURS[verdict],
                fill_opacity=0.9,
            ),
        )
    return drawn


def _commune_points(
    classified: gpd.GeoDataFrame, by_commune: pd.Series, communes: gpd.GeoDataFrame | None
) -> gpd.GeoSeries:
    """A point inside the commune of each commune-level row (``None`` when not found).

    Codes are looked up in ``communes["code_insee"]``, then in ``code_actuel`` (communes
    merged since the boundaries' COG, whose parts are then joined).
    """
    if not by_commune.any():
        return gpd.GeoSeries([], index=classified.index[:0], crs=GEOGRAPHIC)
    codes = classified["code_insee"][by_commune].astype("string").fillna("")
    polygons = pd.Series([None] * len(codes), dtype=object)
    if communes is not None and len(codes):
        current = communes["code_actuel"].isin(codes) if "code_actuel" in communes else False
        shapes = communes[communes["code_insee"].isin(codes) | current].to_crs(GEOGRAPHIC)
        direct = shapes["code_insee"].isin(codes)
        found = shapes[direct].drop_duplicates("code_insee").set_index("code_insee").geometry
        if "code_actuel" in shapes:
            found = pd.concat([found, shapes[~direct].dissolve("code_actuel").geometry])
        polygons = found[~found.index.duplicated()].reindex(codes.to_numpy())
    return gpd.GeoSeries(
        shapely.point_on_surface(polygons.to_numpy()), index=codes.index, crs=GEOGRAPHIC
    )


def _commune_places_layer(fmap: folium.Map, places: gpd.GeoDataFrame, names: pd.Series) -> None:
    """Add the layer of places located by their commune only.

    Each place is a hollow dashed circle, in the colour of its verdict, at a point inside
    its commune; places of the same commune stack in a cluster that opens on click.
    """
    popup = (
        "<b>"
        + names.map(_esc)
        + "</b><br><i>localisé par sa commune seulement</i> ("
        + places["commune"].map(_esc)
        + ", "
        + places["code_insee"].map(_esc)
        + ")<br>"
        + places["verdict"].map(VERDICTS).map(_esc)
        + "<br><small>"
        + places["motif"].map(_esc)
        + "</small>"
    )
    group = folium.FeatureGroup(
        name=html.escape(f"{_COMMUNE_PLACES} ({french.number(len(places))})")
    ).add_to(fmap)
    cluster = folium.plugins.MarkerCluster(
        control=False,
        icon_create_function=_CLUSTER_ICON.replace("COLOUR", _COMMUNE_CLUSTER_COLOUR),
    ).add_to(group)
    for verdict in VERDICTS:
        rows = places["verdict"] == verdict
        if not rows.any():
            continue
        _markers(
            cluster,
            places.geometry[rows],
            popup[rows],
            names[rows].map(_esc) + " (commune)",
            folium.CircleMarker(
                radius=9,
                color=VERDICT_COLOURS[verdict],
                weight=3,
                dash_array="4 3",
                fill=True,
                fill_color="#ffffff",
                fill_opacity=0.3,
            ),
        )


def _outlines_layer(fmap: folium.Map, outlines: gpd.GeoDataFrame) -> None:
    """Thin grey administrative outlines, not interactive."""
    drawn = _display_polygons(outlines, 0, _scale_tolerances(outlines, floor_m=100))
    folium.GeoJson(
        _feature_collection(drawn, pd.Series(range(len(drawn)))),
        name="Limites administratives",
        style_function=lambda _: {"color": "#777777", "weight": 1, "fill": False},
        interactive=False,
    ).add_to(fmap)


def eligibility_map(
    classified: gpd.GeoDataFrame,
    qpv: gpd.GeoDataFrame,
    *,
    communes: gpd.GeoDataFrame | None = None,
    place_communes: gpd.GeoDataFrame | None = None,
    outlines: gpd.GeoDataFrame | None = None,
    near_distance_m: float | None = None,
    name_column: str | None = None,
    cluster_above: int = 300,
    self_contained: bool = False,
    simplify_m: float = 20,
) -> folium.Map:
    """Map classified places over the QPV, their proximity band and the communes.

    Parameters
    ----------
    classified : geopandas.GeoDataFrame
        Output of :func:`territoires.eligibility.classify`: points (``None`` for invalid
        rows), ``verdict``, ``motif`` and ``attrs["regles"]``.
    qpv : geopandas.GeoDataFrame
        Output of :func:`territoires.load_qpv` (``code_qpv``, ``nom_qpv``, ``dep``).
    communes : geopandas.GeoDataFrame, optional
        Output of :func:`territoires.load_communes`; adds a layer, hidden at opening, of
        the communes around the view coloured by density level.
    place_communes : geopandas.GeoDataFrame, optional
        Commune boundaries (``code_insee``, optionally ``code_actuel``, polygons), e.g.
        :func:`territoires.load_communes`, used to draw the places located by their
        commune only (``localisation == "commune"``): each at a point inside its commune
        (``point_on_surface``), as a hollow dashed circle in the colour of its verdict,
        in a layer of their own; places of one commune stack in a cluster. Defaults to
        ``communes``; with neither, those places are counted as not placed.
    outlines : geopandas.GeoDataFrame, optional
        Administrative outlines (e.g. :func:`territoires.load_admin`), drawn as thin grey
        lines simplified to the scale of their territory: the map stays readable where
        the base tiles cannot load (offline networks).
    near_distance_m : float, optional
        Width of the proximity band, metres from the QPV boundary; defaults to
        ``classified.attrs["regles"]["distance_proximite_m"]``, with the wider NPNRU
        distance around the QPV of ``attrs["regles"]["codes_npnru"]`` when the rules
        had a NPNRU list. ``0`` draws no band.
    name_column : str, optional
        Column naming the places; detected by :func:`territoires.places.name_column`
        when omitted. A place without name is called by its line in the input file
        (:func:`territoires.places.place_labels`).
    cluster_above : int, default 300
        Group markers into clusters when more places than this are drawn.
    self_contained : bool, default False
        Link only Leaflet (and the cluster plugin), as :func:`save` inlines them.
    simplify_m : float, default 20
        Tolerance, in metres, of the simplification of displayed polygons.

    Returns
    -------
    folium.Map
        Layers: OSM base, proximity band, QPV, communes by density, one layer per
        verdict, places located by their commune; a legend and a layer control. The
        view fits the places of the territory holding most of them (their communes when no
        place has coordinates, else the QPV).

    Raises
    ------
    InputError
        When the proximity distance is unknown, ``classified`` has no CRS or holds
        unknown verdicts.
    """
    if classified.crs is None:
        raise InputError("classified n'a pas de CRS déclaré ; il n'est jamais deviné")
    if "verdict" not in classified.columns:
        raise InputError(
            "pas de colonne verdict : une carte montre une seule géographie prioritaire ; "
            "classez sous un seul millésime QPV (les colonnes verdict_2015, verdict_2024… "
            "d'un classement côte à côte ne se dessinent pas ensemble)"
        )
    unknown = set(classified["verdict"].dropna()) - set(VERDICTS)
    if unknown:
        raise InputError(f"verdicts inconnus {sorted(unknown)} ; attendus : {list(VERDICTS)}")
    rules = classified.attrs.get("regles", {})
    distance = near_distance_m if near_distance_m is not None else rules.get("distance_proximite_m")
    if distance is None:
        raise InputError(
            "distance de proximité inconnue : passez near_distance_m ou une sortie de classify "
            "(attrs['regles']['distance_proximite_m'])"
        )
    vintage = _qpv_vintage(classified, qpv)
    qpv_name = f"Quartiers prioritaires (QPV {vintage})" if vintage else "Quartiers prioritaires"
    placed = classified.geometry.notna() & ~classified.geometry.is_empty
    commune_level = ~placed & (
        classified["localisation"].eq("commune").fillna(False)
        if {"localisation", "code_insee"} <= set(classified.columns)
        else False
    )
    at_commune = _commune_points(
        classified, commune_level, place_communes if place_communes is not None else communes
    )
    by_commune = commune_level.copy()
    by_commune[commune_level] = at_commune.notna().to_numpy()
    commune_places = classified[by_commune].set_geometry(
        _rounded(at_commune[at_commune.notna()]).to_numpy(), crs=GEOGRAPHIC
    )
    places = classified[placed].to_crs(GEOGRAPHIC)
    places = places.set_geometry(_rounded(places.geometry))
    labels = place_labels(classified, name_column)
    lines = place_lines(classified)
    all_names = labels.where(labels == lines, labels + " (" + lines + ")")
    names = all_names[placed]
    shown = places if len(places) else commune_places if len(commune_places) else qpv
    bounds = _main_bounds(shown)

    title = "Éligibilité des tiers-lieux"
    if rules.get("nom"):
        title += f" — règles « {rules['nom']} »"
    fmap = _new_map(title, self_contained)
    if outlines is not None:
        _outlines_layer(fmap, outlines)
    # with a NPNRU list (and the rules' own distance), its QPV get their own, wider band
    npnru = rules.get("codes_npnru") if near_distance_m is None else None
    widths: float | np.ndarray = float(distance)
    band_name = f"Bande de proximité immédiate ({french.number(distance)} m)"
    if npnru:
        wide = float(rules["distance_npnru_m"])
        widths = np.where(qpv["code_qpv"].isin(npnru).to_numpy(), wide, float(distance))
        band_name = (
            f"Bande de proximité immédiate ({french.number(distance)} m ; "
            f"{french.number(wide)} m autour des QPV NPNRU)"
        )
    if np.max(widths, initial=0) > 0:
        bands = _proximity_bands(qpv, widths, simplify_m)
        folium.GeoJson(
            _feature_collection(bands, pd.Series(bands.index)),
            name=band_name,
            style_function=lambda _: {
                "color": _QPV_COLOUR,
                "weight": 1,
                "dashArray": "4 4",
                "fillColor": _BAND_COLOUR,
                "fillOpacity": 0.3,
            },
        ).add_to(fmap)
    _qpv_layer(fmap, qpv, qpv_name, simplify_m)
    if communes is not None:
        _communes_layer(fmap, communes, bounds, simplify_m)
    drawn = _places_layers(fmap, places, names, cluster=len(places) > cluster_above)
    if len(commune_places):
        _commune_places_layer(fmap, commune_places, all_names[by_commune])

    items = [
        f"<div>{_swatch(VERDICT_COLOURS[v], round_=True)}{_esc(VERDICTS[v])} "
        f"({french.number(drawn.get(v, 0))})</div>"
        for v in VERDICTS
        if v != "invalide" or drawn.get(v)
    ]
    if len(commune_places):
        items.append(
            f"<div>{_swatch('#ffffff', outline='#333333', round_=True, dash=True)}"
            f"{_esc(_COMMUNE_PLACES)} ({french.number(len(commune_places))}) : "
            "cercle pointillé de la couleur du verdict, en un point de la commune</div>"
        )
    items.append(f"<div>{_swatch(_QPV_COLOUR + '59', outline=_QPV_COLOUR)}{_esc(qpv_name)}</div>")
    if distance > 0:
        items.append(
            f"<div>{_swatch(_BAND_COLOUR + '4d', outline=_QPV_COLOUR, dash=True)}"
            f"Bande de proximité immédiate ({french.number(distance)} m)</div>"
        )
    if communes is not None:
        items.append("<h5>Communes par densité (couche masquée)</h5>")
        items += [
            f"<div>{_swatch(DENSITE7_COLOURS[k])}{k} – {_esc(label)}</div>"
            for k, label in DENSITE7.items()
        ]
    missing = int((~placed & ~by_commune).sum())
    if missing:
        items.append(
            f"<p>{french.number(missing)} lieu(x) sans coordonnées valides, non placé(s).</p>"
        )
    _Legend(f"<h4>{_esc(title)}</h4>{_qpv_limits(qpv)}" + "".join(items)).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.fit_bounds(bounds, padding=(30, 30))
    return fmap


def _qpv_coverage(qpv_cov: pd.DataFrame, qpv: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """QPV coverage rows with a geometry: their own, else joined from ``qpv``."""
    if isinstance(qpv_cov, gpd.GeoDataFrame) and "geometry" in qpv_cov.columns:
        return qpv_cov
    if qpv is None:
        raise InputError("qpv_cov n'a pas de géométrie : passez aussi qpv (sortie de load_qpv)")
    shapes = qpv[["code_qpv", "geometry"]].drop_duplicates("code_qpv")
    joined = gpd.GeoDataFrame(
        pd.DataFrame(qpv_cov).merge(shapes, on="code_qpv", how="left"), crs=qpv.crs
    )
    lost = joined.geometry.isna()
    if lost.any():
        warnings.warn(
            f"{int(lost.sum())} QPV de la couverture absents de la couche qpv "
            f"(ex. {', '.join(joined.loc[lost, 'code_qpv'].astype(str).head(5))}) : non dessinés",
            stacklevel=3,
        )
    return joined[~lost]


def coverage_map(
    departements_agg: gpd.GeoDataFrame,
    *,
    commune_cov: gpd.GeoDataFrame | None = None,
    qpv_cov: pd.DataFrame | None = None,
    qpv: gpd.GeoDataFrame | None = None,
    places: gpd.GeoDataFrame | None = None,
    name_column: str | None = None,
    self_contained: bool = False,
    simplify_m: float = 20,
    commune_simplify_m: float | None = None,
) -> folium.Map:
    """Map the share of population covered per département, communes, QPV and places.

    The map is one HTML file that must open quickly even for the whole of France, so
    the ~34,000 communes outside large urban centres are all kept, each with its name,
    code, population, coverage and distance, but drawn economically: outlines are
    simplified at a tolerance adapted to the scale of each territory (about 490 m for
    métropole, see ``commune_simplify_m``, topology preserved), their coordinates kept
    to 4 decimals (about 10 m), and the layer is embedded in a compact encoding (only
    the properties the tooltip shows, polygons delta-encoded) that the browser decodes
    and draws on a canvas the first time the layer is shown. A national map thus weighs
    about 4 MB instead of 17 MB, and the legend states the tolerance used. Coverage
    figures are always computed on the full-resolution outlines; only the drawing is
    simplified.

    Parameters
    ----------
    departements_agg : geopandas.GeoDataFrame
        One row per département: ``dep``, ``nom``, ``part_population_couverte`` (0–1,
        NA when unknown), ``population_hors_gcu_non_couverte``, ``nb_qpv``,
        ``nb_qpv_couverts`` and polygons; the legend says the territory measured when
        ``attrs["territoire"]`` does (:func:`territoires.coverage.analyse`).
    commune_cov : geopandas.GeoDataFrame, optional
        ``code_insee``, ``nom``, ``population``, ``couvert`` (boolean, NA unknown),
        ``distance_lieu_m`` and polygons; adds the layer « Communes couvertes ou non »,
        hidden at opening, with every row that has a geometry.
    qpv_cov : pandas.DataFrame, optional
        ``code_qpv``, ``nom_qpv``, ``couvert``, ``distance_lieu_m``; QPV not covered
        (``couvert`` False or unknown) are outlined in red, covered ones in grey.
    qpv : geopandas.GeoDataFrame, optional
        Output of :func:`territoires.load_qpv`, giving ``qpv_cov`` its polygons when it
        has none. When it (or ``qpv_cov``) covers part of France only, the legend says
        where QPV are known.
    places : geopandas.GeoDataFrame, optional
        The places analysed (e.g. the output of :func:`territoires.classify`), drawn as
        a layer of dots named in their tooltip.
    name_column : str, optional
        Column naming the places (see :func:`territoires.places.place_labels`).
    self_contained : bool, default False
        Link only Leaflet, as :func:`save` inlines it.
    simplify_m : float, default 20
        Tolerance, in metres, of the simplification of displayed polygons
        (départements, QPV) and the smallest one used for communes.
    commune_simplify_m : float, optional
        Tolerance, in metres, for the communes; by default adapted to the scale of each
        territory: its extent divided by 2,500 (about half a pixel when the territory
        fills the screen), between ``simplify_m`` and 500 m.

    Returns
    -------
    folium.Map
        Layers: OSM base, départements choropleth, communes covered or not, QPV
        covered and not covered, places; legend and layer control; the view fits the
        territory holding most départements. Tooltips of QPV and communes name their
        nearest place (``lieu_proche``) and its distance.
    """
    if qpv is not None and qpv_cov is None:
        raise InputError("qpv ne sert qu'à placer qpv_cov : passez aussi qpv_cov")
    title = "Couverture des territoires par les tiers-lieux"
    fmap = _new_map(title, self_contained)
    colormap = StepColormap(list(COVERAGE_COLOURS), index=list(COVERAGE_STEPS), vmin=0.0, vmax=1.0)
    deps = _display_polygons(departements_agg, simplify_m)
    share = pd.to_numeric(deps["part_population_couverte"], errors="coerce")
    fill = share.map(
        lambda v: _MISSING_COLOUR if pd.isna(v) else colormap.rgb_hex_str(min(max(v, 0), 1))
    )
    info = (
        "<b>" + deps["nom"].map(_esc) + " (" + deps["dep"].map(_esc) + ")</b><br>"
        "Population couverte : " + share.map(partial(french.percent, space=NO_BREAK_SPACE)) + "<br>"
        "Population hors grands centres urbains non couverte : "
        + deps["population_hors_gcu_non_couverte"].map(french.number)
        + "<br>QPV couverts : "
        + deps["nb_qpv_couverts"].map(french.number)
        + " / "
        + deps["nb_qpv"].map(french.number)
    )
    colour_of = dict(zip(deps["dep"].astype(str), fill, strict=True))
    folium.GeoJson(
        _feature_collection(deps, deps["dep"], info=info),
        name="Part de la population couverte, par département",
        style_function=lambda feature: {
            "color": "#555",
            "weight": 1,
            "fillColor": colour_of[feature["id"]],
            "fillOpacity": 0.75,
        },
        tooltip=folium.GeoJsonTooltip(fields=["info"], labels=False),
    ).add_to(fmap)

    steps = list(zip(COVERAGE_STEPS[:-1], COVERAGE_STEPS[1:], COVERAGE_COLOURS, strict=True))
    items = [
        f"<div>{_swatch(colour)}{100 * low:.0f} à {100 * high:.0f}\u00a0%</div>"
        for low, high, colour in steps
    ]
    items.append(f"<div>{_swatch(_MISSING_COLOUR)}Non renseigné</div>")
    if commune_cov is not None:
        if commune_simplify_m is None:
            tolerances = _scale_tolerances(commune_cov, simplify_m)
        else:
            tolerances = dict.fromkeys((t.name for t in TERRITORIES), commune_simplify_m)
        _commune_coverage_layer(fmap, commune_cov, tolerances)
        items.append("<h5>Communes (couche masquée)</h5>")
        items += [
            f"<div>{_swatch(_COVERED_COLOUR)}Couverte</div>",
            f"<div>{_swatch(_UNCOVERED_COLOUR)}Non couverte</div>",
        ]
        if commune_cov["couvert"].isna().any():
            items.append(f"<div>{_swatch(_MISSING_COLOUR)}Couverture inconnue</div>")
        if tolerances:
            largest = french.number(max(tolerances.values()))
            items.append(
                f"<p>Contours des communes simplifiés pour l'affichage (jusqu'à {largest} m) ; "
                "la couverture est calculée sur les contours complets.</p>"
            )
    limits = ""
    if qpv_cov is not None:
        _qpv_coverage_layers(fmap, _qpv_coverage(qpv_cov, qpv), simplify_m)
        limits = _qpv_limits(qpv if qpv is not None else qpv_cov)
        items.append("<h5>Quartiers prioritaires</h5>")
        items += [
            f"<div>{_swatch('transparent', outline=_UNCOVERED_QPV_COLOUR)}QPV non couvert</div>",
            f"<div>{_swatch('transparent', outline='#444')}QPV couvert</div>",
        ]
    if places is not None:
        drawn = _coverage_places_layer(fmap, places, name_column)
        items.append("<h5>Lieux analysés</h5>")
        items.append(
            f"<div>{_swatch(_PLACE_COLOUR, round_=True)}Tiers-lieux ({french.number(drawn)})</div>"
        )
    measured = departements_agg.attrs.get("territoire")  # see territoires.coverage.territory
    scope = f"<p>{_esc(measured['texte'])}</p>" if measured else ""
    legend = (
        f"<h4>{_esc(title)}</h4>{scope}{limits}<h5>Part de la population couverte</h5>"
        + "".join(items)
    )
    _Legend(legend).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.fit_bounds(_main_bounds(deps), padding=(30, 30))
    return fmap


def _coverage_text(covered: pd.Series) -> pd.Series:
    return covered.astype("boolean").map(
        lambda v: "couverture inconnue" if pd.isna(v) else ("couvert" if v else "non couvert")
    )


#: Tooltip of a commune of the coverage map, built in the browser from short properties:
#: ``n`` name (escaped), ``p`` population, ``c`` covered (true, false or null), ``d``
#: distance to the nearest place in metres, ``l`` position of that place's name in
#: ``NAMES`` (escaped, replaced by :func:`_commune_tooltip`); same French formats as
#: :func:`territoires.french.number` and :func:`territoires.french.distance` (HTML spacing).
_COMMUNE_TOOLTIP = r"""function (p, id) {
    var names = NAMES;
    function integer(v) {
        return v === null ? "n.d." : String(v).replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
    }
    function distance(m) {
        if (m === null) { return "inconnue"; }
        if (m < 1000) { return m + "\u00a0m"; }
        return (m / 1000).toFixed(1).replace(".", ",") + "\u00a0km";
    }
    var state = p.c === null ? "couverture inconnue" : (p.c ? "couverte" : "non couverte");
    var nearest = p.d === null ? "aucun dans ce territoire"
        : (p.l === null ? distance(p.d) : "<b>" + names[p.l] + "</b>, à " + distance(p.d));
    return "<b>" + p.n + "</b> (" + id + ")<br>Population : " + integer(p.p)
        + "<br>Commune " + state + "<br>Lieu le plus proche : " + nearest;
}"""


def _commune_tooltip(names: list[str]) -> str:
    """The commune tooltip function with the (escaped) names of the nearest places."""
    return _COMMUNE_TOOLTIP.replace("NAMES", str(htmlsafe_json_dumps([_esc(n) for n in names])))


def _commune_coverage_layer(
    fmap: folium.Map, commune_cov: gpd.GeoDataFrame, tolerances: dict[str, float]
) -> None:
    """Add every commune of ``commune_cov``, coloured by coverage, as a packed layer."""
    shapes = _display_polygons(commune_cov, 0, tolerances)
    population = pd.to_numeric(shapes["population"], errors="coerce").round().astype("Int64")
    distance = pd.to_numeric(shapes["distance_lieu_m"], errors="coerce").round().astype("Int64")
    nearest = (
        shapes["lieu_proche"].astype("string")
        if "lieu_proche" in shapes.columns
        else pd.Series(pd.NA, index=shapes.index, dtype="string")
    )
    codes, names = pd.factorize(nearest)
    PackedPolygons(
        shapes,
        shapes["code_insee"].map(_esc),
        {
            "n": shapes["nom"].map(_esc),
            "p": population,
            "c": shapes["couvert"].astype("boolean"),
            "d": distance,
            "l": pd.Series(codes, index=shapes.index).astype("Int64").where(codes >= 0),
        },
        name="Communes couvertes ou non",
        tooltip=_commune_tooltip(list(names)),
        style_key="c",
        styles={
            "true": {**_COMMUNE_STYLE, "fillColor": _COVERED_COLOUR},
            "false": {**_COMMUNE_STYLE, "fillColor": _UNCOVERED_COLOUR},
        },
        default={**_COMMUNE_STYLE, "fillColor": _MISSING_COLOUR},
        decimals=_COMMUNE_DECIMALS,
        show=False,
    ).add_to(fmap)


def _coverage_places_layer(
    fmap: folium.Map, places: gpd.GeoDataFrame, name_column: str | None
) -> int:
    """Add the places analysed as small dots named in their tooltip; return how many."""
    labels = place_labels(places, name_column)
    placed = (places.geometry.notna() & ~places.geometry.is_empty).to_numpy(dtype=bool)
    if "verdict" in places.columns:
        placed = placed & places["verdict"].ne("invalide").fillna(True).to_numpy(dtype=bool)
    shown = places[placed].to_crs(GEOGRAPHIC)
    group = folium.FeatureGroup(name=f"Tiers-lieux ({french.number(len(shown))})").add_to(fmap)
    for point, label in zip(shown.geometry, labels[placed], strict=True):
        folium.CircleMarker(
            location=[round(point.y, _DECIMALS), round(point.x, _DECIMALS)],
            radius=5,
            color="#222",
            weight=1,
            fill=True,
            fill_color=_PLACE_COLOUR,
            fill_opacity=0.9,
            tooltip=_esc(label),
        ).add_to(group)
    return len(shown)


def _nearest_text(shapes: pd.DataFrame) -> pd.Series:
    """« Lieu le plus proche : Fabrique X, à 1,2 km » (the distance alone when unnamed)."""
    distance = shapes["distance_lieu_m"].map(partial(french.distance, space=NO_BREAK_SPACE))
    if "lieu_proche" not in shapes.columns:
        return "Lieu le plus proche : " + distance
    name = shapes["lieu_proche"].astype("string")
    named = ("<b>" + name.map(_esc) + "</b>, à " + distance).where(name.notna(), distance)
    known = shapes["distance_lieu_m"].notna()
    return "Lieu le plus proche : " + named.where(known, "aucun dans ce territoire")


def _qpv_coverage_layers(fmap: folium.Map, qpv_cov: gpd.GeoDataFrame, simplify_m: float) -> None:
    shapes = _display_polygons(qpv_cov, simplify_m)
    covered = shapes["couvert"].astype("boolean")
    info = (
        "<b>"
        + shapes["code_qpv"].map(_esc)
        + "</b> "
        + shapes["nom_qpv"].map(_esc)
        + "<br>"
        + "QPV "
        + _coverage_text(covered)
        + "<br>"
        + _nearest_text(shapes)
    )
    for name, rows, style in (
        ("QPV couverts", covered.fillna(False), {"color": "#444", "weight": 1}),
        (
            "QPV non couverts",
            ~covered.fillna(False),
            {"color": _UNCOVERED_QPV_COLOUR, "weight": 2.5},
        ),
    ):
        rows = rows.to_numpy(dtype=bool)
        if not rows.any():
            continue
        subset = shapes[rows]
        folium.GeoJson(
            _feature_collection(subset, subset["code_qpv"], info=info[rows]),
            name=f"{name} ({french.number(rows.sum())})",
            style_function=lambda _, s=style: {**s, "fillColor": s["color"], "fillOpacity": 0.15},
            tooltip=folium.GeoJsonTooltip(fields=["info"], labels=False),
        ).add_to(fmap)


def save(fmap: folium.Map, path: str | Path, *, self_contained: bool = False) -> Path:
    """Write a map as one HTML file.

    Parameters
    ----------
    fmap : folium.Map
        A map from :func:`eligibility_map` or :func:`coverage_map`.
    path : str or pathlib.Path
        Output file; its folder is created.
    self_contained : bool, default False
        Inline Leaflet and Leaflet.markercluster (from the ``xstatic-leaflet`` and
        ``xstatic-leaflet-markercluster`` packages, CSS images as data URIs) so the
        file opens with content delivery networks blocked, and drop folium's stock
        jQuery, Bootstrap, Font Awesome and awesome-markers, which these maps do not
        use (folium features that need them, such as ``folium.Popup`` or icon markers,
        are therefore not supported in a self-contained file). Base tiles still need
        the network; every other layer is embedded.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    OutputError
        When ``path`` does not end in ``.html`` (or ``.htm``).
    InputError
        In self-contained mode, when the page links to a script or stylesheet that no
        installed package ships.
    """
    path = outputs.check_path(path, MAP_FORMATS)
    # the page is in French: screen readers and spell checkers read it so
    page = fmap.get_root().render().replace("<html>", '<html lang="fr">', 1)
    if self_contained:
        page = _leaflet_assets.inline(page)
    with outputs.replacing(path) as (target,):
        target.write_text(page, encoding="utf-8")
    return path
