"""`bpfcap summary TRACE` and `bpfcap diff A B`: each opens its trace(s), profiles them
(analyze/profile.py), builds its plain data (analyze/summary.py, analyze/diff.py) and
writes it as Markdown / text or JSON. The writers are here; no analysis."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import click

from .report import TIME_HELP

SUMMARY_FORMATS = ("md", "json")
BY_HOST_HELP = "Of a trace of several hosts (bpfcap merge): a page per host (JSON: a list of them)."
DIFF_FORMATS = ("text", "json")


@click.command(
    epilog="""\b
examples:
  bpfcap summary t.parquet                   # Markdown, to paste into an issue
  bpfcap summary t.parquet --since -10s      # the last ten seconds
  bpfcap summary t.parquet --format json --top 10
  bpfcap summary fleet.parquet --by-host     # a merged trace: one page per host"""
)
@click.argument("trace", type=click.Path(path_type=str))
@click.option("--since", metavar="TIME", help="Only events from TIME on: " + TIME_HELP)
@click.option("--until", metavar="TIME", help="Only events before TIME (same forms).")
@click.option(
    "--format", "fmt", type=click.Choice(SUMMARY_FORMATS), default="md", show_default=True
)
@click.option(
    "--top", type=click.IntRange(min=1), default=5, show_default=True, help="Rows per list."
)
@click.option("--by-host", is_flag=True, help=BY_HOST_HELP)
@click.option("--host", metavar="NAME", help="Only host NAME's events.")
def summary(
    trace: str,
    since: str | None,
    until: str | None,
    fmt: str,
    top: int,
    by_host: bool = False,
    host: str | None = None,
) -> None:
    """The first page to read about a trace, under a screenful: host and kernel, time
    window, events, loss and latency percentiles per type, top processes, failures by
    errno, slowest I/Os and opens, top system calls. Markdown (paste it into an issue)
    or JSON. Percentiles are within 0.8% (max exact)."""
    from bpfcap.analyze.profile import profile
    from bpfcap.analyze.summary import summary as build
    from bpfcap.formats.errors import UsageError
    from bpfcap.formats.merge import host_names
    from bpfcap.formats.trace import open_trace

    if by_host and host is not None:
        raise UsageError("--by-host and --host: choose one")
    t = open_trace(trace)
    names: list[str | None] = list(host_names(t.meta)) if by_host else [host]
    pages = [build(profile(_source(t, since, until, name), slowest=top), top) for name in names]
    if fmt == "json":
        _emit(json.dumps(pages if by_host else pages[0], indent=2))
        return
    lines: list[str] = []
    for name, page in zip(names, pages):
        if by_host:
            lines += [*([""] if lines else []), f"## host {shown(name)}", ""]
        lines += summary_markdown(page)
    _emit("\n".join(lines))


@click.command(
    epilog="""\b
examples:
  bpfcap diff before.parquet after.parquet
  bpfcap diff before.parquet after.parquet --top 10 --format json
  bpfcap diff a.parquet b.parquet --since 10s --until 70s   # the same minute of each"""
)
@click.argument("a", type=click.Path(path_type=str))
@click.argument("b", type=click.Path(path_type=str))
@click.option(
    "--since", metavar="TIME", help="In each trace, only events from TIME on: " + TIME_HELP
)
@click.option("--until", metavar="TIME", help="In each trace, only events before TIME.")
@click.option("--format", "fmt", type=click.Choice(DIFF_FORMATS), default="text", show_default=True)
@click.option(
    "--top", type=click.IntRange(min=1), default=5, show_default=True, help="Rows per list."
)
@click.option("--host", metavar="NAME", help="Only host NAME's events, in each trace.")
def diff(
    a: str, b: str, since: str | None, until: str | None, fmt: str, top: int, host: str | None
) -> None:
    """What changed from trace A to trace B (before and after an upgrade, say): events
    and events per second per type, latency percentiles per type and per key (comm,
    system call, disk), keys new in B or gone from it, the biggest movers, and
    biolatency/runqlat histograms side by side. --since/--until apply to both traces
    (each in its own time: `10s` is ten seconds after each one's start)."""
    from bpfcap.analyze.diff import diff as build
    from bpfcap.analyze.profile import profile
    from bpfcap.formats.trace import open_trace

    pa_, pb = (profile(_source(open_trace(t), since, until, host), slowest=0) for t in (a, b))
    d = build(pa_, pb, top)
    _emit(json.dumps(d, indent=2) if fmt == "json" else "\n".join(diff_text(d, top)))


