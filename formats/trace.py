"""Trace files: format version 2 (format 1 is still read; formats/v2.py says how they differ).

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

import functools
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import v2
from .errors import IncompatibleTraceError, OutputError, TraceFormatError
from .events import BY_NAME, EVENT_TYPES, SCHEMA
from .parquet_concat import concat, concat_to_template
from .schema import empty_table

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
KEY_VERSION = b"bpfcap.format_version"
KEY_META = b"bpfcap.meta"
PARTIAL_SUFFIX = ".partial"
SEGMENT_GLOB = "seg-*.parquet"
# Segment 0 of a segment directory: no rows, the metadata known at start (see SegmentDir).
# A Parquet file of the trace schema like any segment: stock readers see no rows in it,
# rotation joins it with the segments after it, the merge at a clean stop copies no rows
# from it.
HEADER = "seg-000000.parquet"
# seg-000001.parquet: one segment; seg-000001-000060.parquet: segments 1 to 60 joined
# (record --rotate). A joined file wins over its segments where both are present (the
# recorder was killed between writing the join and deleting the segments).
_SEGMENT_RE = re.compile(r"^seg-(\d+)(?:-(\d+))?\.parquet$")


def trace_files(directory: Path) -> list[Path]:
    """The segment files of a directory trace, in time order, each row once."""
    spans = []
    for f in directory.glob(SEGMENT_GLOB):
        m = _SEGMENT_RE.match(f.name)
        if m:
            a = int(m.group(1))
            joined = m.group(2) is not None
            spans.append((a, int(m.group(2)) if joined else a, joined, f))
    covered = [(a, b) for a, b, joined, _ in spans if joined]
    return [
        f
        for a, _, joined, f in sorted(spans)
        if joined or not any(lo <= a <= hi for lo, hi in covered)
    ]


COMPRESSION = "zstd"
ROW_GROUP_ROWS = 1 << 20
# The format-2 schema of every file bpfcap writes: all kinds' columns.
FILE_SCHEMA = v2.file_schema(EVENT_TYPES)
# Every declared column, by name (a name means one thing in every kind that has it).
FIELDS = {f.name: f for t in EVENT_TYPES for f in t.columns}
_UPGRADE = "upgrade bpfcap (pip install -U bpfcap) to read it"
# Columns added to format 1 after its first files were written (the format only ever
# gains columns): a file without them was written by a recorder that did not know them,
# and reads them as null. Any other missing column makes the file unreadable.
ADDED_TO_V1 = frozenset({"args_from", "args_unread", "ppid", "pcomm", "dirs"})


def _write_options(schema: pa.Schema) -> dict[str, Any]:
    """How one kind's rows are encoded. Dictionary encoding where values repeat (names,
    paths); min/max statistics only where readers prune on them (kind, time, process):
    statistics of every path cost CPU on the recording host and prune nothing. 64-bit
    integers are delta-encoded: timestamps rise, and for near-constant values (ret) zstd
    over PLAIN int64 pages keeps ~0.36 B/row where deltas keep ~0.005."""
    return dict(
        compression=COMPRESSION,
        use_dictionary=[
            f.name
            for f in schema
            if pa.types.is_binary(f.type)
            or pa.types.is_string(f.type)
            or pa.types.is_dictionary(f.type)
        ],
        write_statistics=[n for n in ("kind", "ts_ns", "time", "tgid", "tid") if n in schema.names],
        column_encoding={
            f.name: "DELTA_BINARY_PACKED"
            for f in schema
            if (pa.types.is_integer(f.type) and f.type.bit_width == 64)
            or pa.types.is_timestamp(f.type)
        },
        row_group_size=ROW_GROUP_ROWS,
    )


def template_of(schema: pa.Schema) -> bytes:
    """A Parquet file of `schema` with no rows: the template parquet_concat joins narrow
    files under (its Arrow schema, field docs and pandas metadata included)."""
    sink = pa.BufferOutputStream()
    pq.write_table(empty_table(schema), sink, compression=COMPRESSION)
    return sink.getvalue().to_pybytes()


@functools.lru_cache(maxsize=1)
def _template() -> bytes:
    """A file of FILE_SCHEMA with no rows: the schema every written trace file gets."""
    return template_of(FILE_SCHEMA)


def described(meta: dict[str, Any], schema: pa.Schema) -> dict[bytes, bytes]:
    """Footer key-value metadata saying what a file holds: the recording's metadata (JSON)
    and the doc of each column of `schema`."""
    return {
        KEY_META: json.dumps(meta, separators=(",", ":"), sort_keys=True).encode(),
        **v2.column_docs(schema),
    }


def _footer(meta: dict[str, Any]) -> dict[bytes, bytes]:
    return {KEY_VERSION: str(FORMAT_VERSION).encode(), **described(meta, FILE_SCHEMA)}


def clock_offset(meta: dict[str, Any]) -> int:
    """The recording's realtime - monotonic offset (ns): `time` = `ts_ns` + this."""
    return int((meta.get("clock") or {}).get("realtime_minus_monotonic_ns", 0))


