"""--max-events and --max-size (issue 5, point 2): the recording stops itself, says why,
and the trace holds what the limit allows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from e2e import BPFCAP, bpfcap, start_recorder, wrote_line

from bpfcap.formats.trace import open_trace

# N opens, then it waits for the end of its stdin: the command outlives the recording
# whatever the speed, so that the recording stops by its limit, not by the command.
OPENER = """import os, sys
for _ in range(int(sys.argv[1])):
    os.close(os.open("/etc/hostname", os.O_RDONLY))
sys.stdin.read()
"""
STORM = """import os
while True:
    os.close(os.open("/etc/hostname", os.O_RDONLY))
"""


def test_max_events_stops_at_exactly_n(tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    with subprocess.Popen(
        [BPFCAP, "record", "-e", "open", "--max-events", "1009", "-o", out, "--",
         sys.executable, "-c", OPENER, "5003"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    ) as rec:  # fmt: skip
        try:
            rec.wait(timeout=120)
        finally:
            rec.stdin.close()  # the command (sharing the recorder's stdin) ends
        err = rec.stderr.read()  # to its end: the command holds it too, until it ends
    assert rec.returncode == 0, err
    assert b"still running; recording stopped" in err
    m = wrote_line(err)
    t = open_trace(out)
    assert int(m.group(2)) == t.read("open", ["ts_ns"]).num_rows == 1009
    assert t.meta["stop_reason"] == "max-events"
    ev = t.meta["events"]["open"]
    assert ev["written"] + ev["lost"] + ev["over_limit"] == ev["seen"] >= 5003
    assert "cleanly (max-events)" in bpfcap("info", out).stdout.decode()


def test_max_size_stops_near_size(tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    rec = start_recorder("-e", "open", "--max-size", "300K", "-d", "120", "-o", out)
    storm = subprocess.Popen([sys.executable, "-c", STORM])  # once recording: it counts
    try:
        _, err = rec.communicate(timeout=180)
    finally:
        storm.kill()
        storm.wait()
    assert rec.returncode == 0, err
    t = open_trace(out)
    assert t.meta["stop_reason"] == "max-size"
    # Checked as each segment closes: at most one segment (<= 1 s, <= 256K rows) over.
    assert 300 * 1024 <= out.stat().st_size < 300 * 1024 + 2_000_000


def test_bad_limits(tmp_path: Path) -> None:
    for args, message in [
        (["--max-size", "lots"], b"--max-size lots: a size such as 500M or 2G"),
        (["--max-events", "0"], b"--max-events must be positive, not 0"),
    ]:
        r = bpfcap("record", *args, "-o", tmp_path / "x.parquet", check=False)
        assert r.returncode == 2 and message in r.stderr, r.stderr
        assert r.stderr.count(b"\n") == 1
