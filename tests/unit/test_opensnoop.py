"""opensnoop: synthetic opens + flags -> BCC v0.37 text (goldens in tests/golden/)."""

from __future__ import annotations

import io
import os
import sys

import pytest

from bpfcap.analyze.opensnoop import COLUMNS, O_FLAGS, Options, flag_mask, opensnoop
from bpfcap.cli.render import write_text
from bpfcap.formats.errors import UsageError
from bpfcap.tests.builders import MS, START_NS, US, S, open_row, table
from bpfcap.tests.contract import contract_text

O_WRONLY, O_RDWR, O_CREAT, O_EXCL = 0o1, 0o2, 0o100, 0o200
O_CLOEXEC, O_DIRECTORY, O_TMPFILE = 0o2000000, 0o200000, 0o20200000

# Listed out of completion order on purpose: the report sorts.
OPENS = [
    # cat opens /etc/passwd O_CLOEXEC; completes at 1.000010 s: the first event.
    open_row(ts_ns=START_NS + S, lat_ns=10 * US, flags=O_CLOEXEC),
    # make (tgid 1001, thread 1002) creates tmp.txt 0664.
    open_row(
        ts_ns=START_NS + S + 290 * US,
        tgid=1001,
        tid=1002,
        uid=1000,
        comm="make",
        path="tmp.txt",
        ret=4,
        flags=O_WRONLY | O_CREAT | O_EXCL,
        mode=0o664,
    ),
    # run fails on /dev/tty with ENXIO (6); entered first, completes third (long latency).
    open_row(
        ts_ns=START_NS + S + 100 * US,
        lat_ns=2 * MS,
        tgid=18372,
        tid=18372,
        uid=1000,
        comm="run",
        path="/dev/tty",
        ret=-6,
        flags=O_RDWR,
    ),
    # cat: ENOENT, 2.5 s in.
    open_row(ts_ns=START_NS + 2 * S + 500 * MS, path="/nonexistent", ret=-2),
    # Two opens completing at the same ns: ordered by tid (1003 before 1004).
    open_row(
        ts_ns=START_NS + 3 * S,
        lat_ns=50 * US,
        tgid=1001,
        tid=1004,
        uid=1000,
        comm="make",
        path="b.o",
        ret=5,
    ),
    open_row(
        ts_ns=START_NS + 3 * S + 40 * US,
        lat_ns=10 * US,
        tgid=1001,
        tid=1003,
        uid=1000,
        comm="make",
        path="a.o",
        ret=6,
    ),
    # O_TMPFILE with a mode; O_DIRECTORY alone (one O_TMPFILE bit) with mode 0 is `n/a`.
    open_row(
        ts_ns=START_NS + 3 * S + 250 * MS,
        tgid=4242,
        tid=4242,
        comm="python3",
        path="/tmp",
        ret=7,
        flags=O_TMPFILE | O_RDWR,
        mode=0o600,
    ),
    open_row(
        ts_ns=START_NS + 3 * S + 500 * MS,
        tgid=4242,
        tid=4242,
        comm="python3",
        path="/usr/lib",
        ret=8,
        flags=O_DIRECTORY | O_CLOEXEC,
    ),
    # O_CREAT with mode 0 still shows 0000.
    open_row(
        ts_ns=START_NS + 4 * S,
        tgid=4242,
        tid=4242,
        comm="python3",
        path="/tmp/x",
        ret=9,
        flags=O_CREAT | O_WRONLY,
        mode=0,
    ),
    # Raw bytes that are not UTF-8, and a comm at its 15-character maximum.
    open_row(
        ts_ns=START_NS + 5 * S, tgid=77, tid=77, comm=b"caf\xe9", path=b"/tmp/\xff\xfe", ret=3
    ),
    open_row(
        ts_ns=START_NS + 6 * S,
        tgid=123456,
        tid=123457,
        uid=65534,
        comm="systemd-journal",
        path="/run/log/journal/x.journal",
        ret=-13,
        flags=O_RDWR | O_CREAT,
        mode=0o640,
    ),
]


