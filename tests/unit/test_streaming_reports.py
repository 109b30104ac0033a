"""The streaming reports (execsnoop, killsnoop, biosnoop, biolatency, runqlat) give what the
whole-table ones give, whatever the chunks a trace yields and however its rows are
shuffled within the reorder slack; and what they hold stays bounded on long inputs."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from bpfcap.analyze import biolatency, biosnoop, execsnoop, killsnoop, runqlat
from bpfcap.analyze.aggregate import HistWindow, log2_windows, window_plan
from bpfcap.analyze.common import completion_ns, parents, sort_by_completion
from bpfcap.formats.events import BY_NAME, SCHEMA
from bpfcap.tests.builders import (
    CLOCK,
    MS,
    PROCESSES,
    START_NS,
    US,
    VDA,
    XVDA1,
    S,
    bio_row,
    exec_row,
    fork_row,
    runq_row,
    signal_row,
    table,
)

SLACK = 2 * S
DISKS = {VDA: "vda", XVDA1: "xvda1"}
SEEDS = range(20)


# -- inputs as a trace yields them ----------------------------------------------------


def drained(t: pa.Table, rng: random.Random) -> pa.Table:
    """The rows of `t` in an order a recorder may write them: each drained at some time
    within the slack after it completed (coarsely, so that many ties are shuffled)."""
    end = completion_ns(t).to_pylist()
    quantum = SLACK // 4
    drain = [(e + rng.randrange(SLACK - quantum)) // quantum for e in end]
    order = sorted(range(len(end)), key=lambda i: (drain[i], rng.random()))
    return t.take(pa.array(order, pa.int64()))


def cut(t: pa.Table, rng: random.Random) -> list[pa.Table]:
    """`t` as chunks cut at random points (some empty)."""
    points = sorted(rng.randrange(t.num_rows + 1) for _ in range(rng.randrange(12)))
    bounds = [0, *points, t.num_rows]
    return [t.slice(a, b - a) for a, b in zip(bounds, bounds[1:])]


def kind_table(rows: list[dict], kind: str) -> pa.Table:
    """Rows as Trace.read gives them: the kind's own columns."""
    return table(rows).select([c.name for c in BY_NAME[kind].columns])


def random_execs(rng: random.Random, n: int, pids: int) -> list[dict]:
    rows = []
    for _ in range(n):
        pid = rng.randrange(1, pids)
        lat = rng.choice([100 * US, rng.randrange(5 * MS), rng.randrange(6 * S)])
        known = rng.random() < 0.3
        rows.append(
            exec_row(
                ts_ns=START_NS + rng.randrange(20 * S),
                lat_ns=lat,
                tgid=pid,
                tid=pid + rng.randrange(2),
                uid=rng.choice([0, 1000]),
                cpu=rng.randrange(4),
                comm=rng.choice([b"ls", b"cc", b"make", b"caf\xe9"]),
                ret=rng.choice([0, 0, 0, -2]),
                ppid=rng.randrange(0, 6) if known else None,
                pcomm=b"p" if known else None,
                filename=rng.choice([b"/bin/sh", b"./x", None]),
                args=[b"a%d" % i for i in range(rng.randrange(24))],
                args_truncated=rng.random() < 0.1,
            )
        )
    return rows


def random_forks(rng: random.Random, n: int, pids: int) -> list[dict]:
    # Whole seconds often: forks of one child at the same time (read order decides).
    return [
        fork_row(
            ts_ns=START_NS + rng.choice([rng.randrange(20 * S), rng.randrange(20) * S]),
            tgid=rng.randrange(0, 6),
            comm=rng.choice([b"bash", b"make", b"sshd"]),
            child_pid=rng.randrange(1, pids),
        )
        for _ in range(n)
    ]


# -- execsnoop -------------------------------------------------------------------------

EXEC_OPTIONS = [
    {},
    {"fails": True, "print_pcomm": True, "time": True, "timestamp": True, "print_cpu": True},
    {"fails": True, "ppid": 3},
    {"line": "a1", "max_args": 3, "quote": True, "print_uid": True},
    {"name": "^c", "uid": 1000, "fails": True},
]


