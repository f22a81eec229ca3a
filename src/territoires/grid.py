"""A grid of cells that answers point-in-polygon lookups without testing polygons.

The polygons of a layer (the communes of a territory, in longitude/latitude) are laid on
a regular grid. A cell that no polygon boundary crosses lies wholly inside the same
polygons, so every point falling in it gets the answer found once for the cell; cells
crossed by a boundary answer « test exactly ». The answers are exactly those of the
exact test, never approximations:

* a cell is marked as crossed when any boundary point lies within a safety margin of
  it: boundaries are cut into pieces no longer than a quarter of a cell, so every
  boundary point lies within half a piece of a vertex, and the cells near each vertex
  are marked;
* the cells left unmarked form connected regions (joined by their sides) that no
  boundary enters: each region is inside or outside each polygon as a whole, and one
  exact lookup of one of its cells' centres answers for the region;
* a point is assigned to a cell with one floor division, whose rounding error (about
  1e-13 degree) is far below the margin;
* cells outside every polygon and surrounded, over a given number of cells, by such
  cells only are marked *far*: their points are known to be at least that far from
  every polygon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely

#: Side of a cell in degrees (about 190 m × 280 m in métropole): small enough for most
#: points of a city to fall in a cell inside one commune.
CELL_DEGREES: float = 0.0025

#: Margin in degrees added around boundaries, far above the rounding error of
#: assigning a point to a cell.
MARGIN_DEGREES: float = 1e-9


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
        cell a boundary crosses (points there are tested exactly).
    """

    x0: float
    y0: float
    size: float
    cells: np.ndarray

    @classmethod
    def build(
        cls,
        geometries: np.ndarray,
        exact: Callable[[np.ndarray, np.ndarray], np.ndarray],
        size: float = CELL_DEGREES,
        far: int = 0,
    ) -> Grid:
        """Lay ``geometries`` on a grid of ``size`` degrees.

        Parameters
        ----------
        geometries : numpy.ndarray of shapely geometries
            The polygons (longitude/latitude).
        exact : callable
            ``exact(lon, lat)`` gives the exact answer (an integer ≥ -1) for points; it
            is called once per region of cells, on a cell centre.
        size : float, default :data:`CELL_DEGREES`
            Side of a cell in degrees.
        far : int, default 0
            A cell outside every polygon is marked *far* when no cell within ``far``
            cells of it (in both directions) is crossed by a boundary or inside a
            polygon: its points are then more than ``far - 1`` cell sides from every
            polygon, which lets a caller skip a nearest-polygon search bounded by less.
        """
        from scipy import ndimage  # only to build a grid: not imported by a new process

        xmin, ymin, xmax, ymax = shapely.total_bounds(geometries)
        x0 = np.floor(xmin / size) * size - size
        y0 = np.floor(ymin / size) * size - size
        shape = (int(np.ceil((ymax - y0) / size)) + 2, int(np.ceil((xmax - x0) / size)) + 2)
        step = size / 4
        vertices = shapely.get_coordinates(shapely.segmentize(shapely.boundary(geometries), step))
        reach = step / 2 + MARGIN_DEGREES
        crossed = np.zeros(shape, dtype=bool)
        for dx in (-reach, reach):
            column = np.floor((vertices[:, 0] + dx - x0) / size).astype(np.intp)
            for dy in (-reach, reach):
                crossed[np.floor((vertices[:, 1] + dy - y0) / size).astype(np.intp), column] = True
        del vertices
        regions, count = ndimage.label(~crossed)
        flat = regions.ravel()
        # One cell per region: whichever cell of the region the assignment keeps.
        some_cell = np.zeros(count + 1, dtype=np.intp)
        some_cell[flat] = np.arange(flat.size)
        row, column = np.divmod(some_cell[1:], shape[1])
        answers = exact(x0 + (column + 0.5) * size, y0 + (row + 0.5) * size)
        dtype = np.min_scalar_type(int(answers.max(initial=0)) + 3)
        cells = np.concatenate([[0], answers + 3]).astype(dtype)[regions]
        del regions
        if far:
            near = ndimage.maximum_filter((cells != 2).view(np.uint8), size=2 * far + 1)
            cells[(cells == 2) & (near == 0)] = 1
        return cls(x0=float(x0), y0=float(y0), size=float(size), cells=cells)

    def lookup(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Answer of each point's cell.

        Parameters
        ----------
        lon, lat : numpy.ndarray of float
            Finite coordinates.

        Returns
        -------
        known : numpy.ndarray of bool
            The point's cell lies wholly inside (or outside) the polygons; ``False``
            for cells crossed by a boundary and points off the grid.
        answer : numpy.ndarray of int
            The answer for known points (-1 for none), -1 elsewhere.
        far : numpy.ndarray of bool
            The point's cell is outside every polygon and far from them (see
            :meth:`build`).
        """
        column = np.floor((lon - self.x0) / self.size)
        row = np.floor((lat - self.y0) / self.size)
        rows, columns = self.cells.shape
        on_grid = (column >= 0) & (column < columns) & (row >= 0) & (row < rows)
        value = np.zeros(len(lon), dtype=np.int64)
        value[on_grid] = self.cells[row[on_grid].astype(np.intp), column[on_grid].astype(np.intp)]
        return value > 0, np.maximum(value - 3, -1), value == 1
