"""A big synthetic trace, for memory and throughput tests of the reports:

    .venv/bin/python tests/bigtrace.py OUT.parquet --events 50000000 [--mix host|storm]
        [--seconds 600] [--seed 0]

or `write_bigtrace(path, events, mix=...)`. The trace is written with bpfcap's own writer
(formats/writer.py: write_table_file, then merge_files), so it is exactly the on-disk
format a recording leaves: format 2, one kind per row group, the metadata reports read
(clock, host, disks, process snapshot, settings.events, per-kind counters, kernel struct
reads).

Every kind a report reads is there (MIXES): `host` in proportions like a busy host's
(syscalls, run-queue waits and opens dominate; some block I/O; a few thousand execs,
forks, signals, working directories and TCP sessions per 10M events), `storm` with
millions of every kind (each report then reads millions of rows: what a memory test
needs). Values are plausible: ts_ns rising within each kind (in file order too),
latencies >= 0, comms from a small set, tids from a few thousand (in a few hundred
processes), paths from a few thousand (some relative, for opensnoop -F), x86_64 syscall
numbers, bio requests on the disks the metadata names, execs by children of fork rows,
TCP sessions whose state changes follow the kernel's order (active and passive opens,
either side closing, bytes at CLOSE), unique socket ids, an accept row per passive open.

Memory stays bounded while writing: each kind is generated with numpy in chunks of
`chunk_rows` rows (one row group each, the same size in traces of any length), each over
its share of the recording, and encoded as one Parquet part file, in `workers` threads
(numpy and Arrow release the GIL); the parts are joined, in time order, by copying bytes.
Deterministic for a given seed. On a 2-CPU VM: 50M events in 30-60 s, ~1 GB on disk, the
writer's peak RSS ~0.5-0.75 GB.

REPORTS and measure() run every report on such a trace (tests/unit/test_report_memory.py,
bench/reports.py).
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bpfcap.formats.events import BY_NAME, EVENT_TYPES, TCP_STATES

try:  # the writer moved out of formats/trace.py (issue 9); older trees have it there
    from bpfcap.formats.writer import merge_files, write_table_file
except ImportError:  # pragma: no cover
    from bpfcap.formats.trace import merge_files, write_table_file  # type: ignore

S = 1_000_000_000
US = 1_000
CHUNK_ROWS = 1 << 18  # rows per row group: a recording writes at most 64k (a segment)


# The recording: monotonic start a day after boot; 2026-11-30 14:00:00 UTC; CET host.
START_NS = 86_400 * S
START_UTC_S = 1_796_047_200
CLOCK = {
    "realtime_minus_monotonic_ns": START_UTC_S * S - START_NS,
    "utc_offset_s": 3600,
    "tz": "CET",
}
CPUS = 4
PID_MAX = 4_194_304
VDA, NVME = 254 << 20, 259 << 20  # dev_t as block tracepoints give it (major << 20 | minor)
DISKS = [[VDA, "vda"], [NVME, "nvme0n1"]]

COMMS = [
    b"nginx", b"postgres", b"python3", b"java", b"node", b"sshd", b"bash", b"systemd",
    b"cron", b"redis-server", b"containerd", b"dockerd", b"kubelet", b"chronyd",
    b"rsyslogd", b"journald", b"make", b"cc1", b"ld", b"git", b"curl", b"prometheus",
    b"grafana", b"envoy", b"haproxy", b"mysqld", b"memcached", b"kworker/0:1",
    b"kworker/1:2", b"ksoftirqd/0", b"rcu_sched", b"sleep", b"cat", b"grep", b"awk",
    b"tar", b"gzip", b"rsync", b"vim", b"tmux",
]  # fmt: skip
SERVERS = {b"nginx": 80, b"haproxy": 443, b"postgres": 5432, b"sshd": 22, b"envoy": 8080}
CLIENTS = (b"curl", b"python3", b"java", b"node", b"git", b"prometheus")
BINARIES = [
    "/usr/bin/" + n
    for n in (
        "ls", "cat", "grep", "sed", "awk", "sh", "bash", "python3", "git", "make", "gcc",
        "cc1", "ld", "as", "curl", "tar", "gzip", "date", "sleep", "true", "env", "id",
        "uname", "ps", "find", "xargs", "sort", "uniq", "head", "tail", "wc", "cut", "tr",
        "stat", "mkdir", "rm", "cp", "mv", "ln", "chmod", "systemctl", "journalctl",
    )
]  # fmt: skip
ARGS = [b"-l", b"-a", b"-c", b"--version", b"-j2", b"status", b"-q", b"-rf", b"/tmp/x",
        b"install", b"build", b"-O2", b"main.c", b"-o", b"main.o", b"https://example.org/",
        b"--color=auto", b"-n", b"10", b"/var/log/syslog"]  # fmt: skip

# x86_64 numbers of the calls a busy host makes most, with weights and typical latency.
SYSCALLS = [  # (nr, weight, median latency ns, failure rate, errno)
    (0, 14, 3_000, 0.05, 11), (1, 12, 4_000, 0.01, 32), (3, 8, 800, 0.0, 9),
    (5, 3, 600, 0.0, 2), (7, 4, 40_000, 0.0, 4), (8, 2, 400, 0.0, 29),
    (9, 2, 2_000, 0.0, 12), (13, 2, 400, 0.0, 22), (14, 5, 300, 0.0, 22),
    (16, 2, 1_500, 0.2, 25), (23, 1, 50_000, 0.05, 4), (35, 1, 1_000_000, 0.0, 4),
    (39, 2, 200, 0.0, 0), (44, 3, 6_000, 0.01, 11), (45, 3, 3_000, 0.3, 11),
    (47, 1, 3_000, 0.2, 11), (62, 1, 1_500, 0.1, 3), (72, 1, 400, 0.0, 9),
    (110, 2, 200, 0.0, 0), (202, 12, 20_000, 0.1, 110), (228, 4, 150, 0.0, 0),
    (230, 2, 1_000_000, 0.0, 4), (232, 5, 100_000, 0.0, 4), (257, 2, 4_000, 0.15, 2),
    (262, 3, 1_500, 0.1, 2), (281, 3, 100_000, 0.0, 4), (318, 1, 800, 0.0, 0),
]  # fmt: skip

O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND = 0o1, 0o2, 0o100, 0o1000, 0o2000
O_NONBLOCK, O_DIRECTORY, O_CLOEXEC = 0o4000, 0o200000, 0o2000000
OPEN_FLAGS = [
    (O_CLOEXEC, 50), (0, 15), (O_DIRECTORY | O_CLOEXEC, 10), (O_NONBLOCK | O_CLOEXEC, 5),
    (O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 8), (O_RDWR | O_CREAT | O_CLOEXEC, 5),
    (O_WRONLY | O_CREAT | O_APPEND, 4), (O_RDWR, 3),
]  # fmt: skip
BIO_RWBS = [(b"W", 35), (b"R", 30), (b"WS", 15), (b"RA", 10), (b"WM", 5), (b"FWS", 3),
            (b"WFS", 2)]  # fmt: skip
BIO_BYTES = [(4096, 50), (8192, 10), (16384, 10), (65536, 10), (131072, 15), (524288, 5)]


@dataclass(frozen=True)
class World:
    """The host's tasks: tids, each thread's process, comm and uid, how busy each is;
    and the paths opened, with how often."""

    tids: np.ndarray  # uint32
    tgids: np.ndarray  # uint32, the process of each tid
    comm_idx: np.ndarray  # int32 index into COMMS, per tid
    uids: np.ndarray  # uint32 per tid
    cdf: np.ndarray  # cumulative activity per tid (Zipf-like)
    pids: np.ndarray  # the processes (their main thread's tid)
    ppids: np.ndarray
    paths: pa.Array  # binary, a few thousand
    path_cdf: np.ndarray

    def pick(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n indices of tids, busy ones more often."""
        return np.minimum(np.searchsorted(self.cdf, rng.random(n)), len(self.tids) - 1)


