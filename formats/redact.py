"""Pseudonymising a trace (`bpfcap redact`): every identifying value becomes a token,
relations survive. Pure transforms: tables and metadata in, redacted tables and metadata
out; formats/rewrite.py reads and writes the files.

A `Redactor` holds a random key (never returned, logged or written) and, per class of
values, the tokens it gave so far: within one Redactor (one output file) a value always
gets the same token, different values of a class get different tokens (collisions of the
truncated HMAC are detected and the later token lengthened), and a second run (another
key) gives other tokens. Tokens are ASCII, built from the key's HMAC-SHA256 of (class,
value): lowercase base32 ids (`a-z`, `2-7`, at least ID_CHARS long) after a role letter,
so they never carry bytes of the input beyond the structure kept on purpose.

The rules (docs/redaction.md is the user reference; its allow-lists are
`allow_lists_markdown()`, checked by a test):

* Paths (open `path`, exec `filename`, cwd `dirs` read as the path they name, exec
  arguments and command-line words holding a `/`): component by component. A path under
  a SYSTEM_PREFIXES entry or a `--keep-paths` prefix (whole components) is kept verbatim
  (unless a `..` follows the prefix), except under USER_NAMED_PREFIXES (`/dev/shm`, ...);
  the components of the longest STRUCTURE_PREFIXES entry an absolute path starts with
  are kept (`/home`, `/tmp`, `/var/tmp`, ...); `.`, `..` and empty components are kept.
  Any other component is `<role><id><ext>`: role `u` directly under /home, `f` the last
  component of a file path (open path, exec filename, a path-like argument), `d`
  otherwise; id depends only on the component's name (without the extension), so the
  same name gets the same id wherever it appears; ext is the longest run of
  EXTENSIONS (and `.so.N` versions) ending the name, kept: `a.c` -> `f<id>.c`.
* comm (`comm`, `pcomm`, the snapshot's comms, settings.comm, slice comm filters):
  `c<id>` unless --keep-comm, or the name is a kernel thread's (the snapshot's pid 2
  and its children, KERNEL_THREAD_NAMES, KERNEL_THREAD_PATTERNS) or the basename (first
  15 bytes) of a program the trace exec'd from a kept path (learn()).
* exec arguments and command lines (`args`, `command_line`, settings.command): each
  argument `a<id>` unless it fully matches a --keep-args regex, is `-`, `--`, `.`, `..`,
  empty, a short flag (`-` and 1 to 3 letters or digits) or a long option
  (`--` lowercase letters, digits, dashes); `--opt=VALUE` keeps `--opt=` and redacts
  VALUE as an argument; `-X/path` keeps `-X` and redacts the path; an argument holding
  `/` is a path (last component role `f`).
* host name: `host-<id>`.
* uid: KEPT_UIDS (0..999, 65534, 65535, 4294967295) kept; others a fake uid in
  [FAKE_UID_MIN, 2**32 - 2], keyed, injective.
* IP addresses (saddr, daddr, by `family`): loopback, unspecified and broadcast kept;
  private ranges (PRIVATE_NETWORKS) kept only with --keep-private; any other address a
  fake of the same family, keyed and injective, from FAKE_IPV4 (240.0.0.0/4, reserved,
  never routed) or FAKE_IPV6 (2001:db8::/32, documentation). IPv4-mapped IPv6
  (`::ffff:a.b.c.d`) maps its IPv4 part as the plain IPv4 address. IPv4 rows keep only
  the address's 4 bytes (the 12 after them are zeroed).
* metadata: rebuilt from an allow-list (SAFE_META_KEYS, SAFE_HOST_KEYS,
  SAFE_SETTINGS_KEYS), the identifying keys redacted by the rules above, every other key
  dropped and listed under `redaction.dropped`; `stop_reason` kept when the recorder's
  (STOP_REASONS, or a signal name), else `<redacted>`; a `slice` record keeps its hash,
  window, pid/tree/kinds filters, redacts its comm filters and replaces `where` by
  `<redacted>`. A trace that is already redacted is refused (UsageError).

Cost: tables are redacted per distinct value (dictionary-encoded), so a chunk of 1M rows
with 50 distinct paths costs 50 path redactions (about 10M rows/s for open rows; a new
distinct path about 20 us). The tokens given are kept for the whole run (they make the
mapping injective): memory grows with the number of distinct values, not rows.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow import strings
from .errors import TraceFormatError, UsageError
from .events import SCHEMA

FORMAT = 1  # of the metadata's `redaction` record

# --- allow-lists (docs/redaction.md lists them: allow_lists_markdown()) ----------------

# Paths kept verbatim with everything under them: what the distribution installs and the
# kernel's pseudo file systems, the same on every machine.
SYSTEM_PREFIXES = (
    "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/proc", "/sys",
    "/dev", "/boot",
)  # fmt: skip
# Under a system prefix but named by users or local admins: their own names kept (as
# STRUCTURE_PREFIXES), what is under them redacted.
USER_NAMED_PREFIXES = (
    "/dev/shm",
    "/dev/mqueue",
    "/usr/local",
)
# Standard directories: their own names are structure, not identity (kept), what is
# under them is redacted. The longest one a path starts with applies.
STRUCTURE_PREFIXES = (
    "/home", "/root", "/tmp", "/var", "/var/tmp", "/var/lib", "/var/log", "/var/cache",
    "/var/spool", "/var/mail", "/var/run", "/var/www", "/opt", "/srv", "/mnt", "/media",
    "/run", "/run/user", "/snap", "/nix", "/nix/store", "/usr/local/bin",
    "/usr/local/sbin", "/usr/local/lib", "/usr/local/include", "/usr/local/share",
    "/usr/local/src",
)  # fmt: skip
# File name extensions kept after a component's token (exact, lowercase); several in a
# row are kept (`a.tar.gz`), and numeric versions after `.so` (`libx.so.6.0.1`).
EXTENSIONS = (
    # C, C++, assembly, objects, libraries
    "c", "h", "cc", "cpp", "cxx", "hpp", "hh", "hxx", "s", "S", "asm", "o", "a", "so",
    "ko", "d", "ld", "map",
    # other languages
    "py", "pyc", "pyi", "pyx", "rs", "go", "java", "class", "jar", "js", "mjs", "ts",
    "jsx", "tsx", "rb", "pl", "pm", "php", "lua", "sh", "bash", "zsh", "fish",
    # build and config
    "mk", "cmake", "in", "am", "ac", "m4", "json", "yaml", "yml", "toml", "ini", "conf",
    "cfg", "xml", "env", "service", "socket", "timer", "lock", "pid",
    # text and data
    "txt", "md", "rst", "log", "csv", "tsv", "sql", "db", "sqlite", "sqlite3", "html",
    "htm", "css", "svg", "png", "jpg", "jpeg", "gif", "pdf", "dat", "bin", "out", "err",
    "tmp", "bak", "swp", "old", "new", "orig", "patch", "diff", "parquet", "arrow",
    # archives and packages
    "gz", "bz2", "xz", "zst", "lz4", "zip", "tar", "tgz", "deb", "rpm", "whl", "img",
    "iso",
    # keys and certificates (the names are redacted, the kind of file is not)
    "pem", "crt", "key", "pub",
)  # fmt: skip
# Kernel threads' names (and their first 15 bytes, as comm keeps them), kept as comm.
KERNEL_THREAD_NAMES = (
    "kthreadd", "kauditd", "khungtaskd", "oom_reaper", "kdevtmpfs", "ksmd", "khugepaged",
    "kcompactd0", "watchdogd", "hwrng", "pool_workqueue_release", "rcu_gp", "rcu_par_gp",
    "rcu_preempt", "rcu_sched", "rcu_bh", "rcu_tasks_kthread", "rcu_tasks_rude_kthread",
    "rcu_tasks_trace_kthread", "rcu_exp_gp_kthread_worker", "rcu_exp_par_gp_kthread_worker",
    "ext4-rsv-conversion", "kblockd", "kintegrityd", "kthrotld", "writeback", "netns",
    "kstrp",
)  # fmt: skip
# Kernel threads with numbers in their names (full match, strict: a task may take any
# name, and one that merely looks like a kernel thread's keeps nothing but its shape).
KERNEL_THREAD_PATTERNS = (
    r"kworker/\d{1,4}:\d{1,6}H?(-[a-z0-9_]*)?",
    r"kworker/u\d{1,4}:\d{1,6}(-[a-z0-9_]*)?",
    r"kworker/R-[a-z0-9_]*",
    r"ksoftirqd/\d{1,4}",
    r"migration/\d{1,4}",
    r"swapper(/\d{1,4})?",
    r"cpuhp/\d{1,4}",
    r"idle_inject/\d{1,4}",
    r"watchdog/\d{1,4}",
    r"rcuo[gps]/\d{1,4}",
    r"kswapd\d{1,3}",
    r"kcompactd\d{1,3}",
    r"jbd2/[a-z]{2,8}\d{0,3}(p?\d{1,3})?-\d{1,3}",
)
# The recorder's stop reasons (capture/recorder.py), plus signal names (SIGINT, ...).
STOP_REASONS = ("command exited", "duration", "max-size", "max-events")
# uids kept: system accounts, nobody (16 and 32 bits), and (uid_t)-1.
KEPT_UIDS = "0..999, 65534, 65535, 4294967295"
FAKE_UID_MIN = 1_000_000
FAKE_IPV4 = "240.0.0.0/4"  # reserved (RFC 1112), never routed; 255.255.255.255 excepted
FAKE_IPV6 = "2001:db8::/32"  # documentation (RFC 3849)
PRIVATE_NETWORKS = (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10",
    "fc00::/7", "fe80::/10",
)  # fmt: skip
ALWAYS_KEPT_ADDRESSES = (
    "127.0.0.0/8", "0.0.0.0", "255.255.255.255", "::1", "::",
)  # fmt: skip
# Metadata kept as it is: what the recorder writes about itself, the kernel and counts.
SAFE_META_KEYS = (
    "format_version", "bpfcap_version", "start_ns", "end_ns", "attached_ns", "clock",
    "events", "disks", "probes", "kernel_reads", "agent", "clean_stop", "missed_runs",
    "tree_filter_full", "segment", "first_segment",
)  # fmt: skip
SAFE_HOST_KEYS = ("cpus", "kernel", "kernel_version", "machine", "os", "pid_max")
SAFE_SETTINGS_KEYS = (
    "events", "pid", "duration_s", "segment_s", "drain_s", "flush_hz", "flush_every_s",
    "ringbuf_pages", "syscalls", "max_events", "rotate_s", "rotate_bytes", "keep",
    "max_size", "entry_stash", "comm_cache", "batch", "tcp_bytes",
)  # fmt: skip
SAFE_SLICE_KEYS = ("source_sha256", "window")
SAFE_SLICE_FILTERS = ("pid", "tree", "kinds")
REDACTED_TEXT = "<redacted>"

ID_CHARS = 6  # base32 characters of an id before any lengthening (30 bits)
_MAX_ID_CHARS = 51  # all of a SHA-256 in base32
_CACHE_MAX = 1 << 20

# The classes of values replaced (report() keys, the metadata's `redaction.redacted`).
CLASSES = ("paths", "args", "comms", "hosts", "uids", "addresses", "texts")

# Columns redacted, by rule; every other column of the trace schema (and `time`) is kept.
PATH_COLUMNS = {"path": True, "filename": True}  # name -> a file path (role f at the end)
COMM_COLUMNS = ("comm", "pcomm")
SAFE_COLUMNS = frozenset(
    {"time"}
    | set(SCHEMA.names) - {*PATH_COLUMNS, *COMM_COLUMNS, "args", "dirs", "uid", "saddr", "daddr"}
)


@dataclass(frozen=True)
class RedactOptions:
    """What `bpfcap redact` keeps besides its allow-lists."""

    keep_args: tuple[str, ...] = ()  # regexes: an exec argument fully matching one is kept
    keep_paths: tuple[str, ...] = ()  # absolute prefixes (whole components) kept verbatim
    keep_comm: bool = False  # command names kept
    keep_private: bool = False  # private and link-local IP addresses kept

    def as_dict(self) -> dict[str, Any]:
        """For the metadata's `redaction.options`."""
        return {
            "keep_args": list(self.keep_args),
            "keep_paths": list(self.keep_paths),
            "keep_comm": self.keep_comm,
            "keep_private": self.keep_private,
        }


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _components(prefix: str) -> tuple[bytes, ...]:
    return tuple(_b(prefix).strip(b"/").split(b"/"))


