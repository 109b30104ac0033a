"""Every report, by name: the one list the CLI, the Python API, the docs and the tests
read. Adding a report = its module (a `Report` declaration, see analyze/report.py) + one
line here + its golden files.

Entries name the declaration's module and attribute, imported on first use, so that
listing commands (`bpfcap --help`) imports no analysis code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bpfcap.analyze.report import Report

REPORTS = {
    "opensnoop": "bpfcap.analyze.opensnoop:REPORT",
    "execsnoop": "bpfcap.analyze.execsnoop:REPORT",
    "syscount": "bpfcap.analyze.syscount:REPORT",
    "killsnoop": "bpfcap.analyze.killsnoop:REPORT",
    "biosnoop": "bpfcap.analyze.biosnoop:REPORT",
    "biolatency": "bpfcap.analyze.biolatency:REPORT",
    "runqlat": "bpfcap.analyze.runqlat:REPORT",
    "tcplife": "bpfcap.analyze.tcp:TCPLIFE",
    "tcpstates": "bpfcap.analyze.tcp:TCPSTATES",
    "tcpconnect": "bpfcap.analyze.tcp:TCPCONNECT",
    "tcpaccept": "bpfcap.analyze.tcp:TCPACCEPT",
    "count": "bpfcap.analyze.count:REPORT",
    "hist": "bpfcap.analyze.hist:REPORT",
}


def names() -> list[str]:
    """The report names, in the order `bpfcap report --help` lists them."""
    return list(REPORTS)


def get(name: str) -> Report:
    """The declaration of report `name`; UsageError naming the choices for others."""
    target = REPORTS.get(name)
    if target is None:
        from bpfcap.formats.errors import UsageError

        raise UsageError(f"no report {name!r}", f"choose from {', '.join(REPORTS)}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def all_reports() -> list[Report]:
    return [get(n) for n in REPORTS]
