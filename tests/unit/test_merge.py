"""bpfcap merge: traces of one host into one recording (row groups copied byte for byte,
loss counters exact), traces of several hosts into a multi-host trace (every row knows
its host, clocks aligned), reports per host or pooled, and the errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfcap.analyze.report import Source
from bpfcap.analyze.slice import Filters, slice_trace
from bpfcap.capture.segments import SegmentDir
from bpfcap.cli.main import main
from bpfcap.formats.errors import OutputError, UsageError
from bpfcap.formats.events import BY_NAME
from bpfcap.formats.merge import host_names, merge, same_boot
from bpfcap.formats.meta import TraceMeta
from bpfcap.formats.trace import open_trace, row_group_hosts
from bpfcap.tests.builders import (
    CLOCK,
    MS,
    START_NS,
    US,
    S,
    bio_row,
    exec_row,
    fork_row,
    meta,
    open_row,
    syscall_row,
    table,
    write_trace,
)

ROOT = Path(__file__).resolve().parents[2]


def rows_of(path: Path | object, kind: str) -> list[tuple]:
    t = (open_trace(path) if isinstance(path, Path) else path).read(kind)
    return sorted(zip(*[t[c].to_pylist() for c in t.column_names]))


def all_rows(path: Path) -> dict[str, Counter]:
    return {k: Counter(rows_of(path, k)) for k in BY_NAME}


def opens(t0: int, n: int, pid: int, prefix: str) -> list[dict]:
    return [
        open_row(
            ts_ns=t0 + i * 100 * MS,
            lat_ns=(i % 5) * 10 * US,
            tgid=pid,
            tid=pid,
            comm=f"c{pid}",
            path=f"/{prefix}/{i}",
            ret=-2 if i % 4 == 0 else 3,
        )
        for i in range(n)
    ]


# -- one host ---------------------------------------------------------------------------


def chunk_bytes(path: Path, rg: int, column: str) -> bytes:
    """The stored bytes of one column chunk (its pages, as compressed)."""
    md = pq.read_metadata(path)
    i = next(j for j in range(md.num_columns) if md.schema.column(j).path == column)
    c = md.row_group(rg).column(i)
    start = c.dictionary_page_offset if c.has_dictionary_page else c.data_page_offset
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(c.total_compressed_size)


LOSSY_A = {
    "open": {
        "seen": 30,
        "lost": 5,
        "written": 25,
        "lost_timeline": [
            [START_NS + 2 * S, START_NS + 3 * S, 2],
            [START_NS + 7 * S, START_NS + 8 * S, 5],
        ],
    },
    "syscall": {"seen": 4, "lost": 0, "written": 4, "lost_timeline": []},
}
LOSSY_B = {
    "open": {
        "seen": 23,
        "lost": 3,
        "written": 20,
        "lost_timeline": [[START_NS + 25 * S, START_NS + 26 * S, 3]],
    },
    "syscall": {"seen": 2, "lost": 0, "written": 2, "lost_timeline": []},
}


@pytest.fixture
def consecutive(tmp_path: Path) -> tuple[Path, Path]:
    """Two recordings of one host, the second starting after the first ended."""
    a = write_trace(
        tmp_path / "a.parquet",
        opens(START_NS + S, 25, 1000, "a")
        + [syscall_row(ts_ns=START_NS + i * S) for i in range(4)],
        end_ns=START_NS + 10 * S,
        events=LOSSY_A,
        disks=[[8 << 20, "sda"]],
    )
    b = write_trace(
        tmp_path / "b.parquet",
        opens(START_NS + 21 * S, 20, 2000, "b")
        + [syscall_row(ts_ns=START_NS + (20 + i) * S) for i in range(2)],
        start_ns=START_NS + 20 * S,
        end_ns=START_NS + 30 * S,
        events=LOSSY_B,
        disks=[[(8 << 20) | 16, "sdb"]],
        clean_stop=False,
    )
    return a, b


def test_consecutive_recordings_are_copied_into_one(consecutive, tmp_path):
    a, b = consecutive
    out = tmp_path / "ab.parquet"
    r = merge([open_trace(b), open_trace(a)], out)  # in any order
    assert (r.how, r.hosts, r.traces, r.rows) == ("copied", 1, 2, 51)
    want = {k: all_rows(a)[k] + all_rows(b)[k] for k in BY_NAME}
    assert all_rows(out) == want
    # The row groups are those of the inputs, byte for byte, in time order.
    groups = [(a, i) for i in range(pq.read_metadata(a).num_row_groups)]
    groups += [(b, i) for i in range(pq.read_metadata(b).num_row_groups)]
    assert pq.read_metadata(out).num_row_groups == len(groups)
    for i, (src, j) in enumerate(groups):
        for column in ("kind", "ts_ns", "time", "comm", "lat_ns"):
            assert chunk_bytes(out, i, column) == chunk_bytes(src, j, column)
    t = open_trace(out)
    m = TraceMeta.from_dict(t.meta)
    assert (m.start_ns, m.end_ns) == (START_NS, START_NS + 30 * S)
    assert m.clean_stop is False and not t.complete  # b did not stop cleanly
    assert m.disks == {8 << 20: "sda", (8 << 20) | 16: "sdb"}
    assert "hosts" not in t.meta and "host" not in pq.read_schema(out).names
    sources = t.meta["merge"]["sources"]
    assert [s["start_ns"] for s in sources] == [START_NS, START_NS + 20 * S]
    assert not any(str(tmp_path) in json.dumps(s) for s in sources)  # no paths
    assert sources[0]["sha256"] != sources[1]["sha256"]


def test_loss_counters_add_up_and_stay_placed(consecutive, tmp_path):
    a, b = consecutive
    out = tmp_path / "ab.parquet"
    merge([open_trace(a), open_trace(b)], out)
    c = TraceMeta.from_dict(open_trace(out).meta).counts("open")
    assert (c.seen, c.lost, c.written) == (53, 8, 45)
    assert c.lost_timeline == (
        (START_NS + 2 * S, START_NS + 3 * S, 2),
        (START_NS + 7 * S, START_NS + 8 * S, 5),
        (START_NS + 25 * S, START_NS + 26 * S, 8),
    )
    assert c.lost_between(START_NS, START_NS + 5 * S) == 2
    assert c.lost_between(START_NS + 5 * S, START_NS + 20 * S) == 3
    assert c.lost_between(START_NS + 20 * S, START_NS + 30 * S) == 3
    assert c.lost_between(START_NS + 10 * S, START_NS + 20 * S) == 0


def test_a_segment_directory_becomes_one_file(tmp_path):
    d = tmp_path / "rec"
    seg = SegmentDir(d, header=meta(clean_stop=False, events={}))
    parts = [opens(START_NS + i * S, 7, 1000 + i, f"s{i}") for i in range(3)]
    for i, rows in enumerate(parts):
        seg.close_segment(meta(clean_stop=i == 2), lambda rows=rows: [table(rows)])
    seg.finish()
    out = tmp_path / "one.parquet"
    r = merge([open_trace(d)], out)
    assert (r.how, r.rows) == ("copied", 21)
    assert rows_of(out, "open") == rows_of(open_trace(d), "open")
    assert len(rows_of(out, "open")) == 21 and open_trace(out).complete


def rotated(d: Path, keep: int | None = None) -> list[Path]:
    """A `record --rotate` directory of 6 one-second segments, a file every 2 (A, B, C),
    each file's metadata the recording's as of its last segment (counters cumulative)."""
    seg = SegmentDir(d, header=meta(clean_stop=False, events={}))
    for i in range(6):
        counters = {"open": {"seen": 7 * (i + 1), "lost": i, "written": 7 * (i + 1)}}
        rows = opens(START_NS + i * S, 7, 1000 + i, f"s{i}")
        if i == 4:  # an event before the segment began, read in a later drain
            rows[0] = dict(rows[0], ts_ns=START_NS + 4 * S - 5 * MS)
        end = START_NS + (i + 1) * S - 1
        seg.close_segment(
            meta(clean_stop=i == 5, end_ns=end, attached_ns=START_NS + MS, events=counters),
            lambda rows=rows: [table(rows)],
        )
        if i % 2:
            seg.rotate(keep)
    seg.finish()
    return sorted(d.glob("seg-*-*.parquet"))


def test_the_files_of_a_rotated_recording_merge_back_into_it(tmp_path):
    files = rotated(tmp_path / "rot")
    assert [f.name for f in files] == [
        "seg-000000-000002.parquet", "seg-000003-000004.parquet", "seg-000005-000006.parquet"
    ]  # fmt: skip
    # each file starts its own window (or its earliest row, if earlier); its counters
    # count from the recording's start: pieces, not overlapping recordings
    starts = [open_trace(f).meta["start_ns"] for f in files]
    assert starts == [START_NS, START_NS + 2 * S, START_NS + 4 * S - 5 * MS]
    assert open_trace(tmp_path / "rot").meta["start_ns"] == START_NS
    out = tmp_path / "m.parquet"
    r = merge([open_trace(f) for f in reversed(files)], out)  # any order
    assert (r.how, r.rows, r.notes) == ("copied", 42, [])
    whole = open_trace(tmp_path / "rot")
    assert rows_of(out, "open") == rows_of(whole, "open")
    m = open_trace(out).meta
    assert m["events"]["open"] == {"seen": 42, "lost": 5, "written": 42}  # not summed
    assert (m["start_ns"], m["end_ns"]) == (START_NS, START_NS + 6 * S - 1)
    assert open_trace(out).complete and "segment" not in m and "first_segment" not in m
    # a file given twice, or a file with the directory it is in: the same segments
    for twice in ([files[1], files[1]], [files[1], tmp_path / "rot"]):
        with pytest.raises(UsageError, match="hold the same segments of one recording"):
            merge([open_trace(f) for f in twice], tmp_path / "x.parquet")


def test_a_flight_recorders_files_say_what_they_lack(tmp_path):
    files = rotated(tmp_path / "rot", keep=2)
    assert len(files) == 2
    out = tmp_path / "m.parquet"
    r = merge([open_trace(f) for f in files], out)
    assert r.rows == 28
    # the rows start with the oldest file kept, and so do the directory and the merge
    assert open_trace(tmp_path / "rot").meta["start_ns"] == START_NS + 2 * S
    assert open_trace(out).meta["start_ns"] == START_NS + 2 * S
    assert r.notes == [
        "unknown: segments 1-2 of the recording are not among the inputs: its event counters "
        "include their events, its rows do not"
    ]
    # a gap in the middle is named too
    gap = merge([open_trace(files[1])], tmp_path / "g.parquet")
    assert "segments 1-4 of the recording" in gap.notes[0]


def test_format_1_is_re_encoded(tmp_path):
    v1 = open_trace(ROOT / "sample-traces" / "v1-open-exec.parquet")
    out = tmp_path / "m.parquet"
    r = merge([v1], out)
    assert r.how == "re-encoded"
    m = open_trace(out)
    assert m.version == 2
    for kind in ("open", "exec"):
        assert rows_of(out, kind) == rows_of(v1, kind) and rows_of(v1, kind)


def test_overlapping_recordings_of_one_host(consecutive, tmp_path):
    a, _ = consecutive
    c = write_trace(tmp_path / "c.parquet", opens(START_NS + 5 * S, 3, 3000, "c"),
                    start_ns=START_NS + 5 * S)  # fmt: skip
    with pytest.raises(UsageError, match="overlap in time on one host and both hold open"):
        merge([open_trace(a), open_trace(c)], tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()
    # Recorded at once but of other types (two recorders): merged, both kept.
    bio = write_trace(tmp_path / "bio.parquet", [bio_row(ts_ns=START_NS + 5 * S)],
                      settings={"events": ["bio"]})  # fmt: skip
    first = write_trace(tmp_path / "o.parquet", opens(START_NS + S, 3, 1, "o"),
                        settings={"events": ["open", "cwd"]})  # fmt: skip
    out = tmp_path / "y.parquet"
    merge([open_trace(first), open_trace(bio)], out)
    assert len(rows_of(out, "open")) == 3 and len(rows_of(out, "bio")) == 1
    assert open_trace(out).meta["settings"]["events"] == ["open", "bio", "cwd"]


def test_one_boot_or_two():
    m = meta(host={"hostname": "h"})
    later = dict(m, start_ns=m["start_ns"] + 3600 * S, end_ns=m["end_ns"] + 3600 * S)
    drifted = dict(later, clock=dict(CLOCK, realtime_minus_monotonic_ns=CLOCK[
        "realtime_minus_monotonic_ns"] + 20 * MS))  # fmt: skip
    rebooted = dict(m, clock=dict(CLOCK, realtime_minus_monotonic_ns=CLOCK[
        "realtime_minus_monotonic_ns"] + 600 * S))  # fmt: skip
    assert same_boot(m, later)
    assert same_boot(m, drifted)  # 20 ms in an hour: NTP's slew
    assert not same_boot(m, dict(drifted, start_ns=m["start_ns"], end_ns=m["end_ns"]))
    assert not same_boot(m, rebooted)
    assert not same_boot(m, dict(m, host={"hostname": "other"}))
    ids = (
        dict(m, host={"hostname": "h", "boot_id": "1"}),
        dict(m, host={"hostname": "h", "boot_id": "2"}),
    )
    assert not same_boot(*ids)


# -- several hosts ------------------------------------------------------------------------

WEB_CLOCK = dict(CLOCK, realtime_minus_monotonic_ns=CLOCK["realtime_minus_monotonic_ns"] + 7200 * S)
PROC_WEB = [[1, 0, "systemd"], [700, 1, "nginx"]]
PROC_DB = [[1, 0, "systemd"], [900, 1, "postgres"]]


def host_rows(pid: int, tag: str, t0: int) -> list[dict]:
    return (
        opens(t0, 12, pid, tag)
        + [
            syscall_row(ts_ns=t0 + i * 300 * MS, tgid=pid, tid=pid, nr=i % 3, lat_ns=(i + 1) * US)
            for i in range(9)
        ]
        + [
            bio_row(ts_ns=t0 + i * 500 * MS, lat_ns=(i + 1) * 40 * US, dev=8 << 20, tgid=pid)
            for i in range(6)
        ]
        + [
            fork_row(ts_ns=t0, tgid=pid, tid=pid, child_pid=pid + 1, comm="sh"),
            exec_row(ts_ns=t0 + S, tgid=pid + 1, tid=pid + 1, comm=tag, filename=f"/bin/{tag}"),
        ]
    )


@pytest.fixture
def fleet(tmp_path: Path) -> dict[str, Path]:
    """db booted first (smaller offset): the reference; web's rows shift by 7200 s."""
    db = write_trace(
        tmp_path / "db.parquet",
        host_rows(900, "db", START_NS + S),
        host={"hostname": "db", "machine": "x86_64"},
        processes=PROC_DB,
        disks=[[8 << 20, "vda"]],
        events={"open": {"seen": 14, "lost": 2, "written": 12,
                         "lost_timeline": [[START_NS + 3 * S, START_NS + 4 * S, 2]]}},
    )  # fmt: skip
    web = write_trace(
        tmp_path / "web.parquet",
        host_rows(700, "web", START_NS + 2 * S),
        host={"hostname": "web", "machine": "x86_64"},
        clock=WEB_CLOCK,
        processes=PROC_WEB,
        disks=[[8 << 20, "nvme0n1"]],
        events={"open": {"seen": 13, "lost": 1, "written": 12,
                         "lost_timeline": [[START_NS + 5 * S, START_NS + 6 * S, 1]]}},
    )  # fmt: skip
    out = tmp_path / "fleet.parquet"
    r = merge([open_trace(web), open_trace(db)], out)
    assert (r.how, r.hosts, r.traces) == ("re-encoded", 2, 2)
    return {"db": db, "web": web, "fleet": out}


