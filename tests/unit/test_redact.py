"""`bpfcap redact`'s transforms (issue 13): tokens injective per class, stable within a
Redactor, different across keys; secrets never survive; allow-lists, families, schema,
row counts, nulls and empty strings kept; the metadata rebuilt from an allow-list.
Property tests run BPFCAP_FUZZ_EXAMPLES examples (as tests/unit/test_fuzz.py)."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import string
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfcap.formats import redact
from bpfcap.formats.errors import TraceFormatError, UsageError
from bpfcap.formats.events import BY_NAME, SCHEMA
from bpfcap.formats.redact import RedactOptions, Redactor
from bpfcap.tests.builders import (
    accept_row,
    cwd_row,
    exec_row,
    ip4,
    meta,
    one_of_each,
    open_row,
    table,
    tcp_row,
)

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(
    max_examples=int(os.environ.get("BPFCAP_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TOKEN_ALPHABET = set(string.ascii_lowercase + "234567")


def redactor(**kw) -> Redactor:
    r = Redactor(RedactOptions(**kw))
    r.learn(meta(), [])
    return r


def one(r: Redactor, kind: str, column: str, value, **row):
    """`value` in `column` of one row of `kind`, redacted."""
    builders = {"open": open_row, "exec": exec_row, "cwd": cwd_row, "tcp": tcp_row}
    t = table([builders[kind](**{column: value}, **row)])
    return r.table(kind, t)[column][0].as_py()


def ipc_bytes(t: pa.Table) -> bytes:
    """Every buffer of a table, uncompressed: what any writer could put in a file."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    return sink.getvalue().to_pybytes()


# --- strategies ----------------------------------------------------------------------

# Path components: random bytes (any but `/` and NUL, UTF-8 or not), and the names the
# rules treat apart.
SPECIAL = [
    b"home",
    b"usr",
    b"tmp",
    b"var",
    b"dev",
    b"shm",
    b"lib",
    b"local",
    b".",
    b"..",
    b"",
    b"a.c",
    b"x.tar.gz",
    b"libz.so.1",
    b".bashrc",
    b"proj",
]
COMPONENT = st.one_of(
    st.sampled_from(SPECIAL),
    st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\0" not in b),
)
PATH = st.builds(
    lambda absolute, comps: (b"/" if absolute else b"") + b"/".join(comps),
    st.booleans(),
    st.lists(COMPONENT, min_size=1, max_size=6),
)
ARG = st.one_of(
    PATH,
    st.binary(max_size=20).filter(lambda b: b"\0" not in b),
    st.sampled_from(
        [
            b"-l",
            b"-la",
            b"--",
            b"-",
            b"--verbose",
            b"--token=x",
            b"--o=/home/a",
            b"-I/usr/include",
            b"-I/home/x",
            b"--=x",
            b"-abcd",
            b"a",
            b".",
        ]
    ),
    st.builds(lambda a, b: a + b, st.sampled_from([b"--x=", b"-I", b"--opt="]), PATH),
)
COMM = st.one_of(
    st.sampled_from([b"kworker/0:1", b"ksoftirqd/3", b"bash", b"", b"kthreadd", b"cabcdef"]),
    st.binary(min_size=1, max_size=15).filter(lambda b: b"\0" not in b),
)
UID = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 999, 1000, 65534, 2**32 - 1]))
V4 = st.binary(min_size=4, max_size=4)
V6 = st.one_of(
    st.binary(min_size=16, max_size=16),
    V4.map(lambda a: bytes(10) + b"\xff\xff" + a),
)


def distinct(strategy, max_size=30):
    return st.lists(strategy, min_size=1, max_size=max_size, unique=True)


# --- injective per class --------------------------------------------------------------


@FUZZ
@given(distinct(PATH), st.booleans())
def test_paths_injective(paths, file):
    r = redactor()
    out = [r.path(p, file) for p in paths]
    assert len(set(out)) == len(paths)


@FUZZ
@given(distinct(ARG))
def test_args_injective(args):
    r = redactor()
    assert len({r.arg(a) for a in args}) == len(args)


