"""`record` and `doctor` on a host or with arguments that cannot work: one line, no traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from e2e import BPFCAP, bpfcap

pytestmark = pytest.mark.root
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def one_error(r: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    err = r.stderr.decode()
    assert r.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_not_root(tmp_path):
    tmp_path.chmod(0o777)
    r = subprocess.run(
        [*NOBODY, BPFCAP, "record", "-d", "1", "-o", tmp_path / "x.parquet"], capture_output=True
    )
    one_error(r, 1, "recording needs root", "sudo")
    assert list(tmp_path.iterdir()) == []
    d = subprocess.run([*NOBODY, BPFCAP, "doctor"], capture_output=True, text=True)
    assert d.returncode == 1
    assert d.stdout.startswith("FAIL privileges:")


def test_bcc_missing(tmp_path):
    """A Python that cannot import BCC (shadowed here by a module that fails to import)."""
    shadow = tmp_path / "shadow" / "bcc"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named bcc')\n")
    env = dict(os.environ, PYTHONPATH=str(shadow.parent))
    r = bpfcap("record", "-d", "1", "-o", tmp_path / "x.parquet", check=False, env=env)
    one_error(r, 1, "BCC Python bindings are not importable", "python3-bpfcc")
    assert not (tmp_path / "x.parquet.partial").exists()
    d = subprocess.run([BPFCAP, "doctor"], capture_output=True, text=True, env=env)
    assert d.returncode == 1 and "FAIL BCC:" in d.stdout


def fake_tracefs(root: Path, present: list[str]) -> Path:
    for tp in present:
        (root / "events" / tp.replace(":", "/")).mkdir(parents=True)
    return root


def test_tracepoints_missing(tmp_path):
    fake = fake_tracefs(
        tmp_path / "tracefs", ["syscalls:sys_enter_openat", "syscalls:sys_exit_openat"]
    )
    env = dict(os.environ, BPFCAP_TRACEFS=str(fake))
    r = bpfcap(
        "record", "-e", "exec", "-d", "1", "-o", tmp_path / "x.parquet", check=False, env=env
    )
    one_error(r, 1, "none of the requested events can be recorded", "bpfcap doctor")
    # With some hooks present: record what can be recorded, say what cannot, in the file too.
    out = tmp_path / "open.parquet"
    r = bpfcap("record", "-e", "open", "-d", "1", "-o", out, check=False, env=env)
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert (
        "warning: open: tracepoint syscalls:sys_enter_open, syscalls:sys_exit_open not on "
        "this kernel" in err
    )
    assert "openat2" in err
    info = bpfcap("info", out).stdout.decode()
    assert "missing   syscalls:sys_enter_openat2" in info
    assert "attached  syscalls:sys_enter_openat, syscalls:sys_exit_openat" in info


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["-e", "open,bogus"], 2, "unknown event type bogus; choose from open, exec, fork"),
        (["-d", "0"], 2, "duration must be a number of seconds in (0, "),
        (["-d", "-3"], 2, "duration must be a number of seconds in (0, "),
        # Every number finite and in range (before: recorded until Ctrl-C, or exit 70).
        (["-d", "nan"], 2, "duration must be a number of seconds in (0, "),
        (["-d", "inf"], 2, "duration must be a number of seconds in (0, "),
        (["-d", "1e300"], 2, "duration must be a number of seconds in (0, "),
        (["-d", "1", "--rotate", "nan"], 2, "--rotate must be a number of seconds"),
        (["-d", "1", "--rotate", "inf"], 2, "--rotate must be a number of seconds"),
        (["--max-size", "nan"], 2, "--max-size nan: a size such as 500M"),
        (["--max-size", "inf"], 2, "--max-size inf: a size such as 500M"),
        (["--max-size", "1e30G"], 2, "--max-size 1e30G: a size such as 500M"),
        (["--ringbuf-pages", str(1 << 40)], 2, "ring buffer pages must be a power of two"),
        (["--tree-max", str(1 << 40), "--", "true"], 2, "--tree-max must be in [1, "),
        (["--user", "no-such-user-here", "--", "true"], 2, "--user no-such-user-here: no such"),
        (["--user", "99999999999999999999", "--", "true"], 2, "no such user"),
        (["--user", "nobody"], 2, "--user sets who runs -- COMMAND"),
        (["-n", "x" * 16], 2, "a task name has 1 to 15 bytes"),
        (["-p", "999999999"], 2, "no process with pid 999999999"),
        (["--", "/nonexistent/cmd"], 2, "command not found: /nonexistent/cmd"),
        (["-o", "/nonexistent-dir/x.parquet"], 1, "/nonexistent-dir is not a directory"),
        (["-o", "/proc/x.parquet"], 1, "cannot create /proc/x.parquet.partial"),
    ],
)
def test_bad_arguments_fail_before_attaching(tmp_path, args, code, needle):
    if "-o" not in args:
        args = [*args, "-o", str(tmp_path / "x.parquet")]
    r = (
        bpfcap("record", "-d", "1", *args, check=False)
        if "-d" not in args
        else bpfcap("record", *args, check=False)
    )
    one_error(r, code, needle)
    assert b"Recording" not in r.stderr


def test_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "t.parquet"
    out.write_text("precious")
    r = bpfcap("record", "-d", "1", "-o", out, check=False)
    one_error(r, 1, f"{out} already exists", "--force")
    assert out.read_text() == "precious"
    r = bpfcap("record", "-e", "open", "-d", "1", "-o", out, "--force")
    lines = r.stderr.decode().splitlines()
    # Only our own two lines: no clang or BCC noise reaches the terminal.
    assert len(lines) == 2 and lines[0].startswith("Recording ") and lines[1].startswith("Wrote ")
    assert out.read_bytes().startswith(b"PAR1")


def test_ebpf_prints_the_program():
    r = bpfcap("record", "--ebpf", "-e", "open", "-p", "1")
    text = r.stdout.decode()
    assert "-DFILTER_TGID=1" in text and "struct open_event {" in text
    assert "struct exec_event" not in text


def test_never_follows_a_symlink_or_clobbers_what_it_did_not_create(tmp_path):
    """As root, -o pointing at a symlink (to a file that matters), with and without
    --force, and symlinks planted where the recorder writes its temporary files."""
    precious = tmp_path / "precious"
    precious.write_text("keep me")
    link = tmp_path / "t.parquet"
    link.symlink_to(precious)
    r = bpfcap("record", "-e", "open", "-d", "1", "-o", link, check=False)
    one_error(r, 1, f"{link} already exists", "--force")
    # With --force the link itself is replaced by the trace; its target is untouched.
    bpfcap("record", "-e", "open", "-d", "1", "-o", link, "--force")
    assert precious.read_text() == "keep me"
    assert not link.is_symlink() and link.read_bytes().startswith(b"PAR1")
    assert oct(link.stat().st_mode & 0o777) == "0o600"
    # A symlink planted at the segment directory's name, and at the merge's temporary file.
    out = tmp_path / "u.parquet"
    (tmp_path / "u.parquet.partial").symlink_to(precious)
    r = bpfcap("record", "-e", "open", "-d", "1", "-o", out, check=False)
    assert r.returncode == 1 and b"u.parquet.partial exists" in r.stderr, r.stderr
    (tmp_path / "u.parquet.partial").unlink()
    # A file and a symlink of the user's at OUT.tmp (once the merge's own name): both
    # untouched, without --force and with it; the merge writes a name of its own.
    (tmp_path / "u.parquet.tmp").symlink_to(precious)
    (tmp_path / "v.parquet.tmp").write_text("mine")
    for name in ("u.parquet", "v.parquet"):
        for force in ([], ["--force"]):
            bpfcap("record", "-e", "open", "-d", "1", "-o", tmp_path / name, *force)
    assert precious.read_text() == "keep me"
    assert (tmp_path / "u.parquet.tmp").is_symlink()
    assert (tmp_path / "v.parquet.tmp").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["precious", "t.parquet", "u.parquet", "u.parquet.tmp", "v.parquet", "v.parquet.tmp"]
    ), "nothing else left behind"