def _starts(comps: list[bytes], prefix: tuple[bytes, ...]) -> bool:
    return len(comps) >= len(prefix) and tuple(comps[: len(prefix)]) == prefix


_EXT = frozenset(_b(e) for e in EXTENSIONS)
_KTHREAD_NAMES = frozenset(_b(n) for n in KERNEL_THREAD_NAMES) | frozenset(
    _b(n)[:15] for n in KERNEL_THREAD_NAMES
)
_KTHREAD_RE = re.compile(b"|".join(b"(?:" + _b(p) + b")" for p in KERNEL_THREAD_PATTERNS))
_SHORT_FLAG = re.compile(rb"-[A-Za-z0-9]{1,3}")
_LONG_FLAG = re.compile(rb"--[a-z0-9][a-z0-9-]*")
_LONG_WITH_VALUE = re.compile(rb"(--[a-z0-9][a-z0-9-]*=)(.*)", re.S)
_FLAG_WITH_PATH = re.compile(rb"(-[A-Za-z])(/.*)", re.S)
_STRUCTURAL_ARGS = frozenset({b"", b"-", b"--", b".", b".."})
_KEY_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_SIGNAL_NAME = re.compile(r"SIG[A-Z0-9]{2,8}")
_VERSION = re.compile(rb"[0-9]{1,6}")


