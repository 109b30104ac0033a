/* exec: one row per execve/execveat, with what BCC's execsnoop shows, and right where it
 * is wrong.
 *
 * Strings are copied at sys_enter from the caller's memory, as BCC does (the old memory
 * is gone after a successful exec). BPF cannot fault pages in, so a string on a page not
 * resident in the caller (after fork, a page of string literals is not mapped in the child
 * until touched) cannot be read there: BCC shows it empty. Such strings are marked in
 * args_unread and, when the exec succeeds, read again at sched:sched_process_exec: the
 * filename from the tracepoint, argv from the new program's stack (written by the kernel
 * a moment before, so resident). A failed exec keeps the old memory: its filename is
 * read again at sys_exit (the kernel has faulted it in); strings still missing show as
 * BCC shows them, empty.
 *
 * Keyed by tgid, as execsnoop: a non-leader thread that execs takes the leader's pid, so
 * its tid at exit differs from its tid at entry. */
#define ARGC_UNKNOWN 0xFFFFFFFF
/* argv entries counted at entry, when a string was unreadable and argv goes on past
 * EXEC_MAXARGS + 1 (to find the caller's arguments behind an interpreter's, below). */
#define ARGC_COUNT_MAX 1024
/* args_unread: bit 0 the filename, bit i argv[i]; ARGV_UNREAD: the argv array itself
 * could not be read from argv[nargs + 1] on. */
#define ARGV_UNREAD (1u << 31)
#define ALL_STRINGS ((2u << EXEC_MAXARGS) - 1)

BPFCAP_STASH(exec_start, struct exec_event, 1024, ts_ns);

/* A string as BCC's execsnoop reads it: EXEC_ARGSIZE raw bytes, shown up to the first NUL
 * (so up to EXEC_ARGSIZE bytes); where those bytes run into memory that is not mapped, up
 * to the NUL only. 0 on success; on failure dst is zeroed (an empty string, as BCC). */
static __always_inline int read_user_arg(char *dst, const void *src)
{
    if (bpf_probe_read_user(dst, EXEC_ARGSIZE, src) == 0)
        return 0;
    return bpf_probe_read_user_str(dst, EXEC_ARGSIZE, src) < 0 ? -1 : 0;
}

/* Read the filename and argv strings from the caller's memory into e; sets nargs,
 * args_truncated and argc as far as the argv array can be read, and args_unread to the
 * strings that could not be read. (The bits are kept in e, not in a register: the
 * verifier tracks a register's exact value, and 2^20 combinations of bits would each be
 * a path of their own; it does not track map memory.) */
static __always_inline void exec_read_caller(struct exec_event *e)
{
    const char *const *argv = (const char *const *)e->argv_ptr;
    const char *p = 0;
    e->args_unread = 0;
    e->nargs = 0;
    e->args_truncated = 0;
    if (read_user_arg(e->filename, (const void *)e->filename_ptr))
        e->args_unread |= 1;
    /* argv may be NULL or empty (argc 0): then there is no argv[1] to read. */
    if (!argv || bpf_probe_read_user(&p, sizeof(p), (void *)&argv[0]) || !p) {
        e->argc = argv && !p ? 0 : ARGC_UNKNOWN;
        if (e->argc)
            e->args_unread |= (ALL_STRINGS & ~1u) | ARGV_UNREAD;
        return;
    }
#pragma unroll
    for (int i = 1; i <= EXEC_MAXARGS; i++) {
        p = 0;
        if (bpf_probe_read_user(&p, sizeof(p), (void *)&argv[i])) {
            e->argc = ARGC_UNKNOWN;
            e->args_unread |= (ALL_STRINGS & ~((2u << (i - 1)) - 1)) | ARGV_UNREAD;
            return;
        }
        if (!p) {
            e->argc = i;
            return;
        }
        if (read_user_arg(e->args[i - 1], p))
            e->args_unread |= 1u << i;
        e->nargs = i;
    }
    p = 0;
    if (bpf_probe_read_user(&p, sizeof(p), (void *)&argv[EXEC_MAXARGS + 1])) {
        e->argc = ARGC_UNKNOWN;
        e->args_unread |= ARGV_UNREAD;
        return;
    }
    e->args_truncated = p != 0;
    e->argc = EXEC_MAXARGS + 1;
    if (!p || !e->args_unread)
        return;
    /* A long argv with unread strings: count it, so that the new program's argv can be
     * matched to it should an interpreter have put its own arguments in front. */
    u32 n = EXEC_MAXARGS + 2;
#pragma clang loop unroll(disable)
    for (; n < ARGC_COUNT_MAX; n++) {
        p = 0;
        if (bpf_probe_read_user(&p, sizeof(p), (void *)&argv[n]) || !p)
            break;
    }
    e->argc = p || n >= ARGC_COUNT_MAX ? ARGC_UNKNOWN : n;
}

#if defined(HAVE_KREAD_exec_image)
/* After a successful exec: the argv strings still unread, from the new program's stack.
 * create_elf_tables() left argc there, then the argv pointers (argv[0] at mm->arg_start).
 * An interpreter (#! script, binfmt_misc) puts its own arguments in front of the caller's
 * argv[1..], replacing argv[0]: the caller's arguments are the last argc - 1. */
