"""Record real kernel events from a known workload and check exact counts in the reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from e2e import (
    WORKLOAD,
    bpfcap,
    cleanup,
    closed_rows,
    go,
    paths,
    rows,
    start_recorder,
    start_workload,
    wait_for,
    wrote_line,
)
from workload import EXECS, FAILED_EXECS, MISSING_OPENS, OK_OPENS

pytestmark = pytest.mark.root


@pytest.fixture
def tag(request):
    t = f"{request.node.name[:20]}-{os.getpid()}".replace("[", "").replace("]", "")
    yield t
    cleanup(t)


def check_opens(trace, tag, pid) -> None:
    p = paths(tag)
    out = bpfcap("report", "opensnoop", trace).stdout.decode()
    assert out.splitlines()[0].split() == ["PID", "COMM", "FD", "ERR", "PATH"]
    ok = rows(out, p["ok"])
    assert len(ok) == OK_OPENS
    for pid_s, _comm, fd, err, path in ok:
        assert (int(pid_s), int(fd) >= 0, err, path) == (pid, True, "0", p["ok"])
    missing = rows(out, p["missing"])
    assert len(missing) == MISSING_OPENS
    assert {(int(r[0]), r[2], r[3]) for r in missing} == {(pid, "-1", "2")}
    failed = bpfcap("report", "opensnoop", "-x", trace).stdout
    assert len(rows(failed, p["missing"])) == MISSING_OPENS
    assert rows(failed, p["ok"]) == []


def check_execs(trace, tag, pid) -> None:
    p = paths(tag)
    out = bpfcap("report", "execsnoop", trace).stdout.decode()
    assert out.splitlines()[0].split() == ["COMM", "PID", "PPID", "RET", "ARGS"]
    execs = rows(out, p["exec_arg"])
    assert len(execs) == EXECS
    assert sorted(r[5] for r in execs) == sorted(f"{p['exec_arg']}{i}" for i in range(EXECS))
    for comm, _pid, ppid, ret, filename, _arg in execs:
        assert (comm, int(ppid), ret, filename) == ("true", pid, "0", "/bin/true")
    assert rows(out, p["bad_exec"]) == []  # failed execs only with -x
    with_failed = bpfcap("report", "execsnoop", "-x", trace).stdout
    bad = rows(with_failed, p["bad_exec"])
    assert len(bad) == FAILED_EXECS
    assert {(r[2], r[3], r[4], r[5]) for r in bad} == {(str(pid), "-2", p["bad_exec"], "x")}
    assert len(rows(with_failed, p["exec_arg"])) == EXECS


def test_record_command_exact_counts_and_only_its_processes(tmp_path, tag):
    trace = tmp_path / "cmd.parquet"
    Path_ok = paths(tag)["ok"]
    open(Path_ok, "w").close()
    # The command waits for a line on its stdin (the recorder's): it runs once the
    # outsider below is done, while the recording goes on.
    rec = start_recorder(
        "-o", trace, "--", sys.executable, WORKLOAD, "run", tag, "--wait-stdin",
        stdin=subprocess.PIPE,
    )  # fmt: skip
    # Outside the command's process tree, the same paths and arguments while it records.
    outsider = f"import os\nfor _ in range(5): os.close(os.open({Path_ok!r}, os.O_RDONLY))\n"
    subprocess.run([sys.executable, "-c", outsider], check=True)
    subprocess.run(["/bin/true", paths(tag)["exec_arg"] + "outsider"], check=True)
    stdout, stderr = rec.communicate(b"go\n", timeout=120)
    assert rec.returncode == 0, stderr
    pid = int(stdout.decode().split("pid=")[1].split()[0])
    m = wrote_line(stderr)
    assert m.group(1).decode() == str(trace) and m.group(3) == b"0"
    assert oct(trace.stat().st_mode & 0o777) == "0o600"
    assert not (tmp_path / "cmd.parquet.partial").exists()
    check_opens(trace, tag, pid)
    check_execs(trace, tag, pid)
    # Written + lost == seen, per type, and the file says so.
    meta = json.loads(pq.read_metadata(trace).metadata[b"bpfcap.meta"])
    for kind, c in meta["events"].items():
        assert c["written"] + c["lost"] == c["seen"], kind
    assert meta["clean_stop"] and meta["stop_reason"] == "command exited"


def test_record_command_exit_status_is_passed_on(tmp_path):
    rec = bpfcap(
        "record",
        "-e",
        "exec",
        "-o",
        tmp_path / "t.parquet",
        "--",
        "sh",
        "-c",
        "exit 3",
        check=False,
    )
    assert rec.returncode == 3, rec.stderr
    assert b"Wrote " in rec.stderr


def test_record_duration_system_wide(tmp_path, tag):
    trace = tmp_path / "sys.parquet"
    wl, pid = start_workload(tag)
    rec = start_recorder("-d", "4", "-o", trace)
    go(wl)
    # The workload (~0.3 s here) ran whole within the 4 s: the exact counts below hold.
    assert rec.poll() is None, "the recording ended before the workload did"
    _, stderr = rec.communicate(timeout=60)
    assert rec.returncode == 0, stderr
    check_opens(trace, tag, pid)
    check_execs(trace, tag, pid)
    info = bpfcap("info", trace).stdout.decode()
    assert "stopped:    cleanly (duration)" in info
    # From start (before the BPF load) to stop: at least the 4 s.
    assert float(info.split("duration:")[1].split()[0]) >= 4.0
    # -d 4 counts from when the hooks are live (the BPF load, seconds on a slow machine,
    # is not counted); the stop comes at the next drain (<= 0.1 s), and the end once the
    # hooks are detached: ~1.9 s here, with busy CPUs too (28 attachments, each closed
    # after an RCU grace period). Twice that as the margin.
    meta = json.loads(pq.read_metadata(trace).metadata[b"bpfcap.meta"])
    assert 4.0 <= (meta["end_ns"] - meta["attached_ns"]) / 1e9 < 4.0 + 4.0


def test_record_pid_filter_and_sigint(tmp_path, tag):
    """-p keeps that process only (its children's execs are theirs); Ctrl-C stops cleanly."""
    trace = tmp_path / "pid.parquet"
    wl, pid = start_workload(tag)
    rec = start_recorder("-p", pid, "-e", "open,exec", "-o", trace)
    go(wl)  # the workload has exited: its events are in the kernel, read at the stop
    rec.send_signal(signal.SIGINT)
    _, stderr = rec.communicate(timeout=60)
    assert rec.returncode == 0, stderr
    check_opens(trace, tag, pid)
    out = bpfcap("report", "opensnoop", trace).stdout
    assert {r[0] for r in (ln.split() for ln in out.decode().splitlines()[1:])} == {str(pid)}
    assert rows(bpfcap("report", "execsnoop", "-x", trace).stdout, tag) == []


def in_closed_segments(trace: Path, tag: str) -> bool:
    """The closed segments of the recording into `trace` hold all the workload's events."""
    p = paths(tag)
    opens = closed_rows(trace, "open", "path")
    execs = closed_rows(trace, "exec", "filename")
    args = closed_rows(trace, "exec", "args")
    return (
        opens.count(p["ok"].encode()) == OK_OPENS
        and opens.count(p["missing"].encode()) == MISSING_OPENS
        and execs.count(p["bad_exec"].encode()) == FAILED_EXECS
        and sum(bool(a) and a[0].startswith(p["exec_arg"].encode()) for a in args) == EXECS
    )


def test_sigkill_leaves_readable_segments(tmp_path, tag):
    """What reached closed segments before a SIGKILL is read with no restore step."""
    trace = tmp_path / "killed.parquet"
    wl, pid = start_workload(tag)
    rec = start_recorder("-o", trace)
    go(wl)
    wait_for(lambda: in_closed_segments(trace, tag), "the workload's events in segments")
    rec.kill()
    rec.communicate(timeout=30)
    assert not trace.exists()
    assert (tmp_path / "killed.parquet.partial").is_dir()
    check_opens(trace, tag, pid)  # found through killed.parquet.partial/
    check_execs(trace, tag, pid)
    info = bpfcap("info", trace).stdout.decode()
    assert "NOT cleanly" in info
    r = bpfcap("report", "opensnoop", trace)
    assert b"did not stop cleanly" in r.stderr


def test_comm_filter_in_kernel(tmp_path, tag):
    """-n keeps tasks of that name only: the same workload under another name is absent."""
    trace = tmp_path / "comm.parquet"
    named, pid = start_workload(tag, "--comm", "bpfcapwl")
    other, other_pid = start_workload(tag)
    rec = start_recorder("-n", "bpfcapwl", "-o", trace)
    go(named)
    go(other)
    rec.send_signal(signal.SIGINT)
    _, stderr = rec.communicate(timeout=60)
    assert rec.returncode == 0, stderr
    check_opens(trace, tag, pid)  # exact counts: the other process's opens are not there
    check_execs(trace, tag, pid)
    comms = {
        ln.split()[1]
        for ln in bpfcap("report", "opensnoop", trace).stdout.decode().splitlines()[1:]
    }
    assert comms == {"bpfcapwl"}


RENAME = """
import ctypes, os, sys
for p in sys.argv[1:3]:
    open(p, "w").close()
os.close(os.open(sys.argv[1], os.O_RDONLY))           # as "python3"
ctypes.CDLL(None).prctl(15, b"renamed-wl", 0, 0, 0)     # PR_SET_NAME
os.close(os.open(sys.argv[2], os.O_RDONLY))           # as "renamed-wl"
"""


def test_comm_follows_a_rename(tmp_path):
    """The comm of each open is the task's name at that moment (the in-kernel comm cache
    is invalidated by task:task_rename)."""
    trace = tmp_path / "rename.parquet"
    a, b = tmp_path / "before", tmp_path / "after"
    bpfcap("record", "-e", "open", "-o", trace, "--", sys.executable, "-c", RENAME, a, b)
    out = bpfcap("report", "opensnoop", trace).stdout.decode().splitlines()
    by_path = {
        ln.split()[-1]: ln.split()[1]
        for ln in out[1:]
        if ln.split()[-1] in (str(a), str(b)) and ln.split()[2] != "-1"
    }
    assert by_path[str(b)] == "renamed-wl"
    assert by_path[str(a)].startswith("python")


def test_second_ctrl_c_while_stopping_loses_nothing(tmp_path: Path) -> None:
    """SIGINT, then SIGINT and SIGTERM again while the last events are written and the
    segments merged: the recorder says it is already stopping and finishes the trace."""
    from bpfcap.formats.trace import open_trace

    out = tmp_path / "t.parquet"
    rec = start_recorder("-e", "open", "-o", out)
    opener = "import os\nfor _ in range(300000): os.close(os.open('/etc/hostname', os.O_RDONLY))"
    subprocess.run([sys.executable, "-c", opener], check=True)
    rec.send_signal(signal.SIGINT)
    # Not a synchronisation: the signals are spread over the stop, and what is asserted
    # below holds whichever phase of it each one meets.
    for again in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
        time.sleep(0.02)
        if rec.poll() is None:
            rec.send_signal(again)
    _, err = rec.communicate(timeout=60)
    assert rec.returncode == 0, err
    m = wrote_line(err)
    t = open_trace(out)
    assert t.complete and t.meta["stop_reason"] == "SIGINT"
    assert t.read("open", ["ts_ns"]).num_rows == int(m.group(2)) >= 300000
    assert int(m.group(3)) == 0


def test_signals_at_once_after_the_recording_line_are_handled(tmp_path: Path) -> None:
    """Whoever waits for "Recording ..." may signal at once: SIGHUP (without --rotate:
    ignored, with a note) and SIGINT (a clean stop) already meet the recorder's handlers,
    not Python's defaults (SIGHUP would kill it, SIGINT end in a traceback)."""
    out = tmp_path / "t.parquet"
    rec = start_recorder("-e", "open", "-o", out)
    rec.send_signal(signal.SIGHUP)
    rec.send_signal(signal.SIGINT)
    _, err = rec.communicate(timeout=60)
    assert rec.returncode == 0, err
    assert b"SIGHUP ignored" in err
    wrote_line(err)