def _source(trace: Any, since: str | None, until: str | None, host: str | None) -> Any:
    from bpfcap.analyze.report import Source

    return Source(trace, since=since, until=until, host=host)


def _emit(text: str) -> None:
    click.echo(text)


# -- formatting --------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shown(text: Any) -> str:
    """Recorded text for a terminal or a Markdown table: control characters as \\xNN
    (a name cannot forge a line), `|` escaped."""
    s = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    return s.replace("|", "\\|")


def duration(ns: int | float | None) -> str:
    """A latency for people: 850 ns, 12.3 us, 4.56 ms, 1.23 s; `-` when unknown."""
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            v = ns / scale
            return f"{v:.3g} {unit}" if v < 1000 else f"{v:.0f} {unit}"
    return f"{int(ns)} ns"


def number(n: int | float | None) -> str:
    if n is None:
        return "-"
    if isinstance(n, float):
        return f"{n:,.1f}" if n < 1e6 else f"{n:,.0f}"
    return f"{n:,}"


def times(r: float | None) -> str:
    """A ratio as x1.23 (`-` when unknown)."""
    return "-" if r is None else f"x{r:.3g}"


def _table(
    title: str, head: Sequence[str], rows: list[Sequence[Any]], right: set[int], more: int = 0
) -> list[str]:
    """A heading and a GitHub table (a heading ends the table before it: no blank lines
    needed, which keeps the page short); `more` rows left out are said in a last row."""
    if not rows:
        return []
    align = ["---:" if i in right else "---" for i in range(len(head))]
    out = [f"#### {title}"] if title else []
    out += ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    if more:
        out.append("| " + " | ".join([f"*and {more:,} more*"] + [""] * (len(head) - 1)) + " |")
    return out


