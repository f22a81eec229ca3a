"""The spatial engine: reference layers, point lookups and the classification of a frame.

:class:`Reference` holds the QPV and communes of every territory indexed for bulk
queries (STRtree for containment, k-d tree of bounding circles for the nearest QPV).
:func:`classify_frame` classifies places already read by
:func:`territoires.places.read_places` in two steps, with no Python loop over rows:
:func:`locate` routes each point to its territory, projects it to the territory's legal
metric CRS and finds its commune, the QPV containing it and the nearest QPV with its
distance; :func:`assemble` turns these positions into the output columns, the verdict
(:func:`territoires.rules.decide`) and the French motif (:mod:`territoires.motifs`).
"""

from __future__ import annotations

import itertools
import threading
import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import Transformer
from shapely.ops import substring

from . import catalogue, crs, french, loaders, motifs, places, prepared, qpv_reach
from ._arrow import scattered, series, text
from ._errors import DataNotFoundError, DownloadError
from ._gc import paused
from .grid import CELL_DEGREES, Grid
from .rules import VERDICTS, Rules, decide, preset

#: A point outside every (simplified) commune boundary but closer than this to one is
#: attached to the nearest commune, with a note in the motif: published boundaries are
#: generalised, so harbours and shore points may fall just outside them. Never across a
#: land border: a point whose nearest French outline is a border with a foreign country
#: (:attr:`territoires.crs.Territory.land_borders`, or a foreign enclave) is abroad,
#: whatever its distance.
COMMUNE_TOLERANCE_M: float = 1000.0
#: Metres of slack when comparing a point's distance to the land border with its
#: distance to the nearest commune (equal when the nearest outline point is the border).
_BORDER_SLACK_M: float = 1.0
#: Holes of a territory's communes' union larger than this are foreign enclaves (Llívia);
#: smaller ones are gaps between simplified outlines.
_ENCLAVE_M2: float = 1e6

#: Suffix given to an input column that bears the name of an output column (e.g. an
#: input ``commune`` column comes out as ``commune_entree``): nothing is dropped; the
#: same as for the columns ``read_places`` adds (:func:`territoires.places.suffixed`).
INPUT_SUFFIX = places.INPUT_SUFFIX

#: Columns added by :func:`classify_frame`, in order, before the geometry.
OUTPUT_COLUMNS = [
    "lon",
    "lat",
    "precision_m",
    "localisation",
    "territoire",
    "qpv_code",
    "qpv_nom",
    "in_qpv",
    "distance_qpv_m",
    "nearest_qpv_code",
    "near_qpv",
    "qpv_a_verifier",
    "code_insee",
    "commune",
    "dep",
    "reg",
    "densite7",
    "cateaav2020",
    "hors_grands_centres_urbains",
    "verdict",
    "motif",
]

#: Points of one territory in one batch from which :func:`locate` builds the commune grid
#: (a few seconds, once per reference) rather than testing every point exactly.
GRID_MIN_POINTS: int = 50_000

#: Points from which :func:`nearest_polygons` builds the k-d tree of bounding circles
#: (and imports scipy) rather than asking GEOS's STRtree for each point.
NEAREST_INDEX_MIN_POINTS: int = 1_000

#: Candidate polygons examined per point by :func:`nearest_polygons` before falling back.
NEAREST_CANDIDATES: int = 8

#: Pieces each polygon's outline is cut into by :attr:`Layer.pieces`, so that
#: :func:`nearest_polygons` measures a point against a few of them, not every segment.
NEAREST_PIECES: int = 12

#: Segments per piece of a land border in :attr:`Layer.border_pieces`.
BORDER_PIECE_SEGMENTS: int = 8


class Layer:
    """Reference polygons of one territory, indexed for containment and for distances.

    Containment is tested on the published EPSG:4326 polygons, against the points as
    given; most points of a large batch are answered by a :class:`~territoires.grid.Grid`
    of cells wholly inside one polygon, the others by an STRtree query. Distances are
    measured in the territory's legal metric CRS. To find the nearest polygon quickly,
    each polygon is summarised by its minimum bounding circle (centre in a k-d tree,
    radius): ``|p - c| - r`` and ``|p - c| + r`` bound its distance from below and
    above, so exact distances are computed only for the few polygons that can still be
    the nearest (see :func:`nearest_polygons`).

    Indexes are built on first use. A pickled layer keeps its polygons as WKB, packed
    in one buffer per CRS (decoded on first use: a single check answered by the grid
    decodes none), and its grid when built, so that a persisted reference loads fast.

    Parameters
    ----------
    rows : numpy.ndarray of int
        Positions of the polygons in the reference table.
    geometries : numpy.ndarray of shapely geometries
        The polygons in EPSG:4326.
    metric_geometries : numpy.ndarray of shapely geometries
        The same polygons in the territory's metric CRS.
    territory : str
        Name of the territory (locates its land borders, see :attr:`land_border`).
    """

    def __init__(
        self,
        rows: np.ndarray,
        geometries: np.ndarray,
        metric_geometries: np.ndarray,
        territory: str = "",
    ) -> None:
        self.rows = rows
        self.territory = territory
        self.__dict__["geometries"] = geometries
        self.__dict__["metric_geometries"] = metric_geometries
        self._lock = threading.Lock()

    @classmethod
    def build(cls, frame: gpd.GeoDataFrame, rows: np.ndarray, territory: str) -> Layer:
        """Index the polygons of ``frame`` (EPSG:4326) at reference positions ``rows``."""
        return cls(
            rows=rows,
            geometries=frame.geometry.to_numpy(),
            metric_geometries=crs.to_metric(frame, territory).geometry.to_numpy(),
            territory=territory,
        )

    @cached_property
    def geometries(self) -> np.ndarray:
        """The polygons in EPSG:4326 (decoded from WKB after unpickling)."""
        return _unpack_wkb(*self._wkb[0])

    @cached_property
    def metric_geometries(self) -> np.ndarray:
        """The polygons in the metric CRS (decoded from WKB after unpickling)."""
        return _unpack_wkb(*self._wkb[1])

    @cached_property
    def tree(self) -> shapely.STRtree:
        """STRtree of the EPSG:4326 polygons."""
        return shapely.STRtree(self.geometries)

    @cached_property
    def metric(self) -> shapely.STRtree:
        """STRtree of the metric polygons."""
        return shapely.STRtree(self.metric_geometries)

    @cached_property
    def land_border(self) -> shapely.Geometry:
        """Where the union of the polygons touches foreign land (metric lines).

        Computed on first use (about a second for the communes of métropole), only
        when a point falls outside every commune: see :func:`land_border`.
        """
        return land_border(self.metric_geometries, self.territory)

    @cached_property
    def border_pieces(self) -> tuple[shapely.STRtree, np.ndarray]:
        """STRtree of :attr:`land_border` cut into lines of :data:`BORDER_PIECE_SEGMENTS`
        segments (the same segments), and those lines: a point far from the border is
        then measured against none of them."""
        pieces = [
            shapely.LineString(coordinates[start : start + BORDER_PIECE_SEGMENTS + 1])
            for line in shapely.get_parts(self.land_border)
            for coordinates in [shapely.get_coordinates(line)]
            for start in range(0, len(coordinates) - 1, BORDER_PIECE_SEGMENTS)
        ]
        lines = np.array(pieces, dtype=object)
        return shapely.STRtree(lines), lines

    @cached_property
    def radii(self) -> np.ndarray:
        """Radii of the polygons' minimum bounding circles (metric).

        Computed on first use: only layers searched for their nearest polygon (the QPV)
        need the circles, not the communes.
        """
        return shapely.minimum_bounding_radius(self.metric_geometries)

    @cached_property
    def centres(self) -> Any:
        """k-d tree (``scipy.spatial.cKDTree``) of the bounding circles' centres (metric)."""
        from scipy.spatial import cKDTree  # slow to import, needed by QPV layers only

        centres = shapely.centroid(shapely.minimum_bounding_circle(self.metric_geometries))
        return cKDTree(np.column_stack([shapely.get_x(centres), shapely.get_y(centres)]))

    @cached_property
    def pieces(self) -> Pieces:
        """The polygons' outlines cut into :data:`NEAREST_PIECES` pieces each (metric).

        Computed on first use, with :attr:`centres`: see :class:`Pieces`.
        """
        return Pieces.cut(self.metric_geometries)

    @property
    def has_centres(self) -> bool:
        """Whether the k-d tree of :attr:`centres` is built."""
        return "centres" in self.__dict__

    @property
    def grid(self) -> Grid:
        """Grid of cells wholly inside one polygon (built once, on first use)."""
        with self._lock:
            if "_grid" not in self.__dict__:
                _, bottom, _, top = shapely.total_bounds(self.geometries)
                widest = max(abs(top), abs(bottom))
                # Degrees of longitude per metre at the widest latitude, tripled: far
                # cells are beyond COMMUNE_TOLERANCE_M whatever the projection's scale.
                span = 3 * COMMUNE_TOLERANCE_M / (111_000 * np.cos(np.radians(widest)))
                self._grid = Grid.build(
                    self.geometries,
                    lambda lon, lat: _containing(self, shapely.points(lon, lat)),
                    far=int(np.ceil(span / CELL_DEGREES)) + 1,
                )
        return self._grid

    @property
    def has_grid(self) -> bool:
        """Whether the grid is built (or was loaded with the layer)."""
        return "_grid" in self.__dict__

    def __getstate__(self) -> dict[str, Any]:
        """Polygons (packed WKB), rows, grid and land border if built; the rest is rebuilt."""
        wkb = self.__dict__.get("_wkb") or (
            _pack_wkb(self.geometries),
            _pack_wkb(self.metric_geometries),
        )
        state = {"rows": self.rows, "territory": self.territory, "_wkb": wkb}
        for prepared_index in ("_grid", "land_border"):
            if prepared_index in self.__dict__:
                state[prepared_index] = self.__dict__[prepared_index]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled layer (see :meth:`__getstate__`)."""
        self.__dict__.update(state)
        self._lock = threading.Lock()


@dataclass(frozen=True)
class Pieces:
    """Each polygon's rings cut into runs of consecutive segments, the same vertices.

    Row ``i`` of every table describes polygon ``i`` of a layer, column ``j`` its piece
    ``j``: each polygon has :data:`NEAREST_PIECES` columns, of which its rings share
    what they need (a ring has at least one piece); an unused column has an infinite
    centre. For a point outside a polygon, GEOS's distance to the polygon is the
    smallest over its segments of GEOS's point-to-segment distance: a line holding the
    nearest segment, its vertices in the ring's order, measures exactly the same
    (see :func:`nearest_polygons`).

    Attributes
    ----------
    x, y, radius : numpy.ndarray of float, shape (polygons, NEAREST_PIECES)
        A circle around each piece (its bounding box's centre, reaching its farthest
        vertex): ``|p - c| - radius`` bounds the piece's distance from below.
    windowed : numpy.ndarray of bool, shape (polygons, NEAREST_PIECES, NEAREST_PIECES)
        ``windowed[i, j, c]``: piece ``c`` of polygon ``i`` is in the window of piece ``j``.
    lines : numpy.ndarray of shapely.LineString, shape (polygons, NEAREST_PIECES)
        The pieces.
    windows : numpy.ndarray of shapely.LineString, shape (polygons, NEAREST_PIECES)
        Each piece with the pieces before and after it along its ring (the whole ring
        when the ring has at most three pieces), as one line.
    whole : numpy.ndarray of bool, shape (polygons,)
        Polygons not cut (empty, or too many rings for the pieces): measured whole.
    """

    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray
    windowed: np.ndarray
    lines: np.ndarray
    windows: np.ndarray
    whole: np.ndarray

    @classmethod
    def cut(cls, polygons: np.ndarray) -> Pieces:
        """Cut the rings of metric ``polygons`` (see the class description)."""
        shape = (len(polygons), NEAREST_PIECES)
        x, y, radius = np.full(shape, np.inf), np.full(shape, np.inf), np.zeros(shape)
        windowed = np.zeros((*shape, NEAREST_PIECES), dtype=bool)
        whole = np.ones(len(polygons), dtype=bool)
        cells, lines, windows = [], [], []
        for polygon, geometry in enumerate(polygons):
            rings = [
                shapely.get_coordinates(line)
                for part in shapely.get_parts(geometry)
                for line in shapely.get_rings(part)
            ]
            segments = sum(len(coordinates) - 1 for coordinates in rings)
            if not segments or 2 * len(rings) > NEAREST_PIECES:
                continue
            whole[polygon] = False
            # ceil(m / length) <= m / length + 1 pieces per ring of m segments: at most
            # the segments / length + rings <= NEAREST_PIECES columns in all
            length = -(-segments // (NEAREST_PIECES - len(rings)))
            column = itertools.count()
            for coordinates in rings:
                starts = range(0, len(coordinates) - 1, length)
                pieces = [coordinates[start : start + length + 1] for start in starts]
                for order, piece in enumerate(pieces):
                    cell = (polygon, next(column))
                    centre = (piece.min(axis=0) + piece.max(axis=0)) / 2
                    x[cell], y[cell] = centre
                    radius[cell] = np.hypot(*(piece - centre).T).max()
                    first = cell[1] - order  # the ring's first piece
                    around = (
                        range(len(pieces)) if len(pieces) <= 3 else (order - 1, order, order + 1)
                    )
                    windowed[(*cell, [first + other % len(pieces) for other in around])] = True
                    cells.append(cell)
                    lines.append(piece)
                    windows.append(
                        coordinates
                        if len(pieces) <= 3
                        else np.vstack(
                            [pieces[order - 1], piece[1:], pieces[(order + 1) % len(pieces)][1:]]
                        )
                    )
        at = tuple(np.array(cells, dtype=int).reshape(-1, 2).T)
        return cls(
            x=x,
            y=y,
            radius=radius,
            windowed=windowed,
            lines=_lines_at(shape, at, lines),
            windows=_lines_at(shape, at, windows),
            whole=whole,
        )


def _lines_at(shape: tuple[int, int], at: tuple[np.ndarray, ...], runs: list) -> np.ndarray:
    """A table of ``shape`` holding a line of each run of coordinates at ``at``, else None."""
    table = np.full(shape, None, dtype=object)
    if runs:
        sizes = [len(run) for run in runs]
        table[at] = shapely.linestrings(
            np.vstack(runs), indices=np.repeat(np.arange(len(runs)), sizes)
        )
    return table


def _pack_wkb(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geometries as their WKB end to end in one byte array, and where each one ends.

    Two arrays pickle (and unpickle) as two blocks of memory, where an array of WKB
    strings is one object per polygon. A missing geometry takes no byte.
    """
    wkb = [b"" if item is None else item for item in shapely.to_wkb(geometries)]
    ends = np.cumsum([len(item) for item in wkb], dtype=np.int64)
    return np.frombuffer(b"".join(wkb), dtype=np.uint8), ends