def exec_stream(execs: list[pa.Table], forks: Callable | pa.Table, **flags) -> pa.Table:
    parts = list(
        execsnoop.execsnoop_stream(
            execs,
            forks,
            execsnoop.Options(**flags),
            start_ns=START_NS,
            clock=CLOCK,
            processes=PROCESSES,
        )
    )
    for p in parts:
        assert p.num_rows <= execsnoop.ROWS
        assert p.column_names[-2:] == ["argv", "end_ns"]
        assert p.schema.field("end_ns").type == pa.uint64()
    return pa.concat_tables(parts)


def exec_whole(execs: pa.Table, forks: pa.Table, **flags) -> pa.Table:
    return execsnoop.execsnoop(
        execs,
        forks,
        execsnoop.Options(**flags),
        start_ns=START_NS,
        clock=CLOCK,
        processes=PROCESSES,
    )


def exec_parents(execs: pa.Table, forks: pa.Table) -> list[tuple]:
    """(ppid, pcomm) of every exec in completion order, with parents() on whole tables
    (where the row has none read at the exec)."""
    t = sort_by_completion(execs)
    ppid, pcomm = parents(t["tgid"], t["ts_ns"], forks, PROCESSES)
    at_exec = t["ppid"].cast(pa.int64())
    ppid = pc.if_else(pc.is_valid(at_exec), at_exec, ppid)
    pcomm = pc.if_else(pc.is_valid(at_exec), t["pcomm"], pcomm)
    return list(zip(ppid.to_pylist(), pcomm.to_pylist()))


@pytest.mark.parametrize("seed", SEEDS)
def test_execsnoop_stream_is_the_whole_report(seed: int) -> None:
    rng = random.Random(seed)
    pids = rng.choice([3, 10, 60])
    # As recorded: both reports read rows in that order (ties are in the order read).
    execs = drained(kind_table(random_execs(rng, rng.randrange(250), pids), "exec"), rng)
    forks = drained(kind_table(random_forks(rng, rng.randrange(250), pids), "fork"), rng)
    flags = EXEC_OPTIONS[seed % len(EXEC_OPTIONS)]
    want = exec_whole(execs, forks, **flags)
    fork_chunks = cut(forks, rng)
    got = exec_stream(cut(execs, rng), lambda: iter(fork_chunks), **flags)
    assert got.drop_columns(["argv", "end_ns"]).to_pylist() == want.to_pylist()
    assert got.drop_columns(["argv", "end_ns"]).schema == want.schema
    # Parents as parents() finds them from every fork at once.
    every = exec_stream(cut(execs, rng), lambda: iter(fork_chunks), fails=True, print_pcomm=True)
    found = list(zip(every["ppid"].to_pylist(), every["pcomm"].to_pylist()))
    assert found == exec_parents(execs, forks)


@pytest.mark.parametrize("seed", range(12))
def test_execsnoop_parents_when_merged_forks_must_be_read_again(seed, monkeypatch) -> None:
    """Merging every fork as soon as possible and no margin: an exec of a long latency
    finds a newer fork of its pid merged (one made while it ran: no real trace has it),
    and gets its parent from the forks read again."""
    monkeypatch.setattr(execsnoop, "FORK_MARGIN_NS", 0)
    monkeypatch.setattr(execsnoop, "FORK_MERGE_ROWS", 1)
    rng = random.Random(seed)
    execs = drained(kind_table(random_execs(rng, 200, 5), "exec"), rng)
    forks = drained(kind_table(random_forks(rng, 300, 5), "fork"), rng)
    fork_chunks = cut(forks, rng)
    read = []

    def again() -> Iterator[pa.Table]:
        read.append(1)
        return iter(fork_chunks)

    got = exec_stream(cut(execs, rng), again, fails=True, print_pcomm=True)
    assert list(zip(got["ppid"].to_pylist(), got["pcomm"].to_pylist())) == exec_parents(
        execs, forks
    )
    assert got.drop_columns(["argv", "end_ns"]).to_pylist() == (
        exec_whole(execs, forks, fails=True, print_pcomm=True).to_pylist()
    )
    assert len(read) >= 1


