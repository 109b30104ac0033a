/* tcp: every state change of a TCP socket. Without a process filter every change is
 * recorded; with one, a socket is followed from its first change by a kept task, so
 * that its later changes in softirq context (any task current) are kept too.
 * At a change to CLOSE, bytes received and acked are read from struct tcp_sock at
 * offsets found in the running kernel's BTF (the tcp type's `bytes` kernel read). */
#define TCP_PROTO 6
#define TCP_CLOSE_STATE 7
#define TCP_NOT_KNOWN 0xFFFFFFFFFFFFFFFFULL

#if defined(FILTER_TGID) || defined(FILTER_TREE) || defined(FILTER_COMM_LO)
BPF_TABLE("lru_hash", u64, u8, tcp_followed, 16384);
#endif

#if defined(HAVE_sock__inet_sock_set_state)
TRACEPOINT_PROBE(sock, inet_sock_set_state)
{
    if (args->protocol != TCP_PROTO)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    u64 sk = (u64)args->skaddr;
    if ((u32)(id >> 32) == SELF_TGID)
        return 0;
#if defined(FILTER_TGID) || defined(FILTER_TREE) || defined(FILTER_COMM_LO)
    if (bpfcap_keep(id)) {
        u8 one = 1;
        tcp_followed.update(&sk, &one);
    } else if (!tcp_followed.lookup(&sk)) {
        return 0;
    }
    if (args->newstate == TCP_CLOSE_STATE)
        tcp_followed.delete(&sk);
#endif
    struct tcp_batch *b;
    struct tcp_event *e = tcp_slot(&b);
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    fill_current(e, id);
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    e->sock = (sk ^ SOCK_ID_KEY) & SOCK_ID_MASK;
    e->oldstate = args->oldstate;
    e->newstate = args->newstate;
    e->family = args->family;
    e->sport = args->sport;
    e->dport = args->dport;
    if (args->family == 2) {
        __builtin_memset(&e->saddr, 0, sizeof(e->saddr));
        __builtin_memset(&e->daddr, 0, sizeof(e->daddr));
        __builtin_memcpy(&e->saddr, args->saddr, 4);
        __builtin_memcpy(&e->daddr, args->daddr, 4);
    } else {
        __builtin_memcpy(&e->saddr, args->saddr_v6, 16);
        __builtin_memcpy(&e->daddr, args->daddr_v6, 16);
    }
    e->rx_bytes = TCP_NOT_KNOWN;
    e->tx_bytes = TCP_NOT_KNOWN;
#if defined(HAVE_KREAD_tcp_bytes)
    if (args->newstate == TCP_CLOSE_STATE) {
        if (KREAD(e->rx_bytes, sk, KF_tcp_sock__bytes_received))
            e->rx_bytes = TCP_NOT_KNOWN;
        if (KREAD(e->tx_bytes, sk, KF_tcp_sock__bytes_acked))
            e->tx_bytes = TCP_NOT_KNOWN;
    }
#endif
    tcp_commit(b);
    return 0;
}
#endif
