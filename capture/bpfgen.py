"""Generate the BPF C program for a set of event types (pure text; no BCC import).

Per type the generator emits the event struct (from the declaration), a per-CPU batch
buffer of `batch` events, and three helpers the type's C code uses:

* `<t>_slot(&b)` returns the next free event in this CPU's batch,
* `<t>_commit(b)` counts the event as seen and, when the batch is full, sends the whole
  batch as one ring-buffer record (no wake-up) or counts it lost,
* `<t>_flush()` sends a partial batch. Two programs call it on each CPU:
  `bpfcap_flush_uprobe`, a uprobe (on libc's getpgid, in the recorder's process only) that
  the recorder fires on every CPU in turn by moving its thread there, every 100 ms;
  and `bpfcap_flush_timer`, a cpu-clock perf event at FLUSH_HZ. The timer alone is not
  enough: on an idle CPU it does not fire (seen on this kernel), and the batch a CPU held
  when it went idle would wait there. The timer still covers CPUs the recorder may not run
  on (a cpuset); at stop, every CPU's partial batch is read from user space.

A flush cannot interrupt a tracepoint program half-way through an append on the same CPU:
tracepoint, kprobe/uprobe and perf-event programs all run under the kernel's per-CPU
`bpf_prog_active` guard, which skips a program instead of nesting it.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from importlib import resources

from bpfcap.formats.events import (
    ACCEPT,
    CWD_MAXDIRS,
    CWD_NAMESIZE,
    EVENT_TYPES,
    EXEC_ARGSIZE,
    EXEC_MAXARGS,
    FORK,
    TCP,
)
from bpfcap.formats.schema import BATCH_BYTES, BATCH_HEADER_SIZE, EventType

from .btf import member_macro

# 16 MiB: ~0.9 s of this machine's open storm (80-byte records), ~270 ms of its getppid
# storm (56 bytes, 1.1M/s), many times the recorder's busy drain period (20 ms); more
# would count in the recorder's RSS (the ring is mapped, resident, in its memory).
RINGBUF_PAGES = 4096
# Ring buffer pages at most (1 GiB).
MAX_RINGBUF_PAGES = 1 << 18


def ringbuf_pages_for(ncpus: int, ntypes: int) -> int:
    """The default ring size for a host of `ncpus` (possible) CPUs recording `ntypes`
    types: RINGBUF_PAGES, or more where a batch of every type from every CPU at once (a
    busy host fills them together; a flush pass sends them together) would fill half of
    it: from ~64 CPUs recording every type."""
    need = 2 * ncpus * ntypes * BATCH_BYTES
    pages = RINGBUF_PAGES
    while pages * 4096 < need and pages < MAX_RINGBUF_PAGES:
        pages *= 2
    return pages


FLUSH_HZ = 5  # the cpu-clock flush timer (busy CPUs); the uprobe flush runs every 100 ms
# A libc function the recorder calls only to trigger the flush uprobe on a chosen CPU.
FLUSH_SYMBOL = "getpgid"

# Hooks the in-kernel process-tree filter needs besides the types' own.
TREE_HOOKS = ("sched:sched_process_fork", "sched:sched_process_exit")
# Used by the tree filter where it exists: an exec by a thread drops the thread's old id.
TREE_AUX_HOOKS = ("sched:sched_process_exec",)
# The tree filter's bound where the host's pid_max is unknown: the kernel's PID_MAX_LIMIT.
TREE_MAX = 1 << 22
# Optional hooks that make recording cheaper where they exist (open's comm cache).
AUX_HOOKS = ("task:task_rename",)


def _bpf_source(name: str) -> str:
    return _STASH_RE.sub(
        _stash_code, resources.files("bpfcap.capture").joinpath("bpf", name).read_text()
    )


# `BPFCAP_STASH(name, struct type, entries, ts_member);` in a type's C code declares a
# per-task entry stash (the entry half of a paired event, kept until the exit on the same
# task) and its helpers, written out here rather than by a C macro (BCC cannot rewrite
# map calls inside macros):
#   name_new(tid)      the current task's stash, created if needed (members not written
#                      keep their values: caches survive from call to call);
#   name_get(tid)      the current task's stash if an entry is pending (ts_member != 0);
#   name_done(tid, p)  the entry is consumed.
# Task-local storage where the kernel has it (no hash lookup or delete), else a hash
# by thread id of `entries` slots.
_STASH_RE = re.compile(r"^BPFCAP_STASH\((\w+), struct (\w+), (\d+), (\w+)\);$", re.M)


def _stash_code(m: re.Match) -> str:
    name, st, entries, ts = m.groups()
    t = f"struct {st}"
    task = "(struct task_struct *)bpf_get_current_task_btf()"
    return f"""#ifdef HAVE_TASK_STORAGE
