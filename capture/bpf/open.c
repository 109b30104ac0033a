/* open: sys_enter stashes the arguments by thread id, sys_exit emits one row
 * (BCC opensnoop's kprobe+kretprobe pairing, on stable tracepoints). */
#define O_CREAT_ 0100
#define O_TMPFILE_ 020200000

struct open_start {
    u64 ts;
    const char *filename;
    u32 flags;
    u32 mode;
    u8 syscall;
    u64 comm_gen; /* comm below is valid while this equals the rename generation + 1 */
    u64 comm[2];
};

/* The task's comm, cached in its entry stash: bpf_get_current_comm() on every open cost
 * ~0.1 us here. Any rename (prctl, exec, /proc/.../comm all fire task:task_rename) bumps
 * a global generation, which invalidates every cache: always correct, and renames are
 * rare next to opens. */
#if defined(HAVE_TASK_STORAGE) && defined(HAVE_task__task_rename)
#define OPEN_COMM_CACHE
BPF_ARRAY(comm_gen, u64, 1);

TRACEPOINT_PROBE(task, task_rename)
{
    u32 k = 0;
    u64 *g = comm_gen.lookup(&k);
    if (g)
        __sync_fetch_and_add(g, 1);
    return 0;
}
#endif

/* The entry, kept until the exit: in task-local storage where the kernel has it (no hash
 * lookup, no delete: ts = 0 marks it used), else in a hash by thread id. */
#ifdef HAVE_TASK_STORAGE
BPF_TASK_STORAGE(open_start, struct open_start);

static __always_inline int open_put(u32 tid, struct open_start *s)
{
    struct open_start *p = open_start.task_storage_get(
        (struct task_struct *)bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!p)
        return -1;
    /* Field by field: the comm cache in *p survives. */
    p->ts = s->ts;
    p->filename = s->filename;
    p->flags = s->flags;
    p->mode = s->mode;
    p->syscall = s->syscall;
    return 0;
}

static __always_inline struct open_start *open_get(u32 tid)
{
    struct open_start *p =
        open_start.task_storage_get((struct task_struct *)bpf_get_current_task_btf(), 0, 0);
    return p && p->ts ? p : 0;
}

static __always_inline void open_done(u32 tid, struct open_start *s) { s->ts = 0; }
#else
BPF_HASH(open_start, u32, struct open_start, 16384);

static __always_inline int open_put(u32 tid, struct open_start *s)
{
    return open_start.update(&tid, s);
}

static __always_inline struct open_start *open_get(u32 tid) { return open_start.lookup(&tid); }

static __always_inline void open_done(u32 tid, struct open_start *s) { open_start.delete(&tid); }
#endif

static __always_inline int open_enter(const char *filename, u32 flags, u32 mode, u8 sc)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!bpfcap_keep(id))
        return 0;
    u32 tid = id;
    struct open_start s = {};
    s.ts = bpf_ktime_get_ns();
    s.filename = filename;
    s.flags = flags;
    /* As BCC head: the mode argument means nothing without O_CREAT/O_TMPFILE. */
    if ((flags & O_CREAT_) || (flags & O_TMPFILE_) == O_TMPFILE_)
        s.mode = mode;
    s.syscall = sc;
    if (open_put(tid, &s)) {
        count_stat(2 * KIND_open, 1);
        count_stat(2 * KIND_open + 1, 1);
    }
    return 0;
}

static __always_inline int open_exit(long ret)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = id;
    struct open_start *s = open_get(tid);
    if (!s)
        return 0;
    struct open_batch *b;
    struct open_event *e = open_slot(&b);
    if (e) {
        u64 uid_gid = bpf_get_current_uid_gid();
        e->ts_ns = s->ts;
        e->lat_ns = bpf_ktime_get_ns() - s->ts;
        e->tgid = id >> 32;
        e->tid = tid;
        e->uid = uid_gid;
        e->cpu = bpf_get_smp_processor_id();
        e->ret = ret;
        e->flags = s->flags;
        e->mode = s->mode;
        e->syscall = s->syscall;
#ifdef OPEN_COMM_CACHE
        u32 k = 0;
        u64 *g = comm_gen.lookup(&k);
        u64 gen = (g ? *g : 0) + 1;
        if (s->comm_gen != gen) {
            bpf_get_current_comm(&s->comm, sizeof(s->comm));
            s->comm_gen = gen;
        }
        __builtin_memcpy(&e->comm, &s->comm, sizeof(e->comm));
#else
        bpf_get_current_comm(&e->comm, sizeof(e->comm));
#endif
        /* The length saves user space a scan for the NUL (returned length includes it). */
        int n = bpf_probe_read_user_str(&e->path, sizeof(e->path), s->filename);
        e->path_len = n > 0 ? n - 1 : 0;
        open_commit(b);
    }
    open_done(tid, s);
    return 0;
}

#if defined(HAVE_syscalls__sys_enter_open) && defined(HAVE_syscalls__sys_exit_open)
TRACEPOINT_PROBE(syscalls, sys_enter_open)
{
    return open_enter(args->filename, args->flags, args->mode, 0);
}
TRACEPOINT_PROBE(syscalls, sys_exit_open) { return open_exit(args->ret); }
#endif

#if defined(HAVE_syscalls__sys_enter_openat) && defined(HAVE_syscalls__sys_exit_openat)
TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
    return open_enter(args->filename, args->flags, args->mode, 1);
}
TRACEPOINT_PROBE(syscalls, sys_exit_openat) { return open_exit(args->ret); }
#endif

#if defined(HAVE_syscalls__sys_enter_openat2) && defined(HAVE_syscalls__sys_exit_openat2)
TRACEPOINT_PROBE(syscalls, sys_enter_openat2)
{
    /* struct open_how is uapi: { u64 flags; u64 mode; u64 resolve; }, in user memory. */
    u64 how[2] = {};
    bpf_probe_read_user(&how, sizeof(how), (void *)args->how);
    return open_enter(args->filename, how[0], how[1], 2);
}
TRACEPOINT_PROBE(syscalls, sys_exit_openat2) { return open_exit(args->ret); }
#endif
