"""The recorder against its host and its own filters (issue 11): a command's exited
threads, a full tree filter, a dead terminal, the command's starting state."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from e2e import bpfcap, start_recorder, wait_for

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