def report(**flags: object) -> bytes:
    """opensnoop's text through the report contract: the registry's declaration run on
    a trace file of OPENS, rendered as the CLI renders it."""
    return contract_text("opensnoop", OPENS, **flags)


def header(**flags: object) -> str:
    return report(**flags).split(b"\n", 1)[0].decode()


# Exact header strings from bcc-formats.md §5.2 (BCC v0.37).
@pytest.mark.parametrize(
    "flags, expected",
    [
        ({}, "PID    COMM               FD ERR PATH"),
        ({"timestamp": True}, "TIME(s)       PID    COMM               FD ERR PATH"),
        ({"print_uid": True}, "UID   PID    COMM               FD ERR PATH"),
        ({"tid": 1002}, "TID    COMM               FD ERR PATH"),
        ({"extended_fields": True}, "PID    COMM               FD ERR FLAGS    MODE PATH"),
        (
            {"timestamp": True, "print_uid": True, "extended_fields": True},
            "TIME(s)       UID   PID    COMM               FD ERR FLAGS    MODE PATH",
        ),
    ],
)
def test_headers_match_bcc(flags: dict, expected: str) -> None:
    assert header(**flags) == expected


GOLDENS = {
    "opensnoop.txt": {},
    "opensnoop-T.txt": {"timestamp": True},
    "opensnoop-U.txt": {"print_uid": True},
    "opensnoop-e.txt": {"extended_fields": True},
    "opensnoop-T-U-e.txt": {"timestamp": True, "print_uid": True, "extended_fields": True},
    "opensnoop-x.txt": {"failed": True},
    # -T counts from the first event received, which -x then hides.
    "opensnoop-T-x.txt": {"timestamp": True, "failed": True},
    "opensnoop-p1001.txt": {"pid": 1001},
    # -T from the first event of the pid: -p is filtered in the kernel.
    "opensnoop-T-p1001.txt": {"timestamp": True, "pid": 1001},
    # -t wins over -p and changes the first column.
    "opensnoop-t1002-p1000.txt": {"tid": 1002, "pid": 1000},
    "opensnoop-u1000.txt": {"uid": 1000},
    "opensnoop-n-ma.txt": {"name": "ma"},
    "opensnoop-T-n-ma.txt": {"timestamp": True, "name": "ma"},
    "opensnoop-d3.txt": {"duration": 3},
    "opensnoop-e-f-O_CREAT.txt": {"extended_fields": True, "flag_filter": ("O_CREAT",)},
    "opensnoop-e-f-O_WRONLY-f-O_TMPFILE.txt": {
        "extended_fields": True,
        "flag_filter": ("O_WRONLY", "O_TMPFILE"),
    },
    "opensnoop-f-O_RDONLY.txt": {"flag_filter": ("O_RDONLY",)},
}


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_golden(name: str, golden) -> None:
    golden(name, report(**GOLDENS[name]))


def test_row_format() -> None:
    lines = report(extended_fields=True).split(b"\n")
    assert lines[1] == b"1000   cat                 3   0 02000000 n/a  /etc/passwd"
    assert lines[2] == b"1001   make                4   0 00000301 0664 tmp.txt"
    assert lines[3] == b"18372  run                -1   6 00000002 n/a  /dev/tty"
    assert lines[-1] == b""


def test_order_is_completion_then_tid() -> None:
    t = opensnoop(table(OPENS), Options(), start_ns=START_NS)
    paths = t["path"].to_pylist()
    assert paths[:5] == [b"/etc/passwd", b"tmp.txt", b"/dev/tty", b"/nonexistent", b"a.o"]
    assert paths[5] == b"b.o"


