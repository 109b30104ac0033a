"""Reports on the fields read from kernel structs, from synthetic rows: execsnoop's parent
read at the exec, opensnoop -F from `cwd` rows (BCC's joining rules), tcpaccept from
`accept` rows; older traces without them; what a recording without BTF says."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfcap.analyze.opensnoop import Options, bcc_full_path, full_paths, opensnoop
from bpfcap.cli.main import main
from bpfcap.tests.builders import (
    START_NS,
    US,
    S,
    accept_row,
    cwd_row,
    exec_row,
    fork_row,
    open_row,
    table,
    tcp_row,
    write_trace,
)


def run(capsysbinary, *argv: str) -> tuple[int, bytes, bytes]:
    with pytest.raises(SystemExit) as exit_:
        main(["report", *map(str, argv)])
    out, err = capsysbinary.readouterr()
    return exit_.value.code, out, err


# -- execsnoop: PPID and PCOMM -------------------------------------------------------------


def test_execsnoop_takes_the_parent_read_at_the_exec(tmp_path: Path, capsysbinary) -> None:
    rows = [
        # Read at the exec: wins over the fork row below (reparenting).
        exec_row(tgid=2000, ppid=1, pcomm=b"systemd"),
        fork_row(ts_ns=START_NS, tgid=1000, comm=b"bash", child_pid=2000),
        # Not read (a recording without BTF): from the fork row.
        exec_row(tgid=2001, ts_ns=START_NS + 2 * S, ppid=None, pcomm=b""),
        fork_row(ts_ns=START_NS, tgid=1000, comm=b"bash", child_pid=2001),
    ]
    t = write_trace(tmp_path / "t.parquet", rows)
    rc, out, _ = run(capsysbinary, "execsnoop", t, "-M")
    assert rc == 0
    assert out.splitlines()[1:] == [
        b"ls               2000    systemd          1         0 /bin/ls -l",
        b"ls               2001    bash             1000      0 /bin/ls -l",
    ]
    # -P filters on the parent shown.
    _, out, _ = run(capsysbinary, "execsnoop", t, "-P", "1")
    assert len(out.splitlines()) == 2


# -- opensnoop -F --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, dirs, want",
    [
        (b"/etc/passwd", [], b"/etc/passwd"),  # absolute: unchanged
        (b"a.txt", [b"src", b"ann", b"home"], b"/home/ann/src/a.txt"),
        (b"../x", [b"src", b"ann", b"home"], b"/home/ann/src/../x"),  # not normalised
        (b"a.txt", [], b"/a.txt"),  # the working directory is / (the walk reads nothing)
        # A mount's root reads `/` in the walk: dropped.
        (b"f", [b"sub", b"/", b"mnt", b"tmp"], b"/tmp/mnt/sub/f"),
        # Bytes that are not UTF-8 are dropped (decode 'ignore'), in the path too.
        (b"\xffbad", [b"d\xfe\xfe", b"tmp"], b"/tmp/d/bad"),
        (b"/", [], b"/"),
    ],
)
def test_bcc_full_path(path: bytes, dirs: list[bytes], want: bytes) -> None:
    assert bcc_full_path(path, dirs) == want


def test_full_paths_take_the_thread_directory_as_of_the_open() -> None:
    cwds = table(
        [
            cwd_row(),
            cwd_row(ts_ns=START_NS + 2 * S, dirs=[b"tmp"]),  # thread 1000 moved to /tmp
            cwd_row(tid=1001, ts_ns=START_NS, dirs=[b"other"]),
        ]
    )
    opens = table(
        [
            open_row(path=b"a"),  # 1 s: in /home/ann/src
            open_row(path=b"b", ts_ns=START_NS + 2 * S - 10 * US),  # returns at 2 s: /tmp
            open_row(path=b"c", ts_ns=START_NS + 3 * S),  # /tmp
            open_row(path=b"d", tid=1001),  # its own thread's directory
            open_row(path=b"e", tid=1002),  # no directory recorded: null
            open_row(path=b"/abs", tid=1002),
            open_row(path=b"f", ts_ns=START_NS),  # before any row of its thread: null
        ]
    )
    assert full_paths(opens, cwds).to_pylist() == [
        b"/home/ann/src/a",
        b"/tmp/b",
        b"/tmp/c",
        b"/other/d",
        None,
        b"/abs",
        None,
    ]


def test_opensnoop_full_path_flag(tmp_path: Path, capsysbinary) -> None:
    rows = [cwd_row(), open_row(path=b"a.txt", ret=3), open_row(path=b"/etc/x", ret=-2)]
    t = write_trace(tmp_path / "t.parquet", rows)
    _, out, err = run(capsysbinary, "opensnoop", t, "-F")
    assert out.splitlines() == [
        b"PID    COMM               FD ERR PATH",
        b"1000   cat                 3   0 /home/ann/src/a.txt",
        b"1000   cat                -1   2 /etc/x",
    ]
    assert err == b""
    # The analysis, given no cwd rows: relative paths as recorded.
    table_ = opensnoop(table([open_row(path=b"a.txt")]), Options(full_path=True), start_ns=0)
    assert table_["path"].to_pylist() == [b"a.txt"]


def test_opensnoop_full_path_on_a_trace_without_directories(capsysbinary) -> None:
    sample = Path(__file__).parents[2] / "sample-traces" / "v1-open-exec.parquet"
    rc, out, err = run(capsysbinary, "opensnoop", sample, "-F", "-x")
    assert rc == 0 and out.splitlines()[1].endswith(b"/usr/lib/locale/locale-archive")
    assert b"did not record cwd events" in err


# -- tcpaccept -------------------------------------------------------------------------------


def test_tcpaccept_from_accept_rows(tmp_path: Path, capsysbinary) -> None:
    rows = [
        accept_row(),
        accept_row(
            ts_ns=START_NS + 4 * S, tgid=901, comm=b"nginx-worker", sport=443, dport=40001
        ),  # fmt: skip
        accept_row(
            ts_ns=START_NS + 5 * S,
            family=10,
            saddr=b"\0" * 15 + b"\1",
            daddr=b"\0" * 15 + b"\1",
            dport=40002,
        ),  # fmt: skip
        # The connection's own change, in softirq: not what tcpaccept shows.
        tcp_row(
            ts_ns=START_NS + 3 * S - US,
            tgid=0,
            comm=b"swapper/0",
            sock=0xD00D,
            oldstate="SYN_RECV",
            newstate="ESTABLISHED",
            sport=80,
            dport=40000,
        ),  # fmt: skip
    ]
    settings = {"events": ["tcp", "accept"]}
    reads = {"accept.socket": {"status": "btf", "reason": "", "columns": []}}
    t = write_trace(tmp_path / "t.parquet", rows, settings=settings, kernel_reads=reads)
    rc, out, err = run(capsysbinary, "tcpaccept", t)
    assert (rc, err) == (0, b"")
    assert out.splitlines() == [
        b"PID     COMM         IP RADDR            RPORT LADDR            LPORT",
        b"900     nginx        4  127.0.0.1        40000 127.0.0.1        80   ",
        b"901     nginx-worker 4  127.0.0.1        40001 127.0.0.1        443  ",
        b"900     nginx        6  ::1              40002 ::1              80   ",
    ]
    _, out, _ = run(capsysbinary, "tcpaccept", t, "-p", "901", "-t")
    assert out.splitlines()[1] == (
        b"0.000    901     nginx-worker 4  127.0.0.1        40001 127.0.0.1        443  "
    )
    _, out, _ = run(capsysbinary, "tcpaccept", t, "-P", "80", "-4")
    assert len(out.splitlines()) == 2


def test_tcpaccept_on_a_recording_without_btf(tmp_path: Path, capsysbinary) -> None:
    rows = [tcp_row(oldstate="SYN_RECV", newstate="ESTABLISHED", sport=80, dport=40000)]
    reads = {"accept.socket": {"status": "missing", "reason": "no kernel BTF", "columns": []}}
    t = write_trace(
        tmp_path / "t.parquet", rows, settings={"events": ["tcp", "accept"]}, kernel_reads=reads
    )
    rc, out, err = run(capsysbinary, "tcpaccept", t)
    assert rc == 0 and len(out.splitlines()) == 2
    assert b"has no accept rows: PID/COMM are the task that closed each socket" in err


def test_reports_say_which_kernel_reads_are_missing(tmp_path: Path, capsysbinary) -> None:
    reads = {
        "exec.parent": {
            "status": "missing",
            "reason": "struct task_struct.real_parent not in the kernel's BTF",
            "columns": ["ppid", "pcomm"],
        },
        "tcp.bytes": {"status": "btf", "reason": "", "columns": ["rx_bytes", "tx_bytes"]},
    }
    t = write_trace(tmp_path / "t.parquet", [exec_row(ppid=None)], kernel_reads=reads)
    _, _, err = run(capsysbinary, "execsnoop", t)
    assert err == (
        b"bpfcap: not recorded: the parent at the exec's return, as BCC's execsnoop reads it "
        b"(reports without it find parents in fork rows and the process snapshot taken at "
        b"start) (struct task_struct.real_parent not in the kernel's BTF)\n"
    )
    _, _, err = run(capsysbinary, "tcplife", t)
    assert b"not recorded" not in err


def test_an_older_trace_reads_the_new_columns_as_null() -> None:
    from bpfcap.formats.trace import open_trace

    sample = Path(__file__).parents[2] / "sample-traces" / "v1-open-exec.parquet"
    execs = open_trace(sample).read("exec")
    assert execs.num_rows and execs["ppid"].null_count == execs.num_rows
    assert execs["args_from"].null_count == execs.num_rows
