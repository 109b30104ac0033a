"""The README's sharing examples run as written: every command of the block marked
`<!-- examples: ... -->` exits 0 in a directory holding the traces it names (the
shipped samples; web1 and web2 are two recordings given different host names)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bpfcap.tests.builders import as_host

ROOT = Path(__file__).parents[2]
SAMPLES = ROOT / "sample-traces"


def examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- examples:.*?-->\n```sh\n(.*?)```", text, re.S)
    assert blocks, "README has no examples block"
    lines = [ln.split("  #")[0].strip() for b in blocks for ln in b.splitlines()]
    return [ln for ln in lines if ln.startswith("bpfcap ")]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("readme")
    shutil.copy(SAMPLES / "v2-kernel.parquet", d / "t.parquet")
    shutil.copy(SAMPLES / "v2-open-exec.parquet", d / "u.parquet")
    as_host(SAMPLES / "v2-kernel.parquet", d / "web1.parquet", "web1")
    as_host(SAMPLES / "v2-structs.parquet", d / "web2.parquet", "web2")
    return d


def test_the_block_has_every_command():
    commands = {ln.split()[1] for ln in examples()}
    assert {"summary", "slice", "redact", "share", "diff", "merge"} <= commands


@pytest.mark.parametrize("command", examples())
def test_example_runs(workdir: Path, command: str) -> None:
    argv = shlex.split(command)
    r = subprocess.run(
        [sys.executable, "-m", "bpfcap", *argv[1:], *(["--force"] if "-o" in argv else [])],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout.strip() or "Wrote " in r.stderr
