"""runqlat: synthetic run-queue waits -> BCC text (bcc-formats.md sections 9 and 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfcap.cli.main import main
from bpfcap.tests.builders import MS, START_NS, US, S, runq_row, write_trace

ROWS = (
    # Process 1000: 3 waits of 0-1 us, 1 of 5 us, in the first second.
    [runq_row(lat_ns=999) for _ in range(3)]
    + [runq_row()]
    # Its thread 1001, preempted: 2 waits of 3 ms at 1.5 s.
    + [runq_row(ts_ns=START_NS + S + S // 2, tid=1001, lat_ns=3 * MS, reason="preempt")] * 2
    # A new thread 1002 whose tgid was not known at its first run (0), known later.
    + [runq_row(ts_ns=START_NS + 2 * S, tgid=0, tid=1002, lat_ns=40 * US, reason="wakeup_new")]
    + [runq_row(ts_ns=START_NS + 3 * S, tgid=1000, tid=1002, lat_ns=20 * US)]
    # Process 2000 at 3.5 s; and a new process 3000 seen only once (tgid = its tid).
    + [runq_row(ts_ns=START_NS + 3 * S + S // 2, tgid=2000, comm="ls", lat_ns=2 * US)]
    + [runq_row(ts_ns=START_NS + 3 * S, tgid=0, tid=3000, lat_ns=1 * US, reason="wakeup_new")]
)


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("rq")
    return write_trace(d / "t.parquet", ROWS, end_ns=START_NS + 4 * S)


def run(capsysbinary, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["report", "runqlat", *map(str, argv)])
    out, err = capsysbinary.readouterr()
    return exit_.value.code, out.decode(), err.decode()


def hist(*rows: tuple[int, int, int, int], label: str = "usecs") -> list[str]:
    return [f"     {label:<19} : count     distribution"] + [
        f"{lo:>10} -> {hi:<10} : {n:<8} |{'*' * stars:<40}|" for lo, hi, n, stars in rows
    ]


def test_one_histogram(trace, capsysbinary) -> None:
    rc, out, err = run(capsysbinary, trace)
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "Tracing run queue latency... Hit Ctrl-C to end.",
        "",
        *hist(
            (0, 1, 4, 40),
            (2, 3, 1, 10),
            (4, 7, 1, 10),
            (8, 15, 0, 0),
            (16, 31, 1, 10),
            (32, 63, 1, 10),
            (64, 127, 0, 0),
            (128, 255, 0, 0),
            (256, 511, 0, 0),
            (512, 1023, 0, 0),
            (1024, 2047, 0, 0),
            (2048, 4095, 2, 20),
        ),
    ]


def test_per_process_fills_unknown_tgids(trace, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, trace, "-P", "-m")
    lines = out.splitlines()
    assert [ln for ln in lines if ln.startswith("pid = ")] == [
        "pid = 1000",
        "pid = 2000",
        "pid = 3000",
    ]
    at = lines.index("pid = 1000")
    assert lines[at + 1 : at + 4] == hist((0, 1, 6, 40), (2, 3, 2, 13), label="msecs")
    _, out, _ = run(capsysbinary, trace, "-L", "-p", "1000")
    assert [ln for ln in out.splitlines() if ln.startswith("tid = ")] == [
        "tid = 1000",
        "tid = 1001",
        "tid = 1002",
    ]


def test_intervals(trace, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, trace, "-T", "-m", "2", "1")
    assert out.splitlines() == [
        "Tracing run queue latency... Hit Ctrl-C to end.",
        "",
        "15:08:22",
        *hist((0, 1, 4, 40), (2, 3, 2, 20), label="msecs"),
    ]


def test_idle_task_is_never_measured(trace, tmp_path: Path, capsysbinary) -> None:
    """BCC's runqlat.py drops task pid 0 (a kernel pid: the tid) at its wakeup (line 92),
    its preemption (214) and its switch-in (222): a row of tid 0, were one recorded,
    counts in no histogram and no section, whatever its reason or tgid."""
    idle = [
        runq_row(tgid=t, tid=0, comm="swapper/1", lat_ns=9 * MS, reason=r)
        for t, r in ((0, "wakeup"), (0, "preempt"), (1000, "wakeup_new"))
    ]
    with_idle = write_trace(tmp_path / "idle.parquet", ROWS + idle, end_ns=START_NS + 4 * S)
    for flags in ([], ["-P"], ["-L"], ["-p", "1000", "-L"]):
        assert run(capsysbinary, with_idle, *flags) == run(capsysbinary, trace, *flags)
    _, out, _ = run(capsysbinary, with_idle, "-L")
    assert "tid = 0" not in out


def test_refused_flags(trace, capsysbinary) -> None:
    rc, _, err = run(capsysbinary, trace, "--pidnss")
    assert rc == 2 and "PID namespaces are not in the recording" in err
    rc, _, err = run(capsysbinary, trace, "-P", "-L")
    assert rc == 2
