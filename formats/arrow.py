"""Arrow arrays built from numpy buffers and bytes, without pyarrow's generic conversion.

`pa.array(list)`, `pa.scalar()`, `pa.table(dict)` and `Schema.empty_table()` look for
pandas on every call: with pandas installed that imports it (half a second and ~50 MB
for the recorder), without it the failed import is attempted again each time (seen as
~5% of the recorder's CPU in an open storm). The recorder's paths build arrays here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def strings(values: Sequence[bytes | str], type_: pa.DataType | None = None) -> pa.Array:
    """A binary (or `type_`: string) array of `values` (no nulls)."""
    type_ = type_ or pa.binary()
    data = [v.encode() if isinstance(v, str) else v for v in values]
    offsets = np.zeros(len(data) + 1, np.int32)
    np.cumsum([len(v) for v in data], out=offsets[1:])
    return pa.Array.from_buffers(
        type_, len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    )


def numbers(
    values: np.ndarray, mask: np.ndarray | None = None, type_: pa.DataType | None = None
) -> pa.Array:
    """An integer (or timestamp, with `type_`) array of a numpy array; null where `mask`."""
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        return bools(values, mask)
    type_ = type_ or pa.from_numpy_dtype(values.dtype)
    if mask is None or not mask.any():
        return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])
    return pa.Array.from_buffers(
        type_, len(values), [_validity(mask), pa.py_buffer(values)], null_count=int(mask.sum())
    )


def bools(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    bits = pa.py_buffer(np.packbits(values, bitorder="little"))
    if mask is None or not mask.any():
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, bits])
    return pa.Array.from_buffers(
        pa.bool_(), len(values), [_validity(mask), bits], null_count=int(mask.sum())
    )


def _validity(mask: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(~mask, bitorder="little"))


def values(arr: pa.Array | pa.ChunkedArray, dtype: np.dtype) -> np.ndarray:
    """The values of a fixed-width array without nulls, as numpy `dtype` (of the same
    width; a view where the array has one chunk)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    dtype = np.dtype(dtype)
    return np.frombuffer(
        arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize
    )
