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
    shown columns' %-formats (so, as in BCC, `%-16s` pads but never truncates)."""
    by_name = {c.name: c for c in columns}
    cols = [by_name[name] for name in table.column_names]
    stream.write("".join(c.head_fmt % c.header for c in cols).encode() + b"\n")
    fmts = [c.fmt.encode() for c in cols]
    nulls = [(c.head_fmt % c.null).encode() for c in cols]
    for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
        values = [_text_values(batch.column(i).to_pylist()) for i in range(len(cols))]
        lines = []
        for row in zip(*values):
            parts = [null if v is None else fmt % v for v, fmt, null in zip(row, fmts, nulls)]
            lines.append(b"".join(parts) + b"\n")
        stream.write(b"".join(lines))


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
