"""--max-events and --max-size (issue 5, point 2): the recording stops itself, says why,
and the trace holds what the limit allows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from e2e import BPFCAP, bpfcap, wrote_line

from bpfcap.formats.trace import open_trace

OPENER = """import os, sys, time
for _ in range(int(sys.argv[1])):
    os.close(os.open("/etc/hostname", os.O_RDONLY))
time.sleep(float(sys.argv[2]))
"""


def test_max_events_stops_at_exactly_n(tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    r = subprocess.run(
        [BPFCAP, "record", "-e", "open", "--max-events", "1009", "-o", out, "--",
         sys.executable, "-c", OPENER, "5003", "3"],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    m = wrote_line(r.stderr)
    t = open_trace(out)
    assert int(m.group(2)) == t.read("open", ["ts_ns"]).num_rows == 1009
    assert t.meta["stop_reason"] == "max-events"
    ev = t.meta["events"]["open"]
    assert ev["written"] + ev["lost"] + ev["over_limit"] == ev["seen"] >= 5003
    assert "cleanly (max-events)" in bpfcap("info", out).stdout.decode()


def test_max_size_stops_near_size(tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    opener = subprocess.Popen([sys.executable, "-c", OPENER, "3000000", "0"])
    try:
        r = subprocess.run(
            [BPFCAP, "record", "-e", "open", "--max-size", "300K", "-d", "60", "-o", out],
            capture_output=True,
            timeout=120,
        )
    finally:
        opener.kill()
        opener.wait()
    assert r.returncode == 0, r.stderr
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
