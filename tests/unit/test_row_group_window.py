"""Trace.row_groups(kind, since_ns, until_ns): row groups whose statistics show that no
event of the kind completes (ts_ns + lat_ns) in the window are skipped; any group whose
statistics cannot say is kept. Reading the kept groups never loses a row of the window."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bpfcap.formats.trace import open_trace
from bpfcap.formats.writer import write_table_file
from bpfcap.tests.builders import START_NS, US, S, fork_row, meta, open_row, table

# One row group each (write_table_file writes each table as its own row group).
EARLY = [open_row(ts_ns=START_NS + 10 * S + i * US, lat_ns=10 * US) for i in range(3)]
MIDDLE = [open_row(ts_ns=START_NS + 20 * S + i * US, lat_ns=10 * US) for i in range(3)]
LATE = [open_row(ts_ns=START_NS + 30 * S + i * US, lat_ns=10 * US) for i in range(3)]
# Starts at 5 s, completes at 21 s: in a window [20 s, 22 s) although it started long
# before it.
LONG = [open_row(ts_ns=START_NS + 5 * S), open_row(ts_ns=START_NS + 6 * S, lat_ns=15 * S)]
FORKS = [[fork_row(ts_ns=START_NS + t * S)] for t in (10, 20, 30)]  # no lat_ns column


def at(s: float) -> int:
    return START_NS + int(s * S)


def write(path: Path, groups: list[list[dict]]) -> Path:
    write_table_file(path, [table(rows) for rows in groups], meta())
    return path


@pytest.fixture
def trace(tmp_path):
    # Row groups: 0 EARLY, 1 MIDDLE, 2 LATE, 3 LONG, 4-6 FORKS at 10, 20, 30 s.
    return open_trace(write(tmp_path / "t.parquet", [EARLY, MIDDLE, LATE, LONG, *FORKS]))


def kept(trace, kind: str, since: float | None, until: float | None) -> list[int]:
    groups = trace.row_groups(
        kind, None if since is None else at(since), None if until is None else at(until)
    )
    assert all(not mixed for _, _, mixed in groups)
    return [i for _, i, _ in groups]


def completion(row: dict) -> int:
    """When reports place an event: ts_ns + lat_ns, a null or absent latency counting 0."""
    return row["ts_ns"] + (row.get("lat_ns") or 0)


def test_no_window_keeps_every_group_of_the_kind(trace):
    assert trace.row_groups("open") == trace.row_groups("open", None, None)
    assert [i for _, i, _ in trace.row_groups("open")] == [0, 1, 2, 3]
    assert [i for _, i, _ in trace.row_groups("fork")] == [4, 5, 6]


@pytest.mark.parametrize(
    ("since", "until", "opens", "forks"),
    [
        (None, 1, [], []),  # before every event
        (100, None, [], []),  # after every event
        (0, 1000, [0, 1, 2, 3], [4, 5, 6]),  # around all of them
        (20, 20.5, [1, 3], [5]),  # the middle, and the long open completing at 21 s
        (21.5, 25, [], []),  # between groups, after the long open completed
        (None, 20, [0, 3], [4]),  # until: groups starting at or after 20 s are out
        (30, None, [2], [6]),  # since: groups completing before 30 s are out
        (10, 11, [0, 3], [4]),  # EARLY, and LONG (from 5 s to 21 s, may complete then)
    ],
)
def test_windows_before_inside_and_after(trace, since, until, opens, forks):
    assert kept(trace, "open", since, until) == opens
    assert kept(trace, "fork", since, until) == forks


def test_the_window_bounds_are_since_inclusive_until_exclusive(trace):
    last_early = at(10) + 2 * US + 10 * US  # completion of EARLY's last row
    assert [i for _, i, _ in trace.row_groups("open", last_early, at(11))] == [0, 3]
    assert [i for _, i, _ in trace.row_groups("open", last_early + 1, at(11))] == [3]
    assert [i for _, i, _ in trace.row_groups("open", None, at(20))] == [0, 3]
    assert [i for _, i, _ in trace.row_groups("open", None, at(20) + 1)] == [0, 1, 3]
    # A fork completes when it happens (no latency): the same bounds on ts_ns alone.
    assert [i for _, i, _ in trace.row_groups("fork", at(20), at(20) + 1)] == [5]
    assert [i for _, i, _ in trace.row_groups("fork", at(20) + 1, None)] == [6]


def test_a_long_latency_straddling_the_window_start_is_kept(tmp_path):
    t = open_trace(write(tmp_path / "long.parquet", [LONG]))
    # Every row started before 20 s, the second completes at 21 s.
    assert kept(t, "open", 20, 22) == [0]
    assert kept(t, "open", 21, 22) == [0]
    assert kept(t, "open", 21 + 1e-9, 22) == []
    # A window ending before the first start skips it, whatever the latencies.
    assert kept(t, "open", 0, 5) == []


def test_null_latency_counts_zero(tmp_path):
    rows = [open_row(ts_ns=at(10), lat_ns=None), open_row(ts_ns=at(11), lat_ns=None)]
    t = open_trace(write(tmp_path / "null.parquet", [rows]))
    assert kept(t, "open", 11, None) == [0]
    assert kept(t, "open", 11 + 1e-9, None) == []
    assert t.time_span("open") == (at(10), at(11))


def test_time_span(trace, tmp_path):
    assert trace.time_span("fork") == (at(10), at(30))
    assert trace.time_span("open") == (at(5), at(30) + 2 * US + 10 * US)
    assert trace.time_span() == trace.time_span("open")
    assert trace.time_span("exec") is None  # no rows of it
    bare = open_trace(_rewrite(trace.files[0], tmp_path / "bare.parquet", stats=False))
    assert bare.time_span("open") is None and bare.time_span() is None


def _rewrite(src: Path, dst: Path, *, stats, groups: int | None = None) -> Path:
    """`src` (a bpfcap file) written again by plain pyarrow, with statistics for `stats`
    (True: every column, False: none, or a list of names): its row groups as they are, or
    regrouped `groups` rows at a time."""
    pf = pq.ParquetFile(src)
    kv = {k: v for k, v in pf.metadata.metadata.items() if k != b"ARROW:schema"}
    with pq.ParquetWriter(dst, pf.schema_arrow.with_metadata(kv), write_statistics=stats) as w:
        if groups:
            w.write_table(pf.read(), row_group_size=groups)
        else:
            for i in range(pf.num_row_groups):
                w.write_table(pf.read_row_group(i))
    pf.close()
    return dst


def test_groups_without_statistics_are_all_kept(trace, tmp_path):
    for stats in (False, ["kind"]):
        t = open_trace(_rewrite(trace.files[0], tmp_path / f"{stats}.pq", stats=stats, groups=3))
        every = t.row_groups("open")
        assert every and t.row_groups("open", at(100), None) == every
        assert t.row_groups("open", None, at(1)) == every


def test_without_latency_statistics_only_the_start_prunes(trace, tmp_path):
    """Files of bpfcap before latency statistics: ts_ns has them, lat_ns not. A group of
    a kind with latencies may complete any time after its first start; one of a kind
    without can still be skipped both ways."""
    t = open_trace(_rewrite(trace.files[0], tmp_path / "ts.parquet", stats=["kind", "ts_ns"]))
    assert kept(t, "open", 100, None) == [0, 1, 2, 3]
    assert kept(t, "open", None, 20) == [0, 3]
    assert kept(t, "fork", 100, None) == []
    assert kept(t, "fork", 15, 25) == [5]
    assert t.time_span("open") is None and t.time_span("fork") == (at(10), at(30))


def test_mixed_groups_are_judged_by_all_their_rows(tmp_path):
    """A row group of several kinds (bpfcap writes none; other writers may): its
    statistics cover every kind's rows, so they bound the rows of each."""
    src = write(tmp_path / "src.parquet", [EARLY + MIDDLE, [fork_row(ts_ns=at(10.5))]])
    t = open_trace(_rewrite(src, tmp_path / "mixed.parquet", stats=True, groups=100))
    assert pq.read_metadata(t.files[0]).num_row_groups == 1
    assert t.row_groups("open", at(15), None) == [(t.files[0], 0, True)]
    assert t.row_groups("fork", at(15), None) == [(t.files[0], 0, True)]
    assert t.row_groups("open", at(21), None) == [] == t.row_groups("fork", None, at(10))
    got = pa.concat_tables(t.batches("fork", ["ts_ns"], t.row_groups("fork", at(10), at(11))))
    assert got["ts_ns"].to_pylist() == [at(10.5)]


