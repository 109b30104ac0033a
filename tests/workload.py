"""A known workload for the end-to-end tests (and the sample trace): prime counts of
opens, failed opens, execs and failed execs, on paths and arguments unique to TAG.

    python tests/workload.py run TAG [--delay SECONDS] [--wait-stdin]

Opens DIR/bpfcap-wl-TAG-ok (which must exist) OK_OPENS times and
DIR/bpfcap-wl-TAG-missing MISSING_OPENS times, execs `/bin/true bpfcap-wl-TAG-exec-I`
EXECS times and the missing /nonexistent/bpfcap-wl-TAG FAILED_EXECS times. Prints
`pid=N` first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

OK_OPENS = 29
MISSING_OPENS = 23
EXECS = 31
FAILED_EXECS = 7
DIR = "/tmp"


def paths(tag: str) -> dict[str, str]:
    return {
        "ok": f"{DIR}/bpfcap-wl-{tag}-ok",
        "missing": f"{DIR}/bpfcap-wl-{tag}-missing",
        "exec_arg": f"bpfcap-wl-{tag}-exec-",
        "bad_exec": f"/nonexistent/bpfcap-wl-{tag}",
    }


def set_comm(name: str) -> None:
    """prctl(PR_SET_NAME): the task name the kernel reports (comm)."""
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(15, name.encode(), 0, 0, 0):
        sys.exit(f"prctl(PR_SET_NAME) failed: errno {ctypes.get_errno()}")


def run(tag: str, delay: float, wait_stdin: bool, comm: str | None = None) -> None:
    p = paths(tag)
    if comm:
        set_comm(comm)
    print(f"pid={os.getpid()}", flush=True)
    if wait_stdin:
        sys.stdin.readline()
    time.sleep(delay)
    for _ in range(OK_OPENS):
        os.close(os.open(p["ok"], os.O_RDONLY))
    for _ in range(MISSING_OPENS):
        try:
            os.open(p["missing"], os.O_RDONLY)
        except FileNotFoundError:
            pass
        else:
            sys.exit(f"{p['missing']} exists")
    for i in range(EXECS):
        subprocess.run(["/bin/true", f"{p['exec_arg']}{i}"], check=True)
    for _ in range(FAILED_EXECS):
        try:
            subprocess.run([p["bad_exec"], "x"])
        except FileNotFoundError:
            pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["run"])
    ap.add_argument("tag")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--wait-stdin", action="store_true", help="start after a line on stdin")
    ap.add_argument("--comm", help="task name to run under (prctl PR_SET_NAME)")
    a = ap.parse_args()
    run(a.tag, a.delay, a.wait_stdin, a.comm)


if __name__ == "__main__":
    main()
