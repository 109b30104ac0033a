"""The prerequisite checks behind `bpfcap doctor`, each with its fix."""

from __future__ import annotations

import os
from collections.abc import Iterator

from bpfcap.formats.errors import CaptureUnavailable
from bpfcap.formats.events import EVENT_TYPES

from . import host
from .bpfgen import AUX_HOOKS, TREE_HOOKS, generate
from .btf import resolve_reads

SETUP = "run `make setup` in the bpfcap checkout"


def checks() -> Iterator[host.Check]:
    """Yield checks in order; later ones are skipped when an earlier one makes them moot."""
    rel = os.uname().release
    root_ok = host.can_bpf()
    yield host.Check(
        "privileges",
        root_ok,
        "root"
        if os.geteuid() == 0
        else "CAP_BPF+CAP_PERFMON"
        if root_ok
        else f"uid {os.geteuid()} without CAP_BPF+CAP_PERFMON",
        "run as root (sudo bpfcap ...)",
    )
    try:
        from .bpf_loader import import_bcc

        bcc = import_bcc()
        yield host.Check("BCC", True, f"python bindings {getattr(bcc, '__version__', '?')}")
    except CaptureUnavailable as e:
        bcc = None
        yield host.Check("BCC", False, e.what, "apt-get install python3-bpfcc (or " + SETUP + ")")
    hdr = host.kernel_headers()
    yield host.Check(
        "kernel headers",
        hdr is not None,
        f"/lib/modules/{rel}/build -> {os.path.realpath(hdr)}"
        if hdr
        else f"/lib/modules/{rel}/build missing",
        f"apt-get install linux-headers-{rel} (or {SETUP}, which links Debian's generic "
        "headers when none match)",
    )
    root = host.tracefs_root()
    if root is None and not os.access("/sys/kernel/tracing", os.X_OK):
        yield host.Check(
            "tracefs", False, "/sys/kernel/tracing not readable by this user", "run as root"
        )
    else:
        yield host.Check(
            "tracefs",
            root is not None,
            str(root) if root else "not mounted",
            "mount -t tracefs nodev /sys/kernel/tracing",
        )
    wanted = sorted(
        {tp for t in EVENT_TYPES for g in t.hooks for tp in g} | set(TREE_HOOKS) | set(AUX_HOOKS)
    )
    present = host.present_tracepoints(set(wanted)) if root else set()
    for tp in wanted if root else ():
        users = [t.name for t in EVENT_TYPES if any(tp in g for g in t.hooks)] or (
            ["-- COMMAND"] if tp in TREE_HOOKS else ["(cheaper open: comm cache)"]
        )
        yield host.Check(
            f"tracepoint {tp}",
            tp in present,
            "present"
            if tp in present
            else f"missing: {', '.join(users)} calls through it cannot be recorded here",
            required=False,
        )
    # Kernel struct members the BPF code reads, located in the kernel's BTF.
    offsets, reads = resolve_reads(EVENT_TYPES)
    for key, r in reads.items():
        cols = f" ({', '.join(r['columns'])})" if r["columns"] else ""
        yield host.Check(
            f"kernel struct read {key}{cols}",
            r["status"] == "btf",
            "offsets found in the kernel's BTF"
            if r["status"] == "btf"
            else f"{r['reason']}: "
            + ("those rows are not recorded" if r["required"] else "recorded without them"),
            "a kernel built with CONFIG_DEBUG_INFO_BTF (/sys/kernel/btf/vmlinux)",
            required=False,
        )
    if not (root_ok and bcc and hdr and root):
        yield host.Check("trial BPF load", False, "skipped (fix the failures above first)")
        return
    from .kernel import LoadedProgram

    try:
        prog = LoadedProgram(
            generate(
                EVENT_TYPES,
                present,
                self_tgid=os.getpid(),
                task_storage=host.task_storage(),
                kernel_offsets=offsets,
            )
        )
        prog.close()
        yield host.Check("trial BPF load", True, "the recording program compiles, loads, attaches")
    except CaptureUnavailable as e:
        yield host.Check("trial BPF load", False, e.what, e.hint)
