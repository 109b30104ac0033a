"""The recorder's side of a loaded program, without BCC: map reads and writes through
bpf(2), the ring buffer read straight from its mmap, detaching by closing descriptors.

BCC (with clang and LLVM) compiles, loads and attaches the program in a short-lived child
process (capture/bpf_loader.py), which hands the recorder the file descriptors of the
maps and of the attachments, then exits. The compiler's ~150 MB never enter the
recorder's memory, and draining costs no Python callback per ring-buffer record.
"""

from __future__ import annotations

import ctypes as ct
import mmap
import os
import platform
import socket
import struct
import time

import numpy as np

from bpfcap.formats.errors import CaptureUnavailable
from bpfcap.formats.schema import BATCH_HEADER_DTYPE

from .bpfgen import FLUSH_SYMBOL, Program
from .decode import Records, RecordSink
from .host import possible_cpus

_SYS_BPF = {"x86_64": 321, "aarch64": 280}
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
PAGE = mmap.PAGESIZE
# Ring buffer record header: u32 length with these flags, u32 page offset.
RB_BUSY = 1 << 31
RB_DISCARD = 1 << 30

_libc = ct.CDLL(None, use_errno=True)


class _MapElemAttr(ct.Structure):
    _fields_ = [
        ("map_fd", ct.c_uint32),
        ("pad", ct.c_uint32),
        ("key", ct.c_uint64),
        ("value", ct.c_uint64),
        ("flags", ct.c_uint64),
    ]


class _InfoAttr(ct.Structure):
    _fields_ = [("bpf_fd", ct.c_uint32), ("info_len", ct.c_uint32), ("info", ct.c_uint64)]


BPF_OBJ_GET_INFO_BY_FD = 15
# struct bpf_prog_info (uapi): run_cnt at 200, recursion_misses at 208 (Linux 5.12+).
_PROG_INFO_SIZE = 232
_RECURSION_MISSES = 208


def prog_recursion_misses(fd: int) -> int | None:
    """How many times the kernel skipped this program because another BPF program was
    running on that CPU (a wakeup in an interrupt during a syscall probe, say): events
    lost without any counter of ours seeing them. None where the kernel does not say."""
    buf = ct.create_string_buffer(_PROG_INFO_SIZE)
    try:
        _bpf(BPF_OBJ_GET_INFO_BY_FD, _InfoAttr(fd, _PROG_INFO_SIZE, ct.addressof(buf)))
    except OSError:
        return None
    return struct.unpack_from("<Q", buf.raw, _RECURSION_MISSES)[0]


def _bpf(cmd: int, attr: ct.Structure) -> None:
    nr = _SYS_BPF.get(platform.machine())
    if nr is None:
        raise CaptureUnavailable(f"bpf(2) syscall number unknown on {platform.machine()}")
    if _libc.syscall(nr, cmd, ct.byref(attr), ct.sizeof(attr)) < 0:
        e = ct.get_errno()
        raise OSError(e, os.strerror(e))


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes:
    k = ct.create_string_buffer(key, len(key))
    v = ct.create_string_buffer(value_size)
    _bpf(BPF_MAP_LOOKUP_ELEM, _MapElemAttr(fd, 0, ct.addressof(k), ct.addressof(v), 0))
    return v.raw


def map_update(fd: int, key: bytes, value: bytes) -> None:
    k = ct.create_string_buffer(key, len(key))
    v = ct.create_string_buffer(value, len(value))
    _bpf(BPF_MAP_UPDATE_ELEM, _MapElemAttr(fd, 0, ct.addressof(k), ct.addressof(v), 0))


