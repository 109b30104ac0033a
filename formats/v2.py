"""Format 2's columns: what stock Parquet readers (DuckDB, polars, pandas) read natively.

bpfcap's analyzers work on one in-memory representation (formats/schema.py: `Field.arrow_type`,
the types format 1 stored): kernel strings as binary, u64 as uint64, addresses as 16 raw
bytes. Format 2 stores the same values as readers without bpfcap expect them, losslessly:

* text (`char[N]`, lists of them) is a UTF-8 `string` column; where a value is not valid
  UTF-8 (kernel strings need not be), the string shows U+FFFD for the bad bytes and the
  companion column `<name>_raw` (binary, null everywhere else) holds the exact bytes. A file
  has a `_raw` column only where some value needed it; a reader treats a missing one as null;
* u64 is stored as int64, bit for bit (socket ids are 63-bit, every other u64 is a time,
  a size or a sector: all below 2^63), so nothing reads back as float or wraps;
* addresses (`u8[16]` with a `family`) are text, as inet_ntop(3) writes them;
* `time`, the wall clock (TIMESTAMP(NANOS, UTC)) of `ts_ns`, is on every row;
* the file's pandas metadata maps integer and boolean columns to pandas' nullable dtypes,
  so `pandas.read_parquet` keeps them exact where another kind's rows hold nulls;
* every column's doc and unit are key-value metadata `bpfcap.column.<name>`.

`encode()` turns a table of one kind from the in-memory representation into format 2's,
`decode()` turns columns read from a format-2 file back.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import arrow
from .schema import COMMON_FIELDS, KIND_FIELD, EventType, Field

RAW = "_raw"
TIME_FIELD = pa.field(
    "time",
    pa.timestamp("ns", tz="UTC"),
    nullable=True,
    metadata={
        "doc": "Wall-clock time of ts_ns: ts_ns plus the recording's realtime - monotonic "
        "offset taken at start (the trace's clock mapping)",
        "unit": "ns since the Unix epoch, UTC",
    },
)
# Only in a trace that `bpfcap merge` made of several hosts' traces (formats/merge.py);
# absent from a recording, whose rows are all of the one host its metadata names.
HOST_FIELD = pa.field(
    "host",
    pa.string(),
    nullable=True,
    metadata={
        "doc": "The host the row was recorded on, as the metadata's hosts[].name names it "
        "(a multi-host trace only: absent from a recording, whose rows are all of its "
        "host); one host per row group, dictionary-encoded: it costs nothing per row"
    },
)
KEY_COLUMN = "bpfcap.column."
_PANDAS_INT = {
    pa.uint8(): "UInt8",
    pa.uint16(): "UInt16",
    pa.uint32(): "UInt32",
    pa.int32(): "Int32",
    pa.int64(): "Int64",
}


def is_text(f: Field) -> bool:
    return f.string_shape is not None


def is_address(f: Field) -> bool:
    return f.bytes_len is not None


def file_type(f: Field) -> pa.DataType:
    """The format-2 type of a declared column."""
    t = f.arrow_type()
    if is_text(f):
        return pa.list_(pa.string()) if pa.types.is_list(t) else pa.string()
    if is_address(f):
        return pa.string()
    if t == pa.uint64():
        return pa.int64()
    return t


def file_fields(f: Field) -> list[pa.Field]:
    """The format-2 columns of a declared column: itself, and `<name>_raw` for text."""
    base = f.arrow_field()
    meta = dict(base.metadata or {})
    if is_address(f):
        meta[b"doc"] = meta[b"doc"].replace(
            b"(IPv4: the first 4 bytes)", b"as text (inet_ntop: 192.0.2.1, 2001:db8::1)"
        )
    out = [pa.field(f.name, file_type(f), nullable=True, metadata=meta)]
    if is_text(f):
        out.append(
            pa.field(
                f.name + RAW,
                f.arrow_type(),
                nullable=True,
                metadata={
                    b"doc": f"The exact bytes of {f.name} where they are not valid UTF-8 "
                    f"(then {f.name} shows U+FFFD for the bad bytes); null elsewhere".encode()
                },
            )
        )
    return out


def _common() -> list[pa.Field]:
    out = [KIND_FIELD]
    for f in COMMON_FIELDS:
        out += file_fields(f)
        if f.name == "ts_ns":
            out.append(TIME_FIELD)
    return out


def kind_schema(t: EventType, raw: Iterable[str] | None = None, hosts: bool = False) -> pa.Schema:
    """The format-2 columns of one kind's rows (what `bpfcap export --type` writes): with
    every `<name>_raw` companion, or only those named in `raw`; with `hosts`, the `host`
    column of a multi-host trace after `kind`."""
    common = _common()
    if hosts:
        common.insert(1, HOST_FIELD)
    fields = common + [x for f in t.fields if f.column for x in file_fields(f)]
    if raw is not None:
        keep = set(raw)
        fields = [f for f in fields if not f.name.endswith(RAW) or f.name in keep]
    return _with_metadata(fields)


def file_schema(types: Iterable[EventType], hosts: bool = False) -> pa.Schema:
    """The format-2 schema of a trace file holding `types`: every kind's columns; with
    `hosts`, the `host` column of a multi-host trace after `kind`."""
    common = _common()
    if hosts:
        common.insert(1, HOST_FIELD)
    fields = {f.name: f for f in common}
    for t in types:
        for f in t.fields:
            if f.column:
                for x in file_fields(f):
                    seen = fields.setdefault(x.name, x)
                    if seen.type != x.type:
                        raise TypeError(f"column {x.name!r} declared twice with different types")
    return _with_metadata(list(fields.values()))


def _with_metadata(fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(fields, metadata={b"pandas": json.dumps(_pandas_meta(fields)).encode()})


def _pandas_meta(fields: list[pa.Field]) -> dict:
    """pandas' own schema metadata, naming nullable dtypes (pyarrow's to_pandas honours
    it): without it, an integer column with nulls (the other kinds' rows) becomes float64
    and 64-bit values lose their low bits."""
    cols = []
    for f in fields:
        if f.type in _PANDAS_INT:
            numpy_type, pandas_type = _PANDAS_INT[f.type], str(f.type)
        elif pa.types.is_boolean(f.type):
            numpy_type, pandas_type = "boolean", "boolean"
        elif pa.types.is_timestamp(f.type):
            numpy_type, pandas_type = "datetime64[ns, UTC]", "datetimetz"
        else:
            numpy_type, pandas_type = "object", "unicode" if f.type == pa.string() else "object"
        cols.append(
            {
                "name": f.name,
                "field_name": f.name,
                "pandas_type": pandas_type,
                "numpy_type": numpy_type,
                "metadata": {"timezone": "UTC"} if pandas_type == "datetimetz" else None,
            }
        )
    return {
        "index_columns": [],
        "column_indexes": [],
        "columns": cols,
        "creator": {"library": "bpfcap", "version": "2"},
        "pandas_version": "2.0.0",
    }


def column_docs(schema: pa.Schema) -> dict[bytes, bytes]:
    """Key-value metadata `bpfcap.column.<name>`: "<doc> [<unit>]", for readers that do not
    read Arrow field metadata (DuckDB: parquet_kv_metadata())."""
    out = {}
    for f in schema:
        md = f.metadata or {}
        doc = md.get(b"doc", b"").decode()
        if b"unit" in md:
            doc += f" [{md[b'unit'].decode()}]"
        out[(KEY_COLUMN + f.name).encode()] = doc.encode()
    return out


# --- encode: in-memory representation -> format 2 -----------------------------------------


def _reinterpret(arr: pa.Array, type_: pa.DataType) -> pa.Array:
    """The same 64-bit values under another integer type, without a copy."""
    if isinstance(arr, pa.ChunkedArray):
        return pa.chunked_array([_reinterpret(c, type_) for c in arr.chunks], type_)
    return pa.Array.from_buffers(type_, len(arr), arr.buffers(), arr.null_count, arr.offset)


def _text(arr: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """A binary (or list<binary>) column as string (or list<string>), and the raw column
    where some value is not UTF-8 (None when all are: the common case costs one check)."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if pa.types.is_dictionary(arr.type):  # comm: check the few distinct values only
        text, raw = _text(arr.dictionary)
        if raw is None:
            return pa.DictionaryArray.from_arrays(arr.indices, text), None
        return text.take(arr.indices), raw.take(arr.indices)
    listed = pa.types.is_list(arr.type)
    target = pa.list_(pa.string()) if listed else pa.string()
    try:
        return arr.cast(target), None
    except pa.ArrowInvalid:
        pass
    values = arr.flatten() if listed else arr
    enc = values.dictionary_encode()
    good, shown = [], []
    for v in enc.dictionary.to_pylist():
        try:
            shown.append(v.decode("utf-8"))
            good.append(True)
        except UnicodeDecodeError:
            shown.append(v.decode("utf-8", "replace"))
            good.append(False)
    text = pa.array(shown, pa.string()).take(enc.indices)
    bad = pc.invert(pa.array(good).take(enc.indices))
    if listed:
        text = pa.ListArray.from_arrays(arr.offsets, text, mask=arr.is_null())
        # A row is raw if any of its strings is: count bad strings per list.
        bad_idx = np.flatnonzero(bad.to_numpy(zero_copy_only=False))
        offsets = arr.offsets.to_numpy()
        rows_bad = np.zeros(len(arr), bool)
        rows_bad[np.searchsorted(offsets, bad_idx, side="right") - 1] = True
        bad = pa.array(rows_bad)
    raw = pc.if_else(bad, arr, pa.nulls(len(arr), arr.type))
    return text, raw


def _ntop(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw)


def _addresses(addr: pa.Array, family: pa.Array) -> pa.Array:
    """16-byte addresses as text, formatted once per distinct (family, address)."""
    addr, family = (
        c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in (addr, family)
    )
    n = len(addr)
    keys = np.zeros((n, 18), np.uint8)
    keys[:, :2] = family.fill_null(0).to_numpy().astype("<u2").view(np.uint8).reshape(n, 2)
    keys[:, 2:] = np.frombuffer(addr.buffers()[1], np.uint8, 16 * n, 16 * addr.offset).reshape(
        n, 16
    )
    enc = pa.Array.from_buffers(pa.binary(18), n, [None, pa.py_buffer(keys)]).dictionary_encode()
    texts = [_ntop(int.from_bytes(k[:2], "little"), k[2:]) for k in enc.dictionary.to_pylist()]
    out = pa.array(texts, pa.string()).take(enc.indices)
    return pc.if_else(addr.is_null(), pa.nulls(n, pa.string()), out) if addr.null_count else out


def encode(t: EventType, table: pa.Table, realtime_minus_monotonic_ns: int) -> pa.Table:
    """A table of kind `t` (the in-memory representation: `kind` and t's columns) in
    format 2: `kind_schema(t)`'s columns, `_raw` ones only where needed; and `host`
    after `kind` where the table has one (a multi-host trace: formats/merge.py)."""
    cols: dict[str, pa.Array] = {"kind": table.column("kind")}
    if HOST_FIELD.name in table.column_names:
        cols[HOST_FIELD.name] = table.column(HOST_FIELD.name)
    for f in t.columns:
        arr = table.column(f.name)
        if is_text(f):
            cols[f.name], raw = _text(arr)
            if raw is not None:
                cols[f.name + RAW] = raw
        elif is_address(f):
            cols[f.name] = _addresses(pc.cast(arr, pa.binary(16)), table.column("family"))
        elif arr.type == pa.uint64():
            cols[f.name] = _reinterpret(arr, pa.int64())
        else:
            cols[f.name] = arr
        if f.name == "ts_ns":
            ts = arrow.values(table.column("ts_ns"), np.int64)
            cols["time"] = arrow.numbers(ts + realtime_minus_monotonic_ns, type_=TIME_FIELD.type)
    # Dictionary columns stay dictionaries: the Parquet writer writes them as they are
    # (the joined file's schema says string: that is what a dictionary is stored as).
    schema = kind_schema(t)
    nullable = {f.name: f.nullable for f in (*schema, HOST_FIELD)}
    return pa.Table.from_arrays(
        list(cols.values()),
        schema=pa.schema([pa.field(n, c.type, nullable[n]) for n, c in cols.items()]),
    )


# --- decode: format 2 -> in-memory representation -----------------------------------------


def read_columns(names: Iterable[str], have: set[str]) -> list[str]:
    """The format-2 columns to read for the in-memory columns `names`, of those a file
    `have`s (the `_raw` companions where present)."""
    out = []
    for n in names:
        out.append(n)
        if n + RAW in have:
            out.append(n + RAW)
    return out


def _bytes_of_text(text: pa.Array, raw: pa.Array | None, type_: pa.DataType) -> pa.Array:
    """Text read back as the bytes it was made of: the raw bytes where the file has them.
    A dictionary column (read so because it is cheaper to group by) stays one."""
    dictionary = pa.types.is_dictionary(text.type)
    if dictionary:
        text = pa.DictionaryArray.from_arrays(text.indices, text.dictionary.cast(pa.binary()))
    else:
        text = text.cast(type_)
    if raw is None or raw.null_count == len(raw):
        return text
    plain = text.dictionary_decode() if dictionary else text
    out = pc.if_else(pc.is_valid(raw), raw, plain)
    return out.dictionary_encode() if dictionary else out


def _pton(text: str) -> bytes:
    if ":" in text:
        return socket.inet_pton(socket.AF_INET6, text)
    return socket.inet_aton(text) + bytes(12)


def decode(f: Field, col: pa.Array, raw: pa.Array | None) -> pa.Array:
    """One format-2 column (and its `_raw` companion, if read) in the in-memory type."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks()
    want = f.arrow_type()
    if is_text(f):
        return _bytes_of_text(col, raw, want)
    if is_address(f):
        enc = col.dictionary_encode()
        values = [None if v is None else _pton(v) for v in enc.dictionary.to_pylist()]
        return pa.array(values, want).take(enc.indices)
    if want == pa.uint64():
        return _reinterpret(col, want)
    return col
