"""Counts and power-of-two histograms over any column: the engines behind bpftrace-style
`count()` and `hist()` reports. Pure functions over Arrow tables, fed chunk by chunk so
that a trace of any size is aggregated in bounded memory.

Text (cli/render.py): keys as bpftrace prints map keys, a string's raw bytes unescaped
(bpftrace src/types_format.cpp:127-128, src/output/text.cpp:19).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.formats.errors import UsageError
from bpfcap.formats.schema import empty_table

# Slot boundaries of BCC's log2 histograms: slot = max(1, bit_length(v)), so slot 1 holds
# 0 and 1, slot 2 holds 2-3, slot 3 holds 4-7, ... (bcc-formats.md, section 2.1).
_POW2 = np.array([1 << i for i in range(64)], dtype=np.uint64)
SLOTS = 65


def log2_slots(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """BCC's slot of each non-negative integer value (nulls dropped), as int64."""
    v = pc.drop_null(values)
    if isinstance(v, pa.ChunkedArray):
        v = v.combine_chunks()
    arr = np.asarray(v.cast(pa.uint64()).to_numpy(zero_copy_only=False), dtype=np.uint64)
    # bit_length(v) is frexp's exponent: exact while v converts to float64 exactly; larger
    # values (above 2**53, rare) may round up to the next power of two, so they are
    # counted exactly with a search among the powers of two.
    slots = np.frexp(arr.astype(np.float64))[1].astype(np.int64)
    big = arr >= np.uint64(1 << 53)
    if big.any():
        slots[big] = np.searchsorted(_POW2, arr[big], side="right")
    return np.maximum(slots, 1)  # 0 and 1 both land in slot 1


def log2_hist(chunks: Iterable[pa.Table], field: str) -> np.ndarray:
    """Counts per slot (index 0..64) of `field` over every chunk."""
    counts = np.zeros(SLOTS, dtype=np.int64)
    for t in chunks:
        counts += np.bincount(log2_slots(t.column(field)), minlength=SLOTS)
    return counts


def _packing(t: pa.Table, by: Sequence[str]) -> list[tuple[int, int]] | None:
    """(lowest value, bit width) of each integer key of `t` when their ranges fit side
    by side in one uint64 and none has nulls; else None."""
    if len(by) < 2:
        return None
    out = []
    for b in by:
        col = t.column(b)
        if not pa.types.is_integer(col.type) or col.null_count:
            return None
        mm = pc.min_max(col).as_py()
        out.append((mm["min"], (mm["max"] - mm["min"]).bit_length()))
    return out if sum(w for _, w in out) <= 64 else None


def _pack(t: pa.Table, by: Sequence[str], packing: list[tuple[int, int]]) -> np.ndarray:
    """The keys `by` as one uint64 per row: each key's offset from its lowest value,
    the first key in the highest bits."""
    key = np.zeros(t.num_rows, dtype=np.uint64)
    for b, (low, width) in zip(by, packing):
        v = t.column(b).to_numpy()
        # The offset in the key's own width wraps to the exact difference (it fits).
        d = (v - v.dtype.type(low)).astype(np.uint64)
        if v.dtype.kind == "i":
            d &= np.uint64((1 << width) - 1)
        key = (key << np.uint64(width)) | d
    return key


