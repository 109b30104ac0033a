"""`bpfcap slice`, `bpfcap redact` and `bpfcap share`: a trace made fit for a bug report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def _slice_options(f: Callable) -> Callable:
    """The options that choose what a slice keeps (slice and share)."""
    for opt in reversed(
        [
            click.option(
                "--since",
                metavar="TIME",
                help="Only events completing at or after TIME: seconds from the start (10, "
                "1500ms, 2m), -10s before the end, 25%, 14:03:07, or ISO 8601.",
            ),
            click.option("--until", metavar="TIME", help="Only events completing before TIME."),
            click.option(
                "-p",
                "--pid",
                "pids",
                metavar="PID[,PID...]",
                multiple=True,
                help="Only these processes (or threads).",
            ),
            click.option(
                "--tree",
                "trees",
                metavar="PID[,PID...]",
                multiple=True,
                help="Only these processes and their descendants (from the start snapshot "
                "and the trace's fork and exec rows).",
            ),
            click.option(
                "-n",
                "--name",
                "comms",
                metavar="COMM",
                multiple=True,
                help="Only processes whose command name contains COMM (as BCC's -n).",
            ),
            click.option(
                "-e",
                "--events",
                "kinds",
                metavar="TYPE[,TYPE...]",
                help="Only these event types (open, exec, syscall, ...).",
            ),
            click.option(
                "--where",
                metavar="EXPR",
                help="Only rows where EXPR holds, as in `report count --where`, e.g. "
                "'ret < 0' (types without its columns are left out).",
            ),
        ]
    ):
        f = opt(f)
    return f


def _redact_options(f: Callable) -> Callable:
    """The options of the redaction (redact and share)."""
    for opt in reversed(
        [
            click.option(
                "--keep-args",
                metavar="REGEX",
                multiple=True,
                help="Keep exec arguments that fully match REGEX (repeatable).",
            ),
            click.option(
                "--keep-paths",
                metavar="PREFIX",
                multiple=True,
                help="Keep paths under PREFIX as they are (repeatable), besides the system "
                "directories (docs/redaction.md).",
            ),
            click.option("--keep-comm", is_flag=True, help="Keep command names."),
            click.option(
                "--keep-private",
                is_flag=True,
                help="Keep private and link-local IP addresses (10/8, 192.168/16, fe80::/10...).",
            ),
        ]
    ):
        f = opt(f)
    return f


def _output(f: Callable) -> Callable:
    f = click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")(f)
    f = click.option("-o", "--output", metavar="OUT", required=True, help="The trace to write.")(f)
    return click.argument("trace", type=click.Path(dir_okay=True))(f)


def _ints(values: tuple[str, ...], flag: str) -> tuple[int, ...]:
    from bpfcap.formats.errors import UsageError

    out = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(int(part))
            except ValueError:
                raise UsageError(f"{flag} {part}: not a process id", "give numbers") from None
    return tuple(out)


def _filters(
    pids: tuple[str, ...],
    trees: tuple[str, ...],
    comms: tuple[str, ...],
    kinds: str | None,
    where: str | None,
) -> Any:
    from bpfcap.analyze.slice import Filters

    return Filters(
        pids=_ints(pids, "-p"),
        trees=_ints(trees, "--tree"),
        comms=tuple(comms),
        kinds=None if kinds is None else tuple(k.strip() for k in kinds.split(",") if k.strip()),
        where=where,
    )


def _redactor(keep_args: tuple[str, ...], keep_paths: tuple[str, ...], **flags: bool) -> Any:
    from bpfcap.formats.redact import RedactOptions, Redactor

    return Redactor(RedactOptions(keep_args=keep_args, keep_paths=keep_paths, **flags))


def _progress(what: str) -> Any:
    """`what: N%` on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\r\033[K" if done >= total else ""
        sys.stderr.write(f"\r{what}: {100 * done // max(total, 1)}%{end}")
        sys.stderr.flush()

    return show


def _wrote(out: str, written: Any) -> str:
    rows = sum(written.rows.values())
    kinds = ", ".join(f"{n} {k}" for k, n in written.rows.items()) or "no rows"
    return f"Wrote {out} ({_size(written.size)}, {rows} rows: {kinds})"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@click.command(
    "slice",
    epilog="""\b
examples:
  bpfcap slice t.parquet -o s.parquet --since 10s --until 20s   # ten seconds
  bpfcap slice t.parquet -o s.parquet --since -5s               # the last five seconds
  bpfcap slice t.parquet -o s.parquet --tree 4242               # a process and its children
  bpfcap slice t.parquet -o s.parquet -e open,exec -n make      # make's opens and execs
  bpfcap slice t.parquet -o s.parquet --where 'ret < 0'         # failed calls only""",
)
@_output
@_slice_options
def slice_(trace: str, output: str, force: bool, since, until, pids, trees, comms, kinds, where):
    """Write the part of TRACE a bug report needs as a trace of its own: a time window
    (events completing in it, as every report's --since/--until), processes, event types,
    rows matching an expression. Every command reads the result; its metadata records the
    source's SHA-256, the window and the filters, and the events lost in that window."""
    from bpfcap.analyze.slice import slice_trace
    from bpfcap.formats.trace import open_trace

    filters = _filters(pids, trees, comms, kinds, where)
    written = slice_trace(
        open_trace(trace),
        Path(output),
        since=since,
        until=until,
        filters=filters,
        force=force,
        progress=_progress("slice"),
    )
    click.echo(_wrote(output, written), err=True)


@click.command(
    epilog="""\b
examples:
  bpfcap redact t.parquet -o public.parquet
  bpfcap redact t.parquet -o public.parquet --keep-paths /srv/app --keep-comm
  bpfcap redact t.parquet -o public.parquet --keep-args '[0-9]+'  # keep numeric args""",
)
@_output
@_redact_options
def redact(trace: str, output: str, force: bool, keep_args, keep_paths, keep_comm, keep_private):
    """Write TRACE with every identifying value replaced by a pseudonym: paths component
    by component (system directories and file extensions kept), exec arguments, command
    names, the host name, user ids (0 and system ones kept), IP addresses (a fake of the
    same family; loopback kept), the process snapshot and the recorder's command line.
    The same value gets the same pseudonym everywhere in OUT, so every count, latency and
    relation survives; the key is random and never written. docs/redaction.md lists
    what is kept."""
    from bpfcap.analyze.slice import slice_trace
    from bpfcap.formats.trace import open_trace

    redactor = _redactor(keep_args, keep_paths, keep_comm=keep_comm, keep_private=keep_private)
    written = slice_trace(
        open_trace(trace),
        Path(output),
        redactor=redactor,
        force=force,
        progress=_progress("redact"),
    )
    click.echo(_redacted(redactor), err=True)
    click.echo(_wrote(output, written), err=True)


def _redacted(redactor: Any) -> str:
    """One line: what the redaction replaced."""
    done = redactor.report()
    parts = [
        f"{n} {what[:-1] if n == 1 and what.endswith('s') else what}"
        for what, n in done.items()
        if n
    ]
    return "redacted: " + (", ".join(parts) if parts else "nothing identifying found")


@click.command(
    epilog="""\b
examples:
  bpfcap share t.parquet -o bug.parquet                       # all of it, redacted
  bpfcap share t.parquet -o bug.parquet --since -30s --tree 4242
  bpfcap share t.parquet -o bug.parquet -e open,exec --keep-paths /srv/app""",
)
@_output
@_slice_options
@_redact_options
@click.pass_context
def share(
    ctx: click.Context,
    trace: str,
    output: str,
    force: bool,
    since,
    until,
    pids,
    trees,
    comms,
    kinds,
    where,
    keep_args,
    keep_paths,
    keep_comm,
    keep_private,
) -> None:
    """Make TRACE fit to attach to a bug report, in one pass: the slice the options choose
    (as `bpfcap slice`), redacted (as `bpfcap redact`), written to OUT; then print OUT's
    summary (Markdown, to paste into the report), what was redacted and OUT's size."""
    from bpfcap.analyze.slice import slice_trace
    from bpfcap.formats.trace import open_trace

    from .summary import summary

    redactor = _redactor(keep_args, keep_paths, keep_comm=keep_comm, keep_private=keep_private)
    written = slice_trace(
        open_trace(trace),
        Path(output),
        since=since,
        until=until,
        filters=_filters(pids, trees, comms, kinds, where),
        redactor=redactor,
        force=force,
        progress=_progress("share"),
    )
    ctx.invoke(summary, trace=output)
    click.echo(_redacted(redactor), err=True)
    click.echo(_wrote(output, written), err=True)
