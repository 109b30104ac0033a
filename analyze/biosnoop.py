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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.common import (
    END,
    OutputColumn,
    decode_replace,
    filter_all,
    sort_by_completion,
)
from bpfcap.formats.errors import UsageError

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
    queue: bool = False  # -Q
    disk: str | None = None  # -d NAME
    pattern: bool = False  # -P
    flushes: bool = False  # also pure flush requests


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
    if not flushes:
        flush = pc.and_(
            pc.starts_with(bios["rwbs"].cast(pa.string()), "F"), pc.equal(bios["bytes"], 0)
        )
        keep.append(pc.invert(flush))
    if dev is not None:
        keep.append(pc.equal(bios["dev"], dev))
    return filter_all(bios, keep)


def _pattern(dev: np.ndarray, sector: np.ndarray, nbytes: np.ndarray) -> list[str]:
    """S/R/? per row (rows in completion order), per device."""
    out = ["?"] * len(dev)
    last: dict[int, int] = {}
    for i in range(len(dev)):
        d = int(dev[i])
        nxt = last.get(d)
        if nxt is not None:
            out[i] = "S" if int(sector[i]) == nxt else "R"
        last[d] = int(sector[i]) + int(nbytes[i]) // 512
    return out


def biosnoop(bios: pa.Table, options: Options, *, disks: dict[int, str]) -> pa.Table:
    """The biosnoop report of `bios` (rows of kind `bio`): columns of COLUMNS that the
    options show, in completion order (ties by tid)."""
    dev = disk_dev(options.disk, disks) if options.disk is not None else None
    t = keep_requests(sort_by_completion(bios), options.flushes, dev)
    end_us = pc.divide(t[END].combine_chunks(), 1000).cast(pa.int64())
    first = end_us[0].as_py() if len(end_us) else 0
    seen = pc.greater(t["tgid"], 0)
    devs = t["dev"].to_numpy(zero_copy_only=False)
    rwbs = t["rwbs"].cast(pa.string())
    out = {
        "time_s": pc.divide(pc.subtract(end_us, first).cast(pa.float64()), 1e6),
        "comm": pc.if_else(seen, t["comm"], pa.scalar(b"?")).combine_chunks(),
        "pid": t["tgid"].combine_chunks(),
        "disk": pa.array([disks.get(int(d), "<unknown>") for d in devs], pa.string()),
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
            ),
            pa.string(),
        )
    if options.queue:
        out["que_ms"] = pc.divide(t["queue_ns"].cast(pa.float64()), 1e6).combine_chunks()
    return pa.table({c.name: out[c.name] for c in COLUMNS if c.name in out})
