"""Time and memory of every report on a big trace, each in its own process:

    .venv/bin/python bench/reports.py [TRACE] [--only NAME,...] [--limit-as MB]
        [--system-allocator] [--bpfcap CMD]

TRACE defaults to the ten-minute open-storm trace of `bench/run.py --long 600`
(bench/out/bpfcap-long.parquet); `tests/bigtrace.py OUT --events N` writes one with every
kind a report reads. Prints one row per report (the commands and flags of
tests/bigtrace.REPORTS, output to /dev/null): exit status, the rows of the kinds it
reads, seconds, events per second and peak RSS.

Each runs under an address-space limit (ulimit -v), 8 GB unless --limit-as says: a report
that holds a whole kind needs far more on a big trace (tcpstates held 19.5 GB on 10.6M
tcp rows) and would take a shared machine's memory. --system-allocator runs them as
tests/unit/test_report_memory.py does (bigtrace.BOUNDED_ENV: pyarrow's mimalloc reserves
~1.7 GB of address space, which a limit under 2 GB counts). --bpfcap runs another build
(e.g. "env PYTHONPATH=/tmp/old .venv/bin/python -m bpfcap").
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_TRACE = HERE / "out" / "bpfcap-long.parquet"
sys.path.insert(0, str(ROOT / "tests"))

from bigtrace import REPORTS, measure  # noqa: E402

from bpfcap.formats.trace import open_trace, rows_by_kind  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", type=Path, nargs="?", default=DEFAULT_TRACE)
    ap.add_argument("--only", help="comma list of report names (of tests/bigtrace.REPORTS)")
    ap.add_argument(
        "--limit-as", type=int, default=8192, metavar="MB", help="address-space limit (8192)"
    )
    ap.add_argument(
        "--system-allocator",
        action="store_true",
        help="the system allocator and two malloc arenas (bigtrace.BOUNDED_ENV)",
    )
    ap.add_argument(
        "--bpfcap",
        default=str(Path(sys.executable).parent / "bpfcap"),
        help="the command that runs bpfcap (default: this venv's)",
    )
    a = ap.parse_args(argv)
    if not a.trace.exists():
        ap.error(
            f"{a.trace} does not exist: make one with `sudo .venv/bin/python bench/run.py "
            "--long 600` or `.venv/bin/python tests/bigtrace.py OUT --events N`"
        )
    names = a.only.split(",") if a.only else list(REPORTS)
    unknown = [n for n in names if n not in REPORTS]
    if unknown:
        ap.error(f"unknown report(s) {', '.join(unknown)}; known: {', '.join(REPORTS)}")
    rows = rows_by_kind(open_trace(a.trace))
    limit = a.limit_as << 20
    print(f"# reports of {a.trace} ({sum(rows.values()):,} events)")
    alloc = ", system allocator" if a.system_allocator else ""
    print(f"# each under an address-space limit of {a.limit_as} MB{alloc}")
    print("| report | exit | events read | seconds | M events/s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for name in names:
        args, kinds = REPORTS[name]
        r = measure(
            [*shlex.split(a.bpfcap), "report", *args, a.trace],
            limit_as=limit,
            bounded_env=a.system_allocator,
        )
        n = sum(rows.get(k, 0) for k in kinds)
        rate = f"{n / r.seconds / 1e6:.2f}" if r.seconds else "-"
        print(
            f"| {name} | {r.returncode} | {n:,} | {r.seconds:.1f} | {rate} | {r.rss_mb:.0f} |",
            flush=True,
        )
        if r.returncode:
            last = r.stderr.strip().splitlines()[-1:] or ["(no message)"]
            print(f"|  | {last[0][:200]} |||||", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
