"""The one place that chooses coordinate reference systems.

Distances are measured in metres in the legal projected CRS of each territory:
Lambert-93 (EPSG:2154) for métropole and Corsica, RGAF09 / UTM 20N (EPSG:5490) for the
Antilles, RGFG95 / UTM 22N (EPSG:2972) for Guyane, RGR92 / UTM 40S (EPSG:2975) for
La Réunion and RGM04 / UTM 38S (EPSG:4471) for Mayotte. Geographic coordinates are
WGS84 longitude/latitude (EPSG:4326). Each territory also says where its outline is a
land border rather than a coast (:class:`LandBorder`), so that the engine never attaches
a point on foreign soil to the nearest French commune.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np

from ._errors import InputError, UnknownNameError

#: CRS of every loaded layer and of longitude/latitude input.
GEOGRAPHIC = "EPSG:4326"


@dataclass(frozen=True)
class LandBorder:
    """A stretch of a territory's outline shared with a foreign country (not a coast).

    The stretch is the part of the outline of the territory's communes (their union)
    between the points nearest to ``start`` and ``end``, on the side holding the point
    nearest to ``via``; it is extended by :data:`BORDER_EXTENSION_M` at both ends, so
    that imprecise end points never leave a foreign shore uncovered.

    Attributes
    ----------
    name : str
        Neighbouring countries, for messages.
    start, end : tuple of float
        Longitude and latitude where the border meets the sea (or the river mouth).
    via : tuple of float
        A point beside the border, to choose which of the two arcs is the border.
    """

    name: str
    start: tuple[float, float]
    end: tuple[float, float]
    via: tuple[float, float]


#: Metres added to each end of a :class:`LandBorder`, along the coast.
BORDER_EXTENSION_M: float = 2000.0


@dataclass(frozen=True)
class Territory:
    """A territory with its own legal projected CRS.

    Attributes
    ----------
    name : str
        Short identifier (``metropole``, ``antilles``, ``guyane``, ``reunion``, ``mayotte``).
    label : str
        French name for messages.
    epsg : int
        Legal projected CRS, in metres.
    departements : tuple of str
        Département codes of the territory (empty for métropole: every other code).
    boxes : tuple of (lon_min, lat_min, lon_max, lat_max)
        Generous bounding boxes in longitude/latitude, used to route points.
    land_borders : tuple of LandBorder
        Where the territory touches foreign land (the rest of its outline is coast);
        foreign enclaves (Llívia) are the holes of its communes' union.
    """

    name: str
    label: str
    epsg: int
    departements: tuple[str, ...]
    boxes: tuple[tuple[float, float, float, float], ...]
    land_borders: tuple[LandBorder, ...] = ()


TERRITORIES: tuple[Territory, ...] = (
    Territory(
        "metropole",
        "France métropolitaine",
        2154,
        (),
        ((-5.8, 41.2, 9.9, 51.3),),
        (
            LandBorder(
                "Belgique, Luxembourg, Allemagne, Suisse, Italie",
                (2.5460, 51.0890),  # Bray-Dunes / La Panne
                (7.5295, 43.7840),  # Menton / Vintimille
                (7.5885, 47.5596),  # Bâle
            ),
            LandBorder(
                "Monaco",
                (7.4125, 43.7260),  # Cap-d'Ail / Fontvieille
                (7.4395, 43.7530),  # Roquebrune-Cap-Martin / Larvotto
                (7.4250, 43.7450),
            ),
            LandBorder(
                "Espagne, Andorre",
                (3.1745, 42.4345),  # Cerbère / Portbou
                (-1.7870, 43.3745),  # embouchure de la Bidassoa
                (1.6000, 42.6000),  # Andorre
            ),
        ),
    ),
    Territory(
        "antilles",
        "Guadeloupe et Martinique",
        5490,
        ("971", "972"),
        ((-61.9, 15.8, -60.9, 16.6), (-61.3, 14.3, -60.7, 14.95)),
    ),
    Territory(
        "guyane",
        "Guyane",
        2972,
        ("973",),
        ((-54.7, 2.0, -51.5, 5.9),),
        (
            LandBorder(
                "Suriname, Brésil",
                (-53.9800, 5.7500),  # embouchure du Maroni
                (-51.6300, 4.3000),  # embouchure de l'Oyapock
                (-53.0000, 2.2000),
            ),
        ),
    ),
    Territory("reunion", "La Réunion", 2975, ("974",), ((55.1, -21.5, 55.9, -20.8),)),
    Territory("mayotte", "Mayotte", 4471, ("976",), ((44.9, -13.1, 45.35, -12.5),)),
)
_BY_NAME = {territory.name: territory for territory in TERRITORIES}
#: Territory names by position in :data:`TERRITORIES` plus one, ``""`` first (none).
_NAMES = np.array(["", *_BY_NAME], dtype=object)


def territory(name: str) -> Territory:
    """Return the territory called ``name``.

    Raises
    ------
    UnknownNameError
        With the list of known names.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownNameError(
            f"territoire inconnu {name!r} ; connus : {', '.join(_BY_NAME)}"
        ) from None