def summary_markdown(s: dict[str, Any]) -> list[str]:
    """The summary (analyze.summary.summary()) as GitHub Markdown: at most about 60 lines
    with the default --top 5, whatever the trace (every list is cut)."""
    h, w = s["host"], s["window"]
    out = [
        f"### bpfcap summary of `{shown(s['trace'])}`",
        f"**host** {shown(h.get('hostname') or '?')} ({shown(h.get('machine') or '?')}, "
        f"{h.get('cpus') or '?'} CPUs), **kernel** {shown(h.get('kernel') or '?')}"
        + (f", {shown(h['os'])}" if h.get("os") else "")
        + (f"; bpfcap {shown(s['bpfcap_version'])}" if s.get("bpfcap_version") else "")
        + "  ",
        f"**time** {w['start']} to {w['end']}, {w['duration_s']:.3f} s"
        + (" (--since/--until window)" if w["windowed"] else "")
        + f"; **{s['events']:,} events**, {s['lost']:,} lost",
    ]
    warn = []
    if not s["complete"]:
        warn.append("**the recording did not stop cleanly**")
    empty = [t["type"] for t in s["types"] if not t["events"] and not t["lost"]]
    if s["not_recorded"] or empty:
        warn.append(
            "; ".join(
                x
                for x in (
                    "not recorded: " + ", ".join(s["not_recorded"]) if s["not_recorded"] else "",
                    "no events: " + ", ".join(empty) if empty else "",
                )
                if x
            )
        )
    notes = [shown(n) for n in s["notes"]]
    if s["more_notes"]:
        notes.append(f"and {s['more_notes']} more notes")
    if notes:
        warn.append("; ".join(notes))
    out += ["", *(f"> {line}  " for line in warn), ""] if warn else [""]

    out += _table(
        "",
        ["type", "events", "/s", "lost", "failed", "p50", "p90", "p99", "max"],
        [
            [
                t["type"],
                number(t["events"]),
                number(t["per_s"]),
                number(t["lost"]),
                number(t["failed"]),
                *(duration(t[k]) for k in ("p50_ns", "p90_ns", "p99_ns", "max_ns")),
            ]
            for t in s["types"]
            if t["events"] or t["lost"]
        ],
        set(range(1, 9)),
    )
    procs = s["processes"]
    out += _table(
        "top processes",
        ["pid", "comm", "events", "share"],
        [
            [p["pid"], shown(p["comm"]), number(p["events"]), f"{100 * p['share']:.1f}%"]
            for p in procs["top"]
        ],
        {0, 2, 3},
        procs["more"],
    )
    fails = s["failures"]
    out += _table(
        "failures",
        ["type", "errno", "syscall", "count"],
        [
            [f["type"], shown(f["errno"]), shown(f["syscall"] or ""), number(f["count"])]
            for f in fails["top"]
        ],
        {3},
        fails["more"],
    )
    sc = s["syscalls"]
    out += _table(
        "top system calls",
        ["syscall", "calls", "/s", "failed", "p50", "p99", "max"],
        [
            [
                shown(c["syscall"]),
                number(c["calls"]),
                number(c["per_s"]),
                number(c["failed"]),
                duration(c["p50_ns"]),
                duration(c["p99_ns"]),
                duration(c["max_ns"]),
            ]
            for c in sc["top"]
        ],
        set(range(1, 7)),
        sc["more"],
    )
    out += _table(
        "slowest block I/O",
        ["latency", "disk", "rwbs", "bytes", "pid", "comm"],
        [
            [
                duration(r["lat_ns"]),
                shown(r["disk"]),
                shown(r["rwbs"]),
                number(r["bytes"]),
                r["pid"],
                shown(r["comm"]),
            ]
            for r in s["slowest_io"]
        ],
        {0, 3, 4},
    )
    out += _table(
        "slowest opens",
        ["latency", "pid", "comm", "ret", "path"],
        [
            [
                duration(r["lat_ns"]),
                r["pid"],
                shown(r["comm"]),
                r["errno"] or r["ret"],
                f"`{shown(r['path'])}`" if r["path"] else "",
            ]
            for r in s["slowest_opens"]
        ],
        {0, 1},
    )
    return out


