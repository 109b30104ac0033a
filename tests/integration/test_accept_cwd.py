"""The BCC fields that need a kernel struct, from real workloads: tcpaccept's PID and
COMM (the accepting task, accept(fd, NULL, NULL) included) and opensnoop -F's full
paths (working directories walked as BCC walks them, mount roots crossed); and a
recording on a host without BTF, where those are missing and every report says so."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from e2e import bpfcap

pytestmark = pytest.mark.root

WORKLOADS = Path(__file__).parent.parent / "workloads"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_tcpaccept_shows_the_accepting_task(tmp_path: Path) -> None:
    trace = tmp_path / "t.parquet"
    v6 = ["--ipv6"] if _has_ipv6_loopback() else []
    r = bpfcap(
        "record", "-e", "tcp", "-o", trace, "--", sys.executable, WORKLOADS / "accepts.py", *v6
    )
    lines = [ln.split() for ln in r.stdout.decode().splitlines()]
    servers = {int(fam): (int(pid), int(port)) for what, pid, fam, port in
               (ln for ln in lines if ln[0] == "server")}  # fmt: skip
    conns = [(int(fam), int(port)) for what, fam, port in (ln for ln in lines if ln[0] == "conn")]
    assert len(conns) == 7 * len(servers)
    want = []
    for fam, client_port in conns:
        pid, port = servers[fam]
        host, ip = ("127.0.0.1", 4) if fam == socket.AF_INET else ("::1", 6)
        want.append(
            b"%-7d %-12.12s %-2d %-16s %-5d %-16s %-5d"
            % (pid, b"acc-server", ip, host.encode(), client_port, host.encode(), port)
        )
    out = bpfcap("report", "tcpaccept", trace)
    assert out.stdout.splitlines() == [
        b"PID     COMM         IP RADDR            RPORT LADDR            LPORT",
        *want,
    ]
    assert out.stderr == b""
    # As BCC's filters: the server's pid; a local port; one family.
    pid4, port4 = servers[socket.AF_INET]
    assert bpfcap("report", "tcpaccept", trace, "-p", pid4).stdout.splitlines()[1:] == want
    assert bpfcap("report", "tcpaccept", trace, "-P", port4).stdout.splitlines()[1:] == want[:7]
    assert bpfcap("report", "tcpaccept", trace, "-6").stdout.splitlines()[1:] == want[7:]
    # The server's accept(2) and accept4(2) calls, and nothing from the client.
    info = bpfcap("info", trace).stdout.decode()
    assert f"  accept     {len(want):>12} rows" in info


def _bcc_full_path(cwd: bytes, name: bytes) -> bytes:
    """What BCC's opensnoop -F prints: the cwd joined (for a relative name), not
    normalised, with bytes that are not UTF-8 dropped."""
    path = name if name.startswith(b"/") else cwd + b"/" + name
    return path.decode("utf-8", "ignore").encode()


def test_opensnoop_full_path(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "mnt").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none", base / "mnt"], check=True)
    try:
        trace = tmp_path / "t.parquet"
        r = bpfcap(
            "record", "-e", "open", "-o", trace, "--",
            sys.executable, WORKLOADS / "cwd_opens.py", base,
        )  # fmt: skip
    finally:
        subprocess.run(["umount", base / "mnt"], check=True)
    opens = [ln.split() for ln in r.stdout.decode().splitlines() if ln.startswith("open ")]
    assert len(opens) == 13
    want = [_bcc_full_path(bytes.fromhex(cwd), bytes.fromhex(name)) for _, cwd, name in opens]
    assert any(b"/mnt/sub/./bpfcap-cwd-sub" in w for w in want)
    assert any(b"/a/b/../bpfcap-cwd-up" in w for w in want)
    assert any(b"/odd--dir/bpfcap-cwd-odd-0" in w for w in want)

    def paths(*flags: str) -> list[bytes]:
        out = bpfcap("report", "opensnoop", trace, *flags).stdout.splitlines()
        return [ln.split(None, 4)[4] for ln in out[1:] if b"bpfcap-cwd-" in ln]

    assert paths("-F") == want
    # Without -F: the paths as passed.
    assert paths() == [bytes.fromhex(name) for _, _, name in opens]
    # One walk each time a thread opens a relative path in another directory than the
    # one it last recorded (four directories, the return to the first, the second
    # thread's first), not one per open.
    info = bpfcap("info", trace).stdout.decode()
    assert "  cwd                   6 rows" in info, info


def test_recording_without_btf_says_what_is_missing(tmp_path: Path) -> None:
    trace = tmp_path / "t.parquet"
    env = dict(os.environ, BPFCAP_BTF=str(tmp_path / "no-btf"))
    r = bpfcap(
        "record", "-e", "exec,open,tcp", "-o", trace, "--",
        "sh", "-c", "cd /; cat etc/hostname >/dev/null; /bin/true x",
        env=env,
    )  # fmt: skip
    err = r.stderr.decode()
    assert "warning: exec.parent: no kernel BTF" in err and "ppid, pcomm will be null" in err
    assert "warning: cwd: needs cwd.walk (no kernel BTF" in err
    assert "warning: accept: needs accept.socket (no kernel BTF" in err
    info = bpfcap("info", trace).stdout.decode()
    for key in ("exec.parent", "exec.image", "tcp.bytes", "cwd.walk", "accept.socket"):
        assert f"  {key:<14} NOT read" in info, key
    # The reports still work, with a note on what the recording lacks.
    ex = bpfcap("report", "execsnoop", trace)
    assert b"/bin/true x" in ex.stdout
    assert b"bpfcap: not recorded: the parent at the exec's return" in ex.stderr
    op = bpfcap("report", "opensnoop", "-F", trace)
    assert b" etc/hostname" in op.stdout  # as recorded: no directory to join
    assert b"bpfcap: not recorded: the working directory's names" in op.stderr
    acc = bpfcap("report", "tcpaccept", trace)
    assert acc.stdout.splitlines() == [
        b"PID     COMM         IP RADDR            RPORT LADDR            LPORT"
    ]
    # doctor warns (recording still works: exit 0), one line per read.
    doc = bpfcap("doctor", env=env).stdout.decode().splitlines()
    warns = [ln for ln in doc if ln.startswith("WARN kernel struct read ")]
    assert len(warns) == 5 and all("no kernel BTF" in ln for ln in warns)