def test_every_row_knows_its_host_and_keeps_its_wall_clock(fleet):
    out = fleet["fleet"]
    t = open_trace(out)
    assert host_names(t.meta) == ["db", "web"]
    assert [h["shift_ns"] for h in t.meta["hosts"]] == [0, 7200 * S]
    merged = pq.read_table(out, columns=["kind", "host", "ts_ns", "time", "tgid"]).to_pylist()
    for name, shift in (("db", 0), ("web", 7200 * S)):
        src = pq.read_table(fleet[name], columns=["kind", "ts_ns", "time", "tgid"]).to_pylist()
        mine = [{k: v for k, v in r.items() if k != "host"} for r in merged if r["host"] == name]
        assert len(mine) == len(src) == 29
        key = lambda r: (r["kind"], r["ts_ns"], r["tgid"])  # noqa: E731
        for m, s in zip(sorted(mine, key=key), sorted(src, key=key)):
            assert m["ts_ns"] == s["ts_ns"] + shift
            assert m["time"] == s["time"]  # the wall clock, unchanged
    off = t.meta["clock"]["realtime_minus_monotonic_ns"]
    for r in pq.read_table(out, columns=["ts_ns", "time"]).to_pylist():
        assert r["time"].value == r["ts_ns"] + off  # one clock for every row
    # One host per row group (5 kinds each), read back from the column.
    assert Counter(row_group_hosts(t).values()) == {"db": 5, "web": 5}
    m = TraceMeta.from_dict(t.meta)
    assert m.counts("open").lost == 3 and m.host.hostname == "2 hosts"
    assert m.counts("open").lost_between(START_NS + 7205 * S, START_NS + 7206 * S) == 1


