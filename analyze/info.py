"""What a trace holds: the summary behind `bpfcap info` (pure; no printing)."""

from __future__ import annotations

from typing import Any


def summarize(
    meta: dict[str, Any],
    rows_by_kind: dict[str, int],
    *,
    size: int,
    files: int,
    complete: bool,
    exec_strings: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A JSON-ready summary: identity, time span, events per type (rows in the files, and
    the kernel's seen/lost counters), probe manifest, kernel struct reads, agent cost;
    `exec_strings` (execsnoop.string_sources()) as given."""
    clock = meta.get("clock", {})
    offset = clock.get("realtime_minus_monotonic_ns", 0)
    start, end = meta.get("start_ns"), meta.get("end_ns")
    events = {}
    counters = meta.get("events", {})
    for kind in sorted(set(rows_by_kind) | set(counters)):
        c = counters.get(kind, {})
        events[kind] = {
            "rows": rows_by_kind.get(kind, 0),
            "seen": c.get("seen"),
            "lost": c.get("lost", 0),
            "lost_per_cpu": c.get("lost_per_cpu", []),
        }
    return {
        "format_version": meta.get("format_version"),
        "bpfcap_version": meta.get("bpfcap_version"),
        "host": meta.get("host", {}),
        "command_line": meta.get("command_line", []),
        "start_realtime_ns": start + offset if start is not None else None,
        "end_realtime_ns": end + offset if end is not None else None,
        "utc_offset_s": clock.get("utc_offset_s", 0),
        "tz": clock.get("tz", "UTC"),
        "duration_s": (end - start) / 1e9 if start is not None and end is not None else None,
        "clean_stop": complete and bool(meta.get("clean_stop", False)),
        "stop_reason": meta.get("stop_reason"),
        "events": events,
        "lost": sum(e["lost"] or 0 for e in events.values()),
        "probes": meta.get("probes", []),
        "kernel_reads": kernel_reads(meta),
        "exec_strings": exec_strings,
        "missed_runs": meta.get("missed_runs", {}),
        "tree_filter_full": meta.get("tree_filter_full", 0),
        "settings": meta.get("settings", {}),
        "agent": meta.get("agent", {}),
        "processes_at_start": len(meta.get("processes", [])),
        "size_bytes": size,
        "files": files,
        # What made this trace from others (bpfcap slice, redact, merge), as recorded.
        "made_by": {k: meta[k] for k in ("slice", "redaction", "merge") if k in meta},
    }


def kernel_reads(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The kernel struct reads of the recording ("<type>.<read>": status `btf` or
    `missing`, reason, columns, and what it gives as `doc`), from `kernel_reads`; traces
    from before it had only tcp's byte counts, as settings.tcp_bytes."""
    from bpfcap.formats.events import BY_NAME

    reads = meta.get("kernel_reads")
    if not isinstance(reads, dict):
        tcp_bytes = meta.get("settings", {}).get("tcp_bytes")
        reads = {}
        if tcp_bytes is not None:
            ok = tcp_bytes == "btf"
            reads["tcp.bytes"] = {
                "status": "btf" if ok else "missing",
                "reason": "" if ok else str(tcp_bytes),
                "columns": ["rx_bytes", "tx_bytes"],
            }
    out = {}
    for key, r in reads.items():
        kind, _, name = key.partition(".")
        declared = [d for d in getattr(BY_NAME.get(kind), "kernel_reads", ()) if d.name == name]
        out[key] = dict(r, doc=declared[0].doc if declared else key)
    return out