@FUZZ
@given(distinct(COMM))
def test_comms_injective(comms):
    r = redactor()
    out = [r.comm(c) for c in comms]
    assert len(set(out)) == len(comms)
    assert all(len(c) <= 15 for c in out if c not in comms)  # a token fits a comm


@FUZZ
@given(distinct(UID, 100))
def test_uids_injective_and_system_ones_kept(uids):
    r = redactor()
    out = [r.uid(u) for u in uids]
    assert len(set(out)) == len(uids)
    for u, o in zip(uids, out):
        kept = u < 1000 or u in (65534, 65535, 2**32 - 1)
        assert o == u if kept else redact.FAKE_UID_MIN <= o < 2**32 - 1


@FUZZ
@given(distinct(V4, 100), st.booleans())
def test_ipv4_injective_fake_in_reserved_range(addrs, keep_private):
    r = redactor(keep_private=keep_private)
    out = [r.address(2, a + bytes(12)) for a in addrs]
    assert len(set(out)) == len(addrs)
    for a, o in zip(addrs, out):
        assert o[4:] == bytes(12)
        ip, new = ipaddress.IPv4Address(a), ipaddress.IPv4Address(o[:4])
        kept = (
            ip.is_loopback
            or a in (bytes(4), b"\xff" * 4)
            or keep_private
            and any(ip in ipaddress.ip_network(n) for n in redact.PRIVATE_NETWORKS if "." in n)
        )
        if kept:
            assert new == ip
        else:
            assert new in ipaddress.ip_network("240.0.0.0/4") and o[:4] != b"\xff" * 4


@FUZZ
@given(distinct(V6, 100))
def test_ipv6_injective_fake_in_documentation_range(addrs):
    r = redactor()
    out = [r.address(10, a) for a in addrs]
    assert len(set(out)) == len(addrs)
    for a, o in zip(addrs, out):
        ip = ipaddress.IPv6Address(a)
        if ip.ipv4_mapped is not None:  # as the plain IPv4 address
            assert o == bytes(10) + b"\xff\xff" + r.address(2, a[12:] + bytes(12))[:4]
        elif a in (bytes(16), bytes(15) + b"\x01"):
            assert o == a
        else:
            assert ipaddress.IPv6Address(o) in ipaddress.ip_network("2001:db8::/32")


# --- stable within a Redactor, different across keys ----------------------------------


@FUZZ
@given(st.lists(COMPONENT.filter(lambda c: c not in (b"", b".", b"..")), min_size=1, max_size=5))
def test_components_share_tokens_across_columns_and_kinds(comps):
    """A directory's names get the same ids in an open path, an exec filename, an
    argument and a working directory (cwd dirs: from the directory up)."""
    r = redactor()
    d = b"/srv/" + b"/".join(comps)
    opened = one(r, "open", "path", d + b"/f.c")
    execd = one(r, "exec", "filename", d + b"/f.c")
    arg = one(r, "exec", "args", [d + b"/f.c"])[0]
    cwd = one(r, "cwd", "dirs", [*reversed(comps), b"srv"])
    assert opened == execd == arg
    assert opened.rsplit(b"/", 1)[0] == b"/" + b"/".join(reversed(cwd))
    # relative: the same ids for the same names
    assert one(r, "open", "path", b"/".join(comps) + b"/f.c") == opened[len(b"/srv/") :]


@FUZZ
@given(distinct(PATH, 10), distinct(ARG, 10), distinct(COMM, 10))
def test_same_value_same_token_across_calls_and_tables(paths, args, comms):
    r = redactor()
    first = ([r.path(p) for p in paths], [r.arg(a) for a in args], [r.comm(c) for c in comms])
    t = table([exec_row(filename=p, args=args, comm=c, pcomm=c) for p, c in zip(paths, comms)])
    out = r.table("exec", t)
    assert out["filename"].to_pylist() == first[0][: len(out)]
    assert out["comm"].to_pylist() == out["pcomm"].to_pylist() == first[2][: len(out)]
    assert out["args"][0].as_py() == first[1]
    assert ([r.path(p) for p in paths], [r.arg(a) for a in args]) == first[:2]
    assert [r.comm(c) for c in comms] == first[2]


