"""Traces that would hurt a reader (issue 11): more files than a process may open,
terminal escapes in what a recorded process controls, formula cells, memory bombs,
malformed metadata and filters. Each gets its answer, or one line and exit 1."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

from bpfcap.formats.trace import SegmentDir
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
