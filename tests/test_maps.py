"""Tests of territoires.maps: folium maps saved as one HTML file."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import start_chromium
from jinja2.utils import htmlsafe_json_dumps
from shapely.geometry import Point, box

from territoires import (
    _packed_polygons,
    classify,
    coverage,
    load_admin,
    load_communes,
    load_qpv,
    maps,
)
from territoires.rules import VERDICTS

XSS = "<script>alert(1)</script>"
RULES = {"millesime_qpv": 2015, "distance_proximite_m": 500.0, "nom": "fabriques-2019"}
SCREENSHOT_COPY = Path("/tmp/territoires_map.png")
EXAMPLE_PLACES = Path(__file__).resolve().parents[1] / "examples" / "lieux_exemple.csv"


def _qpv() -> gpd.GeoDataFrame:
    """Two QPV in Toulouse and one in Saint-Denis de La Réunion (another metric CRS)."""
    qpv = gpd.GeoDataFrame(
        {
            "code_qpv": ["QP031001", "QP031002", "QP974001"],
            "nom_qpv": ["Reynerie <img src=x onerror=alert(2)>", "Bagatelle", "Le Chaudron"],
            "communes": ["Toulouse", "Toulouse", "Saint-Denis"],
            "insee_com": ["31555", "31555", "97411"],
            "dep": ["31", "31", "974"],
        },
        geometry=[
            box(1.400, 43.570, 1.410, 43.578),
            box(1.415, 43.580, 1.425, 43.588),
            box(55.48, -20.89, 55.49, -20.88),
        ],
        crs="EPSG:4326",
    )
    qpv.attrs = {"millesime_qpv": 2015}
    return qpv


def _classified(n: int = 7, *, names: bool = True) -> gpd.GeoDataFrame:
    """``n`` placed points around Toulouse, one per verdict in turn, plus one invalid row."""
    verdicts = [v for v in VERDICTS if v != "invalide"]
    lon = 1.38 + 0.08 * np.arange(n) / max(n, 1)
    lat = 43.56 + 0.04 * ((np.arange(n) * 7) % 11) / 11
    frame = gpd.GeoDataFrame(
        {
            "nom": [XSS] + [f"Lieu {i} & Cie" for i in range(1, n)] + ["Invalide"],
            "verdict": [verdicts[i % len(verdicts)] for i in range(n)] + ["invalide"],
            "motif": [f"motif n° {i} « test »" for i in range(n)] + ["coordonnées absentes"],
            "qpv_code": pd.NA,
            "qpv_nom": pd.NA,
            "distance_qpv_m": 100.0,
            "code_insee": "31555",
            "commune": "Toulouse",
            "densite7": 1,
        },
        geometry=[*gpd.points_from_xy(lon, lat), None],
        crs="EPSG:4326",
    )
    if not names:
        frame = frame.rename(columns={"nom": "name"})
    frame.attrs = {"regles": dict(RULES)}
    return frame


def _communes() -> gpd.GeoDataFrame:
    """Three communes around Toulouse and one near Lille, far from the places."""
    return gpd.GeoDataFrame(
        {
            "code_insee": ["31555", "31069", "31557", "59350"],
            "nom": ["Toulouse", "Blagnac", "Tournefeuille", "Lille"],
            "densite7": pd.array([1, 2, 6, pd.NA], dtype="Int64"),
            "population": [500_000, 25_000, 28_000, 230_000],
            "dep": ["31", "31", "31", "59"],
        },
        geometry=[
            box(1.38, 43.55, 1.46, 43.60),
            box(1.36, 43.60, 1.40, 43.66),
            box(1.30, 43.56, 1.38, 43.60),
            box(3.00, 50.60, 3.10, 50.66),
        ],
        crs="EPSG:4326",
    )


def _walk(element):
    for child in element._children.values():
        yield child
        yield from _walk(child)


def _layers(fmap: folium.Map) -> dict[str, folium.map.Layer]:
    """Layers shown in the layer control, by (unescaped) name."""
    return {
        html.unescape(child.layer_name): child
        for child in _walk(fmap)
        if isinstance(child, folium.map.Layer) and child.control
    }


def _geojsons(fmap: folium.Map) -> list[folium.GeoJson]:
    return [child for child in _walk(fmap) if isinstance(child, folium.GeoJson)]


def _in_page(text: str) -> str:
    """How ``text`` (already HTML-escaped by the module) appears inside embedded JSON."""
    return htmlsafe_json_dumps(text)[1:-1]


def _legend(page: str) -> str:
    """The legend's HTML, decoded from the page."""
    match = re.search(r'territoires-legende"\);\s*div\.innerHTML = (".*?");\n', page)
    assert match, "legend control missing"
    return json.loads(match[1])


def _points(page: str) -> int:
    return page.count('"type": "Point"')


def _page(fmap: folium.Map, tmp_path: Path, *, self_contained: bool = False) -> str:
    path = maps.save(fmap, tmp_path / "carte.html", self_contained=self_contained)
    return path.read_text(encoding="utf-8")


# --- eligibility map on synthetic frames ---------------------------------------------------


def test_page_declares_french(tmp_path):
    """Screen readers read the map's page in French (both saving modes)."""
    for contained in (False, True):
        page = _page(
            maps.eligibility_map(_classified(), _qpv()), tmp_path, self_contained=contained
        )
        assert page.count('<html lang="fr">') == 1 and "<html>" not in page


