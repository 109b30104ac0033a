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

How each prints kernel text (the comm; addresses, states and numbers are ASCII):
* tcplife COMM: `.decode('utf-8', 'replace')`, widths in characters (tcplife.py:445,467);
* tcpstates C-COMM: `.decode('utf-8', 'replace')`, likewise (tcpstates.py:373);
* tcpconnect COMM: printb of the raw bytes, `%-12.12s` cut at 12 bytes (tcpconnect.py:416-442);
* tcpaccept COMM: printb of the raw bytes, likewise (tcpaccept.py:254,270).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from bpfcap.analyze.common import OutputColumn, decode_replace, wall_clock

AF_INET = 2
ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1 = "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1"
CLOSE, LAST_ACK, CLOSE_WAIT = "CLOSE", "LAST_ACK", "CLOSE_WAIT"
_EARLY = {ESTABLISHED, SYN_SENT, SYN_RECV}  # newstate < TCP_FIN_WAIT1

COLUMNS_NEEDED = [
    "ts_ns", "tgid", "tid", "uid", "comm", "sock", "oldstate", "newstate", "family",
    "sport", "dport", "saddr", "daddr", "rx_bytes", "tx_bytes",
]  # fmt: skip


def ip_text(family: int, raw: bytes) -> str:
    """inet_ntop of an address as recorded (IPv4 in the first 4 bytes)."""
    if family == AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw[:16])


def _changes(tcp: pa.Table) -> Iterator[dict[str, Any]]:
    """The state changes as dicts, in time order (ties in recorded order)."""
    t = tcp.select(COLUMNS_NEEDED).sort_by([("ts_ns", "ascending")])
    yield from t.to_pylist()


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


