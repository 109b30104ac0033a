"""Writing trace files: the on-disk contract every writer of a trace keeps (the recorder's
segments and its merge at stop, `bpfcap export`, and any command that writes a trace).

* Rows of each kind are encoded as a narrow Parquet file of that kind's format-2 columns
  (encode_kind(), write_kind(): compression, dictionaries, statistics, encodings), then
  joined under the full file schema (FILE_SCHEMA), the other kinds' columns as all-null
  chunks (formats/parquet_concat.py). One kind per row group.
* Every trace file carries its format version and `bpfcap.meta` (the recording's
  metadata) in its footer, with each column's doc (described()).
* A file appears under its name only when complete: written under a temporary name of our
  own (mkstemp, 0600), fsynced, renamed into place, the directory fsynced; an existing
  file is replaced only when asked to (refuse_existing()).

Reading, and what a file must hold to be read: formats/trace.py. The recorder's segment
directory (naming, rotation, its writer thread): capture/segments.py.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import v2
from .errors import OutputError
from .events import BY_NAME, EVENT_TYPES
from .parquet_concat import concat, concat_to_template
from .schema import empty_table
from .trace import FORMAT_VERSION, KEY_META, KEY_VERSION, clock_offset

COMPRESSION = "zstd"
ROW_GROUP_ROWS = 1 << 20
# The format-2 schema of every file bpfcap writes: all kinds' columns.
FILE_SCHEMA = v2.file_schema(EVENT_TYPES)


def _write_options(schema: pa.Schema) -> dict[str, Any]:
    """How one kind's rows are encoded. Dictionary encoding where values repeat (names,
    paths); min/max statistics only where readers prune on them (kind; time and latency,
    for Trace.row_groups() windows; process; comm and ret, which a summary need not
    decode in a row group of one comm, one process or no failure): statistics of every
    path cost CPU on the recording host and prune nothing (those of comm and ret add ~2%
    to a segment's encoding). 64-bit integers are delta-encoded: timestamps rise, and for
    near-constant values (ret) zstd over PLAIN int64 pages keeps ~0.36 B/row where deltas
    keep ~0.005."""
    return dict(
        compression=COMPRESSION,
        use_dictionary=[
            f.name
            for f in schema
            if pa.types.is_binary(f.type)
            or pa.types.is_string(f.type)
            or pa.types.is_dictionary(f.type)
        ],
        write_statistics=[
            n
            for n in ("kind", "ts_ns", "time", "lat_ns", "tgid", "tid", "comm", "ret")
            if n in schema.names
        ],
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


@functools.lru_cache(maxsize=2)
def trace_template(hosts: bool = False) -> bytes:
    """A file of FILE_SCHEMA with no rows: the schema every written trace file gets (with
    `hosts`, that of a multi-host trace: formats/merge.py)."""
    return template_of(file_schema(hosts))


def file_schema(hosts: bool = False) -> pa.Schema:
    """FILE_SCHEMA, or with `hosts` the multi-host schema (a `host` column)."""
    return v2.file_schema(EVENT_TYPES, hosts=True) if hosts else FILE_SCHEMA


def described(meta: dict[str, Any], schema: pa.Schema) -> dict[bytes, bytes]:
    """Footer key-value metadata saying what a file holds: the recording's metadata (JSON)
    and the doc of each column of `schema`."""
    return {
        KEY_META: json.dumps(meta, separators=(",", ":"), sort_keys=True).encode(),
        **v2.column_docs(schema),
    }


def trace_footer(meta: dict[str, Any], hosts: bool = False) -> dict[bytes, bytes]:
    """The footer of a trace file: format version, metadata, column docs."""
    return {KEY_VERSION: str(FORMAT_VERSION).encode(), **described(meta, file_schema(hosts))}


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
    return write_joined(path, parts, trace_footer(meta), force=force, template=trace_template())


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


def merge_files(files: list[Path], out: Path, meta: dict[str, Any], *, force: bool = False) -> int:
    """Join trace files (segments) into one trace file with `meta` in its footer, by
    copying their bytes (formats/parquet_concat.py); the result appears under `out` only
    when complete. Returns its size."""
    return write_joined(out, files, trace_footer(meta), force=force, template=None)
