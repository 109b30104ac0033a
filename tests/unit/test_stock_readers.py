"""Format 2 read by stock readers (DuckDB, polars, pandas) as they are, with no bpfcap code:
a trace with awkward values (not UTF-8, 63-bit socket ids, IPv6), the v2 samples, and
`bpfcap export`'s files. And format 1 vs format 2: every report prints the same for a
v1 sample and its conversion to format 2."""

from __future__ import annotations

import socket
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bpfcap.analyze.registry import names as report_names
from bpfcap.capture.segments import SegmentDir
from bpfcap.cli.main import main
from bpfcap.formats import v2
from bpfcap.formats.events import BY_NAME, EVENT_TYPES
from bpfcap.formats.trace import FIELDS, open_trace, rows_by_kind
from bpfcap.formats.writer import write_table_file
from bpfcap.tests import builders
from bpfcap.tests.builders import REALTIME_MINUS_MONOTONIC_NS as OFFSET
from bpfcap.tests.builders import START_NS, S, exec_row, fork_row, open_row, tcp_row, write_trace

ROOT = Path(__file__).resolve().parents[2]
V1_SAMPLES = sorted((ROOT / "sample-traces").glob("v1-*.parquet"))
V2_SAMPLES = sorted((ROOT / "sample-traces").glob("v2-*.parquet"))

ODD_COMM = b"c\xffat"  # not UTF-8: shows as "c\ufffdat", exact in comm_raw
ODD_PATH = b"/etc/caf\xe9"  # Latin-1
ODD_ARG = b"\xfe\xff"
SOCK = 0x7FFF_FFFF_FFFF_FFF1  # above 2^53: a float64 would lose its low bits
ODD_TS = START_NS + 2 * S + 123  # ns precision
ROWS = [
    open_row(path="/etc/passwd"),
    open_row(path=ODD_PATH, comm=ODD_COMM, ts_ns=ODD_TS),
    open_row(path="/etc/hosts", ret=-2),
    open_row(path="/tmp/x"),
    exec_row(args=["-l", ODD_ARG, "x"]),
    exec_row(comm="id", filename="/bin/id", args=[]),
    tcp_row(sock=SOCK),
    tcp_row(
        sock=0x10,
        family=10,
        sport=443,
        saddr=socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
        daddr=socket.inet_pton(socket.AF_INET6, "::1"),
    ),
    fork_row(),
]
# Rows of `ROWS` per kind.
COUNTS = {"open": 4, "exec": 2, "tcp": 2, "fork": 1}


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    return write_trace(tmp_path_factory.mktemp("stock") / "t.parquet", ROWS)


def cli(capsysbinary, *argv) -> tuple[int, bytes, str]:
    """`bpfcap ARGV` through the CLI's error boundary: exit status, stdout, stderr."""
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in argv])
    out, err = capsysbinary.readouterr()
    return exit_.value.code, out, err.decode()


# --- DuckDB, polars, pandas on a format-2 trace ------------------------------------------


