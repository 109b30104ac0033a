"""Rows of every event type that has the columns a generic report asks for (count, hist):
the event types, the columns to read, and the compiled --where filter."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from bpfcap.analyze.report import Source
from bpfcap.formats.errors import UsageError


def select(
    event: str | None, fields: Sequence[str], where: str | None
) -> tuple[list[str], list[str], Any]:
    """(kinds, columns, expression): the event types whose rows have every column of
    `fields` and of `where` (only `event` if given), the columns to read, and the
    compiled --where expression (None without one)."""
    from bpfcap.analyze.where import compile_where
    from bpfcap.formats.events import BY_NAME, EVENT_TYPES, SCHEMA

    expr, used = compile_where(where, SCHEMA) if where else (None, set())
    unknown = [f for f in fields if f not in SCHEMA.names]
    if unknown:
        raise UsageError(
            f"no column {', '.join(unknown)}", "`bpfcap info --types` lists each type's columns"
        )
    if event is not None and event not in BY_NAME:
        raise UsageError(f"unknown event type {event}", f"choose from {', '.join(BY_NAME)}")
    need = set(fields) | used
    kinds = [
        k.name
        for k in EVENT_TYPES
        if (event is None or k.name == event) and need <= {"kind"} | {f.name for f in k.columns}
    ]
    if not kinds:
        raise UsageError(
            f"no event type has all of {', '.join(sorted(need))}",
            "`bpfcap info --types` lists each type's columns",
        )
    if where and "kind" in used:
        # Conditions on `kind` name the types that can match: only those are read (and
        # only their losses reported).
        from bpfcap.analyze.where import kinds_matching

        kinds = kinds_matching(where, SCHEMA, kinds)
    return kinds, sorted(need - {"kind"}), expr


def rows(source: Source, kinds: list[str], columns: list[str], expr: Any) -> Iterator[pa.Table]:
    """Chunks of the rows of `kinds` (with a `kind` column), --where applied."""
    for k in kinds:
        for chunk in source.batches(k, columns):
            chunk = chunk.append_column("kind", pa.array([k] * chunk.num_rows, pa.string()))
            yield chunk.filter(expr) if expr is not None else chunk
