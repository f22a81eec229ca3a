"""French wording of numbers: one set of rules for every output (motifs, maps, reports).

- thousands grouped with a narrow no-break space (U+202F): ``12 345`` ;
- a decimal comma: ``45,3`` ;
- distances kept to 0.1 m in the tables (:func:`tenth_of_metre`), shown in whole metres
  (:func:`whole_metres`, the one rounding of CSV and XLSX cells and motifs alike: a
  motif never says another distance than its row's cell) below one kilometre
  (``850 m``), else in kilometres with one decimal (``12,3 km``), the choice made on the
  distance rounded to the metre ;
- between a number and its unit, ``space``: a plain space in text and tables (so a
  search for « 300 m » typed on a keyboard finds it), :data:`NO_BREAK_SPACE` in HTML
  (so that a quantity never wraps in a tooltip or a legend).

:func:`distances` is vectorised with arrow string kernels (motifs of millions of rows);
the scalar :func:`distance` is the same function applied to one value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._arrow import join

#: Between a number and its unit in text, CSV and spreadsheets.
SPACE = " "
#: Between a number and its unit in HTML: the quantity stays on one line.
NO_BREAK_SPACE = "\u00a0"
#: Thousands separator (narrow no-break space, as recommended in French typography).
THOUSANDS = "\u202f"
#: Text of a missing number.
MISSING = "n.d."
#: Text of a missing distance.
UNKNOWN_DISTANCE = "inconnue"


def number(value: Any, decimals: int | None = 0) -> str:
    """Write a number the French way.

    Parameters
    ----------
    value : float or int
        The number; None, NaN and NA give :data:`MISSING`.
    decimals : int or None, default 0
        Digits after the comma; ``None`` keeps the digits needed, up to 6
        (``300`` → ``300``, ``250.5`` → ``250,5``).

    Returns
    -------
    str
        E.g. ``12 345`` (narrow no-break space), ``4,3``.
    """
    if pd.isna(value):
        return MISSING
    fixed = f"{float(value):,.{6 if decimals is None else decimals}f}"
    text = fixed.rstrip("0").rstrip(".") if decimals is None else fixed
    text = "0" if text == "-0" else text
    return text.replace(",", THOUSANDS).replace(".", ",")


def count(value: Any, singular: str, plural: str) -> str:
    """A number of things, the noun agreeing with it the French way.

    Parameters
    ----------
    value : int
        How many (written by :func:`number`).
    singular, plural : str
        The words after the number, e.g. ``"lieu classé"`` and ``"lieux classés"``;
        French takes the singular below 2 (``0 lieu``, ``1 lieu``, ``2 lieux``).

    Returns
    -------
    str
        E.g. ``1 lieu classé``, ``12 345 lieux classés``.
    """
    return f"{number(value)} {singular if abs(value) < 2 else plural}"


def percent(share: Any, space: str = SPACE) -> str:
    """Write a 0–1 share as a French percentage with one decimal.

    Parameters
    ----------
    share : float
        The share (0.453 for 45,3 %); missing gives :data:`MISSING`.
    space : str, default :data:`SPACE`
        Between the number and ``%``.

    Returns
    -------
    str
        E.g. ``45,3 %``.
    """
    if pd.isna(share):
        return MISSING
    return f"{number(100 * float(share), 1)}{space}%"


def tenth_of_metre(metres: Any) -> Any:
    """Distances as the tables keep them (``distance_qpv_m``): rounded to 0.1 m.

    Parameters
    ----------
    metres : float, numpy.ndarray or pandas.Series
        Distances in metres (NaN stays NaN).

    Returns
    -------
    Same type as ``metres``
        The distances rounded to the tenth of a metre (half to even).
    """
    return np.round(metres, 1)


def whole_metres(metres: Any) -> Any:
    """Distances as people read them: rounded to the metre, half to even.

    The one rounding of every distance shown: the cells of the ``*_m`` columns in CSV and
    XLSX (:func:`territoires.export.readable`) and the distances of the motifs
    (:func:`distances`), applied to the same kept value (:func:`tenth_of_metre`), so that
    the motif and the cell of a row never differ (``280,5`` gives 280 in both).

    Parameters
    ----------
    metres : float, numpy.ndarray or pandas.Series
        Distances in metres (NaN and NA stay missing).

    Returns
    -------
    Same type as ``metres``
        The distances rounded to the metre, as floats.
    """
    return np.round(metres)


def _grouped(integers: np.ndarray) -> pa.Array:
    """Arrow strings of non-negative integers, thousands grouped (only large ones in Python)."""
    texts = pc.cast(pa.array(integers), pa.string())
    large = integers >= 1000
    if not large.any():
        return texts
    values = np.asarray(texts.to_numpy(zero_copy_only=False), dtype=object)
    values[large] = [number(value) for value in integers[large]]
    return pa.array(values, type=pa.string())


def distances(metres: Any, space: str = SPACE) -> pa.Array:
    """Write distances in metres the French way, vectorised.

    Parameters
    ----------
    metres : array-like of float
        Non-negative distances in metres; NaN gives a null.
    space : str, default :data:`SPACE`
        Between the number and its unit (:data:`NO_BREAK_SPACE` for HTML).

    Returns
    -------
    pyarrow.Array
        One string per distance: ``230 m`` below one kilometre (:func:`whole_metres`,
        as a table's cell shows it), ``12,3 km`` above.
    """
    values = np.asarray(metres, dtype=float).reshape(-1)
    missing = np.isnan(values)
    known = np.where(missing, 0.0, values)
    whole = whole_metres(known).astype(np.int64)
    near = np.flatnonzero(whole < 1000)
    far = np.flatnonzero(whole >= 1000)
    tenths = np.round(known[far] / 100).astype(np.int64)  # hectometres: tenths of a km
    # each row written once, in its unit: metres and kilometres apart, then in row order
    texts = pa.concat_arrays(
        [
            join(pc.cast(pa.array(whole[near]), pa.string()), f"{space}m"),
            join(
                _grouped(tenths // 10),
                ",",
                pc.cast(pa.array(tenths % 10), pa.string()),
                f"{space}km",
            ),
        ]
    )
    if len(near) and len(far):
        slot = np.empty(len(values), dtype=np.int64)
        slot[near], slot[far] = np.arange(len(near)), np.arange(len(near), len(values))
        texts = texts.take(pa.array(slot))
    if missing.any():
        texts = pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), texts)
    return texts


def distance(metres: Any, space: str = SPACE) -> str:
    """Write one distance in metres the French way (see :func:`distances`).

    Parameters
    ----------
    metres : float
        The distance; None, NaN or NA give :data:`UNKNOWN_DISTANCE`.
    space : str, default :data:`SPACE`
        Between the number and its unit.

    Returns
    -------
    str
        E.g. ``850 m``, ``2,3 km``.
    """
    if pd.isna(metres):
        return UNKNOWN_DISTANCE
    return distances([float(metres)], space)[0].as_py()


def threshold(metres: float, space: str = SPACE) -> str:
    """Write a distance chosen by a person (a rule, an option) without spurious decimals.

    Parameters
    ----------
    metres : float
        The distance in metres.
    space : str, default :data:`SPACE`
        Between the number and its unit.

    Returns
    -------
    str
        ``300 m``, ``1 km``, ``2,5 km``, ``10 km``.
    """
    if metres < 1000:
        return f"{number(metres, None)}{space}m"
    return f"{number(metres / 1000, None)}{space}km"


def within(metres: float, space: str = SPACE) -> str:
    """Say a distance threshold the same way everywhere: ``à 300 m ou moins``.

    Parameters
    ----------
    metres : float
        The threshold in metres (a rule's value, never a constant of the text).
    space : str, default :data:`SPACE`
        Between the number and its unit.

    Returns
    -------
    str
        E.g. ``à 300 m ou moins``, ``à 10 km ou moins``.
    """
    return f"à {threshold(metres, space)} ou moins"
