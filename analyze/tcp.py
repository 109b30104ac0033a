"""tcplife, tcpconnect, tcpaccept and tcpstates, rebuilt from the `tcp` rows (one per
socket state change, sock:inet_sock_set_state), as BCC's tools print them.

Each replays BCC's own logic over the changes in time order, per socket:
* tcplife: BCC's tracepoint program (birth at the last of ESTABLISHED/SYN_SENT/SYN_RECV,
  the task cached at SYN_SENT or LAST_ACK, else the task at CLOSE; bytes at CLOSE);
* tcpstates: every change, with the time spent in the old state;
* tcpconnect: active opens (CLOSE -> SYN_SENT, in the connect() caller's context); the
  local port, not chosen yet at that point, from the socket's next change. BCC leaves
  out connects whose tcp_v4_connect() failed after SYN_SENT; here they show;
* tcpaccept: the `accept` rows (accept(2)/accept4(2) returning a TCP socket: the
  accepting task, and the addresses read from the socket, as BCC). Traces without them
  (recorded before bpfcap had them, or on a kernel without BTF) fall back to passive
  opens (SYN_RECV -> ESTABLISHED), with the task that closed the accepted socket on the
  local side (ESTABLISHED -> FIN_WAIT1 or CLOSE_WAIT -> LAST_ACK, in its process context),
  else the task current when the connection was established.

Streaming (`*_stream`): the rows come as chunks in the order they were recorded, each
within `slack_ns` (analyze.report.REORDER_SLACK_NS, 2 s) of its place in time order;
they are put in time order (common.in_completion_order; equal times keep the recorded
order) and replayed change by change, keeping per socket only what BCC's programs keep
(an open session's birth and task, the time of its last change). Output comes as tables
of OUT_ROWS rows or so, each with the report's columns and, last, `end_ns`: the
monotonic time of the change the row is printed at (tcplife: the CLOSE; tcpstates: the
change; tcpconnect: the SYN_SENT; tcpaccept: the accept's return, or the passive open);
if nothing is printed, one empty table. Memory stays bounded whatever the trace's
length. The whole-table functions (tcplife() etc.) are the same streams, joined.

tcpconnect -L and the tcpaccept fallback print a row at its open with a value seen only
later (the local port; the closing task), in the order of the opens: rows wait in a
queue until the oldest is resolved. So that one socket never resolved (a connect stuck
in SYN_SENT, a connection open for hours) cannot hold every later row, the oldest
waiting row takes the value used when a socket's changes end without one (tcpconnect:
the port at the open, 0; tcpaccept: the task at the open) once it was opened more than
PENDING_MAX_AGE_NS (10 minutes of trace time) before the change being replayed, or once
more than PENDING_MAX_ROWS rows wait. Traces without such a socket print exactly what a
replay of the whole trace at once would.

How each prints kernel text (the comm; addresses, states and numbers are ASCII):
* tcplife COMM: `.decode('utf-8', 'replace')`, widths in characters (tcplife.py:445,467);
* tcpstates C-COMM: `.decode('utf-8', 'replace')`, likewise (tcpstates.py:373);
* tcpconnect COMM: printb of the raw bytes, `%-12.12s` cut at 12 bytes (tcpconnect.py:416-442);
* tcpaccept COMM: printb of the raw bytes, likewise (tcpaccept.py:254,270).
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.common import (
    NS_PER_S,
    OutputColumn,
    decode_replace,
    in_completion_order,
    wall_clock,
    with_end,
)
from bpfcap.analyze.report import REORDER_SLACK_NS, Report, Rows, Source, option
from bpfcap.formats.errors import UsageError

AF_INET = 2
ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1 = "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1"
CLOSE, LAST_ACK, CLOSE_WAIT = "CLOSE", "LAST_ACK", "CLOSE_WAIT"
_EARLY = {ESTABLISHED, SYN_SENT, SYN_RECV}  # newstate < TCP_FIN_WAIT1

COLUMNS_NEEDED = [
    "ts_ns", "tgid", "tid", "uid", "comm", "sock", "oldstate", "newstate", "family",
    "sport", "dport", "saddr", "daddr", "rx_bytes", "tx_bytes",
]  # fmt: skip
ACCEPT_COLUMNS_NEEDED = [
    "ts_ns", "tgid", "tid", "comm", "family", "sport", "dport", "saddr", "daddr",
]  # fmt: skip

# Output tables: about this many rows each.
OUT_ROWS = 65536
# tcpconnect -L and the tcpaccept fallback: how long, and how many, rows may wait for the
# oldest open's value (see the module doc). A waiting row holds ~0.4 KB.
PENDING_MAX_AGE_NS = 600 * NS_PER_S
PENDING_MAX_ROWS = 250_000
# Rows go into the reorder window this many at a time, and sorted rows are turned into
# Python values this many at a time.
_IN_ROWS = 131072
_SLICE_ROWS = 32768
# A waiting row's state (its last member).
_WAIT, _READY, _DROP = 0, 1, 2


def ip_text(family: int, raw: bytes) -> str:
    """inet_ntop of an address as recorded (IPv4 in the first 4 bytes)."""
    if family == AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw[:16])


def _in_time_order(
    chunks: Iterable[pa.Table], columns: Sequence[str], slack_ns: int
) -> Iterator[pa.Table]:
    """The rows of `chunks` (in recorded order) in time order, ties in recorded order,
    _SLICE_ROWS at a time, with `columns`.

    in_completion_order() breaks ties of time by tid: no tcp report uses the tid, so it
    is replaced by the row's position in the recording, which makes the order that of a
    stable sort of the whole trace by ts_ns (the rows have no lat_ns: completion is
    ts_ns)."""
    keep = [c for c in columns if c != "tid"]

    def numbered() -> Iterator[pa.Table]:
        # In slices: the reorder window then holds and sorts slack_ns of rows at a time,
        # not a whole row group (a million rows) at once.
        seq = 0
        for chunk in chunks:
            chunk = chunk.select(keep)
            for start in range(0, chunk.num_rows, _IN_ROWS):
                part = chunk.slice(start, _IN_ROWS)
                n = part.num_rows
                pos = pa.array(np.arange(seq, seq + n, dtype=np.uint64))
                seq += n
                yield part.append_column("tid", pos)

    for table in in_completion_order(numbered(), slack_ns):
        for start in range(0, table.num_rows, _SLICE_ROWS):
            yield table.slice(start, _SLICE_ROWS)


def _values(table: pa.Table, names: Sequence[str]) -> list[list[Any]]:
    """Columns `names` of `table` as Python lists (the fast ways: numpy for integers,
    each distinct text or address converted once)."""
    out = []
    for name in names:
        col = table.column(name).combine_chunks()
        t = col.type
        if pa.types.is_dictionary(t):
            out.append(_decoded(col.indices, col.dictionary))
        elif (
            pa.types.is_string(t)
            or pa.types.is_binary(t)
            or pa.types.is_large_string(t)
            or pa.types.is_large_binary(t)
            or pa.types.is_fixed_size_binary(t)
        ):
            enc = pc.dictionary_encode(col)
            out.append(_decoded(enc.indices, enc.dictionary))
        elif pa.types.is_integer(t) and not col.null_count:
            out.append(col.to_numpy().tolist())
        else:
            out.append(col.to_pylist())
    return out


def _decoded(indices: pa.Array, dictionary: pa.Array) -> list[Any]:
    values = dictionary.to_pylist()
    values.append(None)
    idx = pc.fill_null(indices, len(values) - 1).to_numpy().tolist()
    return list(map(values.__getitem__, idx))


@dataclass(frozen=True)
class Filters:
    """BCC's filters: -p PID, local ports, remote ports, -4/-6, -u UID."""

    pid: int | None = None
    lports: tuple[int, ...] = ()
    rports: tuple[int, ...] = ()
    family: int | None = None  # 4 or 6
    uid: int | None = None

    def family_ok(self, family: int) -> bool:
        if self.family is None:
            return True
        return (family == AF_INET) == (self.family == 4)


