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

from collections.abc import Iterable
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
from bpfcap.analyze.biosnoop import disk_dev, keep_requests
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
    """biolatency's flags and arguments."""

    interval: float | None = interval_argument()
    count: int | None = count_argument()
    timestamp: bool = timestamp_flag()
    queued: bool = option(False, "-Q", "--queued", help="Include the time queued in the kernel.")
    milliseconds: bool = option(False, "-m", "--milliseconds", help="Histograms in msecs.")
    disks: bool = option(False, "-D", "--disks", help="One histogram per disk.")
    flags: bool = option(False, "-F", "--flags", help="Per I/O flags (not recordable).")
    extension: bool = option(False, "-e", "--extension", help="Also the average and total latency.")
    json: bool = option(False, "-j", "--json", help="BCC's JSON-like histogram dicts.")
    disk: str | None = option(None, "-d", "--disk", metavar="NAME", help="Only this disk.")
    flushes: bool = option(
        False, "--flushes", help="Also pure flush requests (BCC never sees them)."
    )


def unit(options: Options) -> str:
    return "msecs" if options.milliseconds else "usecs"


def windows(
    bios: pa.Table, options: Options, *, start_ns: int, end_ns: int, disks: dict[int, str]
) -> list[HistWindow]:
    """The histograms biolatency prints for `bios` (rows of kind `bio`)."""
    return windows_stream([bios], options, start_ns=start_ns, end_ns=end_ns, disks=disks)


# The columns biolatency reads.
_NEEDS = ["ts_ns", "lat_ns", "queue_ns", "dev", "bytes", "rwbs"]


def windows_stream(
    chunks: Iterable[pa.Table],
    options: Options,
    *,
    start_ns: int,
    end_ns: int,
    disks: dict[int, str],
) -> list[HistWindow]:
    """windows() of the rows of kind `bio` in `chunks` (in any order), one chunk at a
    time: memory is one histogram per window (and disk, -D), whatever the trace's size."""
    dev = disk_dev(options.disk, disks) if options.disk is not None else None
    length, n = window_plan(start_ns, end_ns, options.interval, options.count)
    acc: dict = {}
    total = np.zeros(n, dtype=np.int64)  # per window: sum and number of the values (-e)
    count = np.zeros(n, dtype=np.int64)
    for chunk in chunks:
        t = keep_requests(chunk.select(_NEEDS), options.flushes, dev)
        if options.queued:
            t = t.filter(pc.greater(t["queue_ns"], 0))  # no start seen: no -Q latency
            ns = pc.add(t["queue_ns"], t["lat_ns"])
        else:
            ns = t["lat_ns"]
        if not t.num_rows:
            continue
        value = pc.divide(ns, 1_000_000 if options.milliseconds else 1000)
        if isinstance(value, pa.ChunkedArray):
            value = value.combine_chunks()
        vals = value.to_numpy(zero_copy_only=False).astype(np.int64)
        done = completion_ns(t).to_numpy(zero_copy_only=False).astype(np.int64)
        devs = t["dev"].to_numpy(zero_copy_only=False).astype(np.int64)
        log2_windows_add(
            acc,
            vals,
            done,
            devs if options.disks else None,
            start_ns=start_ns,
            length_ns=length,
            n=n,
        )
        which = np.maximum(done - start_ns, 0) // length
        inside = which < n
        np.add.at(total, which[inside], vals[inside])
        np.add.at(count, which[inside], 1)
    out = []
    for w, by_dev in enumerate(log2_windows_result(acc, n, options.disks)):
        # Sections by disk name (a dev missing from the recorded map shows as ?).
        named = sorted(by_dev.items(), key=lambda kv: (disks.get(kv[0], "?"), kv[0] or 0))
        sections = [(None if d is None else disks.get(d, "?"), h) for d, h in named]
        end = min(start_ns + (w + 1) * length, end_ns)
        out.append(HistWindow(end, sections, int(total[w]), int(count[w])))
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


def run(source: Source, options: Options) -> Log2Histograms:
    """biolatency over the trace: one histogram (per disk with -D) per interval, summed
    row group by row group."""
    check_flags(options.flags, options.disks)
    wins = windows_stream(
        source.batches("bio", ["ts_ns", "lat_ns", "queue_ns", "dev", "rwbs", "bytes"]),
        options,
        start_ns=source.start_ns,
        end_ns=source.end_ns,
        disks=dict(source.meta.disks),
    )
    return Log2Histograms(
        "biolatency",
        banner=[] if options.json else ["Tracing block device I/O... Hit Ctrl-C to end."],
        kinds=["bio"],
        covered=[(source.start_ns, source.end_ns + 1)],
        windows=wins,
        unit=unit(options),
        section="disk" if options.disks else None,
        timestamp=options.timestamp,
        extension=options.extension,
        bcc_json=options.json,
        meta=source.meta,
    )


REPORT = Report(
    name="biolatency",
    summary="Block I/O latency as power-of-two histograms, as BCC's biolatency prints them.",
    description="""Summarize block I/O latency as power-of-two histograms, as biolatency
    prints them (INTERVAL [COUNT]: one histogram per INTERVAL seconds of recording).
    TRACE was recorded with -e bio.""",
    needs={"bio": ("ts_ns", "lat_ns", "queue_ns", "dev", "rwbs", "bytes")},
    options=Options,
    run=run,
    examples=(
        ("biolatency t.parquet", "one histogram, in usecs"),
        ("biolatency t.parquet -m -D", "per disk, in msecs"),
        ("biolatency t.parquet -Q -e", "from queued, with avg and total"),
        ("biolatency t.parquet -T 1 5", "five 1-second histograms"),
        ("biolatency t.parquet -j", "as BCC's -j dicts"),
        ("biolatency t.parquet -D --format json", "buckets with min, max, count"),
    ),
)
