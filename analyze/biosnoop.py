"""biosnoop: one row per block I/O request, as BCC's tools/biosnoop.py (HEAD) prints it,
in completion order.

Differences from BCC, where a recording knows more: a request whose start was not seen
(queued before recording began) shows COMM `?` and PID 0 as in BCC, but its real sector
and disk (BCC prints 0 and `<unknown>`). Pure flush requests (rwbs starting with F, no
data) are left out unless `flushes`, as BCC's completion hook never sees them.

Text: COMM `.decode('utf-8', 'replace')`, `%-14.14s` in characters; DISK the str name from
/proc/diskstats, printed as UTF-8 (biosnoop.py:379,419-421).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.common import (
    END,
    OutputColumn,
    decode_replace,
    filter_all,
    in_completion_order,
    sort_by_completion,
)
from bpfcap.analyze.report import REORDER_SLACK_NS, Report, Rows, Source, option
from bpfcap.formats.errors import UsageError
from bpfcap.formats.events import BY_NAME, SCHEMA
from bpfcap.formats.schema import empty_table

# Rows of a report table at most (tables of biosnoop_stream()).
ROWS = 1 << 16

COLUMNS = (
    OutputColumn(
        "time_s", "Seconds from the first completion shown", "TIME(s)", "%-11s ", "%-11.6f "
    ),
    OutputColumn(
        "comm",
        "Task that started the I/O (`?`: not seen)",
        "COMM",
        "%-14s ",
        "%-14.14s ",
        text=decode_replace,
    ),
    OutputColumn("pid", "Its process id (0: not seen)", "PID", "%-7s ", "%-7d "),
    OutputColumn(
        "disk", "Disk name from the recording host (`<unknown>`)", "DISK", "%-9s ", "%-9s "
    ),
    OutputColumn("t", "W for writes, else R", "T", "%-1s ", "%-1s "),
    OutputColumn("sector", "Start sector", "SECTOR", "%-10s ", "%-10d "),
    OutputColumn("bytes", "Size at issue", "BYTES", "%-7s", "%-7d"),
    OutputColumn(
        "pattern",
        "S: sequential to the previous completion on the disk, R: random, ?: first (-P)",
        "P",
        "%-1s ",
        "%-1s ",
    ),
    OutputColumn("que_ms", "Queued to issued, ms (-Q)", "QUE(ms)", "%7s ", "%7.2f "),
    OutputColumn("lat_ms", "Issued to completed, ms", "LAT(ms)", "%7s", "%7.2f"),
)


@dataclass(frozen=True)
class Options:
    """biosnoop's flags."""

    queue: bool = option(False, "-Q", "--queue", help="Include the time queued (QUE(ms)).")
    disk: str | None = option(
        None, "-d", "--disk", metavar="NAME", help="Only this disk (a whole disk, e.g. sda)."
    )
    pattern: bool = option(False, "-P", "--pattern", help="Show S/R: sequential or random I/O.")
    flushes: bool = option(
        False, "--flushes", help="Also pure flush requests (BCC never sees them)."
    )


def disk_names(disks: Sequence[Sequence]) -> dict[int, str]:
    """dev -> name from the trace's `disks` metadata ([dev, name] pairs)."""
    return {int(d): str(n) for d, n in disks}


def disk_dev(name: str, names: dict[int, str]) -> int:
    """The dev of disk `name` on the recording host; BCC's error if it had none."""
    for dev, n in names.items():
        if n == name:
            return dev
    raise UsageError(
        f"no such disk '{name}'", f"disks recorded: {', '.join(sorted(names.values())) or 'none'}"
    )


def keep_requests(bios: pa.Table, flushes: bool, dev: int | None = None) -> pa.Table:
    """Rows the BCC tools would see: without pure flushes (unless `flushes`), of one disk."""
    keep = []
    if not flushes and _may_flush(bios):
        flush = pc.and_(
            pc.starts_with(bios["rwbs"].cast(pa.string()), "F"), pc.equal(bios["bytes"], 0)
        )
        keep.append(pc.invert(flush))
    if dev is not None:
        keep.append(pc.equal(bios["dev"], dev))
    return filter_all(bios, keep)


