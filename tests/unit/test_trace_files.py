"""Reading trace files: the shipped samples, stock readers, and every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bpfcap.capture.segments import SegmentDir
from bpfcap.formats.errors import OutputError
from bpfcap.formats.trace import FORMAT_VERSION, HEADER, KEY_META, KEY_VERSION, open_trace
from bpfcap.formats.writer import merge_files, write_table_file
from bpfcap.tests.builders import START_NS, S, header_only, meta, open_row, table

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "sample-traces").glob("v*-*.parquet"))
V1 = ROOT / "sample-traces" / "v1-open-exec.parquet"
V1_KERNEL = ROOT / "sample-traces" / "v1-kernel.parquet"
V1_STRUCTS = ROOT / "sample-traces" / "v1-structs.parquet"
BPFCAP = str(Path(sys.executable).parent / "bpfcap")
sys.path.insert(0, str(ROOT / "tests"))
import workload  # noqa: E402


def bpfcap(*args) -> subprocess.CompletedProcess:
    return subprocess.run([BPFCAP, *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_sample_reads_with_this_bpfcap(sample):
    t = open_trace(sample)
    assert t.complete and t.version <= FORMAT_VERSION
    for kind in t.meta["events"]:
        assert t.read(kind).num_rows == t.meta["events"][kind]["written"]
    for report in ("opensnoop", "execsnoop"):
        r = bpfcap("report", report, sample)
        assert r.returncode == 0 and r.stderr == "", r.stderr


def test_v1_sample_exact_counts():
    p = workload.paths("sample")
    opens = bpfcap("report", "opensnoop", V1).stdout.splitlines()
    assert sum(p["ok"] in ln for ln in opens) == workload.OK_OPENS
    missing = [ln.split() for ln in opens if p["missing"] in ln]
    assert len(missing) == workload.MISSING_OPENS
    assert {(r[2], r[3]) for r in missing} == {("-1", "2")}
    execs = bpfcap("report", "execsnoop", "-x", V1).stdout.splitlines()
    assert sum(p["exec_arg"] in ln for ln in execs) == workload.EXECS
    assert sum(p["bad_exec"] in ln for ln in execs) == workload.FAILED_EXECS


def test_v1_kernel_sample_exact_counts():
    """The kernel components' workload (tests/workload.py kernel), recorded in v1."""
    lines = bpfcap("report", "syscount", V1_KERNEL).stdout.splitlines()
    assert lines[3].split() == ["getppid", str(workload.GETPPIDS)]
    kills = bpfcap("report", "killsnoop", V1_KERNEL).stdout.splitlines()[1:]
    assert [ln.split()[3] for ln in kills] == ["10"] * workload.KILLS
    where = f'comm == "{workload.COMM}" and rwbs == "WS"'
    r = bpfcap("report", "count", V1_KERNEL, "-e", "bio", "--by", "bytes", "--where", where)
    assert r.stdout == f"@[4096]: {workload.DIRECT_WRITES}\n"
    connects = bpfcap("report", "tcpconnect", V1_KERNEL).stdout.splitlines()[1:]
    accepts = bpfcap("report", "tcpaccept", V1_KERNEL).stdout.splitlines()[1:]
    lives = bpfcap("report", "tcplife", V1_KERNEL).stdout.splitlines()[1:]
    assert len(connects) == len(accepts) == workload.TCP_CONNECTIONS
    assert len(lives) == 2 * workload.TCP_CONNECTIONS
    runq = bpfcap("report", "runqlat", V1_KERNEL, "-P").stdout
    assert runq.count("pid = ") >= 3  # the workload and its two spinners at least


