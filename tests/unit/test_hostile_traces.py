"""Traces that would hurt a reader (issue 11): more files than a process may open,
terminal escapes in what a recorded process controls, formula cells, memory bombs,
malformed metadata and filters. Each gets its answer, or one line and exit 1."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from bpfcap.capture.segments import SegmentDir
from bpfcap.tests.builders import START_NS, S, exec_row, meta, open_row, table, write_trace

BPFCAP = str(Path(sys.executable).parent / "bpfcap")


def run(*args, limits: dict[int, int] | None = None) -> subprocess.CompletedProcess:
    """`bpfcap ARGS` in a process with resource `limits` (RLIMIT_* -> soft and hard)."""

    def apply() -> None:
        for which, value in (limits or {}).items():
            resource.setrlimit(which, (value, value))

    return subprocess.run(
        [BPFCAP, *map(str, args)], capture_output=True, preexec_fn=apply, timeout=300
    )


def test_a_killed_recording_of_more_segments_than_open_files_reads(tmp_path):
    """A recorder killed after N segments leaves N files; a reader opens one at a time
    (it used to keep every one open and fail at the 1,020th under the default 1,024)."""
    n = 300
    d = SegmentDir(tmp_path / "t.parquet.partial", header=meta(clean_stop=False, events={}))
    for i in range(n):
        rows = table([open_row(ts_ns=START_NS + i * S // 100)])
        d.close_segment(meta(clean_stop=False), lambda rows=rows: [rows])
    d.finish()
    r = run("report", "opensnoop", d.path, limits={resource.RLIMIT_NOFILE: 64})
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.decode().splitlines()) == 1 + n


ESC_TITLE = b"\x1b]0;pwned\x07"  # set the terminal's title
CLEAR = b"\r\x1b[2K"  # rewrite the line
OSC52 = b"\x1b]52;c;ZWNobyBwd25lZA==\x07"  # write the clipboard
C1_CSI = "\u009b2J".encode()  # clear the screen, C1 form


def _hostile(tmp_path: Path) -> Path:
    rows = [
        open_row(comm=b"x" + ESC_TITLE[:10], path=b"/tmp/" + CLEAR + b"ok"),
        open_row(path=b"/tmp/" + OSC52),
        open_row(path=b"/tmp/" + C1_CSI),
        open_row(path=b'=HYPERLINK("http://x","y")'),
        exec_row(args=[b"-c", b"a\nPID COMM FD ERR PATH\n1 fake 3 0 /etc/shadow"]),
    ]
    host = {"hostname": "evil" + ESC_TITLE.decode(), "os": "Linux", "machine": "x86_64"}
    return write_trace(tmp_path / "t.parquet", rows, host=host)


def _no_controls(out: bytes) -> None:
    assert not [c for c in out if c < 0x20 and c != 0x0A or c == 0x7F], out
    assert b"\xc2\x9b" not in out


def test_terminal_controls_in_recorded_text_are_printed_escaped(tmp_path):
    t = _hostile(tmp_path)
    for args in (
        ["report", "opensnoop", t],
        ["report", "execsnoop", t],
        ["report", "count", t, "--by", "path"],
        ["report", "count", t, "--by", "comm"],
        ["info", t],
    ):
        r = run(*args)
        assert r.returncode == 0, (args, r.stderr)
        _no_controls(r.stdout)
        assert b"\\x1b" in r.stdout or args[1] == "execsnoop", (args, r.stdout)
    snoop = run("report", "opensnoop", t).stdout
    assert b"/tmp/\\x0d\\x1b[2Kok" in snoop and b"/tmp/\\xc2\\x9b2J" in snoop
    # A newline in a value cannot forge a line of the report.
    execs = run("report", "execsnoop", t).stdout.splitlines()
    assert len(execs) == 2 and b"-c a\\nPID COMM" in execs[1]  # as BCC escapes it
    # --raw: the bytes as recorded, for who wants them (as BCC prints them).
    raw = run("report", "opensnoop", "--raw", t).stdout
    assert CLEAR in raw and OSC52 in raw


def test_csv_cells_cannot_start_a_formula(tmp_path):
    t = _hostile(tmp_path)
    out = run("report", "opensnoop", t, "--format", "csv").stdout.decode()
    assert "'=HYPERLINK(" in out and ",=HYPERLINK(" not in out
    raw = run("report", "opensnoop", t, "--format", "csv", "--raw").stdout.decode()
    assert '"=HYPERLINK(""http://x"",""y"")"' in raw or ",=HYPERLINK" in raw


def test_a_newline_in_a_map_key_cannot_forge_a_line(tmp_path):
    t = write_trace(tmp_path / "t.parquet", [open_row(path=b"/a\n@[/etc/shadow]: 999"), open_row()])
    out = run("report", "count", t, "--by", "path").stdout
    assert out.count(b"\n@[") == 1 and b"/a\\x0a@[/etc/shadow]: 999]: 1" in out
    hist = run("report", "hist", t, "--field", "lat_ns", "--by", "path").stdout
    assert b"@lat_ns[/a\\x0a@[/etc/shadow]: 999]:" in hist


HOSTILE = Path(__file__).resolve().parent.parent / "hostile"
GB = 1 << 30


_MEASURE = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def _peak_rss_mb(*args) -> tuple[int, float]:
    """`bpfcap ARGS` (stdout discarded): exit status and peak RSS. Measured from a fresh
    small Python that runs it: a child's peak counts the memory of the process it was
    forked from, here that small one, not the test process."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, BPFCAP, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout.split()
    return int(out[0]), int(out[1]) / 1024


