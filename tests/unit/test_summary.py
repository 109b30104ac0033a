"""bpfcap summary: the profile's exact counts, percentiles within the documented error,
the page's size bound, JSON shape, windows, empty traces and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bpfcap.analyze.profile import (
    NB,
    RELATIVE_ERROR,
    Profile,
    Sketch,
    _Reader,
    bucket_bounds,
    buckets,
    profile,
)
from bpfcap.analyze.report import Source
from bpfcap.analyze.summary import summary
from bpfcap.cli.main import main
from bpfcap.formats.errors import TraceFormatError
from bpfcap.formats.trace import open_trace
from bpfcap.tests.builders import (
    START_NS,
    US,
    VDA,
    S,
    bio_row,
    header_only,
    open_row,
    runq_row,
    syscall_row,
    write_trace,
)

OPEN_LAT = [i * 1000 + 7 * i * i for i in range(1, 101)]  # 1.0 us .. 170 us, distinct


def rows() -> list[dict]:
    out = []
    for i, lat in enumerate(OPEN_LAT):
        ret = -2 if i % 10 == 0 else 3
        out.append(
            open_row(
                ts_ns=START_NS + (i + 1) * S // 4, lat_ns=lat, ret=ret, path=f"/p/{i}", tgid=1000
            )
        )
    out += [open_row(tgid=2000, comm="ls", lat_ns=50 * US, ts_ns=START_NS + 40 * S)] * 7
    out += [syscall_row(nr=0, lat_ns=5 * US, comm="bash", tgid=3000)] * 34
    out += [syscall_row(nr=0, lat_ns=9 * US, ret=-11, comm="bash", tgid=3000)] * 3
    out += [syscall_row(nr=1, lat_ns=2 * US, ret=1, comm="bash", tgid=3000)] * 5
    out += [bio_row(lat_ns=(k + 1) * 100 * US, bytes=4096 * (k + 1)) for k in range(20)]
    out += [bio_row(lat_ns=3 * US, error=-5)]
    out += [runq_row(lat_ns=5 * US, ts_ns=START_NS + k * S) for k in range(50)]
    return out


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_trace(tmp_path_factory.mktemp("sum") / "t.parquet", rows(), disks=[[VDA, "vda"]])


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([*map(str, argv)])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def exact(values: list[int], q: float) -> int:
    """The nearest-rank q-quantile."""
    v = sorted(values)
    return v[max(1, int(np.ceil(q * len(v)))) - 1]


def test_buckets_hold_their_values_within_the_error() -> None:
    rng = np.random.default_rng(1)
    v = np.concatenate(
        [np.arange(0, 300), rng.integers(0, 1 << 42, 100_000), [(1 << 42) - 1, 1 << 41]]
    ).astype(np.uint64)
    b = buckets(v)
    assert b.min() >= 0 and b.max() < NB
    assert (b[:128] == np.arange(128)).all()  # exact below 128
    bounds = np.array([bucket_bounds(int(x)) for x in b[:5000]])
    vv = v[:5000].astype(np.int64)
    # float32 may put a value within 2^-24 of its bucket's top in the next bucket.
    slack = np.maximum(1, vv >> 23)
    assert ((bounds[:, 0] - slack <= vv) & (vv <= bounds[:, 1] + slack)).all()
    assert (bounds[:, 1] - bounds[:, 0] + 1 <= np.maximum(1, bounds[:, 0] // 64)).all()


def test_sketch_percentiles_within_the_documented_error() -> None:
    rng = np.random.default_rng(2)
    values = rng.lognormal(10, 2, 20_000).astype(np.int64) + 1
    s = Sketch(len(values), int(values.sum()), int(values.min()), int(values.max()))
    s.counts += np.bincount(buckets(values.astype(np.uint64)), minlength=NB)
    for q in (0.5, 0.9, 0.99):
        want = exact(values.tolist(), q)
        assert abs(s.quantile(q) - want) <= RELATIVE_ERROR * want + 1, q
    assert s.percentiles()["max"] == values.max()
    assert Sketch().quantile(0.5) is None


def test_profile_counts_exactly(trace: Path) -> None:
    p = profile(Source(open_trace(trace)))
    assert {k: kp.rows for k, kp in p.kinds.items() if kp.rows} == {
        "open": 107,
        "syscall": 42,
        "bio": 21,
        "runq": 50,
    }
    o = p.kinds["open"]
    assert o.failures == {"ENOENT": 10}
    assert o.latency.count == 107 and o.latency.max == max(OPEN_LAT)
    assert o.latency.min == min(OPEN_LAT)
    lat = OPEN_LAT + [50 * US] * 7
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        want = exact(lat, q)
        assert abs(o.latency.percentiles()[name] - want) <= RELATIVE_ERROR * want, name
    assert o.keys["comm"]["ls"].count == 7 and o.keys["comm"]["ls"].max == 50 * US
    sc = p.kinds["syscall"]
    assert {k: s.count for k, s in sc.keys["syscall"].items()} == {"read": 37, "write": 5}
    assert sc.failures_by == {"read EAGAIN": 3}
    assert p.kinds["bio"].failures == {"EIO": 1}
    assert p.kinds["bio"].keys["disk"]["vda"].count == 21
    assert p.processes[0] == (1000, "cat", 150)  # 100 opens, 50 runq waits
    assert (3000, "bash", 42) in p.processes
    # Slowest rows come with their details, read back from their row groups.
    assert [r["path"] for r in p.slowest["open"]] == ["/p/99", "/p/98", "/p/97", "/p/96", "/p/95"]
    assert p.slowest["open"][0]["lat_ns"] == OPEN_LAT[99]
    assert [r["bytes"] for r in p.slowest["bio"]][:2] == [20 * 4096, 19 * 4096]
    assert p.slowest["bio"][0]["disk"] == "vda"
    assert sum(p.log2_usecs["runq"]) == 50 and p.log2_usecs["runq"][3] == 50  # 4-7 us


def test_profile_json_round_trip(trace: Path) -> None:
    p = profile(Source(open_trace(trace)))
    d = json.loads(json.dumps(p.to_dict()))
    assert Profile.from_dict(d).to_dict() == p.to_dict()
    with pytest.raises(TraceFormatError):
        Profile.from_dict({"profile_version": 99})


def test_one_worker_and_many_agree(trace: Path) -> None:
    src = Source(open_trace(trace))
    assert profile(src, workers=1).to_dict() == profile(src, workers=4).to_dict()


def test_window(trace: Path) -> None:
    # Opens complete at (i + 1)/4 s + lat: from 30 s on, i >= 119 - none; the 7 by ls
    # (40 s) and runq waits at 30..49 s are in.
    p = profile(Source(open_trace(trace), since="30s"))
    assert p.kinds["open"].rows == 7
    assert p.kinds["runq"].rows == 20
    assert p.duration_s == pytest.approx(30, abs=1e-6)
    assert p.windowed


def test_summary_data(trace: Path) -> None:
    s = summary(profile(Source(open_trace(trace))), top=2)
    types = {t["type"]: t for t in s["types"]}
    assert types["open"]["events"] == 107 and types["open"]["failed"] == 10
    assert types["open"]["per_s"] == pytest.approx(107 / 60, abs=1e-3)
    assert types["open"]["max_ns"] == max(OPEN_LAT)
    assert s["processes"]["top"][0] == {
        "pid": 1000,
        "comm": "cat",
        "events": 150,
        "share": pytest.approx(150 / 220),
    }
    assert s["processes"]["more"] == 2  # of bash, supervise, ls
    assert s["failures"]["top"][0] == {
        "type": "open",
        "errno": "ENOENT",
        "syscall": None,
        "count": 10,
    }
    assert s["syscalls"]["top"][0]["syscall"] == "read" and s["syscalls"]["top"][0]["failed"] == 3
    assert len(s["slowest_opens"]) == 2


def test_cli_markdown_and_json(trace: Path, capsys) -> None:
    rc, out, err = run(capsys, "summary", trace)
    assert rc == 0 and err == ""
    assert out.startswith(f"### bpfcap summary of `{trace}`")
    assert "| open | 107 | 1.8 | 0 | 10 |" in out
    assert "| 1000 | cat | 150 | 68.2% |" in out
    assert "`/p/99`" in out
    rc, out, _ = run(capsys, "summary", trace, "--format", "json", "--top", "1")
    s = json.loads(out)
    assert rc == 0 and len(s["processes"]["top"]) == 1 and s["events"] == 220


def test_a_screenful_whatever_the_trace(tmp_path: Path, capsys) -> None:
    many = [
        syscall_row(nr=i % 400, comm=f"c{i}", tgid=10 + i, ret=-(1 + i % 120), lat_ns=i + 1)
        for i in range(3000)
    ]
    many += [open_row(comm=f"o{i}", lat_ns=i, ret=-(1 + i % 50)) for i in range(500)]
    many += [bio_row(dev=(i << 20), lat_ns=i, error=-(1 + i % 30)) for i in range(300)]
    t = write_trace(tmp_path / "many.parquet", many)
    rc, out, _ = run(capsys, "summary", t)
    lines = out.splitlines()
    assert rc == 0 and len(lines) <= 60, len(lines)
    # (pid, comm): 3000 syscall callers, 500 comms of pid 1000, supervise; 5 shown.
    assert "| *and 3,496 more* |" in out
    assert out.count("more*") >= 3


def test_empty_traces(tmp_path: Path, capsys) -> None:
    d = header_only(tmp_path / "t.parquet.partial")
    rc, out, err = run(capsys, "summary", d)
    assert rc == 0, err
    assert "**0 events**" in out and "did not stop cleanly" in out
    rc, out, _ = run(capsys, "summary", d, "--format", "json")
    s = json.loads(out)
    assert s["events"] == 0 and s["complete"] is False and s["slowest_opens"] == []


def test_bad_input(tmp_path: Path, capsys) -> None:
    rc, _, err = run(capsys, "summary", tmp_path / "nope.parquet")
    assert rc == 1 and err.startswith("error: ") and "no such file" in err
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    rc, _, err = run(capsys, "summary", tmp_path / "x.parquet")
    assert rc == 1 and err.startswith("error: ")
    rc, _, err = run(capsys, "summary", tmp_path / "x.parquet", "--top", "0")
    assert rc == 2


def test_window_syntax_errors_are_usage_errors(trace: Path, capsys) -> None:
    rc, _, err = run(capsys, "summary", trace, "--since", "yesterday")
    assert rc == 2 and err.startswith("error: ")


def test_bio_rows_on_unnamed_disks(tmp_path: Path) -> None:
    t = write_trace(tmp_path / "d.parquet", [bio_row(dev=(8 << 20) | 16), bio_row(dev=VDA)])
    p = profile(Source(open_trace(t)))
    assert set(p.kinds["bio"].keys["disk"]) == {"8:16", "254:0"}


def _through_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row group read by Trace.batches (the profile's own reader declines all)."""
    from bpfcap.analyze import profile as module

    monkeypatch.setattr(module._Reader, "read", lambda self, f, i, columns: None)