def test_v1_structs_sample_exact_counts():
    """Fields read from kernel structs (tests/workloads/accepts.py and cwd_opens.py)."""
    accepts = bpfcap("report", "tcpaccept", V1_STRUCTS).stdout.splitlines()[1:]
    assert len(accepts) == 7 and {ln.split()[1] for ln in accepts} == {"acc-server"}
    full = [ln for ln in bpfcap("report", "opensnoop", "-F", V1_STRUCTS).stdout.splitlines()]
    cwd_opens = [ln.split()[-1] for ln in full if "bpfcap-cwd-" in ln]
    assert len(cwd_opens) == 13
    assert "/tmp/bpfcap-sample-cwd/a/b/../bpfcap-cwd-up" in cwd_opens
    assert "/tmp/bpfcap-sample-cwd/odd--dir/bpfcap-cwd-odd-2" in cwd_opens
    # sh, the two workloads, /bin/true (and sh's PATH search before it, with -x), each
    # with the parent read at its exec.
    execs = bpfcap("report", "execsnoop", "-x", V1_STRUCTS).stdout.splitlines()[1:]
    assert len(execs) == 12 and not [ln for ln in execs if ln.split()[2] == "?"]
    assert execs[-1].split()[:4] == ["true", "23853", "23816", "0"]


STOCK = """
import sys
sys.modules["bpfcap"] = None  # prove no bpfcap code is needed
import pyarrow.parquet as pq, pyarrow.compute as pc
t = pq.read_table(sys.argv[1], filters=[("kind", "==", "open")], columns=["path", "ret"])
ok = pc.sum(pc.equal(t["path"], b"/tmp/bpfcap-wl-sample-ok").cast("int64")).as_py()
print(t.num_rows, ok)
"""


