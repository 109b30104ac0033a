"""A real recording read by stock readers (DuckDB, polars, pandas) with no bpfcap code: the
workload's exact counts, found with each reader's own string operations, and `time`
exactly ts_ns plus the recording's clock offset."""

from __future__ import annotations

import json
import os
import sys

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from e2e import WORKLOAD, bpfcap, cleanup, paths
from workload import EXECS, FAILED_EXECS, MISSING_OPENS, OK_OPENS

pytestmark = pytest.mark.root

COMM = "bpfcap-stock"  # the workload's task name (prctl), at most 15 bytes


def test_stock_readers_count_a_recorded_workload_exactly(tmp_path):
    tag = f"stock-{os.getpid()}"
    p = paths(tag)
    open(p["ok"], "w").close()
    trace = tmp_path / "t.parquet"
    try:
        r = bpfcap(
            "record", "-e", "open,exec", "-o", trace, "--",
            sys.executable, WORKLOAD, "run", tag, "--comm", COMM,
        )  # fmt: skip
    finally:
        cleanup(tag)
    pid = int(r.stdout.decode().split("pid=")[1].split()[0])

    # DuckDB: LIKE on the path (text, not bytes).
    q = f"SELECT count(*), min(ret), max(ret) FROM '{trace}' WHERE kind = 'open' AND tgid = {pid}"
    ok = duckdb.sql(q + f" AND path LIKE '%/bpfcap-wl-{tag}-ok'").fetchall()
    assert ok[0][0] == OK_OPENS and ok[0][1] >= 0
    missing = duckdb.sql(q + f" AND path LIKE '%-{tag}-missing'").fetchall()
    assert missing == [(MISSING_OPENS, -2, -2)]

    # polars: string operations on comm and on exec's args.
    df = pl.read_parquet(trace)
    ours = df.filter(pl.col("comm").str.to_uppercase() == COMM.upper())
    opens = ours.filter((pl.col("kind") == "open") & pl.col("path").str.contains(tag, literal=True))
    assert opens.height == OK_OPENS + MISSING_OPENS
    execs = df.filter(
        (pl.col("kind") == "exec") & pl.col("args").list.first().str.starts_with(p["exec_arg"])
    )
    assert execs.height == EXECS and set(execs["comm"]) == {"true"}
    failed = df.filter((pl.col("kind") == "exec") & (pl.col("filename") == p["bad_exec"]))
    assert failed.height == FAILED_EXECS and set(failed["ret"]) == {-2}

    # pandas: exact integers, and time == ts_ns + the recording's realtime - monotonic.
    pdf = pd.read_parquet(trace)
    assert str(pdf["ts_ns"].dtype) == "Int64" and str(pdf["time"].dtype) == "datetime64[ns, UTC]"
    meta = json.loads(pq.read_metadata(trace).metadata[b"bpfcap.meta"])
    offset = meta["clock"]["realtime_minus_monotonic_ns"]
    mine = pdf[(pdf["kind"] == "open") & (pdf["path"] == p["ok"]) & (pdf["tgid"] == pid)]
    assert len(mine) == OK_OPENS
    assert [t.value for t in mine["time"]] == [int(ts) + offset for ts in mine["ts_ns"]]
    assert all(t.value == int(ts) + offset for t, ts in zip(pdf["time"], pdf["ts_ns"]))
    assert meta["start_ns"] + offset <= min(t.value for t in mine["time"])

    # The same counts in `bpfcap export`'s file of the opens.
    out = tmp_path / "open.parquet"
    bpfcap("export", trace, "--type", "open", "-o", out)
    n = f"SELECT count(*) FROM '{out}' WHERE path = '{p['missing']}' AND comm = '{COMM}'"
    assert duckdb.sql(n).fetchall() == [(MISSING_OPENS,)]
