"""report count / hist and the --where language, on a trace of several kinds."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from bpfcap.analyze.where import compile_where
from bpfcap.cli.main import main
from bpfcap.formats.errors import UsageError
from bpfcap.formats.events import SCHEMA
from bpfcap.tests.builders import open_row, syscall_row, write_trace

ROWS = (
    [open_row(comm="bash", ret=3, lat_ns=0)] * 3
    + [open_row(comm="bash", ret=-2, lat_ns=1, path="/nope")]
    + [open_row(comm="cat", ret=4, lat_ns=v) for v in (2, 3, 2047, 2048, 1 << 30)]
    + [syscall_row(comm="bash", nr=110, ret=-1, lat_ns=5)] * 37
    + [syscall_row(comm="cat", nr=0, ret=7, lat_ns=5)] * 2
)


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_trace(tmp_path_factory.mktemp("ch") / "t.parquet", ROWS)


def run(capsysbinary, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["report", *map(str, argv)])
    out, err = capsysbinary.readouterr()
    return exit_.value.code, out.decode(), err.decode()


def test_count_as_a_bpftrace_map(trace, capsysbinary) -> None:
    rc, out, err = run(capsysbinary, "count", trace, "--by", "kind")
    assert (rc, err) == (0, "")
    assert out == "@[open]: 9\n@[syscall]: 39\n"
    _, out, _ = run(capsysbinary, "count", trace, "--by", "comm,ret", "--where", "ret < 0")
    assert out == "@[bash, -2]: 1\n@[bash, -1]: 37\n"
    _, out, _ = run(capsysbinary, "count", trace, "--by", "comm", "--top", "1")
    assert out == "@[bash]: 41\n"
    _, out, _ = run(capsysbinary, "count", trace, "-e", "open", "--by", "path", "--format", "csv")
    assert out == "path,count\n/etc/passwd,8\n/nope,1\n"


def test_count_kinds_follow_the_columns(trace, capsysbinary) -> None:
    # nr exists only in syscall rows: open rows are not counted as a null key.
    _, out, _ = run(capsysbinary, "count", trace, "--by", "nr")
    assert out == "@[0]: 2\n@[110]: 37\n"
    rc, _, err = run(capsysbinary, "count", trace, "--by", "nr,path")
    assert rc == 2 and err.startswith("error: no event type has all of nr, path")
    rc, _, err = run(capsysbinary, "count", trace, "--by", "nosuch")
    assert rc == 2 and err.startswith("error: no column nosuch")


def test_hist_pow2_and_linear(trace, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, "hist", trace, "-e", "open", "--field", "lat_ns")
    assert out.splitlines() == [
        "@lat_ns:",
        "[0]                    3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|",
        "[1]                    1 |@@@@@@@@@@@@@@@@@                                   |",
        "[2, 4)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@                  |",
        *(f"[{a}, {b})" .ljust(16) + "       0 |" + " " * 52 + "|" for a, b in [
            ("4", "8"), ("8", "16"), ("16", "32"), ("32", "64"), ("64", "128"),
            ("128", "256"), ("256", "512"), ("512", "1K")]),
        "[1K, 2K)               1 |@@@@@@@@@@@@@@@@@                                   |",
        "[2K, 4K)               1 |@@@@@@@@@@@@@@@@@                                   |",
        *(f"[{a}, {b})".ljust(16) + "       0 |" + " " * 52 + "|" for a, b in [
            ("4K", "8K"), ("8K", "16K"), ("16K", "32K"), ("32K", "64K"), ("64K", "128K"),
            ("128K", "256K"), ("256K", "512K"), ("512K", "1M"), ("1M", "2M"), ("2M", "4M"),
            ("4M", "8M"), ("8M", "16M"), ("16M", "32M"), ("32M", "64M"), ("64M", "128M"),
            ("128M", "256M"), ("256M", "512M"), ("512M", "1G")]),
        "[1G, 2G)               1 |@@@@@@@@@@@@@@@@@                                   |",
        "",
    ]  # fmt: skip
    _, out, _ = run(
        capsysbinary, "hist", trace, "--field", "ret", "--by", "comm", "--linear", "0,6,3"
    )
    assert out.splitlines() == [
        "@ret[bash]:",
        "(..., 0)              38 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|",
        "[0, 3)                 0 |                                                    |",
        "[3, 6)                 3 |@@@@                                                |",
        "",
        "@ret[cat]:",
        "[3, 6)                 5 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|",
        "[6, ...)               2 |@@@@@@@@@@@@@@@@@@@@                                |",
        "",
    ]
    rc, _, err = run(capsysbinary, "hist", trace, "--field", "comm")
    assert rc == 2 and "not an integer column" in err
    rc, _, err = run(capsysbinary, "hist", trace, "--field", "ret", "--linear", "5,1,1")
    assert rc == 2


@pytest.mark.parametrize(
    "expr, want",
    [
        ('comm == "bash" and ret < 0', [b"bash"]),
        ("not (ret < 0) && tgid in (1, 1000)", [b"cat"]),
        ("flags & 64 != 0 or comm ~ 'c.t'", [b"cat"]),
        ("-3 < ret and ret <= 0x10", [b"bash", b"cat"]),
    ],
)
def test_where_language(expr, want) -> None:
    t = pa.table(
        {
            "comm": pa.array([b"bash", b"cat"]),
            "ret": pa.array([-2, 3], pa.int64()),
            "tgid": pa.array([7, 1000], pa.uint32()),
            "flags": pa.array([0, 0], pa.uint32()),
        }
    )
    e, _ = compile_where(expr, t.schema)
    assert t.filter(e)["comm"].to_pylist() == want


@pytest.mark.parametrize(
    "expr, message",
    [
        ("ret <", "expected a column, a number or a quoted string, found the end (at 5)"),
        ("nope == 1", "no column 'nope'"),
        ("(ret < 0", "expected ), found the end"),
        ("ret $ 3", "cannot read '$ 3'"),
        ("__import__('os')", "no column '__import__'"),
    ],
)
def test_where_errors(expr, message) -> None:
    with pytest.raises(UsageError) as e:
        compile_where(expr, SCHEMA)
    assert message in str(e.value)
