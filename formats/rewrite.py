"""Writing a new trace from the rows of others: what `bpfcap slice`, `redact`, `share` and
`merge` have in common.

Rows stream through in bounded memory whatever the size of the input: one row group of
one kind is read at a time (formats/trace.py), handed to the caller's `transform` (a
filter, a redaction, a clock shift: a pure function of the rows), and the rows it returns
are gathered into parts of at most ROW_GROUP_ROWS rows, each encoded as a narrow Parquet
file of that kind's columns in a hidden directory next to OUT. The parts are joined
under the full trace schema by copying their bytes (formats/writer.py write_joined()),
with the new metadata in the footer; OUT appears only when complete (no half-written
trace under its name, whatever stops the command).
"""

from __future__ import annotations

import errno
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from . import v2
from .errors import OutputError
from .events import BY_NAME, EVENT_TYPES
from .trace import FORMAT_VERSION, Trace, clock_offset, row_group_hosts
from .writer import (
    ROW_GROUP_ROWS,
    refuse_existing,
    trace_footer,
    trace_template,
    write_joined,
    write_kind,
)

# A transform: (kind, rows of that kind in the in-memory representation) -> rows to write.
Transform = Callable[[str, pa.Table], pa.Table]


@dataclass
class Input:
    """Rows of one trace to write: `groups` per kind (Trace.row_groups(); a kind absent is
    not read), each row group's rows passed through `transform`, `offset` the realtime -
    monotonic ns the `time` column is computed with (the output's clock)."""

    trace: Trace
    groups: dict[str, list] = field(default_factory=dict)
    transform: Transform | None = None
    offset: int | None = None
    # The host of every row, written in a `host` column (a multi-host output: see
    # formats/merge.py); None: the trace's own (a multi-host trace's rows keep theirs).
    host: str | None = None


@dataclass
class Written:
    """What a rewrite wrote: rows per kind (and per host and kind, for a multi-host
    output), and the file's size."""

    rows: dict[str, int]
    size: int = 0
    by_host: dict[str, dict[str, int]] = field(default_factory=dict)


def kinds_present(trace: Trace) -> list[str]:
    """The kinds `trace` has row groups of, in declaration order."""
    return [t.name for t in EVENT_TYPES if trace.row_groups(t.name)]


def rewrite(
    inputs: Iterable[Input],
    out: Path,
    meta: dict[str, Any] | Callable[[Written], dict[str, Any]],
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    rename_host: Callable[[str], str] | None = None,
) -> Written:
    """Write the rows of `inputs` (in order: every kind of the first input, then of the
    next) as one trace file `out` with `meta` in its footer (or meta(Written), the
    metadata made once every row has been seen: Written.size is 0 there).
    `progress(done, total)` is called per row group read. The file is a multi-host
    trace when an input has a host (or is one); `rename_host` maps the host names
    written (a redaction)."""
    inputs = [part for i in inputs for part in _by_host(i)]
    hosts = any(i.host is not None for i in inputs)
    out = Path(out)
    if out.is_dir():
        raise OutputError(f"{out} is a directory", "name the file to write")
    if out.exists() and not out.is_file():
        raise OutputError(f"{out} is not a regular file", "name the file to write")
    for i in inputs:
        if out.exists() and any(out.samefile(f) for f in i.trace.files):
            raise OutputError(f"{out} is an input", "write to another file")
    refuse_existing(out, force)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parts_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".parts", dir=parent))
    except OSError as e:
        raise OutputError(f"cannot create a file in {parent}: {e.strerror}") from e
    total = sum(len(g) for i in inputs for g in i.groups.values())
    done = 0
    written = Written({})
    rows = written.rows
    parts: list[Path] = []
    try:
        for inp in inputs:
            offset = clock_offset(inp.trace.meta) if inp.offset is None else inp.offset
            for kind, groups in inp.groups.items():
                if not groups:
                    continue
                names = [f.name for f in BY_NAME[kind].columns]
                pending: list[pa.Table] = []
                size = 0
                for t in inp.trace.batches(kind, names, groups):
                    # About one chunk per row group (big text is sliced further).
                    done = min(done + 1, total)
                    if progress is not None:
                        progress(done, total)
                    if inp.transform is not None and t.num_rows:
                        t = inp.transform(kind, t)
                    if not t.num_rows:
                        continue
                    if inp.host is not None:
                        name = rename_host(inp.host) if rename_host else inp.host
                        t = _with_host(t, name)
                        mine = written.by_host.setdefault(inp.host, {})
                        mine[kind] = mine.get(kind, 0) + t.num_rows
                    pending.append(t)
                    size += t.num_rows
                    rows[kind] = rows.get(kind, 0) + t.num_rows
                    if size >= ROW_GROUP_ROWS:
                        _flush(kind, pending, offset, parts_dir, parts)
                        pending, size = [], 0
                if pending:
                    _flush(kind, pending, offset, parts_dir, parts)
        # The file is format 2 whatever the inputs were (format 1 is read, never written).
        footer = trace_footer(
            dict(meta(written) if callable(meta) else meta, format_version=FORMAT_VERSION), hosts
        )
        try:
            size = write_joined(out, parts, footer, force=force, template=trace_template(hosts))
        except OSError as e:
            raise _output_error(out, e) from e
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
    written.size = size
    return written


def _by_host(inp: Input) -> list[Input]:
    """`inp`, or for a multi-host trace one input per host (its row groups, in order)."""
    if inp.host is not None:
        return [inp]
    of = row_group_hosts(inp.trace)
    if of is None:
        return [inp]
    names = list(dict.fromkeys(of[(g[0], g[1])] for gs in inp.groups.values() for g in gs))
    return [
        replace(
            inp,
            groups={k: [g for g in gs if of[(g[0], g[1])] == name] for k, gs in inp.groups.items()},
            host=name,
        )
        for name in names
    ]


def _with_host(t: pa.Table, name: str) -> pa.Table:
    """`t` with a `host` column: `name` on every row (a dictionary of one value)."""
    if v2.HOST_FIELD.name in t.column_names:
        t = t.drop_columns([v2.HOST_FIELD.name])
    host = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(t.num_rows, np.int32)), pa.array([name], pa.string())
    )
    return t.append_column(v2.HOST_FIELD.name, host)


def _flush(kind: str, tables: list[pa.Table], offset: int, where: Path, parts: list[Path]) -> None:
    t = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if "kind" not in t.column_names:
        t = t.add_column(0, "kind", pa.repeat(pa.scalar(kind), t.num_rows))
    path = where / f"{len(parts):08d}.parquet"
    try:
        write_kind(t, offset, path)
    except OSError as e:
        raise _output_error(path, e) from e
    parts.append(path)


def _output_error(path: Path, e: OSError) -> OutputError:
    if e.errno == errno.ENOSPC:
        return OutputError(f"no space left writing {path}", "free space, or write -o elsewhere")
    return OutputError(f"cannot write {path}: {e.strerror or e}")


def file_digest(trace: Trace) -> str:
    """SHA-256 of a trace's bytes (of its files in order, for a segment directory): names
    the source of a slice or a merge without naming its path."""
    h = hashlib.sha256()
    for f in trace.files:
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()
