"""Traces that would hurt a reader (issue 11): more files than a process may open,
terminal escapes in what a recorded process controls, formula cells, memory bombs,
malformed metadata and filters. Each gets its answer, or one line and exit 1."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

from bpfcap.formats.trace import SegmentDir
from bpfcap.tests.builders import START_NS, S, meta, open_row, table

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
