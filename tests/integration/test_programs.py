"""The generated BPF program compiles, passes the verifier and attaches with every event
type, every filter and every kernel struct read, in both entry-stash modes (task storage;
the hash used on kernels without it)."""

from __future__ import annotations

import os

import pytest

from bpfcap.capture import host
from bpfcap.capture.bpfgen import AUX_HOOKS, TREE_HOOKS, generate
from bpfcap.capture.btf import resolve_reads
from bpfcap.formats.events import EVENT_TYPES


@pytest.mark.parametrize("task_storage", [True, False], ids=["task-storage", "hash"])
@pytest.mark.parametrize("filters", ["none", "all"])
def test_program_loads(task_storage: bool, filters: str) -> None:
    from bcc import BPF  # the integration tests run where BCC is importable

    hooks = {tp for t in EVENT_TYPES for g in t.hooks for tp in g}
    present = host.present_tracepoints(hooks | set(TREE_HOOKS) | set(AUX_HOOKS))
    kw = {}
    if filters == "all":
        kw = dict(filter_tgid=1, filter_tree=True, filter_comm=b"nginx", syscalls=(0, 110))
    program = generate(
        EVENT_TYPES,
        present,
        self_tgid=os.getpid(),
        task_storage=task_storage,
        kernel_offsets=resolve_reads(EVENT_TYPES)[0],
        **kw,
    )
    b = BPF(text=program.text.encode(), cflags=program.cflags)
    try:
        # Every tracepoint of the types that this kernel has carries a program (bio's
        # block_rq_insert only stands in where block_io_start is missing).
        attached = {tp.decode() if isinstance(tp, bytes) else tp for tp in b.tracepoint_fds}
        fallback = {"block:block_rq_insert"} if "block:block_io_start" in present else set()
        assert {tp for tp in hooks if tp in present} - fallback <= attached
    finally:
        b.cleanup()