def _kept_uid(uid: int) -> bool:
    return uid < 1000 or uid in (65534, 65535, 0xFFFFFFFF)


_ALWAYS = [ipaddress.ip_network(n) for n in ALWAYS_KEPT_ADDRESSES]
_PRIVATE = [ipaddress.ip_network(n) for n in PRIVATE_NETWORKS]
_V4_SPAN = (1 << 28) - 1  # 240.0.0.0 .. 255.255.255.254
_V4_BASE = int(ipaddress.IPv4Address("240.0.0.0"))
_V6_BASE = int(ipaddress.IPv6Address("2001:db8::"))
_MAPPED = bytes(10) + b"\xff\xff"


class _Ids:
    """Injective keyed ids for one class of values: value -> candidate(attempt), the
    first candidate not already given to another value (nor refused by `taken`)."""

    def __init__(
        self,
        key: bytes,
        cls: str,
        make: Callable[[bytes, int], Any],
        taken: Callable[[Any], bool] | None = None,
        remac: bool = False,
    ):
        self._key = key
        self._cls = cls.encode() + b"\0"
        self._make = make
        self._taken = taken
        self._remac = remac
        self.fwd: dict[bytes, Any] = {}
        self._rev: dict[Any, bytes] = {}

    def __call__(self, value: bytes) -> Any:
        got = self.fwd.get(value)
        if got is not None:
            return got
        mac = hmac.new(self._key, self._cls + value, hashlib.sha256).digest()
        for attempt in range(_MAX_ID_CHARS - ID_CHARS + 1):
            cand = self._make(mac, attempt)
            if cand not in self._rev and not (self._taken and self._taken(cand)):
                self.fwd[value] = cand
                self._rev[cand] = value
                return cand
            if self._remac and attempt % 8 == 7:  # numbers: a fresh MAC every 8 attempts
                mac = hmac.new(self._key, mac, hashlib.sha256).digest()
        raise RuntimeError(f"no free token for a value of class {self._cls!r}")