def _may_flush(bios: pa.Table) -> bool:
    """Whether keep_requests() may leave out a row: one of no bytes (a flush, if its rwbs
    starts with F), or a null its test leaves out. Most chunks have none: no test."""
    nbytes, rwbs = bios["bytes"], bios["rwbs"]
    if nbytes.null_count or rwbs.null_count:
        return True
    return bool(pc.any(pc.equal(nbytes, 0)).as_py())


def _pattern(
    dev: np.ndarray, sector: np.ndarray, nbytes: np.ndarray, last: dict[int, int] | None = None
) -> list[str]:
    """S/R/? per row (rows in completion order), per device: S when the row starts at the
    sector after the previous row of its device, R otherwise, ? for a device's first
    row. `last` (dev -> the sector after its last row) carries from earlier rows, and is
    updated with these."""
    last = {} if last is None else last
    n = len(dev)
    if not n:
        return []
    dev = np.asarray(dev, dtype=np.int64)
    sector = np.asarray(sector, dtype=np.uint64)
    # The sector after each row; where it does not fit in 64 bits no sector equals it.
    after = sector + np.asarray(nbytes, dtype=np.uint64) // np.uint64(512)
    fits = after >= sector
    order = np.argsort(dev, kind="stable")  # each device's rows, in completion order
    d, s, a, f = dev[order], sector[order], after[order], fits[order]
    first = np.ones(n, dtype=bool)
    first[1:] = d[1:] != d[:-1]
    seq = np.zeros(n, dtype=bool)
    seq[1:] = f[:-1] & (s[1:] == a[:-1])
    marks = np.where(seq, "S", "R").astype(object)
    for i in np.nonzero(first)[0].tolist():
        prev = last.get(int(d[i]))
        marks[i] = "?" if prev is None else "S" if int(s[i]) == prev else "R"
    ends = np.nonzero(np.append(first[1:], True))[0]  # each device's last row
    for i in ends.tolist():
        last[int(d[i])] = int(s[i]) + int(nbytes[order[i]]) // 512
    out = np.empty(n, dtype=object)
    out[order] = marks
    return out.tolist()


def biosnoop(bios: pa.Table, options: Options, *, disks: dict[int, str]) -> pa.Table:
    """The biosnoop report of `bios` (rows of kind `bio`): columns of COLUMNS that the
    options show, in completion order (ties by tid)."""
    parts = list(biosnoop_stream([bios], options, disks=disks))
    return pa.concat_tables(parts).drop_columns([END])


def biosnoop_stream(
    chunks: Iterable[pa.Table],
    options: Options,
    *,
    disks: dict[int, str],
    slack_ns: int = REORDER_SLACK_NS,
) -> Iterator[pa.Table]:
    """biosnoop() of the rows of kind `bio` in `chunks` (as recorded: in completion order
    give or take `slack_ns`), as tables of at most ROWS rows in completion order, each
    with the columns of biosnoop() then `end_ns` (uint64, monotonic ns the I/O
    completed). One empty table when no row is shown. Memory: `slack_ns` of rows, and
    per disk its last sector (-P)."""
    dev = disk_dev(options.disk, disks) if options.disk is not None else None
    return _biosnoop_rows(chunks, options, disks, dev, slack_ns)


def _biosnoop_rows(
    chunks: Iterable[pa.Table],
    options: Options,
    disks: dict[int, str],
    dev: int | None,
    slack_ns: int,
) -> Iterator[pa.Table]:
    state = _State()
    shown = False
    kept = (keep_requests(c, options.flushes, dev) for c in chunks)
    for ordered in in_completion_order(kept, slack_ns):
        for at in range(0, ordered.num_rows, ROWS):
            shown = True
            yield _report(ordered.slice(at, ROWS), options, disks, state)
    if not shown:
        yield _report(sort_by_completion(empty_table(SCHEMA)), options, disks, state)