def test_layers_named_in_french(tmp_path):
    fmap = maps.eligibility_map(_classified(), _qpv(), communes=_communes())
    layers = _layers(fmap)
    assert {
        "Fond OpenStreetMap (en ligne)",
        "Bande de proximité immédiate (500 m)",
        "Quartiers prioritaires (QPV 2015)",
        "Communes par densité (grille INSEE à 7 niveaux)",
        "Dans un quartier prioritaire (QPV) (2)",
        "À proximité immédiate d'un QPV (1)",
        "Incertain (la réponse dépend de la position exacte du lieu) (1)",
        "Hors grands centres urbains (1)",
        "Non éligible (1)",
        "Indéterminé (données de référence manquantes) (1)",
    } <= set(layers)
    assert layers["Communes par densité (grille INSEE à 7 niveaux)"].show is False
    page = _page(fmap, tmp_path)
    assert _in_page("Quartiers prioritaires (QPV 2015)") in page
    assert _in_page("Bande de proximité immédiate (500 m)") in page
    assert "L.control.layers" in page
    assert "fitBounds" in page


def test_one_marker_per_placed_row(tmp_path):
    classified = _classified(7)
    fmap = maps.eligibility_map(classified, _qpv())
    page = _page(fmap, tmp_path)
    assert _points(page) == 7  # the invalid row has no geometry
    assert "L.CircleMarker" in page
    assert "L.markerClusterGroup" not in page
    assert _in_page("1 lieu(x) sans coordonnées valides, non placé(s).") in page


def test_clusters_above_threshold(tmp_path):
    classified = _classified(12)
    clustered = _page(maps.eligibility_map(classified, _qpv(), cluster_above=10), tmp_path)
    assert "L.markerClusterGroup" in clustered
    assert "leaflet.markercluster.js" in clustered
    assert _points(clustered) == 12
    flat = _page(maps.eligibility_map(classified, _qpv(), cluster_above=12), tmp_path)
    assert "L.markerClusterGroup" not in flat
    assert _points(flat) == 12


def test_legend_lists_verdicts_qpv_and_band(tmp_path):
    page = _page(maps.eligibility_map(_classified(), _qpv(), communes=_communes()), tmp_path)
    legend = _legend(page)
    for verdict, label in VERDICTS.items():
        if verdict != "invalide":
            assert html.escape(label) in legend
            assert maps.VERDICT_COLOURS[verdict] in legend
    assert "Quartiers prioritaires (QPV 2015)" in legend
    assert "Bande de proximité immédiate (500 m)" in legend
    assert "Rural à habitat très dispersé" in legend
    assert "règles « fabriques-2019 »" in legend


def test_user_text_is_escaped(tmp_path):
    classified = _classified()
    classified.loc[1, "motif"] = "</small><script>alert(3)</script>"
    page = _page(maps.eligibility_map(classified, _qpv()), tmp_path, self_contained=True)
    for raw in (XSS, "<img src=x onerror=alert(2)>", "<script>alert(3)</script>"):
        assert raw not in page
        assert _in_page(html.escape(raw)) in page
    assert _in_page("Lieu 1 &amp; Cie") in page


def test_name_column_detection(tmp_path):
    fmap = maps.eligibility_map(_classified(names=False), _qpv())
    assert _in_page(html.escape(XSS)) in _page(fmap, tmp_path)
    anonymous = _classified().drop(columns="nom")
    # without names, a place is called by its line (1-based here: a table, not a file)
    assert _in_page("<b>ligne 4</b>") in _page(maps.eligibility_map(anonymous, _qpv()), tmp_path)
    renamed = _classified().rename(columns={"nom": "Nom du lieu"})
    page = _page(maps.eligibility_map(renamed, _qpv()), tmp_path)
    assert _in_page("Lieu 1 &amp; Cie (ligne 2)") in page
    with pytest.raises(KeyError, match="libelle"):
        maps.eligibility_map(_classified(), _qpv(), name_column="libelle")


def test_proximity_band_is_metric_per_territory():
    fmap = maps.eligibility_map(_classified(), _qpv(), near_distance_m=300, simplify_m=0)
    band_layer = _layers(fmap)["Bande de proximité immédiate (300 m)"]
    bands = gpd.GeoDataFrame.from_features(band_layer.data, crs="EPSG:4326")
    bands.index = [feature["id"] for feature in band_layer.data["features"]]
    assert sorted(bands.index) == ["metropole", "reunion"]
    qpv = _qpv()
    for name, epsg, rows in (("metropole", 2154, [0, 1]), ("reunion", 2975, [2])):
        expected = qpv.iloc[rows].to_crs(epsg).buffer(300).union_all().area
        got = bands.loc[[name]].to_crs(epsg).area.iloc[0]
        assert got == pytest.approx(expected, rel=0.01)


