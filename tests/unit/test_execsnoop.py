"""execsnoop: synthetic execs/forks + flags -> BCC v0.37 text (goldens in tests/golden/)."""

from __future__ import annotations

import pytest

from bpfcap.analyze.execsnoop import Options, execsnoop
from bpfcap.formats.errors import UsageError
from bpfcap.tests.builders import (
    CLOCK,
    MS,
    PROCESSES,
    START_NS,
    S,
    exec_row,
    fork_row,
    table,
)
from bpfcap.tests.contract import contract_text

EXECS = [
    # bash (1000) forked 2000 at 0.5 s, which execs ls -l: PPID from the fork row.
    exec_row(),
    # make (1001, in the snapshot with ppid 1000 = bash): PPID and PCOMM from the snapshot.
    exec_row(
        ts_ns=START_NS + 2 * S,
        tgid=1001,
        tid=1001,
        uid=1000,
        cpu=3,
        comm="cc",
        filename="/usr/bin/cc",
        args=["-c", "main.c"],
    ),
    # A failed exec (ENOENT) of a forked make child, then the retry that works.
    exec_row(
        ts_ns=START_NS + 3 * S,
        tgid=2001,
        tid=2001,
        comm="make",
        ret=-2,
        filename="/usr/local/bin/gcc",
        args=["-O2"],
    ),
    exec_row(
        ts_ns=START_NS + 3 * S + 1 * MS,
        tgid=2001,
        tid=2001,
        comm="gcc",
        filename="/usr/bin/gcc",
        args=["-O2"],
    ),
    # Unknown parent: not forked during the recording and not in the snapshot.
    exec_row(
        ts_ns=START_NS + 4 * S,
        tgid=3000,
        tid=3000,
        uid=0,
        cpu=0,
        comm="cron",
        filename="/usr/sbin/cron",
        args=[],
    ),
    # In the snapshot (pid 500), whose parent (1) is in it too; uid 0.
    exec_row(
        ts_ns=START_NS + 5 * S,
        tgid=500,
        tid=500,
        uid=0,
        comm="sshd",
        filename="/usr/sbin/sshd",
        args=["-D"],
    ),
    # Embedded quotes, a newline, and raw non-UTF-8 bytes.
    exec_row(
        ts_ns=START_NS + 6 * S,
        tgid=2002,
        tid=2002,
        comm="sh",
        filename="/bin/sh",
        args=["-c", 'echo "hi there"', "a\nb", b"\xff"],
    ),
    # Entered before the sh exec, completes after it (and has a long latency).
    exec_row(
        ts_ns=START_NS + 6 * S - 5 * MS,
        lat_ns=10 * MS,
        tgid=2003,
        tid=2003,
        comm=b"caf\xe9",
        filename=b"./caf\xe9",
        args=[],
    ),
]
FORKS = [
    fork_row(),  # bash 1000 -> 2000 at 0.5 s
    fork_row(ts_ns=START_NS + 2 * S + 500 * MS, tgid=1001, comm="make", child_pid=2001),
    fork_row(ts_ns=START_NS + 5 * S, tgid=1000, comm="bash", child_pid=2002),
    fork_row(ts_ns=START_NS + 5 * S, tgid=1000, comm="bash", child_pid=2003),
    # pid 2000 reused after its exec, by another parent: does not apply to the exec above.
    fork_row(ts_ns=START_NS + 10 * S, tgid=500, comm="sshd", child_pid=2000),
]


def run(execs: list | None = None, forks: list | None = None, **flags: object):
    return execsnoop(
        table(EXECS if execs is None else execs),
        table(FORKS if forks is None else forks),
        Options(**flags),
        start_ns=START_NS,
        clock=CLOCK,
        processes=PROCESSES,
    )


def report(execs: list | None = None, **flags: object) -> bytes:
    """execsnoop's text through the report contract: the registry's declaration run on
    a trace file of the execs and FORKS, rendered as the CLI renders it."""
    return contract_text("execsnoop", (EXECS if execs is None else execs) + FORKS, **flags)


