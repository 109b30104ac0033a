/* Shared by every bpfcap BPF program. Reads tracepoint arguments, helpers and user
 * memory, and kernel structs only through KREAD at offsets from the running kernel's BTF
 * (the kernel headers on a host may not match the kernel; see capture/btf.py).
 *
 * Compile-time settings arrive as -D flags (read-only constants, no text substitution):
 *   SELF_TGID      the recorder itself, never recorded
 *   LOADER_TGID    the short-lived process that loads the program, never recorded
 *   FILTER_TGID    record only this process (-p)
 *   FILTER_TREE    record only processes in the `tracked` set (-- COMMAND and descendants)
 *   FILTER_COMM_LO/HI  record only tasks with this comm (its 16 bytes as two u64)
 *   HAVE_<cat>__<tp> for each tracepoint that exists on this kernel
 *   EVENT_<name>   for each event type recorded
 *   HAVE_KREAD_<type>_<read>  for each kernel read (formats/events.py KernelRead) whose
 *                  struct members were found in the kernel's BTF, and KF_<struct>__<member>
 *                  the byte offset of each of those members
 */
#include <uapi/linux/ptrace.h>

/* A kernel struct member, at `base` + `off` (a KF_ offset from the kernel's BTF), into
 * `dst` (the size the BTF says it has; checked when the offsets were found). 0 on success;
 * on failure dst is zeroed. */
#define KREAD(dst, base, off) \
    bpf_probe_read_kernel(&(dst), sizeof(dst), (void *)((u64)(base) + (off)))

/* One ring buffer for all types; records are batches, written with BPF_RB_NO_WAKEUP:
 * user space polls on a timer instead of being woken per record. */
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);

/* Events seen and lost, per CPU and type: seen counts every event that passed the
 * filters, lost those that never reached the ring buffer. The common case is counted in
 * the batch header (the program holds a pointer to it anyway); this map only takes the
 * rare entry-stash failures: [2*kind] seen, [2*kind+1] lost. written + lost == seen. */
BPF_PERCPU_ARRAY(stats, u64, 2 * (MAX_KIND + 1) + 1);

struct batch_hdr {
    u32 kind;
    u32 count;
    u32 cpu;
    u32 used; /* bytes used in data (types whose events vary in size) */
    u64 seen; /* events committed on this CPU since the start */
    u64 lost; /* of those, events in batches the ring buffer refused */
};

/* Socket ids (tcp, accept) are 63 bits: every trace integer fits a signed 64-bit column. */
#define SOCK_ID_MASK 0x7fffffffffffffffULL

#ifdef FILTER_TREE
/* The command's tasks: each process by its tgid, each thread by its tid (scheduler events
 * of a task whose tgid is unknown match by tid). A task leaves at its exit (a process at
 * its group's death) and an exec from a thread drops its old tid: an id left behind
 * would, once pids wrap, record an unrelated process. TRACKED_MAX is the host's pid_max
 * (every id at once); entries are allocated as added. A task that cannot be added (out
 * of memory) is counted at stats[TREE_FULL_STAT] and said in the trace. */
BPF_F_TABLE("hash", u32, u8, tracked, TRACKED_MAX, BPF_F_NO_PREALLOC);
#define TREE_FULL_STAT (2 * (MAX_KIND + 1))
#endif

static __always_inline void count_stat(u32 idx, u64 n)
{
    u64 *v = stats.lookup(&idx);
    if (v)
        *v += n;
}

#ifdef FILTER_TREE
static __always_inline void tree_add(u32 id)
{
    u8 one = 1;
    if (tracked.update(&id, &one))
        count_stat(TREE_FULL_STAT, 1);
}

/* An exec by a thread (old_pid, its tid) makes it the group leader (pid): the old id
 * is gone. */
static __always_inline void tree_exec(u32 old_pid, u32 pid)
{
    if (old_pid != pid)
        tracked.delete(&old_pid);
}
#endif

