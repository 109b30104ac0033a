"""`bpfcap record`."""

from __future__ import annotations

import sys
import time

import click

EPILOG = """\b
examples:
  sudo bpfcap record -d 10                   # 10 s, system-wide, every type but syscall
  sudo bpfcap record -e all --syscall read,write -d 5   # with read and write calls
  sudo bpfcap record -e open -p 181 -o x.parquet
  sudo bpfcap record -n nginx -d 30           # only tasks named nginx (filtered in kernel)
  sudo bpfcap record -- make -j2             # a command and its descendants, until it exits
  sudo bpfcap record --rotate 60 --keep 10 -o flight/   # last 10 minutes, always
  sudo bpfcap record --ebpf -e exec          # print the BPF program and exit"""


@click.command(epilog=EPILOG, context_settings={"ignore_unknown_options": False})
@click.option(
    "-e",
    "--events",
    "events",
    metavar="EVENTS",
    help="Comma list of event types, or all (default: all but syscall). See `bpfcap info --types`.",
)
@click.option("-d", "--duration", type=float, metavar="SECONDS", help="Stop after SECONDS.")
@click.option("-p", "--pid", type=int, metavar="PID", help="Record only this process (in kernel).")
@click.option(
    "-n",
    "--name",
    "comm",
    metavar="COMM",
    help="Record only tasks whose name (comm) is exactly COMM (in kernel).",
)
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="Trace file to write (default: bpfcap-<start time>.parquet).",
)
@click.option(
    "--syscall",
    "syscalls",
    metavar="NAMES",
    help="With -e syscall: record only these system calls (comma list of names or "
    "numbers; in kernel).",
)
@click.option(
    "--max-events",
    type=int,
    metavar="N",
    help="Stop once N events are written (those captured after are counted, not kept).",
)
@click.option(
    "--max-size",
    metavar="SIZE",
    help="Stop once the trace holds about SIZE bytes (e.g. 500M, 2G).",
)
@click.option(
    "--rotate",
    metavar="SECONDS|SIZE",
    help="Write PATH as a directory of trace files, a new one every SECONDS (e.g. 60) or "
    "SIZE (e.g. 100M); SIGHUP starts a new one. The directory is one trace.",
)
@click.option("--keep", type=int, metavar="N", help="With --rotate: keep only the newest N files.")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.option("--ebpf", is_flag=True, help="Print the generated BPF program (C) and exit.")
@click.option(
    "--ringbuf-pages",
    type=int,
    default=None,
    hidden=True,
    help="Ring buffer size in pages (tests and tuning).",
)
@click.option(
    "-u",
    "--user",
    metavar="USER",
    help="Run -- COMMAND as USER (name or uid), as `sudo -u USER` would: its uid, groups, "
    "HOME, USER, LOGNAME, SHELL. Default: as bpfcap runs (root). Under sudo, "
    '--user "$SUDO_USER" runs it as you.',
)
@click.option(
    "--tree-max",
    type=click.IntRange(min=1),
    default=None,
    hidden=True,
    help="Bound of the -- COMMAND process-tree filter (tests; default: the host's pid_max).",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- COMMAND [ARGS]...]")