def make_world(seed: int, processes: int = 400) -> World:
    rng = np.random.default_rng([seed, 0])
    pids = np.sort(rng.choice(np.arange(300, 60_000), processes, replace=False)).astype(np.uint32)
    ppids = np.where(rng.random(processes) < 0.6, 1, pids[rng.integers(0, processes, processes)])
    ppids = np.where(ppids == pids, 1, ppids).astype(np.uint32)
    proc_comm = rng.integers(0, len(COMMS), processes).astype(np.int32)
    proc_comm[: len(SERVERS)] = [COMMS.index(c) for c in SERVERS]  # the servers run
    proc_uid = rng.choice(np.array([0, 0, 33, 1000, 999, 65534], np.uint32), processes)
    threads = rng.geometric(0.15, processes)  # ~7 threads a process
    tgids = np.repeat(pids, threads)
    tids = tgids.copy()
    first = np.concatenate([[True], tgids[1:] != tgids[:-1]])
    # Threads' ids above every process id here: none is taken twice.
    tids[~first] = rng.choice(np.arange(60_000, 4_000_000), int((~first).sum()), replace=False)
    comm_idx = np.repeat(proc_comm, threads)
    uids = np.repeat(proc_uid, threads)
    weight = 1.0 / (1 + rng.permutation(len(tids))) ** 0.9
    cdf = np.cumsum(weight) / weight.sum()
    paths = _paths(rng)
    pw = 1.0 / (1 + np.arange(len(paths))) ** 0.8
    return World(
        tids=tids.astype(np.uint32),
        tgids=tgids.astype(np.uint32),
        comm_idx=comm_idx,
        uids=uids,
        cdf=cdf,
        pids=pids,
        ppids=ppids,
        paths=pa.array(paths, pa.binary()),
        path_cdf=np.cumsum(pw) / pw.sum(),
    )


def _paths(rng: np.random.Generator, n: int = 3000) -> list[bytes]:
    libs = [f"/usr/lib/x86_64-linux-gnu/lib{x}.so.{v}" for x in ("c", "m", "ssl", "crypto",
            "z", "pthread", "dl", "stdc++", "gcc_s", "systemd", "selinux", "pcre2-8",
            "lzma", "zstd", "ffi", "python3.11", "sqlite3", "curl", "nghttp2", "idn2")
            for v in range(1, 4)]  # fmt: skip
    etc = [f"/etc/{x}" for x in ("passwd", "group", "hosts", "resolv.conf", "nsswitch.conf",
           "ld.so.cache", "localtime", "ssl/openssl.cnf", "os-release", "hostname",
           "nginx/nginx.conf", "gai.conf", "shadow", "services", "protocols")]  # fmt: skip
    out = [*etc, *libs]
    i = 0
    while len(out) < n:
        k = i % 8
        if k == 0:
            out.append(f"/proc/{rng.integers(300, 60_000)}/stat")
        elif k == 1:
            out.append(f"/sys/fs/cgroup/system.slice/svc{i % 97}.service/memory.current")
        elif k == 2:
            out.append(f"/var/lib/postgresql/15/main/base/16384/{16_000 + i}")
        elif k == 3:
            out.append(f"/home/ann/src/project/mod{i}.py")
        elif k == 4:
            out.append(f"src/mod{i}.c")  # relative: opensnoop -F
        elif k == 5:
            out.append(f"/usr/share/locale/{('de', 'fr', 'ja')[i % 3]}/LC_MESSAGES/m{i}.mo")
        elif k == 6:
            out.append(f"/var/log/app/worker-{i}.log")
        else:
            out.append(f"/tmp/tmp.{i:08x}")
        i += 1
    return [p.encode() for p in out[:n]]


