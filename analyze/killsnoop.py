"""killsnoop: one row per kill(2), as BCC's tools/killsnoop.py (v0.37) prints it, with its
filters applied after the fact. BCC traces kill only; `all_calls` adds tkill and tgkill
(as bpftrace's killsnoop.bt does).

Text: COMM printb of raw bytes (killsnoop.py:168-169).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.common import (
    END,
    OutputColumn,
    as_int64,
    filter_all,
    sort_by_completion,
    wall_clock,
)


@dataclass(frozen=True)
class Options:
    failed: bool = False  # -x: only ret < 0
    pid: int | None = None  # -p: sender tgid
    tpid: int | None = None  # -T: target as passed
    signals: tuple[int, ...] = ()  # -s
    all_calls: bool = False  # also tkill and tgkill


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
    t = sort_by_completion(signals)
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
    t = filter_all(t, keep)
    return pa.table(
        {
            "time": wall_clock(t[END].combine_chunks(), clock),
            "pid": t["tgid"].combine_chunks(),
            "comm": t["comm"].combine_chunks(),
            "sig": t["sig"].combine_chunks(),
            "tpid": t["target"].combine_chunks(),
            "result": t["ret"].combine_chunks().cast(pa.int64()),
        }
    )