def test_two_redactors_give_other_tokens():
    a, b = redactor(), redactor()
    values = [b"/home/alice/secret.c", b"/tmp/x/y"]
    assert all(a.path(v) != b.path(v) for v in values)
    assert a.comm(b"secret") != b.comm(b"secret")
    assert a.arg(b"secret") != b.arg(b"secret")
    assert a.uid(1000) != b.uid(1000)
    assert a.address(2, ip4("8.8.8.8")) != b.address(2, ip4("8.8.8.8"))
    assert a.hostname("alice") != b.hostname("alice")
    # the same key: the same tokens (what makes a redaction repeatable given the key)
    k = os.urandom(32)
    c, d = Redactor(RedactOptions(), key=k), Redactor(RedactOptions(), key=k)
    assert [c.path(v) for v in values] == [d.path(v) for v in values]


# --- secrets never survive --------------------------------------------------------------

# A secret holds an upper-case letter (no token, flag, kernel-thread pattern or extension
# does) and at least 8 characters: found in the output only if it leaked.
SECRET = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(string.ascii_uppercase),
    st.text(string.ascii_letters + string.digits + "_-", min_size=7, max_size=14),
)


@FUZZ
@given(
    SECRET,
    st.sampled_from(["", ".c", ".tar.gz", ".so.1"]),
    st.integers(0x01000000, 0xDFFFFFFF).filter(lambda n: ipaddress.IPv4Address(n).is_global),
)
def test_secrets_never_survive(secret, ext, ip):
    s = secret.encode()
    public = ipaddress.IPv4Address(ip)
    rows_meta = meta(
        host={"hostname": f"{secret}-laptop", "os": "Debian", "kernel": "6.1"},
        command_line=[
            "bpfcap",
            "record",
            "-o",
            f"/home/{secret}/t.parquet",
            "--",
            f"./{secret}",
            f"--token={secret}",
            "-l",
            secret,
        ],
        settings={
            "command": [f"./{secret}", f"-I/home/{secret}"],
            "comm": secret[:15],
            "events": ["open"],
            "pid": None,
        },
        processes=[[1, 0, "systemd"], [7, 1, secret[:15]], [8, 2, "kworker/0:1"]],
        stop_reason=f"killed by {secret}",
        slice={
            "source_sha256": "00",
            "window": {},
            "filters": {
                "comm": [secret],
                "where": f"path ~ '{secret}'",
                "pid": [1],
                "secret": secret,
            },
        },
        **{f"x{secret}": 1},
    )
    r = Redactor(RedactOptions())
    r.learn(rows_meta, [f"/home/{secret}/bin/tool".encode(), b"/usr/bin/ls"])
    tables = [
        r.table(
            "open",
            table(
                [
                    open_row(path=f"/home/{secret}/{secret}{ext}", comm=s[:15]),
                    open_row(path=f"{secret}/x{secret}y{ext}"),
                ]
            ),
        ),
        r.table(
            "exec",
            table(
                [
                    exec_row(
                        filename=f"/tmp/{secret}",
                        pcomm=s[:15],
                        args=[s, b"--key=" + s, b"-I/var/" + s, b"/" + s],
                    )
                ]
            ),
        ),
        r.table("cwd", table([cwd_row(dirs=[s, b"home"]), cwd_row(dirs=[b"a", s, b"/", s])])),
        r.table("tcp", table([tcp_row(daddr=public.packed + bytes(12))])),
    ]
    out_meta = json.dumps(r.meta(rows_meta))
    assert secret not in out_meta
    for t in tables:
        assert s not in ipc_bytes(t)
    assert public.packed not in tables[3]["daddr"][0].as_py()
    assert json.loads(out_meta)["redaction"]["dropped"] == [
        "slice.filters.secret",
        "<redacted>",
    ]