# -- columns --------------------------------------------------------------------------


def _dict(indices: np.ndarray, values: list, type_: pa.DataType) -> pa.DictionaryArray:
    """A dictionary array (as the recorder's decoder gives comm, enums and kind)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(indices.astype(np.int32), pa.int32()), pa.array(values, type_)
    )


def _kind(name: str, n: int) -> pa.DictionaryArray:
    return _dict(np.zeros(n, np.int32), [name], pa.string())


def _weighted(rng: np.random.Generator, pairs: Sequence[tuple[Any, float]], n: int) -> np.ndarray:
    """n indices into `pairs`, drawn by their weights."""
    w = np.array([p[1] for p in pairs], float)
    return np.minimum(np.searchsorted(np.cumsum(w) / w.sum(), rng.random(n)), len(pairs) - 1)


def _times(rng: np.random.Generator, n: int, t0: int, t1: int) -> np.ndarray:
    """n rising times in [t0, t1): an even grid with jitter within each step."""
    if n == 0:
        return np.zeros(0, np.uint64)
    step = max(1, (t1 - t0) // n)
    return (t0 + np.arange(n, dtype=np.int64) * step + rng.integers(0, step, n)).astype(np.uint64)


def _lognormal(rng: np.random.Generator, median: Any, n: int, sigma: float = 1.0) -> np.ndarray:
    lat = np.asarray(median, float) * np.exp(sigma * rng.standard_normal(n))
    return np.clip(lat, 100, 5 * S).astype(np.uint64)


def _task(w: World, idx: np.ndarray) -> dict[str, Any]:
    return dict(
        tgid=pa.array(w.tgids[idx]),
        tid=pa.array(w.tids[idx]),
        uid=pa.array(w.uids[idx]),
        comm=_dict(w.comm_idx[idx], COMMS, pa.binary()),
    )


def _table(kind: str, cols: dict[str, Any]) -> pa.Table:
    """`kind` and the kind's columns in declaration order, as the in-memory types."""
    t = BY_NAME[kind]
    names = ["kind", *(f.name for f in t.columns)]
    missing = set(names) - set(cols)
    assert not missing, (kind, missing)
    return pa.Table.from_arrays([cols[n] for n in names], names=names)


def _cpu(rng: np.random.Generator, n: int) -> pa.Array:
    return pa.array(rng.integers(0, CPUS, n).astype(np.uint32))


def gen_open(rng: np.random.Generator, w: World, n: int, t0: int, t1: int) -> pa.Table:
    idx = w.pick(rng, n)
    path = np.minimum(np.searchsorted(w.path_cdf, rng.random(n)), len(w.paths) - 1)
    flags = np.array([f for f, _ in OPEN_FLAGS], np.uint32)[_weighted(rng, OPEN_FLAGS, n)]
    mode = np.where(flags & O_CREAT, np.uint32(0o644), np.uint32(0)).astype(np.uint32)
    fail = rng.random(n)
    ret = np.where(fail < 0.10, -2, np.where(fail < 0.11, -13, rng.integers(3, 1024, n))).astype(
        np.int64
    )
    sc = np.searchsorted([0.95, 0.99], rng.random(n)).astype(np.int32)
    return _table(
        "open",
        dict(
            kind=_kind("open", n),
            ts_ns=pa.array(_times(rng, n, t0, t1)),
            cpu=_cpu(rng, n),
            **_task(w, idx),
            flags=pa.array(flags),
            lat_ns=pa.array(_lognormal(rng, 4 * US, n)),
            ret=pa.array(ret),
            mode=pa.array(mode),
            syscall=_dict(sc, ["openat", "open", "openat2"], pa.string()),
            path=pa.DictionaryArray.from_arrays(pa.array(path.astype(np.int32)), w.paths),
        ),
    )


def gen_syscall(rng: np.random.Generator, w: World, n: int, t0: int, t1: int) -> pa.Table:
    idx = w.pick(rng, n)
    which = _weighted(rng, [(s[0], s[1]) for s in SYSCALLS], n)
    table = np.array(SYSCALLS, dtype=np.float64)
    nr = table[which, 0].astype(np.uint32)
    failed = rng.random(n) < table[which, 3]
    ret = np.where(failed, -table[which, 4], rng.integers(0, 4096, n)).astype(np.int64)
    return _table(
        "syscall",
        dict(
            kind=_kind("syscall", n),
            ts_ns=pa.array(_times(rng, n, t0, t1)),
            cpu=_cpu(rng, n),
            **_task(w, idx),
            nr=pa.array(nr),
            lat_ns=pa.array(_lognormal(rng, table[which, 2], n)),
            ret=pa.array(ret),
        ),
    )


