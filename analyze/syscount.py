"""syscount: system calls counted (and timed) per call or per process, as BCC's
tools/syscount.py (v0.37) prints them, replayed in windows of its `-i INTERVAL`.

A recording holds one row per returning call; syscount counts at sys_exit, so a call is
placed in the window in which it returned (ts_ns + lat_ns), as the live tool does.

Text: -P COMM printb of raw bytes, stripped of leading and trailing whitespace as BCC
strips what it reads from /proc/PID/comm (syscount.py:264,270,287).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.aggregate import window_plan
from bpfcap.analyze.common import NS_PER_S, OutputColumn, as_int64, completion_ns, filter_all
from bpfcap.analyze.report import Lines, Report, Source, Windows, option
from bpfcap.formats.errors import UsageError

if TYPE_CHECKING:
    from bpfcap.formats.abi import Abi


NO_SYSCALL = 0xFFFFFFFF  # id -1: skipped after the top-N cut, as BCC does


@dataclass(frozen=True)
class Options:
    """syscount's flags, as given (names resolved with the trace's architecture by
    run()). Filters, with BCC's precedence: pid, then tid, then ppid."""

    pid: int | None = option(None, "-p", "--pid", help="Only this process.")
    tid: int | None = option(None, "-t", "--tid", help="Only this thread.")
    ppid: int | None = option(None, "-c", "--ppid", help="Only children of this parent PID.")
    interval: float | None = option(
        None,
        "-i",
        "--interval",
        metavar="SECONDS",
        min=0,
        min_open=True,
        help="One table per INTERVAL seconds of the report's time.",
    )
    duration: float | None = option(
        None,
        "-d",
        "--duration",
        metavar="SECONDS",
        min=0,
        min_open=True,
        help="Only the first SECONDS of the report's time (as BCC's -d).",
    )
    top: int = option(10, "-T", "--top", min=1, help="Rows per table.")
    failures: bool = option(False, "-x", "--failures", help="Only failed calls.")
    errno: str | None = option(
        None,
        "-e",
        "--errno",
        metavar="ERRNO",
        help="Only calls that failed with this errno (a number or a name: ENOENT).",
    )
    latency: bool = option(False, "-L", "--latency", help="Also the total time in the calls.")
    milliseconds: bool = option(False, "-m", "--milliseconds", help="Times in ms (default us).")
    process: bool = option(False, "-P", "--process", help="Count by process, not by call.")
    syscall: tuple[str, ...] = option(
        (),
        "--syscall",
        metavar="NAME[,NAME...]",
        help="Only these system calls (names or numbers, as record's --syscall).",
    )
    list_: bool = option(
        False, "-l", "--list", help="Print the system call names (of TRACE's machine) and exit."
    )


@dataclass(frozen=True)
class Plan:
    """Options with names resolved to numbers: what the counting reads."""

    pid: int | None = None
    tid: int | None = None
    ppid: int | None = None
    failures: bool = False
    errno: int | None = None
    syscalls: tuple[int, ...] = ()
    interval: float | None = None
    duration: float | None = None
    top: int = 10
    latency: bool = False
    milliseconds: bool = False
    process: bool = False


def columns(options: Options | Plan) -> tuple[OutputColumn, ...]:
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


def _kernel_side(t: pa.Table, options: Plan, ppids: pa.Array | None) -> pa.Table:
    """The rows syscount's BPF program would have counted."""
    keep = []
    if options.pid is not None:
        keep.append(pc.equal(as_int64(t["tgid"]), options.pid))
    elif options.tid is not None:
        keep.append(pc.equal(as_int64(t["tid"]), options.tid))
    elif options.ppid is not None and ppids is not None:
        keep.append(pc.equal(ppids, options.ppid))
    if options.syscalls:
        keep.append(pc.is_in(as_int64(t["nr"]), pa.array(options.syscalls, pa.int64())))
    if options.failures:
        keep.append(pc.less(t["ret"], 0))
    if options.errno is not None:
        keep.append(pc.equal(t["ret"], -options.errno))
    return filter_all(t, keep)


def plan(options: Plan, start_ns: int, end_ns: int) -> tuple[int, int | None, list[int]]:
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
    options: Plan,
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


def merge(partials: Iterable[pa.Table], options: Plan) -> pa.Table:
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


def _named(g: pa.Table, names: dict[str, str], options: Plan) -> pa.Table:
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


def windows(
    totals: pa.Table, options: Plan, n_windows: int, name_of: Callable[[int], str]
) -> list[pa.Table]:
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


def banner(options: Plan, name_of: Callable[[int], str]) -> str:
    """The line syscount prints when it starts."""
    if options.syscalls:
        failed = "failed " if options.failures else ""
        names = "', '".join(name_of(n) for n in options.syscalls)
        calls = "syscall" if len(options.syscalls) == 1 else "syscalls"
        return f"Tracing {failed}{calls} '{names}'... Ctrl+C to quit."
    return (
        f"Tracing {'failed ' if options.failures else ''}syscalls, "
        f"printing top {options.top}... Ctrl+C to quit."
    )


