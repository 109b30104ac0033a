"""Joining segment files by copying bytes gives exactly the rows and metadata expected."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bpfcap.formats.events import SCHEMA
from bpfcap.formats.parquet_concat import ParquetConcatError, concat
from bpfcap.formats.trace import open_trace
from bpfcap.formats.writer import merge_files, write_table_file


def _table(kind: str, n: int, seed: int) -> pa.Table:
    cols = {f.name: pa.nulls(n, f.type) for f in SCHEMA}
    cols["kind"] = pa.array([kind] * n)
    cols["ts_ns"] = pa.array([seed * 1000 + i for i in range(n)], pa.uint64())
    cols["tgid"] = pa.array([seed + i % 7 for i in range(n)], pa.uint32())
    cols["comm"] = pa.array([f"c{seed}-{i % 3}".encode() for i in range(n)], pa.binary())
    if kind == "open":
        cols["path"] = pa.array([f"/p/{seed}/{i}".encode() for i in range(n)], pa.binary())
        cols["ret"] = pa.array([i - 3 for i in range(n)], pa.int64())
    else:
        cols["args"] = pa.array(
            [[b"a", f"{i}".encode()][: i % 3] for i in range(n)], pa.list_(pa.binary())
        )
    return pa.Table.from_pydict(cols, schema=SCHEMA)


def test_concat_equals_reading_every_file(tmp_path):
    files, tables = [], []
    for i, parts in enumerate(
        [[("open", 5), ("exec", 3)], [], [("open", 2000)], [("exec", 1), ("open", 1)]]
    ):
        ts = [_table(k, n, i) for k, n in parts]
        p = tmp_path / f"seg-{i}.parquet"
        write_table_file(p, ts, {"segment": i})
        files.append(p)
        tables += ts
    out = tmp_path / "joined.parquet"
    size = merge_files(files, out, {"final": True, "clean_stop": True})
    assert size == out.stat().st_size
    t = open_trace(out)
    for kind in ("open", "exec"):
        cols = ["ts_ns", "tgid", "comm", "path" if kind == "open" else "args"]
        want = pa.concat_tables([x.select(cols) for x in tables if x["kind"][0].as_py() == kind])
        assert t.read(kind, cols).equals(want)
    md = pq.read_metadata(out)
    assert md.num_rows == sum(t.num_rows for t in tables)
    assert md.num_row_groups == sum(pq.read_metadata(f).num_row_groups for f in files)
    assert json.loads(md.metadata[b"bpfcap.meta"]) == {"final": True, "clean_stop": True}
    # Field docs survive (ARROW:schema is carried over), and kind statistics still prune.
    assert pq.read_schema(out).field("path").metadata[b"doc"]
    assert t.read("exec").num_rows == 4
    assert pq.read_table(out, filters=[("kind", "==", "open")]).num_rows == 2006


def test_concat_refuses_other_schemas(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"x": [1]}), a)
    pq.write_table(pa.table({"y": [1]}), b)
    with open(tmp_path / "out.parquet", "wb") as f, pytest.raises(ParquetConcatError):
        concat([a, b], f, {})


def test_concat_refuses_non_parquet(tmp_path):
    a = tmp_path / "a.parquet"
    a.write_bytes(b"not parquet at all")
    with open(tmp_path / "out.parquet", "wb") as f, pytest.raises(ParquetConcatError):
        concat([a], f, {})