def test_key_never_in_output():
    key = os.urandom(32)
    r = Redactor(RedactOptions(), key=key)
    r.learn(meta(), [])
    t = r.table("exec", table([exec_row(args=[b"x" * 40]), exec_row(filename=b"/home/a/b")]))
    m = r.meta(meta(host={"hostname": "h"}))
    forms = [key, key.hex().encode(), base64.b64encode(key), base64.b32encode(key).lower()]
    blob = ipc_bytes(t) + json.dumps(m).encode() + repr(r).encode()
    assert not any(f in blob for f in forms[:3])
    assert not any(f[:16] in blob.lower() for f in forms[1:])
    assert "key" not in json.dumps(m["redaction"])


# --- allow-lists, shapes, nulls ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        b"/usr/lib/x86_64-linux-gnu/libc.so.6",
        b"/etc/passwd",
        b"/proc/self/status",
        b"/sys/fs/cgroup/cpu.max",
        b"/dev/null",
        b"/lib64/ld-linux-x86-64.so.2",
        b"/",
        b"",
        b".",
        b"..",
        b"/dev/shm",
        b"/tmp",
        b"/home",
    ],
)
def test_system_paths_kept(path):
    assert redactor().path(path) == path


def test_path_rules():
    r = redactor()
    out = r.path(b"/home/alice/proj/a.c")
    m = re.fullmatch(rb"/home/u([a-z2-7]{6,})/d([a-z2-7]{6,})/f([a-z2-7]{6,})\.c", out)
    assert m
    alice, proj, _a = m.groups()
    # the same names, other roles: the same ids
    assert r.path(b"/srv/alice/proj", file=False) == b"/srv/d" + alice + b"/d" + proj
    assert r.path(b"proj/") == b"d" + proj + b"/"
    assert r.path(b"./proj//x/../y.tar.gz").startswith(b"./d" + proj + b"//d")
    assert r.path(b"/tmp/proj/y.tar.gz").endswith(b".tar.gz")
    assert r.path(b"/var/tmp/proj").startswith(b"/var/tmp/f")
    assert r.path(b"/usr/local/bin/tool").startswith(b"/usr/local/bin/f")
    assert r.path(b"/dev/shm/sem.alice").startswith(b"/dev/shm/f")
    assert r.path(b"/dev/shmx") == b"/dev/shmx"
    # `..` after a system prefix: what follows the prefix is redacted
    out = r.path(b"/usr/lib/../../home/alice")
    assert out.startswith(b"/usr/d") and out.endswith(
        b"/../../d" + out.split(b"/")[-2][1:] + b"/f" + alice
    )
    assert b"home" not in out and b"lib" not in out
    assert r.path(b"/opt/lib/libfoo.so.1.2.3").endswith(b".so.1.2.3")
    assert r.path(b"/opt/a/b.secret").count(b"secret") == 0
    # not UTF-8
    out = r.path(b"/home/\xff\xfe/x\x80.py")
    assert out.startswith(b"/home/u") and out.endswith(b".py") and out.isascii()


def test_keep_paths_whole_components():
    r = redactor(keep_paths=("/srv/app/",))
    assert r.path(b"/srv/app/x/y.c") == b"/srv/app/x/y.c"
    assert r.path(b"/srv/app") == b"/srv/app"
    assert r.path(b"/srv/apple/x") != b"/srv/apple/x"
    assert r.path(b"/srv/app/../secret").count(b"secret") == 0
    with pytest.raises(UsageError):
        Redactor(RedactOptions(keep_paths=("srv",)))


