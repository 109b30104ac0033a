"""opensnoop: one row per completed open, as BCC's tools/opensnoop.py (v0.37) prints it,
with its flags applied after the fact.

Text: COMM and PATH printb of raw bytes (opensnoop.py:593-595,620); with -F, the path
BCC builds from names decoded as UTF-8 ignoring invalid bytes (opensnoop.py:612).

-F (full path) joins a relative path to the working directory the open was made in,
from the trace's `cwd` rows (the names BCC's -F walk reads, kept per thread), with BCC's
rules: the names are decoded as UTF-8 ignoring invalid bytes, `/` and empty names are
dropped, the rest joined leaf-last with `/` and prefixed with `/`; not normalised (`../x`
stays). An absolute path goes through the same decoding."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.common import (
    END,
    OutputColumn,
    as_bytes,
    as_int64,
    completion_ns,
    filter_all,
    in_completion_order,
    last_at_or_before,
    match_bytes,
    select_columns,
    sort_by_completion,
    window_mask,
    with_end,
)
from bpfcap.analyze.report import REORDER_SLACK_NS, Report, Rows, Source, first_of, option
from bpfcap.formats.abi import Abi, for_machine
from bpfcap.formats.errors import UsageError
from bpfcap.formats.events import BY_NAME, SCHEMA
from bpfcap.formats.schema import empty_table


def bcc_open_flags(abi: Abi) -> dict[str, int]:
    """The O_* values BCC's `-f` resolves names with (Python's os on the recording host):
    the architecture's, but O_LARGEFILE is 0 in glibc's 64-bit ABIs, so like O_RDONLY it
    matches nothing."""
    return dict(abi.open_flags, O_LARGEFILE=0)


# x86_64's, for callers of the analysis functions that do not say (traces without
# host.machine were recorded on x86_64).
O_FLAGS = bcc_open_flags(for_machine("x86_64"))

COLUMNS = (
    OutputColumn(
        "time_s", "Seconds from the first open to this one (-T)", "TIME(s)", "%-14s", "%-14.9f"
    ),
    OutputColumn("uid", "User id (-U)", "UID", "%-6s", "%-6d"),
    OutputColumn("pid", "Process id (tgid); absent with -t", "PID", "%-6s ", "%-6d "),
    OutputColumn("tid", "Thread id; only with -t", "TID", "%-6s ", "%-6d "),
    OutputColumn("comm", "Task command name (raw bytes)", "COMM", "%-16s ", "%-16s "),
    OutputColumn("fd", "File descriptor returned, -1 on failure", "FD", "%4s ", "%4d "),
    OutputColumn("err", "errno on failure, else 0", "ERR", "%3s ", "%3d "),
    OutputColumn(
        "flags",
        "Open flags, printed in octal (-e); as O_* names in JSON and CSV",
        "FLAGS",
        "%-8s ",
        "%08o ",
        names="open_flags",
    ),
    OutputColumn(
        "mode",
        "Mode, printed in octal (-e); null (`n/a`) when 0 and neither O_CREAT nor O_TMPFILE",
        "MODE",
        "%-4s ",
        "%04o ",
        null="n/a",
    ),
    OutputColumn("path", "Path as passed to the call (raw bytes)", "PATH", "%s", "%s"),
)


@dataclass(frozen=True)
class Options:
    """opensnoop's flags. `flag_filter`: O_* names; `name`: a substring of comm."""

    timestamp: bool = option(False, "-T", "--timestamp", help="Include a TIME(s) column.")
    print_uid: bool = option(False, "-U", "--print-uid", help="Include a UID column.")
    failed: bool = option(False, "-x", "--failed", help="Only show failed opens.")
    pid: int | None = option(None, "-p", "--pid", help="Only this process.")
    tid: int | None = option(
        None, "-t", "--tid", help="Only this thread (first column becomes TID)."
    )
    uid: int | None = option(None, "-u", "--uid", help="Only this user id.")
    duration: float | None = option(
        None,
        "-d",
        "--duration",
        metavar="SECONDS",
        min=0,
        help="Only the first SECONDS of the report's time (as BCC's -d).",
    )
    name: str | None = option(
        None, "-n", "--name", metavar="NAME", help="Only processes whose name contains NAME."
    )
    extended_fields: bool = option(
        False, "-e", "--extended-fields", help="Show the FLAGS and MODE columns."
    )
    full_path: bool = option(
        False,
        "-F",
        "--full-path",
        help="Show relative paths joined to the working directory (as BCC's -F).",
    )
    flag_filter: tuple[str, ...] = option(
        (),
        "-f",
        "--flag-filter",
        metavar="O_FLAG",
        repeat=True,
        help="Only opens with this flag set (repeatable: any of them).",
    )


def flag_mask(names: tuple[str, ...] | list[str], o_flags: Mapping[str, int] = O_FLAGS) -> int:
    """OR of the named O_* flags (`o_flags`: the recording architecture's values);
    UsageError `Bad flag: X` (BCC's message) for others."""
    mask = 0
    for name in names:
        if name not in o_flags:
            raise UsageError(f"Bad flag: {name}", "use O_* names as in open(2), e.g. O_CREAT")
        mask |= o_flags[name]
    return mask


