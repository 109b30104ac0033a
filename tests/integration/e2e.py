"""Driving the real CLI and the workload from the end-to-end tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import workload  # tests/ is on sys.path (see conftest.py)

BPFCAP = str(Path(sys.executable).parent / "bpfcap")
WORKLOAD = workload.__file__
paths = workload.paths


def bpfcap(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([BPFCAP, *map(str, args)], capture_output=True, **kw)
    if check and r.returncode:
        raise AssertionError(f"bpfcap {args} exited {r.returncode}: {r.stderr!r}")
    return r


def start_recorder(*args: str) -> subprocess.Popen:
    """Start `bpfcap record ARGS` and return once it says it is recording."""
    p = subprocess.Popen(
        [BPFCAP, "record", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        lines.append(line)
        if line.startswith(b"Recording "):
            p.start_lines = lines  # type: ignore[attr-defined]
            return p
        if not line and p.poll() is not None:
            break
    p.kill()
    raise AssertionError(f"recorder did not start: {b''.join(lines)!r} {p.stderr.read()!r}")


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