/* Whether events of process `tgid` are recorded: never the recorder's own or its
 * loader's; with -p only that process; with -- COMMAND only its tree. */
static __always_inline int keep_tgid(u32 tgid)
{
    if (tgid == SELF_TGID)
        return 0;
#ifdef LOADER_TGID
    if (tgid == LOADER_TGID)
        return 0;
#endif
#ifdef FILTER_TGID
    if (tgid != FILTER_TGID)
        return 0;
#endif
#ifdef FILTER_TREE
    if (!tracked.lookup(&tgid))
        return 0;
#endif
    return 1;
}

/* With -n, whether a task's comm (16 bytes as two u64) is the one asked for. */
static __always_inline int keep_comm(const u64 *comm)
{
#ifdef FILTER_COMM_LO
    return comm[0] == FILTER_COMM_LO && comm[1] == FILTER_COMM_HI;
#else
    return 1;
#endif
}

/* The filters, for an event of the current task. */
static __always_inline int bpfcap_keep(u64 pid_tgid)
{
    if (!keep_tgid(pid_tgid >> 32))
        return 0;
#ifdef FILTER_COMM_LO
    u64 comm[2] = {};
    bpf_get_current_comm(&comm, sizeof(comm));
    return keep_comm(comm);
#else
    return 1;
#endif
}

/* The filters, for a task that is not the current one (scheduler events): its tgid as
 * known to the program (0 when not: its tid stands in, right for a new process, and the
 * tree filter tracks new tasks by tid) and its comm as the tracepoint gives it. */
static __always_inline int bpfcap_keep_task(u32 tgid, u32 tid, const char *comm)
{
    if (!keep_tgid(tgid ? tgid : tid))
        return 0;
#ifdef FILTER_COMM_LO
    u64 c[2] = {};
    bpf_probe_read_kernel(&c, sizeof(c), comm);
    return keep_comm(c);
#else
    return 1;
#endif
}

/* The current task's comm through a cache kept in the task's entry stash (COMM_CACHE
 * fields): bpf_get_current_comm() on every event cost ~0.05-0.1 us here. Any rename
 * (prctl, exec, /proc/.../comm all fire task:task_rename) bumps a global generation,
 * which invalidates every cache: always correct, and renames are rare next to syscalls.
 * Without task storage (hash stashes are deleted at exit) there is nothing to cache in. */
#define COMM_CACHE \
    u64 comm_gen;  \
    u64 comm[2]
#if defined(HAVE_TASK_STORAGE) && defined(HAVE_task__task_rename)
BPF_ARRAY(comm_gen, u64, 1);

TRACEPOINT_PROBE(task, task_rename)
{
    u32 k = 0;
    u64 *g = comm_gen.lookup(&k);
    if (g)
        __sync_fetch_and_add(g, 1);
    return 0;
}

static __always_inline void cached_comm(void *dst, u64 *cache_gen, u64 *cache)
{
    u32 k = 0;
    u64 *g = comm_gen.lookup(&k);
    u64 gen = (g ? *g : 0) + 1; /* + 1: a fresh stash (0) is never valid */
    if (*cache_gen != gen) {
        bpf_get_current_comm(cache, 16);
        *cache_gen = gen;
    }
    __builtin_memcpy(dst, cache, 16);
}
#else
static __always_inline void cached_comm(void *dst, u64 *cache_gen, u64 *cache)
{
    bpf_get_current_comm(dst, 16);
}
#endif

/* The common members of an event about the current task (every event struct starts
 * with the same members, generated from formats/schema.py COMMON_FIELDS). */
#define fill_current(e, pid_tgid)                       \
    do {                                                \
        (e)->tgid = (pid_tgid) >> 32;                   \
        (e)->tid = (u32)(pid_tgid);                     \
        (e)->uid = (u32)bpf_get_current_uid_gid();      \
    } while (0)
