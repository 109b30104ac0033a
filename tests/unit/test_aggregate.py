"""count() and log2_hist(): exact results, across chunks, at the edge buckets."""

from __future__ import annotations

import pyarrow as pa

from bpfcap.analyze.aggregate import SLOTS, count, log2_hist, log2_slots


def test_log2_slots_match_bcc_buckets():
    values = [0, 1, 2, 3, 4, 7, 8, 999, 1000, 2**32 - 1, 2**32, 2**63, 2**64 - 1]
    want = [max(1, v.bit_length()) for v in values]  # bcc-formats.md 2.1
    assert log2_slots(pa.array(values, pa.uint64())).tolist() == want
    assert log2_slots(pa.array([None, 5], pa.int64())).tolist() == [3]


def test_log2_hist_sums_chunks():
    chunks = [
        pa.table({"lat": pa.array([0, 1, 2], pa.uint64())}),
        pa.table({"lat": pa.array([], pa.uint64())}),
        pa.table({"lat": pa.array([3, 2**32], pa.uint64())}),
    ]
    h = log2_hist(chunks, "lat")
    assert len(h) == SLOTS and h.sum() == 5
    assert (h[1], h[2], h[33]) == (2, 2, 1)


def test_count_merges_chunks_and_orders_by_count_then_key():
    a = pa.table({"comm": [b"b", b"a", b"b"], "ret": [0, -2, 0]})
    b = pa.table({"comm": [b"a", b"c"], "ret": [-2, 0]})
    got = count([a, b], ["comm", "ret"]).to_pylist()
    assert got == [
        {"comm": b"a", "ret": -2, "count": 2},
        {"comm": b"b", "ret": 0, "count": 2},
        {"comm": b"c", "ret": 0, "count": 1},
    ]


def test_count_of_nothing():
    assert count([], ["comm"]).num_rows == 0


def test_count_with_dictionary_keys_gives_plain_values():
    a = pa.table({"comm": pa.array([b"x", b"y", b"x"]).dictionary_encode()})
    b = pa.table({"comm": pa.array([b"y", b"y"]).dictionary_encode()})
    got = count([a, b], ["comm"])
    assert got.schema.field("comm").type == pa.binary()
    assert got.to_pylist() == [{"comm": b"y", "count": 3}, {"comm": b"x", "count": 2}]
