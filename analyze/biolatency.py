"""biolatency: histograms of block I/O latency, as BCC's tools/biolatency.py (HEAD)
prints them, replayed in windows of its `INTERVAL [COUNT]`.

Latency is issue to completion, or with -Q start (queued) to completion, in whole us
(or ms with -m) per I/O before bucketing, as BCC divides in BPF. An I/O belongs to the
window in which it completed. Sections (-D) are in ascending disk name order (BCC's
follow its hash map, which is arbitrary).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.aggregate import SLOTS, log2_slots
from bpfcap.analyze.biosnoop import disk_dev, keep_requests
from bpfcap.analyze.common import NS_PER_S, completion_ns
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


@dataclass
class Window:
    """One printed interval: when it was printed (its end), its histograms (one per
    section: (section label or None, counts per slot)), and -e's totals."""

    end_ns: int
    sections: list[tuple[str | None, np.ndarray]]
    total: int  # sum of per-I/O values, in the unit
    count: int


def unit(options: Options) -> str:
    return "msecs" if options.milliseconds else "usecs"


def windows(
    bios: pa.Table, options: Options, *, start_ns: int, end_ns: int, disks: dict[int, str]
) -> list[Window]:
    """The histograms biolatency prints for `bios` (rows of kind `bio`)."""
    dev = disk_dev(options.disk, disks) if options.disk is not None else None
    t = keep_requests(bios, options.flushes, dev)
    if options.queued:
        t = t.filter(pc.greater(t["queue_ns"], 0))  # no start seen: no -Q latency
        ns = pc.add(t["queue_ns"], t["lat_ns"])
    else:
        ns = t["lat_ns"]
    value = pc.divide(ns, 1_000_000 if options.milliseconds else 1000).combine_chunks()
    done = completion_ns(t).to_numpy(zero_copy_only=False).astype(np.int64)
    if options.interval:
        length = int(options.interval * NS_PER_S)
        n = max(1, -(-(end_ns - start_ns) // length))
        if options.count:
            n = min(n, options.count)
    else:
        length, n = max(1, end_ns - start_ns + 1), 1
    which = np.maximum(done - start_ns, 0) // length
    slots = log2_slots(value) if len(value) else np.zeros(0, np.int64)
    vals = value.to_numpy(zero_copy_only=False).astype(np.int64)
    devs = t["dev"].to_numpy(zero_copy_only=False)
    out = []
    for w in range(n):
        in_w = which == w
        sections: list[tuple[str | None, np.ndarray]] = []
        if options.disks:
            names = {int(d): disks.get(int(d), "?") for d in np.unique(devs[in_w])}
            for d, name in sorted(names.items(), key=lambda kv: (kv[1], kv[0])):
                sel = in_w & (devs == d)
                sections.append((name, np.bincount(slots[sel], minlength=SLOTS)))
        else:
            sections.append((None, np.bincount(slots[in_w], minlength=SLOTS)))
        end = min(start_ns + (w + 1) * length, end_ns)
        out.append(Window(end, sections, int(vals[in_w].sum()), int(in_w.sum())))
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