def refuse_existing(path: Path, force: bool) -> None:
    """An OutputError if `path` exists and `force` is not given."""
    if not force and path.exists():
        raise OutputError(f"{path} already exists", "pass --force to overwrite it")


def encode_kind(table: pa.Table, realtime_minus_monotonic_ns: int) -> bytes:
    """Rows of one kind (the in-memory representation; columns of other kinds, if any,
    are dropped) as a Parquet file of that kind's format-2 columns only: what a row costs
    to write does not depend on how many kinds the format knows. The columns of other
    kinds are added, as null chunks that cost nothing per row, when the file is joined
    into a trace (parquet_concat.concat_to_template)."""
    sink = pa.BufferOutputStream()
    write_kind(table, realtime_minus_monotonic_ns, sink)
    return sink.getvalue().to_pybytes()


def write_kind(table: pa.Table, realtime_minus_monotonic_ns: int, where: Any) -> list[str]:
    """encode_kind() into `where` (a path or a writable stream). Returns the names of the
    columns written: the `_raw` ones are there only where some value needed them."""
    t = BY_NAME[table.column("kind")[0].as_py()]
    # Chunks (drains) of dictionary columns: one dictionary, written once.
    table = table.unify_dictionaries().combine_chunks()
    narrow = v2.encode(t, table, realtime_minus_monotonic_ns)
    pq.write_table(narrow, where, **_write_options(narrow.schema))
    return narrow.schema.names


def write_table_file(
    path: Path, tables: list[pa.Table], meta: dict[str, Any], *, force: bool = False
) -> int:
    """Write `tables` (one kind each, in the in-memory representation) as one trace file
    of format 2, under a temporary name renamed into place when complete. Returns its
    size."""
    parts = [encode_kind(t, clock_offset(meta)) for t in tables if t.num_rows]
    return write_joined(path, parts, _footer(meta), force=force, template=_template())


