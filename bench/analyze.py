"""Throughput and memory of the offline analyses on a big trace, streamed row group by
row group:

    .venv/bin/python bench/analyze.py TRACE

`sudo .venv/bin/python bench/run.py --long 600` leaves such a trace (~190M open events)
in bench/out/bpfcap-long.parquet. Prints events per second and the peak RSS of each
analysis (each runs in its own process).
"""

from __future__ import annotations

import json
import subprocess
import sys

JOBS = {
    "count by comm": ("count", ["comm"]),
    "count by tgid,ret": ("count", ["tgid", "ret"]),
    "hist of lat_ns": ("hist", ["lat_ns"]),
}

CHILD = """
import json, sys, time, resource
from bpfcap.formats.trace import open_trace
from bpfcap.analyze.aggregate import count, log2_hist
kind, cols = sys.argv[2], json.loads(sys.argv[3])
t = open_trace(sys.argv[1])
t0 = time.perf_counter()
rows = 0
def chunks():
    global rows
    for c in t.batches("open", cols, as_dictionary=tuple(c for c in cols if c == "comm")):
        rows += c.num_rows
        yield c
if kind == "count":
    out = count(chunks(), cols)
    top = out.slice(0, 3).to_pylist()
else:
    out = log2_hist(chunks(), cols[0])
    top = int(out.sum())
secs = time.perf_counter() - t0
print(json.dumps({"rows": rows, "seconds": secs, "result": repr(top)[:120],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    trace = sys.argv[1]
    print(f"# analyses of {trace}")
    print("| analysis | events | seconds | M events/s | peak RSS MB |")
    print("|---|---|---|---|---|")
    for name, (kind, cols) in JOBS.items():
        r = subprocess.run(
            [sys.executable, "-c", CHILD, trace, kind, json.dumps(cols)],
            capture_output=True,
            text=True,
            check=True,
        )
        res = json.loads(r.stdout)
        print(
            f"| {name} | {res['rows']:,} | {res['seconds']:.1f} | "
            f"{res['rows'] / res['seconds'] / 1e6:.1f} | {res['rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
