"""`bpfcap report`: BCC tools' output rebuilt from a trace, with their flags.

Each command: parse options, open the trace, read the kinds it needs, call the analysis
(analyze/), render (cli/render.py), then say on stderr what the trace could not show.
Heavy imports happen inside the commands so that `bpfcap --help` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from bpfcap.formats.trace import Trace

_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "csv"]),
    default="text",
    show_default=True,
    help="text: as the BCC tool prints it; json: JSON Lines; csv: with a header row.",
)


_STRICT = click.option(
    "--strict",
    is_flag=True,
    help="Exit with status 3 when the recording lost events in the window reported.",
)


def _seconds(*names: str, help: str) -> Any:
    return click.option(
        *names, type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", help=help
    )


def _hist_tool_arguments(f: Any) -> Any:
    """TRACE [INTERVAL [COUNT]] and -T, as BCC's histogram tools take them."""
    f = click.option("-T", "--timestamp", is_flag=True, help="Print the time of each histogram.")(f)
    f = click.argument("count", type=click.IntRange(min=1), required=False)(f)
    f = click.argument("interval", type=click.FloatRange(min=0, min_open=True), required=False)(f)
    return click.argument("trace")(f)


# The stdout writer of this report (escaping_stdout); --raw sets its .raw, which the
# writers of values read too.
_OUTPUT: dict[str, Any] = {"writer": None}


def _raw() -> bool:
    return _OUTPUT["writer"] is not None and _OUTPUT["writer"].raw


@click.group()
@click.pass_context
def report(ctx: click.Context) -> None:
    """Rebuild a BCC tool's output from a trace, offline (no root, no BCC needed).

    Text to the terminal has control characters escaped as \\xNN, so that no recorded
    name, path or argument can drive it; CSV cells cannot start a formula. --raw prints
    the bytes as recorded."""
    from bpfcap.cli.render import escaping_stdout

    _OUTPUT["writer"] = escaping_stdout(ctx)


