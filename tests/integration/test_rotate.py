"""--rotate and --keep (issue 5, points 2 and 4): a directory of trace files is one trace
for every command; SIGHUP starts a new file; --keep is a flight recorder."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from e2e import BPFCAP, bpfcap, start_recorder, wait_for, wrote_line

from bpfcap.formats.trace import open_trace

PATH = "/etc/hostname"
# n opens of PATH, spread over about `seconds` (the pacing is the workload, events all
# along a recording, not a synchronisation).
OPENER = f"""import os, sys, time
n, seconds = int(sys.argv[1]), float(sys.argv[2])
for i in range(n):
    os.close(os.open("{PATH}", os.O_RDONLY))
    if i % 1000 == 999:
        time.sleep(seconds * 1000 / n)
"""


def opens_of_path(trace: Path, pids: list[int] | None = None) -> int:
    """Opens of PATH in the trace; by the processes `pids` only when given (system-wide
    recordings see other processes open it too)."""
    t = open_trace(trace).read("open", ["path", "tgid"])
    return sum(
        p == PATH.encode() and (pids is None or pid in pids)
        for p, pid in zip(t["path"].to_pylist(), t["tgid"].to_pylist())
    )


def open_path(n: int, seconds: float) -> int:
    """Run OPENER to its end; returns its pid."""
    p = subprocess.Popen([sys.executable, "-c", OPENER, str(n), str(seconds)])
    assert p.wait(timeout=120) == 0
    return p.pid


def joined(d: Path) -> list[str]:
    return sorted(f.name for f in d.glob("seg-*-*.parquet"))


def test_rotation_by_time_keeps_every_event_once(tmp_path: Path) -> None:
    out = tmp_path / "rot"
    r = subprocess.run(
        [BPFCAP, "record", "-e", "open", "--rotate", "1", "-o", out, "--",
         sys.executable, "-c", OPENER, "20011", "4"],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert out.is_dir() and len(joined(out)) >= 3
    assert not list(out.glob("*.tmp")) and not list(out.glob("seg-??????.parquet"))
    assert opens_of_path(out) == 20011  # across every file, none twice
    info = bpfcap("info", out).stdout.decode()
    assert "stopped:    cleanly (command exited)" in info
    ops = bpfcap("report", "opensnoop", out).stdout.decode()
    assert ops.count(PATH) == 20011
    # each file is the window it holds (from just after the previous one's end, or its
    # earliest row), within the recording's
    metas = [open_trace(f).meta for f in sorted(out.glob("seg-*-*.parquet"))]
    whole = open_trace(out).meta
    assert metas[0]["start_ns"] == whole["start_ns"]
    for before, m in zip(metas, metas[1:]):
        assert whole["start_ns"] < m["start_ns"] <= before["end_ns"] + 1 < m["end_ns"]
    # the rotated files are one recording of one boot: merge joins them as one host
    merged = tmp_path / "merged.parquet"
    bpfcap("merge", *sorted(out.glob("seg-*-*.parquet")), "-o", merged)
    meta = open_trace(merged).meta
    assert "hosts" not in meta
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert meta["host"]["boot_id"] == boot_id
    assert opens_of_path(merged) == 20011
    assert (meta["start_ns"], meta["end_ns"]) == (whole["start_ns"], whole["end_ns"])


def test_keep_is_a_flight_recorder(tmp_path: Path) -> None:
    out = tmp_path / "flight"
    r = subprocess.run(
        [BPFCAP, "record", "-e", "open", "--rotate", "1", "--keep", "2", "-o", out, "--",
         sys.executable, "-c", OPENER, "30000", "5"],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    files = joined(out)
    assert len(files) == 2, files
    kept = opens_of_path(out)
    assert 0 < kept < 30000
    m = re.search(rb"of which the newest (\d+) are kept \(--keep 2\)", r.stderr)
    assert m, r.stderr


def test_sighup_starts_a_new_file_and_size_rotation(tmp_path: Path) -> None:
    out = tmp_path / "hup"
    rec = start_recorder("-e", "open", "--rotate", "3600", "-o", out)
    pids = []
    for i in range(2):
        pids.append(open_path(3001, 0))
        # A closed segment not yet in a file (the header, or the opens): the file that
        # SIGHUP starts holds it, so it cannot be skipped as empty.
        wait_for(lambda: list(out.glob("seg-??????.parquet")), "a closed segment")
        rec.send_signal(signal.SIGHUP)
        wait_for(lambda n=i + 1: len(joined(out)) == n, f"file {i + 1} after SIGHUP")
    assert len(joined(out)) == 2  # one per SIGHUP, and no other (--rotate 3600)
    rec.send_signal(signal.SIGINT)
    _, err = rec.communicate(timeout=60)
    assert rec.returncode == 0, err
    wrote_line(err)
    assert opens_of_path(out, pids) == 6002

    by_size = tmp_path / "size"
    rec = start_recorder("-e", "open", "--rotate", "150K", "-o", by_size)
    pid = open_path(200000, 3)
    rec.send_signal(signal.SIGINT)
    rec.communicate(timeout=60)
    # ~500 KB of segments, a file per 150 KB: a matter of bytes, not of speed.
    assert len(joined(by_size)) >= 3
    assert opens_of_path(by_size, [pid]) == 200000


def test_rotate_arguments(tmp_path: Path) -> None:
    (tmp_path / "exists").mkdir()
    for args, message in [
        (["--keep", "3", "-o", tmp_path / "x"], b"--keep needs --rotate"),
        (["--rotate", "10", "--keep", "0", "-o", tmp_path / "x"], b"--keep must be at least 1"),
        (["--rotate", "soon", "-o", tmp_path / "x"], b"--rotate soon: a size such as"),
        (["--rotate", "10", "-o", tmp_path / "exists"], b"exists; --rotate writes its files"),
    ]:
        r = bpfcap("record", *args, check=False)
        assert r.returncode in (1, 2) and message in r.stderr, (args, r.stderr)