def test_execsnoop_forks_as_a_table_in_any_order() -> None:
    rng = random.Random(5)
    execs = kind_table(random_execs(rng, 300, 8), "exec")
    forks = kind_table(random_forks(rng, 300, 8), "fork")
    shuffled = forks.take(pa.array(rng.sample(range(300), 300)))
    got = exec_whole(execs, shuffled, fails=True, print_pcomm=True)
    assert list(zip(got["ppid"].to_pylist(), got["pcomm"].to_pylist())) == exec_parents(
        execs, shuffled
    )


def test_execsnoop_old_traces_without_ppid_columns() -> None:
    rng = random.Random(3)
    execs = drained(kind_table(random_execs(rng, 200, 8), "exec"), rng)
    forks = kind_table(random_forks(rng, 200, 8), "fork")
    old = execs.drop_columns(["ppid", "pcomm"])
    got = exec_stream(cut(old, rng), forks, fails=True, print_pcomm=True)
    plain = execs.set_column(
        execs.schema.get_field_index("ppid"), "ppid", pa.nulls(200, pa.uint32())
    )
    assert list(zip(got["ppid"].to_pylist(), got["pcomm"].to_pylist())) == exec_parents(
        plain, forks
    )


def test_execsnoop_forks_read_only_when_a_parent_is_missing() -> None:
    execs = kind_table([exec_row(ppid=1000, pcomm=b"bash")], "exec")

    def forks() -> Iterator[pa.Table]:
        raise AssertionError("forks read")

    assert exec_stream([execs], forks)["ppid"].to_pylist() == [1000]


def test_execsnoop_argv_and_end_ns() -> None:
    rows = [
        exec_row(args=[f"a{i}" for i in range(20)], args_truncated=True),
        exec_row(ts_ns=START_NS + 2 * S, filename=None, args=None),
        exec_row(ts_ns=START_NS + 3 * S, args=['say "hi"', "a\nb"]),
    ]
    got = exec_stream([kind_table(rows, "exec")], lambda: iter([]), max_args=3, quote=True)
    assert got["argv"].to_pylist() == [
        [b"/bin/ls", *(b"a%d" % i for i in range(20))],
        [b""],
        [b"/bin/ls", b'say "hi"', b"a\nb"],
    ]
    # args as BCC shows them: cut at --max-args, `...`, quoted (-q), newlines escaped.
    assert got["args"].to_pylist()[2] == b'"/bin/ls" "say \\"hi\\"" "a\\nb" "..."'
    assert got["end_ns"].to_pylist() == [
        START_NS + S + 100 * US,
        START_NS + 2 * S + 100 * US,
        START_NS + 3 * S + 100 * US,
    ]


def test_execsnoop_empty_is_one_table_with_the_columns() -> None:
    empty = kind_table([], "exec")
    parts = list(
        execsnoop.execsnoop_stream(
            [empty, empty],
            lambda: iter([]),
            execsnoop.Options(print_pcomm=True),
            start_ns=START_NS,
            clock=CLOCK,
            processes=PROCESSES,
        )
    )
    full = exec_stream([kind_table([exec_row()], "exec")], lambda: iter([]), print_pcomm=True)
    assert len(parts) == 1 and parts[0].num_rows == 0
    assert parts[0].schema == full.schema


def test_execsnoop_bad_options_raise_before_reading() -> None:
    from bpfcap.formats.errors import UsageError

    with pytest.raises(UsageError):
        execsnoop.execsnoop_stream(
            iter(()), lambda: iter(()), execsnoop.Options(name="("), **_EXEC_META
        )


_EXEC_META = {"start_ns": START_NS, "clock": CLOCK, "processes": PROCESSES}


# -- killsnoop -------------------------------------------------------------------------

KILL_OPTIONS = [
    {},
    {"all_calls": True},
    {"failed": True, "signals": (1, 9)},
    {"pid": 500, "all_calls": True},
    {"tpid": 42},
]


