"""hist: a histogram of an integer column, as bpftrace prints hist() (power-of-2
buckets) or lhist() (--linear), one per --by key. Generic over the event declarations,
streamed row group by row group (the state is one bucket array per key)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import pyarrow as pa

from bpfcap.analyze import aggregate
from bpfcap.analyze.count import WHERE_HELP
from bpfcap.analyze.report import Histograms, Report, Source, option
from bpfcap.analyze.selection import rows, select
from bpfcap.formats.errors import UsageError


@dataclass(frozen=True)
class Options:
    field: str | None = option(
        None, "--field", metavar="FIELD", help="The integer column to bucket (required)."
    )
    by: tuple[str, ...] = option(
        (), "--by", metavar="KEY[,KEY...]", help="One histogram per value of these columns."
    )
    event: str | None = option(None, "-e", "--event", metavar="TYPE", help="Only this event type.")
    where: str | None = option(None, "--where", metavar="EXPR", help=WHERE_HELP)
    linear: str | None = option(
        None, "--linear", metavar="MIN,MAX,STEP", help="Linear buckets, as bpftrace's lhist()."
    )


def linear_spec(text: str) -> tuple[int, int, int]:
    """--linear MIN,MAX,STEP, checked."""
    try:
        lo, hi, step = (int(x) for x in text.split(","))
    except ValueError as e:
        raise UsageError(f"--linear {text}: three integers MIN,MAX,STEP") from e
    if step <= 0 or hi <= lo:
        raise UsageError(f"--linear {text}: MAX must exceed MIN and STEP be positive")
    return lo, hi, step


def run(source: Source, options: Options) -> Histograms:
    from bpfcap.formats.events import SCHEMA

    field = options.field
    if not field:
        raise UsageError("hist needs --field", "e.g. --field lat_ns")
    keys = [k.strip() for k in options.by if k.strip()]
    if field in SCHEMA.names and not pa.types.is_integer(SCHEMA.field(field).type):
        raise UsageError(f"--field {field}: not an integer column")
    lin = None
    if options.linear is not None:
        lin = linear_spec(options.linear)
        lo, hi, step = lin
        buckets = partial(aggregate.linear_buckets, lo=lo, hi=hi, step=step)
        n = 2 + -(-(hi - lo) // step)
    else:
        buckets, n = aggregate.pow2_buckets, aggregate.POW2_BUCKETS
    kinds, columns, expr = select(options.event, [field, *keys], options.where)
    hists = aggregate.keyed_hist(rows(source, kinds, columns, expr), field, keys, buckets, n)
    return Histograms("hist", kinds=kinds, field_name=field, keys=keys, hists=hists, linear=lin)


REPORT = Report(
    name="hist",
    summary="Histogram of an integer column, as bpftrace prints hist() and lhist().",
    description="""Histogram of an integer column, printed as bpftrace prints hist()
    (power-of-2 buckets) or lhist() (--linear), one per --by key.""",
    needs={},
    options=Options,
    run=run,
    examples=(
        ("hist t.parquet -e open --field lat_ns", "power-of-2 buckets"),
        ("hist t.parquet -e bio --field bytes --by comm", "one per command"),
        ("hist t.parquet -e syscall --field ret --linear 0,100,10", "linear buckets"),
    ),
)
