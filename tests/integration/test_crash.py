"""SIGKILL at random moments (issue 5, point 1): every segment closed before the kill is
complete and readable with its metadata, no restore step; info and the reports read the
directory and say the recording did not stop cleanly. Prints the largest loss seen (the
seconds of events before the kill that are not on disk).

BPFCAP_KILLS sets the number of kills (50 by default; a longer run: 500)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from e2e import BPFCAP, bpfcap

from bpfcap.formats.trace import open_trace

KILLS = int(os.environ.get("BPFCAP_KILLS", "50"))
# Events all the time: 100 opens every 10 ms.
TICKER = """import os, time
while True:
    for _ in range(100):
        os.close(os.open("/etc/hostname", os.O_RDONLY))
    time.sleep(0.01)
"""


@pytest.fixture(scope="module")
def ticker():
    p = subprocess.Popen([sys.executable, "-c", TICKER])
    yield p
    p.kill()
    p.wait()


def test_sigkill_at_random_moments(tmp_path: Path, ticker) -> None:
    seed = int(os.environ.get("BPFCAP_KILL_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    worst_loss_s, read, empty = 0.0, 0, 0
    for i in range(KILLS):
        out = tmp_path / f"k{i}.parquet"
        offset = rng.uniform(0.1, 6.0)  # from the start: during BPF load too
        rec = subprocess.Popen(
            [BPFCAP, "record", "-e", "open,exec,fork", "-o", out],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(offset)
        killed_ns = time.monotonic_ns()
        rec.send_signal(signal.SIGKILL)
        rec.wait()
        where = f"kill {i} at {offset:.2f} s (seed {seed})"
        partial = Path(str(out) + ".partial")
        assert not out.exists(), where  # no half-merged file under the final name
        segments = sorted(partial.glob("seg-*.parquet")) if partial.exists() else []
        for seg in segments:  # every closed segment is whole, footer and metadata
            assert b"bpfcap.meta" in pq.read_metadata(seg).metadata, where
        if not segments:
            empty += 1  # killed before its first segment closed (or before attaching)
            r = bpfcap("info", out, check=False)
            assert r.returncode == 1 and r.stderr.count(b"\n") == 1, (where, r.stderr)
            continue
        read += 1
        t = open_trace(out)
        assert not t.complete, where
        info = bpfcap("info", out).stdout.decode()
        assert "NOT cleanly" in info, where
        for report in (["opensnoop"], ["execsnoop"], ["count", "--by", "kind"]):
            r = bpfcap("report", report[0], out, *report[1:])
            assert b"did not stop cleanly" in r.stderr, (where, report, r.stderr)
        ts = t.read("open", ["ts_ns", "lat_ns"])
        if ts.num_rows:
            last = max(a + b for a, b in zip(ts["ts_ns"].to_pylist(), ts["lat_ns"].to_pylist()))
            worst_loss_s = max(worst_loss_s, (killed_ns - last) / 1e9)
    print(
        f"\n{KILLS} kills (seed {seed}): {read} traces read, {empty} killed before a segment; "
        f"largest loss {worst_loss_s:.2f} s of events"
    )
    assert read >= KILLS // 3  # the others came before the first segment closed
    # Nothing outlives a kill: not the recorder, not its BPF loader helper.
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", f"{BPFCAP} record"], capture_output=True, text=True)
    assert left.stdout == "", left.stdout
    # Segments close every second and draining lags ~0.1 s: about 1.2 s at most is lost
    # (0.95 s in a 50-kill run here); more margin for a loaded CI machine.
    assert worst_loss_s < 2.0
