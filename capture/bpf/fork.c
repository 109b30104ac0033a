/* fork: parent/child links, for execsnoop's PPID/PCOMM (with the /proc snapshot taken at
 * start) and for following a command's descendants in the kernel (FILTER_TREE). */
#if defined(HAVE_sched__sched_process_fork)
TRACEPOINT_PROBE(sched, sched_process_fork)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 child = args->child_pid;
#ifdef FILTER_TREE
    u32 tgid = id >> 32;
    u8 one = 1;
    if (tracked.lookup(&tgid))
        tracked.update(&child, &one);
#endif
#ifdef EVENT_fork
    if (!bpfcap_keep(id))
        return 0;
    struct fork_batch *b;
    struct fork_event *e = fork_slot(&b);
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    fill_current(e, id);
    e->child_pid = child;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    fork_commit(b);
#endif
    return 0;
}
#endif

#if defined(FILTER_TREE) && defined(HAVE_sched__sched_process_exit)
TRACEPOINT_PROBE(sched, sched_process_exit)
{
    if (args->group_dead) {
        u32 tgid = bpf_get_current_pid_tgid() >> 32;
        tracked.delete(&tgid);
    }
    return 0;
}
#endif
