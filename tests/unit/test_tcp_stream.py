"""tcplife, tcpstates, tcpconnect and tcpaccept as streams (analyze/tcp.py, *_stream):
the rows a replay of the whole trace at once gives (the replay the reports did before
they streamed, kept here as the reference), whatever the chunks and with rows recorded
out of time order within the reorder slack; `end_ns` on every row; waiting rows bounded;
the state kept, and the memory, flat over millions of changes."""

from __future__ import annotations

import dataclasses
import random
import socket
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from bpfcap.analyze import tcp
from bpfcap.analyze.common import wall_clock
from bpfcap.tests.builders import CLOCK, MS, START_NS, US, S, accept_row, table, tcp_row

T0 = START_NS + S
STATES = ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
          "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"]  # fmt: skip
V6 = socket.inet_pton(socket.AF_INET6, "fd00::1")


def changes(rows: list[dict[str, Any]]) -> pa.Table:
    return table(rows).select(tcp.COLUMNS_NEEDED)


def accepts(rows: list[dict[str, Any]]) -> pa.Table:
    return table(rows).select(tcp.ACCEPT_COLUMNS_NEEDED)


# -- the reference: the whole-trace replay, as analyze/tcp.py did it before streaming ---


def _ref_rows(t: pa.Table) -> list[dict[str, Any]]:
    return t.sort_by([("ts_ns", "ascending")]).to_pylist()  # a stable sort


def _ref_life(t: pa.Table, f: tcp.Filters) -> list[dict[str, Any]]:
    birth: dict[int, int] = {}
    whoami: dict[int, tuple[int, bytes]] = {}
    rows = []
    for c in _ref_rows(t):
        sk, new = c["sock"], c["newstate"]
        if (f.lports and c["sport"] not in f.lports) or (f.rports and c["dport"] not in f.rports):
            birth.pop(sk, None)
            continue
        if new in ("ESTABLISHED", "SYN_SENT", "SYN_RECV"):
            birth[sk] = c["ts_ns"]
        if new in ("SYN_SENT", "LAST_ACK") and (f.pid is None or c["tgid"] == f.pid):
            whoami[sk] = (c["tgid"], c["comm"])
        if new != "CLOSE":
            continue
        start, who = birth.pop(sk, None), whoami.pop(sk, None)
        if start is None:
            continue
        pid, comm = who if who is not None else (c["tgid"], c["comm"])
        if (f.pid is not None and pid != f.pid) or not f.family_ok(c["family"]):
            continue
        rx, tx = c["rx_bytes"], c["tx_bytes"]
        rows.append(
            dict(
                _addresses(c, "laddr", "raddr"),
                ts_ns=c["ts_ns"],
                pid=pid,
                comm=comm,
                ip=4 if c["family"] == 2 else 6,
                lport=c["sport"],
                rport=c["dport"],
                tx_kb=None if tx is None else tx // 1024,
                rx_kb=None if rx is None else rx // 1024,
                ms=((c["ts_ns"] - start) // 1000) / 1000,
            )
        )
    return rows


def _ref_states(t: pa.Table, f: tcp.Filters) -> list[dict[str, Any]]:
    last: dict[int, int] = {}
    rows = []
    for c in _ref_rows(t):
        sk = c["sock"]
        if (f.lports and c["sport"] not in f.lports) or (f.rports and c["dport"] not in f.rports):
            last.pop(sk, None)
            continue
        prev = last.get(sk)
        rows.append(
            dict(
                _addresses(c, "laddr", "raddr"),
                ts_ns=c["ts_ns"],
                skaddr=sk,
                pid=c["tgid"],
                comm=c["comm"],
                ip=4 if c["family"] == 2 else 6,
                lport=c["sport"],
                rport=c["dport"],
                oldstate=c["oldstate"],
                newstate=c["newstate"],
                ms=0.0 if prev is None else ((c["ts_ns"] - prev) // 1000) / 1000,
            )
        )
        if c["newstate"] == "CLOSE":
            last.pop(sk, None)
        else:
            last[sk] = c["ts_ns"]
    return rows


def _ref_opens(t: pa.Table, opening: tuple[str, str]) -> list[tuple[dict, list[dict]]]:
    open_: dict[int, tuple[dict, list[dict]]] = {}
    out = []
    for c in _ref_rows(t):
        sk = c["sock"]
        if sk in open_:
            open_[sk][1].append(c)
            if c["newstate"] == "CLOSE":
                del open_[sk]
        elif (c["oldstate"], c["newstate"]) == opening:
            open_[sk] = (c, [])
            out.append(open_[sk])
    return out


def _ref_connect(t: pa.Table, o: tcp.ConnectOptions) -> list[dict[str, Any]] | pa.Table:
    f = o.filters
    rows = []
    for c, later in _ref_opens(t, ("CLOSE", "SYN_SENT")):
        if (f.pid is not None and c["tgid"] != f.pid) or (f.uid is not None and c["uid"] != f.uid):
            continue
        if (f.rports and c["dport"] not in f.rports) or not f.family_ok(c["family"]):
            continue
        rows.append(
            dict(
                _addresses(c, "saddr", "daddr"),
                ts_ns=c["ts_ns"],
                uid=c["uid"],
                pid=c["tgid"],
                comm=c["comm"],
                ip=4 if c["family"] == 2 else 6,
                lport=next((x["sport"] for x in later if x["sport"]), c["sport"]),
                dport=c["dport"],
            )
        )
    if not o.count:
        return rows
    counts: dict[tuple, int] = {}
    for r in rows:
        key = (r["ip"], r["saddr"], r["daddr"], r["dport"])
        counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1]))
    return pa.table(
        {
            "saddr": pa.array([k[1] for k, _ in ordered], pa.string()),
            "daddr": pa.array([k[2] for k, _ in ordered], pa.string()),
            "dport": pa.array([k[3] for k, _ in ordered], pa.int64()),
            "connects": pa.array([n for _, n in ordered], pa.int64()),
        }
    )


