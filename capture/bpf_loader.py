"""The one module that imports BCC: compile, attach, drain, detach.

Everything here works on raw bytes; decoding happens in bulk in capture/decode.py.
"""

from __future__ import annotations

import ctypes as ct
import os
import tempfile
import time
from contextlib import contextmanager

import numpy as np

from bpfcap.formats.errors import CaptureUnavailable
from bpfcap.formats.schema import BATCH_HEADER_DTYPE

from .bpfgen import FLUSH_HZ, Program
from .decode import RecordSink

# A libc function the recorder calls only to trigger the flush uprobe on a chosen CPU.
FLUSH_SYMBOL = "getpgid"
_BCC_FIX = "install Debian's python3-bpfcc (make setup does) and run with a Python that sees it"


def import_bcc():
    try:
        import bcc  # noqa: F401  (the only BCC import in bpfcap)
    except ImportError as e:
        raise CaptureUnavailable(f"BCC Python bindings are not importable ({e})", _BCC_FIX) from e
    return bcc


@contextmanager
def _quiet_stderr():
    """Send fd 2 to a file while clang/libbcc run: their warnings ("macro redefined"...)
    must not reach the user's terminal. Yields a function returning what was captured."""
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


class LoadedProgram:
    """A compiled, attached program: drain its ring buffer, read its counters."""

    def __init__(self, program: Program):
        bcc = self._bcc = import_bcc()
        self._program = program
        self._sink = RecordSink()
        with _quiet_stderr() as log:
            try:
                # Tracepoint probes attach while BPF() loads (BCC's autoload).
                self.bpf = bcc.BPF(text=program.text, cflags=program.cflags)
            except Exception as e:
                detail = _first_errors("".join(log)) or str(e)
                raise CaptureUnavailable(
                    f"the kernel refused the BPF program: {str(e).strip()} ({detail})",
                    "run `bpfcap doctor`; `bpfcap record --ebpf` prints the program",
                ) from e
        try:
            self.bpf.attach_perf_event(
                ev_type=bcc.PerfType.SOFTWARE,
                ev_config=bcc.PerfSWConfig.CPU_CLOCK,
                fn_name="bpfcap_flush_timer",
                sample_period=1_000_000_000 // FLUSH_HZ,
                cpu=-1,
            )
        except Exception as e:
            self.bpf.cleanup()
            raise CaptureUnavailable(
                f"cannot attach the flush timer (cpu-clock perf event): {e}",
                "perf events must be allowed (kernel.perf_event_paranoid, CAP_PERFMON)",
            ) from e
        try:
            self.bpf.attach_uprobe(
                name="c", sym=FLUSH_SYMBOL, fn_name="bpfcap_flush_uprobe", pid=os.getpid()
            )
        except Exception as e:
            self.bpf.cleanup()
            raise CaptureUnavailable(
                f"cannot attach the flush uprobe on libc {FLUSH_SYMBOL}: {e}",
                "uprobes must be enabled in the kernel (CONFIG_UPROBE_EVENTS)",
            ) from e
        # The process's own symbols include libc's (no find_library: it runs ldconfig).
        self._libc = ct.CDLL(None, use_errno=True)
        self._cpus = sorted(os.sched_getaffinity(0))
        self.bpf["events"].open_ring_buffer(self._on_record)
        self._n_stats = len(self.bpf["stats"])

    def _on_record(self, _ctx, data, size):
        self._sink.add_from_address(data, size)

    def attached_tracepoints(self) -> set[str]:
        return {k.decode() if isinstance(k, bytes) else k for k in self.bpf.tracepoint_fds}

    def track(self, tgid: int) -> None:
        """Add a process to the in-kernel process-tree filter."""
        self.bpf["tracked"][ct.c_uint32(tgid)] = ct.c_uint8(1)

    def flush(self) -> None:
        """Make every CPU send its partial batches: run this thread on each CPU in turn
        and call the uprobed function there."""
        try:
            for cpu in self._cpus:
                os.sched_setaffinity(0, {cpu})
                getattr(self._libc, FLUSH_SYMBOL)(0)
        finally:
            os.sched_setaffinity(0, self._cpus)

    def drain(self, flush: bool = True) -> dict[int, np.ndarray]:
        """Every ring-buffer record written so far, joined by kind (see RecordSink.take;
        valid until the next drain). With `flush`, partial batches are sent first."""
        if flush:
            self.flush()
        self.bpf.ring_buffer_consume()
        return self._sink.take()

    def stats(self) -> np.ndarray:
        """(cpus, 2 * (max kind + 1)) counters: seen at [2k], lost at [2k+1] for kind k,
        from the batch headers plus the map of rare entry-stash failures."""
        table = self.bpf["stats"]
        out = np.array([list(table[ct.c_int(i)]) for i in range(self._n_stats)]).T.astype(np.uint64)
        for t in self._program.types:
            values = self._percpu_value(f"{t.name}_batches", t.batch_dtype().itemsize)
            for cpu, raw in enumerate(values):
                h = np.frombuffer(raw, dtype=BATCH_HEADER_DTYPE, count=1)[0]
                out[cpu, 2 * t.kind_id] += h["seen"]
                out[cpu, 2 * t.kind_id + 1] += h["lost"]
        return out

    def stop(self) -> dict[int, np.ndarray]:
        """Detach every hook, then return what is left: the ring buffer and each CPU's
        partial batches (no program can touch them any more)."""
        for tp in list(self.bpf.tracepoint_fds):
            self.bpf.detach_tracepoint(tp.decode() if isinstance(tp, bytes) else tp)
        self.bpf.detach_perf_event(
            ev_type=self._bcc.PerfType.SOFTWARE, ev_config=self._bcc.PerfSWConfig.CPU_CLOCK
        )
        # Let programs that were running on other CPUs at detach time finish.
        time.sleep(0.05)
        self.flush()
        self.bpf.ring_buffer_consume()
        for t in self._program.types:
            for raw in self._percpu_value(f"{t.name}_batches", t.batch_dtype().itemsize):
                if int.from_bytes(raw[4:8], "little"):
                    # The kind is stamped only when a batch is sent; stamp it here.
                    self._sink.add(t.kind_id.to_bytes(4, "little") + raw[4:])
        return self._sink.take()

    def _percpu_value(self, name: str, size: int) -> list[bytes]:
        """Entry 0 of a per-CPU array, one bytes per possible CPU. Read with our own
        buffer: BCC's derived ctypes type for structs with 2-D char arrays is too small,
        and the kernel's copy then overruns it."""
        bcc = self._bcc
        stride = (size + 7) // 8 * 8
        ncpu = len(bcc.utils.get_possible_cpus())
        buf = ct.create_string_buffer(stride * ncpu)
        key = ct.c_uint32(0)
        if bcc.lib.bpf_lookup_elem(self.bpf[name].map_fd, ct.byref(key), buf) < 0:
            return []
        return [buf.raw[i * stride : i * stride + size] for i in range(ncpu)]

    def close(self) -> None:
        self.bpf.cleanup()
