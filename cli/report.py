"""`bpfcap report NAME`: one command per report of analyze.registry, generated from its
declaration (options, help, examples); no analysis here.

Each command: open the trace (the time window applied), run the report, render its
result (cli/render.py), then say on stderr what the trace could not show. Declarations
are imported when a report command is looked up, so `bpfcap --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import Any

import click

FORMAT_HELP = (
    "text: as the BCC tool prints it; json: JSON Lines with an ISO 8601 UTC timestamp "
    "per row; csv: with a header row."
)
TIME_HELP = (
    "seconds from the start (10, 1500ms, 2m), before the end (-10s), a share (25%), "
    "a time of day on the recording host (14:03:07) or ISO 8601 (2026-11-30T14:03:07Z)."
)


class _Reports(click.Group):
    """The report commands, built from the registry on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from bpfcap.analyze.registry import names

        return names()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from bpfcap.analyze.registry import REPORTS, get

        if name not in REPORTS:
            return None
        return command(get(name))


@click.group(cls=_Reports)
@click.pass_context
def report(ctx: click.Context) -> None:
    """Rebuild a BCC tool's output from a trace, offline (no root, no BCC needed).

    Every report takes --since/--until (a time window), --format (text, json, csv),
    --strict, and for a trace of several hosts (bpfcap merge) --by-host or --host NAME.
    Text to the terminal has control characters escaped as \\xNN, so that no recorded
    name, path or argument can drive it; CSV cells cannot start a formula.
    --raw prints the bytes as recorded."""
    from bpfcap.cli.render import escaping_stdout

    ctx.obj = escaping_stdout(ctx)


def command(rep: Any) -> click.Command:
    """The click command of report declaration `rep` (analyze.report.Report)."""
    from bpfcap.analyze.report import option_specs

    specs = option_specs(rep.options)
    params: list[click.Parameter] = [
        click.Argument(
            ["trace"],
            required=rep.trace_required,
            type=click.Path(dir_okay=True, path_type=str),
            metavar="TRACE",
        )
    ]
    declared = [_param(s) for s in specs if s.opt.argument]
    declared += [_param(s) for s in specs if not s.opt.argument]
    # click may name a parameter otherwise than the field (`list_` becomes `list`).
    field_of = {p.name: s.name for p, s in zip(declared, _ordered(specs))}
    params += declared
    params += [
        click.Option(["--since"], metavar="TIME", help="Only events from TIME on: " + TIME_HELP),
        click.Option(["--until"], metavar="TIME", help="Only events before TIME (same forms)."),
        click.Option(
            ["--by-host"],
            is_flag=True,
            help="Report each host of a multi-host trace (bpfcap merge) apart, after a "
            "`== host NAME ==` line (json, csv: a host field). Without it, hosts are pooled.",
        ),
        click.Option(["--host"], metavar="NAME", help="Report only host NAME's events."),
        click.Option(
            ["--format", "fmt"],
            type=click.Choice(["text", "json", "csv"]),
            default="text",
            show_default=True,
            help=FORMAT_HELP,
        ),
        click.Option(
            ["--strict"],
            is_flag=True,
            help="Exit with status 3 when the recording lost events in the time reported.",
        ),
        click.Option(
            ["--raw"],
            is_flag=True,
            help="Print recorded text (comm, paths, args) byte for byte, control characters "
            "included, and CSV cells as they are (default: escaped as \\xNN; a leading ' "
            "before =, +, -, @ in CSV).",
        ),
    ]

    def callback(
        trace: str | None, since, until, by_host, host, fmt: str, strict: bool, raw: bool, **values
    ):
        values = {field_of[k]: v for k, v in values.items()}
        run(
            rep,
            trace,
            values,
            since=since,
            until=until,
            fmt=fmt,
            strict=strict,
            raw=raw,
            by_host=by_host,
            host=host,
        )

    examples = "\n".join(
        f"  bpfcap report {line:<44} # {what}" if what else f"  bpfcap report {line}"
        for line, what in rep.examples
    )
    cmd = click.Command(
        rep.name,
        params=params,
        callback=callback,
        help=" ".join(rep.description.split()),
        short_help=rep.summary,
        epilog="\b\nexamples:\n" + examples if examples else None,
    )
    cmd.field_of = field_of  # type: ignore[attr-defined]  # for cli/docs.py
    return cmd


def _ordered(specs: list[Any]) -> list[Any]:
    return [s for s in specs if s.opt.argument] + [s for s in specs if not s.opt.argument]


def _param(spec: Any) -> click.Parameter:
    """A click parameter from an option declaration (analyze.report.OptionSpec)."""
    o = spec.opt
    kind = spec.item if spec.type is tuple else spec.type
    if kind is bool:
        return click.Option(list(o.flags), is_flag=True, help=o.help, hidden=o.hidden)
    if o.choices:
        ptype: Any = click.Choice(list(o.choices))
    elif kind is int:
        ptype = click.IntRange(min=_bound(o.min), max=_bound(o.max), min_open=o.min_open)
    elif kind is float:
        ptype = click.FloatRange(min=o.min, max=o.max, min_open=o.min_open)
    else:
        ptype = str
    if spec.type is tuple and not o.repeat:
        ptype = _CommaList(ptype, o.metavar)
    if o.argument:
        return click.Argument([spec.name], type=ptype, required=False, metavar=f"[{o.metavar}]")
    return click.Option(
        [*o.flags, spec.name],
        type=ptype,
        multiple=spec.type is tuple and o.repeat,
        metavar=o.metavar,
        help=o.help,
        hidden=o.hidden,
        default=None if spec.default == () else spec.default,
        show_default=spec.default not in (None, (), False),
    )


