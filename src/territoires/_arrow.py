"""Arrow string columns: built from pandas/numpy, joined element-wise, given back to pandas."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_STR = pd.StringDtype("pyarrow")


def text(values: Any) -> pa.Array:
    """Arrow string array from a pandas/numpy column (None/NA → null)."""
    if isinstance(values, pd.Series):
        values = values.astype(_STR).array
    if isinstance(values, pd.arrays.ArrowStringArray):
        return pa.chunked_array(values._pa_array).combine_chunks().cast(pa.string())
    return pa.array(values, type=pa.string(), from_pandas=True)


def scattered(n: int, rows: np.ndarray, values: Any) -> pa.Array:
    """Arrow strings of length ``n``: ``values`` at positions ``rows``, null elsewhere.

    Converts only the given values, not ``n`` Python objects (mostly None) under the GIL.
    """
    position = np.full(n, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    return text(values).take(pa.array(position, mask=position < 0))


def series(values: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """pandas ``string[pyarrow]`` Series over arrow strings, without copying."""
    return pd.Series(pd.arrays.ArrowStringArray(values), index=index)


def join(*parts: Any) -> pa.Array:
    """Concatenate arrow strings and str scalars element-wise (null if any part is null).

    Parts are brought to one string type (``large_string`` as soon as one part is).
    """
    large = any(getattr(part, "type", None) == pa.large_string() for part in parts)
    kind = pa.large_string() if large else pa.string()
    same = [
        pa.scalar(part, kind)
        if isinstance(part, str)
        else part
        if part.type == kind
        else part.cast(kind)
        for part in parts
    ]
    return pc.binary_join_element_wise(*same, pa.scalar("", kind))
