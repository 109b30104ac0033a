"""A known workload for the end-to-end tests (and the sample trace): prime counts of
opens, failed opens, execs and failed execs, on paths and arguments unique to TAG.

    python tests/workload.py run TAG [--wait-stdin] [--comm COMM]

Opens DIR/bpfcap-wl-TAG-ok (which must exist) OK_OPENS times and
DIR/bpfcap-wl-TAG-missing MISSING_OPENS times, execs `/bin/true bpfcap-wl-TAG-exec-I`
EXECS times and the missing /nonexistent/bpfcap-wl-TAG FAILED_EXECS times. Prints
`pid=N` first.

    python tests/workload.py kernel DIR [COMM]

The kernel components' workload (issue 4), as the task COMM (`bpfcap-wl4`, at most 10
bytes): GETPPIDS getppid() calls; KILLS kill(child, SIGUSR1); DIRECT_WRITES O_DIRECT 4 KiB
writes to a file in DIR (which must be on a block device), each followed by fsync;
TCP_CONNECTIONS loopback TCP connections; two CPU-bound processes (`COMM-spin`) pinned to
one CPU for run-queue waits, each until preempted SPIN_PREEMPTIONS times. Prints
`key=value` lines: pid, child, port, spinners, extents (the file's [first sector, sectors]
on its whole disk).
"""

from __future__ import annotations

import argparse
import mmap
import os
import resource
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


def run(tag: str, wait_stdin: bool, comm: str | None = None) -> None:
    p = paths(tag)
    if comm:
        set_comm(comm)
    print(f"pid={os.getpid()}", flush=True)
    if wait_stdin:
        sys.stdin.readline()
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


GETPPIDS = 4111
KILLS = 7
DIRECT_WRITES = 37
TCP_CONNECTIONS = 13
COMM = "bpfcap-wl4"
# Each spinner runs until the kernel has preempted it this many times (its involuntary
# context switches): a count, not a duration, so the run queue sees the same waits on an
# idle host and on one whose CPUs are taken by other, higher-priority work.
SPIN_PREEMPTIONS = 13
SPIN_LIMIT_S = 120  # only so that a broken scheduler cannot hang the suite


def _extents(fd: int) -> list[tuple[int, int]]:
    """[first sector, sectors] of the file's data on its whole disk (FIEMAP, plus the
    partition's start when the file system is on a partition)."""
    import fcntl
    import struct

    n = 16
    buf = bytearray(struct.pack("=QQLLLL", 0, 2**64 - 1, 1, 0, n, 0) + bytes(56 * n))
    fcntl.ioctl(fd, 0xC020660B, buf)  # FS_IOC_FIEMAP, FIEMAP_FLAG_SYNC
    mapped = struct.unpack_from("=L", buf, 20)[0]
    dev = os.fstat(fd).st_dev
    start = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/start"
    offset = int(open(start).read()) if os.path.exists(start) else 0
    out = []
    for i in range(mapped):
        _log, phys, length = struct.unpack_from("=QQQ", buf, 32 + 56 * i)
        out.append((offset + phys // 512, length // 512))
    return out


def _signals() -> int:
    """KILLS SIGUSR1 to a child that waits on a pipe; returns the child's pid."""
    import signal

    r, w = os.pipe()
    # Installed before the fork, so the child has it from its first instruction (the
    # default action would end it at the first signal).
    before = signal.signal(signal.SIGUSR1, lambda *_: None)
    child = os.fork()
    if child == 0:
        os.close(w)
        os.read(r, 1)  # interrupted by each signal, retried (PEP 475)
        os._exit(0)
    signal.signal(signal.SIGUSR1, before)
    os.close(r)
    for _ in range(KILLS):
        os.kill(child, signal.SIGUSR1)
    os.write(w, b"x")
    os.waitpid(child, 0)
    return child


def _direct_writes(directory: str) -> list[tuple[int, int]]:
    import mmap

    path = os.path.join(directory, f"bpfcap-wl4-{os.getpid()}.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_DIRECT, 0o600)
    try:
        os.posix_fallocate(fd, 0, DIRECT_WRITES * 4096)
        os.fsync(fd)
        buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT needs
        buf.write(b"b" * 4096)
        for i in range(DIRECT_WRITES):
            os.pwrite(fd, buf, i * 4096)
            os.fsync(fd)
        return _extents(fd)
    finally:
        os.close(fd)
        os.unlink(path)


def _tcp() -> int:
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(TCP_CONNECTIONS)
    port = srv.getsockname()[1]

    def serve() -> None:
        for _ in range(TCP_CONNECTIONS):
            conn, _ = srv.accept()
            conn.recv(4096)
            conn.sendall(b"s" * 5000)
            conn.close()

    t = threading.Thread(target=serve)
    t.start()
    for _ in range(TCP_CONNECTIONS):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"c" * 3000)
        while c.recv(65536):
            pass
        c.close()
    t.join()
    srv.close()
    return port


def _spinners(comm: str) -> list[int]:
    cpu = max(os.sched_getaffinity(0))
    # Shared with both: which spinner has been preempted enough. Each spins on until both
    # have, so that neither is left alone on the CPU with nothing to preempt it.
    done = mmap.mmap(-1, 2)
    pids = []
    for i in range(2):
        pid = os.fork()
        if pid == 0:
            set_comm(f"{comm}-spin")
            os.sched_setaffinity(0, {cpu})
            start = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
            end = time.monotonic() + SPIN_LIMIT_S
            while time.monotonic() < end:
                for _ in range(10000):
                    pass
                if resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - start >= SPIN_PREEMPTIONS:
                    done[i] = 1
                if done[0] and done[1]:
                    os._exit(0)
            os._exit(1)
        pids.append(pid)
    for pid in pids:
        if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
            sys.exit(f"spinner {pid}: not preempted {SPIN_PREEMPTIONS} times in {SPIN_LIMIT_S} s")
    return pids


def kernel(directory: str, comm: str = COMM) -> None:
    set_comm(comm)
    print(f"pid={os.getpid()}", flush=True)
    for _ in range(GETPPIDS):
        os.getppid()
    print(f"child={_signals()}", flush=True)
    print(f"extents={_extents_text(_direct_writes(directory))}", flush=True)
    print(f"port={_tcp()}", flush=True)
    print(f"spinners={','.join(map(str, _spinners(comm)))}", flush=True)


def _extents_text(extents: list[tuple[int, int]]) -> str:
    return ";".join(f"{a}+{n}" for a, n in extents)


def main() -> None:
    if len(sys.argv) in (3, 4) and sys.argv[1] == "kernel":
        kernel(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["run"])
    ap.add_argument("tag")
    ap.add_argument("--wait-stdin", action="store_true", help="start after a line on stdin")
    ap.add_argument("--comm", help="task name to run under (prctl PR_SET_NAME)")
    a = ap.parse_args()
    run(a.tag, a.wait_stdin, a.comm)


if __name__ == "__main__":
    main()