def _bound(v: float | None) -> int | None:
    return None if v is None else int(v)


class _CommaList(click.ParamType):
    """A comma-separated list (`-s 9,15`, `--by comm,pid`), each item of `item` type;
    a repeated flag adds to it."""

    name = "list"

    def __init__(self, item: Any, metavar: str | None):
        self.item = item
        self.metavar = metavar

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, tuple):
            return value
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
        if isinstance(self.item, click.ParamType):
            return tuple(self.item.convert(p, param, ctx) for p in parts)
        return tuple(parts)


def run(
    rep: Any,
    trace: str | None,
    values: dict[str, Any],
    *,
    since: str | None,
    until: str | None,
    fmt: str,
    strict: bool,
    raw: bool,
    by_host: bool = False,
    host: str | None = None,
) -> None:
    """Run report `rep` on `trace` with option `values` and print its result: once per
    host with `by_host`, of host `host` only if given, else of every row."""
    from bpfcap.analyze.report import Source, losses
    from bpfcap.cli.render import EscapingWriter, render
    from bpfcap.formats.errors import EventsLost, UsageError
    from bpfcap.formats.merge import host_names
    from bpfcap.formats.trace import open_trace

    writer = click.get_current_context().find_object(EscapingWriter)
    if raw and writer is not None:
        writer.raw = True
    # Tuples given by commas may also be repeated: ("a,b", "c") reads as (a, b, c).
    values = {k: _flat(v) for k, v in values.items()}
    options = rep.make_options(**{k: v for k, v in values.items() if v is not None})
    if trace is None:
        if since is not None or until is not None or by_host or host is not None:
            raise UsageError("--since/--until/--by-host/--host need a TRACE")
        render(rep.run(None, options), fmt, sys.stdout.buffer, raw)
        return
    if by_host and host is not None:
        raise UsageError("--by-host and --host: choose one")
    t = open_trace(trace)
    names: list[str | None] = list(host_names(t.meta)) if by_host else [host]
    lost = skipped = 0
    for i, name in enumerate(names):
        source = Source(t, since=since, until=until, progress=_progress(rep.name), host=name)
        result = rep.run(source, options)
        if not by_host:
            render(result, fmt, sys.stdout.buffer, raw)
        elif fmt == "text":
            if i:
                sys.stdout.buffer.write(b"\n")
            sys.stdout.buffer.write(f"== host {name} ==\n".encode("utf-8", "surrogateescape"))
            render(result, fmt, sys.stdout.buffer, raw)
        else:
            _render_host(result, str(name), fmt, header=i == 0, raw=raw)
        lines, n, k = losses(source, result)
        lost, skipped = lost + n, skipped + k
        where = f"host {name}: " if by_host else ""
        for line in result.notes + lines:
            click.echo(f"bpfcap: {where}{line}", err=True)
    if strict and (lost or skipped):
        raise EventsLost(
            f"{t.path}: {lost} events lost in the time reported"
            + (f", {skipped} probe runs skipped" if skipped else ""),
            "--strict",
        )


def _render_host(result: Any, host: str, fmt: str, *, header: bool, raw: bool) -> None:
    """A result as JSON Lines or CSV with a `host` field first (--by-host); one CSV
    header for all hosts."""
    import pyarrow as pa

    from bpfcap.analyze.report import Rows, machine_table
    from bpfcap.cli.render import write_csv, write_json

    out = sys.stdout.buffer
    tables = (machine_table(c, result) for c in result) if isinstance(result, Rows) else None
    for table in tables if tables is not None else [result.to_arrow()]:
        table = table.add_column(0, "host", pa.repeat(pa.scalar(host), table.num_rows))
        if fmt == "json":
            write_json(table, out)
        else:
            write_csv(table, out, header, raw)
            header = False
    out.flush()


def _flat(v: Any) -> Any:
    if isinstance(v, tuple) and any(isinstance(x, tuple) for x in v):
        return tuple(y for x in v for y in (x if isinstance(x, tuple) else (x,)))
    if v == ():
        return None
    return v


def _progress(what: str) -> Any:
    """`what: N%` on stderr when it is a terminal (never in piped or redirected output),
    for reports of more than a few row groups."""
    if not sys.stderr.isatty():
        return None
    state = {"shown": False}

    def show(done: int, total: int) -> None:
        if total <= 4:
            return
        if done >= total:
            if state["shown"]:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()
                state["shown"] = False
            return
        sys.stderr.write(f"\r{what}: {100 * done // total}% of {total} row groups")
        sys.stderr.flush()
        state["shown"] = True

    return show
