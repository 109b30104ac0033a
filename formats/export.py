"""A trace's rows of one kind as a plain Parquet file, and DuckDB views of its kinds.

A trace is one wide table (every kind's columns, null outside their kind). `bpfcap export`
gives a reader that knows nothing of that layout one table per kind instead:

* export_kind() writes the rows of one kind with only that kind's format-2 columns
  (formats/v2.py kind_schema()), from a format-1 or format-2 trace alike: a plain Parquet
  file (zstd) that any reader opens without bpfcap. It is not a trace (no
  `bpfcap.format_version`); it carries the column docs (Arrow field metadata and
  `bpfcap.column.<name>`) and, for information, the recording's metadata (`bpfcap.meta`).
* duckdb_views() writes one `CREATE VIEW <kind>` per kind over the trace itself.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import v2
from .errors import OutputError, UsageError
from .events import BY_NAME, EVENT_TYPES
from .schema import EventType
from .trace import Trace, clock_offset, row_group_hosts, rows_by_kind
from .writer import described, refuse_existing, template_of, write_joined, write_kind


def event_type(kind: str) -> EventType:
    """The declared type named `kind`; a UsageError listing them if there is none."""
    t = BY_NAME.get(kind)
    if t is None:
        raise UsageError(f"unknown event type {kind!r}", f"choose from {', '.join(BY_NAME)}")
    return t


def kinds_present(trace: Trace) -> list[str]:
    """The kinds `trace` has rows of, in declaration order."""
    rows = rows_by_kind(trace)
    return [t.name for t in EVENT_TYPES if rows.get(t.name)]


def _no_rows(trace: Trace, kind: str) -> UsageError:
    present = kinds_present(trace)
    return UsageError(
        f"{trace.path} has no {kind} rows",
        f"it has rows of {', '.join(present)}" if present else "it holds no rows at all",
    )


def export_kind(trace: Trace, kind: str, out: Path, *, force: bool = False) -> int:
    """Write the rows of `kind` to `out` (0600, under a temporary name renamed into place
    when complete; an existing `out` only with `force`) as a Parquet file of the kind's
    format-2 columns, `<name>_raw` ones only where some value is not UTF-8. Returns the
    rows written.

    Memory holds one row group at a time: each is encoded (formats/v2.py encode()) into a
    part file next to `out`, and the parts are joined by copying their bytes
    (parquet_concat.concat_to_template): which `_raw` columns the file has is known only
    once every row has been seen, and a part lacking one gets it as an all-null chunk.

    Of a multi-host trace (bpfcap merge), the file keeps the `host` column after `kind`."""
    t = event_type(kind)
    if out.is_dir():
        raise OutputError(f"{out} is a directory", "name a file, or drop --type for one per kind")
    refuse_existing(out, force)
    groups = trace.row_groups(kind)
    if not groups:
        raise _no_rows(trace, kind)
    try:
        parts_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".parts", dir=out.parent))
    except OSError as e:
        raise OutputError(f"cannot create {out}: {e.strerror}", "choose another -o path") from e
    try:
        parts: list[Path] = []
        raw: set[str] = set()
        rows = 0
        offset = clock_offset(trace.meta)
        names = [f.name for f in t.columns]
        hosts = row_group_hosts(trace)
        # Of several hosts: a row group at a time, each of one host.
        runs = [[g] for g in groups] if hosts else [groups]
        batches = (
            (b, hosts[(run[0][0], run[0][1])] if hosts else None)
            for run in runs
            for b in trace.batches(kind, names, run, as_dictionary=("comm",))
        )
        for batch, host in batches:
            if not batch.num_rows:  # a group of several kinds may hold none of this one
                continue
            if host is not None:
                batch = batch.add_column(0, v2.HOST_FIELD, pa.repeat(host, batch.num_rows))
            batch = batch.add_column(0, "kind", pa.repeat(pa.scalar(kind), batch.num_rows))
            parts.append(parts_dir / f"{len(parts):08d}.parquet")
            raw.update(n for n in write_kind(batch, offset, parts[-1]) if n.endswith(v2.RAW))
            rows += batch.num_rows
        if not rows:
            raise _no_rows(trace, kind)
        schema = v2.kind_schema(t, raw=raw, hosts=bool(hosts))
        # The recording's metadata, for information: the file is not a trace, so it has no
        # format version (bpfcap refuses it as one) and the trace's is left out.
        meta = {k: v for k, v in trace.meta.items() if k != "format_version"}
        write_joined(out, parts, described(meta, schema), force=force, template=template_of(schema))
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
    return rows


def export_all(trace: Trace, directory: Path, *, force: bool = False) -> dict[Path, int]:
    """export_kind() of every kind `trace` has rows of, as `directory/<kind>.parquet`
    (`directory` is created, 0700, if missing). Nothing is written if any of those files
    exists, unless `force`. Returns the rows written per file."""
    kinds = kinds_present(trace)
    if not kinds:
        raise UsageError(f"{trace.path} holds no rows", "nothing to export")
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
    except FileExistsError as e:
        raise OutputError(
            f"{directory} exists and is not a directory",
            "give a directory with -o, or --type KIND to write one file",
        ) from e
    except OSError as e:
        raise OutputError(f"cannot create {directory}: {e.strerror}", "choose another -o") from e
    outs = {k: directory / f"{k}.parquet" for k in kinds}
    for out in outs.values():
        refuse_existing(out, force)
    return {out: export_kind(trace, k, out, force=force) for k, out in outs.items()}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_views(trace: Trace, kind: str | None = None) -> str:
    """SQL for DuckDB: `CREATE VIEW <kind> AS SELECT <the kind's columns> FROM
    read_parquet(<the trace's files>) WHERE kind = '<kind>';` for each kind the trace has
    rows of (only `kind`, if given). The columns are those of kind_schema() that the files
    have: for a format-1 trace, its own columns (text as BLOB, no `time`)."""
    kinds = kinds_present(trace)
    if kind is not None:
        event_type(kind)
        if kind not in kinds:
            raise _no_rows(trace, kind)
        kinds = [kind]
    have: set[str] = set()
    for f in trace.files:
        have.update(pq.read_schema(f).names)
    files = [_literal(str(f.absolute())) for f in trace.files]
    # Segments of a format-1 recording may differ in the columns added since its start.
    source = (
        f"read_parquet({files[0]})"
        if len(files) == 1
        else f"read_parquet([{', '.join(files)}], union_by_name = true)"
    )
    out = []
    for k in kinds:
        columns = [n for n in v2.kind_schema(BY_NAME[k], hosts=True).names if n in have]
        out.append(
            f"CREATE VIEW {_ident(k)} AS SELECT {', '.join(map(_ident, columns))} "
            f"FROM {source} WHERE kind = {_literal(k)};\n"
        )
    return "".join(out)
