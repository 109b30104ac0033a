"""killsnoop: synthetic signal rows -> BCC v0.37 text (bcc-formats.md section 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfcap.cli.main import main
from bpfcap.tests.builders import START_NS, S, signal_row, write_trace

ROWS = [
    # BCC's example row: 12:11:34 (wall clock) bash 13967 SIGKILL to 1024, ESRCH.
    signal_row(ts_ns=START_NS + 14 * S),
    # Out of completion order on purpose; a group kill (-1234) by a thread of pid 500.
    signal_row(
        ts_ns=START_NS + 20 * S, tgid=500, tid=501, comm="sshd", sig=15, target=-1234, ret=0
    ),
    signal_row(ts_ns=START_NS + 16 * S, tgid=500, comm="sshd", sig=1, target=42, ret=0),
    # tkill and tgkill: shown only with --all-calls.
    signal_row(ts_ns=START_NS + 18 * S, syscall="tkill", sig=10, target=77, ret=0),
    signal_row(ts_ns=START_NS + 19 * S, syscall="tgkill", sig=6, target=77, target_tgid=70, ret=0),
]
# The recording started at 12:11:20 local time (UTC here).
CLOCK = {"realtime_minus_monotonic_ns": 1_709_640_680 * S - START_NS, "utc_offset_s": 0}


def trace_with(tmp_path: Path, pid_max: int | None) -> Path:
    host = {"pid_max": pid_max} if pid_max else {}
    return write_trace(tmp_path / f"k{pid_max}.parquet", ROWS, clock=CLOCK, host=host)


def run(capsysbinary, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["report", "killsnoop", *map(str, argv)])
    out, err = capsysbinary.readouterr()
    return exit_.value.code, out.decode(), err.decode()


def test_bcc_layout_with_pid_max_32768(tmp_path: Path, capsysbinary) -> None:
    rc, out, err = run(capsysbinary, trace_with(tmp_path, 32768))
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "TIME      PID    COMM             SIG  TPID   RESULT",
        "12:11:34  13967  bash             9    1024   -3",
        "12:11:36  500    sshd             1    42     0",
        "12:11:40  500    sshd             15   -1234  0",
    ]


def test_pid_width_follows_the_recording_hosts_pid_max(tmp_path: Path, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, trace_with(tmp_path, 4194304))
    assert out.splitlines()[0] == "TIME      PID      COMM             SIG  TPID     RESULT"
    _, out, _ = run(capsysbinary, trace_with(tmp_path, None))  # unknown: BCC's fallback, 6
    assert out.splitlines()[0] == "TIME      PID    COMM             SIG  TPID   RESULT"


def test_filters(tmp_path: Path, capsysbinary) -> None:
    t = trace_with(tmp_path, 32768)

    def pids(*argv: str) -> list[tuple[str, str]]:
        _, out, _ = run(capsysbinary, t, *argv)
        return [(ln.split()[1], ln.split()[3]) for ln in out.splitlines()[1:]]

    assert pids("-x") == [("13967", "9")]
    assert pids("-p", "500") == [("500", "1"), ("500", "15")]
    assert pids("-T", "-1234") == [("500", "15")]
    assert pids("-s", "9,1") == [("13967", "9"), ("500", "1")]
    assert pids("--all-calls", "-s", "10,6") == [("13967", "10"), ("13967", "6")]
    assert pids("-s", "KILL,sighup") == pids("-s", "9,1")
    rc, _, err = run(capsysbinary, t, "-s", "NOPE")
    assert rc == 2 and err == "error: -s NOPE: no such signal; give numbers or names: 9,TERM\n"
