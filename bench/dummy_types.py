"""`bpfcap` with 4 extra event types in the registry, for bench/run.py's per-type cost check.

    sudo .venv/bin/python bench/dummy_types.py record -e open -o X --force

Same arguments as the `bpfcap` command. Before the CLI (and so the recorder, decoder and
trace writer) is imported, it appends `dummy1`..`dummy4` (kind ids 101..104, no hooks, not
recorded by default, 10 columns each) to the registry in `bpfcap.formats.events` and
rebinds EVENT_TYPES, BY_NAME, BY_KIND_ID and SCHEMA there: every module imported after
that sees a registry of 14 types and a schema 40 columns wider. Recording `-e open` with it
measures what types that are declared but not recorded cost the recording.
"""

from __future__ import annotations

import bpfcap.formats.events as events
from bpfcap.formats.schema import EventType, Field, trace_schema

# 10 members per type, mixing the integer widths and string sizes the real types use.
CTYPES = ("u64", "u32", "u16", "u8", "char[16]", "u64", "u32", "char[64]", "u16", "u8")

DUMMY_TYPES = tuple(
    EventType(
        name=f"dummy{i}",
        kind_id=100 + i,
        doc=f"Bench only: a type that is declared but never recorded ({i} of 4).",
        hooks=(),
        default=False,
        fields=tuple(
            Field(f"dummy{i}_{chr(ord('a') + j)}", ctype, f"Bench only: member {j} ({ctype})")
            for j, ctype in enumerate(CTYPES)
        ),
    )
    for i in range(1, 5)
)


def install() -> None:
    """Add DUMMY_TYPES to the registry; call before anything else imports from it."""
    events.EVENT_TYPES = (*events.EVENT_TYPES, *DUMMY_TYPES)
    events.BY_NAME = {t.name: t for t in events.EVENT_TYPES}
    events.BY_KIND_ID = {t.kind_id: t for t in events.EVENT_TYPES}
    events.SCHEMA = trace_schema(events.EVENT_TYPES)


if __name__ == "__main__":
    install()
    from bpfcap.cli.main import main

    main()