def random_signals(rng: random.Random, n: int) -> pa.Table:
    rows = [
        signal_row(
            ts_ns=START_NS + rng.randrange(20 * S),
            lat_ns=rng.randrange(2 * MS),
            tgid=rng.choice([500, 13967]),
            tid=rng.choice([500, 501, 13967]),
            sig=rng.choice([1, 9, 15]),
            target=rng.choice([42, 1024, -1234]),
            ret=rng.choice([0, -3]),
            syscall=rng.choice(["kill", "tkill", "tgkill"]),
        )
        for _ in range(n)
    ]
    return kind_table(rows, "signal")


@pytest.mark.parametrize("seed", SEEDS)
def test_killsnoop_stream_is_the_whole_report(seed: int) -> None:
    rng = random.Random(seed)
    signals = drained(random_signals(rng, rng.randrange(300)), rng)
    options = killsnoop.Options(**KILL_OPTIONS[seed % len(KILL_OPTIONS)])
    want = killsnoop.killsnoop(signals, options, clock=CLOCK)
    parts = list(killsnoop.killsnoop_stream(cut(signals, rng), options, clock=CLOCK))
    got = pa.concat_tables(parts)
    assert got.column_names[-1] == "end_ns" and got.schema.field("end_ns").type == pa.uint64()
    assert got.drop_columns(["end_ns"]).to_pylist() == want.to_pylist()
    assert got.drop_columns(["end_ns"]).schema == want.schema
    assert pc.all(pc.greater_equal(got["end_ns"][1:], got["end_ns"][:-1])).as_py() in (True, None)
    assert len(parts) == 1 or all(p.num_rows for p in parts)


def test_killsnoop_empty_and_slices(monkeypatch) -> None:
    parts = list(killsnoop.killsnoop_stream([], killsnoop.Options(), clock=CLOCK))
    assert len(parts) == 1 and parts[0].num_rows == 0
    assert parts[0].column_names == ["time", "pid", "comm", "sig", "tpid", "result", "end_ns"]
    monkeypatch.setattr(killsnoop, "ROWS", 7)
    rng = random.Random(1)
    signals = random_signals(rng, 100)
    parts = list(
        killsnoop.killsnoop_stream([signals], killsnoop.Options(all_calls=True), clock=CLOCK)
    )
    assert max(p.num_rows for p in parts) == 7 and sum(p.num_rows for p in parts) == 100


# -- biosnoop --------------------------------------------------------------------------

BIO_OPTIONS = [
    {},
    {"pattern": True, "queue": True},
    {"pattern": True, "disk": "vda", "flushes": True},
    {"pattern": True, "flushes": True},
]


def random_bios(rng: random.Random, n: int) -> pa.Table:
    rows = []
    for _ in range(n):
        flush = rng.random() < 0.05
        rows.append(
            bio_row(
                ts_ns=START_NS + rng.randrange(20 * S),
                lat_ns=rng.randrange(50 * MS),
                queue_ns=rng.choice([0, rng.randrange(MS)]),
                tgid=rng.choice([0, 1950]),
                dev=rng.choice([VDA, XVDA1]),
                sector=rng.randrange(32) * 8,
                bytes=0 if flush else rng.choice([512, 4096]),
                rwbs=b"FF" if flush else rng.choice([b"W", b"R", b"RA", b"FWS"]),
            )
        )
    return kind_table(rows, "bio")


