/* syscall: raw_syscalls:sys_enter stashes the entry time and number per task, sys_exit
 * emits one row per call that returns (syscount -L's pairing; syscount counts at exit,
 * so exit and exit_group, which never return, are absent in both). */
struct syscall_start {
    u64 ts;
    u32 nr;
    COMM_CACHE;
};

BPFCAP_STASH(syscall_start, struct syscall_start, 65536, ts);

#if defined(HAVE_raw_syscalls__sys_enter) && defined(HAVE_raw_syscalls__sys_exit)
TRACEPOINT_PROBE(raw_syscalls, sys_enter)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!bpfcap_keep(id))
        return 0;
#ifdef SYSCALL_FILTER
    if (!syscall_wanted(args->id))
        return 0;
#endif
    u32 tid = id;
    struct syscall_start *s = syscall_start_new(tid);
    if (!s) {
        count_stat(2 * KIND_syscall, 1);
        count_stat(2 * KIND_syscall + 1, 1);
        return 0;
    }
    s->ts = bpf_ktime_get_ns();
    s->nr = args->id;
    return 0;
}

TRACEPOINT_PROBE(raw_syscalls, sys_exit)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = id;
    struct syscall_start *s = syscall_start_get(tid);
    if (!s)
        return 0;
    struct syscall_batch *b;
    struct syscall_event *e = syscall_slot(&b);
    if (e) {
        e->ts_ns = s->ts;
        e->lat_ns = bpf_ktime_get_ns() - s->ts;
        fill_current(e, id);
        e->ret = args->ret;
        e->nr = s->nr;
        cached_comm(&e->comm, &s->comm_gen, s->comm);
        syscall_commit(b);
    }
    syscall_start_done(tid, s);
    return 0;
}
#endif
