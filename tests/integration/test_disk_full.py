"""A full disk: the recorder stops cleanly, keeps every complete segment, says what
happened and how much was kept, exits non-zero (issue 5, point 3). On a small tmpfs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e import bpfcap, start_recorder

from bpfcap.formats.trace import open_trace

# Opens of one path, as fast as Python goes: ~1 MB of segments per 400K.
OPENER = """import os, sys
for _ in range(int(sys.argv[1])):
    os.close(os.open("/etc/hostname", os.O_RDONLY))
"""


@pytest.fixture
def tmpfs(tmp_path: Path):
    mnt = tmp_path / "small"
    mnt.mkdir()

    def mount(size: str) -> Path:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mnt], check=True)
        return mnt

    yield mount
    subprocess.run(["umount", mnt], check=False)


def opens(n: int) -> None:
    subprocess.run([sys.executable, "-c", OPENER, str(n)], check=True)


def test_disk_fills_while_recording(tmpfs) -> None:
    out = tmpfs("768k") / "t.parquet"
    rec = start_recorder("-e", "open", "-o", out)
    opens(800_000)
    try:
        _, err = rec.communicate(timeout=60)  # stops by itself: the disk is full
    finally:
        rec.kill()
    err = err.decode()
    assert rec.returncode == 1
    m = re.search(
        r"^error: writing \S+\.partial failed: No space left on device; stopped, (\d+) events "
        r"in (\d+) complete segment\(s\) kept in \S+\.partial; free space",
        err,
        re.M,
    )
    assert m, err
    partial = Path(str(out) + ".partial")
    assert not list(partial.glob("*.tmp"))  # the half-written segment is gone
    t = open_trace(out)  # finds the .partial directory
    assert t.read("open", ["ts_ns"]).num_rows == int(m.group(1)) > 0
    assert len(t.files) == int(m.group(2))
    info = bpfcap("info", out).stdout.decode()
    assert "NOT cleanly" in info


def test_disk_full_at_the_merge_keeps_a_whole_trace(tmpfs) -> None:
    mnt = tmpfs("4m")
    out = mnt / "t.parquet"
    rec = start_recorder("-e", "open", "-o", out)
    opens(200_000)
    time.sleep(2.5)  # the opens are in closed segments
    # Leave about 150 KB: the last segment fits, a copy of the whole recording does not.
    st = os.statvfs(mnt)
    filler = mnt / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 150_000))
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
    assert t.read("open", ["ts_ns"]).num_rows >= 200_000
    assert "stopped:    cleanly (SIGINT)" in bpfcap("info", out).stdout.decode()
