"""killsnoop: one row per kill(2), as BCC's tools/killsnoop.py (v0.37) prints it, with its
filters applied after the fact. BCC traces kill only; `all_calls` adds tkill and tgkill
(as bpftrace's killsnoop.bt does).

Text: COMM printb of raw bytes (killsnoop.py:168-169).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.common import (
    END,
    NS_PER_S,
    OutputColumn,
    as_int64,
    filter_all,
    in_completion_order,
    sort_by_completion,
    wall_clock,
)
from bpfcap.analyze.report import REORDER_SLACK_NS, Report, Rows, Source, option
from bpfcap.formats.errors import UsageError
from bpfcap.formats.events import SCHEMA
from bpfcap.formats.schema import empty_table

if TYPE_CHECKING:
    from bpfcap.formats.abi import Abi

# Rows of a report table at most (tables of killsnoop_stream()).
ROWS = 1 << 16


@dataclass(frozen=True)
class Options:
    """killsnoop's flags."""

    failed: bool = option(False, "-x", "--failed", help="Only failed signals.")
    pid: int | None = option(None, "-p", "--pid", help="Only signals sent by this process.")
    tpid: int | None = option(
        None, "-T", "--tpid", help="Only signals sent to this target (as passed)."
    )
    signals: tuple[int | str, ...] = option(
        (),
        "-s",
        "--signal",
        metavar="SIGNALS",
        help="Only these signals (comma list of numbers or names: 9,TERM,SIGHUP).",
    )
    all_calls: bool = option(
        False, "--all-calls", help="Also tkill(2) and tgkill(2) (BCC traces kill only)."
    )


def pid_width(pid_max: int | None) -> int:
    """BCC's PID column width: digits of the recording host's pid_max, plus one (6 when
    unknown, BCC's fallback)."""
    return len(str(pid_max)) + 1 if pid_max else 6


def columns(width: int) -> tuple[OutputColumn, ...]:
    """`"%-9s %-*s %-16s %-4s %-*s %s"` with the PID and TPID columns `width` wide."""
    return (
        OutputColumn("time", "Wall-clock time the call returned", "TIME", "%-9s ", "%-9s "),
        OutputColumn("pid", "Sender process id (tgid)", "PID", f"%-{width}s ", f"%-{width}d "),
        OutputColumn("comm", "Sender comm", "COMM", "%-16s ", "%-16s "),
        OutputColumn("sig", "Signal number", "SIG", "%-4s ", "%-4d "),
        OutputColumn("tpid", "Target as passed", "TPID", f"%-{width}s ", f"%-{width}d "),
        OutputColumn("result", "Return value: 0 or -errno", "RESULT", "%s", "%d"),
    )


def killsnoop(signals: pa.Table, options: Options, *, clock: dict[str, Any]) -> pa.Table:
    """The killsnoop report of `signals` (rows of kind `signal`), in completion order:
    time (HH:MM:SS string), pid, comm (binary), sig, tpid, result (int64)."""
    parts = list(killsnoop_stream([signals], options, clock=clock))
    return pa.concat_tables(parts).drop_columns([END])


def killsnoop_stream(
    chunks: Iterable[pa.Table],
    options: Options,
    *,
    clock: dict[str, Any],
    slack_ns: int = REORDER_SLACK_NS,
) -> Iterator[pa.Table]:
    """killsnoop() of the rows of kind `signal` in `chunks` (as recorded: in completion
    order give or take `slack_ns`), as tables of at most ROWS rows in completion order,
    each with the columns of killsnoop() then `end_ns` (uint64, monotonic ns the call
    returned). One empty table when no row is shown. Memory: `slack_ns` of rows."""
    shown = False
    kept = (_filtered(c, options) for c in chunks)
    for ordered in in_completion_order(kept, slack_ns):
        for at in range(0, ordered.num_rows, ROWS):
            shown = True
            yield _report(ordered.slice(at, ROWS), clock)
    if not shown:
        yield _report(sort_by_completion(empty_table(SCHEMA)), clock)