def test_npnru_qpv_get_their_own_band():
    """With a NPNRU list in the rules, its QPV get 500 m, the others the rules' 300 m."""
    classified = _classified()
    classified.attrs = {
        "regles": {
            **RULES,
            "distance_proximite_m": 300.0,
            "codes_npnru": ["QP031002"],
            "distance_npnru_m": 500.0,
        }
    }
    fmap = maps.eligibility_map(classified, _qpv(), simplify_m=0)
    name = "Bande de proximité immédiate (300 m ; 500 m autour des QPV NPNRU)"
    band_layer = _layers(fmap)[name]
    bands = gpd.GeoDataFrame.from_features(band_layer.data, crs="EPSG:4326")
    bands.index = [feature["id"] for feature in band_layer.data["features"]]
    qpv = _qpv().to_crs(2154)
    expected = qpv.iloc[[0, 1]].buffer([300, 500]).union_all().area
    assert bands.loc[["metropole"]].to_crs(2154).area.iloc[0] == pytest.approx(expected, rel=0.01)
    assert expected > qpv.iloc[[0, 1]].buffer(300).union_all().area * 1.05
    # a distance given to the map applies to every QPV
    assert "Bande de proximité immédiate (200 m)" in _layers(
        maps.eligibility_map(classified, _qpv(), near_distance_m=200)
    )


def test_band_distance_comes_from_the_rules():
    classified = _classified()
    assert "Bande de proximité immédiate (500 m)" in _layers(
        maps.eligibility_map(classified, _qpv())
    )
    no_band = _layers(maps.eligibility_map(classified, _qpv(), near_distance_m=0))
    assert not any(name.startswith("Bande") for name in no_band)
    classified.attrs = {}
    with pytest.raises(ValueError, match="near_distance_m"):
        maps.eligibility_map(classified, _qpv())


def test_invalid_inputs_are_rejected():
    classified = _classified()
    classified.loc[0, "verdict"] = "peut-etre"
    with pytest.raises(ValueError, match="peut-etre"):
        maps.eligibility_map(classified, _qpv())
    with pytest.raises(ValueError, match="CRS"):
        maps.eligibility_map(_classified().set_crs(None, allow_override=True), _qpv())


def test_vintage_mismatch_warns():
    qpv = _qpv()
    qpv.attrs = {"millesime_qpv": 2024}
    with pytest.warns(UserWarning, match="QPV 2015"):
        fmap = maps.eligibility_map(_classified(), qpv)
    assert "Quartiers prioritaires (QPV 2024)" in _layers(fmap)


def test_communes_layer_keeps_the_view_only():
    fmap = maps.eligibility_map(_classified(), _qpv(), communes=_communes())
    layer = _layers(fmap)["Communes par densité (grille INSEE à 7 niveaux)"]
    assert sorted(f["id"] for f in layer.data["features"]) == ["31069", "31555", "31557"]
    assert "Densité : 6 – Rural à habitat dispersé" in json.dumps(layer.data, ensure_ascii=False)


def test_display_geometries_are_simplified_and_rounded():
    qpv = _qpv()
    qpv.loc[0, "geometry"] = Point(1.405, 43.574).buffer(0.004, quad_segs=256)
    fmap = maps.eligibility_map(_classified(), qpv, simplify_m=20)
    layer = _layers(fmap)["Quartiers prioritaires (QPV 2015)"]
    ring = layer.data["features"][0]["geometry"]["coordinates"][0]
    assert 8 < len(ring) < 256
    coordinates = np.array(
        [xy for feature in _geojsons(fmap) for xy in _coordinates(feature.data)], dtype=float
    )
    assert np.allclose(coordinates, coordinates.round(5), rtol=0, atol=1e-12)


def _coordinates(data: dict) -> list[list[float]]:
    geometries = [shapely.geometry.shape(f["geometry"]) for f in data["features"]]
    return shapely.get_coordinates(geometries).tolist()


# --- coverage map on synthetic frames ------------------------------------------------------


def _departements_agg() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "dep": ["31", "32", "974"],
            "nom": ["Haute-Garonne", "Gers <i>", "La Réunion"],
            "part_population_couverte": pd.array([0.453, pd.NA, 0.9], dtype="Float64"),
            "population_hors_gcu_non_couverte": pd.array([12345, pd.NA, 10], dtype="Int64"),
            "nb_qpv": [2, 0, 1],
            "nb_qpv_couverts": [1, 0, 1],
        },
        geometry=[
            box(0.4, 42.7, 2.1, 43.9),
            box(-0.3, 43.3, 1.2, 44.1),
            box(55.2, -21.4, 55.8, -20.9),
        ],
        crs="EPSG:4326",
    )


def _qpv_cov() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "code_qpv": ["QP031001", "QP031002", "QP974001"],
            "nom_qpv": ["Reynerie <img src=x onerror=alert(2)>", "Bagatelle", "Le Chaudron"],
            "couvert": pd.array([True, False, pd.NA], dtype="boolean"),
            "distance_lieu_m": [250.0, 4321.0, np.nan],
        }
    )


def _commune_cov() -> gpd.GeoDataFrame:
    communes = _communes()
    communes["couvert"] = pd.array([True, False, pd.NA, True], dtype="boolean")
    communes["distance_lieu_m"] = [0.0, 5200.0, np.nan, 10.0]
    return communes[["code_insee", "nom", "population", "couvert", "distance_lieu_m", "geometry"]]


