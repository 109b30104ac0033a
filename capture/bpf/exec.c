/* exec: the filename and argv strings must be copied at sys_enter (after a successful
 * exec the old memory is gone). Keyed by tgid, as execsnoop: a non-leader thread that
 * execs takes the leader's pid, so its tid at exit differs from its tid at entry. */
BPFCAP_STASH(exec_start, struct exec_event, 1024, ts_ns);

static __always_inline int exec_enter(const char *filename, const char *const *argv, u8 sc)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!bpfcap_keep(id))
        return 0;
    u32 tgid = id >> 32;
    struct exec_event *e = exec_start_new(tgid);
    if (!e) {
        count_stat(2 * KIND_exec, 1);
        count_stat(2 * KIND_exec + 1, 1);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->syscall = sc;
    e->nargs = 0;
    e->args_truncated = 0;
    if (bpf_probe_read_user_str(&e->filename, sizeof(e->filename), filename) < 0)
        e->filename[0] = 0;
    const char *p = 0;
#pragma unroll
    for (int i = 0; i < EXEC_MAXARGS; i++) {
        p = 0;
        bpf_probe_read_user(&p, sizeof(p), (void *)&argv[i + 1]);
        if (!p)
            goto done;
        if (bpf_probe_read_user_str(&e->args[i], EXEC_ARGSIZE, p) < 0)
            e->args[i][0] = 0;
        e->nargs = i + 1;
    }
    p = 0;
    bpf_probe_read_user(&p, sizeof(p), (void *)&argv[EXEC_MAXARGS + 1]);
    e->args_truncated = p != 0;
done:
    return 0;
}

static __always_inline int exec_exit(long ret)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    struct exec_event *s = exec_start_get(tgid);
    if (!s)
        return 0;
    struct exec_batch *b;
    struct exec_event *e = exec_slot(&b);
    if (e) {
        bpf_probe_read_kernel(e, sizeof(*e), s);
        e->lat_ns = bpf_ktime_get_ns() - e->ts_ns;
        fill_current(e, id);
        e->ret = ret;
        /* After a successful exec this is the new program's comm, as execsnoop shows. */
        bpf_get_current_comm(&e->comm, sizeof(e->comm));
        exec_commit(b);
    }
    exec_start_done(tgid, s);
    return 0;
}

#if defined(HAVE_syscalls__sys_enter_execve) && defined(HAVE_syscalls__sys_exit_execve)
TRACEPOINT_PROBE(syscalls, sys_enter_execve)
{
    return exec_enter(args->filename, args->argv, 0);
}
TRACEPOINT_PROBE(syscalls, sys_exit_execve) { return exec_exit(args->ret); }
#endif

#if defined(HAVE_syscalls__sys_enter_execveat) && defined(HAVE_syscalls__sys_exit_execveat)
TRACEPOINT_PROBE(syscalls, sys_enter_execveat)
{
    return exec_enter(args->filename, args->argv, 1);
}
TRACEPOINT_PROBE(syscalls, sys_exit_execveat) { return exec_exit(args->ret); }
#endif
