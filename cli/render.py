"""Rendering report tables (from analyze/) onto a binary stream: BCC text, JSON Lines, CSV.

Writers know nothing of reports: text takes the report's column declarations
(analyze.common.OutputColumn: header, %-formats), JSON and CSV only the table. All the
formatting of report values lives here.

Text is bytes, as BCC's printb writes it: comm, path and args go out raw, whatever their
encoding. JSON decodes bytes as UTF-8 with U+FFFD for invalid sequences (JSON has no
bytes). CSV decodes with surrogateescape and encodes back the same way, so the bytes in a
CSV field are exactly the kernel's.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from bpfcap.analyze.common import OutputColumn

FORMATS = ("text", "json", "csv")
_BATCH_ROWS = 65536


def write(table: pa.Table, columns: Sequence[OutputColumn], fmt: str, stream: IO[bytes]) -> None:
    """Write `table` to `stream` as `fmt` (one of FORMATS); `columns` declares the text
    layout of every column the table may have."""
    if fmt == "text":
        write_text(table, columns, stream)
    elif fmt == "json":
        write_json(table, stream)
    elif fmt == "csv":
        write_csv(table, stream)
    else:
        raise ValueError(f"unknown output format {fmt!r}")


def write_text(table: pa.Table, columns: Sequence[OutputColumn], stream: IO[bytes]) -> None:
    """BCC's layout: a header line, then one line per row, each the concatenation of the
    shown columns' %-formats (so, as in BCC, `%-16s` pads but never truncates).

    Formatting is column by column with Arrow compute (integers, strings, octal), which
    keeps a multi-million-row report to well under a microsecond per row; only formats
    Arrow has no kernel for (`%f`) go through Python, one column at a time. The result is
    byte for byte what `fmt % value` gives (tests/unit/test_render.py checks both)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    by_name = {c.name: c for c in columns}
    cols = [by_name[name] for name in table.column_names]
    stream.write("".join(c.head_fmt % c.header for c in cols).encode() + b"\n")
    for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
        parts = [
            _format_column(batch.column(i), c.fmt, (c.head_fmt % c.null).encode())
            for i, c in enumerate(cols)
        ]
        lines = pc.binary_join_element_wise(*parts, pa.scalar(b"\n"), pa.scalar(b""))
        offsets = lines.buffers()[1]
        data = lines.buffers()[2]
        if data is None:
            continue
        start, end = (
            int.from_bytes(offsets[i * 4 : i * 4 + 4], "little", signed=True)
            for i in (lines.offset, lines.offset + len(lines))
        )
        stream.write(memoryview(data)[start:end])


_SPEC = re.compile(r"^([^%]*)%(-?)(0?)(\d*)(?:\.(\d+))?([dsof])(.*)$", re.S)


def _format_column(arr: pa.Array, fmt: str, null: bytes) -> pa.Array:
    """`fmt % value` for every value of `arr`, as a binary array; `null` where null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    m = _SPEC.match(fmt)
    if m is None or m.group(5) is not None or m.group(6) == "f":
        return _format_python(arr, fmt, null)
    prefix, left, zero, width, _, conv, suffix = m.groups()
    w = int(width or 0)
    if conv in "d":
        if not pa.types.is_integer(arr.type) or zero:
            return _format_python(arr, fmt, null)
        text = pc.cast(arr, pa.string()).cast(pa.binary())
    elif conv == "s":
        if pa.types.is_string(arr.type):
            text = arr.cast(pa.binary())
        elif pa.types.is_binary(arr.type):
            text = arr
        else:
            return _format_python(arr, fmt, null)
    else:  # "o"
        if not pa.types.is_integer(arr.type) or not zero or left:
            return _format_python(arr, fmt, null)
        text = _octal(arr, w)
        w = 0
    if w:
        pad = pc.max_element_wise(pc.subtract(w, pc.binary_length(text)), 0)
        spaces = pc.binary_repeat(pa.scalar(b" "), pad)
        text = pc.binary_join_element_wise(
            *((text, spaces) if left else (spaces, text)), pa.scalar(b"")
        )
    if prefix or suffix:
        text = pc.binary_join_element_wise(
            pa.scalar(prefix.encode()), text, pa.scalar(suffix.encode()), pa.scalar(b"")
        )
    return pc.fill_null(text, pa.scalar(null)) if arr.null_count else text


def _octal(arr: pa.Array, width: int) -> pa.Array:
    """`%0<width>o` of non-negative integers: octal, zero-padded to at least `width`."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    v = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False)).astype(np.uint64)
    # Digits each value needs (at least 1), then at least `width`.
    needed = np.ones(len(v), dtype=np.int64)
    rest = v >> np.uint64(3)
    while rest.any():
        needed += rest > 0
        rest >>= np.uint64(3)
    needed = np.maximum(needed, width)
    ndig = int(needed.max()) if len(v) else width
    shifts = np.arange(ndig - 1, -1, -1, dtype=np.uint64) * np.uint64(3)
    digits = ((v[:, None] >> shifts) & np.uint64(7)).astype(np.uint8) + ord("0")
    data = np.ascontiguousarray(digits[np.arange(ndig) >= (ndig - needed)[:, None]])
    offsets = np.zeros(len(v) + 1, dtype=np.int32)
    np.cumsum(needed, out=offsets[1:])
    out = pa.Array.from_buffers(
        pa.binary(), len(v), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return pc.if_else(arr.is_null(), pa.scalar(None, pa.binary()), out) if arr.null_count else out


def _format_python(arr: pa.Array, fmt: str, null: bytes) -> pa.Array:
    import pyarrow as pa

    f = fmt.encode()
    values = _text_values(arr.to_pylist())
    return pa.array([null if v is None else f % v for v in values], pa.binary())


def _text_values(values: list[Any]) -> list[Any]:
    # bytes %-formatting takes bytes for %s, not str.
    return [v.encode() if isinstance(v, str) else v for v in values]


def write_json(table: pa.Table, stream: IO[bytes]) -> None:
    """JSON Lines: one object per row, keyed by column name; null stays null."""
    names = table.column_names
    for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
        lines = []
        for row in batch.to_pylist():
            obj = {k: _json_value(row[k]) for k in names}
            lines.append(json.dumps(obj, ensure_ascii=False) + "\n")
        stream.write("".join(lines).encode("utf-8", "surrogateescape"))


def _json_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


def write_csv(table: pa.Table, stream: IO[bytes]) -> None:
    """A header row of column names, then the rows; null is an empty field."""
    text = io.TextIOWrapper(
        stream, encoding="utf-8", errors="surrogateescape", newline="", write_through=True
    )
    try:
        w = csv.writer(text, lineterminator="\n")
        w.writerow(table.column_names)
        for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            w.writerows([_csv_value(v) for v in row] for row in zip(*columns))
        text.flush()
    finally:
        text.detach()  # the stream belongs to the caller: do not close it


def _csv_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return v