def _hostile(path: Path, ts: pa.Array, lat: pa.Array) -> Path:
    """A file whose ts_ns and lat_ns (and their statistics) are whatever is given."""
    src = write(path.with_suffix(".src"), [[open_row(ts_ns=at(1))] * len(ts)])
    t = pq.read_table(src)
    t = t.set_column(t.schema.get_field_index("ts_ns"), "ts_ns", ts)
    t = t.set_column(t.schema.get_field_index("lat_ns"), "lat_ns", lat)
    kv = {k: v for k, v in pq.read_metadata(src).metadata.items() if k != b"ARROW:schema"}
    pq.write_table(t.replace_schema_metadata(kv), path)
    return path


I64 = pa.int64()
GOOD = pa.array([1, 2], I64)


@pytest.mark.parametrize(
    ("ts", "lat"),
    [
        (pa.array(["1", "2"]), GOOD),  # times as text
        (pa.array([1.0, 2.0]), GOOD),  # as floats
        (pa.array([-5, 2], I64), GOOD),  # a negative int64: a u64 beyond 2^63 when read
        (pa.array([None, 2], I64), GOOD),  # a null time
        (pa.array([1, 1 << 62], I64), GOOD),  # beyond any monotonic time
        (GOOD, pa.array(["0", "1"])),  # latencies as text
        (GOOD, pa.array([-1, 0], I64)),  # a negative latency: a huge u64 when read
        (GOOD, pa.array([0, 1 << 62], I64)),
        (GOOD, pa.array([None, 1.5])),
    ],
)
def test_statistics_of_the_wrong_type_or_range_never_skip(tmp_path, ts, lat):
    t = open_trace(_hostile(tmp_path / "h.parquet", ts, lat))
    every = t.row_groups("open")
    assert len(every) == 1 and t.time_span("open") is None
    assert t.row_groups("open", 1 << 61, None) == every  # the latest completion is unknown
    # The earliest start is known only from trusted ts_ns statistics (a latency, unsigned
    # when read, only delays the completion).
    assert t.row_groups("open", None, 1) == ([] if ts is GOOD else every)


