"""`bpfcap summary`: the first page a maintainer reads about a trace, as plain data built
from its Profile (analyze/profile.py). Every list is cut to `top` entries, with the
number left out, so that the page stays under a screenful whatever the trace holds.
Rendering (Markdown, JSON) is the CLI's (cli/summary.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bpfcap.analyze.profile import Profile, Sketch, iter_kinds

# The notes shown at most (what the trace could not show); the rest are counted.
MAX_NOTES = 4


def utc_iso(ns: int) -> str:
    """UTC epoch ns as ISO 8601 to the millisecond (2026-12-01T00:31:24.389Z)."""
    t = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000 // 1_000_000:03d}Z"


def latency(s: Sketch | None) -> dict[str, int | None]:
    """p50_ns, p90_ns, p99_ns (within analyze.profile.RELATIVE_ERROR) and max_ns (exact);
    all None without a latency (or rows)."""
    pct = s.percentiles() if s is not None else {}
    return {f"{k}_ns": pct.get(k) for k in ("p50", "p90", "p99", "max")}


def _cut(items: list[Any], top: int) -> dict[str, Any]:
    return {"top": items[:top], "more": max(0, len(items) - top)}


def summary(p: Profile, top: int = 5) -> dict[str, Any]:
    """The summary of a profile, JSON-ready:

    trace, host (hostname, machine, kernel, os, cpus), bpfcap_version;
    window: start and end (ISO 8601 UTC), duration_s, windowed (--since/--until given);
    complete (False: the recording did not stop cleanly), not_recorded (types the
    recording did not ask for), notes (at most MAX_NOTES; more_notes counts the rest);
    events and lost (totals);
    types: per event type (most events first): type, events, per_s, lost, failed, and
    p50_ns/p90_ns/p99_ns/max_ns (null for types without a latency);
    processes: {top: [{pid, comm, events, share}], more}: most events first;
    failures: {top: [{type, errno, syscall, count}], more}: syscall rows per system call
    and errno, other types per errno;
    slowest_io, slowest_opens: the slowest block I/Os and opens (analyze.profile's rows);
    syscalls: {top: [{syscall, calls, per_s, failed, p50_ns, p99_ns, max_ns}], more}.
    """
    events = p.events
    types = []
    for kind, kp in iter_kinds(p):
        types.append(
            {
                "type": kind,
                "events": kp.rows,
                "per_s": _rate(p, kp.rows),
                "lost": kp.lost,
                "failed": kp.failed if kind in _FAILING else None,
                **latency(kp.latency),
            }
        )
    procs = [
        {"pid": pid, "comm": comm, "events": n, "share": n / events if events else 0.0}
        for pid, comm, n in p.processes
    ]
    failures = []
    for kind, kp in p.kinds.items():
        if kp.failures_by:
            for what, n in kp.failures_by.items():
                name, _, errno = what.rpartition(" ")
                failures.append({"type": kind, "errno": errno, "syscall": name, "count": n})
        else:
            for errno, n in kp.failures.items():
                failures.append({"type": kind, "errno": errno, "syscall": None, "count": n})
    failures.sort(key=lambda f: (-f["count"], f["type"], f["errno"], f["syscall"] or ""))
    syscalls = []
    sc = p.kinds.get("syscall")
    if sc is not None:
        failed: dict[str, int] = {}
        for what, n in sc.failures_by.items():
            name = what.rpartition(" ")[0]
            failed[name] = failed.get(name, 0) + n
        for name, s in sorted(sc.keys.get("syscall", {}).items(), key=lambda kv: -kv[1].count):
            lat = latency(s)
            syscalls.append(
                {
                    "syscall": name,
                    "calls": s.count,
                    "per_s": _rate(p, s.count),
                    "failed": failed.get(name, 0),
                    "p50_ns": lat["p50_ns"],
                    "p99_ns": lat["p99_ns"],
                    "max_ns": lat["max_ns"],
                }
            )
    procs_cut = _cut(procs, top)
    procs_cut["more"] += p.other_processes
    return {
        "trace": p.path,
        "host": p.host,
        "bpfcap_version": p.bpfcap_version,
        "window": {
            "start": utc_iso(p.start_utc_ns),
            "end": utc_iso(p.end_utc_ns),
            "duration_s": p.duration_s,
            "windowed": p.windowed,
        },
        "complete": p.complete,
        "not_recorded": p.not_recorded,
        "notes": p.notes[:MAX_NOTES],
        "more_notes": max(0, len(p.notes) - MAX_NOTES),
        "events": events,
        "lost": p.lost,
        "types": types,
        "processes": procs_cut,
        "failures": _cut(failures, top),
        "slowest_io": p.slowest.get("bio", [])[:top],
        "slowest_opens": p.slowest.get("open", [])[:top],
        "syscalls": _cut(syscalls, top),
    }


# Types whose rows can fail (analyze.profile.ERROR_COLUMN).
_FAILING = ("open", "exec", "signal", "syscall", "accept", "bio")


def _rate(p: Profile, n: int) -> float | None:
    r = p.rate(n)
    return None if r is None else round(r, 3)