def _kernel_side(t: pa.Table, options: Options, o_flags: Mapping[str, int] = O_FLAGS) -> pa.Table:
    """The rows BCC's in-kernel filters (-p/-t/-u/-f) let through: the events it receives."""
    mask = flag_mask(options.flag_filter, o_flags)
    keep = []
    if options.tid is not None:
        keep.append(pc.equal(as_int64(t["tid"]), options.tid))
    elif options.pid is not None:
        keep.append(pc.equal(as_int64(t["tgid"]), options.pid))
    if options.uid is not None:
        keep.append(pc.equal(as_int64(t["uid"]), options.uid))
    if options.flag_filter:
        keep.append(pc.not_equal(pc.bit_wise_and(t["flags"], mask), 0))
    return filter_all(t, keep)


def first_received_us(
    chunks: Iterable[pa.Table], options: Options, o_flags: Mapping[str, int] = O_FLAGS
) -> int | None:
    """Completion time (us) of the first open BCC would have received: -T's zero. For a
    trace read in chunks, before the rows are reported."""
    first = None
    for chunk in chunks:
        t = _kernel_side(chunk, options, o_flags)
        if t.num_rows:
            m = pc.min(completion_ns(t)).as_py() // 1000
            first = m if first is None else min(first, m)
    return first


def bcc_full_path(path: bytes, dirs: list[bytes]) -> bytes:
    """What BCC's opensnoop -F prints for `path` opened in a directory whose names, as its
    walk reads them leaf first, are `dirs` (empty for an absolute path)."""
    names = [n.decode("utf-8", "ignore") for n in [path, *dirs]]
    joined = "/".join(reversed([n for n in names if n not in ("/", "")]))
    return (joined if joined.startswith("/") else "/" + joined).encode()