def test_a_long_value_repeated_is_read_in_bounded_memory():
    """One 60 KB path, dictionary-encoded, in 50,000 rows: 3 GB once expanded, from a
    45 KB file. Reports hold what they print a slice at a time (trace.READ_BYTES) and
    aggregates their keys: both run under a 2 GB address-space limit (a Python with
    pyarrow reserves ~1.7 GB), where reading the whole row group did not."""
    f = HOSTILE / "path-bomb.parquet"
    limit = {resource.RLIMIT_AS: 2 * GB}
    count = run("report", "count", f, "--by", "path", limits=limit)
    assert count.returncode == 0, count.stderr
    assert count.stdout.endswith(b"a]: 50000\n")
    r = subprocess.run(
        [
            "sh",
            "-c",
            f'ulimit -v {2 * GB // 1024}; "{BPFCAP}" report opensnoop "$1" | wc -l',
            "sh",
            str(f),
        ],
        capture_output=True,
        timeout=600,
    )
    assert r.returncode == 0 and int(r.stdout) == 1 + 50_000, r.stderr


def test_a_value_longer_than_any_bpfcap_writes_is_refused():
    r = run("report", "opensnoop", HOSTILE / "path-too-long.parquet")
    assert r.returncode == 1
    assert r.stderr.decode().count("\n") == 1
    assert b"longer than 65536 bytes" in r.stderr


def test_info_counts_kinds_without_statistics_in_bounded_memory():
    """10M rows whose kind has no statistics (a 1 MB file): counted a batch at a time."""
    rc, rss = _peak_rss_mb("info", HOSTILE / "kind-no-stats.parquet")
    assert rc == 0
    out = run("info", HOSTILE / "kind-no-stats.parquet").stdout.decode()
    assert re.search(r"\n  open +10000000 rows", out), out
    assert rss < 400, f"peak RSS {rss:.0f} MB"


@pytest.mark.parametrize(
    "args",
    [
        ["report", "syscount", "-i", "1"],
        ["report", "biolatency", "{f}", "1"],
        ["report", "runqlat", "{f}", "1"],
    ],
)
def test_a_far_end_does_not_build_windows_without_bound(args):
    f = HOSTILE / "meta-far-end.parquet"
    args = [str(f) if a == "{f}" else a for a in args]
    if str(f) not in args:
        args.append(str(f))
    r = run(*args, limits={resource.RLIMIT_AS: 2 * GB})
    assert r.returncode == 2, r.stderr
    assert r.stderr.decode().startswith("error: ") and b"intervals of 1 s" in r.stderr


@pytest.mark.parametrize(
    "name", ["meta-deep", "meta-clock-string", "meta-empty-probe", "meta-huge-int", "times-wrap"]
)
@pytest.mark.parametrize(
    "args",
    [
        ["info"],
        ["report", "opensnoop"],
        ["report", "opensnoop", "-T"],
        ["report", "count", "--by", "comm"],
        ["report", "syscount"],
        ["report", "biolatency"],
    ],
)
def test_hostile_metadata_and_times_end_in_one_line(name, args):
    """Exit 0 (the file is usable) or 1 with one line: never an internal error (70)."""
    r = run(*args, HOSTILE / f"{name}.parquet")
    assert r.returncode in (0, 1), r.stderr
    if r.returncode:
        lines = r.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr


@pytest.mark.parametrize(
    "where, needle",
    [
        ("tgid == 123456789012345678901", "out of range"),
        ("tgid == -99999999999999999999", "out of range"),
        ('tgid == "abc"', "cannot compare number with text"),
        ("kind == 5", "cannot compare text with number"),
        ('tgid in (1, "a")', "cannot compare number with text"),
        ('path ~ "("', "bad regular expression"),
        ('tgid ~ "1"', "~ needs a text column"),
        ('flags & "x" != 0', "& takes numbers"),
        ("not " * 2000 + "tgid == 1", "nested more than"),
        ("(" * 2000 + "tgid == 1" + ")" * 2000, "nested more than"),
    ],
)
def test_bad_where_is_one_line(tmp_path, where, needle):
    t = write_trace(tmp_path / "t.parquet", [open_row()])
    r = run("report", "count", t, "--by", "comm", "--where", where)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --where") and needle in lines[0]


def test_where_numbers_as_written(tmp_path):
    """0123 is decimal (it used to be an internal error), 0x and 0o as in C."""
    t = write_trace(tmp_path / "t.parquet", [open_row(tgid=123), open_row(tgid=16)])
    for where, n in (("tgid == 0123", 1), ("tgid == 0x10", 1), ("tgid == 0o20", 1)):
        r = run("report", "count", t, "--by", "comm", "--where", where)
        assert r.returncode == 0 and r.stdout.endswith(f"]: {n}\n".encode()), (where, r)