def _prefix_columns(time: bool, timestamp: bool, csv: bool) -> list[OutputColumn]:
    out = []
    if time:
        out.append(
            OutputColumn(
                "time", "Wall clock", "TIME", "%s," if csv else "%-8s ", "%s," if csv else "%-8s "
            )
        )
    if timestamp:
        out.append(
            OutputColumn(
                "time_s",
                "Seconds from the first row",
                "TIME(s)",
                "%s," if csv else "%-9s ",
                "%.6f," if csv else "%-9.6f ",
            )
        )
    return out


# -- output ------------------------------------------------------------------------------

# The type of each output column (integers printed with %s become text, as BCC's str).
_TYPES = {
    "time": pa.string(),
    "time_s": pa.float64(),
    "skaddr": pa.uint64(),
    "pid": pa.int64(),
    "uid": pa.int64(),
    "comm": pa.binary(),
    "laddr": pa.string(),
    "raddr": pa.string(),
    "saddr": pa.string(),
    "daddr": pa.string(),
    "lport": pa.int64(),
    "rport": pa.int64(),
    "dport": pa.int64(),
    "tx_kb": pa.int64(),
    "rx_kb": pa.int64(),
    "ms": pa.float64(),
    "oldstate": pa.string(),
    "newstate": pa.string(),
}
_ADDRESSES = {"laddr", "raddr", "saddr", "daddr"}


