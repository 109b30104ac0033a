"""execsnoop: one row per completed exec, as BCC's tools/execsnoop.py (v0.37) prints it,
with its flags applied after the fact.

Text: COMM, PCOMM and ARGS printb of raw bytes (execsnoop.py:344,346,350).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.analyze.common import (
    END,
    OutputColumn,
    as_bytes,
    as_int64,
    filter_all,
    match_bytes,
    parents,
    seconds_since,
    select_columns,
    sort_by_completion,
    wall_clock,
)
from bpfcap.formats.errors import UsageError
from bpfcap.formats.events import EXEC_MAXARGS

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
    """execsnoop's flags. `name` and `line` are regular expressions (on bytes)."""

    time: bool = False  # -T
    timestamp: bool = False  # -t
    fails: bool = False  # -x: include failed execs
    print_uid: bool = False  # -U
    uid: int | None = None  # -u (a user name is resolved by the caller)
    name: str | bytes | None = None  # -n: regex on comm
    line: str | bytes | None = None  # -l: regex on the joined arguments
    quote: bool = False  # -q
    ppid: int | None = None  # -P
    max_args: int = DEFAULT_MAX_ARGS  # --max-args
    print_cpu: bool = False  # -C
    print_pcomm: bool = False  # -M


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
    if options.max_args < 1:
        raise UsageError(f"--max-args must be at least 1, not {options.max_args}")
    name_re = _compile(options.name, "-n")
    line_re = _compile(options.line, "-l")

    t = sort_by_completion(execs)
    # The parent read at the exec (real_parent, as BCC); where the recording could not
    # read it (no BTF, or a trace from before bpfcap read it), from fork rows and the
    # start-of-recording snapshot.
    ppid, pcomm = parents(t["tgid"].combine_chunks(), t["ts_ns"].combine_chunks(), forks, processes)
    if "ppid" in t.column_names:
        at_exec = t["ppid"].combine_chunks().cast(pa.int64())
        known = pc.is_valid(at_exec)
        ppid = pc.if_else(known, at_exec, ppid)
        pcomm = pc.if_else(known, t["pcomm"].combine_chunks(), pcomm)
    t = t.append_column("_ppid", ppid).append_column("_pcomm", pcomm)

    # BCC filters uid and ppid in the kernel, then skips failures and -n/-l in user space.
    keep = []
    if options.uid is not None:
        keep.append(pc.equal(as_int64(t["uid"]), options.uid))
    if options.ppid is not None:
        keep.append(pc.equal(t["_ppid"], options.ppid))
    if not options.fails:
        keep.append(pc.equal(t["ret"], 0))
    if name_re is not None:
        keep.append(match_bytes(t["comm"], lambda comm: name_re.search(comm)))
    t = filter_all(t, keep)

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
        t = t.filter(pa.array(shown, pa.bool_()))

    out = {
        "comm": t["comm"].combine_chunks(),
        "pid": t["tgid"].combine_chunks(),
        "ppid": t["_ppid"].combine_chunks(),
        "ret": pc.fill_null(t["ret"], 0).combine_chunks().cast(pa.int64()),
        "args": pa.array(args, pa.binary()),
    }
    if options.time:
        out["time"] = wall_clock(t[END].combine_chunks(), clock)
    if options.timestamp:
        out["time_s"] = seconds_since(t[END].combine_chunks(), start_ns)
    if options.print_uid:
        out["uid"] = t["uid"].combine_chunks()
    if options.print_pcomm:
        out["pcomm"] = t["_pcomm"].combine_chunks()
    if options.print_cpu:
        out["cpu"] = t["cpu"].combine_chunks()
    return select_columns(COLUMNS, out)


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
