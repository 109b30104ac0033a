"""runqlat: histograms of run-queue latency, as BCC's tools/runqlat.py prints them,
replayed in windows of its `INTERVAL [COUNT]`.

A wait belongs to the window in which the task got the CPU. Waits of the idle task (tid
0) are never counted, as in BCC. Latency is in whole us (or ms with -m) per wait before
bucketing, as BCC divides in BPF. Sections (-P, -L) are in ascending key order (BCC's
follow its hash map, which is arbitrary).

Text: none; -P/-L section headers print the number only (`pid = 185`, runqlat.py:318).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.aggregate import (
    HistWindow,
    log2_windows_add,
    log2_windows_result,
    window_plan,
)
from bpfcap.analyze.common import completion_ns
from bpfcap.analyze.report import (
    Log2Histograms,
    Report,
    Source,
    count_argument,
    interval_argument,
    option,
    timestamp_flag,
)
from bpfcap.formats.errors import UsageError


@dataclass(frozen=True)
class Options:
    """runqlat's flags and arguments."""

    interval: float | None = interval_argument()
    count: int | None = count_argument()
    timestamp: bool = timestamp_flag()
    milliseconds: bool = option(False, "-m", "--milliseconds", help="Histograms in msecs.")
    pids: bool = option(False, "-P", "--pids", help="One histogram per process.")
    tids: bool = option(False, "-L", "--tids", help="One histogram per thread.")
    pidnss: bool = option(False, "--pidnss", help="Per PID namespace (not recordable).")
    pid: int | None = option(None, "-p", "--pid", help="Only this process.")


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
    return runqlat_stream(lambda: iter([waits]), options, start_ns=start_ns, end_ns=end_ns)


def runqlat_stream(
    read: Callable[[], Iterable[pa.Table]], options: Options, *, start_ns: int, end_ns: int
) -> list[HistWindow]:
    """runqlat() of the rows of kind `runq` that each call of `read` yields (the same
    rows, in the same order, each time), one chunk at a time: memory is one histogram
    per window and section, and with -P or -p the tgid of each thread (known_tgids()
    takes a thread's tgid from any of its rows: a first pass gathers them)."""
    length, n = window_plan(start_ns, end_ns, options.interval, options.count)
    tgids = _tgids_of_threads(read()) if options.pids or options.pid is not None else None
    div = 1_000_000 if options.milliseconds else 1000
    acc: dict = {}
    for chunk in read():
        t = _without_idle(chunk.select(["ts_ns", "lat_ns", "tgid", "tid"]))
        if not t.num_rows:
            continue
        keys = None
        if tgids is not None:
            tgid = _column(t, "tgid")
            unknown = tgid == 0
            if unknown.any():
                tgid[unknown] = tgids.get(_column(t, "tid")[unknown])
            if options.pid is not None:
                keep = tgid == options.pid
                t, tgid = t.filter(pa.array(keep)), tgid[keep]
            keys = tgid if options.pids else None
        if keys is None and options.tids:
            keys = _column(t, "tid")
        vals = pc.divide(t["lat_ns"], div).to_numpy(zero_copy_only=False).astype(np.int64)
        ends = completion_ns(t).to_numpy(zero_copy_only=False).astype(np.int64)
        log2_windows_add(acc, vals, ends, keys, start_ns=start_ns, length_ns=length, n=n)
    keyed = options.pids or options.tids
    return [
        HistWindow(
            min(start_ns + (w + 1) * length, end_ns),
            sorted(h.items(), key=lambda kv: kv[0] or 0),
        )
        for w, h in enumerate(log2_windows_result(acc, n, keyed))
    ]


def _without_idle(waits: pa.Table) -> pa.Table:
    # BCC skips task pid 0 (the idle task; a kernel pid is a tid) at every hook: no
    # start at its wakeup (runqlat.py:92) or preemption (214), and its switch-in returns
    # before the lookup (222). So none of its waits counts, whatever the tgid.
    return waits.filter(pc.not_equal(waits["tid"], 0))


