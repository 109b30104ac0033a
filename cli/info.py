"""`bpfcap info`."""

from __future__ import annotations

import json
import shlex
import time

import click


@click.command(
    epilog="""\b
examples:
  bpfcap info t.parquet
  bpfcap info t.parquet.partial        # segments left by a recorder that was killed
  bpfcap info --format json t.parquet
  bpfcap info --types                  # event types, hooks, columns"""
)
@click.argument("trace", required=False)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--types", is_flag=True, help="List the event types and their columns instead.")
@click.pass_context
def info(ctx: click.Context, trace: str | None, fmt: str, types: bool) -> None:
    """What a trace holds: host, kernel, time span, events per type, lost events, probes
    attached or missing (with why), format version and size. Control characters in what
    the file says (a hostile hostname) are printed escaped, as \\xNN."""
    from bpfcap.analyze.info import summarize
    from bpfcap.cli.render import escaping_stdout
    from bpfcap.formats.errors import UsageError
    from bpfcap.formats.trace import open_trace, rows_by_kind

    escaping_stdout(ctx)

    if types:
        _types(fmt)
        return
    if trace is None:
        raise UsageError("missing TRACE", "give a trace file, or --types")
    t = open_trace(trace)
    rows = rows_by_kind(t)
    exec_strings = None
    if rows.get("exec"):
        from bpfcap.analyze.execsnoop import string_sources

        exec_strings = string_sources(t.read("exec", ["ret", "args_from", "args_unread"]))
    s = summarize(
        t.meta,
        rows,
        size=t.size,
        files=len(t.files),
        complete=t.complete,
        exec_strings=exec_strings,
    )
    s["notes"] = t.notes
    if fmt == "json":
        click.echo(json.dumps(s, indent=2, sort_keys=True))
        return
    for line in _text(str(t.path), s):
        click.echo(line)


def _when(ns, s) -> str:
    if ns is None:
        return "?"
    secs = ns / 1e9 + s["utc_offset_s"]
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(secs)) + (
        f".{int(ns % 1_000_000_000) // 1_000_000:03d} {s['tz']}"
    )


def _made_by(made: dict) -> list[str]:
    """What made the trace from others: a slice, a redaction, a merge."""
    out = []
    cut = made.get("slice")
    while cut:
        w, f = cut.get("window", {}), cut.get("filters", {})
        what = [f"{k} {w[k]}" for k in ("since", "until") if w.get(k) is not None]
        what += [f"{k} {','.join(map(str, v))}" for k, v in f.items() if v and k != "where"]
        what += [f"where {f['where']}"] if f.get("where") else []
        out.append(
            f"sliced:     from {str(cut.get('source_sha256'))[:16]}... ({'; '.join(what) or 'all'})"
        )
        cut = cut.get("of")
    if "redaction" in made:
        opts = made["redaction"].get("options") or {}
        kept = ", ".join(f"{k} {v}" for k, v in opts.items() if v)
        out.append(
            "redacted:   names, paths, arguments, users and addresses are pseudonyms"
            + (f" (kept: {kept})" if kept else "")
        )
    if "merge" in made:
        n = len(made["merge"].get("sources") or [])
        out.append(f"merged:     from {n} traces")
    return out


