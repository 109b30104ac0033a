"""Time and memory of `bpfcap summary TRACE` and `bpfcap diff TRACE TRACE` on a big trace,
each in its own process:

    .venv/bin/python bench/summary.py TRACE [--limit-as MB] [--bpfcap CMD]

`.venv/bin/python tests/bigtrace.py OUT --events 130000000 --seconds 600 --mix host`
writes a ten-minute trace like a busy host's (~2 GB). Prints, per command: exit status,
events read (diff reads the trace twice), seconds, events per second and peak RSS, as
bench/reports.py does for the reports (tests/bigtrace.measure: a fresh process, output to
/dev/null, under an address-space limit, 8 GB unless --limit-as says).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from bigtrace import measure  # noqa: E402

from bpfcap.formats.trace import open_trace, rows_by_kind  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", type=Path)
    ap.add_argument("--limit-as", type=int, default=8192, metavar="MB")
    ap.add_argument(
        "--bpfcap",
        default=str(Path(sys.executable).parent / "bpfcap"),
        help="the command that runs bpfcap (default: this venv's)",
    )
    a = ap.parse_args(argv)
    if not a.trace.exists():
        ap.error(f"{a.trace} does not exist: make one with tests/bigtrace.py")
    events = sum(rows_by_kind(open_trace(a.trace)).values())
    print(f"# summary and diff of {a.trace} ({events:,} events)")
    print("| command | exit | events read | seconds | M events/s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for name, args, n in (
        ("summary", ["summary", a.trace], events),
        ("summary --format json", ["summary", a.trace, "--format", "json"], events),
        ("diff (itself)", ["diff", a.trace, a.trace], 2 * events),
    ):
        r = measure([*shlex.split(a.bpfcap), *map(str, args)], limit_as=a.limit_as << 20)
        rate = f"{n / r.seconds / 1e6:.1f}" if r.seconds else "-"
        print(
            f"| {name} | {r.returncode} | {n:,} | {r.seconds:.1f} | {rate} | {r.rss_mb:.0f} |",
            flush=True,
        )
        if r.returncode:
            print(f"|  | {(r.stderr.strip().splitlines() or ['?'])[-1][:200]} |||||")
    return 0


if __name__ == "__main__":
    sys.exit(main())