def _ref_accept(t: pa.Table | None, f: tcp.Filters, acc: pa.Table | None) -> list[dict]:
    rows = []
    if acc is not None:
        for a in _ref_rows(acc):
            if f.pid is not None and a["tgid"] != f.pid:
                continue
            if (f.lports and a["sport"] not in f.lports) or not f.family_ok(a["family"]):
                continue
            rows.append(_ref_accept_row(a, a))
        return rows
    closing = (("ESTABLISHED", "FIN_WAIT1"), ("CLOSE_WAIT", "LAST_ACK"))
    for c, later in _ref_opens(t, ("SYN_RECV", "ESTABLISHED")):
        closer = next((x for x in later if (x["oldstate"], x["newstate"]) in closing), c)
        if f.pid is not None and closer["tgid"] != f.pid:
            continue
        if (f.lports and c["sport"] not in f.lports) or not f.family_ok(c["family"]):
            continue
        rows.append(_ref_accept_row(c, closer))
    return rows


def _ref_accept_row(conn: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    return dict(
        _addresses(conn, "laddr", "raddr"),
        ts_ns=conn["ts_ns"],
        pid=task["tgid"],
        comm=task["comm"],
        ip=4 if conn["family"] == 2 else 6,
        rport=conn["dport"],
        lport=conn["sport"],
    )


def _addresses(c: dict[str, Any], local: str, remote: str) -> dict[str, str]:
    return {
        local: tcp.ip_text(c["family"], c["saddr"]),
        remote: tcp.ip_text(c["family"], c["daddr"]),
    }


def reference(name: str, t: pa.Table | None, o: Any, acc: pa.Table | None = None) -> Any:
    """The report's rows as the whole-trace replay gives them: dicts of the declared
    columns (numbers BCC prints with %s as text), in order, with `end_ns`."""
    if name == "tcplife":
        rows, columns = _ref_life(t, o.filters), tcp.tcplife_columns(o)
    elif name == "tcpstates":
        rows, columns = _ref_states(t, o.filters), tcp.tcpstates_columns(o)
    elif name == "tcpconnect":
        rows, columns = _ref_connect(t, o), tcp.tcpconnect_columns(o)
        if isinstance(rows, pa.Table):
            return rows
    else:
        rows, columns = _ref_accept(t, o.filters, acc), tcp.tcpaccept_columns(o)
    ts = [r["ts_ns"] for r in rows]
    hms = wall_clock(pa.array(ts, pa.uint64()), CLOCK).to_pylist() if rows else []
    out = []
    for i, r in enumerate(rows):
        r = dict(r, time=hms[i], time_s=(ts[i] // 1000 - ts[0] // 1000) / 1e6)
        row = {}
        for c in columns:
            v = r[c.name]
            row[c.name] = v  # numbers stay numbers, even where BCC prints them with %s
        row["end_ns"] = r["ts_ns"]
        out.append(row)
    return out


# -- random traces ------------------------------------------------------------------------


def random_changes(rng: random.Random, n: int, jitter_ns: int = 3 * S // 2) -> pa.Table:
    """n state changes of a few sockets (any state to any state, ties in time, IPv4 and
    IPv6, bytes or not), in a recorded order that is off time order by < jitter_ns."""
    rows, t = [], T0
    for _ in range(n):
        t += rng.choice([0, 0, 1, US, MS, 300 * MS])
        v6 = rng.random() < 0.3
        rows.append(
            tcp_row(
                ts_ns=t,
                tgid=rng.choice([0, 1, 5, 900]),
                uid=rng.choice([0, 33]),
                comm=rng.choice([b"a", b"nginx", b"\xffbad"]),
                sock=rng.randint(1, 6),
                oldstate=rng.choice(STATES),
                newstate=rng.choice(STATES),
                family=10 if v6 else 2,
                sport=rng.choice([0, 80, 81, 5000]),
                dport=rng.choice([0, 80, 443]),
                saddr=V6 if v6 else bytes([10, 0, 0, rng.randint(0, 3)]) + bytes(12),
                # Bytes past an IPv4 address's 4 do not show (one text, two values).
                daddr=bytes([10, 0, 0, 9, rng.randint(0, 1)]) + bytes(11),
                rx_bytes=rng.choice([None, 0, 5000]),
                tx_bytes=rng.choice([None, 2048]),
            )
        )
    rows.sort(key=lambda r: r["ts_ns"] + rng.randrange(jitter_ns))  # the recorded order
    return changes(rows)


def cut(t: pa.Table, at: list[int]) -> list[pa.Table]:
    """`t` in chunks ending at the positions `at` (empty chunks where they repeat)."""
    bounds = [0, *sorted(at), t.num_rows]
    return [t.slice(a, b - a) for a, b in zip(bounds, bounds[1:])]


FILTERS = [
    tcp.Filters(),
    tcp.Filters(pid=5),
    tcp.Filters(lports=(80,)),
    tcp.Filters(rports=(443, 80)),
    tcp.Filters(family=6),
    tcp.Filters(uid=33, family=4),
]


def options(rng: random.Random, name: str) -> Any:
    f = rng.choice(FILTERS)
    flag = lambda p=0.5: rng.random() < p  # noqa: E731
    if name in ("tcplife", "tcpstates"):
        return tcp.LifeOptions(flag(), flag(), flag(), flag(0.3), f)
    if name == "tcpconnect":
        return tcp.ConnectOptions(flag(), flag(), flag(0.6), flag(0.2), f)
    return tcp.AcceptOptions(flag(), flag(), f)


def stream(name: str, chunks: Iterable[pa.Table], o: Any, with_accepts: bool = False) -> Any:
    if name == "tcpaccept" and with_accepts:
        acc = (c.select(tcp.ACCEPT_COLUMNS_NEEDED) for c in chunks)
        return tcp.tcpaccept_stream(None, o, clock=CLOCK, accept_chunks=acc)
    return getattr(tcp, name + "_stream")(chunks, o, clock=CLOCK)


def whole(name: str, t: pa.Table, o: Any, with_accepts: bool = False) -> pa.Table:
    if name == "tcpaccept" and with_accepts:
        return tcp.tcpaccept(None, o, clock=CLOCK, accepts=t.select(tcp.ACCEPT_COLUMNS_NEEDED))
    return getattr(tcp, name)(t, o, clock=CLOCK)


REPORTS = [
    ("tcplife", False),
    ("tcpstates", False),
    ("tcpconnect", False),
    ("tcpaccept", False),
    ("tcpaccept", True),
]


def check(name: str, t: pa.Table, o: Any, chunks: list[pa.Table], with_accepts: bool) -> None:
    """The stream over `chunks` and the whole-table function over `t`: the reference's
    rows, in tables of one schema."""
    acc = t.select(tcp.ACCEPT_COLUMNS_NEEDED) if with_accepts else None
    want = reference(name, None if with_accepts else t, o, acc)
    parts = list(stream(name, chunks, o, with_accepts))
    assert parts and all(p.schema == parts[0].schema for p in parts)
    got = pa.concat_tables(parts)
    full = whole(name, t, o, with_accepts)
    assert full.schema == got.schema
    if isinstance(want, pa.Table):  # tcpconnect -c
        assert len(parts) == 1 and got.equals(want) and full.equals(want)
        return
    assert got.to_pylist() == want == full.to_pylist()
    assert got.column_names[-1] == "end_ns" and got.schema.field("end_ns").type == pa.uint64()


@pytest.mark.parametrize("name,with_accepts", REPORTS)
def test_streams_match_the_whole_trace_replay(name: str, with_accepts: bool) -> None:
    rng = random.Random(f"{name}{with_accepts}")
    for _ in range(100):
        t = random_changes(rng, rng.randint(0, 150))
        k = rng.randint(0, 10)
        at = [rng.randint(0, t.num_rows) for _ in range(k)]
        check(name, t, options(rng, name), cut(t, at), with_accepts)


@pytest.mark.parametrize("name,with_accepts", REPORTS)
def test_every_cut_point(name: str, with_accepts: bool) -> None:
    """Two chunks cut at each row, and one chunk per row."""
    rng = random.Random(name)
    t = random_changes(rng, 60)
    o = options(random.Random(3), name)
    for at in range(t.num_rows + 1):
        check(name, t, o, cut(t, [at]), with_accepts)
    check(name, t, o, cut(t, list(range(t.num_rows))), with_accepts)


def session(sk: int, t0: int, span_ns: int, *, passive: bool = False, **kw: Any) -> list[dict]:
    """One session's changes: opened at t0, established 1 us later, closed by the local
    side after span_ns."""
    first = ("LISTEN", "SYN_RECV") if passive else ("CLOSE", "SYN_SENT")
    kw = dict(dict(tgid=1000, comm=b"curl", sport=50000, dport=80), sock=sk, **kw)
    return [
        tcp_row(ts_ns=t0, oldstate=first[0], newstate=first[1], **dict(kw, sport=0)),
        tcp_row(ts_ns=t0 + US, oldstate=first[1], newstate="ESTABLISHED", **kw),
        tcp_row(ts_ns=t0 + span_ns // 2, oldstate="ESTABLISHED", newstate="FIN_WAIT1", **kw),
        tcp_row(
            ts_ns=t0 + span_ns,
            oldstate="FIN_WAIT2",
            newstate="CLOSE",
            rx_bytes=4096,
            tx_bytes=2048,
            **dict(kw, tgid=0, comm=b"swapper/0"),
        ),
    ]


def test_rows_recorded_out_of_order_within_the_slack() -> None:
    """Changes recorded out of time order (a CLOSE before its open, a session 1.9 s
    early: another CPU's buffer drained first): the rows of the trace in time order."""
    rows = session(1, T0, 10 * MS) + session(2, T0 + 5 * MS + 7 * US, 5 * MS, passive=True)
    recorded = [rows[3], rows[7], *rows[4:7], *rows[:3]]
    late = session(3, T0 + 1900 * MS, MS)
    recorded = late + recorded  # the later session first, 1.9 s early
    t = changes(recorded)
    for name, with_accepts in REPORTS:
        o = options(random.Random(0), name)
        o = dataclasses.replace(o, filters=tcp.Filters())
        check(name, t, o, cut(t, [2, 5, 9]), with_accepts)
        in_order = whole(name, changes(rows + late), o, with_accepts)
        assert in_order.num_rows and in_order.equals(whole(name, t, o, with_accepts))


def test_a_session_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opened in the first chunk, closed 30 s later in the last, with other sessions in
    between: one row at its close. TIME(s) counts from the first row printed, in the
    first table, whichever table a row is in."""
    monkeypatch.setattr(tcp, "OUT_ROWS", 1)  # a table per row
    long = session(1, T0, 30 * S)
    rows = long[:2] + [r for i in range(10) for r in session(10 + i, T0 + (i + 1) * S, MS)]
    rows += long[2:]
    chunks = [changes(rows[i : i + 3]) for i in range(0, len(rows), 3)]
    o = tcp.LifeOptions(timestamp=True)
    parts = list(tcp.tcplife_stream(iter(chunks), o, clock=CLOCK))
    assert [p.num_rows for p in parts] == [1] * 11
    last = parts[-1].to_pylist()[0]
    assert (last["ms"], last["end_ns"]) == (29_999.999, T0 + 30 * S)  # born at ESTABLISHED
    assert [p["time_s"][0].as_py() for p in parts] == [float(i) for i in range(10)] + [
        pytest.approx(30 - 1.001)
    ]
    t = changes(rows)
    check("tcplife", t, o, chunks, False)


def _lazily(chunks: Iterable[pa.Table], seen: list[int]) -> Iterator[pa.Table]:
    """`chunks`, counting in `seen` how many were taken."""
    for c in chunks:
        seen.append(1)
        yield c


def _first_with(
    tables: Iterator[pa.Table], seen: list[int], key: str, value: Any
) -> tuple[dict[str, Any], int]:
    for t in tables:
        for r in t.to_pylist():
            if r[key] == value:
                return r, len(seen)
    raise AssertionError(f"no row with {key} {value}")


def stuck_connect() -> list[pa.Table]:
    """A connect of socket 1 (pid 1) left in SYN_SENT for 50 s (its port shows at its
    next change), and a connect a second (pids 100, 101, ...) resolved at once: a chunk
    per second."""
    chunks = [changes([tcp_row(ts_ns=T0, sock=1, tgid=1, sport=0)])]
    for i in range(100):
        rows = session(100 + i, T0 + (i + 1) * S, MS, tgid=100 + i, sport=40000 + i)
        if i == 49:
            rows.append(
                tcp_row(
                    ts_ns=T0 + 50 * S + 2 * MS,
                    sock=1,
                    tgid=1,
                    oldstate="SYN_SENT",
                    newstate="ESTABLISHED",
                    sport=33333,
                )
            )
        chunks.append(changes(rows))
    return chunks


def test_a_connect_never_resolved_waits_within_the_bounds(monkeypatch) -> None:
    """tcpconnect -L: within PENDING_MAX_AGE_NS the stuck connect's row gets its port
    (as the whole-trace replay); older, it goes out with the port at its open (0), and
    the rows after it follow, without waiting for the end; more than PENDING_MAX_ROWS
    waiting, likewise."""
    monkeypatch.setattr(tcp, "OUT_ROWS", 1)
    chunks = stuck_connect()
    o = tcp.ConnectOptions(lport=True)
    t = pa.concat_tables(chunks)
    check("tcpconnect", t, o, chunks, False)  # the default bound: as the replay
    assert tcp.tcpconnect(t, o, clock=CLOCK)["lport"][0].as_py() == 33333

    monkeypatch.setattr(tcp, "PENDING_MAX_AGE_NS", 10 * S)
    seen: list[int] = []
    out = tcp.tcpconnect_stream(_lazily(chunks, seen), o, clock=CLOCK)
    row, taken = _first_with(out, seen, "pid", 1)
    assert row["lport"] == 0 and row["end_ns"] == T0
    # Out once a change more than 10 s later was replayed (the reorder window: 2 s).
    assert taken <= 10 + 3
    rest = [r for p in out for r in p.to_pylist()]
    assert [r["pid"] for r in rest] == list(range(100, 200))  # in the order of the opens
    assert [r["lport"] for r in rest] == list(range(40000, 40100))

    monkeypatch.setattr(tcp, "PENDING_MAX_AGE_NS", 600 * S)
    monkeypatch.setattr(tcp, "PENDING_MAX_ROWS", 5)
    seen = []
    out = tcp.tcpconnect_stream(_lazily(chunks, seen), o, clock=CLOCK)
    row, taken = _first_with(out, seen, "pid", 1)
    assert row["lport"] == 0 and taken <= 6 + 3
    assert [r["pid"] for p in out for r in p.to_pylist()] == list(range(100, 200))


def test_an_accepted_connection_open_for_long_waits_within_the_bounds(monkeypatch) -> None:
    """tcpaccept without accept rows: a connection closed by nginx (pid 900) after an
    hour shows nginx within a 2-hour bound; with the 10-minute one, the task at its open
    (the softirq's)."""
    rows = session(1, T0, 3600 * S, passive=True, tgid=0, comm=b"swapper/1", sport=80)
    rows[2].update(tgid=900, comm=b"nginx")  # ESTABLISHED -> FIN_WAIT1: the closer
    others = [r for i in range(70) for r in session(10 + i, T0 + (i + 1) * 60 * S, MS)]
    t = changes(rows[:2] + others + rows[2:])
    o = tcp.AcceptOptions()
    want = reference("tcpaccept", t, o)
    assert want[0]["comm"] == b"nginx"
    got = tcp.tcpaccept(t, o, clock=CLOCK).to_pylist()
    assert got == [dict(want[0], pid=0, comm=b"swapper/1"), *want[1:]]
    monkeypatch.setattr(tcp, "PENDING_MAX_AGE_NS", 7200 * S)
    check("tcpaccept", t, o, cut(t, [2, 50, 200]), False)


def test_nothing_to_show_is_one_empty_table_with_the_columns() -> None:
    empty = changes([])
    for name, with_accepts in REPORTS:
        for o in [options(random.Random(i), name) for i in range(8)]:
            parts = list(stream(name, [empty, empty], o, with_accepts))
            assert len(parts) == 1 and parts[0].num_rows == 0
            names = parts[0].column_names
            if name == "tcpconnect" and o.count:
                assert names == ["saddr", "daddr", "dport", "connects"]
                continue
            cols = getattr(tcp, name + "_columns")(o)
            assert names == [c.name for c in cols] + ["end_ns"]
            assert parts[0].schema == whole(name, random_changes(random.Random(1), 50), o).schema


def test_dictionary_columns_as_a_reader_may_give_them() -> None:
    t = random_changes(random.Random(5), 200)
    d = t
    for c in ("comm", "oldstate", "newstate", "saddr", "daddr"):
        d = d.set_column(d.column_names.index(c), c, d[c].dictionary_encode())
    for name, with_accepts in REPORTS:
        o = options(random.Random(1), name)
        assert pa.concat_tables(list(stream(name, cut(d, [7, 90]), o, with_accepts))).equals(
            whole(name, t, o, with_accepts)
        )


def test_accept_rows_sorted_by_return() -> None:
    rows = [accept_row(ts_ns=T0 + i * MS, tgid=900 + i) for i in (3, 1, 2)]
    got = tcp.tcpaccept(None, tcp.AcceptOptions(), clock=CLOCK, accepts=accepts(rows))
    assert got["pid"].to_pylist() == [901, 902, 903]
    assert got["end_ns"].to_pylist() == [T0 + MS, T0 + 2 * MS, T0 + 3 * MS]


# -- memory ---------------------------------------------------------------------------------

_STATE = pa.array(["CLOSE", "SYN_SENT", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "LISTEN",
                   "SYN_RECV"])  # fmt: skip
_ACTIVE = ([0, 1, 2, 4], [1, 2, 3, 0])  # (old, new) per change, indices in _STATE
_PASSIVE = ([5, 6, 2, 4], [6, 2, 3, 0])


def synthetic(sessions: int, per_chunk: int = 16384, gap_ns: int = 100 * US) -> Iterator[pa.Table]:
    """Sessions of 4 changes (a third passive), one every gap_ns, each up to 50 ms long,
    every socket new, as chunks in a recorded order up to 20 ms off time order."""
    rng = np.random.default_rng(0)
    for first in range(0, sessions, per_chunk):
        idx = np.arange(first, min(sessions, first + per_chunk))
        start = T0 + idx * gap_ns
        span = rng.integers(20 * US, 50 * MS, len(idx))
        passive = (idx % 3 == 0)[:, None]
        ts = np.stack([start, start + 10 * US, start + span // 2, start + span], 1).ravel()
        order = np.argsort(ts + rng.integers(0, 20 * MS, ts.size), kind="stable")
        old = np.where(passive, _PASSIVE[0], _ACTIVE[0]).ravel()[order]
        new = np.where(passive, _PASSIVE[1], _ACTIVE[1]).ravel()[order]
        port = np.repeat(1024 + idx % 60000, 4).reshape(-1, 4)
        port[:, 0] *= passive[:, 0]  # an active open has no local port yet

        def each(a: np.ndarray) -> np.ndarray:
            return np.repeat(a, 4)[order]  # noqa: B023

        n = ts.size
        addr = pa.array([bytes([127, 0, 0, 1]) + bytes(12)] * n, pa.binary(16))
        close = new == 0
        yield pa.table(
            {
                "ts_ns": pa.array(ts[order], pa.uint64()),
                "tgid": pa.array(each(1000 + idx % 64), pa.uint32()),
                "tid": pa.array(each(1000 + idx % 64), pa.uint32()),
                "uid": pa.array(np.zeros(n), pa.uint32()),
                "comm": pa.array([b"curl", b"nginx", b"redis"] * (n // 3) + [b"x"] * (n % 3)),
                "sock": pa.array(each(0x10000 + idx * 64), pa.uint64()),
                "oldstate": _STATE.take(pa.array(old)),
                "newstate": _STATE.take(pa.array(new)),
                "family": pa.array(np.full(n, 2), pa.uint16()),
                "sport": pa.array(port.ravel()[order], pa.uint16()),
                "dport": pa.array(each(80 + idx % 4), pa.uint16()),
                "saddr": addr,
                "daddr": addr,
                "rx_bytes": pa.array(np.full(n, 9000), pa.uint64(), mask=~close),
                "tx_bytes": pa.array(np.full(n, 3000), pa.uint64(), mask=~close),
            }
        )


STATE = {
    "tcplife": ("birth", "whoami"),
    "tcpstates": ("last",),
    "tcpconnect": ("opened", "pending"),
    "tcpaccept": ("opened", "pending"),
}


@pytest.mark.parametrize(
    "name,o,changes_n",
    [
        ("tcplife", tcp.LifeOptions(), 2_000_000),
        ("tcpstates", tcp.LifeOptions(), 200_000),
        ("tcpconnect", tcp.ConnectOptions(lport=True), 400_000),
        ("tcpaccept", tcp.AcceptOptions(), 400_000),
    ],
)
def test_memory_stays_flat(monkeypatch, name: str, o: Any, changes_n: int) -> None:
    """Millions of changes: the state kept (per open socket, rows waiting) stays that of
    the sessions open at once (~500 here), the Arrow memory that of the reorder window,
    and output comes as the input goes."""
    monkeypatch.setattr(tcp, "OUT_ROWS", 4096)
    sessions = changes_n // 4
    seen: list[int] = []
    base = pa.total_allocated_bytes()
    out = stream(name, _lazily(synthetic(sessions), seen), o)
    sizes: list[int] = []
    arrow, rows, first = 0, 0, None
    for t in out:
        rows += t.num_rows
        first = first or len(seen)
        sizes += _state_sizes(out, STATE[name])
        arrow = max(arrow, pa.total_allocated_bytes() - base)
    assert len(seen) == -(-sessions // 16384)
    assert len(sizes) > 10 and max(sizes) < 2_000
    assert first is not None and first <= 4  # output before the input is all read
    assert arrow < 64 << 20
    passive = len(range(0, sessions, 3))
    want = {"tcplife": sessions, "tcpstates": changes_n, "tcpaccept": passive}
    assert rows == want.get(name, sessions - passive)


def _state_sizes(gen: Any, names: tuple[str, ...]) -> list[int]:
    """The sizes of the replay's own state (its local variables `names`), between two
    tables, in `gen` or the generator it delegates to."""
    while gen is not None:
        local = gen.gi_frame.f_locals if gen.gi_frame is not None else {}
        if all(k in local for k in names):
            return [len(local[k]) for k in names]
        gen = gen.gi_yieldfrom
    return []  # the replay is over (the last tables)