def full_paths(opens: pa.Table, cwds: pa.Table) -> pa.Array:
    """-F's PATH for each row of `opens` (ts_ns, lat_ns, tid, path): the path joined to the
    last `cwds` row (ts_ns, tid, dirs) of its thread at or before the open returned; null
    for a relative path without one (the recording did not read working directories)."""
    path = opens["path"].combine_chunks()
    n = len(path)
    if not n:
        return pa.array([], pa.binary())
    relative = np.asarray(
        pc.fill_null(pc.not_equal(pc.binary_slice(path, 0, 1), b"/"), True), dtype=bool
    )
    cwd_row = np.full(n, -1, dtype=np.int64)
    if cwds.num_rows and relative.any():
        tids = np.asarray(opens["tid"].to_numpy(zero_copy_only=False), dtype=np.int64)
        cwd_row = last_at_or_before(
            np.asarray(cwds["tid"].to_numpy(zero_copy_only=False), dtype=np.int64),
            np.asarray(cwds["ts_ns"].to_numpy(zero_copy_only=False), dtype=np.uint64),
            tids,
            np.asarray(completion_ns(opens).to_numpy(zero_copy_only=False), dtype=np.uint64),
        )
    cwd_row[~relative] = -1  # an absolute path takes no directory
    # Paths and directories repeat: each distinct (path, directory) is joined once.
    # One int64 key per (path, directory row): a 1-D unique (a sort of n keys), not a
    # row-wise unique of pairs (a lexsort of n x 2).
    path_ids = np.asarray(pc.dictionary_encode(path).indices.to_numpy(zero_copy_only=False))
    key = path_ids.astype(np.int64) * (cwds.num_rows + 1) + (cwd_row + 1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    paths = path.to_pylist()
    dirs = cwds["dirs"] if cwds.num_rows else None
    joined: list[bytes | None] = []
    for row, i in zip(cwd_row[first].tolist(), first.tolist()):
        if relative[i] and row < 0:
            joined.append(None)
        else:
            joined.append(bcc_full_path(paths[i] or b"", dirs[row].as_py() if row >= 0 else []))
    return pa.array(joined, pa.binary()).take(pa.array(inverse.reshape(-1)))


def opensnoop(
    opens: pa.Table,
    options: Options,
    *,
    start_ns: int,
    first_us: int | None = None,
    cwds: pa.Table | None = None,
    o_flags: Mapping[str, int] = O_FLAGS,
) -> pa.Table:
    """The opensnoop report of `opens` (rows of kind `open`); `start_ns` is the recording's
    start (for -d); `first_us` is -T's zero when `opens` is one chunk of a larger trace
    (first_received_us() of all of it), else it is computed from `opens`.

    Rows are in completion order (ties by tid). Columns, in order, those of `COLUMNS` that
    the options show: time_s (-T; float seconds from the first open that BCC would have
    received, i.e. the first passing -p/-t/-u/-f, counted in whole microseconds as BCC),
    uid (-U), pid or tid (-t), comm (binary), fd (int64), err (int64), flags and mode (-e;
    uint32, mode null for `n/a`), path (binary; with -F the full path, see full_paths(),
    from the `cwds` rows, or the path as recorded where a relative one has no directory);
    then end_ns (uint64, the completion time), which text leaves out. `o_flags` are the
    recording architecture's O_* values (x86_64's by default).
    """
    # What BCC filters in the kernel: the events it never receives.
    t = _kernel_side(sort_by_completion(opens), options, o_flags)
    if first_us is None:
        first_us = t[END][0].as_py() // 1000 if t.num_rows else 0

    # What its user space skips after receiving (-T still counts from the first received).
    keep = []
    if options.failed:
        keep.append(pc.less(t["ret"], 0))
    if options.name is not None:
        name = as_bytes(options.name)
        keep.append(match_bytes(t["comm"], lambda comm: name in comm))
    if options.duration is not None:
        keep.append(window_mask(t[END], start_ns, options.duration))
    t = filter_all(t, keep)

    ret = pc.fill_null(t["ret"], 0).combine_chunks().cast(pa.int64())
    ok = pc.greater_equal(ret, 0)
    out = {
        "comm": t["comm"].combine_chunks(),
        "fd": pc.if_else(ok, ret, -1),
        "err": pc.if_else(ok, 0, pc.negate(ret)),
        "path": t["path"].combine_chunks(),
    }
    if options.full_path:
        empty = empty_table(SCHEMA).select(["ts_ns", "tid", "dirs"])
        out["path"] = pc.fill_null(full_paths(t, empty if cwds is None else cwds), out["path"])
    if options.tid is not None:
        out["tid"] = t["tid"].combine_chunks()
    else:
        out["pid"] = t["tgid"].combine_chunks()
    if options.timestamp:
        ts_us = pc.divide(t[END].combine_chunks(), 1000).cast(pa.int64())
        delta = pc.subtract(ts_us, first_us).cast(pa.float64())
        out["time_s"] = pc.divide(delta, 1_000_000.0)
    if options.print_uid:
        out["uid"] = t["uid"].combine_chunks()
    if options.extended_fields:
        flags = pc.fill_null(t["flags"], 0).combine_chunks()
        mode = pc.fill_null(t["mode"], 0).combine_chunks()
        creat, tmpfile = o_flags["O_CREAT"], o_flags["O_TMPFILE"]
        na = pc.and_(
            pc.and_(pc.equal(mode, 0), pc.equal(pc.bit_wise_and(flags, creat), 0)),
            pc.not_equal(pc.bit_wise_and(flags, tmpfile), tmpfile),
        )
        out["flags"] = flags
        out["mode"] = pc.if_else(na, pa.scalar(None, mode.type), mode)
    return with_end(select_columns(COLUMNS, out), t[END].combine_chunks())


def run(source: Source, options: Options) -> Rows:
    """opensnoop over the trace: streams the open rows in completion order (a bounded
    reorder window), with -T's zero from a first pass when asked."""
    o_flags = bcc_open_flags(source.abi)
    flag_mask(options.flag_filter, o_flags)  # a bad -f fails before any reading
    columns = [f.name for f in BY_NAME["open"].columns if f.name != "kind"]
    first_us = None
    if options.timestamp:  # -T counts from the first open received: one pass for it
        needs = ["ts_ns", "lat_ns", "tgid", "tid", "uid", "flags"]
        first_us = first_received_us(source.batches("open", needs), options, o_flags)
    # -F: the working directories, kept per thread (few rows: one per directory a
    # thread opened a relative path in).
    cwds = source.read("cwd", ["ts_ns", "tid", "dirs"], whole=True) if options.full_path else None

    def report(chunk: pa.Table) -> pa.Table:
        return opensnoop(
            chunk,
            options,
            start_ns=source.start_ns,
            first_us=first_us,
            cwds=cwds,
            o_flags=o_flags,
        )

    def chunks() -> Iterator[pa.Table]:
        ordered = in_completion_order(source.batches("open", columns), REORDER_SLACK_NS)
        yield from first_of(
            map(report, ordered), lambda: report(empty_table(SCHEMA).select(columns))
        )

    return Rows(
        "opensnoop",
        kinds=["open", "cwd"] if options.full_path else ["open"],
        columns=COLUMNS,
        chunks=chunks(),
        meta=source.meta,
        abi=source.abi,
    )


REPORT = Report(
    name="opensnoop",
    summary="Trace open() syscalls, as BCC's opensnoop prints them.",
    description="""Trace open() syscalls: one line per open(2), openat(2) or openat2(2), as
    opensnoop prints it.""",
    needs={"open": tuple(c.name for c in BY_NAME["open"].columns), "cwd": ("ts_ns", "tid", "dirs")},
    options=Options,
    run=run,
    bcc_duration=True,
    examples=(
        ("opensnoop t.parquet", "all opens"),
        ("opensnoop t.parquet -T -U -e", "with time, uid, flags and mode"),
        ("opensnoop t.parquet -x -p 181", "failed opens of PID 181"),
        ("opensnoop t.parquet -f O_CREAT", "opens that may create a file"),
        ("opensnoop t.parquet -n ssh --since 10 --until 20", "comm contains ssh, 10 s to 20 s"),
        ("opensnoop t.parquet -F", "full paths of relative ones"),
        ("opensnoop t.parquet --format csv > opens.csv", "for a spreadsheet"),
    ),
)
