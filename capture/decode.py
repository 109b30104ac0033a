"""Bulk decoding of ring-buffer records into Arrow tables.

A record is a batch (formats/schema.py EventType.batch_dtype): a header (kind, count,
cpu) and either a fixed array of event structs, of which the first `count` are valid, or,
for types whose last member is a string (or strings), `count` events of varying size at
the offsets the record lists. All records of one kind are joined into one buffer; each
column is then gathered from that buffer alone (a strided view, or one gather of the
members before the strings), and strings are copied only for their used length. No Python
object and no string formatting per event. A table holds one kind's own columns only: a
row costs nothing for the columns of other kinds.
"""

from __future__ import annotations

import ctypes as ct
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from bpfcap.formats import arrow
from bpfcap.formats.events import BY_KIND_ID
from bpfcap.formats.schema import EventType, Field


def _binary(lengths: np.ndarray, data: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.binary(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _short_cstrings(raw: np.ndarray) -> pa.Array:
    """Like _cstrings, for short fields whose values repeat (comm), as a dictionary array:
    the fixed-width values hashed, the NUL stripped from the few distinct ones only. It
    stays a dictionary through to the Parquet writer, which writes it as one."""
    n, width = raw.shape
    fixed = pa.Array.from_buffers(
        pa.binary(width), n, [None, pa.py_buffer(np.ascontiguousarray(raw))]
    )
    enc = fixed.dictionary_encode()
    distinct = [v.split(b"\0", 1)[0] for v in enc.dictionary.to_pylist()]
    return pa.DictionaryArray.from_arrays(enc.indices, arrow.strings(distinct))


def _cstrings(raw: np.ndarray) -> pa.Array:
    """NUL-terminated strings from an (n, width) uint8 array, as an Arrow binary array.
    Bytes after the first NUL (stale data from earlier events) are dropped."""
    n, width = raw.shape
    is_nul = raw == 0
    lengths = np.where(is_nul.any(axis=1), is_nul.argmax(axis=1), width).astype(np.int64)
    return _binary(lengths, np.ascontiguousarray(raw[np.arange(width) < lengths[:, None]]))


def _sized_strings(window: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """Strings of known length from an (n, width) byte window: only the first
    max(lengths) bytes of each row are read."""
    lengths = lengths.astype(np.int64)
    width = int(lengths.max()) if len(lengths) else 0
    window = window[:, :width]
    return _binary(lengths, np.ascontiguousarray(window[np.arange(width) < lengths[:, None]]))


def _constant_string(value: str, n: int) -> pa.Array:
    """`value` n times, as a dictionary of one (indices from calloc: nothing written)."""
    indices = pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(np.zeros(n, np.int32))])
    return pa.DictionaryArray.from_arrays(indices, arrow.strings([value], pa.string()))


class _Events:
    """The valid events of one kind with fixed-size events, as views into the joined
    record buffer."""

    def __init__(self, t: EventType, buf: np.ndarray):
        self.t = t
        self.buf = buf
        self.batch_dtype = t.batch_dtype()
        self.batches = buf.view(self.batch_dtype)
        counts = np.minimum(self.batches["hdr"]["count"], t.batch)
        self.valid = np.arange(t.batch) < counts[:, None]
        self.n = int(counts.sum())
        self._counts = counts

    def field(self, name: str) -> np.ndarray:
        return self.batches["ev"][name][self.valid]

    def cpus(self) -> np.ndarray:
        """Each event's CPU: its batch's."""
        return np.repeat(self.batches["hdr"]["cpu"], self._counts)

    def window(self, name: str, width: int) -> np.ndarray:
        """(n, width) bytes starting at field `name` of each valid event, copying only
        those bytes. The view has one opaque `width`-byte item per event: numpy copies
        such items 2-3x faster than the same bytes as a uint8 axis."""
        if width == 0:
            return np.zeros((self.n, 0), dtype=np.uint8)
        ev_dtype = self.t.numpy_dtype()
        view = np.ndarray(
            shape=(len(self.batches), self.t.batch),
            dtype=np.dtype((np.void, width)),
            buffer=self.buf,
            offset=self.batch_dtype.fields["ev"][1] + ev_dtype.fields[name][1],
            strides=(self.batch_dtype.itemsize, ev_dtype.itemsize),
        )
        return view[self.valid].view(np.uint8).reshape(-1, width)


# Bytes readable past the last record of a Records buffer: a window gathered from the
# last event may run past its end (RecordSink keeps this much room).
READ_PAD = 512


def _gather(buf: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """(len(at), width) bytes: `width` bytes from each offset `at` in `buf`, as one
    gather of opaque items (numpy copies those far faster than a 2-D byte index)."""
    if width == 0:
        return np.zeros((len(at), 0), np.uint8)
    items = np.ndarray(
        shape=(len(buf) - width + 1,), dtype=np.dtype((np.void, width)), buffer=buf, strides=(1,)
    )
    return items[at].view(np.uint8).reshape(len(at), width)


class _TailEvents:
    """The events of one kind whose size varies (a type with a tail), from records at
    `starts` in the joined buffer: the members before the tail gathered in one go (8-byte
    words from each event's start), the tail's bytes gathered for their used length."""

    def __init__(self, t: EventType, buf: np.ndarray, starts: np.ndarray):
        self.t = t
        self.buf = buf
        bd = t.batch_dtype()
        hdr_size = bd.fields["off"][1]
        data_at = bd.fields["data"][1]
        words = buf[: len(buf) // 8 * 8].view(np.uint64)
        counts = np.minimum(words[starts // 8] >> 32, t.batch).astype(np.int64)  # hdr.count
        self.n = n = int(counts.sum())
        first = np.zeros(len(counts), np.int64)
        np.cumsum(counts[:-1], out=first[1:])
        self._cpus = np.repeat(buf.view(np.uint32)[(starts + 8) // 4], counts)  # hdr.cpu
        rec = np.repeat(starts.astype(np.int64), counts)
        within = np.arange(n, dtype=np.int64) - np.repeat(first, counts)
        off = buf.view(np.uint16)[(rec + hdr_size) // 2 + within].astype(np.int64)
        self.start = rec + data_at + off  # each event's first byte (8-aligned)
        ev = t.numpy_dtype()
        nwords = (t.tail_offset + 7) // 8
        head = np.dtype(
            {
                "names": [f.name for f in t.all_fields[:-1]],
                "formats": [ev.fields[f.name][0] for f in t.all_fields[:-1]],
                "offsets": [ev.fields[f.name][1] for f in t.all_fields[:-1]],
                "itemsize": nwords * 8,
            }
        )
        self.head = _gather(buf, self.start, nwords * 8).view(head).reshape(n)

    def field(self, name: str) -> np.ndarray:
        return self.head[name]

    def cpus(self) -> np.ndarray:
        return self._cpus

    def window(self, name: str, width: int) -> np.ndarray:
        return self.head[name].reshape(self.n, -1)[:, :width]

    def tail_bytes(self, lengths: np.ndarray) -> np.ndarray:
        """The first `lengths[i]` bytes of each event's tail, joined: a window of the
        longest length gathered from each event (one copy of n x width bytes), then the
        bytes in use kept; or, where one long string would make the window wasteful,
        each byte gathered on its own."""
        lengths = lengths.astype(np.int64)
        total = int(lengths.sum())
        width = int(lengths.max()) if len(lengths) else 0
        if width * len(lengths) <= 3 * total + 8 * len(lengths):
            window = _gather(self.buf, self.start + self.t.tail_offset, width)
            return window[np.arange(width) < lengths[:, None]]
        ends = np.cumsum(lengths)
        idx = np.repeat(self.start + self.t.tail_offset - (ends - lengths), lengths)
        return self.buf[idx + np.arange(total)]

    def tail_items(self, counts: np.ndarray, width: int) -> np.ndarray:
        """(sum(counts), width): the first counts[i] items of each event's tail."""
        counts = counts.astype(np.int64)
        first = np.cumsum(counts) - counts
        item = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(first, counts)
        at = np.repeat(self.start + self.t.tail_offset, counts) + item * width
        return self.buf[at[:, None] + np.arange(width)]


def _column(f: Field, ev: _Events | _TailEvents) -> pa.Array:
    if f.batch:
        return arrow.numbers(ev.cpus())
    if f.bytes_len is not None:
        raw = np.ascontiguousarray(ev.window(f.name, f.bytes_len))
        return pa.Array.from_buffers(pa.binary(f.bytes_len), ev.n, [None, pa.py_buffer(raw)])
    shape = f.string_shape
    tail = isinstance(ev, _TailEvents) and f is ev.t.tail
    if shape is not None and len(shape) == 1:
        if f.length:
            lengths = np.minimum(ev.field(f.length), shape[0] - 1)
            if tail:
                return _binary(lengths, ev.tail_bytes(lengths))
            width = int(lengths.max()) if ev.n else 0
            return _sized_strings(ev.window(f.name, width), lengths)
        if shape[0] <= 16:
            return _short_cstrings(ev.window(f.name, shape[0]))
        return _cstrings(ev.window(f.name, shape[0]))
    if shape is not None:
        k, width = shape
        used = np.minimum(ev.field(f.count).astype(np.int64), k)
        if tail:
            strings = _cstrings(ev.tail_items(used, width))
        else:
            values = ev.field(f.name)
            keep = np.arange(k) < used[:, None]
            strings = _cstrings(values[keep].reshape(-1, width))
        offsets = np.zeros(ev.n + 1, dtype=np.int32)
        np.cumsum(used, out=offsets[1:])
        return pa.ListArray.from_arrays(arrow.numbers(offsets), strings)
    values = ev.field(f.name)
    if f.enum is not None:  # the codes are the indices of a dictionary of the names
        codes = values.astype(np.int32)
        unknown = codes >= len(f.enum)  # reads as null
        return pa.DictionaryArray.from_arrays(
            arrow.numbers(np.where(unknown, 0, codes), unknown), arrow.strings(f.enum, pa.string())
        )
    if f.boolean:
        return arrow.bools(values != 0)
    if f.null_if is not None:
        return arrow.numbers(values, values == f.null_if)
    return arrow.numbers(values)


def _table(t: EventType, ev: _Events | _TailEvents) -> pa.Table:
    """`kind` and t's own columns, in the in-memory representation (formats/schema.py);
    `kind`, comm and enums as dictionary arrays of it."""
    columns = [_constant_string(t.name, ev.n)]
    names = ["kind"]
    for f in t.columns:
        col = _column(f, ev)
        want = f.arrow_type()
        if col.type != want and not pa.types.is_dictionary(col.type):
            col = col.cast(want)
        columns.append(col)
        names.append(f.name)
    return pa.Table.from_arrays(columns, names=names)


class Records(NamedTuple):
    """Records of one kind, joined: `buf`, and where each record starts in it. `buf` runs
    READ_PAD bytes past the last record (their content is undefined)."""

    buf: np.ndarray
    starts: np.ndarray


class RecordSink:
    """Ring-buffer records, copied from the ring's mmap into one growable buffer per kind,
    until take() hands them over (to be decoded in the segment writer's thread, away
    from the drain). Counts rows per kind as they come (from each record's header)."""

    def __init__(self) -> None:
        self._bufs: dict[int, np.ndarray] = {}
        self._used: dict[int, int] = {}
        self._starts: dict[int, list[int]] = {}
        self.rows: dict[int, int] = {}  # events in the records added since take()
        # Buffers given back (recycle()) once decoded, by kind: reused, so that their
        # pages are not faulted in (zeroed by the kernel) again for every segment.
        self._free: dict[int, list[np.ndarray]] = {}

    def _reserve(self, kind: int, size: int, count: int) -> int:
        """Room for a record of `size` bytes; returns its offset in the kind's buffer.
        A record of a type with fixed-size events gets its whole batch's room whatever
        it holds (a partial batch is sent with only its events): the records of a kind
        stay an array of batches (the bytes past its events are undefined)."""
        t = BY_KIND_ID.get(kind)
        if t is not None and t.tail is None:
            size = max(size, t.batch_dtype().itemsize)
        buf = self._bufs.get(kind)
        used = self._used.get(kind, 0)
        if buf is None or used + size + READ_PAD > len(buf):
            free = self._free.get(kind)
            want = max(1 << 20, 2 * (used + size + READ_PAD))
            grown = free.pop() if free and len(free[-1]) >= want else np.empty(want, np.uint8)
            if buf is not None:
                grown[:used] = buf[:used]
            self._bufs[kind] = buf = grown
        self._used[kind] = used + size
        self._starts.setdefault(kind, []).append(used)
        self.rows[kind] = self.rows.get(kind, 0) + min(count, t.batch if t else 0)
        return used

    def add_array(self, record: np.ndarray) -> None:
        """Copy a record in from a uint8 array (a view of the ring buffer's mmap)."""
        kind, count = (int(x) for x in record[:8].view(np.uint32))
        start = self._reserve(kind, len(record), count)
        self._bufs[kind][start : start + len(record)] = record

    def add(self, record: bytes) -> None:
        kind = int.from_bytes(record[:4], "little")
        count = int.from_bytes(record[4:8], "little")
        start = self._reserve(kind, len(record), count)
        ct.memmove(self._bufs[kind].ctypes.data + start, record, len(record))

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def take(self) -> dict[int, Records]:
        """The records added since the last take, by kind; the buffers are the caller's
        now (the sink starts new ones)."""
        out = {
            k: Records(self._bufs[k][: n + READ_PAD], np.array(self._starts[k], dtype=np.int64))
            for k, n in self._used.items()
            if n
        }
        self._bufs, self._used, self._starts, self.rows = {}, {}, {}, {}
        return out

    def recycle(self, records: dict[int, Records]) -> None:
        """Take back buffers from take() that are no longer needed (one spare per kind)."""
        for kind, r in records.items():
            base = r.buf.base if isinstance(r.buf.base, np.ndarray) else r.buf
            self._free[kind] = [base]


# Records decoded at a time: bounds the decoder's temporaries (index arrays of 8 bytes
# per string byte, the gathered members) whatever a segment holds.
DECODE_RECORDS = 128


def decode_buffers(by_kind: dict[int, Records]) -> dict[str, pa.Table]:
    """Tables by kind name from joined records of each kind."""
    out = {}
    for kind_id, (buf, starts) in by_kind.items():
        t = BY_KIND_ID.get(kind_id)
        if t is None:
            raise ValueError(f"ring buffer record of unknown kind {kind_id}")
        if t.tail is not None:
            if (starts % 8).any():
                raise ValueError(f"{t.name} records are not 8-byte aligned")
            parts = [
                _table(t, _TailEvents(t, buf, starts[i : i + DECODE_RECORDS]))
                for i in range(0, len(starts), DECODE_RECORDS)
            ]
        else:
            size = t.batch_dtype().itemsize
            if (starts != np.arange(len(starts)) * size).any():
                raise ValueError(f"{t.name} record size differs from the declaration")
            buf = buf[: len(starts) * size]
            step = DECODE_RECORDS * size
            parts = [_table(t, _Events(t, buf[i : i + step])) for i in range(0, len(buf), step)]
        out[t.name] = pa.concat_tables(parts)
    return out


def decode_records(records: list[bytes]) -> dict[str, pa.Table]:
    """Tables by kind name from raw batch records (any mix of kinds, in any order)."""
    sink = RecordSink()
    for r in records:
        sink.add(r)
    return decode_buffers(sink.take())
