"""Struct member offsets from the running kernel's BTF (/sys/kernel/btf/vmlinux).

bpfcap's BPF code reads no kernel struct through header files (the headers on a host
need not match its kernel). Where a report needs a struct member that no tracepoint
carries (tcplife's bytes received and acked, in struct tcp_sock), its offset comes from
the kernel's own type information, read here at load time, and is compiled in as a
constant. No BTF, or no such member: None, and the column stays null.

The format is the kernel's (Documentation/bpf/btf.rst): a header, a type section of
variable-length records, a string section.
"""

from __future__ import annotations

import struct
from pathlib import Path

VMLINUX = Path("/sys/kernel/btf/vmlinux")
_MAGIC = 0xEB9F
_STRUCT, _UNION = 4, 5
# Bytes that follow the 12-byte common record, by kind (those with per-member records
# give the size of one member; they are multiplied by vlen).
_FIXED_EXTRA = {1: 4, 3: 12, 14: 4, 17: 4}
_PER_MEMBER = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}


class BTFError(ValueError):
    pass


def _parse(data: bytes) -> tuple[list[tuple[int, int, int, int, int]], bytes]:
    """[(kind, name_off, vlen, kind_flag, offset of its member records)] indexed by type
    id - 1, and the string section."""
    if len(data) < 24:
        raise BTFError("BTF too short")
    magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
    if magic != _MAGIC:
        raise BTFError("not little-endian BTF")
    type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
    types_at = hdr_len + type_off
    strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
    types = []
    pos, end = types_at, types_at + type_len
    while pos < end:
        name_off, info, _size = struct.unpack_from("<III", data, pos)
        kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
        types.append((kind, name_off, vlen, kflag, pos + 12))
        pos += 12 + _FIXED_EXTRA.get(kind, 0) + _PER_MEMBER.get(kind, 0) * vlen
    return types, strings


def _name(strings: bytes, off: int) -> str:
    return strings[off : strings.index(b"\0", off)].decode()


def member_offsets(struct_name: str, members: list[str], path: Path = VMLINUX) -> dict[str, int]:
    """Byte offsets of `members` of `struct struct_name` (members of anonymous structs and
    unions inside it included); members not found are absent. Raises OSError if there is
    no BTF, BTFError if it cannot be parsed."""
    data = path.read_bytes()
    types, strings = _parse(data)
    want = struct_name.encode() + b"\0"
    found: dict[str, int] = {}
    for kind, name_off, vlen, kflag, at in types:
        if kind == _STRUCT and strings[name_off : name_off + len(want)] == want:
            _walk(data, types, strings, vlen, kflag, at, 0, set(members), found)
            break
    return found


def _walk(data, types, strings, vlen, kflag, at, base_bits, wanted, found) -> None:
    for i in range(vlen):
        name_off, type_id, offset = struct.unpack_from("<III", data, at + 12 * i)
        bits = base_bits + (offset & 0xFFFFFF if kflag else offset)
        if name_off:
            name = _name(strings, name_off)
            if name in wanted and bits % 8 == 0:
                found[name] = bits // 8
        elif 0 < type_id <= len(types):  # an anonymous struct or union: look inside
            k, _n, v, kf, sub = types[type_id - 1]
            if k in (_STRUCT, _UNION):
                _walk(data, types, strings, v, kf, sub, bits, wanted, found)
