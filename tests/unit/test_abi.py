"""formats/abi: the tables against the kernel's (tests/data/abi, see its README), against
ausyscall and Python's os/errno/signal/socket where this host has them, and the
decoding helpers."""

from __future__ import annotations

import dataclasses
import errno
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bpfcap.formats.abi import KNOWN, Abi, for_machine, generic
from bpfcap.formats.errors import IncompatibleTraceError

DATA = Path(__file__).resolve().parents[1] / "data" / "abi"
X86, ARM = for_machine("x86_64"), for_machine("aarch64")
LAST_NR = 470  # listns: the tables and the reference lists stop there


def read_lines(name: str) -> list[list[str]]:
    text = (DATA / name).read_text()
    return [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def kernel_syscalls(machine: str) -> dict[int, str]:
    return {int(nr): name for nr, name in read_lines(f"{machine}.syscalls")}


def compare(table: dict, source: dict, what: str) -> None:
    """Both ways, every difference listed: key -> (table's value, source's value)."""
    missing = {k: v for k, v in source.items() if k not in table}
    extra = {k: v for k, v in table.items() if k not in source}
    differ = {k: (table[k], source[k]) for k in table.keys() & source.keys()}
    differ = {k: v for k, v in differ.items() if v[0] != v[1]}
    assert not missing, f"{what}: in the kernel's list, not in the table: {missing}"
    assert not extra, f"{what}: in the table, not in the kernel's list: {extra}"
    assert not differ, f"{what}: (table, kernel) differ: {differ}"


# --- the tables against the kernel's ------------------------------------------------


@pytest.mark.parametrize("machine", KNOWN)
def test_syscalls_match_the_kernels_list(machine: str) -> None:
    abi = for_machine(machine)
    source = kernel_syscalls(machine)
    compare(abi.syscalls, source, f"{machine} system calls")
    lowest: dict[str, int] = {}
    for nr, name in sorted(source.items(), reverse=True):
        lowest[name] = nr
    compare(abi.syscall_numbers, lowest, f"{machine} system call numbers (the lower one)")


def test_syscall_ranges_and_arm64_names() -> None:
    assert max(nr for nr in X86.syscalls if nr < 512) == LAST_NR == max(ARM.syscalls)
    assert [nr for nr in X86.syscalls if nr >= 512] == list(range(512, 548))
    for name, nr in {"newfstatat": 79, "fstat": 80, "openat": 56, "clone": 220}.items():
        assert ARM.syscall_numbers[name] == nr
    assert ARM.syscall_numbers["execve"] == 221 and ARM.syscall_numbers["mmap"] == 222
    assert not {"open", "stat", "fork"} & ARM.syscall_numbers.keys()


# Names differing from glibc's on purpose, as Python's os also has them: glibc's O_ASYNC
# is the kernel's FASYNC, O_FSYNC and O_RSYNC are glibc's names for O_SYNC.
GLIBC_OPEN_FLAGS = {"O_ASYNC": "FASYNC", "O_FSYNC": "O_SYNC", "O_RSYNC": "O_SYNC"}
# The names BCC's opensnoop -f takes (Python's os.O_* on Linux), so those of the table.
OPENSNOOP_FLAG_NAMES = {
    "O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE", "O_CREAT", "O_EXCL", "O_NOCTTY",
    "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_NDELAY", "O_DSYNC", "O_ASYNC", "O_DIRECT",
    "O_LARGEFILE", "O_DIRECTORY", "O_NOFOLLOW", "O_NOATIME", "O_CLOEXEC", "O_SYNC",
    "O_FSYNC", "O_RSYNC", "O_PATH", "O_TMPFILE",
}  # fmt: skip


@pytest.mark.parametrize("column, machine", list(enumerate(KNOWN, start=1)))
def test_open_flags_match_the_kernel_headers(column: int, machine: str) -> None:
    kernel = {row[0]: int(row[column], 8) for row in read_lines("open_flags.txt")}
    source = {n: v for n, v in kernel.items() if n != "FASYNC"}
    source.update({glibc: kernel[name] for glibc, name in GLIBC_OPEN_FLAGS.items()})
    compare(for_machine(machine).open_flags, source, f"{machine} open flags")
    assert for_machine(machine).open_flags.keys() == OPENSNOOP_FLAG_NAMES


def test_open_flags_differ_where_arm64_moves_them() -> None:
    moved = {n for n in X86.open_flags if X86.open_flags[n] != ARM.open_flags[n]}
    assert moved == {"O_DIRECTORY", "O_NOFOLLOW", "O_DIRECT", "O_LARGEFILE", "O_TMPFILE"}
    assert ARM.open_flags["O_DIRECTORY"] == 0o40000 == X86.open_flags["O_DIRECT"]
    assert ARM.open_flags["O_LARGEFILE"] == 0o400000
    assert ARM.open_flags["O_TMPFILE"] == 0o20000000 | 0o40000


@pytest.mark.parametrize("abi", [X86, ARM], ids=KNOWN)
def test_errnos_match_the_kernel_headers(abi: Abi) -> None:
    source = {name: int(nr) for name, nr in read_lines("errnos.txt")}
    source["ENOTSUP"] = 95  # glibc's name for EOPNOTSUPP, which Python's errno has too
    compare(abi.errnos, source, f"{abi.machine} errnos")


@pytest.mark.parametrize("abi", [X86, ARM], ids=KNOWN)
def test_signals_match_the_kernel_headers(abi: Abi) -> None:
    source = {name: int(nr) for name, nr in read_lines("signals.txt")}
    # glibc keeps 32 and 33 for itself: the SIGRTMIN that programs, kill -l and Python
    # see is 34. SIGCLD is glibc's old name of SIGCHLD, which Python's signal has.
    source.update(SIGRTMIN=34, SIGCLD=17)
    compare(abi.signals, source, f"{abi.machine} signals")


def test_identical_tables_are_shared() -> None:
    assert X86.errnos is ARM.errnos is generic.ERRNOS
    assert X86.signals is ARM.signals and X86.families is ARM.families
    assert all(X86.syscalls[nr] == ARM.syscalls[nr] for nr in range(424, LAST_NR + 1))


# --- ausyscall, where installed ----------------------------------------------------------

# What audit's tables (ausyscall, which BCC prints names with when it is installed; always
# on arm64) name differently, number -> audit's name. Audit keeps old names for these.
AUSYSCALL_NAMES = {
    "x86_64": {17: "pread", 18: "pwrite"},
    "aarch64": {61: "getdents", 67: "pread", 68: "pwrite", 80: "newfstat"},
}
# What the tables have and audit leaves out: uretprobe and uprobe ("not a traditional
# syscall", says audit's x86_64_table.h) and the x32 range (audit has a table per ABI).
NOT_IN_AUSYSCALL = {"x86_64": {335, 336, *range(512, 548)}, "aarch64": set()}


def ausyscall_dump(machine: str) -> dict[int, str]:
    exe = shutil.which("ausyscall")
    if exe is None:
        pytest.skip("ausyscall is not installed (Debian: apt-get install auditd)")
    r = subprocess.run([exe, machine, "--dump"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"this ausyscall has no {machine} table: {r.stderr.strip()}")
    rows = (ln.split() for ln in r.stdout.splitlines())  # after "Using x86_64 syscall table:"
    return {int(row[0]): row[1] for row in rows if len(row) == 2 and row[0].isdigit()}


@pytest.mark.parametrize("machine", KNOWN)
def test_syscalls_match_ausyscall(machine: str) -> None:
    audit = ausyscall_dump(machine)
    table = for_machine(machine).syscalls
    audit_last = max(audit)
    # An audit older than the tables stops earlier; a newer one goes on past LAST_NR.
    expected = {
        nr: AUSYSCALL_NAMES[machine].get(nr, name)
        for nr, name in table.items()
        if nr not in NOT_IN_AUSYSCALL[machine] and nr <= audit_last
    }
    compare(expected, {nr: n for nr, n in audit.items() if nr <= LAST_NR}, f"ausyscall {machine}")


# --- this host's Python, for the names it has -------------------------------------------

HOST = platform.machine().lower()
on_linux_of_known_machine = pytest.mark.skipif(
    sys.platform != "linux" or HOST not in ("x86_64", "aarch64", "amd64", "arm64"),
    reason="Python's os/errno/signal/socket values are this host's: Linux x86_64 or aarch64",
)


def python_names(module: object, prefix: str) -> dict[str, int]:
    return {
        n: int(getattr(module, n))
        for n in dir(module)
        if n.startswith(prefix) and not n.startswith(prefix + "_")  # SIG_DFL, SIG_IGN, ...
    }


@on_linux_of_known_machine
def test_open_flags_match_pythons_os() -> None:
    abi = for_machine(HOST)
    python = python_names(os, "O_")
    # glibc defines O_LARGEFILE as 0 on 64-bit ABIs (every open is large there); the table
    # has the bit the kernel sets, as a trace would record it.
    assert python.pop("O_LARGEFILE") == 0
    compare({n: abi.open_flags[n] for n in python if n in abi.open_flags}, python, "os.O_*")


@on_linux_of_known_machine
def test_errnos_match_pythons_errno() -> None:
    abi = for_machine(HOST)
    python = python_names(errno, "E")
    compare({n: abi.errnos[n] for n in python if n in abi.errnos}, python, "errno.E*")


@on_linux_of_known_machine
def test_signals_match_pythons_signal() -> None:
    abi = for_machine(HOST)
    python = python_names(signal, "SIG")
    compare({n: abi.signals[n] for n in python if n in abi.signals}, python, "signal.SIG*")


@on_linux_of_known_machine
def test_families_match_pythons_socket() -> None:
    abi = for_machine(HOST)
    python = python_names(socket, "AF_")
    compare({n: abi.families[n] for n in python if n in abi.families}, python, "socket.AF_*")


# --- for_machine ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, machine",
    [
        ("x86_64", "x86_64"),
        ("amd64", "x86_64"),
        ("AMD64", "x86_64"),
        (" x86_64\n", "x86_64"),
        ("aarch64", "aarch64"),
        ("arm64", "aarch64"),
        ("ARM64", "aarch64"),
    ],
)
def test_for_machine_spellings(given: str, machine: str) -> None:
    assert for_machine(given).machine == machine
    assert for_machine(given) is for_machine(machine)  # built once


@pytest.mark.parametrize("missing", [None, "", "  "])
def test_a_trace_without_machine_is_x86_64(missing: str | None) -> None:
    assert for_machine(missing) is X86


def test_unknown_machine_is_an_error_with_a_hint() -> None:
    with pytest.raises(IncompatibleTraceError) as e:
        for_machine("riscv64")
    assert str(e.value) == (
        "trace recorded on riscv64: no system call table for it; known: x86_64, aarch64"
    )
    for other in ("i686", "armv7l", "ppc64le", "s390x", "x86"):
        with pytest.raises(IncompatibleTraceError):
            for_machine(other)


def test_unknown_machine_from_a_hostile_trace_is_escaped_and_cut() -> None:
    with pytest.raises(IncompatibleTraceError) as e:
        for_machine("\x1b]0;pwned\x07" + "m" * 100)
    message = str(e.value)
    assert message.isprintable() and "\x1b" not in message
    assert len(message) < 150 and message.startswith("trace recorded on '\\x1b]0;pwned\\x07")


def test_abi_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        X86.machine = "aarch64"  # type: ignore[misc]
    assert "syscalls" not in repr(X86)


# --- the helpers ---------------------------------------------------------------------


def test_syscall_name() -> None:
    assert X86.syscall_name(257) == "openat" and ARM.syscall_name(56) == "openat"
    assert X86.syscall_name(59) == "execve" == X86.syscall_name(520)
    assert ARM.syscall_name(257) == "[unknown: 257]"  # BCC's text, byte for byte
    assert X86.syscall_name(400) == "[unknown: 400]" and X86.syscall_name(-1) == "[unknown: -1]"
    assert ARM.syscall_name(42) == "nfsservctl"  # as BCC prints it (ausyscall's name)


def test_syscall_number() -> None:
    assert X86.syscall_number("openat") == 257 and ARM.syscall_number("openat") == 56
    assert X86.syscall_number("execve") == 59  # the native number, not x32's 520
    assert X86.syscall_number("520") == 520 and ARM.syscall_number("999") == 999
    assert X86.syscall_number("open") == 2 and ARM.syscall_number("open") is None
    assert X86.syscall_number("bogus") is None and X86.syscall_number("²") is None


def test_errno_number_and_name() -> None:
    for text, n in [("ENOENT", 2), ("enoent", 2), (" 2 ", 2), ("-2", 2), ("EWOULDBLOCK", 11)]:
        assert X86.errno_number(text) == n, text
    for text in ("", "-", "--2", "E_BOGUS", "²", "2.0"):
        assert X86.errno_number(text) is None, text
    names = {11: "EAGAIN", 35: "EDEADLK", 95: "EOPNOTSUPP", 2: "ENOENT", 133: "EHWPOISON"}
    for n, name in names.items():
        assert X86.errno_name(n) == ARM.errno_name(n) == name
    assert X86.errno_name(-13) == "EACCES"  # as a system call returns it
    assert X86.errno_name(0) is None and X86.errno_name(41) is None
    assert X86.errno_name(512) is None


def test_every_errno_name_round_trips_to_a_canonical_name() -> None:
    for name, n in X86.errnos.items():
        assert X86.errno_number(name) == n
        canonical = X86.errno_name(n)
        assert canonical == name or name in generic.ERRNO_ALIASES, name


def test_signal_name() -> None:
    names = {1: "SIGHUP", 6: "SIGABRT", 9: "SIGKILL", 17: "SIGCHLD", 29: "SIGIO", 31: "SIGSYS"}
    for n, name in names.items():
        assert X86.signal_name(n) == ARM.signal_name(n) == name
    assert X86.signal_name(34) == "SIGRTMIN" and X86.signal_name(64) == "SIGRTMAX"
    assert X86.signal_name(35) == "SIGRTMIN+1" and X86.signal_name(63) == "SIGRTMIN+29"
    for n in (0, 32, 33, 65, -9):
        assert X86.signal_name(n) is None, n


def test_family_name() -> None:
    names = {0: "AF_UNSPEC", 1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK"}
    for n, name in {**names, 17: "AF_PACKET", 40: "AF_VSOCK", 44: "AF_XDP"}.items():
        assert X86.family_name(n) == ARM.family_name(n) == name
    assert X86.families["AF_LOCAL"] == 1 and X86.families["AF_ROUTE"] == 16
    assert X86.family_name(99) is None


@pytest.mark.parametrize("abi", [X86, ARM], ids=KNOWN)
def test_open_flag_names_examples(abi: Abi) -> None:
    f = abi.open_flags
    assert abi.open_flag_names(0) == ["O_RDONLY"]
    assert abi.open_flag_names(f["O_WRONLY"] | f["O_CREAT"] | f["O_TRUNC"]) == [
        "O_WRONLY",
        "O_CREAT",
        "O_TRUNC",
    ]
    assert abi.open_flag_names(f["O_RDWR"] | f["O_TMPFILE"]) == ["O_RDWR", "O_TMPFILE"]
    assert abi.open_flag_names(f["O_TMPFILE"] | f["O_EXCL"] | f["O_CLOEXEC"]) == [
        "O_RDONLY",
        "O_EXCL",
        "O_CLOEXEC",
        "O_TMPFILE",
    ]
    assert abi.open_flag_names(f["O_SYNC"]) == ["O_RDONLY", "O_SYNC"]  # not O_DSYNC too
    assert abi.open_flag_names(f["O_DSYNC"]) == ["O_RDONLY", "O_DSYNC"]
    assert abi.open_flag_names(f["O_NDELAY"]) == ["O_RDONLY", "O_NONBLOCK"]
    assert abi.open_flag_names(3 | f["O_CREAT"]) == ["O_ACCMODE", "O_CREAT"]
    # __O_TMPFILE's bit without O_DIRECTORY is no flag: it stays a number.
    assert abi.open_flag_names(0o20000000 | 1) == ["O_WRONLY", "0x400000"]
    assert abi.open_flag_names(0x80000000 | 0x40000000 | 2) == ["O_RDWR", "0xc0000000"]
    with pytest.raises(ValueError):
        abi.open_flag_names(-1)


@pytest.mark.parametrize("abi", [X86, ARM], ids=KNOWN)
def test_every_flag_alone_is_named_by_itself_and_all_in_order(abi: Abi) -> None:
    everything = 0
    for name in generic.OPEN_FLAG_ORDER:
        assert abi.open_flag_names(abi.open_flags[name]) == ["O_RDONLY", name]
        everything |= abi.open_flags[name]
    # O_SYNC and O_TMPFILE include O_DSYNC's and O_DIRECTORY's bits: named once, as them.
    both = [n for n in generic.OPEN_FLAG_ORDER if n not in ("O_DSYNC", "O_DIRECTORY")]
    assert abi.open_flag_names(everything | 2) == ["O_RDWR", *both]


def test_open_flag_names_by_architecture() -> None:
    # The bits x86_64 and aarch64 swap: the same number is another flag.
    assert X86.open_flag_names(0o200000) == ["O_RDONLY", "O_DIRECTORY"]
    assert ARM.open_flag_names(0o200000) == ["O_RDONLY", "O_DIRECT"]
    assert X86.open_flag_names(0o40000) == ["O_RDONLY", "O_DIRECT"]
    assert ARM.open_flag_names(0o40000) == ["O_RDONLY", "O_DIRECTORY"]
    assert X86.open_flag_names(0o400000) == ["O_RDONLY", "O_NOFOLLOW"]
    assert ARM.open_flag_names(0o400000) == ["O_RDONLY", "O_LARGEFILE"]
    # x86_64's O_TMPFILE on aarch64: __O_TMPFILE without aarch64's O_DIRECTORY.
    assert ARM.open_flag_names(0o20200000) == ["O_RDONLY", "O_DIRECT", "0x400000"]
    assert X86.open_flag_names(0o20200000) == ["O_RDONLY", "O_TMPFILE"]