def _text(path: str, s: dict) -> list[str]:
    h = s["host"]
    shape = "one file" if s["files"] == 1 else f"{s['files']} segment files"
    out = [
        f"trace:      {path} (format {s['format_version']}, {s['size_bytes']} bytes, {shape})",
        f"host:       {h.get('hostname', '?')} ({h.get('os', '?')}, {h.get('machine', '?')}, "
        f"{h.get('cpus', '?')} CPUs)",
        f"kernel:     {h.get('kernel', '?')}",
        f"recorder:   bpfcap {s['bpfcap_version']}: {shlex.join(s['command_line'])}",
        f"start:      {_when(s['start_realtime_ns'], s)}",
        f"end:        {_when(s['end_realtime_ns'], s)}",
        "duration:   " + (f"{s['duration_s']:.3f} s" if s["duration_s"] is not None else "?"),
    ]
    if s["clean_stop"]:
        out.append(f"stopped:    cleanly ({s['stop_reason']})")
    else:
        out.append(
            "stopped:    NOT cleanly (recorder killed or crashed); this is what reached disk"
        )
    out.extend(_made_by(s["made_by"]))
    out.extend(f"note:       {n}" for n in s.get("notes", []))
    out.append(f"events:     {sum(e['rows'] for e in s['events'].values())} rows, {s['lost']} lost")
    for kind, e in s["events"].items():
        per_cpu = e["lost_per_cpu"] if e["lost"] else []
        per_cpu = f" (per CPU: {' '.join(map(str, per_cpu))})" if per_cpu else ""
        out.append(f"  {kind:<10} {e['rows']:>12} rows {e['lost'] or 0:>10} lost{per_cpu}")
    missed = s.get("missed_runs") or {}
    if missed:
        out.append(
            f"missed:     {sum(missed.values())} probe runs skipped by the kernel (another BPF "
            "program was running on that CPU): "
            + ", ".join(f"{k} {v}" for k, v in sorted(missed.items()))
        )
    if s.get("tree_filter_full"):
        out.append(
            f"missed:     {s['tree_filter_full']} new tasks of the command not followed "
            "(the process-tree filter was full): their events are not recorded"
        )
    out.append("probes:")
    for p in s["probes"]:
        why = f": {p['reason']}" if p.get("reason") else ""
        out.append(f"  {p['event']:<10} {p['status']:<9} {', '.join(p['tracepoints'])}{why}")
    if s["kernel_reads"]:
        out.append("kernel structs (offsets from the kernel's BTF):")
        for key, r in sorted(s["kernel_reads"].items()):
            cols = f" ({', '.join(r['columns'])})" if r.get("columns") else ""
            if r["status"] == "btf":
                out.append(f"  {key:<14} read{cols}")
            else:
                out.append(f"  {key:<14} NOT read{cols}: {r.get('reason', '')}")
    x = s["exec_strings"]
    if x and (x["from_image"] or x["unread"]):
        out.append(
            f"exec args:  {x['from_image']} of {x['execs']} execs had strings not resident "
            "in the caller at entry: read from the new program"
        )
        if x["unread"]:
            out.append(
                f"            {x['unread']} execs show {x['unread_strings']} strings empty "
                "(not resident, and no new program to read them from), as BCC would"
            )
    a = s["agent"]
    if a:
        out.append(
            f"agent:      {a.get('cpu_user_s', 0)} s user + {a.get('cpu_sys_s', 0)} s system CPU, "
            f"peak RSS {a.get('max_rss_kb', 0) // 1024} MiB"
        )
        if "bpf_compile_cpu_s" in a:
            out.append(
                f"            BPF compile+load (helper process): {a['bpf_compile_cpu_s']} s CPU, "
                f"peak RSS {a.get('bpf_compile_max_rss_kb', 0) // 1024} MiB, "
                f"{a.get('bpf_load_s', '?')} s"
            )
        if "max_drain_gap_ms" in a:
            ring = ""
            if a.get("ringbuf_bytes"):
                hw, size = a.get("ring_high_water_bytes", 0), a["ringbuf_bytes"]
                ring = (
                    f"; ring buffer filled to {hw / 2**20:.1f} of {size / 2**20:.0f} MiB "
                    f"at most ({100 * hw / size:.0f}%)"
                )
            out.append(f"            longest gap between drains {a['max_drain_gap_ms']} ms{ring}")
    out.append(f"processes:  {s['processes_at_start']} in the snapshot taken at start")
    return out


def _types(fmt: str) -> None:
    """The event types this bpfcap records: name, hooks, whether recorded by default,
    and each column with its type and meaning (docs/trace-format.md has the same)."""
    from bpfcap.formats.events import EVENT_TYPES

    listing = [
        {
            "type": t.name,
            "default": t.default,
            "doc": t.doc,
            "hooks": [tp for g in t.hooks for tp in g],
            "columns": [
                {"name": f.name, "type": str(f.arrow_type()), "unit": f.unit, "doc": f.doc}
                for f in t.columns
            ],
        }
        for t in EVENT_TYPES
    ]
    if fmt == "json":
        click.echo(json.dumps(listing, indent=2))
        return
    for t in listing:
        default = "" if t["default"] else " (only when asked for: -e TYPE or -e all)"
        click.echo(f"{t['type']}{default}: {t['doc']}")
        click.echo(f"  hooks: {', '.join(t['hooks'])}")
        for c in t["columns"]:
            unit = f" [{c['unit']}]" if c["unit"] else ""
            click.echo(f"  {c['name']:<16} {c['type']:<16} {c['doc']}{unit}")
        click.echo("")
