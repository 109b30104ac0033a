"""The report contract: what every report declares, what it reads, what it returns.

A report is one module that declares a `Report`:

* `name`, a one-line `summary` and the `description` users read in `--help`;
* `needs`: the event types it reads and their columns;
* `options`: a frozen dataclass whose fields are its flags, each made with `option()`
  (flag names, help, metavar and bounds as plain data; no click here);
* `run(source, options) -> Result`: reads the trace through `source` (a time window
  already applied, row groups outside it skipped), holding only its own state (counts,
  histograms, a bounded reorder window), and returns a result object: row tables (or
  histograms, or counts) plus the banner and footer lines the BCC tool prints;
* `examples`: command lines shown in `--help` and in the README.

`analyze.registry` lists the reports; the CLI generates one command per report from the
declaration (cli/report.py), the Python API runs them by name (bpfcap.open()).
Rendering (BCC text, JSON Lines, CSV) is cli/render.py's, on the result.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.aggregate import HistWindow
from bpfcap.analyze.common import END, OutputColumn, completion_ns
from bpfcap.formats.errors import TraceFormatError, UsageError
from bpfcap.formats.meta import TraceMeta

if TYPE_CHECKING:
    from bpfcap.formats.abi import Abi
    from bpfcap.formats.trace import Trace

# Rows are stored in drain order: one completing at T is on disk within well under a
# second of rows completing after it. Holding 2 s back restores completion order.
REORDER_SLACK_NS = 2_000_000_000


# -- options ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Opt:
    """How one field of a report's options is given on the command line.

    flags: the names (`("-T", "--timestamp")`); none for a positional `argument`.
    help: one sentence for --help.
    metavar: the value's placeholder in --help.
    min, min_open, max: bounds of a number (min_open: the bound itself refused).
    choices: the accepted values of a text option.
    repeat: a tuple field is given by repeating the flag (`-f A -f B`); otherwise as a
        comma-separated list (`-s 9,15`).
    hidden: not shown in --help (kept for compatibility).
    """

    flags: tuple[str, ...] = ()
    help: str = ""
    metavar: str | None = None
    min: float | None = None
    min_open: bool = False
    max: float | None = None
    choices: tuple[str, ...] | None = None
    argument: bool = False
    repeat: bool = False
    hidden: bool = False


def option(default: Any = None, *flags: str, **how: Any) -> Any:
    """A field of a report's options dataclass with its command-line declaration (Opt's
    keyword arguments); the field's type annotation says what it holds."""
    opt = Opt(flags=flags, **how)
    if isinstance(default, (list, dict, set)):
        raise TypeError("option defaults must be immutable (use a tuple)")
    return field(default=default, metadata={"option": opt})


def interval_argument() -> Any:
    """BCC histogram tools' INTERVAL [COUNT] (biolatency, runqlat): the first."""
    return option(
        None,
        argument=True,
        metavar="INTERVAL",
        min=0,
        min_open=True,
        help="One histogram per INTERVAL seconds of the report's time.",
    )


def count_argument() -> Any:
    """BCC histogram tools' INTERVAL [COUNT]: the second."""
    return option(
        None, argument=True, metavar="COUNT", min=1, help="Only the first COUNT intervals."
    )


def timestamp_flag() -> Any:
    """BCC histogram tools' -T: the time line of each interval."""
    return option(False, "-T", "--timestamp", help="Print the time of each histogram.")


@dataclass(frozen=True)
class OptionSpec:
    """One option of a report, as the CLI and docs see it: field name, value type
    (`bool`, `int`, `float`, `str`, or a tuple of one of them), default and `Opt`."""

    name: str
    type: type
    item: type | None  # the element type of a tuple field
    default: Any
    opt: Opt


