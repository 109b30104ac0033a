"""execsnoop right for every exec, recorded with `-e exec` alone: strings that are not
resident in the exec'ing process at entry (literals after fork, in a vfork child, from a
thread, behind #! interpreters, a 128-byte argument, more arguments than execsnoop shows)
show whole; every PPID is the real parent; failed execs show what could be read, counted
in `info`. The workload is tests/workloads/exec_literals.c (see its comment for why its
strings are not resident)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from e2e import bpfcap

pytestmark = pytest.mark.root

SOURCE = Path(__file__).parent.parent / "workloads" / "exec_literals.c"
ARG_128 = b"0123456789abcdef" * 7 + b"0123456789abcdeX"  # the first 128 bytes, as BCC
SCRIPTS = {"exec-sh.sh": "#!/bin/sh", "exec-sh-e.sh": "#!/bin/sh -e", "exec-long.sh": "#!/bin/sh"}


def expected_args(mode: str, d: Path) -> bytes:
    """ARGS as BCC's execsnoop prints them when the strings are readable: the filename,
    argv[1..19], `...` when argv goes on."""
    return {
        "fork": b"/bin/true fork-arg-1 fork arg with spaces",
        "vfork": b"/bin/true vfork-arg-1",
        "thread": b"/bin/true thread-arg-1 " + ARG_128,
        "script-sh": b"%s/exec-sh.sh script-arg-1 script-arg-2" % bytes(d),
        "script-sh-e": b"%s/exec-sh-e.sh script-arg-1 script-arg-2" % bytes(d),
        "script-long": b" ".join([b"%s/exec-long.sh" % bytes(d)] + [b"long-arg"] * 19 + [b"..."]),
        # A failed exec leaves no new program to read from: the filename was faulted in
        # by the kernel (getname) and is read again at the exit; argv[1], never touched,
        # shows empty as in BCC.
        "failed": b"/nonexistent-bpfcap/exec-literal ",
    }[mode]


def expected_comm(mode: str) -> bytes:
    if mode.startswith("script"):
        return {"script-sh": b"exec-sh.sh", "script-sh-e": b"exec-sh-e.sh"}.get(
            mode, b"exec-long.sh"
        )
    return b"exec_literals" if mode == "failed" else b"true"


def test_every_exec_whole_with_its_parent(tmp_path: Path) -> None:
    binary = tmp_path / "exec_literals"
    subprocess.run(["gcc", "-O1", "-pthread", "-o", binary, SOURCE], check=True)
    for name, line in SCRIPTS.items():
        (tmp_path / name).write_text(f"{line}\nexit 0\n")
        (tmp_path / name).chmod(0o755)
    trace = tmp_path / "t.parquet"
    r = bpfcap("record", "-e", "exec", "-o", trace, "--", binary, tmp_path)
    started = [ln.split() for ln in r.stdout.decode().splitlines()]
    modes = [m for m, _, _ in started]
    assert modes.count("fork") == 5 and modes.count("vfork") == 3
    assert modes.count("thread") == 2 and modes.count("failed") == 2
    assert len(started) == 15
    out = bpfcap("report", "execsnoop", "-x", trace).stdout
    lines = out.splitlines()
    assert lines[0] == b"COMM             PID     PPID    RET ARGS"
    by_pid = {int(ln.split()[1]): ln for ln in lines[1:]}
    # The workload itself, and one row per exec it started: nothing else (-- COMMAND).
    assert len(lines) == 1 + 1 + len(started)
    for mode, pid, ppid in started:
        ret = -2 if mode == "failed" else 0
        want = b"%-16s %-7d %-7s %3d %s" % (
            expected_comm(mode),
            int(pid),
            ppid.encode(),
            ret,
            expected_args(mode, tmp_path),
        )
        assert by_pid[int(pid)] == want, mode

    # Strings not resident at entry are counted, and so are the two failed execs' argv[1].
    info = bpfcap("info", trace).stdout.decode()
    assert "exec.parent    read (ppid, pcomm)" in info
    line = next(ln for ln in info.splitlines() if ln.startswith("exec args:"))
    from_image = int(line.split()[2])
    # Every fork, thread and script exec; of the vfork ones the first at least (vfork
    # children share the parent's memory, where that exec's kernel copy faults it in).
    assert 5 + 1 + 2 + 3 <= from_image <= 13, line
    assert "2 execs show 2 strings empty" in info

    # -M: the parent's comm, read at the exec.
    m = bpfcap("report", "execsnoop", "-M", trace).stdout.splitlines()
    assert all(ln.split()[2] == b"exec_literals" for ln in m[1:] if b"/bin/true" in ln)
