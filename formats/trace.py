"""Reading trace files: format version 2 (format 1 is still read; formats/v2.py says how
they differ). What a trace is, what a file must hold to be read (refused otherwise, in one
line), and its rows streamed a row group at a time in bounded memory, whatever a file
claims. Writing: formats/writer.py; the recorder's segment directory: capture/segments.py.

A trace is Parquet (zstd), in one of two shapes that every command reads alike:

* one file (what a clean stop leaves), or
* a directory of closed segment files `seg-NNNNNN.parquet` (what a recorder leaves while
  it runs, as `<output>.partial/`, and after it is killed). A segment is written to a
  `.tmp` name and renamed when complete, so every `*.parquet` in the directory is whole.
  Segment 0, the header, has no rows: the metadata known at start, written before the
  BPF program is loaded, so that a recorder stopped before its first segment closed
  (killed, or the disk full) leaves an empty trace that still says what, where and when.

Every file carries, in its Parquet footer key-value metadata:

* `bpfcap.format_version`: the format version, checked before any data is read;
* `bpfcap.meta`: JSON with the host, kernel, versions, command line, clock mapping, probe
  manifest, per-type and per-CPU seen/lost counters (cumulative up to the end of that
  file), process table snapshot, settings and the agent's own resource use.

Rows: see formats/schema.py and formats/v2.py (one wide table, a `kind` column, one kind
per row group; each kind's rows written as its own narrow file and joined under the full
schema, the other kinds' columns as all-null chunks).
Within a kind, rows are in the order they were drained, not strictly by time (CPUs
drain independently): readers sort by timestamp.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import v2
from .errors import IncompatibleTraceError, TraceFormatError
from .events import BY_NAME, EVENT_TYPES, SCHEMA
from .schema import empty_table

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
KEY_VERSION = b"bpfcap.format_version"
KEY_META = b"bpfcap.meta"
PARTIAL_SUFFIX = ".partial"
SEGMENT_GLOB = "seg-*.parquet"
# Segment 0 of a segment directory: no rows, the metadata known at start (written first
# by the recorder: capture/segments.py).
# A Parquet file of the trace schema like any segment: stock readers see no rows in it,
# rotation joins it with the segments after it, the merge at a clean stop copies no rows
# from it.
HEADER = "seg-000000.parquet"
# seg-000001.parquet: one segment; seg-000001-000060.parquet: segments 1 to 60 joined
# (record --rotate). A joined file wins over its segments where both are present (the
# recorder was killed between writing the join and deleting the segments).
_SEGMENT_RE = re.compile(r"^seg-(\d+)(?:-(\d+))?\.parquet$")


def segment_span(name: str) -> tuple[int, int, bool] | None:
    """(first, last, joined) of a segment file's name: seg-A.parquet is (A, A, False),
    seg-A-B.parquet (A, B, True); None for any other name."""
    m = _SEGMENT_RE.match(name)
    if not m:
        return None
    a = int(m.group(1))
    joined = m.group(2) is not None
    return a, int(m.group(2)) if joined else a, joined


def trace_files(directory: Path) -> list[Path]:
    """The segment files of a directory trace, in time order, each row once."""
    spans = []
    for f in directory.glob(SEGMENT_GLOB):
        span = segment_span(f.name)
        if span is not None:
            spans.append((*span, f))
    covered = [(a, b) for a, b, joined, _ in spans if joined]
    return [
        f
        for a, _, joined, f in sorted(spans)
        if joined or not any(lo <= a <= hi for lo, hi in covered)
    ]


# Every declared column, by name (a name means one thing in every kind that has it).
FIELDS = {f.name: f for t in EVENT_TYPES for f in t.columns}
_UPGRADE = "upgrade bpfcap (pip install -U bpfcap) to read it"
# Columns added to format 1 after its first files were written (the format only ever
# gains columns): a file without them was written by a recorder that did not know them,
# and reads them as null. Any other missing column makes the file unreadable.
ADDED_TO_V1 = frozenset({"args_from", "args_unread", "ppid", "pcomm", "dirs"})


def clock_offset(meta: dict[str, Any]) -> int:
    """The recording's realtime - monotonic offset (ns): `time` = `ts_ns` + this."""
    return int((meta.get("clock") or {}).get("realtime_minus_monotonic_ns", 0))


