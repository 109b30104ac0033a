"""Kernel struct members located in BTF (capture/btf.py): every member the BPF code reads
is checked against an independent reader of the same kernel's BTF (`bpftool btf dump`,
raw format), and the parser against hand-built BTF (anonymous members, nesting,
bitfields, typedef chains, sizes), and what a host without BTF records."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from bpfcap.capture.bpfgen import generate
from bpfcap.capture.btf import BTF, VMLINUX, BTFError, locate, member_macro, resolve_reads
from bpfcap.formats.events import EVENT_TYPES

READS = [(t, r) for t in EVENT_TYPES for r in t.kernel_reads]
MEMBERS = sorted({m for _, r in READS for m, _ in r.members})


def _need_btf_and_bpftool() -> str:
    """bpftool's path; skip where the host lacks it or the kernel's BTF (CI has both:
    `make test` installs bpftool, and its kernel has BTF)."""
    bpftool = shutil.which("bpftool") or next(
        (p for p in ("/usr/sbin/bpftool", "/sbin/bpftool") if os.path.exists(p)), None
    )
    why = None if bpftool else "bpftool not installed"
    if not VMLINUX.exists():
        why = f"no kernel BTF at {VMLINUX}"
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the BTF cross-check must run in CI, but: {why}")
        pytest.skip(why)
    return bpftool


_TYPE_LINE = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'(.*)$")
_MEMBER_LINE = re.compile(r"^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)(?: bitfield_size=(\d+))?")


def _bpftool_types(bpftool: str) -> dict[int, dict]:
    """The kernel's types as bpftool prints them: id -> kind, name, attributes, members."""
    out = subprocess.run(
        [bpftool, "btf", "dump", "file", str(VMLINUX)], capture_output=True, text=True, check=True
    ).stdout
    types: dict[int, dict] = {}
    cur: dict | None = None
    for line in out.splitlines():
        m = _TYPE_LINE.match(line)
        if m:
            attrs = dict(re.findall(r"(\w+)=(\S+)", m.group(4)))
            cur = {"kind": m.group(2), "name": m.group(3), "attrs": attrs, "members": []}
            types[int(m.group(1))] = cur
            continue
        m = _MEMBER_LINE.match(line)
        if m and cur is not None and cur["kind"] in ("STRUCT", "UNION"):
            name, tid, bits, bf = m.groups()
            cur["members"].append((name, int(tid), int(bits), int(bf or 0)))
    return types


def _bpftool_member(types: dict[int, dict], member: str) -> tuple[int, int]:
    """(byte offset, size) of `struct.a.b` computed from bpftool's dump alone."""

    def resolve(tid: int) -> dict:
        while types[tid]["kind"] in ("TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"):
            tid = int(types[tid]["attrs"]["type_id"])
        return types[tid]

    def size(tid: int) -> int:
        t = resolve(tid)
        if t["kind"] == "PTR":
            return 8
        if t["kind"] == "ARRAY":
            return size(int(t["attrs"]["type_id"])) * int(t["attrs"]["nr_elems"])
        return int(t["attrs"]["size"])

    def find(t: dict, name: str) -> tuple[int, int, int] | None:
        for mname, tid, bits, bf in t["members"]:
            if mname == name:
                return tid, bits, bf
            if mname == "(anon)" and resolve(tid)["kind"] in ("STRUCT", "UNION"):
                inner = find(resolve(tid), name)
                if inner:
                    return inner[0], bits + inner[1], inner[2]
        return None

    struct_name, *path = member.split(".")
    t = next(
        t
        for t in types.values()
        if t["kind"] == "STRUCT" and t["name"] == struct_name and t["members"]
    )
    bits = nbytes = 0
    for name in path:
        tid, at, bf = find(t, name)
        bits += at
        nbytes = bf // 8 if bf else size(tid)
        t = resolve(tid)
    return bits // 8, nbytes


@pytest.fixture(scope="module")
def kernel_btf() -> tuple[BTF, dict[int, dict]]:
    bpftool = _need_btf_and_bpftool()
    return BTF.from_file(), _bpftool_types(bpftool)


@pytest.mark.parametrize("member", MEMBERS)
def test_every_member_read_matches_bpftool(member: str, kernel_btf) -> None:
    btf, types = kernel_btf
    struct_name, _, path = member.partition(".")
    assert btf.member(struct_name, path) == _bpftool_member(types, member)


def test_every_read_is_usable_on_this_kernel(kernel_btf) -> None:
    offsets, said = resolve_reads(EVENT_TYPES)
    assert {k: v["reason"] for k, v in said.items() if v["status"] != "btf"} == {}
    assert set(offsets) == {f"{t.name}.{r.name}" for t, r in READS}


