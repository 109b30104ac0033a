"""The report contract (analyze/report.py) over the registry: every report declared once,
its options and help generated into the CLI, run from Python by name, with a time
window and machine-readable output; tables by the trace's architecture."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pyarrow as pa
import pytest

import bpfcap
from bpfcap.analyze import registry
from bpfcap.analyze.report import Report, Result, option_specs
from bpfcap.cli.main import main
from bpfcap.tests.builders import (
    MS,
    START_NS,
    S,
    open_row,
    syscall_row,
    write_trace,
)

ROOT = Path(__file__).resolve().parents[2]


def run(capsysbinary, *argv: str) -> tuple[int, bytes, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsysbinary.readouterr()
    return exit_.value.code, out, err.decode()


@pytest.mark.parametrize("name", registry.names())
def test_every_report_is_declared_once_and_generated(name: str, capsysbinary) -> None:
    rep = registry.get(name)
    assert isinstance(rep, Report) and rep.name == name
    assert rep.summary and rep.description and rep.examples
    specs = option_specs(rep.options)
    flags = [f for s in specs for f in s.opt.flags]
    assert len(flags) == len(set(flags)), f"{name}: a flag declared twice"
    assert all(s.opt.help for s in specs), f"{name}: an option without help"
    rc, out, _ = run(capsysbinary, "report", name, "--help")
    text = out.decode()
    assert rc == 0
    for s in specs:
        if not s.opt.hidden and not s.opt.argument:
            assert s.opt.flags[-1] in text
    for common in ("--since", "--until", "--format", "--strict", "--raw"):
        assert common in text
    assert "examples:" in text


def test_report_help_lists_every_report_with_its_summary(capsysbinary) -> None:
    rc, out, _ = run(capsysbinary, "report", "--help")
    text = out.decode()
    assert rc == 0
    for name in registry.names():
        assert name in text
    # The summary of each, not a cut description.
    assert "Trace open() syscalls, as BCC's opensnoop prints them." in text


def test_the_cli_holds_no_analysis() -> None:
    """cli/report.py imports only the contract and the registry of analyze/."""
    tree = ast.parse((ROOT / "cli" / "report.py").read_text())
    imported = {
        n.module
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("bpfcap.analyze")
    }
    assert imported <= {"bpfcap.analyze.report", "bpfcap.analyze.registry"}


def test_readme_names_every_report() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in registry.names():
        assert f"`{name}`" in readme


def test_python_api_runs_a_report_by_name(tmp_path: Path) -> None:
    t = write_trace(
        tmp_path / "t.parquet",
        [open_row(), open_row(ts_ns=START_NS + 2 * S, ret=-2, path="/nope")],
    )
    trace = bpfcap.open(t)
    assert trace.meta.start_ns == START_NS and trace.kinds == ["open"]
    assert trace.table("open").column_names == trace.columns("open")
    result = trace.report("opensnoop", failed=True)
    assert isinstance(result, Result)
    table = result.to_arrow()
    assert table["path"].to_pylist() == [b"/nope"]
    assert table["timestamp"].type == pa.timestamp("ns", tz="UTC")
    with pytest.raises(bpfcap.formats.errors.UsageError, match="no option nope"):
        trace.report("opensnoop", nope=1)
    assert bpfcap.reports() == registry.names()


def test_since_and_until_window_every_report(tmp_path: Path, capsysbinary) -> None:
    rows = [open_row(ts_ns=START_NS + i * S, tgid=100 + i, tid=100 + i) for i in range(10)]
    t = str(write_trace(tmp_path / "t.parquet", rows, end_ns=START_NS + 10 * S))
    rc, out, _ = run(capsysbinary, "report", "opensnoop", t, "--since", "3", "--until", "5s")
    pids = [int(line.split()[0]) for line in out.decode().splitlines()[1:]]
    assert rc == 0 and pids == [103, 104]  # completion (ts + 10 us) in [3 s, 5 s)
    rc, out, _ = run(capsysbinary, "report", "count", t, "--by", "tgid", "--since", "50%")
    assert rc == 0 and out.decode().count("@[") == 5
    rc, _, err = run(capsysbinary, "report", "opensnoop", t, "--since", "5", "--until", "3")
    assert rc == 2 and "is not before --until" in err


def test_json_lines_are_for_machines(tmp_path: Path, capsysbinary) -> None:
    t = str(write_trace(tmp_path / "t.parquet", [open_row(flags=0o2000101, mode=0o644)]))
    rc, out, _ = run(capsysbinary, "report", "opensnoop", t, "-e", "--format", "json")
    row = json.loads(out)
    assert rc == 0
    assert row["timestamp"] == "2024-03-05T14:08:21.000010000Z"  # 1 s + 10 us after start
    assert row["flags"] == ["O_WRONLY", "O_CREAT", "O_CLOEXEC"]
    assert row["mode"] == 0o644


def test_csv_floats_are_plain_decimals(tmp_path: Path, capsysbinary) -> None:
    rows = [syscall_row(ts_ns=START_NS + S, lat_ns=16, nr=0)]
    t = str(write_trace(tmp_path / "t.parquet", rows, end_ns=START_NS + 2 * S))
    rc, out, _ = run(capsysbinary, "report", "syscount", t, "-L", "-m", "--format", "csv")
    assert rc == 0
    assert out.decode().splitlines()[1].endswith(",read,1,0.000016")


def test_histograms_have_bucket_bounds_in_json(tmp_path: Path, capsysbinary) -> None:
    rows = [open_row(ts_ns=START_NS + i * MS, lat_ns=lat) for i, lat in enumerate([0, 1, 5, 7])]
    t = str(write_trace(tmp_path / "t.parquet", rows))
    rc, out, _ = run(
        capsysbinary, "report", "hist", t, "-e", "open", "--field", "lat_ns", "--format", "json"
    )
    assert rc == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"min": 0, "max": 0, "count": 1},
        {"min": 1, "max": 1, "count": 1},
        {"min": 4, "max": 7, "count": 2},
    ]


def test_an_aarch64_trace_reads_with_aarch64_tables(tmp_path: Path, capsysbinary) -> None:
    """56 is openat on aarch64 (clone on x86_64); 63 read (readlink on x86_64)."""
    rows = [syscall_row(ts_ns=START_NS + S, nr=56)] * 3 + [syscall_row(ts_ns=START_NS + S, nr=63)]
    host = {"machine": "aarch64", "hostname": "pi"}
    t = str(write_trace(tmp_path / "arm.parquet", rows, host=host, end_ns=START_NS + 2 * S))
    rc, out, _ = run(capsysbinary, "report", "syscount", t)
    lines = out.decode().splitlines()
    assert rc == 0
    assert lines[3].split() == ["openat", "3"] and lines[4].split() == ["read", "1"]
    rc, out, _ = run(capsysbinary, "report", "syscount", t, "--syscall", "openat")
    assert out.decode().splitlines()[3].split() == ["openat", "3"]
    rc, out, _ = run(capsysbinary, "report", "syscount", "--list", t)
    names = out.decode().split()
    assert "openat" in names and "open" not in names  # no open(2) on arm64
    # Flags too: O_DIRECTORY is 0o40000 on aarch64 (O_DIRECT on x86_64).
    t2 = str(write_trace(tmp_path / "arm2.parquet", [open_row(flags=0o40000)], host=host))
    rc, out, _ = run(capsysbinary, "report", "opensnoop", t2, "-e", "--format", "json")
    assert json.loads(out)["flags"] == ["O_RDONLY", "O_DIRECTORY"]


def test_an_unknown_architecture_is_one_line(tmp_path: Path, capsysbinary) -> None:
    t = str(write_trace(tmp_path / "rv.parquet", [open_row()], host={"machine": "riscv64"}))
    rc, _, err = run(capsysbinary, "report", "opensnoop", t)
    assert rc != 0 and err.count("\n") == 1 and "riscv64" in err


def test_count_reads_only_the_kinds_its_where_allows(tmp_path: Path, capsysbinary) -> None:
    events = {"syscall": {"seen": 10, "lost": 4, "written": 6}}
    t = str(write_trace(tmp_path / "t.parquet", [open_row()], events=events))
    rc, _, err = run(
        capsysbinary, "report", "count", t, "--by", "comm", "--where", 'kind in ("open")'
    )
    assert rc == 0 and "syscall" not in err
    rc, _, err = run(capsysbinary, "report", "count", t, "--by", "comm")
    assert "4 syscall events were lost" in err


def test_offline_banners_only_in_text(tmp_path: Path, capsysbinary) -> None:
    rows = [syscall_row(ts_ns=START_NS + S)]
    t = str(write_trace(tmp_path / "t.parquet", rows, end_ns=START_NS + 2 * S))
    _, out, _ = run(capsysbinary, "report", "syscount", t)
    assert b"Ctrl+C" in out and out.endswith(b"Detaching...\n")
    _, out, _ = run(capsysbinary, "report", "syscount", t, "--format", "json")
    assert b"Ctrl" not in out and b"Detaching" not in out
