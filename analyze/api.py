"""The Python API: a trace opened for notebooks and scripts (`bpfcap.open()`).

    >>> import bpfcap
    >>> t = bpfcap.open("sample-traces/v2-kernel.parquet")
    >>> t.meta.host.machine
    'x86_64'
    >>> opens = t.table("open")                    # a pyarrow.Table, open's columns only
    >>> r = t.report("opensnoop", failed=True)     # a result: rows as Arrow or pandas
    >>> df = r.to_pandas()

See docs/python-api.md for the whole tour (it runs as a test).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from bpfcap.analyze import registry
from bpfcap.analyze.report import Result, Source
from bpfcap.formats.meta import TraceMeta


class OpenTrace:
    """A trace file (or segment directory) opened for reading.

    `meta` is its typed metadata (formats.meta.TraceMeta); `kinds` the event types it
    has rows of; `table()`/`batches()` give one event type's rows with that type's
    columns; `report()` runs any report of `bpfcap report` by name, with the same
    options as keyword arguments (the long flag names, `-` as `_`)."""

    def __init__(self, path: str | os.PathLike):
        from bpfcap.formats.trace import open_trace

        self._trace = open_trace(path)
        self.path = self._trace.path
        self.meta = TraceMeta.from_dict(self._trace.meta)

    def __repr__(self) -> str:
        return (
            f"<bpfcap trace {str(self.path)!r}: {self.meta.host.hostname}, {self.duration_s:.3f} s>"
        )

    @property
    def duration_s(self) -> float:
        return self.meta.duration_ns / 1e9

    @property
    def kinds(self) -> list[str]:
        """The event types with rows in the trace, in declaration order."""
        from bpfcap.formats.trace import rows_by_kind

        counts = rows_by_kind(self._trace)
        return [k for k, n in counts.items() if n]

    def columns(self, kind: str) -> list[str]:
        """The columns of event type `kind` (see `bpfcap info --types`)."""
        from bpfcap.formats.events import BY_NAME

        if kind not in BY_NAME:
            from bpfcap.formats.errors import UsageError

            raise UsageError(f"unknown event type {kind!r}", f"choose from {', '.join(BY_NAME)}")
        return [c.name for c in BY_NAME[kind].columns if c.name != "kind"]

    def batches(
        self,
        kind: str,
        columns: Sequence[str] | None = None,
        *,
        since: str | float | None = None,
        until: str | float | None = None,
    ) -> Iterator[pa.Table]:
        """The rows of `kind` row group by row group (bounded memory), in recorded order,
        optionally within a time window (`since`/`until` as the reports' --since and
        --until: seconds from the start, "-10s", "25%", "14:03:07", ISO 8601)."""
        source = Source(self._trace, since=_text(since), until=_text(until))
        return source.batches(kind, list(columns) if columns else self.columns(kind))

    def table(
        self,
        kind: str,
        columns: Sequence[str] | None = None,
        *,
        since: str | float | None = None,
        until: str | float | None = None,
    ) -> pa.Table:
        """batches() as one pyarrow.Table (the whole type in memory)."""
        source = Source(self._trace, since=_text(since), until=_text(until))
        return source.read(kind, list(columns) if columns else self.columns(kind))

    def report(
        self,
        name: str,
        *,
        since: str | float | None = None,
        until: str | float | None = None,
        **options: Any,
    ) -> Result:
        """Run report `name` (`bpfcap.reports()` lists them) with its options; returns
        its result (`.to_arrow()`, `.to_pandas()`; a listing's rows stream once)."""
        rep = registry.get(name)
        source = Source(self._trace, since=_text(since), until=_text(until))
        return rep.run(source, rep.make_options(**options))


def _text(v: str | float | None) -> str | None:
    return None if v is None else str(v)


def reports() -> list[str]:
    """The names of the reports `OpenTrace.report()` runs."""
    return registry.names()
