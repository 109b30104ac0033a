"""bpfcap slice: a window, processes, types and rows of a trace as a trace of its own, with
its metadata saying what it was cut from, and the loss of the window exact."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfcap.analyze.slice import Filters, descendants, slice_trace
from bpfcap.formats.errors import OutputError, UsageError
from bpfcap.formats.events import BY_NAME
from bpfcap.formats.meta import TraceMeta
from bpfcap.formats.trace import open_trace
from bpfcap.tests.builders import (
    START_NS,
    US,
    S,
    exec_row,
    fork_row,
    open_row,
    runq_row,
    syscall_row,
    write_trace,
)


def rows_at(seconds: list[float]) -> list[dict]:
    """Opens by three processes and syscalls, at the given seconds of the recording."""
    out = []
    for i, s in enumerate(seconds):
        pid = (1000, 2000, 3000)[i % 3]
        out.append(
            open_row(
                ts_ns=START_NS + int(s * S),
                lat_ns=(i % 7) * 100 * US,
                tgid=pid,
                tid=pid,
                comm=f"p{pid}",
                path=f"/tmp/f{i}",
                ret=-2 if i % 5 == 0 else 3,
            )
        )
        out.append(syscall_row(ts_ns=START_NS + int(s * S), tgid=pid, tid=pid, nr=i % 11))
    return out


TIMELINE = {
    # Segments of about a second; cumulative loss: 5 in [9 s, 10 s), 3 more in [20, 21).
    "open": {
        "seen": 100,
        "lost": 8,
        "written": 92,
        "lost_timeline": [
            [START_NS + 9 * S, START_NS + 10 * S, 5],
            [START_NS + 20 * S, START_NS + 21 * S, 8],
        ],
    },
    "syscall": {"seen": 50, "lost": 0, "written": 50, "lost_timeline": []},
}


@pytest.fixture
def trace(tmp_path: Path):
    seconds = [0.5 + 0.37 * i for i in range(150)]  # 0.5 s to 56 s
    return open_trace(write_trace(tmp_path / "t.parquet", rows_at(seconds), events=TIMELINE))


def completion(t: pa.Table) -> list[int]:
    lat = t["lat_ns"].to_pylist() if "lat_ns" in t.column_names else [0] * t.num_rows
    return [a + (b or 0) for a, b in zip(t["ts_ns"].to_pylist(), lat)]


def rows_of(path: Path, kind: str) -> list[tuple]:
    t = open_trace(path).read(kind)
    return sorted(zip(*[t[c].to_pylist() for c in t.column_names]))


def test_window_keeps_what_completes_in_it_and_the_loss_of_its_segments(trace, tmp_path):
    out = tmp_path / "s.parquet"
    w = slice_trace(trace, out, since="9.5s", until="20.5s")
    s = open_trace(out)
    src = trace.read("open")
    want = sum(START_NS + 9.5 * S <= c < START_NS + 20.5 * S for c in completion(src))
    assert w.rows["open"] == want == s.read("open").num_rows > 0
    assert all(START_NS + 9.5 * S <= c < START_NS + 20.5 * S for c in completion(s.read("open")))
    m = TraceMeta.from_dict(s.meta)
    assert (m.start_ns, m.end_ns) == (START_NS + int(9.5 * S), START_NS + int(20.5 * S) - 1)
    assert m.counts("open").lost == 8  # both lossy segments overlap the window
    assert m.counts("open").written == want
    assert m.counts("open").lost_between(START_NS + 15 * S, START_NS + 16 * S) == 0
    assert m.counts("syscall").lost == 0
    # Only the later segment: 3 lost.
    later = open_trace(
        slice_trace(trace, tmp_path / "l.parquet", since="15s") and tmp_path / "l.parquet"
    )
    assert TraceMeta.from_dict(later.meta).counts("open").lost == 3
    rec = s.meta["slice"]
    assert rec["source_sha256"] == hashlib.sha256(trace.path.read_bytes()).hexdigest()
    assert rec["window"]["since"] == "9.5s" and rec["window"]["until"] == "20.5s"


REPORTS = [
    ["opensnoop"],
    ["opensnoop", "-x", "-T"],
    ["syscount"],
    ["syscount", "-P"],
    ["count", "--by", "comm,kind"],
    ["hist", "--field", "lat_ns", "-e", "open"],
]


def bpfcap(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bpfcap", *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("report", REPORTS, ids=lambda r: " ".join(r))
def test_a_report_of_the_slice_is_the_report_of_the_window(trace, tmp_path, report):
    out = tmp_path / "s.parquet"
    slice_trace(trace, out, since="10s", until="-10s")
    whole = bpfcap(
        "report", report[0], str(trace.path), *report[1:], "--since", "10s", "--until", "-10s"
    )
    part = bpfcap("report", report[0], str(out), *report[1:])
    assert whole.returncode == part.returncode == 0, whole.stderr + part.stderr
    assert part.stdout == whole.stdout
    assert part.stdout.strip()


def test_processes_by_pid_tree_name_type_and_expression(tmp_path):
    rows = [
        fork_row(ts_ns=START_NS + S, tgid=1001, tid=1001, child_pid=4000, comm="make"),
        exec_row(ts_ns=START_NS + 2 * S, tgid=4000, tid=4000, ppid=1001, comm="cc"),
        fork_row(ts_ns=START_NS + 3 * S, tgid=4000, tid=4000, child_pid=4001),
        exec_row(ts_ns=START_NS + 4 * S, tgid=5000, tid=5000, ppid=4001, comm="as"),
        open_row(ts_ns=START_NS + 5 * S, tgid=5000, tid=5000, comm="as"),
        open_row(ts_ns=START_NS + 5 * S, tgid=1001, tid=1001, comm="make", ret=-2),
        open_row(ts_ns=START_NS + 5 * S, tgid=500, tid=500, comm="sshd"),
        runq_row(ts_ns=START_NS + 6 * S, tgid=0, tid=4001, comm="cc"),
        syscall_row(ts_ns=START_NS + 6 * S, tgid=9, tid=9, comm="x"),
    ]
    t = open_trace(write_trace(tmp_path / "t.parquet", rows))
    # The snapshot: 1 -> 500 (sshd) -> 1000 (bash) -> 1001 (make).
    assert descendants(t, [1000]) == {1000, 1001, 4000, 4001, 5000}

    def kept(**kw) -> dict[str, int]:
        out = tmp_path / f"s{len(list(tmp_path.iterdir()))}.parquet"
        return slice_trace(t, out, filters=Filters(**kw)).rows

    assert kept(trees=(4000,)) == {"exec": 2, "fork": 1, "open": 1, "runq": 1}
    assert kept(pids=(500, 9)) == {"open": 1, "syscall": 1}
    assert kept(comms=("m",)) == {"fork": 1, "open": 1}  # make (BCC -n: a substring)
    assert kept(kinds=("exec",)) == {"exec": 2}
    assert kept(where="ret < 0") == {"open": 1}
    assert kept(trees=(1000,), kinds=("open",), where="comm == 'as'") == {"open": 1}
    out = tmp_path / "w.parquet"
    slice_trace(t, out, filters=Filters(trees=(4000,), kinds=("open", "exec")))
    m = open_trace(out).meta
    assert m["settings"]["events"] == ["open", "exec"]
    assert m["slice"]["filters"]["tree"] == [4000]
    assert [p[0] for p in m["processes"]] == []  # 4000 started after the snapshot
    slice_trace(t, out, filters=Filters(pids=(1001,)), force=True)
    assert [p[0] for p in open_trace(out).meta["processes"]] == [1, 500, 1000, 1001]


def test_errors(trace, tmp_path):
    out = tmp_path / "s.parquet"
    with pytest.raises(UsageError, match="unknown event type nope"):
        slice_trace(trace, out, filters=Filters(kinds=("nope",)))
    with pytest.raises(UsageError):
        slice_trace(trace, out, since="20s", until="10s")
    with pytest.raises(UsageError):
        slice_trace(trace, out, filters=Filters(where="ret <"))
    slice_trace(trace, out, since="10s")
    with pytest.raises(OutputError, match="already exists"):
        slice_trace(trace, out, since="10s")
    with pytest.raises(OutputError, match="is an input"):
        slice_trace(trace, trace.path, since="10s", force=True)
    with pytest.raises(OutputError, match="not a regular file"):
        slice_trace(trace, Path("/dev/null"), since="10s", force=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    r = bpfcap("slice", str(trace.path), "-o", str(out), "-p", "abc", "--force")
    assert r.returncode != 0 and r.stderr.startswith("error: -p abc: not a process id")
    assert "Traceback" not in r.stderr


def test_a_slice_of_a_slice_keeps_both_records(trace, tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    slice_trace(trace, a, since="5s", until="30s")
    slice_trace(open_trace(a), b, since="10s", filters=Filters(kinds=("open",)))
    m = open_trace(b).meta
    assert m["slice"]["of"]["window"]["since"] == "5s"
    assert m["slice"]["filters"]["kinds"] == ["open"]
    direct = tmp_path / "c.parquet"
    slice_trace(trace, direct, since="15s", until="30s", filters=Filters(kinds=("open",)))
    assert rows_of(b, "open") == rows_of(direct, "open")  # 10 s into a is 15 s into t


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    bounds=st.lists(st.integers(0, 60_000), min_size=2, max_size=2, unique=True).map(sorted),
    kinds=st.sets(st.sampled_from(["open", "syscall"]), min_size=1),
)
def test_window_rows_are_those_of_the_source(trace, tmp_path_factory, bounds, kinds):
    lo, hi = bounds
    out = tmp_path_factory.mktemp("s") / "s.parquet"
    w = slice_trace(
        trace, out, since=f"{lo}ms", until=f"{hi}ms", filters=Filters(kinds=tuple(kinds))
    )
    for kind in BY_NAME:
        src = trace.read(kind)
        want = sorted(
            r
            for r, c in zip(zip(*[src[n].to_pylist() for n in src.column_names]), completion(src))
            if START_NS + lo * 1_000_000 <= c < START_NS + hi * 1_000_000 and kind in kinds
        )
        assert rows_of(out, kind) == want
        assert w.rows.get(kind, 0) == len(want)