def test_stock_pyarrow_reads_a_trace_without_bpfcap():
    r = subprocess.run([sys.executable, "-c", STOCK, V1], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows, ok = map(int, r.stdout.split())
    assert rows == open_trace(V1).read("open").num_rows and ok == workload.OK_OPENS


def test_stock_duckdb_reads_a_trace():
    duckdb = pytest.importorskip("duckdb")
    n = duckdb.sql(f"SELECT count(*) FROM '{V1}' WHERE kind = 'exec' AND ret = -2").fetchall()[0][0]
    assert n == workload.FAILED_EXECS


def test_columns_document_themselves():
    schema = pq.read_schema(V1)
    for f in schema:
        assert f.metadata and f.metadata.get(b"doc"), f.name


# --- segment directories and their header (segment 0: no rows, the metadata at start) ---


def test_a_directory_holding_only_its_header_is_an_empty_trace(tmp_path):
    d = header_only(tmp_path / "t.parquet.partial")
    t = open_trace(tmp_path / "t.parquet")
    assert (t.files, t.complete) == ([d / HEADER], False)
    assert t.meta["start_ns"] == START_NS and "end_ns" not in t.meta
    assert len(t.notes) == 1 and "before its first segment closed" in t.notes[0]
    r = bpfcap("info", d)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "stopped:    NOT cleanly" in r.stdout and f"note:       {t.notes[0]}\n" in r.stdout
    assert "events:     0 rows" in r.stdout and "duration:   ?" in r.stdout
    s = json.loads(bpfcap("info", "--format", "json", d).stdout)
    assert s["notes"] == t.notes and s["clean_stop"] is False


def test_stock_readers_read_the_header_as_no_rows(tmp_path):
    d = header_only(tmp_path / "t.parquet.partial")
    assert pq.read_table(d).num_rows == 0
    duckdb = pytest.importorskip("duckdb")
    assert duckdb.sql(f"SELECT count(*) FROM '{d}/*.parquet'").fetchall() == [(0,)]


def test_segments_rotate_and_merge_with_their_header(tmp_path):
    d = SegmentDir(tmp_path / "rot", header=meta(clean_stop=False, events={}))
    for i in range(3):
        rows = table([open_row(ts_ns=START_NS + i * S)])
        d.close_segment(meta(clean_stop=False), lambda rows=rows: [rows])
        if i == 1:
            d.rotate(None)  # joins the header and segments 1-2
    d.finish()
    assert [f.name for f in d.files()] == ["seg-000000-000002.parquet", "seg-000003.parquet"]
    assert d.single_bytes() == (d.path / "seg-000003.parquet").stat().st_size
    t = open_trace(d.path)
    assert t.read("open").num_rows == 3 and t.notes == []
    out = tmp_path / "t.parquet"
    merge_files(d.files(), out, meta())
    assert open_trace(out).read("open")["ts_ns"].to_pylist() == [START_NS + i * S for i in range(3)]
    # Before any rotation, sizes (for --max-size, --rotate SIZE) leave the header out.
    d2 = SegmentDir(tmp_path / "d2", header=meta(clean_stop=False, events={}))
    d2.close_segment(meta(clean_stop=False), lambda: [table([open_row()])])
    d2.finish()
    assert [f.name for f in d2.data_files()] == ["seg-000001.parquet"]
    assert d2.closed_bytes() == (d2.path / "seg-000001.parquet").stat().st_size


def test_a_header_that_cannot_be_written_leaves_nothing(tmp_path, monkeypatch):
    import errno

    import bpfcap.capture.segments as segments

    def full(path, *_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(segments, "write_table_file", full)
    with pytest.raises(OutputError) as e:
        SegmentDir(tmp_path / "t.parquet.partial", header=meta())
    assert str(e.value).startswith(
        f"cannot write {tmp_path}/t.parquet.partial/{HEADER}: No space left on device; "
    )
    assert list(tmp_path.iterdir()) == []


def test_a_failed_segment_write_is_raised_without_waiting_for_the_next(tmp_path, monkeypatch):
    import errno
    import time

    import bpfcap.capture.segments as segments

    d = SegmentDir(tmp_path / "t.parquet.partial", header=meta(clean_stop=False, events={}))

    def full(path, *_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(segments, "write_table_file", full)
    d.close_segment(meta(clean_stop=False), lambda: [table([open_row()])])
    deadline = time.monotonic() + 60  # the write runs in a thread: poll for its end
    with pytest.raises(OSError, match="No space left"):
        while time.monotonic() < deadline:
            d.check()
            time.sleep(0.01)
    d.abort()
    assert [f.name for f in d.files()] == [HEADER] and d.data_files() == []


# --- bad input: one line naming the file and the problem, non-zero exit, no traceback ---


def _rewrite(src: Path, dst: Path, footer_update) -> None:
    table = pq.read_table(src)
    kv = dict(pq.read_metadata(src).metadata)
    kv.pop(b"ARROW:schema", None)
    footer_update(kv)
    pq.write_table(table.replace_schema_metadata(kv), dst)


def _expect_error(path, *needles, code=1):
    for args in (("info", path), ("report", "opensnoop", path), ("report", "execsnoop", path)):
        r = bpfcap(*args)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
        assert "Traceback" not in r.stderr
        for n in needles:
            assert n in lines[0], lines[0]


def test_empty_file(tmp_path):
    p = tmp_path / "empty.parquet"
    p.touch()
    _expect_error(p, str(p), "empty file")


def test_random_bytes(tmp_path):
    p = tmp_path / "random.parquet"
    p.write_bytes(os.urandom(5000))
    _expect_error(p, str(p), "not a complete Parquet file")


@pytest.mark.parametrize("keep", [4, 100, 0.5, -8, -1])
def test_truncated_trace(tmp_path, keep):
    data = V1.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    p = tmp_path / "cut.parquet"
    p.write_bytes(data[:n])
    _expect_error(p, str(p), "truncated")


def test_parquet_that_is_not_a_bpfcap_trace(tmp_path):
    p = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), p)
    _expect_error(p, str(p), "not a bpfcap trace")


def test_newer_format_version(tmp_path):
    p = tmp_path / "future.parquet"
    _rewrite(V1, p, lambda kv: kv.update({KEY_VERSION: str(FORMAT_VERSION + 1).encode()}))
    _expect_error(p, str(p), f"trace format {FORMAT_VERSION + 1}", "upgrade bpfcap")


def test_corrupt_metadata(tmp_path):
    p = tmp_path / "meta.parquet"
    _rewrite(V1, p, lambda kv: kv.update({KEY_META: b"{not json"}))
    _expect_error(p, str(p), "corrupt bpfcap metadata")


def test_missing_columns(tmp_path):
    p = tmp_path / "cols.parquet"
    table = pq.read_table(V1).drop_columns(["path", "args"])
    kv = {k: v for k, v in pq.read_metadata(V1).metadata.items() if k.startswith(b"bpfcap")}
    pq.write_table(table.replace_schema_metadata(kv), p)
    r = bpfcap("report", "opensnoop", p)
    assert r.returncode == 1 and r.stderr.startswith(f"error: {p}: column(s) path missing")


def test_missing_file_and_empty_directory(tmp_path):
    _expect_error(tmp_path / "nope.parquet", "no such file")
    _expect_error(tmp_path, "no trace segments")


def test_unreadable_file(tmp_path):
    """A trace the user may not read (traces are created 0600), or may not reach."""
    if os.geteuid() != 0:
        p = tmp_path / "private.parquet"
        p.write_bytes(V1.read_bytes())
        p.chmod(0)
        _expect_error(p, "permission denied")
        return
    # Root reads anything: read as nobody instead.
    d = Path(f"/tmp/bpfcap-perm-{os.getpid()}")
    (d / "closed").mkdir(mode=0o700, parents=True)
    d.chmod(0o755)
    targets = [d / "private.parquet", d / "closed" / "t.parquet"]
    try:
        for p in targets:
            p.write_bytes(V1.read_bytes())
            p.chmod(0o600)
            r = subprocess.run(
                ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BPFCAP, "info", p],
                capture_output=True,
                text=True,
            )
            assert r.returncode == 1, r.stderr
            assert r.stderr.startswith("error: ") and "permission denied" in r.stderr, r.stderr
            assert len(r.stderr.splitlines()) == 1
    finally:
        for p in targets:
            p.unlink(missing_ok=True)
        (d / "closed").rmdir()
        d.rmdir()


