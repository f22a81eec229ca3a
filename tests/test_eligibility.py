"""Tests of the eligibility engine (territoires.eligibility).

Real cases run on the offline mirror (``data_dir``: the QPV 2015 geography of Occitanie and
every French commune). Test points are computed from the real layers inside the tests
(representative points, points at a constructed distance in Lambert-93) rather than guessed;
a few well-known places from ``examples/lieux_exemple.csv`` are checked as fixed points.
Boundary, overlap and overseas distance cases use hand-made layers with exact coordinates,
prepared with :meth:`Reference.build`.
"""

from __future__ import annotations

import copy
import datetime
import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box
from shapely.ops import nearest_points

import territoires
from territoires import InputError, engine, loaders, settings
from territoires.eligibility import COMMUNE_TOLERANCE_M, OUTPUT_COLUMNS, Reference
from territoires.rules import VERDICTS, preset

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "eligibility"
L93 = 2154
ELIGIBLE = {"qpv", "proximite_qpv", "hors_grands_centres_urbains"}
BOOLEAN_COLUMNS = ["in_qpv", "near_qpv", "hors_grands_centres_urbains"]
STRING_COLUMNS = [
    "territoire",
    "qpv_code",
    "qpv_nom",
    "nearest_qpv_code",
    "code_insee",
    "commune",
    "dep",
    "reg",
    "verdict",
    "motif",
]


@dataclass
class Real:
    """The real reference layers, loaded once per module."""

    ref: Reference
    qpv: gpd.GeoDataFrame
    communes: gpd.GeoDataFrame
    data_dir: Path

    @property
    def covered(self) -> frozenset[str]:
        return self.ref.qpv_departements

    def qpv_l93(self) -> gpd.GeoDataFrame:
        return self.qpv.to_crs(L93)


