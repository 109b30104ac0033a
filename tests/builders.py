"""Synthetic trace rows for unit tests: each builder takes keyword overrides of sensible
defaults and returns one row (a dict); `table(rows)` turns rows of one kind into an Arrow
table in the trace schema (formats.events.SCHEMA), as Trace.read would return them.

    opens = table([open_row(path="/etc/passwd"), open_row(ret=-2, ts_ns=2 * S)])

Strings may be given as str (encoded UTF-8) or bytes (kept raw).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from bpfcap.capture.segments import SegmentDir
from bpfcap.formats.events import BY_NAME, SCHEMA
from bpfcap.formats.writer import write_table_file

S = 1_000_000_000  # ns per second
MS = 1_000_000
US = 1_000

START_NS = 1_000 * S  # recording start (CLOCK_MONOTONIC)
# Realtime = monotonic + this: START_NS is 2024-03-05 14:08:20 UTC.
REALTIME_MINUS_MONOTONIC_NS = 1_709_647_700 * S - START_NS
CLOCK = {
    "realtime_minus_monotonic_ns": REALTIME_MINUS_MONOTONIC_NS,
    "utc_offset_s": 3600,
    "tz": "CET",
}
# A /proc snapshot at start: [pid, ppid, comm].
PROCESSES = [[1, 0, "systemd"], [500, 1, "sshd"], [1000, 500, "bash"], [1001, 1000, "make"]]


def _row(kind: str, defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = set(overrides) - {f.name for f in BY_NAME[kind].columns}
    if unknown:
        raise TypeError(f"{kind} rows have no column(s) {sorted(unknown)}")
    return {"kind": kind, **defaults, **overrides}


def open_row(**kw: Any) -> dict[str, Any]:
    """A successful openat of /etc/passwd by cat (pid 1000) 1 s into the recording."""
    defaults = dict(
        ts_ns=START_NS + S,
        tgid=1000,
        tid=kw.get("tgid", 1000),
        uid=0,
        cpu=0,
        comm=b"cat",
        lat_ns=10 * US,
        ret=3,
        flags=0,
        mode=0,
        syscall="openat",
        path=b"/etc/passwd",
    )
    return _row("open", defaults, kw)


def exec_row(**kw: Any) -> dict[str, Any]:
    """A successful execve of /bin/ls -l by pid 2000, 1 s into the recording."""
    defaults = dict(
        ts_ns=START_NS + S,
        tgid=2000,
        tid=kw.get("tgid", 2000),
        uid=1000,
        cpu=1,
        comm=b"ls",
        lat_ns=100 * US,
        ret=0,
        syscall="execve",
        args_truncated=False,
        filename=b"/bin/ls",
        args=[b"-l"],
    )
    return _row("exec", defaults, kw)


def fork_row(**kw: Any) -> dict[str, Any]:
    """bash (pid 1000) creating task 2000, half a second into the recording."""
    defaults = dict(
        ts_ns=START_NS + S // 2,
        tgid=1000,
        tid=kw.get("tgid", 1000),
        uid=1000,
        cpu=0,
        comm=b"bash",
        child_pid=2000,
    )
    return _row("fork", defaults, kw)


def syscall_row(**kw: Any) -> dict[str, Any]:
    """A getppid (110) by cat (pid 1000) returning 1 s into the recording, after 1 us."""
    defaults = dict(
        ts_ns=START_NS + S - US,
        tgid=1000,
        tid=kw.get("tgid", 1000),
        uid=0,
        cpu=0,
        comm=b"cat",
        lat_ns=US,
        ret=500,
        nr=110,
    )
    return _row("syscall", defaults, kw)


def signal_row(**kw: Any) -> dict[str, Any]:
    """bash (pid 13967) sending SIGKILL to 1024 with kill(2), failing with ESRCH, 1 s in."""
    defaults = dict(
        ts_ns=START_NS + S,
        tgid=13967,
        tid=kw.get("tgid", 13967),
        uid=1000,
        cpu=0,
        comm=b"bash",
        lat_ns=2 * US,
        ret=-3,
        syscall="kill",
        target=1024,
        target_tgid=0,
        sig=9,
    )
    return _row("signal", defaults, kw)


VDA = 254 << 20  # dev_t of vda (254:0) as block tracepoints give it
XVDA1 = 202 << 20 | 1


def bio_row(**kw: Any) -> dict[str, Any]:
    """A 4 KiB write to vda by supervise (pid 1950), issued 1 s in, queued 10 us before,
    completing after 740 us."""
    defaults = dict(
        ts_ns=START_NS + S,
        tgid=1950,
        tid=kw.get("tgid", 1950),
        uid=0,
        cpu=0,
        comm=b"supervise",
        lat_ns=740 * US,
        queue_ns=10 * US,
        dev=VDA,
        sector=13092560,
        bytes=4096,
        error=0,
        rwbs=b"W",
    )
    return _row("bio", defaults, kw)


def runq_row(**kw: Any) -> dict[str, Any]:
    """A wakeup of thread 1000 (process 1000, cat) that waited 5 us, 1 s in."""
    defaults = dict(
        ts_ns=START_NS + S,
        tgid=1000,
        tid=kw.get("tgid", 1000),
        uid=0,
        cpu=1,
        comm=b"cat",
        lat_ns=5 * US,
        reason="wakeup",
    )
    return _row("runq", defaults, kw)


def ip4(text: str) -> bytes:
    """An IPv4 address as tcp rows hold it: 4 bytes, then 12 zeros."""
    import socket

    return socket.inet_aton(text) + bytes(12)


def tcp_row(**kw: Any) -> dict[str, Any]:
    """A TCP state change CLOSE -> SYN_SENT of socket 0xabc by pid 1000 (curl), 1 s in,
    127.0.0.1 -> 127.0.0.1:80."""
    defaults = dict(
        ts_ns=START_NS + S,
        tgid=1000,
        tid=kw.get("tgid", 1000),
        uid=1000,
        cpu=0,
        comm=b"curl",
        sock=0xABC,
        oldstate="CLOSE",
        newstate="SYN_SENT",
        family=2,
        sport=0,
        dport=80,
        saddr=ip4("127.0.0.1"),
        daddr=ip4("127.0.0.1"),
        rx_bytes=None,
        tx_bytes=None,
    )
    return _row("tcp", defaults, kw)


def accept_row(**kw: Any) -> dict[str, Any]:
    """nginx (pid 900) accepting 127.0.0.1:40000 -> 127.0.0.1:80 on fd 5, 3 s in."""
    defaults = dict(
        ts_ns=START_NS + 3 * S,
        tgid=900,
        tid=kw.get("tgid", 900),
        uid=33,
        cpu=0,
        comm=b"nginx",
        ret=5,
        syscall="accept4",
        sock=0xD00D,
        family=2,
        sport=80,
        dport=40000,
        saddr=ip4("127.0.0.1"),
        daddr=ip4("127.0.0.1"),
    )
    return _row("accept", defaults, kw)


def cwd_row(**kw: Any) -> dict[str, Any]:
    """The working directory /home/ann/src of thread 1000 (names leaf first), 0.5 s in."""
    defaults = dict(
        ts_ns=START_NS + S // 2,
        tgid=1000,
        tid=kw.get("tgid", 1000),
        uid=0,
        cpu=0,
        comm=b"make",
        dirs=[b"src", b"ann", b"home"],
    )
    return _row("cwd", defaults, kw)


def one_of_each() -> list[dict[str, Any]]:
    """A row of every event type, with the defaults of its builder."""
    builders = (open_row, exec_row, fork_row, syscall_row, signal_row, bio_row, runq_row,
                tcp_row, accept_row, cwd_row)  # fmt: skip
    return [b() for b in builders]


def table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (of one kind) as a table in the full trace schema; absent columns are null."""
    cols = {}
    for f in SCHEMA:
        values = [_encode(r.get(f.name), f.type) for r in rows]
        cols[f.name] = pa.array(values, f.type)
    return pa.Table.from_pydict(cols, schema=SCHEMA)


