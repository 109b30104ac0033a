"""A trace's metadata, typed: what every reader (reports, info, the Python API) uses of
the JSON in the file's footer, with the defaults for keys older or partial files lack in
one place.

`TraceMeta.from_dict()` takes the metadata as formats.trace reads it (shapes already
checked there: a wrong type is refused before this point) and never fails on a missing
key: the field takes its default, and what the default means is documented on the field.
The raw dict stays available as `TraceMeta.raw` for keys not modelled here (agent
statistics, probe details).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Clock:
    """How the recording host's clocks related while it recorded. Event times in a trace
    are CLOCK_MONOTONIC ns; wall clock (UTC) = monotonic + realtime_minus_monotonic_ns;
    the host's local time = UTC + utc_offset_s (its offset when recording started)."""

    realtime_minus_monotonic_ns: int = 0  # 0 when unknown: times show from the epoch
    utc_offset_s: int = 0
    tz: str = "UTC"
    uncertainty_ns: int | None = None  # the width of the window the offset was read in

    def utc_ns(self, monotonic_ns: int) -> int:
        """UTC epoch ns of a monotonic time of the recording."""
        return int(monotonic_ns) + self.realtime_minus_monotonic_ns

    def as_dict(self) -> dict[str, Any]:
        """The mapping the analysis helpers take (analyze.common.wall_clock)."""
        return {
            "realtime_minus_monotonic_ns": self.realtime_minus_monotonic_ns,
            "utc_offset_s": self.utc_offset_s,
        }


@dataclass(frozen=True)
class Host:
    """The recording host."""

    hostname: str = ""
    machine: str | None = None  # uname -m; None in traces from before it was recorded
    kernel: str = ""
    kernel_version: str = ""
    os: str = ""
    cpus: int | None = None
    pid_max: int | None = None  # None: unknown (BCC's widths fall back to 6)


@dataclass(frozen=True)
class EventCounts:
    """What the recorder counted for one event type."""

    seen: int | None = None
    lost: int = 0
    written: int | None = None
    # Per segment that lost events: (segment start ns, segment end ns, loss so far).
    lost_timeline: tuple[tuple[int, int, int], ...] | None = None

    def lost_between(self, start_ns: int, end_ns: int) -> int:
        """Events lost in segments overlapping [start_ns, end_ns): a segment lasts about
        a second, so a loss is placed to within it and counted in every window it may
        belong to (never hidden). Without a timeline: the whole recording's loss."""
        if self.lost_timeline is None:
            return self.lost
        lost, before = 0, 0
        for seg_from, seg_to, so_far in self.lost_timeline:
            if seg_from < end_ns and seg_to >= start_ns:
                lost += so_far - before
            before = so_far
        return lost


@dataclass(frozen=True)
class Process:
    """A process running when the recording started (the /proc snapshot)."""

    pid: int
    ppid: int
    comm: str


@dataclass(frozen=True)
class TraceMeta:
    """The metadata of a trace (see docs/trace-format.md for every key)."""

    format_version: int = 0
    bpfcap_version: str | None = None
    start_ns: int | None = None  # monotonic ns the recording started; None: not a recording
    end_ns: int | None = None  # monotonic ns it ended (start_ns if absent)
    clock: Clock = field(default_factory=Clock)
    host: Host = field(default_factory=Host)
    # The event types the recording asked for; None in traces from before it was kept.
    recorded: tuple[str, ...] | None = None
    events: Mapping[str, EventCounts] = field(default_factory=dict)
    processes: tuple[Process, ...] = ()
    disks: Mapping[int, str] = field(default_factory=dict)  # dev_t -> disk name
    clean_stop: bool = True
    stop_reason: str | None = None
    missed_runs: Mapping[str, int] = field(default_factory=dict)  # BPF program -> runs
    tree_filter_full: int = 0  # tasks of `record -- CMD` the tree filter could not follow
    command_line: tuple[str, ...] = ()
    kernel_reads: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, meta: Mapping[str, Any]) -> TraceMeta:
        clock = meta.get("clock") or {}
        host = meta.get("host") or {}
        settings = meta.get("settings") or {}
        start = meta.get("start_ns")
        recorded = settings.get("events")
        return cls(
            format_version=int(meta.get("format_version", 0) or 0),
            bpfcap_version=meta.get("bpfcap_version"),
            start_ns=start,
            end_ns=meta.get("end_ns", start),
            clock=Clock(
                realtime_minus_monotonic_ns=int(clock.get("realtime_minus_monotonic_ns", 0)),
                utc_offset_s=int(clock.get("utc_offset_s", 0)),
                tz=str(clock.get("tz", "UTC")),
                uncertainty_ns=clock.get("uncertainty_ns"),
            ),
            host=Host(
                hostname=str(host.get("hostname", "")),
                machine=host.get("machine") if isinstance(host.get("machine"), str) else None,
                kernel=str(host.get("kernel", "")),
                kernel_version=str(host.get("kernel_version", "")),
                os=str(host.get("os", "")),
                cpus=_int_or_none(host.get("cpus")),
                pid_max=_int_or_none(host.get("pid_max")),
            ),
            recorded=None if recorded is None else tuple(recorded),
            events={
                kind: EventCounts(
                    seen=c.get("seen"),
                    lost=int(c.get("lost") or 0),
                    written=c.get("written"),
                    lost_timeline=(
                        None
                        if c.get("lost_timeline") is None
                        else tuple(tuple(r) for r in c["lost_timeline"])
                    ),
                )
                for kind, c in (meta.get("events") or {}).items()
            },
            processes=tuple(Process(int(p), int(pp), c) for p, pp, c in meta.get("processes", [])),
            disks={int(dev): name for dev, name in meta.get("disks", [])},
            clean_stop=bool(meta.get("clean_stop", True)),
            stop_reason=meta.get("stop_reason"),
            missed_runs=dict(meta.get("missed_runs") or {}),
            tree_filter_full=int(meta.get("tree_filter_full", 0) or 0),
            command_line=tuple(meta.get("command_line") or ()),
            kernel_reads=dict(meta.get("kernel_reads") or {}),
            settings=dict(settings),
            raw=dict(meta),
        )

    @property
    def duration_ns(self) -> int:
        """How long the recording ran (0 when its times are unknown)."""
        if self.start_ns is None or self.end_ns is None:
            return 0
        return max(0, self.end_ns - self.start_ns)

    def counts(self, kind: str) -> EventCounts:
        """The recorder's counters for `kind` (zeros if it has none)."""
        return self.events.get(kind, EventCounts())


def _int_or_none(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None
