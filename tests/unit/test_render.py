"""Rendering: BCC text from column declarations, JSON Lines and CSV (goldens included)."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pytest

from bpfcap.analyze import execsnoop as exe
from bpfcap.analyze import opensnoop as ope
from bpfcap.analyze.common import OutputColumn, decode_replace
from bpfcap.analyze.report import Rows, machine_table
from bpfcap.cli.render import write, write_csv, write_json, write_text
from bpfcap.formats.abi import for_machine
from bpfcap.formats.meta import TraceMeta
from bpfcap.tests.builders import (
    CLOCK,
    PROCESSES,
    START_NS,
    S,
    exec_row,
    fork_row,
    meta,
    open_row,
    table,
)

OPENS = table(
    [
        open_row(flags=0o2000000),
        open_row(
            ts_ns=START_NS + 2 * S,
            tgid=77,
            tid=78,
            uid=1000,
            comm=b"caf\xe9",
            path=b'/tmp/\xff,"x"',
            ret=-2,
            flags=0o101,
            mode=0o644,
        ),
    ]
)
EXECS = table(
    [
        exec_row(),
        exec_row(
            ts_ns=START_NS + 2 * S,
            tgid=3000,
            comm="sh",
            filename="/bin/sh",
            args=["-c", 'echo "a,b"', "x\ny"],
            ret=-13,
        ),
    ]
)
FORKS = table([fork_row()])


def opens_report() -> pa.Table:
    return ope.opensnoop(
        OPENS, ope.Options(timestamp=True, print_uid=True, extended_fields=True), start_ns=START_NS
    )


def execs_report() -> pa.Table:
    return exe.execsnoop(
        EXECS,
        FORKS,
        exe.Options(fails=True, time=True, print_pcomm=True),
        start_ns=START_NS,
        clock=CLOCK,
        processes=PROCESSES,
    )


def render(table: pa.Table, fmt: str, columns: tuple = ()) -> bytes:
    """Text as BCC prints it; JSON and CSV as machines get them (machine_table(): an
    absolute timestamp, names for flags)."""
    out = io.BytesIO()
    if fmt != "text":
        rows = Rows("t", columns=columns, meta=TraceMeta.from_dict(meta()), abi=for_machine(None))
        table = machine_table(table, rows)
    write(table, columns, fmt, out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["text", "json", "csv"])
def test_golden_opensnoop(fmt: str, golden) -> None:
    golden(
        f"render-opensnoop-T-U-e.{'txt' if fmt == 'text' else fmt}",
        render(opens_report(), fmt, ope.COLUMNS),
    )


@pytest.mark.parametrize("fmt", ["text", "json", "csv"])
def test_golden_execsnoop(fmt: str, golden) -> None:
    golden(
        f"render-execsnoop-x-T-M.{'txt' if fmt == 'text' else fmt}",
        render(execs_report(), fmt, exe.COLUMNS),
    )


def test_text_is_raw_bytes_with_null_text() -> None:
    out = render(opens_report(), "text", ope.COLUMNS)
    assert b"caf\xe9            " in out
    assert b'/tmp/\xff,"x"\n' in out
    assert b" 02000000 n/a  /etc/passwd\n" in out  # null mode prints `n/a`, padded as %-4s


def test_text_columns_concatenate_left_to_right() -> None:
    cols = (
        OutputColumn("unused", "", "U", "%s ", "%s "),  # declared, not in the table: not shown
        OutputColumn("a", "", "A", "%-3s", "%-3d"),  # pads, never truncates
        OutputColumn("b", "", "BEE", "%s", "%s", null="-"),
    )
    t = pa.table({"a": pa.array([1, None, 12345]), "b": pa.array([b"x", b"y", None])})
    assert render(t, "text", cols) == b"A  BEE\n1  x\n   y\n12345-\n"


def test_text_decoded_as_the_column_says() -> None:
    """`text=decode_replace`: BCC's .decode('utf-8', 'replace') before formatting, so
    `%-6.6s` counts characters (U+FFFD is one, printed as 3 bytes); raw bytes count
    bytes. Only text changes: JSON and CSV show the same table either way."""
    raw = OutputColumn("c", "", "RAW", "%-6.6s|", "%-6.6s|")
    dec = OutputColumn("c", "", "DEC", "%-6.6s|", "%-6.6s|", text=decode_replace)
    t = pa.table({"c": pa.array([b"a\xff\xfeb", "\u00e9t\u00e9s".encode(), None], pa.binary())})
    assert render(t, "text", (raw,)) == (
        b"RAW   |\n" + b"a\xff\xfeb  |\n" + "\u00e9t\u00e9s|".encode() + b"\n      |\n"
    )
    assert render(t, "text", (dec,)) == (
        "DEC   |\na\ufffd\ufffdb  |\n\u00e9t\u00e9s  |\n      |\n".encode()
    )
    for fmt in ("json", "csv"):
        assert render(t, fmt, (dec,)) == render(t, fmt, (raw,))


def test_json_lines_decode_bytes_with_replacement() -> None:
    lines = render(opens_report(), "json", ope.COLUMNS).decode("utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 2
    assert list(rows[0]) == [
        "timestamp", "time_s", "uid", "pid", "comm", "fd", "err", "flags", "mode", "path"
    ]  # fmt: skip
    assert rows[0]["timestamp"] == "2024-03-05T14:08:21.000010000Z"
    assert rows[0]["mode"] is None and rows[0]["flags"] == ["O_RDONLY", "O_CLOEXEC"]
    assert rows[1]["comm"] == "caf\ufffd"
    assert rows[1]["fd"] == -1 and rows[1]["err"] == 2


def test_csv_round_trips_raw_bytes() -> None:
    out = render(opens_report(), "csv", ope.COLUMNS)
    text = out.decode("utf-8", "surrogateescape")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == [
        "timestamp", "time_s", "uid", "pid", "comm", "fd", "err", "flags", "mode", "path"
    ]  # fmt: skip
    assert rows[1][8] == ""  # null mode
    assert rows[1][7] == '["O_RDONLY", "O_CLOEXEC"]'
    assert rows[2][4].encode("utf-8", "surrogateescape") == b"caf\xe9"
    assert rows[2][9].encode("utf-8", "surrogateescape") == b'/tmp/\xff,"x"'


def test_csv_leaves_the_stream_open() -> None:
    out = io.BytesIO()
    write_csv(pa.table({"a": [1]}), out)
    out.write(b"more")
    assert out.getvalue() == b"a\n1\nmore"


def test_empty_tables() -> None:
    t = pa.table({"a": pa.array([], pa.int64())})
    cols = (OutputColumn("a", "", "A", "%s", "%d"),)
    out = io.BytesIO()
    write_text(t, cols, out)
    write_json(t, out)
    write_csv(t, out)
    assert out.getvalue() == b"A\na\n"


def test_unknown_format() -> None:
    with pytest.raises(ValueError):
        render(pa.table({"a": [1]}), "xml")


@pytest.mark.parametrize(
    "fmt",
    [
        "%-6d ",
        "%4d ",
        "%3d ",
        "%-7d ",
        "%-4d ",
        "%-6d",
        "%-16s ",
        "%s",
        "%-9s",
        "%7s",
        "%-14.14s ",
        "%-10.10s ",
        "%-12.12s ",
        "%.3s",
        "%08o ",
        "%04o ",
        "%-14.9f",
        "%-8.3f",
    ],
)
def test_vectorised_formats_equal_percent_formatting(fmt):
    """Every column format the reports use gives, vectorised, exactly `fmt % value`:
    for bytes, bytes formatting (widths count bytes); for str, str formatting (widths
    count characters), encoded as UTF-8."""
    import random

    import pyarrow as pa

    from bpfcap.cli.render import _format_column

    rng = random.Random(fmt)
    conv = fmt.rstrip(" ")[-1]
    if conv == "d":
        values = [
            rng.choice([0, 1, -1, 7, -42, 2**31, -(2**40), 123456789, None]) for _ in range(300)
        ]
        arr = pa.array(values, pa.int64())
    elif conv == "o":
        values = [rng.choice([0, 1, 0o777, 0o2000000, 0o20200000, 2**40, None]) for _ in range(300)]
        arr = pa.array(values, pa.int64())
    elif conv == "f":
        values = [
            rng.choice([0.0, -0.0, 0.1234567891, 12.5, 1e6 / 3, -0.0005, 0.0625, 2.675, None])
            for _ in range(300)
        ]
        values += [rng.uniform(-5, 5) for _ in range(3000)]
        values += [rng.randrange(10**9) / 1e6 for _ in range(3000)]  # opensnoop -T values
        values += [rng.randrange(10**12) / 1e9 for _ in range(3000)]  # execsnoop -t values
        arr = pa.array(values, pa.float64())
    else:
        values = [
            rng.choice([b"", b"a", b"bash", b"x" * 20, "\u00e9".encode(), b"\xff\xfe", None])
            for _ in range(300)
        ]
        arr = pa.array(values, pa.binary())
        texts = [
            rng.choice(["", "a", "bash", "x" * 20, "\u00e9" * 15, "bad\ufffd\ufffdname", None])
            for _ in range(300)
        ]
        want = [b"?" if v is None else (fmt % v).encode() for v in texts]
        assert _format_column(pa.array(texts, pa.string()), fmt, b"?").to_pylist() == want
    null = b"?"
    want = [null if v is None else fmt.encode() % v for v in values]
    assert _format_column(arr, fmt, null).to_pylist() == want
