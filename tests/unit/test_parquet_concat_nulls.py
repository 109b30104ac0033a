"""Joining narrow Parquet files (one kind's columns each) into the wide template schema:
stock readers (pyarrow, duckdb) see the rows padded with nulls, and the nulls cost bytes
per row group and column, not per row."""

from __future__ import annotations

import io

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bpfcap.formats.parquet_concat import (
    FMD_ROW_GROUPS,
    MAGIC,
    RG_TOTAL_COMPRESSED,
    ParquetConcatError,
    _footer,
    _get,
    concat_to_template,
)


def _field(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={b"doc": f"the {name}".encode()})


WIDE = pa.schema(
    [
        _field("kind", pa.string(), nullable=False),
        _field("ts_ns", pa.uint64()),
        _field("ret", pa.int64()),
        _field("tgid", pa.uint32()),
        _field("cpu", pa.uint8()),
        _field("ok", pa.bool_()),
        _field("name", pa.string()),
        _field("comm", pa.binary()),
        _field("uuid", pa.binary(16)),
        _field("at", pa.timestamp("ns", tz="UTC")),
        _field("tags", pa.list_(pa.string())),
        _field("args", pa.list_(pa.binary())),
    ]
)


def _to_bytes(table: pa.Table, **options) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **options)
    return buf.getvalue()


TEMPLATE = _to_bytes(WIDE.empty_table())


def _values(name: str, n: int, seed: int) -> list:
    """Deterministic values for column `name`, every fifth one null."""

    def value(i: int):
        k = seed * 1000 + i
        return {
            "ts_ns": k * 1_000_003,
            "ret": k - 500 if i % 3 else -(2**40) - k,
            "tgid": 100 + k % 17,
            "cpu": k % 4,
            "ok": bool(k % 2),
            "name": f"n{k % 9}",
            "comm": f"c{k % 5}".encode(),
            "uuid": bytes([k % 256]) * 16,
            "at": k * 1_000_000_007,
            "tags": [f"t{j}" for j in range(k % 3)],
            "args": [b"-x", str(k).encode()][: k % 3],
        }[name]

    return [None if i % 5 == 4 else value(i) for i in range(n)]


def _narrow(kind: str, columns: list[str], n: int, seed: int) -> pa.Table:
    fields = [WIDE.field("kind")] + [WIDE.field(c) for c in columns]
    data = {"kind": [kind] * n} | {c: _values(c, n, seed) for c in columns}
    return pa.table(data, schema=pa.schema(fields))


def _padded(table: pa.Table) -> pa.Table:
    """`table` as the join should read it back: every template column, in template order."""
    return pa.table(
        {
            f.name: table[f.name] if f.name in table.column_names else pa.nulls(len(table), f.type)
            for f in WIDE
        },
        schema=WIDE,
    )


# (table, pyarrow write options): several row groups each, dictionary or not, zstd,
# DELTA_BINARY_PACKED, statistics for some columns only.
SOURCES = [
    (
        _narrow("open", ["ts_ns", "tgid", "comm", "name", "ret", "at"], 23, 1),
        dict(
            row_group_size=10,
            compression="zstd",
            use_dictionary=["kind", "comm", "name"],
            column_encoding={"ret": "DELTA_BINARY_PACKED"},
            write_statistics=["kind", "ts_ns"],
        ),
    ),
    (
        _narrow("exec", ["ts_ns", "tgid", "args", "tags", "uuid"], 17, 2),
        dict(row_group_size=8, compression="zstd"),
    ),
    (
        _narrow("net", ["ts_ns", "cpu", "ok", "uuid", "ret"], 12, 3),
        dict(
            row_group_size=5,
            compression="zstd",
            use_dictionary=False,
            column_encoding={"ret": "DELTA_BINARY_PACKED"},
        ),
    ),
    (_narrow("bare", [], 9, 4), dict(row_group_size=4, compression="snappy")),
    (_narrow("empty", ["ok"], 0, 5), {}),
]