def option_specs(options: type) -> list[OptionSpec]:
    """The declared options of an options dataclass, in declaration order."""
    hints = typing.get_type_hints(options)
    out = []
    for f in dataclasses.fields(options):
        opt = f.metadata.get("option")
        if opt is None:
            continue
        t = hints[f.name]
        args = [a for a in typing.get_args(t) if a is not type(None)]
        origin = typing.get_origin(t)
        item = None
        if origin is tuple:
            base, item = tuple, args[0]
        elif args:  # X | None
            base = args[0]
            if typing.get_origin(base) is tuple:
                base, item = tuple, typing.get_args(base)[0]
        else:
            base = t
        out.append(OptionSpec(f.name, base, item, f.default, opt))
    return out


# -- the trace, as a report reads it ---------------------------------------------------


class Source:
    """One trace, narrowed to the time window [since_ns, until_ns) (monotonic ns, either
    None for open), as reports read it. Events are placed at their completion time (ts_ns
    + lat_ns: when the call returned, which is when a BCC tool prints it).

    With `host` (a name of formats.merge.host_names()), only the rows of that host of a
    multi-host trace, and that host's metadata (clock, processes, disks, counters): its
    report is the report of its own trace. Without, a multi-host trace's hosts pooled.

    `progress(done, total)`, if set, is called as row groups are read."""

    def __init__(
        self,
        trace: Trace,
        *,
        since: str | None = None,
        until: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        host: str | None = None,
    ):
        """`since` and `until` in any form analyze.timespec reads (seconds from the
        start, `-10s` before the end, `25%`, `14:03:07`, ISO 8601)."""
        from bpfcap.analyze.timespec import window
        from bpfcap.formats.abi import for_machine
        from bpfcap.formats.merge import host_meta, mixed_machines

        self.trace = trace
        self.host = host
        self.meta = TraceMeta.from_dict(trace.meta if host is None else host_meta(trace.meta, host))
        if self.meta.start_ns is None:
            raise TraceFormatError(
                f"{trace.path}: no start_ns in the trace metadata",
                "was it written by bpfcap record?",
            )
        self._group_hosts: dict | None = None
        self._machines = mixed_machines(trace.meta) if host is None else []
        self._abi = None if self._machines else for_machine(self.meta.host.machine)
        self.since_ns, self.until_ns = window(
            None if since is None else str(since),
            None if until is None else str(until),
            start_ns=self.meta.start_ns,
            end_ns=self.meta.end_ns if self.meta.end_ns is not None else self.meta.start_ns,
            clock=self.meta.clock.as_dict(),
        )
        self.progress = progress
        self.kinds_read: list[str] = []

    @property
    def abi(self) -> Abi:
        """The recording host's system call numbers, flags, errnos and signals."""
        if self._abi is None:
            raise UsageError(
                f"{self.trace.path} pools hosts of different machines "
                f"({', '.join(self._machines)}): their numbers mean different things",
                "report each host apart: --by-host or --host NAME",
            )
        return self._abi

    @property
    def hosts_pooled(self) -> int:
        """How many hosts this source pools (0: one host's rows)."""
        return len(self.trace.meta.get("hosts") or ()) if self.host is None else 0

    def row_groups(self, kind: str, *, whole: bool = False) -> list:
        """The row groups batches() reads: of the window unless `whole`, of the host."""
        windowed = self.windowed and not whole
        groups = self._groups(kind) if windowed else self.trace.row_groups(kind)
        if self.host is None:
            return groups
        if self._group_hosts is None:
            from bpfcap.formats.trace import row_group_hosts

            self._group_hosts = row_group_hosts(self.trace) or {}
        if not self._group_hosts:  # a recording: all its rows are of its one host
            return groups
        return [g for g in groups if self._group_hosts.get((g[0], g[1])) == self.host]

    @property
    def path(self) -> str:
        return str(self.trace.path)

    @property
    def start_ns(self) -> int:
        """Where the reported time starts: --since, else the recording's start."""
        start = self.meta.start_ns or 0
        return max(start, self.since_ns) if self.since_ns is not None else start

    @property
    def end_ns(self) -> int:
        """Where it ends (the last ns included): --until, else the recording's end."""
        end = self.meta.end_ns if self.meta.end_ns is not None else self.start_ns
        if self.until_ns is not None:
            end = min(end, self.until_ns - 1)
        return max(end, self.start_ns)

    @property
    def windowed(self) -> bool:
        return self.since_ns is not None or self.until_ns is not None

    def recorded(self, kind: str) -> bool:
        """Whether the recording asked for `kind` (True for traces that do not say)."""
        return self.meta.recorded is None or kind in self.meta.recorded

    def batches(
        self, kind: str, columns: Sequence[str], *, whole: bool = False
    ) -> Iterator[pa.Table]:
        """The rows of `kind` completing within the window, row group by row group, in
        the order they were recorded (each within REORDER_SLACK_NS of completion order),
        with `columns` (missing ones of older files as nulls).

        A report reads the events it shows within the window, as the BCC tool run over
        that window would have seen them; `whole` gives the rows of the whole recording,
        for what the tool would have read from the kernel's state instead (a parent at
        an exec, the working directory of an open: fork and cwd rows)."""
        if kind not in self.kinds_read:
            self.kinds_read.append(kind)
        windowed = self.windowed and not whole
        groups = self.row_groups(kind, whole=whole)
        need = list(columns)
        extra = []
        if windowed:
            from bpfcap.formats.events import BY_NAME

            have = {c.name for c in BY_NAME[kind].columns}
            extra = [c for c in ("ts_ns", "lat_ns") if c in have and c not in need]
        total = len(groups)
        for i, chunk in enumerate(self.trace.batches(kind, need + extra, groups)):
            if self.progress is not None:
                self.progress(i, total)
            if windowed and chunk.num_rows:
                chunk = chunk.filter(self._inside(chunk))
                if extra:
                    chunk = chunk.drop_columns(extra)
            yield chunk
        if self.progress is not None:
            self.progress(total, total)

    def read(self, kind: str, columns: Sequence[str], *, whole: bool = False) -> pa.Table:
        """batches() as one table: for the small kinds only (cwd, fork, accept)."""
        from bpfcap.formats.events import SCHEMA
        from bpfcap.formats.schema import empty_table

        parts = [t for t in self.batches(kind, columns, whole=whole) if t.num_rows]
        if parts:
            return pa.concat_tables(parts)
        return empty_table(SCHEMA).select(list(columns))

    def _groups(self, kind: str) -> list:
        return self.trace.row_groups(kind, since_ns=self.since_ns, until_ns=self.until_ns)

    def _inside(self, chunk: pa.Table) -> pa.Array:
        end = completion_ns(chunk)
        keep = pa.array(np.ones(len(end), dtype=bool))
        if self.since_ns is not None:
            keep = pc.and_(keep, pc.greater_equal(end, pa.scalar(self.since_ns, end.type)))
        if self.until_ns is not None:
            keep = pc.and_(keep, pc.less(end, pa.scalar(self.until_ns, end.type)))
        return keep


