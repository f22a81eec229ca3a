"""Many polygons in a map page, compact: delta-encoded integers and the layer that draws them.

:func:`pack` turns polygons into short integers (3 to 4 bytes per coordinate in the
page, against about 19 in GeoJSON), :func:`unpack` reads them back as the browser does,
and :class:`PackedPolygons` is the folium layer that embeds them once and decodes them
in the browser the first time it is shown.
"""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from jinja2 import Template
from jinja2.utils import htmlsafe_json_dumps


def pack(geometries: np.ndarray, decimals: int) -> list[list[list[list[int]]]]:
    """Polygons as delta-encoded integers: the compact form :class:`PackedPolygons` embeds.

    Coordinates are rounded to ``decimals`` decimals and multiplied by ``10**decimals``.
    Each geometry becomes a list of polygons, each a list of rings, each a flat list
    ``[dx0, dy0, dx1, dy1, …]`` of differences from the previous vertex, the cursor
    running on across rings and geometries (starting at 0, 0). Rings are not closed
    (the decoder closes them); repeated vertices left by the rounding are removed, as
    are holes reduced to fewer than 3 vertices.
    """
    scale = 10**decimals
    cursor = np.zeros((1, 2), dtype=np.int64)
    packed = []
    for geometry in geometries:
        polygons = []
        for polygon in shapely.get_parts(geometry):
            rings: list[list[int]] = []
            for ring in (polygon.exterior, *polygon.interiors):
                xy = np.rint(shapely.get_coordinates(ring) * scale).astype(np.int64)
                xy = xy[np.r_[True, (xy[1:] != xy[:-1]).any(axis=1)]]
                if len(xy) > 1 and (xy[-1] == xy[0]).all():
                    xy = xy[:-1]
                if rings and len(xy) < 3:
                    continue
                rings.append(np.diff(xy, axis=0, prepend=cursor).ravel().tolist())
                cursor = xy[-1:]
            polygons.append(rings)
        packed.append(polygons)
    return packed


def unpack(packed: list[list[list[list[int]]]], decimals: int) -> list[dict[str, Any]]:
    """GeoJSON ``MultiPolygon`` geometries from :func:`pack` output (closed rings)."""
    scale = 10**decimals
    x = y = 0
    geometries = []
    for polygons in packed:
        coordinates = []
        for rings in polygons:
            decoded = []
            for ring in rings:
                points = []
                for dx, dy in zip(ring[::2], ring[1::2], strict=True):
                    x, y = x + dx, y + dy
                    points.append([x / scale, y / scale])
                decoded.append([*points, points[0]])
            coordinates.append(decoded)
        geometries.append({"type": "MultiPolygon", "coordinates": coordinates})
    return geometries


class PackedPolygons(folium.map.Layer):
    """A toggleable layer of many polygons, compact in the page and quick to open.

    folium's ``GeoJson`` embeds plain GeoJSON: about 19 bytes per vertex and 150 per
    feature before any property, which makes the 34,000 French communes weigh more than
    10 MB. This layer embeds, once, the columns of the properties and the polygons
    delta-encoded by :func:`pack` (3 to 4 bytes per coordinate); the browser
    rebuilds the GeoJSON features the first time the layer is shown, draws them on a
    canvas (far faster than thousands of SVG paths) and builds each tooltip when the
    pointer reaches its polygon.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        Polygons in EPSG:4326, one feature per row.
    ids : pandas.Series
        Feature ids (HTML-escaped text), passed to ``tooltip`` as second argument.
    properties : dict of str to pandas.Series
        Short property names and their values (numbers, booleans or HTML-escaped
        text; missing values become ``null``).
    name : str
        Layer name in the layer control (HTML-escaped).
    tooltip : str
        JavaScript ``function (properties, id)`` returning the tooltip's HTML.
    style_key : str
        Property choosing the style in ``styles`` (by its JSON text: ``"true"``,
        ``"1"``…); ``"null"`` is used for missing values, ``default`` for the others.
    styles, default : dict
        Leaflet path styles.
    decimals : int
        Decimals kept in coordinates.
    show : bool
        Whether the layer is shown at opening.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var packed = {{ this.packed_json }};
            var styles = {{ this.styles|tojson }};
            var fallback = {{ this.default|tojson }};
            var tooltip = {{ this.tooltip }};
            function unpack() {
                var x = 0, y = 0, features = [];
                packed.geometries.forEach(function (polygons, i) {
                    var properties = {};
                    for (var key in packed.properties) {
                        properties[key] = packed.properties[key][i];
                    }
                    var coordinates = polygons.map(function (rings) {
                        return rings.map(function (ring) {
                            var points = [];
                            for (var k = 0; k < ring.length; k += 2) {
                                x += ring[k];
                                y += ring[k + 1];
                                points.push([x / packed.scale, y / packed.scale]);
                            }
                            points.push(points[0]);
                            return points;
                        });
                    });
                    features.push({
                        type: "Feature",
                        id: packed.ids[i],
                        properties: properties,
                        geometry: {type: "MultiPolygon", coordinates: coordinates}
                    });
                });
                return {type: "FeatureCollection", features: features};
            }
            var layer = L.geoJson(null, {
                renderer: L.canvas({padding: 0.5}),
                style: function (feature) {
                    var value = JSON.stringify(feature.properties[{{ this.style_key|tojson }}]);
                    return styles[value] || fallback;
                },
                onEachFeature: function (feature, shape) {
                    shape.bindTooltip(function () {
                        return tooltip(feature.properties, feature.id);
                    }, {sticky: true});
                }
            });
            layer.once("add", function () { layer.addData(unpack()); });
            return layer;
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self,
        frame: gpd.GeoDataFrame,
        ids: pd.Series,
        properties: dict[str, pd.Series],
        *,
        name: str,
        tooltip: str,
        style_key: str,
        styles: dict[str, dict[str, Any]],
        default: dict[str, Any],
        decimals: int,
        show: bool = True,
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "PackedPolygons"
        self.decimals = decimals
        # Neighbours follow each other (Hilbert curve order), so the deltas stay short.
        order = (
            np.argsort(frame.geometry.hilbert_distance().to_numpy(), kind="stable")
            if len(frame)
            else np.arange(0)
        )
        self.packed = {
            "scale": 10**decimals,
            "ids": ids.astype(str).to_numpy(dtype=object)[order].tolist(),
            "properties": {
                key: [None if pd.isna(v) else v for v in values.to_numpy(dtype=object)[order]]
                for key, values in properties.items()
            },
            "geometries": pack(frame.geometry.to_numpy()[order], decimals),
        }
        self.packed_json = htmlsafe_json_dumps(
            self.packed, separators=(",", ":"), ensure_ascii=False
        )
        self.tooltip = tooltip
        self.style_key = style_key
        self.styles = styles
        self.default = default

    @property
    def data(self) -> dict[str, Any]:
        """The layer as a GeoJSON ``FeatureCollection``, decoded as the browser does."""
        columns = self.packed["properties"]
        geometries = unpack(self.packed["geometries"], self.decimals)
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": feature_id,
                    "properties": {key: values[i] for key, values in columns.items()},
                    "geometry": geometry,
                }
                for i, (feature_id, geometry) in enumerate(
                    zip(self.packed["ids"], geometries, strict=True)
                )
            ],
        }
