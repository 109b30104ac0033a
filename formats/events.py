"""The event types bpfcap records. Adding a type: declare it here, add it to EVENT_TYPES,
write capture/bpf/<name>.c. Everything else (struct, decoder, schema, docs, record -e,
info) follows from the declaration.
"""

from __future__ import annotations

from .schema import EventType, Field, KernelRead, trace_schema

# Shared members: the same name means the same thing in every type that has it.
LAT = Field(
    "lat_ns",
    "u64",
    "Latency: from ts_ns (syscall entry; bio: issue to the device; runq: wakeup or "
    "preemption) to completion (syscall exit; bio: completion; runq: on CPU)",
    unit="ns",
)
RET = Field("ret", "s64", "Syscall return value (negative errno on failure)")

OPEN_SYSCALLS = ("open", "openat", "openat2")
EXEC_SYSCALLS = ("execve", "execveat")

# execsnoop's defaults: 128-byte strings, MAXARG 20. We keep argv[1..20] so that every
# report --max-args up to 21 is exact; `args_truncated` says whether argv went on.
EXEC_ARGSIZE = 128
EXEC_MAXARGS = 20

OPEN = EventType(
    name="open",
    kind_id=1,
    doc="A completed open(2), openat(2) or openat2(2); one row per call (opensnoop).",
    hooks=tuple((f"syscalls:sys_enter_{sc}", f"syscalls:sys_exit_{sc}") for sc in OPEN_SYSCALLS),
    with_types=("cwd",),
    fields=(  # flags first: it fills the 8 bytes the common members begin
        Field("flags", "u32", "Open flags (O_*), from the call (openat2: open_how.flags)"),
        LAT,
        RET,
        Field(
            "mode",
            "u32",
            "Mode argument; 0 unless O_CREAT or O_TMPFILE is set (as BCC opensnoop)",
        ),
        Field("syscall", "u8", "Which system call", enum=OPEN_SYSCALLS),
        Field("path_len", "u16", "Bytes used in path", column=False),
        Field("path", "char[256]", "Path argument as passed (first 255 bytes)", length="path_len"),
    ),
)

# A task's parent, read at the exec as BCC's execsnoop reads it (real_parent->tgid, comm).
PARENT_READ = KernelRead(
    "parent",
    "the parent at the exec's return, as BCC's execsnoop reads it (reports without it "
    "find parents in fork rows and the process snapshot taken at start)",
    members=(("task_struct.real_parent", 8), ("task_struct.tgid", 4), ("task_struct.comm", 16)),
    columns=("ppid", "pcomm"),
)
# The new program's argv, on its fresh stack: resident whatever the caller's pages were.
IMAGE_READ = KernelRead(
    "image",
    "argv strings that were not resident in the caller's memory at entry, read from the "
    "new program's stack after a successful exec; without it they stay empty (as in BCC)",
    members=(
        ("task_struct.mm", 8),
        ("mm_struct.start_stack", 8),
        ("mm_struct.arg_start", 8),
    ),
)
EXEC_ARGS_FROM = ("entry", "image")

