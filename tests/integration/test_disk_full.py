"""A full disk: the recorder stops cleanly, keeps every complete segment, says what
happened and how much was kept, exits non-zero (issue 5, point 3). On a small tmpfs.

The recordings keep only the opens of this test's opener (`-n COMM`): other processes
on the host (other recorders, other test runs) neither fill the disk nor change counts."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from e2e import bpfcap, closed_rows, start_recorder, wait_for

from bpfcap.formats.trace import HEADER, open_trace

COMM = f"bpfcapdf{os.getpid() % 100000}"  # at most 15 bytes: a task name
PATH = "/etc/hostname"
# Opens of one path, as fast as Python goes (~1 MB of segments per 400K), under COMM.
OPENER = f"""import ctypes, os, sys
ctypes.CDLL(None).prctl(15, {COMM.encode()!r}, 0, 0, 0)  # PR_SET_NAME
for _ in range(int(sys.argv[1])):
    os.close(os.open({PATH!r}, os.O_RDONLY))
"""
FULL = re.compile(
    r"^error: writing \S+\.partial failed: No space left on device; stopped, (\d+) events "
    r"in (\d+) complete segment\(s\) kept in \S+\.partial; free space",
    re.M,
)


@pytest.fixture
def tmpfs(tmp_path: Path):
    mnt = tmp_path / "small"
    mnt.mkdir()

    def mount(size: str) -> Path:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mnt], check=True)
        return mnt

    yield mount
    subprocess.run(["umount", mnt], check=False)


@contextmanager
def recording(out: Path):
    """`bpfcap record` of COMM's opens into `out`, attached; killed at the end if it
    still runs (a failed test)."""
    rec = start_recorder("-e", "open", "-n", COMM, "-o", out)
    try:
        yield rec
    finally:
        rec.kill()


def opens(n: int) -> None:
    subprocess.run([sys.executable, "-c", OPENER, str(n)], check=True)


def fill(mnt: Path, leave: int = 0) -> None:
    """Take the free space of `mnt` but about `leave` bytes (all of it: 0)."""
    st = os.statvfs(mnt)
    todo = max(0, st.f_bavail * st.f_frsize - leave)
    with open(mnt / "filler", "wb", buffering=0) as f:
        while todo > 0:
            try:
                todo -= f.write(b"\0" * min(todo, 1 << 16))
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break


def opens_on_disk(out: Path, n: int) -> None:
    """Wait until the closed segments of the recording to `out` hold `n` opens of PATH."""
    wait_for(
        lambda: closed_rows(out, "open", "path").count(PATH.encode()) == n,
        f"{n} opens in closed segments",
    )


def check_disk_full_stop(rec, out: Path) -> tuple[int, int]:
    """A recording stopped by the full disk: exit 1, one line saying how many events are
    kept in how many complete segments, both true of the directory left, which every
    command reads (an empty trace with a note when the disk filled before the first
    segment closed). Returns (events, segments)."""
    _, err = rec.communicate(timeout=60)  # stops by itself: the disk is full
    err = err.decode()
    assert rec.returncode == 1, err
    m = FULL.search(err)
    assert m, err
    events, segments = int(m.group(1)), int(m.group(2))
    partial = Path(str(out) + ".partial")
    assert not list(partial.glob("*.tmp"))  # the half-written segment is gone
    t = open_trace(out)  # finds the .partial directory
    assert t.read("open", ["ts_ns"]).num_rows == events
    assert t.files[0] == partial / HEADER and len(t.files) == 1 + segments
    info = bpfcap("info", out).stdout.decode()
    assert "NOT cleanly" in info
    report = bpfcap("report", "opensnoop", out)
    assert len(report.stdout.splitlines()) == 1 + events
    if segments == 0:  # the disk filled before the first segment closed
        assert events == 0 and len(t.notes) == 1
        assert f"note:       {t.notes[0]}" in info and t.notes[0] in report.stderr.decode()
    else:
        assert events > 0 and t.notes == []
    return events, segments


def test_disk_fills_while_recording(tmpfs) -> None:
    """A storm of opens fills 768 KiB: before or after the first segment closes,
    depending on the machine's speed; either way the message and the trace agree."""
    out = tmpfs("768k") / "t.parquet"
    with recording(out) as rec:
        opens(800_000)
        check_disk_full_stop(rec, out)


def test_disk_full_before_the_first_segment(tmpfs) -> None:
    mnt = tmpfs("1m")
    out = mnt / "t.parquet"
    with recording(out) as rec:
        fill(mnt)  # before any row of COMM came: no segment with rows can have closed
        opens(5003)
        assert check_disk_full_stop(rec, out) == (0, 0)


def test_disk_full_after_a_segment(tmpfs) -> None:
    mnt = tmpfs("4m")
    out = mnt / "t.parquet"
    with recording(out) as rec:
        opens(10007)
        opens_on_disk(out, 10007)
        fill(mnt)
        opens(5003)  # the next segment cannot be written
        events, segments = check_disk_full_stop(rec, out)
    assert events == 10007 and segments >= 1


def test_disk_full_at_the_merge_keeps_a_whole_trace(tmpfs) -> None:
    mnt = tmpfs("4m")
    out = mnt / "t.parquet"
    with recording(out) as rec:
        opens(200_000)
        opens_on_disk(out, 200_000)
        # Leave about 150 KB: the last segment (counters, no rows: COMM has stopped)
        # fits, a copy of the whole recording does not.
        fill(mnt, leave=150_000)
        rec.send_signal(signal.SIGINT)
        _, err = rec.communicate(timeout=60)
    err = err.decode()
    assert rec.returncode == 1, err
    assert re.search(
        r"^error: writing \S+t\.parquet failed: No space left on device; the complete "
        r"recording is kept as segments in \S+\.partial$",
        err,
        re.M,
    ), err
    assert not out.exists() and not list(mnt.glob("*.tmp"))
    t = open_trace(out)
    assert t.complete  # the last segment says the recording ended cleanly
    assert t.read("open", ["ts_ns"]).num_rows == 200_000
    assert "stopped:    cleanly (SIGINT)" in bpfcap("info", out).stdout.decode()