def test_arg_rules():
    r = redactor(keep_args=(r"[0-9]+", "build"))
    assert [r.arg(a) for a in [b"-l", b"-la", b"-9", b"--", b"-", b"--dry-run", b"", b"build"]] == [
        b"-l",
        b"-la",
        b"-9",
        b"--",
        b"-",
        b"--dry-run",
        b"",
        b"build",
    ]
    assert r.arg(b"42") == b"42" and r.arg(b"42x") != b"42x"
    assert re.fullmatch(rb"a[a-z2-7]{6,}", r.arg(b"secret"))
    assert re.fullmatch(rb"--token=a[a-z2-7]{6,}", r.arg(b"--token=xyz"))
    assert r.arg(b"--out=/home/alice/t.c").startswith(b"--out=/home/u")
    assert r.arg(b"-I/usr/include") == b"-I/usr/include"
    assert r.arg(b"-I/home/alice").startswith(b"-I/home/u")
    assert r.arg(b"-abcd") != b"-abcd"  # more than 3: not a short flag
    assert r.arg(b"--Secret") != b"--Secret"  # long options are lower case
    assert r.arg(b"./tool").startswith(b"./f")
    with pytest.raises(UsageError):
        Redactor(RedactOptions(keep_args=("(",)))


def test_comm_rules():
    m = meta(processes=[[2, 0, "kthreadd"], [50, 2, "irq/24-ACPI:Ged"], [60, 1, "secretd"]])
    r = Redactor(RedactOptions())
    r.learn(m, [b"/usr/bin/python3.11", b"/home/a/bin/secret-tool", b"/usr/bin/a-very-long-name-x"])
    for kept in [
        b"kthreadd",
        b"irq/24-ACPI:Ged",
        b"python3.11",
        b"a-very-long-nam",
        b"",
        b"kworker/0:1",
        b"kworker/u4:2-events",
        b"ksoftirqd/0",
        b"migration/1",
        b"swapper/0",
        b"rcu_preempt",
        b"cpuhp/0",
        b"idle_inject/0",
        b"jbd2/vda1-8",
        b"rcu_tasks_kthre",
        b"kworker/R-rcu_g",
    ]:
        assert r.comm(kept) == kept, kept
    for gone in [
        b"secretd",
        b"secret-tool",
        b"kworker/alice",
        b"rcu_alice",
        b"ksoftirqd/x",
        b"jbd2/Alice-1",
        b"python3",
    ]:
        assert re.fullmatch(rb"c[a-z2-7]{6,}", r.comm(gone)), gone
    assert redactor(keep_comm=True).comm(b"secretd") == b"secretd"
    # learn() comes first, once
    with pytest.raises(RuntimeError):
        r.learn(m, [])


def test_comm_token_never_a_kept_name():
    """A learned name shaped like a token does not make two comms share one."""
    r = Redactor(RedactOptions(), key=bytes(32))
    token = Redactor(RedactOptions(), key=bytes(32)).comm(b"secret")
    r.learn(meta(), [b"/usr/bin/" + token])
    assert r.comm(token) == token and r.comm(b"secret") != token


def test_uid_column_and_family_kept():
    r = redactor()
    v6 = ipaddress.IPv6Address("2a00:1450::1").packed
    t = table(
        [
            tcp_row(uid=0, saddr=ip4("127.0.0.1"), daddr=ip4("8.8.4.4")),
            tcp_row(uid=1000, family=10, saddr=v6, daddr=bytes(15) + b"\x01"),
            accept_row(uid=65534, saddr=ip4("10.1.2.3")),
        ]
    )
    out = r.table("tcp", t)
    assert out["family"].to_pylist() == [2, 10, 2]
    assert out["uid"].to_pylist()[0] == 0 and out["uid"].to_pylist()[2] == 65534
    assert out["uid"].to_pylist()[1] >= redact.FAKE_UID_MIN
    assert out["saddr"][0].as_py() == ip4("127.0.0.1")
    assert out["daddr"][1].as_py() == bytes(15) + b"\x01"
    assert ipaddress.IPv6Address(out["saddr"][1].as_py()) in ipaddress.ip_network("2001:db8::/32")
    assert out["saddr"][2].as_py() != ip4("10.1.2.3")
    assert redactor(keep_private=True).table("tcp", t)["saddr"][2].as_py() == ip4("10.1.2.3")


