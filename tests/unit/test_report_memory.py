"""Every report reads a trace of any size in bounded memory.

The trace: 50M events over 10 minutes, millions of each kind (tests/bigtrace.py, the
"storm" mix, ~950 MB on disk), written once per session (~1 min on a 2-CPU VM) and
removed after. Each report, with typical flags (bigtrace.REPORTS), must

* fit in 1 GB of address space (RLIMIT_AS, as `ulimit -v 1048576`): a report that holds a
  whole kind in memory fails here with "out of memory";
* use about the memory it uses on a tenth of the recording (5M events over 1 minute: the
  same rate, row groups of the same size): RSS at 50M within 25% + 64 MB of RSS at 5M.
  Memory that grows with the recording fails here before it reaches the limit.

Peak RSS and time of each run are recorded (`pytest -rP` prints them; they are the
tests' user_properties, in junit XML). No root needed: it runs in the normal suite, CI included.

The limit is on address space, so the reports run with the system allocator
(bigtrace.BOUNDED_ENV): pyarrow's mimalloc reserves ~1.7 GB of it whatever it uses.
test_the_limit_leaves_room checks that every report fits under it on a small trace.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bpfcap.tests.bigtrace import REPORTS, Run, measure, write_bigtrace

BPFCAP = str(Path(sys.executable).parent / "bpfcap")
EVENTS = 50_000_000
SECONDS = 600
SHORTER = 10  # the growth check's trace: a tenth of the events over a tenth of the time
LIMIT_AS = 1 << 30  # bytes: ulimit -v 1048576
GROWTH = (1.25, 64)  # RSS(50M) <= RSS(5M) * 1.25 + 64 MB
# State a report may hold beyond that: execsnoop keeps the last fork of each pid when exec
# rows lack their parent (traces recorded without BTF): bounded by pid_max (4,194,304 at
# most, ~64 B each), which the short trace does not reach.
STATE_MB = {"execsnoop": 256}
TIMEOUT_S = 900  # per report


@dataclass
class Traces:
    big: Path
    short: Path
    rows: dict[str, int]
    runs: dict[tuple[str, Path], Run] = field(default_factory=dict, repr=False)

    def run(self, name: str, trace: Path) -> Run:
        """A report's run on one of the traces (once a session)."""
        if (name, trace) not in self.runs:
            self.runs[name, trace] = _report(name, trace)
        return self.runs[name, trace]


@pytest.fixture(scope="session")
def traces(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("bigtrace")
    t = Traces(d / "big.parquet", d / "short.parquet", {})
    t0 = time.perf_counter()
    t.rows = write_bigtrace(t.big, EVENTS, mix="storm", seconds=SECONDS)
    print(f"\nwrote {sum(t.rows.values()):,} events in {time.perf_counter() - t0:.1f} s: {t.rows}")
    write_bigtrace(t.short, EVENTS // SHORTER, mix="storm", seconds=SECONDS / SHORTER)
    yield t
    for f in (t.big, t.short):  # ~1 GB: not kept among pytest's last three tmp dirs
        f.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def small_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("smalltrace") / "storm.parquet"
    write_bigtrace(path, 20_000, mix="storm", seconds=60)
    return path


def _report(name: str, trace: Path) -> Run:
    args, _ = REPORTS[name]
    return measure([BPFCAP, "report", *args, trace], limit_as=LIMIT_AS, timeout=TIMEOUT_S)


def _why(name: str, r: Run, events: int) -> str:
    last = (r.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
    return (
        f"bpfcap report {' '.join(REPORTS[name][0])} on {events:,} events: exit "
        f"{r.returncode} after {r.seconds:.1f} s, peak RSS {r.rss_mb:.0f} MB, under a "
        f"{LIMIT_AS >> 20} MB address-space limit: {last}"
    )


def test_the_big_trace_holds_millions_of_every_kind(traces):
    assert sum(traces.rows.values()) >= EVENTS * 0.99
    assert all(n >= EVENTS // 100 for n in traces.rows.values()), traces.rows
    info = subprocess.run([BPFCAP, "info", traces.big], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert f"{sum(traces.rows.values())} rows, 0 lost" in info.stdout, info.stdout


@pytest.mark.parametrize("name", list(REPORTS))
def test_the_limit_leaves_room(small_trace, name):
    r = _report(name, small_trace)
    assert r.returncode == 0, _why(name, r, 20_000)


@pytest.mark.parametrize("name", list(REPORTS))
def test_a_report_of_50m_events_fits_in_1_gb(traces, name, request):
    r = traces.run(name, traces.big)
    request.node.user_properties += [("peak_rss_mb", round(r.rss_mb)), ("seconds", r.seconds)]
    print(f"{name}: exit {r.returncode}, {r.seconds:.1f} s, peak RSS {r.rss_mb:.0f} MB")
    assert r.returncode == 0, _why(name, r, EVENTS)


@pytest.mark.parametrize("name", list(REPORTS))
def test_memory_does_not_grow_with_the_recording(traces, name, request):
    short = traces.run(name, traces.short)
    request.node.user_properties.append(("peak_rss_mb_short", round(short.rss_mb)))
    assert short.returncode == 0, _why(name, short, EVENTS // SHORTER)
    big = traces.run(name, traces.big)
    assert big.returncode == 0, _why(name, big, EVENTS)
    factor, plus = GROWTH
    plus += STATE_MB.get(name, 0)
    print(f"{name}: peak RSS {short.rss_mb:.0f} MB at 5M events, {big.rss_mb:.0f} MB at 50M")
    assert big.rss_mb <= short.rss_mb * factor + plus, (
        f"bpfcap report {' '.join(REPORTS[name][0])}: peak RSS {short.rss_mb:.0f} MB on "
        f"{EVENTS // SHORTER:,} events over {SECONDS // SHORTER} s, {big.rss_mb:.0f} MB on "
        f"{EVENTS:,} over {SECONDS} s: memory grows with the recording"
    )