@pytest.fixture
def joined(tmp_path):
    """The join of SOURCES, the even ones as files and the odd ones as bytes."""
    sources = []
    for i, (table, options) in enumerate(SOURCES):
        data = _to_bytes(table, **options)
        if i % 2:
            sources.append(data)
        else:
            path = tmp_path / f"narrow-{i}.parquet"
            path.write_bytes(data)
            sources.append(path)
    out = tmp_path / "wide.parquet"
    with open(out, "wb") as f:
        rows = concat_to_template(sources, f, TEMPLATE, {b"bpfcap.meta": b"{}"})
    assert rows == sum(len(t) for t, _ in SOURCES)
    return out


def _row_groups() -> list[tuple[int, set[str]]]:
    """(rows, columns present) of each row group the join should have, in order."""
    out = []
    for table, options in SOURCES:
        n = len(table)
        size = options.get("row_group_size", max(n, 1))
        # pyarrow writes one empty row group for an empty table.
        sizes = [min(size, n - s) for s in range(0, n, size)] or [0]
        out += [(k, set(table.column_names)) for k in sizes]
    return out


def test_pyarrow_reads_the_padded_rows(joined):
    got = pq.read_table(joined)
    expected = pa.concat_tables(_padded(t) for t, _ in SOURCES)
    assert got.equals(expected)
    # The template's ARROW:schema is what pyarrow restores types and field metadata from.
    assert got.schema.field("at").type == pa.timestamp("ns", tz="UTC")
    assert got.schema.field("cpu").metadata == {b"doc": b"the cpu"}
    md = pq.read_metadata(joined)
    assert md.metadata[b"bpfcap.meta"] == b"{}"
    assert (
        md.metadata[b"ARROW:schema"]
        == pq.read_metadata(io.BytesIO(TEMPLATE)).metadata[b"ARROW:schema"]
    )
    assert pq.read_table(joined, filters=[("kind", "==", "open")]).num_rows == 23


def test_synthesised_chunks_are_null_uncompressed_and_accounted(joined):
    md = pq.read_metadata(joined)
    expected = _row_groups()
    assert [md.row_group(i).num_rows for i in range(md.num_row_groups)] == [n for n, _ in expected]
    with open(joined, "rb") as f:
        fmd, footer_start = _footer(f, f.seek(0, 2))
    raw_groups = _get(fmd, FMD_ROW_GROUPS)[2][1]
    ranges = []
    for i, (n, present) in enumerate(expected):
        rg = md.row_group(i)
        for j, field in enumerate(WIDE):
            col = rg.column(j)
            assert col.path_in_schema.split(".")[0] == field.name
            start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
            if col.total_compressed_size:  # pyarrow's chunks of an empty table may have no page
                ranges.append((start, start + col.total_compressed_size))
            if field.name in present:
                continue
            assert col.compression == "UNCOMPRESSED"
            assert col.num_values == n
            assert col.statistics.null_count == n
            assert not col.statistics.has_min_max
        assert rg.total_byte_size == sum(
            rg.column(j).total_uncompressed_size for j in range(rg.num_columns)
        )
        assert _get(raw_groups[i], RG_TOTAL_COMPRESSED)[2] == sum(
            rg.column(j).total_compressed_size for j in range(rg.num_columns)
        )
    # Every chunk lies between the magic and the footer, none overlapping another.
    ranges.sort()
    assert ranges[0][0] >= len(MAGIC) and ranges[-1][1] <= footer_start
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:]))