def _unpack_wkb(packed: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The geometries of :func:`_pack_wkb`, decoded."""
    data, bounds = packed.tobytes(), [0, *ends.tolist()]
    wkb = np.empty(len(ends), dtype=object)
    wkb[:] = [data[start:end] or None for start, end in itertools.pairwise(bounds)]
    return shapely.from_wkb(wkb)


@dataclass
class Reference:
    """QPV and communes prepared for classification, one STRtree per territory.

    Built once per rule set and reused (also broadcast once to every partition by the
    dask backend).

    Attributes
    ----------
    rules : Rules
        Rules the reference was prepared for.
    qpv : pandas.DataFrame
        QPV attributes (``code_qpv``, ``nom_qpv``, ``dep``), positional.
    communes : pandas.DataFrame
        Commune attributes plus ``hors_gcu`` and ``raison_urbaine`` from the urban rule.
    qpv_departements : frozenset of str or None
        Départements the QPV layer covers; ``None`` for the whole of France.
    sources : list of dict
        Provenance of every file read.
    npnru_layers : dict of str to Layer
        The QPV of ``rules.npnru`` alone, per territory (empty without a NPNRU list):
        searched for the nearest of them, which may lie farther than the nearest QPV
        and still be "à proximité immédiate" at its own, larger distance.
    hosts : pandas.DataFrame or None
        National list of QPV by commune of the rules' QPV vintage (output of
        :func:`territoires.loaders.load_qpv_communes`), used wherever the QPV layer does
        not cover a département; None when no such list is available.
    edge_layers : dict of str to Layer
        When the QPV layer covers only some départements: the communes of the others
        that lie within :data:`EDGE_REACH_M` of a covered commune, per territory. A QPV
        of theirs could be "à proximité immédiate" of a place of a covered département,
        which then cannot be found far from every QPV.
    """

    rules: Rules
    qpv: pd.DataFrame
    communes: pd.DataFrame
    qpv_departements: frozenset[str] | None
    sources: list[dict[str, Any]]
    qpv_layers: dict[str, Layer] = field(repr=False)
    commune_layers: dict[str, Layer] = field(repr=False)
    npnru_layers: dict[str, Layer] = field(default_factory=dict, repr=False)
    hosts: pd.DataFrame | None = field(default=None, repr=False)
    edge_layers: dict[str, Layer] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        """Column arrays taken per point, so that classification never loops in Python."""
        self.qpv_codes = self.qpv["code_qpv"].to_numpy(dtype=object)
        self.qpv_names = dict(
            zip(self.qpv["code_qpv"], self.qpv["nom_qpv"].fillna(""), strict=True)
        )
        self.qpv_text = {c: text(self.qpv[c]) for c in ("code_qpv", "nom_qpv")}
        self.qpv_threshold = self.rules.thresholds(self.qpv_codes)
        self.qpv_npnru = np.isin(self.qpv_codes, list(self.rules.npnru))
        communes = self.communes
        self.commune_qpv_covered = (
            np.ones(len(communes), dtype=bool)
            if self.qpv_departements is None
            else communes["dep"].isin(self.qpv_departements).to_numpy()
        )
        self.commune_text = {c: text(communes[c]) for c in ("code_insee", "nom", "dep", "reg")}
        self.texts = motifs.Texts(
            qpv_code=self.qpv_text["code_qpv"],
            qpv_nom=self.qpv_text["nom_qpv"],
            commune_dep=self.commune_text["dep"],
            commune_reasons=motifs.commune_reasons(communes["raison_urbaine"]),
        )
        # commune code as given by a place (reference code, or current COG code) → row
        codes = [communes["code_insee"]]
        if "code_actuel" in communes:
            codes.append(communes["code_actuel"])
        self.commune_rows = {}
        for column in codes:
            for row, code in enumerate(column.astype(str)):
                self.commune_rows.setdefault(code, row)
        self.commune_territory = np.full(len(communes), "", dtype=object)
        for name, layer in self.commune_layers.items():
            self.commune_territory[layer.rows] = name
        self.reach = (
            None
            if self.hosts is None
            else qpv_reach.Hosts.build(
                self.hosts,
                self.commune_rows,
                {
                    n: (layer.rows, layer.metric.geometries)
                    for n, layer in self.commune_layers.items()
                },
                self.rules.qpv_vintage,
            )
        )
        self.qpv_names_all = {**(self.reach.names if self.reach else {}), **self.qpv_names}
        self.commune_values = {
            column: pd.array(communes[source], dtype=dtype)
            for column, source, dtype in (
                ("hors_grands_centres_urbains", "hors_gcu", "boolean"),
                ("densite7", "densite7", "Int64"),
                ("cateaav2020", "cateaav2020", "Int64"),
            )
        }

    @cached_property
    def qpv_polygons(self) -> np.ndarray:
        """Metric polygon of every QPV, by reference row (gathered on first use)."""
        return _by_row(len(self.qpv), self.qpv_layers)

    @cached_property
    def commune_deps(self) -> np.ndarray:
        """Département code of every commune, by reference row (Python strings)."""
        return self.communes["dep"].to_numpy(dtype=object)

    @cached_property
    def commune_polygons(self) -> np.ndarray:
        """Metric polygon of every commune, by reference row (gathered on first use).

        A single check rarely needs them: a persisted reference is read without decoding
        the polygons of every commune.
        """
        return _by_row(len(self.communes), self.commune_layers)

    def __getstate__(self) -> dict[str, Any]:
        """Everything but what is derived on first use (polygons by row, pickled one by one)."""
        state = dict(self.__dict__)
        for derived in ("qpv_polygons", "commune_polygons", "commune_deps"):
            state.pop(derived, None)
        return state

    @classmethod
    def build(
        cls,
        rules: Rules,
        qpv: gpd.GeoDataFrame,
        communes: gpd.GeoDataFrame,
        *,
        layers: tuple[dict[str, Layer], dict[str, Layer]] | None = None,
        hosts: pd.DataFrame | None = None,
    ) -> Reference:
        """Prepare loaded layers (EPSG:4326 with a ``dep`` column) for ``rules``.

        Parameters
        ----------
        rules : Rules
            The rules to apply.
        qpv, communes : geopandas.GeoDataFrame
            Loaded layers (:func:`load_layers`).
        layers : tuple of dict, optional
            The QPV and commune :class:`Layer` objects by territory, when already
            indexed for other rules from the same frames (indexes and grids are then
            shared); indexed here when omitted.
        hosts : pandas.DataFrame, optional
            The national list of QPV by commune of the same vintage
            (:func:`territoires.loaders.load_qpv_communes`, with ``code_actuel``, the
            current code of each commune).
        """
        qpv_layers, commune_layers = layers or (_index_layers(qpv), _index_layers(communes))
        outside, reason = rules.urban.evaluate(communes)
        table = pd.DataFrame(communes.drop(columns="geometry")).reset_index(drop=True)
        table["hors_gcu"] = outside.to_numpy()
        table["raison_urbaine"] = reason.to_numpy()
        covered = loaders.qpv_departements(qpv)
        npnru = np.flatnonzero(qpv["code_qpv"].isin(list(rules.npnru)).to_numpy())
        if rules.npnru and not len(npnru):
            warnings.warn(
                f"aucun des {len(rules.npnru)} codes de la liste NPNRU n'est un QPV "
                f"{rules.qpv_vintage} de la couche chargée : la distance de "
                f"{french.number(rules.near_distance_m, None)} m s'applique partout",
                stacklevel=2,
            )
        return cls(
            rules=rules,
            qpv=pd.DataFrame(qpv.drop(columns="geometry")).reset_index(drop=True),
            communes=table,
            qpv_departements=None if covered is None else frozenset(covered),
            # a missing QPV layer (see load_layers) has a source without file: not listed
            sources=[source for source in qpv.attrs.get("sources", []) if "fichier" in source]
            + communes.attrs.get("sources", [])
            + (hosts.attrs.get("sources", []) if hosts is not None else []),
            qpv_layers=qpv_layers,
            commune_layers=commune_layers,
            npnru_layers=_index_layers(qpv.iloc[npnru], npnru),
            hosts=hosts,
            edge_layers=_edge_layers(communes, commune_layers, covered),
        )

    def prepare(self) -> Reference:
        """Build every index now rather than on first use.

        Commune grids, land borders and their pieces, k-d trees of the QPV bounding
        circles and the pieces of their outlines: what large batches use.
        :mod:`territoires.prepared` persists the grids and the land borders; the rest is
        rebuilt in a fraction of a second on first use.

        Returns
        -------
        Reference
            ``self``, ready for large batches and for :mod:`pickle`.
        """
        for layer in self.commune_layers.values():
            layer.grid  # noqa: B018 (built on first access)
            layer.land_border  # noqa: B018
            layer.border_pieces  # noqa: B018
        for layer in [*self.qpv_layers.values(), *self.npnru_layers.values()]:
            layer.centres  # noqa: B018
            layer.pieces  # noqa: B018
        return self


#: Metres from a covered commune within which the communes of départements the QPV
#: layer does not cover are kept in :attr:`Reference.edge_layers`: the largest
#: proximity distance of the rules (500 m) plus the precision of a geocoded address.
EDGE_REACH_M: float = 1_500.0


def _edge_layers(
    communes: gpd.GeoDataFrame, layers: dict[str, Layer], covered: Any
) -> dict[str, Layer]:
    """Layers of the uncovered communes near covered ones (see :class:`Reference`)."""
    if covered is None:
        return {}
    is_covered = communes["dep"].isin(list(covered)).to_numpy()
    found = []
    for layer in layers.values():
        inside = is_covered[layer.rows]
        if inside.all() or not inside.any():
            continue
        _, hits = layer.metric.query(
            layer.metric_geometries[inside], predicate="dwithin", distance=EDGE_REACH_M
        )
        rows = np.unique(layer.rows[hits])
        found.append(rows[~is_covered[rows]])
    edge = np.concatenate(found) if found else np.empty(0, dtype=np.int64)
    return _index_layers(communes.iloc[edge], edge) if len(edge) else {}


def _by_row(rows: int, layers: dict[str, Layer]) -> np.ndarray:
    """The metric polygons of ``layers`` at their reference rows (None elsewhere)."""
    polygons = np.full(rows, None, dtype=object)
    for layer in layers.values():
        polygons[layer.rows] = layer.metric_geometries
    return polygons


def _index_layers(frame: gpd.GeoDataFrame, positions: np.ndarray | None = None) -> dict[str, Layer]:
    """Project each territory's polygons to its metric CRS and index them.

    ``positions`` gives the reference row of each row of ``frame`` when ``frame`` is
    a subset of the reference (default: its own positions).
    """
    names = crs.territory_names(frame["dep"].astype(str).to_numpy())
    at = np.arange(len(frame)) if positions is None else np.asarray(positions)
    layers = {}
    for name in np.unique(names):
        rows = np.flatnonzero(names == name)
        layers[name] = Layer.build(frame.iloc[rows], at[rows], name)
    return layers


def _cache_key(data_dir: Path | None) -> Path | None:
    """The mirror folder actually read, resolved: one cache entry per real folder."""
    folder = catalogue.mirror_folder(data_dir)
    return folder.resolve() if folder is not None else None


@lru_cache(maxsize=2)
def _loaded(qpv_vintage: int, folder: Path | None) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    try:
        qpv = loaders.load_qpv(qpv_vintage, data_dir=folder)
    except (DataNotFoundError, DownloadError) as error:
        if _hosts(qpv_vintage, folder) is None:
            raise
        warnings.warn(
            f"contours QPV {qpv_vintage} indisponibles ({error}) : les questions QPV sont "
            f"tranchées par la liste nationale des QPV {qpv_vintage} par commune, ou restent "
            "à vérifier (QPV nommés dans le motif)",
            stacklevel=2,
        )
        qpv = gpd.GeoDataFrame(
            {column: pd.Series(dtype="string") for column in loaders.QPV_COLUMNS[:-1]},
            geometry=gpd.GeoSeries([], crs=crs.GEOGRAPHIC),
        )
        qpv.attrs = {
            "sources": [
                {
                    "jeu": f"qpv{qpv_vintage}",
                    "millesime": qpv_vintage,
                    "departements": [],
                    "absent": f"contours QPV {qpv_vintage} indisponibles : {error}",
                }
            ],
            "millesime_qpv": qpv_vintage,
        }
    return qpv, loaders.load_communes(data_dir=folder)


def load_layers(
    qpv_vintage: int, data_dir: Path | None = None
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """QPV and communes as loaded, shared by every rule set of the same QPV vintage.

    When the QPV contours of the vintage cannot be had (neither in the mirror nor in the
    cache, download impossible) but the national list of QPV by commune of that vintage
    can, the QPV layer is empty and covers no département, with a warning: every QPV
    question is then answered from the list (see :mod:`territoires.qpv_reach`), never
    aborted.

    Parameters
    ----------
    qpv_vintage : int
        QPV geography (2015 or 2024).
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.

    Returns
    -------
    tuple of geopandas.GeoDataFrame
        The QPV and the communes (EPSG:4326, ``attrs["sources"]`` set), cached per
        resolved mirror folder: after ``settings.data_dir`` changes, the new folder is read.

    Raises
    ------
    DataNotFoundError, DownloadError
        When the QPV contours are missing and no list of QPV by commune replaces them.
    """
    return _loaded(qpv_vintage, _cache_key(data_dir))


@lru_cache(maxsize=2)
def _hosts(qpv_vintage: int, folder: Path | None) -> pd.DataFrame | None:
    """The list of QPV by commune of a vintage with current commune codes, or None.

    The list is never required: without it, places outside the QPV contours loaded stay
    ``indetermine``, as they would without the list.
    """
    try:
        pairs = loaders.load_qpv_communes(qpv_vintage, data_dir=folder)
    except (DataNotFoundError, DownloadError):
        return None
    try:
        known = loaders.load_commune_codes(data_dir=folder).set_index("code")["code_insee"]
        pairs["code_actuel"] = pairs["code_insee"].map(known).astype("string")
    except DataNotFoundError:
        pairs["code_actuel"] = pairs["code_insee"]
    return pairs


@lru_cache(maxsize=2)
def _indexed(qpv_vintage: int, folder: Path | None) -> tuple[dict[str, Layer], dict[str, Layer]]:
    """Indexed layers of :func:`_loaded`, shared by every rule set (one grid per process)."""
    return tuple(_index_layers(frame) for frame in _loaded(qpv_vintage, folder))


@lru_cache(maxsize=8)
def _cached_reference(rules: Rules, folder: Path | None) -> Reference:
    def build() -> Reference:
        frames = _loaded(rules.qpv_vintage, folder)
        return Reference.build(
            rules,
            *frames,
            layers=_indexed(rules.qpv_vintage, folder),
            hosts=_hosts(rules.qpv_vintage, folder),
        )

    return prepared.load_or_build(rules, folder, lambda: build().prepare())


def reference(rules: Rules | None = None, data_dir: Path | None = None) -> Reference:
    """Return the prepared reference layers for ``rules``.

    Cached per rule set and per mirror folder, resolved (``../data`` and its absolute
    path share one entry): after ``settings.data_dir`` changes, the new folder is read.
    Also persisted in the user cache (see :mod:`territoires.prepared`): a new process
    reads it back in a fraction of a second while the sources, the rules and the
    package are unchanged.

    Parameters
    ----------
    rules : Rules, optional
        Defaults to :func:`territoires.rules.preset`.
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.
    """
    return _cached_reference(rules or preset(), _cache_key(data_dir))


@lru_cache(maxsize=8)
def transformer(territory: str) -> Transformer:
    return Transformer.from_crs(crs.GEOGRAPHIC, crs.territory(territory).epsg, always_xy=True)


def _metric_points(lon: np.ndarray, lat: np.ndarray, territory: str) -> np.ndarray:
    x, y = transformer(territory).transform(lon, lat)
    return shapely.points(x, y)


def _first_hit(n: int, hit_point: np.ndarray, hit_rows: np.ndarray) -> np.ndarray:
    """Smallest reference row hit by each point, -1 for none (independent of hit order)."""
    none = np.iinfo(np.int64).max
    found = np.full(n, none)
    np.minimum.at(found, hit_point, hit_rows)
    return np.where(found == none, -1, found)


def land_border(polygons: np.ndarray, territory: str) -> shapely.Geometry:
    """Stretches of the outline of ``polygons`` that are land borders, not coasts.

    Parameters
    ----------
    polygons : numpy.ndarray of shapely.Polygon
        A territory's communes in its metric CRS, sharing their edges (a coverage).
    territory : str
        Name of the territory, whose :attr:`~territoires.crs.Territory.land_borders`
        locate the borders on the outline.

    Returns
    -------
    shapely.Geometry
        Lines in the metric CRS (empty when the territory has no land border): each
        land border (the arc of the outline between its end points, on the side of its
        ``via`` point, extended by :data:`territoires.crs.BORDER_EXTENSION_M` at both
        ends) and the outline of every hole larger than 1 km² (a foreign enclave).
    """
    union = shapely.coverage_union_all(polygons)
    if not shapely.is_valid(union):  # not an exact coverage: the slower general union
        union = shapely.union_all(polygons)
    parts = shapely.get_parts(union)
    lines = [
        shapely.LineString(ring.coords)
        for part in parts
        for ring in part.interiors
        if shapely.Polygon(ring).area > _ENCLAVE_M2
    ]
    to_metric = transformer(territory)
    for border in crs.territory(territory).land_borders:
        start, end, via = (
            shapely.Point(to_metric.transform(*at)) for at in (border.start, border.end, border.via)
        )
        part = parts[np.argmin(shapely.distance(parts, via))]
        ring = shapely.LineString(part.exterior.coords)
        extension = crs.BORDER_EXTENSION_M
        low, high = sorted((ring.project(start), ring.project(end)))
        if low <= ring.project(via) <= high:
            pieces = [(low - extension, high + extension)]
        else:  # the border runs across the ring's first point
            pieces = [(high - extension, ring.length), (0.0, low + extension)]
        for first, last in pieces:
            lines.append(substring(ring, max(first, 0.0), min(last, ring.length)))
    return shapely.union_all(lines) if lines else shapely.GeometryCollection()


def _containing(layer: Layer, points: np.ndarray) -> np.ndarray:
    """Reference row of the polygon of ``layer`` containing each point, -1 if none.

    Many points (half as many as polygons or more): each (prepared) polygon is queried
    against a tree of the points, far faster than testing every point against
    unprepared polygons. Fewer points (those of a batch that the grid leaves): each
    point is queried against the layer's tree of polygons, which spares a pass over
    every polygon. Both test the same exact predicate, and a point on a shared boundary
    belongs to the polygon listed first in the reference either way.
    """
    if not len(points):  # e.g. every point answered by the grid: no polygon decoded
        return np.full(0, -1)
    if 2 * len(points) >= len(layer.rows):
        hit_poly, hit_point = shapely.STRtree(points).query(
            layer.geometries, predicate="intersects"
        )
    else:
        hit_point, hit_poly = layer.tree.query(points, predicate="intersects")
    return _first_hit(len(points), hit_point, layer.rows[hit_poly])


def _find_communes(
    points: np.ndarray, lon: np.ndarray, lat: np.ndarray, layer: Layer | None, territory: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Commune row of each point (-1 if none), its distance to it, and to a land border.

    Points in a cell of the layer's grid that lies wholly in one commune (or outside
    every commune) are answered by the grid, the others by :func:`_containing`; the grid
    is used once built, and built for a batch of at least :data:`GRID_MIN_POINTS`.
    A point outside every commune but within :data:`COMMUNE_TOLERANCE_M` of one is
    attached to the nearest, unless the nearest French outline is a land border (the
    point is then abroad, or in a foreign enclave); the search is skipped for points the
    grid knows to be farther away.

    Parameters
    ----------
    points : numpy.ndarray of shapely.Point
        The places in EPSG:4326.
    lon, lat : numpy.ndarray
        Their coordinates, projected only for the few points outside every commune.

    Returns
    -------
    commune : numpy.ndarray of int
    gap : numpy.ndarray of float
        Metres to the commune's simplified outline (0 inside).
    border : numpy.ndarray of float
        Metres to the land border for a point refused beside it, NaN elsewhere.
    """
    commune = np.full(len(points), -1)
    gap = np.zeros(len(points))
    border = np.full(len(points), np.nan)
    if layer is None:
        return commune, gap, border
    far = np.zeros(len(points), dtype=bool)
    if layer.has_grid or len(points) >= GRID_MIN_POINTS:
        known, commune, far = layer.grid.lookup(lon, lat)
        test = np.flatnonzero(~known)
        commune[test] = _containing(layer, points[test])
    else:
        commune = _containing(layer, points)
    missing = np.flatnonzero((commune < 0) & ~far)
    if len(missing):
        metric = _metric_points(lon[missing], lat[missing], territory)
        near_point, near_poly, distance = _nearest_within(
            layer.metric, layer.metric_geometries, metric, COMMUNE_TOLERANCE_M
        )
        # The border's distance where it can be the nearer outline (NaN elsewhere): the
        # smallest over its pieces within reach, GEOS's distance to the whole border.
        to_border = np.full(len(near_point), np.nan)
        border_tree, pieces = layer.border_pieces
        reach = COMMUNE_TOLERANCE_M + _BORDER_SLACK_M
        at, _, closest = _pairs_within(border_tree, pieces, metric[near_point], reach)
        first = _firsts(at)
        to_border[at[first]] = closest[first]
        abroad = to_border <= distance + _BORDER_SLACK_M  # NaN (no border near) is False
        kept = ~abroad
        commune[missing[near_point[kept]]] = layer.rows[near_poly[kept]]
        gap[missing[near_point[kept]]] = distance[kept]
        border[missing[near_point[abroad]]] = to_border[abroad]
    return commune, gap, border


