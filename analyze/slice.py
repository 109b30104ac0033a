"""`bpfcap slice`: a smaller trace from a bigger one, as a bug report needs it: a time
window, some processes, some event types, rows matching an expression.

The result is a trace like any recording (every command reads it) whose metadata says
what it was cut from and how (`meta["slice"]`: the source's SHA-256, the window, the
filters; a slice of a slice keeps the earlier record under `of`), and whose loss counters
are those of the window: the events lost in the recording's segments (about a second
each) that overlap it, with the timeline of those segments, so that every report of the
slice says what a report of the source over the same window says. Loss is counted per
event type, not per process: with process filters a slice reports the whole window's
loss for the types it keeps (events lost in the kernel have no process).

Rows are kept as the reports' --since/--until keep them: an event belongs to the window
when it completes in it (ts_ns + lat_ns), so a report of the slice equals the report of
the source over the same window, and slices of adjacent windows [a, b) and [b, c) hold
between them exactly the rows of [a, c) (`bpfcap merge` joins them back). State the
reports read from the whole recording (an exec's parent from fork rows, an open's
working directory from cwd rows) is that within the slice only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.common import completion_ns
from bpfcap.analyze.report import Source
from bpfcap.formats.errors import UsageError
from bpfcap.formats.events import BY_NAME
from bpfcap.formats.meta import TraceMeta
from bpfcap.formats.rewrite import Input, Written, file_digest, kinds_present, rewrite
from bpfcap.formats.trace import Trace


@dataclass(frozen=True)
class Filters:
    """What a slice keeps (besides its window): rows of processes `pids` (tgid or tid),
    of the process trees rooted at `trees`, whose comm contains one of `comms` (as BCC's
    -n), of the event types `kinds` (None: all), for which `where` holds."""

    pids: tuple[int, ...] = ()
    trees: tuple[int, ...] = ()
    comms: tuple[str, ...] = ()
    kinds: tuple[str, ...] | None = None
    where: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "pid": list(self.pids),
            "tree": list(self.trees),
            "comm": list(self.comms),
            "kinds": None if self.kinds is None else list(self.kinds),
            "where": self.where,
        }

    @property
    def by_process(self) -> bool:
        return bool(self.pids or self.trees or self.comms or self.where)


@dataclass
class Plan:
    """A slice worked out before any row is written: the window (monotonic ns, either
    None for open), the kinds kept, the processes kept (None: all) and the row filter."""

    source: Source
    kinds: list[str]  # the kinds with rows to read
    recorded: list[str]  # the kinds the slice says were recorded (rows or not)
    pids: frozenset[int] | None
    filters: Filters
    where_expr: Any

    def keep(self, kind: str, t: pa.Table) -> pa.Table:
        """The rows of `t` (rows of `kind`) the slice keeps."""
        mask = np.ones(t.num_rows, dtype=bool)
        src = self.source
        if src.since_ns is not None or src.until_ns is not None:
            end = completion_ns(t).to_numpy(zero_copy_only=False)
            if src.since_ns is not None:
                mask &= end >= src.since_ns
            if src.until_ns is not None:
                mask &= end < src.until_ns
        if self.pids is not None:
            wanted = np.fromiter(self.pids, dtype=np.int64, count=len(self.pids))
            tgid = t["tgid"].to_numpy(zero_copy_only=False).astype(np.int64)
            tid = t["tid"].to_numpy(zero_copy_only=False).astype(np.int64)
            mask &= np.isin(tgid, wanted) | np.isin(tid, wanted)
        if self.filters.comms:
            comm = t["comm"]
            hit = np.zeros(t.num_rows, dtype=bool)
            for name in self.filters.comms:
                found = pc.match_substring(comm, name)
                hit |= pc.fill_null(found, False).to_numpy(zero_copy_only=False)
            mask &= hit
        if not mask.all():
            t = t.filter(pa.array(mask))
        if self.where_expr is not None and t.num_rows:
            with_kind = t.append_column("kind", pa.repeat(pa.scalar(kind), t.num_rows))
            t = with_kind.filter(self.where_expr).drop_columns(["kind"])
        return t


def plan(
    trace: Trace,
    *,
    since: str | None = None,
    until: str | None = None,
    filters: Filters = Filters(),
) -> Plan:
    """Check the options against the trace and work out what the slice keeps."""
    from bpfcap.analyze.selection import select

    source = Source(trace, since=since, until=until)
    allowed = list(BY_NAME)
    if filters.kinds is not None:
        unknown = [k for k in filters.kinds if k not in BY_NAME]
        if unknown:
            raise UsageError(
                f"unknown event type {', '.join(unknown)}", f"choose from {', '.join(BY_NAME)}"
            )
        allowed = [k for k in allowed if k in filters.kinds]
    expr = None
    if filters.where:
        matching, _, expr = select(None, [], filters.where)
        allowed = [k for k in allowed if k in matching]
    present = kinds_present(trace)
    recorded = source.meta.recorded if source.meta.recorded is not None else present
    pids = None
    if filters.pids or filters.trees:
        pids = frozenset(filters.pids) | descendants(trace, filters.trees)
    return Plan(
        source,
        [k for k in present if k in allowed],
        [k for k in recorded if k in allowed],
        pids,
        filters,
        expr,
    )


def descendants(trace: Trace, roots: Sequence[int]) -> frozenset[int]:
    """`roots` and every process (and thread) they started during the recording or had
    started before it: parent-child links from the start snapshot, fork rows (parent
    tgid -> child pid) and exec rows (ppid -> tgid), followed transitively. A pid reused
    by an unrelated process within one recording would be taken in too."""
    if not roots:
        return frozenset()
    children: dict[int, set[int]] = {}
    for pid, ppid, _ in trace.meta.get("processes", []):
        children.setdefault(int(ppid), set()).add(int(pid))
    links = (("fork", "tgid", "child_pid"), ("exec", "ppid", "tgid"))
    for kind, parent, child in links:
        for t in trace.batches(kind, [parent, child]):
            t = t.filter(pc.is_valid(t[parent]))
            pairs = np.unique(
                np.stack(
                    [
                        t[parent].to_numpy(zero_copy_only=False).astype(np.int64),
                        t[child].to_numpy(zero_copy_only=False).astype(np.int64),
                    ],
                    axis=1,
                ),
                axis=0,
            )
            for p, c in pairs.tolist():
                if p != c:
                    children.setdefault(p, set()).add(c)
    seen = set(int(r) for r in roots)
    todo = list(seen)
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in seen:
                seen.add(c)
                todo.append(c)
    return frozenset(seen)


def slice_trace(
    trace: Trace,
    out: Path,
    *,
    since: str | None = None,
    until: str | None = None,
    filters: Filters = Filters(),
    redactor: Any = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Written:
    """Write the slice of `trace` to `out` (see the module doc), its rows and metadata
    passed through `redactor` (formats/redact.py) if given: `bpfcap share` in one pass.
    Without a window or filters the rows are all kept and no slice is recorded (`bpfcap
    redact`). Returns rows per kind."""
    p = plan(trace, since=since, until=until, filters=filters)
    src = p.source
    groups = {k: trace.row_groups(k, src.since_ns, src.until_ns) for k in p.kinds}
    sliced = src.windowed or filters != Filters()
    digest = file_digest(trace) if sliced else None
    keep = p.keep if sliced else None
    transform = keep
    if redactor is not None:
        exec_files = (
            f for t in trace.batches("exec", ["filename"]) for f in t["filename"].to_pylist()
        )
        redactor.learn(trace.meta, (f for f in exec_files if f is not None))

        def transform(kind: str, t: pa.Table) -> pa.Table:
            if keep is not None:
                t = keep(kind, t)
            return redactor.table(kind, t) if t.num_rows else t

    def meta(written: Written) -> dict[str, Any]:
        m = slice_meta(p, written, digest, since=since, until=until) if sliced else trace.meta
        return redactor.meta(m) if redactor is not None else m

    return rewrite(
        [Input(trace, groups, transform=transform)],
        Path(out),
        meta,
        force=force,
        progress=progress,
        rename_host=redactor.hostname if redactor is not None else None,
    )


def slice_meta(
    p: Plan, written: Any, digest: str | None, *, since: str | None, until: str | None
) -> dict[str, Any]:
    """The metadata of a slice: the source's, with its window, counters and snapshot
    narrowed to what the slice holds (each host's too, in a multi-host trace), and the
    slice record. `written`: rows per kind (Written.rows), per host (Written.by_host)."""
    src = p.source
    # end_ns as the reports of the window place it (its last ns): a report of the slice
    # then says what the report of the window says, to the time it prints at the end.
    start, end = src.start_ns, max(src.start_ns, src.end_ns)
    meta = _narrowed(p, dict(src.trace.meta), written.rows, start, end)
    if isinstance(meta.get("hosts"), list):
        meta["hosts"] = [
            _narrowed(p, dict(h), written.by_host.get(h.get("name"), {}), start, end)
            for h in meta["hosts"]
        ]
    record: dict[str, Any] = {
        "source_sha256": digest,
        "window": {"since": since, "until": until, "start_ns": start, "end_ns": end},
        "filters": p.filters.as_dict(),
    }
    if "slice" in meta:
        record["of"] = meta["slice"]
    meta["slice"] = record
    return meta


def _narrowed(
    p: Plan, meta: dict[str, Any], rows: dict[str, int], start: int, end: int
) -> dict[str, Any]:
    """`meta` (a trace's, or one host's) narrowed to the slice: its window, the loss in
    the segments overlapping it, the rows written, the kinds and processes kept."""
    m = TraceMeta.from_dict(meta)
    meta["start_ns"] = max(start, m.start_ns if m.start_ns is not None else start)
    meta["end_ns"] = max(meta["start_ns"], min(end, m.end_ns if m.end_ns is not None else end))
    recorded = [k for k in p.recorded if m.recorded is None or k in m.recorded]
    events = {}
    for kind in dict.fromkeys([*recorded, *p.kinds]):
        counts = m.counts(kind)
        timeline = counts.lost_timeline
        if timeline is None:
            lost, line = counts.lost, None
        else:
            line, before, lost = [], 0, 0
            for seg_from, seg_to, so_far in timeline:
                if seg_from < end and seg_to >= start:
                    lost += so_far - before
                    line.append([seg_from, seg_to, lost])
                before = so_far
        n = rows.get(kind, 0)
        events[kind] = {
            "seen": None if p.filters.by_process else n + lost,
            "lost": lost,
            "written": n,
            **({"lost_timeline": line} if line is not None else {}),
        }
    meta["events"] = events
    meta["settings"] = dict(meta.get("settings") or {}, events=recorded)
    if p.pids is not None:
        meta["processes"] = _with_ancestors(meta.get("processes", []), p.pids)
    return meta


def _with_ancestors(processes: list, pids: frozenset[int]) -> list:
    """The snapshot's rows for `pids` and their ancestors (the tree above them)."""
    parent = {int(p): int(pp) for p, pp, _ in processes}
    keep = set()
    for pid in pids:
        while pid in parent and pid not in keep:
            keep.add(pid)
            pid = parent[pid]
    return [row for row in processes if int(row[0]) in keep]