class _State:
    """What a row's report takes from the rows before it."""

    def __init__(self) -> None:
        self.first_us: int | None = None  # completion of the first row shown (TIME(s) 0)
        self.last: dict[int, int] = {}  # dev -> the sector after its last I/O (-P)


def _report(t: pa.Table, options: Options, disks: dict[int, str], state: _State) -> pa.Table:
    """The report columns of rows in completion order (with their end_ns)."""
    end = t[END].combine_chunks().cast(pa.uint64())
    end_us = pc.divide(end, 1000).cast(pa.int64())
    if state.first_us is None and len(end_us):
        state.first_us = end_us[0].as_py()
    first = state.first_us or 0
    seen = pc.greater(t["tgid"], 0)
    devs = t["dev"].to_numpy(zero_copy_only=False)
    rwbs = t["rwbs"].cast(pa.string())
    out = {
        "time_s": pc.divide(pc.subtract(end_us, first).cast(pa.float64()), 1e6),
        "comm": pc.if_else(seen, t["comm"], pa.scalar(b"?")).combine_chunks(),
        "pid": t["tgid"].combine_chunks(),
        "disk": _disk_names(devs, disks),
        "t": pc.if_else(pc.match_substring(pc.utf8_slice_codeunits(rwbs, 0, 8), "W"), "W", "R"),
        "sector": t["sector"].combine_chunks(),
        "bytes": t["bytes"].combine_chunks(),
        "lat_ms": pc.divide(t["lat_ns"].cast(pa.float64()), 1e6).combine_chunks(),
    }
    if options.pattern:
        out["pattern"] = pa.array(
            _pattern(
                devs,
                t["sector"].to_numpy(zero_copy_only=False),
                t["bytes"].to_numpy(zero_copy_only=False),
                state.last,
            ),
            pa.string(),
        )
    if options.queue:
        out["que_ms"] = pc.divide(t["queue_ns"].cast(pa.float64()), 1e6).combine_chunks()
    return pa.table({**{c.name: out[c.name] for c in COLUMNS if c.name in out}, END: end})


def _disk_names(devs: np.ndarray, disks: dict[int, str]) -> pa.Array:
    """The recorded name of each dev, `<unknown>` if it has none (once per distinct dev)."""
    unique, which = np.unique(np.asarray(devs, dtype=np.int64), return_inverse=True)
    names = pa.array([disks.get(int(d), "<unknown>") for d in unique.tolist()], pa.string())
    return names.take(pa.array(which.reshape(-1), pa.int64()))


def run(source: Source, options: Options) -> Rows:
    """biosnoop over the trace, streamed in completion order."""
    columns = [c.name for c in BY_NAME["bio"].columns if c.name != "kind"]
    chunks = biosnoop_stream(
        source.batches("bio", columns),
        options,
        disks=dict(source.meta.disks),
        slack_ns=REORDER_SLACK_NS,
    )
    return Rows(
        "biosnoop", kinds=["bio"], columns=COLUMNS, chunks=chunks, meta=source.meta, abi=source.abi
    )


REPORT = Report(
    name="biosnoop",
    summary="Trace block I/O with its latency, as BCC's biosnoop prints it.",
    description="""Trace block I/O: one line per request with its latency, as biosnoop
    prints it. TRACE was recorded with -e bio.""",
    needs={"bio": tuple(c.name for c in BY_NAME["bio"].columns if c.name != "kind")},
    options=Options,
    run=run,
    examples=(
        ("biosnoop t.parquet", "every block I/O"),
        ("biosnoop t.parquet -Q -P", "with queued time and S/R pattern"),
        ("biosnoop t.parquet -d vda", "one disk"),
    ),
)
