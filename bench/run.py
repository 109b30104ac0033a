"""bpfcap against the floor, trace-cmd and perf on the same storm, in alternating runs.

    sudo .venv/bin/python bench/run.py [--opens N] [--execs N] [--getppids N] [--runs R]
        [--no-peers] [--workloads open,getppid,exec,types,hog] [--long SECONDS]

See bench/README.md. Prints one table per workload: medians over R runs and ratios to
the baseline measured in the same run (the machine is noisy: compare ratios, not times).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
STORM = OUT / "storm"
VENV = ROOT / ".venv" / "bin"
PACKAGE_DIRS = ("capture", "formats", "analyze", "cli")
TRACEFS = Path("/sys/kernel/tracing")
# trace-cmd 3.1 writes these function-tracer knobs and stops on EPERM on this kind of VM;
# in a private mount namespace they are replaced by scratch files (events are unaffected).
FTRACE_KNOBS = [
    "/proc/sys/kernel/ftrace_enabled",
    "/sys/kernel/tracing/set_ftrace_pid",
    "/sys/kernel/tracing/set_ftrace_filter",
    "/sys/kernel/tracing/set_ftrace_notrace",
    "/sys/kernel/tracing/set_graph_function",
    "/sys/kernel/tracing/set_graph_notrace",
]

FLOOR = r"""
import signal, sys
from bcc import BPF
tps = sys.argv[1:]
text = "BPF_PERCPU_ARRAY(cnt, u64, 1);\n" + "".join(
    f"TRACEPOINT_PROBE({tp.split(':')[0]}, {tp.split(':')[1]}) "
    "{ u32 k = 0; u64 *v = cnt.lookup(&k); if (v) *v += 1; return 0; }\n" for tp in tps)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT, signal.SIGTERM])
