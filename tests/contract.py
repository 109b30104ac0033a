"""Run a report as the CLI does (registry -> run -> render), on rows from builders.py:
for the golden tests of the analyses, which go through the report contract."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from bpfcap.analyze import registry
from bpfcap.analyze.report import Source
from bpfcap.cli.render import render
from bpfcap.formats.trace import open_trace
from bpfcap.tests.builders import write_trace

_DIR = tempfile.TemporaryDirectory(prefix="bpfcap-contract-")
_FILES: dict[int, Path] = {}


def trace_of(rows: list[dict[str, Any]]) -> Path:
    """A trace file holding `rows` (written once per distinct list of rows)."""
    key = hash(repr(rows))
    if key not in _FILES:
        _FILES[key] = write_trace(Path(_DIR.name) / f"{len(_FILES)}.parquet", rows)
    return _FILES[key]


def contract_text(report: str, rows: list[dict[str, Any]], /, **options: Any) -> bytes:
    """Report `report`'s text (BCC's) of `rows` with `options`, as `bpfcap report` prints."""
    rep = registry.get(report)
    result = rep.run(Source(open_trace(trace_of(rows))), rep.make_options(**options))
    out = io.BytesIO()
    render(result, "text", out)
    return out.getvalue()
