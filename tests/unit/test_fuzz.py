"""Hostile and broken trace files against every reading command (issue 5, point 6):
truncated at any length, bytes overwritten anywhere, metadata replaced by any JSON.
Each must end in exit status 0 (what could be read) or 1 with one line naming the file
and the problem: never a traceback (status 70), never a hang.

A fixed budget runs in CI; a longer run: BPFCAP_FUZZ_EXAMPLES=20000 pytest tests/unit/test_fuzz.py
"""

from __future__ import annotations

import copy
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfcap.cli.main import main
from bpfcap.formats.trace import KEY_META, KEY_VERSION
from bpfcap.tests.builders import (
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

EXAMPLES = int(os.environ.get("BPFCAP_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
COMMANDS = [
    ["info"],
    ["info", "--format", "json"],
    ["report", "opensnoop", "-T", "-e"],
    ["report", "execsnoop", "-x", "-M"],
    ["report", "syscount", "-L", "-P", "-i", "1"],
    ["report", "biosnoop", "-Q", "-P"],
    ["report", "biolatency", "-D", "-e"],
    ["report", "runqlat", "-P"],
    ["report", "killsnoop"],
    ["report", "tcplife", "-w"],
    ["report", "tcpstates"],
    ["report", "count", "--by", "kind,comm"],
    ["report", "hist", "--field", "lat_ns", "--by", "kind"],
    ["summary"],
    ["summary", "--format", "json"],
    ["diff", "@TRACE"],
    ["slice", "-o", "@OUT", "--force", "--since", "1s", "-e", "open,exec"],
    ["redact", "-o", "@OUT", "--force"],
    ["share", "-o", "@OUT", "--force", "--where", "ret < 0"],
]
ROWS = [
    open_row(),
    exec_row(),
    fork_row(),
    syscall_row(),
    signal_row(),
    bio_row(),
    runq_row(),
    tcp_row(),
]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = write_trace(tmp_path_factory.mktemp("fz") / "good.parquet", ROWS)
    return path.read_bytes()


def run_cli(argv: list[str]) -> tuple[int, str]:
    """`bpfcap ARGV` in this process: (exit status, stderr)."""
    out, err = io.BytesIO(), io.BytesIO()
    saved = sys.stdout, sys.stderr
    sys.stdout = io.TextIOWrapper(out, write_through=True)
    sys.stderr = io.TextIOWrapper(err, write_through=True)
    try:
        main(argv)
        rc = 0
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 0
    finally:
        for wrapper in (sys.stdout, sys.stderr):
            wrapper.flush()
            wrapper.detach()  # keep the BytesIO open
        sys.stdout, sys.stderr = saved
    return rc, err.getvalue().decode(errors="replace")


def argv_for(path: Path, command: list[str]) -> list[str]:
    """The command line with `path` as its TRACE argument."""
    if command[0] == "report":
        return [*command[:2], str(path), *command[2:]]
    return [command[0], str(path), *command[1:]]


def check(path: Path, command: list[str]) -> None:
    out = str(path.with_name("out.parquet"))
    command = [{"@TRACE": str(path), "@OUT": out}.get(a, a) for a in command]
    rc, err = run_cli(
        [*command[:2], str(path), *command[2:]]
        if command[0] == "report"
        else [command[0], str(path), *command[1:]]
    )
    assert rc in (0, 1), f"{command}: status {rc}: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    if rc == 1:
        lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
        assert len(lines) == 1 and str(path) in lines[0], err


def test_the_untouched_file_reads(good, tmp_path) -> None:
    p = tmp_path / "t.parquet"
    p.write_bytes(good)
    for command in COMMANDS:
        command = [
            {"@TRACE": str(p), "@OUT": str(tmp_path / "out.parquet")}.get(a, a) for a in command
        ]
        check(p, command)
        assert (
            run_cli(
                [*command[:2], str(p), *command[2:]]
                if command[0] == "report"
                else [command[0], str(p), *command[1:]]
            )[0]
            == 0
        )


@FUZZ
@given(data=st.data())
def test_truncated_anywhere(good, tmp_path, data) -> None:
    keep = data.draw(st.integers(0, len(good) - 1), label="bytes kept")
    p = tmp_path / "t.parquet"
    p.write_bytes(good[:keep])
    check(p, data.draw(st.sampled_from(COMMANDS), label="command"))


@FUZZ
@given(data=st.data())
def test_bytes_overwritten_anywhere(good, tmp_path, data) -> None:
    buf = bytearray(good)
    for _ in range(data.draw(st.integers(1, 8), label="edits")):
        at = data.draw(st.integers(0, len(buf) - 1), label="offset")
        buf[at] = data.draw(st.integers(0, 255), label="byte")
    p = tmp_path / "t.parquet"
    p.write_bytes(bytes(buf))
    check(p, data.draw(st.sampled_from(COMMANDS), label="command"))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
META_KEYS = ["start_ns", "end_ns", "clean_stop", "clock", "events", "processes", "disks",
             "host", "settings", "agent", "probes", "missed_runs", "command_line"]  # fmt: skip


@FUZZ
@given(data=st.data())
def test_metadata_replaced_by_any_json(good, tmp_path, data) -> None:
    src = tmp_path / "src.parquet"
    src.write_bytes(good)
    table = pq.read_table(src)
    md = dict(pq.read_metadata(src).metadata)
    meta = json.loads(md[KEY_META])
    for key in data.draw(st.lists(st.sampled_from(META_KEYS), max_size=4), label="keys"):
        meta[key] = data.draw(JSON, label=key)
    md[KEY_META] = json.dumps(meta).encode()
    if data.draw(st.booleans(), label="mangle version"):
        md[KEY_VERSION] = data.draw(st.text(max_size=6), label="version").encode()
    p = tmp_path / "t.parquet"
    pq.write_table(table.replace_schema_metadata(md), p)
    check(p, data.draw(st.sampled_from(COMMANDS), label="command"))


# Values of the right JSON shape but hostile: huge, negative, far, wrong scalar type.
HOSTILE_SCALAR = (
    st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.sampled_from([0, -1, (1 << 62), (1 << 63) - 1, 1 << 63, 1 << 64, 10**30])
    | st.text(max_size=8)
    | st.floats(allow_nan=False)
    | st.none()
    | st.booleans()
)
# Paths into the metadata a reader descends into (a key per level; "#0": a list's first).
META_PATHS = [
    ("start_ns",), ("end_ns",), ("clock", "realtime_minus_monotonic_ns"),
    ("clock", "utc_offset_s"), ("clock", "tz"), ("probes", "#0", "event"),
    ("probes", "#0", "status"), ("probes", "#0", "tracepoints"), ("probes", "#0"),
    ("events", "open", "seen"), ("events", "open", "lost"), ("events", "open", "written"),
    ("events", "open", "lost_timeline"), ("events", "open", "seen_per_cpu"),
    ("processes", "#0"), ("disks", "#0"), ("missed_runs", "x"), ("tree_filter_full",),
    ("host", "hostname"), ("host", "ncpus"), ("settings", "events"),
]  # fmt: skip


def _set(meta: dict, path: tuple[str, ...], value) -> None:
    """meta[path] = value, creating dicts on the way; a path through a value that is not
    a container of the kind the path needs ends where it is (nothing set)."""
    node: Any = meta
    for key in path[:-1]:
        if key == "#0":
            if not (isinstance(node, list) and node):
                return
            node = node[0]
        elif isinstance(node, dict):
            if not isinstance(node.get(key), (dict, list)):
                node[key] = {}
            node = node[key]
        else:
            return
    last = path[-1]
    if last == "#0" and isinstance(node, list):
        node[:1] = [value]
    elif last != "#0" and isinstance(node, dict):
        node[last] = value


@FUZZ
@given(data=st.data())
def test_metadata_fields_given_hostile_values(good, tmp_path, data) -> None:
    """Inside the shape readers use: any field a reader descends into set to a hostile
    value (beyond 64 bits, negative, far in time, the wrong type), or nested deep."""
    src = tmp_path / "src.parquet"
    src.write_bytes(good)
    table = pq.read_table(src)
    md = dict(pq.read_metadata(src).metadata)
    meta = json.loads(md[KEY_META])
    for path in data.draw(st.lists(st.sampled_from(META_PATHS), min_size=1, max_size=3)):
        # A copy: a later path may descend into it, and a drawn value must stay as drawn
        # (hypothesis replays it).
        _set(meta, path, copy.deepcopy(data.draw(HOSTILE_SCALAR | JSON, label=".".join(path))))
    body = json.dumps(meta).encode()
    if data.draw(st.booleans(), label="nest deep"):
        depth = data.draw(st.integers(min_value=900, max_value=20_000), label="depth")
        body = body[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    md[KEY_META] = body
    p = tmp_path / "t.parquet"
    pq.write_table(table.replace_schema_metadata(md), p)
    check(p, data.draw(st.sampled_from(COMMANDS), label="command"))


def test_truncated_at_every_length(good, tmp_path) -> None:
    """Every prefix of a small trace: opened and read whole, or refused in one error."""
    from bpfcap.formats.errors import BpfcapError
    from bpfcap.formats.events import EVENT_TYPES
    from bpfcap.formats.trace import open_trace

    p = tmp_path / "t.parquet"
    readable = 0
    for keep in range(len(good) + 1):
        p.write_bytes(good[:keep])
        try:
            t = open_trace(p)
            for k in EVENT_TYPES:
                t.read(k.name)
            readable += 1
        except BpfcapError as e:
            assert str(p) in str(e)
    assert readable == 1  # only the whole file


def test_absurd_footer_length_is_refused(good, tmp_path) -> None:
    """A footer claiming 4 GB (Parquet keeps its length in the 4 bytes before the end)."""
    p = tmp_path / "t.parquet"
    p.write_bytes(good[:-8] + (0xFFFFFFF0).to_bytes(4, "little") + b"PAR1")
    rc, err = run_cli(["info", str(p)])
    assert rc == 1 and err.count("\n") == 1 and str(p) in err