def _text_id(mac: bytes, attempt: int) -> bytes:
    # Lengthen on a collision: the same MAC's next base32 character.
    return base64.b32encode(mac)[: ID_CHARS + attempt].lower()


def _number(mac: bytes, attempt: int) -> int:
    # A fresh slice of the MAC per attempt (every 8 attempts _Ids takes a new MAC).
    i = (attempt % 8) * 4
    return int.from_bytes(mac[i : i + 4], "big")


class Redactor:
    """Redacts the tables and metadata of one trace (see the module docstring for the
    rules). One Redactor per output file: its key and tokens live as long as it does.

    Call learn() once first, then table() for every row group, then meta() (which lists
    what was replaced), and report() for the counts."""

    def __init__(self, options: RedactOptions = RedactOptions(), key: bytes | None = None):
        self.options = options
        self.__key = secrets.token_bytes(32) if key is None else bytes(key)
        try:
            self._keep_args = [re.compile(_b(r)) for r in options.keep_args]
        except re.error as e:
            raise UsageError(f"--keep-args {e.pattern!r}: {e}", "give a Python regex") from e
        keep = []
        for p in options.keep_paths:
            if not p.startswith("/"):
                raise UsageError(f"--keep-paths {p!r} is not absolute", "give a path from /")
            keep.append(tuple(c for c in _components(p) if c))
        # (prefix components, kept verbatim?): the longest one a path starts with applies;
        # of equal length, a --keep-paths prefix before a standard or user-named one.
        self._prefixes = sorted(
            [(_components(p), True) for p in SYSTEM_PREFIXES]
            + [(c, True) for c in keep]
            + [(_components(p), False) for p in STRUCTURE_PREFIXES + USER_NAMED_PREFIXES],
            key=lambda pc_: -len(pc_[0]),
        )
        self._kept_comms: set[bytes] = set(_KTHREAD_NAMES)
        self._learned = False
        self._used = False
        k = self.__key
        self._path_ids = _Ids(k, "path", _text_id)
        self._arg_ids = _Ids(k, "arg", _text_id, lambda t: self._arg_kept(b"a" + t))
        self._comm_ids = _Ids(k, "comm", _text_id, lambda t: self._comm_kept(b"c" + t))
        self._host_ids = _Ids(k, "host", _text_id)
        self._uid_ids = _Ids(
            k,
            "uid",
            lambda m, a: FAKE_UID_MIN + _number(m, a) % (0xFFFFFFFF - FAKE_UID_MIN),
            remac=True,
        )
        self._v4_ids = _Ids(
            k,
            "ipv4",
            lambda m, a: (_V4_BASE + _number(m, a) % _V4_SPAN).to_bytes(4, "big"),
            remac=True,
        )
        self._v6_ids = _Ids(
            k,
            "ipv6",
            lambda m, a: (
                _V6_BASE + (int.from_bytes(m[a % 8 : a % 8 + 12], "big") & ((1 << 96) - 1))
            ).to_bytes(16, "big"),
            remac=True,
        )
        self._texts = 0
        # Whole-value caches (tokens are per component; these spare re-splitting).
        self._paths: dict[tuple[bytes, bool], bytes] = {}
        self._args: dict[bytes, bytes] = {}
        self._comms: dict[bytes, bytes] = {}
        self._components: dict[bytes, tuple[bytes, bytes]] = {}

    def __repr__(self) -> str:  # never the key
        return f"Redactor({self.options!r})"

    # --- what the rules need to know first ---------------------------------------------

    def learn(self, meta: dict, exec_filenames: Iterable[bytes | str]) -> None:
        """Take what the allow-lists need from the whole trace before anything is redacted:
        the kernel threads of the start snapshot (pid 2 and its children) and the programs
        exec'd from kept paths (their basenames, first 15 bytes, are kept as comm)."""
        if self._used or self._learned:
            raise RuntimeError("Redactor.learn() is called once, before anything is redacted")
        _refuse_redacted(meta)
        self._learned = True
        for row in meta.get("processes") or ():
            pid, ppid, comm = row
            if pid == 2 or ppid == 2:
                c = _b(comm)
                self._kept_comms.update((c, c[:15]))
        for f in exec_filenames:
            f = _b(f) if isinstance(f, str) else bytes(f)
            if f.startswith(b"/") and self._verbatim(f):
                base = f.rsplit(b"/", 1)[1][:15]
                if base not in (b"", b".", b".."):
                    self._kept_comms.add(base)

    # --- one value of each class -------------------------------------------------------

    def _verbatim(self, path: bytes) -> bool:
        comps = path[1:].split(b"/")
        for prefix, verbatim in self._prefixes:
            if _starts(comps, prefix):
                return verbatim and b".." not in comps[len(prefix) :]
        return False

    def path(self, value: bytes, file: bool = True) -> bytes:
        """A path redacted: kept prefixes as they are, other components as tokens
        (file: the last component is a file's, role `f`)."""
        key = (value, file)
        got = self._paths.get(key)
        if got is None:
            _bound(self._paths)
            got = self._paths[key] = b"/".join(self._path_parts(value.split(b"/"), file))
        return got

    def file_path(self, value: bytes) -> bytes:
        return self.path(value, file=True)

    def _path_parts(self, parts: list[bytes], file: bool) -> list[bytes]:
        """`parts` of a path split at `/` (an absolute path's first part is empty)."""
        if parts[0] == b"" and len(parts) > 1:  # absolute
            comps = parts[1:]
            kept = 0
            for prefix, verbatim in self._prefixes:
                if _starts(comps, prefix):
                    rest = comps[len(prefix) :]
                    if verbatim and b".." not in rest:
                        return parts
                    kept = len(prefix)
                    break
            home = comps[0] == b"home"
            out = [b""] + comps[:kept]
            for i in range(kept, len(comps)):
                role = b"u" if home and i == 1 else b"f" if file and i == len(comps) - 1 else b"d"
                out.append(self._component(comps[i], role))
            return out
        last = len(parts) - 1
        return [
            self._component(c, b"f" if file and i == last else b"d") for i, c in enumerate(parts)
        ]

    def _component(self, comp: bytes, role: bytes) -> bytes:
        if comp in (b"", b".", b".."):
            return comp
        got = self._components.get(comp)
        if got is None:
            _bound(self._components)
            stem, ext = _split_ext(comp)
            got = self._components[comp] = (self._path_ids(stem), ext)
        return role + got[0] + got[1]

    def _dirs(self, names: list[bytes]) -> list[bytes]:
        """cwd `dirs` (names from the directory up; a mount's root reads `/`), redacted as
        the directory path they name."""
        idx = [i for i, n in enumerate(names) if n not in (b"/", b"")]
        idx.reverse()  # root first
        parts = self._path_parts([b""] + [names[i] for i in idx], file=False)[1:]
        out = list(names)
        for i, p in zip(idx, parts):
            out[i] = p
        return out

    def arg(self, value: bytes) -> bytes:
        """An exec argument or a command-line word redacted."""
        got = self._args.get(value)
        if got is None:
            _bound(self._args)
            got = self._args[value] = self._arg(value)
        return got

    def _arg_kept(self, a: bytes) -> bool:
        return (
            a in _STRUCTURAL_ARGS
            or _SHORT_FLAG.fullmatch(a) is not None
            or _LONG_FLAG.fullmatch(a) is not None
            or any(r.fullmatch(a) for r in self._keep_args)
        )

    def _arg(self, a: bytes) -> bytes:
        if self._arg_kept(a):
            return a
        m = _LONG_WITH_VALUE.fullmatch(a)
        if m:
            return m.group(1) + self.arg(m.group(2))
        m = _FLAG_WITH_PATH.fullmatch(a)
        if m:
            return m.group(1) + self.path(m.group(2), file=True)
        if b"/" in a:
            return self.path(a, file=True)
        return b"a" + self._arg_ids(a)

    def _comm_kept(self, c: bytes) -> bool:
        return (
            self.options.keep_comm
            or c == b""
            or c in self._kept_comms
            or _KTHREAD_RE.fullmatch(c) is not None
        )

    def comm(self, value: bytes) -> bytes:
        """A command name redacted."""
        got = self._comms.get(value)
        if got is None:
            got = self._comms[value] = (
                value if self._comm_kept(value) else b"c" + self._comm_ids(value)
            )
        return got

    def uid(self, value: int) -> int:
        """A uid redacted: system ones kept, others a fake >= FAKE_UID_MIN."""
        return value if _kept_uid(value) else self._uid_ids(value.to_bytes(4, "little"))

    def address(self, family: int | None, addr: bytes) -> bytes:
        """An address column's 16 bytes redacted (family 2: IPv4 in the first 4 bytes, and
        the 12 after them zeroed; 10: IPv6; other: IPv6 unless all zeros)."""
        if family == 2:
            return self._v4(addr[:4]) + bytes(12)
        if family != 10 and addr == bytes(16):
            return addr
        if addr[:12] == _MAPPED:
            return _MAPPED + self._v4(addr[12:16])
        ip = ipaddress.IPv6Address(addr)
        if self._addr_kept(ip):
            return addr
        return self._v6_ids(addr)

    def _v4(self, a4: bytes) -> bytes:
        return a4 if self._addr_kept(ipaddress.IPv4Address(a4)) else self._v4_ids(a4)

    def _addr_kept(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        nets = _ALWAYS + _PRIVATE if self.options.keep_private else _ALWAYS
        return any(ip.version == n.version and ip in n for n in nets)

    def hostname(self, value: str) -> str:
        return "host-" + self._host_ids(_b(value)).decode()

    # --- tables -----------------------------------------------------------------------

    def table(self, kind: str, t: pa.Table) -> pa.Table:
        """Rows of `kind` (any of its columns, in the in-memory representation: strings
        binary or string, args/dirs lists of them, addresses fixed_size_binary[16]) with
        the identifying columns replaced: the same schema and rows out. A column this
        module does not know is refused (TraceFormatError): nothing passes unexamined."""
        self._used = True
        cols = []
        for name, col in zip(t.column_names, t.columns):
            if name in PATH_COLUMNS:
                col = _per_value(col, self.file_path if PATH_COLUMNS[name] else self.path)
            elif name in COMM_COLUMNS:
                col = _per_value(col, self.comm)
            elif name == "args":
                col = _per_item(col, self.arg)
            elif name == "dirs":
                col = _per_list(col, self._dirs)
            elif name == "uid":
                col = _uids(col, self.uid)
            elif name in ("saddr", "daddr"):
                if "family" not in t.column_names:
                    raise TraceFormatError(
                        f"{kind} rows: {name} without family cannot be redacted",
                        "read the family column with the addresses",
                    )
                col = _addresses(col, t.column("family"), self.address)
            elif name not in SAFE_COLUMNS and name != "kind":
                raise TraceFormatError(
                    f"{kind} rows: column {name!r} is not known to redaction",
                    "read the trace with the bpfcap that redacts it",
                )
            cols.append(col)
        return pa.Table.from_arrays(cols, schema=t.schema)

    # --- metadata ---------------------------------------------------------------------

    def meta(self, meta: dict) -> dict:
        """The redacted metadata, with meta["redaction"]: {"format", "options", "redacted"
        (classes of values replaced), "dropped" (keys not known to be safe, removed)}.
        Call it after every table: `redacted` counts what they replaced."""
        _refuse_redacted(meta)
        self._used = True
        dropped: list[str] = []
        out = self._fields(meta, dropped, "")
        counts = self.report()
        out["redaction"] = {
            "format": FORMAT,
            "options": self.options.as_dict(),
            "redacted": [c for c in CLASSES if counts[c]],
            "dropped": dropped,
        }
        return out

    def _fields(self, meta: dict, dropped: list[str], where: str) -> dict:
        """The redacted keys of a metadata object (the trace's, or one host's of a
        multi-host trace: `hosts`, whose names are host names)."""
        out: dict[str, Any] = {}
        for key, value in meta.items():
            if key in SAFE_META_KEYS:
                out[key] = copy.deepcopy(value)
            elif key == "host" and isinstance(value, dict):
                out[key] = self._host(value, dropped)
            elif key == "command_line" and isinstance(value, list):
                out[key] = [self._arg_text(a) for a in value]
            elif key == "settings" and isinstance(value, dict):
                out[key] = self._settings(value, dropped)
            elif key == "processes" and isinstance(value, list):
                out[key] = [[pid, ppid, self._comm_text(c)] for pid, ppid, c in value]
            elif key == "stop_reason":
                out[key] = value if _fixed_reason(value) else self._text()
            elif key == "slice" and isinstance(value, dict):
                out[key] = self._slice(value, dropped)
            elif key == "hosts" and not where and isinstance(value, list):
                out[key] = [
                    dict(
                        self._fields(h, dropped, "hosts."),
                        name=self.hostname(str(h.get("name", ""))),
                        shift_ns=h.get("shift_ns", 0),
                    )
                    for h in value
                    if isinstance(h, dict)
                ]
            elif key in ("name", "shift_ns") and where == "hosts.":
                continue  # set by the caller
            elif key == "merge" and isinstance(value, dict):
                out[key] = {
                    "sources": [
                        {k: src[k] for k in ("sha256", "start_ns", "end_ns") if k in src}
                        for src in value.get("sources") or []
                        if isinstance(src, dict)
                    ]
                }
            else:
                dropped.append(_key(where, key))
        return out

    def _host(self, host: dict, dropped: list[str]) -> dict:
        out = {}
        for k, v in host.items():
            if k in SAFE_HOST_KEYS:
                out[k] = copy.deepcopy(v)
            elif k == "hostname" and isinstance(v, str):
                out[k] = self.hostname(v)
            elif k == "boot_id":
                continue  # identifies the machine's boot; nothing reads it but merge
            else:
                dropped.append(_key("host.", k))
        return out

    def _settings(self, settings: dict, dropped: list[str]) -> dict:
        out = {}
        for k, v in settings.items():
            if k in SAFE_SETTINGS_KEYS:
                out[k] = copy.deepcopy(v)
            elif k == "command" and (v is None or isinstance(v, list)):
                out[k] = None if v is None else [self._arg_text(a) for a in v]
            elif k == "comm" and (v is None or isinstance(v, str)):
                out[k] = None if v is None else self._comm_text(v)
            else:
                dropped.append(_key("settings.", k))
        return out

    def _slice(self, sl: dict, dropped: list[str]) -> dict:
        out = {}
        for k, v in sl.items():
            if k in SAFE_SLICE_KEYS:
                out[k] = copy.deepcopy(v)
            elif k == "filters" and isinstance(v, dict):
                f = out[k] = {}
                for fk, fv in v.items():
                    if fk in SAFE_SLICE_FILTERS:
                        f[fk] = copy.deepcopy(fv)
                    elif fk == "comm" and (fv is None or isinstance(fv, list)):
                        f[fk] = None if fv is None else [self._comm_text(c) for c in fv]
                    elif fk == "where":
                        f[fk] = None if fv is None else self._text()
                    else:
                        dropped.append(_key("slice.filters.", fk))
            else:
                dropped.append(_key("slice.", k))
        return out

    def _arg_text(self, a: Any) -> str:
        return _s(self.arg(_b(str(a))))

    def _comm_text(self, c: Any) -> str:
        return _s(self.comm(_b(str(c))))

    def _text(self) -> str:
        self._texts += 1
        return REDACTED_TEXT

    def report(self) -> dict[str, int]:
        """Distinct values replaced so far, per class (paths: path components)."""
        return {
            "paths": len(self._path_ids.fwd),
            "args": len(self._arg_ids.fwd),
            "comms": len(self._comm_ids.fwd),
            "hosts": len(self._host_ids.fwd),
            "uids": len(self._uid_ids.fwd),
            "addresses": len(self._v4_ids.fwd) + len(self._v6_ids.fwd),
            "texts": self._texts,
        }


def _key(where: str, name: Any) -> str:
    """A dropped key as `redaction.dropped` names it: bpfcap names keys as identifiers;
    a name that is not one (a hand-made key could hold anything) is not repeated."""
    ok = isinstance(name, str) and _KEY_NAME.fullmatch(name)
    return where + (name if ok else REDACTED_TEXT)


def _bound(cache: dict) -> None:
    """Whole-value caches only spare work: emptied when big (the tokens stay in _Ids)."""
    if len(cache) >= _CACHE_MAX:
        cache.clear()


def _refuse_redacted(meta: dict) -> None:
    if "redaction" in meta:
        raise UsageError(
            "the trace is already redacted",
            "redact the original trace (its tokens cannot be redacted again consistently)",
        )


def _fixed_reason(v: Any) -> bool:
    return (
        v is None or v in STOP_REASONS or (isinstance(v, str) and bool(_SIGNAL_NAME.fullmatch(v)))
    )


def _split_ext(comp: bytes) -> tuple[bytes, bytes]:
    """(stem, extension) of a path component: the extension is the longest run of allowed
    extensions (and numeric versions right after `.so`) ending it; the stem is not empty."""
    parts = comp.split(b".")
    if len(parts) < 2 or parts[0] == b"":
        return comp, b""
    cut = len(parts)  # parts[cut:] are the extension
    i = len(parts) - 1
    while i >= 1:
        if parts[i] in _EXT:
            cut = i
            i -= 1
            continue
        j = i  # numeric versions, kept only when `.so` comes before them
        while j >= 1 and _VERSION.fullmatch(parts[j]):
            j -= 1
        if j < i and j >= 1 and parts[j] == b"so":
            cut = j
            i = j - 1
            continue
        break
    if cut == len(parts):
        return comp, b""
    return b".".join(parts[:cut]), b"." + b".".join(parts[cut:])


# --- columns, per distinct value -----------------------------------------------------


def _chunks(col: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    return col.chunks if isinstance(col, pa.ChunkedArray) else [col]


def _as_binary(arr: pa.Array) -> tuple[pa.Array, pa.DataType]:
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        large = pa.types.is_large_string(arr.type)
        return arr.cast(pa.large_binary() if large else pa.binary()), arr.type
    return arr, arr.type


def _map_strings(arr: pa.Array, fn: Callable[[bytes], bytes]) -> pa.Array:
    """`fn` applied to each distinct value of a binary/string array (nulls stay null).
    The result is built anew: no buffer of the input (where a null slot may still
    cover bytes) reaches the output."""
    arr, type_ = _as_binary(arr)
    if arr.null_count == len(arr):
        return pa.nulls(len(arr), type_)
    enc = pc.dictionary_encode(arr)
    new = strings([fn(v) for v in enc.dictionary.to_pylist()])
    return new.take(enc.indices).cast(type_)


def _per_value(col: pa.ChunkedArray, fn: Callable[[bytes], bytes]) -> pa.ChunkedArray:
    return pa.chunked_array([_map_strings(c, fn) for c in _chunks(col)], col.type)


def _list_values(c: pa.ListArray) -> tuple[pa.Array, pa.Array]:
    """(offsets from 0, the values they span) of a list array, null lists' spans too."""
    start, end = c.offsets[0].as_py(), c.offsets[-1].as_py()
    return pc.subtract(c.offsets, start), c.values.slice(start, end - start)


def _per_item(col: pa.ChunkedArray, fn: Callable[[bytes], bytes]) -> pa.ChunkedArray:
    """`fn` on each item of a list column (same lists, nulls kept)."""
    out = []
    for c in _chunks(col):
        if c.null_count == len(c):
            out.append(pa.nulls(len(c), c.type))
            continue
        offsets, values = _list_values(c)
        mask = c.is_null() if c.null_count else None
        out.append(
            pa.ListArray.from_arrays(offsets, _map_strings(values, fn), type=c.type, mask=mask)
        )
    return pa.chunked_array(out, col.type)


def _per_list(col: pa.ChunkedArray, fn: Callable[[list[bytes]], list[bytes]]) -> pa.ChunkedArray:
    """`fn` on each whole list of a list column (once per distinct list)."""
    out = []
    for c in _chunks(col):
        if c.null_count == len(c):
            out.append(pa.nulls(len(c), c.type))
            continue
        offsets, values = _list_values(c)
        values, _ = _as_binary(values)
        joined = pc.binary_join(pa.ListArray.from_arrays(offsets, values), b"\0")
        # An empty list and [b""] join alike: tell them apart by length (NUL is in no
        # kernel string); null lists stay null keys.
        empty = pc.equal(pc.list_value_length(c), 0)
        key = pc.if_else(empty, pa.scalar(b"\0\0", pa.binary()), joined)
        key = pc.if_else(c.is_valid(), key, pa.scalar(None, pa.binary()))
        enc = pc.dictionary_encode(key)
        valid = enc.indices.is_valid()
        rows = np.flatnonzero(np.asarray(valid))
        _, first = np.unique(np.asarray(enc.indices.filter(valid)), return_index=True)
        # np.unique sorts the ids, and ids number distinct lists in order of first row.
        lists = [fn([_bytes(x) for x in c[row].as_py()]) for row in rows[first].tolist()]
        new = pa.array(lists, pa.list_(pa.binary()))
        out.append(new.take(enc.indices).cast(c.type))
    return pa.chunked_array(out, col.type)


def _bytes(x: Any) -> bytes:
    return _b(x) if isinstance(x, str) else (b"" if x is None else x)


def _uids(col: pa.ChunkedArray, fn: Callable[[int], int]) -> pa.ChunkedArray:
    out = []
    for c in _chunks(col):
        if c.null_count == len(c):
            out.append(pa.nulls(len(c), c.type))
            continue
        enc = pc.dictionary_encode(c)
        d = enc.dictionary.to_numpy(zero_copy_only=False)
        new = pa.array(np.array([fn(int(u)) for u in d], dtype=np.uint32), c.type)
        out.append(new.take(enc.indices))
    return pa.chunked_array(out, col.type)


def _addresses(
    col: pa.ChunkedArray, family: pa.ChunkedArray, fn: Callable[[int | None, bytes], bytes]
) -> pa.ChunkedArray:
    """Each distinct (family, address) once; nulls stay null."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    fam = family.combine_chunks() if isinstance(family, pa.ChunkedArray) else family
    if arr.null_count == len(arr):
        return pa.chunked_array([pa.nulls(len(arr), col.type)], col.type)
    width = col.type.byte_width
    # One key per row: 2 bytes of family (0xFFFF: null), then the address.
    f = np.asarray(pc.fill_null(fam.cast(pa.uint32()), 0xFFFF).to_numpy(zero_copy_only=False))
    raw = np.frombuffer(
        arr.buffers()[1], dtype=np.uint8, count=len(arr) * width, offset=arr.offset * width
    ).reshape(len(arr), width)
    keys = np.empty((len(arr), width + 2), dtype=np.uint8)
    keys[:, :2] = f.astype("<u2").view(np.uint8).reshape(-1, 2)
    keys[:, 2:] = raw
    enc = pc.dictionary_encode(
        pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width + 2), len(arr), [None, pa.py_buffer(keys)]
        )
    )
    mapped = []
    for b in enc.dictionary.to_pylist():
        fam_v = int.from_bytes(b[:2], "little")
        mapped.append(fn(None if fam_v == 0xFFFF else fam_v, b[2:]))
    new = pa.FixedSizeBinaryArray.from_buffers(
        col.type, len(mapped), [None, pa.py_buffer(b"".join(mapped))]
    )
    res = new.take(enc.indices)
    if arr.null_count:
        res = pc.if_else(arr.is_valid(), res, pa.scalar(None, col.type))
    return pa.chunked_array([res], col.type)


# --- docs ----------------------------------------------------------------------------


def allow_lists_markdown() -> str:
    """The allow-lists section of docs/redaction.md (a test checks that they agree)."""

    def codes(items: Iterable[str]) -> str:
        return ", ".join(f"`{i}`" for i in items)

    lines = [
        "<!-- allow-lists: generated from formats/redact.py (allow_lists_markdown()) -->",
        "",
        f"* **System prefixes** (kept verbatim with everything under them): "
        f"{codes(SYSTEM_PREFIXES)}.",
        f"* **User-named, under a system prefix** (redacted below it): "
        f"{codes(USER_NAMED_PREFIXES)}.",
        f"* **Standard directories** (their names kept, what is under them redacted): "
        f"{codes(STRUCTURE_PREFIXES)}.",
        f"* **File extensions** (kept after a token, several in a row too, and numeric "
        f"versions after `.so`): {codes(EXTENSIONS)}.",
        f"* **Kernel threads' names** (kept as comm, also cut to 15 bytes): "
        f"{codes(KERNEL_THREAD_NAMES)}.",
        f"* **Kernel threads' name patterns** (Python regexes, full match): "
        f"{codes(KERNEL_THREAD_PATTERNS)}.",
        f"* **uids kept**: {KEPT_UIDS}; others become fake uids from {FAKE_UID_MIN:,}.",
        f"* **Addresses always kept**: {codes(ALWAYS_KEPT_ADDRESSES)}.",
        f"* **Private addresses** (kept with `--keep-private`): {codes(PRIVATE_NETWORKS)}.",
        f"* **Fake addresses**: IPv4 from `{FAKE_IPV4}` (but `255.255.255.255`), IPv6 from "
        f"`{FAKE_IPV6}`.",
        f"* **Stop reasons kept**: {codes(STOP_REASONS)} and signal names (`SIGINT`, ...).",
        f"* **Metadata kept as is**: {codes(SAFE_META_KEYS)}; in `host`: "
        f"{codes(SAFE_HOST_KEYS)}; in `settings`: {codes(SAFE_SETTINGS_KEYS)}; in `slice`: "
        f"{codes(SAFE_SLICE_KEYS)} and the filters {codes(SAFE_SLICE_FILTERS)}.",
        "",
        "<!-- end of allow-lists -->",
    ]
    return "\n".join(lines) + "\n"
