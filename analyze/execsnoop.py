"""execsnoop: one row per completed exec, as BCC's tools/execsnoop.py (v0.37) prints it,
with its flags applied after the fact.

Text: COMM, PCOMM and ARGS printb of raw bytes (execsnoop.py:344,346,350).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.common import (
    END,
    OutputColumn,
    as_bytes,
    as_int64,
    filter_all,
    in_completion_order,
    last_at_or_before,
    match_bytes,
    seconds_since,
    select_columns,
    sort_by_completion,
    wall_clock,
)
from bpfcap.analyze.report import REORDER_SLACK_NS, Report, Rows, Source, option
from bpfcap.formats.errors import UsageError
from bpfcap.formats.events import BY_NAME, EXEC_MAXARGS, SCHEMA
from bpfcap.formats.schema import empty_table

DEFAULT_MAX_ARGS = 20  # BCC's MAXARG

COLUMNS = (
    OutputColumn(
        "time", "Local wall-clock time HH:MM:SS of completion (-T)", "TIME", "%-9s", "%-9s"
    ),
    OutputColumn("time_s", "Seconds since the recording started (-t)", "TIME(s)", "%-8s", "%-8.3f"),
    OutputColumn("uid", "Real user id (-U)", "UID", "%-6s", "%-6d"),
    OutputColumn("comm", "Command name after the exec (raw bytes)", "COMM", "%-16s ", "%-16s "),
    OutputColumn("pid", "Process id (tgid)", "PID", "%-7s ", "%-7d "),
    OutputColumn(
        "pcomm",
        "Parent's command name (-M); null if unknown",
        "PCOMM",
        "%-16s ",
        "%-16s ",
        null="?",
    ),
    OutputColumn("ppid", "Parent process id; null if unknown", "PPID", "%-7s ", "%-7d ", null="?"),
    OutputColumn("cpu", "CPU the exec returned on (-C)", "CPU", "%-4s ", "%-4d "),
    OutputColumn("ret", "Return value: 0, or a negative errno", "RET", "%3s ", "%3d "),
    OutputColumn(
        "args", "Filename and arguments as execsnoop joins them (raw bytes)", "ARGS", "%s", "%s"
    ),
)


@dataclass(frozen=True)
class Options:
    """execsnoop's flags. `name` and `line` are regular expressions (on bytes); `uid` a
    number (run() resolves a user name given on the command line)."""

    time: bool = option(False, "-T", "--time", help="Include a TIME (HH:MM:SS) column.")
    timestamp: bool = option(
        False,
        "-t",
        "--timestamp",
        help="Include a TIME(s) column: seconds since the report's start.",
    )
    fails: bool = option(False, "-x", "--fails", help="Include failed execs.")
    print_uid: bool = option(False, "-U", "--print-uid", help="Include a UID column.")
    uid: str | int | None = option(
        None,
        "-u",
        "--uid",
        metavar="USER",
        help="Only this user (a uid, or a user name known to this machine).",
    )
    name: str | bytes | None = option(
        None, "-n", "--name", metavar="REGEX", help="Only commands whose name matches REGEX."
    )
    line: str | bytes | None = option(
        None, "-l", "--line", metavar="REGEX", help="Only commands whose arguments match REGEX."
    )
    quote: bool = option(False, "-q", "--quote", help='Add quotemarks (") around arguments.')
    ppid: int | None = option(
        None, "-P", "--ppid", metavar="PPID", help="Only children of this parent PID."
    )
    max_args: int = option(
        DEFAULT_MAX_ARGS,
        "--max-args",
        metavar="N",
        min=1,
        help="Arguments shown, counting the filename; more show as `...`.",
    )
    print_cpu: bool = option(False, "-C", "--print-cpu", help="Include a CPU column.")
    print_pcomm: bool = option(False, "-M", "--print-pcomm", help="Include the parent's COMM.")


# Rows of a report table at most (tables of execsnoop_stream()).
ROWS = 1 << 16
# Fork rows are merged into the last fork per child once this much older than the
# earliest exec still to be looked up (a margin: an exec never finds a fork of its own
# process made while it ran, which is what merging would lose).
FORK_MARGIN_NS = 2_000_000_000
# Buffered forks are merged at least this many at a time (and at least half as many as
# were merged before: each fork is re-sorted a logarithmic number of times).
FORK_MERGE_ROWS = 1 << 16


def execsnoop(
    execs: pa.Table,
    forks: pa.Table,
    options: Options,
    *,
    start_ns: int,
    clock: dict[str, Any],
    processes: Sequence[Sequence[Any]],
) -> pa.Table:
    """The execsnoop report of `execs` (rows of kind `exec`); parents are the `ppid` and
    `pcomm` read at the exec, or where a row lacks them, found from `forks` (rows of kind
    `fork`) and the start-of-recording process snapshot `processes` ([pid, ppid, comm]
    rows); `start_ns` is the recording's start (for -t) and `clock` its clock mapping
    (for -T).

    Rows are in completion order (ties by tid). Columns, in order, those of `COLUMNS` that
    the options show: time (-T; str HH:MM:SS), time_s (-t; float64), uid (-U), comm
    (binary), pid, pcomm (-M; binary, null if unknown), ppid (int64, null if unknown),
    cpu (-C), ret (int64), args (binary: the filename then the arguments, cut at
    --max-args as BCC's kernel side cuts them, `...` when cut, quoted with -q, newlines
    as the two characters `\\n`).
    """
    parts = execsnoop_stream(
        [execs], forks, options, start_ns=start_ns, clock=clock, processes=processes
    )
    return pa.concat_tables(list(parts)).drop_columns(["argv", END])


def execsnoop_stream(
    exec_chunks: Iterable[pa.Table],
    forks: Callable[[], Iterable[pa.Table]] | pa.Table,
    options: Options,
    *,
    start_ns: int,
    clock: dict[str, Any],
    processes: Sequence[Sequence[Any]],
    slack_ns: int = REORDER_SLACK_NS,
) -> Iterator[pa.Table]:
    """execsnoop() of the rows of kind `exec` in `exec_chunks` (as recorded: in completion
    order give or take `slack_ns`), as tables of at most ROWS rows in completion order:
    the columns of execsnoop(), then `argv` (list<binary>: the filename then every
    recorded argument, neither cut at --max-args nor quoted) and `end_ns` (uint64,
    monotonic ns the exec returned). One empty table when no row is shown.

    `forks`: a function returning a new iterator over the rows of kind `fork` (as
    recorded) at each call, or a table of them (in any order). They are read only when
    a row lacks the parent read at the exec, alongside the execs: memory is `slack_ns`
    of execs, a few seconds of forks, and the last fork of each child pid. (An exec that
    would find an older fork of its pid than a newer one already merged, which no real
    trace has, reads the forks again.) Bad options raise here, before any row is read."""
    if options.max_args < 1:
        raise UsageError(f"--max-args must be at least 1, not {options.max_args}")
    name_re = _compile(options.name, "-n")
    line_re = _compile(options.line, "-l")
    if isinstance(forks, pa.Table):
        forks = _in_time_order(forks)
    parents = _Parents(forks, processes, slack_ns)
    return _execsnoop_rows(
        exec_chunks, parents, options, name_re, line_re, start_ns, clock, slack_ns
    )


def _in_time_order(forks: pa.Table) -> Callable[[], Iterator[pa.Table]]:
    """A table of fork rows in any order as a stream in time order (ties in the table's
    order, as parents() breaks them)."""
    when = pc.fill_null(forks["ts_ns"], 0)
    ordered = forks.take(pc.sort_indices(pa.table({"ts": when}), [("ts", "ascending")]))
    return lambda: (ordered.slice(at, ROWS) for at in range(0, ordered.num_rows, ROWS))


def _execsnoop_rows(
    exec_chunks: Iterable[pa.Table],
    parents: _Parents,
    options: Options,
    name_re: re.Pattern[bytes] | None,
    line_re: re.Pattern[bytes] | None,
    start_ns: int,
    clock: dict[str, Any],
    slack_ns: int,
) -> Iterator[pa.Table]:
    # BCC filters uid in the kernel, then skips failures and -n in user space: each a
    # test of the row alone, done before ordering (fewer rows to order).
    kept = (_prefiltered(c, options, name_re) for c in exec_chunks)
    shown = False
    for ordered in in_completion_order(kept, slack_ns):
        for at in range(0, ordered.num_rows, ROWS):
            t = _report(ordered.slice(at, ROWS), parents, options, line_re, start_ns, clock)
            if t.num_rows:
                shown = True
                yield t
    if not shown:
        empty = sort_by_completion(empty_table(SCHEMA))
        yield _report(empty, parents, options, line_re, start_ns, clock)


def _prefiltered(t: pa.Table, options: Options, name_re: re.Pattern[bytes] | None) -> pa.Table:
    keep = []
    if options.uid is not None:
        keep.append(pc.equal(as_int64(t["uid"]), options.uid))
    if not options.fails:
        keep.append(pc.equal(t["ret"], 0))
    if name_re is not None:
        keep.append(match_bytes(t["comm"], lambda comm: name_re.search(comm)))
    return filter_all(t, keep)


def _report(
    t: pa.Table,
    parents: _Parents,
    options: Options,
    line_re: re.Pattern[bytes] | None,
    start_ns: int,
    clock: dict[str, Any],
) -> pa.Table:
    """The report columns (then argv and end_ns) of exec rows in completion order."""
    # The parent read at the exec (real_parent, as BCC); where the recording could not
    # read it (no BTF, or a trace from before bpfcap read it), from fork rows and the
    # start-of-recording snapshot.
    ppid, pcomm = parents.of(t)
    # BCC filters the parent in the kernel (-P).
    if options.ppid is not None:
        keep = pc.fill_null(pc.equal(ppid, options.ppid), False)
        t, ppid, pcomm = t.filter(keep), ppid.filter(keep), pcomm.filter(keep)

    args = []
    shown = []
    for filename, argv, cut in zip(
        t["filename"].to_pylist(), t["args"].to_pylist(), t["args_truncated"].to_pylist()
    ):
        tokens = _tokens(filename or b"", argv or [], bool(cut), options.max_args)
        if line_re is not None and not line_re.search(b" ".join(tokens)):
            shown.append(False)
            continue
        shown.append(True)
        if options.quote:
            tokens = [b'"' + a.replace(b'"', b'\\"') + b'"' for a in tokens]
        args.append(b" ".join(tokens).replace(b"\n", b"\\n"))
    if line_re is not None:
        keep = pa.array(shown, pa.bool_())
        t, ppid, pcomm = t.filter(keep), ppid.filter(keep), pcomm.filter(keep)

    end = t[END].combine_chunks().cast(pa.uint64())
    out = {
        "comm": t["comm"].combine_chunks(),
        "pid": t["tgid"].combine_chunks(),
        "ppid": ppid,
        "ret": pc.fill_null(t["ret"], 0).combine_chunks().cast(pa.int64()),
        "args": pa.array(args, pa.binary()),
    }
    if options.time:
        out["time"] = wall_clock(end, clock)
    if options.timestamp:
        out["time_s"] = seconds_since(end, start_ns)
    if options.print_uid:
        out["uid"] = t["uid"].combine_chunks()
    if options.print_pcomm:
        out["pcomm"] = pcomm
    if options.print_cpu:
        out["cpu"] = t["cpu"].combine_chunks()
    table = select_columns(COLUMNS, out)
    return table.append_column("argv", _argv(t)).append_column(END, end)


def _argv(t: pa.Table) -> pa.Array:
    """[filename, *args] of each row (a null filename as b"", null args as none)."""
    filename = pc.fill_null(t["filename"].combine_chunks(), b"")
    args = t["args"].combine_chunks()
    n = len(filename)
    counts = pc.fill_null(pc.list_value_length(args), 0).to_numpy(zero_copy_only=False)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts.astype(np.int64) + 1, out=offsets[1:])
    # Each row's filename at its list's start, its arguments after it.
    source = np.empty(int(offsets[-1]), dtype=np.int64)
    is_name = np.zeros(len(source), dtype=bool)
    is_name[offsets[:-1]] = True
    source[is_name] = np.arange(n)
    source[~is_name] = n + np.arange(len(source) - n)
    values = pa.concat_arrays([filename, pc.list_flatten(args).cast(pa.binary())])
    return pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()), values.take(pa.array(source)), pa.list_(pa.binary())
    )


def _tokens(filename: bytes, args: list[bytes], truncated: bool, max_args: int) -> list[bytes]:
    """What BCC's kernel side sends for MAXARG = max_args: the filename, argv[1] up to
    argv[MAXARG-1], and `...` if all MAXARG-1 slots were used (even if argv ended there).
    The trace keeps argv[1..EXEC_MAXARGS] and whether argv went on, so any MAXARG up to
    EXEC_MAXARGS + 1 is exact; beyond that all kept args show, then `...` if argv went on."""
    slots = max_args - 1
    if slots <= EXEC_MAXARGS:
        dots = len(args) >= slots
        args = args[:slots]
    else:
        dots = truncated
    return [filename, *args, b"..."] if dots else [filename, *args]


def _compile(pattern: str | bytes | None, flag: str) -> re.Pattern[bytes] | None:
    if pattern is None:
        return None
    try:
        return re.compile(as_bytes(pattern))
    except re.error as e:
        raise UsageError(f"{flag} {pattern!r}: bad regular expression ({e})") from e


def string_sources(execs: pa.Table) -> dict[str, int]:
    """Where the strings of `execs` (rows of kind `exec`: ret, args_from, args_unread)
    were read: `execs` rows in all; `from_image`, those with strings not resident in the
    caller at entry that were read from the new program (successful execs);
    `unread`, those left with empty strings (bit count in `unread_strings`: failed execs
    whose memory was not resident, as BCC would show them). Traces from before bpfcap
    recorded this have nulls, counted in neither."""
    source = pc.fill_null(execs["args_from"], "").to_pylist() if execs.num_rows else []
    masks = pc.fill_null(execs["args_unread"], 0).to_pylist() if execs.num_rows else []
    return {
        "execs": execs.num_rows,
        "from_image": sum(1 for s in source if s == "image"),
        "unread": sum(1 for m in masks if m),
        "unread_strings": sum(bin(m & 0x7FFFFFFF).count("1") for m in masks),
    }


class _Forks:
    """Fork rows as the parent lookup needs them: child pid, time, read order (seq),
    parent tgid (nulls as 0, as parents() takes them) and comm."""

    def __init__(
        self,
        child: np.ndarray,
        ts: np.ndarray,
        seq: np.ndarray,
        tgid: np.ndarray,
        comm: pa.Array,
    ) -> None:
        self.child, self.ts, self.seq, self.tgid, self.comm = child, ts, seq, tgid, comm

    @classmethod
    def empty(cls) -> _Forks:
        none = np.zeros(0, np.int64)
        return cls(none, np.zeros(0, np.uint64), none, none, pa.array([], pa.binary()))

    @classmethod
    def of(cls, chunk: pa.Table, seq: int) -> _Forks:
        """The rows of `chunk`, numbered in order from `seq`."""

        def ints(name: str, dtype: type) -> np.ndarray:
            col = pc.fill_null(chunk[name].combine_chunks(), 0)
            return np.asarray(col.to_numpy(zero_copy_only=False), dtype=dtype)

        comm = chunk["comm"].combine_chunks()
        if pa.types.is_dictionary(comm.type):
            comm = comm.cast(comm.type.value_type)
        return cls(
            ints("child_pid", np.int64),
            ints("ts_ns", np.uint64),
            np.arange(seq, seq + chunk.num_rows, dtype=np.int64),
            ints("tgid", np.int64),
            comm.cast(pa.binary()),
        )

    def __len__(self) -> int:
        return len(self.child)

    def take(self, rows: np.ndarray) -> _Forks:
        return _Forks(
            self.child[rows],
            self.ts[rows],
            self.seq[rows],
            self.tgid[rows],
            self.comm.take(pa.array(rows, pa.int64())),
        )

    @staticmethod
    def concat(parts: Sequence[_Forks]) -> _Forks:
        if len(parts) == 1:
            return parts[0]
        return _Forks(
            *(
                np.concatenate([getattr(p, a) for p in parts])
                for a in ("child", "ts", "seq", "tgid")
            ),
            pa.concat_arrays([p.comm for p in parts]),
        )


class _Parents:
    """Parent pid and comm of exec rows, as parents() finds them from all fork rows and
    the snapshot, reading the forks along with the execs.

    The last fork of a child at or before an exec's time is the latest, by time then read
    order, of (1) the forks in `buffer` (all forks read but not merged) at or before it,
    and (2) the last merged fork of that child (`merged`: one per child pid, sorted by
    pid), provided that one is not after the exec (else the forks are read again for
    that exec: merging lost the older ones). An exec is looked up once every fork up to
    its time has been read: once a fork more than slack_ns later has been."""

    def __init__(
        self,
        read: Callable[[], Iterable[pa.Table]],
        processes: Sequence[Sequence[Any]],
        slack_ns: int,
    ) -> None:
        self._read = read
        self._slack = slack_ns
        self._snapshot = {int(p): (int(pp), as_bytes(c)) for p, pp, c in processes}
        self._forks: Iterator[pa.Table] | None = None  # started at the first lookup
        self._done = False
        self._seq = 0  # forks read
        self._latest = -1  # latest fork time read
        self._buffer: list[_Forks] = []
        self._merged = _Forks.empty()

    def of(self, t: pa.Table) -> tuple[pa.Array, pa.Array]:
        """(ppid int64, pcomm binary) of each exec row: those read at the exec where the
        row has them, else found from the forks and the snapshot (parents())."""
        n = t.num_rows
        at_exec = None
        need = np.ones(n, dtype=bool)
        if "ppid" in t.column_names:
            at_exec = t["ppid"].combine_chunks().cast(pa.int64())
            need = ~np.asarray(pc.is_valid(at_exec).to_numpy(zero_copy_only=False), dtype=bool)
        rows = np.nonzero(need)[0]
        tgid = t["tgid"].combine_chunks().cast(pa.int64())
        pid = np.asarray(tgid.to_numpy(zero_copy_only=False), dtype=np.int64)[rows]
        ts = t["ts_ns"].combine_chunks().cast(pa.uint64())
        when = np.asarray(ts.to_numpy(zero_copy_only=False), dtype=np.uint64)[rows]
        ppid, pcomm = self._parents(pid, when)
        if at_exec is None:
            return ppid, pcomm
        # Each row's lookup, null where it has none.
        at = np.full(n, -1, dtype=np.int64)
        at[rows] = np.arange(len(rows))
        which = pa.array(at, mask=at < 0)
        known = pc.invert(pa.array(need))
        pcomm_at_exec = (
            t["pcomm"].combine_chunks() if "pcomm" in t.column_names else pa.nulls(n, pa.binary())
        )
        return (
            pc.if_else(known, at_exec, ppid.take(which)),
            pc.if_else(known, pcomm_at_exec, pcomm.take(which)),
        )

    def _parents(self, pid: np.ndarray, when: np.ndarray) -> tuple[pa.Array, pa.Array]:
        """parents() of processes `pid` at times `when`."""
        m = len(pid)
        found = np.zeros(m, dtype=bool)
        fork_tgid = np.zeros(m, dtype=np.int64)
        fork_comm = pa.nulls(m, pa.binary())
        if m:
            found, fork_tgid, fork_comm = self._last_forks(pid, when)
        pp = np.where(found, fork_tgid, 0)
        snap_comm: list[bytes | None] = [None] * m
        for i in np.nonzero(~found)[0].tolist():
            pp[i] = self._snapshot.get(int(pid[i]), (0, None))[0]
            snap_comm[i] = self._snapshot.get(int(pp[i]), (0, None))[1]
        comm = pc.if_else(pa.array(found), fork_comm, pa.array(snap_comm, pa.binary()))
        known = pp > 0  # 0 (or unknown) prints as `?`, as BCC
        return (
            pa.array(pp, pa.int64(), mask=~known),
            pc.if_else(pa.array(known), comm, pa.scalar(None, pa.binary())),
        )

    def _last_forks(
        self, pid: np.ndarray, when: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, pa.Array]:
        """For each lookup: whether a fork of child pid[i] at or before when[i] exists,
        and the last one's tgid and comm."""
        m = len(pid)
        if self._forks is None:
            self._forks = iter(self._read())
        order = np.argsort(when, kind="stable")  # looked up in time order
        found = np.zeros(m, dtype=bool)
        tgid = np.zeros(m, dtype=np.int64)
        stale = np.zeros(m, dtype=bool)
        comms = []
        in_order = when[order]
        i = 0
        while i < m:
            self._read_past(int(in_order[i]))
            j = m
            if not self._done:  # every fork up to latest - slack has been read
                limit = np.uint64(self._latest - self._slack)
                j = int(np.searchsorted(in_order, limit, side="left"))
            part = order[i:j]
            found[part], tgid[part], stale[part], comm = self._look_up(pid[part], when[part])
            comms.append(comm)
            i = j
        comm = pa.concat_arrays(comms)
        back = np.empty(m, dtype=np.int64)
        back[order] = np.arange(m)
        comm = comm.take(pa.array(back))
        if stale.any():
            rows = np.nonzero(stale)[0]
            f, g, c = self._scan_all(pid[rows], when[rows])
            found[rows], tgid[rows] = f, g
            at = np.arange(m)
            at[rows] = m + np.arange(len(rows))
            comm = pa.concat_arrays([comm, c]).take(pa.array(at))
        return found, tgid, comm

    def _read_past(self, ts: int) -> None:
        """Read forks until one later than ts + slack (or the end): then none at or
        before ts is still to come. Forks older than ts by FORK_MARGIN_NS are merged."""
        assert self._forks is not None
        while not self._done and self._latest <= ts + self._slack:
            chunk = next(self._forks, None)
            if chunk is None:
                self._done = True
                break
            if not chunk.num_rows:
                continue
            forks = _Forks.of(chunk, self._seq)
            self._seq += len(forks)
            self._latest = max(self._latest, int(forks.ts.max()))
            self._buffer.append(forks)
            self._merge_before(ts - FORK_MARGIN_NS)

    def _merge_before(self, ts: int) -> None:
        """Merge the buffered forks before ts into the last fork per child, once there
        are enough of them (each merge sorts what was merged before)."""
        buffer = _Forks.concat(self._buffer) if self._buffer else _Forks.empty()
        self._buffer = [buffer]
        if ts <= 0:
            return
        old = buffer.ts < np.uint64(ts)
        if int(old.sum()) < max(FORK_MERGE_ROWS, len(self._merged) // 2):
            return
        both = _Forks.concat([self._merged, buffer.take(np.nonzero(old)[0])])
        order = np.lexsort((both.seq, both.ts, both.child))
        child = both.child[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = child[1:] != child[:-1]
        self._merged = both.take(order[last])
        self._buffer = [buffer.take(np.nonzero(~old)[0])]

    def _look_up(
        self, pid: np.ndarray, when: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array]:
        """(found, tgid, stale, comm) of lookups whose forks have all been read."""
        buffer = _Forks.concat(self._buffer) if self._buffer else _Forks.empty()
        self._buffer = [buffer]
        merged = self._merged
        nb, nm = len(buffer), len(merged)
        b = last_at_or_before(buffer.child, buffer.ts, pid, when)
        in_b = b >= 0
        b = np.maximum(b, 0)
        in_m = np.zeros(len(pid), dtype=bool)
        at = np.zeros(len(pid), dtype=np.int64)
        if nm:
            at = np.minimum(np.searchsorted(merged.child, pid), nm - 1)
            in_m = merged.child[at] == pid
        m_ts = merged.ts[at] if nm else np.zeros(len(pid), np.uint64)
        m_seq = merged.seq[at] if nm else np.zeros(len(pid), np.int64)
        m_ok = in_m & (m_ts <= when)
        stale = in_m & ~m_ok
        if nb:
            b_ts, b_seq, b_tgid = buffer.ts[b], buffer.seq[b], buffer.tgid[b]
            later = (b_ts > m_ts) | ((b_ts == m_ts) & (b_seq > m_seq))
            use_b = in_b & (~m_ok | later)
        else:
            b_tgid = np.zeros(len(pid), np.int64)
            use_b = np.zeros(len(pid), dtype=bool)
        found = use_b | m_ok
        tgid = np.where(use_b, b_tgid, merged.tgid[at] if nm else 0)
        source = np.where(use_b, b, nb + at)
        comm = pa.concat_arrays([buffer.comm, merged.comm]).take(
            pa.array(source, pa.int64(), mask=~found)
        )
        return found, tgid, stale, comm

    def _scan_all(
        self, pid: np.ndarray, when: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, pa.Array]:
        """_last_forks() of a few lookups, from every fork read again."""
        m = len(pid)
        found = np.zeros(m, dtype=bool)
        best = np.zeros(m, dtype=np.uint64)
        tgid = np.zeros(m, dtype=np.int64)
        comm = pa.nulls(m, pa.binary())
        seq = 0
        for chunk in self._read():
            if not chunk.num_rows:
                continue
            forks = _Forks.of(chunk, seq)
            seq += len(forks)
            f = last_at_or_before(forks.child, forks.ts, pid, when)
            ok = f >= 0
            f = np.maximum(f, 0)
            # A later chunk was read later: at the same time, it wins.
            better = ok & (~found | (forks.ts[f] >= best))
            found |= better
            best = np.where(better, forks.ts[f], best)
            tgid = np.where(better, forks.tgid[f], tgid)
            comm = pc.if_else(pa.array(better), forks.comm.take(pa.array(f)), comm)
        return found, tgid, comm


def resolve_uid(user: str | int | None) -> int | None:
    """-u: a number, or a user name resolved on this machine (as BCC does on its host)."""
    if user is None or isinstance(user, int):
        return user
    try:
        return int(user)
    except ValueError:
        pass
    try:
        import pwd
    except ImportError as e:  # not on Windows
        raise UsageError(f"-u {user}: user names need a Unix system", "give the uid") from e
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError as e:
        raise UsageError(f"-u {user}: no such user on this machine", "give the uid") from e


def run(source: Source, options: Options) -> Rows:
    """execsnoop over the trace: exec rows streamed in completion order; fork rows (of
    the whole recording: parents may be older than the window) read alongside only
    where an exec row lacks its parent."""
    import dataclasses

    options = dataclasses.replace(options, uid=resolve_uid(options.uid))
    columns = [c.name for c in BY_NAME["exec"].columns if c.name != "kind"]
    fork_columns = ["ts_ns", "tgid", "comm", "child_pid"]
    chunks = execsnoop_stream(
        source.batches("exec", columns),
        lambda: source.batches("fork", fork_columns, whole=True),
        options,
        start_ns=source.start_ns,
        clock=source.meta.clock.as_dict(),
        processes=[[p.pid, p.ppid, p.comm] for p in source.meta.processes],
        slack_ns=REORDER_SLACK_NS,
    )
    return Rows(
        "execsnoop",
        kinds=["exec", "fork"],
        columns=COLUMNS,
        chunks=chunks,
        meta=source.meta,
        abi=source.abi,
    )


REPORT = Report(
    name="execsnoop",
    summary="Trace exec() syscalls, as BCC's execsnoop prints them.",
    description="""Trace exec() syscalls: one line per execve(2) or execveat(2), as
    execsnoop prints it.""",
    needs={
        "exec": tuple(c.name for c in BY_NAME["exec"].columns if c.name != "kind"),
        "fork": ("ts_ns", "tgid", "comm", "child_pid"),
    },
    options=Options,
    run=run,
    examples=(
        ("execsnoop t.parquet", "successful execs"),
        ("execsnoop t.parquet -x -T", "failed too, with wall-clock time"),
        ("execsnoop t.parquet -t -U -M -C", "seconds, uid, parent comm, CPU"),
        ("execsnoop t.parquet -n '^ba' -l tpkg -q", "name and argument regexes"),
        ("execsnoop t.parquet --max-args 5 --format json", "argv as arrays"),
    ),
)