def _pairs_within(
    tree: shapely.STRtree, geometries: np.ndarray, points: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (point, geometry) pair at most ``reach`` apart, with its exact distance,
    ordered by point, then distance, then geometry.

    One ``dwithin`` query (widened by a metre, so that no pair at exactly ``reach``
    hinges on the prepared test's rounding) and one vectorised ``shapely.distance``:
    GEOS's own distance, kept when at most ``reach`` as ``query_nearest`` keeps it.
    """
    point, item = tree.query(points, predicate="dwithin", distance=reach + 1.0)
    distance = shapely.distance(points[point], geometries[item])
    kept = distance <= reach
    order = np.lexsort((item[kept], distance[kept], point[kept]))
    return point[kept][order], item[kept][order], distance[kept][order]


def _firsts(point: np.ndarray) -> np.ndarray:
    """Whether each entry of a sorted array of point positions is its point's first."""
    return np.r_[True, point[1:] != point[:-1]] if len(point) else np.zeros(0, dtype=bool)


def _nearest_within(
    tree: shapely.STRtree, geometries: np.ndarray, points: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tree.query_nearest(points, max_distance=reach, return_distance=True)``, faster.

    GEOS searches the nearest geometry point by point; here the pairs within ``reach``
    come from :func:`_pairs_within` and the nearest is the closest pair. Where two
    geometries lie at exactly the smallest distance (a point at sea facing the vertex
    shared by two communes), ``query_nearest`` itself answers for that point: which of
    them it returns is its own choice, and it stays the answer.

    Parameters
    ----------
    tree : shapely.STRtree
        The tree of ``geometries``.
    geometries : numpy.ndarray of shapely geometries
    points : numpy.ndarray of shapely.Point
    reach : float
        Largest distance, as ``max_distance``.

    Returns
    -------
    point : numpy.ndarray of int
        Ascending positions of the points with a geometry within reach.
    nearest : numpy.ndarray of int
        Position of the nearest geometry in ``geometries``.
    distance : numpy.ndarray of float
        Distance to it.
    """
    point, item, distance = _pairs_within(tree, geometries, points, reach)
    start = np.flatnonzero(_firsts(point))
    following = np.minimum(start + 1, len(point) - 1)
    tied = (
        (following > start)
        & (point[following] == point[start])
        & (distance[following] == distance[start])
    )
    point, nearest, distance = point[start], item[start], distance[start]
    if tied.any():
        (at, chosen), exact = tree.query_nearest(
            points[point[tied]], max_distance=reach, return_distance=True, all_matches=False
        )
        nearest[np.flatnonzero(tied)[at]], distance[np.flatnonzero(tied)[at]] = chosen, exact
    return point, nearest, distance


#: (point, polygon) pairs measured on pieces at once by :func:`_outline_distances`
#: (their tables of piece bounds stay in the processor's cache).
_PAIRS_PER_BATCH: int = 8_192


def _outline_distances(
    layer: Layer,
    points: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    point: np.ndarray,
    polygon: np.ndarray,
    centre_distance: np.ndarray,
) -> np.ndarray:
    """``shapely.distance(points[point], layer.metric_geometries[polygon])``, bit for bit,
    mostly measured on a few pieces of each outline (:attr:`Layer.pieces`).

    A point within a metre of a polygon's bounding circle may lie inside the polygon
    (distance 0; also inside the metric polygon while outside the published EPSG:4326
    one), and a polygon left whole has no pieces: GEOS measures the whole polygon.
    Any other point lies outside the polygon, whose GEOS distance is then the smallest
    over its segments of the point-to-segment distance: first the window around the
    piece whose circle is nearest is measured, then every other piece whose circle is
    not farther than that distance (plus rounding). A piece left out holds no nearer
    segment, so the smallest measure is the polygon's.

    Parameters
    ----------
    layer : Layer
    points : numpy.ndarray of shapely.Point
        The metric points, with their coordinates ``x`` and ``y``.
    point, polygon : numpy.ndarray of int
        The pairs: positions in ``points`` and in the layer.
    centre_distance : numpy.ndarray of float
        Distance from each pair's point to its polygon's bounding-circle centre.
    """
    pieces = layer.pieces
    distance = np.empty(len(point))
    whole = (centre_distance <= layer.radii[polygon] + 1.0) | pieces.whole[polygon]
    distance[whole] = shapely.distance(
        points[point[whole]], layer.metric_geometries[polygon[whole]]
    )
    cut = np.flatnonzero(~whole)
    for start in range(0, len(cut), _PAIRS_PER_BATCH):
        pair = cut[start : start + _PAIRS_PER_BATCH]
        at, row = point[pair], polygon[pair]
        lower = pieces.x[row] - x[at, None]
        lower *= lower
        across = pieces.y[row] - y[at, None]
        lower += across * across
        np.sqrt(lower, out=lower)
        lower -= pieces.radius[row]
        middle = lower.argmin(axis=1)
        closest = shapely.distance(points[at], pieces.windows[row, middle])
        beyond = lower <= (closest + 1e-6 * (1.0 + closest))[:, None]
        beyond &= ~pieces.windowed[row, middle]
        near, column = np.nonzero(beyond)
        piece = pieces.lines[row[near], column]
        np.minimum.at(closest, near, shapely.distance(points[at[near]], piece))
        distance[pair] = closest
    return distance


def nearest_polygons(layer: Layer, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact nearest polygon of each metric point and its distance, vectorised.

    For the :data:`NEAREST_CANDIDATES` polygons whose bounding-circle centres are
    nearest, the distance lies in ``[|p-c| - r, |p-c| + r]``; the exact distance to the
    polygon of the nearest centre is computed first, then only for the candidates whose
    lower bound does not exceed it nor the smallest upper bound. Exact distances are
    GEOS's, bit for bit, mostly measured on a few pieces of the outlines
    (:func:`_outline_distances`).
    Polygons beyond the candidates are at least ``d_k - max(r)`` away: when that bound
    does not prove the answer, every polygon whose bounding box lies within the
    distance found (an STRtree query) and whose circle is not farther is measured too.
    Where two polygons lie at exactly the same distance, either may be named.

    Returns
    -------
    found : numpy.ndarray of int
        Position of the nearest polygon in the layer.
    distance : numpy.ndarray of float
        Metres to it (0 when inside).
    """
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    if n < NEAREST_INDEX_MIN_POINTS and not layer.has_centres:
        # A few points (a single check): GEOS's own search, without building (and
        # importing) the k-d tree.
        (hit, found), distance = layer.metric.query_nearest(
            shapely.points(x, y), return_distance=True, all_matches=False
        )
        return found[np.argsort(hit)], distance[np.argsort(hit)]
    k = min(NEAREST_CANDIDATES, len(layer.radii))
    centre_distance, candidate = layer.centres.query(
        np.column_stack([x, y]), k=list(range(1, k + 1))
    )
    radius = layer.radii[candidate]
    points = shapely.points(x, y)  # one per place, shared by its candidate pairs
    # The polygon of the nearest centre first: its exact distance bounds the others far
    # more tightly than the circles. A candidate is skipped only when its lower bound
    # exceeds that bound by more than rounding: ties are all measured, as before.
    distance = _outline_distances(
        layer, points, x, y, np.arange(n), candidate[:, 0], centre_distance[:, 0]
    )
    found = candidate[:, 0].copy()
    upper = np.minimum((centre_distance + radius).min(axis=1), distance)
    measured = centre_distance - radius <= (upper + 1e-6 * (1.0 + upper))[:, None]
    measured[:, 0] = False
    point, slot = np.nonzero(measured)
    _keep_nearest(
        found,
        distance,
        point,
        candidate[point, slot],
        _outline_distances(
            layer, points, x, y, point, candidate[point, slot], centre_distance[point, slot]
        ),
    )
    if k < len(layer.radii):
        unproven = np.flatnonzero(centre_distance[:, -1] - layer.radii.max() < distance)
        reach = distance[unproven] + 1e-6 * (1.0 + distance[unproven])
        ux, uy = x[unproven], y[unproven]
        near, polygon = layer.metric.query(
            shapely.box(ux - reach, uy - reach, ux + reach, uy + reach)
        )
        centre = layer.centres.data[polygon]
        gap = np.hypot(ux[near] - centre[:, 0], uy[near] - centre[:, 1])
        kept = gap - layer.radii[polygon] <= reach[near]
        point, polygon = unproven[near[kept]], polygon[kept]
        exact = _outline_distances(layer, points, x, y, point, polygon, gap[kept])
        _keep_nearest(found, distance, point, polygon, exact)
    return found, distance


def _keep_nearest(
    found: np.ndarray,
    distance: np.ndarray,
    point: np.ndarray,
    polygon: np.ndarray,
    exact: np.ndarray,
) -> None:
    """Lower ``distance`` (and name the polygon in ``found``) where a pair is nearer."""
    np.minimum.at(distance, point, exact)
    best = exact == distance[point]
    found[point[best]] = polygon[best]


def _find_qpv(
    points: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    layer: Layer | None,
    territory: str,
    codes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """QPV containing each point and nearest QPV with its distance in metres.

    Parameters
    ----------
    points : numpy.ndarray of shapely.Point
        The places in EPSG:4326 (containment is tested on the published polygons).
    lon, lat : numpy.ndarray
        Their coordinates, projected to the territory's metric CRS for distances.
    layer : Layer or None
        The territory's QPV.
    territory : str
        Territory name.
    codes : numpy.ndarray
        QPV codes by reference row.

    Returns
    -------
    containing : numpy.ndarray of object
        ``;``-joined codes of the QPV containing (or touching) the point, else None.
    nearest : numpy.ndarray of int
        Row of the nearest QPV (the first containing one when inside), -1 if none.
    distance : numpy.ndarray of float
        Metres to the nearest QPV boundary, 0 inside, NaN when the territory has none.
    """
    n = len(points)
    containing = np.full(n, None, dtype=object)
    nearest = np.full(n, -1)
    distance = np.full(n, np.nan)
    if layer is None or n == 0:
        return containing, nearest, distance
    hit_point, hit_poly = layer.tree.query(points, predicate="intersects")
    hit_rows = layer.rows[hit_poly]
    outside = np.ones(n, dtype=bool)
    if len(hit_point):
        containing = _joined_codes(n, hit_point, codes[hit_rows])
        inside = _first_hit(n, hit_point, hit_rows)
        outside = inside < 0
        nearest[~outside] = inside[~outside]
        distance[~outside] = 0.0
    far = np.flatnonzero(outside)
    x, y = transformer(territory).transform(lon[far], lat[far])
    found, distance[far] = nearest_polygons(layer, x, y)
    nearest[far] = layer.rows[found]
    return containing, nearest, distance


def _joined_codes(n: int, point: np.ndarray, code: np.ndarray) -> np.ndarray:
    """``;``-joined sorted codes hit by each of ``n`` points, None where none.

    Most points lie in one QPV: their code is taken as is; only the few in several
    (overlapping or touching QPV) are joined in Python.
    """
    joined = np.full(n, None, dtype=object)
    hits = np.bincount(point, minlength=n)
    alone = hits[point] == 1
    joined[point[alone]] = code[alone]
    several = np.flatnonzero(~alone)
    if len(several):
        groups = pd.Series(code[several]).groupby(point[several])
        shared = groups.agg(lambda group: ";".join(sorted(group)))
        joined[shared.index.to_numpy()] = shared.to_numpy()
    return joined


#: How the QPV question of a row is answered beyond its point: not at all (the point and
#: the QPV contours answer it), by the QPV contours around a commune, or by the national
#: list of QPV by commune (see :mod:`territoires.qpv_reach`).
BY_POINT, BY_CONTOURS, BY_LIST = range(3)


@dataclass
class Location:
    """Where each place of a frame lies, by reference row (output of :func:`locate`).

    Attributes
    ----------
    valid : numpy.ndarray of bool
        Usable point lying in (or within :data:`COMMUNE_TOLERANCE_M` of) a French
        commune, or usable row located by a commune of the reference.
    outside_france : numpy.ndarray of bool
        Point read without problem but found in no French commune.
    unknown_commune : numpy.ndarray of bool
        Row located by a commune code that no reference commune bears.
    by_commune : numpy.ndarray of bool
        Valid row located only by its commune (no point).
    territory : numpy.ndarray of int
        Position of the territory in :data:`territoires.crs.TERRITORIES`, -1 for none.
    points : numpy.ndarray of shapely.Point
        The places in EPSG:4326, ``None`` when not valid or located by commune.
    commune : numpy.ndarray of int
        Reference row of the commune, -1 when not valid.
    gap : numpy.ndarray of float
        Metres from the point to its commune's simplified boundary (0 inside).
    border : numpy.ndarray of float
        Metres to the land border of a point refused beside it (abroad), NaN elsewhere.
    checked : numpy.ndarray of bool
        The QPV layer covers the commune's département.
    containing : numpy.ndarray of object
        ``;``-joined codes of the QPV containing (or touching) the point, else None.
    nearest : numpy.ndarray of int
        Reference row of the nearest QPV (the first containing one when inside), -1 if
        none or not checked.
    distance : numpy.ndarray of float
        Metres to the nearest QPV (0 inside), NaN when not checked or no QPV.
    npnru : numpy.ndarray of int
        Reference row of the nearest QPV of the NPNRU list when it lies within its own
        distance (``rules.npnru_distance_m``), else -1.
    npnru_distance : numpy.ndarray of float
        Metres to that QPV, NaN when none.
    precision : numpy.ndarray of float
        Metres the true place may lie from the point (NaN: exact or unknown).
    boundary : numpy.ndarray of float
        For a point with a precision inside a QPV, metres to that QPV's boundary; NaN
        elsewhere.
    source : numpy.ndarray of int
        :data:`BY_POINT`, :data:`BY_CONTOURS` or :data:`BY_LIST`.
    own : numpy.ndarray of bool
        Row located by commune whose own commune hosts (or touches) a QPV.
    to_check : numpy.ndarray of object
        ``CODE « name », …`` of the QPV within reach (in the commune or within the
        proximity distance), None when there are none or the source is the point.
    edge : numpy.ndarray of object
        For a point neither in nor near a QPV loaded, the département the QPV layer does
        not cover that lies within the proximity distance (and precision) of the point,
        else None: a QPV of its could be near (see :attr:`Reference.edge_layers`).
    """

    valid: np.ndarray
    outside_france: np.ndarray
    unknown_commune: np.ndarray
    by_commune: np.ndarray
    territory: np.ndarray
    points: np.ndarray
    commune: np.ndarray
    gap: np.ndarray
    border: np.ndarray
    checked: np.ndarray
    containing: np.ndarray
    nearest: np.ndarray
    distance: np.ndarray
    npnru: np.ndarray
    npnru_distance: np.ndarray
    precision: np.ndarray
    boundary: np.ndarray
    source: np.ndarray
    own: np.ndarray
    to_check: np.ndarray
    edge: np.ndarray


def locate(frame: gpd.GeoDataFrame, ref: Reference) -> Location:
    """Find the commune, the containing and the nearest QPV of every place of ``frame``.

    Points are located as given; rows of ``read_places`` with a ``commune_donnee`` are
    located by that commune. Where a point's commune is not covered by the QPV contours,
    and for every row located by commune, the QPV within reach are found by
    :func:`territoires.qpv_reach.within_reach`.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        Output of ``read_places`` (``lon``, ``lat``, ``probleme``, ``territoire``, and
        ``precision_m``, ``commune_donnee`` when present); its geometry is ignored:
        points are built from ``lon``/``lat``.
    ref : Reference
        Prepared reference layers.

    Returns
    -------
    Location
    """
    n = len(frame)
    valid = frame["probleme"].isna().to_numpy(copy=True)
    names = [territory.name for territory in crs.TERRITORIES]
    territory = _territory_codes(frame["territoire"])
    lon = frame["lon"].to_numpy(dtype=float)
    lat = frame["lat"].to_numpy(dtype=float)
    precision = (
        frame["precision_m"].to_numpy(dtype=float, na_value=np.nan)
        if "precision_m" in frame
        else np.full(n, np.nan)
    )
    given = frame["commune_donnee"].astype("string") if "commune_donnee" in frame else None
    by_commune = valid & (np.zeros(n, dtype=bool) if given is None else given.notna().to_numpy())
    on_point = valid & ~by_commune
    points = np.full(n, None, dtype=object)
    points[on_point] = shapely.points(lon[on_point], lat[on_point])
    commune = np.full(n, -1)
    gap = np.zeros(n)
    border = np.full(n, np.nan)
    containing = np.full(n, None, dtype=object)
    nearest = np.full(n, -1)
    distance = np.full(n, np.nan)
    boundary = np.full(n, np.nan)
    checked = np.zeros(n, dtype=bool)
    npnru = np.full(n, -1)
    npnru_distance = np.full(n, np.nan)
    edge = np.full(n, None, dtype=object)
    for code, name in enumerate(names):
        rows = np.flatnonzero(on_point & (territory == code))
        if not len(rows):
            continue
        commune[rows], gap[rows], border[rows] = _find_communes(
            points[rows], lon[rows], lat[rows], ref.commune_layers.get(name), name
        )
        located = commune[rows] >= 0
        located[located] = ref.commune_qpv_covered[commune[rows][located]]
        subset = rows[located]
        checked[subset] = True
        containing[subset], nearest[subset], distance[subset] = _find_qpv(
            points[subset], lon[subset], lat[subset], ref.qpv_layers.get(name), name, ref.qpv_codes
        )
        npnru[subset], npnru_distance[subset] = _find_npnru(
            lon[subset], lat[subset], nearest[subset], distance[subset], ref, name
        )
        edge[subset] = _find_edge(subset, lon, lat, precision, nearest, distance, npnru, ref, name)
        inside = subset[(distance[subset] == 0) & np.isfinite(precision[subset])]
        if len(inside):
            polygons = ref.qpv_polygons[nearest[inside]]
            boundary[inside] = shapely.distance(
                _metric_points(lon[inside], lat[inside], name), shapely.boundary(polygons)
            )
    outside_france = on_point & (commune < 0)
    if given is not None and by_commune.any():
        commune[by_commune] = given[by_commune].map(ref.commune_rows).fillna(-1).astype(int)
    unknown_commune = by_commune & (commune < 0)
    by_commune &= ~unknown_commune
    territory[by_commune] = _territory_codes(ref.commune_territory[commune[by_commune]])
    checked[by_commune] = ref.commune_qpv_covered[commune[by_commune]]
    valid &= ~outside_france & ~unknown_commune
    checked &= valid
    commune[~valid] = -1
    nearest[~checked | by_commune] = -1
    distance[~checked | by_commune] = np.nan
    npnru[~checked | by_commune] = -1
    npnru_distance[~checked | by_commune] = np.nan
    points[~valid] = None
    return Location(
        valid=valid,
        outside_france=outside_france,
        unknown_commune=unknown_commune,
        by_commune=by_commune,
        territory=territory,
        points=points,
        commune=commune,
        gap=gap,
        border=border,
        checked=checked,
        containing=containing,
        nearest=nearest,
        distance=distance,
        npnru=npnru,
        npnru_distance=npnru_distance,
        precision=precision,
        boundary=boundary,
        edge=edge,  # set for checked points only, by _find_edge
        **_reach(ref, valid, by_commune, checked, commune, territory, points, precision),
    )


def _territory_codes(names: Any) -> np.ndarray:
    """Position of each territory name in :data:`territoires.crs.TERRITORIES`, -1 for none
    (``""`` or null): the inverse of :data:`territoires.places.TERRITORY_TEXT`."""
    codes = pc.index_in(text(names), value_set=places.TERRITORY_TEXT)
    return codes.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) - 1


def _find_edge(
    subset: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    precision: np.ndarray,
    nearest: np.ndarray,
    distance: np.ndarray,
    npnru: np.ndarray,
    ref: Reference,
    territory: str,
) -> np.ndarray:
    """The uncovered département within reach of each point of ``subset`` neither in nor
    near a QPV loaded (None elsewhere): see :attr:`Location.edge`."""
    found = np.full(len(subset), None, dtype=object)
    layer = ref.edge_layers.get(territory)
    if layer is None or not len(subset):
        return found
    threshold = np.full(len(subset), np.nan)
    has = nearest[subset] >= 0
    threshold[has] = ref.qpv_threshold[nearest[subset][has]]
    far = ~(distance[subset] <= threshold) & (npnru[subset] < 0)
    rows = np.flatnonzero(far)
    if not len(rows):
        return found
    at = subset[rows]
    reach = qpv_reach.distance(ref.rules) + np.nan_to_num(precision[at])
    hit_point, hit = layer.metric.query(
        _metric_points(lon[at], lat[at], territory),
        predicate="dwithin",
        distance=reach,
    )
    first = _first_hit(len(at), hit_point, hit)
    near = first >= 0
    found[rows[near]] = ref.commune_deps[layer.rows[first[near]]]
    return found


def _find_npnru(
    lon: np.ndarray,
    lat: np.ndarray,
    nearest: np.ndarray,
    distance: np.ndarray,
    ref: Reference,
    territory: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest QPV of the NPNRU list within its own distance, for points not yet near.

    The nearest QPV decides first: when it is itself on the list, it is the answer.
    Only points farther than ``rules.near_distance_m`` from every QPV are searched in
    the territory's NPNRU layer, whose nearest QPV may lie farther than the nearest QPV
    and still within ``rules.npnru_distance_m``.

    Returns
    -------
    row : numpy.ndarray of int
        Reference row of that QPV, -1 when none is within its distance.
    metres : numpy.ndarray of float
        Distance to it, NaN when none.
    """
    row = np.full(len(lon), -1)
    metres = np.full(len(lon), np.nan)
    if not ref.rules.npnru:
        return row, metres
    known = nearest >= 0
    own = np.zeros(len(lon), dtype=bool)
    own[known] = ref.qpv_npnru[nearest[known]] & (distance[known] <= ref.rules.npnru_distance_m)
    row[own], metres[own] = nearest[own], distance[own]
    layer = ref.npnru_layers.get(territory)
    search = np.flatnonzero(known & ~own & (distance > ref.rules.near_distance_m))
    if layer is None or not len(search):
        return row, metres
    x, y = transformer(territory).transform(lon[search], lat[search])
    found, far = nearest_polygons(layer, x, y)
    within = far <= ref.rules.npnru_distance_m
    row[search[within]] = layer.rows[found[within]]
    metres[search[within]] = far[within]
    return row, metres


def _reach(
    ref: Reference,
    valid: np.ndarray,
    by_commune: np.ndarray,
    checked: np.ndarray,
    commune: np.ndarray,
    territory: np.ndarray,
    points: np.ndarray,
    precision: np.ndarray,
) -> dict[str, np.ndarray]:
    """Source, own-commune flag and QPV to check of each row (see :class:`Location`).

    Rows located by commune reach, from their commune's boundary, the QPV contours when
    they cover it, else the hosting communes of the list of QPV by commune; points not
    covered by the contours reach the hosting communes from the point, widened by its
    precision.
    """
    n = len(valid)
    source = np.full(n, BY_POINT)
    own = np.zeros(n, dtype=bool)
    to_check = np.full(n, None, dtype=object)
    reach = ref.reach
    threshold = qpv_reach.distance(ref.rules)
    by_contours = by_commune & checked
    by_list = valid & ~checked & (reach is not None)
    source[by_contours] = BY_CONTOURS
    source[by_list] = BY_LIST
    found_rows, found_codes = [], []
    for code, name in enumerate(crs.TERRITORIES):
        here = territory == code
        rows = np.flatnonzero(by_contours & here)
        if len(rows) and name.name in ref.qpv_layers:
            layer = ref.qpv_layers[name.name]
            polygons = ref.commune_polygons[commune[rows]]
            touched, _ = qpv_reach.within_reach(polygons, layer.metric, layer.rows, 0.0)
            own[rows[touched]] = True
            place, qpv = qpv_reach.within_reach(polygons, layer.metric, layer.rows, threshold)
            found_rows.append(rows[place])
            found_codes.append(ref.qpv_codes[qpv])
        rows = np.flatnonzero(by_list & here)
        if not len(rows) or name.name not in reach.trees:
            continue
        on_point = ~by_commune[rows]
        geometries = ref.commune_polygons[commune[rows]]
        geometries[on_point] = _metric_points(
            shapely.get_x(points[rows[on_point]]), shapely.get_y(points[rows[on_point]]), name.name
        )
        widened = threshold + np.where(on_point, np.nan_to_num(precision[rows]), 0.0)
        place, host = qpv_reach.within_reach(
            geometries, reach.trees[name.name], reach.rows[name.name], widened
        )
        own[rows] = np.isin(commune[rows], reach.pairs["row"].to_numpy())
        hosted = pd.DataFrame({"place": rows[place], "row": host}).merge(reach.pairs, on="row")
        found_rows.append(hosted["place"].to_numpy())
        found_codes.append(hosted["code_qpv"].to_numpy(dtype=object))
    if found_rows:
        to_check = qpv_reach.listing(
            np.concatenate(found_rows), np.concatenate(found_codes), ref.qpv_names_all, n
        )
    own &= by_commune
    return {"source": source, "own": own, "to_check": to_check}


def assemble(
    frame: gpd.GeoDataFrame, where: Location, ref: Reference, lines: np.ndarray | None = None
) -> dict[str, Any]:
    """Output columns, verdict and motif of the places of ``frame`` located at ``where``.

    Every column is taken from arrays prepared once in the reference (commune text and
    values, QPV codes) with the positions found by :func:`locate`; the verdict is
    decided once per distinct combination of criteria. A point whose distance to a QPV
    boundary, or to the proximity threshold, is smaller than its precision, and a place
    known only by a commune that hosts (or lies within the proximity distance of) a
    QPV, are ``incertain``: their QPV answers are NA and the motif gives the figures
    and the QPV to check.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        Output of ``read_places``, as given to :func:`locate`.
    where : Location
        What :func:`locate` found for ``frame``.
    ref : Reference
        The reference ``where`` was located in.
    lines : numpy.ndarray of int, optional
        Line of each row in the input file: the motif of a point found outside France
        starts with ``ligne N : `` like the problems found while reading.

    Returns
    -------
    dict of str to array
        :data:`OUTPUT_COLUMNS` (``probleme`` folded into ``motif``) then ``geometry``
        (shapely points or None), positional, each a numpy array, a pandas nullable
        array or an arrow string array: :func:`framed` makes them a GeoDataFrame, and
        :class:`Collected` gathers those of consecutive batches.
    """
    n = len(frame)
    valid, checked, commune = where.valid, where.checked, where.commune
    nearest, distance, containing = where.nearest, where.distance, where.containing
    by_commune, source, precision = where.by_commune, where.source, where.precision
    problems = np.full(n, None, dtype=object)  # the text of invalid rows only
    read = np.flatnonzero(frame["probleme"].notna().to_numpy())
    problems[read] = frame["probleme"].iloc[read].to_numpy(dtype=object)
    outside = np.flatnonzero(where.outside_france)
    if len(outside):
        problems[outside] = motifs.outside_france(
            frame["lon"].to_numpy(dtype=float)[outside],
            frame["lat"].to_numpy(dtype=float)[outside],
            where.border[outside],
            None if lines is None else np.asarray(lines)[outside],
            COMMUNE_TOLERANCE_M,
        ).to_numpy(zero_copy_only=False)
    unknown = np.flatnonzero(where.unknown_commune)
    if len(unknown):
        problems[unknown] = motifs.unknown_commune(
            text(frame["commune_donnee"].iloc[unknown])
        ).to_numpy(zero_copy_only=False)

    taken = np.maximum(commune, 0)
    values = {column: _masked(array[taken], ~valid) for column, array in ref.commune_values.items()}
    missing = pa.array(commune, mask=commune < 0)
    columns = {name: values.take(missing) for name, values in ref.commune_text.items()}
    inside = pd.notna(containing)
    on_point = checked & ~by_commune
    reached = pd.notna(where.to_check)
    threshold = np.full(n, np.nan)
    threshold[nearest >= 0] = ref.qpv_threshold[nearest[nearest >= 0]]
    near_npnru = where.npnru >= 0
    kinds = {
        motifs.INVALID: ~valid,
        motifs.COMMUNE_UNCHECKED: by_commune & (source == BY_POINT),
        motifs.COMMUNE_HOSTS: by_commune & where.own,
        motifs.COMMUNE_NEAR: by_commune & (source != BY_POINT) & reached,
        motifs.COMMUNE_CLEAR: by_commune & (source != BY_POINT),
        motifs.LIST_CHECK: (source == BY_LIST) & reached,
        motifs.LIST_CLEAR: source == BY_LIST,
        motifs.UNCHECKED: ~checked,
        motifs.UNSURE_IN: on_point & inside & (where.boundary < precision),
        motifs.UNSURE_OUT: on_point & ~inside & (distance < precision),
        motifs.UNSURE_THRESHOLD: on_point & ~inside & (np.abs(distance - threshold) < precision),
        motifs.INSIDE: inside,
        motifs.EDGE: on_point & pd.notna(where.edge),
        motifs.NO_QPV: np.isnan(distance),
        motifs.NEAR_NPNRU: near_npnru,
        motifs.NEAR: distance <= threshold,
    }
    sentence = np.select(list(kinds.values()), list(kinds), default=motifs.FAR)
    uncertain = np.isin(sentence, motifs.UNCERTAIN)
    known = (on_point & ~uncertain) | np.isin(sentence, [motifs.COMMUNE_CLEAR, motifs.LIST_CLEAR])
    in_qpv = pd.arrays.BooleanArray(inside & known, ~known)
    edge = sentence == motifs.EDGE  # a QPV of a département not loaded may be near
    near = pd.arrays.BooleanArray(
        ((distance <= threshold) | near_npnru) & known & ~edge, ~known | edge
    )
    distance = np.where(edge, np.nan, distance)  # the nearest loaded may not be the nearest
    nearest = np.where(edge, -1, nearest)
    verdict = _verdicts(valid, in_qpv, near, values["hors_grands_centres_urbains"], uncertain)
    point_qpv = np.flatnonzero(inside & on_point)
    qpv_code = scattered(n, point_qpv, containing[point_qpv])
    qpv_nom = scattered(
        n,
        point_qpv,
        [
            " ; ".join(ref.qpv_names[code] for code in codes.split(";"))
            for codes in containing[point_qpv]
        ],
    )
    listed = np.flatnonzero(reached)
    to_check = scattered(n, listed, where.to_check[listed])
    edges = np.flatnonzero(pd.notna(where.edge))
    motif = motifs.compose(
        verdict,
        sentence,
        {
            "distance": distance,
            "gap": where.gap,
            "commune": commune,
            "nearest": nearest,
            "threshold": threshold,
            "npnru": where.npnru,
            "npnru_rows": np.flatnonzero(ref.qpv_npnru),
            "npnru_distance": where.npnru_distance,
            "qpv_code": qpv_code,
            "qpv_nom": qpv_nom,
            "probleme": problems,
            "precision": precision,
            "boundary": where.boundary,
            "to_check": to_check,
            "listed": source == BY_LIST,
            "edge": scattered(n, edges, where.edge[edges]),
        },
        ref.rules,
        ref.texts,
    )
    territory = np.where(valid, where.territory + 1, 0)
    localisation = np.select([by_commune, valid], [1, 2], default=0)
    return {
        "lon": np.where(valid, frame["lon"].to_numpy(dtype=float), np.nan),
        "lat": np.where(valid, frame["lat"].to_numpy(dtype=float), np.nan),
        "precision_m": np.where(valid & ~by_commune, precision, np.nan),
        "localisation": _LOCALISATIONS.take(pa.array(localisation)),
        "territoire": places.TERRITORY_TEXT.take(pa.array(territory)),
        "qpv_code": qpv_code,
        "qpv_nom": qpv_nom,
        "in_qpv": in_qpv,
        "distance_qpv_m": french.tenth_of_metre(distance),
        "nearest_qpv_code": ref.qpv_text["code_qpv"].take(pa.array(nearest, mask=nearest < 0)),
        "near_qpv": near,
        "qpv_a_verifier": to_check,
        "code_insee": columns["code_insee"],
        "commune": columns["nom"],
        "dep": columns["dep"],
        "reg": columns["reg"],
        "densite7": values["densite7"],
        "cateaav2020": values["cateaav2020"],
        "hors_grands_centres_urbains": values["hors_grands_centres_urbains"],
        "verdict": _VERDICT_TEXT.take(pa.array(verdict)),
        "motif": motif,
        "geometry": where.points,  # shapely points or None, built by locate
    }


#: Text of :func:`assemble`'s ``localisation`` codes.
_LOCALISATIONS = pa.array(["", "commune", "point"])
_VERDICT_TEXT = pa.array(list(VERDICTS))


class Collected:
    """Output columns of ``n`` rows, filled batch by batch from any thread.

    Numeric, nullable and geometry columns are written into arrays of ``n`` rows
    allocated once, so that the arrays of each batch are freed (and their memory reused
    by the next batch) as soon as they are copied, and nothing is concatenated at the
    end; arrow strings are chained without copy.

    Parameters
    ----------
    n : int
        Rows of the whole table.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._arrays: dict[str, np.ndarray] = {}
        self._masks: dict[str, np.ndarray] = {}
        self._kinds: dict[str, type] = {}
        self._texts: dict[str, dict[int, pa.Array]] = {}
        self._lock = threading.Lock()

    def put(self, start: int, columns: dict[str, Any]) -> None:
        """Store the columns of :func:`assemble` of rows ``start`` onwards (emptied)."""
        for name in list(columns):
            values = columns.pop(name)
            rows = slice(start, start + len(values))
            if isinstance(values, pa.Array | pa.ChunkedArray):
                # pandas keeps large_string: cast here, in the batch's thread
                values = values.cast(pa.large_string())
                with self._lock:
                    self._texts.setdefault(name, {})[start] = values
            elif isinstance(values, np.ndarray):
                self._array(name, self._arrays, values.dtype)[rows] = values
            else:  # a nullable array (pandas BooleanArray, IntegerArray)
                kind = values.dtype.numpy_dtype
                self._kinds.setdefault(name, type(values))
                self._array(name, self._arrays, kind)[rows] = values.to_numpy(kind, na_value=0)
                self._array(name, self._masks, np.dtype(bool))[rows] = values.isna()
            del values

    def _array(self, name: str, arrays: dict[str, np.ndarray], dtype: np.dtype) -> np.ndarray:
        with self._lock:
            if name not in arrays:
                arrays[name] = np.empty(self.n, dtype=dtype)
            return arrays[name]

    def columns(self) -> dict[str, Any]:
        """Every column, whole: numpy arrays, nullable arrays and chained arrow strings."""
        out: dict[str, Any] = {
            name: pa.chunked_array([pieces[start] for start in sorted(pieces)])
            for name, pieces in self._texts.items()
        }
        for name, values in self._arrays.items():
            kind = self._kinds.get(name)
            out[name] = values if kind is None else kind(values, self._masks[name])
        return out


def framed(frame: gpd.GeoDataFrame, columns: dict[str, Any]) -> gpd.GeoDataFrame:
    """The GeoDataFrame of ``frame``'s rows with the output ``columns`` of :func:`assemble`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``frame``'s own columns (renamed with :data:`INPUT_SUFFIX` on a clash, whatever
        the case: ``Commune`` → ``Commune_entree``), then :data:`OUTPUT_COLUMNS`, point
        geometry in EPSG:4326; the arrays are taken without copy.
    """
    index = frame.index

    def column(values: Any) -> pd.Series:
        if isinstance(values, pa.Array | pa.ChunkedArray):
            return series(values, index)
        return pd.Series(values, index=index, copy=False)

    result = pd.DataFrame(
        {name: column(columns[name]) for name in OUTPUT_COLUMNS}, index=index, copy=False
    )
    user = frame.drop(columns=[c for c in places.ADDED_COLUMNS if c in frame])
    user = user.rename(columns=places.suffixed(user.columns, OUTPUT_COLUMNS))
    out = pd.concat([user, result], axis=1)
    geometry = gpd.array.GeometryArray(columns["geometry"], crs=crs.GEOGRAPHIC)
    return gpd.GeoDataFrame(out, geometry=geometry, copy=False)


def _masked(values: pd.api.extensions.ExtensionArray, hidden: np.ndarray) -> Any:
    """A nullable array (a copy taken from the reference) with ``hidden`` rows set to NA."""
    values[hidden] = pd.NA
    return values


def _verdicts(
    valid: np.ndarray,
    in_qpv: pd.arrays.BooleanArray,
    near: pd.arrays.BooleanArray,
    outside_urban: pd.arrays.BooleanArray,
    uncertain: np.ndarray,
) -> np.ndarray:
    """Position in :data:`VERDICTS` of each row's verdict.

    :func:`territoires.rules.decide` is applied once per distinct combination of its
    (true/false/NA) inputs and of ``uncertain``, not once per row.
    """
    states = [valid.astype(np.int8)] + [
        np.where(criterion.isna(), 2, criterion.fillna(False).to_numpy(dtype=bool)).astype(np.int8)
        for criterion in (in_qpv, near, outside_urban)
    ]
    key = (((states[0] * 3 + states[1]) * 3 + states[2]) * 3 + states[3]) * 2 + uncertain
    # the 162 possible keys counted, not sorted: linear in the rows
    combos = np.flatnonzero(np.bincount(key, minlength=162))
    position = np.zeros(162, dtype=np.intp)
    position[combos] = np.arange(len(combos))
    inverse = position[key]
    digits = [combos // 54, combos // 18 % 3, combos // 6 % 3, combos // 2 % 3]

    def criterion(state: np.ndarray) -> pd.arrays.BooleanArray:
        return pd.arrays.BooleanArray(state == 1, state == 2)

    decided = decide(
        digits[0].astype(bool),
        *(criterion(state) for state in digits[1:]),
        (combos % 2).astype(bool),
    )
    codes = pd.Index(list(VERDICTS)).get_indexer(decided)
    return codes[inverse.ravel()]


def classify_frame(
    frame: gpd.GeoDataFrame, ref: Reference, lines: np.ndarray | None = None
) -> gpd.GeoDataFrame:
    """Classify places already read by :func:`territoires.places.read_places`.

    The pure core of :func:`territoires.classify`, also applied per partition by the
    dask backend: :func:`assemble` of :func:`locate`.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        Output of ``read_places`` (``lon``, ``lat``, ``probleme``, ``territoire``); its
        geometry is ignored: points are built from ``lon``/``lat``.
    ref : Reference
        Prepared reference layers.
    lines : numpy.ndarray of int, optional
        Line of each row in the input file (see :func:`assemble`).

    Returns
    -------
    geopandas.GeoDataFrame
        ``frame`` with :data:`OUTPUT_COLUMNS` (``probleme`` folded into ``motif``).
    """
    return framed(frame, classify_columns(frame, ref, lines))


def classify_columns(
    frame: gpd.GeoDataFrame, ref: Reference, lines: np.ndarray | None = None
) -> dict[str, Any]:
    """The output columns of :func:`classify_frame` (see :func:`assemble`), not yet framed."""
    with paused(len(frame)):  # see territoires._gc: a geometry per place
        return assemble(frame, locate(frame, ref), ref, lines)