@dataclass
class Trace:
    """An opened trace: its metadata (from its newest file) and the files holding rows."""

    path: Path
    files: list[Path]
    meta: dict[str, Any]
    complete: bool  # False when the recorder did not stop cleanly (a segment directory)
    size: int
    # What a reader must be told besides the rows (info and every report print them).
    notes: list[str] = field(default_factory=list)
    versions: dict[Path, int] = field(default_factory=dict)  # format version of each file

    @property
    def version(self) -> int:
        return int(self.meta.get("format_version", 0))

    def row_groups(
        self, kind: str, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[tuple[Path, int, bool]]:
        """(file, row group, mixed) holding rows of `kind`, in file order, from statistics
        alone; `mixed`: the group may hold other kinds too (bpfcap writes none such).

        With `since_ns` and/or `until_ns` (monotonic ns, the window [since_ns, until_ns)),
        only the groups that may hold an event of `kind` completing in the window, at
        ts_ns + lat_ns as reports place it (a null or absent latency counting 0): a group
        is left out when its statistics show that every row completed before since_ns
        (max ts_ns + max lat_ns < since_ns) or started at or after until_ns (min ts_ns >=
        until_ns). Never fewer: a group whose statistics cannot say (absent, of another
        type, negative or out of range: see _times()) is kept. The kept groups may hold
        rows outside the window: the caller still filters rows."""
        window = since_ns is not None or until_ns is not None
        return [
            (g.file, g.index, g.kind is None)
            for g in row_group_kinds(self.files, times=window)
            if g.kind in (None, kind) and not (window and _outside(g, kind, since_ns, until_ns))
        ]

    def time_span(self, kind: str | None = None) -> tuple[int, int] | None:
        """(first ts_ns, last ts_ns + lat_ns) bounding the rows of `kind` (of every kind if
        None), from row-group statistics alone: no row starts before the first or
        completes after the second. None when there are no such rows, or when some group's
        statistics cannot say."""
        lo = hi = None
        for g in row_group_kinds(self.files, times=True):
            if kind is not None and g.kind not in (None, kind):
                continue
            first, last = _bounds(g, kind)
            if first is None or last is None:
                return None
            lo = first if lo is None else min(lo, first)
            hi = last if hi is None else max(hi, last)
        return None if lo is None or hi is None else (lo, hi)

    def batches(
        self,
        kind: str,
        columns: list[str],
        groups: list[tuple[Path, int, bool]] | None = None,
        as_dictionary: tuple[str, ...] = (),
    ) -> Iterator[pa.Table]:
        """The rows of one kind, one row group at a time, in file order: bounded memory
        for traces of any size. `groups` (from row_groups()) lets a caller count them.
        Only the columns asked for are read (a group of that one kind needs no filter).
        The next row group is read in a thread while the caller works on this one.
        Columns in `as_dictionary` come as dictionary arrays, as Parquet stores them
        (cheaper to read and to group by than the expanded strings)."""
        todo = self.row_groups(kind) if groups is None else groups
        if not todo:
            return  # no rows of this kind (an older trace may lack its columns too)
        absent, schemas = self._check_columns(columns)
        # One file open at a time (the groups come in file order): a killed recording of
        # hours is thousands of segments, more than a process may have open.
        opened: dict[Path, tuple[pq.ParquetFile, list[str]]] = {}

        def read(f: Path, i: int, mixed: bool) -> tuple[Path, pa.Table, list[str]]:
            """Row group i of f, compact: its text columns as dictionaries (as Parquet
            stores repeated values), not yet expanded; and the columns read."""
            if f not in opened:
                for pf, _ in opened.values():
                    pf.close()
                opened.clear()
                schema = schemas[f]
                here = [c for c in columns if c not in absent[f]]
                new = self.versions.get(f, FORMAT_VERSION) >= 2
                stored = v2.read_columns(here, set(schema.names)) if new else here
                text = [
                    c
                    for c in {*stored, *as_dictionary}
                    if c in schema.names
                    and (
                        pa.types.is_string(schema.field(c).type)
                        or pa.types.is_binary(schema.field(c).type)
                    )
                ]
                with reading(f):
                    opened[f] = (pq.ParquetFile(f, read_dictionary=text), stored)
            pf, stored = opened[f]
            with reading(f):
                t = pf.read_row_group(i, columns=["kind", *stored] if mixed else stored)
            if mixed:
                kinds = t["kind"]
                if pa.types.is_dictionary(kinds.type):
                    kinds = kinds.cast(pa.string())
                t = t.filter(pc.equal(kinds, kind)).drop_columns(["kind"])
            _check_lengths(f, t)
            return f, t, stored

        def expand(f: Path, compact: pa.Table, stored: list[str]) -> Iterator[pa.Table]:
            """The rows of a compact row group in slices of at most READ_BYTES once their
            text is expanded, in the in-memory representation."""
            here = [c for c in columns if c not in absent[f]]
            new = self.versions.get(f, FORMAT_VERSION) >= 2
            for t in _slices(compact, as_dictionary):
                if new:  # format 2's columns as the in-memory representation
                    with reading(f):
                        out = t.select([])  # keeps the row count when no column is asked
                        for c in here:
                            raw = t[c + v2.RAW] if c + v2.RAW in stored else None
                            out = out.append_column(c, v2.decode(FIELDS[c], t[c], raw))
                        t = out
                if absent[f]:  # columns this file predates: null, in the order asked for
                    t = pa.table(
                        {
                            c: t[c] if c in here else pa.nulls(t.num_rows, SCHEMA.field(c).type)
                            for c in columns
                        }
                    )
                yield t

        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bpfcap-read") as pool:
                ahead = pool.submit(read, *todo[0]) if todo else None
                for nxt in todo[1:]:
                    got = ahead.result()
                    ahead = pool.submit(read, *nxt)
                    yield from expand(*got)
                if ahead is not None:
                    yield from expand(*ahead.result())
        finally:
            for pf, _ in opened.values():
                pf.close()

    def _check_columns(
        self, names: list[str]
    ) -> tuple[dict[Path, set[str]], dict[Path, pa.Schema]]:
        """The columns exist, with the types this bpfcap reads (a file may be hostile),
        except those added to the format after a file was written: returned, per file,
        to be read as null; and each file's schema."""
        absent, schemas = {}, {}
        for f in self.files:
            with reading(f):
                schema = schemas[f] = pq.read_schema(f)
            new = self.versions.get(f, FORMAT_VERSION) >= 2
            absent[f] = (
                set() if new else {n for n in names if n not in schema.names and n in ADDED_TO_V1}
            )
            missing = [n for n in names if n not in schema.names and n not in absent[f]]
            if missing:
                raise TraceFormatError(f"{f}: column(s) {', '.join(missing)} missing")
            for n in names:
                if n in absent[f] or n not in FIELDS:
                    continue
                have = schema.field(n).type
                want = v2.file_type(FIELDS[n]) if new else FIELDS[n].arrow_type()
                if have != want:
                    raise TraceFormatError(f"{f}: column {n} is {have}, not {want}")
                raw = n + v2.RAW
                if new and raw in schema.names and schema.field(raw).type != FIELDS[n].arrow_type():
                    raise TraceFormatError(f"{f}: column {raw} is {schema.field(raw).type}")
        return absent, schemas

    def read(self, kind: str, columns: list[str] | None = None) -> pa.Table:
        """All rows of one kind as one table: the kind's own columns unless `columns` is
        given (for small kinds; stream big ones with batches())."""
        t = BY_NAME.get(kind)
        if t is None:
            raise TraceFormatError(f"unknown event type {kind!r}")
        names = columns or [f.name for f in t.columns]
        chunks = list(self.batches(kind, names))
        return pa.concat_tables(chunks) if chunks else empty_table(SCHEMA).select(names)


# A reader's memory, whatever a file claims: a row group is read with its text columns
# as dictionaries (each distinct value once, as Parquet stores them), then expanded
# READ_BYTES at a time. A value longer than MAX_VALUE_BYTES (bpfcap writes at most a
# path of 255 bytes, 20 arguments of 128) makes the file unreadable, not the reader's
# memory run out: a 100 KB file of one long path repeated 500,000 times would be 3 GB.
READ_BYTES = 16 << 20
MAX_VALUE_BYTES = 64 << 10


def _widest(col: pa.ChunkedArray) -> int:
    """The longest value, in bytes, of a dictionary column's dictionaries (0 if empty)."""
    return max(
        (pc.max(pc.binary_length(c.dictionary)).as_py() for c in col.chunks if len(c.dictionary)),
        default=0,
    )


def _check_lengths(f: Path, t: pa.Table) -> None:
    for name in t.column_names:
        if pa.types.is_dictionary(t[name].type) and _widest(t[name]) > MAX_VALUE_BYTES:
            raise TraceFormatError(
                f"{f}: a value of column {name} is longer than {MAX_VALUE_BYTES} bytes "
                "(bpfcap writes none such: a damaged or hostile file)"
            )


def _slices(t: pa.Table, keep: tuple[str, ...]) -> Iterator[pa.Table]:
    """`t` with its dictionary columns (but those in `keep`) expanded, in slices of rows
    whose expanded text is at most READ_BYTES."""
    expand = [n for n in t.column_names if pa.types.is_dictionary(t[n].type) and n not in keep]
    widest = sum(_widest(t[n]) for n in expand)
    step = max(1, READ_BYTES // widest) if widest else max(1, t.num_rows)
    for at in range(0, max(1, t.num_rows), step):
        part = t.slice(at, step)
        for name in expand:
            col = part[name]
            part = part.set_column(
                part.column_names.index(name), name, col.cast(col.type.value_type)
            )
        yield part


class _Group(NamedTuple):
    """A non-empty row group, as its statistics describe it."""

    file: Path
    index: int
    rows: int
    kind: str | None  # None where the statistics do not name a single kind (mixed)
    # Of all its rows (of every kind, if mixed), where the statistics say (else None):
    ts: tuple[int, int] | None  # min and max ts_ns
    lat: int | None  # max lat_ns, a null counting 0


# Kinds without a lat_ns column: their events complete at ts_ns. Any other kind (an
# unknown one too) is taken to have one.
_NO_LAT = frozenset(t.name for t in EVENT_TYPES if "lat_ns" not in {f.name for f in t.columns})


def row_group_kinds(files: list[Path], times: bool = False) -> Iterator[_Group]:
    """Every non-empty row group, from statistics alone; with `times`, their ts_ns and
    lat_ns bounds too (else None). One footer read at a time, each file closed before the
    next. (Not pyarrow.dataset's fragments: their pruning tests one column against a
    literal, not ts_ns + lat_ns against a window, and trusts statistics this checks.)"""
    for f in files:
        with reading(f):
            md = pq.read_metadata(f)
            if "kind" not in md.schema.names:
                raise TraceFormatError(f"{f}: no kind column")
            col = md.schema.names.index("kind")
            ts_col, lat_col = (_leaf(md, "ts_ns"), _leaf(md, "lat_ns")) if times else (None, None)
            groups = []
            for i in range(md.num_row_groups):
                rg = md.row_group(i)
                if not rg.num_rows:
                    continue
                st = rg.column(col).statistics
                one = st.min if st is not None and st.has_min_max and st.min == st.max else None
                kind = one if isinstance(one, str) else None
                ts, lat = _times(rg, ts_col, lat_col) if times else (None, None)
                groups.append(_Group(f, i, rg.num_rows, kind, ts, lat))
        yield from groups


def _leaf(md: pq.FileMetaData, name: str) -> int | None:
    """The index of the top-level column `name` among a file's column chunks, if any."""
    return next((i for i in range(md.num_columns) if md.schema.column(i).path == name), None)


def _times(
    rg: pq.RowGroupMetaData, ts_col: int | None, lat_col: int | None
) -> tuple[tuple[int, int] | None, int | None]:
    """A row group's (min ts_ns, max ts_ns) and max lat_ns, from statistics that can be
    trusted to bound every row: 64-bit integers, no null timestamp, values a monotonic
    time holds (0 to 2^62, as bpfcap writes; a negative int64 is a huge u64 in the reader,
    and a bigger value is capped by reports); a lat_ns chunk without min/max counts as 0
    only when all null (other kinds' columns, or no latency). None where they cannot."""

    def stats(c: int | None) -> pq.Statistics | None:
        if c is None or rg.column(c).physical_type != "INT64":
            return None  # absent, or another type (a hostile file): never skip on it
        return rg.column(c).statistics

    def time_range(st: pq.Statistics) -> tuple[int, int] | None:
        if not st.has_min_max:
            return None
        lo, hi = st.min, st.max
        return (lo, hi) if _is_time(lo) and _is_time(hi) and lo <= hi else None

    st = stats(ts_col)
    ts = time_range(st) if st is not None and st.has_null_count and st.null_count == 0 else None
    st = stats(lat_col)
    if st is None:
        return ts, None
    if st.has_min_max:
        span = time_range(st)
        return ts, span[1] if span is not None else None
    return ts, 0 if st.has_null_count and st.null_count == rg.num_rows else None


def _bounds(g: _Group, kind: str | None) -> tuple[int | None, int | None]:
    """The earliest start and latest completion of the rows of `kind` (of any kind if
    None) in `g`, from its statistics; None where they cannot say. A mixed group's
    statistics cover all its rows, so they bound those of `kind` too."""
    if g.ts is None:
        return None, None
    lo, hi = g.ts
    if (kind if kind is not None else g.kind) in _NO_LAT:
        return lo, hi
    return lo, (hi + g.lat if g.lat is not None else None)


def _outside(g: _Group, kind: str, since_ns: int | None, until_ns: int | None) -> bool:
    """No row of `kind` in `g` completes in [since_ns, until_ns), by its statistics."""
    lo, hi = _bounds(g, kind)
    return (until_ns is not None and lo is not None and lo >= until_ns) or (
        since_ns is not None and hi is not None and hi < since_ns
    )


def row_group_hosts(trace: Trace) -> dict[tuple[Path, int], str] | None:
    """The host of each row group of a multi-host trace (formats/merge.py), keyed by
    (file, row group); None for a trace without a `host` column (one host: all its rows
    are of the host its metadata names). Read from the column itself (one dictionary
    value and a run of zeros per row group): the writer keeps no statistics for it. A
    row group of several hosts or of none is refused: bpfcap writes none such."""
    out: dict[tuple[Path, int], str] = {}
    found = False
    for f in trace.files:
        with reading(f):
            if v2.HOST_FIELD.name not in pq.read_schema(f).names:
                continue
            found = True
            pf = pq.ParquetFile(f, read_dictionary=[v2.HOST_FIELD.name])
            try:
                for i in range(pf.metadata.num_row_groups):
                    if not pf.metadata.row_group(i).num_rows:
                        continue
                    col = pf.read_row_group(i, columns=[v2.HOST_FIELD.name]).column(0)
                    names = _distinct(col)
                    if len(names) != 1 or None in names:
                        raise TraceFormatError(
                            f"{f}: row group {i} is not of one host (bpfcap writes none such)"
                        )
                    out[(f, i)] = str(names.pop())
            finally:
                pf.close()
    return out if found else None


def _distinct(col: pa.ChunkedArray) -> set[Any]:
    """The distinct values of a column (None for a null), without expanding a
    dictionary column's values row by row."""
    out: set[Any] = set()
    for chunk in col.chunks:
        if chunk.null_count:
            out.add(None)
        if pa.types.is_dictionary(chunk.type):
            used = pc.unique(chunk.indices.drop_null())
            out |= set(chunk.dictionary.take(used).to_pylist())
        else:
            out |= set(pc.unique(chunk.drop_null()).to_pylist())
    return out


def rows_by_kind(trace: Trace) -> dict[str, int]:
    """Rows per kind, from row-group statistics (data read only where they do not say)."""
    out: dict[str, int] = {}
    for g in row_group_kinds(trace.files):
        f, i, rows, one = g.file, g.index, g.rows, g.kind
        if one is not None:
            out[one] = out.get(one, 0) + rows
            continue
        with reading(f):  # counted a batch at a time: memory flat whatever the rows
            pf = pq.ParquetFile(f, read_dictionary=["kind"])
            try:
                for batch in pf.iter_batches(batch_size=1 << 16, row_groups=[i], columns=["kind"]):
                    for vc in pc.value_counts(batch.column(0)).to_pylist():
                        k = str(vc["values"])
                        out[k] = out.get(k, 0) + vc["counts"]
            finally:
                pf.close()
    return out


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Any failure to read `path` (Arrow cannot decode it: a corrupt or hostile file) as
    one TraceFormatError naming the file."""
    try:
        yield
    except PermissionError:
        raise
    except (pa.ArrowException, OSError, ValueError) as e:  # pyarrow: UnicodeDecodeError too
        raise TraceFormatError(
            f"{path}: unreadable data ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
            "is it a bpfcap trace? a truncated or damaged copy?",
        ) from e


def _read_footer(path: Path) -> dict[str, Any]:
    """Metadata of one file, with the version checked before anything else is trusted."""
    try:
        md = pq.read_metadata(path)
    except PermissionError:
        raise
    except (pa.ArrowException, OSError, ValueError) as e:  # pyarrow: UnicodeDecodeError too
        reason = "empty file" if path.stat().st_size == 0 else f"not a complete Parquet file ({e})"
        raise TraceFormatError(
            f"{path}: {reason}", "is it a bpfcap trace? a truncated copy?"
        ) from e
    kv = md.metadata or {}
    if KEY_VERSION not in kv:
        raise TraceFormatError(
            f"{path}: a Parquet file, but not a bpfcap trace (no format version)"
        )
    try:
        version = int(kv[KEY_VERSION])
    except ValueError as e:
        raise TraceFormatError(f"{path}: unreadable format version {kv[KEY_VERSION]!r}") from e
    if version not in READABLE_VERSIONS:
        if version > FORMAT_VERSION:
            raise IncompatibleTraceError(
                f"{path}: written in trace format {version}, newer than this bpfcap reads "
                f"(up to {FORMAT_VERSION})",
                _UPGRADE,
            )
        raise IncompatibleTraceError(f"{path}: unknown trace format version {version}")
    try:
        meta = json.loads(kv.get(KEY_META, b"{}"))
    except ValueError as e:
        raise TraceFormatError(f"{path}: corrupt bpfcap metadata ({e})") from e
    except RecursionError:
        raise TraceFormatError(f"{path}: corrupt bpfcap metadata (nested too deep)") from None
    if not isinstance(meta, dict):
        raise TraceFormatError(f"{path}: corrupt bpfcap metadata (not an object)")
    bad = _bad_meta(meta)
    if bad:
        raise TraceFormatError(f"{path}: corrupt bpfcap metadata ({bad})")
    meta["format_version"] = version
    return meta


def _is_int(v: Any) -> bool:
    """An integer a 64-bit column holds (a bigger one is no count, time or id of ours)."""
    return isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < (1 << 63)


def _is_time(v: Any) -> bool:
    """A monotonic time in ns: from boot, below 2^62 (146 years)."""
    return _is_int(v) and 0 <= v < (1 << 62)


def _probe(p: Any) -> bool:
    return (
        isinstance(p, dict)
        and isinstance(p.get("event"), str)
        and isinstance(p.get("status"), str)
        and isinstance(p.get("reason", ""), str)
        and isinstance(p.get("tracepoints", []), list)
        and all(isinstance(x, str) for x in p.get("tracepoints", []))
    )


def _clock(c: Any) -> bool:
    """clock: realtime_minus_monotonic_ns and utc_offset_s integers, tz a name."""
    return (
        isinstance(c, dict)
        and all(_is_int(c[k]) for k in ("realtime_minus_monotonic_ns", "utc_offset_s") if k in c)
        and abs(c.get("realtime_minus_monotonic_ns", 0)) < (1 << 62)
        and abs(c.get("utc_offset_s", 0)) <= 86400
        and isinstance(c.get("tz", ""), str)
    )


def _rows_of(*checks):
    """A list of fixed-length rows whose items pass `checks`."""
    return lambda v: (
        isinstance(v, list)
        and all(
            isinstance(r, list) and len(r) == len(checks) and all(c(x) for c, x in zip(checks, r))
            for r in v
        )
    )


def _dict_of(check):
    return lambda v: isinstance(v, dict) and all(check(x) for x in v.values())


def _opt_int(v: Any) -> bool:
    return v is None or _is_int(v)


def _counter(v: Any) -> bool:
    """events[kind]: seen, lost, written counts and the loss timeline."""
    return (
        isinstance(v, dict)
        and all(_opt_int(v.get(k)) for k in ("seen", "lost", "written"))
        and _rows_of(_is_int, _is_int, _is_int)(v.get("lost_timeline", []))
    )


# What readers use from the metadata, and the shape they need: anything else is a
# corrupt (or hostile) file, refused in one line rather than failing deep in a report.
_META_SHAPE = {
    "start_ns": _is_time,
    "end_ns": _is_time,
    "clean_stop": lambda v: isinstance(v, bool),
    "clock": _clock,
    "events": _dict_of(_counter),
    "processes": _rows_of(_is_int, _is_int, lambda x: isinstance(x, str)),
    "disks": _rows_of(_is_int, lambda x: isinstance(x, str)),
    "host": lambda v: isinstance(v, dict),
    "settings": lambda v: (
        isinstance(v, dict)
        and (
            v.get("events") is None
            or isinstance(v["events"], list)
            and all(isinstance(e, str) for e in v["events"])
        )
    ),
    "agent": lambda v: isinstance(v, dict),
    "probes": lambda v: isinstance(v, list) and all(_probe(p) for p in v),
    "missed_runs": _dict_of(_is_int),
    "tree_filter_full": _is_int,
    "kernel_reads": _dict_of(
        lambda r: (
            isinstance(r, dict)
            and isinstance(r.get("status"), str)
            and isinstance(r.get("reason"), str)
            and isinstance(r.get("columns"), list)
            and all(isinstance(c, str) for c in r["columns"])
        )
    ),
    "command_line": lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v),
    # A multi-host trace (formats/merge.py): each host's own metadata, of the same shapes.
    "hosts": lambda v: (
        isinstance(v, list)
        and all(
            isinstance(h, dict)
            and isinstance(h.get("name"), str)
            and _is_int(h.get("shift_ns"))
            and "hosts" not in h
            and _bad_meta(h) is None
            for h in v
        )
    ),
}


def _bad_meta(meta: dict[str, Any]) -> str | None:
    """The first metadata key whose value has the wrong shape, as a reason; else None."""
    for key, ok in _META_SHAPE.items():
        if key in meta and not ok(meta[key]):
            return f"{key} has the wrong type"
    return None


def open_trace(path: str | os.PathLike) -> Trace:
    """Open a trace file or segment directory; `X` also finds `X.partial/` when the
    recorder writing X did not stop cleanly."""
    p = Path(path)
    try:
        if not p.exists() and Path(str(p) + PARTIAL_SUFFIX).is_dir():
            p = Path(str(p) + PARTIAL_SUFFIX)
        if not p.exists():
            raise TraceFormatError(f"{p}: no such file or directory")
        if p.is_dir():
            files = trace_files(p)
            if not files:
                raise TraceFormatError(f"{p}: a directory with no trace segments in it")
            complete = None  # from the last segment: whether the recording ended there
        else:
            files = [p]
            complete = True
        metas = [_read_footer(f) for f in files]
        versions = {f: m["format_version"] for f, m in zip(files, metas)}
    except PermissionError as e:
        raise TraceFormatError(
            f"{e.filename or p}: permission denied",
            "traces are private (0600): read it as its owner, or copy it with sudo",
        ) from e
    meta = metas[-1]
    notes = []
    if complete is None:
        # A recorder that stopped cleanly writes its last segment with clean_stop (the
        # merge into one file may still have failed, on a full disk say); one that was
        # killed left its last segment saying it was still recording.
        complete = bool(meta.get("clean_stop", False))
        # The newest file's metadata, but for its start: each file of `record --rotate`
        # starts its own window; the directory's rows start with its oldest file's.
        starts = [m["start_ns"] for m in metas if _is_time(m.get("start_ns"))]
        meta = dict(meta, clean_stop=complete)
        if starts:
            meta["start_ns"] = min(starts)
        if [f.name for f in files] == [HEADER]:
            notes.append(
                f"{p}: the recorder stopped (killed, or the disk full) before its first "
                "segment closed: no events, only the metadata written when it started"
            )
    return Trace(
        p,
        files,
        meta,
        complete and bool(meta.get("clean_stop", True)),
        sum(f.stat().st_size for f in files),
        notes,
        versions,
    )
