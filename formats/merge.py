"""`bpfcap merge`: traces into one trace file, of one host or of several.

**One host.** Inputs recorded on the same host in the same boot (same_boot()): consecutive
recordings, the segments of a rotated flight-recorder directory, slices of one recording.
Their ts_ns share one CLOCK_MONOTONIC, so rows keep them; the result reads as one
recording. When every input file is format 2 the rows are joined by copying their bytes
(row groups are not decoded: formats/parquet_concat.py, under the full trace schema, so
files with different `_raw` columns join); format-1 inputs are re-encoded
(formats/rewrite.py).

Inputs of one host that share an event type must not overlap in time (start_ns to
end_ns of each, both included: end_ns is the last ns a trace covers): their rows of that
type could be the same events, counted twice. Such inputs are refused (UsageError), so
the only overlaps merged are of recordings of different types (recorded by two recorders
at once). Slices of adjacent windows [a, b) and [b, c) of one recording cover a to b - 1
and b to c - 1, so they merge back to exactly the rows of [a, c). The pieces of one
recording (its segment files, the files of `record --rotate`: _piece()) count its
events from the recording's start, and their windows may overlap (a row read in a later
drain than its event's); they are one input here, whose rows are disjoint by segment
(two pieces holding one segment are refused) and whose metadata is its newest piece's,
from the earliest start (a note says which segments no input holds).

Metadata of a one-host merge: that of the earliest input (host, clock, processes, probes,
kernel reads, command line), with start_ns the first start, end_ns the last end,
clean_stop only if every input stopped cleanly, disks united, settings.events the union
of the event types, missed probe runs summed, and the counters of every event type summed
(merge_counters()): each input's loss timeline is made a list of per-segment losses,
segments that two inputs both list (slices of one recording list the segment their
windows share) are counted once, and the cumulative counts are recomputed, so
EventCounts.lost_between() of the merge is that of the one recording it came from. The
clock is the earliest input's: a later input's `time` column may differ from ts_ns + its
offset by the clock drift between the recordings (same_boot() tolerates a few ms).

**Several hosts.** Inputs are grouped by host (hostname and boot); with more than one
group, the result is a multi-host trace. Every row says its host in the `host` column
(formats/v2.py HOST_FIELD: a string, dictionary-encoded, one value per row group, so it
costs nothing per row; absent from recordings, which therefore pay nothing for it). The
hosts' monotonic clocks are put on one timebase, the clock of the host that booted first
(the smallest realtime - monotonic offset, the reference): every row of host h is shifted
by shift_ns = offset_h - offset_ref >= 0, so that `time` (its wall clock, unchanged) =
ts_ns + the reference's offset for every row, as the metadata's clock says. This
re-encodes every row. A host that appears with several boots becomes one host per boot,
named `NAME#1`, `NAME#2`, ... in boot order; a trace without a hostname is `unknown`.

Metadata of a multi-host trace: `hosts`, per host in boot order, its one-host metadata
(above) with `name`, `shift_ns`, its own `clock` (as recorded) and start_ns, end_ns and
loss timelines shifted onto the common timebase; and at the top the pooled view that
reports of all hosts read: clock = the reference's (utc offset and zone too), start_ns
the first start, end_ns the last end, counters summed over hosts, settings.events the
union, processes and disks of every host (pids may repeat across hosts), host.hostname
"N hosts" and host.machine the common machine (omitted when the hosts differ: pooled
reports that decode syscall numbers or flags then refuse to run; report each host
apart). host_meta() gives one host's view as reports read it (analyze.report.Source
with host=NAME).

Both: `merge.sources` lists each input's SHA-256, start_ns, end_ns and hostname (never its
path: traces get shared), with its slice or merge record if it had one; `merge.notes`
what the inputs disagreed on that the merge kept from one of them (probes, kernel
reads, kernel). A multi-host trace cannot itself be merged again (merge its sources).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .errors import IncompatibleTraceError, OutputError, TraceFormatError, UsageError
from .events import BY_NAME, EVENT_TYPES
from .parquet_concat import ParquetConcatError
from .rewrite import Input, file_digest, kinds_present, rewrite
from .trace import FORMAT_VERSION, Trace, clock_offset, rows_by_kind, segment_span
from .writer import (
    refuse_existing,
    trace_footer,
    trace_template,
    write_joined,
)

# Two traces of one hostname are of one boot when their realtime - monotonic offsets
# agree within this (plus their reading uncertainty) and a drift NTP may slew the clock
# by between them (at most 500 ppm of the monotonic time between the recordings). Two
# boots' offsets differ by at least the earlier boot's uptime: far more.
BOOT_TOLERANCE_NS = 5_000_000
MAX_DRIFT_PPM = 500
_MAX_TIME = 1 << 62  # the largest monotonic time readers accept (formats/trace.py)
# Keys of an input's metadata that describe that file, not the merge.
_OWN_KEYS = ("segment", "first_segment", "slice", "merge", "format_version", "hosts")


@dataclass
class MergeResult:
    """What merge() wrote: rows, the file's size, how many hosts and input traces, and
    `how`: "copied" (row groups joined byte for byte) or "re-encoded"."""

    rows: int
    size: int
    hosts: int
    traces: int
    how: str
    notes: list[str] = field(default_factory=list)


@dataclass
class _Host:
    """The inputs of one host and boot, in time order, and where its rows go."""

    name: str
    traces: list[Trace]
    offset: int  # realtime - monotonic ns of its earliest input
    shift_ns: int = 0


def merge(
    traces: Sequence[Trace],
    out: Path,
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> MergeResult:
    """Write the rows of `traces` into one trace file `out` (see the module doc): one
    recording's worth when they are all of one host and boot, else a multi-host trace."""
    traces = list(traces)
    out = Path(out)
    if not traces:
        raise UsageError("no traces to merge", "name them: bpfcap merge A B -o OUT")
    _check_inputs(traces, out)
    refuse_existing(out, force)  # before reading every input's bytes, not after
    hosts = group_by_host(traces)
    for h in hosts:
        _check_disjoint(h.traces)
    digests = {id(t): file_digest(t) for t in traces}
    if len(hosts) == 1:
        return _merge_one_host(hosts[0].traces, out, digests, force, progress)
    return _merge_hosts(hosts, out, digests, force, progress)