class RingBuffer:
    """Consumer of a BPF ring buffer map, read from its mmap. The data area is mapped once,
    not twice in a row as the kernel allows (which makes a record that wraps contiguous):
    a mapping of a BPF ring buffer is resident in full, and a second one would count the
    same pages again in the recorder's RSS. The rare record that wraps is joined here."""

    def __init__(self, fd: int, size: int):
        self.size = size
        self.mask = size - 1
        self._cons = mmap.mmap(fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, 0)
        self._data = mmap.mmap(fd, PAGE + size, mmap.MAP_SHARED, mmap.PROT_READ, 0, PAGE)
        self._view = np.frombuffer(self._data, dtype=np.uint8)
        # Positions and headers are read and written as whole aligned words (one load or
        # store each): struct.pack_into writes byte by byte, and the kernel reading a
        # half-written consumer position saw the ring as full and dropped batches.
        self._cons_pos = np.frombuffer(self._cons, dtype=np.uint64, count=1)
        self._prod_pos = np.frombuffer(self._data, dtype=np.uint64, count=1)
        self._words = np.frombuffer(self._data, dtype=np.uint32)
        # The most bytes found waiting at a drain: how close the ring came to full.
        self.high_water = 0

    def consume(self, sink: RecordSink) -> int:
        """Copy every committed record into `sink`; returns the bytes consumed. (x86 is
        TSO: plain loads and stores give the acquire/release order the protocol needs.)"""
        cons = int(self._cons_pos[0])
        prod = int(self._prod_pos[0])
        start = cons
        self.high_water = max(self.high_water, prod - cons)
        while cons < prod:
            off = PAGE + (cons & self.mask)
            hdr = int(self._words[off // 4])
            if hdr & RB_BUSY:
                break  # reserved, not yet committed
            length = hdr & ~(RB_BUSY | RB_DISCARD)
            if not hdr & RB_DISCARD:
                end = off + 8 + length
                if end <= PAGE + self.size:
                    sink.add_array(self._view[off + 8 : end])
                else:  # wraps: its end is at the start of the data area
                    wrapped = end - PAGE - self.size
                    sink.add_array(
                        np.concatenate([self._view[off + 8 :], self._view[PAGE : PAGE + wrapped]])
                    )
            cons += (length + 8 + 7) & ~7
        if cons != start:
            self._cons_pos[0] = cons
        return cons - start

    def close(self) -> None:
        del self._view, self._words, self._prod_pos, self._cons_pos
        self._data.close()
        self._cons.close()


class LoadedProgram:
    """A compiled, attached program: drain its ring buffer, read its counters, stop it."""

    def __init__(self, program: Program):
        self._program = program
        self.sink = RecordSink()
        self._cpus = sorted(os.sched_getaffinity(0))
        self._ncpu = possible_cpus()
        desc, fds = _load_in_child(program)
        self._fds = fds
        self.maps = {name: fds[i] for name, i in desc["maps"].items()}
        self._attachments = [fds[i] for i in desc["attachments"]]
        self.tracepoints = set(desc["tracepoints"])
        self._progs = {name: fds[i] for name, i in desc.get("progs", {}).items()}
        self.compile_cpu_s = desc["cpu_s"]
        self.compile_max_rss_kb = desc["max_rss_kb"]
        self._ring = RingBuffer(self.maps["events"], desc["ringbuf_size"])

    def attached_tracepoints(self) -> set[str]:
        return self.tracepoints

    def track(self, tgid: int) -> None:
        """Add a process to the in-kernel process-tree filter."""
        map_update(self.maps["tracked"], struct.pack("<I", tgid), b"\1")

    def flush(self) -> None:
        """Make every CPU send its partial batches: run this thread on each CPU in turn
        and call the uprobed function there. A CPU this thread may no longer run on (a
        cpuset shrunk, a CPU taken offline) is skipped: its partial batches wait for one
        that allows it again, or for stop(), which reads every CPU's."""
        flush = getattr(_libc, FLUSH_SYMBOL)
        try:
            for cpu in range(self._ncpu):
                try:
                    os.sched_setaffinity(0, {cpu})
                except OSError:  # EINVAL: not allowed here (now), or not a CPU
                    continue
                flush(0)
        finally:
            try:
                os.sched_setaffinity(0, self._cpus)
            except OSError:  # none of the CPUs we started on is allowed any more
                os.sched_setaffinity(0, range(self._ncpu))

    @property
    def ring_high_water(self) -> int:
        return self._ring.high_water

    @property
    def ring_size(self) -> int:
        return self._ring.size

    def drain(self, flush: bool = True) -> int:
        """Copy every ring-buffer record written so far into `sink` (taken with take());
        returns the bytes drained. With `flush`, partial batches are sent first."""
        if flush:
            self.flush()
        return self._ring.consume(self.sink)

    def take(self) -> dict[int, Records]:
        """The records drained since the last take, joined by kind."""
        return self.sink.take()

    def _percpu(self, name: str, size: int) -> list[bytes]:
        """Entry 0 of a per-CPU array: one value (rounded up to 8 bytes) per possible CPU."""
        stride = (size + 7) // 8 * 8
        raw = map_lookup(self.maps[name], b"\0\0\0\0", stride * self._ncpu)
        return [raw[i * stride : i * stride + size] for i in range(self._ncpu)]

    def stats(self) -> np.ndarray:
        """(cpus, 2 * (max kind + 1)) counters: seen at [2k], lost at [2k+1] for kind k,
        from the batch headers plus the map of rare entry-stash failures."""
        n = self._program.stats_entries
        out = np.zeros((self._ncpu, n), dtype=np.uint64)
        # Only the recorded types' entries (one bpf(2) call each): nothing counts others.
        for i in sorted({2 * t.kind_id + j for t in self._program.types for j in (0, 1)}):
            raw = map_lookup(self.maps["stats"], struct.pack("<I", i), 8 * self._ncpu)
            out[:, i] = np.frombuffer(raw, dtype=np.uint64)
        for t in self._program.types:
            for cpu, raw in enumerate(self._percpu(f"{t.name}_batches", t.batch_dtype().itemsize)):
                h = np.frombuffer(raw, dtype=BATCH_HEADER_DTYPE, count=1)[0]
                out[cpu, 2 * t.kind_id] += h["seen"]
                out[cpu, 2 * t.kind_id + 1] += h["lost"]
        return out

    def tree_full(self) -> int:
        """Tasks the tree filter could not add (stats[TREE_FULL_STAT], all CPUs)."""
        i = self._program.stats_entries
        raw = map_lookup(self.maps["stats"], struct.pack("<I", i), 8 * self._ncpu)
        return int(np.frombuffer(raw, dtype=np.uint64).sum())

    def missed_runs(self) -> dict[str, int]:
        """Runs of each program the kernel skipped (see prog_recursion_misses), where
        any were."""
        out = {}
        for name, fd in self._progs.items():
            n = prog_recursion_misses(fd)
            if n:
                out[name] = n
        return out

    def stop(self) -> None:
        """Detach every hook (close the attachments), then drain what is left into the
        sink: the ring buffer and each CPU's partial batches (no program can touch them
        any more)."""
        for fd in self._attachments:
            os.close(fd)
            self._fds.remove(fd)  # close() must not close the number again: it may be reused
        self._attachments = []
        # Let programs that were running on other CPUs at detach time finish.
        time.sleep(0.05)
        self._ring.consume(self.sink)
        for t in self._program.types:
            for cpu, raw in enumerate(self._percpu(f"{t.name}_batches", t.batch_dtype().itemsize)):
                if int.from_bytes(raw[4:8], "little"):
                    # Kind and CPU are stamped only when a batch is sent; stamp them here.
                    kind, at = t.kind_id.to_bytes(4, "little"), cpu.to_bytes(4, "little")
                    self.sink.add(kind + raw[4:8] + at + raw[12:])

    def close(self) -> None:
        self._ring.close()
        for fd in self._fds:
            os.close(fd)
        self._fds = []


def _load_in_child(program: Program) -> tuple[dict, list[int]]:
    """Fork; the child compiles, loads and attaches with BCC and sends back the file
    descriptors; the recorder keeps them. Raises CaptureUnavailable with the child's
    reason when it fails."""
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        parent_sock.close()
        from .bpf_loader import load_and_send

        load_and_send(program, parent, child_sock)
    child_sock.close()
    from .bpf_loader import receive_descriptors

    try:
        with parent_sock:
            desc, fds = receive_descriptors(parent_sock)
    finally:
        _, status, ru = os.wait4(pid, 0)
    if desc is None:
        raise CaptureUnavailable(
            f"the BPF loader process died ({os.waitstatus_to_exitcode(status)})",
            "run `bpfcap doctor`",
        )
    if "error" in desc:
        for fd in fds:
            os.close(fd)
        raise CaptureUnavailable(desc["error"], desc.get("hint", ""))
    desc["cpu_s"] = ru.ru_utime + ru.ru_stime
    desc["max_rss_kb"] = ru.ru_maxrss
    return desc, fds