BPF_TASK_STORAGE({name}, {t});
static __always_inline {t} *{name}_new(u32 tid)
{{
    return {name}.task_storage_get({task}, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
}}
static __always_inline {t} *{name}_get(u32 tid)
{{
    {t} *p = {name}.task_storage_get({task}, 0, 0);
    return p && p->{ts} ? p : 0;
}}
static __always_inline void {name}_done(u32 tid, {t} *p) {{ p->{ts} = 0; }}
#else
BPF_HASH({name}, u32, {t}, {entries});
BPF_PERCPU_ARRAY({name}_zero, {t}, 1);
static __always_inline {t} *{name}_new(u32 tid)
{{
    u32 zero = 0;
    {t} *z = {name}_zero.lookup(&zero);
    if (!z || {name}.update(&tid, z))
        return 0;
    return {name}.lookup(&tid);
}}
static __always_inline {t} *{name}_get(u32 tid) {{ return {name}.lookup(&tid); }}
static __always_inline void {name}_done(u32 tid, {t} *p) {{ {name}.delete(&tid); }}
#endif"""


def hook_macro(tracepoint: str) -> str:
    cat, name = tracepoint.split(":")
    return f"HAVE_{cat}__{name}"


def _flush_code(name: str, send: str) -> str:
    """`<name>_flush()`: send this CPU's partial batch, if any."""
    return f"""static __always_inline void {name}_flush(void)
{{
    u32 zero = 0;
    struct {name}_batch *b = {name}_batches.lookup(&zero);
    if (!b || b->hdr.count == 0)
        return;
{send}
}}
"""


def _batch_code(t: EventType) -> str:
    return _var_batch_code(t) if t.tail is not None else _fixed_batch_code(t)


def _fixed_batch_code(t: EventType) -> str:
    n, name, kid = t.batch, t.name, f"KIND_{t.name}"
    # Only the events in the batch (a flush sends partial ones): the recorder's sink
    # gives each record its full batch size again (decode.RecordSink).
    send = f"""    b->hdr.kind = {kid};
    b->hdr.cpu = bpf_get_smp_processor_id();
    u32 count = b->hdr.count;
    if (count > {n})
        count = {n};
    if (events.ringbuf_output(b, {BATCH_HEADER_SIZE} + count * sizeof(b->ev[0]), BPF_RB_NO_WAKEUP))
        b->hdr.lost += b->hdr.count;
    b->hdr.count = 0;"""
    return f"""{t.c_struct()}
struct {name}_batch {{
    struct batch_hdr hdr;
    struct {name}_event ev[{n}];
}};
BPF_PERCPU_ARRAY({name}_batches, struct {name}_batch, 1);

static __always_inline struct {name}_event *{name}_slot(struct {name}_batch **bp)
{{
    u32 zero = 0;
    struct {name}_batch *b = {name}_batches.lookup(&zero);
    if (!b)
        return 0;
    u32 i = b->hdr.count;
    if (i >= {n})
        return 0;
    *bp = b;
    return &b->ev[i];
}}

static __always_inline void {name}_commit(struct {name}_batch *b)
{{
    b->hdr.seen += 1;
    b->hdr.count += 1;
    if (b->hdr.count < {n})
        return;
{send}
}}

{_flush_code(name, send)}"""


def _var_batch_code(t: EventType) -> str:
    """Batches of events that take only their used bytes (see EventType.batch_dtype): a
    slot is always a whole event struct at the end of the used data, so the type's code
    fills it as it would a fixed one; commit counts only the bytes up to the end of the
    tail's used part, and the batch is sent when the next whole struct would not fit."""
    n, name, kid, data = t.batch, t.name, f"KIND_{t.name}", t.batch_data
    tail = t.tail
    shape = tail.string_shape
    if len(shape) == 1:  # one string: its length (without the NUL) is in tail.length
        used = f"""u32 len = e->{tail.length};
    if (len > {shape[0] - 1})
        len = {shape[0] - 1};
    u32 size = ({t.tail_offset} + len + 1 + 7) & ~7;"""
    else:  # strings of shape[1] bytes each, tail.count of them
        used = f"""u32 k = e->{tail.count};
    if (k > {shape[0]})
        k = {shape[0]};
    u32 size = ({t.tail_offset} + k * {shape[1]} + 7) & ~7;"""
    send = f"""    b->hdr.kind = {kid};
    b->hdr.cpu = bpf_get_smp_processor_id();
    u32 bytes = b->hdr.used;
    if (bytes > {data})
        bytes = {data};
    if (events.ringbuf_output(b, {BATCH_HEADER_SIZE + 2 * n} + bytes, BPF_RB_NO_WAKEUP))
        b->hdr.lost += b->hdr.count;
    b->hdr.count = 0;
    b->hdr.used = 0;"""
    last = data - t.event_size
    return f"""{t.c_struct()}
struct {name}_batch {{
    struct batch_hdr hdr;
    u16 off[{n}];
    u8 data[{data}];
}};
BPF_PERCPU_ARRAY({name}_batches, struct {name}_batch, 1);

static __always_inline struct {name}_event *{name}_slot(struct {name}_batch **bp)
{{
    u32 zero = 0;
    struct {name}_batch *b = {name}_batches.lookup(&zero);
    if (!b)
        return 0;
    u32 used = b->hdr.used;
    if (b->hdr.count >= {n} || used > {last})
        return 0;
    *bp = b;
    return (struct {name}_event *)&b->data[used];
}}

static __always_inline void {name}_commit(struct {name}_batch *b)
{{
    u32 used = b->hdr.used, i = b->hdr.count;
    if (i >= {n} || used > {last})
        return; /* cannot happen (slot checked it): for the verifier */
    struct {name}_event *e = (struct {name}_event *)&b->data[used];
    {used}
    b->off[i] = used;
    b->hdr.used = used + size;
    b->hdr.seen += 1;
    b->hdr.count = i + 1;
    if (i + 1 < {n} && used + size <= {last})
        return;
{send}
}}

{_flush_code(name, send)}"""


def _syscall_filter(syscalls: tuple[int, ...] | None) -> str:
    """syscall_wanted(nr): the in-kernel --syscall filter, a switch over the numbers."""
    if syscalls is None:
        return ""
    cases = " ".join(f"case {n}:" for n in sorted(set(syscalls)))
    return f"""#define SYSCALL_FILTER
static __always_inline int syscall_wanted(long nr)
{{
    switch (nr) {{
    {cases}
        return 1;
    }}
    return 0;
}}
"""


@dataclass
class Program:
    text: str
    cflags: list[str]
    types: tuple[EventType, ...]  # types whose structs are compiled (selected + helpers)
    ringbuf_pages: int = RINGBUF_PAGES

    @property
    def stats_entries(self) -> int:
        """Entries of the stats map before the last one, TREE_FULL_STAT."""
        return 2 * (max(t.kind_id for t in EVENT_TYPES) + 1)


def generate(
    selected: tuple[EventType, ...],
    present: set[str],
    *,
    self_tgid: int,
    filter_tgid: int | None = None,
    filter_tree: bool = False,
    task_storage: bool = False,
    filter_comm: bytes | None = None,
    syscalls: tuple[int, ...] | None = None,
    kernel_offsets: dict[str, dict[str, int]] | None = None,
    ringbuf_pages: int = RINGBUF_PAGES,
    tree_max: int = TREE_MAX,
    exit_group_dead: bool = True,
) -> Program:
    """The C text and -D flags recording `selected` with the hooks in `present`.
    `syscalls`: the system call numbers the syscall type records (None: all).
    `kernel_offsets`: for each kernel read the BPF code may do ("<type>.<read>", see
    formats KernelRead), the byte offsets of its struct members in this kernel (from its
    BTF); reads not given are compiled out. `tree_max`: how many tasks the tree filter
    holds (the host's pid_max); `exit_group_dead`: sched_process_exit has that field."""
    types = tuple(t for t in EVENT_TYPES if t in selected or (filter_tree and t is FORK))
    max_kind = max(t.kind_id for t in EVENT_TYPES)
    parts = [
        f"#define MAX_KIND {max_kind}",
        f"#define RINGBUF_PAGES {ringbuf_pages}",
        f"#define EXEC_MAXARGS {EXEC_MAXARGS}",
        f"#define EXEC_ARGSIZE {EXEC_ARGSIZE}",
        f"#define CWD_MAXDIRS {CWD_MAXDIRS}",
        f"#define CWD_NAMESIZE {CWD_NAMESIZE}",
        *(f"#define KIND_{t.name} {t.kind_id}" for t in EVENT_TYPES),
        _bpf_source("common.h"),
        _syscall_filter(syscalls),
        *(_batch_code(t) for t in types),
        *(_bpf_source(f"{t.name}.c") for t in types if t.emitted_by is None),
        "static __always_inline void flush_all(void)\n{\n"
        + "".join(f"    {t.name}_flush();\n" for t in types)
        + "}\n",
        # Two entry points: BCC keeps one program type per function name.
        "int bpfcap_flush_timer(void *ctx) { flush_all(); return 0; }",
        "int bpfcap_flush_uprobe(void *ctx) { flush_all(); return 0; }",
    ]
    cflags = [f"-DSELF_TGID={self_tgid}"]
    cflags += [f"-DEVENT_{t.name}" for t in selected]
    if filter_tgid is not None:
        cflags.append(f"-DFILTER_TGID={filter_tgid}")
    if filter_tree:
        cflags += ["-DFILTER_TREE", f"-DTRACKED_MAX={tree_max}"]
        if exit_group_dead:
            cflags.append("-DHAVE_FIELD_sched_process_exit_group_dead")
    if task_storage:
        cflags.append("-DHAVE_TASK_STORAGE")
    if filter_comm is not None:
        # The comm as the two little-endian u64 words bpf_get_current_comm() fills.
        lo, hi = struct.unpack("<QQ", filter_comm.ljust(16, b"\0")[:16])
        cflags += [f"-DFILTER_COMM_LO={lo:#x}ULL", f"-DFILTER_COMM_HI={hi:#x}ULL"]
    if TCP in types or ACCEPT in types:
        # Socket ids are kernel addresses XOR a key that dies with the recording.
        cflags.append(f"-DSOCK_ID_KEY={int.from_bytes(os.urandom(8), 'little'):#x}ULL")
    members: dict[str, int] = {}
    for t in types:
        for r in t.kernel_reads:
            offsets = (kernel_offsets or {}).get(f"{t.name}.{r.name}")
            if offsets is not None:
                cflags.append(f"-DHAVE_KREAD_{t.name}_{r.name}")
                members.update(offsets)
    cflags += [f"-D{member_macro(m)}={off}" for m, off in sorted(members.items())]
    hooks = {tp for t in types for group in t.hooks for tp in group}
    if filter_tree:
        hooks.update(TREE_HOOKS + TREE_AUX_HOOKS)
    hooks.update(AUX_HOOKS)
    cflags += sorted(f"-D{hook_macro(tp)}" for tp in hooks if tp in present)
    return Program("\n".join(parts), cflags, types, ringbuf_pages)
