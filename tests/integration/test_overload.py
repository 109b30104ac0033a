"""Overload: a producer far faster than the consumer. The workload is never blocked; what
does not fit is dropped and counted exactly: rows written + lost == seen."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from e2e import bpfcap

pytestmark = pytest.mark.root
STORM_C = Path(__file__).resolve().parents[2] / "bench" / "storm.c"
OPENS = 300_007  # prime


@pytest.fixture(scope="module")
def storm(tmp_path_factory) -> Path:
    exe = tmp_path_factory.mktemp("storm") / "storm"
    subprocess.run(["gcc", "-O2", "-o", exe, STORM_C], check=True)
    return exe


def test_flood_counts_every_loss(tmp_path, storm):
    trace = tmp_path / "flood.parquet"
    # A 32 KiB ring buffer holds one batch of opens: most batches are refused.
    r = bpfcap(
        "record",
        "-e",
        "open",
        "--ringbuf-pages",
        "8",
        "-o",
        trace,
        "--",
        storm,
        "open",
        OPENS,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    meta = json.loads(pq.read_metadata(trace).metadata[b"bpfcap.meta"])
    c = meta["events"]["open"]
    rows = pq.read_table(trace, filters=[("kind", "==", "open")], columns=["path"])
    assert c["lost"] > 0
    assert c["written"] == rows.num_rows
    assert c["written"] + c["lost"] == c["seen"]
    assert sum(c["lost_per_cpu"]) == c["lost"] and sum(c["seen_per_cpu"]) == c["seen"]
    # The storm's opens, plus the few its dynamic loader makes, were all seen.
    hostname = sum(p == "/etc/hostname" for p in rows.column("path").to_pylist())
    assert hostname <= OPENS and OPENS <= c["seen"] <= OPENS + 20
    assert hostname + c["lost"] >= OPENS
    out = bpfcap("report", "opensnoop", trace)
    assert f"{c['lost']} open events were lost".encode() in out.stderr
    # The loss is placed in time too: within the segments it fell in.
    assert c["lost_timeline"] and c["lost_timeline"][-1][2] == c["lost"]
    print(f"\nflood: seen {c['seen']}, written {c['written']}, lost {c['lost']}")