# -- which inputs are one host ---------------------------------------------------------


def same_boot(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two traces' metadata are of one host and one boot: the same hostname and,
    if both name it, the same host.boot_id; else realtime - monotonic offsets within
    BOOT_TOLERANCE_NS, the clock readings' uncertainty and MAX_DRIFT_PPM of the time
    between the recordings."""
    ha, hb = a.get("host") or {}, b.get("host") or {}
    if ha.get("hostname", "") != hb.get("hostname", ""):
        return False
    if ha.get("boot_id") and hb.get("boot_id"):
        return bool(ha["boot_id"] == hb["boot_id"])
    ca, cb = a.get("clock") or {}, b.get("clock") or {}
    sa, ea = _span(a)
    sb, eb = _span(b)
    gap = max(0, max(sa, sb) - min(ea, eb))
    tolerance = (
        BOOT_TOLERANCE_NS
        + int(ca.get("uncertainty_ns") or 0)
        + int(cb.get("uncertainty_ns") or 0)
        + gap * MAX_DRIFT_PPM // 1_000_000
    )
    return abs(clock_offset(a) - clock_offset(b)) <= tolerance


def group_by_host(traces: Sequence[Trace]) -> list[_Host]:
    """The inputs grouped by host and boot (same_boot()), hosts in boot order (the
    first is the reference of a multi-host merge), each host's inputs by start time."""
    groups: list[list[Trace]] = []
    for t in sorted(traces, key=lambda t: (clock_offset(t.meta), _span(t.meta)[0])):
        for g in groups:
            if same_boot(g[0].meta, t.meta):
                g.append(t)
                break
        else:
            groups.append([t])
    hosts = []
    for g in map(_in_order, groups):
        hosts.append(_Host(_hostname(g[0].meta), g, clock_offset(g[0].meta)))
    hosts.sort(key=lambda h: h.offset)
    for name in {h.name for h in hosts}:
        same = [h for h in hosts if h.name == name]
        if len(same) > 1:
            for i, h in enumerate(same, 1):
                h.name = f"{name}#{i}"
    for h in hosts:
        h.shift_ns = h.offset - hosts[0].offset
    return hosts


def _hostname(meta: dict[str, Any]) -> str:
    return str((meta.get("host") or {}).get("hostname") or "unknown")


def _span(meta: dict[str, Any]) -> tuple[int, int]:
    """[start_ns, end_ns] of a trace's metadata (end = start when it has none)."""
    start = int(meta.get("start_ns") or 0)
    end = meta.get("end_ns")
    return start, max(start, int(end) if end is not None else start)


def _recorded(t: Trace) -> set[str]:
    events = (t.meta.get("settings") or {}).get("events")
    return set(events) if events is not None else set(kinds_present(t))


def _check_inputs(traces: list[Trace], out: Path) -> None:
    target = out.resolve()
    for t in traces:
        if "hosts" in t.meta:
            raise UsageError(
                f"{t.path} is already a multi-host trace",
                "merge the traces it was made of instead",
            )
        if t.meta.get("start_ns") is None:
            raise TraceFormatError(
                f"{t.path}: no start_ns in the trace metadata", "was it written by bpfcap record?"
            )
        inside = [t.path.resolve(), *(f.resolve() for f in t.files)]
        if target in inside or (t.path.is_dir() and t.path.resolve() in target.parents):
            raise UsageError(f"{out} is one of the traces to merge", "write -o elsewhere")
    if out.is_dir():
        raise OutputError(f"{out} is a directory", "name the file to write")


def _piece(t: Trace) -> tuple[tuple[Any, ...], int, int] | None:
    """(recording, first, last) when `t` holds segments first..last of a recording and
    nothing else: a segment file, a file of `record --rotate`, a `.partial` directory.
    Its metadata is the recording's as of segment `last` (counters from the recording's
    start), so pieces of one recording overlap in time by their metadata while their
    rows do not. None for any other trace."""
    m = t.meta
    last, attached = m.get("segment"), m.get("attached_ns")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (last, attached)):
        return None  # not a recorder's segment (which knows when its probes attached)
    if "slice" in m or "merge" in m:
        return None
    host = m.get("host") or {}
    # (each rotated file has its own start_ns: the window it holds)
    recording = (host.get("hostname"), host.get("boot_id"), attached, clock_offset(m))
    spans = [segment_span(f.name) for f in t.files]
    first = m.get("first_segment") if len(t.files) == 1 else None
    if not isinstance(first, int) or isinstance(first, bool):
        named = [s[0] for s in spans if s is not None]
        first = min(named) if len(named) == len(spans) else last
    return recording, min(first, last), last


