"""Write the hostile trace files of tests/hostile/ (issue 11): each is small on disk and
made to hurt a reader. Run from the repository: `python tests/hostile/make.py`.

They are kept in the repository so that any bpfcap (and any change to the writer) is
tested against the same bytes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bpfcap.tests.builders import open_row, write_trace  # noqa: E402


def _template(tmp: Path) -> tuple[pa.Schema, dict[bytes, bytes]]:
    """A real trace's Arrow schema and footer key-value metadata."""
    src = write_trace(tmp / "one.parquet", [open_row()])
    kv = dict(pq.read_metadata(src).metadata)
    schema = pq.read_schema(src)
    src.unlink()
    return schema.remove_metadata(), kv


def _write(path: Path, schema: pa.Schema, kv: dict, columns: dict, n: int, **kw) -> None:
    """A one-row-group file of `schema` (footer `kv`), `n` rows: `columns` given, the
    rest null; written with the footer of a real trace (its Arrow schema included, so
    that each column reads back as the trace type whatever its encoding)."""
    arrays = [columns.get(f.name, pa.nulls(n, f.type)) for f in schema]
    types = [a.type for a in arrays]
    t = pa.Table.from_arrays(
        arrays, schema=pa.schema([f.with_type(t) for f, t in zip(schema, types)])
    )
    with pq.ParquetWriter(path, t.schema, compression="zstd", store_schema=False, **kw) as w:
        w.write_table(t, row_group_size=n)
        w.add_key_value_metadata(kv)


def _kind(n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.repeat(pa.scalar(0, pa.int32()), n), ["open"])


def main() -> None:
    schema, kv = _template(HERE)
    # One path of 60,000 bytes repeated 50,000 times, dictionary-encoded: 3 GB expanded.
    n = 50_000
    path = pa.DictionaryArray.from_arrays(
        pa.repeat(pa.scalar(0, pa.int32()), n), pa.array(["/" + "a" * 59_999])
    )
    cols = {"kind": _kind(n), "path": path, "ts_ns": pa.repeat(pa.scalar(10**9), n)}
    _write(HERE / "path-bomb.parquet", schema, kv, cols, n)
    # A value longer than any bpfcap writes (and than readers accept).
    cols = {"kind": _kind(1), "path": pa.array(["/" + "b" * 99_999]), "ts_ns": pa.array([10**9])}
    _write(HERE / "path-too-long.parquet", schema, kv, cols, 1)
    # 10M rows whose kind has no statistics: counted by reading the column.
    n = 10_000_000
    _write(
        HERE / "kind-no-stats.parquet", schema, kv, {"kind": _kind(n)}, n, write_statistics=False
    )
    # Metadata that parses but lies, or does not parse.
    good = json.loads(kv[b"bpfcap.meta"])
    metas = {
        "meta-deep.parquet": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "meta-clock-string.parquet": dict(
            good, clock=dict(good["clock"], realtime_minus_monotonic_ns="abc")
        ),
        "meta-empty-probe.parquet": dict(good, probes=[{}]),
        "meta-huge-int.parquet": dict(good, start_ns=10**30),
        "meta-far-end.parquet": dict(good, end_ns=1 << 61),  # 73 years
    }
    one = {
        "kind": _kind(1),
        "ts_ns": pa.array([good["start_ns"] + 10**9]),
        "tgid": pa.array([7], pa.uint32()),
    }
    for name, m in metas.items():
        body = m if isinstance(m, bytes) else json.dumps(m).encode()
        _write(HERE / name, schema, {**kv, b"bpfcap.meta": body}, one, 1)
    # Times that wrap when added (ts_ns + lat_ns past 2^64).
    wrap = {
        "kind": _kind(1),
        "ts_ns": pa.array([(1 << 63) - 10]),
        "lat_ns": pa.array([1 << 62]),
        "path": pa.array(["/wrap"]),
    }
    _write(HERE / "times-wrap.parquet", schema, kv, wrap, 1)


if __name__ == "__main__":
    main()