# -- results ---------------------------------------------------------------------------


@dataclass
class Result:
    """What a report returns. `banner` and `footer` are the lines the BCC tool prints
    around its output (text format only); `notes` go to stderr in every format (what the
    trace could not show). `kinds` are the event types read, for the loss summary;
    `covered`, the spans of monotonic time the output covers (None: the whole trace)."""

    report: str
    banner: list[str] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    covered: list[tuple[int, int]] | None = None

    def to_arrow(self) -> pa.Table:
        raise NotImplementedError

    def to_pandas(self) -> Any:
        """to_arrow() as a pandas DataFrame (pandas is imported only here)."""
        try:
            import pandas  # noqa: F401
        except ImportError as e:
            raise UsageError(
                "to_pandas() needs pandas", "pip install pandas, or use to_arrow()"
            ) from e
        return self.to_arrow().to_pandas()


@dataclass
class Rows(Result):
    """A listing: one row per event (snoop tools). `chunks` is consumed once, lazily
    (the report streams); `columns` declares the BCC text layout. Each chunk may carry
    columns not in `columns`: `end_ns` (the monotonic time the row is placed at, turned
    into an absolute `timestamp` for machines) and data-only columns (execsnoop's argv),
    which text leaves out."""

    columns: Sequence[OutputColumn] = ()
    chunks: Iterable[pa.Table] = ()
    meta: TraceMeta | None = None
    abi: Abi | None = None
    _done: bool = field(default=False, repr=False)

    def __iter__(self) -> Iterator[pa.Table]:
        if self._done:
            raise RuntimeError("a report's rows can be read once: run it again")
        self._done = True
        yield from self.chunks

    def to_arrow(self) -> pa.Table:
        """Every row, with machine-readable columns (see machine_table())."""
        parts = [machine_table(c, self) for c in self]
        if not parts:
            return pa.table({})
        return pa.concat_tables(parts)


