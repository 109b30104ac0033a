/* Shared by every bpfcap BPF program. Reads no kernel struct: only tracepoint arguments,
 * helpers and user memory (the kernel headers on a host may not match the kernel).
 *
 * Compile-time settings arrive as -D flags (read-only constants, no text substitution):
 *   SELF_TGID      the recorder itself, never recorded
 *   LOADER_TGID    the short-lived process that loads the program, never recorded
 *   FILTER_TGID    record only this process (-p)
 *   FILTER_TREE    record only processes in the `tracked` set (-- COMMAND and descendants)
 *   FILTER_COMM_LO/HI  record only tasks with this comm (its 16 bytes as two u64)
 *   HAVE_<cat>__<tp> for each tracepoint that exists on this kernel
 *   EVENT_<name>   for each event type recorded
 */
#include <uapi/linux/ptrace.h>

/* One ring buffer for all types; records are batches, written with BPF_RB_NO_WAKEUP:
 * user space polls on a timer instead of being woken per record. */
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);

/* Events seen and lost, per CPU and type: seen counts every event that passed the
 * filters, lost those that never reached the ring buffer. The common case is counted in
 * the batch header (the program holds a pointer to it anyway); this map only takes the
 * rare entry-stash failures: [2*kind] seen, [2*kind+1] lost. written + lost == seen. */
BPF_PERCPU_ARRAY(stats, u64, 2 * (MAX_KIND + 1));

struct batch_hdr {
    u32 kind;
    u32 count;
    u32 cpu;
    u32 pad;
    u64 seen; /* events committed on this CPU since the start */
    u64 lost; /* of those, events in batches the ring buffer refused */
};

#ifdef FILTER_TREE
BPF_HASH(tracked, u32, u8, 65536);
#endif

static __always_inline void count_stat(u32 idx, u64 n)
{
    u64 *v = stats.lookup(&idx);
    if (v)
        *v += n;
}

static __always_inline int bpfcap_keep(u64 pid_tgid)
{
    u32 tgid = pid_tgid >> 32;
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
#ifdef FILTER_COMM_LO
    u64 comm[2] = {};
    bpf_get_current_comm(&comm, sizeof(comm));
    if (comm[0] != FILTER_COMM_LO || comm[1] != FILTER_COMM_HI)
        return 0;
#endif
    return 1;
}
