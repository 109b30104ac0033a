"""The recorder against its host and its own filters (issue 11): a command's exited
threads, a full tree filter, a dead terminal, the command's starting state."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from e2e import ATTACH_TIMEOUT_S, BPFCAP, bpfcap, start_recorder, wait_for

from bpfcap.formats.trace import open_trace

pytestmark = pytest.mark.root

NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")


def _meta(path: Path) -> dict:
    return json.loads(pq.read_metadata(path).metadata[b"bpfcap.meta"])


def _opened(trace: Path, path: str) -> list[int]:
    """tgids of the open rows of `path` in `trace`."""
    t = open_trace(trace).read("open", ["tgid", "path"]).to_pylist()
    return [r["tgid"] for r in t if r["path"] == path.encode()]


def _fork_with_pid(pid: int, argv: list[str]) -> subprocess.CompletedProcess | None:
    """Run `argv` as a process whose pid is `pid` (ns_last_pid makes the next fork take
    it; another fork on the host may take it first: retried). None if it never did."""
    for _ in range(200):
        NS_LAST_PID.write_text(str(pid - 1))
        r = subprocess.run(
            ["sh", "-c", 'echo $$; exec "$@"', "sh", *argv], capture_output=True, text=True
        )
        if int(r.stdout.split()[0]) == pid:
            return r
    return None


def test_command_filter_forgets_exited_threads(tmp_path: Path) -> None:
    """A thread of the command exits; an unrelated process that then gets the thread's
    id is not recorded (the id left the in-kernel set at the thread's exit). Before, every
    thread id stayed and, once pids wrapped, unrelated processes were recorded."""
    tid_file, go = tmp_path / "tid", tmp_path / "go"
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    script = (
        "import os, threading, time\n"
        "def t():\n"
        f"    open({str(tid_file)!r} + '.tmp', 'w').write(str(threading.get_native_id()))\n"
        f"    os.rename({str(tid_file)!r} + '.tmp', {str(tid_file)!r})\n"
        "th = threading.Thread(target=t); th.start(); th.join()\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        f"os.path.exists({str(mine)!r}) or open({str(mine)!r}, 'w').close()\n"
    )
    out = tmp_path / "t.parquet"
    p = start_recorder("-e", "open", "-o", out, "--", sys.executable, "-c", script)
    tid = int(wait_for(lambda: tid_file.exists() and tid_file.read_text(), "the thread's id"))
    ran = _fork_with_pid(tid, ["cat", str(theirs)])
    go.touch()
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert ran is not None, f"no process could be given pid {tid}"
    assert _opened(out, str(theirs)) == []  # the unrelated process: not recorded
    assert len(_opened(out, str(mine))) == 1  # the command itself: recorded


def test_full_tree_filter_is_counted_and_said(tmp_path: Path) -> None:
    """More live tasks than the tree filter holds: the ones left out are counted in the
    trace and the recorder warns."""
    out = tmp_path / "t.parquet"
    cmd = "for i in 1 2 3 4 5; do sleep 0.3 & done; wait"
    r = bpfcap("record", "-e", "exec", "--tree-max", "2", "-o", out, "--", "sh", "-c", cmd)
    # sh is in the set, and one child: the other 4 sleeps are counted.
    assert _meta(out)["tree_filter_full"] == 4
    assert b"process-tree filter is full" in r.stderr
    assert "4 new tasks of the command not followed" in bpfcap("info", out).stdout.decode()
    assert b"were not followed" in bpfcap("report", "execsnoop", out).stderr
    execs = open_trace(out).read("exec", ["filename", "ret"]).to_pylist()
    assert sum(e["filename"].endswith(b"/sleep") and e["ret"] == 0 for e in execs) == 1


def _recording_on(stderr_fd: int, *args) -> subprocess.Popen:
    """`bpfcap record ARGS` with stderr on `stderr_fd`, started (its "Recording" line read
    from the other end by the caller)."""
    return subprocess.Popen(
        [BPFCAP, "record", *map(str, args)], stderr=stderr_fd, stdout=subprocess.DEVNULL
    )


def _read_until(fd: int, marker: bytes) -> bytes:
    seen = b""
    deadline = time.monotonic() + ATTACH_TIMEOUT_S
    while marker not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {marker!r} in {seen!r}"
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # a pty's other end closed: EIO
            chunk = b""
        assert chunk, f"no {marker!r} in {seen!r}"
        seen += chunk
    return seen


def test_hangup_of_the_terminal_does_not_stop_the_recording(tmp_path: Path) -> None:
    """The terminal goes away (ssh drop: writes to it fail with EIO), then SIGHUP comes:
    the recording goes on, and stops cleanly with every event on Ctrl-C."""
    main, sub = pty.openpty()
    out = tmp_path / "t.parquet"
    p = _recording_on(sub, "-e", "open", "-o", out)
    os.close(sub)
    _read_until(main, b"Recording")
    os.close(main)  # hung up: the recorder's writes to stderr now fail
    os.kill(p.pid, signal.SIGHUP)  # says "SIGHUP ignored"... to a dead terminal
    marker = tmp_path / "after-hangup"
    for _ in range(7):
        marker.exists()  # a stat, not an open
        subprocess.run(["cat", str(marker)], capture_output=True)
    # Let the recorder see the signal and write to the dead terminal before stopping it.
    wait_for(lambda: len(list(Path(str(out) + ".partial").glob("seg-*"))) >= 2, "a segment")
    os.kill(p.pid, signal.SIGINT)
    assert p.wait(timeout=120) == 0
    meta = _meta(out)
    assert meta["clean_stop"] is True
    assert len(_opened(out, str(marker))) == 7


def test_closed_stderr_pipe_loses_nothing(tmp_path: Path) -> None:
    """`bpfcap record ... 2>&1 | head -1`: every message after the first line meets a
    closed pipe (EPIPE). The final file is written all the same and the command's exit
    status passed on."""
    r, w = os.pipe()
    out = tmp_path / "t.parquet"
    marker = tmp_path / "opened"
    cmd = f"sleep 0.5; for i in 1 2 3 4 5; do cat {marker} 2>/dev/null; done; exit 3"
    p = _recording_on(w, "-e", "open", "-o", out, "--", "sh", "-c", cmd)
    os.close(w)
    _read_until(r, b"\n")
    os.close(r)  # head -1 is done
    os.kill(p.pid, signal.SIGHUP)  # one more message, to the closed pipe
    assert p.wait(timeout=120) == 3
    assert _meta(out)["clean_stop"] is True
    assert len(_opened(out, str(marker))) == 5


def _cpuset_dir() -> Path | None:
    """A cpuset cgroup directory (v1, or v2 with the controller) to make a child in."""
    v1 = Path("/sys/fs/cgroup/cpuset")
    if (v1 / "cpuset.cpus").exists():
        return v1
    v2 = Path("/sys/fs/cgroup")
    controllers = v2 / "cgroup.controllers"
    if controllers.exists() and "cpuset" in controllers.read_text().split():
        (v2 / "cgroup.subtree_control").write_text("+cpuset")
        return v2
    return None


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPUs")
def test_shrinking_cpuset_does_not_stop_the_recording(tmp_path: Path) -> None:
    """The recorder's cpuset loses a CPU mid-recording (a container's limits changed):
    its flush can no longer run there. Recording goes on; the events of that CPU are all
    in the trace (its partial batches are read at stop)."""
    root = _cpuset_dir()
    if root is None:
        pytest.fail("no cpuset cgroup controller on this host (cgroup v1 or v2)")
    group = root / f"bpfcap-test-{os.getpid()}"
    group.mkdir()
    p = None
    try:
        mems = root / (
            "cpuset.mems" if (root / "cpuset.mems").exists() else "cpuset.mems.effective"
        )
        (group / "cpuset.mems").write_text(mems.read_text().strip() or "0")
        (group / "cpuset.cpus").write_text("0-1")
        out = tmp_path / "t.parquet"
        p = start_recorder("-e", "open", "-o", out)
        (group / "cgroup.procs").write_text(str(p.pid))
        (group / "cpuset.cpus").write_text("0")
        partial = Path(str(out) + ".partial")
        n = len(list(partial.glob("seg-*")))
        wait_for(lambda: len(list(partial.glob("seg-*"))) >= n + 2, "two flushes")
        marker = tmp_path / "on-cpu-1"
        for _ in range(11):
            subprocess.run(["taskset", "-c", "1", "cat", str(marker)], capture_output=True)
        n = len(list(partial.glob("seg-*")))
        wait_for(lambda: len(list(partial.glob("seg-*"))) >= n + 2, "two more flushes")
        assert p.poll() is None, p.communicate()[1]
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert _meta(out)["clean_stop"] is True
        assert len(_opened(out, str(marker))) == 11
    finally:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()
        group.rmdir()


def _status(text: str) -> dict[str, str]:
    return dict(ln.split(":\t", 1) for ln in text.splitlines() if ":\t" in ln)


def test_command_starts_as_from_the_shell(tmp_path: Path) -> None:
    """The command's signal dispositions and mask are a shell's (Python ignores SIGPIPE
    and SIGXFSZ; that used to leak into the command): `yes | head -1` ends by SIGPIPE."""
    show = "grep -E '^(SigIgn|SigBlk):' /proc/self/status"
    r = bpfcap("record", "-e", "exec", "-o", tmp_path / "a.parquet", "--", "sh", "-c", show)
    direct = subprocess.run(["sh", "-c", show], capture_output=True, text=True).stdout
    assert _status(r.stdout.decode()) == _status(direct)
    assert int(_status(r.stdout.decode())["SigIgn"], 16) & (1 << (signal.SIGPIPE - 1)) == 0
    pipeline = "yes | head -1 >/dev/null; exit ${PIPESTATUS[0]}"
    r = bpfcap(
        "record",
        "-e",
        "exec",
        "-o",
        tmp_path / "b.parquet",
        "--",
        "bash",
        "-c",
        pipeline,
        check=False,
    )
    assert r.returncode == 128 + signal.SIGPIPE, r.stderr  # yes died of SIGPIPE
    assert b"Broken pipe" not in r.stderr


def test_command_runs_as_user(tmp_path: Path) -> None:
    """--user runs the command as `sudo -u` would; it is recorded all the same."""
    out = tmp_path / "t.parquet"
    tmp_path.chmod(0o755)
    show = "id -u; id -g; echo $HOME $USER $LOGNAME; cat /etc/hostname >/dev/null"
    r = bpfcap("record", "-e", "open", "--user", "nobody", "-o", out, "--", "sh", "-c", show)
    uid, gid, env = r.stdout.decode().splitlines()
    assert (uid, gid) == ("65534", "65534")
    assert env == "/nonexistent nobody nobody"
    rows = open_trace(out).read("open", ["uid", "path"]).to_pylist()
    assert {r["uid"] for r in rows if r["path"] == b"/etc/hostname"} == {65534}


def test_comm_filter_takes_any_bytes(tmp_path: Path) -> None:
    """-n with bytes that are not UTF-8 (a task may name itself so) records, not exit 70."""
    r = bpfcap(
        "record",
        "-e",
        "open",
        "-n",
        os.fsdecode(b"\xff"),
        "-d",
        "0.5",
        "-o",
        tmp_path / "t.parquet",
    )
    assert b"tasks named \\xff" in r.stderr