def test_a_host_without_btf_records_null_and_says_why(tmp_path: Path) -> None:
    offsets, said = resolve_reads(EVENT_TYPES, tmp_path / "none")
    assert offsets == {}
    assert {v["status"] for v in said.values()} == {"missing"}
    assert all(v["reason"].startswith("no kernel BTF (No such file") for v in said.values())
    # The program is generated without any read: no struct member is touched.
    program = generate(EVENT_TYPES, set(), self_tgid=1, kernel_offsets=offsets)
    assert not [f for f in program.cflags if f.startswith(("-DHAVE_KREAD", "-DKF_"))]


def test_reads_compile_in_as_offsets() -> None:
    program = generate(
        EVENT_TYPES, set(), self_tgid=1, kernel_offsets={"exec.parent": {"task_struct.tgid": 7}}
    )
    assert "-DHAVE_KREAD_exec_parent" in program.cflags
    assert "-DKF_task_struct__tgid=7" in program.cflags
    assert not any(f.startswith("-DHAVE_KREAD_cwd") for f in program.cflags)
    assert member_macro("sock.__sk_common.skc_num") == "KF_sock____sk_common__skc_num"


# -- the parser on hand-built BTF ---------------------------------------------------------


class _Builder:
    """A little-endian BTF blob, type by type (ids from 1)."""

    def __init__(self) -> None:
        self.types = b""
        self.strings = b"\0"
        self.n = 0

    def s(self, name: str) -> int:
        if not name:
            return 0
        off = len(self.strings)
        self.strings += name.encode() + b"\0"
        return off

    def add(self, kind: int, name: str, vlen: int, size_or_type: int, extra=b"", kflag=0) -> int:
        info = (kflag << 31) | (kind << 24) | vlen
        self.types += struct.pack("<III", self.s(name), info, size_or_type) + extra
        self.n += 1
        return self.n

    def int_(self, name: str, size: int) -> int:
        return self.add(1, name, 0, size, struct.pack("<I", size * 8))

    def struct_(self, name: str, size: int, members, kflag=0, kind=4) -> int:
        extra = b"".join(struct.pack("<III", self.s(n), t, off) for n, t, off in members)
        return self.add(kind, name, len(members), size, extra, kflag)

    def blob(self) -> bytes:
        hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types),
                          len(self.strings))  # fmt: skip
        return hdr + self.types + self.strings


def test_parser_follows_anonymous_members_nesting_typedefs_and_bitfields() -> None:
    b = _Builder()
    u32 = b.int_("unsigned int", 4)
    u16 = b.int_("short unsigned int", 2)
    ptr = b.add(2, "", 0, u32)  # a pointer
    pid_t = b.add(8, "pid_t", 0, u32)  # typedef
    const_pid = b.add(10, "", 0, pid_t)  # const pid_t
    arr = b.add(3, "", 0, 0, struct.pack("<III", u16, u32, 8))  # u16[8]
    inner = b.struct_("", 8, [("hidden", u32, 32)])  # anonymous struct
    union = b.struct_("", 8, [("", inner, 0), ("alias", ptr, 0)], kind=5)
    path = b.struct_("path", 16, [("mnt", ptr, 0), ("dentry", ptr, 64)])
    # kflag: offsets carry a bitfield size in their high 8 bits.
    b.struct_(
        "thing", 64,
        [("pid", const_pid, 0), ("", union, 64), ("pwd", path, 128), ("names", arr, 256),
         ("proto", u16, (8 << 24) | 384), ("flag", u32, (1 << 24) | 393)],
        kflag=1,
    )  # fmt: skip
    btf = BTF(b.blob())
    assert btf.member("thing", "pid") == (0, 4)
    assert btf.member("thing", "hidden") == (12, 4)  # inside the anonymous union's struct
    assert btf.member("thing", "alias") == (8, 8)
    assert btf.member("thing", "pwd.dentry") == (24, 8)
    assert btf.member("thing", "names") == (32, 16)
    assert btf.member("thing", "proto") == (48, 1)  # an 8-bit, byte-aligned bitfield
    with pytest.raises(BTFError, match="not byte-aligned"):
        btf.member("thing", "flag")
    with pytest.raises(KeyError, match="struct thing.nope"):
        btf.member("thing", "nope")
    with pytest.raises(KeyError, match="struct other"):
        btf.member("other", "x")
    assert locate({"thing.pid": 4, "thing.pwd.mnt": 8}, btf) == (
        {"thing.pid": 0, "thing.pwd.mnt": 16},
        None,
    )
    assert (
        locate({"thing.pid": 8}, btf)[1]
        == "thing.pid is 4 bytes in this kernel, the BPF code reads 8"
    )
    assert locate({"thing.gone": 8}, btf)[1] == "struct thing.gone not in the kernel's BTF"


@pytest.mark.parametrize("data", [b"", b"\x9f\xeb" + b"\0" * 30, b"\0" * 64])
def test_parser_refuses_what_is_not_btf(data: bytes) -> None:
    with pytest.raises(BTFError):
        BTF(data)