@dataclass
class Windows(Result):
    """Tables per interval (syscount -i): (end of the interval, its rows)."""

    columns: Sequence[OutputColumn] = ()
    windows: list[tuple[int, pa.Table]] = field(default_factory=list)
    meta: TraceMeta | None = None

    def to_arrow(self) -> pa.Table:
        parts = []
        for end, t in self.windows:
            stamp = utc_timestamps(pa.array([end] * t.num_rows, pa.uint64()), self.meta)
            parts.append(t.add_column(0, "window_end", stamp))
        return pa.concat_tables(parts) if parts else pa.table({})


@dataclass
class Log2Histograms(Result):
    """BCC's power-of-two histograms per interval (biolatency, runqlat): HistWindow per
    interval, sections keyed by `section` (`disk`, `pid`, `tid`) or one unnamed."""

    windows: list[HistWindow] = field(default_factory=list)
    unit: str = "usecs"
    section: str | None = None
    timestamp: bool = False  # -T: the time line per interval
    extension: bool = False  # biolatency -e: avg and total lines
    bcc_json: bool = False  # biolatency -j: BCC's dict lines
    meta: TraceMeta | None = None

    def to_arrow(self) -> pa.Table:
        """One row per non-empty bucket: window_end (UTC), the section key (if any),
        min and max (the bucket's bounds, in `unit`), count."""
        rows: dict[str, list] = {"window_end": [], "min": [], "max": [], "count": []}
        if self.section:
            rows[self.section] = []
        for w in self.windows:
            for key, vals in w.sections:
                for i, c in enumerate(vals):
                    if not c or i == 0:
                        continue
                    lo, hi = log2_bucket_bounds(i)
                    rows["window_end"].append(w.end_ns)
                    if self.section:
                        rows[self.section].append(key)
                    rows["min"].append(lo)
                    rows["max"].append(hi)
                    rows["count"].append(int(c))
        ends = pa.array(rows.pop("window_end"), pa.uint64())
        table = {"window_end": utc_timestamps(ends, self.meta)}
        if self.section:
            table[self.section] = rows.pop(self.section)
        table.update({k: pa.array(v, pa.int64()) for k, v in rows.items()})
        return pa.table(table)


def log2_bucket_bounds(slot: int) -> tuple[int, int]:
    """The values BCC's log2 slot `slot` holds, as print_log2_hist labels them."""
    low, high = (1 << slot) >> 1, (1 << slot) - 1
    if low == high:
        low -= 1
    return low, high