def test_duckdb(trace):
    con = duckdb.connect()
    con.execute(f"CREATE VIEW T AS SELECT * FROM '{trace}'")

    def sql(q: str) -> list[tuple]:
        return con.sql(q).fetchall()

    assert dict(sql("SELECT kind, count(*) FROM T GROUP BY kind")) == COUNTS
    assert sql("SELECT count(*) FROM T WHERE path LIKE '/etc/%'") == [(3,)]
    assert sql("SELECT DISTINCT typeof(comm), typeof(path) FROM T") == [("VARCHAR", "VARCHAR")]
    assert sql("SELECT DISTINCT upper(comm) FROM T WHERE kind = 'open' ORDER BY 1") == [
        ("CAT",),
        ("C\ufffdAT",),
    ]
    # The exact bytes where the text is not UTF-8, and only there.
    assert sql("SELECT path, path_raw FROM T WHERE path_raw IS NOT NULL") == [
        ("/etc/caf\ufffd", ODD_PATH)
    ]
    assert sql("SELECT comm_raw FROM T WHERE comm_raw IS NOT NULL") == [(ODD_COMM,)]
    assert sql("SELECT comm, args, args_raw FROM T WHERE kind = 'exec' ORDER BY comm") == [
        ("id", [], None),
        ("ls", ["-l", "\ufffd\ufffd", "x"], [b"-l", ODD_ARG, b"x"]),
    ]
    assert sql("SELECT sock FROM T WHERE kind = 'tcp' ORDER BY sock") == [(0x10,), (SOCK,)]
    assert sql("SELECT saddr, daddr FROM T WHERE kind = 'tcp' ORDER BY family") == [
        ("127.0.0.1", "127.0.0.1"),
        ("2001:db8::1", "::1"),
    ]
    # time: TIMESTAMP WITH TIME ZONE (DuckDB 1.x, in us) or TIMESTAMPTZ_NS (DuckDB 2).
    ((kind,),) = sql("SELECT DISTINCT typeof(time) FROM T")
    assert kind in ("TIMESTAMPTZ_NS", "TIMESTAMP WITH TIME ZONE")
    epoch, div = ("epoch_ns", 1) if kind == "TIMESTAMPTZ_NS" else ("epoch_us", 1000)
    assert sql(f"SELECT count(*) FROM T WHERE {epoch}(time) = (ts_ns + {OFFSET}) // {div}") == [
        (len(ROWS),)
    ]
    assert sql(f"SELECT {epoch}(time) FROM T WHERE path_raw IS NOT NULL") == [
        ((ODD_TS + OFFSET) // div,)
    ]
    docs = dict(sql(f"SELECT key, value FROM parquet_kv_metadata('{trace}')"))
    assert docs[b"bpfcap.column.path"] == b"Path argument as passed (first 255 bytes)"
    assert docs[b"bpfcap.column.lat_ns"].endswith(b" [ns]")


def test_polars(trace):
    df = pl.read_parquet(trace)
    assert df.schema["comm"] == pl.String and df.schema["path"] == pl.String
    assert df.schema["time"] == pl.Datetime("ns", "UTC")
    opens = df.filter(pl.col("kind") == "open").sort("ts_ns")
    assert opens["comm"].str.to_uppercase().to_list() == ["CAT", "CAT", "CAT", "C\ufffdAT"]
    assert opens.filter(pl.col("path").str.starts_with("/etc/")).height == 3
    assert (df["time"].dt.epoch("ns") == df["ts_ns"] + OFFSET).all()
    assert df.schema["sock"] == pl.Int64
    assert df.filter(pl.col("kind") == "tcp")["sock"].sort().to_list() == [0x10, SOCK]
    assert df.filter(pl.col("path_raw").is_not_null())["path_raw"].to_list() == [ODD_PATH]


def test_pandas(trace):
    df = pd.read_parquet(trace)
    schema = pq.read_schema(trace)
    for f in schema:
        dtype = df[f.name].dtype
        if pa.types.is_integer(f.type):  # nullable (Int64, UInt32...): other kinds are null
            assert pd.api.types.is_integer_dtype(dtype), (f.name, dtype)
        assert not pd.api.types.is_float_dtype(dtype), (f.name, dtype)
    assert str(df["sock"].dtype) == "Int64"
    socks = df.loc[df["kind"] == "tcp", "sock"].tolist()
    assert sorted(socks) == [0x10, SOCK] and all(type(s) is int for s in socks)
    assert str(df["time"].dtype) == "datetime64[ns, UTC]"
    times = [t.value for t in df["time"]]
    assert times == [ts + OFFSET for ts in df["ts_ns"]]
    assert str(df["args_truncated"].dtype) == "boolean"
    paths = df.loc[df["kind"] == "open", "path"].tolist()
    assert all(isinstance(p, str) for p in paths)
    assert sorted(paths) == ["/etc/caf\ufffd", "/etc/hosts", "/etc/passwd", "/tmp/x"]


@pytest.mark.parametrize("sample", V2_SAMPLES, ids=lambda p: p.name)
def test_the_v2_samples_read_with_every_reader(sample):
    expected = rows_by_kind(open_trace(sample))
    got = duckdb.sql(f"SELECT kind, count(*) FROM '{sample}' GROUP BY kind").fetchall()
    assert dict(got) == expected
    df = pl.read_parquet(sample)
    assert dict(df.group_by("kind").len().iter_rows()) == expected
    assert pd.read_parquet(sample)["kind"].value_counts().to_dict() == expected


# --- bpfcap export -----------------------------------------------------------------------


def check_export(src: Path, kind: str, out: Path) -> None:
    """`out` (exported from `src`) has the kind's format-2 columns, `_raw` ones where some
    value needs them, the rows bpfcap reads from `src`, and opens in every reader."""
    t = BY_NAME[kind]
    got = pq.read_table(out)
    want = open_trace(src).read(kind)
    raw = {n for n in v2.kind_schema(t).names if n.endswith(v2.RAW)}
    needed = {f.name + v2.RAW for f in t.columns if f.string_shape and _not_utf8(want[f.name])}
    assert got.schema.names == [n for n in v2.kind_schema(t).names if n not in raw - needed]
    assert got.schema.metadata[b"pandas"]  # nullable dtypes for pandas
    assert got["kind"].to_pylist() == [kind] * want.num_rows
    for f in t.columns:  # the in-memory representation, value for value
        companion = got[f.name + v2.RAW] if f.name + v2.RAW in got.schema.names else None
        decoded = v2.decode(FIELDS[f.name], got[f.name], companion)
        assert decoded.to_pylist() == want[f.name].to_pylist(), f.name
    ts = got["ts_ns"].to_pylist()
    offset = open_trace(src).meta["clock"]["realtime_minus_monotonic_ns"]
    assert got["time"].cast(pa.int64()).to_pylist() == [x + offset for x in ts]
    # Column docs, and the recording's metadata for information; not a trace.
    kv = pq.read_metadata(out).metadata
    assert kv[b"bpfcap.column.ts_ns"].startswith(b"When the event started")
    assert b"bpfcap.meta" in kv and b"bpfcap.format_version" not in kv
    assert got.schema.field("ts_ns").metadata[b"doc"].startswith(b"When the event started")
    assert duckdb.sql(f"SELECT count(*) FROM '{out}'").fetchall() == [(want.num_rows,)]
    assert pl.read_parquet(out).height == len(pd.read_parquet(out)) == want.num_rows
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def _not_utf8(column: pa.ChunkedArray) -> bool:
    """Some value of a binary (or list<binary>) column, or an item of one, is not UTF-8."""
    values = column.to_pylist()
    items = [x for v in values if v is not None for x in (v if isinstance(v, list) else [v])]
    try:
        for x in items:
            x.decode()
    except UnicodeDecodeError:
        return True
    return False


@pytest.mark.parametrize("which", ["built", *(p.name for p in V1_SAMPLES + V2_SAMPLES)])
def test_export_every_kind(which, trace, tmp_path, capsysbinary):
    src = trace if which == "built" else ROOT / "sample-traces" / which
    rc, out, err = cli(capsysbinary, "export", src, "-o", tmp_path / "all")
    rows = rows_by_kind(open_trace(src))
    kinds = [t.name for t in EVENT_TYPES if rows.get(t.name)]
    assert (rc, out) == (0, b"")
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(
        f"{k}.parquet" for k in kinds
    )
    assert err.splitlines() == [
        f"Wrote {tmp_path / 'all' / k}.parquet ({rows[k]} row{'s' * (rows[k] != 1)})" for k in kinds
    ]
    for k in kinds:
        check_export(src, k, tmp_path / "all" / f"{k}.parquet")


def test_export_one_kind_keeps_raw_columns_only_where_needed(trace, tmp_path, capsysbinary):
    out = tmp_path / "open.parquet"
    assert cli(capsysbinary, "export", trace, "--type", "open", "-o", out)[0] == 0
    check_export(trace, "open", out)
    assert {"comm_raw", "path_raw"} <= set(pq.read_schema(out).names)
    out = tmp_path / "tcp.parquet"
    assert cli(capsysbinary, "export", trace, "--type", "tcp", "-o", out)[0] == 0
    assert not [n for n in pq.read_schema(out).names if n.endswith("_raw")]
    assert duckdb.sql(f"SELECT max(sock), min(saddr) FROM '{out}'").fetchall() == [
        (SOCK, "127.0.0.1")
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["open.parquet", "tcp.parquet"]


@pytest.mark.parametrize("name", ["v1-structs.parquet", "v2-kernel.parquet"])
def test_sql_views_in_duckdb(name, capsysbinary):
    sample = ROOT / "sample-traces" / name
    rc, out, err = cli(capsysbinary, "export", sample, "--sql")
    assert (rc, err) == (0, "")
    con = duckdb.connect()
    con.execute(out.decode())
    expected = rows_by_kind(open_trace(sample))
    views = {k: con.sql(f'SELECT count(*) FROM "{k}"').fetchall()[0][0] for k in expected}
    assert views == expected
    kind = next(iter(expected))
    assert [c[0] for c in con.sql(f'DESCRIBE "{kind}"').fetchall()] == [
        n for n in v2.kind_schema(BY_NAME[kind]).names if n in pq.read_schema(sample).names
    ]


def test_export_of_a_segment_directory(tmp_path, capsysbinary):
    """A recorder's segments, one row group each: only the second needs path_raw, which
    the others get as null chunks; the views read every segment."""
    header = builders.meta(clean_stop=False, events={})
    d = SegmentDir(tmp_path / "t.parquet.partial", header=header)
    for path in ("/a", ODD_PATH, "/b"):
        rows = builders.table([open_row(path=path)])
        d.close_segment(builders.meta(clean_stop=False), lambda rows=rows: [rows])
    d.finish()
    out = tmp_path / "open.parquet"
    assert cli(capsysbinary, "export", tmp_path / "t.parquet", "--type", "open", "-o", out)[0] == 0
    check_export(d.path, "open", out)
    assert pq.read_metadata(out).num_row_groups == 3
    assert pq.read_table(out)["path_raw"].to_pylist() == [None, ODD_PATH, None]
    rc, sql, _ = cli(capsysbinary, "export", d.path, "--sql")
    con = duckdb.connect()
    con.execute(sql.decode())
    assert con.sql('SELECT count(*), count(path_raw) FROM "open"').fetchall() == [(3, 1)]


def test_export_errors(trace, tmp_path, capsysbinary):
    def error(*argv) -> tuple[int, str]:
        rc, out, err = cli(capsysbinary, "export", *argv)
        assert out == b"" and len(err.splitlines()) == 1 and err.startswith("error: "), err
        return rc, err.strip()

    out = tmp_path / "o.parquet"
    assert error(trace, "--type", "opne", "-o", out) == (
        2,
        "error: unknown event type 'opne'; choose from "
        "open, exec, fork, syscall, signal, bio, runq, tcp, cwd, accept",
    )
    assert error(trace, "--type", "bio", "-o", out) == (
        2,
        f"error: {trace} has no bio rows; it has rows of open, exec, fork, tcp",
    )
    assert error(trace, "--sql", "--type", "bio")[0] == 2
    out.write_bytes(b"keep")
    assert error(trace, "--type", "open", "-o", out) == (
        1,
        f"error: {out} already exists; pass --force to overwrite it",
    )
    assert out.read_bytes() == b"keep"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "exec.parquet").write_bytes(b"keep")
    rc, msg = error(trace, "-o", tmp_path / "d")
    assert rc == 1 and "exec.parquet already exists" in msg
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["exec.parquet"]  # nothing else
    assert error(trace, "--type", "open")[0] == 2  # no -o
    # --force replaces; no part or temporary file is left behind.
    assert cli(capsysbinary, "export", trace, "--type", "open", "-o", out, "--force")[0] == 0
    check_export(trace, "open", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "o.parquet"]
    # An exported file is not a trace.
    rc, msg = error("--force", "--type", "open", "-o", tmp_path / "x", out)
    assert rc == 1 and "not a bpfcap trace" in msg


# --- format 1 and its format-2 conversion: the same reports ------------------------------


def to_v2(src: Path, dst: Path) -> Path:
    """The trace `src` rewritten in format 2: every kind read, written with its metadata."""
    t = open_trace(src)
    tables = []
    for kind in EVENT_TYPES:
        table = t.read(kind.name)
        tables.append(table.add_column(0, "kind", pa.repeat(pa.scalar(kind.name), len(table))))
    write_table_file(dst, tables, t.meta)
    return dst


# Report commands with a required option: the least they need.
REQUIRED = {"count": ["--by", "comm,kind"], "hist": ["--field", "lat_ns"]}
# And a few flags that read more columns (cwd's dirs, exec's parents, text keys).
MORE = [
    ["opensnoop", "-F", "-T", "-U", "-e"],
    ["execsnoop", "-x", "-M", "-T"],
    ["count", "--by", "path", "-e", "open"],
    ["tcplife", "-w", "-T"],
]


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[Path, Path]:
    d = tmp_path_factory.mktemp("converted")
    return {p: to_v2(p, d / p.name.replace("v1-", "v2-")) for p in V1_SAMPLES}


def test_conversion_holds_every_row(converted):
    for v1, v2_file in converted.items():
        assert open_trace(v2_file).version == 2
        assert rows_by_kind(open_trace(v2_file)) == rows_by_kind(open_trace(v1))


@pytest.mark.parametrize("sample", V1_SAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("command", report_names())
def test_every_report_is_the_same_on_v1_and_its_v2_conversion(
    sample, command, converted, capsysbinary
):
    extra = REQUIRED.get(command, [])
    rc1, out1, _ = cli(capsysbinary, "report", command, sample, *extra)
    rc2, out2, _ = cli(capsysbinary, "report", command, converted[sample], *extra)
    assert rc1 == rc2 == 0
    assert out2 == out1


@pytest.mark.parametrize("sample", V1_SAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("argv", MORE, ids=" ".join)
def test_reports_with_flags_are_the_same_on_v1_and_v2(sample, argv, converted, capsysbinary):
    command, *flags = argv
    v1 = cli(capsysbinary, "report", command, sample, *flags)
    assert v1[0] == 0
    assert cli(capsysbinary, "report", command, converted[sample], *flags)[:2] == v1[:2]