def _set_raw(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and _OUTPUT["writer"] is not None:
        _OUTPUT["writer"].raw = True


_RAW = click.Option(
    ["--raw"],
    is_flag=True,
    expose_value=False,
    callback=_set_raw,
    help="Print recorded text (comm, paths, args) byte for byte, control characters "
    "included, and CSV cells as they are (default: escaped as \\xNN; a leading ' before "
    "=, +, -, @ in CSV).",
)


@report.command(
    epilog="""\b
examples:
  bpfcap report opensnoop t.parquet              # all opens
  bpfcap report opensnoop t.parquet -T -U -e     # with time, uid, flags and mode
  bpfcap report opensnoop t.parquet -x -p 181    # failed opens of PID 181
  bpfcap report opensnoop t.parquet -f O_CREAT   # opens that may create a file
  bpfcap report opensnoop t.parquet -n ssh -d 5  # comm contains "ssh", first 5 s
  bpfcap report opensnoop t.parquet -F           # full paths of relative ones
  bpfcap report opensnoop t.parquet --format csv > opens.csv"""
)
@click.argument("trace")
@click.option("-T", "--timestamp", is_flag=True, help="Include a TIME(s) column.")
@click.option("-U", "--print-uid", is_flag=True, help="Include a UID column.")
@click.option("-x", "--failed", is_flag=True, help="Only show failed opens.")
@click.option("-p", "--pid", type=int, help="Only this process.")
@click.option("-t", "--tid", type=int, help="Only this thread (first column becomes TID).")
@click.option("-u", "--uid", type=int, help="Only this user id.")
@click.option(
    "-d",
    "--duration",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Only the first SECONDS of the recording.",
)
@click.option("-n", "--name", metavar="NAME", help="Only processes whose name contains NAME.")
@click.option("-e", "--extended-fields", is_flag=True, help="Show the FLAGS and MODE columns.")
@click.option(
    "-F",
    "--full-path",
    is_flag=True,
    help="Show relative paths joined to the working directory (as BCC's -F).",
)
@click.option(
    "-f",
    "--flag-filter",
    "flag_filter",
    multiple=True,
    metavar="O_FLAG",
    help="Only opens with this flag set (repeatable: any of them).",
)
@_STRICT
@_FORMAT
def opensnoop(trace: str, fmt: str, strict: bool, **flags: Any) -> None:
    """Trace open() syscalls: one line per open(2), openat(2) or openat2(2), as opensnoop
    prints it. TRACE is a trace file or segment directory."""
    from bpfcap.analyze import opensnoop as analysis
    from bpfcap.analyze.common import in_completion_order
    from bpfcap.formats.events import BY_NAME, SCHEMA
    from bpfcap.formats.schema import empty_table
    from bpfcap.formats.trace import open_trace

    options = analysis.Options(**flags)
    analysis.flag_mask(options.flag_filter)  # a bad -f fails before any reading
    t = open_trace(trace)
    start_ns = _meta(t, "start_ns")
    columns = [f.name for f in BY_NAME["open"].columns if f.name != "kind"]
    groups = t.row_groups("open")
    first_us = None
    if options.timestamp:  # -T counts from the first open received: one pass for it
        first_us = analysis.first_received_us(
            t.batches("open", ["ts_ns", "lat_ns", "tgid", "tid", "uid", "flags"], groups),
            options,
        )
    # Row group by row group, re-ordered within a bounded window: memory stays flat for
    # traces of any length.
    out = sys.stdout.buffer
    chunks = _progress(t.batches("open", columns, groups), len(groups), "opensnoop")
    # -F: the working directories, kept per thread (few rows: one per directory a thread
    # opened a relative path in).
    cwds = t.read("cwd", ["ts_ns", "tid", "dirs"]) if options.full_path else None
    header = True
    for chunk in in_completion_order(chunks, REORDER_SLACK_NS):
        table = analysis.opensnoop(chunk, options, start_ns=start_ns, first_us=first_us, cwds=cwds)
        _write(table, analysis.COLUMNS, fmt, out, header=header)
        header = False
    if header:  # no rows at all: still the header, as BCC prints it
        empty = empty_table(SCHEMA).select(columns)
        _write(
            analysis.opensnoop(empty, options, start_ns=start_ns, first_us=first_us),
            analysis.COLUMNS,
            fmt,
            out,
        )
    out.flush()
    _warn(t, ["open", "cwd"] if options.full_path else ["open"], strict)


@report.command(
    epilog="""\b
examples:
  bpfcap report execsnoop t.parquet              # successful execs
  bpfcap report execsnoop t.parquet -x -T        # failed too, with wall-clock time
  bpfcap report execsnoop t.parquet -t -U -M -C  # seconds, uid, parent comm, CPU
  bpfcap report execsnoop t.parquet -n '^ba' -l tpkg -q
  bpfcap report execsnoop t.parquet --max-args 5 --format json"""
)
@click.argument("trace")
@click.option("-T", "--time", is_flag=True, help="Include a TIME (HH:MM:SS) column.")
@click.option(
    "-t",
    "--timestamp",
    is_flag=True,
    help="Include a TIME(s) column: seconds since the recording started.",
)
@click.option("-x", "--fails", is_flag=True, help="Include failed execs.")
@click.option("-U", "--print-uid", is_flag=True, help="Include a UID column.")
@click.option(
    "-u",
    "--uid",
    "user",
    metavar="USER",
    help="Only this user (a uid, or a user name known to this machine).",
)
@click.option("-n", "--name", metavar="REGEX", help="Only commands whose name matches REGEX.")
@click.option("-l", "--line", metavar="REGEX", help="Only commands whose arguments match REGEX.")
@click.option("-q", "--quote", is_flag=True, help='Add quotemarks (") around arguments.')
@click.option("-P", "--ppid", type=int, metavar="PPID", help="Only children of this parent PID.")
@click.option(
    "--max-args",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Arguments shown, counting the filename; more show as `...`.",
)
@click.option("-C", "--print-cpu", is_flag=True, help="Include a CPU column.")
@click.option("-M", "--print-pcomm", is_flag=True, help="Include the parent's COMM.")
@_STRICT
@_FORMAT
def execsnoop(trace: str, fmt: str, strict: bool, user: str | None, **flags: Any) -> None:
    """Trace exec() syscalls: one line per execve(2) or execveat(2), as execsnoop prints
    it. TRACE is a trace file or segment directory."""
    from bpfcap.analyze import execsnoop as analysis
    from bpfcap.formats.trace import open_trace

    options = analysis.Options(uid=_uid(user), **flags)
    t = open_trace(trace)
    table = analysis.execsnoop(
        t.read("exec"),
        t.read("fork", columns=["ts_ns", "tgid", "comm", "child_pid"]),
        options,
        start_ns=_meta(t, "start_ns"),
        clock=t.meta.get("clock", {}),
        processes=t.meta.get("processes", []),
    )
    _render(table, analysis.COLUMNS, fmt)
    _warn(t, ["exec", "fork"], strict)


@report.command(
    epilog="""\b
examples:
  bpfcap report syscount t.parquet               # top 10 system calls
  bpfcap report syscount t.parquet -L -m -T 5    # top 5 by total time, in ms
  bpfcap report syscount t.parquet -P -x         # processes with the most failed calls
  bpfcap report syscount t.parquet -e ENOENT     # calls that failed with ENOENT
  bpfcap report syscount t.parquet -i 1          # one table per second of recording
  bpfcap report syscount --list                  # the system call names"""
)
@click.argument("trace", required=False)
@click.option("-p", "--pid", type=int, help="Only this process.")
@click.option("-t", "--tid", type=int, help="Only this thread.")
@click.option("-c", "--ppid", type=int, help="Only children of this parent PID.")
@_seconds("-i", "--interval", help="One table per INTERVAL seconds of recording.")
@_seconds("-d", "--duration", help="Only the first SECONDS of the recording.")
@click.option(
    "-T", "--top", type=click.IntRange(min=1), default=10, show_default=True, help="Rows per table."
)
@click.option("-x", "--failures", is_flag=True, help="Only failed calls.")
@click.option(
    "-e",
    "--errno",
    "errno_",
    metavar="ERRNO",
    help="Only calls that failed with this errno (a number or a name: ENOENT).",
)
@click.option("-L", "--latency", is_flag=True, help="Also the total time in the calls.")
@click.option("-m", "--milliseconds", is_flag=True, help="Times in ms (default us).")
@click.option("-P", "--process", is_flag=True, help="Count by process, not by call.")
@click.option("--syscall", "syscall_", metavar="NAME", help="Only this system call.")
@click.option("-l", "--list", "list_", is_flag=True, help="Print the system call names and exit.")
@_STRICT
@_FORMAT
def syscount(
    trace: str | None,
    fmt: str,
    strict: bool,
    errno_: str | None,
    syscall_: str | None,
    list_: bool,
    **flags: Any,
) -> None:
    """Count system calls, or time them (-L), per call or per process (-P), as syscount
    prints them. TRACE (recorded with -e syscall) is a trace file or segment directory."""
    from bpfcap.analyze import syscount as analysis
    from bpfcap.analyze.common import wall_clock
    from bpfcap.analyze.errnos import errno_number
    from bpfcap.formats.errors import UsageError
    from bpfcap.formats.syscalls import NAMES, number_of
    from bpfcap.formats.trace import open_trace

    out = sys.stdout.buffer
    if list_:
        names = sorted(NAMES.values())  # as BCC: x32 names twice
        for i in range(0, len(names), 4):
            out.write("   ".join(f"{n:<22}" for n in names[i : i + 4]).encode() + b"\n")
        out.flush()
        return
    if trace is None:
        raise UsageError("missing TRACE", "give a trace file (or --list)")
    errno = None
    if errno_ is not None:
        errno = errno_number(errno_)
        if errno is None:
            raise UsageError(f"-e {errno_}: unknown errno", "give a number or a name like ENOENT")
    nr = None
    if syscall_ is not None:
        nr = number_of(syscall_)
        if nr is None:
            raise UsageError(f"Error: syscall '{syscall_}' not found", "see --list")
    options = analysis.Options(errno=errno, syscall=nr, **flags)
    t = open_trace(trace)
    start_ns = _meta(t, "start_ns")
    end_ns = int(t.meta.get("end_ns", start_ns))
    window_ns, stop_ns, ends = analysis.plan(options, start_ns, end_ns)
    needs = ["ts_ns", "lat_ns", "tgid", "tid", "nr", "ret", "comm"]
    processes, forks = t.meta.get("processes", []), None
    if options.ppid is not None and options.pid is None and options.tid is None:
        forks = t.read("fork", columns=["ts_ns", "tgid", "comm", "child_pid"])
    groups = t.row_groups("syscall")

    def parts():
        for chunk in _progress(t.batches("syscall", needs, groups), len(groups), "syscount"):
            ppids = None
            if forks is not None:
                from bpfcap.analyze.common import parents

                ppids = parents(chunk["tgid"], chunk["ts_ns"], forks, processes)[0]
            yield analysis.partial(
                chunk,
                options,
                start_ns=start_ns,
                window_ns=window_ns,
                stop_ns=stop_ns,
                ppids=ppids,
            )

    tables = analysis.windows(analysis.merge(parts(), options), options, len(ends))
    labels = wall_clock(pa_array(ends), t.meta.get("clock", {})).to_pylist()
    columns = analysis.columns(options)
    if fmt == "text":
        out.write(analysis.banner(options).encode() + b"\n")
    for i, (table, label) in enumerate(zip(tables, labels)):
        if fmt == "text":
            out.write(f"[{label}]\n".encode())
            _write(table, columns, fmt, out)
            out.write(b"\n")
        else:
            table = table.add_column(0, "window_end", pa_array([label] * table.num_rows))
            _write(table, columns, fmt, out, header=i == 0)
    if fmt == "text":
        out.write(b"Detaching...\n")
    out.flush()
    _warn(t, ["syscall"], strict, windows=[(start_ns, ends[-1] + 1)])


@report.command(
    epilog="""\b
examples:
  bpfcap report killsnoop t.parquet              # every kill(2)
  bpfcap report killsnoop t.parquet -x -s 9,15   # failed SIGKILL and SIGTERM
  bpfcap report killsnoop t.parquet --all-calls  # with tkill and tgkill"""
)
@click.argument("trace")
@click.option("-x", "--failed", is_flag=True, help="Only failed signals.")
@click.option("-p", "--pid", type=int, help="Only signals sent by this process.")
@click.option("-T", "--tpid", type=int, help="Only signals sent to this target (as passed).")
@click.option(
    "-s", "--signal", "signals", metavar="SIGNALS", help="Only these signal numbers (comma list)."
)
@click.option(
    "--all-calls", is_flag=True, help="Also tkill(2) and tgkill(2) (BCC traces kill only)."
)
@_STRICT
@_FORMAT
def killsnoop(trace: str, fmt: str, strict: bool, signals: str | None, **flags: Any) -> None:
    """Trace signals sent by kill(2): one line per call, as killsnoop prints it. TRACE is
    a trace file or segment directory."""
    from bpfcap.analyze import killsnoop as analysis
    from bpfcap.formats.errors import UsageError
    from bpfcap.formats.trace import open_trace

    sigs: tuple[int, ...] = ()
    if signals:
        try:
            sigs = tuple(int(x) for x in signals.split(","))
        except ValueError as e:
            raise UsageError(f"-s {signals}: signal numbers, comma separated") from e
    options = analysis.Options(signals=sigs, **flags)
    t = open_trace(trace)
    width = analysis.pid_width(t.meta.get("host", {}).get("pid_max"))
    table = analysis.killsnoop(t.read("signal"), options, clock=t.meta.get("clock", {}))
    _render(table, analysis.columns(width), fmt)
    _warn(t, ["signal"], strict)


@report.command(
    epilog="""\b
examples:
  bpfcap report biosnoop t.parquet               # every block I/O
  bpfcap report biosnoop t.parquet -Q -P         # with queued time and S/R pattern
  bpfcap report biosnoop t.parquet -d vda        # one disk"""
)
@click.argument("trace")
@click.option("-Q", "--queue", is_flag=True, help="Include the time queued (QUE(ms)).")
@click.option("-d", "--disk", metavar="NAME", help="Only this disk (a whole disk, e.g. sda).")
@click.option("-P", "--pattern", is_flag=True, help="Show S/R: sequential or random I/O.")
@click.option("--flushes", is_flag=True, help="Also pure flush requests (BCC never sees them).")
@_STRICT
@_FORMAT
def biosnoop(trace: str, fmt: str, strict: bool, **flags: Any) -> None:
    """Trace block I/O: one line per request with its latency, as biosnoop prints it.
    TRACE (recorded with -e bio) is a trace file or segment directory."""
    from bpfcap.analyze import biosnoop as analysis
    from bpfcap.formats.trace import open_trace

    options = analysis.Options(**flags)
    t = open_trace(trace)
    disks = analysis.disk_names(t.meta.get("disks", []))
    table = analysis.biosnoop(t.read("bio"), options, disks=disks)
    _render(table, analysis.COLUMNS, fmt)
    _warn(t, ["bio"], strict)


@report.command(
    epilog="""\b
examples:
  bpfcap report biolatency t.parquet             # one histogram, in usecs
  bpfcap report biolatency t.parquet -m -D       # per disk, in msecs
  bpfcap report biolatency t.parquet -Q -e       # from queued, with avg and total
  bpfcap report biolatency t.parquet -T 1 5      # five 1-second histograms
  bpfcap report biolatency t.parquet -j          # as BCC's -j dicts"""
)
@_hist_tool_arguments
@click.option("-Q", "--queued", is_flag=True, help="Include the time queued in the kernel.")
@click.option("-m", "--milliseconds", is_flag=True, help="Histograms in msecs.")
@click.option("-D", "--disks", is_flag=True, help="One histogram per disk.")
@click.option("-F", "--flags", "flags_", is_flag=True, help="Per I/O flags (not recordable).")
@click.option("-e", "--extension", is_flag=True, help="Also the average and total latency.")
@click.option("-j", "--json", "json_", is_flag=True, help="BCC's JSON-like histogram dicts.")
@click.option("-d", "--disk", metavar="NAME", help="Only this disk.")
@click.option("--flushes", is_flag=True, help="Also pure flush requests (BCC never sees them).")
@_STRICT
def biolatency(
    trace: str,
    strict: bool,
    timestamp: bool,
    flags_: bool,
    extension: bool,
    json_: bool,
    **flags: Any,
) -> None:
    """Summarize block I/O latency as power-of-two histograms, as biolatency prints them
    (INTERVAL [COUNT]: one histogram per INTERVAL seconds of recording). TRACE was
    recorded with -e bio."""
    from bpfcap.analyze import biolatency as analysis
    from bpfcap.analyze.biosnoop import disk_names
    from bpfcap.analyze.common import wall_clock
    from bpfcap.cli.render import log2_hist_json, log2_windows_text
    from bpfcap.formats.trace import open_trace

    analysis.check_flags(flags_, flags["disks"])
    options = analysis.Options(**flags)
    t = open_trace(trace)
    start_ns = _meta(t, "start_ns")
    end_ns = int(t.meta.get("end_ns", start_ns))
    wins = analysis.windows(
        t.read("bio"),
        options,
        start_ns=start_ns,
        end_ns=end_ns,
        disks=disk_names(t.meta.get("disks", [])),
    )
    clock = t.meta.get("clock", {})
    ends = pa_array([w.end_ns for w in wins])
    hhmmss = wall_clock(ends, clock).to_pylist()
    stamps = wall_clock(ends, clock, "%Y-%m-%d %H:%M:%S").to_pylist()
    label = analysis.unit(options)
    if json_:  # BCC's -j: dicts per histogram, after the -T time line of each window
        text = "".join(
            (f"{hms:<8}\n" if timestamp else "")
            + "".join(
                log2_hist_json(vals, label, stamp, None if key is None else ("disk", key))
                for key, vals in w.sections
            )
            for w, hms, stamp in zip(wins, hhmmss, stamps)
        )
    else:
        text = log2_windows_text(
            wins,
            hhmmss,
            label,
            "disk" if options.disks else None,
            banner="Tracing block device I/O... Hit Ctrl-C to end.",
            timestamp=timestamp,
            extension=extension,
        )
    sys.stdout.write(text)
    sys.stdout.flush()
    _warn(t, ["bio"], strict, windows=[(start_ns, end_ns + 1)])


@report.command(
    epilog="""\b
examples:
  bpfcap report runqlat t.parquet                # one histogram, in usecs
  bpfcap report runqlat t.parquet -P -m          # per process, in msecs
  bpfcap report runqlat t.parquet -p 185 -T 1 5  # process 185, five 1-second histograms"""
)
@_hist_tool_arguments
@click.option("-m", "--milliseconds", is_flag=True, help="Histograms in msecs.")
@click.option("-P", "--pids", is_flag=True, help="One histogram per process.")
@click.option("-L", "--tids", is_flag=True, help="One histogram per thread.")
@click.option("--pidnss", is_flag=True, help="Per PID namespace (not recordable).")
@click.option("-p", "--pid", type=int, help="Only this process.")
@_STRICT
def runqlat(trace: str, strict: bool, timestamp: bool, pidnss: bool, **flags: Any) -> None:
    """Summarize run-queue (scheduler) latency as power-of-two histograms, as runqlat
    prints them (INTERVAL [COUNT]: one per INTERVAL seconds of recording). TRACE was
    recorded with -e runq."""
    from bpfcap.analyze import runqlat as analysis
    from bpfcap.analyze.common import wall_clock
    from bpfcap.cli.render import log2_windows_text
    from bpfcap.formats.errors import UsageError
    from bpfcap.formats.trace import open_trace

    if pidnss:
        raise UsageError(
            "--pidnss: PID namespaces are not in the recording (no tracepoint gives them)",
            "use -P",
        )
    if flags["pids"] and flags["tids"]:
        raise UsageError("-P and -L exclude each other")
    options = analysis.Options(**flags)
    t = open_trace(trace)
    start_ns = _meta(t, "start_ns")
    end_ns = int(t.meta.get("end_ns", start_ns))
    wins = analysis.runqlat(t.read("runq"), options, start_ns=start_ns, end_ns=end_ns)
    hhmmss = wall_clock(pa_array([w.end_ns for w in wins]), t.meta.get("clock", {})).to_pylist()
    label = "msecs" if options.milliseconds else "usecs"
    text = log2_windows_text(
        wins,
        hhmmss,
        label,
        analysis.section(options),
        banner="Tracing run queue latency... Hit Ctrl-C to end.",
        timestamp=timestamp,
    )
    sys.stdout.write(text)
    sys.stdout.flush()
    _warn(t, ["runq"], strict, windows=[(start_ns, end_ns + 1)])


def _selection(t: Trace, event: str | None, fields: list[str], where: str | None):
    """The kinds whose rows have every field in `fields` and `where` (only `event` if
    given), the columns to read, and the --where expression."""
    from bpfcap.analyze.where import compile_where
    from bpfcap.formats.errors import UsageError
    from bpfcap.formats.events import BY_NAME, EVENT_TYPES, SCHEMA

    expr, used = compile_where(where, SCHEMA) if where else (None, set())
    unknown = [f for f in fields if f not in SCHEMA.names]
    if unknown:
        raise UsageError(
            f"no column {', '.join(unknown)}", "`bpfcap info --types` lists each type's columns"
        )
    if event is not None and event not in BY_NAME:
        raise UsageError(f"unknown event type {event}", f"choose from {', '.join(BY_NAME)}")
    need = set(fields) | used
    kinds = [
        k.name
        for k in EVENT_TYPES
        if (event is None or k.name == event) and need <= {"kind"} | {f.name for f in k.columns}
    ]
    if not kinds:
        raise UsageError(
            f"no event type has all of {', '.join(sorted(need))}",
            "`bpfcap info --types` lists each type's columns",
        )
    columns = sorted(need - {"kind"})
    return kinds, columns, expr


def _rows(t: Trace, kinds: list[str], columns: list[str], expr: Any, what: str):
    """Chunks of the rows of `kinds` (with a `kind` column), --where applied."""
    import pyarrow as pa

    groups = {k: t.row_groups(k) for k in kinds}
    total = sum(len(g) for g in groups.values())

    def chunks():
        for k in kinds:
            for chunk in t.batches(k, columns, groups[k]):
                chunk = chunk.append_column("kind", pa.array([k] * chunk.num_rows, pa.string()))
                yield chunk.filter(expr) if expr is not None else chunk

    return _progress(chunks(), total, what)


@report.command(
    epilog="""\b
examples:
  bpfcap report count t.parquet --by comm              # events per command
  bpfcap report count t.parquet --by kind              # events per type
  bpfcap report count t.parquet -e open --by path --where 'ret < 0' --top 10
  bpfcap report count t.parquet --by comm,nr --where 'kind == "syscall"'"""
)
@click.argument("trace")
@click.option(
    "--by",
    "by",
    required=True,
    metavar="FIELD[,FIELD...]",
    help="Count per value of these columns.",
)
@click.option("-e", "--event", metavar="TYPE", help="Only this event type.")
@click.option("--where", metavar="EXPR", help="Only rows where EXPR holds (see below).")
@click.option("--top", type=click.IntRange(min=1), metavar="N", help="Only the N largest counts.")
@_STRICT
@_FORMAT
def count(
    trace: str,
    fmt: str,
    strict: bool,
    by: str,
    event: str | None,
    where: str | None,
    top: int | None,
) -> None:
    """Count events per key, printed as bpftrace prints a count() map (`@[key]: N`,
    smallest first). Rows of every event type that has the --by and --where columns
    are counted. EXPR: comparisons (== != < <= > >= ~ in) of columns with numbers and
    quoted strings, joined by and/or/not, e.g. 'ret < 0 and comm ~ "^ba"'."""
    from bpfcap.analyze.aggregate import count as count_rows
    from bpfcap.cli.render import bpftrace_map_text
    from bpfcap.formats.trace import open_trace

    keys = [k.strip() for k in by.split(",") if k.strip()]
    t = open_trace(trace)
    kinds, columns, expr = _selection(t, event, keys, where)
    table = count_rows(_rows(t, kinds, columns, expr, "count"), keys)
    if top is not None:
        table = table.slice(0, top)
    out = sys.stdout.buffer
    if fmt == "text":
        rows = list(zip(zip(*(table[k].to_pylist() for k in keys)), table["count"].to_pylist()))
        out.write(bpftrace_map_text("", rows, _raw()))
    else:
        _write(table, (), fmt, out)
    out.flush()
    _warn(t, kinds, strict)


@report.command(
    epilog="""\b
examples:
  bpfcap report hist t.parquet -e open --field lat_ns     # power-of-2 buckets
  bpfcap report hist t.parquet -e bio --field bytes --by comm
  bpfcap report hist t.parquet -e syscall --field ret --linear 0,100,10"""
)
@click.argument("trace")
@click.option("--field", required=True, metavar="FIELD", help="The integer column to bucket.")
@click.option(
    "--by", "by", metavar="KEY[,KEY...]", help="One histogram per value of these columns."
)
@click.option("-e", "--event", metavar="TYPE", help="Only this event type.")
@click.option("--where", metavar="EXPR", help="Only rows where EXPR holds (as in count).")
@click.option("--linear", metavar="MIN,MAX,STEP", help="Linear buckets, as bpftrace's lhist().")
@_STRICT
@_FORMAT
def hist(
    trace: str,
    fmt: str,
    strict: bool,
    field: str,
    by: str | None,
    event: str | None,
    where: str | None,
    linear: str | None,
) -> None:
    """Histogram of an integer column, printed as bpftrace prints hist() (power-of-2
    buckets) or lhist() (--linear), one per --by key."""
    from functools import partial

    import pyarrow as pa

    from bpfcap.analyze import aggregate
    from bpfcap.cli.render import bpftrace_hist_text
    from bpfcap.formats.errors import UsageError
    from bpfcap.formats.events import SCHEMA
    from bpfcap.formats.trace import open_trace

    keys = [k.strip() for k in (by or "").split(",") if k.strip()]
    if field in SCHEMA.names and not pa.types.is_integer(SCHEMA.field(field).type):
        raise UsageError(f"--field {field}: not an integer column")
    lin = None
    if linear is not None:
        try:
            lo, hi, step = (int(x) for x in linear.split(","))
        except ValueError as e:
            raise UsageError(f"--linear {linear}: three integers MIN,MAX,STEP") from e
        if step <= 0 or hi <= lo:
            raise UsageError(f"--linear {linear}: MAX must exceed MIN and STEP be positive")
        lin = (lo, hi, step)
        buckets = partial(aggregate.linear_buckets, lo=lo, hi=hi, step=step)
        n = 2 + -(-(hi - lo) // step)
    else:
        buckets, n = aggregate.pow2_buckets, aggregate.POW2_BUCKETS
    t = open_trace(trace)
    kinds, columns, expr = _selection(t, event, [field, *keys], where)
    hists = aggregate.keyed_hist(_rows(t, kinds, columns, expr, "hist"), field, keys, buckets, n)
    out = sys.stdout.buffer
    ordered = sorted(hists.items(), key=lambda kv: tuple(str(k) for k in kv[0]))
    if fmt == "text":
        from bpfcap.cli.render import bpftrace_key

        for key, counts in ordered:
            title = field + (f"[{bpftrace_key(key, _raw())}]" if keys else "")
            out.write(bpftrace_hist_text(title, counts.tolist(), lin))
    else:
        rows = [
            {**dict(zip(keys, key)), "bucket": i, "count": int(c)}
            for key, counts in ordered
            for i, c in enumerate(counts)
            if c
        ]
        _write(
            pa.Table.from_pylist(rows) if rows else pa.table({"bucket": [], "count": []}),
            (),
            fmt,
            out,
        )
    out.flush()
    _warn(t, kinds, strict)


def _ports(text: str | None, flag: str) -> tuple[int, ...]:
    if not text:
        return ()
    from bpfcap.formats.errors import UsageError

    try:
        return tuple(int(p) for p in text.split(","))
    except ValueError as e:
        raise UsageError(f"{flag} {text}: port numbers, comma separated") from e


def _family(ipv4: bool, ipv6: bool) -> int | None:
    if ipv4 and ipv6:
        from bpfcap.formats.errors import UsageError

        raise UsageError("-4 and -6 exclude each other")
    return 4 if ipv4 else 6 if ipv6 else None


def _tcp_layout(f: Any) -> Any:
    """TRACE and tcplife's and tcpstates' layout flags: -T -t -w -s."""
    for option in reversed(
        [
            click.option("-T", "--time", is_flag=True, help="Include a TIME (HH:MM:SS) column."),
            click.option("-t", "--timestamp", is_flag=True, help="Include a TIME(s) column."),
            click.option("-w", "--wide", is_flag=True, help="Wide columns (fit IPv6 addresses)."),
            click.option("-s", "--csv", is_flag=True, help="Comma separated values, as BCC's -s."),
        ]
    ):
        f = option(f)
    return click.argument("trace")(f)


def _tcp_ports(f: Any) -> Any:
    f = click.option("-D", "--remoteport", metavar="PORTS", help="Only these remote ports.")(f)
    return click.option("-L", "--localport", metavar="PORTS", help="Only these local ports.")(f)


_IPV4 = click.option("-4", "--ipv4", is_flag=True, help="IPv4 only.")
_IPV6 = click.option("-6", "--ipv6", is_flag=True, help="IPv6 only.")


def _tcp_report(trace: str, fmt: str, strict: bool, build: Any, columns: Any) -> None:
    """Read the tcp rows, build the report table, render it, say what was lost."""
    from bpfcap.formats.trace import open_trace

    t = open_trace(trace)
    table = build(t.read("tcp"), clock=t.meta.get("clock", {}))
    _render(table, columns, fmt)
    _warn(t, ["tcp"], strict)


@report.command(
    epilog="""\b
examples:
  bpfcap report tcplife t.parquet                # every TCP session that closed
  bpfcap report tcplife t.parquet -t -w          # with seconds, wide (IPv6) columns
  bpfcap report tcplife t.parquet -L 80,443 -s   # local ports 80 and 443, as CSV"""
)
@_tcp_layout
@click.option("-p", "--pid", type=int, help="Only this process.")
@_tcp_ports
@_IPV4
@_IPV6
@_STRICT
@_FORMAT
def tcplife(trace, fmt, strict, time, timestamp, wide, csv, pid, localport, remoteport, ipv4, ipv6):
    """Trace TCP sessions: one line per session when it closes, with its duration and
    bytes, as tcplife prints it. TRACE was recorded with -e tcp."""
    from bpfcap.analyze import tcp as analysis

    filters = analysis.Filters(
        pid, _ports(localport, "-L"), _ports(remoteport, "-D"), _family(ipv4, ipv6)
    )
    o = analysis.LifeOptions(time, timestamp, wide, csv, filters)
    _tcp_report(
        trace,
        fmt,
        strict,
        lambda tcp, clock: analysis.tcplife(tcp, o, clock=clock),
        analysis.tcplife_columns(o),
    )


@report.command(
    epilog="""\b
examples:
  bpfcap report tcpstates t.parquet              # every TCP state change
  bpfcap report tcpstates t.parquet -t -L 80     # local port 80, with seconds"""
)
@_tcp_layout
@_tcp_ports
@click.option("-Y", "--journal", is_flag=True, help="Log to the systemd journal (not offline).")
@_STRICT
@_FORMAT
def tcpstates(trace, fmt, strict, time, timestamp, wide, csv, localport, remoteport, journal):
    """Trace TCP state changes: one line per change with the time spent in the old
    state, as tcpstates prints it. TRACE was recorded with -e tcp."""
    from bpfcap.analyze import tcp as analysis
    from bpfcap.formats.errors import UsageError

    if journal:
        raise UsageError("-Y: a report does not log to the journal", "pipe the output instead")
    filters = analysis.Filters(None, _ports(localport, "-L"), _ports(remoteport, "-D"))
    o = analysis.LifeOptions(time, timestamp, wide, csv, filters)
    _tcp_report(
        trace,
        fmt,
        strict,
        lambda tcp, clock: analysis.tcpstates(tcp, o, clock=clock),
        analysis.tcpstates_columns(o),
    )


@report.command(
    epilog="""\b
examples:
  bpfcap report tcpconnect t.parquet             # every active TCP open
  bpfcap report tcpconnect t.parquet -t -U -L    # with seconds, uid and local port
  bpfcap report tcpconnect t.parquet -c          # connects per destination"""
)
@click.argument("trace")
@click.option("-t", "--timestamp", is_flag=True, help="Include a TIME(s) column.")
@click.option("-U", "--print-uid", is_flag=True, help="Include a UID column.")
@click.option("-L", "--lport", is_flag=True, help="Include the local port.")
@click.option("-c", "--count", is_flag=True, help="Count connects per destination.")
@click.option("-d", "--dns", is_flag=True, help="DNS names (not recordable).")
@click.option("-p", "--pid", type=int, help="Only this process.")
@click.option("-P", "--port", metavar="PORTS", help="Only these destination ports.")
@click.option("-u", "--uid", type=int, help="Only this user id.")
@_IPV4
@_IPV6
@_STRICT
@_FORMAT
def tcpconnect(
    trace, fmt, strict, timestamp, print_uid, lport, count, dns, pid, port, uid, ipv4, ipv6
):
    """Trace active TCP connections (connect()), one line each, as tcpconnect prints
    them. TRACE was recorded with -e tcp."""
    from bpfcap.analyze import tcp as analysis
    from bpfcap.formats.errors import UsageError

    if dns:
        raise UsageError(
            "-d: DNS answers are not in the recording (no tracepoint sees them)", "drop -d"
        )
    filters = analysis.Filters(pid, (), _ports(port, "-P"), _family(ipv4, ipv6), uid)
    o = analysis.ConnectOptions(timestamp, print_uid, lport, count, filters)
    columns = analysis.COUNT_COLUMNS if count else analysis.tcpconnect_columns(o)
    if count and fmt == "text":
        sys.stdout.write("\n")  # BCC prints an empty line before the table
        sys.stdout.flush()
    _tcp_report(
        trace, fmt, strict, lambda tcp, clock: analysis.tcpconnect(tcp, o, clock=clock), columns
    )


@report.command(
    epilog="""\b
examples:
  bpfcap report tcpaccept t.parquet              # every passive TCP open
  bpfcap report tcpaccept t.parquet -t -P 80,81  # local ports 80 and 81, with seconds"""
)
@click.argument("trace")
@click.option("-T", "--time", is_flag=True, help="Include a TIME (HH:MM:SS) column.")
@click.option("-t", "--timestamp", is_flag=True, help="Include a TIME(s) column.")
@click.option("-p", "--pid", type=int, help="Only this process.")
@click.option("-P", "--port", metavar="PORTS", help="Only these local ports.")
@_IPV4
@_IPV6
@_STRICT
@_FORMAT
def tcpaccept(trace, fmt, strict, time, timestamp, pid, port, ipv4, ipv6):
    """Trace passive TCP connections (accept()), one line each, as tcpaccept prints
    them (PID: see `bpfcap.analyze.tcp`). TRACE was recorded with -e tcp."""
    from bpfcap.analyze import tcp as analysis
    from bpfcap.analyze.info import kernel_reads
    from bpfcap.formats.trace import open_trace

    filters = analysis.Filters(pid, _ports(port, "-P"), (), _family(ipv4, ipv6))
    o = analysis.AcceptOptions(time, timestamp, filters)
    t = open_trace(trace)
    # The accepting task comes from accept rows, where the recording has them.
    recorded = t.meta.get("settings", {}).get("events", [])
    read = kernel_reads(t.meta).get("accept.socket", {}).get("status") == "btf"
    accepts = t.read("accept") if "accept" in recorded and read else None
    tcp = t.read("tcp") if accepts is None else None
    table = analysis.tcpaccept(tcp, o, clock=t.meta.get("clock", {}), accepts=accepts)
    _render(table, analysis.tcpaccept_columns(o), fmt)
    if accepts is None and table.num_rows:
        click.echo(
            f"bpfcap: {t.path} has no accept rows: PID/COMM are the task that closed each "
            "socket, not the one that accepted it",
            err=True,
        )
    _warn(t, ["tcp"] if accepts is None else ["accept"], strict)


def _uid(user: str | None) -> int | None:
    """-u: a number, or a user name resolved on this machine (as BCC does on its host)."""
    if user is None:
        return None
    try:
        return int(user)
    except ValueError:
        pass
    from bpfcap.formats.errors import UsageError

    try:
        import pwd
    except ImportError as e:  # not on Windows
        raise UsageError(f"-u {user}: user names need a Unix system", "give the uid") from e
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError as e:
        raise UsageError(f"-u {user}: no such user on this machine", "give the uid") from e


def _meta(t: Trace, key: str) -> Any:
    from bpfcap.formats.errors import TraceFormatError

    if key not in t.meta:
        raise TraceFormatError(
            f"{t.path}: no {key} in the trace metadata", "was it written by bpfcap record?"
        )
    return t.meta[key]


def _render(table: Any, columns: Any, fmt: str) -> None:
    """A whole report table to stdout."""
    _write(table, columns, fmt, sys.stdout.buffer)
    sys.stdout.buffer.flush()


# Rows are stored in drain order: one completing at T is on disk within well under a
# second of rows completing after it. Holding 2 s back restores completion order.
REORDER_SLACK_NS = 2_000_000_000


def _progress(chunks: Iterator[Any], total: int, what: str) -> Iterator[Any]:
    """Pass `chunks` through, showing `what: N%` on stderr when it is a terminal (never
    in piped or redirected output) for reports of more than a few row groups."""
    show = total > 4 and sys.stderr.isatty()
    for i, chunk in enumerate(chunks):
        if show:
            sys.stderr.write(f"\r{what}: {100 * i // total}% of {total} row groups")
            sys.stderr.flush()
        yield chunk
    if show:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def _warn(
    t: Trace,
    kinds: list[str],
    strict: bool = False,
    windows: list[tuple[int, int]] | None = None,
) -> None:
    """After the rows, on stderr: what the recording lost (within `windows`, the spans of
    monotonic time the report covers, when given), and whether it was cut short. With
    `strict`, any loss is an error (exit status 3)."""
    from bpfcap.analyze.common import lost_in_window, missed_runs
    from bpfcap.formats.errors import EventsLost

    events = t.meta.get("events", {})
    recorded = t.meta.get("settings", {}).get("events")
    if recorded is not None:
        absent = [k for k in kinds if k not in recorded and k != "fork"]
        if absent:
            click.echo(
                f"bpfcap: {t.path} did not record {', '.join(absent)} events "
                f"(record with -e {','.join(absent)})",
                err=True,
            )
    from bpfcap.analyze.info import kernel_reads

    for key, r in kernel_reads(t.meta).items():
        if key.split(".")[0] in kinds and r["status"] != "btf":
            click.echo(f"bpfcap: not recorded: {r['doc']} ({r['reason']})", err=True)
    total = 0
    for kind in kinds:
        if windows:
            lost = sum(lost_in_window(events, kind, a, b) for a, b in windows)
            where = " in the time reported"
        else:
            lost = events.get(kind, {}).get("lost", 0) or 0
            where = ""
        if lost > 0:
            click.echo(f"bpfcap: {lost} {kind} events were lost while recording{where}", err=True)
        total += lost
    skipped = missed_runs(t.meta, kinds)
    if skipped:
        click.echo(
            f"bpfcap: the kernel skipped {skipped} runs of the probes for "
            f"{', '.join(kinds)} (another BPF program was running on that CPU): "
            "some events may be missing",
            err=True,
        )
    if t.meta.get("tree_filter_full"):
        click.echo(
            f"bpfcap: {t.meta['tree_filter_full']} new tasks of the recorded command were "
            "not followed (the process-tree filter was full): their events are missing",
            err=True,
        )
    if t.meta.get("clean_stop", True) is False:
        click.echo(
            f"bpfcap: {t.path}: recording did not stop cleanly; showing what reached disk", err=True
        )
    for note in t.notes:
        click.echo(f"bpfcap: {note}", err=True)
    if strict and (total or skipped):
        raise EventsLost(
            f"{t.path}: {total} events lost in the time reported"
            + (f", {skipped} probe runs skipped" if skipped else ""),
            "--strict",
        )


def pa_array(values: list[Any]) -> Any:
    import pyarrow as pa

    return pa.array(values)


def _write(table: Any, columns: Any, fmt: str, out: Any, header: bool = True) -> None:
    from bpfcap.cli.render import write

    write(table, columns, fmt, out, header=header, raw=_raw())


for _command in report.commands.values():
    _command.params.append(_RAW)
