"""syscount: system calls counted (and timed) per call or per process, as BCC's
tools/syscount.py (v0.37) prints them, replayed in windows of its `-i INTERVAL`.

A recording holds one row per returning call; syscount counts at sys_exit, so a call is
placed in the window in which it returned (ts_ns + lat_ns), as the live tool does.

Text: -P COMM printb of raw bytes, stripped of leading and trailing whitespace as BCC
strips what it reads from /proc/PID/comm (syscount.py:264,270,287).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.aggregate import window_plan
from bpfcap.analyze.common import NS_PER_S, OutputColumn, as_int64, completion_ns, filter_all
from bpfcap.formats.syscalls import name_of

NO_SYSCALL = 0xFFFFFFFF  # id -1: skipped after the top-N cut, as BCC does


@dataclass(frozen=True)
class Options:
    """syscount's flags. Filters, with BCC's precedence: pid, then tid, then ppid."""

    pid: int | None = None  # -p (tgid)
    tid: int | None = None  # -t
    ppid: int | None = None  # -c/--ppid
    failures: bool = False  # -x: only ret < 0
    errno: int | None = None  # -e: only ret == -errno
    syscall: int | None = None  # --syscall: only this number
    interval: float | None = None  # -i seconds
    duration: float | None = None  # -d seconds
    top: int = 10  # -T
    latency: bool = False  # -L
    milliseconds: bool = False  # -m
    process: bool = False  # -P: per process, not per call


def columns(options: Options) -> tuple[OutputColumn, ...]:
    """The report's columns: BCC's `"%-22s %8s"` (+ `" %16s"` with -L), the key being the
    call name or, with -P, `"%-6d %-15s"` % (pid, comm)."""
    unit = "ms" if options.milliseconds else "us"
    out = []
    if options.process:
        out += [
            OutputColumn("pid", "Process id (tgid)", "PID", "%-6s ", "%-6d "),
            OutputColumn(
                "comm",
                "Its comm at its last call in the window",
                "COMM",
                "%-15s ",
                "%-15s ",
                text=bytes.strip,  # BCC: open(f"/proc/{pid}/comm", "rb").read().strip()
            ),
        ]
    else:
        out.append(OutputColumn("syscall", "System call name", "SYSCALL", "%-22s ", "%-22s "))
    out.append(OutputColumn("count", "Calls that returned in the window", "COUNT", "%8s", "%8d"))
    if options.latency:
        fmt = " %16.6f" if options.milliseconds else " %16.3f"
        out.append(
            OutputColumn(
                "time", f"Total time in those calls ({unit})", f"TIME ({unit})", " %16s", fmt
            )
        )
    return tuple(out)


def _kernel_side(t: pa.Table, options: Options, ppids: pa.Array | None) -> pa.Table:
    """The rows syscount's BPF program would have counted."""
    keep = []
    if options.pid is not None:
        keep.append(pc.equal(as_int64(t["tgid"]), options.pid))
    elif options.tid is not None:
        keep.append(pc.equal(as_int64(t["tid"]), options.tid))
    elif options.ppid is not None and ppids is not None:
        keep.append(pc.equal(ppids, options.ppid))
    if options.syscall is not None:
        keep.append(pc.equal(as_int64(t["nr"]), options.syscall))
    if options.failures:
        keep.append(pc.less(t["ret"], 0))
    if options.errno is not None:
        keep.append(pc.equal(t["ret"], -options.errno))
    return filter_all(t, keep)


def plan(options: Options, start_ns: int, end_ns: int) -> tuple[int, int | None, list[int]]:
    """(window length ns, end of the time covered by -d or None, end of each window): -i
    INTERVAL windows from the recording's start, the last cut at the recording's (or
    -d's) end; -d alone is one window of that length; neither, one window covering the
    recording. A window's end is when the live tool would have printed it."""
    stop = start_ns + int(options.duration * NS_PER_S) if options.duration else None
    last = min(end_ns, stop) if stop is not None else end_ns
    length, n = window_plan(start_ns, last, options.interval or options.duration)
    return length, stop, [min(start_ns + (w + 1) * length, last) for w in range(n)]


