"""count: events per key, as bpftrace prints a count() map (`@[key]: N`, smallest first).

Generic over the event declarations: rows of every event type that has the --by and
--where columns are counted, streamed row group by row group (the state is one count per
distinct key)."""

from __future__ import annotations

from dataclasses import dataclass

from bpfcap.analyze.aggregate import count as count_rows
from bpfcap.analyze.report import Counts, Report, Source, option
from bpfcap.analyze.selection import rows, select

WHERE_HELP = (
    "Only rows where EXPR holds: comparisons (== != < <= > >= ~ in) of columns with "
    "numbers and quoted strings, joined by and/or/not, e.g. 'ret < 0 and comm ~ \"^ba\"'."
)


@dataclass(frozen=True)
class Options:
    by: tuple[str, ...] = option(
        (), "--by", metavar="FIELD[,FIELD...]", help="Count per value of these columns."
    )
    event: str | None = option(None, "-e", "--event", metavar="TYPE", help="Only this event type.")
    where: str | None = option(None, "--where", metavar="EXPR", help=WHERE_HELP)
    top: int | None = option(None, "--top", metavar="N", min=1, help="Only the N largest counts.")


def run(source: Source, options: Options) -> Counts:
    from bpfcap.formats.errors import UsageError

    keys = [k.strip() for k in options.by if k.strip()]
    if not keys:
        raise UsageError("count needs --by", "e.g. --by comm, or --by kind")
    kinds, columns, expr = select(options.event, keys, options.where)
    table = count_rows(rows(source, kinds, columns, expr), keys)
    if options.top is not None:
        table = table.slice(0, options.top)
    return Counts("count", kinds=kinds, keys=keys, table=table)


REPORT = Report(
    name="count",
    summary="Count events per key, as bpftrace prints a count() map.",
    description="""Count events per key, printed as bpftrace prints a count() map
    (`@[key]: N`, smallest first). Rows of every event type that has the --by and --where
    columns are counted.""",
    needs={},
    options=Options,
    run=run,
    examples=(
        ("count t.parquet --by comm", "events per command"),
        ("count t.parquet --by kind", "events per type"),
        ("count t.parquet -e open --by path --where 'ret < 0' --top 10", "failing paths"),
        ("count t.parquet --by comm,nr --where 'kind == \"syscall\"'", "calls per command"),
    ),
)