REPORTS = [
    ["opensnoop", "-T"],
    ["opensnoop", "-x"],
    ["biolatency", "-D"],
    ["syscount", "-L"],
    ["execsnoop", "-T"],
    ["count", "--by", "comm,kind"],
]


def run(capsysbinary, *argv: str) -> tuple[int, bytes, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsysbinary.readouterr()
    return exit_.value.code, out, err.decode()


@pytest.mark.parametrize("report", REPORTS, ids=" ".join)
def test_by_host_is_each_hosts_own_report(fleet, capsysbinary, report):
    own = {}
    for name in ("db", "web"):
        rc, out, err = run(capsysbinary, "report", report[0], str(fleet[name]), *report[1:])
        assert rc == 0, err
        own[name] = out
        rc, one, _ = run(capsysbinary, "report", report[0], str(fleet["fleet"]), *report[1:],
                         "--host", name)  # fmt: skip
        assert (rc, one) == (0, out)
    rc, out, err = run(capsysbinary, "report", report[0], str(fleet["fleet"]), *report[1:],
                       "--by-host")  # fmt: skip
    assert rc == 0, err
    assert out == b"== host db ==\n" + own["db"] + b"\n== host web ==\n" + own["web"]
    assert own["db"].strip() and own["db"] != own["web"]
    assert "reported together" not in err


def test_pooled_counts_are_the_sum(fleet, capsysbinary):
    def counts(path: Path, *extra: str) -> Counter:
        rc, out, _ = run(capsysbinary, "report", "count", str(path), "--by", "kind",
                         "--format", "json", *extra)  # fmt: skip
        assert rc == 0
        return Counter({r["kind"]: r["count"] for r in map(json.loads, out.splitlines())})

    pooled = counts(fleet["fleet"])
    assert pooled == counts(fleet["db"]) + counts(fleet["web"])
    assert pooled["open"] == 24
    rc, _, err = run(capsysbinary, "report", "opensnoop", str(fleet["fleet"]))
    assert rc == 0 and "holds 2 hosts, reported together" in err
    # Loss: the pooled report says both hosts' loss, each host its own.
    rc, _, err = run(capsysbinary, "report", "opensnoop", str(fleet["fleet"]), "--by-host")
    assert "host db: 2 open events were lost" in err and "host web: 1 open events" in err
    rc, _, err = run(capsysbinary, "report", "opensnoop", str(fleet["fleet"]), "--strict")
    assert rc == 3 and "3 open events were lost" in err


def test_by_host_json_and_csv_say_the_host(fleet, capsysbinary):
    rc, out, _ = run(capsysbinary, "report", "opensnoop", str(fleet["fleet"]), "--by-host",
                     "--format", "json")  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and Counter(r["host"] for r in rows) == {"db": 12, "web": 12}
    assert {r["path"].split("/")[1] for r in rows if r["host"] == "web"} == {"web"}
    rc, out, _ = run(capsysbinary, "report", "biolatency", str(fleet["fleet"]), "--by-host",
                     "--format", "csv")  # fmt: skip
    lines = out.decode().splitlines()
    assert lines[0].startswith("host,") and lines.count(lines[0]) == 1  # one header
    assert {line.split(",")[0] for line in lines[1:]} == {"db", "web"}


def test_summary_and_diff_of_one_host_are_that_hosts_own(fleet, capsysbinary):
    def page(*argv: str) -> dict | list:
        rc, out, err = run(capsysbinary, "summary", *argv, "--format", "json")
        assert rc == 0, err
        return json.loads(out)

    def figures(s: dict) -> tuple:
        return (s["events"], s["lost"], s["types"], s["processes"], s["failures"])

    pages = page(str(fleet["fleet"]), "--by-host")
    assert [p["host"]["hostname"] for p in pages] == ["db", "web"]
    for name, p in zip(("db", "web"), pages):
        own = page(str(fleet[name]))
        assert figures(p) == figures(own)
        assert figures(page(str(fleet["fleet"]), "--host", name)) == figures(own)
    pooled = page(str(fleet["fleet"]))
    assert pooled["events"] == 58 and pooled["lost"] == 3
    rc, md, _ = run(capsysbinary, "summary", str(fleet["fleet"]), "--by-host")
    assert rc == 0 and md.count(b"## host ") == 2 and md.count(b"### bpfcap summary") == 2
    rc, out, err = run(capsysbinary, "diff", str(fleet["fleet"]), str(fleet["web"]),
                       "--host", "web", "--format", "json")  # fmt: skip
    d = json.loads(out)
    assert rc == 0 and d["a"]["events"] == d["b"]["events"] == 29, err
    assert d["a"]["host"]["hostname"] == "web" and d["same"]
    rc, _, err = run(capsysbinary, "summary", str(fleet["fleet"]), "--by-host", "--host", "db")
    assert rc == 2 and "choose one" in err


def test_export_keeps_the_host_of_every_row(fleet, tmp_path):
    from bpfcap.formats.export import duckdb_views, export_kind

    out = tmp_path / "open.parquet"
    assert export_kind(open_trace(fleet["fleet"]), "open", out) == 24
    t = pq.read_table(out)
    assert t.column_names[:2] == ["kind", "host"]
    assert Counter(
        zip(t["host"].to_pylist(), (p.split("/")[1] for p in t["path"].to_pylist()))
    ) == {
        ("db", "db"): 12,
        ("web", "web"): 12,
    }
    assert '"host"' in duckdb_views(open_trace(fleet["fleet"]), "open")
    export_kind(open_trace(fleet["db"]), "open", out, force=True)  # one host: no column
    assert "host" not in pq.read_schema(out).names
    assert '"host"' not in duckdb_views(open_trace(fleet["db"]), "open")


def test_a_recording_has_one_host(consecutive, capsysbinary):
    a, _ = consecutive
    rc, out, _ = run(capsysbinary, "report", "syscount", str(a), "--by-host")
    assert rc == 0 and out.startswith(b"== host unknown ==\n")
    rc, _, err = run(capsysbinary, "report", "syscount", str(a), "--host", "nope")
    assert rc != 0 and "holds no host 'nope'; its hosts: unknown" in err


def test_hosts_of_other_machines_are_reported_apart(fleet, tmp_path, capsysbinary):
    arm = write_trace(tmp_path / "arm.parquet", host_rows(500, "arm", START_NS + S),
                      host={"hostname": "arm", "machine": "aarch64"},
                      clock=dict(CLOCK, realtime_minus_monotonic_ns=1))  # fmt: skip
    out = tmp_path / "mixed.parquet"
    r = merge([open_trace(arm), open_trace(fleet["db"])], out)
    assert any("different machines" in n for n in r.notes)
    rc, _, err = run(capsysbinary, "report", "syscount", str(out))
    assert rc != 0 and "pools hosts of different machines (aarch64, x86_64)" in err
    rc, text, _ = run(capsysbinary, "report", "syscount", str(out), "--by-host")
    assert rc == 0 and b"== host arm ==" in text
    assert Source(open_trace(out), host="arm").abi.machine == "aarch64"


def test_same_hostname_other_boot_is_another_host(tmp_path):
    a = write_trace(tmp_path / "a.parquet", opens(START_NS + S, 2, 1, "a"), host={"hostname": "h"})
    b = write_trace(tmp_path / "b.parquet", opens(START_NS + S, 2, 1, "b"), host={"hostname": "h"},
                    clock=dict(CLOCK, realtime_minus_monotonic_ns=CLOCK[
                        "realtime_minus_monotonic_ns"] + 3600 * S))  # fmt: skip
    out = tmp_path / "m.parquet"
    merge([open_trace(a), open_trace(b)], out)
    assert host_names(open_trace(out).meta) == ["h#1", "h#2"]


# -- errors through the CLI ----------------------------------------------------------------


def test_cli_and_its_errors(consecutive, fleet, tmp_path, capsysbinary):
    a, b = consecutive
    out = tmp_path / "m.parquet"
    rc, _, err = run(capsysbinary, "merge", str(a), str(b), "-o", str(out))
    assert rc == 0 and err == f"Wrote {out} (51 rows from 2 traces, 1 host, copied)\n"
    rc, _, err = run(capsysbinary, "merge", str(a), str(b), "-o", str(out))
    assert rc == 1 and err == f"error: {out} already exists; pass --force to overwrite it\n"
    rc, _, err = run(capsysbinary, "merge", str(a), str(b), "-o", str(out), "--force")
    assert rc == 0
    rc, _, err = run(capsysbinary, "merge", str(a), str(b), "-o", str(a), "--force")
    assert rc == 2 and err.startswith(f"error: {a} is one of the traces to merge")
    rc, _, err = run(capsysbinary, "merge", "-o", str(out))
    assert rc == 2 and "Missing argument" in err
    rc, _, err = run(capsysbinary, "merge", str(tmp_path / "nope"), "-o", str(out), "--force")
    assert rc == 1 and err.startswith("error: ") and "no such file" in err
    rc, _, err = run(capsysbinary, "merge", str(fleet["fleet"]), str(a), "-o", str(out), "--force")
    assert rc == 2 and "already a multi-host trace" in err
    rc, _, err = run(capsysbinary, "merge", str(a), str(a), "-o", str(out), "--force")
    assert rc == 2 and "overlap in time" in err
    with pytest.raises(UsageError, match="no traces"):
        merge([], out)
    with pytest.raises(OutputError, match="is a directory"):
        merge([open_trace(a)], tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


# -- slice and merge: adjacent windows merge back to one -------------------------------------

TIMELINE = {
    "open": {
        "seen": 160,
        "lost": 8,
        "written": 152,
        "lost_timeline": [
            [START_NS + 9 * S, START_NS + 10 * S, 5],
            [START_NS + 20 * S, START_NS + 21 * S, 6],
            [START_NS + 33 * S, START_NS + 34 * S, 8],
        ],
    },
    "syscall": {"seen": 152, "lost": 0, "written": 152, "lost_timeline": []},
}


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    rows = []
    for i in range(152):
        t = START_NS + 500 * MS + i * 370 * MS
        rows.append(open_row(ts_ns=t, lat_ns=(i % 7) * 90 * MS, tgid=100 + i % 3, path=f"/f{i}"))
        rows.append(syscall_row(ts_ns=t, nr=i % 11, lat_ns=(i % 4) * 200 * MS))
    path = tmp_path_factory.mktemp("rec") / "t.parquet"
    return open_trace(write_trace(path, rows, events=TIMELINE))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(bounds=st.lists(st.integers(0, 60_000), min_size=3, max_size=3, unique=True).map(sorted))
def test_merging_adjacent_slices_gives_back_the_window(recording, tmp_path_factory, bounds):
    a, b, c = (f"{x}ms" for x in bounds)
    d = tmp_path_factory.mktemp("w")
    slice_trace(recording, d / "ab.parquet", since=a, until=b)
    slice_trace(recording, d / "bc.parquet", since=b, until=c)
    slice_trace(recording, d / "ac.parquet", since=a, until=c)
    r = merge([open_trace(d / "bc.parquet"), open_trace(d / "ab.parquet")], d / "m.parquet")
    assert r.how == "copied"
    for kind in ("open", "syscall"):
        assert rows_of(d / "m.parquet", kind) == rows_of(d / "ac.parquet", kind)
    got, want = (TraceMeta.from_dict(open_trace(d / n).meta) for n in ("m.parquet", "ac.parquet"))
    assert (got.start_ns, got.end_ns) == (want.start_ns, want.end_ns)
    for kind in ("open", "syscall"):
        assert got.counts(kind) == want.counts(kind)  # seen, lost, written, timeline


def test_slices_of_other_types_merge_over_one_window(recording, tmp_path):
    o, s = tmp_path / "o.parquet", tmp_path / "s.parquet"
    slice_trace(recording, o, since="10s", until="20s", filters=Filters(kinds=("open",)))
    slice_trace(recording, s, since="10s", until="20s", filters=Filters(kinds=("syscall",)))
    out = tmp_path / "m.parquet"
    merge([open_trace(o), open_trace(s)], out)
    both = tmp_path / "both.parquet"
    slice_trace(recording, both, since="10s", until="20s")
    for kind in ("open", "syscall"):
        assert rows_of(out, kind) == rows_of(both, kind)
