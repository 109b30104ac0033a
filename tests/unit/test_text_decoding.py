"""Kernel text that is not UTF-8 (or not ASCII), through every report, byte for byte as the
BCC tool prints it (goldens tests/golden/text-*.txt): raw where BCC uses printb or bytes
`%s`, `.decode('utf-8', 'replace')` (U+FFFD, printed as EF BF BD; widths and `%.Ns` in
characters) where BCC decodes. Line numbers are of BCC HEAD (v0.37.0-6) tools/.

Three comms: BAD has invalid bytes; CUT is "python-scriptsé" as the kernel keeps it (15
bytes, the é cut after its first byte); LONG is valid UTF-8, 15 bytes but 8 characters,
so byte and character widths differ (and its 12th byte is inside a character).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfcap.cli.main import main
from bpfcap.formats.events import BY_NAME
from bpfcap.tests.builders import (
    MS,
    START_NS,
    US,
    VDA,
    XVDA1,
    S,
    accept_row,
    bio_row,
    exec_row,
    fork_row,
    open_row,
    runq_row,
    signal_row,
    syscall_row,
    tcp_row,
    write_trace,
)

READS = ("tcp.bytes", "accept.socket", "exec.parent", "cwd.walk")
BAD = b"bad\xff\xfename"
CUT = b"python-scripts\xc3"
LONG = "x" + "\u00e9" * 7
T0 = START_NS + S


def _session(t0: int, passive: bool = False, **who: object) -> list[dict]:
    """A TCP session of task `who` (sock, tgid, comm, ports): an active (or passive)
    open, then closed by `who` 2 ms later."""
    opening = ("LISTEN", "SYN_RECV") if passive else ("CLOSE", "SYN_SENT")
    return [
        tcp_row(ts_ns=t0, oldstate=opening[0], newstate=opening[1], **who),
        tcp_row(ts_ns=t0 + US, oldstate=opening[1], newstate="ESTABLISHED", **who),
        tcp_row(ts_ns=t0 + MS, oldstate="ESTABLISHED", newstate="FIN_WAIT1", **who),
        tcp_row(
            ts_ns=t0 + 2 * MS,
            oldstate="FIN_WAIT2",
            newstate="CLOSE",
            rx_bytes=4096,
            tx_bytes=2048,
            **who,
        ),
    ]


ROWS = [
    open_row(tgid=1000, comm=BAD, path=b"/tmp/bad\xff\xfe"),
    open_row(ts_ns=T0 + S, tgid=1001, comm=CUT, path=b"/tmp/cut\xc3"),
    open_row(ts_ns=T0 + 2 * S, tgid=1002, comm=LONG, path="/tmp/caf\u00e9", lat_ns=MS),
    fork_row(tgid=1000, comm=b"par\xff\xfe", child_pid=2000),
    exec_row(comm=BAD, filename=b"/tmp/bad\xff\xfe", args=[b"-\xe9", "\u00e9"]),
    bio_row(comm=BAD, dev=VDA),
    bio_row(ts_ns=T0 + S, comm=CUT, dev=XVDA1, sector=8),
    bio_row(ts_ns=T0 + 2 * S, comm=LONG, dev=VDA, sector=16, lat_ns=5 * MS),
    # syscount -P: BCC strips what it reads, so the edge whitespace goes too.
    syscall_row(tgid=1000, comm=b" " + BAD + b"\t"),
    *[syscall_row(tgid=1001, comm=CUT)] * 2,
    *[syscall_row(tgid=1002, comm=LONG)] * 3,
    runq_row(comm=BAD),
    runq_row(tgid=1001, comm=CUT, lat_ns=MS),
    signal_row(comm=BAD),
    signal_row(ts_ns=T0 + S, tgid=1001, comm=CUT),
    signal_row(ts_ns=T0 + 2 * S, tgid=1002, comm=LONG),
]
# BAD connects to :80, LONG to :443; CUT's port 8080 accepts from :40000.
ROWS += _session(T0, sock=1, tgid=1000, comm=BAD, sport=50000, dport=80)
ROWS += _session(T0 + S, True, sock=2, tgid=1001, comm=CUT, sport=8080, dport=40000)
ROWS += _session(T0 + 2 * S, sock=3, tgid=1002, comm=LONG, sport=50001, dport=443)
# tcpaccept shows the task returning from accept(2), recorded as an accept row.
ROWS += [accept_row(ts_ns=T0 + S + 2 * US, tgid=1001, comm=CUT, sport=8080, dport=40000)]
# A disk name that is not ASCII (BCC reads /proc/diskstats as str: a name that is not
# UTF-8 stops BCC there, and bpfcap record too, so none reaches a report).
DISKS = [[VDA, "d\u00efsk"], [XVDA1, "xvda1"]]


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_trace(
        tmp_path_factory.mktemp("text") / "t.parquet",
        ROWS,
        disks=DISKS,
        end_ns=START_NS + 4 * S,
        settings={"events": sorted(BY_NAME)},
        kernel_reads={k: {"status": "btf", "reason": "", "columns": []} for k in READS},
    )


@pytest.fixture
def report(trace: Path, capsysbinary, golden):
    """report(golden name, tool, *flags): the tool's text output on `trace`, compared
    with the golden file byte for byte."""

    def check(name: str, tool: str, *flags: str) -> None:
        with pytest.raises(SystemExit) as exit_:
            main(["report", tool, str(trace), *flags])
        out, err = capsysbinary.readouterr()
        assert (exit_.value.code, err) == (0, b"")
        golden(name, out)

    return check


def test_execsnoop(report) -> None:
    """Raw: printb(b"%-16s %-7d " % (event.comm, ...)), printb(b"%-16s " % event.pcomm),
    printb(b"%3d %s" % (retval, argv_text)) (execsnoop.py:344, 346, 350)."""
    report("text-execsnoop-M.txt", "execsnoop", "-M")


def test_opensnoop(report) -> None:
    """Raw: printb(b"%-6d %-16s %4d %3d " % (..., event.comm, ...)) and
    printb(b"%s" % event.name) (opensnoop.py:593, 620)."""
    report("text-opensnoop.txt", "opensnoop")


def test_biosnoop(report) -> None:
    """Decoded: print("%-11.6f %-14.14s %-7s %-9s ..." % (..., event.name.decode('utf-8',
    'replace'), pid, disk_name, ...)) (biosnoop.py:419-421): COMM cut and padded to 14
    characters, the str disk name padded to 9 characters."""
    report("text-biosnoop.txt", "biosnoop")


def test_biolatency(report) -> None:
    """No comm; -D's section line print("\\n%s = %s" % ("disk", disk_print(bucket)))
    (bcc/table.py:752, biolatency.py:412) prints the str disk name."""
    report("text-biolatency-D.txt", "biolatency", "-D")


def test_syscount(report) -> None:
    """Raw, stripped: printb(b"%-22s %8d" % (b"%-6d %-15s" % (pid,
    open("/proc/%d/comm" % pid, "rb").read().strip()), count)) (syscount.py:264, 270, 287)."""
    report("text-syscount-P.txt", "syscount", "-P")


def test_runqlat(report) -> None:
    """No comm: -P sections are print_log2_hist(label, "pid", section_print_fn=int)
    (runqlat.py:318), `pid = N`."""
    report("text-runqlat-P.txt", "runqlat", "-P")


@pytest.mark.parametrize("flags", [(), ("-w",), ("-s",)])
def test_tcplife(flags: tuple[str, ...], report) -> None:
    """Decoded: print(format_string % (event.pid, event.task.decode('utf-8', 'replace'),
    ...)) (tcplife.py:445), COMM `%-10.10s`, `%-16.16s` with -w, `%s` with -s (419-426)."""
    report(f"text-tcplife{''.join(flags)}.txt", "tcplife", *flags)


@pytest.mark.parametrize("flags", [(), ("-w",), ("-s",)])
def test_tcpstates(flags: tuple[str, ...], report) -> None:
    """Decoded: print(format_string % (event.skaddr, event.pid,
    event.task.decode('utf-8', 'replace'), ...)) (tcpstates.py:373), C-COMM `%-10.10s`,
    `%-16.16s` with -w, `%s` with -s (295-305)."""
    report(f"text-tcpstates{''.join(flags)}.txt", "tcpstates", *flags)


def test_tcpconnect(report) -> None:
    """Raw: printb(b"%-7d %-12.12s %-2d ..." % (event.pid, event.task, ...))
    (tcpconnect.py:421): COMM cut at 12 bytes, even inside a character."""
    report("text-tcpconnect.txt", "tcpconnect")


def test_tcpaccept(report) -> None:
    """Raw: printb(b"%-7d %-12.12s %-2d ..." % (event.pid, event.task, ...))
    (tcpaccept.py:254)."""
    report("text-tcpaccept.txt", "tcpaccept")


def test_killsnoop(report) -> None:
    """Raw: printb(b"%-9s %-*d %-16s ..." % (..., event.comm, ...)) (killsnoop.py:168)."""
    report("text-killsnoop.txt", "killsnoop")


def test_count(report) -> None:
    """bpftrace prints a string map key's bytes as they are: std::string of the bytes up
    to the NUL (src/types_format.cpp:127-128), written with `out << v`
    (src/output/text.cpp:19) inside `@[...]` (emit_map)."""
    report("text-count-comm.txt", "count", "-e", "open", "--by", "comm,path")


def test_hist(report) -> None:
    """bpftrace's `@name[key]:` line of a keyed hist(), the key's bytes as they are (as
    for count)."""
    report(
        "text-hist-comm.txt",
        "hist",
        "-e",
        "open",
        "--field",
        "lat_ns",
        "--by",
        "comm",
    )
