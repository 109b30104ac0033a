"""What depends on the number of CPUs, checked for hosts far bigger than this one: the
descriptors the loader hands over, the ring size, the flush records (issue 11)."""

from __future__ import annotations

import os
import socket

import numpy as np

from bpfcap.capture.bpf_loader import FDS_PER_MESSAGE, receive_descriptors, send_descriptors
from bpfcap.capture.bpfgen import RINGBUF_PAGES, ringbuf_pages_for
from bpfcap.capture.decode import RecordSink, decode_buffers
from bpfcap.formats.events import BY_NAME, EVENT_TYPES
from bpfcap.formats.schema import BATCH_BYTES

# A program's maps, programs and tracepoint links, plus one flush perf event per CPU.
FIXED_FDS = 62


def _handover(n: int) -> tuple[dict, list[int]]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sent = [os.open("/dev/null", os.O_RDONLY) for _ in range(n)]
    pid = os.fork()
    if pid == 0:  # the loader's side
        try:
            a.close()
            send_descriptors(b, {"maps": {"events": 0}}, sent)
        finally:
            os._exit(0)
    b.close()
    for fd in sent:
        os.close(fd)
    with a:
        desc, fds = receive_descriptors(a)
    os.waitpid(pid, 0)
    return desc, fds


def test_descriptors_of_a_256_cpu_host_are_handed_over():
    """62 + 256 descriptors: more than one SCM_RIGHTS message takes (253)."""
    n = FIXED_FDS + 256
    assert n > 253 > FDS_PER_MESSAGE
    desc, fds = _handover(n)
    assert desc["maps"] == {"events": 0} and len(fds) == n
    assert len(set(fds)) == n
    for fd in fds:
        assert os.readlink(f"/proc/self/fd/{fd}") == "/dev/null"
        os.close(fd)


def test_a_loader_that_dies_hands_over_nothing():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    b.sendall((100).to_bytes(8, "little") + b"{")  # cut short
    b.close()
    with a:
        assert receive_descriptors(a) == (None, [])


def test_ring_grows_with_cpus_so_a_batch_per_type_per_cpu_fits_twice():
    ntypes = len(EVENT_TYPES)
    assert ringbuf_pages_for(2, ntypes) == RINGBUF_PAGES  # this machine: as before
    for ncpus in (64, 190, 256, 1024):
        pages = ringbuf_pages_for(ncpus, ntypes)
        assert pages & (pages - 1) == 0
        assert pages * 4096 >= min(2 * ncpus * ntypes * BATCH_BYTES, (1 << 18) * 4096)


def test_partial_fixed_batches_are_sent_with_their_events_only():
    """A flush sends a fixed-size type's partial batch as header + its events (not the
    whole batch); the sink restores the batch layout and decoding is unchanged."""
    t = BY_NAME["signal"]
    bd = t.batch_dtype()
    records = []
    for count in (1, 3, t.batch):
        b = np.zeros(1, dtype=bd)
        b["hdr"]["kind"], b["hdr"]["count"], b["hdr"]["cpu"] = t.kind_id, count, 1
        b["ev"]["sig"][0, :count] = np.arange(count) + 1
        b["ev"]["tgid"][0, :count] = 7
        size = bd.fields["ev"][1] + count * t.numpy_dtype().itemsize
        records.append(b.tobytes()[:size])
    assert len(records[0]) < bd.itemsize / 10
    sink = RecordSink()
    for r in records:
        sink.add(r)
    table = decode_buffers(sink.take())["signal"]
    sigs = [*range(1, 2), *range(1, 4), *range(1, t.batch + 1)]
    assert table.column("sig").to_pylist() == sigs
    assert set(table.column("cpu").to_pylist()) == {1}
