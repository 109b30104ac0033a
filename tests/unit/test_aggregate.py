"""count() and log2_hist(): exact results, across chunks, at the edge buckets."""

from __future__ import annotations

import pyarrow as pa
import pytest

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


def test_count_packs_integer_keys_exactly_at_their_extremes():
    tgid = pa.array([0, 2**32 - 1, 7, 7, 0], pa.uint32())
    ret = pa.array([-(2**63), 2**63 - 1, -1, -1, -(2**63)], pa.int64())
    chunk = pa.table({"tgid": tgid, "ret": ret})
    small = pa.table({"a": pa.array([-128, 127], pa.int8()), "b": pa.array([-1, 0], pa.int16())})
    assert count([chunk], ["tgid", "ret"]).to_pylist() == [
        {"tgid": 0, "ret": -(2**63), "count": 2},
        {"tgid": 7, "ret": -1, "count": 2},
        {"tgid": 2**32 - 1, "ret": 2**63 - 1, "count": 1},
    ]
    assert count([small], ["a", "b"]).to_pylist() == [
        {"a": -128, "b": -1, "count": 1},
        {"a": 127, "b": 0, "count": 1},
    ]


def test_count_mixes_packed_chunks_and_chunks_with_nulls():
    a = pa.table({"tgid": pa.array([1, 1], pa.uint32()), "ret": pa.array([5, 5], pa.int64())})
    b = pa.table({"tgid": pa.array([1, None], pa.uint32()), "ret": pa.array([5, 5], pa.int64())})
    got = count([a, b], ["tgid", "ret"]).to_pylist()
    assert got == [{"tgid": 1, "ret": 5, "count": 3}, {"tgid": None, "ret": 5, "count": 1}]


def test_count_packed_keys_match_a_plain_counter_at_any_base():
    import collections
    import random

    rng = random.Random(7)
    for ty, lo, hi in [
        (pa.int64(), -(2**63), 2**63 - 1),
        (pa.uint64(), 0, 2**64 - 1),
        (pa.int32(), -(2**31), 2**31 - 1),
        (pa.uint32(), 0, 2**32 - 1),
        (pa.int8(), -128, 127),
    ]:
        # Narrow ranges at either end (packed), and b over the whole range (packed
        # where the widths still fit in 64 bits, grouped plainly where not).
        for base, bs in [
            (lo, [lo, lo + 3]),
            (hi - 9, [hi, hi - 3]),
            (0 if lo < 0 else lo, [lo, hi, -1 if lo < 0 else 1]),
        ]:
            a = [base + rng.randrange(10) for _ in range(200)]
            b = [rng.choice(bs) for _ in range(200)]
            t = pa.table({"a": pa.array(a, ty), "b": pa.array(b, ty)})
            want = collections.Counter(zip(a, b))
            got = {(r["a"], r["b"]): r["count"] for r in count([t], ["a", "b"]).to_pylist()}
            assert got == want, (ty, base)


@pytest.mark.parametrize("dense_cells", [0, 1 << 20])
@pytest.mark.parametrize("keyed", [False, True])
def test_log2_windows_add_chunk_by_chunk_is_log2_windows(monkeypatch, dense_cells, keyed):
    """Histograms added chunk by chunk, grouped side by side or sorted (windows or keys
    far apart), are log2_windows() of all the values at once."""
    import numpy as np

    from bpfcap.analyze import aggregate

    monkeypatch.setattr(aggregate, "_DENSE_CELLS", dense_cells)
    monkeypatch.setattr(aggregate, "_ADD_ROWS", 50)
    rng = np.random.default_rng(4)
    n = 1000
    values = rng.integers(0, 1 << 40, n) >> rng.integers(0, 40, n)
    ends = 1000 + rng.integers(-5, 120, n)  # before the start, and after the last window
    keys = rng.choice([7, 3, -1, 1 << 40], n) if keyed else None
    plan = {"start_ns": 1000, "length_ns": 10, "n": 11}
    acc: dict = {}
    for at in (0, 1, 333, 334, 800):
        part = slice(at, {0: 1, 1: 333, 333: 334, 334: 800, 800: n}[at])
        aggregate.log2_windows_add(
            acc, values[part], ends[part], None if keys is None else keys[part], **plan
        )
    want = aggregate.log2_windows(values, ends, keys, **plan)
    got = aggregate.log2_windows_result(acc, plan["n"], keyed)
    assert [list(w) for w in got] == [list(w) for w in want]  # the keys, in order
    for g, w in zip(got, want):
        for key in w:
            assert g[key].dtype == w[key].dtype and g[key].tolist() == w[key].tolist()