EXEC = EventType(
    name="exec",
    kind_id=2,
    doc="A completed execve(2) or execveat(2), successful or not; one row per call "
    "(execsnoop). Strings are copied at entry from the caller's memory as BCC does; those "
    "not resident there (after fork, a page of string literals is not mapped in the child "
    "until touched, and BPF cannot fault it in) are taken, when the exec succeeds, from "
    "sched:sched_process_exec (the filename) and from the new program's stack (argv).",
    hooks=(
        *((f"syscalls:sys_enter_{sc}", f"syscalls:sys_exit_{sc}") for sc in EXEC_SYSCALLS),
        ("sched:sched_process_exec",),
    ),
    kernel_reads=(PARENT_READ, IMAGE_READ),
    fields=(
        LAT,
        RET,
        Field("syscall", "u8", "Which system call", enum=EXEC_SYSCALLS),
        Field("nargs", "u8", "Number of entries used in args", column=False),
        Field(
            "args_truncated",
            "u8",
            f"argv had more than {EXEC_MAXARGS} entries after argv[0]",
            boolean=True,
        ),
        Field(
            "args_from",
            "u8",
            "Where filename and args were read: entry (the caller's memory at sys_enter, "
            "as BCC), or image when some were not resident there and the exec succeeded "
            "(sched_process_exec's filename, the new program's argv)",
            enum=EXEC_ARGS_FROM,
        ),
        Field(
            "args_unread",
            "u32",
            "Strings that could not be read anywhere, as a bit mask (bit 0: filename, bit "
            "i: argv[i]); they are empty, as BCC shows them",
        ),
        Field(
            "ppid",
            "u32",
            "Parent process id (real_parent's tgid) at the exec's return; null where the "
            "recording could not read it (see kernel_reads)",
            null_if=0,
        ),
        # Kept in the entry stash, not in the trace: argc as counted at entry (to find
        # the caller's arguments behind an interpreter's in the new program's argv) and
        # the user pointers (to read strings again at a failed exec's return).
        Field("argc", "u32", "argc at entry (0xFFFFFFFF: not known)", column=False),
        Field("filename_ptr", "u64", "filename argument (user address)", column=False),
        Field("argv_ptr", "u64", "argv argument (user address)", column=False),
        Field(
            "filename",
            f"char[{EXEC_ARGSIZE}]",
            f"Filename argument as passed (first {EXEC_ARGSIZE} bytes)",
        ),
        Field("pcomm", "char[16]", "Parent's command name at the exec (empty where ppid is null)"),
        Field(
            "args",
            f"char[{EXEC_MAXARGS}][{EXEC_ARGSIZE}]",
            f"argv[1..{EXEC_MAXARGS}] (each first {EXEC_ARGSIZE} bytes)",
            count="nargs",
        ),
    ),
)

FORK = EventType(
    name="fork",
    kind_id=3,
    doc="A new task (process or thread) created by fork/clone; tgid/comm are the parent's.",
    hooks=(("sched:sched_process_fork",),),
    fields=(Field("child_pid", "u32", "Task id of the new task (its tgid for a new process)"),),
)

SYSCALL = EventType(
    name="syscall",
    kind_id=4,
    doc="A system call that returned (raw_syscalls); one row per call (syscount). "
    "exit and exit_group never return, so never appear (as in syscount).",
    hooks=(("raw_syscalls:sys_enter", "raw_syscalls:sys_exit"),),
    # nr first: with the common members it fills 8 bytes, and an event takes 56 bytes
    # in the ring buffer, not 64 (the ring then holds 0.3 s of a getppid storm).
    fields=(
        Field("nr", "u32", "System call number (of the recording host's machine: host.machine)"),
        LAT,
        RET,
    ),
    # Every system call of every process: recorded when asked for (-e syscall), with
    # --syscall and -p to filter in the kernel. Big batches: the highest-rate type.
    max_batch=448,
    default=False,
)

SIGNAL_SYSCALLS = ("kill", "tkill", "tgkill")

SIGNAL = EventType(
    name="signal",
    kind_id=5,
    doc="A kill(2), tkill(2) or tgkill(2) call; one row per call (killsnoop).",
    hooks=tuple((f"syscalls:sys_enter_{sc}", f"syscalls:sys_exit_{sc}") for sc in SIGNAL_SYSCALLS),
    fields=(
        LAT,
        RET,
        Field("syscall", "u8", "Which system call", enum=SIGNAL_SYSCALLS),
        Field(
            "target",
            "s32",
            "Target as passed: kill's pid (0, -1 or -PGID for groups), tkill's and "
            "tgkill's thread id",
        ),
        Field("target_tgid", "s32", "tgkill's thread group id argument; 0 for kill and tkill"),
        Field("sig", "u32", "Signal number (0: a permission/existence check)"),
    ),
)