# Exact header strings from bcc-formats.md §4.2 (BCC v0.37: COMM, not v0.26's PCOMM).
@pytest.mark.parametrize(
    "flags, expected",
    [
        ({}, "COMM             PID     PPID    RET ARGS"),
        (
            {"time": True, "timestamp": True},
            "TIME     TIME(s) COMM             PID     PPID    RET ARGS",
        ),
        ({"print_uid": True}, "UID   COMM             PID     PPID    RET ARGS"),
        (
            {
                "time": True,
                "timestamp": True,
                "print_uid": True,
                "print_pcomm": True,
                "print_cpu": True,
            },
            "TIME     TIME(s) UID   COMM             PID     PCOMM            PPID    CPU  RET"
            " ARGS",
        ),
    ],
)
def test_headers_match_bcc(flags: dict, expected: str) -> None:
    assert report(**flags).split(b"\n", 1)[0].decode() == expected


GOLDENS = {
    "execsnoop.txt": {},
    "execsnoop-x.txt": {"fails": True},
    "execsnoop-T-t-U-M-C-x.txt": {
        "time": True,
        "timestamp": True,
        "print_uid": True,
        "print_pcomm": True,
        "print_cpu": True,
        "fails": True,
    },
    "execsnoop-q.txt": {"quote": True},
    "execsnoop-u0.txt": {"uid": 0},
    "execsnoop-P1000-M.txt": {"ppid": 1000, "print_pcomm": True},
    "execsnoop-n-regex.txt": {"name": "^(c|gc)"},
    "execsnoop-l-regex-q.txt": {"line": 'echo "hi', "quote": True},
}


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_golden(name: str, golden) -> None:
    golden(name, report(**GOLDENS[name]))


def test_row_format() -> None:
    lines = report().split(b"\n")
    assert lines[1] == b"ls               2000    1000      0 /bin/ls -l"
    assert lines[2] == b"cc               1001    1000      0 /usr/bin/cc -c main.c"


def test_parent_from_fork_then_snapshot_then_unknown() -> None:
    t = run(fails=True, print_pcomm=True)
    parents = {
        pid: (ppid, pcomm)
        for pid, ppid, pcomm in zip(
            t["pid"].to_pylist(), t["ppid"].to_pylist(), t["pcomm"].to_pylist()
        )
    }
    assert parents[2000] == (1000, b"bash")  # fork row (not the later reuse of 2000)
    assert parents[2001] == (1001, b"make")  # fork row
    assert parents[1001] == (1000, b"bash")  # snapshot
    assert parents[500] == (1, b"systemd")  # snapshot
    assert parents[3000] == (None, None)  # `?`


def test_parent_known_but_not_in_snapshot() -> None:
    t = run([exec_row(tgid=7)], [fork_row(tgid=6, comm="init", child_pid=7)], print_pcomm=True)
    assert (t["ppid"].to_pylist(), t["pcomm"].to_pylist()) == ([6], [b"init"])
    t = run([exec_row(tgid=1)], [], print_pcomm=True)  # snapshot ppid 0 means unknown
    assert (t["ppid"].to_pylist(), t["pcomm"].to_pylist()) == ([None], [None])


def test_failed_hidden_unless_x() -> None:
    assert -2 not in run()["ret"].to_pylist()
    assert run(fails=True)["ret"].to_pylist().count(-2) == 1


def test_wall_clock_uses_recorded_offset() -> None:
    # START_NS is 14:08:20 UTC; the host was at UTC+1. ls completes 1.0001 s later.
    t = run(time=True, timestamp=True)
    assert t["time"][0].as_py() == "15:08:21"
    assert b"%-8.3f" % t["time_s"][0].as_py() == b"1.000   "
    west = dict(CLOCK, utc_offset_s=-15 * 3600)  # wraps to the previous day
    t = execsnoop(
        table(EXECS[:1]), table([]), Options(time=True), start_ns=START_NS, clock=west, processes=[]
    )
    assert t["time"].to_pylist() == ["23:08:21"]