static __always_inline void exec_read_image(struct exec_event *s)
{
    u64 task = bpf_get_current_task(), mm = 0, sp = 0, arg_start = 0, argc_new = 0, p = 0;
    KREAD(mm, task, KF_task_struct__mm);
    KREAD(sp, mm, KF_mm_struct__start_stack);
    KREAD(arg_start, mm, KF_mm_struct__arg_start);
    if (!mm || bpf_probe_read_user(&argc_new, 8, (void *)sp) ||
        bpf_probe_read_user(&p, 8, (void *)(sp + 8)) || p != arg_start)
        return; /* not the layout known here: keep what the entry read */
    u64 first = 1, n = argc_new ? argc_new - 1 : 0; /* argv[1] in the new argv; how many */
    if (s->argc != ARGC_UNKNOWN && argc_new + 1 >= s->argc) {
        first = argc_new + 1 - s->argc;
        n = s->argc ? s->argc - 1 : 0;
    }
    s->nargs = n < EXEC_MAXARGS ? n : EXEC_MAXARGS;
    s->args_truncated = n > EXEC_MAXARGS;
    s->args_unread &= ALL_STRINGS; /* the argv array is known now */
#pragma unroll
    for (int i = 0; i < EXEC_MAXARGS; i++) {
        if (i >= s->nargs) {
            s->args_unread &= (2u << i) - 1; /* no such argument: nothing unread */
            break;
        }
        if (!((s->args_unread >> (i + 1)) & 1))
            continue;
        p = 0;
        if (bpf_probe_read_user(&p, 8, (void *)(sp + 8 * (1 + first + i))) == 0 && p &&
            read_user_arg(s->args[i], (const void *)p) == 0)
            s->args_unread &= ~(1u << (i + 1));
    }
}
#endif

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
    e->args_from = 0; /* entry */
    e->filename_ptr = (u64)filename;
    e->argv_ptr = (u64)argv;
    exec_read_caller(e);
    return 0;
}

static __always_inline int exec_exit(long ret)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    struct exec_event *s = exec_start_get(tgid);
    if (!s)
        return 0;
    /* A failed exec: the old memory is still there, and the kernel read the filename
     * (getname, faulting its page in) before failing. Its arguments it reads only late
     * (after opening the file), so they are not tried again. */
    if (ret < 0 && (s->args_unread & 1) &&
        read_user_arg(s->filename, (const void *)s->filename_ptr) == 0)
        s->args_unread &= ~1u;
    struct exec_batch *b;
    struct exec_event *e = exec_slot(&b);
    if (e) {
        bpf_probe_read_kernel(e, sizeof(*e), s);
        e->lat_ns = bpf_ktime_get_ns() - e->ts_ns;
        fill_current(e, id);
        e->ret = ret;
        /* After a successful exec this is the new program's comm, as execsnoop shows. */
        bpf_get_current_comm(&e->comm, sizeof(e->comm));
        e->ppid = 0;
        e->pcomm[0] = 0;
#if defined(HAVE_KREAD_exec_parent)
        /* As execsnoop at return: task->real_parent->tgid and its comm. */
        u64 parent = 0;
        if (KREAD(parent, bpf_get_current_task(), KF_task_struct__real_parent) == 0 &&
            KREAD(e->ppid, parent, KF_task_struct__tgid) == 0)
            bpf_probe_read_kernel_str(&e->pcomm, sizeof(e->pcomm),
                                      (void *)(parent + KF_task_struct__comm));
#endif
        exec_commit(b);
    }
    exec_start_done(tgid, s);
    return 0;
}

#if defined(HAVE_sched__sched_process_exec)
/* The exec succeeded: the new program is in place, its argv on its stack. Only execs
 * with strings unread at entry need anything here. */
TRACEPOINT_PROBE(sched, sched_process_exec)
{
#ifdef FILTER_TREE
    tree_exec(args->old_pid, args->pid);
#endif
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct exec_event *s = exec_start_get(tgid);
    if (!s || !s->args_unread)
        return 0;
    s->args_from = 1; /* image */
    if (s->args_unread & 1) {
        /* __data_loc char[] filename: offset in the low 16 bits, length (with the NUL)
         * in the high 16. As at entry: the first EXEC_ARGSIZE bytes. */
        u32 loc = args->data_loc_filename;
        void *src = (void *)((u64)args + (loc & 0xFFFF));
        int err = (loc >> 16) > EXEC_ARGSIZE
                      ? bpf_probe_read_kernel(&s->filename, EXEC_ARGSIZE, src)
                      : bpf_probe_read_kernel_str(&s->filename, EXEC_ARGSIZE, src) < 0;
        if (!err)
            s->args_unread &= ~1u;
    }
#if defined(HAVE_KREAD_exec_image)
    if (s->args_unread & ~1u)
        exec_read_image(s);
#endif
    return 0;
}
#endif

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