BIO = EventType(
    name="bio",
    kind_id=6,
    doc="A block I/O request, from issue to completion; one row per request (biosnoop). "
    "ts_ns is the issue time; tgid/tid/uid/comm are the task that started the I/O "
    "(block_io_start, else block_rq_insert): 0 and empty when that was not seen (the "
    "request was queued before recording began, or is internal, like a flush).",
    hooks=(
        ("block:block_rq_issue", "block:block_rq_complete"),
        ("block:block_io_start",),
        ("block:block_rq_insert",),
    ),
    fields=(
        LAT,
        Field(
            "queue_ns",
            "u64",
            "From start (queued) to issue; 0 if the start was not seen",
            unit="ns",
        ),
        Field("dev", "u32", "Device, as the kernel's dev_t (major << 20 | minor): the whole disk"),
        Field("sector", "u64", "Start sector (512-byte units)"),
        Field("bytes", "u32", "Request size at issue", unit="bytes"),
        Field("error", "s32", "Completion status (0, or a negative errno)"),
        Field("rwbs", "char[8]", "Operation and flags as blktrace letters (R, W, WS, FWFS, ...)"),
    ),
)

RUNQ_REASONS = ("wakeup", "wakeup_new", "preempt")

RUNQ = EventType(
    name="runq",
    kind_id=7,
    doc="A wait on a CPU run queue, from wakeup (or preemption) to running; one row per "
    "wait (runqlat). tid/comm are the task that waited; tgid is known from its last "
    "switch-out (0 for a new task's first run; reports fill it from the task's other "
    "rows); uid is not known (0); cpu is where it ran.",
    hooks=(("sched:sched_wakeup", "sched:sched_wakeup_new", "sched:sched_switch"),),
    fields=(
        LAT,
        Field("reason", "u8", "What started the wait", enum=RUNQ_REASONS),
    ),
)

# include/net/tcp_states.h; 0 is not a state.
TCP_STATES = (
    "0",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
)
NOT_KNOWN = 0xFFFFFFFFFFFFFFFF

# Members of tcp and accept rows: one socket, as the kernel names it.
SOCK = Field(
    "sock",
    "u64",
    "Socket id: the kernel's socket address, scrambled with a key kept for the "
    "recording only (no kernel address in the trace), 63 bits; the same in every row "
    "about one socket (its state changes, its accept), until it closes",
)
FAMILY = Field("family", "u16", "Address family: 2 (AF_INET) or 10 (AF_INET6)")
DPORT = Field("dport", "u16", "Remote port")
SADDR = Field("saddr", "u8[16]", "Local address (IPv4: the first 4 bytes)")
DADDR = Field("daddr", "u8[16]", "Remote address (IPv4: the first 4 bytes)")

TCP = EventType(
    name="tcp",
    kind_id=8,
    doc="A TCP socket changing state (sock:inet_sock_set_state); one row per change "
    "(tcpstates; tcplife, tcpconnect and tcpaccept are rebuilt from them). The task is "
    "the one current at the change: the socket's user in process context, possibly an "
    "unrelated task when the change happens in softirq (as in BCC).",
    hooks=(("sock:inet_sock_set_state",),),
    kernel_reads=(
        KernelRead(
            "bytes",
            "bytes received and acked at a change to CLOSE (tcplife's RX_KB, TX_KB)",
            members=(("tcp_sock.bytes_received", 8), ("tcp_sock.bytes_acked", 8)),
            columns=("rx_bytes", "tx_bytes"),
        ),
    ),
    with_types=("accept",),
    fields=(
        SOCK,
        Field("oldstate", "u8", "State before the change", enum=TCP_STATES),
        Field("newstate", "u8", "State after the change", enum=TCP_STATES),
        FAMILY,
        Field("sport", "u16", "Local port (0 before it is chosen, e.g. at SYN_SENT)"),
        DPORT,
        SADDR,
        DADDR,
        Field(
            "rx_bytes",
            "u64",
            "At a change to CLOSE: tcp_sock.bytes_received (null elsewhere, or where the "
            "recording could not read it: see kernel_reads)",
            unit="bytes",
            null_if=NOT_KNOWN,
        ),
        Field(
            "tx_bytes",
            "u64",
            "At a change to CLOSE: tcp_sock.bytes_acked (null elsewhere, or where the "
            "recording could not read it)",
            unit="bytes",
            null_if=NOT_KNOWN,
        ),
    ),
)


# BCC opensnoop -F's walk: NAME_MAX-byte reads of 32 names, the open's filename included.
CWD_MAXDIRS = 31
CWD_NAMESIZE = 255