def test_info_json_matches_the_file():
    r = bpfcap("info", "--format", "json", V1)
    s = json.loads(r.stdout)
    assert s["format_version"] == 1 and s["clean_stop"]
    assert s["events"]["open"]["rows"] == open_trace(V1).read("open").num_rows
    assert s["lost"] == 0


@pytest.mark.parametrize(
    "report",
    ["syscount", "killsnoop", "biosnoop", "biolatency", "runqlat", "tcplife", "tcpconnect",
     "tcpaccept", "tcpstates"],
)  # fmt: skip
def test_reports_of_kinds_an_old_trace_never_recorded(report):
    """v1-open-exec predates these types (and their columns): the report is empty and
    says what the trace did not record, rather than failing."""
    r = bpfcap("report", report, V1)
    assert r.returncode == 0, r.stderr
    assert "did not record" in r.stderr and "(record with -e " in r.stderr


def test_a_written_file_is_renamed_into_place_durably(tmp_path, monkeypatch):
    """After the rename, the directory is fsynced (else a host crash can lose the name
    of a complete file); the temporary name is bpfcap's own, not OUT.tmp."""
    import bpfcap.formats.writer as writer

    calls: list[tuple[str, object]] = []
    real_open, real_fsync, real_replace = os.open, os.fsync, os.replace

    def opened(path, *a, **kw):
        fd = real_open(path, *a, **kw)
        calls.append(("open", (Path(path), fd)))
        return fd

    monkeypatch.setattr(writer.os, "open", opened)
    monkeypatch.setattr(
        writer.os, "fsync", lambda fd: (calls.append(("fsync", fd)), real_fsync(fd))
    )
    monkeypatch.setattr(
        writer.os, "replace", lambda a, b: (calls.append(("replace", Path(b))), real_replace(a, b))
    )
    out = tmp_path / "t.parquet"
    (tmp_path / "t.parquet.tmp").write_text("mine")
    write_table_file(out, [table([open_row()])], meta())
    assert (tmp_path / "t.parquet.tmp").read_text() == "mine"
    at = calls.index(("replace", out))
    dir_fds = [fd for op, (p, fd) in (c for c in calls if c[0] == "open") if p == tmp_path]
    assert any(("fsync", fd) in calls[at:] for fd in dir_fds), calls
