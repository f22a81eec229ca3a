"""A grid of cells that answers point-in-polygon lookups without testing polygons.

The polygons of a layer (the communes of a territory, in longitude/latitude) are laid on
a regular grid. A cell that no polygon boundary crosses lies wholly inside the same
polygons, so every point falling in it gets the answer found once for the cell. A cell
crossed by a boundary is split into :data:`SPLIT` × :data:`SPLIT` sub-cells, answered
the same way; points in sub-cells crossed by a boundary answer « test exactly ». The
answers are exactly those of the exact test, never approximations:

* a cell is a candidate when any boundary point lies within a safety margin of it:
  boundaries are cut into pieces no longer than a quarter of a cell, so every boundary
  point lies within half a piece of a vertex, and the cells near each vertex are marked;
* in candidate cells, boundaries are cut into pieces shorter than a sub-cell's side
  along both axes, and every sub-cell meeting a piece's bounding box widened by the
  margin is marked as crossed. A candidate cell without any crossed sub-cell is not
  crossed after all;
* the cells left unmarked form connected regions (joined by their sides) that no
  boundary enters: each region is inside or outside each polygon as a whole, and one
  exact lookup of one of its cells' centres answers for the region;
* so do the unmarked sub-cells, joined by their sides to each other (across the sides
  of crossed cells too) and to unmarked cells: a region of sub-cells touching an
  unmarked cell takes its answer, the others are answered by one exact lookup each;
* a point is assigned to a cell with one floor division, and to a sub-cell by the
  same division scaled by :data:`SPLIT` (a power of two: the scaling is exact, and the
  sub-cell lies in the cell), whose rounding error (about 1e-13 degree) is far below
  the margin;
* cells outside every polygon and surrounded, over a given number of cells, by such
  cells only are marked *far*: their points are known to be at least that far from
  every polygon.

A crossed cell keeps two bits per sub-cell: 0 for « test exactly », else which of the
cell's three answers (at most) applies. Sub-cells of a fourth answer are tested exactly.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np
import shapely

#: Side of a cell in degrees (about 190 m × 280 m in métropole): small enough for most
#: points of a city to fall in a cell inside one commune.
CELL_DEGREES: float = 0.0025

#: Margin in degrees added around boundaries, far above the rounding error of
#: assigning a point to a cell.
MARGIN_DEGREES: float = 1e-9

#: Sub-cells per side of a crossed cell (2, 4 or 8: the sub-cells of a cell are found
#: as bits of a 64-bit word): 8 leaves about one point in seven of the crossed cells to
#: the exact test, in 16 bytes per crossed cell before compression.
SPLIT: int = 8

#: Answers kept per crossed cell: one two-bit code per sub-cell, 0 for « test exactly ».
ANSWERS_PER_CELL: int = 3

#: Crossed cells per compressed block of sub-cells: a single lookup decompresses
#: one block (about 80 kB), not the whole grid.
BLOCK_CELLS: int = 4096

#: zlib level of the blocks of sub-cells.
COMPRESSION: int = 4

#: Boundary pieces processed at once when marking sub-cells (bounds the memory used).
_PIECES_PER_BATCH: int = 1_000_000


@dataclass(frozen=True)
class Grid:
    """Cells of a regular longitude/latitude grid, each with its polygon or none.

    Attributes
    ----------
    x0, y0 : float
        Longitude and latitude of the grid's south-west corner.
    size : float
        Side of a cell in degrees.
    cells : numpy.ndarray
        ``(rows, columns)`` unsigned integers: ``answer + 3`` for a cell inside the
        polygon of row ``answer``, ``2`` for a cell outside every polygon, ``1`` for a
        cell outside every polygon and far from them (see :meth:`build`), ``0`` for a
        cell a boundary crosses (see :attr:`blocks`).
    split : int
        Sub-cells per side of a crossed cell (2, 4 or 8).
    blocks : tuple of bytes
        The sub-cells of the crossed cells, taken in the order of their flat position in
        :attr:`cells`, by :data:`BLOCK_CELLS`, each block compressed (zlib) on its own
        and decompressed on first use: ``split² / 4`` bytes per cell, two bits per
        sub-cell (sub-cell ``s``, of row ``s // split`` from the south and column
        ``s % split`` from the west, in bits ``2 (s % 4)`` of byte ``s // 4``): 0 where
        a boundary may cross the sub-cell (points there are tested exactly), else ``c``
        for the cell's ``c``-th answer; then :data:`ANSWERS_PER_CELL` unsigned integers
        of type :attr:`answer_type` per cell: ``answer + 1`` (0 for outside every
        polygon, or unused).
    answer_type : str
        NumPy type of the crossed cells' answers.
    """

    x0: float
    y0: float
    size: float
    cells: np.ndarray
    split: int
    blocks: tuple[bytes, ...]
    answer_type: str

    @classmethod
    def build(
        cls,
        geometries: np.ndarray,
        exact: Callable[[np.ndarray, np.ndarray], np.ndarray],
        size: float = CELL_DEGREES,
        far: int = 0,
        split: int = SPLIT,
    ) -> Grid:
        """Lay ``geometries`` on a grid of ``size`` degrees.

        Parameters
        ----------
        geometries : numpy.ndarray of shapely geometries
            The polygons (longitude/latitude).
        exact : callable
            ``exact(lon, lat)`` gives the exact answer (an integer ≥ -1) for points; it
            is called once per region of cells or of sub-cells, on a cell centre.
        size : float, default :data:`CELL_DEGREES`
            Side of a cell in degrees.
        far : int, default 0
            A cell outside every polygon is marked *far* when no cell within ``far``
            cells of it (in both directions) is crossed by a boundary or inside a
            polygon: its points are then more than ``far - 1`` cell sides from every
            polygon, which lets a caller skip a nearest-polygon search bounded by less.
        split : int, default :data:`SPLIT`
            Sub-cells per side of a crossed cell: 2, 4 or 8.
        """
        from scipy import ndimage  # only to build a grid: not imported by a new process

        if split not in (2, 4, 8):
            raise ValueError(f"split must be 2, 4 or 8, not {split}")
        xmin, ymin, xmax, ymax = shapely.total_bounds(geometries)
        x0 = np.floor(xmin / size) * size - size
        y0 = np.floor(ymin / size) * size - size
        shape = (int(np.ceil((ymax - y0) / size)) + 2, int(np.ceil((xmax - x0) / size)) + 2)
        rings = shapely.get_parts(shapely.boundary(geometries))
        crossed = _near_vertices(rings, x0, y0, size, shape)
        crossed_at = np.flatnonzero(crossed)
        marked = _crossed_subcells(rings, crossed_at, x0, y0, size, split, shape)
        del rings
        # A candidate cell none of whose sub-cells a boundary meets is not crossed.
        really = marked.any(axis=(1, 2))
        crossed.ravel()[crossed_at[~really]] = False
        crossed_at, marked = crossed_at[really], marked[really]

        regions, count = ndimage.label(~crossed)
        flat = regions.ravel()
        # One cell per region: whichever cell of the region the assignment keeps.
        some_cell = np.zeros(count + 1, dtype=np.intp)
        some_cell[flat] = np.arange(flat.size)
        row, column = np.divmod(some_cell[1:], shape[1])
        answers = exact(x0 + (column + 0.5) * size, y0 + (row + 0.5) * size)
        dtype = np.min_scalar_type(int(answers.max(initial=0)) + 3)
        cells = np.concatenate([[0], answers + 3]).astype(dtype)[regions]
        del regions, flat
        codes, answers = _subcell_answers(cells, crossed_at, marked, exact, x0, y0, size)
        del marked
        answers = answers.astype(np.min_scalar_type(int(answers.max(initial=0))))
        if far:
            near = ndimage.maximum_filter((cells != 2).view(np.uint8), size=2 * far + 1)
            cells[(cells == 2) & (near == 0)] = 1
        return cls(
            x0=float(x0),
            y0=float(y0),
            size=float(size),
            cells=cells,
            split=split,
            blocks=tuple(
                zlib.compress(
                    codes[start : start + BLOCK_CELLS].tobytes()
                    + answers[start : start + BLOCK_CELLS].tobytes(),
                    COMPRESSION,
                )
                for start in range(0, len(codes), BLOCK_CELLS)
            ),
            answer_type=answers.dtype.str,
        )

    @cached_property
    def _crossed(self) -> tuple[np.ndarray, np.ndarray]:
        """Which cells are crossed, as bits of 64-bit words in the order of the flat
        positions, and how many crossed cells come before each word (not persisted)."""
        bits = np.packbits(self.cells.ravel() == 0, bitorder="little")
        words = np.concatenate([bits, np.zeros(-len(bits) % 8, dtype=np.uint8)]).view("<u8")
        counts = np.bitwise_count(words)
        return words, np.concatenate([[0], np.cumsum(counts[:-1], dtype=np.int64)])

    def _slots(self, flat: np.ndarray) -> np.ndarray:
        """Rank of the crossed cells at flat positions ``flat`` among the crossed cells."""
        words, before = self._crossed
        word = flat >> 6
        below = (np.uint64(1) << (flat & 63).astype(np.uint64)) - np.uint64(1)
        return before[word] + np.bitwise_count(words[word] & below)

    @cached_property
    def _sub_cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Codes and answers of the crossed cells, and which blocks are decompressed."""
        count = int(np.count_nonzero(self.cells == 0))
        return (
            np.empty((count, self.split * self.split // 4), dtype=np.uint8),
            np.empty((count, ANSWERS_PER_CELL), dtype=self.answer_type),
            np.zeros(len(self.blocks), dtype=bool),
        )

    def __getstate__(self) -> dict[str, Any]:
        """The fields only: what is found again or decompressed on use is not persisted."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def lookup(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Answer of each point's cell, or sub-cell in a crossed cell.

        Parameters
        ----------
        lon, lat : numpy.ndarray of float
            Finite coordinates.

        Returns
        -------
        known : numpy.ndarray of bool
            The point's cell (or sub-cell) lies wholly inside (or outside) the
            polygons; ``False`` for sub-cells a boundary may cross and points off the
            grid.
        answer : numpy.ndarray of int
            The answer for known points (-1 for none), -1 elsewhere.
        far : numpy.ndarray of bool
            The point's cell is outside every polygon and far from them (see
            :meth:`build`).
        """
        x = (lon - self.x0) / self.size
        y = (lat - self.y0) / self.size
        column = np.floor(x)
        row = np.floor(y)
        rows, columns = self.cells.shape
        on_grid = np.flatnonzero((column >= 0) & (column < columns) & (row >= 0) & (row < rows))
        value = np.zeros(len(lon), dtype=np.int64)
        row, column = row[on_grid].astype(np.intp), column[on_grid].astype(np.intp)
        value[on_grid] = self.cells[row, column]
        crossed = np.flatnonzero(value[on_grid] == 0)
        if len(crossed) and self.blocks:
            inner = on_grid[crossed]
            row, column = row[crossed], column[crossed]
            slot = self._slots(row * columns + column)
            codes, answers = self._decompressed(slot)
            # Scaled by a power of two, exactly: the sub-cell lies in the cell found.
            sub = np.floor(y[inner] * self.split).astype(np.intp) - row * self.split
            sub *= self.split
            sub += np.floor(x[inner] * self.split).astype(np.intp) - column * self.split
            code = (codes[slot, sub >> 2] >> ((sub & 3) << 1).astype(np.uint8)) & 3
            hit = np.flatnonzero(code)
            value[inner[hit]] = answers[slot[hit], code[hit] - 1].astype(np.int64) + 2
        return value > 0, np.maximum(value - 3, -1), value == 1

    def _decompressed(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes and answers of the crossed cells, their blocks holding ``slots`` ready."""
        codes, answers, ready = self._sub_cells
        width = codes.shape[1]
        for block in np.unique(slots // BLOCK_CELLS):
            if ready[block]:
                continue
            data = zlib.decompress(self.blocks[block])
            start = block * BLOCK_CELLS
            count = min(BLOCK_CELLS, len(codes) - start)
            codes[start : start + count] = np.frombuffer(data, np.uint8, count * width).reshape(
                count, width
            )
            answers[start : start + count] = np.frombuffer(
                data, answers.dtype, offset=count * width
            ).reshape(count, ANSWERS_PER_CELL)
            ready[block] = True  # after the copy: a concurrent lookup reads it whole
        return codes, answers


def _near_vertices(
    rings: np.ndarray, x0: float, y0: float, size: float, shape: tuple[int, int]
) -> np.ndarray:
    """Cells within the margin of a boundary (and a few more), as a boolean array."""
    step = size / 4
    vertices = shapely.get_coordinates(shapely.segmentize(rings, step))
    reach = step / 2 + MARGIN_DEGREES
    near = np.zeros(shape, dtype=bool)
    for dx in (-reach, reach):
        column = np.floor((vertices[:, 0] + dx - x0) / size).astype(np.intp)
        for dy in (-reach, reach):
            near[np.floor((vertices[:, 1] + dy - y0) / size).astype(np.intp), column] = True
    return near


def _crossed_subcells(
    rings: np.ndarray,
    cells_at: np.ndarray,
    x0: float,
    y0: float,
    size: float,
    split: int,
    shape: tuple[int, int],
) -> np.ndarray:
    """Sub-cells of the cells at flat positions ``cells_at`` that a boundary may cross.

    Returns
    -------
    numpy.ndarray of bool
        ``(len(cells_at), split, split)``, rows from the south, columns from the west.
    """
    slot = np.full(shape[0] * shape[1], -1, dtype=np.int32)
    slot[cells_at] = np.arange(len(cells_at), dtype=np.int32)
    marked = np.zeros(len(cells_at) * split * split, dtype=bool)
    # Coordinates in sub-cell sides from the grid's corner; the margin likewise.
    coordinates, ring = shapely.get_coordinates(rings, return_index=True)
    scale = split / size
    x = (coordinates[:, 0] - x0) * scale
    y = (coordinates[:, 1] - y0) * scale
    del coordinates
    margin = MARGIN_DEGREES * scale
    segment = np.flatnonzero(ring[1:] == ring[:-1])
    del ring
    # Pieces shorter than a sub-cell side along both axes, by more than twice the
    # margin: a piece's widened bounding box then meets at most two sub-cells per axis.
    length = np.maximum(np.abs(x[segment + 1] - x[segment]), np.abs(y[segment + 1] - y[segment]))
    pieces = np.maximum(np.ceil(length / 0.99), 1).astype(np.intp)
    ends = np.cumsum(pieces)
    shift = split.bit_length() - 1
    start = 0
    while start < len(segment):
        stop = int(np.searchsorted(ends, ends[start] - pieces[start] + _PIECES_PER_BATCH))
        stop = max(stop, start + 1)
        count = pieces[start:stop]
        owner = np.repeat(segment[start:stop], count)
        fraction = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
        fraction = fraction / np.repeat(count, count)
        step = 1 / np.repeat(count, count)
        low, high = [], []
        for axis in (x, y):
            a = axis[owner]
            delta = axis[owner + 1] - a
            p, q = a + delta * fraction, a + delta * (fraction + step)
            low.append(np.floor(np.minimum(p, q) - margin).astype(np.int64))
            high.append(np.floor(np.maximum(p, q) + margin).astype(np.int64))
        del owner, fraction, step, a, delta, p, q
        # The sub-cells of the corners of each box (some of them the same sub-cell).
        wide, tall = high[0] != low[0], high[1] != low[1]
        both, wide, tall = np.flatnonzero(wide & tall), np.flatnonzero(wide), np.flatnonzero(tall)
        for fine_x, fine_y in (
            (low[0], low[1]),
            (high[0][wide], low[1][wide]),
            (low[0][tall], high[1][tall]),
            (high[0][both], high[1][both]),
        ):
            # the grid has a margin of cells: no piece reaches beyond it
            where = slot[(fine_y >> shift) * shape[1] + (fine_x >> shift)].astype(np.int64)
            where *= split * split
            where += (fine_y & (split - 1)) * split + (fine_x & (split - 1))
            marked[where[where >= 0]] = True
        start = stop
    return marked.reshape(len(cells_at), split, split)


def _regions(free: np.ndarray, split: int) -> tuple[np.ndarray, np.ndarray]:
    """Sets of free sub-cells of each cell connected by their sides.

    Parameters
    ----------
    free : numpy.ndarray of uint64
        One board per cell: bit ``row * split + column`` set for a sub-cell no boundary
        meets.
    split : int
        Sub-cells per side (at most 8: a board holds 64 sub-cells).

    Returns
    -------
    cell : numpy.ndarray of int
        Cell of each region, in increasing order.
    board : numpy.ndarray of uint64
        Sub-cells of each region, as bits of a board.
    """
    west = np.uint64(sum(1 << (row * split) for row in range(split)))
    east = west << np.uint64(split - 1)
    shift, one = np.uint64(split), np.uint64(1)
    cells, boards = [], []
    cell = np.flatnonzero(free)
    remaining = free[cell]
    while len(cell):
        region = remaining & (~remaining + one)  # the lowest free sub-cell: a seed
        growing = np.arange(len(cell))
        while len(growing):  # spread by sides within the free sub-cells, until stable
            board = region[growing]
            grown = board | (board << one) & ~west | (board >> one) & ~east
            grown = (grown | board << shift | board >> shift) & remaining[growing]
            changed = grown != board
            region[growing] = grown
            growing = growing[changed]
        cells.append(cell)
        boards.append(region)
        remaining &= ~region
        left = np.flatnonzero(remaining)
        cell, remaining = cell[left], remaining[left]
    cell, board = np.concatenate(cells), np.concatenate(boards)
    order = np.argsort(cell, kind="stable")
    return cell[order], board[order]


def _subcell_answers(
    cells: np.ndarray,
    crossed_at: np.ndarray,
    marked: np.ndarray,
    exact: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x0: float,
    y0: float,
    size: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Codes and answers of the crossed cells (see :class:`Grid`).

    Parameters
    ----------
    cells : numpy.ndarray
        The cells, answered (``0`` for crossed cells, no *far* mark yet).
    crossed_at : numpy.ndarray of int
        Flat positions of the crossed cells, sorted.
    marked : numpy.ndarray of bool
        ``(len(crossed_at), split, split)``: sub-cells a boundary may cross.
    exact, x0, y0, size
        As for :meth:`Grid.build`.

    Returns
    -------
    codes : numpy.ndarray of uint8
        ``(len(crossed_at), split * split / 4)``: the two-bit codes of :attr:`Grid.blocks`.
    answers : numpy.ndarray of int
        ``(len(crossed_at), ANSWERS_PER_CELL)``: ``answer + 1``, 0 where unused.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    count, split = marked.shape[:2]
    rows, columns = cells.shape
    bits = np.packbits(~marked.reshape(count, -1), axis=1, bitorder="little")
    free = np.zeros((count, 8), dtype=np.uint8)
    free[:, : bits.shape[1]] = bits
    cell_of, board = _regions(free.view("<u8").ravel(), split)
    del bits, free
    regions = len(board)
    # Regions are numbered from 1 in the order of their cells (0: a marked sub-cell).
    # The region of each sub-cell along each side of each cell, from the west or south
    # (the regions of a cell are disjoint: each sub-cell is written once):
    sides = {}
    for name, first, step in (
        ("west", 0, split),
        ("east", split - 1, split),
        ("south", 0, 1),
        ("north", split * (split - 1), 1),
    ):
        positions = np.uint64(first) + np.uint64(step) * np.arange(split, dtype=np.uint64)
        touching = np.flatnonzero(board & np.bitwise_or.reduce(np.uint64(1) << positions))
        region, position = np.nonzero((board[touching, None] >> positions) & np.uint64(1))
        along = np.zeros((count, split), dtype=np.int32)
        along[cell_of[touching[region]], position] = touching[region] + 1
        sides[name] = along
    slot = np.full(cells.size, -1, dtype=np.int32)
    slot[crossed_at] = np.arange(count, dtype=np.int32)
    row, column = np.divmod(crossed_at, columns)
    links, known, values = [], [], []
    for beside, offset, mine, theirs in (
        (column + 1 < columns, 1, sides["east"], sides["west"]),
        (column > 0, -1, sides["west"], sides["east"]),
        (row + 1 < rows, columns, sides["north"], sides["south"]),
        (row > 0, -columns, sides["south"], sides["north"]),
    ):
        neighbour = np.where(beside, crossed_at + offset, crossed_at)
        value = cells.ravel()[neighbour].astype(np.int64)
        # Regions touching an unmarked cell take its answer (a crossed cell's own
        # position gives none: it holds 0), each region once per side (runs of the same
        # region along the side kept once).
        side = np.flatnonzero(beside & (value > 0))
        touching = mine[side]
        keep = touching > 0
        keep[:, 1:] &= touching[:, 1:] != touching[:, :-1]
        known.append(touching[keep])
        values.append(
            np.broadcast_to(np.maximum(value[side] - 3, -1)[:, None], touching.shape)[keep]
        )
        if offset < 0:
            continue
        # Regions of sub-cells joined across the side of two crossed cells (each side
        # once: from the west and the south cell).
        other = slot[neighbour]
        pair = np.flatnonzero(beside & (other >= 0))
        a, b = mine[pair], theirs[other[pair]]
        keep = (a > 0) & (b > 0)
        keep[:, 1:] &= (a[:, 1:] != a[:, :-1]) | (b[:, 1:] != b[:, :-1])
        links.append(np.stack([a[keep], b[keep]]))
    link = np.concatenate(links, axis=1)
    graph = coo_matrix((np.ones(link.shape[1], dtype=np.int8), tuple(link)), (regions + 1,) * 2)
    _, component = connected_components(graph, directed=False)
    known, values = component[np.concatenate(known)], np.concatenate(values)
    unset = np.iinfo(np.int64).max
    lowest = np.full(component.max() + 1, unset)
    highest = np.full(component.max() + 1, -2)
    np.minimum.at(lowest, known, values)
    np.maximum.at(highest, known, values)
    answered = highest > -2
    if (lowest[answered] != highest[answered]).any():
        raise RuntimeError("grille incohérente : une région de sous-cellules a deux réponses")
    # One exact lookup per component no unmarked cell answers, at a sub-cell centre.
    component = component[1:]  # of each region
    asked = np.unique(component[lowest[component] == unset])
    some_region = np.zeros(len(lowest), dtype=np.intp)
    some_region[component] = np.arange(regions)
    region = some_region[asked]
    cell = cell_of[region]
    seed = board[region] & (~board[region] + np.uint64(1))  # its lowest sub-cell
    sub_row, sub_column = np.divmod(np.bitwise_count(seed - np.uint64(1)).astype(np.intp), split)
    lowest[asked] = exact(
        x0 + (column[cell] + (sub_column + 0.5) / split) * size,
        y0 + (row[cell] + (sub_row + 0.5) / split) * size,
    )
    # Codes: the rank of each region's answer among its cell's answers (3 kept).
    answer = lowest[component]
    order = np.lexsort((answer, cell_of))
    cell_sorted, answer_sorted = cell_of[order], answer[order]
    new = np.ones(regions, dtype=bool)
    new[1:] = (cell_sorted[1:] != cell_sorted[:-1]) | (answer_sorted[1:] != answer_sorted[:-1])
    rank = np.cumsum(new) - 1
    first_of_cell = np.ones(regions, dtype=bool)
    first_of_cell[1:] = cell_sorted[1:] != cell_sorted[:-1]
    rank -= np.maximum.accumulate(np.where(first_of_cell, rank, 0))
    code = np.zeros(regions, dtype=np.uint8)
    code[order] = np.where(rank < ANSWERS_PER_CELL, rank + 1, 0)
    answers = np.zeros((count, ANSWERS_PER_CELL), dtype=np.int64)
    kept = rank < ANSWERS_PER_CELL
    answers[cell_sorted[kept], rank[kept]] = answer_sorted[kept] + 1
    # Two bits per sub-cell: each region's code on the bits of its sub-cells (the
    # regions of a cell are disjoint: their sum is their union).
    spread = np.array(
        [sum((byte >> bit & 1) << (2 * bit) for bit in range(8)) for byte in range(256)],
        dtype=np.uint16,
    )
    spread = spread[board.astype("<u8").view(np.uint8).reshape(regions, 8)] * code[:, None]
    codes = np.zeros((count, 8), dtype="<u2")
    np.add.at(codes, cell_of, spread)
    return codes.view(np.uint8)[:, : split * split // 4], answers