b = BPF(text=text)
print("ready", flush=True)
signal.sigwait([signal.SIGINT, signal.SIGTERM])
print(sum(b["cnt"][0]), flush=True)
"""


# What run_with() records with for each bpfcap variant: the command (before -o), by the
# event type of the workload (None: no -e, the default types).
BPFCAP_VARIANTS = ("bpfcap", "bpfcap-default", "bpfcap-dummy")
EVENT_OF = {"open": "open", "exec": "exec", "getppid": "syscall"}
TRACEPOINTS = {
    "open": ["syscalls:sys_enter_openat", "syscalls:sys_exit_openat"],
    "exec": ["syscalls:sys_enter_execve", "syscalls:sys_exit_execve"],
    "getppid": ["raw_syscalls:sys_enter", "raw_syscalls:sys_exit"],
}
PR_SET_PDEATHSIG = 1


def bpfcap_cmd(recorder: str, ev: str) -> list:
    if recorder == "bpfcap":
        return [VENV / "bpfcap", "record", "-e", ev]
    if recorder == "bpfcap-default":
        return [VENV / "bpfcap", "record"]
    if recorder == "bpfcap-dummy":
        # the same CLI, with 4 more types in the registry (bench/dummy_types.py)
        return [VENV / "python", HERE / "dummy_types.py", "record", "-e", ev]
    raise ValueError(recorder)


def label(recorder: str, ev: str) -> str:
    return {
        "bpfcap": f"bpfcap -e {ev}",
        "bpfcap-default": "bpfcap (default types)",
        "bpfcap-dummy": f"bpfcap -e {ev}, +4 dummy types",
    }.get(recorder, recorder)


@dataclass
class Run:
    seconds: float
    cpu_s: float = 0.0
    rss_mb: float = 0.0
    lost: int | None = None
    size: int | None = None
    extra: dict = field(default_factory=dict)


# Recorders start as from an installed package: with bytecode caches. A shell that sets
# PYTHONDONTWRITEBYTECODE (some sandboxes and CI images do) would otherwise have every
# bpfcap start compile its modules from source (~0.1 s CPU, counted as the recorder's).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def sh(*cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def setup(peers: bool) -> list[str]:
    """Build the workload; install the peers. Returns notes on what is missing."""
    OUT.mkdir(exist_ok=True)
    sh("gcc", "-O2", "-o", STORM, HERE / "storm.c")
    # Bytecode caches written now, not by the first measured run.
    sh(VENV / "python", "-m", "compileall", "-q", *(ROOT / d for d in PACKAGE_DIRS))
    notes = []
    if peers:
        want = [
            p
            for p, b in (("trace-cmd", "trace-cmd"), ("linux-perf", "perf"))
            if shutil.which(b) is None
        ]
        if want:
            r = subprocess.run(["apt-get", "install", "-y", "-q", *want], capture_output=True)
            if r.returncode:
                notes.append(f"could not install {' '.join(want)}: peers skipped")
    return notes


def _pin(cpu: int | None):
    return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))


def storm(kind: str, n: int, cpu: int | None = None) -> float:
    """Run the workload (pinned to `cpu` if given); its own elapsed seconds."""
    r = sh(STORM, kind, n, capture_output=True, text=True, preexec_fn=_pin(cpu))
    return float(r.stdout)


def _wait_ready(p: subprocess.Popen, marker: bytes | None, stream, min_s: float) -> None:
    t0 = time.monotonic()
    if marker is not None:
        buf = b""
        while marker not in buf:
            line = stream.readline()
            if not line:
                raise RuntimeError(f"{p.args} exited before it was ready: {buf!r}")
            buf += line
    time.sleep(max(0.0, min_s - (time.monotonic() - t0)))


def _stop(p: subprocess.Popen) -> resource.struct_rusage:
    os.kill(p.pid, signal.SIGINT)
    _, _, ru = os.wait4(p.pid, 0)
    p.returncode = 0
    return ru


def trace_facts(path: Path) -> dict:
    """What a bpfcap trace says about its recording: counts summed over every kind it
    recorded, the recorder's own figures (agent), and its schema's width."""
    import pyarrow.parquet as pq

    md = pq.read_metadata(path)
    meta = json.loads(md.metadata[b"bpfcap.meta"])
    events, agent = meta["events"], meta["agent"]
    hw, ring = agent.get("ring_high_water_bytes"), agent.get("ringbuf_bytes")
    names = md.schema.to_arrow_schema().names
    return {
        "rows": sum(c["written"] for c in events.values()),
        "seen": sum(c["seen"] for c in events.values()),
        "lost": sum(c["lost"] for c in events.values()),
        "over_limit": sum(c.get("over_limit", 0) for c in events.values()),
        "rows_by_kind": {k: c["written"] for k, c in events.items()},
        "lost_by_kind": {k: c["lost"] for k, c in events.items() if c["lost"]},
        "rss_mb": agent["max_rss_kb"] / 1024,
        "load_cpu_s": agent["bpf_compile_cpu_s"],
        "helper_rss_mb": agent["bpf_compile_max_rss_kb"] / 1024,
        "max_drain_gap_ms": agent.get("max_drain_gap_ms"),
        "ring_high_water_pct": 100 * hw / ring if hw is not None and ring else None,
        "schema_columns": len(names),
        "dummy_columns": sum(n.startswith("dummy") for n in names),
    }


def run_with(recorder: str, kind: str, n: int, tag: str, cpu: int | None = None) -> Run:
    """One storm of `kind` recorded by `recorder` (its files named after `tag`), the storm
    pinned to `cpu` if given (the recorders never are)."""
    tps = TRACEPOINTS[kind]
    out = OUT / f"{recorder}-{tag}"
    if recorder == "baseline":
        return Run(storm(kind, n, cpu))
    if recorder == "floor":
        p = subprocess.Popen([VENV / "python", "-c", FLOOR, *tps], stdout=subprocess.PIPE)
        _wait_ready(p, b"ready", p.stdout, 0.5)
        secs = storm(kind, n, cpu)
        ru = _stop(p)
        p.stdout.close()
        return Run(secs, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024)
    if recorder in BPFCAP_VARIANTS:
        path = out.with_suffix(".parquet")
        p = subprocess.Popen(
            [*bpfcap_cmd(recorder, EVENT_OF[kind]), "-o", path, "--force"],
            stderr=subprocess.PIPE,
        )
        _wait_ready(p, b"Recording", p.stderr, 0.5)
        secs = storm(kind, n, cpu)
        time.sleep(0.3)
        ru = _stop(p)
        p.stderr.close()
        facts = trace_facts(path)
        # wait4 counts the recorder and its BPF compile helper (CPU); RSS is the
        # recorder's own, from the trace, and the helper's is shown apart.
        return Run(
            secs,
            ru.ru_utime + ru.ru_stime,
            facts.pop("rss_mb"),
            facts.pop("lost"),
            path.stat().st_size,
            facts,
        )
    if recorder == "trace-cmd":
        path = out.with_suffix(".dat")
        events = [a for tp in tps for a in ("-e", tp)]
        script = "".join(
            f'[ -e {k} ] && {{ cat {k} > "$d/{i}" 2>/dev/null; mount --bind "$d/{i}" {k}; }}; '
            for i, k in enumerate(FTRACE_KNOBS)
        )
        cmd = [
            "unshare",
            "-m",
            "sh",
            "-c",
            f'd=$(mktemp -d); {script} exec "$@"',
            "sh",
            "trace-cmd",
            "record",
            "-b",
            "1408",
            *events,
            "-o",
            str(path),
        ]
        # trace-cmd says nothing when it is ready (its "Hit Ctrl^C" line is buffered).
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1.5)
        secs = storm(kind, n, cpu)
        ru = _stop(p)
        tail = p.stdout.read().decode(errors="replace")
        p.stdout.close()
        stat = subprocess.run(
            ["trace-cmd", "report", "--stat", "-i", path], capture_output=True, text=True
        ).stdout
        lost = sum(
            int(ln.split(":")[1]) for ln in stat.splitlines() if ln.strip().startswith("overrun:")
        )
        return Run(
            secs,
            ru.ru_utime + ru.ru_stime,
            ru.ru_maxrss / 1024,
            lost,
            path.stat().st_size,
            {"log": tail[-300:]},
        )
    if recorder == "perf":
        path = out.with_suffix(".data")
        events = [a for tp in tps for a in ("-e", tp)]
        p = subprocess.Popen(
            ["perf", "record", "-a", *events, "-o", path],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        time.sleep(1.5)
        secs = storm(kind, n, cpu)
        ru = _stop(p)
        err = p.stderr.read().decode(errors="replace")
        p.stderr.close()
        lost = 0
        for ln in err.splitlines():
            if "lost" in ln and "chunks" in ln:
                lost += int(ln.split("lost")[1].split()[0])
        return Run(secs, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, lost, path.stat().st_size)
    raise ValueError(recorder)


def timed(cmd: list) -> tuple[float, int]:
    """Seconds and peak RSS (MB) of a command, output discarded."""
    t0 = time.monotonic()
    p = subprocess.Popen(
        [str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - t0, ru.ru_maxrss // 1024


def _max(values) -> float | None:
    """The largest of the values given (None where a recorder did not report one)."""
    known = [v for v in values if v is not None]
    return max(known) if known else None


def bench(
    kind: str,
    n: int,
    tp_events: int,
    recorders: list[str],
    runs: int,
    tag: str | None = None,
    cpu: int | None = None,
) -> dict:
    tag = tag or kind
    results: dict[str, list[Run]] = {r: [] for r in recorders}
    base: list[Run] = []
    for i in range(runs):
        order = recorders[i % len(recorders) :] + recorders[: i % len(recorders)]
        for rec in order:
            base.append(run_with("baseline", kind, n, tag, cpu))  # alternate: baseline, recorder
            results[rec].append(run_with(rec, kind, n, tag, cpu))
            print(
                f"  {tag} run {i + 1}/{runs} {rec:14s} {results[rec][-1].seconds:7.3f} s "
                f"(baseline {base[-1].seconds:.3f} s)",
                file=sys.stderr,
                flush=True,
            )
    b = statistics.median(r.seconds for r in base)
    rows = {}
    for rec, rs in results.items():
        med = statistics.median(r.seconds for r in rs)
        cpu_s = statistics.median(r.cpu_s for r in rs)
        last = rs[-1]
        row = {
            "label": label(rec, EVENT_OF[kind]),
            "slowdown": med / b,
            "seconds": med,
            "lost": max((r.lost or 0) for r in rs) if last.lost is not None else None,
            "cpu_s": cpu_s,
            "cpu_us_per_event": 1e6 * cpu_s / tp_events,
            "rss_mb": max(r.rss_mb for r in rs),
            "bytes_per_event": last.size / tp_events if last.size else None,
        }
        if rec in BPFCAP_VARIANTS:
            steady = statistics.median(r.cpu_s - r.extra["load_cpu_s"] for r in rs)
            row["cpu_us_per_event_after_load"] = 1e6 * steady / tp_events
            row["compile_helper_rss_mb"] = max(r.extra["helper_rss_mb"] for r in rs)
            row["max_drain_gap_ms"] = _max(r.extra["max_drain_gap_ms"] for r in rs)
            row["ring_high_water_pct"] = _max(r.extra["ring_high_water_pct"] for r in rs)
            for k in ("rows", "seen", "over_limit", "rows_by_kind", "lost_by_kind"):
                row[k] = last.extra[k]
            row["schema_columns"] = last.extra["schema_columns"]
            row["dummy_columns"] = last.extra["dummy_columns"]
            # written + lost == seen for every kind (capture/bpf/common.h), per run
            row["counts_add_up"] = all(
                r.extra["rows"] + r.extra["over_limit"] + r.lost == r.extra["seen"] for r in rs
            )
        rows[rec] = row
    return {"baseline_s": b, "tracepoint_events": tp_events, "recorders": rows}


def fmt(v, spec) -> str:
    return "-" if v is None else format(v, spec)


def print_table(title: str, res: dict) -> None:
    print(
        f"\n## {title}: baseline {res['baseline_s']:.3f} s, "
        f"{res['tracepoint_events']:,} tracepoint events per run"
    )
    print(
        "| recorder | slowdown | lost | recorder CPU s | CPU us/event | peak RSS MB "
        "| bytes/event on disk | max drain gap ms | ring high-water % |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    notes = []
    for r in res["recorders"].values():
        cpu = fmt(r["cpu_us_per_event"], ".3f")
        if "cpu_us_per_event_after_load" in r:
            cpu += f" ({r['cpu_us_per_event_after_load']:.3f} after BPF compile)"
        rss = f"{r['rss_mb']:.0f}"
        if "compile_helper_rss_mb" in r:
            rss += f" (BPF compile helper: {r['compile_helper_rss_mb']:.0f})"
        gap, hw = r.get("max_drain_gap_ms"), r.get("ring_high_water_pct")
        print(
            f"| {r['label']} | {r['slowdown']:.2f}x | {fmt(r['lost'], 'd')} | {r['cpu_s']:.2f} | "
            f"{cpu} | {rss} | {fmt(r['bytes_per_event'], '.2f')} | {fmt(gap, '.1f')} | "
            f"{fmt(hw, '.1f')} |"
        )
        if "rows" in r:
            kinds = ", ".join(f"{k} {v:,}" for k, v in r["rows_by_kind"].items() if v)
            lost = ", ".join(f"{k} {v:,}" for k, v in r["lost_by_kind"].items())
            notes.append(
                f"{r['label']}: {r['rows']:,} rows ({kinds or 'none'}) of {r['seen']:,} seen"
                + (f", lost: {lost}" if lost else "")
                + ("" if r["counts_add_up"] else "; rows + lost != seen!")
            )
    if notes:
        print("\nrows written (last run):")
        for note in notes:
            print(f"* {note}")


def print_types(title: str, res: dict) -> None:
    a, b = res["recorders"]["bpfcap"], res["recorders"]["bpfcap-dummy"]
    print(
        f"\n## {title}: {a['schema_columns']} columns in the schema with today's registry, "
        f"{b['schema_columns']} with 4 dummy types ({b['dummy_columns']} dummy columns); "
        f"baseline {res['baseline_s']:.3f} s"
    )
    if not b["dummy_columns"]:
        print("WARNING: the dummy types are not in the trace's schema: this measures nothing")
    print("| registry | columns in schema | CPU us/event after BPF compile | slowdown |")
    print("|---|---|---|---|")
    for name, r in (("today's types", a), ("+ dummy1..4, 10 columns each", b)):
        print(
            f"| {name} | {r['schema_columns']} | {r['cpu_us_per_event_after_load']:.3f} | "
            f"{r['slowdown']:.2f}x |"
        )
    ratio = b["cpu_us_per_event_after_load"] / a["cpu_us_per_event_after_load"]
    res["cpu_ratio_dummy_to_today"] = ratio
    print(f"\nCPU after BPF compile, with dummy types / today's: {ratio:.2f}")
    for r in (a, b):
        if r["lost"]:
            print(f"note: {r['label']} lost {r['lost']:,} events")


def start_hog(cpu: int) -> subprocess.Popen:
    """A busy loop pinned to `cpu`, killed with us if we die (PR_SET_PDEATHSIG)."""

    def pre() -> None:
        os.sched_setaffinity(0, {cpu})
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    return subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=pre)


def stop_hog(p: subprocess.Popen) -> float:
    """Kill the hog; the CPU seconds it got."""
    if p.returncode is None:
        os.kill(p.pid, signal.SIGKILL)
        _, _, ru = os.wait4(p.pid, 0)
        p.returncode = -signal.SIGKILL
        return ru.ru_utime + ru.ru_stime
    return 0.0


def hog_bench(n: int, recorders: list[str], runs: int) -> dict:
    """The open storm on CPU 0 while a busy loop holds CPU 1, baselines included."""
    hog = start_hog(1)
    t0 = time.monotonic()
    try:
        res = bench("open", n, 2 * n, recorders, runs, tag="hog", cpu=0)
    finally:
        wall = time.monotonic() - t0
        hog_cpu = stop_hog(hog)
    res["hog"] = {"storm_cpu": 0, "hog_cpu": 1, "hog_cpu_s": hog_cpu, "wall_s": wall}
    return res


def long_run(seconds: float) -> dict:
    """bpfcap recording an open storm that never stops, for `seconds`: its memory must stay
    flat (peak RSS from the trace) and nothing may be lost."""
    path = OUT / "bpfcap-long.parquet"
    p = subprocess.Popen(
        [*bpfcap_cmd("bpfcap", "open"), "-o", path, "--force"], stderr=subprocess.PIPE
    )
    _wait_ready(p, b"Recording", p.stderr, 0.5)
    t0 = time.monotonic()
    calls = 0
    while time.monotonic() - t0 < seconds:
        storm("open", 1_000_000)
        calls += 1_000_000
    ru = _stop(p)
    p.stderr.close()
    f = trace_facts(path)
    return {
        "seconds": time.monotonic() - t0,
        "open_calls": calls,
        "rows": f["rows"],
        "rows_by_kind": f["rows_by_kind"],
        "lost": f["lost"],
        "seen": f["seen"],
        "recorder_peak_rss_mb": f["rss_mb"],
        "compile_helper_rss_mb": f["helper_rss_mb"],
        "max_drain_gap_ms": f["max_drain_gap_ms"],
        "ring_high_water_pct": f["ring_high_water_pct"],
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "bytes": path.stat().st_size,
    }


WORKLOADS = ("open", "getppid", "exec", "types", "hog")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--opens", type=int, default=2_000_000)
    ap.add_argument("--execs", type=int, default=3_000)
    ap.add_argument("--getppids", type=int, default=3_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="comma list of open, getppid (the syscall storm), exec, types (per-type cost: "
        "-e open with 4 dummy types in the registry), hog (open storm against a CPU hog)",
    )
    ap.add_argument("--no-peers", action="store_true", help="only baseline, floor, bpfcap")
    ap.add_argument(
        "--long",
        type=float,
        metavar="SECONDS",
        help="only: record a never-ending open storm this long (memory check)",
    )
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/run.py needs root (it records)")
    wanted = a.workloads.split(",")
    unknown = [w for w in wanted if w not in WORKLOADS]
    if unknown:
        sys.exit(f"unknown workload {', '.join(unknown)}: choose from {', '.join(WORKLOADS)}")
    # SIGTERM unwinds like Ctrl-C, so that the hog is killed (finally) on either.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.long:
        setup(False)
        r = long_run(a.long)
        print(json.dumps(r, indent=2))
        (OUT / "long.json").write_text(json.dumps(r, indent=2))
        return
    notes = setup(not a.no_peers)
    peers = [] if a.no_peers or notes else ["trace-cmd", "perf"]
    results: dict = {}
    if "open" in wanted:
        results["open"] = bench(
            "open", a.opens, 2 * a.opens, ["floor", "bpfcap", "bpfcap-default", *peers], a.runs
        )
    if "getppid" in wanted:
        # raw_syscalls system-wide: every syscall of every process (the recorders' own too,
        # except bpfcap's, which it never records).
        results["getppid"] = bench(
            "getppid", a.getppids, 2 * a.getppids, ["floor", "bpfcap", *peers], a.runs
        )
    if "exec" in wanted:
        results["exec"] = bench("exec", a.execs, 2 * a.execs, ["floor", "bpfcap"], a.runs)
    if "types" in wanted:
        results["types"] = bench(
            "open", a.opens, 2 * a.opens, ["bpfcap", "bpfcap-dummy"], a.runs, tag="types"
        )
    if "hog" in wanted:
        if (os.cpu_count() or 1) < 2:
            notes.append("hog: needs 2 CPUs (the storm on CPU 0, the hog on CPU 1): skipped")
        else:
            hog_recs = ["floor", "bpfcap", *(["trace-cmd"] if "trace-cmd" in peers else [])]
            results["hog"] = hog_bench(a.opens, hog_recs, a.runs)
    reports = {}
    if "open" in wanted:
        trace = OUT / "bpfcap-open.parquet"
        reports["bpfcap report opensnoop"] = timed([VENV / "bpfcap", "report", "opensnoop", trace])
        if "trace-cmd" in peers:
            reports["trace-cmd report"] = timed(
                ["trace-cmd", "report", "-i", OUT / "trace-cmd-open.dat"]
            )
        if "perf" in peers:
            reports["perf script"] = timed(["perf", "script", "-i", OUT / "perf-open.data"])

    print(
        f"# bpfcap bench, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
        f"kernel {os.uname().release}, {a.runs} alternating runs, medians"
    )
    for n in notes:
        print(f"note: {n}")
    titles = {
        "open": f"openat+close storm, {a.opens:,} calls",
        "getppid": f"getppid storm (-e syscall), {a.getppids:,} calls",
        "exec": f"fork+exec storm, {a.execs:,} execs",
        "hog": f"openat+close storm on CPU 0 against a CPU hog on CPU 1, {a.opens:,} calls "
        "(baseline: the same hog)",
    }
    for kind, res in results.items():
        if kind == "types":
            print_types(f"per-type cost, -e open, {a.opens:,} calls", res)
            continue
        print_table(titles[kind], res)
        if kind == "hog":
            h, b = res["hog"], res["recorders"]["bpfcap"]
            print(
                f"\nhog: {h['hog_cpu_s']:.1f} CPU s over {h['wall_s']:.1f} s on CPU {h['hog_cpu']} "
                f"({100 * h['hog_cpu_s'] / h['wall_s']:.0f}%)"
            )
            verdict = "OK" if b["lost"] == 0 else "FAILED"
            res["bpfcap_lost_nothing"] = b["lost"] == 0
            print(f"bpfcap -e open under the hog: lost {b['lost']:,} (must be 0): {verdict}")
    if reports:
        print("\n## file to text (the open storm's traces above)")
        print("| command | seconds | peak RSS MB |")
        print("|---|---|---|")
        for name, (secs, rss) in reports.items():
            print(f"| {name} | {secs:.2f} | {rss} |")
    if "trace-cmd report" in reports:
        ratio = reports["bpfcap report opensnoop"][0] / reports["trace-cmd report"][0]
        print(f"\nbpfcap opensnoop / trace-cmd report time: {ratio:.2f}")
    (OUT / "results.json").write_text(
        json.dumps({**results, "reports": reports, "notes": notes}, indent=2)
    )


if __name__ == "__main__":
    main()
