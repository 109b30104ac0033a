"""`bpfcap export`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(
    epilog="""\b
examples:
  bpfcap export t.parquet --type open -o open.parquet   # one kind, its columns only
  bpfcap export t.parquet -o t-tables/                  # one <kind>.parquet per kind
  bpfcap export t.parquet --sql > views.sql             # DuckDB: .read views.sql"""
)
@click.argument("trace")
@click.option("--type", "kind", metavar="KIND", help="Only this event type (open, exec, ...).")
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="The file to write (with --type), else a directory for one <kind>.parquet per kind.",
)
@click.option(
    "--sql",
    is_flag=True,
    help="Print DuckDB `CREATE VIEW <kind>` statements over TRACE instead of writing files.",
)
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
def export(trace: str, kind: str | None, output: str | None, sql: bool, force: bool) -> None:
    """Write a trace's rows as plain Parquet files any reader opens without bpfcap, one
    per event type with only that type's columns (text as UTF-8 strings, `time` a UTC
    timestamp; see docs/trace-format.md): one type's with --type, else every type's into
    the directory -o. Column docs and the recording's metadata go along in each file. Or,
    with --sql, print DuckDB views over TRACE, one per type. TRACE, of any format version,
    is a trace file or segment directory."""
    from bpfcap.formats import export as lib
    from bpfcap.formats.errors import UsageError
    from bpfcap.formats.trace import open_trace

    if kind is not None:
        lib.event_type(kind)  # an unknown type fails before any reading
    if sql:
        if output is not None:
            raise UsageError("--sql prints to stdout, it writes no file", "drop -o")
        click.echo(lib.duckdb_views(open_trace(trace), kind), nl=False)
        return
    if output is None:
        raise UsageError("missing -o PATH", "say where to write (or --sql)")
    t = open_trace(trace)
    if kind is not None:
        written = {Path(output): lib.export_kind(t, kind, Path(output), force=force)}
    else:
        written = lib.export_all(t, Path(output), force=force)
    for path, rows in written.items():
        click.echo(f"Wrote {path} ({rows} row{'s' * (rows != 1)})", err=True)
