/* runq: run-queue waits, as runqlat measures them: a task woken up (or created), or
 * preempted while runnable, starts waiting; switching in ends the wait (one row).
 * Plain tracepoints name tasks by tid only: the tgid of each task is learnt when it
 * switches out (it is the current task then). */
#define RUNQ_WAKEUP 0
#define RUNQ_WAKEUP_NEW 1
#define RUNQ_PREEMPT 2
/* sched_switch's prev_state for a preempted (still runnable) task: TASK_RUNNING (0),
 * or TASK_REPORT_MAX (0x100) as this tracepoint reports preemption. */
#define RUNQ_STILL_RUNNABLE(state) ((state) == 0 || ((state) & 0x100))

struct runq_start {
    u64 ts;
    u32 tgid;
    u8 reason;
};

BPF_TABLE("lru_hash", u32, struct runq_start, runq_start, 65536);
BPF_TABLE("lru_hash", u32, u32, runq_tgid, 65536);

static __always_inline int runq_woken(u32 tid, const char *comm, u8 reason)
{
    if (!tid)
        return 0;
    u32 *known = runq_tgid.lookup(&tid);
    u32 tgid = known ? *known : 0;
    if (!bpfcap_keep_task(tgid, tid, comm))
        return 0;
    struct runq_start s = {.ts = bpf_ktime_get_ns(), .tgid = tgid, .reason = reason};
    runq_start.update(&tid, &s);
    return 0;
}

#if defined(HAVE_sched__sched_wakeup) && defined(HAVE_sched__sched_wakeup_new) && \
    defined(HAVE_sched__sched_switch)
TRACEPOINT_PROBE(sched, sched_wakeup) { return runq_woken(args->pid, args->comm, RUNQ_WAKEUP); }

TRACEPOINT_PROBE(sched, sched_wakeup_new)
{
    return runq_woken(args->pid, args->comm, RUNQ_WAKEUP_NEW);
}

TRACEPOINT_PROBE(sched, sched_switch)
{
    u64 now = bpf_ktime_get_ns();
    u32 prev = args->prev_pid;
    if (prev) {
        u64 id = bpf_get_current_pid_tgid(); /* the task switching out */
        u32 tgid = id >> 32;
        u32 *known = runq_tgid.lookup(&prev);
        if (!known || *known != tgid)
            runq_tgid.update(&prev, &tgid);
        if (RUNQ_STILL_RUNNABLE(args->prev_state) && bpfcap_keep(id)) {
            struct runq_start s = {.ts = now, .tgid = tgid, .reason = RUNQ_PREEMPT};
            runq_start.update(&prev, &s);
        }
    }
    u32 next = args->next_pid;
    if (!next)
        return 0;
    struct runq_start *s = runq_start.lookup(&next);
    if (!s)
        return 0;
    struct runq_batch *b;
    struct runq_event *e = runq_slot(&b);
    if (e) {
        e->ts_ns = s->ts;
        e->lat_ns = now - s->ts;
        e->tgid = s->tgid;
        e->tid = next;
        e->uid = 0;
        e->reason = s->reason;
        bpf_probe_read_kernel(&e->comm, sizeof(e->comm), args->next_comm);
        runq_commit(b);
    }
    runq_start.delete(&next);
    return 0;
}
#endif