def resolve(options: Options, abi: Abi) -> Plan:
    """The counting plan of `options`, errno and call names read with `abi` (the
    trace's architecture)."""
    errno = None
    if options.errno is not None:
        errno = abi.errno_number(options.errno)
        if errno is None:
            raise UsageError(
                f"-e {options.errno}: unknown errno", "give a number or a name like ENOENT"
            )
    nrs = []
    for name in options.syscall:
        for part in name.split(","):
            nr = abi.syscall_number(part.strip())
            if nr is None:
                raise UsageError(
                    f"--syscall {part.strip()}: no such system call on {abi.machine}",
                    "`bpfcap report syscount --list TRACE` lists them",
                )
            nrs.append(nr)
    return Plan(
        pid=options.pid,
        tid=options.tid,
        ppid=options.ppid,
        failures=options.failures,
        errno=errno,
        syscalls=tuple(dict.fromkeys(nrs)),
        interval=options.interval,
        duration=options.duration,
        top=options.top,
        latency=options.latency,
        milliseconds=options.milliseconds,
        process=options.process,
    )


def listing(abi: Abi) -> Lines:
    """--list: the system call names, four per line, as BCC prints them (names in
    both the 64-bit and the x32 ranges twice, as BCC); for machines, nr and name."""
    names = sorted(abi.syscalls.values())
    lines = ["   ".join(f"{n:<22}" for n in names[i : i + 4]) for i in range(0, len(names), 4)]
    nrs = sorted(abi.syscalls)
    table = pa.table({"nr": pa.array(nrs, pa.int64()), "syscall": [abi.syscalls[n] for n in nrs]})
    return Lines("syscount", lines=lines, table=table)


def run(source: Source | None, options: Options) -> Windows | Lines:
    """syscount over the trace: streams the syscall rows, holding one count per window
    and key."""
    from bpfcap.analyze.common import parents
    from bpfcap.formats.abi import for_machine

    if options.list_:
        abi = source.abi if source is not None else for_machine(_local_machine())
        return listing(abi)
    if source is None:
        raise UsageError("missing TRACE", "give a trace file (or --list)")
    plan_ = resolve(options, source.abi)
    start_ns, end_ns = source.start_ns, source.end_ns
    window_ns, stop_ns, ends = plan(plan_, start_ns, end_ns)
    needs = ["ts_ns", "lat_ns", "tgid", "tid", "nr", "ret", "comm"]
    processes = [[p.pid, p.ppid, p.comm] for p in source.meta.processes]
    forks = None
    if plan_.ppid is not None and plan_.pid is None and plan_.tid is None:
        forks = source.read("fork", ["ts_ns", "tgid", "comm", "child_pid"], whole=True)

    def parts() -> Iterator[pa.Table]:
        for chunk in source.batches("syscall", needs):
            ppids = None
            if forks is not None:
                ppids = parents(chunk["tgid"], chunk["ts_ns"], forks, processes)[0]
            yield partial(
                chunk, plan_, start_ns=start_ns, window_ns=window_ns, stop_ns=stop_ns, ppids=ppids
            )

    tables = windows(merge(parts(), plan_), plan_, len(ends), source.abi.syscall_name)
    return Windows(
        "syscount",
        banner=[banner(plan_, source.abi.syscall_name)],
        footer=["Detaching..."],
        kinds=["syscall"],
        covered=[(start_ns, ends[-1] + 1)],
        columns=columns(plan_),
        windows=list(zip(ends, tables)),
        meta=source.meta,
    )


def _local_machine() -> str | None:
    import platform

    return platform.machine() or None


REPORT = Report(
    name="syscount",
    summary="Count system calls per call or per process, as BCC's syscount prints them.",
    description="""Count system calls, or time them (-L), per call or per process (-P), as
    syscount prints them. TRACE was recorded with -e syscall.""",
    needs={"syscall": ("ts_ns", "lat_ns", "tgid", "tid", "nr", "ret", "comm")},
    options=Options,
    run=run,
    trace_required=False,
    bcc_duration=True,
    examples=(
        ("syscount t.parquet", "top 10 system calls"),
        ("syscount t.parquet -L -m -T 5", "top 5 by total time, in ms"),
        ("syscount t.parquet -P -x", "processes with the most failed calls"),
        ("syscount t.parquet -e ENOENT", "calls that failed with ENOENT"),
        ("syscount t.parquet -i 1", "one table per second of recording"),
        ("syscount t.parquet --syscall read,write", "only these calls"),
        ("syscount --list t.parquet", "the system call names of the trace's machine"),
    ),
)