def test_args_quote_and_newline_escapes() -> None:
    plain = run()["args"].to_pylist()
    assert b'/bin/sh -c echo "hi there" a\\nb \xff' in plain
    quoted = run(quote=True)["args"].to_pylist()
    assert b'"/bin/sh" "-c" "echo \\"hi there\\"" "a\\nb" "\xff"' in quoted


def test_line_regex_matches_raw_args_before_quoting() -> None:
    assert run(line='"hi there"')["pid"].to_pylist() == [2002]  # raw text has the quotes
    assert run(line=r'\\"')["pid"].to_pylist() == []  # the escaping comes after
    assert run(line="a\nb")["pid"].to_pylist() == [2002]  # before newline escaping


def test_line_regex_sees_the_ellipsis() -> None:
    execs = [exec_row(args=["1", "2"]), exec_row(tgid=2001, args=["1"])]
    assert run(execs, line=r"\.\.\.", max_args=3)["pid"].to_pylist() == [2000]


# argv after argv[0], as stored (up to 20) and whether it went on.
ARGS_CASES = {
    "none": ([], False),
    "one": (["a1"], False),
    "two": (["a1", "a2"], False),
    "nineteen": ([f"a{i}" for i in range(1, 20)], False),
    "twenty": ([f"a{i}" for i in range(1, 21)], False),
    "twenty+more": ([f"a{i}" for i in range(1, 21)], True),
}
ARGS_EXECS = [
    exec_row(
        ts_ns=START_NS + (i + 1) * S,
        tgid=3000 + i,
        comm=name,
        filename="/bin/x",
        args=args,
        args_truncated=cut,
    )
    for i, (name, (args, cut)) in enumerate(ARGS_CASES.items())
]


@pytest.mark.parametrize("max_args", [1, 3, 20, 21, 25])
def test_golden_max_args(max_args: int, golden) -> None:
    golden(f"execsnoop-max-args-{max_args}.txt", report(ARGS_EXECS, max_args=max_args))


@pytest.mark.parametrize(
    "max_args, case, shown, dots",
    [
        (1, "none", 0, True),  # MAXARG 1: no slot, always `...`
        (3, "one", 1, False),
        (3, "two", 2, True),  # argc == MAXARG: BCC prints `...` though nothing was cut
        (20, "nineteen", 19, True),
        (20, "twenty", 19, True),
        (21, "nineteen", 19, False),
        (21, "twenty", 20, True),
        (21, "twenty+more", 20, True),
        (25, "twenty", 20, False),  # beyond what the trace keeps: `...` iff argv went on
        (25, "twenty+more", 20, True),
    ],
)
def test_max_args_rule(max_args: int, case: str, shown: int, dots: bool) -> None:
    t = run(ARGS_EXECS, max_args=max_args)
    args = dict(zip(t["comm"].to_pylist(), t["args"].to_pylist()))[case.encode()]
    tokens = args.split(b" ")
    assert tokens[0] == b"/bin/x"
    assert tokens[1:] == [f"a{i}".encode() for i in range(1, shown + 1)] + [b"..."] * dots


def test_bad_options() -> None:
    with pytest.raises(UsageError, match="bad regular expression"):
        run(name="(")
    with pytest.raises(UsageError, match="--max-args"):
        run(max_args=0)


def test_columns_are_documented() -> None:
    t = run(time=True, timestamp=True, print_uid=True, print_pcomm=True, print_cpu=True)
    assert t.column_names == [
        "time",
        "time_s",
        "uid",
        "comm",
        "pid",
        "pcomm",
        "ppid",
        "cpu",
        "ret",
        "args",
    ]
    assert all(f.metadata and f.metadata[b"doc"] for f in t.schema)


def test_empty() -> None:
    assert report([]) == b"COMM             PID     PPID    RET ARGS\n"
