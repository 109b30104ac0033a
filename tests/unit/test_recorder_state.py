"""Recorder details that no kernel event shows (issue 11, point 8): descriptors closed
once, the loss timeline handed to the writer thread as a copy, sched_process_exit's
group_dead used only where the kernel has it."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bpfcap.capture import host
from bpfcap.capture.bpfgen import generate
from bpfcap.capture.kernel import LoadedProgram
from bpfcap.capture.recorder import Recorder, RecordOptions
from bpfcap.formats.events import BY_NAME


def test_attachments_are_closed_once(monkeypatch):
    """stop() closes the attachments; close() must not close their numbers again: by
    then they may belong to another file."""
    monkeypatch.setattr("time.sleep", lambda s: None)
    attach = os.open("/dev/null", os.O_RDONLY)
    other = os.open("/dev/null", os.O_RDONLY)
    lp = LoadedProgram.__new__(LoadedProgram)
    lp._attachments, lp._fds = [attach], [attach, other]
    lp._ring = SimpleNamespace(consume=lambda sink: 0, close=lambda: None)
    lp._program = SimpleNamespace(types=())
    lp.sink = None
    lp.stop()
    reused = os.open("/etc/hostname", os.O_RDONLY)  # takes the number stop() freed
    assert reused == attach
    lp.close()
    assert os.read(reused, 1)  # still open: close() left it alone
    os.close(reused)
    try:
        os.fstat(other)
        raise AssertionError("close() did not close the program's own descriptors")
    except OSError:
        pass


def test_the_loss_timeline_goes_to_the_writer_as_a_copy():
    """The metadata of a segment (serialised in the writer thread) must not share the
    lists the drain loop goes on appending to."""
    r = Recorder(RecordOptions(events=(BY_NAME["open"],)), log=lambda m: None)
    r.static_meta, r.start_ns = {"agent": {}}, 0
    kind = BY_NAME["open"].kind_id
    stats = np.zeros((1, 2 * (kind + 1)), np.uint64)
    stats[0, 2 * kind + 1] = 5  # 5 lost
    loaded = SimpleNamespace(
        stats=lambda: stats,
        missed_runs=lambda: {},
        tree_full=lambda: 0,
        compile_cpu_s=0.0,
        compile_max_rss_kb=0,
        ring_high_water=0,
        ring_size=1,
    )
    meta = r._meta(loaded, 10, clean=False)
    stats[0, 2 * kind + 1] = 9
    r._meta(loaded, 20, clean=False)
    assert meta["events"]["open"]["lost_timeline"] == [[0, 10, 5]]
    assert r.lost_timeline["open"] == [[0, 10, 5], [10, 20, 9]]


def _fake_tracefs(root: Path, with_group_dead: bool) -> Path:
    d = root / "events" / "sched" / "sched_process_exit"
    d.mkdir(parents=True)
    fields = ["char comm[16]", "pid_t pid", "int prio"] + (["bool group_dead"] * with_group_dead)
    text = "".join(f"\tfield:{f};\toffset:0;\tsize:4;\tsigned:0;\n" for f in fields)
    (d / "format").write_text(f"name: sched_process_exit\nformat:\n{text}")
    return root


def test_group_dead_only_where_the_kernel_has_it(tmp_path, monkeypatch):
    for have in (True, False):
        root = _fake_tracefs(tmp_path / str(have), have)
        monkeypatch.setenv("BPFCAP_TRACEFS", str(root))
        found = host.tracepoint_has_field("sched:sched_process_exit", "group_dead")
        assert found is have
        prog = generate(
            (BY_NAME["exec"],), set(), self_tgid=1, filter_tree=True, exit_group_dead=found
        )
        assert ("-DHAVE_FIELD_sched_process_exit_group_dead" in prog.cflags) is have
    assert host.tracepoint_has_field("sched:sched_process_exit", "comm")  # comm[16]