SAMPLES = Path(__file__).parents[2] / "sample-traces"


@pytest.mark.parametrize("since", [None, "30s"])
def test_own_reader_and_trace_batches_agree(trace: Path, since, monkeypatch) -> None:
    traces = [trace, *sorted(SAMPLES.glob("v2-*.parquet"))]
    fast = [profile(Source(open_trace(t), since=since), workers=2).to_dict() for t in traces]
    _through_batches(monkeypatch)
    slow = [profile(Source(open_trace(t), since=since), workers=2).to_dict() for t in traces]
    assert fast == slow


def test_comm_not_utf8(tmp_path: Path, monkeypatch) -> None:
    # The open row group holds a comm that is not UTF-8 (format 2 keeps its bytes in
    # comm_raw): read by Trace.batches; the runq one by the profile's own reader.
    rows = [open_row(comm=b"ok\xff", tgid=7, lat_ns=5 * US)] * 3 + [open_row(tgid=8)] * 2
    rows += [runq_row(comm="cat", tgid=8, lat_ns=3 * US)] * 2
    t = write_trace(tmp_path / "raw.parquet", rows)
    p = profile(Source(open_trace(t)))
    assert (7, "ok\\xff", 3) in p.processes and (8, "cat", 4) in p.processes
    assert p.kinds["open"].keys["comm"]["ok\\xff"].count == 3
    assert p.kinds["runq"].keys["comm"]["cat"].count == 2
    _through_batches(monkeypatch)
    assert profile(Source(open_trace(t))).to_dict() == p.to_dict()