def gen_runq(rng: np.random.Generator, w: World, n: int, t0: int, t1: int) -> pa.Table:
    idx = w.pick(rng, n)
    # 65% wakeups, 34% preemptions, 1% new tasks (codes: RUNQ_REASONS' indices)
    reason = np.array([0, 2, 1], np.int32)[np.searchsorted([0.65, 0.99], rng.random(n))]
    task = _task(w, idx)
    tgid = np.where(reason == 1, 0, w.tgids[idx]).astype(np.uint32)  # new task: not known
    return _table(
        "runq",
        dict(
            kind=_kind("runq", n),
            ts_ns=pa.array(_times(rng, n, t0, t1)),
            cpu=_cpu(rng, n),
            tgid=pa.array(tgid),
            tid=task["tid"],
            uid=pa.array(np.zeros(n, np.uint32)),  # not known for runq
            comm=task["comm"],
            lat_ns=pa.array(_lognormal(rng, 15 * US, n, 1.3)),
            reason=_dict(reason, ["wakeup", "wakeup_new", "preempt"], pa.string()),
        ),
    )


def gen_bio(rng: np.random.Generator, w: World, n: int, t0: int, t1: int) -> pa.Table:
    idx = w.pick(rng, n)
    dev = np.where(rng.random(n) < 0.7, VDA, NVME).astype(np.uint32)
    nbytes = np.array([b for b, _ in BIO_BYTES], np.uint32)[_weighted(rng, BIO_BYTES, n)]
    rwbs = _weighted(rng, BIO_RWBS, n)
    flush = np.array([r.startswith(b"F") for r, _ in BIO_RWBS])[rwbs]
    nbytes = np.where(flush, 0, nbytes).astype(np.uint32)
    # Runs of sequential requests, then a seek.
    step = np.where(rng.random(n) < 0.3, rng.integers(1, 1 << 24, n), nbytes // 512)
    sector = (rng.integers(0, 1 << 26) + np.cumsum(step)) % (400 << 20)
    unseen = rng.random(n) < 0.2  # queued before the recording, or a kernel thread's
    task = _task(w, idx)
    zeros = np.zeros(n, np.uint32)
    return _table(
        "bio",
        dict(
            kind=_kind("bio", n),
            ts_ns=pa.array(_times(rng, n, t0, t1)),
            cpu=_cpu(rng, n),
            tgid=pa.array(np.where(unseen, zeros, w.tgids[idx])),
            tid=pa.array(np.where(unseen, zeros, w.tids[idx])),
            uid=task["uid"],
            comm=_dict(np.where(unseen, len(COMMS), w.comm_idx[idx]), [*COMMS, b""], pa.binary()),
            lat_ns=pa.array(_lognormal(rng, 400 * US, n)),
            queue_ns=pa.array(
                np.where(unseen, 0, rng.integers(1_000, 60_000, n)).astype(np.uint64)
            ),
            dev=pa.array(dev),
            sector=pa.array(sector.astype(np.uint64)),
            bytes=pa.array(nbytes),
            error=pa.array(np.where(rng.random(n) < 0.0005, -5, 0).astype(np.int32)),
            rwbs=_dict(rwbs, [r for r, _ in BIO_RWBS], pa.binary()),
        ),
    )


def gen_signal(rng: np.random.Generator, w: World, n: int, t0: int, t1: int) -> pa.Table:
    """kill mostly; some to processes gone (ESRCH), some refused (EPERM)."""
    sc = np.searchsorted([0.6, 0.95], rng.random(n)).astype(np.int32)  # kill, tgkill, tkill
    target_i = rng.integers(0, len(w.tids), n)
    target = np.where(sc == 0, w.tgids[target_i], w.tids[target_i]).astype(np.int32)
    r = rng.random(n)
    return _table(
        "signal",
        dict(
            kind=_kind("signal", n),
            ts_ns=pa.array(_times(rng, n, t0, t1)),
            cpu=_cpu(rng, n),
            **_task(w, w.pick(rng, n)),
            lat_ns=pa.array(_lognormal(rng, 3 * US, n, 0.5)),
            ret=pa.array(np.where(r < 0.1, -3, np.where(r < 0.13, -1, 0)).astype(np.int64)),
            syscall=_dict(sc, ["kill", "tgkill", "tkill"], pa.string()),
            target=pa.array(target),
            target_tgid=pa.array(np.where(sc == 1, w.tgids[target_i], 0).astype(np.int32)),
            sig=pa.array(np.array([15, 9, 0, 10, 2, 17, 1], np.uint32)[rng.integers(0, 7, n)]),
        ),
    )


CWDS = pa.array(
    [[b"project", b"src", b"ann", b"home"], [b"build", b"app", b"srv"],
     [b"main", b"15", b"postgresql", b"lib", b"var"], [b"tmp"], []],
    pa.list_(pa.binary()),
)  # fmt: skip


def gen_cwd(rng: np.random.Generator, w: World, n: int, t0: int, t1: int) -> pa.Table:
    """Working directories (names leaf first) of threads opening relative paths."""
    return _table(
        "cwd",
        dict(
            kind=_kind("cwd", n),
            ts_ns=pa.array(_times(rng, n, t0, t1)),
            cpu=_cpu(rng, n),
            **_task(w, w.pick(rng, n)),
            dirs=CWDS.take(pa.array(rng.integers(0, len(CWDS), n))),
        ),
    )


# Command lines execs repeat: a few hundred argv[1..] lists.
_ARGV_RNG = np.random.default_rng(7)
ARGVS = pa.array(
    [[ARGS[j] for j in _ARGV_RNG.integers(0, len(ARGS), k)] for k in _ARGV_RNG.integers(0, 7, 300)],
    pa.list_(pa.binary()),
)
BASENAMES = [b.rsplit("/", 1)[1].encode()[:15] for b in BINARIES]


def gen_fork_exec(
    rng: np.random.Generator, w: World, n: int, t0: int, t1: int, *, execs: int, first: int
) -> list[pa.Table]:
    """`n` forks (new pids from 100000 + `first`, the slice's first fork) and `execs` of
    them (at most n) exec'ing soon after, within [t0, t1)."""
    parent = w.pick(rng, n)
    fts = _times(rng, n, t0, t1)
    span = PID_MAX - 100_000
    child = (100_000 + (first + np.arange(n)) % span).astype(np.uint32)
    forks = _table(
        "fork",
        dict(
            kind=_kind("fork", n),
            ts_ns=pa.array(fts),
            cpu=_cpu(rng, n),
            **_task(w, parent),
            child_pid=pa.array(child),
        ),
    )
    ne = min(execs, n)
    pick = np.sort(rng.choice(n, ne, replace=False))
    ets = np.minimum(fts[pick] + rng.integers(50 * US, 500 * US, ne).astype(np.uint64), t1 - 1)
    order = np.argsort(ets, kind="stable")
    pick, ets = pick[order], ets[order]
    binary = rng.integers(0, len(BINARIES), ne)
    ok = rng.random(ne) >= 0.05
    by = parent[pick]
    execs_t = _table(
        "exec",
        dict(
            kind=_kind("exec", ne),
            ts_ns=pa.array(ets),
            tgid=pa.array(child[pick]),
            tid=pa.array(child[pick]),
            uid=pa.array(w.uids[by]),
            cpu=_cpu(rng, ne),
            # after a successful exec, the new program's name; else the caller's
            comm=_dict(
                np.where(ok, binary, len(BASENAMES) + w.comm_idx[by]),
                [*BASENAMES, *COMMS],
                pa.binary(),
            ),
            lat_ns=pa.array(_lognormal(rng, 400 * US, ne, 0.6)),
            ret=pa.array(np.where(ok, 0, -2).astype(np.int64)),
            syscall=_dict(
                (rng.random(ne) < 0.02).astype(np.int32), ["execve", "execveat"], pa.string()
            ),
            args_truncated=pa.array(np.zeros(ne, bool)),
            args_from=_dict(np.zeros(ne, np.int32), ["entry", "image"], pa.string()),
            args_unread=pa.array(np.zeros(ne, np.uint32)),
            ppid=pa.array(w.tgids[by]),
            filename=_dict(binary, [b.encode() for b in BINARIES], pa.binary()),
            pcomm=_dict(w.comm_idx[by], COMMS, pa.binary()),
            args=ARGVS.take(pa.array(rng.integers(0, len(ARGVS), ne))),
        ),
    )
    return [forks, execs_t]


def _addresses(family: np.ndarray, host: np.ndarray) -> pa.Array:
    """16-byte addresses as tcp rows hold them: 10.0.x.y (then zeros), or 2001:db8::x."""
    n = len(family)
    raw = np.zeros((n, 16), np.uint8)
    v4 = family == 2
    raw[v4, 0], raw[v4, 1] = 10, 0
    raw[v4, 2], raw[v4, 3] = host[v4] >> 8, host[v4] & 0xFF
    raw[~v4, 0:4] = [0x20, 0x01, 0x0D, 0xB8]
    raw[~v4, 14], raw[~v4, 15] = host[~v4] >> 8, host[~v4] & 0xFF
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(raw)])