def test_every_kind_schema_rows_nulls_and_empties_kept():
    r = redactor()
    rows = one_of_each() + [
        open_row(path=b""),
        exec_row(args=[], filename=b"", comm=b"", pcomm=None),
        exec_row(args=None),
        exec_row(args=[b"", b"-x"]),
        cwd_row(dirs=[]),
        cwd_row(dirs=None),
        cwd_row(dirs=[b""]),
        tcp_row(saddr=None, daddr=None),
    ]
    for kind in BY_NAME:
        t = table([x for x in rows if x["kind"] == kind])
        out = r.table(kind, t)
        assert out.schema == t.schema and out.num_rows == t.num_rows
        for name in t.column_names:
            a, b = t[name].to_pylist(), out[name].to_pylist()
            assert [x is None for x in a] == [x is None for x in b], (kind, name)
            if name in ("args", "dirs"):
                assert [x and len(x) for x in a] == [x and len(x) for x in b]
                assert [[y == b"" for y in x or []] for x in a] == [
                    [y == b"" for y in x or []] for x in b
                ]
            elif a and isinstance(next((x for x in a if x is not None), None), bytes):
                assert [x == b"" for x in a] == [x == b"" for x in b], (kind, name)
    # a subset of columns, sliced, in several chunks
    t = table([open_row(path=f"/home/a/{i}".encode(), comm=b"x") for i in range(10)])
    t = pa.concat_tables([t.slice(2, 3), t.slice(7, 3)]).select(["comm", "path", "kind"])
    out = r.table("open", t)
    assert out.schema == t.schema and out.num_rows == 6
    assert out["path"].to_pylist() == [r.path(p) for p in t["path"].to_pylist()]


def test_string_columns_too():
    """The on-disk format 2 types (UTF-8 strings) are redacted the same way."""
    r = redactor()
    t = pa.table(
        {
            "path": pa.array(["/home/alice/a.c", None]),
            "args": pa.array([["--x=/home/alice", "-l"], None], pa.list_(pa.string())),
            "dirs": pa.array([["alice", "home"], []], pa.list_(pa.string())),
        }
    )
    out = r.table("exec", t)
    assert out.schema == t.schema
    assert out["path"][0].as_py() == r.path(b"/home/alice/a.c").decode()
    assert out["args"][0].as_py()[1] == "-l"
    assert out["dirs"].to_pylist()[1] == []


def test_unknown_columns_and_addresses_without_family_refused():
    r = redactor()
    with pytest.raises(TraceFormatError):
        r.table("open", pa.table({"secret_notes": pa.array([b"x"])}))
    with pytest.raises(TraceFormatError):
        r.table("tcp", table([tcp_row()]).select(["saddr"]))


# --- metadata --------------------------------------------------------------------------


def test_meta_allow_list_and_record():
    r = Redactor(RedactOptions(keep_args=("-v",), keep_private=True))
    m = meta(
        format_version=2,
        bpfcap_version="0.1.0",
        attached_ns=5,
        disks=[[1, "vda"]],
        probes=[],
        kernel_reads={},
        agent={"cpu_user_s": 1.0},
        missed_runs={},
        tree_filter_full=0,
        segment=7,  # a file of record --rotate: segments 5 to 7
        first_segment=5,
        host={
            "hostname": "alice-pc",
            "boot_id": "4f1c2d3e-0000-4000-8000-00000000beef",
            "machine": "x86_64",
            "cpus": 2,
            "serial": "X1",
        },
        command_line=["bpfcap", "record", "-o", "/home/alice/t.parquet"],
        settings={"events": ["open"], "comm": None, "command": None, "user": "alice"},
        stop_reason="SIGINT",
        mystery={"a": 1},
    )
    r.learn(m, [])
    out = r.meta(m)
    for k in redact.SAFE_META_KEYS:
        assert out.get(k) == m.get(k)
    # the boot id is removed as a known identifier (not listed as an unknown key)
    assert out["host"] == {"hostname": r.hostname("alice-pc"), "machine": "x86_64", "cpus": 2}
    assert re.fullmatch(r"host-[a-z2-7]{6,}", out["host"]["hostname"])
    assert out["command_line"][2] == "-o" and "alice" not in out["command_line"][3]
    assert out["settings"] == {"events": ["open"], "comm": None, "command": None}
    assert out["stop_reason"] == "SIGINT"
    assert out["redaction"] == {
        "format": 1,
        "options": {
            "keep_args": ["-v"],
            "keep_paths": [],
            "keep_comm": False,
            "keep_private": True,
        },
        "redacted": ["paths", "args", "comms", "hosts"],
        "dropped": ["host.serial", "settings.user", "mystery"],
    }
    assert r.report()["hosts"] == 1
    # the process snapshot's comms get the rows' tokens
    assert [c for _, _, c in out["processes"]] == [
        r.comm(c.encode()).decode() for _, _, c in m["processes"]
    ]
    assert r.meta(dict(m, stop_reason="because of alice"))["stop_reason"] == "<redacted>"