def _segments(t: Trace) -> tuple[int, int]:
    """The segments a piece of a recording holds (see _piece)."""
    p = _piece(t)
    assert p is not None
    return p[1], p[2]


def _in_order(traces: Sequence[Trace]) -> list[Trace]:
    """Inputs of one host in time order: each unit (_units) by its start, a recording's
    pieces by their segments."""
    return [t for u in sorted(_units(traces), key=_unit_span) for t in u]


def _units(traces: Sequence[Trace]) -> list[list[Trace]]:
    """The inputs of one host as the units that must not overlap in time: the pieces of
    one recording (_piece) form one unit, in segment order, refused if two hold the same
    segment; any other input is a unit of its own."""
    units: list[list[Trace]] = []
    recordings: dict[tuple[Any, ...], list[Trace]] = {}
    for t in traces:
        p = _piece(t)
        if p is None:
            units.append([t])
        elif p[0] in recordings:
            recordings[p[0]].append(t)
        else:
            recordings[p[0]] = [t]
            units.append(recordings[p[0]])
    for unit in recordings.values():
        unit.sort(key=_segments)
        for a, b in zip(unit, unit[1:]):
            if _segments(b)[0] <= _segments(a)[1]:
                raise UsageError(
                    f"{a.path} and {b.path} hold the same segments of one recording: their "
                    "rows would count twice",
                    "merge each file of a --rotate directory once (or the directory itself)",
                )
    return units


