"""Constant tables by CPU architecture: system call numbers, open flags, errno, signal and
address family numbers, for decoding a trace with the tables of the machine it was
recorded on (the trace's `host.machine`), not those of the machine reading it.

    abi = for_machine(meta["host"].get("machine"))
    abi.syscall_name(257)          # "openat" on x86_64; 257 is "[unknown: 257]" on aarch64
    abi.open_flag_names(0o101101)  # ["O_WRONLY", "O_CREAT", "O_TRUNC", "O_LARGEFILE"]

The data, plain number/name pairs taken from the kernel's tables and headers, is in
x86_64.py, aarch64.py and, where the two agree, generic.py; each says where it came from.
Values are the kernel's, as a trace records them (see generic.open_flags on O_LARGEFILE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from bpfcap.formats.abi import aarch64, generic, x86_64
from bpfcap.formats.errors import IncompatibleTraceError

KNOWN = ("x86_64", "aarch64")
# What traces without host.machine were recorded on: the recorder ran only on x86_64
# until it wrote the field.
DEFAULT_MACHINE = "x86_64"
# Other spellings of the same architectures (BSD, Windows and Go/Debian names).
ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}

_ACCESS_MODES = ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")


def _canonical(table: dict[str, int], aliases: frozenset[str]) -> dict[int, str]:
    return {v: k for k, v in table.items() if k not in aliases}


def _ascii_int(text: str) -> int | None:
    """A non-negative decimal number in ASCII digits, else None (str.isdigit alone would
    let "²" through, which int() rejects)."""
    return int(text) if text.isascii() and text.isdigit() else None


@dataclass(frozen=True)
class Abi:
    """One architecture's tables. Read-only: the dicts are shared by every caller."""

    machine: str
    """The canonical name, one of KNOWN."""
    syscalls: dict[int, str] = field(repr=False)
    """System call number -> the kernel's name (BCC's, but see aarch64.py on ausyscall)."""
    syscall_numbers: dict[str, int] = field(repr=False)
    """Name -> number; for a name with two numbers (x86_64's x32 range) the native one."""
    open_flags: dict[str, int] = field(repr=False)
    """O_* name -> value, with the other names of a value (O_NDELAY, O_FSYNC, O_RSYNC)."""
    errnos: dict[str, int] = field(repr=False)
    """E* name -> number, with the other names of a number (EWOULDBLOCK, EDEADLOCK)."""
    signals: dict[str, int] = field(repr=False)
    """SIG* name -> number, SIGHUP (1) to SIGSYS (31), SIGRTMIN (34), SIGRTMAX (64)."""
    families: dict[str, int] = field(repr=False)
    """AF_* address family name -> number."""

    _errno_names: dict[int, str] = field(init=False, repr=False, compare=False)
    _signal_names: dict[int, str] = field(init=False, repr=False, compare=False)
    _family_names: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: the name maps are derived once, here
        set_(self, "_errno_names", _canonical(self.errnos, generic.ERRNO_ALIASES))
        set_(self, "_signal_names", _canonical(self.signals, generic.SIGNAL_ALIASES))
        set_(self, "_family_names", _canonical(self.families, generic.FAMILY_ALIASES))

    def __hash__(self) -> int:
        return hash(self.machine)

    def syscall_name(self, nr: int) -> str:
        """The name BCC prints for system call `nr`: `[unknown: N]` when there is none."""
        return self.syscalls.get(nr, f"[unknown: {nr}]")

    def syscall_number(self, name_or_nr: str) -> int | None:
        """The number of a system call given by name or number, None if unknown. A number
        is taken as is, whether or not the table names it."""
        nr = _ascii_int(name_or_nr)
        return nr if nr is not None else self.syscall_numbers.get(name_or_nr)

    def errno_number(self, text: str) -> int | None:
        """The errno given as a number (its sign dropped: -2 is 2) or as a name in any
        case (enoent, EWOULDBLOCK), None if neither."""
        t = text.strip()
        n = _ascii_int(t[1:] if t.startswith("-") else t)
        return n if n is not None else self.errnos.get(t.upper())

    def errno_name(self, n: int) -> str | None:
        """The name of errno `n` or `-n` (a system call's return value), the kernel's
        first name for it (11 EAGAIN, 35 EDEADLK, 95 EOPNOTSUPP); None if unknown."""
        return self._errno_names.get(abs(n))

    def signal_name(self, n: int) -> str | None:
        """SIGTERM for 15; SIGRTMIN+N for the real-time signals between SIGRTMIN and
        SIGRTMAX; None for 0, 32, 33 (glibc's own) and numbers past SIGRTMAX."""
        name = self._signal_names.get(n)
        if name is None and self.signals["SIGRTMIN"] < n < self.signals["SIGRTMAX"]:
            name = f"SIGRTMIN+{n - self.signals['SIGRTMIN']}"
        return name

    def family_name(self, n: int) -> str | None:
        """AF_INET for 2, AF_UNIX (not AF_LOCAL) for 1; None if unknown."""
        return self._family_names.get(n)

    def open_flag_names(self, flags: int) -> list[str]:
        """The names of the flags of an open: the access mode first (O_RDONLY, O_WRONLY,
        O_RDWR, or O_ACCMODE for the Linux-only mode 3), then the set flags in the fixed
        order of generic.OPEN_FLAG_ORDER, whatever their values here, then the bits no
        name covers as one hex number ("0x40000000"). O_SYNC and O_TMPFILE are named as
        such, not as the O_DSYNC and O_DIRECTORY they include; never O_NDELAY, O_FSYNC
        or O_RSYNC. 0 is ["O_RDONLY"]."""
        if flags < 0:
            raise ValueError(f"open flags are unsigned, not {flags}")
        accmode = self.open_flags["O_ACCMODE"]
        names = [_ACCESS_MODES[flags & accmode]]
        rest = flags & ~accmode
        found = set()
        # Flags of several bits first, so that their bits are not taken for O_DSYNC and
        # O_DIRECTORY alone.
        for name in sorted(generic.OPEN_FLAG_ORDER, key=lambda n: -self.open_flags[n]):
            bits = self.open_flags[name]
            if bits and rest & bits == bits:
                found.add(name)
                rest &= ~bits
        names += [n for n in generic.OPEN_FLAG_ORDER if n in found]
        if rest:
            names.append(hex(rest))
        return names


