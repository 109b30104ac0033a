"""Helpers shared by the report analyses: completion time and row order, the `-d` window,
wall-clock conversion, the parent of a process, and the output column declaration.

All pure: tables and plain values from the trace metadata in, arrays out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NS_PER_S = 1_000_000_000
END = "end_ns"  # the completion-time column that sort_by_completion() adds


@dataclass(frozen=True)
class OutputColumn:
    """One column of a report: its name and meaning in the returned table, and how BCC
    prints it. The text line is each shown column's format concatenated left to right, so
    a format carries its own separator (BCC's `"%-6d %-16s "` becomes `"%-6d "` and
    `"%-16s "`).

    head_fmt: %-format of the header label, also used for `null` (e.g. `"%-7s "`).
    fmt: %-format of a value (e.g. `"%-7d "`); applied to bytes for binary columns, to
        str (then encoded as UTF-8) for string columns.
    null: what a null value prints as in text (BCC's `?`, `n/a`).
    text: for a binary column, what BCC makes of the bytes before formatting them: None
        (the default) prints them raw (`printb`, bytes `%s`), so widths count bytes;
        `decode_replace` is BCC's `.decode('utf-8', 'replace')`, a str, so widths and
        `%.Ns` count characters. Text output only: JSON and CSV keep the table's bytes.
    names: for machine formats (JSON, CSV), the numbers of this column shown as names of
        the trace's architecture: `open_flags` (a list of O_* names), `errno`, `signal`.
    """

    name: str
    doc: str
    header: str
    head_fmt: str
    fmt: str
    null: str = ""
    text: Callable[[bytes], str | bytes] | None = None
    names: str | None = None


def decode_replace(raw: bytes) -> str:
    """BCC's `raw.decode('utf-8', 'replace')`: each invalid UTF-8 sequence becomes U+FFFD
    (printed as the 3 bytes EF BF BD)."""
    return raw.decode("utf-8", "replace")


def select_columns(declared: Sequence[OutputColumn], arrays: dict[str, pa.Array]) -> pa.Table:
    """The report table: the columns present in `arrays`, in declaration order, each with
    its doc in the field metadata."""
    fields, data = [], []
    for c in declared:
        if c.name in arrays:
            a = arrays[c.name]
            fields.append(pa.field(c.name, a.type, metadata={"doc": c.doc}))
            data.append(a)
    return pa.Table.from_arrays(data, schema=pa.schema(fields))


def with_end(table: pa.Table, ends: pa.Array | pa.ChunkedArray) -> pa.Table:
    """`table` with `end_ns` last: the monotonic time each row is placed at (when the
    call completed). Text leaves it out; JSON and CSV show it as an absolute timestamp."""
    doc = "Monotonic ns the row is placed at (completion); `timestamp` in JSON and CSV"
    field = pa.field(END, pa.uint64(), metadata={"doc": doc})
    return table.append_column(field, ends.cast(pa.uint64()))


def completion_ns(table: pa.Table) -> pa.Array:
    """ts_ns + lat_ns (entry time plus latency): when the call returned, which is when BCC
    prints it. A missing latency counts as 0. Each term is capped at MAX_NS (a hostile
    file's values must not wrap the sum)."""
    ts = table.column("ts_ns").combine_chunks()
    ts = pc.min_element_wise(ts, pa.scalar(MAX_NS, ts.type))
    if "lat_ns" not in table.column_names:
        return ts
    lat = pc.fill_null(table.column("lat_ns").combine_chunks(), 0)
    lat = pc.min_element_wise(pc.max_element_wise(lat, 0), pa.scalar(MAX_NS, lat.type))
    return pc.add(ts, lat)


# No real time in a trace comes near it: 2^62 ns is 146 years (two of them add up to
# less than 2^63).
MAX_NS = (1 << 62) - 1


def sort_by_completion(table: pa.Table) -> pa.Table:
    """Rows ordered by completion time, ties broken by tid (then by the order read, so
    equal rows keep a stable order), with the completion time added as column `end_ns`."""
    if END not in table.column_names:  # already added by in_completion_order()
        table = table.append_column(END, completion_ns(table))
    return table.sort_by([(END, "ascending"), ("tid", "ascending")])


# The most in_completion_order() holds back (a storm's rows within the slack take ~20 MB).
HOLD_BYTES = 64 << 20


def in_completion_order(chunks: Iterable[pa.Table], slack_ns: int) -> Iterator[pa.Table]:
    """Re-order a stream of row chunks by completion time (adding `end_ns`, as
    sort_by_completion), holding only `slack_ns` of rows back.

    A trace's rows are in the order they were drained: a row completing at T is drained
    at most a flush and a drain period later (well under a second), so any row completing
    before (latest completion seen - slack) can be released in order. Memory stays
    bounded by slack_ns of events, whatever the trace's size."""
    held: pa.Table | None = None
    for chunk in chunks:
        if not chunk.num_rows:
            continue
        chunk = chunk.append_column(END, completion_ns(chunk))
        held = chunk if held is None else pa.concat_tables([held, chunk])
        ends = held.column(END)
        if held.nbytes > HOLD_BYTES:
            # More rows within the slack than any recording has (hostile times, all
            # equal): released now, sorted, rather than held without bound.
            yield sort_by_completion(held)
            held = None
            continue
        cut = pa.scalar(max(0, pc.max(ends).as_py() - slack_ns), ends.type)
        early = pc.less(ends, cut)
        if pc.any(early).as_py():
            yield sort_by_completion(held.filter(early))  # each row is sorted once
            held = held.filter(pc.invert(early))
    if held is not None and held.num_rows:
        yield sort_by_completion(held)


def window_mask(end_ns: pa.Array, start_ns: int, duration_s: float) -> pa.Array:
    """`-d N`: True for events completing within the first N seconds after `start_ns`
    (the recording's start), as a BCC tool run for N seconds would have printed them."""
    limit = start_ns + int(duration_s * NS_PER_S)
    return pc.less(end_ns, pa.scalar(limit, pa.uint64()))


def seconds_since(end_ns: pa.Array, ref_ns: int) -> pa.Array:
    """(end_ns - ref_ns) / 1e9 as float64 (BCC's float seconds), negative if earlier."""
    delta = pc.subtract(end_ns.cast(pa.int64()), pa.scalar(ref_ns, pa.int64()))
    return pc.divide(delta.cast(pa.float64()), float(NS_PER_S))


def wall_clock(end_ns: pa.Array, clock: dict[str, Any], fmt: str = "%H:%M:%S") -> pa.Array:
    """`HH:MM:SS` local wall-clock time of monotonic timestamps, as strftime printed it on
    the recording host: realtime = monotonic + realtime_minus_monotonic_ns, shifted by the
    host's UTC offset at the start of recording (a DST change during recording is not
    followed; the offset, not the zone name, is what the trace records exactly)."""
    offset = int(clock.get("realtime_minus_monotonic_ns", 0))
    utc_offset = int(clock.get("utc_offset_s", 0))
    ns = np.asarray(end_ns.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    local_s = (ns + offset) // NS_PER_S + utc_offset
    return pc.strftime(pa.array(local_s, pa.int64()).cast(pa.timestamp("s")), format=fmt)


def parents(
    tgid: pa.Array,
    ts_ns: pa.Array,
    forks: pa.Table,
    processes: Sequence[Sequence[Any]],
) -> tuple[pa.Array, pa.Array]:
    """Parent pid and parent comm of each process `tgid[i]` as of time `ts_ns[i]`.

    The parent is the tgid of the last `fork` row with child_pid == tgid at or before ts
    (its comm is that row's comm, the parent's comm at fork time); failing that, the ppid
    in the /proc snapshot taken at start (`processes`: [pid, ppid, comm] rows) with the
    snapshot comm of that ppid. Unknown (or 0, as BCC treats it) gives null for both;
    a known ppid missing from the snapshot gives a null comm only.

    Returns (ppid int64, pcomm binary).
    """
    n = len(tgid)
    ex_pid = np.asarray(tgid.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    ex_ts = np.asarray(ts_ns.cast(pa.uint64()).to_numpy(zero_copy_only=False), dtype=np.uint64)
    fk_tgid = _ints(forks, "tgid", np.int64)
    fk_comm = forks.column("comm").to_pylist() if forks.num_rows else []
    found = last_at_or_before(
        _ints(forks, "child_pid", np.int64), _ints(forks, "ts_ns", np.uint64), ex_pid, ex_ts
    )

    snapshot = {int(p): (int(pp), as_bytes(c)) for p, pp, c in processes}
    ppids: list[int | None] = []
    pcomms: list[bytes | None] = []
    for i in range(n):
        f = int(found[i])
        if f >= 0:
            pp, comm = int(fk_tgid[f]), fk_comm[f]
        else:
            pp = snapshot.get(int(ex_pid[i]), (0, None))[0]
            comm = snapshot.get(pp, (0, None))[1]
        known = pp > 0
        ppids.append(pp if known else None)
        pcomms.append(comm if known else None)
    return pa.array(ppids, pa.int64()), pa.array(pcomms, pa.binary())


def last_at_or_before(
    keys: np.ndarray, ts: np.ndarray, at_keys: np.ndarray, at_ts: np.ndarray
) -> np.ndarray:
    """For each lookup (at_keys[i], at_ts[i]): the index of the row with the same key and
    the latest ts at or before at_ts[i] among (keys, ts), or -1 (an as-of join).

    Rows and lookups are merged in (key, ts) order, rows before lookups at equal ts; the
    last row seen at each position is then the candidate, valid if its key matches."""
    nr, n = len(keys), len(at_keys)
    key = np.concatenate([keys, at_keys])
    when = np.concatenate([ts, at_ts])
    is_lookup = np.concatenate([np.zeros(nr, np.int8), np.ones(n, np.int8)])
    order = np.lexsort((is_lookup, when, key))
    pos = np.arange(len(order))
    last_row = np.maximum.accumulate(np.where(is_lookup[order] == 0, pos, -1))
    found = np.full(n, -1, dtype=np.int64)
    at = np.nonzero(is_lookup[order] == 1)[0]
    cand = last_row[at]
    ok = (cand >= 0) & (key[order][np.maximum(cand, 0)] == key[order][at])
    found[order[at] - nr] = np.where(ok, order[np.maximum(cand, 0)], -1)
    return found


def _ints(table: pa.Table, name: str, dtype: type) -> np.ndarray:
    col = pc.fill_null(table.column(name).combine_chunks(), 0)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=dtype)


def match_bytes(values: pa.Array, predicate: Callable[[bytes], object]) -> pa.Array:
    """Boolean mask: predicate(value) for each binary value (False for null). The predicate
    runs once per distinct value (comms repeat a lot), not once per row."""
    distinct = pc.unique(values).to_pylist()
    good = [v for v in distinct if v is not None and predicate(v)]
    return pc.is_in(values, value_set=pa.array(good, values.type))


def as_int64(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """`col` as int64, so any number a user gives (even a negative one) compares with it."""
    return col.cast(pa.int64())


def as_bytes(s: str | bytes) -> bytes:
    """Text as the bytes it came from (Python decodes argv, and bpfcap the /proc comms of
    the snapshot, with surrogateescape), to compare with the raw kernel bytes of comm,
    path and args."""
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")


def filter_all(table: pa.Table, masks: list[Any]) -> pa.Table:
    """The rows of `table` where every mask is True (null counts as False)."""
    if not masks:
        return table
    keep = masks[0]
    for m in masks[1:]:
        keep = pc.and_(keep, m)
    return table.filter(pc.fill_null(keep, False))


def missed_runs(meta: dict[str, Any], kinds: Sequence[str]) -> int:
    """Runs of the programs recording `kinds` that the kernel skipped while recording
    (another BPF program was running on that CPU): their events are missing and no
    lost counter saw them. From the trace's `missed_runs` (program name -> count)."""
    from bpfcap.formats.events import BY_NAME

    hooks = {tp for k in kinds if k in BY_NAME for g in BY_NAME[k].hooks for tp in g}
    names = {"tracepoint__" + tp.replace(":", "__") for tp in hooks}
    return sum(n for prog, n in meta.get("missed_runs", {}).items() if prog in names)
