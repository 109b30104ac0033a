"""Kernel struct members located in the running kernel's BTF (/sys/kernel/btf/vmlinux).

This is the one way bpfcap's BPF code reads a kernel struct. The kernel headers on a host
need not match its kernel (here they are Debian's 6.1 headers on a 6.18 kernel), so no
struct type from a header is ever dereferenced: each member an event type reads is
declared in formats/events.py (`KernelRead`), its byte offset and size are found here in
the kernel's own type information at record time, checked against the size the BPF code
expects, and compiled in as a constant (`KF_<struct>__<member>`, see member_macro()). The
BPF code then reads `base + KF_...` with bpf_probe_read_kernel. Without BTF, or where a
member is missing or has another size, the read is left out and its columns stay null;
the recording and the reports say which (recorder.resolve_kernel_reads()).

The format is the kernel's (Documentation/bpf/btf.rst): a header, a type section of
variable-length records, a string section.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpfcap.formats.schema import EventType

VMLINUX = Path("/sys/kernel/btf/vmlinux")


def vmlinux() -> Path:
    """The kernel's BTF: /sys/kernel/btf/vmlinux, or $BPFCAP_BTF (tests use it to record
    as on a host without BTF)."""
    return Path(os.environ.get("BPFCAP_BTF") or VMLINUX)


_MAGIC = 0xEB9F

# BTF kinds (include/uapi/linux/btf.h).
_INT, _PTR, _ARRAY, _STRUCT, _UNION, _ENUM = 1, 2, 3, 4, 5, 6
_TYPEDEF, _VOLATILE, _CONST, _RESTRICT = 8, 9, 10, 11
_FLOAT, _TYPE_TAG, _ENUM64 = 16, 18, 19
# Kinds that only qualify another type: followed to reach the type itself.
_QUALIFIERS = {_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG}
# Kinds whose `size` field is the type's size in bytes.
_SIZED = {_INT, _STRUCT, _UNION, _ENUM, _FLOAT, _ENUM64}
# Bytes that follow the 12-byte common record, by kind (those with per-member records
# give the size of one member; they are multiplied by vlen).
_FIXED_EXTRA = {_INT: 4, _ARRAY: 12, 14: 4, 17: 4}
_PER_MEMBER = {_STRUCT: 12, _UNION: 12, _ENUM: 8, 13: 8, 15: 12, _ENUM64: 12}
POINTER_SIZE = 8  # x86_64 and arm64, the architectures bpfcap records on


class BTFError(ValueError):
    pass


@dataclass(frozen=True)
class _Type:
    kind: int
    name_off: int
    vlen: int
    kflag: int
    size_or_type: int  # size for sized kinds, the referred type for the others
    at: int  # offset of the bytes after the common record (members, array info)


class BTF:
    """The types of one BTF blob, searchable by struct name and member path."""

    def __init__(self, data: bytes):
        if len(data) < 24:
            raise BTFError("BTF too short")
        magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != _MAGIC:
            raise BTFError("not little-endian BTF")
        if hdr_len < 24:
            raise BTFError(f"BTF header of {hdr_len} bytes")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
        self._data = data
        self._strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
        start, end = hdr_len + type_off, hdr_len + type_off + type_len
        if end > len(data) or start % 4:
            raise BTFError("BTF type section out of bounds")
        # One pass over ~150k variable-length records, touching only each one's info
        # word (as 32-bit words: 5x faster than struct.unpack per record); a record is
        # decoded only when a lookup reaches it.
        words = memoryview(data)[start : end - (end - start) % 4].cast("I")
        self._at: list[int] = []  # type id i starts at byte self._at[i - 1]
        self._structs: dict[bytes, int] = {}  # first struct of each name -> type id
        fixed, per_member = _FIXED_EXTRA, _PER_MEMBER
        w, n = 0, len(words)
        while w + 2 < n:
            info = words[w + 1]
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            self._at.append(start + 4 * w)
            if kind == _STRUCT and vlen:  # vlen 0: a declaration-only duplicate
                name = self._name_bytes(words[w])
                if name not in self._structs:
                    self._structs[name] = len(self._at)
            w += (12 + fixed.get(kind, 0) + per_member.get(kind, 0) * vlen) // 4

    @classmethod
    def from_file(cls, path: Path = VMLINUX) -> BTF:
        """Raises OSError if there is no BTF, BTFError if it cannot be parsed."""
        return cls(path.read_bytes())

    def _name_bytes(self, off: int) -> bytes:
        end = self._strings.find(b"\0", off)
        if end < 0:
            raise BTFError(f"name at {off} outside the string section")
        return self._strings[off:end]

    def _type(self, type_id: int) -> _Type:
        if not 0 < type_id <= len(self._at):
            raise BTFError(f"type id {type_id} out of range")
        pos = self._at[type_id - 1]
        name_off, info, size_or_type = struct.unpack_from("<III", self._data, pos)
        kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
        return _Type(kind, name_off, vlen, kflag, size_or_type, pos + 12)

    def _resolve(self, type_id: int) -> _Type:
        """The type behind typedefs and qualifiers."""
        for _ in range(32):
            t = self._type(type_id)
            if t.kind not in _QUALIFIERS:
                return t
            type_id = t.size_or_type
        raise BTFError("typedef chain too long")

    def type_size(self, type_id: int) -> int:
        t = self._resolve(type_id)
        if t.kind in _SIZED:
            return t.size_or_type
        if t.kind == _PTR:
            return POINTER_SIZE
        if t.kind == _ARRAY:
            elem, _index, n = struct.unpack_from("<III", self._data, t.at)
            return self.type_size(elem) * n
        raise BTFError(f"type of kind {t.kind} has no size")

    def _members(self, t: _Type):
        """(name, type id, bit offset, bitfield size or 0) of a struct's or union's
        members, anonymous ones with an empty name."""
        for i in range(t.vlen):
            name_off, type_id, offset = struct.unpack_from("<III", self._data, t.at + 12 * i)
            bits, bitfield = (offset & 0xFFFFFF, offset >> 24) if t.kflag else (offset, 0)
            yield self._name_bytes(name_off).decode(), type_id, bits, bitfield

    def _find(self, t: _Type, name: str) -> tuple[int, int, int] | None:
        """(type id, bit offset, bitfield size) of member `name` of struct/union `t`,
        looking inside anonymous structs and unions."""
        for mname, type_id, bits, bitfield in self._members(t):
            if mname == name:
                return type_id, bits, bitfield
            if not mname:
                inner = self._resolve(type_id)
                if inner.kind in (_STRUCT, _UNION):
                    found = self._find(inner, name)
                    if found is not None:
                        return found[0], bits + found[1], found[2]
        return None

    def member(self, struct_name: str, path: str) -> tuple[int, int]:
        """(byte offset, byte size) of `path` (a member name, or names joined by dots
        through nested struct members: `pwd.dentry`) in `struct struct_name`. Raises
        KeyError naming what is missing; BTFError for a member that is not a whole
        number of bytes (a bitfield that is not byte-aligned)."""
        type_id = self._structs.get(struct_name.encode())
        if type_id is None:
            raise KeyError(f"struct {struct_name}")
        t = self._type(type_id)
        bits, size, where = 0, 0, f"struct {struct_name}"
        for name in path.split("."):
            if t.kind not in (_STRUCT, _UNION):
                raise KeyError(f"{where} (not a struct)")
            found = self._find(t, name)
            if found is None:
                raise KeyError(f"{where}.{name}")
            type_id, at, bitfield = found
            where = f"{where}.{name}"
            bits += at
            if bitfield:
                if bitfield % 8 or bits % 8:
                    raise BTFError(f"{where} is a bitfield that is not byte-aligned")
                size = bitfield // 8
            else:
                size = self.type_size(type_id)
            t = self._resolve(type_id)
        if bits % 8:
            raise BTFError(f"{where} is not byte-aligned")
        return bits // 8, size


def member_macro(member: str) -> str:
    """The C constant holding a member's offset: `task_struct.real_parent` ->
    `KF_task_struct__real_parent`, `fs_struct.pwd.dentry` -> `KF_fs_struct__pwd__dentry`."""
    return "KF_" + member.replace(".", "__")


def locate(members: dict[str, int | None], btf: BTF) -> tuple[dict[str, int], str | None]:
    """Offsets of `members` ({"struct.path": expected size in bytes, or None for a member
    whose offset alone is used, as container_of() does}); and None, or the reason the
    set cannot be used (the first member missing or of another size)."""
    offsets = {}
    for name, want in members.items():
        struct_name, _, path = name.partition(".")
        try:
            off, size = btf.member(struct_name, path)
        except KeyError as e:
            return {}, f"{e.args[0]} not in the kernel's BTF"
        except BTFError as e:
            return {}, str(e)
        if want is not None and size != want:
            return {}, f"{name} is {size} bytes in this kernel, the BPF code reads {want}"
        offsets[name] = off
    return offsets, None


def resolve_reads(
    types: tuple[EventType, ...], path: Path | None = None
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, Any]]]:
    """For every kernel read of `types` ("<type>.<read>"): the member offsets, where this
    kernel's BTF has them all with the sizes the BPF code reads (for bpfgen.generate);
    and what the trace says of each (`kernel_reads` metadata): status `btf` with the
    offsets used, or `missing` with the reason, and the columns it fills."""
    reads = [(f"{t.name}.{r.name}", r) for t in types for r in t.kernel_reads]
    if not reads:
        return {}, {}
    btf, why = None, None
    try:
        btf = BTF.from_file(path or vmlinux())
    except OSError as e:
        why = f"no kernel BTF ({e.strerror}: {e.filename})"
    except BTFError as e:
        why = f"kernel BTF unreadable ({e})"
    offsets, said = {}, {}
    for key, r in reads:
        found, reason = locate(dict(r.members), btf) if btf is not None else ({}, why)
        said[key] = {
            "status": "missing" if reason else "btf",
            "reason": reason or "",
            "columns": list(r.columns),
            "required": r.required,
            "offsets": found,
        }
        if not reason:
            offsets[key] = found
    return offsets, said