def partial(
    calls: pa.Table,
    options: Options,
    *,
    start_ns: int,
    window_ns: int,
    stop_ns: int | None,
    ppids: pa.Array | None = None,
) -> pa.Table:
    """Counts of one chunk of `syscall` rows: per window (index from the recording's
    start) and key (nr, or tgid with -P): count, total_ns and (-P) the comm of the key's
    last call. Merge chunks with merge()."""
    t = _kernel_side(calls, options, ppids)
    end = completion_ns(t)
    if stop_ns is not None:
        inside = pc.less(end, pa.scalar(stop_ns, end.type))
        t, end = t.filter(inside), end.filter(inside)
    since = pc.subtract(as_int64(end), start_ns)
    window = pc.divide(pc.max_element_wise(since, 0), window_ns)
    key = "tgid" if options.process else "nr"
    table = pa.table(
        {
            "window": window,
            "key": as_int64(t[key]),
            "lat_ns": pc.fill_null(t["lat_ns"], 0).cast(pa.int64()),
            "end": end,
            "comm": t["comm"],
        }
    )
    aggs = [([], "count_all"), ("lat_ns", "sum")]
    if options.process:
        table = table.sort_by([("end", "ascending")])
        aggs.append(("comm", "last"))
    g = table.group_by(["window", "key"], use_threads=False).aggregate(aggs)
    return _named(g, {"count_all": "count", "lat_ns_sum": "total_ns"}, options)


def merge(partials: Iterable[pa.Table], options: Options) -> pa.Table:
    """The partial() counts of every chunk, summed (chunks are in time order: the last
    comm wins)."""
    parts = [p for p in partials if p.num_rows]
    if not parts:
        return partial(_empty_calls(), options, start_ns=0, window_ns=1, stop_ns=None)
    t = pa.concat_tables(parts)
    aggs = [("count", "sum"), ("total_ns", "sum")]
    if options.process:
        aggs.append(("comm", "last"))
    g = t.group_by(["window", "key"], use_threads=False).aggregate(aggs)
    return _named(g, {"count_sum": "count", "total_ns_sum": "total_ns"}, options)


def _named(g: pa.Table, names: dict[str, str], options: Options) -> pa.Table:
    names = dict(names, comm_last="comm")
    g = g.rename_columns([names.get(c, c) for c in g.column_names])
    return g.select(["window", "key", "count", "total_ns"] + (["comm"] if options.process else []))


def _empty_calls() -> pa.Table:
    return pa.table(
        {
            "ts_ns": pa.array([], pa.uint64()),
            "lat_ns": pa.array([], pa.uint64()),
            "tgid": pa.array([], pa.uint32()),
            "tid": pa.array([], pa.uint32()),
            "nr": pa.array([], pa.uint32()),
            "ret": pa.array([], pa.int64()),
            "comm": pa.array([], pa.binary()),
        }
    )


def windows(totals: pa.Table, options: Options, n_windows: int) -> list[pa.Table]:
    """One report table per window (0 .. n_windows - 1, empty ones included), rows as
    syscount prints them: most calls first (most time with -L), ties by key; the top
    `options.top`, then id -1 dropped; columns as columns(options)."""
    div = 1e6 if options.milliseconds else 1e3
    out = []
    w_all = totals["window"].to_numpy(zero_copy_only=False) if totals.num_rows else np.array([])
    for w in range(n_windows):
        t = totals.filter(pa.array(w_all == w)) if totals.num_rows else totals
        by = "total_ns" if options.latency else "count"
        t = t.sort_by([(by, "descending"), ("key", "ascending")]).slice(0, options.top)
        t = t.filter(pc.not_equal(t["key"], NO_SYSCALL))
        cols: dict[str, pa.Array] = {}
        if options.process:
            cols["pid"] = t["key"]
            cols["comm"] = t["comm"]
        else:
            names = [name_of(int(k)).encode() for k in t["key"].to_pylist()]
            cols["syscall"] = pa.array(names, pa.binary())
        cols["count"] = t["count"]
        if options.latency:
            cols["time"] = pc.divide(t["total_ns"].cast(pa.float64()), div)
        fields = [
            pa.field(c.name, cols[c.name].type, metadata={"doc": c.doc}) for c in columns(options)
        ]
        out.append(pa.Table.from_arrays([cols[f.name] for f in fields], schema=pa.schema(fields)))
    return out


def banner(options: Options) -> str:
    """The line syscount prints when it starts."""
    if options.syscall is not None:
        failed = "failed " if options.failures else ""
        return f"Tracing {failed}syscall '{name_of(options.syscall)}'... Ctrl+C to quit."
    return (
        f"Tracing {'failed ' if options.failures else ''}syscalls, "
        f"printing top {options.top}... Ctrl+C to quit."
    )