def write_joined(
    out: Path,
    sources: list,
    footer: dict[bytes, bytes],
    *,
    force: bool,
    template: bytes | None,
) -> int:
    """Join `sources` into `out` (0600), with `footer` added to its key-value metadata:
    narrow kind files under the schema of `template` (template_of()), or, with None,
    files of one schema (trace files). The result appears under `out` only when
    complete. Returns its size."""
    # A name of our own, created exclusively (0600): never a file of the user's such as
    # OUT.tmp. A `*.tmp` name, so that a directory listing of traces skips it.
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as e:
        raise OutputError(f"cannot create a file in {out.parent}: {e.strerror}") from e
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            if template is not None:
                concat_to_template(sources, f, template, footer)
            else:
                concat(sources, f, footer)
            f.flush()
            os.fsync(f.fileno())
        refuse_existing(out, force)
        os.replace(tmp, out)
        _fsync_dir(out.parent)  # the rename itself survives a crash of the host
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out.stat().st_size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path if str(path) else ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentDir:
    """The directory a recorder writes closed segments into, one per period. Rows of a
    period are kept in memory and written at its end, one row group per kind.

    It is created with its header, segment 0 (`header`: the metadata known at start),
    written synchronously before the constructor returns: whenever the directory holds
    a file, it is a readable trace."""

    def __init__(self, path: Path, header: dict[str, Any]):
        self.path = path
        self.index = 0
        self._sizes = (0, 0)  # bytes in single segments, in all files (see _job)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bpfcap-writer")
        self._writing: Future | None = None
        try:
            path.mkdir(mode=0o700)
        except FileExistsError as e:
            raise OutputError(
                f"{path} exists (left by a recorder that did not stop cleanly?)",
                "read it with `bpfcap info`, then move it away",
            ) from e
        except OSError as e:
            raise OutputError(
                f"cannot create {path}: {e.strerror}", "choose another -o path"
            ) from e
        try:
            write_table_file(path / HEADER, [], dict(header, segment=0))
        except OSError as e:
            self.remove()  # nothing recorded yet: leave nothing behind
            raise OutputError(
                f"cannot write {path / HEADER}: {e.strerror}",
                "free space or choose another -o path",
            ) from e

    @property
    def busy(self) -> bool:
        """A segment is being written."""
        return self._writing is not None and not self._writing.done()

    def close_segment(
        self, meta: dict[str, Any], produce: Callable[[], list[pa.Table]] | None = None
    ) -> None:
        """Write the next segment and rename it into place, in a writer thread: the caller
        goes back to draining the ring buffer while Parquet encodes (pyarrow releases the
        GIL). Its rows are the tables (one kind each) `produce` returns, called in that
        thread (the recorder decodes its raw records there); without it the segment is
        empty (fresh counters only). At most one segment waits; an error of an earlier
        write is raised here or by finish()."""
        self.index += 1
        path = self.path / f"seg-{self.index:06d}.parquet"
        meta = dict(meta, segment=self.index)
        if self._writing is not None:
            self._writing.result()  # at most one segment in flight; raises its error
        self._writing = self._pool.submit(self._job, self._write_segment, path, meta, produce)

    @staticmethod
    def _write_segment(
        path: Path, meta: dict, produce: Callable[[], list[pa.Table]] | None
    ) -> None:
        write_table_file(path, produce() if produce is not None else [], meta)

    def check(self) -> None:
        """Raise the error of a write that has failed (a full disk), without waiting for
        one in progress: the recorder asks at every drain, so that it stops when a write
        fails, not when the next segment closes (seconds later on a quiet host)."""
        w = self._writing
        if w is not None and w.done() and w.exception() is not None:
            w.result()

    def finish(self) -> None:
        """Wait for the segment being written; raise its error if it failed."""
        if self._writing is not None:
            w, self._writing = self._writing, None
            w.result()
        self._pool.shutdown()

    def abort(self) -> None:
        try:
            self.finish()
        except Exception:
            pass

    def files(self) -> list[Path]:
        return trace_files(self.path)

    def data_files(self) -> list[Path]:
        """The closed segments, without the header (which holds no rows)."""
        return [f for f in self.files() if f.name != HEADER]

    def rotate(self, keep: int | None) -> None:
        """Join the single segments written so far (the one being written included, as
        the writer thread runs jobs in order) into one file, seg-A-B.parquet; then keep
        only the newest `keep` joined files (a flight recorder)."""
        if self._writing is not None:
            self._writing.result()  # raises an earlier write's error here
        self._writing = self._pool.submit(self._job, self._rotate, self.path, self.index, keep)

    @staticmethod
    def _rotate(path: Path, upto: int, keep: int | None) -> None:
        singles = []
        for f in trace_files(path):
            m = _SEGMENT_RE.match(f.name)
            if m and m.group(2) is None and int(m.group(1)) <= upto:
                singles.append((int(m.group(1)), f))
        if singles:
            first, last = singles[0][0], singles[-1][0]
            meta = json.loads(pq.read_metadata(singles[-1][1]).metadata[KEY_META])
            out = path / f"seg-{first:06d}-{last:06d}.parquet"
            merge_files([f for _, f in singles], out, meta)
            for _, f in singles:
                f.unlink()
        if keep is not None:
            joined = [f for f in trace_files(path) if "-" in f.name[4:]]
            for f in joined[: max(0, len(joined) - keep)]:
                f.unlink()

    def _job(self, work, *args) -> None:
        """Run a writer-thread job, then take the directory's sizes once: the recorder
        asks for them at every drain (--max-size, --rotate SIZE), and they change only
        here."""
        try:
            work(*args)
        finally:
            files = self.data_files()
            single = [f for f in files if "-" not in f.name[len("seg-") :]]
            self._sizes = (
                sum(f.stat().st_size for f in single),
                sum(f.stat().st_size for f in files),
            )

    def single_bytes(self) -> int:
        """Bytes in the closed segments not yet joined by rotate()."""
        return self._sizes[0]

    def closed_bytes(self) -> int:
        """Bytes in the closed segments (what the merged trace will about hold)."""
        return self._sizes[1]

    def remove(self) -> None:
        for p in self.path.iterdir():
            p.unlink()
        self.path.rmdir()