def _times(rows: list[dict], ts_key: str, clock: dict[str, Any]) -> tuple[list[str], list[float]]:
    """HH:MM:SS and seconds since the first row (whole microseconds, as BCC's ts_us)."""
    if not rows:
        return [], []
    ts = [r[ts_key] for r in rows]
    hms = wall_clock(pa.array(ts, pa.uint64()), clock).to_pylist()
    first = ts[0] // 1000
    return hms, [(t // 1000 - first) / 1e6 for t in ts]


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


def tcplife(tcp: pa.Table, o: LifeOptions, *, clock: dict[str, Any]) -> pa.Table:
    """One row per TCP session that closed, as tcplife prints it (by close time)."""
    f = o.filters
    birth: dict[int, int] = {}
    whoami: dict[int, tuple[int, bytes]] = {}
    rows = []
    for c in _changes(tcp):
        sk, new = c["sock"], c["newstate"]
        if (f.lports and c["sport"] not in f.lports) or (f.rports and c["dport"] not in f.rports):
            birth.pop(sk, None)
            continue
        if new in _EARLY:
            birth[sk] = c["ts_ns"]
        if new in (SYN_SENT, LAST_ACK):
            if f.pid is None or c["tgid"] == f.pid:
                whoami[sk] = (c["tgid"], c["comm"])
        if new != CLOSE:
            continue
        start = birth.pop(sk, None)
        who = whoami.pop(sk, None)
        if start is None:
            continue
        pid, comm = who if who is not None else (c["tgid"], c["comm"])
        if (f.pid is not None and pid != f.pid) or not f.family_ok(c["family"]):
            continue
        rx, tx = c["rx_bytes"], c["tx_bytes"]
        rows.append(
            {
                "ts_ns": c["ts_ns"],
                "pid": pid,
                "comm": comm,
                "ip": "4" if c["family"] == AF_INET else "6",
                "laddr": ip_text(c["family"], c["saddr"]),
                "lport": c["sport"],
                "raddr": ip_text(c["family"], c["daddr"]),
                "rport": c["dport"],
                "tx_kb": None if tx is None else tx // 1024,
                "rx_kb": None if rx is None else rx // 1024,
                "ms": ((c["ts_ns"] - start) // 1000) / 1000,
            }
        )
    return _table(rows, tcplife_columns(o), clock)


def _table(rows: list[dict], columns: tuple[OutputColumn, ...], clock: dict[str, Any]) -> pa.Table:
    hms, secs = _times(rows, "ts_ns", clock)
    data: dict[str, list] = {c.name: [] for c in columns}
    for i, r in enumerate(rows):
        r = dict(r, time=hms[i], time_s=secs[i])
        for c in columns:
            v = r[c.name]
            # BCC formats some numbers with %s (the csv and wide layouts): as text here.
            data[c.name].append(
                str(v) if isinstance(v, int) and c.fmt.rstrip(", ").endswith("s") else v
            )
    types = {"comm": pa.binary(), "pid": pa.int64(), "uid": pa.int64(), "skaddr": pa.uint64()}
    return pa.table({n: pa.array(v, types.get(n)) for n, v in data.items()})


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


def tcpstates(tcp: pa.Table, o: LifeOptions, *, clock: dict[str, Any]) -> pa.Table:
    """Every state change, as tcpstates prints it."""
    f = o.filters
    last: dict[int, int] = {}
    rows = []
    for c in _changes(tcp):
        sk = c["sock"]
        if (f.lports and c["sport"] not in f.lports) or (f.rports and c["dport"] not in f.rports):
            last.pop(sk, None)
            continue
        prev = last.get(sk)
        rows.append(
            {
                "ts_ns": c["ts_ns"],
                "skaddr": sk,
                "pid": c["tgid"],
                "comm": c["comm"],
                "ip": "4" if c["family"] == AF_INET else "6",
                "laddr": ip_text(c["family"], c["saddr"]),
                "lport": c["sport"],
                "raddr": ip_text(c["family"], c["daddr"]),
                "rport": c["dport"],
                "oldstate": c["oldstate"],
                "newstate": c["newstate"],
                "ms": 0.0 if prev is None else ((c["ts_ns"] - prev) // 1000) / 1000,
            }
        )
        if c["newstate"] == CLOSE:
            last.pop(sk, None)
        else:
            last[sk] = c["ts_ns"]
    return _table(rows, tcpstates_columns(o), clock)


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


def _opens(tcp: pa.Table, active: bool) -> list[tuple[dict, list[dict]]]:
    """(the opening change, the socket's later changes up to its CLOSE) per active
    (CLOSE -> SYN_SENT) or passive (SYN_RECV -> ESTABLISHED) open."""
    open_: dict[int, tuple[dict, list[dict]]] = {}
    out = []
    for c in _changes(tcp):
        sk = c["sock"]
        if sk in open_:
            open_[sk][1].append(c)
            if c["newstate"] == CLOSE:
                del open_[sk]
            continue
        start = (c["oldstate"], c["newstate"]) == (
            (CLOSE, SYN_SENT) if active else (SYN_RECV, ESTABLISHED)
        )
        if start:
            item: tuple[dict, list[dict]] = (c, [])
            open_[sk] = item
            out.append(item)
    return out


def tcpconnect(tcp: pa.Table, o: ConnectOptions, *, clock: dict[str, Any]) -> pa.Table:
    """Active opens as tcpconnect prints them, or with `count` the connects per
    (source, destination, port), IPv4 first, then by count."""
    f = o.filters
    rows = []
    for c, later in _opens(tcp, active=True):
        if f.pid is not None and c["tgid"] != f.pid:
            continue
        if f.uid is not None and c["uid"] != f.uid:
            continue
        if (f.rports and c["dport"] not in f.rports) or not f.family_ok(c["family"]):
            continue
        lport = next((x["sport"] for x in later if x["sport"]), c["sport"])
        rows.append(
            {
                "ts_ns": c["ts_ns"],
                "uid": c["uid"],
                "pid": c["tgid"],
                "comm": c["comm"],
                "ip": 4 if c["family"] == AF_INET else 6,
                "saddr": ip_text(c["family"], c["saddr"]),
                "lport": lport,
                "daddr": ip_text(c["family"], c["daddr"]),
                "dport": c["dport"],
            }
        )
    if o.count:
        counts: dict[tuple, int] = {}
        for r in rows:
            key = (r["ip"], r["saddr"], r["daddr"], r["dport"])
            counts[key] = counts.get(key, 0) + 1
        ordered = sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1]))
        return pa.table(
            {
                "saddr": [k[1] for k, _ in ordered],
                "daddr": [k[2] for k, _ in ordered],
                "dport": [str(k[3]) for k, _ in ordered],
                "connects": pa.array([n for _, n in ordered], pa.int64()),
            }
        )
    t = _table(rows, tcpconnect_columns(o), clock)
    return t.set_column(t.column_names.index("ip"), "ip", t["ip"].cast(pa.int64()))


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


def tcpaccept(
    tcp: pa.Table | None,
    o: AcceptOptions,
    *,
    clock: dict[str, Any],
    accepts: pa.Table | None = None,
) -> pa.Table:
    """Accepted TCP connections as tcpaccept prints them.

    With `accepts` (rows of kind `accept`, recorded with tcp where the kernel's BTF lets
    the recorder find the socket behind accept's descriptor): one row per accept(2) or
    accept4(2) that returned a TCP socket, in the order they returned, with the accepting
    task and the addresses read from the socket, as BCC's tcpaccept at inet_csk_accept's
    return. Without (older traces): rebuilt from the passive opens in `tcp`, the task
    being the one that closed the socket (see the module doc)."""
    f = o.filters
    rows = []
    if accepts is not None:
        for a in accepts.sort_by([("ts_ns", "ascending")]).to_pylist():
            if f.pid is not None and a["tgid"] != f.pid:
                continue
            if (f.lports and a["sport"] not in f.lports) or not f.family_ok(a["family"]):
                continue
            rows.append(_accept_row(a, a))
    elif tcp is not None:
        for c, later in _opens(tcp, active=False):
            closer = next(
                (
                    x
                    for x in later
                    if (x["oldstate"], x["newstate"])
                    in ((ESTABLISHED, FIN_WAIT1), (CLOSE_WAIT, LAST_ACK))
                ),
                c,
            )
            if f.pid is not None and closer["tgid"] != f.pid:
                continue
            if (f.lports and c["sport"] not in f.lports) or not f.family_ok(c["family"]):
                continue
            rows.append(_accept_row(c, closer))
    t = _table(rows, tcpaccept_columns(o), clock)
    return t.set_column(t.column_names.index("ip"), "ip", t["ip"].cast(pa.int64()))


def _accept_row(conn: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """A tcpaccept row: the connection's time and addresses, the task's pid and comm."""
    return {
        "ts_ns": conn["ts_ns"],
        "pid": task["tgid"],
        "comm": task["comm"],
        "ip": 4 if conn["family"] == AF_INET else 6,
        "raddr": ip_text(conn["family"], conn["daddr"]),
        "rport": conn["dport"],
        "laddr": ip_text(conn["family"], conn["saddr"]),
        "lport": conn["sport"],
    }
