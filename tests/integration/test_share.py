"""`bpfcap share` on a real recording with planted secrets: a host name, a directory,
a file name, a command name, an exec argument, an IP address and a user id, all known.
After share, no byte sequence of any secret is anywhere in the file (every column's
decompressed values, the footer's metadata), while every report's figures (counts,
histograms, rows) are the same as the original's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from e2e import bpfcap

from bpfcap.analyze import registry

pytestmark = pytest.mark.root

WORKLOADS = Path(__file__).parent.parent / "workloads"
# Long enough that a token (a letter and a few base32/hex characters) cannot hold one by
# chance; each with characters no token has.
SECRETS = {
    "host": "hQ7-secret-host",
    "dir": "Dz8_Secret_Dir",
    "file": "Fy4_Secret_Notes.txt",
    "tool": "Tk9_SecretTool",  # a command name: at most 15 bytes
    "arg": "Pw0_Secret_Token",
    "out": "Ou5_Secret_Out",
}
SECRET_IP = "198.51.100.73"  # TEST-NET-2: no private range, so it must go
SECRET_UID = 4243
BOOT_ID = Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _have(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)} (util-linux, iproute2)")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A recording of tests/workloads/secrets.py, by a recorder whose host name is the
    secret one (a UTS namespace) and whose workload reaches the secret IP (a network
    namespace whose loopback device has it)."""
    _have("unshare", "ip", "hostname")
    base = tmp_path_factory.mktemp("share")
    out_dir = base / SECRETS["out"]
    out_dir.mkdir()
    trace = out_dir / "t.parquet"
    inner = [
        sys.executable,
        str(WORKLOADS / "secrets.py"),
        str(base),
        SECRET_IP,
        SECRETS["arg"],
        SECRETS["dir"],
        SECRETS["file"],
        SECRETS["tool"],
        str(SECRET_UID),
    ]
    script = (
        f"hostname {SECRETS['host']} && ip link set lo up && "
        f'ip addr add {SECRET_IP}/32 dev lo && exec "$@"'
    )
    record = [str(Path(sys.executable).parent / "bpfcap"), "record", "-e", "all", "-o", str(trace)]
    r = subprocess.run(
        ["unshare", "--uts", "--net", "sh", "-c", script, "sh", *record, "--", *inner],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "done" in r.stdout
    return trace


@pytest.fixture(scope="module")
def shared(recorded: Path) -> tuple[Path, subprocess.CompletedProcess]:
    out = recorded.parent / "public.parquet"
    r = bpfcap("share", recorded, "-o", out)
    return out, r


def secrets_in(data: bytes) -> list[str]:
    found = [k for k, v in SECRETS.items() if v.encode() in data]
    found += ["ip"] * (SECRET_IP.encode() in data or bytes([198, 51, 100, 73]) in data)
    return found


def column_bytes(path: Path) -> bytes:
    """Every value of every column of the file, decompressed and decoded, as bytes."""
    t = pq.read_table(path)
    out = []
    for name in t.column_names:
        col = t[name].combine_chunks()
        while pa.types.is_list(col.type):
            col = col.flatten()
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        out.append(name.encode())
        out += [str(v).encode() if not isinstance(v, bytes) else v for v in col.to_pylist()]
    return b"\n".join(out)


def footer_bytes(path: Path) -> bytes:
    md = pq.read_metadata(path).metadata or {}
    return b"\n".join(k + b"=" + v for k, v in md.items())


def test_the_recording_holds_every_secret(recorded: Path) -> None:
    """The test means something only if the original has them all."""
    data = column_bytes(recorded) + footer_bytes(recorded)
    assert sorted(secrets_in(data)) == sorted([*SECRETS, "ip"])
    assert BOOT_ID.encode() in footer_bytes(recorded)  # it identifies this machine's boot
    uids = pq.read_table(recorded, columns=["uid"])["uid"].to_pylist()
    assert SECRET_UID in uids


def test_no_secret_survives_share(shared) -> None:
    out, r = shared
    assert r.returncode == 0
    assert secrets_in(column_bytes(out)) == []
    assert secrets_in(footer_bytes(out)) == []
    assert secrets_in(out.read_bytes()) == []
    assert BOOT_ID.encode() not in out.read_bytes()
    assert SECRET_UID not in pq.read_table(out, columns=["uid"])["uid"].to_pylist()
    meta = json.loads(pq.read_metadata(out).metadata[b"bpfcap.meta"])
    assert meta["redaction"]["options"]
    # share printed the summary, what was redacted and the size
    stdout, stderr = r.stdout.decode(), r.stderr.decode()
    assert stdout.strip()
    assert "redacted:" in stderr and f"Wrote {out}" in stderr


def test_two_opens_of_one_file_keep_one_token(recorded: Path, shared) -> None:
    out, _ = shared

    def paths(trace: Path) -> list[str]:
        t = pq.read_table(trace, filters=[("kind", "=", "open")], columns=["path"])
        return [p for p in t["path"].to_pylist() if p]

    secret = [p for p in paths(recorded) if p.endswith(SECRETS["file"]) and p.startswith("/")]
    assert len(secret) >= 3  # cat's two, the other user's one
    original = set(paths(recorded))
    redacted = [p for p in paths(out) if p not in original]
    counts = {p: redacted.count(p) for p in redacted}
    assert len(secret) in counts.values()  # one token for the file, as many times
    [token] = [p for p, n in counts.items() if n == len(secret)]
    assert token.endswith(".txt") and token.count("/") == secret[0].count("/")


def figures(trace: Path, report: str, *args: str) -> tuple[list, str]:
    """The numbers of a report's JSON lines (every number but user ids, which redaction
    maps), as a sorted list of tuples; and its stderr."""
    r = bpfcap("report", report, trace, *args, "--format", "json", check=False)
    assert r.returncode == 0, r.stderr
    rows = []
    for line in r.stdout.decode().splitlines():
        rec = json.loads(line)
        rows.append(
            tuple(
                (k, v)
                for k, v in sorted(rec.items())
                if isinstance(v, int | float) and not isinstance(v, bool) and k != "uid"
            )
        )
    return sorted(rows), r.stderr.decode()


ARGS = {"count": ("--by", "comm,kind"), "hist": ("--field", "lat_ns")}


@pytest.mark.parametrize("report", registry.names())
def test_every_report_has_the_same_figures(recorded: Path, shared, report: str) -> None:
    out, _ = shared
    before, _ = figures(recorded, report, *ARGS.get(report, ()))
    after, note = figures(out, report, *ARGS.get(report, ()))
    assert after == before
    assert "is redacted" in note
    assert note.count("is redacted") == 1
