"""Driving the real CLI and the workload from the end-to-end tests."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import workload  # tests/ is on sys.path (see conftest.py)

BPFCAP = str(Path(sys.executable).parent / "bpfcap")
WORKLOAD = workload.__file__
paths = workload.paths
# Compiling and attaching takes ~3 s here, up to ~8 s on a busy 2-core machine (clang is
# CPU-bound): wait for the recorder's attach, or any state, far longer than that.
ATTACH_TIMEOUT_S = 120.0
STATE_TIMEOUT_S = 60.0


def bpfcap(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([BPFCAP, *map(str, args)], capture_output=True, **kw)
    if check and r.returncode:
        raise AssertionError(f"bpfcap {args} exited {r.returncode}: {r.stderr!r}")
    return r


def read_line(stream: Any, deadline: float) -> bytes | None:
    """The next line of a child's output `stream` (b"" at its end), or None if `deadline`
    (monotonic) comes first. Read byte by byte from the descriptor: nothing past the
    line is taken from what communicate() will read later."""
    fd = stream.fileno()
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return None
        c = os.read(fd, 1)
        if not c:
            break
        line += c
    return line


def start_recorder(*args: Any, **popen: Any) -> subprocess.Popen:
    """Start `bpfcap record ARGS` and return once it says it is recording (its hooks are
    attached and it handles SIGINT and SIGHUP). `popen`: more Popen arguments (stdin).
    The lines before, "Recording ..." included, are in `.start_lines`."""
    p = subprocess.Popen(
        [BPFCAP, "record", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )
    deadline = time.monotonic() + ATTACH_TIMEOUT_S
    lines = []
    while (line := read_line(p.stderr, deadline)) is not None:
        lines.append(line)
        if line.startswith(b"Recording "):
            p.start_lines = lines  # type: ignore[attr-defined]
            return p
        if not line:
            break
    p.kill()
    _, rest = p.communicate()
    raise AssertionError(f"recorder did not start: {b''.join(lines)!r} {rest!r}")


def wait_for(state: Callable[[], Any], what: str, timeout: float = STATE_TIMEOUT_S) -> Any:
    """Poll `state()` until it returns something true, and return that; fail after
    `timeout` seconds (far more than any state here takes, even on a slow machine)."""
    deadline = time.monotonic() + timeout
    while not (value := state()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)
    return value


def closed_rows(out: Path, kind: str, column: str) -> list:
    """The values of `column` in the rows of `kind` that the closed segments of the
    recording into `out` (still running, or killed) hold so far."""
    from bpfcap.formats.trace import open_trace

    return open_trace(Path(str(out) + ".partial")).read(kind, [column])[column].to_pylist()


def group_alive(pgid: int) -> list[int]:
    """The processes still in process group `pgid` (a recorder started in its own session
    and what it forked: its BPF loader helper, a command)."""
    alive = []
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text()
        except (OSError, ValueError):
            continue  # not a process, or gone
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(d.name))
    return alive


def start_workload(tag: str, *extra: str) -> tuple[subprocess.Popen, int]:
    """The workload, waiting for a line on stdin before it starts; returns it and its pid."""
    Path(paths(tag)["ok"]).touch()
    p = subprocess.Popen(
        [sys.executable, WORKLOAD, "run", tag, "--wait-stdin", *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    pid = int(p.stdout.readline().decode().strip().split("=")[1])
    return p, pid


def go(p: subprocess.Popen) -> None:
    p.communicate(b"go\n", timeout=60)
    assert p.returncode == 0


def rows(out: bytes | str, needle: str) -> list[list[str]]:
    text = out.decode() if isinstance(out, bytes) else out
    return [ln.split() for ln in text.splitlines() if needle in ln]


def cleanup(tag: str) -> None:
    try:
        os.unlink(paths(tag)["ok"])
    except FileNotFoundError:
        pass


def wrote_line(stderr: bytes) -> re.Match:
    m = re.search(rb"Wrote (\S+) \((\d+) events, (\d+) lost\)", stderr)
    assert m, stderr
    return m
