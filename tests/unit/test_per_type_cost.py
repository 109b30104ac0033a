"""What a row costs to write does not depend on how many kinds the format knows.

Measured as what the Parquet writer encodes for a kind's rows (its column chunks and
their values) with today's registry and with 4 more types of 10 columns each (the ones
bench/dummy_types.py adds for bench/run.py's CPU comparison): the same. The other kinds'
columns are all-null chunks added when the file is joined, whose size does not grow with
the rows either. Each registry runs in its own interpreter: the file schema is fixed when
bpfcap.formats.writer is imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import io, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import dummy_types
if sys.argv[3] == "dummy":
    dummy_types.install()
import pyarrow.parquet as pq
from bpfcap.formats import writer
import builders

out = {"schema_columns": len(writer.FILE_SCHEMA)}
for rows in (1_000, 100_000):
    t = builders.table([builders.open_row(ts_ns=builders.START_NS + i) for i in range(rows)])
    md = pq.read_metadata(io.BytesIO(writer.encode_kind(t, 0)))
    chunks = [md.row_group(g).column(c) for g in range(md.num_row_groups)
              for c in range(md.num_columns)]
    path = sys.argv[4] + f"/{sys.argv[3]}-{rows}.parquet"
    writer.write_table_file(__import__("pathlib").Path(path), [t], {})
    joined = pq.read_metadata(path)
    own = {c.path_in_schema for c in chunks}
    null_chunks = [joined.row_group(0).column(c) for c in range(joined.num_columns)
                   if joined.row_group(0).column(c).path_in_schema not in own]
    out[rows] = {
        "columns_encoded": md.num_columns,
        "values_encoded": sum(c.num_values for c in chunks),
        "null_chunks": len(null_chunks),
        "null_chunk_bytes": max(c.total_compressed_size for c in null_chunks),
    }
print(json.dumps(out))
"""


def _measure(registry: str, tmp_path: Path) -> dict:
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            str(ROOT / "bench"),
            str(ROOT / "tests"),
            registry,
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout)


def test_rows_encode_the_same_whatever_the_registry(tmp_path):
    today, more = _measure("today", tmp_path), _measure("dummy", tmp_path)
    assert more["schema_columns"] >= today["schema_columns"] + 40
    for rows in ("1000", "100000"):
        # Exactly what is encoded for the rows: the open kind's own columns and values.
        assert more[rows]["columns_encoded"] == today[rows]["columns_encoded"]
        assert more[rows]["values_encoded"] == today[rows]["values_encoded"]
        assert today[rows]["values_encoded"] == int(rows) * today[rows]["columns_encoded"]
        # The other kinds' columns: one chunk each, added at the join.
        assert more[rows]["null_chunks"] == today[rows]["null_chunks"] + (
            more["schema_columns"] - today["schema_columns"]
        )
    # A null chunk's size does not grow with the rows (a few bytes of varint at most).
    for m in (today, more):
        assert m["100000"]["null_chunk_bytes"] <= m["1000"]["null_chunk_bytes"] + 8
        assert m["100000"]["null_chunk_bytes"] < 100