def _unpack(keys: np.ndarray, t: pa.Table, by: Sequence[str], packing) -> list[pa.Array]:
    out = []
    shift = 0
    for b, (low, width) in reversed(list(zip(by, packing))):
        ty = t.schema.field(b).type
        d = (keys >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        v = d.astype(ty.to_pandas_dtype()) + np.array(low).astype(ty.to_pandas_dtype())
        out.append(pa.array(v, ty))
        shift += width
    return out[::-1]


def _partial(t: pa.Table, by: Sequence[str]) -> pa.Table:
    """Rows per distinct key of one chunk: columns `by` and count_all."""
    packing = _packing(t, by)
    if packing is not None:
        # Several integer keys (tgid, ret) group faster packed into one.
        g = pa.table({"k": _pack(t, by, packing)}).group_by("k").aggregate([([], "count_all")])
        keys = g.column("k").to_numpy()
        return pa.table(
            [*_unpack(keys, t, by, packing), g.column("count_all")], names=[*by, "count_all"]
        )
    p = t.select(list(by)).group_by(list(by)).aggregate([([], "count_all")])
    for i, f in enumerate(p.schema):  # dictionary keys: plain values (few rows)
        if pa.types.is_dictionary(f.type):
            p = p.set_column(i, f.name, p.column(i).cast(f.type.value_type))
    return p


# count() folds its per-chunk counts together after this many chunks.
_MERGE_EVERY = 32


def _sum(partials: list[pa.Table], by: Sequence[str]) -> pa.Table:
    """Per-chunk counts (columns `by`, count_all) summed into one such table."""
    if len(partials) == 1:
        return partials[0]
    total = pa.concat_tables(partials).group_by(list(by)).aggregate([("count_all", "sum")])
    return total.select([*by, "count_all_sum"]).rename_columns([*by, "count_all"])


def _distinct(partials: list[pa.Table]) -> int:
    """A lower bound of the distinct keys among `partials` (the largest one's rows)."""
    return max(p.num_rows for p in partials)


def count(chunks: Iterable[pa.Table], by: Sequence[str]) -> pa.Table:
    """Rows per distinct value of the `by` columns over every chunk: the columns `by`
    and `count` (int64), most frequent first (ties in key order). Chunks may carry
    string keys as dictionary arrays (faster); the result has plain values."""
    partials: list[pa.Table] = []
    held = 0
    for t in chunks:
        if not t.num_rows:
            continue
        partials.append(_partial(t, by))
        held += partials[-1].num_rows
        if len(partials) >= _MERGE_EVERY and held > 2 * _distinct(partials):
            # Fold the per-chunk counts into one table: what is held is one count per
            # distinct key, not one per key and chunk (which grows with the trace).
            partials = [_sum(partials, by)]
            held = partials[0].num_rows
    if not partials:
        schema = pa.schema([*(pa.field(b, pa.null()) for b in by), pa.field("count", pa.int64())])
        return empty_table(schema)
    total = _sum(partials, by).rename_columns([*by, "count"])
    return total.sort_by([("count", "descending"), *((b, "ascending") for b in by)])


def window_plan(
    start_ns: int, end_ns: int, interval_s: float | None, count: int | None = None
) -> tuple[int, int]:
    """(window length ns, number of windows) of a replay in INTERVAL [COUNT] windows from
    the recording's start to its end: the live tool prints at each interval's end and
    once more at the stop; without an interval, one window covering the recording."""
    if not interval_s:
        return max(1, end_ns - start_ns + 1), 1
    length = max(1, int(interval_s * 1e9))
    n = max(1, -(-(end_ns - start_ns) // length))
    n = min(n, count) if count else n
    if n > MAX_WINDOWS:  # a year at 1 s is 31M: each window is memory and output
        raise UsageError(
            f"{n} intervals of {interval_s:g} s from the recording's start to its end "
            f"(at most {MAX_WINDOWS})",
            "give a longer INTERVAL, or a COUNT",
        )
    return length, n


# Replay windows at most (a week at 1 s is 604,800).
MAX_WINDOWS = 1_000_000


def log2_windows(
    values: np.ndarray,
    ends: np.ndarray,
    keys: np.ndarray | None,
    *,
    start_ns: int,
    length_ns: int,
    n: int,
) -> list[dict[int | None, np.ndarray]]:
    """Log2 histograms (BCC slots, SLOTS counts) of non-negative integer `values`, per
    window (the n windows of length_ns from start_ns that hold each value's end time;
    later ends are dropped) and per key (`keys[i]`, or None for one histogram)."""
    which = np.maximum(ends.astype(np.int64) - start_ns, 0) // length_ns
    slots = log2_slots(pa.array(values.astype(np.uint64))) if len(values) else np.zeros(0, np.int64)
    out: list[dict[int | None, np.ndarray]] = []
    for w in range(n):
        in_w = which == w
        if keys is None:
            out.append({None: np.bincount(slots[in_w], minlength=SLOTS)})
            continue
        out.append(
            {
                int(k): np.bincount(slots[in_w & (keys == k)], minlength=SLOTS)
                for k in np.unique(keys[in_w])
            }
        )
    return out


@dataclass
class HistWindow:
    """One printed interval of a histogram tool: its end (when the live tool printed it),
    its histograms as (section key or None, counts per slot), and the sum and number of
    the values (biolatency -e)."""

    end_ns: int
    sections: list[tuple[object, np.ndarray]]
    total: int = 0
    count: int = 0


# bpftrace's hist(): bucket 0 holds negative values, 1 holds 0, and 1 + k holds the
# values of bit length k: 1, [2, 4), [4, 8), ... (its pow2 buckets).
POW2_BUCKETS = 66


def pow2_buckets(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """bpftrace's hist() bucket of each integer value (nulls dropped), as int64."""
    v = pc.drop_null(values)
    if isinstance(v, pa.ChunkedArray):
        v = v.combine_chunks()
    if not len(v):
        return np.zeros(0, np.int64)
    signed = pa.types.is_signed_integer(v.type)
    arr = np.asarray(v.cast(pa.int64() if signed else pa.uint64()).to_numpy(zero_copy_only=False))
    out = np.zeros(len(arr), dtype=np.int64)
    pos = arr > 0
    out[pos] = 1 + log2_slots(pa.array(arr[pos].astype(np.uint64)))
    out[arr == 0] = 1
    return out  # negative values stay in bucket 0


def linear_buckets(values: pa.Array | pa.ChunkedArray, lo: int, hi: int, step: int) -> np.ndarray:
    """bpftrace's lhist(v, lo, hi, step) bucket of each value: 0 below lo, 1 + (v - lo) //
    step inside, the last (1 + ceil((hi - lo) / step)) at hi and above."""
    v = pc.drop_null(values)
    if isinstance(v, pa.ChunkedArray):
        v = v.combine_chunks()
    arr = np.asarray(v.cast(pa.float64()).to_numpy(zero_copy_only=False))
    n = -(-(hi - lo) // step)
    out = 1 + np.floor((arr - lo) / step).astype(np.int64)
    out[arr < lo] = 0
    out[arr >= hi] = n + 1
    return out


def keyed_hist(
    chunks: Iterable[pa.Table], field: str, by: Sequence[str], buckets, n_buckets: int
) -> dict[tuple, np.ndarray]:
    """Bucket counts of `field` per distinct value of the `by` columns (one key, `()`,
    without `by`): `buckets(array) -> int64 bucket per non-null value`."""
    out: dict[tuple, np.ndarray] = {}
    for t in chunks:
        t = t.filter(pc.is_valid(t[field]))
        if not t.num_rows:
            continue
        b = buckets(t[field])
        if not by:
            out.setdefault((), np.zeros(n_buckets, np.int64))
            out[()] += np.bincount(b, minlength=n_buckets)
            continue
        g = (
            pa.table({**{k: t[k] for k in by}, "_b": b})
            .group_by([*by, "_b"])
            .aggregate([([], "count_all")])
        )
        for row in g.to_pylist():
            key = tuple(row[k] for k in by)
            counts = out.setdefault(key, np.zeros(n_buckets, np.int64))
            counts[row["_b"]] += row["count_all"]
    return out


# Rows a histogram adds at a time (its temporaries: SLOTS counts per group of rows).
_ADD_ROWS = 1 << 16


def log2_windows_add(
    acc: dict[tuple[int, int | None], np.ndarray],
    values: np.ndarray,
    ends: np.ndarray,
    keys: np.ndarray | None,
    *,
    start_ns: int,
    length_ns: int,
    n: int,
) -> None:
    """Add one chunk's values to `acc`, (window, key) -> counts per slot: what
    log2_windows() counts, built chunk by chunk (log2_windows_result() gives its list).
    Memory is one histogram per window and key seen, whatever the number of rows."""
    for at in range(0, len(values), _ADD_ROWS):
        part = slice(at, at + _ADD_ROWS)
        which = np.maximum(ends[part].astype(np.int64) - start_ns, 0) // length_ns
        inside = which < n
        w = which[inside]
        if not len(w):
            continue
        slots = log2_slots(pa.array(values[part][inside].astype(np.uint64)))
        if keys is None:
            key_of, k = [None], np.zeros(len(w), np.int64)
        else:
            distinct, k = np.unique(keys[part][inside].astype(np.int64), return_inverse=True)
            key_of, k = distinct.tolist(), k.reshape(-1)
        # Rows grouped by (window, key), counted per group and slot in one bincount.
        low = int(w.min())
        cells = (int(w.max()) - low + 1) * len(key_of)
        if cells * SLOTS <= _DENSE_CELLS:  # the chunk's windows and keys, side by side
            group = (w - low) * len(key_of) + k
            counts = np.bincount(group * SLOTS + slots, minlength=cells * SLOTS)
            counts = counts.reshape(cells, SLOTS)
            seen = np.nonzero(np.bincount(group, minlength=cells))[0].tolist()
            cell = [(low + g // len(key_of), key_of[g % len(key_of)]) for g in seen]
        else:  # windows or keys far apart: sort them
            order = np.lexsort((k, w))
            ws, ks = w[order], k[order]
            first = np.ones(len(ws), dtype=bool)
            first[1:] = (ws[1:] != ws[:-1]) | (ks[1:] != ks[:-1])
            group = np.cumsum(first) - 1
            seen = list(range(int(group[-1]) + 1))
            counts = np.bincount(group * SLOTS + slots[order], minlength=len(seen) * SLOTS)
            counts = counts.reshape(len(seen), SLOTS)
            cell = [(win, key_of[key]) for win, key in zip(ws[first].tolist(), ks[first].tolist())]
        for g, at_key in zip(seen, cell):
            have = acc.get(at_key)
            if have is None:
                acc[at_key] = counts[g].copy()
            else:
                have += counts[g]


# Most (window, key) cells times SLOTS counted side by side for one chunk (8 MB).
_DENSE_CELLS = 1 << 20


def log2_windows_result(
    acc: dict[tuple[int, int | None], np.ndarray], n: int, keyed: bool
) -> list[dict[int | None, np.ndarray]]:
    """log2_windows()'s result from what log2_windows_add() gathered: per window, the
    histogram of each key seen in it in ascending key order (`keyed`), else {None:
    counts}, zeros for a window without values (one read-only array shared by them)."""
    zeros = np.zeros(SLOTS, dtype=np.int64)
    zeros.flags.writeable = False
    out: list[dict[int | None, np.ndarray]] = [{} if keyed else {None: zeros} for _ in range(n)]
    for (w, key), counts in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        out[w][key] = counts
    return out