def _check_disjoint(traces: list[Trace]) -> None:
    """Inputs of one host sharing an event type cover disjoint times (see module doc);
    the pieces of one recording are one input here."""
    units = _units(traces)
    for i, a in enumerate(units):
        sa, ea = _unit_span(a)
        for b in units[i + 1 :]:
            sb, eb = _unit_span(b)
            common = set().union(*map(_recorded, a)) & set().union(*map(_recorded, b))
            if common and sa <= eb and sb <= ea:
                raise UsageError(
                    f"{a[-1].path} and {b[-1].path} overlap in time on one host and both "
                    f"hold {', '.join(sorted(common))} events: their rows would count twice",
                    "merge recordings that follow each other, or slices of adjacent windows "
                    "(bpfcap slice --since/--until)",
                )


def _unit_span(unit: list[Trace]) -> tuple[int, int]:
    spans = [_span(t.meta) for t in unit]
    return min(s for s, _ in spans), max(e for _, e in spans)


# -- metadata ---------------------------------------------------------------------------


def merge_counters(counters: Sequence[dict[str, Any] | None], *, dedupe: bool) -> dict:
    """Per-type counters (`events` of each input) summed: seen, written and lost (None
    where an input does not know), the loss timelines joined in time order with their
    cumulative counts recomputed. With `dedupe` (inputs of one recording), a segment two
    inputs list alike is counted once. Without a timeline for an input that lost events,
    the merge has none (lost_between() then gives the whole loss: never hides one)."""
    out: dict[str, dict[str, Any]] = {}
    kinds = list(dict.fromkeys(k for c in counters if c for k in c))
    for kind in kinds:
        cs = [c[kind] for c in counters if c and kind in c]
        lost = sum(int(c.get("lost") or 0) for c in cs)
        merged: dict[str, Any] = {}
        removed = 0
        if any("lost_timeline" in c for c in cs) and all(
            c.get("lost_timeline") is not None or not c.get("lost") for c in cs
        ):
            steps: list[tuple[int, int, int]] = []
            for c in cs:
                before = 0
                for seg_from, seg_to, so_far in c.get("lost_timeline") or ():
                    steps.append((int(seg_from), int(seg_to), int(so_far) - before))
                    before = int(so_far)
            unique = sorted(set(steps)) if dedupe else sorted(steps)
            removed = sum(s[2] for s in steps) - sum(s[2] for s in unique)
            line, total = [], 0
            for seg_from, seg_to, n in unique:
                total += n
                line.append([seg_from, seg_to, total])
            merged["lost_timeline"] = line
        for key in ("seen", "written"):
            values = [c.get(key) for c in cs]
            merged[key] = None if None in values else sum(int(v) for v in values)
        if merged["seen"] is not None:
            merged["seen"] -= removed
        merged["lost"] = lost - removed
        if not removed:  # other counters (per CPU, over the limit) add up
            for key in dict.fromkeys(k for c in cs for k in c):
                if key in merged or key == "lost":
                    continue
                values = [c.get(key) for c in cs]
                if all(_is_count(v) for v in values):
                    merged[key] = sum(values)
                elif all(isinstance(v, list) and all(map(_is_count, v)) for v in values) and (
                    len({len(v) for v in values}) == 1
                ):
                    merged[key] = [sum(x) for x in zip(*values)]
        out[kind] = merged
    return out


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _recorded_union(metas: Sequence[dict[str, Any]]) -> list[str] | None:
    lists = [(m.get("settings") or {}).get("events") for m in metas]
    if any(x is None for x in lists):
        return None
    names = {k for x in lists for k in x}
    return [t.name for t in EVENT_TYPES if t.name in names] + sorted(names - set(BY_NAME))