def _filtered(t: pa.Table, options: Options) -> pa.Table:
    keep = []
    if not options.all_calls:
        keep.append(pc.equal(t["syscall"], "kill"))
    if options.failed:
        keep.append(pc.less(t["ret"], 0))
    if options.pid is not None:
        keep.append(pc.equal(as_int64(t["tgid"]), options.pid))
    if options.tpid is not None:
        keep.append(pc.equal(as_int64(t["target"]), options.tpid))
    if options.signals:
        keep.append(pc.is_in(as_int64(t["sig"]), pa.array(options.signals, pa.int64())))
    return filter_all(t, keep)


def _report(t: pa.Table, clock: dict[str, Any]) -> pa.Table:
    """Report columns of rows in completion order (with their end_ns)."""
    end = t[END].combine_chunks().cast(pa.uint64())
    return pa.table(
        {
            "time": _wall_clock(end, clock),
            "pid": t["tgid"].combine_chunks(),
            "comm": t["comm"].combine_chunks(),
            "sig": t["sig"].combine_chunks(),
            "tpid": t["target"].combine_chunks(),
            "result": t["ret"].combine_chunks().cast(pa.int64()),
            END: end,
        }
    )


def _wall_clock(end_ns: pa.Array, clock: dict[str, Any]) -> pa.Array:
    """wall_clock(end_ns, clock), formatted once per distinct second (rows share them)."""
    offset = int(clock.get("realtime_minus_monotonic_ns", 0))
    ns = np.asarray(end_ns.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    _, first, which = np.unique((ns + offset) // NS_PER_S, return_index=True, return_inverse=True)
    text = wall_clock(pa.array(ns[first], pa.int64()), clock)
    return text.take(pa.array(which.reshape(-1), pa.int64()))


def signal_numbers(given: tuple[int | str, ...], abi: Abi) -> tuple[int, ...]:
    """-s: numbers, or names of the trace's architecture (KILL, SIGKILL)."""
    out = []
    for s in given:
        text = str(s).strip()
        if text.lstrip("-").isdigit():
            out.append(int(text))
            continue
        name = text.upper() if text.upper().startswith("SIG") else "SIG" + text.upper()
        if name not in abi.signals:
            raise UsageError(f"-s {text}: no such signal", "give numbers or names: 9,TERM")
        out.append(abi.signals[name])
    return tuple(out)


def run(source: Source, options: Options) -> Rows:
    """killsnoop over the trace, streamed in completion order."""
    import dataclasses

    from bpfcap.formats.events import BY_NAME

    options = dataclasses.replace(options, signals=signal_numbers(options.signals, source.abi))

    needs = [c.name for c in BY_NAME["signal"].columns if c.name != "kind"]
    width = pid_width(source.meta.host.pid_max)
    chunks = killsnoop_stream(
        source.batches("signal", needs),
        options,
        clock=source.meta.clock.as_dict(),
        slack_ns=REORDER_SLACK_NS,
    )
    return Rows(
        "killsnoop",
        kinds=["signal"],
        columns=columns(width),
        chunks=chunks,
        meta=source.meta,
        abi=source.abi,
    )


REPORT = Report(
    name="killsnoop",
    summary="Trace signals sent by kill(2), as BCC's killsnoop prints them.",
    description="""Trace signals sent by kill(2): one line per call, as killsnoop prints
    it.""",
    needs={"signal": ("ts_ns", "lat_ns", "tgid", "comm", "sig", "target", "ret", "syscall")},
    options=Options,
    run=run,
    examples=(
        ("killsnoop t.parquet", "every kill(2)"),
        ("killsnoop t.parquet -x -s 9,15", "failed SIGKILL and SIGTERM"),
        ("killsnoop t.parquet --all-calls", "with tkill and tgkill"),
    ),
)