def bcc_pattern(disk: list[str], sector: list[int], nbytes: list[int]) -> list[str]:
    """BCC's S/R/? over a whole listing: the row before on the same disk."""
    last: dict[str, int] = {}
    out = []
    for d, s, b in zip(disk, sector, nbytes):
        out.append("?" if d not in last else "S" if last[d] == s else "R")
        last[d] = s + b // 512
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_biosnoop_stream_is_the_whole_report(seed: int, monkeypatch) -> None:
    rng = random.Random(seed)
    bios = drained(random_bios(rng, rng.randrange(300)), rng)
    options = biosnoop.Options(**BIO_OPTIONS[seed % len(BIO_OPTIONS)])
    want = biosnoop.biosnoop(bios, options, disks=DISKS)
    # Small output tables: the pattern and TIME(s)'s zero carry from table to table.
    monkeypatch.setattr(biosnoop, "ROWS", rng.choice([1, 5, 64]))
    parts = list(biosnoop.biosnoop_stream(cut(bios, rng), options, disks=DISKS))
    assert all(p.num_rows <= biosnoop.ROWS for p in parts)
    got = pa.concat_tables(parts)
    assert got.column_names[-1] == "end_ns" and got.schema.field("end_ns").type == pa.uint64()
    assert got.drop_columns(["end_ns"]).to_pylist() == want.to_pylist()
    assert got.drop_columns(["end_ns"]).schema == want.schema
    if options.pattern:
        assert got["pattern"].to_pylist() == bcc_pattern(
            got["disk"].to_pylist(), got["sector"].to_pylist(), got["bytes"].to_pylist()
        )
    if got.num_rows:
        end_us = [e // 1000 for e in got["end_ns"].to_pylist()]
        assert got["time_s"].to_pylist() == [(e - end_us[0]) / 1e6 for e in end_us]


def test_biosnoop_pattern_past_64_bits() -> None:
    """A sector + size beyond 2**64 - 1 is no sector: the next I/O is random (as the
    Python integers of BCC compare)."""
    top = (1 << 64) - 8
    rows = [
        bio_row(sector=top, bytes=8192),
        bio_row(ts_ns=START_NS + 2 * S, sector=(top + 16) % (1 << 64)),
        bio_row(ts_ns=START_NS + 3 * S, sector=8, bytes=512),
        bio_row(ts_ns=START_NS + 4 * S, sector=9),
    ]
    got = biosnoop.biosnoop(kind_table(rows, "bio"), biosnoop.Options(pattern=True), disks=DISKS)
    assert got["pattern"].to_pylist() == ["?", "R", "R", "S"]


def test_biosnoop_empty_and_bad_disk() -> None:
    from bpfcap.formats.errors import UsageError

    parts = list(biosnoop.biosnoop_stream([], biosnoop.Options(pattern=True), disks=DISKS))
    assert len(parts) == 1 and parts[0].num_rows == 0 and parts[0].column_names[-1] == "end_ns"
    with pytest.raises(UsageError, match="no such disk"):
        biosnoop.biosnoop_stream([], biosnoop.Options(disk="sdz"), disks=DISKS)


# -- biolatency and runqlat: against log2_windows() over whole tables ------------------


def same_windows(got: list[HistWindow], want: list[HistWindow]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g.end_ns, g.total, g.count) == (w.end_ns, w.total, w.count)
        assert [k for k, _ in g.sections] == [k for k, _ in w.sections]
        for (_, a), (_, b) in zip(g.sections, w.sections):
            assert a.dtype == b.dtype and a.tolist() == b.tolist()


def biolatency_whole(bios: pa.Table, o: biolatency.Options, end_ns: int) -> list[HistWindow]:
    """biolatency's windows from whole tables (as before streaming)."""
    dev = biosnoop.disk_dev(o.disk, DISKS) if o.disk is not None else None
    t = biosnoop.keep_requests(bios, o.flushes, dev)
    if o.queued:
        t = t.filter(pc.greater(t["queue_ns"], 0))
        ns = pc.add(t["queue_ns"], t["lat_ns"])
    else:
        ns = t["lat_ns"]
    vals = pc.divide(ns, 1_000_000 if o.milliseconds else 1000).to_numpy().astype(np.int64)
    done = completion_ns(t).to_numpy().astype(np.int64)
    devs = t["dev"].to_numpy().astype(np.int64)
    length, n = window_plan(START_NS, end_ns, o.interval, o.count)
    hists = log2_windows(
        vals, done, devs if o.disks else None, start_ns=START_NS, length_ns=length, n=n
    )
    which = np.maximum(done - START_NS, 0) // length
    out = []
    for w, by_dev in enumerate(hists):
        named = sorted(by_dev.items(), key=lambda kv: (DISKS.get(kv[0], "?"), kv[0] or 0))
        sections = [(None if d is None else DISKS.get(d, "?"), h) for d, h in named]
        in_w = which == w
        end = min(START_NS + (w + 1) * length, end_ns)
        out.append(HistWindow(end, sections, int(vals[in_w].sum()), int(in_w.sum())))
    return out


LAT_OPTIONS = [
    {},
    {"disks": True, "queued": True, "interval": 3.0},
    {"milliseconds": True, "interval": 1.0, "count": 5, "disk": "xvda1"},
    {"disks": True, "flushes": True, "interval": 0.5},
]


@pytest.mark.parametrize("seed", SEEDS)
def test_biolatency_stream_is_the_whole_report(seed: int) -> None:
    rng = random.Random(seed)
    bios = random_bios(rng, rng.randrange(300))
    options = biolatency.Options(**LAT_OPTIONS[seed % len(LAT_OPTIONS)])
    end_ns = START_NS + rng.randrange(1, 30) * S
    want = biolatency_whole(bios, options, end_ns)
    kw = {"start_ns": START_NS, "end_ns": end_ns, "disks": DISKS}
    same_windows(biolatency.windows_stream(cut(drained(bios, rng), rng), options, **kw), want)
    same_windows(biolatency.windows(bios, options, **kw), want)


def runqlat_whole(waits: pa.Table, o: runqlat.Options, end_ns: int) -> list[HistWindow]:
    """runqlat's windows from whole tables (as before streaming)."""
    waits = waits.filter(pc.not_equal(waits["tid"], 0))
    tgid = runqlat.known_tgids(waits)
    keep = tgid == o.pid if o.pid is not None else np.ones(len(tgid), dtype=bool)
    t = waits.filter(pa.array(keep))
    vals = pc.divide(t["lat_ns"], 1_000_000 if o.milliseconds else 1000).to_numpy()
    ends = completion_ns(t).to_numpy().astype(np.int64)
    keys = tgid[keep] if o.pids else t["tid"].to_numpy().astype(np.int64) if o.tids else None
    length, n = window_plan(START_NS, end_ns, o.interval, o.count)
    hists = log2_windows(
        vals.astype(np.int64), ends, keys, start_ns=START_NS, length_ns=length, n=n
    )
    return [
        HistWindow(
            min(START_NS + (w + 1) * length, end_ns), sorted(h.items(), key=lambda kv: kv[0] or 0)
        )
        for w, h in enumerate(hists)
    ]


RUNQ_OPTIONS = [
    {},
    {"pids": True},
    {"tids": True, "pid": 101, "interval": 2.0},
    {"pid": 102},
    {"pids": True, "interval": 1.0, "count": 3, "milliseconds": True},
]


def random_waits(rng: random.Random, n: int) -> pa.Table:
    rows = []
    for _ in range(n):
        tid = rng.randrange(40)
        rows.append(
            runq_row(
                ts_ns=START_NS + rng.randrange(20 * S),
                lat_ns=rng.randrange(100 * MS),
                tid=tid,
                tgid=0 if rng.random() < 0.3 else 100 + tid // 4 + rng.randrange(2),
            )
        )
    return kind_table(rows, "runq")


@pytest.mark.parametrize("seed", SEEDS)
def test_runqlat_stream_is_the_whole_report(seed: int) -> None:
    rng = random.Random(seed)
    waits = drained(random_waits(rng, rng.randrange(300)), rng)
    options = runqlat.Options(**RUNQ_OPTIONS[seed % len(RUNQ_OPTIONS)])
    end_ns = START_NS + rng.randrange(1, 30) * S
    want = runqlat_whole(waits, options, end_ns)
    chunks = cut(waits, rng)
    passes = []

    def read() -> Iterator[pa.Table]:
        passes.append(1)
        return iter(chunks)

    got = runqlat.runqlat_stream(read, options, start_ns=START_NS, end_ns=end_ns)
    same_windows(got, want)
    same_windows(runqlat.runqlat(waits, options, start_ns=START_NS, end_ns=end_ns), want)
    assert len(passes) == (2 if options.pids or options.pid is not None else 1)


def test_thread_tgids_keep_the_last_known_one_across_merges() -> None:
    m = runqlat._LastByKey()
    rng = random.Random(2)
    want: dict[int, int] = {}
    for _ in range(40):
        keys = [rng.randrange(5000) for _ in range(rng.randrange(4000))]
        values = [rng.randrange(1 << 40) for _ in keys]
        m.update(np.array(keys, np.int64), np.array(values, np.int64))
        want.update(zip(keys, values))
    asked = np.arange(-2, 5002, dtype=np.int64)
    assert m.get(asked).tolist() == [want.get(k, k) for k in asked.tolist()]


# -- bounded memory --------------------------------------------------------------------

BIG = 2_000_000
CHUNK = 1 << 16
RATE_NS = 50 * US  # 20,000 rows a second: the slack holds 40,000


def synthetic(
    kind: str, rows: int = BIG, seed: int = 0, every_ns: int = RATE_NS
) -> Iterator[pa.Table]:
    """`rows` rows of `kind` as a recording writes them, made chunk by chunk (never all
    at once): one every `every_ns`, shuffled within blocks well inside the slack."""
    rng = np.random.default_rng(seed)
    names = [c.name for c in BY_NAME[kind].columns]
    comms = pa.array([b"bash", b"kworker/0:1", b"sshd"])

    def same(value: object, type_: pa.DataType) -> Callable:
        return lambda n, order: pa.repeat(pa.scalar(value, type_), n)

    columns: dict[str, Callable[[int, np.ndarray], pa.Array]] = {
        "ts_ns": lambda n, order: pa.array(START_NS + order * every_ns, pa.uint64()),
        "lat_ns": lambda n, order: pa.array(rng.integers(0, 40 * US, n), pa.uint64()),
        "tgid": lambda n, order: pa.array(1000 + order % 3000, pa.uint32()),
        "tid": lambda n, order: pa.array(1000 + order % 30000, pa.uint32()),
        "comm": lambda n, order: comms.take(pa.array(order % 3)),
        "ret": lambda n, order: pa.array(np.where(order % 7 == 0, -3, 0), pa.int64()),
        "syscall": same("kill", pa.string()),
        "sig": lambda n, order: pa.array(order % 16, pa.uint32()),
        "target": lambda n, order: pa.array(order % 100, pa.int32()),
        "dev": lambda n, order: pa.array(np.where(order % 2 == 0, VDA, XVDA1), pa.uint32()),
        "sector": lambda n, order: pa.array(order * 8, pa.uint64()),
        "bytes": same(4096, pa.uint32()),
        "queue_ns": lambda n, order: pa.array(rng.integers(0, 10 * US, n), pa.uint64()),
        "rwbs": same(b"W", pa.binary()),
        "child_pid": lambda n, order: pa.array(1 + order % 32768, pa.uint32()),
        "filename": same(b"/bin/true", pa.binary()),
        "args": same([b"-x"], pa.list_(pa.binary())),
        "args_truncated": same(False, pa.bool_()),
    }
    if kind == "runq":
        # Some rows of each thread without its tgid (the others have it).
        columns["tgid"] = lambda n, order: pa.array(
            np.where((order // 30000) % 5 == 0, 0, 1000 + order % 3000), pa.uint32()
        )
    for at in range(0, rows, CHUNK):
        n = min(CHUNK, rows - at)
        # Shuffled within blocks of 500 rows.
        order = at + np.argsort(np.arange(n) // 500 + rng.random(n))
        yield pa.table(
            {
                c: columns[c](n, order) if c in columns else pa.nulls(n, SCHEMA.field(c).type)
                for c in names
            }
        )


class Peak:
    """The most memory a run held: Python and numpy (tracemalloc) plus Arrow's pool
    (sampled at every chunk in and out: a chunk's own temporaries come and go). `warm`
    runs first, untraced (the imports and caches of a first run are not the run's)."""

    def __init__(self, warm: Callable[[], object]) -> None:
        warm()
        self.arrow = 0

    def __enter__(self) -> Peak:
        tracemalloc.start()
        self.base = pa.total_allocated_bytes()
        return self

    def sample(self) -> None:
        self.arrow = max(self.arrow, pa.total_allocated_bytes() - self.base)

    def watch(self, chunks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        for c in chunks:
            self.sample()
            yield c

    def drain(self, tables: Iterator[pa.Table]) -> int:
        rows = 0
        for t in tables:
            self.sample()
            rows += t.num_rows
        return rows

    def __exit__(self, *_: object) -> None:
        self.python = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


# 2M rows are 75 to 145 MB as Arrow tables: a report holds a few chunks of them.
BOUND = 48 << 20


def test_killsnoop_and_biosnoop_hold_a_bounded_window() -> None:
    def kill(chunks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        return killsnoop.killsnoop_stream(chunks, killsnoop.Options(), clock=CLOCK)

    with Peak(lambda: list(kill(synthetic("signal", 1000)))) as p:
        assert p.drain(kill(p.watch(synthetic("signal")))) == BIG
    assert p.arrow < BOUND and p.python < BOUND, (p.arrow, p.python)

    def bio(chunks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        options = biosnoop.Options(pattern=True, queue=True)
        return biosnoop.biosnoop_stream(chunks, options, disks=DISKS)

    with Peak(lambda: list(bio(synthetic("bio", 1000)))) as p:
        assert p.drain(bio(p.watch(synthetic("bio")))) == BIG
    assert p.arrow < BOUND and p.python < BOUND, (p.arrow, p.python)


def test_histograms_hold_their_counts_only() -> None:
    end_ns = START_NS + BIG * RATE_NS
    kw = {"start_ns": START_NS, "end_ns": end_ns}

    def lat(chunks: Iterator[pa.Table]) -> list[HistWindow]:
        options = biolatency.Options(disks=True, interval=1.0)
        return biolatency.windows_stream(chunks, options, disks=DISKS, **kw)

    with Peak(lambda: lat(synthetic("bio", 1000))) as p:
        wins = lat(p.watch(synthetic("bio")))
    assert sum(w.count for w in wins) == BIG and len(wins) == 100
    assert p.arrow < BOUND and p.python < BOUND, (p.arrow, p.python)

    def runq(read: Callable[[], Iterator[pa.Table]]) -> list[HistWindow]:
        return runqlat.runqlat_stream(read, runqlat.Options(pids=True), **kw)

    with Peak(lambda: runq(lambda: synthetic("runq", 1000))) as p:
        wins = runq(lambda: p.watch(synthetic("runq")))
    assert sum(int(h.sum()) for _, h in wins[0].sections) == BIG
    assert len(wins[0].sections) == 3000  # tgid 0 taken from the thread's other rows
    assert p.arrow < BOUND and p.python < BOUND, (p.arrow, p.python)


def test_execsnoop_holds_the_last_fork_per_pid_not_every_fork(monkeypatch) -> None:
    """2M forks in 100 s (pids reused over 32768) and 200k execs (from an older trace:
    no parent read at the exec) whose parents the forks give: what is held is a few
    seconds of forks and one per pid."""
    held = [0]
    read_past = execsnoop._Parents._read_past

    def counted(self: execsnoop._Parents, ts: int) -> None:
        read_past(self, ts)
        forks = sum(len(b) for b in self._buffer) + len(self._merged)
        held[0] = max(held[0], forks)

    monkeypatch.setattr(execsnoop._Parents, "_read_past", counted)

    def report(execs: int, forks: int, watch: Callable) -> Iterator[pa.Table]:
        every = BIG * RATE_NS // execs  # both over the same 100 s
        old = (t.drop_columns(["ppid", "pcomm"]) for t in synthetic("exec", execs, 1, every))
        return execsnoop.execsnoop_stream(
            watch(old),
            lambda: watch(synthetic("fork", forks, 0, BIG * RATE_NS // forks)),
            execsnoop.Options(fails=True),
            **_EXEC_META,
        )

    rows = unknown = 0
    with Peak(lambda: list(report(1000, 10_000, iter))) as p:
        for t in report(200_000, BIG, p.watch):
            p.sample()
            rows, unknown = rows + t.num_rows, unknown + t["ppid"].null_count
    assert rows == 200_000 and unknown < 400  # all but some of the first 0.2 s
    # Of 2M: at 20,000 forks a second, the margin, the slack and a chunk read (65,536
    # forks: 3.3 s) hold ~150,000; up to 65,536 more wait to be merged; one per pid.
    assert held[0] < 300_000, held
    assert p.arrow < BOUND and p.python < BOUND, (p.arrow, p.python)
