/* signal: sys_enter of kill/tkill/tgkill stashes the arguments per task, sys_exit emits
 * one row with the result (killsnoop's kprobe+kretprobe pairing, on tracepoints). */
struct signal_start {
    u64 ts;
    s32 target;
    s32 target_tgid;
    u32 sig;
    u8 syscall;
    COMM_CACHE;
};

BPFCAP_STASH(signal_start, struct signal_start, 1024, ts);

static __always_inline int signal_enter(s32 target, s32 target_tgid, u32 sig, u8 sc)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!bpfcap_keep(id))
        return 0;
    u32 tid = id;
    struct signal_start *s = signal_start_new(tid);
    if (!s) {
        count_stat(2 * KIND_signal, 1);
        count_stat(2 * KIND_signal + 1, 1);
        return 0;
    }
    s->ts = bpf_ktime_get_ns();
    s->target = target;
    s->target_tgid = target_tgid;
    s->sig = sig;
    s->syscall = sc;
    return 0;
}

static __always_inline int signal_exit(long ret)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = id;
    struct signal_start *s = signal_start_get(tid);
    if (!s)
        return 0;
    struct signal_batch *b;
    struct signal_event *e = signal_slot(&b);
    if (e) {
        e->ts_ns = s->ts;
        e->lat_ns = bpf_ktime_get_ns() - s->ts;
        fill_current(e, id);
        e->ret = ret;
        e->syscall = s->syscall;
        e->target = s->target;
        e->target_tgid = s->target_tgid;
        e->sig = s->sig;
        cached_comm(&e->comm, &s->comm_gen, s->comm);
        signal_commit(b);
    }
    signal_start_done(tid, s);
    return 0;
}

#if defined(HAVE_syscalls__sys_enter_kill) && defined(HAVE_syscalls__sys_exit_kill)
TRACEPOINT_PROBE(syscalls, sys_enter_kill) { return signal_enter(args->pid, 0, args->sig, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_kill) { return signal_exit(args->ret); }
#endif

#if defined(HAVE_syscalls__sys_enter_tkill) && defined(HAVE_syscalls__sys_exit_tkill)
TRACEPOINT_PROBE(syscalls, sys_enter_tkill) { return signal_enter(args->pid, 0, args->sig, 1); }
TRACEPOINT_PROBE(syscalls, sys_exit_tkill) { return signal_exit(args->ret); }
#endif

#if defined(HAVE_syscalls__sys_enter_tgkill) && defined(HAVE_syscalls__sys_exit_tgkill)
TRACEPOINT_PROBE(syscalls, sys_enter_tgkill)
{
    return signal_enter(args->pid, args->tgid, args->sig, 2);
}
TRACEPOINT_PROBE(syscalls, sys_exit_tgkill) { return signal_exit(args->ret); }
#endif
