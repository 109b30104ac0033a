"""tcplife, tcpstates, tcpconnect, tcpaccept from synthetic state changes -> BCC text
(bcc-formats.md sections 10 and 11; tcpstates and tcpaccept from BCC's tools)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bpfcap.cli.main import main
from bpfcap.tests.builders import START_NS, US, S, tcp_row, write_trace

T0 = START_NS + S


def session(sk, t0, pid, comm, lport, rport, *, rx, tx, span_us, passive=False, who=None):
    """The changes of one loopback session: an active (or passive) open, then a close by
    the local side after `span_us`."""
    kw = dict(sock=sk, tgid=pid, comm=comm, sport=lport, dport=rport)
    if passive:
        opens = [
            tcp_row(ts_ns=t0, oldstate="LISTEN", newstate="SYN_RECV", **kw),
            tcp_row(ts_ns=t0 + US, oldstate="SYN_RECV", newstate="ESTABLISHED", **kw),
        ]
    else:
        opens = [
            tcp_row(ts_ns=t0, oldstate="CLOSE", newstate="SYN_SENT", **dict(kw, sport=0)),
            tcp_row(ts_ns=t0 + US, oldstate="SYN_SENT", newstate="ESTABLISHED", **kw),
        ]
    closer = dict(kw, **(who or {}))
    return opens + [
        tcp_row(
            ts_ns=t0 + US + span_us * 1000 // 2,
            oldstate="ESTABLISHED",
            newstate="FIN_WAIT1",
            **closer,
        ),
        tcp_row(
            ts_ns=t0 + US + span_us * 1000,
            oldstate="FIN_WAIT2",
            newstate="CLOSE",
            rx_bytes=rx,
            tx_bytes=tx,
            tgid=0,
            comm=b"swapper/0",
            sock=sk,
            sport=lport,
            dport=rport,
        ),
    ]


TELNET = dict(sock=2, tgid=1479, comm=b"telnet", dport=23)
HIGH = 0xFFFF_8000_1234_5678  # socket ids are scrambled addresses: any u64
ROWS = (
    # BCC's tcplife example: recordProg 22597, 127.0.0.1:46644 -> 28527, 1 KiB received.
    session(HIGH, T0, 22597, b"recordProg", 46644, 28527, rx=1024, tx=0, span_us=230 - 1)
    # telnet 1479 -> 127.0.0.1:23 at 2 s (still open at the end: no tcplife row).
    + [tcp_row(ts_ns=T0 + S, **TELNET)]
    + [
        tcp_row(
            ts_ns=T0 + S + 5 * US,
            sport=50001,
            oldstate="SYN_SENT",
            newstate="ESTABLISHED",
            **TELNET,
        )
    ]
    # A passive open on port 80 at 3 s, accepted and closed by nginx (pid 900); the
    # establishment is seen in softirq context (task: swapper).
    + session(
        3,
        T0 + 2 * S,
        0,
        b"swapper/1",
        80,
        40000,
        rx=5000,
        tx=2048,
        span_us=1500,
        passive=True,
        who={"tgid": 900, "comm": b"nginx"},
    )
)


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tcp")
    clock = {"realtime_minus_monotonic_ns": 1_709_681_978 * S - T0, "utc_offset_s": 0}
    return write_trace(d / "t.parquet", ROWS, clock=clock, settings={"tcp_bytes": "btf"})


def run(capsysbinary, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["report", *map(str, argv)])
    out, err = capsysbinary.readouterr()
    return exit_.value.code, out.decode(), err.decode()


def test_tcplife(trace, capsysbinary) -> None:
    rc, out, err = run(capsysbinary, "tcplife", trace)
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS",
        "22597 recordProg 127.0.0.1       46644 127.0.0.1       28527     0     1 0.23",
        # Closed by the local side first (FIN_WAIT1, not LAST_ACK): BCC caches no task,
        # so it shows the one current at CLOSE (here softirq on an idle CPU).
        "0     swapper/0  127.0.0.1       80    127.0.0.1       40000     2     4 1.50",
    ]
    _, out, _ = run(capsysbinary, "tcplife", trace, "-T", "-t")
    assert out.splitlines()[0] == (
        "TIME     TIME(s)   PID   COMM       LADDR           LPORT RADDR           RPORT "
        "TX_KB RX_KB MS"
    )
    assert out.splitlines()[1].startswith("23:39:38 0.000000  22597 recordProg")
    _, out, _ = run(capsysbinary, "tcplife", trace, "-s", "-T", "-t", "-L", "80")
    assert out.splitlines() == [
        "TIME,TIME(s),PID,COMM,IP,LADDR,LPORT,RADDR,RPORT,TX_KB,RX_KB,MS",
        "23:39:40,0.000000,0,swapper/0,4,127.0.0.1,80,127.0.0.1,40000,2,4,1.50",
    ]
    _, out, _ = run(capsysbinary, "tcplife", trace, "-w", "-p", "22597", "-6")
    assert len(out.splitlines()) == 1  # header only: no IPv6 session


def test_tcpstates(trace, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, "tcpstates", trace, "-L", "46644")
    assert out.splitlines()[1].startswith("ffff800012345678 22597 recordProg ")
    _, out, _ = run(capsysbinary, "tcpstates", trace, "-D", "23")
    assert out.splitlines() == [
        "SKADDR           C-PID C-COMM     LADDR           LPORT RADDR           RPORT "
        "OLDSTATE    -> NEWSTATE    MS",
        "2                1479  telnet     127.0.0.1       0     127.0.0.1       23    "
        "CLOSE       -> SYN_SENT    0.000",
        "2                1479  telnet     127.0.0.1       50001 127.0.0.1       23    "
        "SYN_SENT    -> ESTABLISHED 0.005",
    ]


def test_tcpstates_wide_pads_addresses_to_39(tmp_path: Path, capsysbinary) -> None:
    """BCC HEAD's -w (tcpstates.py:299-302): C-COMM %-16.16s, IP %-2s, LADDR and RADDR
    %-39s (a full IPv6 address fits), LPORT %-5s; -s (lines 304-305) wins over -w."""
    v6 = socket.inet_pton(socket.AF_INET6, "fd00:1111:2222:3333:4444:5555:6666:7777")
    row = tcp_row(family=10, saddr=v6, daddr=socket.inet_pton(socket.AF_INET6, "::1"))
    t = write_trace(tmp_path / "6.parquet", [dict(row, sport=443, dport=50000)])
    _, out, _ = run(capsysbinary, "tcpstates", t, "-w")
    assert out.splitlines() == [
        "SKADDR           C-PID C-COMM           IP LADDR                                   "
        "LPORT RADDR                                   RPORT OLDSTATE    -> NEWSTATE    MS",
        "abc              1000  curl             6  fd00:1111:2222:3333:4444:5555:6666:7777 "
        "443   ::1                                     50000 CLOSE       -> SYN_SENT    0.000",
    ]
    _, out, _ = run(capsysbinary, "tcpstates", t, "-w", "-s")
    assert out.splitlines() == [
        "SKADDR,C-PID,C-COMM,IP,LADDR,LPORT,RADDR,RPORT,OLDSTATE,NEWSTATE,MS",
        "abc,1000,curl,6,fd00:1111:2222:3333:4444:5555:6666:7777,443,::1,50000,CLOSE,SYN_SENT,0.000",
    ]


def test_tcpconnect(trace, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, "tcpconnect", trace, "-P", "23")
    assert out.splitlines() == [
        "PID     COMM         IP SADDR            DADDR            DPORT ",
        "1479    telnet       4  127.0.0.1        127.0.0.1        23     ",
    ]
    _, out, _ = run(capsysbinary, "tcpconnect", trace, "-t", "-U", "-L")
    lines = out.splitlines()
    assert (
        lines[0]
        == "TIME(s)  UID   PID     COMM         IP SADDR            LPORT  DADDR            DPORT "
    )
    assert (
        lines[1]
        == "0.000    1000  22597   recordProg   4  127.0.0.1        46644  127.0.0.1        28527  "
    )
    _, out, _ = run(capsysbinary, "tcpconnect", trace, "-c")
    assert out.splitlines() == [
        "",
        "LADDR                     RADDR                     RPORT                CONNECTS  ",
        "127.0.0.1                 127.0.0.1                 28527                1         ",
        "127.0.0.1                 127.0.0.1                 23                   1         ",
    ]  # equal counts: in the order first seen
    rc, _, err = run(capsysbinary, "tcpconnect", trace, "-d")
    assert rc == 2 and "DNS" in err


def test_tcpaccept_shows_the_closing_process(trace, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, "tcpaccept", trace)
    assert out.splitlines() == [
        "PID     COMM         IP RADDR            RPORT LADDR            LPORT",
        "900     nginx        4  127.0.0.1        40000 127.0.0.1        80   ",
    ]


def test_no_btf_is_said(tmp_path: Path, capsysbinary) -> None:
    rows = [dict(r, rx_bytes=None, tx_bytes=None) for r in ROWS[:4]]
    t = write_trace(tmp_path / "n.parquet", rows, settings={"tcp_bytes": "no kernel BTF"})
    rc, out, err = run(capsysbinary, "tcplife", t)
    assert rc == 0 and out.splitlines()[1].endswith("    ?     ? 0.23")
    assert err == (
        "bpfcap: not recorded: bytes received and acked at a change to CLOSE (tcplife's "
        "RX_KB, TX_KB) (no kernel BTF)\n"
    )