def test_groups_across_the_files_of_a_segment_directory(tmp_path):
    d = tmp_path / "t.parquet.partial"
    d.mkdir()
    for n, groups in enumerate([[EARLY], [MIDDLE, FORKS[1]], [LATE]], start=1):
        write(d / f"seg-{n:06d}.parquet", groups)
    t = open_trace(d)
    assert [(f.name, i) for f, i, _ in t.row_groups("open", at(15), at(25))] == [
        ("seg-000002.parquet", 0)
    ]
    assert [(f.name, i) for f, i, _ in t.row_groups("fork", at(15), at(25))] == [
        ("seg-000002.parquet", 1)
    ]


def test_reading_the_kept_groups_loses_no_row_of_the_window(tmp_path):
    """Random rows in random groups and files, random windows: the rows of the window read
    from the kept groups are exactly those read from every group."""
    rng = random.Random(7)
    files = []
    for n in range(4):
        groups = []
        for _ in range(rng.randint(1, 5)):
            base = rng.randint(0, 100) * S
            kind = rng.choice(("open", "fork"))
            rows = []
            for _ in range(rng.randint(1, 20)):
                ts = START_NS + base + rng.randint(0, 5 * S)
                if kind == "fork":
                    rows.append(fork_row(ts_ns=ts))
                else:
                    lat = rng.choice([None, 0, rng.randint(0, S), rng.randint(0, 50 * S)])
                    rows.append(open_row(ts_ns=ts, lat_ns=lat))
            groups.append(rows)
        files.append(write(tmp_path / f"f{n}.parquet", groups))
    traces = [open_trace(f) for f in files]
    skipped = 0
    for kind in ("open", "fork"):
        columns = ["ts_ns", "lat_ns"] if kind == "open" else ["ts_ns"]
        everything = [rows_of(t, kind, columns, t.row_groups(kind)) for t in traces]
        for _ in range(100):
            since = START_NS + rng.randint(-10 * S, 160 * S) if rng.random() < 0.8 else None
            until = START_NS + rng.randint(-10 * S, 160 * S) if rng.random() < 0.8 else None
            for t, rows in zip(traces, everything):
                groups = t.row_groups(kind, since, until)
                assert set(groups) <= set(t.row_groups(kind))
                skipped += len(t.row_groups(kind)) - len(groups)
                got = rows_of(t, kind, columns, groups)
                want = [r for r in rows if in_window(r, since, until)]
                assert [r for r in got if in_window(r, since, until)] == want
    assert skipped  # the windows did skip groups


def rows_of(t, kind: str, columns: list[str], groups) -> list[dict]:
    return [r for b in t.batches(kind, columns, groups) for r in b.to_pylist()]


def in_window(row: dict, since: int | None, until: int | None) -> bool:
    end = completion(row)
    return (since is None or end >= since) and (until is None or end < until)