@pytest.mark.parametrize("name", ["open-exec", "kernel", "structs"])
def test_format_1(name: str) -> None:
    from bpfcap.formats.trace import rows_by_kind

    t = open_trace(SAMPLES / f"v1-{name}.parquet")
    p = profile(Source(t))
    assert {k: kp.rows for k, kp in p.kinds.items() if kp.rows} == rows_by_kind(t)
    assert sum(n for _, _, n in p.processes) + p.other_process_events == p.events
    assert profile(Source(t), workers=1).to_dict() == p.to_dict()


def test_row_groups_of_one_process_or_one_comm(tmp_path: Path) -> None:
    """The shortcuts for a row group of one process (counted per comm without a table of
    processes) and of one comm (its histogram without a key per row) give what the
    general way gives: the same rows under other pids go through it."""
    lats = [3 * US, 40 * US, 41 * US, 900 * US, 7 * US, 7 * US, 2 * US]
    comms = ["a", "b", "a", "b", "b", "a", "b"]

    def rows(pids: list[int]) -> list[dict]:
        out = [open_row(tgid=p, comm=c, lat_ns=v) for p, c, v in zip(pids, comms, lats)]
        return out + [runq_row(tgid=p, comm="only", lat_ns=v) for p, v in zip(pids, lats)]

    one_file = write_trace(tmp_path / "1.parquet", rows([5] * 7))
    one = profile(Source(open_trace(one_file)))
    # the statistics say so: tgid (and runq's comm) are made, not decoded; no open failed
    pf = pq.ParquetFile(one_file)
    kinds = [pf.read_row_group(i, columns=["kind"])["kind"][0].as_py() for i in range(2)]
    reader = _Reader()
    uniform = {}
    for i, kind in enumerate(kinds):
        reader.read(one_file, i, ["tgid", "comm", "lat_ns", "ret"][: 4 if kind == "open" else 3])
        uniform[kind] = reader.uniform(i, ["tgid", "comm", "ret"])
    assert uniform == {"open": {"tgid": 5, "ret": None}, "runq": {"tgid": 5, "comm": "only"}}
    assert sorted(one.processes) == [(5, "a", 3), (5, "b", 4), (5, "only", 7)]
    many = profile(Source(open_trace(write_trace(tmp_path / "n.parquet", rows([5, 6] * 3 + [5])))))
    assert sorted(many.processes) == [
        (5, "a", 2), (5, "b", 2), (5, "only", 4), (6, "a", 1), (6, "b", 2), (6, "only", 3)
    ]  # fmt: skip
    for kind, comm in (("open", "a"), ("open", "b"), ("runq", "only")):
        a, b = one.kinds[kind].keys["comm"][comm], many.kinds[kind].keys["comm"][comm]
        assert a.to_dict() == b.to_dict()
    assert one.kinds["runq"].keys["comm"]["only"].max == 900 * US
    assert one.kinds["open"].keys["comm"]["a"].count == 3
