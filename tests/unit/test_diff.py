"""bpfcap diff: a trace against itself shows no change; a known slowdown shows as the
top mover; new and vanished keys; traces of two architectures; empty traces; CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bpfcap.analyze.diff import diff
from bpfcap.analyze.profile import RELATIVE_ERROR, profile
from bpfcap.analyze.report import Source
from bpfcap.cli.main import main
from bpfcap.formats.trace import open_trace
from bpfcap.tests.builders import (
    START_NS,
    US,
    S,
    bio_row,
    header_only,
    open_row,
    runq_row,
    syscall_row,
    write_trace,
)


def before() -> list[dict]:
    out = [open_row(comm="cat", lat_ns=(10 + i % 7) * US) for i in range(200)]
    out += [open_row(comm="gone", tgid=7, lat_ns=3 * US)] * 60
    out += [syscall_row(nr=0, lat_ns=2 * US)] * 100  # read on x86_64
    out += [bio_row(lat_ns=(100 + i) * US) for i in range(80)]
    out += [runq_row(lat_ns=(1 + i % 40) * US) for i in range(300)]
    return out


def after() -> list[dict]:
    # cat's opens three times slower, twice as many per second; "gone" gone; "new" new.
    out = [open_row(comm="cat", lat_ns=3 * (10 + i % 7) * US) for i in range(400)]
    out += [open_row(comm="new", tgid=8, lat_ns=4 * US)] * 70
    out += [syscall_row(nr=0, lat_ns=2 * US)] * 100
    out += [bio_row(lat_ns=(100 + i) * US) for i in range(80)]
    out += [runq_row(lat_ns=(1 + i % 40) * US) for i in range(300)]
    return out


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("diff")
    return write_trace(d / "a.parquet", before()), write_trace(d / "b.parquet", after())


def prof(path: Path, **kw):
    return profile(Source(open_trace(path), **kw), slowest=0)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([*map(str, argv)])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def test_a_trace_against_itself_is_no_change(traces) -> None:
    a, _ = traces
    d = diff(prof(a), prof(a))
    assert d["same"] is True
    assert d["new"] == [] and d["vanished"] == []
    assert d["movers"] == {"rate": [], "p99": []}
    assert all(t["rate_ratio"] in (1.0, None) for t in d["types"])
    assert all(k["p99_ratio"] == 1.0 for k in d["keys"])


def test_a_known_slowdown_is_the_top_mover(traces) -> None:
    a, b = traces
    d = diff(prof(a), prof(b))
    assert d["same"] is False
    # The type and its one slowed-down key move alike (cat's opens are the p99 of both).
    first = [(m["type"], m["column"], m["key"]) for m in d["movers"]["p99"][:2]]
    assert first == [("open", None, None), ("open", "comm", "cat")]
    top = d["movers"]["p99"][1]
    assert top["p99_ratio"] == pytest.approx(3, rel=2 * RELATIVE_ERROR)
    assert top["b_max_ns"] == 3 * top["a_max_ns"] == 3 * 16 * US  # max is exact
    rate = {(m["type"], m["key"]): m["rate_ratio"] for m in d["movers"]["rate"]}
    assert rate[("open", "cat")] == 2.0
    assert [(k["type"], k["column"], k["key"], k["events"]) for k in d["new"]] == [
        ("open", "comm", "new", 70)
    ]
    assert [(k["type"], k["column"], k["key"], k["events"]) for k in d["vanished"]] == [
        ("open", "comm", "gone", 60)
    ]
    types = {t["type"]: t for t in d["types"]}
    assert (types["open"]["a_events"], types["open"]["b_events"]) == (260, 470)
    assert types["runq"]["rate_ratio"] == 1.0 and types["runq"]["p99_ratio"] == 1.0
    assert sum(d["histograms"]["bio"]["a"]) == sum(d["histograms"]["bio"]["b"]) == 80


def test_rates_compare_traces_of_different_length(tmp_path: Path) -> None:
    a = write_trace(tmp_path / "a.parquet", [runq_row()] * 60, end_ns=START_NS + 60 * S)
    b = write_trace(tmp_path / "b.parquet", [runq_row()] * 60, end_ns=START_NS + 30 * S)
    t = {x["type"]: x for x in diff(prof(a), prof(b))["types"]}["runq"]
    assert (t["a_per_s"], t["b_per_s"], t["rate_ratio"]) == (1.0, 2.0, 2.0)


def test_system_calls_compare_by_name_across_architectures(tmp_path: Path) -> None:
    x86 = {"machine": "x86_64"}
    arm = {"machine": "aarch64"}
    a = write_trace(tmp_path / "a.parquet", [syscall_row(nr=0)] * 10, host=x86)  # read
    b = write_trace(tmp_path / "b.parquet", [syscall_row(nr=63)] * 10, host=arm)  # read
    d = diff(prof(a), prof(b))
    assert [k["key"] for k in d["keys"] if k["column"] == "syscall"] == ["read"]
    assert d["new"] == [] and d["vanished"] == []


def test_empty_traces(tmp_path: Path, traces, capsys) -> None:
    empty = header_only(tmp_path / "e.parquet.partial")
    d = diff(prof(empty), prof(traces[0]))
    assert {t["type"]: t["a_events"] for t in d["types"] if t["b_events"]}["open"] == 0
    assert d["movers"]["rate"] == []  # nothing to compare a rate with
    rc, out, err = run(capsys, "diff", empty, empty)
    assert rc == 0, err
    assert "no change" in out


def test_window_applies_to_both(traces) -> None:
    a, _ = traces
    d = diff(prof(a, since="2s"), prof(a, since="2s"))
    assert all(t["a_events"] == 0 for t in d["types"])  # every row completes ~1 s in


def test_cli_text_and_json(traces, capsys) -> None:
    a, b = traces
    rc, out, err = run(capsys, "diff", a, b)
    assert rc == 0 and err == ""
    assert "biggest movers by p99 latency:" in out
    assert "open comm=cat" in out and "new in B:" in out and "gone from B" in out
    assert "     usecs               : A        B        A distribution" in out
    rc, out, _ = run(capsys, "diff", a, b, "--format", "json", "--top", "1")
    d = json.loads(out)
    assert rc == 0 and len(d["movers"]["p99"]) == 1 and d["a"]["events"] == 740
    rc, _, err = run(capsys, "diff", a, a.parent / "missing.parquet")
    assert rc == 1 and "no such file" in err