def diff_text(d: dict[str, Any], top: int) -> list[str]:
    """The diff (analyze.diff.diff()) as text: lists cut to `top` rows."""
    a, b = d["a"], d["b"]
    out = []
    for side, x in (("A", a), ("B", b)):
        h = x["host"]
        out.append(
            f"{side}: {shown(x['trace'])}: {shown(h.get('hostname') or '?')} "
            f"({shown(h.get('machine') or '?')}, kernel {shown(h.get('kernel') or '?')}), "
            f"{x['start']}, {x['duration_s']:.3f} s, {x['events']:,} events, {x['lost']:,} lost"
            + ("" if x["complete"] else ", did not stop cleanly")
        )
    if d["same"]:
        out.append("no change in events per second or p99 latency of any type (within 2%)")
    out += ["", "events per type:"]
    fmt = "  {:<8} {:>12} {:>12} {:>12} {:>12} {:>8}"
    out.append(fmt.format("type", "A events", "B events", "A /s", "B /s", "B/A"))
    for t in d["types"]:
        out.append(
            fmt.format(
                t["type"],
                number(t["a_events"]),
                number(t["b_events"]),
                number(t["a_per_s"]),
                number(t["b_per_s"]),
                times(t["rate_ratio"]),
            )
        )
    lat = [t for t in d["types"] if "a_p50_ns" in t and (t["a_events"] or t["b_events"])]
    if lat:
        out += ["", "latency per type (A -> B):"]
        out += _latency_lines([(t["type"], t) for t in lat])
    for what, key in (("rate (events/s)", "rate"), ("p99 latency", "p99")):
        movers = d["movers"][key]
        if not movers:
            continue
        out += ["", f"biggest movers by {what}:"]
        for m in movers:
            name = m["type"] if m["key"] is None else f"{m['type']} {m['column']}={shown(m['key'])}"
            if key == "rate":
                change = f"{number(m['a_per_s'])}/s -> {number(m['b_per_s'])}/s"
                r = m["rate_ratio"]
            else:
                change = f"{duration(m['a_p99_ns'])} -> {duration(m['b_p99_ns'])}"
                r = m["p99_ratio"]
            out.append(f"  {name:<36} {change:<32} {times(r)}")
    keys = d["keys"]
    if keys:
        out += [
            "",
            f"latency per key, most events first (A -> B; {len(keys):,} keys on both sides):",
        ]
        out += _latency_lines(
            [(f"{k['type']} {k['column']}={shown(k['key'])}", k) for k in keys[:top]]
        )
        if len(keys) > top:
            out.append(f"  and {len(keys) - top:,} more")
    for what, lst in (("new in B", d["new"]), ("gone from B (only in A)", d["vanished"])):
        if lst:
            out += ["", f"{what}:"]
            for k in lst[:top]:
                out.append(f"  {k['type']} {k['column']}={shown(k['key'])}: {k['events']:,} events")
            if len(lst) > top:
                out.append(f"  and {len(lst) - top:,} more")
    for kind, h in d["histograms"].items():
        out += ["", f"{kind} latency (as {'biolatency' if kind == 'bio' else 'runqlat'}):"]
        out += log2_side_by_side(h["a"], h["b"], "usecs")
    return out


def _latency_lines(items: list[tuple[str, dict[str, Any]]]) -> list[str]:
    fmt = "  {:<34} {:>21} {:>21} {:>21} {:>21}"
    out = [fmt.format("", "p50", "p90", "p99", "max")]
    for name, t in items:
        cells = []
        for k in ("p50", "p90", "p99", "max"):
            cells.append(
                f"{duration(t.get(f'a_{k}_ns'))} -> {duration(t.get(f'b_{k}_ns'))}"
                if t.get(f"a_{k}_ns") is not None or t.get(f"b_{k}_ns") is not None
                else "-"
            )
        out.append(fmt.format(name[:34], *cells))
    return out


def log2_side_by_side(a: Sequence[int], b: Sequence[int], val_type: str) -> list[str]:
    """Two BCC log2 histograms (slot i counts values of bit length i; slot 0 unused) in
    print_log2_hist's layout, with a count and a distribution column for each."""
    last = max((i for i, v in enumerate(list(a) + [0]) if v), default=0)
    last = max(last, max((i for i, v in enumerate(list(b) + [0]) if v), default=0))
    if last <= 0:
        return []
    width = 20
    top_a, top_b = max(a, default=0), max(b, default=0)
    out = [f"     {val_type:<19} : {'A':<8} {'B':<8} {'A distribution':<22} B distribution"]
    for i in range(1, last + 1):
        low, high = (1 << i) >> 1, (1 << i) - 1
        if low == high:
            low -= 1
        va = a[i] if i < len(a) else 0
        vb = b[i] if i < len(b) else 0
        sa = "*" * (int(width * va / top_a) if top_a else 0)
        sb = "*" * (int(width * vb / top_b) if top_b else 0)
        out.append(f"{low:>10} -> {high:<10} : {va:<8} {vb:<8} |{sa:<20}| |{sb:<20}|")
    return out
