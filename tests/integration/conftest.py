"""Real-capture tests: root + BCC + this kernel's tracepoints.

They must run in CI (CI=true): there, a host that cannot record is a failure, not a skip.
Elsewhere (a laptop without root or BCC) they skip with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Test modules here import the shared helpers as plain modules (`e2e`, `workload`).
sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]

from e2e import BPFCAP  # noqa: E402


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    try:
        import bcc  # noqa: F401
    except ImportError:
        return "BCC Python bindings not importable"
    return None


@pytest.fixture(scope="session", autouse=True)
def can_record() -> None:
    why = _why_not()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"real-capture tests must run in CI, but: {why}")
        pytest.skip(f"real capture impossible here: {why}")
    r = subprocess.run([BPFCAP, "doctor"], capture_output=True, text=True)
    if r.returncode:
        pytest.fail(f"bpfcap doctor fails on this host:\n{r.stdout}{r.stderr}")
