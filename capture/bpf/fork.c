/* fork: parent/child links, for execsnoop's PPID/PCOMM (with the /proc snapshot taken at
 * start) and for following a command's descendants in the kernel (FILTER_TREE). */
#if defined(HAVE_sched__sched_process_fork)
TRACEPOINT_PROBE(sched, sched_process_fork)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 child = args->child_pid;
#ifdef FILTER_TREE
    u32 tgid = id >> 32;
    if (tracked.lookup(&tgid))
        tree_add(child);
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
/* Every task's exit: a thread's tid leaves the set; the tgid leaves when the whole group
 * is dead (group_dead, kernel 6.8+; before it, when the leader exits, which may drop a
 * process whose other threads still run: their later events are then not recorded). */
TRACEPOINT_PROBE(sched, sched_process_exit)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = id, tgid = id >> 32;
    if (tid != tgid)
        tracked.delete(&tid);
#ifdef HAVE_FIELD_sched_process_exit_group_dead
    if (args->group_dead)
        tracked.delete(&tgid);
#else
    if (tid == tgid)
        tracked.delete(&tgid);
#endif
    return 0;
}
#endif

#if defined(FILTER_TREE) && !defined(EVENT_exec) && defined(HAVE_sched__sched_process_exec)
TRACEPOINT_PROBE(sched, sched_process_exec)
{
    tree_exec(args->old_pid, args->pid);
    return 0;
}
#endif