def _disks(metas: Sequence[dict[str, Any]]) -> list[list[Any]]:
    disks: dict[int, str] = {}
    for m in metas:
        for dev, name in m.get("disks", []):
            disks.setdefault(int(dev), name)
    return [[dev, name] for dev, name in sorted(disks.items())]


def _differences(metas: Sequence[dict[str, Any]], where: str) -> list[str]:
    """What the inputs disagree on that the merge takes from the first."""
    notes = []
    first = metas[0]
    for key, what in (
        ("probes", "probes attached"),
        ("kernel_reads", "kernel struct reads"),
        ("host", "host details"),
    ):
        if any(m.get(key) != first.get(key) for m in metas[1:]):
            notes.append(f"{where}: the traces differ in {what}; kept the earliest's")
    return notes


def one_host_meta(
    traces: Sequence[Trace], digests: dict[int, str]
) -> tuple[dict[str, Any], list[str]]:
    """The metadata of a one-host merge of `traces` (in time order), and the notes on
    what they disagreed on. Pieces of one recording count as that recording, as of its
    newest piece (its counters are the recording's, cumulative)."""
    units = _units(traces)
    metas = [u[-1].meta for u in units]
    first = metas[0]
    meta = {k: v for k, v in first.items() if k not in _OWN_KEYS}
    spans = [_unit_span(u) for u in units]
    meta["start_ns"] = min(s for s, _ in spans)
    meta["end_ns"] = max(e for _, e in spans)
    meta["clean_stop"] = all(u[-1].complete for u in units)
    if "stop_reason" in metas[-1]:
        meta["stop_reason"] = metas[-1]["stop_reason"]
    meta["events"] = merge_counters([m.get("events") for m in metas], dedupe=True)
    recorded = _recorded_union(metas)
    settings = dict(first.get("settings") or {})
    if recorded is None:
        settings.pop("events", None)
    else:
        settings["events"] = recorded
    meta["settings"] = settings
    meta["disks"] = _disks(metas)
    missed: dict[str, int] = {}
    for m in metas:
        for prog, n in (m.get("missed_runs") or {}).items():
            missed[prog] = missed.get(prog, 0) + int(n)
    if missed:
        meta["missed_runs"] = missed
    tree_full = sum(int(m.get("tree_filter_full") or 0) for m in metas)
    if tree_full:
        meta["tree_filter_full"] = tree_full
    notes = _differences(metas, _hostname(first)) if len(metas) > 1 else []
    notes += _missing_pieces(units, _hostname(first))
    meta["merge"] = {"sources": [_source(t, digests) for t in traces], "notes": notes}
    return meta, notes


def _missing_pieces(units: list[list[Trace]], where: str) -> list[str]:
    """Notes on recordings of which segments are not among the inputs (the oldest files
    a flight recorder dropped, say): their counters count events that no row holds."""
    notes = []
    for unit in units:
        if _piece(unit[0]) is None:
            continue
        held = [_segments(t) for t in unit]
        gaps = [(1, held[0][0] - 1)] if held[0][0] > 1 else []
        gaps += [(a[1] + 1, b[0] - 1) for a, b in zip(held, held[1:]) if b[0] > a[1] + 1]
        if gaps:
            which = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in gaps)
            notes.append(
                f"{where}: segments {which} of the recording are not among the inputs: "
                "its event counters include their events, its rows do not"
            )
    return notes


def _source(t: Trace, digests: dict[int, str]) -> dict[str, Any]:
    start, end = _span(t.meta)
    out: dict[str, Any] = {
        "sha256": digests[id(t)],
        "start_ns": start,
        "end_ns": end,
        "hostname": _hostname(t.meta),
    }
    for key in ("slice", "merge"):
        if key in t.meta:
            out[key] = t.meta[key]
    return out


