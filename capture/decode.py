"""Bulk decoding of ring-buffer records into Arrow tables.

A record is a batch: a header (kind, count, cpu) and a fixed array of event structs, of
which the first `count` are valid. All records of one kind are joined, viewed as a numpy
structured array and turned into Arrow columns with vectorised operations: no Python
object and no string formatting per event.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from bpfcap.formats.events import BY_KIND_ID, SCHEMA
from bpfcap.formats.schema import EventType, Field


def _cstrings(raw: np.ndarray) -> pa.Array:
    """NUL-terminated strings from an (n, width) uint8 array, as an Arrow binary array.
    Bytes after the first NUL (stale data from earlier events) are dropped."""
    n, width = raw.shape
    is_nul = raw == 0
    lengths = np.where(is_nul.any(axis=1), is_nul.argmax(axis=1), width).astype(np.int64)
    data = raw[np.arange(width) < lengths[:, None]]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))]
    )


def _column(f: Field, events: np.ndarray) -> pa.Array:
    values = events[f.name]
    shape = f.string_shape
    if shape is not None and len(shape) == 1:
        return _cstrings(values)
    if shape is not None:
        k, width = shape
        used = np.minimum(events[f.count].astype(np.int64), k)
        keep = np.arange(k) < used[:, None]
        strings = _cstrings(values[keep].reshape(-1, width))
        offsets = np.zeros(len(events) + 1, dtype=np.int32)
        np.cumsum(used, out=offsets[1:])
        return pa.ListArray.from_arrays(pa.array(offsets), strings)
    if f.enum is not None:
        codes = values.astype(np.int64)
        names = pa.array(list(f.enum) + [None])
        return names.take(pa.array(np.where(codes < len(f.enum), codes, len(f.enum))))
    if f.boolean:
        return pa.array(values != 0)
    return pa.array(values)


def decode_events(t: EventType, events: np.ndarray) -> pa.Table:
    """A table in the trace schema from a structured array of `t` events."""
    n = len(events)
    own = {f.name: f for f in t.columns}
    columns = []
    for field in SCHEMA:
        if field.name == "kind":
            columns.append(pa.array(np.full(n, t.name, dtype=object), pa.string()))
        elif field.name in own:
            columns.append(_column(own[field.name], events).cast(field.type))
        else:
            columns.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def split_records(records: list[bytes]) -> dict[int, list[bytes]]:
    by_kind: dict[int, list[bytes]] = {}
    for r in records:
        by_kind.setdefault(int.from_bytes(r[:4], "little"), []).append(r)
    return by_kind


def decode_records(records: list[bytes]) -> dict[str, pa.Table]:
    """Tables by kind name from raw batch records (any mix of kinds, in any order)."""
    out = {}
    for kind_id, recs in split_records(records).items():
        t = BY_KIND_ID.get(kind_id)
        if t is None:
            raise ValueError(f"ring buffer record of unknown kind {kind_id}")
        dtype = t.batch_dtype()
        if any(len(r) != dtype.itemsize for r in recs):
            raise ValueError(f"{t.name} record size differs from the declaration")
        batches = np.frombuffer(b"".join(recs), dtype=dtype)
        counts = np.minimum(batches["hdr"]["count"], t.batch)
        valid = np.arange(t.batch) < counts[:, None]
        out[t.name] = decode_events(t, batches["ev"][valid])
    return out