class _Output:
    """Report rows collected into tables of the report's columns plus `end_ns`.

    A row is a sequence whose first members are `fields`: "ts" (the change's ts_ns),
    "family", the address columns as recorded (bytes; printed with ip_text), and every
    other declared column as it is, but time, time_s and ip, derived here (ip: "4" or
    "6", or 4 or 6 with `ip_int`)."""

    def __init__(
        self,
        fields: Sequence[str],
        columns: tuple[OutputColumn, ...],
        clock: dict[str, Any],
        ip_int: bool,
    ) -> None:
        self.fields = fields
        self.columns = columns
        self.clock = clock
        self.ip_type = pa.int64() if ip_int else pa.string()
        self.rows: list[Sequence[Any]] = []
        self.first_us: int | None = None  # the first row's, for time_s
        self.tables = 0

    def ready(self) -> Iterator[pa.Table]:
        """Tables of OUT_ROWS rows, while there are that many."""
        while len(self.rows) >= OUT_ROWS:
            rows, self.rows = self.rows[:OUT_ROWS], self.rows[OUT_ROWS:]
            yield self._table(rows)

    def rest(self) -> Iterator[pa.Table]:
        """At the end: the rows left, or an empty table if none was ever made."""
        yield from self.ready()
        if self.rows or not self.tables:
            rows, self.rows = self.rows, []
            yield self._table(rows)

    def _table(self, rows: list[Sequence[Any]]) -> pa.Table:
        self.tables += 1
        n = len(rows)
        cols = list(zip(*rows)) if n else [()] * len(self.fields)
        by = dict(zip(self.fields, cols))
        ts = by["ts"]
        end = pa.array(ts, pa.uint64())
        if n and self.first_us is None:
            self.first_us = ts[0] // 1000
        names, arrays = [], []
        for c in self.columns:
            name = c.name
            if name == "time":
                a = wall_clock(end, self.clock) if n else pa.array([], pa.string())
            elif name == "time_s":
                first = self.first_us
                a = pa.array([(t // 1000 - first) / 1e6 for t in ts], pa.float64())
            elif name == "ip":
                if self.ip_type == pa.int64():
                    v: list[Any] = [4 if f == AF_INET else 6 for f in by["family"]]
                else:
                    v = ["4" if f == AF_INET else "6" for f in by["family"]]
                a = pa.array(v, self.ip_type)
            else:
                values = by[name]
                if name in _ADDRESSES:
                    values = _texts(by["family"], values)
                # Numbers stay numbers where BCC prints them with %s (the csv and wide
                # layouts): the text renderer formats them so; JSON and CSV keep them.
                a = pa.array(values, _TYPES[name])
            names.append(name)
            arrays.append(a)
        return with_end(pa.Table.from_arrays(arrays, names=names), end)


def _texts(families: Sequence[int], raws: Sequence[bytes]) -> list[str]:
    """ip_text of each address, each distinct one converted once."""
    v4: dict[bytes, str] = {}
    v6: dict[bytes, str] = {}
    out = []
    for family, raw in zip(families, raws):
        seen = v4 if family == AF_INET else v6
        text = seen.get(raw)
        if text is None:
            text = seen[raw] = ip_text(family, raw)
        out.append(text)
    return out


def _joined(tables: Iterable[pa.Table]) -> pa.Table:
    """A stream's tables as one (the whole-table functions' result)."""
    return pa.concat_tables(list(tables))


# -- tcplife ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LifeOptions:
    time: bool = False  # -T
    timestamp: bool = False  # -t
    wide: bool = False  # -w
    csv: bool = False  # -s
    filters: Filters = field(default_factory=Filters)


def _csv_columns(spec: list[tuple[str, str, str]]) -> tuple[OutputColumn, ...]:
    """BCC's -s layout: `%s,` headers and `<fmt>,` values, the last without the comma;
    the comm decoded, as tcplife and tcpstates print it in every layout."""
    last = len(spec) - 1
    return tuple(
        OutputColumn(
            n,
            n,
            h,
            "%s" if i == last else "%s,",
            f if i == last else f + ",",
            text=decode_replace if n == "comm" else None,
        )
        for i, (n, h, f) in enumerate(spec)
    )


def tcplife_columns(o: LifeOptions) -> tuple[OutputColumn, ...]:
    cols = _prefix_columns(o.time, o.timestamp, o.csv)
    if o.csv:
        return tuple(cols) + _csv_columns(
            [("pid", "PID", "%d"), ("comm", "COMM", "%s"), ("ip", "IP", "%s"),
             ("laddr", "LADDR", "%s"), ("lport", "LPORT", "%s"), ("raddr", "RADDR", "%s"),
             ("rport", "RPORT", "%d"), ("tx_kb", "TX_KB", "%d"), ("rx_kb", "RX_KB", "%d"),
             ("ms", "MS", "%.2f")]
        )  # fmt: skip
    # -w: wider comm and addresses (IPv6), an IP column, LPORT formatted with %s.
    comm, addr, kb = ("%-16.16s ", 39, 6) if o.wide else ("%-10.10s ", 15, 5)
    cols += [
        OutputColumn("pid", "Process id", "PID", "%-5s ", "%-5d "),
        OutputColumn("comm", "Command", "COMM", comm, comm, text=decode_replace),
    ]
    if o.wide:
        cols.append(OutputColumn("ip", "4 or 6", "IP", "%-2s ", "%-2s "))
    cols += [
        OutputColumn("laddr", "Local address", "LADDR", f"%-{addr}s ", f"%-{addr}s "),
        OutputColumn("lport", "Local port", "LPORT", "%-5s ", "%-5s " if o.wide else "%-5d "),
        OutputColumn("raddr", "Remote address", "RADDR", f"%-{addr}s ", f"%-{addr}s "),
        OutputColumn("rport", "Remote port", "RPORT", "%-5s ", "%-5d "),
        OutputColumn("tx_kb", "KiB sent and acked", "TX_KB", f"%{kb}s ", f"%{kb}d ", null="?"),
        OutputColumn("rx_kb", "KiB received", "RX_KB", f"%{kb}s ", f"%{kb}d ", null="?"),
        OutputColumn("ms", "Lifetime, ms", "MS", "%s", "%.2f"),
    ]
    return tuple(cols)


_LIFE_FIELDS = (
    "ts", "pid", "comm", "family", "laddr", "lport", "raddr", "rport", "tx_kb", "rx_kb", "ms",
)  # fmt: skip


def tcplife_stream(
    chunks: Iterable[pa.Table],
    o: LifeOptions,
    *,
    clock: dict[str, Any],
    slack_ns: int = REORDER_SLACK_NS,
) -> Iterator[pa.Table]:
    """tcplife over `tcp` rows in recorded order (see the module doc): tables of one row
    per TCP session that closed, by close time, each with `end_ns` (the CLOSE) last."""
    f = o.filters
    lports, rports, pid_filter = f.lports, f.rports, f.pid
    out = _Output(_LIFE_FIELDS, tcplife_columns(o), clock, ip_int=True)
    birth: dict[int, int] = {}
    whoami: dict[int, tuple[int, bytes]] = {}
    names = ["ts_ns", "sock", "newstate", "sport", "dport", "tgid", "comm", "family"]
    for part in _in_time_order(chunks, COLUMNS_NEEDED, slack_ns):
        cols = _values(part, names)
        extra: list[list[Any]] | None = None  # addresses and bytes: at CLOSE only
        for i, (ts, sk, new, sport, dport, tgid, comm, family) in enumerate(zip(*cols)):
            if (lports and sport not in lports) or (rports and dport not in rports):
                birth.pop(sk, None)
                continue
            if new in _EARLY:
                birth[sk] = ts
            if new == SYN_SENT or new == LAST_ACK:
                if pid_filter is None or tgid == pid_filter:
                    whoami[sk] = (tgid, comm)
            if new != CLOSE:
                continue
            start = birth.pop(sk, None)
            who = whoami.pop(sk, None)
            if start is None:
                continue
            pid, task = who if who is not None else (tgid, comm)
            if (pid_filter is not None and pid != pid_filter) or not f.family_ok(family):
                continue
            if extra is None:
                extra = _values(part, ["saddr", "daddr", "rx_bytes", "tx_bytes"])
            saddr, daddr, rx, tx = (c[i] for c in extra)
            out.rows.append(
                (
                    ts,
                    pid,
                    task,
                    family,
                    saddr,
                    sport,
                    daddr,
                    dport,
                    None if tx is None else tx // 1024,
                    None if rx is None else rx // 1024,
                    ((ts - start) // 1000) / 1000,
                )
            )
        yield from out.ready()
    yield from out.rest()


def tcplife(tcp: pa.Table, o: LifeOptions, *, clock: dict[str, Any]) -> pa.Table:
    """One row per TCP session that closed, as tcplife prints it (by close time): the
    tables of tcplife_stream() over the whole of `tcp`, joined (`end_ns` last)."""
    return _joined(tcplife_stream([tcp], o, clock=clock))


# -- tcpstates -------------------------------------------------------------------------


def tcpstates_columns(o: LifeOptions) -> tuple[OutputColumn, ...]:
    cols = _prefix_columns(o.time, o.timestamp, o.csv)
    if o.csv:
        return tuple(cols) + _csv_columns(
            [("skaddr", "SKADDR", "%x"), ("pid", "C-PID", "%d"), ("comm", "C-COMM", "%s"),
             ("ip", "IP", "%s"), ("laddr", "LADDR", "%s"), ("lport", "LPORT", "%s"),
             ("raddr", "RADDR", "%s"), ("rport", "RPORT", "%d"),
             ("oldstate", "OLDSTATE", "%s"), ("newstate", "NEWSTATE", "%s"),
             ("ms", "MS", "%.3f")]
        )  # fmt: skip
    wide = o.wide
    cols += [
        OutputColumn("skaddr", "Socket id (scrambled address)", "SKADDR", "%-16s ", "%-16x "),
        OutputColumn("pid", "Task current at the change", "C-PID", "%-5s ", "%-5d "),
        OutputColumn(
            "comm",
            "Its comm",
            "C-COMM",
            "%-16.16s " if wide else "%-10.10s ",
            "%-16.16s " if wide else "%-10.10s ",
            text=decode_replace,
        ),
    ]
    if wide:
        cols.append(OutputColumn("ip", "4 or 6", "IP", "%-2s ", "%-2s "))
    w = 39 if wide else 15  # BCC HEAD's -w (tcpstates.py:299-302), as tcplife's
    cols += [
        OutputColumn("laddr", "Local address", "LADDR", f"%-{w}s ", f"%-{w}s "),
        OutputColumn("lport", "Local port", "LPORT", "%-5s ", "%-5s " if wide else "%-5d "),
        OutputColumn("raddr", "Remote address", "RADDR", f"%-{w}s ", f"%-{w}s "),
        OutputColumn("rport", "Remote port", "RPORT", "%-5s ", "%-5d "),
        OutputColumn("oldstate", "State before", "OLDSTATE", "%-11s -> ", "%-11s -> "),
        OutputColumn("newstate", "State after", "NEWSTATE", "%-11s ", "%-11s "),
        OutputColumn("ms", "Time in the old state, ms", "MS", "%s", "%.3f"),
    ]
    return tuple(cols)


_STATES_FIELDS = (
    "ts", "skaddr", "pid", "comm", "family", "laddr", "lport", "raddr", "rport",
    "oldstate", "newstate", "ms",
)  # fmt: skip


def tcpstates_stream(
    chunks: Iterable[pa.Table],
    o: LifeOptions,
    *,
    clock: dict[str, Any],
    slack_ns: int = REORDER_SLACK_NS,
) -> Iterator[pa.Table]:
    """tcpstates over `tcp` rows in recorded order (see the module doc): tables of every
    state change, each with `end_ns` (the change) last."""
    f = o.filters
    lports, rports = f.lports, f.rports
    out = _Output(_STATES_FIELDS, tcpstates_columns(o), clock, ip_int=True)
    rows = out.rows
    last: dict[int, int] = {}
    names = ["ts_ns", "sock", "tgid", "comm", "family", "saddr", "sport", "daddr", "dport",
             "oldstate", "newstate"]  # fmt: skip
    for part in _in_time_order(chunks, COLUMNS_NEEDED, slack_ns):
        for c in zip(*_values(part, names)):
            ts, sk, sport, dport, new = c[0], c[1], c[6], c[8], c[10]
            if (lports and sport not in lports) or (rports and dport not in rports):
                last.pop(sk, None)
                continue
            prev = last.get(sk)
            rows.append((*c, 0.0 if prev is None else ((ts - prev) // 1000) / 1000))
            if new == CLOSE:
                last.pop(sk, None)
            else:
                last[sk] = ts
        yield from out.ready()
        rows = out.rows
    yield from out.rest()


def tcpstates(tcp: pa.Table, o: LifeOptions, *, clock: dict[str, Any]) -> pa.Table:
    """Every state change, as tcpstates prints it: the tables of tcpstates_stream() over
    the whole of `tcp`, joined (`end_ns` last)."""
    return _joined(tcpstates_stream([tcp], o, clock=clock))


# -- tcpconnect ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectOptions:
    timestamp: bool = False  # -t
    print_uid: bool = False  # -U
    lport: bool = False  # -L
    count: bool = False  # -c
    filters: Filters = field(default_factory=Filters)


def tcpconnect_columns(o: ConnectOptions) -> tuple[OutputColumn, ...]:
    cols = []
    if o.timestamp:
        cols.append(
            OutputColumn("time_s", "Seconds from the first connect", "TIME(s)", "%-9s", "%-9.3f")
        )
    if o.print_uid:
        cols.append(OutputColumn("uid", "User id", "UID", "%-6s", "%-6d"))
    cols += [
        OutputColumn("pid", "Process id", "PID", "%-7s ", "%-7d "),
        OutputColumn("comm", "Command", "COMM", "%-12s ", "%-12.12s "),
        OutputColumn("ip", "4 or 6", "IP", "%-2s ", "%-2d "),
        OutputColumn("saddr", "Source address", "SADDR", "%-16s ", "%-16s "),
    ]
    if o.lport:
        cols.append(OutputColumn("lport", "Local port", "LPORT", "%-6s ", "%-6d "))
    cols += [
        OutputColumn("daddr", "Destination address", "DADDR", "%-16s ", "%-16s "),
        OutputColumn("dport", "Destination port", "DPORT", "%-6s", "%-6d "),
    ]
    return tuple(cols)


COUNT_COLUMNS = (
    OutputColumn("saddr", "Source address", "LADDR", "%-25s ", "%-25s "),
    OutputColumn("daddr", "Destination address", "RADDR", "%-25s ", "%-25s "),
    OutputColumn("dport", "Destination port", "RPORT", "%-20s ", "%-20s"),
    OutputColumn("connects", "Connects", "CONNECTS", "%-10s", " %-10d"),
)

# A connect row: these, then the socket and its state (_WAIT, _READY).
_CONNECT_FIELDS = ("ts", "uid", "pid", "comm", "family", "saddr", "lport", "daddr", "dport")


def tcpconnect_stream(
    chunks: Iterable[pa.Table],
    o: ConnectOptions,
    *,
    clock: dict[str, Any],
    slack_ns: int = REORDER_SLACK_NS,
) -> Iterator[pa.Table]:
    """tcpconnect over `tcp` rows in recorded order (see the module doc): tables of the
    active opens (CLOSE -> SYN_SENT), in the order of the opens, each with `end_ns` (the
    SYN_SENT) last; with `count`, one table at the end: the connects per (source,
    destination, port), IPv4 first, then by count (equal counts: in the order first
    seen), without `end_ns`.

    With `lport` (-L) a row waits for the socket's next change with a local port (or its
    CLOSE), within PENDING_MAX_AGE_NS and PENDING_MAX_ROWS (see the module doc)."""
    f = o.filters
    out = _Output(_CONNECT_FIELDS, tcpconnect_columns(o), clock, ip_int=True)
    counts: dict[tuple[int, int, bytes, bytes, int], int] = {}
    wait = o.lport and not o.count
    # The sockets opened and not closed yet: their waiting row, or None.
    opened: dict[int, list[Any] | None] = {}
    pending: deque[list[Any]] = deque()  # rows waiting, in the order of the opens
    sk_at, state = len(_CONNECT_FIELDS), len(_CONNECT_FIELDS) + 1
    names = ["ts_ns", "sock", "oldstate", "newstate", "sport", "tgid", "uid", "comm",
             "family", "dport"]  # fmt: skip
    for part in _in_time_order(chunks, COLUMNS_NEEDED, slack_ns):
        cols = _values(part, names)
        addresses: list[list[Any]] | None = None
        for i, (ts, sk, old, new, sport, tgid, uid, comm, family, dport) in enumerate(zip(*cols)):
            if sk in opened:
                row = opened[sk]
                if row is not None and sport:  # the port, chosen
                    row[6] = sport
                    row[state] = _READY
                    opened[sk] = None
                if new == CLOSE:
                    del opened[sk]
                    if row is not None:
                        row[state] = _READY  # none chosen: the port at the open
            elif old == CLOSE and new == SYN_SENT:
                opened[sk] = None
                if (
                    (f.pid is None or tgid == f.pid)
                    and (f.uid is None or uid == f.uid)
                    and (not f.rports or dport in f.rports)
                    and f.family_ok(family)
                ):
                    if addresses is None:
                        addresses = _values(part, ["saddr", "daddr"])
                    saddr, daddr = addresses[0][i], addresses[1][i]
                    if o.count:
                        key = (4 if family == AF_INET else 6, family, saddr, daddr, dport)
                        counts[key] = counts.get(key, 0) + 1
                    elif wait:
                        row = [ts, uid, tgid, comm, family, saddr, sport, daddr, dport, sk, _WAIT]
                        opened[sk] = row
                        pending.append(row)
                    else:
                        out.rows.append((ts, uid, tgid, comm, family, saddr, sport, daddr, dport))
            # Out: the rows resolved at the head of the queue. The bound (module doc): the
            # head still waiting takes the value at its open once opened more than
            # PENDING_MAX_AGE_NS before this change, or once more than PENDING_MAX_ROWS wait.
            while pending:
                head = pending[0]
                if head[state] == _WAIT:
                    if ts - head[0] <= PENDING_MAX_AGE_NS and len(pending) <= PENDING_MAX_ROWS:
                        break
                    head[state] = _READY
                    opened[head[sk_at]] = None
                out.rows.append(pending.popleft())
        yield from out.ready()
    out.rows.extend(pending)  # the sockets never closed: the port at the open
    if o.count:
        yield _count_table(counts)
        return
    yield from out.rest()


def _count_table(counts: dict[tuple[int, int, bytes, bytes, int], int]) -> pa.Table:
    """tcpconnect -c's table: connects per (ip, source, destination, port), the
    addresses as printed (one text may come from more than one recorded value)."""
    by_text: dict[tuple[int, str, str, int], int] = {}
    for (ip, family, saddr, daddr, dport), n in counts.items():
        key = (ip, ip_text(family, saddr), ip_text(family, daddr), dport)
        by_text[key] = by_text.get(key, 0) + n
    ordered = sorted(by_text.items(), key=lambda kv: (kv[0][0], -kv[1]))
    return pa.table(
        {
            "saddr": pa.array([k[1] for k, _ in ordered], pa.string()),
            "daddr": pa.array([k[2] for k, _ in ordered], pa.string()),
            "dport": pa.array([k[3] for k, _ in ordered], pa.int64()),
            "connects": pa.array([n for _, n in ordered], pa.int64()),
        }
    )


def tcpconnect(tcp: pa.Table, o: ConnectOptions, *, clock: dict[str, Any]) -> pa.Table:
    """Active opens as tcpconnect prints them, or with `count` the connects per
    (source, destination, port), IPv4 first, then by count: the tables of
    tcpconnect_stream() over the whole of `tcp`, joined (`end_ns` last, but in the
    count table)."""
    return _joined(tcpconnect_stream([tcp], o, clock=clock))


# -- tcpaccept -------------------------------------------------------------------------


@dataclass(frozen=True)
class AcceptOptions:
    time: bool = False  # -T
    timestamp: bool = False  # -t
    filters: Filters = field(default_factory=Filters)


def tcpaccept_columns(o: AcceptOptions) -> tuple[OutputColumn, ...]:
    cols = []
    if o.time:
        cols.append(OutputColumn("time", "Wall clock", "TIME", "%-9s", "%-9s"))
    if o.timestamp:
        cols.append(
            OutputColumn("time_s", "Seconds from the first accept", "TIME(s)", "%-9s", "%-9.3f")
        )
    cols += [
        OutputColumn("pid", "Process id (see the module doc)", "PID", "%-7s ", "%-7d "),
        OutputColumn("comm", "Command", "COMM", "%-12s ", "%-12.12s "),
        OutputColumn("ip", "4 or 6", "IP", "%-2s ", "%-2d "),
        OutputColumn("raddr", "Remote address", "RADDR", "%-16s ", "%-16s "),
        OutputColumn("rport", "Remote port", "RPORT", "%-5s ", "%-5d "),
        OutputColumn("laddr", "Local address", "LADDR", "%-16s ", "%-16s "),
        OutputColumn("lport", "Local port", "LPORT", "%-5s", "%-5d"),
    ]
    return tuple(cols)


# An accept row: these (the connection's time and addresses, the task's pid and comm),
# then, in the fallback, the socket and its state (_WAIT, _READY, _DROP).
_ACCEPT_FIELDS = ("ts", "pid", "comm", "family", "raddr", "rport", "laddr", "lport")


def tcpaccept_stream(
    tcp_chunks: Iterable[pa.Table] | None,
    o: AcceptOptions,
    *,
    clock: dict[str, Any],
    accept_chunks: Iterable[pa.Table] | None = None,
    slack_ns: int = REORDER_SLACK_NS,
) -> Iterator[pa.Table]:
    """tcpaccept over rows in recorded order (see the module doc): tables of the accepted
    connections, each with `end_ns` (the accept's return, or the passive open) last.

    With `accept_chunks` (rows of kind `accept`, columns ACCEPT_COLUMNS_NEEDED): one row
    per accept(2) or accept4(2) that returned a TCP socket, in the order they returned,
    with the accepting task. Without: from the passive opens in `tcp_chunks`, the task
    being the one that closed the socket, a row waiting for it within
    PENDING_MAX_AGE_NS and PENDING_MAX_ROWS (see the module doc)."""
    f = o.filters
    out = _Output(_ACCEPT_FIELDS, tcpaccept_columns(o), clock, ip_int=True)
    if accept_chunks is not None:
        names = ["ts_ns", "tgid", "comm", "family", "daddr", "dport", "saddr", "sport"]
        for part in _in_time_order(accept_chunks, ACCEPT_COLUMNS_NEEDED, slack_ns):
            for row in zip(*_values(part, names)):
                if f.pid is not None and row[1] != f.pid:
                    continue
                if (f.lports and row[7] not in f.lports) or not f.family_ok(row[3]):
                    continue
                out.rows.append(row)
            yield from out.ready()
    elif tcp_chunks is not None:
        yield from _passive_opens(tcp_chunks, f, out, slack_ns)
    yield from out.rest()


def _passive_opens(
    chunks: Iterable[pa.Table], f: Filters, out: _Output, slack_ns: int
) -> Iterator[pa.Table]:
    """tcpaccept's fallback: the passive opens (SYN_RECV -> ESTABLISHED), with the task
    of the socket's first local close (ESTABLISHED -> FIN_WAIT1 or CLOSE_WAIT ->
    LAST_ACK), else the one at the open, into `out`; its full tables as they fill."""
    opened: dict[int, list[Any] | None] = {}
    pending: deque[list[Any]] = deque()
    sk_at, state = len(_ACCEPT_FIELDS), len(_ACCEPT_FIELDS) + 1

    def kept(pid: int) -> int:
        return _READY if f.pid is None or pid == f.pid else _DROP

    names = ["ts_ns", "sock", "oldstate", "newstate", "tgid", "comm", "family", "sport",
             "dport"]  # fmt: skip
    for part in _in_time_order(chunks, COLUMNS_NEEDED, slack_ns):
        cols = _values(part, names)
        addresses: list[list[Any]] | None = None
        for i, (ts, sk, old, new, tgid, comm, family, sport, dport) in enumerate(zip(*cols)):
            if sk in opened:
                row = opened[sk]
                if row is not None and (
                    (old == ESTABLISHED and new == FIN_WAIT1)
                    or (old == CLOSE_WAIT and new == LAST_ACK)
                ):
                    row[1], row[2] = tgid, comm  # the closing task
                    row[state] = kept(tgid)
                    opened[sk] = row = None
                if new == CLOSE:
                    del opened[sk]
                    if row is not None:
                        row[state] = kept(row[1])  # no local close: the task at the open
            elif old == SYN_RECV and new == ESTABLISHED:
                opened[sk] = None
                if (not f.lports or sport in f.lports) and f.family_ok(family):
                    if addresses is None:
                        addresses = _values(part, ["saddr", "daddr"])
                    saddr, daddr = addresses[0][i], addresses[1][i]
                    row = [ts, tgid, comm, family, daddr, dport, saddr, sport, sk, _WAIT]
                    opened[sk] = row
                    pending.append(row)
            # Out: the rows resolved at the head of the queue. The bound (module doc): the
            # head still waiting takes the value at its open once opened more than
            # PENDING_MAX_AGE_NS before this change, or once more than PENDING_MAX_ROWS wait.
            while pending:
                head = pending[0]
                if head[state] == _WAIT:
                    if ts - head[0] <= PENDING_MAX_AGE_NS and len(pending) <= PENDING_MAX_ROWS:
                        break
                    head[state] = kept(head[1])
                    opened[head[sk_at]] = None
                pending.popleft()
                if head[state] == _READY:
                    out.rows.append(head)
        yield from out.ready()
    for row in pending:  # the sockets never closed: the task at the open
        if row[state] == _READY or (row[state] == _WAIT and kept(row[1]) == _READY):
            out.rows.append(row)


def tcpaccept(
    tcp: pa.Table | None,
    o: AcceptOptions,
    *,
    clock: dict[str, Any],
    accepts: pa.Table | None = None,
) -> pa.Table:
    """Accepted TCP connections as tcpaccept prints them: the tables of
    tcpaccept_stream() over the whole of `tcp` or `accepts`, joined (`end_ns` last).

    With `accepts` (rows of kind `accept`, recorded with tcp where the kernel's BTF lets
    the recorder find the socket behind accept's descriptor): one row per accept(2) or
    accept4(2) that returned a TCP socket, in the order they returned, with the accepting
    task and the addresses read from the socket, as BCC's tcpaccept at inet_csk_accept's
    return. Without (older traces): rebuilt from the passive opens in `tcp`, the task
    being the one that closed the socket (see the module doc)."""
    return _joined(
        tcpaccept_stream(
            None if tcp is None else [tcp],
            o,
            clock=clock,
            accept_chunks=None if accepts is None else [accepts],
        )
    )


# -- the report declarations (analyze.registry) ------------------------------------------


@dataclass(frozen=True)
class LifeFlags:
    """tcplife's flags."""

    time: bool = option(False, "-T", "--time", help="Include a TIME (HH:MM:SS) column.")
    timestamp: bool = option(False, "-t", "--timestamp", help="Include a TIME(s) column.")
    wide: bool = option(False, "-w", "--wide", help="Wide columns (fit IPv6 addresses).")
    csv: bool = option(False, "-s", "--csv", help="Comma separated values, as BCC's -s.")
    pid: int | None = option(None, "-p", "--pid", help="Only this process.")
    localport: tuple[int, ...] = option(
        (), "-L", "--localport", metavar="PORTS", help="Only these local ports."
    )
    remoteport: tuple[int, ...] = option(
        (), "-D", "--remoteport", metavar="PORTS", help="Only these remote ports."
    )
    ipv4: bool = option(False, "-4", "--ipv4", help="IPv4 only.")
    ipv6: bool = option(False, "-6", "--ipv6", help="IPv6 only.")


@dataclass(frozen=True)
class StatesFlags:
    """tcpstates' flags."""

    time: bool = option(False, "-T", "--time", help="Include a TIME (HH:MM:SS) column.")
    timestamp: bool = option(False, "-t", "--timestamp", help="Include a TIME(s) column.")
    wide: bool = option(False, "-w", "--wide", help="Wide columns (fit IPv6 addresses).")
    csv: bool = option(False, "-s", "--csv", help="Comma separated values, as BCC's -s.")
    localport: tuple[int, ...] = option(
        (), "-L", "--localport", metavar="PORTS", help="Only these local ports."
    )
    remoteport: tuple[int, ...] = option(
        (), "-D", "--remoteport", metavar="PORTS", help="Only these remote ports."
    )
    journal: bool = option(
        False, "-Y", "--journal", help="Log to the systemd journal (not offline)."
    )


@dataclass(frozen=True)
class ConnectFlags:
    """tcpconnect's flags."""

    timestamp: bool = option(False, "-t", "--timestamp", help="Include a TIME(s) column.")
    print_uid: bool = option(False, "-U", "--print-uid", help="Include a UID column.")
    lport: bool = option(False, "-L", "--lport", help="Include the local port.")
    count: bool = option(False, "-c", "--count", help="Count connects per destination.")
    dns: bool = option(False, "-d", "--dns", help="DNS names (not recordable).")
    pid: int | None = option(None, "-p", "--pid", help="Only this process.")
    port: tuple[int, ...] = option(
        (), "-P", "--port", metavar="PORTS", help="Only these destination ports."
    )
    uid: int | None = option(None, "-u", "--uid", help="Only this user id.")
    ipv4: bool = option(False, "-4", "--ipv4", help="IPv4 only.")
    ipv6: bool = option(False, "-6", "--ipv6", help="IPv6 only.")


@dataclass(frozen=True)
class AcceptFlags:
    """tcpaccept's flags."""

    time: bool = option(False, "-T", "--time", help="Include a TIME (HH:MM:SS) column.")
    timestamp: bool = option(False, "-t", "--timestamp", help="Include a TIME(s) column.")
    pid: int | None = option(None, "-p", "--pid", help="Only this process.")
    port: tuple[int, ...] = option(
        (), "-P", "--port", metavar="PORTS", help="Only these local ports."
    )
    ipv4: bool = option(False, "-4", "--ipv4", help="IPv4 only.")
    ipv6: bool = option(False, "-6", "--ipv6", help="IPv6 only.")


def _family(ipv4: bool, ipv6: bool) -> int | None:
    if ipv4 and ipv6:
        raise UsageError("-4 and -6 exclude each other")
    return 4 if ipv4 else 6 if ipv6 else None


def _rows(name: str, source: Source, columns: Sequence[OutputColumn], **kw: Any) -> Rows:
    return Rows(name, columns=columns, meta=source.meta, abi=source.abi, **kw)


def _run_tcplife(source: Source, flags: LifeFlags) -> Rows:
    f = Filters(flags.pid, flags.localport, flags.remoteport, _family(flags.ipv4, flags.ipv6))
    o = LifeOptions(flags.time, flags.timestamp, flags.wide, flags.csv, f)
    tcp = source.batches("tcp", COLUMNS_NEEDED)
    chunks = tcplife_stream(tcp, o, clock=source.meta.clock.as_dict())
    return _rows("tcplife", source, tcplife_columns(o), kinds=["tcp"], chunks=chunks)


def _run_tcpstates(source: Source, flags: StatesFlags) -> Rows:
    if flags.journal:
        raise UsageError("-Y: a report does not log to the journal", "pipe the output instead")
    f = Filters(None, flags.localport, flags.remoteport)
    o = LifeOptions(flags.time, flags.timestamp, flags.wide, flags.csv, f)
    tcp = source.batches("tcp", COLUMNS_NEEDED)
    chunks = tcpstates_stream(tcp, o, clock=source.meta.clock.as_dict())
    return _rows("tcpstates", source, tcpstates_columns(o), kinds=["tcp"], chunks=chunks)


def _run_tcpconnect(source: Source, flags: ConnectFlags) -> Rows:
    if flags.dns:
        raise UsageError(
            "-d: DNS answers are not in the recording (no tracepoint sees them)", "drop -d"
        )
    f = Filters(flags.pid, (), flags.port, _family(flags.ipv4, flags.ipv6), flags.uid)
    o = ConnectOptions(flags.timestamp, flags.print_uid, flags.lport, flags.count, f)
    tcp = source.batches("tcp", COLUMNS_NEEDED)
    chunks = tcpconnect_stream(tcp, o, clock=source.meta.clock.as_dict())
    columns = COUNT_COLUMNS if o.count else tcpconnect_columns(o)
    # -c: BCC prints an empty line before the table.
    banner = [""] if o.count else []
    return _rows("tcpconnect", source, columns, kinds=["tcp"], chunks=chunks, banner=banner)


def _run_tcpaccept(source: Source, flags: AcceptFlags) -> Rows:
    from bpfcap.analyze.info import kernel_reads

    f = Filters(flags.pid, flags.port, (), _family(flags.ipv4, flags.ipv6))
    o = AcceptOptions(flags.time, flags.timestamp, f)
    # The accepting task comes from accept rows, where the recording has them.
    read = kernel_reads(source.meta.raw).get("accept.socket", {}).get("status") == "btf"
    accepts = read and "accept" in (source.meta.recorded or ())
    clock = source.meta.clock.as_dict()
    if accepts:
        stream = tcpaccept_stream(
            None,
            o,
            clock=clock,
            accept_chunks=source.batches("accept", ACCEPT_COLUMNS_NEEDED),
        )
    else:
        stream = tcpaccept_stream(source.batches("tcp", COLUMNS_NEEDED), o, clock=clock)
    result = _rows(
        "tcpaccept", source, tcpaccept_columns(o), kinds=["accept" if accepts else "tcp"]
    )

    def chunks() -> Iterator[pa.Table]:
        for t in stream:
            if t.num_rows and not accepts and not result.notes:
                result.notes.append(
                    f"{source.path} has no accept rows: PID/COMM are the task that closed "
                    "each socket, not the one that accepted it"
                )
            yield t

    result.chunks = chunks()
    return result


_TCP_NEEDS = {"tcp": tuple(COLUMNS_NEEDED)}

TCPLIFE = Report(
    name="tcplife",
    summary="Trace TCP sessions, as BCC's tcplife prints them.",
    description="""Trace TCP sessions: one line per session when it closes, with its
    duration and bytes, as tcplife prints it. TRACE was recorded with -e tcp.""",
    needs=_TCP_NEEDS,
    options=LifeFlags,
    run=_run_tcplife,
    examples=(
        ("tcplife t.parquet", "every TCP session that closed"),
        ("tcplife t.parquet -t -w", "with seconds, wide (IPv6) columns"),
        ("tcplife t.parquet -L 80,443 -s", "local ports 80 and 443, as CSV"),
    ),
)

TCPSTATES = Report(
    name="tcpstates",
    summary="Trace TCP state changes, as BCC's tcpstates prints them.",
    description="""Trace TCP state changes: one line per change with the time spent in the
    old state, as tcpstates prints it. TRACE was recorded with -e tcp.""",
    needs=_TCP_NEEDS,
    options=StatesFlags,
    run=_run_tcpstates,
    examples=(
        ("tcpstates t.parquet", "every TCP state change"),
        ("tcpstates t.parquet -t -L 80", "local port 80, with seconds"),
    ),
)

TCPCONNECT = Report(
    name="tcpconnect",
    summary="Trace active TCP connections, as BCC's tcpconnect prints them.",
    description="""Trace active TCP connections (connect()), one line each, as tcpconnect
    prints them. TRACE was recorded with -e tcp.""",
    needs=_TCP_NEEDS,
    options=ConnectFlags,
    run=_run_tcpconnect,
    examples=(
        ("tcpconnect t.parquet", "every active TCP open"),
        ("tcpconnect t.parquet -t -U -L", "with seconds, uid and local port"),
        ("tcpconnect t.parquet -c", "connects per destination"),
    ),
)

TCPACCEPT = Report(
    name="tcpaccept",
    summary="Trace passive TCP connections, as BCC's tcpaccept prints them.",
    description="""Trace passive TCP connections (accept()), one line each, as tcpaccept
    prints them (PID: see `bpfcap.analyze.tcp`). TRACE was recorded with -e tcp.""",
    needs={**_TCP_NEEDS, "accept": tuple(ACCEPT_COLUMNS_NEEDED)},
    options=AcceptFlags,
    run=_run_tcpaccept,
    examples=(
        ("tcpaccept t.parquet", "every passive TCP open"),
        ("tcpaccept t.parquet -t -P 80,81", "local ports 80 and 81, with seconds"),
    ),
)