CWD = EventType(
    name="cwd",
    kind_id=9,
    doc="A task's working directory as opensnoop -F finds it (the names from the "
    "directory up to the root, crossing mount points), recorded by the open type's "
    "programs at a task's first open of a relative path and again after its directory "
    "changed; the opens of the same tid from ts_ns on were made there.",
    hooks=OPEN.hooks,
    emitted_by="open",
    kernel_reads=(
        KernelRead(
            "walk",
            "the working directory's names (opensnoop -F)",
            members=(
                ("task_struct.fs", 8),
                ("fs_struct.pwd.dentry", 8),
                ("fs_struct.pwd.mnt", 8),
                ("dentry.d_parent", 8),
                ("dentry.d_name.name", 8),
                ("vfsmount.mnt_root", 8),
                ("mount.mnt", None),
                ("mount.mnt_parent", 8),
                ("mount.mnt_mountpoint", 8),
            ),
            columns=("dirs",),
            required=True,
        ),
    ),
    fields=(
        Field("depth", "u8", "Number of entries used in dirs", column=False),
        Field(
            "dirs",
            f"char[{CWD_MAXDIRS}][{CWD_NAMESIZE}]",
            "Directory names from the working directory up, as BCC opensnoop -F reads them "
            f"(each first {CWD_NAMESIZE - 1} bytes; a mount's root reads `/`; the root "
            f"itself is not included; at most {CWD_MAXDIRS})",
            count="depth",
        ),
    ),
)

ACCEPT_SYSCALLS = ("accept", "accept4")

ACCEPT = EventType(
    name="accept",
    kind_id=10,
    doc="An accept(2) or accept4(2) that returned a TCP socket: the accepting task, and "
    "the connection as read from the new socket (tcpaccept). ts_ns is when the call "
    "returned. Recorded with tcp.",
    hooks=tuple((f"syscalls:sys_exit_{sc}",) for sc in ACCEPT_SYSCALLS),
    kernel_reads=(
        KernelRead(
            "socket",
            "the socket behind the returned file descriptor and its addresses",
            members=(
                ("task_struct.files", 8),
                ("files_struct.fdt", 8),
                ("fdtable.max_fds", 4),
                ("fdtable.fd", 8),
                ("file.private_data", 8),
                ("socket.sk", 8),
                ("sock.sk_protocol", 2),
                ("sock.__sk_common.skc_family", 2),
                ("sock.__sk_common.skc_num", 2),
                ("sock.__sk_common.skc_dport", 2),
                ("sock.__sk_common.skc_rcv_saddr", 4),
                ("sock.__sk_common.skc_daddr", 4),
                ("sock.__sk_common.skc_v6_rcv_saddr", 16),
                ("sock.__sk_common.skc_v6_daddr", 16),
            ),
            columns=("sock", "family", "sport", "dport", "saddr", "daddr"),
            required=True,
        ),
    ),
    fields=(
        RET,
        Field("syscall", "u8", "Which system call", enum=ACCEPT_SYSCALLS),
        SOCK,
        FAMILY,
        Field("sport", "u16", "Local port"),
        DPORT,
        SADDR,
        DADDR,
    ),
)

# The registry: one line per type.
EVENT_TYPES = (OPEN, EXEC, FORK, SYSCALL, SIGNAL, BIO, RUNQ, TCP, CWD, ACCEPT)
BY_NAME = {t.name: t for t in EVENT_TYPES}
BY_KIND_ID = {t.kind_id: t for t in EVENT_TYPES}
SCHEMA = trace_schema(EVENT_TYPES)


def with_companions(types: tuple[EventType, ...]) -> tuple[EventType, ...]:
    """`types` plus the types recorded along with them (with_types), and the type that
    emits a type recorded by another's programs (emitted_by), in registry order."""
    names = {t.name for t in types}
    names |= {c for t in types for c in t.with_types}
    names |= {t.emitted_by for t in types if t.emitted_by}
    return tuple(t for t in EVENT_TYPES if t.name in names)


DEFAULT_TYPES = with_companions(tuple(t for t in EVENT_TYPES if t.default))
