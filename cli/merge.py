"""`bpfcap merge`: traces into one (formats/merge.py)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(
    epilog="""\b
examples:
  bpfcap merge flight/ -o incident.parquet         # a rotated recording into one file
  bpfcap merge mon.parquet tue.parquet -o week.parquet
  bpfcap merge web1.parquet web2.parquet db.parquet -o fleet.parquet
  bpfcap report syscount fleet.parquet --by-host   # one report per host"""
)
@click.argument("traces", nargs=-1, required=True, metavar="TRACE...")
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help="The file to write."
)
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def merge(traces: tuple[str, ...], output: Path, force: bool) -> None:
    """Join traces into one trace file.

    Traces of one host and boot (consecutive recordings, a segment directory, slices of
    adjacent windows of one recording) become one recording: rows keep their times, loss
    counters add up, and format-2 files are joined by copying their bytes. Traces that
    overlap in time and share an event type are refused (their events would count twice).

    Traces of several hosts become one multi-host trace: every row says its host (a `host`
    column) and its time is put on the clock of the host that booted first, so wall-clock
    times line up. Reports pool the hosts, or take --by-host or --host NAME."""
    from bpfcap.formats.merge import merge as merge_traces
    from bpfcap.formats.trace import open_trace

    from .report import _progress

    r = merge_traces(
        [open_trace(t) for t in traces], output, force=force, progress=_progress("merge")
    )
    for note in r.notes:
        click.echo(f"bpfcap: {note}", err=True)
    hosts = f"{r.hosts} host" + ("s" if r.hosts != 1 else "")
    click.echo(f"Wrote {output} ({r.rows} rows from {r.traces} traces, {hosts}, {r.how})", err=True)
