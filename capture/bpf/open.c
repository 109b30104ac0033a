/* open: sys_enter stashes the arguments by thread id, sys_exit emits one row
 * (BCC opensnoop's kprobe+kretprobe pairing, on stable tracepoints).
 *
 * With the cwd type, an open of a relative path also records the task's working
 * directory (opensnoop -F), as a cwd row, when it is not the one the task last recorded:
 * the stash keeps which (fs->pwd's dentry and mount), so a task pays for the walk once
 * per directory, not once per open. */
#define O_CREAT_ 0100
#define O_TMPFILE_ 020200000

struct open_start {
    u64 ts;
    const char *filename;
    u32 flags;
    u32 mode;
    u8 syscall;
    COMM_CACHE;
    u64 cwd_dentry; /* the working directory last recorded as a cwd row */
    u64 cwd_mnt;
};

BPFCAP_STASH(open_start, struct open_start, 16384, ts);

static __always_inline int open_enter(const char *filename, u32 flags, u32 mode, u8 sc)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!bpfcap_keep(id))
        return 0;
    u32 tid = id;
    struct open_start *s = open_start_new(tid);
    if (!s) {
        count_stat(2 * KIND_open, 1);
        count_stat(2 * KIND_open + 1, 1);
        return 0;
    }
    s->ts = bpf_ktime_get_ns();
    s->filename = filename;
    s->flags = flags;
    /* As BCC head: the mode argument means nothing without O_CREAT/O_TMPFILE. */
    s->mode = (flags & O_CREAT_) || (flags & O_TMPFILE_) == O_TMPFILE_ ? mode : 0;
    s->syscall = sc;
    return 0;
}

#if defined(EVENT_cwd) && defined(HAVE_KREAD_cwd_walk)
/* BCC opensnoop -F's walk (tools/opensnoop.py, FULLPATH): from fs->pwd up through
 * d_parent, reading each d_name (NAME_MAX bytes with the NUL), crossing a mount's root
 * to the dentry it is mounted on; the real root ends it (its name is not counted). */
static __always_inline void cwd_note(struct open_start *s, u64 id, u64 now)
{
    u64 task = bpf_get_current_task(), fs = 0, dentry = 0, vfsmnt = 0;
    if (KREAD(fs, task, KF_task_struct__fs) || !fs)
        return;
    KREAD(dentry, fs, KF_fs_struct__pwd__dentry);
    KREAD(vfsmnt, fs, KF_fs_struct__pwd__mnt);
    if (!dentry || (dentry == s->cwd_dentry && vfsmnt == s->cwd_mnt))
        return;
    struct cwd_batch *b;
    struct cwd_event *c = cwd_slot(&b);
    if (!c)
        return;
    s->cwd_dentry = dentry;
    s->cwd_mnt = vfsmnt;
    c->ts_ns = now;
    fill_current(c, id);
    bpf_get_current_comm(&c->comm, sizeof(c->comm));
    c->depth = 0;
    u64 mnt = vfsmnt - KF_mount__mnt; /* container_of(vfsmnt, struct mount, mnt) */
    u64 name = 0, parent = 0, mnt_root = 0, mnt_parent = 0;
#pragma unroll
    for (int i = 0; i < CWD_MAXDIRS; i++) {
        KREAD(name, dentry, KF_dentry__d_name__name);
        if (bpf_probe_read_kernel_str(&c->dirs[i], CWD_NAMESIZE, (void *)name) < 0)
            break;
        KREAD(mnt_root, vfsmnt, KF_vfsmount__mnt_root);
        KREAD(parent, dentry, KF_dentry__d_parent);
        if (dentry == parent || dentry == mnt_root) {
            KREAD(mnt_parent, mnt, KF_mount__mnt_parent);
            if (mnt == mnt_parent)
                break; /* the real root */
            KREAD(dentry, mnt, KF_mount__mnt_mountpoint);
            mnt = mnt_parent;
            vfsmnt = mnt + KF_mount__mnt;
        } else {
            dentry = parent;
        }
        c->depth++;
    }
    cwd_commit(b);
}
#endif

static __always_inline int open_exit(long ret)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = id;
    struct open_start *s = open_start_get(tid);
    if (!s)
        return 0;
    struct open_batch *b;
    struct open_event *e = open_slot(&b);
    if (e) {
        e->ts_ns = s->ts;
        e->lat_ns = bpf_ktime_get_ns() - s->ts;
        fill_current(e, id);
        e->ret = ret;
        e->flags = s->flags;
        e->mode = s->mode;
        e->syscall = s->syscall;
        cached_comm(&e->comm, &s->comm_gen, s->comm);
        /* The length saves user space a scan for the NUL (returned length includes it). */
        int n = bpf_probe_read_user_str(&e->path, sizeof(e->path), s->filename);
        e->path_len = n > 0 ? n - 1 : 0;
#if defined(EVENT_cwd) && defined(HAVE_KREAD_cwd_walk)
        if (n > 1 && e->path[0] != '/')
            cwd_note(s, id, e->ts_ns + e->lat_ns);
#endif
        open_commit(b);
    }
    open_start_done(tid, s);
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