def record(
    events,
    duration,
    pid,
    comm,
    output,
    syscalls,
    max_events,
    max_size,
    rotate,
    keep,
    force,
    ebpf,
    ringbuf_pages,
    user,
    tree_max,
    command,
) -> None:
    """Record kernel events into a Parquet trace (needs root).

    Stops after -d SECONDS, on Ctrl-C or SIGTERM, or when COMMAND exits (then exits with
    its status). While recording, closed segments land in PATH.partial/ every second; a
    clean stop merges them into PATH."""
    from pathlib import Path

    from bpfcap.capture.recorder import Recorder, RecordOptions, never_raises
    from bpfcap.formats.errors import UsageError
    from bpfcap.formats.events import BY_NAME, DEFAULT_TYPES, EVENT_TYPES, with_companions

    types = DEFAULT_TYPES
    if events == "all":
        types = EVENT_TYPES
    elif events:
        names = [n.strip() for n in events.split(",") if n.strip()]
        unknown = [n for n in names if n not in BY_NAME]
        if unknown or not names:
            raise UsageError(
                f"unknown event type {', '.join(unknown) or repr(events)}",
                f"choose from {', '.join(BY_NAME)}",
            )
        # open brings cwd (opensnoop -F), tcp brings accept (tcpaccept's PID).
        types = with_companions(tuple(t for t in EVENT_TYPES if t.name in names))
    numbers = _syscall_numbers(syscalls, types) if syscalls is not None else None
    if ebpf:
        _print_program(types, pid, bool(command), comm, numbers)
        return
    out = Path(output or time.strftime("bpfcap-%Y%m%d-%H%M%S.parquet"))
    opts = RecordOptions(
        types, out, duration, pid, list(command) or None, force, list(sys.argv), comm, numbers
    )
    opts.max_events = max_events
    opts.max_size = parse_size(max_size) if max_size is not None else None
    if rotate is not None:
        opts.rotate_s, opts.rotate_bytes = parse_rotate(rotate)
    opts.keep = keep
    if ringbuf_pages is not None:
        opts.ringbuf_pages = ringbuf_pages
    opts.tree_max = tree_max
    opts.user = parse_user(user) if user is not None else None
    # stderr may be gone (a hung-up terminal, a closed pipe): the trace is written and
    # the exit status is the command's all the same.
    say = never_raises(lambda msg: click.echo(msg, err=True))
    result = Recorder(opts, log=say).run()
    say(f"Wrote {result.path} ({result.events} events, {result.lost} lost)")
    if opts.keep is not None:
        from bpfcap.formats.trace import open_trace, rows_by_kind

        kept = sum(rows_by_kind(open_trace(result.path)).values())
        say(f"  of which the newest {kept} are kept (--keep {opts.keep})")
    if result.exit_status:
        sys.exit(result.exit_status)


def parse_rotate(text: str) -> tuple[float | None, int | None]:
    """--rotate: (seconds, None) for a number (optionally ending in s), (None, bytes)
    for a size with a K, M, G or T suffix."""
    from bpfcap.formats.errors import UsageError

    t = text.strip().lower().removesuffix("s")
    try:
        seconds = float(t)
    except ValueError:
        return None, parse_size(text, "--rotate")
    if seconds <= 0:
        raise UsageError(f"--rotate {text}: seconds (60) or a size (100M)")
    return seconds, None


def parse_size(text: str, flag: str = "--max-size") -> int:
    """`SIZE` as bytes: a number with an optional K, M, G or T (powers of 1024)."""
    from bpfcap.formats.errors import UsageError

    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    num, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        value = float(num) * units[unit]
    except ValueError:
        value = -1
    if not 1 <= value <= MAX_SIZE:  # NaN fails both
        raise UsageError(f"{flag} {text}: a size such as 500M or 2G (at most 1P)")
    return int(value)


MAX_SIZE = 1 << 50


def parse_user(text: str):
    """--user NAME|UID: the passwd entry the command runs as."""
    import pwd

    from bpfcap.formats.errors import UsageError

    try:
        return pwd.getpwuid(int(text)) if text.isdigit() else pwd.getpwnam(text)
    except (KeyError, ValueError, OverflowError):
        raise UsageError(f"--user {text}: no such user") from None


def _syscall_numbers(names: str, types) -> tuple[int, ...]:
    import platform

    from bpfcap.formats.abi import for_machine
    from bpfcap.formats.errors import UsageError
    from bpfcap.formats.events import SYSCALL

    if SYSCALL not in types:
        raise UsageError("--syscall filters the syscall event type", "add -e syscall")
    given = [n.strip() for n in names.split(",") if n.strip()]
    abi = for_machine(platform.machine())  # the numbers of the machine recording
    numbers = [abi.syscall_number(n) for n in given]
    unknown = [n for n, nr in zip(given, numbers) if nr is None]
    if unknown or not given:
        raise UsageError(
            f"--syscall: unknown system call {', '.join(unknown) or repr(names)}",
            "`bpfcap report syscount --list` lists the names",
        )
    return tuple(nr for nr in numbers if nr is not None)


def _print_program(types, pid, tree, comm, syscalls) -> None:
    import os

    from bpfcap.capture.bpfgen import generate
    from bpfcap.capture.btf import resolve_reads

    hooks = {tp for t in types for g in t.hooks for tp in g}
    program = generate(
        types,
        hooks,
        self_tgid=os.getpid(),
        filter_tgid=pid,
        filter_tree=tree,
        filter_comm=comm.encode() if comm else None,
        syscalls=syscalls,
        kernel_offsets=resolve_reads(types)[0],
    )
    click.echo(f"// cflags: {' '.join(program.cflags)}")
    click.echo(program.text)