def _shifted(meta: dict[str, Any], shift: int) -> dict[str, Any]:
    """A host's metadata with its times moved by `shift` ns (onto the common timebase)."""
    meta = dict(meta, start_ns=meta["start_ns"] + shift, end_ns=meta["end_ns"] + shift)
    if meta["end_ns"] >= _MAX_TIME:
        raise UsageError(
            "the hosts' clocks are too far apart to put on one timebase",
            "are their clock mappings right? (bpfcap info)",
        )
    events = {}
    for kind, c in (meta.get("events") or {}).items():
        c = dict(c)
        if c.get("lost_timeline") is not None:
            c["lost_timeline"] = [[a + shift, b + shift, n] for a, b, n in c["lost_timeline"]]
        events[kind] = c
    meta["events"] = events
    return meta


def multi_host_meta(
    hosts: Sequence[_Host], digests: dict[int, str]
) -> tuple[dict[str, Any], list[str]]:
    """The metadata of a multi-host merge (see the module doc), and the notes."""
    per_host, notes = [], []
    for h in hosts:
        m, n = one_host_meta(h.traces, digests)
        notes += n
        m.pop("merge")
        per_host.append(dict(_shifted(m, h.shift_ns), name=h.name, shift_ns=h.shift_ns))
    ref = per_host[0]
    machines = mixed_machines({"hosts": per_host})
    host: dict[str, Any] = {"hostname": f"{len(hosts)} hosts"}
    if not machines:
        host["machine"] = (ref.get("host") or {}).get("machine")
    kernels = {(m.get("host") or {}).get("kernel") for m in per_host}
    if len(kernels) == 1 and None not in kernels:
        host["kernel"] = kernels.pop()
    cpus = [(m.get("host") or {}).get("cpus") for m in per_host]
    if all(_is_count(c) for c in cpus):
        host["cpus"] = sum(cpus)
    pid_max = [(m.get("host") or {}).get("pid_max") for m in per_host]
    if all(_is_count(p) for p in pid_max):
        host["pid_max"] = max(pid_max)
    ref_clock = ref.get("clock") or {}
    meta: dict[str, Any] = {
        "bpfcap_version": ref.get("bpfcap_version"),
        "start_ns": min(m["start_ns"] for m in per_host),
        "end_ns": max(m["end_ns"] for m in per_host),
        "clock": {
            "realtime_minus_monotonic_ns": hosts[0].offset,
            "utc_offset_s": int(ref_clock.get("utc_offset_s", 0)),
            "tz": str(ref_clock.get("tz", "UTC")),
        },
        "host": host,
        "events": merge_counters([m.get("events") for m in per_host], dedupe=False),
        "processes": [p for m in per_host for p in m.get("processes", [])],
        "disks": _disks(per_host),
        "clean_stop": all(m.get("clean_stop", True) for m in per_host),
        "hosts": per_host,
        "merge": {"sources": [_source(t, digests) for h in hosts for t in h.traces]},
    }
    recorded = _recorded_union(per_host)
    if recorded is not None:
        meta["settings"] = {"events": recorded}
    for key in ("kernel_reads", "probes"):
        if key in ref:
            meta[key] = ref[key]
    if machines:
        notes.append(
            "the hosts are of different machines: pooled reports that decode system call "
            "numbers or flags refuse to run (report with --by-host or --host)"
        )
    meta["merge"]["notes"] = notes
    return meta, notes


# -- reading one host of a multi-host trace ----------------------------------------------


def host_names(meta: dict[str, Any]) -> list[str]:
    """The hosts a trace holds, as --host names them: a multi-host trace's, in boot
    order; a recording's one hostname (`unknown` without one)."""
    hosts = meta.get("hosts")
    if hosts:
        return [str(h["name"]) for h in hosts]
    return [_hostname(meta)]