def _encode(v: Any, type_: pa.DataType) -> Any:
    if isinstance(v, str) and pa.types.is_binary(type_):
        return v.encode()
    if isinstance(v, list):
        return [x.encode() if isinstance(x, str) else x for x in v]
    return v


def meta(**kw: Any) -> dict[str, Any]:
    """Trace metadata with the keys reports use; `events` defaults to nothing lost."""
    m = {
        "start_ns": START_NS,
        "end_ns": START_NS + 60 * S,
        "clock": CLOCK,
        "processes": PROCESSES,
        "events": {k: {"seen": 0, "lost": 0, "written": 0} for k in BY_NAME},
        "clean_stop": True,
    }
    m.update(kw)
    return m


def write_trace(path: Path, rows: list[dict[str, Any]], **meta_kw: Any) -> Path:
    """A trace file at `path` holding `rows` (any kinds), with meta(**meta_kw)."""
    kinds = sorted({r["kind"] for r in rows})
    write_table_file(
        path, [table([r for r in rows if r["kind"] == k]) for k in kinds], meta(**meta_kw)
    )
    return path


def header_only(directory: Path) -> Path:
    """A segment directory as a recorder stopped before its first segment closed leaves
    it: the header its SegmentDir wrote at start (no end, no counters yet), nothing else."""
    header = {k: v for k, v in meta(clean_stop=False, events={}).items() if k != "end_ns"}
    SegmentDir(directory, header=dict(header, settings={"events": list(BY_NAME)})).finish()
    return directory


def as_host(src: Path, out: Path, hostname: str) -> Path:
    """A copy of the trace `src` whose metadata names another host (for merges of
    several hosts from the shipped samples, which are all of one)."""
    from bpfcap.formats.rewrite import Input, kinds_present, rewrite
    from bpfcap.formats.trace import open_trace

    t = open_trace(src)
    meta = dict(t.meta, host=dict(t.meta["host"], hostname=hostname))
    rewrite([Input(t, {k: t.row_groups(k) for k in kinds_present(t)})], out, meta)
    return out
