"""biolatency: histograms of block I/O latency, as BCC's tools/biolatency.py (HEAD)
prints them, replayed in windows of its `INTERVAL [COUNT]`.

Latency is issue to completion, or with -Q start (queued) to completion, in whole us
(or ms with -m) per I/O before bucketing, as BCC divides in BPF. An I/O belongs to the
window in which it completed. Sections (-D) are in ascending disk name order (BCC's
follow its hash map, which is arbitrary).

Text: no comm; -D's `disk = NAME` prints the str name from /proc/diskstats (or `?`), and
-j its repr (biolatency.py:317-332, bcc/table.py:752,712).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.aggregate import HistWindow, log2_windows, window_plan
from bpfcap.analyze.biosnoop import disk_dev, keep_requests
from bpfcap.analyze.common import completion_ns
from bpfcap.formats.errors import UsageError


@dataclass(frozen=True)
class Options:
    queued: bool = False  # -Q
    milliseconds: bool = False  # -m
    disks: bool = False  # -D: one histogram per disk
    disk: str | None = None  # -d NAME
    interval: float | None = None
    count: int | None = None
    flushes: bool = False  # also pure flush requests


def unit(options: Options) -> str:
    return "msecs" if options.milliseconds else "usecs"


def windows(
    bios: pa.Table, options: Options, *, start_ns: int, end_ns: int, disks: dict[int, str]
) -> list[HistWindow]:
    """The histograms biolatency prints for `bios` (rows of kind `bio`)."""
    dev = disk_dev(options.disk, disks) if options.disk is not None else None
    t = keep_requests(bios, options.flushes, dev)
    if options.queued:
        t = t.filter(pc.greater(t["queue_ns"], 0))  # no start seen: no -Q latency
        ns = pc.add(t["queue_ns"], t["lat_ns"])
    else:
        ns = t["lat_ns"]
    value = pc.divide(ns, 1_000_000 if options.milliseconds else 1000).combine_chunks()
    vals = value.to_numpy(zero_copy_only=False).astype(np.int64)
    done = completion_ns(t).to_numpy(zero_copy_only=False).astype(np.int64)
    devs = t["dev"].to_numpy(zero_copy_only=False).astype(np.int64)
    length, n = window_plan(start_ns, end_ns, options.interval, options.count)
    hists = log2_windows(
        vals, done, devs if options.disks else None, start_ns=start_ns, length_ns=length, n=n
    )
    which = np.maximum(done - start_ns, 0) // length
    out = []
    for w, by_dev in enumerate(hists):
        # Sections by disk name (a dev missing from the recorded map shows as ?).
        named = sorted(by_dev.items(), key=lambda kv: (disks.get(kv[0], "?"), kv[0] or 0))
        sections = [(None if d is None else disks.get(d, "?"), h) for d, h in named]
        in_w = which == w
        end = min(start_ns + (w + 1) * length, end_ns)
        out.append(HistWindow(end, sections, int(vals[in_w].sum()), int(in_w.sum())))
    return out


def check_flags(flags: bool, disks: bool) -> None:
    """-F needs cmd_flags, which no block tracepoint carries (BCC refuses -F on
    tracepoints too); -D and -F exclude each other."""
    if flags and disks:
        raise UsageError("ERROR: can only use -D or -F. Exiting.")
    if flags:
        raise UsageError(
            "-F: the request flags (cmd_flags) are not in the recording: block "
            "tracepoints carry only the rwbs letters",
            "use -D, or `bpfcap report count TRACE --by rwbs`",
        )