@cache
def _abi(machine: str) -> Abi:
    data = {"x86_64": x86_64, "aarch64": aarch64}[machine]
    return Abi(
        machine=machine,
        syscalls=data.SYSCALLS,
        syscall_numbers=data.SYSCALL_NUMBERS,
        open_flags=data.OPEN_FLAGS,
        errnos=generic.ERRNOS,
        signals=generic.SIGNALS,
        families=generic.FAMILIES,
    )


def canonical_machine(machine: str | None) -> str:
    """x86_64 or aarch64 for a trace's host.machine, in any case and spelling of ALIASES;
    DEFAULT_MACHINE (x86_64) when the trace has none (None or ""), as traces written
    before the recorder kept host.machine. IncompatibleTraceError for any other machine:
    its numbers would be decoded as another architecture's."""
    if machine is None or not machine.strip():
        return DEFAULT_MACHINE
    name = machine.strip().lower()
    name = ALIASES.get(name, name)
    if name in KNOWN:
        return name
    # A trace's text goes into a terminal: escape what is not printable, cut what is long.
    shown = machine if machine.isprintable() else ascii(machine)
    shown = shown if len(shown) <= 40 else shown[:40] + "..."
    raise IncompatibleTraceError(
        f"trace recorded on {shown}: no system call table for it", f"known: {', '.join(KNOWN)}"
    )


def for_machine(machine: str | None) -> Abi:
    """The tables of `machine`, a trace's host.machine (see canonical_machine: None means
    x86_64, an unknown machine raises IncompatibleTraceError). Built once per machine."""
    return _abi(canonical_machine(machine))