def merge_files(files: list[Path], out: Path, meta: dict[str, Any], *, force: bool = False) -> int:
    """Join trace files (segments) into one trace file with `meta` in its footer, by
    copying their bytes (formats/parquet_concat.py); the result appears under `out` only
    when complete. Returns its size."""
    return write_joined(out, files, _footer(meta), force=force, template=None)


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

    def row_groups(self, kind: str) -> list[tuple[Path, int, bool]]:
        """(file, row group, mixed) holding rows of `kind`, in file order, from statistics
        alone; `mixed`: the group may hold other kinds too (bpfcap writes none such)."""
        return [
            (f, i, one is None)
            for f, i, _, one in _row_group_kinds(self.files)
            if one in (None, kind)
        ]

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
                with _reading(f):
                    opened[f] = (pq.ParquetFile(f, read_dictionary=text), stored)
            pf, stored = opened[f]
            with _reading(f):
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
                    with _reading(f):
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
            with _reading(f):
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


def _row_group_kinds(files: list[Path]) -> Iterator[tuple[Path, int, int, str | None]]:
    """(file, row group, rows, its kind) of every non-empty row group, from statistics
    alone; the kind is None where the statistics do not name a single one."""
    for f in files:
        with _reading(f):
            md = pq.read_metadata(f)
            if "kind" not in md.schema.names:
                raise TraceFormatError(f"{f}: no kind column")
            col = md.schema.names.index("kind")
            groups = []
            for i in range(md.num_row_groups):
                rg = md.row_group(i)
                if not rg.num_rows:
                    continue
                st = rg.column(col).statistics
                one = st.min if st is not None and st.has_min_max and st.min == st.max else None
                groups.append((f, i, rg.num_rows, one if isinstance(one, str) else None))
        yield from groups


def rows_by_kind(trace: Trace) -> dict[str, int]:
    """Rows per kind, from row-group statistics (data read only where they do not say)."""
    out: dict[str, int] = {}
    for f, i, rows, one in _row_group_kinds(trace.files):
        if one is not None:
            out[one] = out.get(one, 0) + rows
            continue
        with _reading(f):  # counted a batch at a time: memory flat whatever the rows
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
def _reading(path: Path) -> Iterator[None]:
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
        meta = dict(meta, clean_stop=complete)
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