@dataclass
class Histograms(Result):
    """bpftrace-style hist()/lhist() per key (`report hist`): `hists` maps a key tuple
    (values of the `keys` columns) to counts per bucket, `linear` is (lo, hi, step) for
    lhist, None for pow2 buckets."""

    field_name: str = ""
    keys: list[str] = field(default_factory=list)
    hists: Mapping[tuple, np.ndarray] = field(default_factory=dict)
    linear: tuple[int, int, int] | None = None

    def ordered(self) -> list[tuple[tuple, np.ndarray]]:
        return sorted(self.hists.items(), key=lambda kv: tuple(str(k) for k in kv[0]))

    def to_arrow(self) -> pa.Table:
        """One row per non-empty bucket: the keys, min and max (inclusive bounds; null for
        an open end), count."""
        cols: dict[str, list] = {k: [] for k in self.keys}
        cols.update({"min": [], "max": [], "count": []})
        for key, counts in self.ordered():
            for i, c in enumerate(counts):
                if not c:
                    continue
                lo, hi = bucket_bounds(i, len(counts), self.linear)
                for k, v in zip(self.keys, key):
                    cols[k].append(v)
                cols["min"].append(lo)
                cols["max"].append(hi)
                cols["count"].append(int(c))
        out = {k: cols[k] for k in self.keys}
        out.update({k: pa.array(cols[k], pa.int64()) for k in ("min", "max", "count")})
        return pa.table(out)


def bucket_bounds(
    i: int, n: int, linear: tuple[int, int, int] | None
) -> tuple[int | None, int | None]:
    """The inclusive bounds of bpftrace bucket `i` of `n` (analyze.aggregate's
    pow2_buckets, or linear_buckets with `linear`); None for an open end."""
    if linear is None:
        if i == 0:
            return None, -1
        if i == 1:
            return 0, 0
        return 1 << (i - 2), (1 << (i - 1)) - 1
    lo, hi, step = linear
    if i == 0:
        return None, lo - 1
    if i == n - 1:
        return hi, None
    return lo + (i - 1) * step, min(lo + i * step, hi) - 1


@dataclass
class Lines(Result):
    """Plain lines (syscount --list): `lines` as text, `table` for machines."""

    lines: list[str] = field(default_factory=list)
    table: pa.Table = field(default_factory=lambda: pa.table({}))

    def to_arrow(self) -> pa.Table:
        return self.table


@dataclass
class Counts(Result):
    """bpftrace-style count() map (`report count`): one row per key, with `count`."""

    keys: list[str] = field(default_factory=list)
    table: pa.Table = field(default_factory=lambda: pa.table({}))

    def to_arrow(self) -> pa.Table:
        return self.table


# -- machine-readable columns ----------------------------------------------------------


