"""What each BPF helper bpfcap's open probes use costs on this kernel, per call:

    sudo .venv/bin/python bench/bpf_costs.py [--opens N]

Attaches one small program per variant to sys_enter/sys_exit_openat, runs the openat
storm, and prints the kernel's own run-time statistics (kernel.bpf_stats_enabled):
nanoseconds per run of each program. The `empty` row is the fixed cost of any program
there (stats included); each other row adds one helper to it. This is the profile behind
bpfcap's slowdown (bench/README.md): fentry and kprobes are unavailable here, so the
programs cannot be profiled from the inside.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STORM = ROOT / "bench" / "out" / "storm"

PRELUDE = """
struct st { u64 ts; const char *fn; };
BPF_TASK_STORAGE(ss, struct st);
BPF_PERCPU_ARRAY(cnt, u64, 1);
struct slots { u64 n; char buf[64][256]; };
BPF_PERCPU_ARRAY(out, struct slots, 1);
"""
COUNT = "u32 k = 0; u64 *v = cnt.lookup(&k); if (v) *v += {};"
STASH = (
    "struct st *p = ss.task_storage_get((struct task_struct *)bpf_get_current_task_btf(),"
    " 0, BPF_LOCAL_STORAGE_GET_F_CREATE); if (p) p->fn = args->filename;"
)
TOUCH = (
    "struct st *p = ss.task_storage_get((struct task_struct *)bpf_get_current_task_btf(),"
    " 0, 0); if (p) p->ts = 1;"
)
READ = (
    "struct st *p = ss.task_storage_get((struct task_struct *)bpf_get_current_task_btf(),"
    " 0, 0); u32 k = 0; struct slots *o = out.lookup(&k); if (!p || !o) return 0;"
    " u32 i = o->n++ & 63; bpf_probe_read_user_str(&o->buf[i], 256, p->fn);"
)
# name: (sys_enter body, sys_exit body)
VARIANTS = {
    "empty": ("", ""),
    "percpu counter": (COUNT.format(1), COUNT.format(1)),
    "bpf_get_current_pid_tgid": (COUNT.format("bpf_get_current_pid_tgid()"),) * 2,
    "bpf_ktime_get_ns": (COUNT.format("bpf_ktime_get_ns()"),) * 2,
    "bpf_get_current_uid_gid": (COUNT.format("bpf_get_current_uid_gid()"),) * 2,
    "bpf_get_current_comm": ("u64 c[2]; bpf_get_current_comm(&c, 16); " + COUNT.format("c[0]"),)
    * 2,
    "task storage get": (STASH, TOUCH),
    "storage + read path (exit)": (STASH, READ),
}


def _storm_stats(opens: int) -> tuple[float, float]:
    """Run the storm with the kernel's BPF statistics on; ns per run of the programs on
    sys_enter_openat and sys_exit_openat that ran for it."""
    try:
        Path("/proc/sys/kernel/bpf_stats_enabled").write_text("1")
        subprocess.run([STORM, "open", str(opens)], check=True, capture_output=True)
        per_run = {}
        for p in json.loads(
            subprocess.run(
                ["bpftool", "prog", "show", "-j"], check=True, capture_output=True, text=True
            ).stdout
        ):
            if p.get("name", "").startswith("tracepoint__sy") and p.get("run_cnt", 0) >= opens:
                per_run[p["name"]] = p["run_time_ns"] / p["run_cnt"]
    finally:
        Path("/proc/sys/kernel/bpf_stats_enabled").write_text("0")
    enter_ns = next(v for k, v in per_run.items() if "enter" in k)
    exit_ns = next(v for k, v in per_run.items() if "exit" in k)
    return enter_ns, exit_ns


def run(name: str, enter: str, exit_: str, opens: int) -> tuple[float, float]:
    from bcc import BPF  # bench only; bpfcap itself loads BCC in a helper process

    text = PRELUDE
    text += f"TRACEPOINT_PROBE(syscalls, sys_enter_openat) {{ {enter} return 0; }}\n"
    text += f"TRACEPOINT_PROBE(syscalls, sys_exit_openat) {{ {exit_} return 0; }}\n"
    b = BPF(text=text)
    try:
        return _storm_stats(opens)
    finally:
        b.cleanup()


def run_bpfcap(opens: int) -> tuple[float, float]:
    """bpfcap's own open programs, as `bpfcap record -e open` loads them."""
    out = STORM.parent / "bpf-costs.parquet"
    p = subprocess.Popen(
        [ROOT / ".venv" / "bin" / "bpfcap", "record", "-e", "open", "-o", out, "--force"],
        stderr=subprocess.PIPE,
    )
    try:
        for line in p.stderr:
            if b"Recording" in line:
                break
        else:
            raise RuntimeError("bpfcap record exited before recording")
        return _storm_stats(opens)
    finally:
        p.send_signal(signal.SIGINT)
        p.wait()
        p.stderr.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opens", type=int, default=1_000_000)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/bpf_costs.py needs root (it loads BPF programs)")
    if not STORM.exists():
        subprocess.run(["gcc", "-O2", "-o", STORM, STORM.with_suffix(".c")], check=True)
    print("| program | sys_enter ns/run | sys_exit ns/run |")
    print("|---|---|---|")
    for name, (enter, exit_) in VARIANTS.items():
        e, x = run(name, enter, exit_, a.opens)
        print(f"| {name} | {e:.0f} | {x:.0f} |", flush=True)
    e, x = run_bpfcap(a.opens)
    print(f"| bpfcap record -e open (its own programs) | {e:.0f} | {x:.0f} |", flush=True)


if __name__ == "__main__":
    main()
