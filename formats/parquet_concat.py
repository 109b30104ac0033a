"""Join Parquet files of one schema into one file by copying bytes, without decoding.

A Parquet file is `PAR1`, column chunks, a footer (FileMetaData, Thrift compact protocol),
its 4-byte length and `PAR1`. Data pages hold no absolute offsets; only the footer does.
So files are joined by copying each file's chunk region and writing one footer: the
row-group lists concatenated, every absolute offset of a later file shifted by where its
chunks now start, row counts summed, the key-value metadata replaced.

This is how a recorder's one-second segments become one trace at a clean stop: at the
cost of a file copy, not of decoding and re-encoding every row (which doubled the
recorder's CPU time and held row groups in memory).

Only the compact-protocol subset Parquet footers use is implemented; unknown fields are
carried through unchanged. Files with page indexes or encryption are refused (their
offsets live outside the footer); the writer here never produces them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

MAGIC = b"PAR1"

# Compact protocol types.
STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)
BOOL = TRUE  # our in-memory tag for a bool field

# Field ids (parquet.thrift) that hold absolute file offsets, or that we rewrite.
FMD_NUM_ROWS, FMD_ROW_GROUPS, FMD_KV, FMD_ENCRYPTION = 3, 4, 5, 8
RG_COLUMNS, RG_FILE_OFFSET, RG_ORDINAL = 1, 5, 7
CC_FILE_OFFSET, CC_META, CC_OFFSET_INDEX, CC_COLUMN_INDEX, CC_CRYPTO = 2, 3, 4, 6, 8
CMD_OFFSETS = (9, 10, 11, 14)  # data, index, dictionary page; bloom filter


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
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise ParquetConcatError("corrupt varint in footer")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, t: int) -> Any:
        if t in (TRUE, FALSE):  # inside a list: one byte per bool
            return self.byte() == TRUE
        if t == BYTE:
            return self.byte()
        if t in (I16, I32, I64):
            return self.zigzag()
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
        while True:
            h = self.byte()
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


def _varint(n: int) -> bytes:
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


def _struct(fields: list) -> bytes:
    out = bytearray()
    last = 0
    for fid, t, v in fields:
        wire = (TRUE if v else FALSE) if t == BOOL else t
        delta = fid - last
        out += bytes([(delta << 4) | wire]) if 0 < delta <= 15 else bytes([wire]) + _zigzag(fid)
        if t != BOOL:
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
    """Shift the absolute offsets of one RowGroup's fields by delta, in place."""
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
                    if m[0] in CMD_OFFSETS:
                        m[2] += delta


def concat(files: Iterable[Path], out: BinaryIO, key_value_metadata: dict[bytes, bytes]) -> int:
    """Write the rows of `files` (one schema) to `out` as one Parquet file whose key-value
    metadata is that of the first file updated with `key_value_metadata`. Returns rows."""
    out.write(MAGIC)
    pos = len(MAGIC)
    merged: list | None = None
    schema_wire = None
    row_groups: list = []
    rows = 0
    for path in files:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            fmd, start = _footer(f, size)
            if _get(fmd, FMD_ENCRYPTION):
                raise ParquetConcatError(f"{path}: encrypted")
            wire = _struct([x for x in fmd if x[0] == 2])
            if schema_wire is None:
                merged, schema_wire = fmd, wire
            elif wire != schema_wire:
                raise ParquetConcatError(f"{path}: schema differs from the first file's")
            delta = pos - len(MAGIC)
            for rg in (_get(fmd, FMD_ROW_GROUPS) or [0, LIST, (STRUCT, [])])[2][1]:
                _shift(rg, delta, len(row_groups))
                row_groups.append(rg)
            rows += (_get(fmd, FMD_NUM_ROWS) or [0, I64, 0])[2]
            f.seek(len(MAGIC))
            remaining = start - len(MAGIC)
            while remaining:
                chunk = f.read(min(remaining, 1 << 22))
                if not chunk:
                    raise ParquetConcatError(f"{path}: truncated")
                out.write(chunk)
                remaining -= len(chunk)
            pos += start - len(MAGIC)
    if merged is None:
        raise ParquetConcatError("no files to join")
    kv = _get(merged, FMD_KV)
    pairs = {}
    for entry in kv[2][1] if kv else []:
        k, v = _get(entry, 1), _get(entry, 2)
        pairs[k[2]] = v[2] if v else b""
    pairs.update(key_value_metadata)
    kv_value = (STRUCT, [[[1, BINARY, k], [2, BINARY, v]] for k, v in pairs.items()])
    out_fields = []
    for f in merged:
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
    return rows
