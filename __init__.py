"""bpfcap: record kernel events with eBPF into Parquet traces, report on them offline.

    import bpfcap
    t = bpfcap.open("trace.parquet")       # formats, analyze: no BCC, no root
    t.report("biolatency", disks=True).to_pandas()

docs/python-api.md has the tour. Imports are lazy: `import bpfcap` loads no pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bpfcap.analyze.api import OpenTrace

__version__ = "0.1.0"
__all__ = ["open", "reports", "__version__"]


def open(path: Any) -> OpenTrace:  # noqa: A001 - bpfcap.open, as tarfile.open
    """Open a trace file or segment directory for reading (see analyze.api.OpenTrace)."""
    from bpfcap.analyze.api import OpenTrace

    return OpenTrace(path)


def reports() -> list[str]:
    """The names of the reports, as `bpfcap report --help` lists them."""
    from bpfcap.analyze.registry import names

    return names()