def test_timestamp_is_whole_microseconds_from_first() -> None:
    t = opensnoop(table(OPENS), Options(timestamp=True), start_ns=START_NS)
    times = t["time_s"].to_pylist()
    assert times[0] == 0.0
    assert times[1] == float(290) / 1000000  # BCC's float(delta_us) / 1000000
    assert b"%-14.9f" % times[1] == b"0.000290000   "


def test_extended_mode_na_rules() -> None:
    t = opensnoop(table(OPENS), Options(extended_fields=True), start_ns=START_NS)
    modes = dict(zip(t["path"].to_pylist(), t["mode"].to_pylist()))
    assert modes[b"/etc/passwd"] is None  # mode 0, no O_CREAT/O_TMPFILE
    assert modes[b"/tmp"] == 0o600  # O_TMPFILE
    assert modes[b"/usr/lib"] is None  # O_DIRECTORY is only part of O_TMPFILE
    assert modes[b"/tmp/x"] == 0  # O_CREAT: printed 0000


def test_columns_are_documented() -> None:
    t = opensnoop(
        table(OPENS),
        Options(timestamp=True, print_uid=True, extended_fields=True),
        start_ns=START_NS,
    )
    assert t.column_names == [
        "time_s", "uid", "pid", "comm", "fd", "err", "flags", "mode", "path", "end_ns"
    ]  # fmt: skip
    assert all(f.metadata and f.metadata[b"doc"] for f in t.schema)


def test_flag_filter_any_bit_and_rdonly_matches_nothing() -> None:
    def paths(*names: str) -> list[bytes]:
        t = opensnoop(table(OPENS), Options(flag_filter=names), start_ns=START_NS)
        return t["path"].to_pylist()

    assert paths("O_RDONLY") == []
    assert paths("O_CREAT") == [b"tmp.txt", b"/tmp/x", b"/run/log/journal/x.journal"]
    assert paths("O_EXCL", "O_TMPFILE") == [b"tmp.txt", b"/tmp", b"/usr/lib"]


@pytest.mark.parametrize("bad", ["O_BOGUS", "CREAT", "o_creat", ""])
def test_bad_flag(bad: str) -> None:
    with pytest.raises(UsageError, match=f"^Bad flag: {bad};"):
        flag_mask((bad,))


@pytest.mark.skipif(
    sys.platform != "linux" or os.uname().machine != "x86_64",
    reason="the O_* table is Linux x86_64's",
)
def test_flag_table_matches_os_on_linux_x86_64() -> None:
    assert O_FLAGS == {n: getattr(os, n) for n in dir(os) if n.startswith("O_")}


def test_name_is_a_bytes_substring() -> None:
    t = opensnoop(table(OPENS), Options(name="af"), start_ns=START_NS)
    assert t["comm"].to_pylist() == [b"caf\xe9"]
    t = opensnoop(table(OPENS), Options(name=b"\xe9"), start_ns=START_NS)
    assert t["comm"].to_pylist() == [b"caf\xe9"]
    t = opensnoop(table(OPENS), Options(name="."), start_ns=START_NS)  # not a regex
    assert t.num_rows == 0


def test_duration_window_uses_completion_time() -> None:
    rows = [
        open_row(ts_ns=START_NS + S - 1 * US, lat_ns=2 * US, path="a"),  # done at 1 s + 1 us
        open_row(ts_ns=START_NS + S - 1 * US, lat_ns=1 * US, path="b"),  # done at 1 s
        open_row(ts_ns=START_NS + S - 2 * US, lat_ns=1 * US, path="c"),
    ]
    t = opensnoop(table(rows), Options(duration=1), start_ns=START_NS)
    assert t["path"].to_pylist() == [b"c"]


def test_empty() -> None:
    out = io.BytesIO()
    write_text(opensnoop(table([]), Options(timestamp=True), start_ns=START_NS), COLUMNS, out)
    assert out.getvalue() == b"TIME(s)       PID    COMM               FD ERR PATH\n"
