"""SIGKILL at random moments (issue 5, point 1): every segment closed before the kill is
complete and readable with its metadata, no restore step; info and the reports read the
directory and say the recording did not stop cleanly. A kill before the first segment
closed (during the BPF load too) leaves the header: an empty trace with its metadata and
a note. Prints the largest loss seen (the seconds of events before the kill that are not
on disk).

The kill moments are random, but taken from states, not from a clock started at launch:
one kill in five comes at a random moment after launch (usually during the BPF load,
whose length depends on the machine), the others at a random moment within
KILL_WINDOW_S after the recorder says it is attached.

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
from e2e import BPFCAP, bpfcap, group_alive, read_line, start_recorder, wait_for

from bpfcap.formats.trace import HEADER, open_trace

KILLS = int(os.environ.get("BPFCAP_KILLS", "50"))
# Segments close every second: kills up to 3 s after attaching fall before the first
# one (an empty trace), and after one or two.
KILL_WINDOW_S = 3.0
# Segments close every SEGMENT_S (1 s); events reach them within a flush (0.1 s) and a
# drain (0.1 s), and a segment takes tens of ms to encode and rename: about 1.25 s of
# events at most are not on disk at a kill (0.9-1.02 s seen here in 50 kills, with busy
# CPUs or not). The bound gives a machine twice as slow, with its CPUs busy, the time to
# encode and rename twice over, and sleeps that overrun.
MAX_LOSS_S = 2.0
# Events all the time: 100 opens every 10 ms.
TICKER = """import os, time
while True:
    for _ in range(100):
        os.close(os.open("/etc/hostname", os.O_RDONLY))
    time.sleep(0.01)
"""
REPORTS = (["opensnoop"], ["execsnoop"], ["count", "--by", "kind"])
UNCLEAN = b"did not stop cleanly"
NOTE = "before its first segment closed"


@pytest.fixture(scope="module")
def ticker():
    p = subprocess.Popen([sys.executable, "-c", TICKER])
    yield p
    p.kill()
    p.wait()


def launch_and_kill_during_start(out: Path, rng: random.Random) -> tuple[int, int | None, int]:
    """A recorder killed at a random moment within 3 s of its launch (during the BPF
    load, mostly); returns its pid, when it said it was attached (if it did first) and
    when it was killed (monotonic ns)."""
    rec = subprocess.Popen(
        [BPFCAP, "record", "-e", "open,exec,fork", "-o", out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: its helpers are found by it
    )
    kill_at = time.monotonic() + rng.uniform(0.0, 3.0)
    attached = None
    while attached is None and (line := read_line(rec.stderr, kill_at)) is not None:
        if line.startswith(b"Recording "):
            attached = time.monotonic_ns()
        if not line:
            break
    if attached is not None:  # attached before the kill moment: kill at that moment
        time.sleep(max(0.0, kill_at - time.monotonic()))
    killed = time.monotonic_ns()
    rec.send_signal(signal.SIGKILL)
    rec.communicate()
    return rec.pid, attached, killed


def launch_and_kill_while_recording(out: Path, rng: random.Random) -> tuple[int, int, int]:
    """A recorder killed at a random moment within KILL_WINDOW_S after it said it was
    attached; returns its pid, when it said so and when it was killed (monotonic ns)."""
    rec = start_recorder("-e", "open,exec,fork", "-o", out, start_new_session=True)
    attached = time.monotonic_ns()
    time.sleep(rng.uniform(0.0, KILL_WINDOW_S))  # the kill moment itself, not a wait
    killed = time.monotonic_ns()
    rec.send_signal(signal.SIGKILL)
    rec.communicate()
    return rec.pid, attached, killed


def test_sigkill_at_random_moments(tmp_path: Path, ticker) -> None:
    seed = int(os.environ.get("BPFCAP_KILL_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    worst_loss_s, with_rows, empty, unstarted = 0.0, 0, 0, 0
    for i in range(KILLS):
        out = tmp_path / f"k{i}.parquet"
        early = i % 5 == 0
        if early:
            pid, attached, killed_ns = launch_and_kill_during_start(out, rng)
        else:
            pid, attached, killed_ns = launch_and_kill_while_recording(out, rng)
        where = f"kill {i} ({'at start' if early else 'recording'}, seed {seed})"
        # Nothing outlives a kill for long: not the recorder, not its BPF loader helper
        # (killed mid-compile, it exits once it finds nobody to hand the program to).
        wait_for(lambda p=pid: not group_alive(p), f"the processes of recorder {pid} to exit")
        partial = Path(str(out) + ".partial")
        assert not out.exists(), where  # no half-merged file under the final name
        if not (partial / HEADER).exists():
            # Killed before the header was written: before "Recording", always.
            assert attached is None, where
            unstarted += 1
            r = bpfcap("info", out, check=False)
            assert r.returncode == 1 and r.stderr.count(b"\n") == 1, (where, r.stderr)
            continue
        for seg in partial.glob("seg-*.parquet"):  # every file is whole, with metadata
            assert b"bpfcap.meta" in pq.read_metadata(seg).metadata, where
        t = open_trace(out)  # finds the .partial directory
        assert not t.complete, where
        info = bpfcap("info", out).stdout.decode()
        assert "NOT cleanly" in info, where
        report = REPORTS[i % len(REPORTS)]  # one per kill: each kill costs a BPF load
        r = bpfcap("report", report[0], out, *report[1:])
        assert UNCLEAN in r.stderr, (where, report, r.stderr)
        assert (NOTE in r.stderr.decode()) == (t.files == [partial / HEADER]), where
        if t.files == [partial / HEADER]:
            empty += 1
            assert NOTE in info and t.read("open").num_rows == 0, where
            last = None
        else:
            with_rows += 1
            assert NOTE not in info, where
            ts = t.read("open", ["ts_ns", "lat_ns"])
            ends = [a + b for a, b in zip(ts["ts_ns"].to_pylist(), ts["lat_ns"].to_pylist())]
            last = max(ends, default=None)
        if attached is not None:
            # The events not on disk: since the last one written, or since attaching.
            loss_s = (killed_ns - max(last or 0, attached)) / 1e9
            assert loss_s < MAX_LOSS_S, (where, loss_s)
            worst_loss_s = max(worst_loss_s, loss_s)
    print(
        f"\n{KILLS} kills (seed {seed}): {with_rows} traces with events, {empty} empty "
        f"(header only), {unstarted} killed before writing a header; largest loss "
        f"{worst_loss_s:.2f} s of events"
    )
    if KILLS >= 10:  # the random moments covered both phases
        assert with_rows and empty