def host_meta(meta: dict[str, Any], name: str) -> dict[str, Any]:
    """The metadata of host `name` of a trace, as reports of that host alone read it:
    its own host, processes, disks, counters and settings; its clock's zone, with the
    offset that turns the trace's (shifted) ts_ns into wall-clock time. A recording's
    own metadata for its one host. UsageError for a host the trace does not hold."""
    names = host_names(meta)
    if name not in names:
        raise UsageError(f"the trace holds no host {name!r}", f"its hosts: {', '.join(names)}")
    hosts = meta.get("hosts")
    if not hosts:
        return meta
    h = next(h for h in hosts if h["name"] == name)
    view = {k: v for k, v in h.items() if k not in ("name", "shift_ns")}
    clock = dict(h.get("clock") or {})
    clock["realtime_minus_monotonic_ns"] = clock_offset(h) - int(h["shift_ns"])
    view["clock"] = clock
    view["format_version"] = meta.get("format_version", FORMAT_VERSION)
    return view


def mixed_machines(meta: dict[str, Any]) -> list[str]:
    """The machines of a multi-host trace's hosts when they are not all one (else [])."""
    names = sorted({_machine(h) for h in meta.get("hosts") or ()})
    return names if len(names) > 1 else []


def _machine(meta: dict[str, Any]) -> str:
    """A trace's machine as formats.abi names it (x86_64 when it does not say)."""
    from .abi import canonical_machine

    machine = (meta.get("host") or {}).get("machine")
    try:
        return canonical_machine(machine if isinstance(machine, str) else None)
    except IncompatibleTraceError:
        return str(machine)


# -- writing -----------------------------------------------------------------------------


def _merge_one_host(
    traces: list[Trace],
    out: Path,
    digests: dict[int, str],
    force: bool,
    progress: Callable[[int, int], None] | None,
) -> MergeResult:
    meta, notes = one_host_meta(traces, digests)
    rows = sum(n for t in traces for n in rows_by_kind(t).values())
    if all(v >= 2 for t in traces for v in t.versions.values()):
        files = [f for t in traces for f in t.files]
        try:
            size = write_joined(
                out, files, trace_footer(meta), force=force, template=trace_template()
            )
            return MergeResult(rows, size, 1, len(traces), "copied", notes)
        except ParquetConcatError:
            pass  # columns this bpfcap does not know (a newer writer): re-encode
        except OSError as e:
            raise OutputError(f"cannot write {out}: {e.strerror or e}") from e
    inputs = [Input(t, {k: t.row_groups(k) for k in kinds_present(t)}) for t in traces]
    written = rewrite(inputs, out, meta, force=force, progress=progress)
    return MergeResult(
        sum(written.rows.values()), written.size, 1, len(traces), "re-encoded", notes
    )


def _merge_hosts(
    hosts: list[_Host],
    out: Path,
    digests: dict[int, str],
    force: bool,
    progress: Callable[[int, int], None] | None,
) -> MergeResult:
    """Every row re-encoded with its host and its ts_ns shifted onto the common timebase
    (every row's `time` = its shifted ts_ns + the reference host's offset)."""
    meta, notes = multi_host_meta(hosts, digests)
    inputs = [
        Input(
            t,
            {kind: t.row_groups(kind) for kind in kinds_present(t)},
            transform=functools.partial(_shift, h),
            offset=hosts[0].offset,
            host=h.name,
        )
        for h in hosts
        for t in h.traces
    ]
    written = rewrite(inputs, out, meta, force=force, progress=progress)
    return MergeResult(
        sum(written.rows.values()),
        written.size,
        len(hosts),
        sum(len(h.traces) for h in hosts),
        "re-encoded",
        notes,
    )


def _shift(h: _Host, kind: str, t: pa.Table) -> pa.Table:
    """Rows of host `h` with ts_ns shifted onto the common timebase."""
    if not h.shift_ns:
        return t
    ts = pc.add_checked(t["ts_ns"], pa.scalar(h.shift_ns, pa.uint64()))
    if pc.max(ts).as_py() >= _MAX_TIME:
        raise UsageError(
            "the hosts' clocks are too far apart to put on one timebase",
            "are their clock mappings right? (bpfcap info)",
        )
    return t.set_column(t.column_names.index("ts_ns"), "ts_ns", ts)