def test_coverage_map_layers_legend_and_tooltips(tmp_path):
    fmap = maps.coverage_map(
        _departements_agg(), commune_cov=_commune_cov(), qpv_cov=_qpv_cov(), qpv=_qpv()
    )
    layers = _layers(fmap)
    assert {
        "Part de la population couverte, par département",
        "Communes couvertes ou non",
        "QPV couverts (1)",
        "QPV non couverts (2)",
    } <= set(layers)
    assert layers["Communes couvertes ou non"].show is False
    page = _page(fmap, tmp_path)
    legend = _legend(page)
    assert "0 à 20\u00a0%" in legend and "Non renseigné" in legend and "QPV non couvert" in legend
    deps = json.dumps(layers["Part de la population couverte, par département"].data)
    assert json.dumps("Population couverte : 45,3\u00a0%")[1:-1] in deps
    assert json.dumps("12\u202f345")[1:-1] in deps
    assert "Gers &lt;i&gt;" in deps and "<i>" not in deps
    uncovered = json.dumps(layers["QPV non couverts (2)"].data, ensure_ascii=False)
    assert "QPV non couvert" in uncovered and "4,3\u00a0km" in uncovered
    assert "couverture inconnue" in uncovered
    assert "<img src=x onerror=alert(2)>" not in page
    styles = {style for style in re.findall(r'"color": "(#[0-9a-f]{6})"', page)}
    assert maps._UNCOVERED_QPV_COLOUR in styles


def test_coverage_legend_says_the_territory_measured(tmp_path):
    departements = _departements_agg()
    departements.attrs["territoire"] = {"texte": "Territoire analysé : région Occitanie (76)"}
    legend = _legend(_page(maps.coverage_map(departements), tmp_path))
    assert "<p>Territoire analysé : région Occitanie (76)</p>" in legend


def test_coverage_choropleth_colours():
    fmap = maps.coverage_map(_departements_agg())
    layer = _layers(fmap)["Part de la population couverte, par département"]
    colours = {
        feature["id"]: layer.style_function(feature)["fillColor"]
        for feature in layer.data["features"]
    }
    assert colours["32"] == maps._MISSING_COLOUR
    assert colours["31"] == maps.COVERAGE_COLOURS[2]
    assert colours["974"] == maps.COVERAGE_COLOURS[4]


def test_coverage_qpv_needs_geometry():
    with pytest.raises(ValueError, match="qpv"):
        maps.coverage_map(_departements_agg(), qpv_cov=_qpv_cov())
    with pytest.raises(ValueError, match="qpv_cov"):
        maps.coverage_map(_departements_agg(), qpv=_qpv())
    with pytest.warns(UserWarning, match="QP974001"):
        maps.coverage_map(_departements_agg(), qpv_cov=_qpv_cov(), qpv=_qpv().iloc[:2])


def test_packed_polygons_round_trip():
    square = box(1.0, 43.0, 1.2, 43.2)
    with_hole = square.difference(box(1.05, 43.05, 1.1, 43.1))
    degenerate_hole = shapely.Polygon(
        square.exterior.coords, [[(1.15, 43.15), (1.150001, 43.15), (1.15, 43.150001)]]
    )
    pair = shapely.MultiPolygon([box(55.4, -21.0, 55.5, -20.9), box(55.6, -21.1, 55.61, -21.09)])
    wiggly = Point(2.123456, 46.654321).buffer(0.01)
    geometries = np.array([with_hole, degenerate_hole, pair, wiggly], dtype=object)
    packed = _packed_polygons.pack(geometries, 4)
    decoded = [shapely.geometry.shape(g) for g in _packed_polygons.unpack(packed, 4)]
    for original, back in zip(geometries, decoded, strict=True):
        expected = shapely.set_precision(original, 1e-4)
        assert back.symmetric_difference(expected).area < 1e-6 * max(original.area, 1e-6)
    assert len(decoded[0].geoms[0].interiors) == 1
    assert len(decoded[1].geoms[0].interiors) == 0  # hole reduced to a point by rounding
    assert len(decoded[2].geoms) == 2
    assert np.allclose(shapely.get_coordinates(decoded), shapely.get_coordinates(decoded).round(4))
    # deltas run on from one ring (and geometry) to the next: all small but the first
    # (only the very first vertex is absolute; a 0.2° square then needs deltas ≤ 2,000)
    flat = [v for polygons in packed[:2] for rings in polygons for ring in rings for v in ring]
    assert flat[:2] == [10_000, 430_000]
    assert max(abs(v) for v in flat[2:]) <= 2_000


def test_coverage_commune_layer_is_compact_and_complete(tmp_path):
    fmap = maps.coverage_map(
        _departements_agg(), commune_cov=_commune_cov(), qpv_cov=_qpv_cov(), qpv=_qpv()
    )
    layer = _layers(fmap)["Communes couvertes ou non"]
    assert isinstance(layer, _packed_polygons.PackedPolygons)
    features = {f["id"]: f["properties"] for f in layer.data["features"]}
    assert features == {  # « l »: the nearest place's name, none in these tables
        "31555": {"n": "Toulouse", "p": 500_000, "c": True, "d": 0, "l": None},
        "31069": {"n": "Blagnac", "p": 25_000, "c": False, "d": 5200, "l": None},
        "31557": {"n": "Tournefeuille", "p": 28_000, "c": None, "d": None, "l": None},
        "59350": {"n": "Lille", "p": 230_000, "c": True, "d": 10, "l": None},
    }
    coordinates = np.array(_coordinates(layer.data))
    assert np.allclose(coordinates, coordinates.round(4), rtol=0, atol=1e-12)
    styles = {
        key: layer.styles.get(json.dumps(props["c"]), layer.default)["fillColor"]
        for key, props in features.items()
    }
    assert styles == {
        "31555": maps._COVERED_COLOUR,
        "31069": maps._UNCOVERED_COLOUR,
        "31557": maps._MISSING_COLOUR,
        "59350": maps._COVERED_COLOUR,
    }
    page = _page(fmap, tmp_path)
    legend = _legend(page)
    assert "Couverture inconnue" in legend and "simplifiés pour l'affichage" in legend
    assert "Population : " not in page.split("var packed = ", 1)[1].split(";\n", 1)[0]


