/* bio: one row per block request. Requests are matched between hooks by (dev, sector),
 * as BCC HEAD's biosnoop does (tracepoints give no request pointer):
 *   block_io_start (else block_rq_insert): queued; the task that started the I/O;
 *   block_rq_issue: sent to the device, with its size;
 *   block_rq_complete: done; one row (a request completing in parts: its first part).
 * With a process filter, only requests started by kept tasks are recorded. */
struct bio_key {
    u32 dev;
    u32 pad;
    u64 sector;
};

struct bio_start {
    u64 queued_ns;
    u64 issue_ns;
    u32 tgid;
    u32 tid;
    u32 uid;
    u32 bytes;
    u64 comm[2];
    char rwbs[8];
};

/* LRU: a request that is queued but never issued or completed (merged away) ages out. */
BPF_TABLE("lru_hash", struct bio_key, struct bio_start, bio_start, 16384);
BPF_PERCPU_ARRAY(bio_zero, struct bio_start, 1);

#if defined(FILTER_TGID) || defined(FILTER_TREE) || defined(FILTER_COMM_LO)
#define BIO_FILTERED 1
#else
#define BIO_FILTERED 0
#endif

static __always_inline int bio_queued(u32 dev, u64 sector)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!bpfcap_keep(id))
        return 0;
    u32 zero = 0;
    struct bio_start *z = bio_zero.lookup(&zero);
    if (!z)
        return 0;
    struct bio_key k = {.dev = dev, .sector = sector};
    bio_start.update(&k, z);
    struct bio_start *s = bio_start.lookup(&k);
    if (!s)
        return 0;
    s->queued_ns = bpf_ktime_get_ns();
    s->tgid = id >> 32;
    s->tid = id;
    s->uid = bpf_get_current_uid_gid();
    bpf_get_current_comm(&s->comm, sizeof(s->comm));
    return 0;
}

#if defined(HAVE_block__block_io_start)
TRACEPOINT_PROBE(block, block_io_start) { return bio_queued(args->dev, args->sector); }
#elif defined(HAVE_block__block_rq_insert)
TRACEPOINT_PROBE(block, block_rq_insert) { return bio_queued(args->dev, args->sector); }
#endif

#if defined(HAVE_block__block_rq_issue) && defined(HAVE_block__block_rq_complete)
TRACEPOINT_PROBE(block, block_rq_issue)
{
    struct bio_key k = {.dev = args->dev, .sector = args->sector};
    struct bio_start *s = bio_start.lookup(&k);
    if (!s) {
        if (BIO_FILTERED)
            return 0; /* started by a task the filter does not keep, or before recording */
        u32 zero = 0;
        struct bio_start *z = bio_zero.lookup(&zero);
        if (!z)
            return 0;
        bio_start.update(&k, z);
        s = bio_start.lookup(&k);
        if (!s)
            return 0;
    }
    s->issue_ns = bpf_ktime_get_ns();
    s->bytes = args->bytes;
    bpf_probe_read_kernel(&s->rwbs, sizeof(s->rwbs), args->rwbs);
    return 0;
}

TRACEPOINT_PROBE(block, block_rq_complete)
{
    struct bio_key k = {.dev = args->dev, .sector = args->sector};
    struct bio_start *s = bio_start.lookup(&k);
    if (!s || !s->issue_ns)
        return 0;
    struct bio_batch *b;
    struct bio_event *e = bio_slot(&b);
    if (e) {
        u64 now = bpf_ktime_get_ns();
        e->ts_ns = s->issue_ns;
        e->lat_ns = now - s->issue_ns;
        e->queue_ns = s->queued_ns ? s->issue_ns - s->queued_ns : 0;
        e->tgid = s->tgid;
        e->tid = s->tid;
        e->uid = s->uid;
        __builtin_memcpy(&e->comm, &s->comm, sizeof(e->comm));
        e->dev = args->dev;
        e->sector = args->sector;
        e->bytes = s->bytes;
        e->error = args->error;
        __builtin_memcpy(&e->rwbs, &s->rwbs, sizeof(e->rwbs));
        bio_commit(b);
    }
    bio_start.delete(&k);
    return 0;
}
#endif