def utc_timestamps(ends: pa.Array, meta: TraceMeta | None) -> pa.Array:
    """Absolute UTC times (timestamp[ns, UTC]) of monotonic times of the recording."""
    offset = meta.clock.realtime_minus_monotonic_ns if meta is not None else 0
    ns = np.asarray(ends.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    return pa.array(ns + offset, pa.timestamp("ns", tz="UTC"))


def machine_table(chunk: pa.Table, rows: Rows) -> pa.Table:
    """A listing chunk for machines: `timestamp` (UTC, from end_ns) first, then the
    report's columns, with flag columns as lists of names (OutputColumn.names), then the
    data-only columns (argv)."""
    declared = {c.name: c for c in rows.columns}
    out: dict[str, pa.Array] = {}
    if END in chunk.column_names:
        out["timestamp"] = utc_timestamps(chunk[END].combine_chunks(), rows.meta)
    for name in chunk.column_names:
        if name == END:
            continue
        col = chunk[name].combine_chunks()
        c = declared.get(name)
        if c is not None and c.names is not None and rows.abi is not None:
            col = _named_values(col, c.names, rows.abi)
        out[name] = col
    return pa.table(out)


def _named_values(col: pa.Array, kind: str, abi: Abi) -> pa.Array:
    """Numbers as names: `open_flags` (a list of O_* per value), `errno`, `signal`."""
    values = col.to_pylist()
    if kind == "open_flags":
        return pa.array(
            [None if v is None else abi.open_flag_names(v) for v in values],
            pa.list_(pa.string()),
        )
    name = {"errno": abi.errno_name, "signal": abi.signal_name}[kind]
    return pa.array([None if v is None else (name(v) or str(v)) for v in values], pa.string())


# -- the declaration -------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """One report: see the module doc."""

    name: str
    summary: str
    description: str
    needs: Mapping[str, tuple[str, ...]]
    options: type
    run: Callable[[Source, Any], Result]
    examples: tuple[tuple[str, str], ...] = ()
    trace_required: bool = True  # syscount --list needs none
    bcc_duration: bool = False  # BCC has -d (first N seconds): kept beside --since/--until

    def make_options(self, **values: Any) -> Any:
        """The options dataclass from keyword values, unknown names refused."""
        known = {f.name for f in dataclasses.fields(self.options)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(
                f"{self.name}: no option {', '.join(unknown)}",
                f"options: {', '.join(sorted(known))}",
            )
        return self.options(**values)


def losses(source: Source, result: Result) -> tuple[list[str], int, int]:
    """What the recording could not show for `result`'s event types: (lines to tell the
    user, events lost in the time covered, probe runs the kernel skipped)."""
    from bpfcap.analyze.common import missed_runs
    from bpfcap.analyze.info import kernel_reads

    meta, kinds = source.meta, result.kinds or source.kinds_read
    lines = []
    if meta.recorded is not None:
        absent = [k for k in kinds if k not in meta.recorded and k != "fork"]
        if absent and "slice" in meta.raw:
            lines.append(f"{source.path} is a slice without {', '.join(absent)} events")
        elif absent:
            lines.append(
                f"{source.path} did not record {', '.join(absent)} events "
                f"(record with -e {','.join(absent)})"
            )
    for key, r in kernel_reads(meta.raw).items():
        if key.split(".")[0] in kinds and r["status"] != "btf":
            lines.append(f"not recorded: {r['doc']} ({r['reason']})")
    windows = result.covered
    if windows is None and source.windowed:
        windows = [(source.start_ns, source.end_ns + 1)]
    total = 0
    for kind in kinds:
        counts = meta.counts(kind)
        if windows:
            lost = sum(counts.lost_between(a, b) for a, b in windows)
            where = " in the time reported"
        else:
            lost, where = counts.lost, ""
        if lost > 0:
            lines.append(f"{lost} {kind} events were lost while recording{where}")
        total += lost
    skipped = missed_runs(meta.raw, kinds)
    if skipped:
        lines.append(
            f"the kernel skipped {skipped} runs of the probes for {', '.join(kinds)} "
            "(another BPF program was running on that CPU): some events may be missing"
        )
    if meta.tree_filter_full:
        lines.append(
            f"{meta.tree_filter_full} new tasks of the recorded command were not followed "
            "(the process-tree filter was full): their events are missing"
        )
    if "redaction" in meta.raw:
        lines.append(
            f"{source.path} is redacted: names, paths, arguments, users and addresses are "
            "pseudonyms (bpfcap redact)"
        )
    if source.hosts_pooled:
        lines.append(
            f"{source.path} holds {source.hosts_pooled} hosts, reported together: process "
            "ids (parents, sockets) are matched across hosts; --by-host reports each apart"
        )
    if not source.trace.complete:
        lines.append(f"{source.path}: recording did not stop cleanly; showing what reached disk")
    lines += list(source.trace.notes)
    return lines, total, skipped


def chunked(table: pa.Table) -> Iterator[pa.Table]:
    """One table as a stream of one chunk (for reports whose output is small)."""
    yield table


def first_of(chunks: Iterable[pa.Table], empty: Callable[[], pa.Table]) -> Iterator[pa.Table]:
    """`chunks`, or one `empty()` table if there are none with rows (so that a listing
    with no rows still prints its header)."""
    seen = False
    for c in chunks:
        if c.num_rows:
            seen = True
            yield c
    if not seen:
        yield empty()