def test_commune_names_are_escaped_in_packed_layer(tmp_path):
    communes = _commune_cov()
    communes.loc[0, "nom"] = XSS
    fmap = maps.coverage_map(_departements_agg(), commune_cov=communes)
    layer = _layers(fmap)["Communes couvertes ou non"]
    names = {f["properties"]["n"] for f in layer.data["features"]}
    assert html.escape(XSS) in names
    assert XSS not in _page(fmap, tmp_path)


def test_commune_tolerance_follows_the_scale(real):
    _, communes, _ = real
    tolerances = maps._scale_tolerances(communes, 20)
    assert 300 <= tolerances["metropole"] <= 500
    assert 20 <= tolerances["reunion"] < 100
    occitanie = maps._scale_tolerances(communes[communes["reg"] == "76"], 20)
    assert 100 < occitanie["metropole"] < tolerances["metropole"]
    fmap = maps.coverage_map(_departements_agg(), commune_cov=_commune_cov(), commune_simplify_m=0)
    layer = _layers(fmap)["Communes couvertes ou non"]
    assert len(layer.data["features"]) == 4


# --- saving ----------------------------------------------------------------------------------

_EXTERNAL_ASSET = re.compile(r'<(?:script[^>]*\ssrc|link[^>]*\shref)="(?P<url>[^"]*)"')


def test_default_save_links_cdns(tmp_path):
    page = _page(maps.eligibility_map(_classified(), _qpv()), tmp_path)
    urls = [m["url"] for m in _EXTERNAL_ASSET.finditer(page)]
    assert any(url.endswith("/leaflet.js") for url in urls)
    assert "Leaflet 1.9.3, a JS library" not in page


@pytest.mark.parametrize("cluster_above", [3, 300])
def test_self_contained_inlines_leaflet(tmp_path, cluster_above):
    fmap = maps.eligibility_map(
        _classified(), _qpv(), cluster_above=cluster_above, self_contained=True
    )
    page = _page(fmap, tmp_path, self_contained=True)
    assert list(_EXTERNAL_ASSET.finditer(page)) == []
    assert not re.search(r'(?:src|href)="[^"]*(?:cdn|unpkg|jsdelivr)', page)
    assert not re.search(r"(?i)jquery|bootstrap|font-?awesome", page)
    assert "Leaflet 1.9.3, a JS library for interactive maps" in page
    assert ".leaflet-control-layers-toggle" in page
    assert "url(data:image/png;base64," in page
    assert ("L.MarkerClusterGroup=" in page) == (cluster_above == 3)
    assert "sourceMappingURL" not in page


def test_self_contained_maps_link_leaflet_only(tmp_path):
    fmap = maps.eligibility_map(_classified(12), _qpv(), cluster_above=3, self_contained=True)
    urls = [m["url"].rsplit("/", 1)[-1] for m in _EXTERNAL_ASSET.finditer(_page(fmap, tmp_path))]
    assert sorted(urls) == sorted(
        [
            "leaflet.js",
            "leaflet.css",
            "leaflet.markercluster.js",
            "MarkerCluster.css",
            "MarkerCluster.Default.css",
        ]
    )


def test_self_contained_save_of_a_default_map(tmp_path):
    fmap = maps.coverage_map(_departements_agg(), qpv_cov=_qpv_cov(), qpv=_qpv())
    page = _page(fmap, tmp_path, self_contained=True)
    assert list(_EXTERNAL_ASSET.finditer(page)) == []
    assert "Leaflet 1.9.3, a JS library" in page


def test_self_contained_refuses_unknown_assets(tmp_path):
    fmap = maps.eligibility_map(_classified(), _qpv(), self_contained=True)
    folium.plugins.Fullscreen().add_to(fmap)
    with pytest.raises(ValueError, match=r"Control\.FullScreen"):
        maps.save(fmap, tmp_path / "carte.html", self_contained=True)


# --- real data -------------------------------------------------------------------------------


