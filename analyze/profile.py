"""One pass over a trace that gathers what `bpfcap summary` and `bpfcap diff` show: the
`Profile` of a trace (or of a --since/--until window of it).

Per event type: rows, rate, loss, a latency sketch (exact count, sum, min and max;
percentiles from log-linear buckets, see `Sketch`), the same sketch per key (comm for
every type with a latency, the system call for `syscall`, the disk for `bio`), failures
by errno; over every type: events per process (tgid, comm); the slowest block I/Os and
opens with their details; log2 histograms in microseconds of bio and runq latency (as
biolatency and runqlat print them).

Streaming and bounded: rows are read row group by row group, only the columns needed,
comm as a dictionary (each distinct name once per row group), and every aggregate is
vectorised over a row group (numpy bincounts over bucket and key indices); no Python
loop runs per row. Columns a row group's statistics settle are not decoded: one tgid,
one comm (a storm's row groups), no failure in `ret` (statistics are trusted, as
Trace.row_groups trusts them). The row groups of the big types are split between
threads (numpy and Arrow release the GIL), each gathering a partial profile; partials
merge exactly.
Memory: one histogram row per key (at most MAX_KEYS per type and key column; further
keys are pooled as OTHER), one count per process, N candidate rows per list.

The slowest rows are found from the latency column alone; their details (path, disk,
bytes...) are read afterwards from only the row groups that hold them (a path column
read whole costs more than everything else together).

`Profile.to_dict()` / `Profile.from_dict()` round-trip through JSON, so that a library
user can keep a profile and compare it (analyze.diff) later, and tests snapshot them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.formats.errors import TraceFormatError
from bpfcap.formats.v2 import RAW

if TYPE_CHECKING:
    from bpfcap.analyze.report import Source

PROFILE_VERSION = 1

# -- the latency sketch ----------------------------------------------------------------

# Log-linear buckets over ns (HDR histogram's layout): values below 128 have a bucket
# each; above, each power of two [2^o, 2^(o+1)) is cut into SUB equal buckets. A bucket
# holds values within 1/SUB of its low bound; a percentile is reported as its bucket's
# midpoint (clamped to the exact min and max), so it is within 1/(2 SUB) = 0.78% of the
# exact nearest-rank percentile, and exact below 128 ns. Values from 2^42 ns (73 min) on
# share the last bucket (their percentiles clamp to the exact max).
SUB = 64
_SUB_BITS = 6
TOP_OCTAVE = 42
NB = SUB * (TOP_OCTAVE - _SUB_BITS + 1)  # 2368 buckets
RELATIVE_ERROR = 1 / (2 * SUB)
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


def buckets(values: np.ndarray) -> np.ndarray:
    """The sketch bucket (int32, 0..NB-1) of each non-negative integer value.

    From the float32 bits of the value: exponent o and the top 6 mantissa bits m give
    bucket SUB * (o - 5) + m for values from 64 on (the same formula as HDR's
    SUB * s + (v >> s)), the value itself below. float32 rounds values above 2^24 to 24
    bits: one within 2^-24 of a bucket's upper bound may land in the next bucket, far
    inside the stated error."""
    f = values.astype(np.float32)
    b = (f.view(np.int32) >> (23 - _SUB_BITS)) - ((127 + _SUB_BITS - 1) << _SUB_BITS)
    b = np.where(f < SUB, values.astype(np.int32), b)
    return np.minimum(b, NB - 1, out=b)


def bucket_bounds(b: int) -> tuple[int, int]:
    """The values bucket `b` holds: (lowest, highest), inclusive."""
    s = max(b // SUB - 1, 0)
    low = (b - SUB * s) << s
    return low, low + (1 << s) - 1


@dataclass
class Sketch:
    """Latencies in ns: exact `count`, `total` (their sum), `min` and `max` (None when
    empty, or, for `min` of a per-key sketch, not kept: see KeyedSketches), and counts
    per log-linear bucket (`counts`, NB of them; see buckets())."""

    count: int = 0
    total: int = 0
    min: int | None = None
    max: int | None = None
    counts: np.ndarray = field(default_factory=lambda: np.zeros(NB, np.int64))

    def quantile(self, q: float) -> int | None:
        """The nearest-rank q-quantile (0 < q <= 1), within RELATIVE_ERROR of the exact
        one (exact below 128 ns); None when empty."""
        if self.count == 0:
            return None
        rank = max(1, int(np.ceil(q * self.count - 1e-9)))
        b = int(np.searchsorted(np.cumsum(self.counts), rank))
        low, high = bucket_bounds(min(b, NB - 1))
        value = (low + high) // 2 if high > low else low
        if self.min is not None:
            value = max(value, self.min)
        if self.max is not None:
            value = min(value, self.max)
        return int(value)

    def percentiles(self) -> dict[str, int | None]:
        """p50, p90, p99 (within RELATIVE_ERROR) and max (exact), in ns."""
        out = {name: self.quantile(q) for name, q in PERCENTILES}
        out["max"] = self.max
        return out

    def merge(self, other: Sketch) -> None:
        self.count += other.count
        self.total += other.total
        self.min = _opt(min, self.min, other.min)
        self.max = _opt(max, self.max, other.max)
        self.counts += other.counts

    def to_dict(self) -> dict[str, Any]:
        nz = np.flatnonzero(self.counts)
        return {
            "count": self.count,
            "total": self.total,
            "min": self.min,
            "max": self.max,
            "buckets": [[int(i), int(self.counts[i])] for i in nz],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sketch:
        counts = np.zeros(NB, np.int64)
        for i, c in d.get("buckets", []):
            counts[int(i)] += int(c)
        return cls(int(d["count"]), int(d.get("total", 0)), d.get("min"), d.get("max"), counts)


def _opt(f: Any, a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else f(a, b)


# -- what a profile holds --------------------------------------------------------------

# Per-key histograms kept per type and key column; later keys are pooled under OTHER (a
# trace with thousands of distinct comms keeps its memory; counts of events per key
# stay exact in the pooled histogram's sum).
MAX_KEYS = 1024
OTHER = "(other)"
# Processes kept in a profile (most events first); the rest are summed as `others`.
MAX_PROCESSES = 200
# Rows kept in each list of slowest rows, unless profile() is told otherwise (each one
# may cost reading its row group's path column again).
SLOWEST_ROWS = 5
# Log2 histograms in microseconds kept, as biolatency and runqlat print them.
LOG2_KINDS = ("bio", "runq")
LOG2_SLOTS = 65
# The failing value of each type: negative errno in `ret` (or bio's `error`).
ERROR_COLUMN = {
    "open": "ret",
    "exec": "ret",
    "signal": "ret",
    "syscall": "ret",
    "accept": "ret",
    "bio": "error",
}
# Key columns with a latency sketch per key, beyond comm (every type with lat_ns).
EXTRA_KEYS = {"syscall": ("syscall", "nr"), "bio": ("disk", "dev")}
# Lists of slowest rows: the columns read for their details.
SLOWEST = {
    "bio": ("ts_ns", "tid", "dev", "rwbs", "bytes", "sector", "error"),
    "open": ("ts_ns", "tid", "ret", "flags", "path"),
}


@dataclass
class KindProfile:
    """One event type: `rows` (within the window), `lost` (events the recorder lost in
    it), `recorded` (the recording asked for this type), `latency` (Sketch, None for a
    type without lat_ns), `keys` (key column -> key -> Sketch: `comm`, `syscall` for
    syscall rows, `disk` for bio rows), `failures` (errno name -> rows that failed with
    it), `failures_by` (for syscall rows: "name errno" -> rows)."""

    rows: int = 0
    lost: int = 0
    recorded: bool = True
    latency: Sketch | None = None
    keys: dict[str, dict[str, Sketch]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    failures_by: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "lost": self.lost,
            "recorded": self.recorded,
            "latency": None if self.latency is None else self.latency.to_dict(),
            "keys": {
                col: {k: s.to_dict() for k, s in sorted(by.items())}
                for col, by in sorted(self.keys.items())
            },
            "failures": dict(sorted(self.failures.items())),
            "failures_by": dict(sorted(self.failures_by.items())),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KindProfile:
        lat = d.get("latency")
        return cls(
            rows=int(d["rows"]),
            lost=int(d.get("lost", 0)),
            recorded=bool(d.get("recorded", True)),
            latency=None if lat is None else Sketch.from_dict(lat),
            keys={
                col: {k: Sketch.from_dict(s) for k, s in by.items()}
                for col, by in (d.get("keys") or {}).items()
            },
            failures={k: int(v) for k, v in (d.get("failures") or {}).items()},
            failures_by={k: int(v) for k, v in (d.get("failures_by") or {}).items()},
        )


@dataclass
class Profile:
    """What one pass over a trace found (see the module doc). Times: `start_ns`/`end_ns`
    are the monotonic bounds of the window profiled (the recording's, without one),
    `start_utc_ns`/`end_utc_ns` the same as UTC epoch ns, `duration_s` their distance
    (rates are rows / duration_s). `host` is the recording host (hostname, machine,
    kernel, os, cpus), `complete` whether the recording stopped cleanly, `notes` what
    the trace could not show (loss, kernel struct reads left out, an unclean stop),
    `not_recorded` the types the recording did not ask for. `kinds` maps each type with
    rows or recorded to its KindProfile; `processes` is [(tgid, comm, events)], most
    events first (at most MAX_PROCESSES; `other_processes` and `other_process_events`
    count the rest); `slowest` maps bio and open to their slowest rows (dicts, slowest
    first); `log2_usecs` maps bio and runq to counts per BCC log2 slot of the latency in
    microseconds."""

    path: str = ""
    host: dict[str, Any] = field(default_factory=dict)
    bpfcap_version: str | None = None
    start_ns: int = 0
    end_ns: int = 0
    start_utc_ns: int = 0
    end_utc_ns: int = 0
    utc_offset_s: int = 0
    tz: str = "UTC"
    windowed: bool = False
    complete: bool = True
    notes: list[str] = field(default_factory=list)
    not_recorded: list[str] = field(default_factory=list)
    kinds: dict[str, KindProfile] = field(default_factory=dict)
    processes: list[tuple[int, str, int]] = field(default_factory=list)
    other_processes: int = 0
    other_process_events: int = 0
    slowest: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    log2_usecs: dict[str, list[int]] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9

    @property
    def events(self) -> int:
        return sum(k.rows for k in self.kinds.values())

    @property
    def lost(self) -> int:
        return sum(k.lost for k in self.kinds.values())

    def rate(self, rows: int) -> float | None:
        """Rows per second over the profiled time (None for a trace of no duration)."""
        return rows / self.duration_s if self.duration_s > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile_version": PROFILE_VERSION,
            "path": self.path,
            "host": self.host,
            "bpfcap_version": self.bpfcap_version,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "start_utc_ns": self.start_utc_ns,
            "end_utc_ns": self.end_utc_ns,
            "utc_offset_s": self.utc_offset_s,
            "tz": self.tz,
            "windowed": self.windowed,
            "complete": self.complete,
            "notes": list(self.notes),
            "not_recorded": list(self.not_recorded),
            "kinds": {k: kp.to_dict() for k, kp in self.kinds.items()},
            "processes": [list(p) for p in self.processes],
            "other_processes": self.other_processes,
            "other_process_events": self.other_process_events,
            "slowest": self.slowest,
            "log2_usecs": self.log2_usecs,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        """A profile from to_dict()'s output; TraceFormatError if it is not one."""
        if not isinstance(d, dict) or d.get("profile_version") != PROFILE_VERSION:
            raise TraceFormatError(
                "not a bpfcap profile (or of another version)",
                "give the dict that Profile.to_dict() returned, of this bpfcap version",
            )
        try:
            return cls(
                path=str(d.get("path", "")),
                host=dict(d.get("host") or {}),
                bpfcap_version=d.get("bpfcap_version"),
                start_ns=int(d["start_ns"]),
                end_ns=int(d["end_ns"]),
                start_utc_ns=int(d["start_utc_ns"]),
                end_utc_ns=int(d["end_utc_ns"]),
                utc_offset_s=int(d.get("utc_offset_s", 0)),
                tz=str(d.get("tz", "UTC")),
                windowed=bool(d.get("windowed", False)),
                complete=bool(d.get("complete", True)),
                notes=[str(n) for n in d.get("notes", [])],
                not_recorded=[str(n) for n in d.get("not_recorded", [])],
                kinds={k: KindProfile.from_dict(v) for k, v in d["kinds"].items()},
                processes=[(int(p), str(c), int(n)) for p, c, n in d.get("processes", [])],
                other_processes=int(d.get("other_processes", 0)),
                other_process_events=int(d.get("other_process_events", 0)),
                slowest={k: list(v) for k, v in (d.get("slowest") or {}).items()},
                log2_usecs={k: [int(c) for c in v] for k, v in (d.get("log2_usecs") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise TraceFormatError(f"corrupt bpfcap profile ({type(e).__name__}: {e})") from e


# -- the pass ---------------------------------------------------------------------------


def profile(source: Source, *, slowest: int = SLOWEST_ROWS, workers: int | None = None) -> Profile:
    """The Profile of `source` (a trace and its --since/--until window), in one pass.

    `slowest`: rows kept in each list of slowest rows; `workers`: threads reading row
    groups (default: the CPUs, at most 4)."""
    from bpfcap.analyze.report import Result, losses
    from bpfcap.formats.events import EVENT_TYPES

    trace, meta = source.trace, source.meta
    workers = workers or min(4, os.cpu_count() or 1)
    have = {t.name: {c.name for c in t.columns} for t in EVENT_TYPES}
    groups, sizes = _all_groups(source, [t.name for t in EVENT_TYPES])

    tasks = []
    for kind, gs in groups.items():
        if not gs:
            continue
        mixed = any(g[2] for g in gs)
        # Big types are split into `workers` runs of row groups, each gathered into its
        # own partial (the split, and so the order partials merge in, does not depend on
        # which thread runs which run).
        n = workers if len(gs) >= 4 * workers else 1
        step = -(-len(gs) // n)
        for at in range(0, len(gs), step):
            tasks.append(_Task(kind, gs[at : at + step], have[kind], mixed, source, slowest))
    tasks.sort(key=lambda t: -len(t.groups))
    parts = _run(tasks, workers, sizes)
    total = _Partial.merged(parts, slowest)

    recorded = [t.name for t in EVENT_TYPES if source.recorded(t.name)]
    kinds_shown = [t.name for t in EVENT_TYPES if t.name in recorded or total.rows.get(t.name)]
    lines, _, _ = losses(source, Result("summary", kinds=kinds_shown))
    window = [(source.start_ns, source.end_ns + 1)] if source.windowed else None
    clock = meta.clock
    out = Profile(
        path=source.path,
        host={
            "hostname": meta.host.hostname,
            "machine": source.abi.machine,
            "kernel": meta.host.kernel,
            "os": meta.host.os,
            "cpus": meta.host.cpus,
        },
        bpfcap_version=meta.bpfcap_version,
        start_ns=source.start_ns,
        end_ns=source.end_ns,
        start_utc_ns=clock.utc_ns(source.start_ns),
        end_utc_ns=clock.utc_ns(source.end_ns),
        utc_offset_s=clock.utc_offset_s,
        tz=clock.tz,
        windowed=source.windowed,
        complete=trace.complete,
        notes=[ln for ln in lines if " events were lost while recording" not in ln],
        not_recorded=[t.name for t in EVENT_TYPES if t.name not in recorded],
    )
    names = total.names
    for t in EVENT_TYPES:
        kind = t.name
        if kind not in kinds_shown:
            continue
        counts = meta.counts(kind)
        lost = sum(counts.lost_between(a, b) for a, b in window) if window else counts.lost
        kp = KindProfile(rows=total.rows.get(kind, 0), lost=lost, recorded=kind in recorded)
        if "lat_ns" in have[kind]:
            kp.latency = total.latency.get(kind, Sketch())
            kp.keys["comm"] = total.keyed(kind, "comm", lambda i: names[i])
            if kind in EXTRA_KEYS:
                col, _ = EXTRA_KEYS[kind]
                kp.keys[col] = total.keyed(kind, col, _key_namer(col, source))
        for errno, n in total.failures.get(kind, {}).items():
            name = source.abi.errno_name(errno) or str(errno)
            kp.failures[name] = kp.failures.get(name, 0) + n
        for (nr, errno), n in total.failures_by.get(kind, {}).items():
            name = f"{source.abi.syscall_name(nr)} {source.abi.errno_name(errno) or errno}"
            kp.failures_by[name] = kp.failures_by.get(name, 0) + n
        out.kinds[kind] = kp
    procs = sorted(
        ((tgid, names[c], n) for (c, tgid), n in total.processes.items()),
        key=lambda p: (-p[2], p[0], p[1]),
    )
    out.processes = procs[:MAX_PROCESSES]
    out.other_processes = len(procs) - len(out.processes)
    out.other_process_events = sum(p[2] for p in procs[MAX_PROCESSES:])
    for kind in SLOWEST:
        cands = total.slowest.get(kind)
        if cands:
            out.slowest[kind] = _details(source, kind, cands, groups[kind], sizes)
    out.log2_usecs = {k: [int(c) for c in v] for k, v in total.log2.items() if v.any()}
    return out


def _all_groups(
    source: Source, kinds: list[str]
) -> tuple[dict[str, list[tuple[Path, int, bool]]], dict[tuple[Path, int], int]]:
    """The row groups of each kind (Source.row_groups) and the rows of each row group.
    Without a window or a host, from one read of each footer (Trace.row_groups reads them
    all once per kind: a footer of a big file takes tens of ms to parse)."""
    from bpfcap.formats.trace import row_group_kinds

    if not source.windowed and source.host is None:
        out: dict[str, list[tuple[Path, int, bool]]] = {k: [] for k in kinds}
        sizes = {}
        for g in row_group_kinds(source.trace.files):
            sizes[(g.file, g.index)] = g.rows
            for k in kinds if g.kind is None else (g.kind,) if g.kind in out else ():
                out[k].append((g.file, g.index, g.kind is None))
        return out, sizes
    groups = {k: source.row_groups(k) for k in kinds}
    return groups, _group_sizes({g[0] for gs in groups.values() for g in gs})


def _group_sizes(files: set[Path]) -> dict[tuple[Path, int], int]:
    """Rows of each row group (from the footers), to place a reader's chunks in them."""
    import pyarrow.parquet as pq

    out = {}
    for f in files:
        try:
            md = pq.read_metadata(f)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise TraceFormatError(f"{f}: unreadable footer ({e})") from e
        for i in range(md.num_row_groups):
            out[(f, i)] = md.row_group(i).num_rows
    return out


def _key_namer(col: str, source: Source) -> Any:
    if col == "syscall":
        return source.abi.syscall_name
    disks = source.meta.disks
    return lambda dev: disks.get(dev) or f"{dev >> 20}:{dev & 0xFFFFF}"


# -- one reader's share -------------------------------------------------------------------


class _Keyed:
    """Histograms per key (an int: a comm id, a syscall nr, a dev_t) of one type: one
    row of NB counts per key, at most MAX_KEYS rows (later keys pooled in row -1 ...
    kept apart as `other`), with the exact max per key."""

    def __init__(self) -> None:
        self.row: dict[int, int] = {}
        self.counts = np.zeros((8, NB), np.int64)
        self.max = np.zeros(8, np.int64)
        self.other = Sketch()

    def add(self, keys: np.ndarray, counts: np.ndarray, maxes: np.ndarray) -> None:
        """Add the histograms `counts[i]` (and max `maxes[i]`) of keys `keys[i]`."""
        rows = np.empty(len(keys), np.int64)
        for i, k in enumerate(keys.tolist()):
            r = self.row.get(k)
            if r is None:
                if len(self.row) >= MAX_KEYS:
                    rows[i] = -1
                    continue
                r = self.row[k] = len(self.row)
                if r >= len(self.max):
                    self.counts = np.concatenate([self.counts, np.zeros_like(self.counts)])
                    self.max = np.concatenate([self.max, np.zeros_like(self.max)])
            rows[i] = r
        kept = rows >= 0
        # Keys are distinct within one call: plain fancy-index adds are exact.
        self.counts[rows[kept]] += counts[kept]
        np.maximum.at(self.max, rows[kept], maxes[kept])
        if not kept.all():
            pooled = counts[~kept].sum(axis=0)
            self.other.merge(_sketch_of(pooled, int(maxes[~kept].max())))

    def sketches(self, name: Any) -> dict[str, Sketch]:
        out = {}
        for k, r in self.row.items():
            c = self.counts[r]
            s = _sketch_of(c, int(self.max[r]))
            key = name(k)
            if key in out:  # two keys of one name (ids of a name in two readers)
                out[key].merge(s)
            else:
                out[key] = s
        if self.other.count:
            out[OTHER] = self.other
        return out


_MIDS: list[np.ndarray] = []


def _mids() -> np.ndarray:
    """The midpoint of each bucket (a value it stands for in sums)."""
    if not _MIDS:
        _MIDS.append(np.array([sum(bucket_bounds(b)) // 2 for b in range(NB)], np.int64))
    return _MIDS[0]


def _sketch_of(counts: np.ndarray, maximum: int) -> Sketch:
    """A per-key sketch: exact count and max; the sum and min from the buckets' bounds
    (not kept per key: `total` is a midpoint estimate, `min` is None)."""
    nz = np.flatnonzero(counts)
    mids = _mids()[nz]
    total = int((mids * counts[nz]).sum()) if len(nz) else 0
    return Sketch(int(counts.sum()), total, None, maximum if counts.any() else None, counts.copy())


@dataclass
class _Partial:
    """What one reader gathered. Comm ids index `names` (each reader has its own)."""

    names: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    latency: dict[str, Sketch] = field(default_factory=dict)
    keys: dict[tuple[str, str], _Keyed] = field(default_factory=dict)
    processes: dict[tuple[int, int], int] = field(default_factory=dict)  # (comm id, tgid)
    failures: dict[str, dict[int, int]] = field(default_factory=dict)
    failures_by: dict[str, dict[tuple[int, int], int]] = field(default_factory=dict)
    # kind -> [(lat, group, row in group)], or with the detail columns themselves when
    # the rows could not be placed in their row groups (`details`).
    slowest: dict[str, list[tuple]] = field(default_factory=dict)
    log2: dict[str, np.ndarray] = field(default_factory=dict)

    def keyed(self, kind: str, col: str, name: Any) -> dict[str, Sketch]:
        k = self.keys.get((kind, col))
        return k.sketches(name) if k is not None else {}

    @classmethod
    def merged(cls, parts: Sequence[_Partial], slowest: int) -> _Partial:
        """One partial of all `parts`: comm ids renumbered by name."""
        out = cls()
        ids: dict[str, int] = {}
        for p in parts:
            remap = np.array([ids.setdefault(n, len(ids)) for n in p.names] or [0], np.int64)
            for kind, n in p.rows.items():
                out.rows[kind] = out.rows.get(kind, 0) + n
            for kind, s in p.latency.items():
                out.latency.setdefault(kind, Sketch()).merge(s)
            for (kind, col), k in p.keys.items():
                into = out.keys.setdefault((kind, col), _Keyed())
                keys = np.array(list(k.row), np.int64)
                rows = np.array(list(k.row.values()), np.int64)
                if col == "comm" and len(keys):
                    keys = remap[keys]
                if len(keys):
                    into.add(keys, k.counts[rows], k.max[rows])
                into.other.merge(k.other)
            for (c, tgid), n in p.processes.items():
                key = (int(remap[c]), tgid)
                out.processes[key] = out.processes.get(key, 0) + n
            for kind, by in p.failures.items():
                to = out.failures.setdefault(kind, {})
                for e, n in by.items():
                    to[e] = to.get(e, 0) + n
            for kind, by2 in p.failures_by.items():
                to2 = out.failures_by.setdefault(kind, {})
                for e2, n in by2.items():
                    to2[e2] = to2.get(e2, 0) + n
            for kind, cands in p.slowest.items():
                out.slowest.setdefault(kind, []).extend(cands)
            for kind, h in p.log2.items():
                if kind in out.log2:
                    out.log2[kind] = out.log2[kind] + h
                else:
                    out.log2[kind] = h.copy()
        out.names = list(ids)
        for kind, cands in out.slowest.items():
            out.slowest[kind] = sorted(cands, key=_slowest_order)[:slowest]
        return out


def _slowest_order(c: tuple) -> tuple:
    """Slowest first; ties in trace order (file, row group, row)."""
    lat, group, row = c[0], c[1], c[2]
    return (-lat, str(group[0]), group[1], row)


def _run(tasks: list[_Task], workers: int, sizes: dict[tuple[Path, int], int]) -> list[_Partial]:
    """Each task's partial, in task order: tasks taken in turn by `workers` threads, each
    with its own _Reader (its open file, its table of process ids)."""
    if len(tasks) <= 1 or workers <= 1:
        reader = _Reader()
        try:
            return [t.run(sizes, reader) for t in tasks]
        finally:
            reader.close()
    parts: list[_Partial | None] = [None] * len(tasks)
    todo = iter(range(len(tasks)))
    lock = threading.Lock()
    failed = threading.Event()

    def work() -> None:
        reader = _Reader()
        try:
            while not failed.is_set():
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                parts[i] = tasks[i].run(sizes, reader)
        except BaseException:
            failed.set()
            raise
        finally:
            reader.close()

    n = min(workers, len(tasks))
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="bpfcap-profile") as pool:
        for f in [pool.submit(work) for _ in range(n)]:
            f.result()
    return [p for p in parts if p is not None]


# Process ids above this are hashed instead of looked up in a table (pid_max is 2^22).
_PID_TABLE = 1 << 23


class _Reader:
    """One thread's reading of format-2 row groups: straight from pyarrow (one open file
    at a time, comm as dictionary indices, numbers in their stored types: no copy into
    the in-memory representation), with the checks Trace.batches makes; and its table of
    process ids (tgid -> process number), kept across row groups and tasks."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.file: Any = None
        self.ok: dict[tuple[Path, tuple[str, ...]], bool] = {}
        self.pid_table = np.full(1 << 16, -1, np.int32)
        self.pids: list[int] = []
        self.tgids = np.zeros(0, np.int64)
        self.leaves: dict[str, int] = {}  # the open file's column chunk index per column

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.path = self.file = None

    def read(self, f: Path, i: int, columns: list[str]) -> pa.Table | None:
        """Row group i of format-2 file f, `columns` as stored (comm a dictionary); None
        where Trace.batches must read it: a column missing or of another type (it says
        which, in one line), a non-UTF-8 comm (its exact bytes are in comm_raw), a comm
        longer than a reader takes, comm in several chunks."""
        import pyarrow.parquet as pq

        from bpfcap.formats.trace import MAX_VALUE_BYTES, reading

        if self.path != f:
            self.close()
            with reading(f):
                self.file = pq.ParquetFile(f, read_dictionary=["comm", _COMM_RAW])
            self.path = f
            md = self.file.metadata
            self.leaves = {md.schema.column(j).path: j for j in range(md.num_columns)}
        pf = self.file
        key = (f, tuple(columns))
        ok = self.ok.get(key)
        if ok is None:
            schema = pf.schema_arrow
            ok = self.ok[key] = _stored_as_expected(schema, columns)
            self.ok[(f, (_COMM_RAW,))] = _COMM_RAW in schema.names
        if not ok:
            return None
        raw = self.ok[(f, (_COMM_RAW,))]
        uniform = self.uniform(i, columns)
        wanted = [c for c in columns if c not in uniform]
        with reading(f):
            t = pf.read_row_group(
                i, columns=[*wanted, _COMM_RAW] if raw else wanted, use_threads=False
            )
        if raw:
            if t[_COMM_RAW].null_count != t.num_rows:
                return None
            t = t.drop_columns([_COMM_RAW])
        made = {n: _repeat(v, t.num_rows) for n, v in uniform.items() if v is not None}
        if made:  # one value in every row: made, not decoded
            t = pa.table({**{n: t[n] for n in t.column_names}, **made})
        comm = t["comm"]
        if comm.num_chunks != 1:
            return None
        d = comm.chunk(0).dictionary
        if len(d) and pc.max(pc.binary_length(d)).as_py() > MAX_VALUE_BYTES:
            return None
        return t

    def uniform(self, i: int, columns: list[str]) -> dict[str, Any]:
        """Columns of the open file's row group i that need no decoding, by the
        statistics bpfcap writes (formats/writer.py): tgid and comm when every row holds
        one value (-> that value), ret when no row failed (-> None: the column is left
        out)."""
        index = self.leaves
        rg = self.file.metadata.row_group(i)
        out: dict[str, Any] = {}
        for name in ("tgid", "comm", "ret"):
            if name not in columns or name not in index:
                continue
            st = rg.column(index[name]).statistics
            if st is None or not st.has_min_max or st.null_count != 0:
                continue
            try:
                lo, hi = st.min, st.max
            except (UnicodeDecodeError, ValueError):
                continue
            if name == "ret":
                if isinstance(lo, int) and lo >= 0:
                    out[name] = None
            elif lo == hi and (name == "tgid" or isinstance(lo, str)):
                out[name] = lo
        return out

    def processes(
        self, part: _Partial, tgid: np.ndarray, code: np.ndarray, ids: np.ndarray
    ) -> np.ndarray | None:
        """Count events per (comm, tgid) into `part`: tgids numbered through a table
        indexed by tgid (cheaper than hashing every row), then one bincount over (process
        number, comm code). Returns which comm codes have rows (None if not known)."""
        k = len(ids)
        low, top = int(tgid.min()), int(tgid.max())
        if low == top:  # one process (a storm's row group): its rows per comm
            counts = np.bincount(code, minlength=k) if k > 1 else np.array([len(code)])
            present = counts > 0
            into = part.processes
            for c_, n_ in zip(ids[present].tolist(), counts[present].tolist()):
                into[(c_, low)] = into.get((c_, low), 0) + n_
            return present
        if top >= _PID_TABLE or low < 0:  # not a pid: hashed
            tgids, pnum = np.unique(tgid, return_inverse=True)
            pnum = pnum.reshape(-1)
        else:
            if len(self.pid_table) <= top:
                grown = np.full(max(top + 1, 2 * len(self.pid_table)), -1, np.int32)
                grown[: len(self.pid_table)] = self.pid_table
                self.pid_table = grown
            pnum = np.take(self.pid_table, tgid)
            if pnum.min() < 0:  # tgids not seen before: numbered in ascending order
                new = np.flatnonzero(np.bincount(tgid[pnum < 0]))
                self.pid_table[new] = np.arange(len(self.pids), len(self.pids) + len(new))
                self.pids.extend(new.tolist())
                self.tgids = np.asarray(self.pids, np.int64)
                pnum = np.take(self.pid_table, tgid)
            tgids = self.tgids
        present = None
        if len(tgids) * k <= (1 << 22):  # a dense table of (process, comm) cells
            cells = np.multiply(pnum, k, dtype=np.int64)
            cells += code
            counts = np.bincount(cells, minlength=len(tgids) * k)
            present = counts.reshape(len(tgids), k).any(axis=0)
            nz = np.flatnonzero(counts)
            counts = counts[nz]
        else:
            nz, counts = np.unique(pnum.astype(np.int64) * k + code, return_counts=True)
        into = part.processes
        for p_, c_, n_ in zip(tgids[nz // k].tolist(), ids[nz % k].tolist(), counts.tolist()):
            into[(c_, p_)] = into.get((c_, p_), 0) + n_
        return present


_COMM_RAW = "comm" + RAW  # the exact bytes of a comm that is not UTF-8


def _repeat(value: Any, n: int) -> pa.Array:
    """`value` in n rows: a comm as a one-entry dictionary, a tgid as integers."""
    if isinstance(value, str):
        return pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string())
        )
    return pa.array(np.full(n, value, np.int64))


def _stored_as_expected(schema: pa.Schema, columns: list[str]) -> bool:
    """Every column is in a format-2 file's schema with its format-2 type (comm, and its
    raw bytes, as dictionaries): what Trace.batches checks before it reads."""
    from bpfcap.formats import v2
    from bpfcap.formats.trace import FIELDS

    names = set(schema.names)
    want = {c: v2.file_type(FIELDS[c]) for c in columns}
    if _COMM_RAW in names:
        want[_COMM_RAW] = FIELDS["comm"].arrow_type()
    for c, t in want.items():
        if c not in names:
            return False
        have = schema.field(c).type
        if c in ("comm", _COMM_RAW):
            if not pa.types.is_dictionary(have):
                return False
            have = have.value_type
        if have != t:
            return False
    return True


@dataclass
class _Task:
    """A run of row groups of one type, gathered into one partial."""

    kind: str
    groups: list[tuple[Path, int, bool]]
    have: set[str]
    mixed: bool
    source: Source
    slowest: int

    def columns(self) -> list[str]:
        cols = ["tgid", "comm"]
        for c in ("lat_ns", ERROR_COLUMN.get(self.kind), EXTRA_KEYS.get(self.kind, ("", ""))[1]):
            if c and c in self.have and c not in cols:
                cols.append(c)
        if self.source.windowed:
            cols += [c for c in ("ts_ns", "lat_ns") if c in self.have and c not in cols]
        if self.mixed and self.kind in SLOWEST:
            # Rows of mixed row groups (not written by bpfcap) cannot be found again by
            # position: their details are read with them.
            cols += [c for c in SLOWEST[self.kind] if c not in cols]
        return cols

    def run(self, sizes: dict[tuple[Path, int], int], reader: _Reader) -> _Partial:
        """Row groups of format-2 files are read by `reader`; the others (format 1, mixed
        kinds, a non-UTF-8 comm...) by Trace.batches, in runs. Either way each row group
        is gathered whole, in order."""
        from bpfcap.formats.trace import FORMAT_VERSION

        gather = _Gather(self, reader)
        cols = self.columns()
        versions = self.source.trace.versions
        slow: list[tuple[Path, int, bool]] = []
        for g in self.groups:
            t = None
            if not self.mixed and versions.get(g[0], FORMAT_VERSION) >= 2:
                t = reader.read(g[0], g[1], cols)
            if t is None:
                slow.append(g)
                continue
            if slow:
                self._batches(gather, slow, sizes)
                slow = []
            gather.table(t, g)
        if slow:
            self._batches(gather, slow, sizes)
        return gather.finish()

    def _batches(
        self,
        gather: _Gather,
        groups: list[tuple[Path, int, bool]],
        sizes: dict[tuple[Path, int], int],
    ) -> None:
        # Chunks come in group order, a group in one or more chunks: a group's rows are
        # placed by counting them against its size (from the footer).
        at_group, in_group = 0, 0
        # comm_raw (exact bytes of a non-UTF-8 comm, almost always all null) is kept a
        # dictionary too: expanding it costs more than the rest of the row group.
        dictionary = ("comm", _COMM_RAW)
        for chunk in self.source.trace.batches(
            self.kind, self.columns(), groups, as_dictionary=dictionary
        ):
            n = chunk.num_rows
            group = groups[min(at_group, len(groups) - 1)]
            offset = in_group
            in_group += n
            if not self.mixed and in_group >= sizes.get((group[0], group[1]), 0):
                at_group, in_group = at_group + 1, 0
            if n:
                gather.chunk(chunk, group, offset)


def _text(b: bytes) -> str:
    """A comm as text: UTF-8, with bytes that are not shown as \\xNN."""
    return b.decode("utf-8", "backslashreplace")


def _np(col: pa.ChunkedArray | pa.Array, fill: int = 0) -> np.ndarray:
    """A numeric column as numpy (nulls as `fill`)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if col.null_count:
        col = pc.fill_null(col, fill)
    return col.to_numpy(zero_copy_only=False)


def _codes(col: pa.ChunkedArray, comm_ids: dict[bytes, int]) -> tuple[np.ndarray, np.ndarray]:
    """(index of each row in `ids`, ids): comm as dictionary codes, and the reader-wide
    id of each dictionary entry (a null comm counts as empty)."""
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if not pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_encode()
    d = arr.dictionary
    if pa.types.is_string(d.type):  # format 2 as stored: UTF-8 (else it has comm_raw)
        d = d.cast(pa.binary())
    ids = np.array([comm_ids.setdefault(v or b"", len(comm_ids)) for v in d.to_pylist()] or [0])
    codes = arr.indices
    if codes.null_count:
        empty = comm_ids.setdefault(b"", len(comm_ids))
        ids = np.append(ids, empty)
        codes = pc.fill_null(codes, len(ids) - 1)
    return codes.to_numpy(zero_copy_only=False).astype(np.int64), ids.astype(np.int64)


# Cells kept before they are counted: one bincount over several row groups (a
# histogram of many keys is big, a row group's rows few).
_CELLS = 1 << 20


class _KeyCells:
    """Per-key histograms of one type and key column while they are gathered: keys get
    rows in the order _Keyed.add gives them (at most MAX_KEYS; row 0 pools the rest as
    OTHER), each row's histogram (one flat array of rows x NB cells) and exact max."""

    def __init__(self) -> None:
        self.row: dict[int, int] = {}
        self.cells = np.zeros(8 * NB, np.int64)
        self.max = np.zeros(8, np.int64)
        self.pooled = False
        self.lut = np.full(0, -1, np.int64)  # small integer key -> row (-1: not seen)
        self.buffer = np.empty(0, np.int64)  # (row, bucket) cells not counted yet
        self.filled = 0

    def rows(self, keys: list[int]) -> list[int]:
        """The row of each key, new keys given one in the order listed (0: pooled)."""
        out = []
        for k in keys:
            r = self.row.get(k)
            if r is None:
                if len(self.row) >= MAX_KEYS:
                    self.pooled = True
                    out.append(0)
                    continue
                r = self.row[k] = len(self.row) + 1
                if r >= len(self.max):
                    self.flush()
                    self.cells = np.concatenate([self.cells, np.zeros_like(self.cells)])
                    self.max = np.concatenate([self.max, np.zeros_like(self.max)])
            out.append(r)
        return out

    def value_rows(self, v: np.ndarray) -> np.ndarray:
        """The row of each integer key (nr, dev), new keys given one in ascending order
        (as _compact orders them)."""
        if len(v) and (v.dtype.kind == "u" or int(v.min()) >= 0) and int(v.max()) < (1 << 16):
            top = int(v.max())
            if len(self.lut) <= top:
                grown = np.full(max(top + 1, 64), -1, np.int64)
                grown[: len(self.lut)] = self.lut
                self.lut = grown
            r = np.take(self.lut, v)
            if r.min() < 0:
                new = np.flatnonzero(np.bincount(v[r < 0]))
                self.lut[new] = self.rows(new.tolist())
                r = np.take(self.lut, v)
            return r
        enc = pa.array(v).dictionary_encode()  # a hash: cheaper than np.unique's sort
        keys = enc.dictionary.to_numpy(zero_copy_only=False)
        order = np.argsort(keys, kind="stable")
        rows = np.empty(len(keys), np.int64)
        rows[order] = self.rows(keys[order].tolist())
        return np.take(rows, enc.indices.to_numpy(zero_copy_only=False).astype(np.int64))

    def add(self, r: np.ndarray, b: np.ndarray, lat: np.ndarray) -> None:
        """Latencies `lat` (buckets `b`) of keys in rows `r` (int64)."""
        # Only rows above the lowest max so far can raise one; where many are, only
        # those above their own key's max (ufunc.at holds the GIL: kept to few rows).
        used = self.max[: len(self.row) + 1] if self.pooled else self.max[1 : len(self.row) + 1]
        above = np.flatnonzero(lat > (int(used.min()) if len(used) else -1))
        if len(above) > len(lat) // 8:
            if len(above) < len(lat):
                ra, la = r[above], lat[above]
            else:
                ra, la = r, lat
            higher = np.flatnonzero(la > np.take(self.max, ra))
            ra, la = ra[higher], la[higher]
        else:
            ra, la = r[above], lat[above]
        if len(ra):
            np.maximum.at(self.max, ra, la)
        n = len(r)
        if self.filled + n > len(self.buffer):
            self.flush()
            if n > len(self.buffer):
                self.buffer = np.empty(max(n, min(_CELLS, 4 * n)), np.int64)
        cells = self.buffer[self.filled : self.filled + n]
        np.multiply(r, NB, out=cells)
        cells += b
        self.filled += n

    def add_one(self, r: int, b: np.ndarray, hi: int) -> None:
        """Latencies (buckets `b`, largest `hi`) all of the key in row `r`."""
        if hi > self.max[r]:
            self.max[r] = hi
        self.cells[r * NB : (r + 1) * NB] += np.bincount(b, minlength=NB)

    def flush(self) -> None:
        """Count the cells kept (bincount: unlike ufunc.at, it lets other threads run)."""
        if self.filled:
            self.cells += np.bincount(self.buffer[: self.filled], minlength=len(self.cells))
            self.filled = 0

    @property
    def counts(self) -> np.ndarray:
        return self.cells.reshape(len(self.max), NB)

    def keyed(self) -> _Keyed:
        self.flush()
        out = _Keyed()
        n = len(self.row) + 1
        counts = self.counts
        out.row = {k: r - 1 for k, r in self.row.items()}
        out.counts = counts[1:n]
        out.max = self.max[1:n]
        if counts[0].any():
            out.other.merge(_sketch_of(counts[0], int(self.max[0])))
        return out


def _log2_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per sketch bucket: the BCC log2 slot (of microseconds) of its lowest value, and
    whether its values (with float32's rounding into it from below) may fall in another
    slot (then each of its rows' slots is worked out from the row itself)."""

    def slot(ns: int) -> int:
        return max((ns // 1000).bit_length(), 1)

    low = np.empty(NB, np.int64)
    mixed = np.zeros(NB, bool)
    for b in range(NB):
        lo, hi = bucket_bounds(b)
        low[b] = slot(lo)
        mixed[b] = slot(max(lo - (lo >> 22) - 1, 0)) != slot(hi + (hi >> 22) + 1)
    mixed[NB - 1] = True  # it holds every value from 2^42 on
    return low, mixed


_LOG2: tuple[np.ndarray, np.ndarray] | None = None


def _log2_slots(lat: np.ndarray) -> np.ndarray:
    """BCC's slot of each latency: bit_length(us), 0 and 1 both in slot 1."""
    return np.maximum(np.frexp((lat // 1000).astype(np.float64))[1], 1)


def _buckets_of(lat: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """buckets(lat) of int64 latencies from lo to hi, in fewer passes."""
    b = lat.astype(np.float32).view(np.int32)
    b >>= 23 - _SUB_BITS
    b -= (127 + _SUB_BITS - 1) << _SUB_BITS
    if lo < SUB:
        small = lat < SUB
        b[small] = lat[small]
    if hi >= (1 << 41):
        np.minimum(b, NB - 1, out=b)
    return b


class _Gather:
    """What one task gathers, row group by row group, into its _Partial."""

    def __init__(self, task: _Task, reader: _Reader) -> None:
        self.task = task
        self.kind = task.kind
        self.reader = reader
        self.part = _Partial()
        self.comm_ids: dict[bytes, int] = {}
        self.keys: dict[str, _KeyCells] = {}
        self.log2 = np.zeros(LOG2_SLOTS, np.int64) if self.kind in LOG2_KINDS else None
        self.lat_rows = 0

    def table(self, t: pa.Table, group: tuple[Path, int, bool]) -> None:
        """A row group read by _Reader (format 2, as stored)."""
        position = None
        if self.task.source.windowed:
            cols = {}
            for c in ("ts_ns", "lat_ns"):
                if c in t.column_names:
                    a = t[c].chunk(0) if t[c].num_chunks == 1 else t[c].combine_chunks()
                    cols[c] = pa.Array.from_buffers(
                        pa.uint64(), len(a), a.buffers(), a.null_count, a.offset
                    )
            t, position = self._window(t, pa.table(cols))
            if t is None:
                return
        self._rows(t, group, 0, position, None)

    def chunk(self, chunk: pa.Table, group: tuple[Path, int, bool], offset: int) -> None:
        """Rows read by Trace.batches (the in-memory representation)."""
        position = None
        if self.task.source.windowed:
            chunk, position = self._window(chunk, chunk)
            if chunk is None:
                return
        self._rows(chunk, group, offset, position, chunk if self.task.mixed else None)

    def _window(self, t: pa.Table, times: pa.Table) -> tuple[pa.Table | None, np.ndarray | None]:
        from bpfcap.analyze.common import completion_ns

        source = self.task.source
        end = np.asarray(completion_ns(times))
        keep = np.ones(len(end), bool)
        if source.since_ns is not None:
            keep &= end >= source.since_ns
        if source.until_ns is not None:
            keep &= end < source.until_ns
        if keep.all():
            return t, None
        t = t.filter(pa.array(keep))
        return (t if t.num_rows else None), np.flatnonzero(keep)

    def _rows(
        self,
        chunk: pa.Table,
        group: tuple[Path, int, bool],
        offset: int,
        position: np.ndarray | None,
        details: pa.Table | None,
    ) -> None:
        part, kind = self.part, self.kind
        part.rows[kind] = part.rows.get(kind, 0) + chunk.num_rows
        code, ids = _codes(chunk["comm"], self.comm_ids)
        present = self.reader.processes(part, _np(chunk["tgid"]), code, ids)
        names = chunk.column_names

        extra = None
        if kind in EXTRA_KEYS:
            extra = _np(chunk[EXTRA_KEYS[kind][1]])
        err_col = ERROR_COLUMN.get(kind)
        if err_col in names and chunk[err_col].null_count < chunk.num_rows:
            err = _np(chunk[err_col])
            if int(err.min()) < 0:
                self._failures(err, extra)

        if "lat_ns" not in names:
            return
        lat_col = chunk["lat_ns"]
        lat = _np(lat_col)
        if lat.dtype != np.int64:
            lat = lat.view(np.int64)
        valid = None
        if lat_col.null_count:
            valid = _np(pc.is_valid(lat_col)).astype(bool)
            lat, code = lat[valid], code[valid]
            extra = extra[valid] if extra is not None else None
            present = None
        sk = part.latency.setdefault(kind, Sketch())
        if not len(lat):
            return
        lo, hi = int(lat.min()), int(lat.max())
        if lo < 0:
            # A latency above 2^62 (or a huge u64 read as negative) is no real one:
            # capped, as reports cap it (analyze/common.MAX_NS).
            lat = np.clip(lat, 0, (1 << 62) - 1)
            lo, hi = int(lat.min()), int(lat.max())
        b = _buckets_of(lat, lo, hi)
        sk.count += len(lat)
        sk.total += int(lat.sum(dtype=np.int64))
        sk.min = _opt(min, sk.min, lo)
        sk.max = _opt(max, sk.max, hi)
        self.lat_rows += len(lat)

        # comm: keys get rows as _add_keyed gave them (entries with rows, in dictionary
        # order; ordered by id where two entries share one).
        if present is None:
            present = np.bincount(code, minlength=len(ids)) > 0
        cells = self.keys.get("comm") or self.keys.setdefault("comm", _KeyCells())
        used = ids[present]
        if len(np.unique(used)) < len(used):
            used = np.unique(used)
        if len(used) == 1:  # one comm (a storm's row group): no per-row key
            cells.add_one(cells.rows(used.tolist())[0], b, hi)
        else:
            cells.rows(used.tolist())
            entry_rows = np.array([cells.row.get(i, 0) for i in ids.tolist()], np.int64)
            cells.add(np.take(entry_rows, code), b, lat)
        if extra is not None:
            col = EXTRA_KEYS[kind][0]
            cells = self.keys.get(col) or self.keys.setdefault(col, _KeyCells())
            cells.add(cells.value_rows(extra), b, lat)
        if self.log2 is not None:
            self._log2(lat, b)
        if kind in SLOWEST:
            self._slowest(lat, hi, valid, position, group, offset, details)

    def _failures(self, err: np.ndarray, extra: np.ndarray | None) -> None:
        part, kind = self.part, self.kind
        failed = err < 0
        errno = np.minimum(-err[failed].astype(np.int64), 1 << 20)
        _count_into(part.failures.setdefault(kind, {}), *_compact(errno))
        if kind == "syscall" and extra is not None:
            nr = extra[failed].astype(np.int64)
            ncode, nrs = _compact(nr)
            ecode, errnos = _compact(errno)
            pairs = np.bincount(ncode * len(errnos) + ecode)
            by2 = part.failures_by.setdefault(kind, {})
            for i in np.flatnonzero(pairs).tolist():
                key = (int(nrs[i // len(errnos)]), int(errnos[i % len(errnos)]))
                by2[key] = by2.get(key, 0) + int(pairs[i])

    def _log2(self, lat: np.ndarray, b: np.ndarray) -> None:
        """The rows whose bucket does not tell their log2 slot: the others are counted
        from the histogram at the end (finish())."""
        global _LOG2
        if _LOG2 is None:
            _LOG2 = _log2_tables()
        low, mixed = _LOG2
        at = np.flatnonzero(mixed[b])
        if len(at):
            exact = np.bincount(_log2_slots(lat[at]), minlength=LOG2_SLOTS)[:LOG2_SLOTS]
            self.log2 += exact
            self.log2 -= np.bincount(low[b[at]], minlength=LOG2_SLOTS)[:LOG2_SLOTS]

    def _slowest(
        self,
        lat: np.ndarray,
        hi: int,
        valid: np.ndarray | None,
        position: np.ndarray | None,
        group: tuple[Path, int, bool],
        offset: int,
        details: pa.Table | None,
    ) -> None:
        """Keep the rows that may be among the task.slowest slowest of the task."""
        keep = self.task.slowest
        if keep <= 0:
            return
        have = self.part.slowest.setdefault(self.kind, [])
        floor = have[-1][0] if len(have) >= keep else -1
        if hi <= floor:
            return
        idx = np.flatnonzero(lat > floor)
        if len(idx) > keep:
            idx = idx[np.argpartition(lat[idx], -keep)[-keep:]]
        rows = np.flatnonzero(valid)[idx] if valid is not None else idx
        at = position[rows] if position is not None else rows
        for i, r, p in zip(idx.tolist(), rows.tolist(), at.tolist()):
            d = None
            if details is not None:
                d = {c: details[c][r].as_py() for c in ("tgid", "comm", *SLOWEST[self.kind])}
            have.append((int(lat[i]), group, offset + p, d))
        have.sort(key=_slowest_order)
        del have[keep:]

    def finish(self) -> _Partial:
        part, kind = self.part, self.kind
        for col, cells in self.keys.items():
            part.keys[(kind, col)] = cells.keyed()
            if col == "comm":
                counts = cells.counts.sum(axis=0)
                part.latency[kind].counts += counts
                if self.log2 is not None and self.lat_rows:
                    low, _ = _LOG2 or _log2_tables()
                    h = np.bincount(low, weights=counts, minlength=LOG2_SLOTS)[:LOG2_SLOTS]
                    part.log2[kind] = h.astype(np.int64) + self.log2
        part.names = [_text(b) for b in self.comm_ids]
        return part


def _count_into(into: dict[int, int], code: np.ndarray, keys: np.ndarray) -> None:
    """Add the rows per key (`keys[code[i]]` for each row i) to `into`."""
    for k, n in zip(keys.tolist(), np.bincount(code, minlength=len(keys)).tolist()):
        if n:
            into[k] = into.get(k, 0) + n


def _compact(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code of each row, key of each code) for integer keys (nr, dev)."""
    lo, hi = int(v.min()), int(v.max())
    if hi - lo < (1 << 16):
        present = np.flatnonzero(np.bincount(v - lo, minlength=hi - lo + 1))
        lut = np.zeros(hi - lo + 1, np.int64)
        lut[present] = np.arange(len(present))
        return lut[v - lo], present + lo
    keys, code = np.unique(v, return_inverse=True)
    return code.reshape(-1), keys


def _details(
    source: Source,
    kind: str,
    cands: list[tuple],
    groups: list[tuple[Path, int, bool]],
    sizes: dict[tuple[Path, int], int],
) -> list[dict[str, Any]]:
    """The slowest rows of `kind` with their columns, read from the row groups holding
    them (those read by position) in one pass over those groups."""
    cols = ["tgid", "comm", *SLOWEST[kind]]
    want: dict[tuple[Path, int], dict[int, dict[str, Any]]] = {}
    for _, group, row, details in cands:
        if details is None:
            want.setdefault((group[0], group[1]), {})[row] = {}
    order = [g for g in groups if (g[0], g[1]) in want]
    at_group, in_group = 0, 0
    text = ("comm", "comm_raw", "path", "path_raw", "rwbs", "rwbs_raw")  # as stored: cheaper
    for chunk in source.trace.batches(kind, cols, order, as_dictionary=text):
        g = order[at_group]
        rows = want[(g[0], g[1])]
        for r in rows:
            if in_group <= r < in_group + chunk.num_rows:
                rows[r] = {c: chunk[c][r - in_group].as_py() for c in cols}
        in_group += chunk.num_rows
        if in_group >= sizes.get((g[0], g[1]), 0):
            at_group, in_group = at_group + 1, 0
    out = []
    for lat, group, row, details in cands:
        d = details if details is not None else want[(group[0], group[1])].get(row)
        if not d:
            continue
        out.append(_row_out(kind, lat, d, source))
    return out


def _row_out(kind: str, lat: int, d: dict[str, Any], source: Source) -> dict[str, Any]:
    """A slow row as plain data: lat_ns, time (UTC ns of completion), pid, tid, comm and
    the type's own columns (open: ret, errno name, flags, path; bio: disk, rwbs, bytes,
    sector, error)."""

    def text(v: Any) -> str:
        return "" if v is None else _text(v) if isinstance(v, bytes) else str(v)

    out: dict[str, Any] = {
        "lat_ns": lat,
        "time_utc_ns": source.meta.clock.utc_ns((d.get("ts_ns") or 0) + lat),
        "pid": d.get("tgid"),
        "tid": d.get("tid"),
        "comm": text(d.get("comm")),
    }
    if kind == "open":
        ret = d.get("ret")
        out.update(
            ret=ret,
            errno=source.abi.errno_name(ret) if ret is not None and ret < 0 else None,
            flags=source.abi.open_flag_names(d["flags"]) if d.get("flags") is not None else [],
            path=text(d.get("path")),
        )
    else:
        dev = d.get("dev") or 0
        out.update(
            disk=_key_namer("disk", source)(dev),
            rwbs=text(d.get("rwbs")),
            bytes=d.get("bytes"),
            sector=d.get("sector"),
            error=d.get("error"),
        )
    return out


def iter_kinds(p: Profile) -> Iterator[tuple[str, KindProfile]]:
    """The profile's types, most rows first."""
    return iter(sorted(p.kinds.items(), key=lambda kv: (-kv[1].rows, kv[0])))
