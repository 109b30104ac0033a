"""The one module that imports BCC. It runs in a short-lived child of the recorder
(capture/kernel.py forks it): compile, load, attach, hand the file descriptors of maps
and attachments to the recorder over a Unix socket, exit. The compiler's memory dies
with the child.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import traceback
from contextlib import contextmanager

from bpfcap.formats.errors import CaptureUnavailable

from .bpfgen import FLUSH_HZ, FLUSH_SYMBOL, Program

BCC_FIX = "install Debian's python3-bpfcc (make setup does) and run with a Python that sees it"


def import_bcc():
    try:
        import bcc  # noqa: F401  (the only BCC import in bpfcap)
    except ImportError as e:
        raise CaptureUnavailable(f"BCC Python bindings are not importable ({e})", BCC_FIX) from e
    return bcc


@contextmanager
def _quiet_stderr():
    """Send fd 2 to a file while clang/libbcc run: their warnings ("macro redefined"...)
    must not reach the user's terminal. Yields a list that holds what was captured once
    the block ends."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        captured: list[str] = []
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            captured.append(f.read().decode("utf-8", "replace"))


def _first_errors(log: str, limit: int = 3) -> str:
    """The compiler's first error lines, or its last line when none says "error"."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return " | ".join(errors[:limit] or lines[-1:])


def _load(program: Program, parent: int) -> tuple[dict, list[int]]:
    """Compile, load and attach; return (description, file descriptors)."""
    bcc = import_bcc()
    with _quiet_stderr() as log:
        try:
            # Tracepoint probes attach while BPF() loads (BCC's autoload).
            # This process attaches, then still works a little (uprobe symbol lookup,
            # sending the descriptors): like the recorder itself, it is not recorded.
            cflags = [*program.cflags, f"-DLOADER_TGID={os.getpid()}"]
            b = bcc.BPF(text=program.text, cflags=cflags)
        except Exception as e:
            detail = _first_errors("".join(log)) or str(e)
            raise CaptureUnavailable(
                f"the kernel refused the BPF program: {str(e).strip()} ({detail})",
                "run `bpfcap doctor`; `bpfcap record --ebpf` prints the program",
            ) from e
    try:
        b.attach_perf_event(
            ev_type=bcc.PerfType.SOFTWARE,
            ev_config=bcc.PerfSWConfig.CPU_CLOCK,
            fn_name="bpfcap_flush_timer",
            sample_period=1_000_000_000 // FLUSH_HZ,
            cpu=-1,
        )
    except Exception as e:
        raise CaptureUnavailable(
            f"cannot attach the flush timer (cpu-clock perf event): {e}",
            "perf events must be allowed (kernel.perf_event_paranoid, CAP_PERFMON)",
        ) from e
    try:
        # In the recorder's process only (pid filter): nobody else's getpgid is slowed.
        b.attach_uprobe(name="c", sym=FLUSH_SYMBOL, fn_name="bpfcap_flush_uprobe", pid=parent)
    except Exception as e:
        raise CaptureUnavailable(
            f"cannot attach the flush uprobe on libc {FLUSH_SYMBOL}: {e}",
            "uprobes must be enabled in the kernel (CONFIG_UPROBE_EVENTS)",
        ) from e
    fds: list[int] = []
    maps = {}
    names = ["events", "stats", *(f"{t.name}_batches" for t in program.types)]
    if "-DFILTER_TREE" in program.cflags:
        names.append("tracked")
    from bcc.libbcc import lib

    for name in names:
        # The descriptor alone (b[name] would build BCC's ctypes view of the value, which
        # it gets wrong for 2-D char arrays; the recorder reads values raw).
        fd = lib.bpf_table_fd(b.module, name.encode())
        if fd < 0:
            raise CaptureUnavailable(f"BPF map {name} missing from the program")
        maps[name] = len(fds)
        fds.append(fd)
    # The programs themselves: the recorder reads how often the kernel skipped each.
    progs = {}
    for name, fn in b.funcs.items():
        name = name.decode() if isinstance(name, bytes) else name
        progs[name] = len(fds)
        fds.append(fn.fd)
    attachments = []
    tracepoints = []
    for tp, fd in b.tracepoint_fds.items():
        attachments.append(len(fds))
        fds.append(fd)
        tracepoints.append(tp.decode() if isinstance(tp, bytes) else tp)
    for per_cpu in b.open_perf_events.values():
        for fd in per_cpu.values():
            attachments.append(len(fds))
            fds.append(fd)
    for fd in b.uprobe_fds.values():
        attachments.append(len(fds))
        fds.append(fd)
    desc = {
        "maps": maps,
        "attachments": attachments,
        "tracepoints": sorted(tracepoints),
        "progs": progs,
        "ringbuf_size": program.ringbuf_pages * 4096,
    }
    return desc, fds


# Descriptors per SCM_RIGHTS message: Linux takes at most 253 (SCM_MAX_FD). A program
# has ~60 maps, programs and tracepoint links, plus a perf event per CPU for the flush
# timer: more than 253 from ~190 CPUs.
FDS_PER_MESSAGE = 250


def send_descriptors(sock: socket.socket, desc: dict, fds: list[int]) -> None:
    """`desc` (JSON, its length first) and then `fds`, FDS_PER_MESSAGE at a time, each
    group with one byte of data (descriptors travel only with data)."""
    body = json.dumps(dict(desc, nfds=len(fds))).encode()
    sock.sendall(len(body).to_bytes(8, "little") + body)
    for i in range(0, len(fds), FDS_PER_MESSAGE):
        socket.send_fds(sock, [b"F"], fds[i : i + FDS_PER_MESSAGE])


def receive_descriptors(sock: socket.socket) -> tuple[dict | None, list[int]]:
    """What send_descriptors() sent: the description (None if the sender died before
    sending it) and the descriptors, in order."""

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            more = sock.recv(n - len(data))
            if not more:
                return b""
            data += more
        return data

    size = exactly(8)
    body = exactly(int.from_bytes(size, "little")) if size else b""
    if not body:
        return None, []
    desc = json.loads(body)
    fds: list[int] = []
    while len(fds) < desc["nfds"]:
        msg, got, _flags, _addr = socket.recv_fds(sock, 1, FDS_PER_MESSAGE)
        fds += got
        if not msg:
            break
    if len(fds) != desc["nfds"]:
        for fd in fds:
            os.close(fd)
        return None, []
    return desc, fds


def load_and_send(program: Program, parent: int, sock: socket.socket) -> None:
    """In the child: load, send the descriptors (or the error) to the recorder, exit
    without BCC's cleanup (which would detach what the recorder now holds)."""
    code = 0
    try:
        try:
            desc, fds = _load(program, parent)
        except CaptureUnavailable as e:
            desc, fds = {"error": e.what, "hint": e.hint}, []
        except BaseException as e:  # a bug: report it rather than die silently
            desc = {
                "error": f"BPF loader failed: {type(e).__name__}: {e}",
                "hint": traceback.format_exc(limit=3).replace("\n", " "),
            }
            fds = []
        send_descriptors(sock, desc, fds)
    except BaseException:
        code = 1
    finally:
        os._exit(code)