def _column(t: pa.Table, name: str) -> np.ndarray:
    return t[name].to_numpy(zero_copy_only=False).astype(np.int64)


class _LastByKey:
    """int -> int, the last value given for each key: as a dict would keep it, in two
    sorted arrays (16 bytes a key, not a dict's ~100), merged from what was added when
    that outgrows them (each key is re-sorted a logarithmic number of times)."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, np.int64)
        self.values = np.zeros(0, np.int64)
        self._added: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending = 0

    def update(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Set keys[i] to values[i], the later i winning."""
        # Each key's last row (hashed: faster than sorting a chunk's rows).
        last = (
            pa.table({"k": keys, "i": np.arange(len(keys))})
            .group_by("k", use_threads=False)
            .aggregate([("i", "max")])
        )
        self._added.append((last["k"].to_numpy(), values[last["i_max"].to_numpy()]))
        self._pending += len(self._added[-1][0])
        if self._pending > max(1 << 16, len(self.keys)):
            self._merge()

    def _merge(self) -> None:
        if self._added:
            keys = np.concatenate([self.keys, *(k for k, _ in self._added)])
            values = np.concatenate([self.values, *(v for _, v in self._added)])
            self.keys, self.values = _last_per_key(keys, values)
            self._added, self._pending = [], 0

    def get(self, keys: np.ndarray) -> np.ndarray:
        """The value of each of `keys`, or the key itself where it has none."""
        self._merge()
        if not len(self.keys):
            return keys.copy()
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[at] == keys, self.values[at], keys)


def _last_per_key(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys and, for each, its value at its last occurrence."""
    unique, first = np.unique(keys[::-1], return_index=True)
    return unique, values[::-1][first]


def _tgids_of_threads(chunks: Iterable[pa.Table]) -> _LastByKey:
    """tid -> tgid from the rows that know it (known_tgids(): the last such row of a
    thread, in the order read)."""
    out = _LastByKey()
    for chunk in chunks:
        tgid, tid = _column(chunk, "tgid"), _column(chunk, "tid")
        known = (tgid != 0) & (tid != 0)  # not the idle task's rows (_without_idle())
        if chunk["tid"].null_count:
            known &= chunk["tid"].is_valid().to_numpy(zero_copy_only=False)
        if known.any():
            out.update(tid[known], tgid[known])
    return out


def run(source: Source, options: Options) -> Log2Histograms:
    """runqlat over the trace: histograms summed row group by row group (with -P or -p,
    a first pass learns each thread's tgid)."""
    if options.pidnss:
        raise UsageError(
            "--pidnss: PID namespaces are not in the recording (no tracepoint gives them)",
            "use -P",
        )
    if options.pids and options.tids:
        raise UsageError("-P and -L exclude each other")
    wins = runqlat_stream(
        lambda: source.batches("runq", ["ts_ns", "lat_ns", "tgid", "tid"]),
        options,
        start_ns=source.start_ns,
        end_ns=source.end_ns,
    )
    return Log2Histograms(
        "runqlat",
        banner=["Tracing run queue latency... Hit Ctrl-C to end."],
        kinds=["runq"],
        covered=[(source.start_ns, source.end_ns + 1)],
        windows=wins,
        unit="msecs" if options.milliseconds else "usecs",
        section=section(options),
        timestamp=options.timestamp,
        meta=source.meta,
    )


REPORT = Report(
    name="runqlat",
    summary="Run-queue latency as power-of-two histograms, as BCC's runqlat prints them.",
    description="""Summarize run-queue (scheduler) latency as power-of-two histograms, as
    runqlat prints them (INTERVAL [COUNT]: one per INTERVAL seconds of recording). TRACE
    was recorded with -e runq.""",
    needs={"runq": ("ts_ns", "lat_ns", "tgid", "tid")},
    options=Options,
    run=run,
    examples=(
        ("runqlat t.parquet", "one histogram, in usecs"),
        ("runqlat t.parquet -P -m", "per process, in msecs"),
        ("runqlat t.parquet -p 185 -T 1 5", "process 185, five 1-second histograms"),
    ),
)