def test_duckdb_reads_the_same_rows_and_nulls(joined):
    expected = pa.concat_tables(_padded(t) for t, _ in SOURCES)
    kinds = sorted({t["kind"][0].as_py() for t, _ in SOURCES if len(t)})
    columns = [f.name for f in WIDE]
    want = []
    for kind in kinds:
        rows = expected.filter(pc.equal(expected["kind"], kind))
        want.append((kind, len(rows), *(len(rows) - rows[c].null_count for c in columns)))
    counts = ", ".join(f'count("{c}")' for c in columns)
    with duckdb.connect() as con:
        con.execute("SET threads = 1")
        got = con.execute(
            f"SELECT kind, count(*), {counts} FROM read_parquet(?) GROUP BY kind ORDER BY kind",
            [str(joined)],
        ).fetchall()
        assert got == want
        # Values too, not only counts, for a nested column and a synthesised one.
        assert con.execute(
            "SELECT sum(len(args)), count(*) FILTER (WHERE tags IS NULL) FROM read_parquet(?)",
            [str(joined)],
        ).fetchone() == (
            pc.sum(pc.list_value_length(expected["args"])).as_py(),
            expected["tags"].null_count,
        )


def test_sorting_columns_follow_their_column():
    table = _narrow("open", ["tgid", "name"], 4, 1)
    source = _to_bytes(table, sorting_columns=[pq.SortingColumn(2)])
    out = io.BytesIO()
    concat_to_template([source], out, TEMPLATE, {})
    (sc,) = pq.read_metadata(io.BytesIO(out.getvalue())).row_group(0).sorting_columns
    assert sc.column_index == WIDE.names.index("name")


@pytest.mark.parametrize(
    "schema, names",
    [
        # Another type than the template's.
        (pa.schema([WIDE.field("kind"), pa.field("tgid", pa.int64())]), "tgid"),
        # The same Arrow type family, another element type inside a list.
        (pa.schema([WIDE.field("kind"), pa.field("tags", pa.list_(pa.binary()))]), "tags"),
        # Nullable where the template's is required.
        (pa.schema([pa.field("kind", pa.string()), WIDE.field("ret")]), "kind"),
        # A column not in the template.
        (pa.schema([WIDE.field("kind"), pa.field("bogus", pa.int32())]), "bogus"),
        # A required template column missing: it cannot be null.
        (pa.schema([WIDE.field("ret")]), "kind"),
    ],
)
def test_refuses_sources_not_fitting_the_template(schema, names):
    source = _to_bytes(schema.empty_table())
    with pytest.raises(ParquetConcatError, match=names):
        concat_to_template([source], io.BytesIO(), TEMPLATE, {})


def test_null_chunks_cost_the_same_for_one_row_or_a_million():
    # Of every template type, lists (with repetition levels) included.
    wide = pa.schema(
        [WIDE.field("kind")]
        + [pa.field(f"c{i}", WIDE.field(1 + i % (len(WIDE) - 1)).type) for i in range(30)]
    )
    small = pa.table({"kind": ["k"]}, schema=pa.schema([wide.field("kind")]))
    big = pa.table({"kind": pa.repeat("k", 1_000_000)}, schema=small.schema)
    out = io.BytesIO()
    rows = concat_to_template(
        [_to_bytes(small), _to_bytes(big, row_group_size=1_000_000)],
        out,
        _to_bytes(wide.empty_table()),
        {},
    )
    assert rows == 1_000_001
    md = pq.read_metadata(io.BytesIO(out.getvalue()))
    assert [md.row_group(i).num_rows for i in range(2)] == [1, 1_000_000]
    for j in range(1, 31):
        one = md.row_group(0).column(j).total_compressed_size
        million = md.row_group(1).column(j).total_compressed_size
        # The varints for 1 and 1,000,000 (num_values and null_count in the page header, the
        # length of each RLE run) are 1 and 3 bytes long: at most 4 of them grow.
        assert 0 < million - one <= 8, md.row_group(0).column(j).path_in_schema
    got = pq.read_table(io.BytesIO(out.getvalue()), columns=["c0", "c9"])
    assert got["c0"].null_count == got["c9"].null_count == 1_000_001