@pytest.fixture(scope="module")
def real(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Real:
    """Reference for the default preset on the mirror (module scope: built once)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "data_dir", data_dir)
        patch.setattr(settings, "offline", True)
        patch.setattr(settings, "cache_dir", tmp_path_factory.mktemp("cache"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # commune join report
            ref = territoires.reference(preset(), data_dir)
            qpv = loaders.load_qpv(2015, data_dir=data_dir)
            communes = loaders.load_communes(data_dir=data_dir)
    return Real(ref=ref, qpv=qpv, communes=communes, data_dir=data_dir)


def to_lonlat(x, y, epsg: int = L93) -> tuple[np.ndarray, np.ndarray]:
    """Projected coordinates → WGS84 longitude, latitude."""
    transformer = Transformer.from_crs(epsg, 4326, always_xy=True)
    lon, lat = transformer.transform(np.atleast_1d(x), np.atleast_1d(y))
    return np.asarray(lon), np.asarray(lat)


def to_projected(lon, lat, epsg: int = L93) -> tuple[np.ndarray, np.ndarray]:
    transformer = Transformer.from_crs(4326, epsg, always_xy=True)
    x, y = transformer.transform(np.atleast_1d(lon), np.atleast_1d(lat))
    return np.asarray(x), np.asarray(y)


def points_table(lon, lat, **columns) -> pd.DataFrame:
    return pd.DataFrame({"lon": np.asarray(lon, float), "lat": np.asarray(lat, float), **columns})


def classify(source, ref: Reference, **kwargs) -> gpd.GeoDataFrame:
    return territoires.classify(source, ref=ref, **kwargs)


def _has_code(found: pd.Series, codes) -> np.ndarray:
    """Whether each ``;``-joined ``found`` value contains the matching code."""
    return np.array(
        [
            pd.notna(text) and code in text.split(";")
            for text, code in zip(found, codes, strict=True)
        ]
    )


def representative_lonlat(geometries: gpd.GeoSeries) -> tuple[np.ndarray, np.ndarray]:
    """Representative points (inside each polygon) of EPSG:4326 geometries."""
    points = geometries.representative_point()
    return points.x.to_numpy(), points.y.to_numpy()


# --------------------------------------------------------------------------- fixed points


@pytest.mark.parametrize(
    ("lon", "lat", "verdict", "code_insee", "qpv_code"),
    [
        (1.4020, 43.5750, "qpv", "31555", "QP031007"),  # La Reynerie, Toulouse
        (1.4442, 43.6047, "non_eligible", "31555", None),  # Capitole, Toulouse
        (2.3980, 44.5990, "hors_grands_centres_urbains", "12076", None),  # Conques
        (2.3690, 48.8530, "indetermine", "75056", None),  # Bastille: no QPV layer in 75
    ],
    ids=["reynerie", "capitole", "conques", "bastille"],
)
def test_well_known_places(real, lon, lat, verdict, code_insee, qpv_code) -> None:
    row = classify(points_table([lon], [lat]), real.ref).iloc[0]

    assert row["verdict"] == verdict
    assert row["code_insee"] == code_insee
    assert row["motif"].startswith(VERDICTS[verdict] + " : ")
    if qpv_code:
        assert row["qpv_code"] == qpv_code
        assert row["in_qpv"]
    else:
        assert pd.isna(row["qpv_code"])
    if verdict == "indetermine":
        assert pd.isna(row["in_qpv"]) and pd.isna(row["near_qpv"])
        assert np.isnan(row["distance_qpv_m"])
        assert "département 75 absent de la couche QPV 2015" in row["motif"]


def test_example_file_classifies_every_line(real) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "lieux_exemple.csv"
    out = classify(example, real.ref)
    raw = pd.read_csv(example, sep=";", dtype=str)

    assert len(out) == len(raw)
    assert out["nom"].tolist() == raw["nom"].tolist()
    by_name = out.drop_duplicates("nom").set_index("nom")["verdict"]
    assert by_name["La Fabrique de la Reynerie"] == "qpv"
    assert by_name["Tiers-lieu du Capitole"] == "non_eligible"
    assert by_name["Tiers-lieu de Conques"] == "hors_grands_centres_urbains"
    assert by_name["Tiers-lieu de la Bastille"] == "indetermine"
    assert out["verdict"].iloc[-1] == "invalide"  # the repeated Fablab de Rodez line
    assert "doublon de la ligne" in out["motif"].iloc[-1]


# ---------------------------------------------------------------- each verdict, real data


def test_every_real_qpv_contains_its_representative_point(real) -> None:
    lon, lat = representative_lonlat(real.qpv.geometry)
    out = classify(points_table(lon, lat), real.ref)

    assert len(out) == len(real.qpv) == 105
    assert (out["verdict"] == "qpv").all()
    assert out["in_qpv"].all()
    assert out["near_qpv"].all()
    assert (out["distance_qpv_m"] == 0).all()
    codes = real.qpv["code_qpv"].to_numpy()
    assert _has_code(out["qpv_code"], codes).all()
    assert (out["nearest_qpv_code"].to_numpy() == codes).all()
    assert (out["dep"].to_numpy() == real.qpv["dep"].to_numpy()).all()
    for code, name, motif in zip(codes, real.qpv["nom_qpv"], out["motif"], strict=True):
        assert f"dans le QPV {code} « {name} » (géographie prioritaire 2015)" in motif
        assert motif.startswith("Dans un quartier prioritaire (QPV) : ")


@pytest.fixture(scope="module")
def outside_200(real) -> pd.DataFrame:
    """One point per real QPV, exactly 200 m outside it, far (≥ 400 m) from every other QPV.

    The point is a vertex of the QPV's 200 m buffer in Lambert-93, chosen as far as possible
    from the other QPV; its exact distance is measured again with shapely. Only points lying
    inside a commune of a département covered by the QPV layer are kept.
    """
    qpv = real.qpv_l93()
    geoms = qpv.geometry.to_numpy()
    rows = []
    for position, geom in enumerate(geoms):
        others = np.delete(geoms, position)
        ring = shapely.get_coordinates(
            shapely.get_exterior_ring(shapely.get_parts(geom.buffer(200)))
        )
        candidates = shapely.points(ring)
        far = shapely.distance(candidates[:, None], others[None, :]).min(axis=1)
        # buffer arcs are chords: only vertices exactly 200 m away are candidates
        far[np.abs(shapely.distance(candidates, geom) - 200) > 0.01] = -1
        best = int(np.argmax(far))
        if far[best] >= 400:
            rows.append(
                {
                    "code": qpv["code_qpv"].iloc[position],
                    "x": ring[best, 0],
                    "y": ring[best, 1],
                    "expected": shapely.distance(candidates[best], geom),
                }
            )
    table = pd.DataFrame(rows)
    table["lon"], table["lat"] = to_lonlat(table["x"], table["y"])
    out = classify(points_table(table["lon"], table["lat"]), real.ref)
    inland = (
        (out["verdict"] != "invalide")
        & out["dep"].isin(real.covered)
        & ~out["motif"].str.contains("contours communaux", regex=False)
    )
    table = table[inland.to_numpy()].reset_index(drop=True)
    assert len(table) >= 20, "too few isolated QPV to build points 200 m outside"
    return table


def test_point_200_m_outside_a_qpv_is_proximite(real, outside_200) -> None:
    assert np.allclose(outside_200["expected"], 200, atol=0.01)  # the construction itself
    out = classify(points_table(outside_200["lon"], outside_200["lat"]), real.ref)

    assert (out["verdict"] == "proximite_qpv").all()
    assert not out["in_qpv"].any()
    assert out["near_qpv"].all()
    assert out["qpv_code"].isna().all()
    assert np.allclose(out["distance_qpv_m"], 200, atol=2)
    assert (out["nearest_qpv_code"].to_numpy() == outside_200["code"].to_numpy()).all()
    for code, motif in zip(outside_200["code"], out["motif"], strict=True):
        assert motif.startswith("À proximité immédiate d'un QPV : à 200 m du QPV le plus proche ")
        assert f" {code} « " in motif
        assert (
            "à 300 m ou moins : proximité immédiate (300 m : Code général des impôts, "
            "art. 278 sexies ; géographie prioritaire 2015)"
        ) in motif


def test_near_distance_is_configurable(real, outside_200) -> None:
    rules = preset(near_distance_m=100)
    assert rules.name == "fabriques-2019+personnalisé"
    ref = Reference.build(rules, real.qpv, real.communes)
    out = classify(points_table(outside_200["lon"], outside_200["lat"]), ref)

    # Pont-Saint-Esprit's point, 200 m from its QPV, is within 100 m of Vaucluse, whose
    # QPV the layer (Occitanie) does not hold: its proximity cannot be ruled out
    edge = out["motif"].str.contains("le département 84 est à 100 m ou moins", regex=False)
    assert out.loc[edge, "commune"].tolist() == ["Pont-Saint-Esprit"]
    assert out.loc[edge, "near_qpv"].isna().all()
    out = out[~edge]
    assert not out["near_qpv"].any()
    urban = out["densite7"] == 1
    assert urban.any() and (~urban).any(), "need 200 m points in both kinds of commune"
    assert (out.loc[urban, "verdict"] == "non_eligible").all()
    assert (out.loc[~urban, "verdict"] == "hors_grands_centres_urbains").all()
    assert out["motif"].str.contains("à 200 m du QPV le plus proche", regex=False).all()
    assert (
        out["motif"]
        .str.contains(
            "au-delà de 100 m (distance choisie par l'utilisateur ; géographie prioritaire 2015)",
            regex=False,
        )
        .all()
    )
    non_eligible = out.loc[urban, "motif"]
    assert non_eligible.str.startswith("Non éligible : ").all()
    assert non_eligible.str.contains("niveau 1 « Grands centres urbains »").all()


def test_rules_and_sources_are_recorded(real, data_dir) -> None:
    rules = preset().replace(near_distance_m=250.0)
    assert rules.name == "fabriques-2019+personnalisé"
    out = territoires.classify(points_table([1.4442], [43.6047]), rules, data_dir=data_dir)

    regles = out.attrs["regles"]
    assert regles["nom"] == "fabriques-2019+personnalisé"
    assert regles["distance_proximite_m"] == 250.0
    assert regles["millesime_qpv"] == 2015
    assert regles["regle_urbaine"] == "densite-hors-grands-centres"
    assert "au-delà de 250 m" in out["motif"].iloc[0]
    sources = out.attrs["sources"]
    files = {Path(source["fichier"]).name: source for source in sources}
    assert files["qpv2015_occitanie.geojson"]["millesime"] == 2015
    assert "communes_cog2024.gpkg" in files
    assert "grille_densite_7_niveaux_cog2026.csv" in files
    for source in sources:
        assert Path(source["fichier"]).is_file()
        assert Path(source["fichier"]).resolve().is_relative_to(data_dir.resolve())
        assert len(source["sha256"]) == 64 and source["millesime"]
    assert out.attrs["verdicts"] == {"non_eligible": 1}


def test_the_input_attrs_are_carried_and_the_output_keys_win(real, data_dir) -> None:
    """A user's attrs on the places come out with the results; theirs never pass for ours."""
    table = points_table([1.4442, 2.5740], [43.6047, 44.3506])
    table.attrs = {"projet": {"reseau": "Occitanie"}, "verdicts": {"ancien": 9}, "geocodage": 1}
    out = territoires.classify(table, data_dir=data_dir)
    assert out.attrs["projet"] == {"reseau": "Occitanie"}
    assert out.attrs["verdicts"] == {"non_eligible": 1, "hors_grands_centres_urbains": 1}
    assert "geocodage" not in out.attrs  # no address geocoded in this run
    assert set(out.attrs) >= {"regles", "sources", "lignes"}
    out.attrs["projet"]["reseau"] = "changé"
    assert table.attrs["projet"] == {"reseau": "Occitanie"}  # a copy: the input is untouched

    layer = gpd.GeoDataFrame(
        {"nom": ["Rodez"]}, geometry=gpd.points_from_xy([2.5740], [44.3506]), crs=4326
    )
    layer.attrs = {"projet": "couche"}
    assert territoires.classify(layer, data_dir=data_dir).attrs["projet"] == "couche"

    both = territoires.classify(table, data_dir=data_dir, qpv_vintages=[2015, 2024])
    assert both.attrs["projet"] == {"reseau": "Occitanie"}
    assert set(both.attrs["verdicts"]) == {"2015", "2024"}


def test_carried_attrs_are_made_json_safe(real, data_dir, tmp_path) -> None:
    """Dates, numpy values and tuples in a user's attrs would break to_parquet: made plain."""
    table = points_table([1.4442], [43.6047])
    table.attrs = {
        "jour": datetime.date(2026, 11, 30),
        "n": np.int64(3),
        "part": np.float32(0.5),
        "codes": np.array([31, 81]),
        "paire": (1, "a"),
        4: {"quand": datetime.datetime(2026, 1, 2, 3, 4)},
    }
    out = territoires.classify(table, data_dir=data_dir)
    assert out.attrs["jour"] == "2026-11-30"
    assert out.attrs["n"] == 3 and type(out.attrs["n"]) is int
    assert out.attrs["part"] == 0.5 and type(out.attrs["part"]) is float
    assert out.attrs["codes"] == [31, 81] and out.attrs["paire"] == [1, "a"]
    assert out.attrs["4"] == {"quand": "2026-01-02T03:04:00"}
    out.to_parquet(tmp_path / "r.parquet")  # raised TypeError before
    assert isinstance(table.attrs["jour"], datetime.date)  # the input is untouched


def test_commune_representative_points_in_occitanie(real) -> None:
    """Every commune of the covered départements: commune found, verdict by precedence."""
    communes = real.communes[real.communes["dep"].isin(real.covered)].reset_index(drop=True)
    lon, lat = representative_lonlat(communes.geometry)
    out = classify(points_table(lon, lat), real.ref)

    assert len(out) == len(communes) > 4000
    assert (out["verdict"] != "invalide").all()
    found = out["code_insee"].to_numpy() == communes["code_insee"].to_numpy()
    assert found.mean() > 0.999
    same = out[found]
    expected_outside = (same["densite7"] != 1).astype(bool)
    assert (same["hors_grands_centres_urbains"].astype(bool) == expected_outside).all()
    assert (same["densite7"].to_numpy() == communes.loc[found, "densite7"].to_numpy()).all()
    # precedence, recomputed from the output columns; a point within 300 m of a
    # département of another région (no QPV loaded there) has an unknown proximity
    edge = same["near_qpv"].isna().to_numpy()
    assert 0 < edge.sum() < 100
    assert same.loc[edge, "motif"].str.contains("absent de la couche QPV 2015 chargée").all()
    verdict = np.select(
        [
            same["in_qpv"].to_numpy(dtype=bool),
            same["near_qpv"].fillna(False).to_numpy(dtype=bool),
            same["hors_grands_centres_urbains"].to_numpy(dtype=bool),
            edge,
        ],
        ["qpv", "proximite_qpv", "hors_grands_centres_urbains", "indetermine"],
        default="non_eligible",
    )
    assert (same["verdict"].to_numpy() == verdict).all()
    same = same[~edge]
    assert set(same["verdict"]) >= {
        "proximite_qpv",
        "hors_grands_centres_urbains",
        "non_eligible",
    }
    hors = same[same["verdict"] == "hors_grands_centres_urbains"].head(50)
    for _, row in hors.iterrows():
        assert row["motif"].startswith("Hors grands centres urbains : ")
        assert (
            f"{row['commune']} ({row['code_insee']}) : niveau {row['densite7']} « " in row["motif"]
        )
        assert "→ hors grands centres urbains" in row["motif"]
        assert "au-delà de 300 m (300 m : Code général des impôts, art. 278 sexies" in row["motif"]


def test_non_eligible_large_urban_centre_far_from_qpv(real) -> None:
    communes = real.communes[
        real.communes["dep"].isin(real.covered) & (real.communes["densite7"] == 1)
    ]
    lon, lat = representative_lonlat(communes.geometry)
    out = classify(points_table(lon, lat), real.ref)
    far = out[
        (out["distance_qpv_m"] > 500)
        & (out["code_insee"].to_numpy() == communes["code_insee"].to_numpy())
    ]

    assert len(far) > 0
    assert (far["verdict"] == "non_eligible").all()
    assert (far["hors_grands_centres_urbains"] == False).all()  # noqa: E712
    for _, row in far.iterrows():
        motif = row["motif"]
        assert motif.startswith("Non éligible : à ")
        assert f"du QPV le plus proche {row['nearest_qpv_code']} « " in motif
        assert "au-delà de 300 m" in motif
        assert (
            f"{row['commune']} ({row['code_insee']}) : niveau 1 « Grands centres urbains »" in motif
        )


def test_outside_qpv_coverage_is_indetermine(real) -> None:
    """Large urban centres outside the départements of the regional QPV extract."""
    communes = real.communes[
        ~real.communes["dep"].isin(real.covered) & (real.communes["densite7"] == 1)
    ].iloc[::20]
    lon, lat = representative_lonlat(communes.geometry)
    out = classify(points_table(lon, lat), real.ref)

    assert len(out) > 10
    assert (out["verdict"] == "indetermine").all()
    assert out["in_qpv"].isna().all() and out["near_qpv"].isna().all()
    assert out["distance_qpv_m"].isna().all() and out["nearest_qpv_code"].isna().all()
    assert out["geometry"].notna().all()
    for _, row in out.iterrows():
        assert row["motif"].startswith("Indéterminé (données de référence manquantes) : ")
        assert (
            f"QPV non vérifiable : département {row['dep']} absent de la couche QPV 2015"
            in row["motif"]
        )


def test_outside_coverage_but_outside_urban_centres_is_still_eligible(real) -> None:
    aubusson = real.communes[real.communes["code_insee"] == "23008"]
    lon, lat = representative_lonlat(aubusson.geometry)
    row = classify(points_table(lon, lat), real.ref).iloc[0]

    assert row["dep"] == "23" and "23" not in real.covered
    assert row["verdict"] == "hors_grands_centres_urbains"
    assert pd.isna(row["in_qpv"])
    assert "département 23 absent de la couche QPV" in row["motif"]


# ------------------------------------------------------------------- alternative rules


@pytest.mark.parametrize("urban", ["aav-hors-poles-200k", "uu-moins-200k", "hors-metropoles"])
def test_alternative_urban_rules_change_the_verdict(real, urban) -> None:
    other = Reference.build(preset(urban=urban), real.qpv, real.communes)
    density = real.ref.communes["hors_gcu"].astype(object)
    alternative = other.communes["hors_gcu"].astype(object)
    disagree = (
        real.ref.communes["dep"].isin(real.covered).to_numpy()
        & density.notna().to_numpy()
        & alternative.notna().to_numpy()
        & (density != alternative).to_numpy()
    )
    communes = real.communes[disagree]
    assert len(communes) > 0, f"no Occitanie commune where {urban} disagrees with density"
    lon, lat = representative_lonlat(communes.geometry)
    table = points_table(lon, lat)
    by_density = classify(table, real.ref)
    by_other = classify(table, other)
    usable = (by_density["code_insee"].to_numpy() == communes["code_insee"].to_numpy()) & (
        by_density["distance_qpv_m"] > 500
    ).to_numpy()
    assert usable.any()

    first, second = by_density[usable], by_other[usable]
    assert (first["verdict"] != second["verdict"]).all()
    assert set(first["verdict"]) | set(second["verdict"]) == {
        "non_eligible",
        "hors_grands_centres_urbains",
    }
    assert (
        first["hors_grands_centres_urbains"].astype(bool)
        != second["hors_grands_centres_urbains"].astype(bool)
    ).all()
    assert second["motif"].str.contains(f"(règle « {urban} »)", regex=False).all()
    labels = {
        "aav-hors-poles-200k": "aire d'attraction",
        "uu-moins-200k": "unité urbaine",
        "hors-metropoles": " des 22 métropoles",
    }
    assert second["motif"].str.contains(labels[urban], regex=False).all()


@pytest.mark.parametrize(
    ("urban", "zone"),
    [
        ("aav-hors-poles-200k", "aire d'attraction 005 « Toulouse » : "),
        ("uu-moins-200k", "(unité urbaine 00758 « Toulouse »)"),
    ],
)
def test_motifs_name_the_zone_of_the_commune(real, urban, zone) -> None:
    """The Capitole, Toulouse: the motif names the aire d'attraction or unité urbaine."""
    other = Reference.build(preset(urban=urban), real.qpv, real.communes)
    motif = classify(points_table([1.4442], [43.6047]), other)["motif"].iloc[0]
    assert "Toulouse (31555) : " in motif and zone in motif


# ------------------------------------------------------------- synthetic reference layers


def _communes_frame(rows: list[dict], geometries: list) -> gpd.GeoDataFrame:
    defaults = {
        "reg": "76",
        "densite7": 1,
        "cateaav2020": 11,
        "taav2017": 5,
        "tuu2017": 8,
        "aav2020": "004",
        "uu2020": "31701",
    }
    table = pd.DataFrame([{**defaults, **row} for row in rows])
    for column in ("densite7", "cateaav2020", "taav2017", "tuu2017"):
        table[column] = table[column].astype("Int64")
    return gpd.GeoDataFrame(table, geometry=geometries, crs=4326)


def _qpv_frame(rows: list[tuple[str, str, str]], geometries: list) -> gpd.GeoDataFrame:
    table = pd.DataFrame(rows, columns=["code_qpv", "nom_qpv", "dep"])
    return gpd.GeoDataFrame(table, geometry=geometries, crs=4326)


def _square(x: float, y: float, side: float, epsg: int):
    """A square given in a projected CRS, returned in EPSG:4326 (vertices transformed)."""
    return gpd.GeoSeries([box(x, y, x + side, y + side)], crs=epsg).to_crs(4326).iloc[0]


@pytest.fixture(params=["A-first", "B-first"])
def toulouse_like(request) -> Reference:
    """Two overlapping QPV squares (A, B), one spanning two communes, exact coordinates.

    Built with the QPV in both orders: the output must not depend on the layer's order.
    """
    rows = [("QPA", "Quartier Alpha", "31"), ("QPB", "Quartier Beta", "31")]
    squares = [box(1.40, 43.50, 1.41, 43.51), box(1.405, 43.505, 1.415, 43.515)]
    if request.param == "B-first":
        rows, squares = rows[::-1], squares[::-1]
    qpv = _qpv_frame(rows, squares)
    communes = _communes_frame(
        [
            {"code_insee": "31001", "nom": "Ouest", "dep": "31"},
            {"code_insee": "31002", "nom": "Est", "dep": "31", "densite7": 3},
        ],
        [box(1.30, 43.40, 1.408, 43.60), box(1.408, 43.40, 1.50, 43.60)],
    )
    return Reference.build(preset(), qpv, communes)


def test_point_on_a_qpv_vertex_or_meridian_edge_is_inside(toulouse_like) -> None:
    # a vertex, and the middle of a north-south edge (a meridian stays exact in Lambert-93)
    out = classify(points_table([1.40, 1.40, 1.41], [43.50, 43.505, 43.51]), toulouse_like)

    assert out["in_qpv"].tolist() == [True, True, True]
    assert (out["distance_qpv_m"] == 0).all()
    assert out["verdict"].tolist() == ["qpv"] * 3
    assert out["qpv_code"].tolist() == ["QPA", "QPA", "QPA;QPB"]


def test_point_on_a_parallel_edge_is_inside(toulouse_like) -> None:
    """Containment is tested on the published EPSG:4326 polygon, so a point on an
    east-west edge is inside (in Lambert-93 the projected straight edge lies ~1 cm off)."""
    row = classify(points_table([1.4025], [43.50]), toulouse_like).iloc[0]

    assert row["distance_qpv_m"] == 0
    assert row["near_qpv"]
    assert row["verdict"] == "qpv"


def test_point_in_two_overlapping_qpv(toulouse_like) -> None:
    row = classify(points_table([1.4075], [43.5075]), toulouse_like).iloc[0]

    assert row["verdict"] == "qpv"
    assert row["qpv_code"] == "QPA;QPB"
    assert row["qpv_nom"] == "Quartier Alpha ; Quartier Beta"
    assert "dans le QPV QPA;QPB « Quartier Alpha ; Quartier Beta »" in row["motif"]


def test_point_in_three_overlapping_qpv_lists_codes_in_order() -> None:
    squares = [
        box(1.40 + k * 0.002, 43.50 + k * 0.002, 1.41 + k * 0.002, 43.51 + k * 0.002)
        for k in range(3)
    ]
    qpv = _qpv_frame(
        [("QPC", "Gamma", "31"), ("QPA", "Alpha", "31"), ("QPB", "Beta", "31")], squares
    )
    communes = _communes_frame(
        [{"code_insee": "31001", "nom": "Ville", "dep": "31"}], [box(1.3, 43.4, 1.5, 43.6)]
    )
    row = classify(points_table([1.407], [43.507]), Reference.build(preset(), qpv, communes)).iloc[
        0
    ]

    assert row["qpv_code"] == "QPA;QPB;QPC"
    assert row["qpv_nom"] == "Alpha ; Beta ; Gamma"
    assert row["verdict"] == "qpv"


def test_qpv_spanning_two_communes_synthetic(toulouse_like) -> None:
    out = classify(points_table([1.402, 1.409], [43.502, 43.502]), toulouse_like)

    assert out["qpv_code"].tolist() == ["QPA", "QPA"]
    assert out["code_insee"].tolist() == ["31001", "31002"]
    assert out["commune"].tolist() == ["Ouest", "Est"]
    assert out["verdict"].tolist() == ["qpv", "qpv"]
    assert out["hors_grands_centres_urbains"].tolist() == [False, True]


def test_missing_density_is_indetermine_unless_eligible_otherwise() -> None:
    qpv = _qpv_frame([("QPA", "Alpha", "31")], [box(1.40, 43.50, 1.41, 43.51)])
    communes = _communes_frame(
        [{"code_insee": "31001", "nom": "Sans grille", "dep": "31", "densite7": pd.NA}],
        [box(1.30, 43.40, 1.50, 43.60)],
    )
    ref = Reference.build(preset(), qpv, communes)
    out = classify(points_table([1.405, 1.412, 1.35], [43.505, 43.505, 43.45]), ref)

    assert out["verdict"].tolist() == ["qpv", "proximite_qpv", "indetermine"]
    assert out["hors_grands_centres_urbains"].isna().all()
    assert out["densite7"].isna().all()
    assert "densite7 inconnu" in out["motif"].iloc[2]


def test_territory_without_any_qpv_is_checked_and_not_near() -> None:
    qpv = _qpv_frame([("QPA", "Alpha", "31")], [box(1.40, 43.50, 1.41, 43.51)])
    communes = _communes_frame(
        [{"code_insee": "97411", "nom": "Saint-Denis", "dep": "974", "reg": "04"}],
        [box(55.40, -20.95, 55.50, -20.85)],
    )
    ref = Reference.build(preset(), qpv, communes)
    row = classify(points_table([55.45], [-20.90]), ref).iloc[0]

    assert row["in_qpv"] == False  # noqa: E712
    assert row["near_qpv"] == False  # noqa: E712
    assert np.isnan(row["distance_qpv_m"])
    assert row["verdict"] == "non_eligible"
    assert "aucun QPV 2015 dans ce territoire" in row["motif"]


@pytest.mark.parametrize(
    ("territory", "dep", "lon", "lat", "epsg"),
    [
        ("reunion", "974", 55.4500, -20.8900, 2975),  # Saint-Denis
        ("guyane", "973", -52.3300, 4.9300, 2972),  # Cayenne
        ("mayotte", "976", 45.2270, -12.7800, 4471),  # Mamoudzou
        ("antilles", "971", -61.5330, 16.2410, 5490),  # Pointe-à-Pitre
        ("metropole", "2A", 8.7300, 41.9300, 2154),  # Ajaccio
    ],
)
def test_distance_measured_in_the_territory_crs(territory, dep, lon, lat, epsg) -> None:
    """A 200 m square QPV and a point 250 m east of it, both built in the legal CRS."""
    x, y = to_projected([lon], [lat], epsg)
    x0, y0 = float(x[0]), float(y[0])
    qpv = _qpv_frame([("QPX", "Carré", dep)], [_square(x0, y0, 200, epsg)])
    commune = _square(x0 - 5000, y0 - 5000, 10000, epsg)
    communes = _communes_frame([{"code_insee": f"{dep}999", "nom": "Test", "dep": dep}], [commune])
    ref = Reference.build(preset(), qpv, communes)
    point_lon, point_lat = to_lonlat([x0 + 450], [y0 + 100], epsg)
    row = classify(points_table(point_lon, point_lat), ref).iloc[0]

    assert row["territoire"] == territory
    assert engine.transformer(territory).target_crs.to_epsg() == epsg
    assert abs(row["distance_qpv_m"] - 250) <= 2
    assert row["verdict"] == "proximite_qpv"
    assert row["nearest_qpv_code"] == "QPX"
    # the check can fail: in another CRS the same two objects are not 250 m apart
    wrong = 3857 if territory == "metropole" else L93
    other = gpd.GeoSeries([qpv.geometry.iloc[0]], crs=4326).to_crs(wrong).iloc[0]
    wx, wy = to_projected(point_lon, point_lat, wrong)
    assert abs(other.distance(shapely.Point(wx[0], wy[0])) - 250) > 2


# ------------------------------------------------------- real multipolygon, spanning, DROM


def test_point_in_second_part_of_a_repaired_multipolygon_qpv(real) -> None:
    multi = real.qpv[real.qpv.geom_type == "MultiPolygon"]
    assert len(multi) > 0
    second_area = multi.geometry.map(lambda geom: shapely.get_parts(geom)[1].area)
    chosen = multi.loc[second_area.idxmax()]
    first, second = shapely.get_parts(chosen.geometry)[:2]
    point = second.representative_point()
    assert not first.intersects(point)
    row = classify(points_table([point.x], [point.y]), real.ref).iloc[0]

    assert row["verdict"] == "qpv"
    assert chosen["code_qpv"] in row["qpv_code"].split(";")
    assert row["distance_qpv_m"] == 0


def test_real_qpv_spanning_several_communes(real) -> None:
    qpv = real.qpv_l93()
    communes = real.communes[real.communes["dep"].isin(real.covered)].to_crs(L93)
    pieces = gpd.overlay(
        qpv[["code_qpv", "geometry"]],
        communes[["code_insee", "geometry"]],
        how="intersection",
        keep_geom_type=True,
    )
    pieces = pieces[pieces.area > 20_000]  # ignore slivers of simplified boundaries
    spanning = pieces.groupby("code_qpv")["code_insee"].transform("nunique") > 1
    pieces = pieces[spanning].reset_index(drop=True)
    assert pieces["code_qpv"].nunique() >= 1, "expected at least one QPV over two communes"
    inner = pieces.geometry.buffer(-5)  # keep away from the commune boundary
    points = inner.representative_point()
    lon, lat = to_lonlat(points.x, points.y)
    out = classify(points_table(lon, lat), real.ref)

    assert (out["verdict"] == "qpv").all()
    assert _has_code(out["qpv_code"], pieces["code_qpv"]).all()
    assert (out["code_insee"].to_numpy() == pieces["code_insee"].to_numpy()).all()
    communes_per_qpv = out.groupby(pieces["code_qpv"].to_numpy())["code_insee"].agg(set)
    assert (communes_per_qpv.map(len) >= 2).all()


@pytest.mark.parametrize(
    ("code_insee", "territory", "dep"),
    [
        ("97411", "reunion", "974"),
        ("97302", "guyane", "973"),
        ("97611", "mayotte", "976"),
        ("97120", "antilles", "971"),
        ("97209", "antilles", "972"),
        ("2A004", "metropole", "2A"),
    ],
)
def test_overseas_and_corsica_communes_are_found(real, code_insee, territory, dep) -> None:
    commune = real.communes[real.communes["code_insee"] == code_insee]
    assert len(commune) == 1
    lon, lat = representative_lonlat(commune.geometry)
    row = classify(points_table(lon, lat), real.ref).iloc[0]

    assert row["territoire"] == territory
    assert row["code_insee"] == code_insee
    assert row["dep"] == dep
    assert row["verdict"] in {"indetermine", "hors_grands_centres_urbains"}
    assert f"département {dep} absent de la couche QPV 2015" in row["motif"]
    assert row["commune"] in row["motif"]


def test_ajaccio_uses_lambert_93(real) -> None:
    row = territoires.check(8.7369, 41.9192, ref=real.ref)  # example file, on the harbour

    assert row["code_insee"] == "2A004" and row["territoire"] == "metropole"
    assert engine.transformer("metropole").target_crs.to_epsg() == 2154
    assert "rattaché à la commune la plus proche" in row["motif"]


# ---------------------------------------------------------------------------- bad input


def _coast_points(real) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Two points south of Palavas-les-Flots at sea: ~300 m and ~3 km from the shore."""
    communes = real.communes.to_crs(L93)
    palavas = communes[communes["code_insee"] == "34192"].geometry.iloc[0]
    ring = shapely.get_coordinates(palavas)
    x, y = ring[np.argmin(ring[:, 1])]
    tree = shapely.STRtree(communes.geometry.to_numpy())
    near, far = shapely.Point(x, y - 300), shapely.Point(x, y - 3000)
    gaps = [float(tree.query_nearest(p, return_distance=True)[1][0]) for p in (near, far)]
    assert 0 < gaps[0] < COMMUNE_TOLERANCE_M < gaps[1]
    lon, lat = to_lonlat([near.x, far.x], [near.y, far.y])
    return (lon[0], lat[0]), (lon[1], lat[1]), gaps[0]


def test_points_at_sea_near_and_far_from_the_coast(real) -> None:
    near, far, gap = _coast_points(real)
    out = classify(points_table([near[0], far[0]], [near[1], far[1]]), real.ref)

    assert out["verdict"].iloc[0] != "invalide"
    assert out["dep"].iloc[0] == "34"
    assert f"point à {round(gap)} m des contours communaux simplifiés" in out["motif"].iloc[0]
    assert "rattaché à la commune la plus proche" in out["motif"].iloc[0]
    assert out["verdict"].iloc[1] == "invalide"
    assert "hors du territoire communal" in out["motif"].iloc[1]
    assert out.geometry.iloc[1] is None
    assert out["geometry"].iloc[0] is not None


#: Places abroad within the 1 km commune tolerance of a French commune (checked below).
ABROAD_NEAR_FRANCE = {
    "Monaco, Monte-Carlo": (7.4246, 43.7384),
    "Monaco, port Hercule": (7.4222, 43.7350),
    "Andorre, Pas de la Casa": (1.7300, 42.5380),
    "Andorre, Pas de la Casa ouest": (1.7250, 42.5410),
    "Suisse, Thônex (Genève)": (6.2000, 46.1930),
    "Belgique, Comines-Warneton": (3.0060, 50.7700),
    "Belgique, Menin": (3.1150, 50.7900),
    "Espagne, Irun": (-1.7700, 43.3450),
}
#: Places abroad farther away, or in a foreign enclave.
ABROAD_FAR = {
    "Jersey, Saint-Hélier": (-2.1065, 49.1858),
    "Espagne, Llívia (enclave)": (1.9809, 42.4640),
    "Suisse, Genève centre": (6.1432, 46.2044),
}
#: Real harbour points at sea, outside the simplified outlines but within the tolerance.
HARBOURS = {
    "Marseille, bassin de la Joliette": ((5.3580, 43.3080), "13055"),
    "Toulon, petite rade": ((5.9300, 43.1100), "83137"),
    "Ajaccio, port": ((8.7420, 41.9210), "2A004"),
    "Cherbourg, digue": ((-1.6200, 49.6650), "50129"),
}


def test_points_abroad_are_invalid_whatever_the_tolerance(real) -> None:
    """The tolerance attaches points at sea near the coast, never across a land border."""
    places = {**ABROAD_NEAR_FRANCE, **ABROAD_FAR}
    lon, lat = zip(*places.values(), strict=True)
    table = points_table(list(lon), list(lat))
    table["nom"] = list(places)
    communes = real.communes.to_crs(L93)
    tree = shapely.STRtree(communes.geometry.to_numpy())
    metric = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326).to_crs(L93).to_numpy()
    gaps = tree.query_nearest(metric, return_distance=True)[1]
    assert not tree.query(metric, predicate="intersects").size  # in no commune
    assert (gaps[: len(ABROAD_NEAR_FRANCE)] < COMMUNE_TOLERANCE_M).all()  # tolerance in play

    out = classify(table, real.ref)

    assert out["verdict"].tolist() == ["invalide"] * len(places), out["motif"].tolist()
    assert out["commune"].isna().all()
    for line, (name, motif) in enumerate(zip(out["nom"], out["motif"], strict=True), start=1):
        assert f"ligne {line} : point hors " in motif, name
        if name in ABROAD_NEAR_FRANCE:
            assert "en territoire étranger" in motif and "frontière terrestre" in motif, name


def test_harbour_points_at_sea_still_attach(real) -> None:
    lon, lat = zip(*(point for point, _ in HARBOURS.values()), strict=True)

    out = classify(points_table(list(lon), list(lat)), real.ref)

    assert out["code_insee"].tolist() == [code for _, code in HARBOURS.values()]
    assert out["verdict"].ne("invalide").all()
    assert out["motif"].str.contains("en mer près de la côte").all()


#: (name, lon, lat, expected verdict, words of the motif) for the bad-input table.
BAD_ROWS = [
    ("La Reynerie", 1.4020, 43.5750, "qpv", "QP031007"),
    ("Sans latitude", 1.4442, None, "invalide", "latitude manquante"),
    ("Texte illisible", "abc", 43.6, "invalide", "longitude non numérique ('abc')"),
    ("Inversé", 43.5750, 1.4020, "invalide", "latitude et longitude semblent inversées"),
    ("Londres", -0.1276, 51.5072, "invalide", "point hors de France"),
    ("New York", -74.0060, 40.7128, "invalide", "point hors de France"),
    ("Golfe du Lion", 4.0, 43.0, "invalide", "hors du territoire communal"),
    ("Lambert-93", 574357.82, 6279642.97, "invalide", "hors des bornes WGS84"),
    ("Pôle Nord", 1.4, 95, "invalide", "hors des bornes WGS84"),
    ("La Reynerie", 1.4020, 43.5750, "invalide", "doublon de la ligne"),
    ("Capitole", 1.4442, 43.6047, "non_eligible", "Toulouse (31555)"),
]


def _assert_bad_rows(out: gpd.GeoDataFrame, names: list[str]) -> None:
    assert out["nom"].tolist() == names
    for (_, _, _, verdict, words), (_, row) in zip(BAD_ROWS, out.iterrows(), strict=True):
        assert row["verdict"] == verdict, row["motif"]
        assert words in row["motif"], row["motif"]
        assert row["motif"].startswith(VERDICTS[verdict])
    invalid = [row[3] == "invalide" for row in BAD_ROWS]
    assert out.geometry.isna().tolist() == invalid


def test_bad_input_table(real) -> None:
    # the sea point premise: further than the tolerance from every commune
    communes = real.communes.to_crs(L93)
    x, y = to_projected([4.0], [43.0])
    assert communes.distance(shapely.Point(x[0], y[0])).min() > COMMUNE_TOLERANCE_M
    table = pd.DataFrame(
        {
            "nom": [row[0] for row in BAD_ROWS],
            "longitude": np.array([row[1] for row in BAD_ROWS], dtype=object),
            "latitude": np.array([row[2] for row in BAD_ROWS], dtype=object),
        }
    )
    out = classify(table, real.ref)

    _assert_bad_rows(out, table["nom"].tolist())
    assert out["motif"].iloc[1].startswith("Entrée invalide : ligne 2 : ")
    assert "doublon de la ligne 1" in out["motif"].iloc[9]


def test_bad_input_csv_file(real) -> None:
    out = classify(FIXTURES / "lieux_invalides.csv", real.ref)

    _assert_bad_rows(out, [row[0] for row in BAD_ROWS])
    assert out["motif"].iloc[1] == "Entrée invalide : ligne 3 : latitude manquante"
    assert "ligne 11 : doublon de la ligne 2" in out["motif"].iloc[9]
    assert out["commentaire"].iloc[6] == "en mer à 40 km des côtes"
    assert out["longitude"].iloc[0] == "1,4020"  # read as text, passed through as read


def test_projected_coordinates_need_a_crs(real) -> None:
    x, y = to_projected([1.4020], [43.5750])
    table = pd.DataFrame({"x": x, "y": y, "nom": ["Reynerie en Lambert-93"]})

    with pytest.raises(InputError, match=r"CRS non précisé pour les colonnes x/y « x » et « y »"):
        classify(table, real.ref)

    with_crs = classify(table, real.ref, input_crs=2154)
    assert with_crs["verdict"].tolist() == ["qpv"]
    assert with_crs["qpv_code"].iloc[0] == "QP031007"
    assert abs(with_crs["lon"].iloc[0] - 1.4020) < 1e-7
    assert with_crs.crs.to_epsg() == 4326


def test_layer_without_crs_is_refused_and_layer_in_lambert_93_is_converted(real) -> None:
    x, y = to_projected([1.4020, 1.4442], [43.5750, 43.6047])
    layer = gpd.GeoDataFrame({"nom": ["a", "b"]}, geometry=shapely.points(x, y))
    before = layer.copy(deep=True)

    with pytest.raises(InputError, match="CRS absent"):
        classify(layer, real.ref)
    out = classify(layer, real.ref, input_crs=2154)
    assert out["verdict"].tolist() == ["qpv", "non_eligible"]

    projected = layer.set_crs(L93)
    out = classify(projected, real.ref)
    assert out["verdict"].tolist() == ["qpv", "non_eligible"]
    assert out.crs.to_epsg() == 4326
    assert np.allclose(out.geometry.x, [1.4020, 1.4442]) and np.allclose(
        out.geometry.y, [43.5750, 43.6047]
    )
    pd.testing.assert_frame_equal(layer, before)
    assert projected.crs.to_epsg() == L93


def test_empty_table_gives_empty_result_with_every_column(real) -> None:
    out = classify(pd.DataFrame({"nom": [], "lon": [], "lat": []}), real.ref)

    assert len(out) == 0
    assert list(out.columns) == ["nom", "lon_entree", "lat_entree", *OUTPUT_COLUMNS, "geometry"]
    assert out.crs.to_epsg() == 4326
    assert out.attrs["verdicts"] == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "fichier vide"),
        ("nom;longitude;latitude\n", "fichier vide"),
        ("nom;telephone\nA;0561000000\n", "aucune paire de colonnes de coordonnées"),
    ],
    ids=["empty", "header-only", "no-coordinates"],
)
def test_unusable_files_raise_input_error(real, tmp_path, content, message) -> None:
    path = tmp_path / "lieux.csv"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(InputError, match=message):
        classify(path, real.ref)


def test_table_without_coordinate_columns_raises_input_error(real) -> None:
    with pytest.raises(InputError, match="aucune paire de colonnes"):
        classify(pd.DataFrame({"nom": ["A"], "telephone": ["0561000000"]}), real.ref)


def test_missing_file_raises_input_error(real, tmp_path) -> None:
    with pytest.raises(InputError, match="fichier introuvable"):
        classify(tmp_path / "absent.csv", real.ref)


def test_unknown_columns_pass_through_untouched(real) -> None:
    table = pd.DataFrame(
        {
            "identifiant": pd.array([7, None, 9], dtype="Int64"),
            "porteur": ["A", None, "C"],
            "ouverture": pd.to_datetime(["2020-01-01", "2021-06-30", None]),
            "type": pd.Categorical(["café", "fablab", "café"]),
            "surface": [120.5, np.nan, 80.0],
            "lon": [1.4020, 1.4442, 200.0],
            "lat": [43.5750, 43.6047, 43.0],
            ("tuple", "col"): [1, 2, 3],
        }
    )
    out = classify(table, real.ref)
    user = ["identifiant", "porteur", "ouverture", "type", "surface", ("tuple", "col")]
    kept = ["lon_entree", "lat_entree"]

    assert list(out.columns) == [*user[:-1], *kept, user[-1], *OUTPUT_COLUMNS, "geometry"]
    pd.testing.assert_frame_equal(pd.DataFrame(out[user]), table[user])
    assert out["verdict"].tolist() == ["qpv", "non_eligible", "invalide"]


def test_duplicates_later_rows_invalid_and_kept(real) -> None:
    table = points_table([1.4020, 1.4442, 1.4020, 1.4020], [43.5750, 43.6047, 43.5750, 43.5750])
    table["nom"] = ["A", "B", "A", "autre nom"]
    out = classify(table, real.ref)

    assert out["verdict"].tolist() == ["qpv", "non_eligible", "invalide", "qpv"]
    assert "doublon de la ligne 1" in out["motif"].iloc[2]


# ----------------------------------------------------------------------------- invariants


def _messy_table(real) -> pd.DataFrame:
    """Valid and invalid rows of every kind, shuffled, with a string index."""
    near, far, _ = _coast_points(real)
    rows = [(row[0], row[1], row[2]) for row in BAD_ROWS] + [
        ("Conques", 2.3980, 44.5990),
        ("Bastille", 2.3690, 48.8530),
        ("Saint-Denis", 55.4500, -20.8800),
        ("Côte", near[0], near[1]),
        ("Large", far[0], far[1]),
        ("Vide", "", ""),
        ("NaN", np.nan, np.nan),
        ("Infini", np.inf, 43.0),
    ]
    table = pd.DataFrame(
        {
            "nom": [row[0] for row in rows],
            "Longitude": np.array([row[1] for row in rows], dtype=object),
            "Latitude": np.array([row[2] for row in rows], dtype=object),
            "rang": np.arange(len(rows)),
        },
        index=[f"lieu-{position:02d}" for position in range(len(rows))],
    )
    order = np.random.default_rng(7).permutation(len(table))
    return table.iloc[order]


def test_invariants_rows_order_index_input_and_types(real) -> None:
    table = _messy_table(real)
    before = copy.deepcopy(table)

    out = classify(table, real.ref)

    pd.testing.assert_frame_equal(table, before)  # input not mutated
    assert len(out) == len(table)
    assert out.index.equals(table.index)
    assert out["rang"].tolist() == table["rang"].tolist()
    assert list(out.columns) == [
        "nom",
        "Longitude",
        "Latitude",
        "rang",
        *OUTPUT_COLUMNS,
        "geometry",
    ]
    assert out.crs.to_epsg() == 4326
    invalid = (out["verdict"] == "invalide").to_numpy()
    assert 0 < invalid.sum() < len(out)
    assert (out.geometry.isna().to_numpy() == invalid).all()
    assert out.loc[~invalid].geometry.geom_type.eq("Point").all()
    assert np.allclose(out.loc[~invalid].geometry.x, out.loc[~invalid, "lon"])
    assert (
        out.loc[invalid, ["distance_qpv_m", "code_insee", "in_qpv", "densite7"]].isna().all().all()
    )
    assert out["verdict"].isin(list(VERDICTS)).all()
    assert out["motif"].notna().all()
    for verdict, motif in zip(out["verdict"], out["motif"], strict=True):
        assert motif.startswith(VERDICTS[verdict] + " : ")
    for column in BOOLEAN_COLUMNS:
        assert out[column].dtype == "boolean", column
    for column in ("densite7", "cateaav2020"):
        assert out[column].dtype == "Int64", column
    for column in STRING_COLUMNS:
        assert pd.api.types.is_string_dtype(out[column].dtype), column
    assert out["distance_qpv_m"].dtype == "float64"
    counts = out.attrs["verdicts"]
    assert sum(counts.values()) == len(out)
    assert counts == out["verdict"].value_counts().to_dict()


def test_chunks_in_threads_give_the_frame_of_one_batch(real) -> None:
    """Chunks gathered column by column (engine.Collected) equal one classify_frame."""
    table = pd.concat([_messy_table(real)] * 7)
    table.index = [f"{name}-{copy}" for copy, name in enumerate(table.index)]
    table["commune"] = "entrée de l'utilisateur"  # clashes with an output column

    chunked = classify(table, real.ref, chunk_size=5, workers=3)
    frame = territoires.places.read_places(table, geometry=False)
    whole = engine.classify_frame(frame, real.ref, territoires.places.lines(frame))

    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)
    assert chunked["motif"].array._pa_array.num_chunks > 1  # chained, not copied
    # counted chunk by chunk, listed as value_counts lists them (ties included)
    counts = chunked["verdict"].value_counts()
    assert list(chunked.attrs["verdicts"].items()) == list(counts.items())
    for column in chunked:
        assert type(chunked[column].array) is type(whole[column].array), column


def test_input_layer_with_index_is_not_mutated(real) -> None:
    layer = gpd.GeoDataFrame(
        {"nom": ["Conques", "Reynerie", "Mer"]},
        geometry=gpd.points_from_xy([2.3980, 1.4020, 4.0], [44.5990, 43.5750, 43.0]),
        crs=4326,
        index=pd.Index([30, 10, 20], name="id"),
    )
    before = layer.copy(deep=True)
    out = classify(layer, real.ref)

    pd.testing.assert_frame_equal(layer, before)
    assert out.index.equals(layer.index)
    assert out["verdict"].tolist() == ["hors_grands_centres_urbains", "qpv", "invalide"]


# ---------------------------------------------------------------- property-style check


def _sample_within(rng, geometry, bounds, count: int) -> np.ndarray:
    """``count`` uniform random lon/lat points inside ``geometry`` (rejection sampling)."""
    west, south, east, north = bounds
    found = np.empty((0, 2))
    while len(found) < count:
        lon = rng.uniform(west, east, 4 * count + 100)
        lat = rng.uniform(south, north, 4 * count + 100)
        keep = shapely.contains_xy(geometry, lon, lat)
        found = np.concatenate([found, np.column_stack([lon, lat])[keep]])
    return found[:count]


def test_random_points_match_a_plain_geopandas_computation(real) -> None:
    rng = np.random.default_rng(20240601)
    occitanie = real.communes[real.communes["dep"].isin(real.covered)]
    union = shapely.union_all(occitanie.geometry.to_numpy())
    qpv = real.qpv
    # 1,000 uniform over the region, 600 in the 300 m surroundings of QPV, 400 inside QPV
    west, south, east, north = union.bounds
    uniform = _sample_within(rng, union, (west, south, east, north), 1000)
    boxes = qpv.geometry.bounds.to_numpy()
    which = rng.integers(0, len(boxes), 600)
    pad = 0.004  # about 300 m
    around = np.column_stack(
        [
            rng.uniform(boxes[which, 0] - pad, boxes[which, 2] + pad),
            rng.uniform(boxes[which, 1] - pad, boxes[which, 3] + pad),
        ]
    )
    inside = np.concatenate(
        [
            _sample_within(rng, geom, geom.bounds, count)
            for geom, count in zip(
                qpv.geometry,
                np.bincount(rng.integers(0, len(qpv), 400), minlength=len(qpv)),
                strict=True,
            )
            if count
        ]
    )
    coords = np.concatenate([uniform, around, inside])
    assert len(coords) == 2000
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(coords[:, 0], coords[:, 1]), crs=4326)

    out = classify(points_table(coords[:, 0], coords[:, 1]), real.ref)

    # plain reference computation
    joined = gpd.sjoin(points, qpv[["code_qpv", "geometry"]], predicate="within")
    expected_in = np.zeros(len(points), dtype=bool)
    expected_in[joined.index.unique()] = True
    qpv_l93 = qpv.to_crs(L93)
    points_l93 = points.to_crs(L93)
    expected_distance = np.array([qpv_l93.distance(point).min() for point in points_l93.geometry])

    checked = out["in_qpv"].notna().to_numpy()
    assert checked.mean() > 0.99
    assert expected_in[checked].sum() >= 400  # the sample really tests containment
    assert (
        out["in_qpv"].to_numpy(dtype=bool, na_value=False)[checked] == expected_in[checked]
    ).all()
    # near a département without QPV loaded, the nearest loaded QPV may not be the
    # nearest: no distance is given there
    measured = checked & out["near_qpv"].notna().to_numpy()
    assert measured.mean() > 0.98
    np.testing.assert_allclose(
        out["distance_qpv_m"].to_numpy()[measured],
        np.round(expected_distance[measured], 1),
        atol=0.01,
    )
    expected_codes = joined.groupby(level=0)["code_qpv"].agg(lambda s: ";".join(sorted(s)))
    found = out["qpv_code"].iloc[expected_codes.index]
    assert found.tolist() == expected_codes.tolist()


# ----------------------------------------------------------------------------------- check


def test_check_returns_a_series(real) -> None:
    row = territoires.check(1.4020, 43.5750)  # default preset, mirror from the environment

    assert isinstance(row, pd.Series)
    assert row["verdict"] == "qpv"
    assert row["motif"].startswith("Dans un quartier prioritaire (QPV) : dans le QPV QP031007")
    assert "geometry" not in row.index
    assert set(OUTPUT_COLUMNS) <= set(row.index)
    assert row.attrs["regles"]["nom"] == "fabriques-2019"

    named = territoires.check(1.4442, 43.6047, "fabriques-2019", ref=real.ref)
    assert named["verdict"] == "non_eligible"
    invalid = territoires.check(43.6047, 1.4442, ref=real.ref)
    assert invalid["verdict"] == "invalide"
    assert "inversées" in invalid["motif"]


@pytest.mark.parametrize(
    "args",
    [
        ("1,4020", "43,5750"),
        ("1.4020", "43.5750"),
        (" 1,4020 ", 43.5750),
        ("1,4020 43,5750",),
        ("43.5750, 1.4020",),
        (np.float32(1.402), np.int64(43) + 0.575),
    ],
)
def test_check_reads_coordinates_as_the_command_line_does(real, args) -> None:
    row = territoires.check(*args, ref=real.ref)

    assert row["verdict"] == "qpv", row["motif"]
    assert "QP031007" in row["motif"]
    assert "adresse" not in row.index  # read as a point, never sent to the geocoder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("abc", "43,5750"), r"longitude 'abc' illisible : attendu des degrés décimaux"),
        (("1,4020", "43;5750"), r"latitude '43;5750' illisible"),
        (("1 place du Capitole Toulouse", 43.5), r"donnez l'adresse seule, sans latitude"),
        ((1.402, [43.575]), r"latitude \[43.575\] \(list\) : attendu un nombre"),
        ((True, 43.575), r"longitude True \(bool\) : attendu un nombre"),
        ((1.402,), r"longitude 1.402 sans latitude"),
    ],
)
def test_check_refuses_unreadable_coordinates_in_french(real, args, message) -> None:
    with pytest.raises(InputError, match=message):
        territoires.check(*args, ref=real.ref)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,4020", r"latitude manquante après '1,4020'"),
        ("abc 43.5", r"longitude 'abc' illisible"),
        ("43°34'30\"N 1°24'07\"E", r"minutes, secondes ne sont pas lus.*1\.401944 43\.575\)"),
    ],
)
def test_check_refuses_text_meant_as_coordinates_before_geocoding(real, text, message) -> None:
    with pytest.raises(InputError, match=message):
        territoires.check(text, ref=real.ref, offline=True)


@pytest.mark.filterwarnings("ignore:contours QPV 2024 indisponibles")
def test_check_words_invalid_motifs_for_one_point_and_classify_for_a_file(real) -> None:
    row = territoires.check(43.5750, 1.4020, ref=real.ref)
    runs = territoires.check(500, 43, data_dir=real.data_dir, qpv_vintages=[2015, 2024])
    table = classify(points_table([43.5750], [1.4020]), real.ref)

    assert row["verdict"] == "invalide"
    assert row["motif"] == (
        "Entrée invalide : latitude et longitude semblent inversées (lon=43.575, lat=1.402) : "
        "donnez la longitude puis la latitude"
    )
    for vintage in (2015, 2024):
        assert runs[f"motif_{vintage}"].endswith("CRS erroné ? attendu : degrés décimaux")
    # The motifs of a classified table are unchanged: they name the line and the file.
    assert table["motif"].iloc[0] == (
        "Entrée invalide : ligne 1 : latitude et longitude semblent inversées "
        "(lon=43.575, lat=1.402) : corrigez le fichier"
    )


@pytest.mark.parametrize("precision", ["30", [30], True, -1, float("nan")])
def test_precision_that_is_not_metres_is_refused_in_french(real, precision) -> None:
    with pytest.raises(InputError, match=r"précision .* : attendu un nombre de mètres ≥ 0"):
        territoires.check(1.4020, 43.5750, ref=real.ref, precision=precision)


def test_input_columns_named_like_outputs_are_kept_with_a_suffix(real) -> None:
    table = points_table([1.4020], [43.5750], commune=["Saisie : Toulouse"], verdict=["à voir"])
    out = classify(table, real.ref)

    assert out["commune_entree"].tolist() == ["Saisie : Toulouse"]
    assert out["verdict_entree"].tolist() == ["à voir"]
    assert out["commune"].tolist() == ["Toulouse"]
    assert out["verdict"].tolist() == ["qpv"]
    assert list(table.columns) == ["lon", "lat", "commune", "verdict"]


def test_input_columns_already_suffixed_get_a_free_name(real) -> None:
    """Re-classifying a result: « verdict » and « verdict_entree » both kept, distinct."""
    table = points_table([1.4020], [43.5750], verdict=["ancien"], verdict_entree=["plus ancien"])
    out = classify(table, real.ref)

    assert out.columns.is_unique
    assert out["verdict_entree"].tolist() == ["plus ancien"]
    assert out["verdict_entree_2"].tolist() == ["ancien"]
    assert out["verdict"].tolist() == ["qpv"]


# ------------------------------------------- distances from the CGI, NPNRU list, presets

#: Toulouse: 348 m from QP031007 « Grand Mirail » (the nearest QPV) and 457 m from
#: QP031006 « Pradettes » (found on a 50 m grid of the real layer, Lambert-93).
BETWEEN_MIRAIL_AND_PRADETTES = (1.39048, 43.57445)
NPNRU_TEST_LIST = FIXTURES.parent / "npnru" / "liste_npnru_essai.csv"


def test_npnru_qpv_farther_than_the_nearest_makes_the_place_near(real) -> None:
    """500 m around a listed QPV even when an unlisted one, beyond 300 m, is nearer."""
    codes = loaders.load_npnru(NPNRU_TEST_LIST)
    assert codes == {"QP031006", "QP034010"}
    rules = preset().with_npnru(codes)
    ref = Reference.build(rules, real.qpv, real.communes)
    row = classify(points_table(*[[v] for v in BETWEEN_MIRAIL_AND_PRADETTES]), ref).iloc[0]

    assert row["verdict"] == "proximite_qpv" and row["near_qpv"]
    assert row["nearest_qpv_code"] == "QP031007"  # the nearest stays the nearest
    assert abs(row["distance_qpv_m"] - 348) <= 1
    motif = row["motif"]
    assert motif.startswith(
        "À proximité immédiate d'un QPV : à 457 m du QPV QP031006 « Pradettes », en "
        "renouvellement urbain (NPNRU), à 500 m ou moins : proximité immédiate (500 m : QPV en "
        "renouvellement urbain (NPNRU), Code général des impôts, art. 278 sexies ; géographie "
        "prioritaire 2015) ; à 348 m du QPV le plus proche QP031007 « Grand Mirail »"
    )
    # without the list, 300 m everywhere: not near, and Toulouse is a large urban centre
    plain = classify(points_table(*[[v] for v in BETWEEN_MIRAIL_AND_PRADETTES]), real.ref)
    assert plain.iloc[0]["verdict"] == "non_eligible"
    assert "au-delà de 300 m (300 m : Code général des impôts" in plain.iloc[0]["motif"]


def test_npnru_nearest_listed_and_unlisted(real) -> None:
    point = points_table(*[[v] for v in BETWEEN_MIRAIL_AND_PRADETTES])
    nearest_listed = Reference.build(preset().with_npnru(["QP031007"]), real.qpv, real.communes)
    row = classify(point, nearest_listed).iloc[0]
    assert row["verdict"] == "proximite_qpv"
    assert (
        "à 348 m du QPV QP031007 « Grand Mirail », en renouvellement urbain (NPNRU)"
        in (row["motif"])
    )
    assert "QPV le plus proche" not in row["motif"]
    elsewhere = Reference.build(preset().with_npnru(["QP034010"]), real.qpv, real.communes)
    row = classify(point, elsewhere).iloc[0]
    assert row["verdict"] == "non_eligible"
    assert "au-delà de 300 m, et à plus de 500 m de tout QPV de la liste NPNRU" in row["motif"]


def test_npnru_list_matching_no_loaded_qpv_warns(real) -> None:
    with pytest.warns(UserWarning, match="aucun des 1 codes de la liste NPNRU"):
        Reference.build(preset().with_npnru(["QP075001"]), real.qpv, real.communes)


def test_load_npnru_inputs(tmp_path: Path) -> None:
    assert loaders.load_npnru([" qp031006", "QN03101M"]) == {"QP031006", "QN03101M"}
    bare = tmp_path / "codes.txt"
    bare.write_text("QP031006\n\nQP034010\n", encoding="utf-8")
    assert loaders.load_npnru(bare) == {"QP031006", "QP034010"}
    with pytest.raises(territoires.InputError, match=r"ligne 3 : 'QX12' ; ligne 4 : ''"):
        loaders.load_npnru(FIXTURES.parent / "npnru" / "liste_npnru_invalide.csv")
    with pytest.raises(territoires.InputError, match="élément 2 : '31'"):
        loaders.load_npnru(["QP031006", 31])
    header_only = tmp_path / "vide.csv"
    header_only.write_text("code_qp;nom_qp\n", encoding="utf-8")
    with pytest.raises(territoires.InputError, match="aucun code QPV"):
        loaders.load_npnru(header_only)
    other = tmp_path / "autre.csv"
    other.write_text("quartier;ville\nPradettes;Toulouse\n", encoding="utf-8")
    with pytest.raises(territoires.InputError, match="colonne des codes QPV introuvable"):
        loaders.load_npnru(other)
    with pytest.raises(territoires.DataNotFoundError):
        loaders.load_npnru(data_dir=tmp_path)  # the ANRU list is not in the mirror


#: Representative points (inside the commune) and the distance cases, with the verdict
#: each preset gives: the presets differ on the distance and on the urban reading.
PRESET_POINTS = {
    "pibrac": (1.262126, 43.616237),  # Toulouse Métropole, density level 3
    "perpignan": (2.921178, 42.706479),  # density level 1, communauté urbaine
    "albi": (2.149706, 43.932580),  # density level 2, communauté d'agglomération
    "empalot_400m": (1.4332, 43.57269),  # Toulouse, 400 m from QP031010
}
PRESET_VERDICTS = {
    "fabriques-2019": {
        "pibrac": "hors_grands_centres_urbains",
        "perpignan": "non_eligible",
        "albi": "hors_grands_centres_urbains",
        "empalot_400m": "non_eligible",
    },
    "fabriques-2019-metropoles": {
        "pibrac": "non_eligible",
        "perpignan": "hors_grands_centres_urbains",
        "albi": "hors_grands_centres_urbains",
        "empalot_400m": "non_eligible",
    },
    "fabriques-2019-npnru-500m": {
        "pibrac": "hors_grands_centres_urbains",
        "perpignan": "non_eligible",
        "albi": "hors_grands_centres_urbains",
        "empalot_400m": "proximite_qpv",
    },
}


@pytest.mark.parametrize("name", sorted(PRESET_VERDICTS))
def test_2015_presets_on_real_data(real, name) -> None:
    rules = preset(name)
    ref = Reference.build(rules, real.qpv, real.communes)
    lon, lat = zip(*PRESET_POINTS.values(), strict=True)
    out = classify(points_table(lon, lat), ref)

    assert dict(zip(PRESET_POINTS, out["verdict"], strict=True)) == PRESET_VERDICTS[name]
    assert out.attrs["regles"]["nom"] == name
    assert out["motif"].str.contains(f"(règle « {rules.urban.name} »)", regex=False).all()
    assert out["motif"].str.contains(rules.near_basis, regex=False).all()


@pytest.mark.parametrize("name", ["fabriques-2019-qpv2024", "fabriques-2019-qpv2024-metropoles"])
def test_2024_presets_on_real_communes(real, name, tmp_path) -> None:
    """QPV 2024 polygons from the national extract fixture, communes from the mirror."""
    (tmp_path / "qpv").mkdir()
    (tmp_path / "qpv" / "QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson").write_bytes(
        (FIXTURES.parent / "qpv2024_national_extrait.geojson").read_bytes()
    )
    qpv = loaders.load_qpv(2024, data_dir=tmp_path)
    ref = Reference.build(preset(name), qpv, real.communes)
    points = {"grand_mirail": (1.405, 43.574), **PRESET_POINTS}
    lon, lat = zip(*points.values(), strict=True)
    out = classify(points_table(lon, lat), ref)
    verdicts = dict(zip(points, out["verdict"], strict=True))

    assert verdicts["grand_mirail"] == "qpv"
    assert (
        out["motif"].iloc[0].startswith("Dans un quartier prioritaire (QPV) : dans le QPV QN03101M")
    )
    metropoles = name.endswith("metropoles")
    assert verdicts["pibrac"] == ("non_eligible" if metropoles else "hors_grands_centres_urbains")
    assert verdicts["perpignan"] == (
        "hors_grands_centres_urbains" if metropoles else "non_eligible"
    )
    assert verdicts["albi"] == "hors_grands_centres_urbains"
    assert "géographie prioritaire 2024" in out["motif"].iloc[1]


def test_load_npnru_from_a_workbook_with_a_title(tmp_path: Path) -> None:
    path = tmp_path / "npnru.xlsx"
    sheet = pd.DataFrame(
        [
            ["Liste des quartiers NPNRU", ""],
            ["", ""],
            ["Code_QP", "Nom"],
            ["QP031006", "Pradettes"],
            ["QP0340", "Tronqué"],
        ]
    )
    sheet.to_excel(path, header=False, index=False)
    with pytest.raises(territoires.InputError, match="ligne 5 : 'QP0340'"):
        loaders.load_npnru(path)
    sheet.iloc[:4].to_excel(path, header=False, index=False)
    assert loaders.load_npnru(path) == {"QP031006"}


@pytest.mark.parametrize(
    ("metres", "verdict", "words"),
    [
        (300.4, "non_eligible", "à plus de 300 m du QPV le plus proche QP031010"),
        (300.0, "proximite_qpv", "à 300 m du QPV le plus proche QP031010"),
        (299.6, "proximite_qpv", "à 300 m du QPV le plus proche QP031010"),
    ],
)
def test_motif_never_says_300_m_beyond_300_m(real, metres, verdict, words):
    """A place 300.4 m from a QPV is beyond 300 m: its motif says « à plus de 300 m »."""
    empalot = real.qpv[real.qpv["code_qpv"] == "QP031010"].to_crs(2154).geometry.iloc[0]
    centre = empalot.centroid
    vertex = max(shapely.get_coordinates(empalot), key=lambda xy: xy[1])  # northernmost
    direction = (vertex - np.array([centre.x, centre.y])) / np.hypot(
        *(vertex - [centre.x, centre.y])
    )
    low, high = 0.0, 1000.0  # along the ray from the northernmost vertex, distance = metres
    for _ in range(100):
        middle = (low + high) / 2
        point = shapely.Point(*(vertex + direction * middle))
        low, high = (middle, high) if empalot.distance(point) < metres else (low, middle)
    assert abs(empalot.distance(point) - metres) < 1e-6
    lon, lat = Transformer.from_crs(2154, 4326, always_xy=True).transform(point.x, point.y)
    row = territoires.classify(pd.DataFrame({"lon": [lon], "lat": [lat]}), ref=real.ref).iloc[0]
    assert row["nearest_qpv_code"] == "QP031010"
    assert row["verdict"] == verdict
    assert words in row["motif"]


def test_place_near_a_departement_without_qpv_loaded(real) -> None:
    """Villeneuve-lès-Avignon (30, in the Occitanie layer) beside Avignon (84, not in it):
    48 m from Avignon, a Vaucluse QPV could be near, so the place is ``indetermine``, not
    ``non_eligible`` « à 22 km du QPV le plus proche »; 1.7 km away, it is decided."""
    communes = real.communes.set_index("code_insee").to_crs(L93).geometry
    villeneuve, avignon = communes["30351"], communes["84007"]
    border, _ = nearest_points(villeneuve, avignon)
    centre = villeneuve.centroid
    inward = np.array([centre.x - border.x, centre.y - border.y])
    inward /= np.hypot(*inward)
    points = [shapely.Point(*(np.array([border.x, border.y]) + inward * k)) for k in (60, 3000)]
    assert [round(avignon.distance(p)) for p in points] == [48, 1733]
    lon, lat = Transformer.from_crs(L93, 4326, always_xy=True).transform(
        [p.x for p in points], [p.y for p in points]
    )
    ref = Reference.build(preset(urban="uu-moins-200k"), real.qpv, real.communes)
    near, far = classify(points_table(lon, lat), ref).itertuples()
    assert near.commune == far.commune == "Villeneuve-lès-Avignon"
    assert near.verdict == "indetermine" and pd.isna(near.near_qpv)
    assert pd.isna(near.distance_qpv_m) and pd.isna(near.nearest_qpv_code)
    assert "le département 84 est à 300 m ou moins du lieu mais absent de la couche" in near.motif
    assert far.verdict == "non_eligible" and far.near_qpv == False  # noqa: E712 (not NA)
    assert "à 22,0 km du QPV le plus proche QP030013" in far.motif
