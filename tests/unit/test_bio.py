"""biosnoop and biolatency: synthetic bio rows -> BCC HEAD text (bcc-formats.md 6, 7, 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfcap.cli.main import main
from bpfcap.tests.builders import MS, START_NS, US, VDA, XVDA1, S, bio_row, write_trace

DISKS = [[VDA, "vda"], [XVDA1, "xvda1"]]
ROWS = [
    # The first completion (time 0): on xvda1, 8 sectors before BCC's example row.
    bio_row(ts_ns=START_NS + S - 740 * US, dev=XVDA1, sector=13092552),
    # BCC's example: completes 4 us later, sequential to the row above.
    bio_row(ts_ns=START_NS + S - 736 * US, dev=XVDA1),
    # A 1 MiB read by dd, random, 12.3 ms; its start was not seen (comm ?, pid 0).
    bio_row(
        ts_ns=START_NS + 2 * S,
        tgid=0,
        comm=b"",
        queue_ns=0,
        rwbs=b"RA",
        bytes=1048576,
        sector=2048,
        lat_ns=12300 * US,
    ),
    # A synchronous write with flush flags (FWS: W counts), and a pure flush (hidden).
    bio_row(ts_ns=START_NS + 3 * S, rwbs=b"FWS", sector=4096, lat_ns=3 * MS, queue_ns=2 * MS),
    bio_row(ts_ns=START_NS + 3 * S, rwbs=b"FF", bytes=0, sector=0, lat_ns=90 * US),
]


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bio")
    return write_trace(d / "t.parquet", ROWS, disks=DISKS, end_ns=START_NS + 4 * S)


def run(capsysbinary, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["report", *map(str, argv)])
    out, err = capsysbinary.readouterr()
    return exit_.value.code, out.decode(), err.decode()


@pytest.mark.parametrize(
    "flags, header",
    [
        ((), "TIME(s)     COMM           PID     DISK      T SECTOR     BYTES  LAT(ms)"),
        (
            ("-Q",),
            "TIME(s)     COMM           PID     DISK      T SECTOR     BYTES  QUE(ms) LAT(ms)",
        ),
        (("-P",), "TIME(s)     COMM           PID     DISK      T SECTOR     BYTES  P LAT(ms)"),
        (
            ("-P", "-Q"),
            "TIME(s)     COMM           PID     DISK      T SECTOR     BYTES  P QUE(ms) LAT(ms)",
        ),
    ],
)
def test_biosnoop_headers(trace, capsysbinary, flags, header) -> None:
    rc, out, _ = run(capsysbinary, "biosnoop", trace, *flags)
    assert rc == 0 and out.splitlines()[0] == header


def test_biosnoop_rows(trace, capsysbinary) -> None:
    _, out, err = run(capsysbinary, "biosnoop", trace)
    assert err == ""
    assert out.splitlines()[1:] == [
        "0.000000    supervise      1950    xvda1     W 13092552   4096      0.74",
        "0.000004    supervise      1950    xvda1     W 13092560   4096      0.74",
        "1.012300    ?              0       vda       R 2048       1048576  12.30",
        "2.003000    supervise      1950    vda       W 4096       4096      3.00",
    ]
    _, out, _ = run(capsysbinary, "biosnoop", trace, "-P", "-Q", "-d", "xvda1")
    assert out.splitlines()[2] == (
        "0.000004    supervise      1950    xvda1     W 13092560   4096   S    0.01    0.74"
    )
    _, out, _ = run(capsysbinary, "biosnoop", trace, "-P", "-d", "vda", "--flushes")
    assert [ln[-16:] for ln in out.splitlines()[1:]] == [
        "1048576?   12.30",  # BYTES runs into P, as in BCC
        "0      R    0.09",  # the flush completes first; it moves no sectors
        "4096   R    3.00",
    ]


def test_biosnoop_unknown_disk(trace, capsysbinary) -> None:
    rc, _, err = run(capsysbinary, "biosnoop", trace, "-d", "sdz")
    assert rc == 2 and err == "error: no such disk 'sdz'; disks recorded: vda, xvda1\n"


def test_biolatency_default(trace, capsysbinary) -> None:
    rc, out, _ = run(capsysbinary, "biolatency", trace)
    assert rc == 0
    assert out == (
        "Tracing block device I/O... Hit Ctrl-C to end.\n"
        "\n"
        "     usecs               : count     distribution\n"
        + "".join(
            "%10d -> %-10d : %-8d |%-40s|\n" % (lo, hi, n, "*" * stars)  # noqa: UP031 (BCC's format)
            for lo, hi, n, stars in [
                (0, 1, 0, 0),
                (2, 3, 0, 0),
                (4, 7, 0, 0),
                (8, 15, 0, 0),
                (16, 31, 0, 0),
                (32, 63, 0, 0),
                (64, 127, 0, 0),
                (128, 255, 0, 0),
                (256, 511, 0, 0),
                (512, 1023, 2, 40),
                (1024, 2047, 0, 0),
                (2048, 4095, 1, 20),
                (4096, 8191, 0, 0),
                (8192, 16383, 1, 20),
            ]
        )
    )


def test_biolatency_disks_queued_extension_ms(trace, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, "biolatency", trace, "-D", "-Q", "-m", "-e")
    lines = out.splitlines()
    # Sections in disk name order; -Q leaves out the I/O whose start was not seen.
    assert lines[1:4] == ["", "", "disk = vda"]
    assert "disk = xvda1" in lines
    assert lines[-2:] == ["avg = 1 msecs, total: 5 msecs, count: 3", ""]
    _, out, _ = run(capsysbinary, "biolatency", trace, "-Q", "-d", "vda", "-e")
    assert "avg = 5000 usecs, total: 5000 usecs, count: 1" in out


def test_biolatency_intervals_and_json(trace, capsysbinary) -> None:
    _, out, _ = run(capsysbinary, "biolatency", trace, "-T", "2", "5")
    lines = out.splitlines()
    assert [ln for ln in lines if ln.startswith("15:")] == ["15:08:22", "15:08:24"]
    _, out, _ = run(capsysbinary, "biolatency", trace, "-j", "-D", "-m", "3", "1")
    slots = [(0, 1, 0), (2, 3, 0), (4, 7, 0), (8, 15, 1)]
    dd = ", ".join(
        f"{{'interval-start': {a}, 'interval-end': {b}, 'count': {n}}}" for a, b, n in slots
    )
    assert out.splitlines() == [
        f"{{'ts': '2024-03-05 15:08:23', 'val_type': 'msecs', 'data': [{dd}], 'disk': 'vda'}}",
        "{'ts': '2024-03-05 15:08:23', 'val_type': 'msecs', 'data': [{'interval-start': 0, "
        "'interval-end': 1, 'count': 2}], 'disk': 'xvda1'}",
    ]


def test_biolatency_flags_refused(trace, capsysbinary) -> None:
    rc, _, err = run(capsysbinary, "biolatency", trace, "-F")
    assert rc == 2 and err.startswith("error: -F: the request flags (cmd_flags)")
    rc, _, err = run(capsysbinary, "biolatency", trace, "-F", "-D")
    assert rc == 2 and err == "error: ERROR: can only use -D or -F. Exiting.\n"
