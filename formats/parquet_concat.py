"""Join Parquet files of one schema into one file by copying bytes, without decoding.

A Parquet file is `PAR1`, column chunks, a footer (FileMetaData, Thrift compact protocol),
its 4-byte length and `PAR1`. Data pages hold no absolute offsets; only the footer does.
So files are joined by copying each file's chunk region and writing one footer: the
row-group lists concatenated, every absolute offset of a later file shifted by where its
chunks now start, row counts summed, the key-value metadata replaced.

This is how a recorder's one-second segments become one trace at a clean stop: at the
cost of a file copy, not of decoding and re-encoding every row (which doubled the
recorder's CPU time and held row groups in memory).

concat_to_template() joins *narrow* files (each with a subset of a wide template schema's
columns, so that rows pay only for their own kind's columns) into one file of the template's
schema. A column a file lacks becomes, per row group, one all-null column chunk written at
the join: a data page holding one run of n zero levels, whose size does not grow with the
rows (a varint), so the join still costs a copy plus a few bytes per row group and column.

Only the compact-protocol subset Parquet footers use is implemented; unknown fields are
carried through unchanged. Files with page indexes or encryption are refused (their
offsets live outside the footer); the writer here never produces them.
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

MAGIC = b"PAR1"

# Compact protocol types.
STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)
BOOL = TRUE  # our in-memory tag for a bool field
ENCODED = 100  # our in-memory tag for a field kept encoded: (wire type, bytes)

# Field ids (parquet.thrift) that hold absolute file offsets, or that we read or rewrite.
FMD_SCHEMA, FMD_NUM_ROWS, FMD_ROW_GROUPS, FMD_KV, FMD_ENCRYPTION = 2, 3, 4, 5, 8
RG_COLUMNS, RG_TOTAL_BYTE_SIZE, RG_NUM_ROWS, RG_SORTING = 1, 2, 3, 4
RG_FILE_OFFSET, RG_TOTAL_COMPRESSED, RG_ORDINAL = 5, 6, 7
CC_FILE_OFFSET, CC_META, CC_OFFSET_INDEX, CC_COLUMN_INDEX, CC_CRYPTO = 2, 3, 4, 6, 8
CMD_OFFSETS = (9, 10, 11, 14)  # data, index, dictionary page; bloom filter
SE_TYPE, SE_REPETITION, SE_NAME, SE_NUM_CHILDREN = 1, 3, 4, 5
# Enum values: FieldRepetitionType; PageType, Encoding, CompressionCodec.
REQUIRED, REPEATED = 0, 2
DATA_PAGE, PLAIN, RLE, UNCOMPRESSED = 0, 0, 3, 0


class ParquetConcatError(ValueError):
    pass


# --- Thrift compact protocol: a struct is a list of [field_id, type, value] ---------------


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        data, pos = self.data, self.pos
        b = data[pos]
        pos += 1
        if b < 0x80:  # most values in a footer: one byte
            self.pos = pos
            return b
        result, shift = b & 0x7F, 7
        while True:
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                self.pos = pos
                return result
            shift += 7
            if shift > 70:
                raise ParquetConcatError("corrupt varint in footer")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, t: int) -> Any:
        if t in (I16, I32, I64):  # the commonest first
            n = self.varint()
            return (n >> 1) ^ -(n & 1)
        if t in (TRUE, FALSE):  # inside a list: one byte per bool
            return self.byte() == TRUE
        if t == BYTE:
            return self.byte()
        if t == DOUBLE:
            v = self.data[self.pos : self.pos + 8]
            self.pos += 8
            return v
        if t == BINARY:
            n = self.varint()
            v = self.data[self.pos : self.pos + n]
            if len(v) != n:
                raise ParquetConcatError("footer truncated")
            self.pos += n
            return v
        if t in (LIST, SET):
            h = self.byte()
            size, et = h >> 4, h & 0x0F
            if size == 15:
                size = self.varint()
            return (et, [self.value(et) for _ in range(size)])
        if t == MAP:
            size = self.varint()
            if size == 0:
                return (0, 0, [])
            kv = self.byte()
            kt, vt = kv >> 4, kv & 0x0F
            return (kt, vt, [(self.value(kt), self.value(vt)) for _ in range(size)])
        if t == STRUCT:
            return self.struct()
        raise ParquetConcatError(f"unknown thrift type {t} in footer")

    def struct(self) -> list:
        fields = []
        last = 0
        data = self.data
        while True:
            h = data[self.pos]
            self.pos += 1
            t = h & 0x0F
            if t == STOP:
                return fields
            delta = h >> 4
            fid = last + delta if delta else self.zigzag()
            if t in (TRUE, FALSE):
                fields.append([fid, BOOL, t == TRUE])
            else:
                fields.append([fid, t, self.value(t)])
            last = fid


_ONE_BYTE = [bytes((i,)) for i in range(128)]


def _varint(n: int) -> bytes:
    if 0 <= n < 128:
        return _ONE_BYTE[n]
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _zigzag(n: int) -> bytes:
    return _varint((n << 1) ^ (n >> 63))


def _value(t: int, v: Any) -> bytes:
    if t in (TRUE, FALSE):
        return bytes([TRUE if v else FALSE])
    if t == BYTE:
        return bytes([v])
    if t in (I16, I32, I64):
        return _zigzag(v)
    if t == DOUBLE:
        return v
    if t == BINARY:
        return _varint(len(v)) + v
    if t in (LIST, SET):
        et, items = v
        head = (
            bytes([(len(items) << 4) | et])
            if len(items) < 15
            else (bytes([0xF0 | et]) + _varint(len(items)))
        )
        if et == STRUCT:  # a struct item may come encoded already (see _null_chunk)
            return head + b"".join(x if isinstance(x, bytes) else _struct(x) for x in items)
        return head + b"".join(_value(et, x) for x in items)
    if t == MAP:
        kt, vt, items = v
        if not items:
            return b"\0"
        return (
            _varint(len(items))
            + bytes([(kt << 4) | vt])
            + b"".join(_value(kt, k) + _value(vt, x) for k, x in items)
        )
    if t == STRUCT:
        return _struct(v)
    raise ParquetConcatError(f"cannot encode thrift type {t}")


def _encoded(fields: list, fid: int) -> list:
    """`fields` with field `fid` replaced by its encoding (an ENCODED field), so that
    writing them again and again (a footer's schema) costs a copy, not an encoding."""
    return [[f, ENCODED, (t, _value(t, v))] if f == fid else [f, t, v] for f, t, v in fields]


def _struct(fields: list) -> bytes:
    out = bytearray()
    last = 0
    for fid, t, v in fields:
        if t == ENCODED:
            t, v = v
            encoded = v
        else:
            encoded = None
        wire = (TRUE if v else FALSE) if t == BOOL else t
        delta = fid - last
        out += bytes([(delta << 4) | wire]) if 0 < delta <= 15 else bytes([wire]) + _zigzag(fid)
        if encoded is not None:
            out += encoded
        elif t != BOOL:
            out += _value(t, v)
        last = fid
    out.append(STOP)
    return bytes(out)


def _get(fields: list, fid: int) -> list | None:
    for f in fields:
        if f[0] == fid:
            return f
    return None


# --- Parquet ------------------------------------------------------------------------------


def _footer(f: BinaryIO, size: int) -> tuple[list, int]:
    """(FileMetaData fields, offset where the footer starts) of an open file."""
    if size < 12:
        raise ParquetConcatError("too small to be Parquet")
    f.seek(size - 8)
    tail = f.read(8)
    (flen,) = struct.unpack("<I", tail[:4])
    if tail[4:] != MAGIC or flen > size - 12:
        raise ParquetConcatError("no Parquet footer")
    start = size - 8 - flen
    f.seek(start)
    return _Reader(f.read(flen)).struct(), start


def _shift(fields: list, delta: int, ordinal: int) -> None:
    """Shift the absolute offsets of one RowGroup's fields by delta, in place. An offset of
    0 (where the magic is) means none and stays 0: pyarrow writes data_page_offset 0 for
    the chunks of an empty table, which have no data page."""
    for f in fields:
        if f[0] == RG_FILE_OFFSET:
            f[2] += delta
        elif f[0] == RG_ORDINAL:
            f[2] = ordinal
    columns = _get(fields, RG_COLUMNS)
    for cc in columns[2][1] if columns else []:
        for f in cc:
            if f[0] in (CC_OFFSET_INDEX, CC_COLUMN_INDEX, CC_CRYPTO):
                raise ParquetConcatError("page indexes or encryption: cannot join by copying")
            if f[0] == CC_FILE_OFFSET and f[2]:
                f[2] += delta
            elif f[0] == CC_META:
                for m in f[2]:
                    if m[0] in CMD_OFFSETS and m[2]:
                        m[2] += delta


def _sources(sources: Iterable[Path | bytes]) -> Iterator[tuple[str, BinaryIO, list, int]]:
    """(name, open file, FileMetaData fields, offset where its footer starts) of each source
    in turn. A bytes source is read where it is: it was made in memory so as never to touch
    the disk before the join."""
    for i, src in enumerate(sources):
        opened: BinaryIO
        if isinstance(src, bytes):
            name, opened = f"source {i} (bytes)", io.BytesIO(src)
        else:
            name, opened = str(src), open(src, "rb")
        with opened as f:
            try:
                fmd, start = _footer(f, f.seek(0, 2))
            except ParquetConcatError as e:
                raise ParquetConcatError(f"{name}: {e}") from None
            if _get(fmd, FMD_ENCRYPTION):
                raise ParquetConcatError(f"{name}: encrypted")
            yield name, f, fmd, start


def _copy_chunks(f: BinaryIO, start: int, out: BinaryIO, name: str) -> int:
    """Copy the column chunks of `f` (all between the magic and the footer at `start`) to
    `out` a few MiB at a time. Returns the bytes copied."""
    f.seek(len(MAGIC))
    remaining = start - len(MAGIC)
    while remaining:
        chunk = f.read(min(remaining, 1 << 22))
        if not chunk:
            raise ParquetConcatError(f"{name}: truncated")
        out.write(chunk)
        remaining -= len(chunk)
    return start - len(MAGIC)


def _row_groups(fmd: list) -> list:
    return (_get(fmd, FMD_ROW_GROUPS) or [0, LIST, (STRUCT, [])])[2][1]


def _num_rows(fields: list) -> int:
    return (_get(fields, FMD_NUM_ROWS) or [0, I64, 0])[2]


def _write_footer(
    out: BinaryIO, base: list, row_groups: list, rows: int, key_value_metadata: dict
) -> None:
    """Write the footer: `base`'s FileMetaData with these row groups and rows, and its
    key-value metadata updated with `key_value_metadata`."""
    kv = _get(base, FMD_KV)
    pairs = {}
    for entry in kv[2][1] if kv else []:
        k, v = _get(entry, 1), _get(entry, 2)
        pairs[k[2]] = v[2] if v else b""
    pairs.update(key_value_metadata)
    kv_value = (STRUCT, [[[1, BINARY, k], [2, BINARY, v]] for k, v in pairs.items()])
    out_fields = []
    for f in base:
        if f[0] == FMD_NUM_ROWS:
            f = [FMD_NUM_ROWS, I64, rows]
        elif f[0] == FMD_ROW_GROUPS:
            f = [FMD_ROW_GROUPS, LIST, (STRUCT, row_groups)]
        elif f[0] == FMD_KV:
            f = [FMD_KV, LIST, kv_value]
        out_fields.append(f)
    if not kv:
        out_fields.append([FMD_KV, LIST, kv_value])
        out_fields.sort(key=lambda f: f[0])
    footer = _struct(out_fields)
    out.write(footer)
    out.write(struct.pack("<I", len(footer)))
    out.write(MAGIC)


def concat(files: Iterable[Path], out: BinaryIO, key_value_metadata: dict[bytes, bytes]) -> int:
    """Write the rows of `files` (one schema) to `out` as one Parquet file whose key-value
    metadata is that of the first file updated with `key_value_metadata`. Returns rows."""
    out.write(MAGIC)
    pos = len(MAGIC)
    merged: list | None = None
    schema_wire = None
    row_groups: list = []
    rows = 0
    for name, f, fmd, start in _sources(files):
        wire = _struct([x for x in fmd if x[0] == FMD_SCHEMA])
        if schema_wire is None:
            merged, schema_wire = _encoded(fmd, FMD_SCHEMA), wire
        elif wire != schema_wire:
            raise ParquetConcatError(f"{name}: schema differs from the first file's")
        delta = pos - len(MAGIC)
        for rg in _row_groups(fmd):
            _shift(rg, delta, len(row_groups))
            row_groups.append(rg)
        rows += _num_rows(fmd)
        pos += _copy_chunks(f, start, out, name)
    if merged is None:
        raise ParquetConcatError("no files to join")
    _write_footer(out, merged, row_groups, rows, key_value_metadata)
    return rows


# --- Joining narrow files into a template's wide schema -------------------------------------


class _Leaf(NamedTuple):
    path: tuple[bytes, ...]
    # The SchemaElements from its top-level field down to it, as written: equal for two
    # leaves exactly when type, repetition, logical type and the parents' are.
    elements: bytes
    physical_type: int
    max_def: int
    max_rep: int

    @property
    def name(self) -> str:
        return ".".join(p.decode(errors="replace") for p in self.path)


def _field(fields: list, fid: int, default: Any) -> Any:
    f = _get(fields, fid)
    return f[2] if f else default


def _leaves(fmd: list, name: str) -> list[_Leaf]:
    """The leaf columns of a file's schema in column-chunk order, with their levels: each
    OPTIONAL or REPEATED element on the way down adds a definition level, each REPEATED
    one a repetition level."""
    schema = _get(fmd, FMD_SCHEMA)
    elements = schema[2][1] if schema else []
    leaves: list[_Leaf] = []
    pos = 1  # elements[0] is the root

    def walk(chain: tuple, max_def: int, max_rep: int) -> None:
        nonlocal pos
        if pos >= len(elements):
            raise ParquetConcatError(f"{name}: schema truncated")
        el = elements[pos]
        pos += 1
        rep = _field(el, SE_REPETITION, REQUIRED)
        chain += (el,)
        max_def += rep != REQUIRED
        max_rep += rep == REPEATED
        children = _field(el, SE_NUM_CHILDREN, 0)
        for _ in range(children):
            walk(chain, max_def, max_rep)
        if not children:
            leaves.append(
                _Leaf(
                    tuple(_field(e, SE_NAME, b"") for e in chain),
                    b"".join(_struct(e) for e in chain),
                    _field(el, SE_TYPE, 0),
                    max_def,
                    max_rep,
                )
            )

    for _ in range(_field(elements[0], SE_NUM_CHILDREN, 0) if elements else 0):
        walk((), 0, 0)
    return leaves


def _levels(n: int, max_level: int) -> bytes:
    """n zero levels as a data page v1 holds them: a 4-byte length, then one RLE run."""
    run = _varint(n << 1) + bytes((max_level.bit_length() + 7) // 8)
    return struct.pack("<I", len(run)) + run


@functools.lru_cache(maxsize=4096)
def _null_parts(leaf: _Leaf, n: int) -> tuple[bytes, bytes, bytes, bytes]:
    """What an all-null chunk of n rows of `leaf` is, but for where it is written: its
    page, and its ColumnChunk in three pieces to be joined around that offset, encoded
    once per leaf and row count (a segment joins dozens of them; see _null_chunk)."""
    body = (_levels(n, leaf.max_rep) if leaf.max_rep else b"") + _levels(n, leaf.max_def)
    stats = [[3, I64, n]]  # null_count
    data_page_header = [[1, I32, n], [2, I32, PLAIN], [3, I32, RLE], [4, I32, RLE]]
    page_header = [
        [1, I32, DATA_PAGE],
        [2, I32, len(body)],
        [3, I32, len(body)],
        [5, STRUCT, [*data_page_header, [5, STRUCT, stats]]],
    ]
    page = _struct(page_header) + body
    # ColumnChunk {2: file_offset, 3: ColumnMetaData {..., 9: data_page_offset, 12: stats}}
    before = [
        [1, I32, leaf.physical_type],
        [2, LIST, (I32, [PLAIN, RLE])],
        [3, LIST, (BINARY, list(leaf.path))],
        [4, I32, UNCOMPRESSED],
        [5, I64, n],
        [6, I64, len(page)],
        [7, I64, len(page)],
    ]
    meta_head = _struct(before)[:-1]  # without its STOP: the fields go on
    head = bytes([(CC_FILE_OFFSET << 4) | I64])
    middle = bytes([(CC_META - CC_FILE_OFFSET) << 4 | STRUCT]) + meta_head
    middle += bytes([(9 - 7) << 4 | I64])
    tail = bytes([(12 - 9) << 4 | STRUCT]) + _struct(stats) + bytes([STOP, STOP])
    return page, head, middle, tail


def _null_chunk(leaf: _Leaf, n: int, offset: int) -> tuple[bytes, bytes]:
    """An all-null column chunk of n rows to be written at `offset`: its bytes (one
    uncompressed data page whose levels are all 0, null at the top level) and its
    ColumnChunk, encoded. The codec is per column chunk, so it may differ from its
    neighbours'."""
    page, head, middle, tail = _null_parts(leaf, n)
    at = _zigzag(offset)
    return page, head + at + middle + at + tail


def _add(fields: list, fid: int, n: int) -> None:
    f = _get(fields, fid)
    if f:
        f[2] += n


@functools.lru_cache(maxsize=4)
def _template(template: bytes) -> tuple[list, list[_Leaf], dict]:
    """A template's footer (its schema kept encoded), leaves and leaf index by path:
    parsed once (a recorder joins every segment under the same template)."""
    base, _ = _footer(io.BytesIO(template), len(template))
    wide = _leaves(base, "template")
    return _encoded(base, FMD_SCHEMA), wide, {leaf.path: i for i, leaf in enumerate(wide)}


def concat_to_template(
    sources: Iterable[Path | bytes],
    out: BinaryIO,
    template: bytes,
    key_value_metadata: dict[bytes, bytes],
) -> int:
    """Join `sources` (each a Path or a bytes object holding a whole Parquet file) into `out`,
    as one Parquet file whose schema is that of `template` (the bytes of a Parquet file with
    that schema and no rows, as pyarrow writes it). Each source's leaf columns must be a
    subset of the template's (matched by path_in_schema) with identical SchemaElements
    (type, repetition, logical/converted type, and those of their parent groups for nested
    columns); anything else raises ParquetConcatError naming the column. Every row group of
    every source becomes a row group of `out` with the template's columns in template order;
    columns the source lacks are all-null column chunks written here. Key-value metadata is
    the template's, updated with `key_value_metadata`. Returns the number of rows.

    Identical parent groups (child counts included) mean a source holds either all or none
    of a nested field's leaves, so a null synthesised at the top level never contradicts a
    value the source has for a sibling leaf."""
    base, wide, index = _template(template)
    out.write(MAGIC)
    pos = len(MAGIC)
    row_groups: list = []
    rows = 0
    for name, f, fmd, start in _sources(sources):
        to_wide = []  # template index of each of the source's columns
        for leaf in _leaves(fmd, name):
            i = index.get(leaf.path)
            if i is None:
                raise ParquetConcatError(f"{name}: column {leaf.name} is not in the template")
            if leaf.elements != wide[i].elements:
                raise ParquetConcatError(
                    f"{name}: column {leaf.name} differs from the template's (type, "
                    "repetition or logical type, or its parent groups')"
                )
            to_wide.append(i)
        present = set(to_wide)
        missing = [leaf for i, leaf in enumerate(wide) if i not in present]
        for leaf in missing:
            if not leaf.max_def:
                raise ParquetConcatError(
                    f"{name}: lacks column {leaf.name}, which is required (cannot be null)"
                )
        delta = pos - len(MAGIC)
        pos += _copy_chunks(f, start, out, name)
        for rg in _row_groups(fmd):
            _shift(rg, delta, len(row_groups))
            columns = _get(rg, RG_COLUMNS)
            if not columns or len(columns[2][1]) != len(to_wide):
                raise ParquetConcatError(f"{name}: a row group does not have every column")
            chunks: list = [None] * len(wide)
            for cc, i in zip(columns[2][1], to_wide):
                chunks[i] = cc
            n = _field(rg, RG_NUM_ROWS, 0)
            written = 0
            for leaf in missing:
                page, chunks[index[leaf.path]] = _null_chunk(leaf, n, pos)
                out.write(page)
                pos += len(page)
                written += len(page)
            columns[2] = (STRUCT, chunks)
            _add(rg, RG_TOTAL_BYTE_SIZE, written)
            _add(rg, RG_TOTAL_COMPRESSED, written)
            for sc in _field(rg, RG_SORTING, (STRUCT, []))[1]:
                idx = _get(sc, 1)  # column_idx, required
                if idx:
                    idx[2] = to_wide[idx[2]]
            row_groups.append(rg)
        rows += _num_rows(fmd)
    _write_footer(out, base, row_groups, rows, key_value_metadata)
    return rows