def territory_of_departement(dep: str) -> Territory:
    """Return the territory of a département code (``"75"``, ``"2A"``, ``"974"``…)."""
    for candidate in TERRITORIES[1:]:
        if dep in candidate.departements:
            return candidate
    return TERRITORIES[0]


def metric_crs(dep: str) -> int:
    """Return the EPSG code of the legal projected CRS for a département.

    Parameters
    ----------
    dep : str
        Département code, e.g. ``"31"``, ``"2B"``, ``"973"``.

    Returns
    -------
    int
        2154 for métropole and Corsica, else the local overseas CRS.
    """
    return territory_of_departement(dep).epsg


def territory_positions(departements: np.ndarray | list[str]) -> np.ndarray:
    """Vectorised :func:`territory_of_departement`: positions in :data:`TERRITORIES`."""
    deps = np.asarray(departements, dtype=object)
    positions = np.zeros(deps.shape, dtype=np.int8)
    for position, candidate in enumerate(TERRITORIES[1:], start=1):
        positions[np.isin(deps, candidate.departements)] = position
    return positions


def territory_names(departements: np.ndarray | list[str]) -> np.ndarray:
    """Vectorised :func:`territory_of_departement`, returning territory names."""
    return names_of(territory_positions(departements))


def names_of(positions: np.ndarray) -> np.ndarray:
    """Territory names (object array) of positions in :data:`TERRITORIES`, ``""`` for -1."""
    return _NAMES[np.asarray(positions, dtype=np.intp) + 1]


def locate_positions(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Position in :data:`TERRITORIES` of each longitude/latitude pair, -1 when outside all.

    Parameters
    ----------
    lon, lat : numpy.ndarray
        WGS84 coordinates in degrees; NaN gives -1.

    Returns
    -------
    numpy.ndarray of int8
        Small integers, compared and converted to text far faster than names.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    positions = np.full(lon.shape, -1, dtype=np.int8)
    for position, candidate in enumerate(TERRITORIES):
        inside = np.zeros(lon.shape, dtype=bool)
        for lon_min, lat_min, lon_max, lat_max in candidate.boxes:
            inside |= (lon >= lon_min) & (lon <= lon_max) & (lat >= lat_min) & (lat <= lat_max)
        positions[inside & (positions < 0)] = position  # the first territory listed wins
    return positions


def locate(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Return the territory name of each longitude/latitude pair, ``""`` when outside all.

    Parameters
    ----------
    lon, lat : numpy.ndarray
        WGS84 coordinates in degrees; NaN gives ``""``.

    Returns
    -------
    numpy.ndarray of str
    """
    return names_of(locate_positions(lon, lat))


def to_metric(frame: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    """Project a GeoDataFrame to the metric CRS of territory ``name``.

    Raises
    ------
    InputError
        When the frame has no CRS: it is never guessed.
    """
    if frame.crs is None:
        raise InputError("la couche n'a pas de CRS déclaré ; il n'est jamais deviné")
    return frame.to_crs(epsg=territory(name).epsg)