# Who takes part in TCP sessions: connecting clients, and servers with their port.
def _tcp_roles(w: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    clients = np.flatnonzero(np.isin(w.comm_idx, [COMMS.index(c) for c in CLIENTS]))
    servers = np.flatnonzero(np.isin(w.comm_idx, [COMMS.index(c) for c in SERVERS]))
    ports = np.array([SERVERS[COMMS[i]] for i in w.comm_idx[servers]], np.uint16)
    if not len(clients):
        clients = servers
    return clients, servers, ports


# Each session's state changes, step by step: (oldstate, newstate) per step of an active
# open (CLOSE -> SYN_SENT -> ESTABLISHED) and of a passive one (SYN_RECV -> ESTABLISHED),
# then the close, this side first (FIN_WAIT1 ...) or the peer first (CLOSE_WAIT ...).
OPEN_ACTIVE = [("CLOSE", "SYN_SENT"), ("SYN_SENT", "ESTABLISHED")]
OPEN_PASSIVE = [("SYN_RECV", "ESTABLISHED")]
CLOSE_FIRST = [("ESTABLISHED", "FIN_WAIT1"), ("FIN_WAIT1", "FIN_WAIT2"), ("FIN_WAIT2", "CLOSE")]
CLOSE_SECOND = [("ESTABLISHED", "CLOSE_WAIT"), ("CLOSE_WAIT", "LAST_ACK"), ("LAST_ACK", "CLOSE")]


def gen_tcp_accept(
    rng: np.random.Generator, w: World, n: int, t0: int, t1: int, *, first: int
) -> list[pa.Table]:
    """`n` TCP sessions opening and closing within [t0, t1), as inet_sock_set_state sees
    them (active opens 60%; either side closing first; bytes at CLOSE), and the accept row
    of each passive one. Socket ids are unique in the trace (`first`: the slice's first
    session)."""
    clients, servers, ports = _tcp_roles(w)
    states = list(TCP_STATES)
    start = _times(rng, n, t0, t1).astype(np.int64)
    life = np.minimum(_lognormal(rng, 50_000 * US, n, 1.5).astype(np.int64), t1 - 1 - start)
    active = rng.random(n) < 0.6
    first_close = rng.random(n) < 0.5
    srv = rng.integers(0, len(servers), n)
    owner = np.where(active, clients[rng.integers(0, len(clients), n)], servers[srv])
    server_port = ports[srv].astype(np.int64)
    ephemeral = rng.integers(32768, 61000, n)
    remote_port = np.array([80, 443, 5432, 6379, 8080])[rng.integers(0, 5, n)]
    sport = np.where(active, ephemeral, server_port)
    dport = np.where(active, remote_port, ephemeral)
    family = np.where(rng.random(n) < 0.1, 10, 2)
    local, peer = rng.integers(1, 200, n), rng.integers(1, 5000, n)
    # Unique ids, never 0: (first + i + 1) times an odd constant, mod 2^62, is a bijection.
    sock = (
        (first + 1 + np.arange(n, dtype=np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
    ) & np.uint64((1 << 62) - 1)
    rx, tx = rng.integers(0, 1 << 24, n), rng.integers(0, 1 << 22, n)
    # Step times: the session's life cut at sorted random points.
    cuts = np.sort(rng.random((n, 4)), axis=1)
    at = np.concatenate([start[:, None], start[:, None] + (cuts * life[:, None])], axis=1)
    # Per step: (sessions, time, old, new, local port, in the owner's context, step). The
    # owner's steps: opening actively, and its own close() (FIN_WAIT1 if it closes first,
    # LAST_ACK if second); the others happen in softirq, in whatever task was running.
    rows = []
    for active_side, opening in ((True, OPEN_ACTIVE), (False, OPEN_PASSIVE)):
        for closing_first, closing in ((True, CLOSE_FIRST), (False, CLOSE_SECOND)):
            sel = np.flatnonzero((active == active_side) & (first_close == closing_first))
            steps = opening + closing
            for k, (was, becomes) in enumerate(steps):
                closing_k = k - len(opening)
                mine = (active_side and closing_k < 0) or closing_k == (0 if closing_first else 1)
                lport = np.where(np.full(len(sel), active_side and k == 0), 0, sport[sel])
                rows.append(
                    (sel, at[sel, k], states.index(was), states.index(becomes), lport, mine, k)
                )
    idx = np.concatenate([r[0] for r in rows])
    ts = np.concatenate([r[1] for r in rows]).astype(np.uint64)
    step = np.concatenate([np.full(len(r[0]), r[6]) for r in rows])
    order = np.lexsort((step, ts))
    idx, ts = idx[order], ts[order]
    old = np.concatenate([np.full(len(r[0]), r[2]) for r in rows])[order]
    new = np.concatenate([np.full(len(r[0]), r[3]) for r in rows])[order]
    port = np.concatenate([r[4] for r in rows])[order]
    own = np.concatenate([np.full(len(r[0]), r[5]) for r in rows])[order]
    m = len(idx)
    who = np.where(own, owner[idx], w.pick(rng, m))  # softirq: whoever was running
    closed = new == states.index("CLOSE")
    tcp = _table(
        "tcp",
        dict(
            kind=_kind("tcp", m),
            ts_ns=pa.array(ts),
            cpu=_cpu(rng, m),
            **_task(w, who),
            sock=pa.array(sock[idx]),
            oldstate=_dict(old, states, pa.string()),
            newstate=_dict(new, states, pa.string()),
            family=pa.array(family[idx].astype(np.uint16)),
            sport=pa.array(port.astype(np.uint16)),
            dport=pa.array(dport[idx].astype(np.uint16)),
            saddr=_addresses(family[idx], local[idx]),
            daddr=_addresses(family[idx], peer[idx]),
            rx_bytes=pa.array(rx[idx].astype(np.uint64), mask=~closed),
            tx_bytes=pa.array(tx[idx].astype(np.uint64), mask=~closed),
        ),
    )
    # The server's accept(2) returns soon after the passive open.
    acc = np.flatnonzero(~active)
    ats = np.minimum(start[acc] + rng.integers(5 * US, 2_000 * US, len(acc)), t1 - 1)
    o = np.argsort(ats, kind="stable")
    acc, ats = acc[o], ats[o].astype(np.uint64)
    k = len(acc)
    accept = _table(
        "accept",
        dict(
            kind=_kind("accept", k),
            ts_ns=pa.array(ats),
            cpu=_cpu(rng, k),
            **_task(w, owner[acc]),
            ret=pa.array(rng.integers(5, 200, k).astype(np.int64)),
            syscall=_dict(
                (rng.random(k) < 0.9).astype(np.int32), ["accept", "accept4"], pa.string()
            ),
            sock=pa.array(sock[acc]),
            family=pa.array(family[acc].astype(np.uint16)),
            sport=pa.array(sport[acc].astype(np.uint16)),
            dport=pa.array(dport[acc].astype(np.uint16)),
            saddr=_addresses(family[acc], local[acc]),
            daddr=_addresses(family[acc], peer[acc]),
        ),
    )
    return [tcp, accept]


# -- the trace ----------------------------------------------------------------------

# Share of the events of each kind ("tcp": the tcp and accept rows of TCP sessions, ~4.6
# state changes and 0.4 accepts each), by mix:
# * host: like a busy host recorded with -e all: syscalls, run-queue waits and opens
#   dominate, some block I/O, a few thousand of the rest per 10M events;
# * storm: every kind by the million (each at 2-23% of the events), so that every report
#   reads millions of rows of its kinds: what a memory test needs.
MIXES = {
    "host": {"syscall": 0.4194, "runq": 0.30, "open": 0.23, "bio": 0.0495, "fork": 0.0002,
             "exec": 0.0001, "signal": 0.0002, "cwd": 0.0001, "tcp": 0.0005},
    "storm": {"syscall": 0.15, "runq": 0.15, "open": 0.15, "bio": 0.10, "signal": 0.10,
              "fork": 0.05, "exec": 0.05, "cwd": 0.02, "tcp": 0.23},
}  # fmt: skip
ROWS_PER_SESSION = 5.0  # tcp 4.6 + accept 0.4


def plan(events: int, mix: str = "host") -> dict[str, int]:
    """What to generate for about `events` events: rows of each kind, but sessions for
    "tcp" (each ~4.6 tcp rows and 0.4 accept rows). Execs are at most the forks."""
    shares = MIXES[mix]
    out = {k: max(1, round(events * f)) for k, f in shares.items()}
    out["tcp"] = max(1, round(events * shares["tcp"] / ROWS_PER_SESSION))
    out["exec"] = min(out["exec"], out["fork"])
    return out


GROUPS: dict[str, Callable[..., pa.Table | list[pa.Table]]] = {
    "syscall": gen_syscall,
    "runq": gen_runq,
    "open": gen_open,
    "bio": gen_bio,
    "signal": gen_signal,
    "cwd": gen_cwd,
    "fork": gen_fork_exec,  # and exec
    "tcp": gen_tcp_accept,  # and accept
}


def metadata(counts: dict[str, int], start_ns: int, end_ns: int, w: World) -> dict[str, Any]:
    """What a recording's footer says, with `counts` rows of each kind, none lost."""
    events = {
        k: {
            "seen": n,
            "written": n,
            "lost": 0,
            "lost_per_cpu": [0] * CPUS,
            "seen_per_cpu": [n // CPUS] * (CPUS - 1) + [n - n // CPUS * (CPUS - 1)],
            "lost_timeline": [],
            "over_limit": 0,
        }
        for k, n in counts.items()
    }
    reads = {
        f"{t.name}.{r.name}": {"status": "btf", "reason": "", "columns": list(r.columns)}
        for t in EVENT_TYPES
        for r in t.kernel_reads
    }
    names = {int(p): COMMS[c].decode() for p, c in zip(w.tgids, w.comm_idx)}
    return {
        "bpfcap_version": "bigtrace",
        "start_ns": start_ns,
        "end_ns": end_ns,
        "clock": CLOCK,
        "host": {
            "hostname": "bigtrace",
            "machine": "x86_64",
            "os": "Linux",
            "cpus": CPUS,
            "pid_max": PID_MAX,
            "kernel": "6.1.0-synthetic",
        },
        "command_line": ["tests/bigtrace.py"],
        "settings": {"events": [t.name for t in EVENT_TYPES]},
        "events": events,
        "kernel_reads": reads,
        "processes": [[1, 0, "systemd"]]
        + [[int(p), int(pp), names[int(p)]] for p, pp in zip(w.pids, w.ppids)],
        "disks": DISKS,
        "clean_stop": True,
        "stop_reason": "synthetic",
    }


def write_bigtrace(
    path: Path,
    events: int,
    *,
    mix: str = "host",
    seconds: float = 600,
    seed: int = 0,
    chunk_rows: int = CHUNK_ROWS,
    workers: int = 2,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write a trace of about `events` events (`mix`: see MIXES) over `seconds` of
    recording to `path`. Returns the rows written per kind."""
    path = Path(path)
    w = make_world(seed)
    units = plan(events, mix)
    start_ns, end_ns = START_NS, START_NS + int(seconds * S)
    # Rows of each kind are counted as the parts are written; the parts' own footers
    # carry the planned counts (the joined file's footer replaces them).
    planned = dict(units, tcp=round(units["tcp"] * 4.6), accept=round(units["tcp"] * 0.4))
    provisional = metadata(planned, start_ns, end_ns, w)
    written: dict[str, int] = {}
    parts: list[Path] = []
    parts_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.parts-", dir=path.parent))

    def job(out: Path, make: Callable[[], pa.Table | list[pa.Table]]) -> dict[str, int]:
        made = make()
        tables = made if isinstance(made, list) else [made]
        write_table_file(out, tables, provisional)
        return {t.column("kind")[0].as_py(): t.num_rows for t in tables if t.num_rows}

    def chunks(kind: str, j: int, gen: Callable) -> Iterator[tuple[int, str, Callable]]:
        """A kind's chunks of `chunk_rows` rows each (the last may be short), each over
        its share of the recording: row groups of one size whatever the trace's length,
        so that traces of one rate and different lengths read alike, but for length."""
        total = units[kind]
        size = chunk_rows if kind != "tcp" else max(1, int(chunk_rows / 4.6))  # sessions
        for i, first in enumerate(range(0, total, size)):
            n = min(size, total - first)
            a = start_ns + (end_ns - start_ns) * first // total
            b = start_ns + (end_ns - start_ns) * (first + n) // total
            extra: dict[str, int] = {}
            if kind == "fork":  # and the execs of these forks' children
                e = units["exec"]
                extra = dict(execs=e * (first + n) // total - e * first // total, first=first)
            elif kind == "tcp":
                extra = dict(first=first)
            rng = np.random.default_rng([seed, 1 + j, i])
            yield a, f"{kind}-{i:06d}.parquet", functools.partial(gen, rng, w, n, a, b, **extra)

    # The parts in time order, kinds interleaved as in a recording's segments.
    todo = sorted(
        (c for j, (kind, gen) in enumerate(GROUPS.items()) for c in chunks(kind, j, gen)),
        key=lambda c: c[0],
    )
    try:
        # One chunk per worker in flight and one waiting: memory bounded by a few chunks.
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bigtrace") as pool:
            pending: list[Future] = []
            for done, (_, name, make) in enumerate(todo):
                if len(pending) > workers:
                    for k, v in pending.pop(0).result().items():
                        written[k] = written.get(k, 0) + v
                pending.append(pool.submit(job, parts_dir / name, make))
                parts.append(parts_dir / name)
                if progress and done % 8 == 0:
                    progress(f"{done}/{len(todo)} chunks")
            for f in pending:
                for k, v in f.result().items():
                    written[k] = written.get(k, 0) + v
        merge_files(parts, path, metadata(written, start_ns, end_ns, w), force=force)
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
    return written


# -- running reports on it ----------------------------------------------------------

# Every report with typical flags, and the kinds it reads: what test_report_memory.py
# and bench/reports.py run on a big trace.
REPORTS: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "opensnoop": (["opensnoop", "-T", "-F"], ("open", "cwd")),
    "execsnoop": (["execsnoop", "-x", "-T"], ("exec", "fork")),
    "syscount": (["syscount", "-L"], ("syscall",)),
    "killsnoop": (["killsnoop", "--all-calls"], ("signal",)),
    "biosnoop": (["biosnoop", "-Q", "-P"], ("bio",)),
    "biolatency": (["biolatency", "-D"], ("bio",)),
    "runqlat": (["runqlat", "-P"], ("runq",)),
    "count": (["count", "--by", "comm,kind"], tuple(t.name for t in EVENT_TYPES)),
    "hist": (["hist", "-e", "bio", "--field", "bytes", "--by", "comm"], ("bio",)),
    "tcplife": (["tcplife", "-t", "-w"], ("tcp",)),
    "tcpstates": (["tcpstates"], ("tcp",)),
    "tcpconnect": (["tcpconnect", "-t"], ("tcp",)),
    "tcpaccept": (["tcpaccept", "-t"], ("accept",)),
    "count --by comm": (["count", "--by", "comm"], tuple(t.name for t in EVENT_TYPES)),
    "hist --field lat_ns -e open": (["hist", "--field", "lat_ns", "-e", "open"], ("open",)),
}

# Runs COMMAND with stdout to /dev/null and prints its exit status, peak RSS (KiB) and
# wall time. A child's peak RSS counts the memory of the process it was forked from: this
# small Python's, not the caller's.
_MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "t = time.perf_counter() - t\n"
    "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, t)\n"
)


@dataclass(frozen=True)
class Run:
    """One command's exit status, wall time, peak RSS and the end of its stderr."""

    returncode: int
    seconds: float
    rss_mb: float
    stderr: str


# An address-space limit (RLIMIT_AS) bounds what a process reserves, not what it uses:
# pyarrow's default allocator (mimalloc) reserves ~1.7 GB of address space at the first
# reads whatever the rows, and glibc 64 MB per thread's arena. bpfcap itself switches to
# the system allocator with two arenas when it runs under a limit (cli/main.py); this is
# the same setting, for measuring other commands (bounded_env=True).
BOUNDED_ENV = {"ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2"}


def measure(
    command: list[str],
    *,
    limit_as: int | None = None,
    bounded_env: bool = False,
    timeout: float = 1800,
) -> Run:
    """Run `command` (stdout discarded), measured from a fresh small Python; with
    `limit_as`, under that address-space limit in bytes (RLIMIT_AS, as `ulimit -v`),
    and with BOUNDED_ENV if `bounded_env` (bpfcap sets it itself under a limit)."""
    import os
    import resource
    import subprocess

    def limit() -> None:
        if limit_as is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))

    r = subprocess.run(
        [sys.executable, "-c", _MEASURE, *map(str, command)],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=timeout,
        env=dict(os.environ, **BOUNDED_ENV) if limit_as is not None and bounded_env else None,
    )
    try:
        rc, kib, secs = r.stdout.split()
    except ValueError:  # the measuring Python itself failed (its limit too small?)
        return Run(r.returncode or -1, 0.0, 0.0, r.stderr[-2000:])
    return Run(int(rc), float(secs), int(kib) / 1024, r.stderr[-2000:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--events", type=int, default=50_000_000)
    ap.add_argument("--mix", choices=sorted(MIXES), default="host", help="see MIXES")
    ap.add_argument("--seconds", type=float, default=600, help="recording length")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--force", action="store_true", help="overwrite OUT")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = write_bigtrace(
        a.out,
        a.events,
        mix=a.mix,
        seconds=a.seconds,
        seed=a.seed,
        chunk_rows=a.chunk_rows,
        workers=a.workers,
        force=a.force,
        progress=lambda s: print(f"\r{s}", end="", file=sys.stderr, flush=True),
    )
    secs = time.perf_counter() - t0
    total = sum(rows.values())
    print(
        f"\rWrote {a.out} ({total:,} events, {a.out.stat().st_size / 1e6:.0f} MB) in "
        f"{secs:.1f} s ({total / secs / 1e6:.2f} M events/s): "
        + ", ".join(f"{k} {n:,}" for k, n in sorted(rows.items(), key=lambda kv: -kv[1])),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
