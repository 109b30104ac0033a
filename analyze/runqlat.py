"""runqlat: histograms of run-queue latency, as BCC's tools/runqlat.py prints them,
replayed in windows of its `INTERVAL [COUNT]`.

A wait belongs to the window in which the task got the CPU. Waits of the idle task (tid
0) are never counted, as in BCC. Latency is in whole us (or ms with -m) per wait before
bucketing, as BCC divides in BPF. Sections (-P, -L) are in ascending key order (BCC's
follow its hash map, which is arbitrary).

Text: none; -P/-L section headers print the number only (`pid = 185`, runqlat.py:318).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.aggregate import HistWindow, log2_windows, window_plan
from bpfcap.analyze.common import completion_ns


@dataclass(frozen=True)
class Options:
    milliseconds: bool = False  # -m
    pids: bool = False  # -P: a histogram per process (tgid)
    tids: bool = False  # -L: a histogram per thread
    pid: int | None = None  # -p: only this process
    interval: float | None = None
    count: int | None = None


def known_tgids(waits: pa.Table) -> np.ndarray:
    """The tgid of each row. Where the recording did not know it (0: a new task's first
    run), it is taken from another row of the same thread, else the tid itself is taken
    (right for a new process, whose tgid is its tid; a short-lived thread that ran only
    once counts under its own tid)."""
    tgid = waits["tgid"].to_numpy(zero_copy_only=False).astype(np.int64)
    tid = waits["tid"].to_numpy(zero_copy_only=False).astype(np.int64)
    unknown = tgid == 0
    if unknown.any():
        known = dict(zip(tid[~unknown].tolist(), tgid[~unknown].tolist()))
        tgid[unknown] = [known.get(t, t) for t in tid[unknown].tolist()]
    return tgid


def section(options: Options) -> str | None:
    """BCC's section header: pid (-P), tid (-L), none."""
    return "pid" if options.pids else "tid" if options.tids else None


def runqlat(waits: pa.Table, options: Options, *, start_ns: int, end_ns: int) -> list[HistWindow]:
    """The histograms runqlat prints for `waits` (rows of kind `runq`), per window, with
    sections keyed by tgid (-P) or tid (-L)."""
    # BCC skips task pid 0 (the idle task; a kernel pid is a tid) at every hook: no
    # start at its wakeup (runqlat.py:92) or preemption (214), and its switch-in returns
    # before the lookup (222). So none of its waits counts, whatever the tgid.
    waits = waits.filter(pc.not_equal(waits["tid"], 0))
    tgid = known_tgids(waits)
    keep = np.ones(len(tgid), dtype=bool)
    if options.pid is not None:
        keep = tgid == options.pid
    t = waits.filter(pa.array(keep))
    div = 1_000_000 if options.milliseconds else 1000
    vals = pc.divide(t["lat_ns"], div).to_numpy(zero_copy_only=False).astype(np.int64)
    ends = completion_ns(t).to_numpy(zero_copy_only=False).astype(np.int64)
    keys = None
    if options.pids:
        keys = tgid[keep]
    elif options.tids:
        keys = t["tid"].to_numpy(zero_copy_only=False).astype(np.int64)
    length, n = window_plan(start_ns, end_ns, options.interval, options.count)
    hists = log2_windows(vals, ends, keys, start_ns=start_ns, length_ns=length, n=n)
    return [
        HistWindow(
            min(start_ns + (w + 1) * length, end_ns),
            sorted(h.items(), key=lambda kv: kv[0] or 0),
        )
        for w, h in enumerate(hists)
    ]
