"""`bpfcap report ...` end to end on small trace files: output, formats, stderr notes and
errors through the CLI's error boundary (bpfcap.cli.main.main)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bpfcap.cli.main import main
from bpfcap.tests.builders import START_NS, S, exec_row, fork_row, open_row, write_trace

ROWS = [
    open_row(),
    open_row(ts_ns=START_NS + 2 * S, tgid=18372, tid=18372, comm="run", path="/dev/tty", ret=-6),
    exec_row(),
    exec_row(
        ts_ns=START_NS + 2 * S, tgid=2001, tid=2001, uid=0, comm="id", filename="/bin/id", args=[]
    ),
    fork_row(),
]


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    return write_trace(tmp_path / "t.parquet", ROWS)


def run(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["report", *argv])
    out, err = capsysbinary.readouterr()
    return exit_.value.code, out, err.decode()


def test_opensnoop_failed(trace: Path, capsysbinary) -> None:
    rc, out, err = run(capsysbinary, "opensnoop", str(trace), "-x")
    assert (rc, err) == (0, "")
    assert out == (
        b"PID    COMM               FD ERR PATH\n18372  run                -1   6 /dev/tty\n"
    )


def test_opensnoop_json(trace: Path, capsysbinary) -> None:
    rc, out, _ = run(capsysbinary, "opensnoop", str(trace), "--format", "json", "-T")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 0
    assert [(r["time_s"], r["pid"], r["path"]) for r in rows] == [
        (0.0, 1000, "/etc/passwd"),
        (1.0, 18372, "/dev/tty"),
    ]


def test_execsnoop_csv(trace: Path, capsysbinary) -> None:
    rc, out, _ = run(capsysbinary, "execsnoop", str(trace), "--format", "csv", "-M")
    assert rc == 0
    assert out == (
        b"timestamp,comm,pid,pcomm,ppid,ret,args,argv\n"
        b'2024-03-05T14:08:21.000100000Z,ls,2000,bash,1000,0,/bin/ls -l,"[""/bin/ls"", ""-l""]"\n'
        b'2024-03-05T14:08:22.000100000Z,id,2001,,,0,/bin/id,"[""/bin/id""]"\n'
    )


def test_execsnoop_text(trace: Path, capsysbinary) -> None:
    rc, out, _ = run(capsysbinary, "execsnoop", str(trace), "-t", "-U")
    assert rc == 0
    assert out == (
        b"TIME(s) UID   COMM             PID     PPID    RET ARGS\n"
        b"1.000   1000  ls               2000    1000      0 /bin/ls -l\n"
        b"2.000   0     id               2001    ?         0 /bin/id\n"
    )


def test_execsnoop_user_name(trace: Path, capsysbinary) -> None:
    pwd = pytest.importorskip("pwd")
    root = pwd.getpwuid(0).pw_name
    rc, out, _ = run(capsysbinary, "execsnoop", str(trace), "-u", root)
    assert rc == 0
    assert out.splitlines()[1:] == [b"id               2001    ?         0 /bin/id"]
    rc, out, err = run(capsysbinary, "execsnoop", str(trace), "-u", "no-such-user-here")
    assert (rc, out) == (2, b"")
    assert err == "error: -u no-such-user-here: no such user on this machine; give the uid\n"


def test_bad_flag_is_a_usage_error(trace: Path, capsysbinary) -> None:
    rc, out, err = run(capsysbinary, "opensnoop", str(trace), "-f", "O_CREAT", "-f", "O_BOGUS")
    assert (rc, out) == (2, b"")
    assert err.startswith("error: Bad flag: O_BOGUS")
    assert err.count("\n") == 1


def test_lost_events_and_unclean_stop_go_to_stderr(tmp_path: Path, capsysbinary) -> None:
    events = {
        "open": {"seen": 10, "lost": 7, "written": 3},
        "exec": {"seen": 2, "lost": 0, "written": 2},
    }
    path = write_trace(tmp_path / "t.parquet", ROWS, events=events, clean_stop=False)
    rc, out, err = run(capsysbinary, "opensnoop", str(path))
    assert rc == 0
    assert out.startswith(b"PID ") and b"bpfcap:" not in out
    assert err == (
        "bpfcap: 7 open events were lost while recording\n"
        f"bpfcap: {path}: recording did not stop cleanly; showing what reached disk\n"
    )
    rc, out, err = run(capsysbinary, "execsnoop", str(path))
    assert err == f"bpfcap: {path}: recording did not stop cleanly; showing what reached disk\n"


def test_missing_trace(tmp_path: Path, capsysbinary) -> None:
    rc, out, err = run(capsysbinary, "opensnoop", str(tmp_path / "nope.parquet"))
    assert (rc, out) == (1, b"")
    assert err.startswith("error: ") and "nope.parquet" in err and err.count("\n") == 1


def test_bad_max_args_is_rejected_by_click(trace: Path, capsysbinary) -> None:
    rc, _, err = run(capsysbinary, "execsnoop", str(trace), "--max-args", "0")
    assert rc == 2 and "--max-args" in err


@pytest.mark.parametrize("cmd", ["opensnoop", "execsnoop"])
def test_help_has_examples(cmd: str, capsysbinary) -> None:
    rc, out, _ = run(capsysbinary, cmd, "--help")
    assert rc == 0 and b"examples:" in out and b"--format" in out


def test_info_types_lists_every_type_and_column(capsysbinary) -> None:
    from bpfcap.formats.events import EVENT_TYPES

    with pytest.raises(SystemExit) as exit_:
        main(["info", "--types"])
    out = capsysbinary.readouterr()[0].decode()
    assert exit_.value.code == 0
    for t in EVENT_TYPES:
        assert f"\n{t.name}" in "\n" + out
        for f in t.columns:
            assert f"  {f.name} " in out
    assert "syscall (only when asked for: -e TYPE or -e all)" in out
