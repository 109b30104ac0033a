"""syscount: synthetic syscall rows -> BCC v0.37 text, through the CLI (banner, the
[HH:MM:SS] line of each window, header, rows, Detaching...)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfcap.cli.main import main
from bpfcap.formats.abi import for_machine
from bpfcap.tests.builders import MS, START_NS, US, S, fork_row, syscall_row, write_trace

READ, WRITE, OPENAT, SELECT, GETPPID = 0, 1, 257, 23, 110

ROWS = (
    # vim (13820): 548 writes, in the first second.
    [syscall_row(ts_ns=START_NS + i * MS, tgid=13820, comm="vim", nr=WRITE) for i in range(548)]
    # bash (1000): 16 selects totalling 3415860022 ns, returning at 1.5 s.
    + [
        syscall_row(ts_ns=START_NS + S, lat_ns=213491251, tgid=1000, comm="bash", nr=SELECT)
        for _ in range(15)
    ]
    + [syscall_row(ts_ns=START_NS + S, lat_ns=213491257, tgid=1000, comm="bash", nr=SELECT)]
    # make (1001, a child of bash in the /proc snapshot): 7 reads, 3 of them ENOENT
    # openats, at 2.5 s; its thread 1002 does 2 getppids.
    + [syscall_row(ts_ns=START_NS + 2 * S + S // 2, tgid=1001, comm="make", nr=READ)] * 7
    + [syscall_row(ts_ns=START_NS + 2 * S + S // 2, tgid=1001, comm="make", nr=OPENAT, ret=-2)] * 3
    + [syscall_row(ts_ns=START_NS + 3 * S, tgid=1001, tid=1002, comm="make", nr=GETPPID)] * 2
    # pid 2000, forked by bash at 0.5 s (fork row), renamed: its last comm is "ls".
    + [syscall_row(ts_ns=START_NS + 3 * S, tgid=2000, comm="bash", nr=WRITE, ret=-9)]
    + [syscall_row(ts_ns=START_NS + 4 * S, tgid=2000, comm="ls", nr=READ)]
    # An unknown number and id -1 (skipped after the top-N cut, as BCC).
    + [syscall_row(ts_ns=START_NS + 4 * S, tgid=2000, comm="ls", nr=999)]
    + [syscall_row(ts_ns=START_NS + 4 * S, tgid=2000, comm="ls", nr=0xFFFFFFFF)] * 600
    + [fork_row()]
)


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_trace(tmp_path_factory.mktemp("sc") / "t.parquet", ROWS, end_ns=START_NS + 5 * S)


def run(capsysbinary, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["report", "syscount", *argv])
    out, err = capsysbinary.readouterr()
    return exit_.value.code, out.decode(), err.decode()


def table_lines(out: str) -> list[str]:
    """The header and rows of a one-window report."""
    lines = out.splitlines()
    assert lines[0].startswith("Tracing ") and lines[1].startswith("[")
    assert lines[-2:] == ["", "Detaching..."]
    return lines[2:-2]


def test_default_counts_top_10_then_drops_id_minus_1(trace, capsysbinary) -> None:
    rc, out, err = run(capsysbinary, str(trace))
    assert (rc, err) == (0, "")
    assert out.splitlines()[0] == "Tracing syscalls, printing top 10... Ctrl+C to quit."
    assert out.splitlines()[1] == "[15:08:25]"  # the recording's end, wall clock
    assert table_lines(out) == [
        "SYSCALL                   COUNT",
        "write                       549",
        "select                       16",
        "read                          8",
        "openat                        3",
        "getppid                       2",
        "[unknown: 999]                1",
    ]


def test_bcc_examples_exactly(trace, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, str(trace), "-P", "-T", "1")
    # The comm of a process is its last (bash, then ls); id -1 calls count for it.
    assert table_lines(out) == [
        "PID    COMM               COUNT",
        "2000   ls                   603",
    ]
    _, out, _ = run(capsysbinary, str(trace), "-P", "-p", "13820")
    assert table_lines(out)[1] == "13820  vim                  548"
    _, out, _ = run(capsysbinary, str(trace), "-L", "--syscall", "select")
    assert out.splitlines()[0] == "Tracing syscall 'select'... Ctrl+C to quit."
    assert table_lines(out) == [
        "SYSCALL                   COUNT        TIME (us)",
        "select                       16      3415860.022",
    ]
    _, out, _ = run(capsysbinary, str(trace), "-L", "-m", "-T", "1")
    assert table_lines(out) == [
        "SYSCALL                   COUNT        TIME (ms)",
        "select                       16      3415.860022",
    ]
    _, out, _ = run(capsysbinary, str(trace), "-P", "-L", "-m", "-T", "1")
    assert table_lines(out)[0] == "PID    COMM               COUNT        TIME (ms)"


def test_filters(trace, capsysbinary) -> None:
    def rows(*argv: str) -> list[str]:
        _, out, _ = run(capsysbinary, str(trace), *argv)
        return table_lines(out)[1:]

    assert rows("-x") == ["openat                        3", "write                         1"]
    assert rows("-e", "ENOENT") == ["openat                        3"]
    assert rows("-e", "9") == rows("-e", "EBADF") == ["write                         1"]
    assert rows("-t", "1002") == ["getppid                       2"]
    # -c: children of bash (1000): make from the snapshot, 2000 from the fork row.
    assert rows("-c", "1000", "-P") == [
        "2000   ls                   603",
        "1001   make                  12",
    ]
    assert rows("-d", "2") == ["write                       548", "select                       16"]


def test_intervals_replay_windows(trace, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, str(trace), "-i", "2", "-T", "1")
    assert out.splitlines() == [
        "Tracing syscalls, printing top 1... Ctrl+C to quit.",
        "[15:08:22]",
        "SYSCALL                   COUNT",
        "write                       548",
        "",
        "[15:08:24]",
        "SYSCALL                   COUNT",
        "read                          7",
        "",
        "[15:08:25]",
        "SYSCALL                   COUNT",
        "",
        "Detaching...",
    ]


def test_csv_has_the_window_end_in_utc(trace, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, str(trace), "-i", "2", "-T", "1", "-L", "--format", "csv")
    assert out.splitlines() == [
        "window_end,syscall,count,time",
        "2024-03-05T14:08:22.000000000Z,select,16,3415860.022",
        "2024-03-05T14:08:24.000000000Z,read,7,7.0",
    ]  # the last window's top call by time is id -1 (600 us): dropped, as BCC


def test_list_is_bccs(capsysbinary) -> None:
    rc, out, _ = run(capsysbinary, "--list")
    lines = out.splitlines()
    names = sorted(for_machine("x86_64").syscalls.values())
    assert rc == 0 and len(lines) == -(-len(names) // 4) == 105
    assert lines[0] == "   ".join(f"{n:<22}" for n in names[:4])


def test_errors(trace, capsysbinary) -> None:
    rc, _, err = run(capsysbinary, str(trace), "--syscall", "nosuch")
    assert rc == 2 and err == (
        "error: --syscall nosuch: no such system call on x86_64; "
        "`bpfcap report syscount --list TRACE` lists them\n"
    )
    rc, _, err = run(capsysbinary, str(trace), "-e", "EWHAT")
    assert rc == 2 and "unknown errno" in err
    rc, _, err = run(capsysbinary)
    assert rc == 2 and err.startswith("error: missing TRACE")


def test_strict_fails_on_loss_in_the_window(tmp_path: Path, capsysbinary) -> None:
    timeline = [[START_NS + 2 * S, START_NS + 3 * S, 5]]
    events = {"syscall": {"seen": 20, "lost": 5, "written": 15, "lost_timeline": timeline}}
    t = write_trace(tmp_path / "l.parquet", ROWS[:3], events=events, end_ns=START_NS + 5 * S)
    rc, _, err = run(capsysbinary, str(t), "-d", "1", "--strict")
    assert (rc, err) == (0, "")
    rc, _, err = run(capsysbinary, str(t), "--strict")
    assert rc == 3
    assert err.splitlines() == [
        "bpfcap: 5 syscall events were lost while recording in the time reported",
        f"error: {t}: 5 events lost in the time reported; --strict",
    ]
    rc, _, _ = run(capsysbinary, str(t))
    assert rc == 0


def test_latency_units(trace, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, str(trace), "-L", "-p", "1001", "-T", "1")
    assert table_lines(out)[1] == "read                          7            7.000"
    assert US == 1000


def test_skipped_probe_runs_are_reported_and_strict(tmp_path: Path, capsysbinary) -> None:
    missed = {"tracepoint__raw_syscalls__sys_exit": 2, "tracepoint__sched__sched_wakeup": 5}
    t = write_trace(tmp_path / "m.parquet", ROWS[:3], missed_runs=missed)
    rc, _, err = run(capsysbinary, str(t))
    assert rc == 0
    assert err == (
        "bpfcap: the kernel skipped 2 runs of the probes for syscall (another BPF program "
        "was running on that CPU): some events may be missing\n"
    )
    rc, _, err = run(capsysbinary, str(t), "--strict")
    assert rc == 3 and "2 probe runs skipped; --strict" in err