def test_meta_slice_and_already_redacted():
    r = redactor()
    m = meta(
        slice={
            "source_sha256": "ab",
            "window": {"since_ns": 1},
            "filters": {
                "pid": [1],
                "tree": [],
                "kinds": ["open"],
                "comm": ["alice"],
                "where": "path ~ 'alice'",
            },
        }
    )
    out = r.meta(m)["slice"]
    assert out["source_sha256"] == "ab" and out["window"] == {"since_ns": 1}
    assert out["filters"]["pid"] == [1] and out["filters"]["kinds"] == ["open"]
    assert out["filters"]["where"] == "<redacted>"
    assert out["filters"]["comm"] == [r.comm(b"alice").decode()]
    done = r.meta(meta())
    with pytest.raises(UsageError, match="already redacted"):
        redactor().meta(done)
    with pytest.raises(UsageError, match="already redacted"):
        Redactor(RedactOptions()).learn(done, [])


def test_real_trace_meta():
    """A real recording's metadata: nothing dropped, the redacted keys changed."""
    from bpfcap.formats.trace import open_trace

    m = open_trace(ROOT / "sample-traces" / "v2-kernel.parquet").meta
    r = Redactor(RedactOptions())
    r.learn(m, [b"/usr/bin/python3"])
    out = r.meta(m)
    assert out["redaction"]["dropped"] == []
    assert set(out) == set(m) | {"redaction"}
    assert out["host"]["hostname"] != m["host"]["hostname"]
    kthreads = {c for p, pp, c in m["processes"] if pp == 2}
    assert all(c in kthreads for p, pp, c in out["processes"] if pp == 2)


# --- docs --------------------------------------------------------------------------------


def test_doc_lists_the_allow_lists():
    doc = (ROOT / "docs" / "redaction.md").read_text()
    assert redact.allow_lists_markdown() in doc, (
        "docs/redaction.md: paste formats.redact.allow_lists_markdown() between its markers"
    )


def test_tokens_never_look_like_kept_names():
    """A token (role letter, >= 6 base32 characters) is never a standard directory's or
    system prefix's name, so a redacted path cannot read as a kept one."""
    token = re.compile(r"[duf][a-z2-7]{6,}")
    names = {
        c
        for p in redact.SYSTEM_PREFIXES + redact.STRUCTURE_PREFIXES + redact.USER_NAMED_PREFIXES
        for c in p.strip("/").split("/")
    }
    assert not any(token.fullmatch(n) for n in names)
    for p in redact.USER_NAMED_PREFIXES:
        assert any(p.startswith(s + "/") for s in redact.SYSTEM_PREFIXES)
    assert set("abcdefghijklmnopqrstuvwxyz234567") == TOKEN_ALPHABET
    assert all(e.isascii() and "." not in e for e in redact.EXTENSIONS)
    assert set(SCHEMA.names) <= redact.SAFE_COLUMNS | {
        "path",
        "filename",
        "comm",
        "pcomm",
        "args",
        "dirs",
        "uid",
        "saddr",
        "daddr",
        "kind",
    }
