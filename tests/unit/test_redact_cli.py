"""`bpfcap redact` and `bpfcap share` on the shipped sample traces (real recordings, every
event type, format 1 and 2): every report's figures are unchanged, what identifies the
recording host is gone, and every report says in one line that the trace is redacted.
(tests/integration/test_share.py does the same on a fresh recording with planted
secrets, searching the bytes.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bpfcap.analyze import registry
from bpfcap.tests.builders import as_host

SAMPLES = sorted((Path(__file__).parents[2] / "sample-traces").glob("*.parquet"))
ARGS = {"count": ("--by", "comm,kind"), "hist": ("--field", "lat_ns")}


def bpfcap(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bpfcap", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module", params=SAMPLES, ids=lambda p: p.name)
def pair(request, tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("redact") / "r.parquet"
    r = bpfcap("redact", request.param, "-o", out)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("redacted: ") and f"Wrote {out}" in r.stderr
    return request.param, out


def figures(trace: Path, report: str) -> tuple[list, str]:
    """Every number of a report's JSON lines but user ids (which redaction maps)."""
    r = bpfcap("report", report, trace, *ARGS.get(report, ()), "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = [
        tuple(
            (k, v)
            for k, v in sorted(json.loads(line).items())
            if isinstance(v, int | float) and not isinstance(v, bool) and k != "uid"
        )
        for line in r.stdout.splitlines()
    ]
    return sorted(rows), r.stderr


@pytest.mark.parametrize("report", registry.names())
def test_figures_unchanged(pair, report):
    src, out = pair
    before, _ = figures(src, report)
    after, note = figures(out, report)
    assert after == before
    assert note.count("is redacted") == 1


def test_the_recording_host_is_gone(pair):
    src, out = pair
    meta = json.loads(pq.read_metadata(src).metadata[b"bpfcap.meta"])
    data = pq.read_metadata(out).metadata[b"bpfcap.meta"]
    assert json.loads(data)["host"]["hostname"] not in ("", meta["host"]["hostname"])
    # The recorder's command line named the repository's files: those names are gone.
    assert b"sample-traces" in json.dumps(meta).encode()
    for name in (b"sample-traces", b"workload", b".venv", b"tests/"):
        assert name not in data
    assert json.loads(data)["redaction"]["options"]["keep_comm"] is False
    info = bpfcap("info", out)
    assert info.returncode == 0 and "redacted:" in info.stdout


def test_share_slices_redacts_and_summarises(tmp_path):
    src = next(p for p in SAMPLES if p.name == "v2-kernel.parquet")
    out = tmp_path / "bug.parquet"
    r = bpfcap("share", src, "-o", out, "-e", "open,syscall", "--where", "ret < 0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("#")  # the Markdown summary
    assert "redacted:" in r.stderr and f"Wrote {out}" in r.stderr
    meta = json.loads(pq.read_metadata(out).metadata[b"bpfcap.meta"])
    assert meta["slice"]["filters"]["kinds"] == ["open", "syscall"]
    assert meta["slice"]["filters"]["where"] == "<redacted>"
    assert "redaction" in meta
    kinds = set(pq.read_table(out, columns=["kind"])["kind"].to_pylist())
    assert "open" in kinds and kinds <= {"open", "syscall"}  # no getppid failed
    failed = pq.read_table(out, columns=["ret"])["ret"].to_pylist()
    assert failed and all(v < 0 for v in failed)
    again = bpfcap("redact", out, "-o", tmp_path / "twice.parquet")
    assert again.returncode != 0 and again.stderr.startswith("error: ")
    assert "already redacted" in again.stderr


def test_a_multi_host_trace_sliced_and_redacted_keeps_its_hosts(tmp_path):
    """merge of two hosts, then share: every host's report is that host's own report of
    the window, figure for figure, under its pseudonym; no host name is left."""
    web1 = as_host(SAMPLES_BY_NAME["v2-kernel.parquet"], tmp_path / "web1.parquet", "web1")
    web2 = as_host(SAMPLES_BY_NAME["v2-structs.parquet"], tmp_path / "web2.parquet", "web2")
    fleet, out = tmp_path / "fleet.parquet", tmp_path / "bug.parquet"
    assert bpfcap("merge", web1, web2, "-o", fleet).returncode == 0
    r = bpfcap("share", fleet, "-o", out, "--since", "10%")
    assert r.returncode == 0, r.stderr
    meta = json.loads(pq.read_metadata(out).metadata[b"bpfcap.meta"])
    names = [h["name"] for h in meta["hosts"]]
    assert len(names) == 2 and not {"web1", "web2"} & set(names)
    assert b"web1" not in pq.read_metadata(out).metadata[b"bpfcap.meta"]
    assert set(pq.read_table(out, columns=["host"])["host"].to_pylist()) == set(names)
    for report in ("opensnoop", "biolatency", "count"):
        for name, src in zip(names, (web1, web2)):
            mine = bpfcap(
                "report", report, out, "--host", name, *ARGS.get(report, ()), "--format", "json"
            )
            assert mine.returncode == 0, mine.stderr
            whole = bpfcap("report", report, fleet, "--host", _host_of(src), "--since", "10%",
                           *ARGS.get(report, ()), "--format", "json")  # fmt: skip
            assert whole.returncode == 0, whole.stderr
            assert _numbers(mine.stdout) == _numbers(whole.stdout)


SAMPLES_BY_NAME = {p.name: p for p in SAMPLES}


def _host_of(src: Path) -> str:
    return json.loads(pq.read_metadata(src).metadata[b"bpfcap.meta"])["host"]["hostname"]


def _numbers(stdout: str) -> list:
    return sorted(
        tuple(
            (k, v)
            for k, v in sorted(json.loads(line).items())
            if isinstance(v, int | float) and not isinstance(v, bool) and k != "uid"
        )
        for line in stdout.splitlines()
    )
