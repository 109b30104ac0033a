"""bpfcap against the floor, trace-cmd and perf on the same storm, in alternating runs.

    sudo .venv/bin/python bench/run.py [--opens N] [--execs N] [--runs R] [--no-peers]

See bench/README.md. Prints one table per workload: medians over R runs and ratios to
the baseline measured in the same run (the machine is noisy: compare ratios, not times).
"""

from __future__ import annotations

import argparse
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
b = BPF(text=text)
print("ready", flush=True)
signal.sigwait([signal.SIGINT, signal.SIGTERM])
print(sum(b["cnt"][0]), flush=True)
"""


@dataclass
class Run:
    seconds: float
    cpu_s: float = 0.0
    rss_mb: float = 0.0
    lost: int | None = None
    size: int | None = None
    extra: dict = field(default_factory=dict)


def sh(*cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def setup(peers: bool) -> list[str]:
    """Build the workload; install the peers. Returns notes on what is missing."""
    OUT.mkdir(exist_ok=True)
    sh("gcc", "-O2", "-o", STORM, HERE / "storm.c")
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


def storm(kind: str, n: int) -> float:
    r = sh(STORM, kind, n, capture_output=True, text=True)
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


def run_with(recorder: str, kind: str, n: int, tps: list[str]) -> Run:
    out = OUT / recorder
    if recorder == "baseline":
        return Run(storm(kind, n))
    if recorder == "floor":
        p = subprocess.Popen([VENV / "python", "-c", FLOOR, *tps], stdout=subprocess.PIPE)
        _wait_ready(p, b"ready", p.stdout, 0.5)
        secs = storm(kind, n)
        ru = _stop(p)
        p.stdout.close()
        return Run(secs, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024)
    if recorder == "bpfcap":
        path = OUT / f"bpfcap-{kind}.parquet"
        ev = {"open": "open", "exec": "exec", "getppid": "syscall"}[kind]
        p = subprocess.Popen(
            [VENV / "bpfcap", "record", "-e", ev, "-o", path, "--force"], stderr=subprocess.PIPE
        )
        _wait_ready(p, b"Recording", p.stderr, 0.5)
        secs = storm(kind, n)
        time.sleep(0.3)
        ru = _stop(p)
        p.stderr.close()
        meta = json.loads(
            __import__("pyarrow.parquet").parquet.read_metadata(path).metadata[b"bpfcap.meta"]
        )
        c = meta["events"][ev]
        agent = meta["agent"]
        # wait4 counts the recorder and its BPF compile helper (CPU); RSS is the
        # recorder's own, from the trace, and the helper's is shown apart.
        return Run(
            secs,
            ru.ru_utime + ru.ru_stime,
            agent["max_rss_kb"] / 1024,
            c["lost"],
            path.stat().st_size,
            {
                "rows": c["written"],
                "seen": c["seen"],
                "load_cpu_s": agent["bpf_compile_cpu_s"],
                "helper_rss_mb": agent["bpf_compile_max_rss_kb"] / 1024,
            },
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
        secs = storm(kind, n)
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
        secs = storm(kind, n)
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


def bench(kind: str, n: int, tp_events: int, recorders: list[str], runs: int) -> dict:
    tps = {
        "open": ["syscalls:sys_enter_openat", "syscalls:sys_exit_openat"],
        "exec": ["syscalls:sys_enter_execve", "syscalls:sys_exit_execve"],
        "getppid": ["raw_syscalls:sys_enter", "raw_syscalls:sys_exit"],
    }[kind]
    results: dict[str, list[Run]] = {r: [] for r in recorders}
    base: list[Run] = []
    for i in range(runs):
        order = recorders[i % len(recorders) :] + recorders[: i % len(recorders)]
        for rec in order:
            base.append(run_with("baseline", kind, n, tps))  # alternate: baseline, recorder
            results[rec].append(run_with(rec, kind, n, tps))
            print(
                f"  {kind} run {i + 1}/{runs} {rec:10s} {results[rec][-1].seconds:7.3f} s "
                f"(baseline {base[-1].seconds:.3f} s)",
                file=sys.stderr,
                flush=True,
            )
    b = statistics.median(r.seconds for r in base)
    rows = {}
    for rec, rs in results.items():
        med = statistics.median(r.seconds for r in rs)
        cpu = statistics.median(r.cpu_s for r in rs)
        last = rs[-1]
        row = {
            "slowdown": med / b,
            "seconds": med,
            "lost": max((r.lost or 0) for r in rs) if last.lost is not None else None,
            "cpu_s": cpu,
            "cpu_us_per_event": 1e6 * cpu / tp_events,
            "rss_mb": max(r.rss_mb for r in rs),
            "bytes_per_event": last.size / tp_events if last.size else None,
        }
        if rec == "bpfcap":
            steady = statistics.median(r.cpu_s - r.extra["load_cpu_s"] for r in rs)
            row["cpu_us_per_event_after_load"] = 1e6 * steady / tp_events
            row["rows"] = last.extra["rows"]
            row["compile_helper_rss_mb"] = max(r.extra["helper_rss_mb"] for r in rs)
            row["seen"] = last.extra["seen"]
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
        "| bytes/event on disk |"
    )
    print("|---|---|---|---|---|---|---|")
    for rec, r in res["recorders"].items():
        cpu = fmt(r["cpu_us_per_event"], ".3f")
        if "cpu_us_per_event_after_load" in r:
            cpu += f" ({r['cpu_us_per_event_after_load']:.3f} after BPF compile)"
        rss = f"{r['rss_mb']:.0f}"
        if "compile_helper_rss_mb" in r:
            rss += f" (BPF compile helper: {r['compile_helper_rss_mb']:.0f})"
        print(
            f"| {rec} | {r['slowdown']:.2f}x | {fmt(r['lost'], 'd')} | {r['cpu_s']:.2f} | "
            f"{cpu} | {rss} | {fmt(r['bytes_per_event'], '.2f')} |"
        )


def long_run(seconds: float) -> dict:
    """bpfcap recording an open storm that never stops, for `seconds`: its memory must stay
    flat (peak RSS from the trace) and nothing may be lost."""
    path = OUT / "bpfcap-long.parquet"
    p = subprocess.Popen(
        [VENV / "bpfcap", "record", "-e", "open", "-o", path, "--force"], stderr=subprocess.PIPE
    )
    _wait_ready(p, b"Recording", p.stderr, 0.5)
    t0 = time.monotonic()
    calls = 0
    while time.monotonic() - t0 < seconds:
        storm("open", 1_000_000)
        calls += 1_000_000
    ru = _stop(p)
    p.stderr.close()
    meta = json.loads(
        __import__("pyarrow.parquet").parquet.read_metadata(path).metadata[b"bpfcap.meta"]
    )
    c, agent = meta["events"]["open"], meta["agent"]
    return {
        "seconds": time.monotonic() - t0,
        "open_calls": calls,
        "rows": c["written"],
        "lost": c["lost"],
        "seen": c["seen"],
        "recorder_peak_rss_mb": agent["max_rss_kb"] / 1024,
        "compile_helper_rss_mb": agent["bpf_compile_max_rss_kb"] / 1024,
        "max_drain_gap_ms": agent["max_drain_gap_ms"],
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "bytes": path.stat().st_size,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--opens", type=int, default=2_000_000)
    ap.add_argument("--execs", type=int, default=3_000)
    ap.add_argument("--getppids", type=int, default=3_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--workloads",
        default="open,exec,getppid",
        help="comma list of open, exec, getppid (the syscall storm)",
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
    if a.long:
        setup(False)
        r = long_run(a.long)
        print(json.dumps(r, indent=2))
        (OUT / "long.json").write_text(json.dumps(r, indent=2))
        return
    notes = setup(not a.no_peers)
    peers = [] if a.no_peers or notes else ["trace-cmd", "perf"]
    wanted = a.workloads.split(",")
    results: dict = {}
    if "open" in wanted:
        results["open"] = bench("open", a.opens, 2 * a.opens, ["floor", "bpfcap", *peers], a.runs)
    if "exec" in wanted:
        results["exec"] = bench("exec", a.execs, 2 * a.execs, ["floor", "bpfcap"], a.runs)
    if "getppid" in wanted:
        # raw_syscalls system-wide: every syscall of every process (the recorders' own too,
        # except bpfcap's, which it never records).
        results["getppid"] = bench(
            "getppid", a.getppids, 2 * a.getppids, ["floor", "bpfcap", *peers], a.runs
        )
    reports = {}
    trace = OUT / "bpfcap-open.parquet"
    if "open" in wanted:
        reports["bpfcap report opensnoop"] = timed([VENV / "bpfcap", "report", "opensnoop", trace])
        if "trace-cmd" in peers:
            reports["trace-cmd report"] = timed(
                ["trace-cmd", "report", "-i", OUT / "trace-cmd.dat"]
            )
        if "perf" in peers:
            reports["perf script"] = timed(["perf", "script", "-i", OUT / "perf.data"])

    print(
        f"# bpfcap bench, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
        f"kernel {os.uname().release}, {a.runs} alternating runs, medians"
    )
    for n in notes:
        print(f"note: {n}")
    titles = {
        "open": f"openat+close storm, {a.opens:,} calls",
        "exec": f"fork+exec storm, {a.execs:,} execs",
        "getppid": f"getppid storm (-e syscall), {a.getppids:,} calls",
    }
    for kind, res in results.items():
        print_table(titles[kind], res)
    if reports:
        print("\n## file to text (same traces as above)")
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
