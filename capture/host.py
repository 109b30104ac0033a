"""Facts about the recording host: identity, clocks, processes, prerequisites.

No BCC here: `bpfcap doctor` and `record`'s early checks use these before loading it.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from dataclasses import dataclass
from pathlib import Path

CAP_PERFMON = 38
CAP_BPF = 39
CAP_SYS_ADMIN = 21


def host_info() -> dict:
    os_name = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return {
        "hostname": socket.gethostname(),
        # this boot's random id: merge tells two boots of one host apart by it
        "boot_id": _read_text("/proc/sys/kernel/random/boot_id"),
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "machine": platform.machine(),
        "os": os_name,
        "cpus": os.cpu_count(),
        "pid_max": _read_int("/proc/sys/kernel/pid_max"),  # killsnoop's PID column width
    }


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text())
    except (OSError, ValueError):
        return None


def clock_mapping() -> dict:
    """realtime − monotonic, from the tightest of a few paired readings, plus the local
    UTC offset: reports print wall-clock times (-T) exactly as on the recording host."""
    best = None
    for _ in range(5):
        r0 = time.clock_gettime_ns(time.CLOCK_REALTIME)
        m = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        r1 = time.clock_gettime_ns(time.CLOCK_REALTIME)
        if best is None or r1 - r0 < best[0]:
            best = (r1 - r0, (r0 + r1) // 2 - m)
    assert best is not None
    lt = time.localtime()
    return {
        "realtime_minus_monotonic_ns": best[1],
        "uncertainty_ns": best[0],
        "boottime_minus_monotonic_ns": time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        - time.clock_gettime_ns(time.CLOCK_MONOTONIC),
        "utc_offset_s": lt.tm_gmtoff,
        "tz": lt.tm_zone,
    }


def process_snapshot() -> list[list]:
    """[pid, ppid, comm] for every process now (from /proc/<pid>/stat)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_bytes()
        except OSError:
            continue  # exited meanwhile
        lp, rp = stat.find(b"("), stat.rfind(b")")
        fields = stat[rp + 2 :].split()
        # surrogateescape: exact bytes survive the JSON metadata (as \udcXX escapes).
        comm = stat[lp + 1 : rp].decode("utf-8", "surrogateescape")
        out.append([int(d), int(fields[1]), comm])
    out.sort()
    return out


def tracefs_root() -> Path | None:
    """Where tracepoints are listed: $BPFCAP_TRACEFS, /sys/kernel/tracing or the debugfs one."""
    env = os.environ.get("BPFCAP_TRACEFS")
    candidates = (
        [Path(env)] if env else [Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing")]
    )
    for c in candidates:
        if os.path.isdir(c / "events"):  # False, not an error, where we may not look
            return c
    return None


def present_tracepoints(names: set[str]) -> set[str]:
    root = tracefs_root()
    if root is None:
        return set()
    return {n for n in names if os.path.isdir(root / "events" / n.replace(":", "/"))}


def tracepoint_has_field(name: str, field: str) -> bool:
    """Whether tracepoint `name` (cat:event) has argument `field`, from its format file."""
    root = tracefs_root()
    if root is None:
        return False
    try:
        text = (root / "events" / name.replace(":", "/") / "format").read_text()
    except OSError:
        return False
    return any(
        line.strip().startswith("field:") and line.split(";")[0].split()[-1].split("[")[0] == field
        for line in text.splitlines()
    )


def possible_cpus() -> int:
    """Per-CPU map values come one per possible CPU (not online)."""
    text = open("/sys/devices/system/cpu/possible").read().strip()
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n = max(n, int(hi or lo) + 1)
    return n


def pid_max() -> int | None:
    """The host's pid_max (the most task ids at once), or None if unreadable."""
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return None


def _capabilities() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def can_bpf() -> bool:
    caps = _capabilities()
    if os.geteuid() == 0 and caps & (1 << CAP_SYS_ADMIN):
        return True
    return bool(caps & (1 << CAP_BPF)) and bool(caps & (1 << CAP_PERFMON))


def task_storage() -> bool:
    """BPF task-local storage from tracepoint programs: kernel 5.11+ with kernel BTF
    (bpf_get_current_task_btf)."""
    try:
        major, minor = (int(x) for x in platform.release().split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 11) and os.path.exists("/sys/kernel/btf/vmlinux")


def kernel_headers() -> Path | None:
    build = Path("/lib/modules") / platform.release() / "build"
    return build if os.path.isdir(build / "include") else None


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def disks() -> list[list]:
    """[dev, name] of every block device in /proc/diskstats, dev as the kernel's dev_t
    (major << 20 | minor) that block tracepoints carry: reports name disks with it. A name
    that is not UTF-8 (BCC's tools die on one) keeps U+FFFD for its bad bytes."""
    out: list[list] = []
    try:
        text = Path("/proc/diskstats").read_bytes().decode("utf-8", "replace")
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit():
            out.append([int(parts[0]) << 20 | int(parts[1]), parts[2]])
    return out


def keep_freed_memory() -> None:
    """Have glibc keep freed memory for reuse instead of returning it to the kernel: the
    recorder's large, short-lived arrays (decoding a segment) would otherwise be mmapped
    and unmapped each time, and every page faulted in and zeroed again (a fifth of the
    recorder's CPU in an open storm). Its memory stays at the working set's peak."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: allocate from the heap
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: never give the top of the heap back
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune
