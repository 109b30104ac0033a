/* accept: who accepted a TCP connection (tcpaccept's PID and COMM). The connection's own
 * tracepoint (sock:inet_sock_set_state) fires in softirq under whatever task is current;
 * the accepting task is the one returning from accept(2)/accept4(2). As BCC's tcpaccept
 * at inet_csk_accept's return, the addresses are read from the new socket: the one behind
 * the returned descriptor, current->files->fdt->fd[ret]->private_data (a struct socket)
 * ->sk, at offsets from the kernel's BTF. Only TCP sockets (sk_protocol) are kept. */
#define ACCEPT_TCP 6

#if defined(HAVE_KREAD_accept_socket)
static __always_inline int accept_exit(long ret, u8 sc)
{
    if (ret < 0)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    if (!bpfcap_keep(id))
        return 0;
    u64 files = 0, fdt = 0, fds = 0, file = 0, sockp = 0, sk = 0;
    u32 max_fds = 0;
    u16 protocol = 0, family = 0, dport = 0;
    KREAD(files, bpf_get_current_task(), KF_task_struct__files);
    KREAD(fdt, files, KF_files_struct__fdt);
    KREAD(max_fds, fdt, KF_fdtable__max_fds);
    if ((u64)ret >= max_fds)
        return 0;
    KREAD(fds, fdt, KF_fdtable__fd);
    bpf_probe_read_kernel(&file, sizeof(file), (void *)(fds + 8 * (u64)ret));
    KREAD(sockp, file, KF_file__private_data);
    if (!sockp || KREAD(sk, sockp, KF_socket__sk) || !sk)
        return 0;
    KREAD(protocol, sk, KF_sock__sk_protocol);
    KREAD(family, sk, KF_sock____sk_common__skc_family);
    if (protocol != ACCEPT_TCP || (family != 2 && family != 10))
        return 0;
    struct accept_batch *b;
    struct accept_event *e = accept_slot(&b);
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    fill_current(e, id);
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    e->ret = ret;
    e->syscall = sc;
    e->sock = (sk ^ SOCK_ID_KEY) & SOCK_ID_MASK;
    e->family = family;
    KREAD(e->sport, sk, KF_sock____sk_common__skc_num);
    KREAD(dport, sk, KF_sock____sk_common__skc_dport);
    e->dport = __builtin_bswap16(dport); /* network order in the socket */
    __builtin_memset(&e->saddr, 0, sizeof(e->saddr));
    __builtin_memset(&e->daddr, 0, sizeof(e->daddr));
    if (family == 2) {
        bpf_probe_read_kernel(&e->saddr, 4, (void *)(sk + KF_sock____sk_common__skc_rcv_saddr));
        bpf_probe_read_kernel(&e->daddr, 4, (void *)(sk + KF_sock____sk_common__skc_daddr));
    } else {
        KREAD(e->saddr, sk, KF_sock____sk_common__skc_v6_rcv_saddr);
        KREAD(e->daddr, sk, KF_sock____sk_common__skc_v6_daddr);
    }
    accept_commit(b);
    return 0;
}

#if defined(HAVE_syscalls__sys_exit_accept)
TRACEPOINT_PROBE(syscalls, sys_exit_accept) { return accept_exit(args->ret, 0); }
#endif
#if defined(HAVE_syscalls__sys_exit_accept4)
TRACEPOINT_PROBE(syscalls, sys_exit_accept4) { return accept_exit(args->ret, 1); }
#endif
#endif