def _real_places(qpv: gpd.GeoDataFrame, communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Places in, near and away from real QPV of Toulouse, plus one invalid row."""
    toulouse = qpv[qpv["insee_com"].str.contains("31555", na=False)].head(3)
    inside = toulouse.geometry.representative_point()
    metric = toulouse.to_crs(2154).geometry
    ring = metric.buffer(260).difference(metric.buffer(240))
    near = ring.representative_point().to_crs(4326)
    rural = communes[(communes["dep"] == "31") & (communes["densite7"] == 6)].head(2)
    count = len(inside) + len(near) + len(rural)
    frame = gpd.GeoDataFrame(
        {
            "nom": [f"Lieu réel {i}" for i in range(count)] + ["Sans coordonnées"],
            "verdict": ["qpv"] * len(inside)
            + ["proximite_qpv"] * len(near)
            + ["hors_grands_centres_urbains"] * len(rural)
            + ["invalide"],
            "motif": ["dans le QPV"] * len(inside)
            + ["à 250 m du QPV"] * len(near)
            + ["commune rurale"] * len(rural)
            + ["coordonnées absentes"],
        },
        geometry=[
            *inside.values,
            *near.values,
            *rural.geometry.representative_point().values,
            None,
        ],
        crs="EPSG:4326",
    )
    frame.loc[frame["verdict"].eq("hors_grands_centres_urbains").idxmax(), "nom"] = XSS
    frame.attrs = {"regles": dict(RULES)}
    return frame


@pytest.fixture(scope="module")
def real(data_dir):
    qpv = load_qpv(2015, data_dir=data_dir)
    communes = load_communes(data_dir=data_dir)
    return qpv, communes, _real_places(qpv, communes)


def test_real_eligibility_map(real, tmp_path):
    qpv, communes, places = real
    fmap = maps.eligibility_map(places, qpv, communes=communes, self_contained=True)
    layers = _layers(fmap)
    assert len(layers["Quartiers prioritaires (QPV 2015)"].data["features"]) == len(qpv) == 105
    band = gpd.GeoDataFrame.from_features(
        layers["Bande de proximité immédiate (500 m)"].data, crs="EPSG:4326"
    )
    assert len(band) == 1  # Occitanie: métropole only
    near = places[places["verdict"] == "proximite_qpv"]
    assert band.geometry.iloc[0].contains(near.geometry).all()
    view = layers["Communes par densité (grille INSEE à 7 niveaux)"].data["features"]
    assert 10 < len(view) < len(communes) / 10
    assert {f["id"] for f in view} >= {"31555"}
    page = _page(fmap, tmp_path, self_contained=True)
    assert _points(page) == len(places) - 1
    assert XSS not in page
    assert list(_EXTERNAL_ASSET.finditer(page)) == []
    assert len(page.encode()) < 3_000_000


def test_real_coverage_map(real, tmp_path):
    qpv, communes, _ = real
    occitanie = communes[communes["reg"] == "76"].copy()
    occitanie["couvert"] = occitanie["densite7"] <= 3
    occitanie["distance_lieu_m"] = np.where(occitanie["couvert"], 0.0, 12_000.0)
    departements = occitanie.dissolve(by="dep", as_index=False, aggfunc={"population": "sum"})
    departements["nom"] = "Département " + departements["dep"]
    departements["part_population_couverte"] = np.linspace(0, 1, len(departements))
    departements["population_hors_gcu_non_couverte"] = 1000
    departements["nb_qpv"] = departements["dep"].map(qpv["dep"].value_counts()).fillna(0)
    departements["nb_qpv_couverts"] = 0
    qpv_cov = qpv[["code_qpv", "nom_qpv"]].assign(
        couvert=np.arange(len(qpv)) % 2 == 0, distance_lieu_m=1500.0
    )
    fmap = maps.coverage_map(
        departements,
        commune_cov=occitanie,
        qpv_cov=qpv_cov,
        qpv=qpv,
        self_contained=True,
    )
    layers = _layers(fmap)
    assert len(layers["Part de la population couverte, par département"].data["features"]) == 13
    assert len(layers["Communes couvertes ou non"].data["features"]) == len(occitanie)
    assert len(layers["QPV non couverts (52)"].data["features"]) == 52
    page = _page(fmap, tmp_path, self_contained=True)
    assert list(_EXTERNAL_ASSET.finditer(page)) == []


@pytest.mark.slow
def test_national_map_size(real, tmp_path):
    """All QPV of the mirror and 5,000 places over France stay a few megabytes."""
    qpv, communes, _ = real
    sample = communes.sample(5000, random_state=0)
    rng = np.random.default_rng(0)
    places = gpd.GeoDataFrame(
        {
            "nom": [f"Tiers-lieu n° {i}" for i in range(len(sample))],
            "verdict": rng.choice([v for v in VERDICTS if v != "invalide"], len(sample)),
            "motif": "Commune (00000) : niveau 5 « Bourgs ruraux » de la grille de densité "
            "INSEE → hors grands centres urbains (règle « densite-hors-grands-centres »)",
            "dep": sample["dep"].to_numpy(),
        },
        geometry=sample.geometry.representative_point().to_numpy(),
        crs="EPSG:4326",
    )
    places.attrs = {"regles": dict(RULES)}
    page = _page(
        maps.eligibility_map(places, qpv, self_contained=True), tmp_path, self_contained=True
    )
    assert _points(page) == 5000
    assert "L.markerClusterGroup" in page
    assert len(page.encode()) < 4_000_000


@pytest.fixture(scope="module")
def national_coverage(data_dir):
    """Coverage analysis of the 27 example places over the whole of France."""
    places = classify(EXAMPLE_PLACES, data_dir=data_dir)
    return coverage.analyse(places, geometry=True, data_dir=data_dir)


@pytest.mark.slow
def test_national_coverage_map_size(national_coverage, real, tmp_path):
    """The national coverage map keeps every commune, yet stays under 5 MB."""
    qpv, _, _ = real
    layers_in = national_coverage
    fmap = maps.coverage_map(
        layers_in["dep"],
        commune_cov=layers_in["communes"],
        qpv_cov=layers_in["qpv"],
        qpv=qpv,
        self_contained=True,
    )
    layers = _layers(fmap)
    deps = layers["Part de la population couverte, par département"].data["features"]
    assert len(deps) == len(layers_in["dep"]) > 100
    communes = layers["Communes couvertes ou non"].data["features"]
    assert len(communes) == len(layers_in["communes"]) > 30_000
    assert {f["id"] for f in communes} == set(layers_in["communes"]["code_insee"])
    uncovered = ~layers_in["qpv"]["couvert"].astype("boolean").fillna(False)
    name = f"QPV non couverts ({int(uncovered.sum())})"
    assert {f["id"] for f in layers[name].data["features"]} == set(
        layers_in["qpv"].loc[uncovered, "code_qpv"]
    )
    page = _page(fmap, tmp_path, self_contained=True)
    size = len(page.encode())
    assert size < 5_000_000, f"{size / 1e6:.1f} MB"
    for layer_name in (
        "Part de la population couverte, par département",
        "Communes couvertes ou non",
        name,
    ):
        assert _in_page(html.escape(layer_name)) in page or html.escape(layer_name) in page
    assert list(_EXTERNAL_ASSET.finditer(page)) == []


# --- headless Chromium -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """A headless Chromium driven by selenium; fails with the install command when absent."""
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


@pytest.mark.chromium
def test_self_contained_map_renders_in_chromium(chromium, real, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    qpv, communes, places = real
    fmap = maps.eligibility_map(places, qpv, communes=communes, self_contained=True)
    path = maps.save(fmap, tmp_path / "eligibilite.html", self_contained=True)
    placed = int(places.geometry.notna().sum())
    expected = len(qpv) + 1 + placed  # QPV polygons, one band, circle markers

    chromium.get(path.resolve().as_uri())
    wait = WebDriverWait(chromium, 30)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-container"))
    paths = "path.leaflet-interactive"
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, paths)) >= expected)
    assert len(chromium.find_elements(By.CSS_SELECTOR, paths)) == expected
    rural = maps.VERDICT_COLOURS["hors_grands_centres_urbains"]
    markers = chromium.find_elements(By.CSS_SELECTOR, f'{paths}[fill="{rural}"]')
    assert len(markers) == (places["verdict"] == "hors_grands_centres_urbains").sum() == 2

    legend = chromium.find_element(By.CSS_SELECTOR, ".territoires-legende")
    assert legend.is_displayed()
    assert "Quartiers prioritaires (QPV 2015)" in legend.text
    assert "À proximité immédiate d'un QPV (3)" in legend.text
    control = chromium.find_element(By.CSS_SELECTOR, ".leaflet-control-layers").text
    assert "Communes par densité" in control

    screenshot = tmp_path / "eligibilite.png"
    assert chromium.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 20_000
    shutil.copyfile(screenshot, SCREENSHOT_COPY)

    # The popup of the place named like a script shows that name as text.
    chromium.execute_script(
        "var box = arguments[0].getBoundingClientRect();"
        "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true,"
        " clientX: box.x + box.width / 2, clientY: box.y + box.height / 2}));",
        markers[0],
    )
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-popup-content"))
    popup = chromium.find_element(By.CSS_SELECTOR, ".leaflet-popup-content")
    assert popup.find_elements(By.TAG_NAME, "script") == []
    text = popup.get_attribute("textContent")
    assert XSS in text and "Hors grands centres urbains" in text

    errors = [
        entry["message"]
        for entry in chromium.get_log("browser")
        if entry["level"] == "SEVERE" and "tile.openstreetmap.org" not in entry["message"]
    ]
    assert errors == []


@pytest.mark.chromium
def test_clusters_render_in_chromium(chromium, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    places = _classified(40)
    step = np.arange(41)
    dense = gpd.points_from_xy(1.40 + 0.0003 * (step % 8), 43.57 + 0.0003 * (step // 8))
    places.geometry = gpd.GeoSeries(dense, crs="EPSG:4326").where(places.geometry.notna())
    fmap = maps.eligibility_map(places, _qpv(), cluster_above=10, self_contained=True)
    path = maps.save(fmap, tmp_path / "grappes.html", self_contained=True)
    chromium.get(path.resolve().as_uri())
    outlines = len(_qpv()) + 2  # QPV polygons and one band per territory

    def drawn(driver) -> tuple[int, int]:
        # Counted in one script: clusters re-render while the view settles, so element
        # handles fetched one by one can go stale between two calls.
        clusters, paths = driver.execute_script(
            "const c = [...document.querySelectorAll('.marker-cluster')];"
            "return [c.map(e => parseInt(e.textContent, 10) || 0),"
            " document.querySelectorAll('path.leaflet-interactive').length];"
        )
        return sum(clusters) + paths - outlines, len(clusters)

    # Once the view has settled, every placed point is in a cluster or drawn alone.
    WebDriverWait(chromium, 30).until(lambda d: drawn(d)[0] == 40 and drawn(d)[1] > 0)


@pytest.mark.chromium
def test_packed_commune_layer_renders_in_chromium(chromium, tmp_path):
    """The browser decodes the packed communes exactly as Python does and shows tooltips."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    fmap = maps.coverage_map(_departements_agg(), commune_cov=_commune_cov(), self_contained=True)
    layer = _layers(fmap)["Communes couvertes ou non"]
    path = maps.save(fmap, tmp_path / "couverture.html", self_contained=True)
    chromium.get(path.resolve().as_uri())
    wait = WebDriverWait(chromium, 30)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers"))
    var = layer.get_name()
    assert chromium.execute_script(f"return {var}.getLayers().length") == 0  # built lazily
    for label in chromium.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers-overlays label"):
        if "Communes couvertes ou non" in label.text:
            label.click()
    wait.until(lambda d: d.execute_script(f"return {var}.getLayers().length") == 4)
    assert chromium.find_elements(By.CSS_SELECTOR, ".leaflet-overlay-pane canvas")
    drawn = chromium.execute_script(
        f"return {var}.getLayers().map(function (l) {{"
        "  return [l.feature.id, l.feature.geometry.coordinates, l.options.fillColor,"
        "          (l.openTooltip(), l.getTooltip().getElement().textContent)]; });"
    )
    expected = {f["id"]: f["geometry"]["coordinates"] for f in layer.data["features"]}
    assert {feature_id: coords for feature_id, coords, _, _ in drawn} == expected
    colours = {feature_id: colour for feature_id, _, colour, _ in drawn}
    assert colours["31069"] == maps._UNCOVERED_COLOUR
    assert colours["31557"] == maps._MISSING_COLOUR
    tips = {feature_id: text for feature_id, _, _, text in drawn}
    assert tips["31069"] == (
        "Blagnac (31069)Population : 25\u202f000Commune non couverte"
        "Lieu le plus proche : 5,2\u00a0km"
    )
    assert tips["31557"].endswith(
        "Commune couverture inconnueLieu le plus proche : aucun dans ce territoire"
    )
    assert tips["59350"].endswith("Commune couverteLieu le plus proche : 10\u00a0m")
    errors = [
        entry["message"]
        for entry in chromium.get_log("browser")
        if entry["level"] == "SEVERE" and "tile.openstreetmap.org" not in entry["message"]
    ]
    assert errors == []


def test_real_department_outlines_keep_the_map_readable_offline(real, data_dir, tmp_path):
    qpv, _, places = real
    outlines = load_admin("departements", data_dir=data_dir)
    fmap = maps.eligibility_map(places, qpv, outlines=outlines, self_contained=True)
    layer = _layers(fmap)["Limites administratives"]
    drawn = gpd.GeoDataFrame.from_features(layer.data, crs="EPSG:4326")
    assert len(drawn) == len(outlines) == 101
    assert drawn.geometry.is_valid.all()
    path = maps.save(fmap, tmp_path / "carte.html", self_contained=True)
    assert path.stat().st_size < 2_000_000


def test_commune_level_places_have_their_own_layer(tmp_path):
    classified = _classified(3)
    by_commune = gpd.GeoDataFrame(
        {
            "nom": ["Mairie <b>", "Ferme"],
            "verdict": ["incertain", "hors_grands_centres_urbains"],
            "motif": ["QPV à vérifier : QN03101M « Reynerie »", "commune rurale"],
            "localisation": "commune",
            "code_insee": ["31555", "31069"],
            "commune": ["Toulouse", "Blagnac"],
        },
        geometry=[None, None],
        crs="EPSG:4326",
    )
    classified = pd.concat([classified.assign(localisation="point"), by_commune], ignore_index=True)
    classified.attrs = {"regles": dict(RULES)}
    fmap = maps.eligibility_map(classified, _qpv(), place_communes=_communes())
    layers = _layers(fmap)
    assert "Lieux localisés par leur commune (2)" in layers
    markers = [
        g
        for g in _walk(layers["Lieux localisés par leur commune (2)"])
        if isinstance(g, folium.GeoJson)
    ]
    assert [m.marker.options["dashArray"] for m in markers] == ["4 3", "4 3"]
    drawn = {
        f["properties"]["titre"]: Point(f["geometry"]["coordinates"])
        for m in markers
        for f in m.data["features"]
    }
    assert drawn["Mairie &lt;b&gt; (ligne 5) (commune)"].within(_communes().geometry[0])
    assert drawn["Ferme (ligne 6) (commune)"].within(_communes().geometry[1])
    page = _page(fmap, tmp_path)
    assert _points(page) == 3 + 2
    assert _in_page("localisé par sa commune seulement") in page
    assert _in_page("Mairie &lt;b&gt;") in page and "Mairie <b>" not in page
    legend = _legend(page)
    assert "Lieux localisés par leur commune (2)" in legend
    assert "dashed" in legend
    assert "1 lieu(x) sans coordonnées valides" in legend  # the invalid row only
    # without commune boundaries they are not drawn, and counted as not placed
    unplaced = _legend(_page(maps.eligibility_map(classified, _qpv()), tmp_path))
    assert "3 lieu(x) sans coordonnées valides" in unplaced
