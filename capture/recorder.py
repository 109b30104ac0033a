"""`bpfcap record`: load the program, drain it into closed segments, merge at stop.

Timeline of a recording to OUT:

1. Everything that can be checked is checked before anything is attached (output path,
   command, pid, privileges, BCC, headers, tracefs, tracepoints).
2. With `-- COMMAND`, the command is forked first and held on a pipe; once the program is
   loaded its pid goes into the in-kernel `tracked` set and it is released, so its first
   instruction is already filtered in.
3. Every DRAIN_BUSY_S (busy) to DRAIN_IDLE_S (quiet) the ring buffer's records are copied
   out (and counted); every SEGMENT_S or SEGMENT_MAX_ROWS with rows (every QUIET_SEGMENT_S
   without) a writer thread decodes them in bulk into a segment of `OUT.partial/`, written
   and renamed into place, metadata in its footer. A recorder killed at any moment leaves every
   closed segment readable.
4. At stop: hooks detached, the rest drained (ring buffer and per-CPU partial batches),
   the last segment closed, all segments joined into OUT by copying bytes
   (formats/parquet_concat.py), the directory removed.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import resource
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bpfcap import __version__
from bpfcap.formats.errors import CaptureUnavailable, OutputError, UsageError
from bpfcap.formats.events import BY_KIND_ID, DEFAULT_TYPES, EVENT_TYPES
from bpfcap.formats.schema import EventType
from bpfcap.formats.trace import FORMAT_VERSION, PARTIAL_SUFFIX
from bpfcap.formats.writer import merge_files

from . import host
from .bpf_loader import BCC_FIX
from .bpfgen import (
    AUX_HOOKS,
    FLUSH_HZ,
    MAX_RINGBUF_PAGES,
    RINGBUF_PAGES,
    TREE_AUX_HOOKS,
    TREE_HOOKS,
    TREE_MAX,
    generate,
    ringbuf_pages_for,
)
from .btf import resolve_reads
from .decode import Records, decode_buffers
from .segments import SegmentDir

SEGMENT_S = 1.0
# A segment closes early when it holds this many rows: at a syscall storm's 1.6M rows/s a
# whole second of decoded rows (and the segment being encoded) cost ~130 MB of RSS.
SEGMENT_MAX_ROWS = 1 << 16
# Rows kept waiting while the writer thread is still busy with the last segment: beyond
# this the drain waits for it (the ring buffer then absorbs the storm, or counts loss).
SEGMENT_HARD_MAX_ROWS = 1 << 18
QUIET_SEGMENT_S = 10.0  # an empty segment (counters only) at least this often
# The 16 MiB ring buffer holds ~0.9 s of an open storm here (80-byte records) and ~270 ms
# of a getppid storm (56 bytes): when busy, drain well within that; when quiet, rarely.
DRAIN_BUSY_S = 0.02
DRAIN_IDLE_S = 0.1
BUSY_BYTES = 256 * 1024
FLUSH_S = 0.1  # partial batches are sent at least this often


@dataclass
class RecordOptions:
    events: tuple[EventType, ...] = DEFAULT_TYPES
    output: Path = Path("bpfcap.parquet")
    duration: float | None = None
    pid: int | None = None
    command: list[str] | None = None
    force: bool = False
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    comm: str | None = None
    syscalls: tuple[int, ...] | None = None  # the syscall type's in-kernel filter
    max_events: int | None = None  # stop once this many events are written
    max_size: int | None = None  # stop once the closed segments hold this many bytes
    # --rotate: the output is a directory of trace files, one per period (seconds) or
    # size (bytes); --keep: only the newest N of them (a flight recorder).
    rotate_s: float | None = None
    rotate_bytes: int | None = None
    keep: int | None = None
    ringbuf_pages: int | None = None  # None: bpfgen.ringbuf_pages_for(this host)
    tree_max: int | None = None  # the tree filter's bound (None: the host's pid_max)
    user: pwd.struct_passwd | None = None  # --user: who runs -- COMMAND (None: as we are)

    @property
    def rotating(self) -> bool:
        return self.rotate_s is not None or self.rotate_bytes is not None


@dataclass
class RecordResult:
    path: Path
    events: int
    lost: int
    size: int
    exit_status: int | None
    meta: dict


def validate(opts: RecordOptions) -> None:
    """Checks on the arguments, before anything is loaded or attached."""
    try:
        _validate(opts)
    except PermissionError as e:
        raise OutputError(f"cannot write {opts.output}: permission denied on {e.filename}") from e


# Bounds of user-supplied numbers, checked before anything attaches: a year of
# recording, of rotation period (and bpfgen.MAX_RINGBUF_PAGES).
MAX_SECONDS = 366 * 86400.0


def _shown(arg: str) -> str:
    """A command-line argument as text to print: bytes that are not UTF-8 as \\xNN."""
    return os.fsencode(arg).decode("utf-8", "backslashreplace")


def _seconds(value: float | None, what: str) -> None:
    if value is not None and not (0 < value <= MAX_SECONDS):  # NaN fails both
        raise UsageError(
            f"{what} must be a number of seconds in (0, {MAX_SECONDS:.0f}], not {value}"
        )


def _validate(opts: RecordOptions) -> None:
    out = opts.output
    _seconds(opts.duration, "duration")
    _seconds(opts.rotate_s, "--rotate")
    if opts.max_events is not None and opts.max_events <= 0:
        raise UsageError(f"--max-events must be positive, not {opts.max_events}")
    if opts.max_size is not None and opts.max_size <= 0:
        raise UsageError(f"--max-size must be positive, not {opts.max_size}")
    if opts.pid is not None and not Path(f"/proc/{opts.pid}").is_dir():
        raise UsageError(f"no process with pid {opts.pid}")
    if opts.comm is not None and not 0 < len(os.fsencode(opts.comm)) <= 15:
        raise UsageError(f"-n {opts.comm!r}: a task name has 1 to 15 bytes")
    pages = opts.ringbuf_pages or RINGBUF_PAGES
    if not 8 <= pages <= MAX_RINGBUF_PAGES or pages & (pages - 1):
        raise UsageError(
            f"ring buffer pages must be a power of two in [8, {MAX_RINGBUF_PAGES}], not {pages}"
        )
    if opts.tree_max is not None and not 1 <= opts.tree_max <= TREE_MAX:
        raise UsageError(f"--tree-max must be in [1, {TREE_MAX}], not {opts.tree_max}")
    if opts.user is not None and opts.command is None:
        raise UsageError("--user sets who runs -- COMMAND", "add -- COMMAND")
    if opts.command:
        if shutil.which(opts.command[0]) is None:
            raise UsageError(f"command not found: {opts.command[0]}")
        if opts.pid is not None:
            raise UsageError("-p and -- COMMAND cannot be combined")
    if opts.keep is not None and not opts.rotating:
        raise UsageError("--keep needs --rotate")
    if opts.keep is not None and opts.keep < 1:
        raise UsageError(f"--keep must be at least 1, not {opts.keep}")
    if opts.rotating:
        if out.exists():
            raise OutputError(
                f"{out} exists", "--rotate writes its files into a new directory: give one"
            )
    elif out.exists() and not opts.force:
        raise OutputError(f"{out} already exists", "pass --force to overwrite it")
    elif out.is_dir():
        raise OutputError(f"{out} is a directory", "give a file name with -o")
    partial = Path(str(out) + PARTIAL_SUFFIX)
    if partial.exists() and not opts.rotating:
        raise OutputError(
            f"{partial} exists, left by a recording that did not stop cleanly",
            f"read it with `bpfcap info {partial}` and move it away",
        )
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {out}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {out}: permission denied on {parent}")


def check_privileges() -> None:
    if not host.can_bpf():
        raise CaptureUnavailable(
            "recording needs root (or CAP_BPF and CAP_PERFMON)", "run it with sudo"
        )


def check_host() -> None:
    """Raise CaptureUnavailable with the fix for the first missing prerequisite."""
    check_privileges()
    # Found, not imported: BCC is imported only in the loader child (capture/kernel.py),
    # so that its ~60 MB library and the compiler never enter the recorder's memory.
    if importlib.util.find_spec("bcc") is None:
        raise CaptureUnavailable("BCC Python bindings are not importable", BCC_FIX)
    if host.kernel_headers() is None:
        raise CaptureUnavailable(
            f"no kernel headers at /lib/modules/{os.uname().release}/build "
            "(BCC compiles against them)",
            "install linux-headers-$(uname -r), or run `make setup`",
        )
    if host.tracefs_root() is None:
        raise CaptureUnavailable(
            "tracefs is not mounted", "mount -t tracefs nodev /sys/kernel/tracing"
        )


def probe_manifest(
    types: tuple[EventType, ...],
    present: set[str],
    filter_tree: bool,
    kernel_reads: dict[str, dict] | None = None,
) -> list[dict]:
    """One entry per hook group: attached, or missing (which tracepoint, or which kernel
    struct read a type cannot record without, and so what)."""
    out = []
    groups = [(t.name, g) for t in types for g in t.hooks]
    if filter_tree:
        groups.append(("(process tree filter)", TREE_HOOKS))
    needs = {
        key.split(".")[0]: f"needs {key} ({r['reason']})"
        for key, r in (kernel_reads or {}).items()
        if r["required"] and r["status"] != "btf"
    }
    for name, group in groups:
        missing = [tp for tp in group if tp not in present]
        reason = f"tracepoint {', '.join(missing)} not on this kernel" if missing else ""
        out.append(
            {
                "event": name,
                "tracepoints": list(group),
                "status": "missing" if missing or name in needs else "attached",
                "reason": reason or needs.get(name, ""),
            }
        )
    return out


def _decode(records: dict[int, Records], caps: dict[str, int], sink) -> list:
    """Tables of drained records (in the writer thread), cut to `caps` rows by kind; the
    record buffers go back to the sink."""
    tables = decode_buffers(records)
    sink.recycle(records)
    return [t.slice(0, caps[name]) if name in caps else t for name, t in tables.items()]


def _rows_in(segment: Path) -> int:
    """Rows of a closed segment, from its footer (0 if it cannot be read)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(segment).num_rows
    except (OSError, ValueError):
        return 0


def _spawn_held(command: list[str], user: pwd.struct_passwd | None = None) -> tuple[int, int]:
    """Fork `command`, held until a byte arrives on the returned pipe (EOF: it exits).
    It starts as it would from the shell: the signals Python ignores (SIGPIPE, SIGXFSZ)
    back to their default, no signal blocked; every other disposition inherited (a
    `nohup` stays in force). With `user`, as `sudo -u USER` runs it: that user's uid,
    gid and groups, and HOME, USER, LOGNAME and SHELL."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(w)
            go = os.read(r, 1)
            os.close(r)
            if go == b"x":
                for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                env = os.environ
                if user is not None:
                    os.initgroups(user.pw_name, user.pw_gid)
                    os.setgid(user.pw_gid)
                    os.setuid(user.pw_uid)
                    env = dict(
                        env,
                        HOME=user.pw_dir,
                        USER=user.pw_name,
                        LOGNAME=user.pw_name,
                        SHELL=user.pw_shell or "/bin/sh",
                    )
                os.execvpe(command[0], command, env)
        except OSError as e:  # exec (or the user switch) failed: say why, as a shell would
            os.write(2, f"bpfcap: {command[0]}: {e}\n".encode(errors="replace"))
        finally:
            os._exit(127)
    os.close(r)
    return pid, w


class _WriteFailed(Exception):
    """Writing the trace failed (the OSError is its cause): the one failure that stops a
    recording."""


def _writing(action: Callable[..., None], *args) -> None:
    """`action(*args)`, a step that writes the trace: its OSError becomes _WriteFailed."""
    try:
        action(*args)
    except OSError as e:
        raise _WriteFailed() from e


def never_raises(log: Callable[[str], None]) -> Callable[[str], None]:
    """`log`, made unable to stop the recording: a message to a terminal that hung up
    (EIO), a closed pipe (EPIPE) or a full log file is dropped, not raised."""

    def say(msg: str) -> None:
        try:
            log(msg)
        except (OSError, ValueError):  # ValueError: the stream was closed
            pass

    return say


class Recorder:
    def __init__(self, opts: RecordOptions, log: Callable[[str], None]):
        self.opts = opts
        self.log = never_raises(log)
        self._stop_reason: str | None = None
        self._told_stopping = False
        self._told_tree_full = False
        self._rotate_now = False
        self._old_handlers: dict = {}
        self.written = {t.name: 0 for t in EVENT_TYPES}
        # Events captured after --max-events was reached: not written, by kind.
        self.over_limit = {t.name: 0 for t in EVENT_TYPES}
        # Per kind, [from, to, lost so far] for each segment (from..to, monotonic ns)
        # that lost events: where in the recording events were lost, so that reports
        # state the loss within the window they cover. Empty when nothing is lost.
        self.lost_timeline: dict[str, list[list[int]]] = {}
        self._segment_from_ns = 0
        self.max_drain_gap_ns = 0

    def _on_hup(self, _signum, _frame) -> None:
        """SIGHUP: start a new file now (--rotate); without --rotate there is one file."""
        if self.opts.rotating:
            self._rotate_now = True
        else:
            self.log("bpfcap: SIGHUP ignored: recording into one file (--rotate starts new ones)")

    def _on_signal(self, signum, _frame) -> None:
        if self._stop_reason is None:
            self._stop_reason = signal.Signals(signum).name
        elif not self._told_stopping:
            # A second Ctrl-C while the last events are written and the segments merged:
            # stopping half-way would only lose what is being written. Say so, go on.
            self._told_stopping = True
            self.log(
                "bpfcap: already stopping: writing the last events and merging the "
                "segments (further Ctrl-C are ignored; what is closed stays in "
                f"{self.opts.output}{PARTIAL_SUFFIX}/ whatever happens)"
            )

    def run(self) -> RecordResult:
        opts = self.opts
        check_privileges()  # first: without them, nothing else matters
        validate(opts)
        check_host()
        filter_tree = bool(opts.command)
        self.ringbuf_pages = opts.ringbuf_pages or ringbuf_pages_for(
            host.possible_cpus(), len(opts.events)
        )
        wanted = {tp for t in opts.events for g in t.hooks for tp in g}
        if filter_tree:
            wanted.update(TREE_HOOKS + TREE_AUX_HOOKS)
        present = host.present_tracepoints(wanted | set(AUX_HOOKS))
        self.comm_cache = host.task_storage() and "task:task_rename" in present
        # Kernel struct members, located in this kernel's BTF (never from headers).
        offsets, self.kernel_reads = resolve_reads(opts.events)
        manifest = probe_manifest(opts.events, present, filter_tree, self.kernel_reads)
        usable = {m["event"] for m in manifest if m["status"] == "attached"}
        if not any(t.name in usable for t in opts.events):
            raise CaptureUnavailable(
                "none of the requested events can be recorded on this kernel",
                "run `bpfcap doctor` to see which tracepoints are missing",
            )
        for m in manifest:
            if m["status"] != "attached":
                self.log(f"warning: {m['event']}: {m['reason']}; those calls are not recorded")
        for key, r in self.kernel_reads.items():
            if r["status"] != "btf" and not r["required"]:
                null = f"; {', '.join(r['columns'])} will be null" if r["columns"] else ""
                self.log(f"warning: {key}: {r['reason']}{null}")
        if filter_tree and "(process tree filter)" not in usable:
            raise CaptureUnavailable(
                "cannot follow a command's processes: sched_process_fork/exit tracepoints missing"
            )

        # The time origin (reports' TIME(s), -d windows) is taken before the hooks are
        # attached, as BCC tools take theirs at start: no event can precede it.
        self.start_ns = time.monotonic_ns()
        self.static_meta = self._static_meta(manifest)
        # The segment directory and its header (the metadata known now, no events) come
        # before anything is loaded: an unwritable output or a full disk fails here, not
        # after attaching; and a recorder killed during the load, or before its first
        # segment closes, leaves a directory that reads as an empty trace.
        segments = SegmentDir(
            opts.output if opts.rotating else Path(str(opts.output) + PARTIAL_SUFFIX),
            header=dict(self.static_meta, start_ns=self.start_ns, clean_stop=False),
        )
        child = release = None
        if opts.command:
            child, release = _spawn_held(opts.command, opts.user)
        program = generate(
            opts.events,
            present,
            self_tgid=os.getpid(),
            filter_tgid=opts.pid,
            filter_tree=filter_tree,
            task_storage=host.task_storage(),
            filter_comm=os.fsencode(opts.comm) if opts.comm else None,
            syscalls=opts.syscalls,
            kernel_offsets=offsets,
            ringbuf_pages=self.ringbuf_pages,
            tree_max=opts.tree_max or min(host.pid_max() or TREE_MAX, TREE_MAX),
            exit_group_dead=host.tracepoint_has_field("sched:sched_process_exit", "group_dead"),
        )
        from .kernel import LoadedProgram

        t0 = time.monotonic_ns()
        try:
            loaded = LoadedProgram(program)
        except BaseException:
            if child is not None:
                os.close(release)
                os.waitpid(child, 0)
            segments.remove()
            raise
        load_s = (time.monotonic_ns() - t0) / 1e9
        try:
            return self._record(loaded, segments, child, release, load_s)
        finally:
            loaded.close()
            for s, h in self._old_handlers.items():
                signal.signal(s, h)

    def _static_meta(self, manifest: list[dict]) -> dict:
        """The metadata that does not change while recording (_record() adds the load
        time, the attach time and the process snapshot once the hooks are live)."""
        opts = self.opts
        return {
            "format_version": FORMAT_VERSION,
            "bpfcap_version": __version__,
            "host": host.host_info(),
            "command_line": opts.argv,
            "clock": host.clock_mapping(),
            "processes": host.process_snapshot(),
            "disks": host.disks(),
            "probes": manifest,
            "kernel_reads": self.kernel_reads,
            "settings": {
                "events": [t.name for t in opts.events],
                "pid": opts.pid,
                "command": opts.command,
                "duration_s": opts.duration,
                "segment_s": SEGMENT_S,
                "drain_s": [DRAIN_BUSY_S, DRAIN_IDLE_S],
                "flush_hz": FLUSH_HZ,
                "flush_every_s": FLUSH_S,
                "ringbuf_pages": self.ringbuf_pages,
                "comm": opts.comm,
                "syscalls": list(opts.syscalls) if opts.syscalls is not None else None,
                "max_events": opts.max_events,
                "rotate_s": opts.rotate_s,
                "rotate_bytes": opts.rotate_bytes,
                "keep": opts.keep,
                "max_size": opts.max_size,
                "entry_stash": "task storage" if host.task_storage() else "hash",
                "comm_cache": self.comm_cache,
                "batch": {t.name: t.batch for t in opts.events},
            },
        }

    def _record(self, loaded, segments, child, release, load_s) -> RecordResult:
        opts = self.opts
        host.keep_freed_memory()
        # bpf_load_s: compiling (clang, in a helper process) and attaching.
        self.static_meta["agent"] = {"bpf_load_s": round(load_s, 3)}
        attached_ns = self.static_meta["attached_ns"] = time.monotonic_ns()
        # Taken again now that the hooks are live (the header has the one from before
        # the load): a process started during the load is in it, as its parent for
        # execsnoop's PPID.
        self.static_meta["processes"] = host.process_snapshot()
        self._segment_from_ns = self.start_ns
        partial = segments.path
        if child is not None:
            loaded.track(child)
            os.write(release, b"x")
            os.close(release)
        scope = (
            f"`{' '.join(opts.command)}` and its descendants"
            if opts.command
            else f"pid {opts.pid}"
            if opts.pid
            else "system-wide"
        ) + (f", tasks named {_shown(opts.comm)}" if opts.comm else "")
        length = f" for {opts.duration:g} s" if opts.duration else ""
        # Ours until the trace is written (run() restores them): see _on_signal. Installed
        # before "Recording" is said: whoever waits for that line (a script, the tests)
        # may send SIGINT or SIGHUP at once, and must not meet Python's defaults.
        self._old_handlers = {
            s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)
        }
        self._old_handlers[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hup)
        self.log(
            f"Recording {','.join(t.name for t in opts.events)} {scope}{length} "
            f"to {opts.output}; Ctrl-C to stop"
        )
        exit_status = None
        error: BaseException | None = None
        try:
            # -d counts from when the hooks are live.
            deadline = attached_ns + opts.duration * 1e9 if opts.duration else None
            next_segment = attached_ns + SEGMENT_S * 1e9
            nap = DRAIN_IDLE_S
            next_flush = attached_ns
            last_written = attached_ns
            last_drain = time.monotonic_ns()
            rotated_at = attached_ns
            while self._stop_reason is None:
                time.sleep(nap)
                now = time.monotonic_ns()
                # The longest wait between two drains (over the nap): what the ring
                # buffer must absorb. Kept in the file to explain any loss.
                self.max_drain_gap_ns = max(self.max_drain_gap_ns, now - last_drain)
                last_drain = now
                flush = now >= next_flush
                if flush:
                    next_flush = now + FLUSH_S * 1e9
                drained = loaded.drain(flush=flush)
                self._check_limit(loaded.sink)
                _writing(segments.check)  # a failed write (a full disk) stops it now
                # Busy: drain often, the ring buffer holds only tens of ms at storm rates.
                # Quiet: wake rarely, so that an idle recorder costs next to nothing.
                nap = DRAIN_BUSY_S if drained > BUSY_BYTES else DRAIN_IDLE_S
                if child is not None:
                    pid, status = os.waitpid(child, os.WNOHANG)
                    if pid:
                        exit_status = os.waitstatus_to_exitcode(status)
                        exit_status = 128 - exit_status if exit_status < 0 else exit_status
                        self._stop_reason = "command exited"
                if deadline is not None and now >= deadline:
                    self._stop_reason = "duration"
                if opts.max_size is not None and self._stop_reason is None:
                    if segments.closed_bytes() >= opts.max_size:
                        self._stop_reason = "max-size"
                pending = loaded.sink.total_rows
                full = pending >= SEGMENT_MAX_ROWS or self._rotate_now
                # While the writer thread is busy with the last segment, rows wait in the
                # sink (the drain never waits for the writer), up to a bound on memory.
                wait = segments.busy and pending < SEGMENT_HARD_MAX_ROWS
                if (full or now >= next_segment) and not wait:
                    # A segment when rows came, else only now and then (fresh counters).
                    if pending or now - last_written >= QUIET_SEGMENT_S * 1e9:
                        _writing(self._close_segment, segments, loaded, now, False)
                        last_written = now
                    next_segment = (now if full else next_segment) + SEGMENT_S * 1e9
                if opts.rotating and self._rotation_due(segments, now, rotated_at):
                    _writing(segments.rotate, opts.keep)
                    rotated_at, self._rotate_now = now, False
        except _WriteFailed as e:
            error = e.__cause__
        except BaseException:
            # Not a write: an error of bpfcap itself. What is closed stays readable.
            loaded.stop()
            segments.abort()
            raise
        # Stop: nothing more can arrive once the hooks are detached.
        if error is None:
            loaded.stop()
            self._check_limit(loaded.sink)
            end = time.monotonic_ns()
            try:
                # The last segment says the recording ended cleanly: should the merge
                # below fail (a full disk), the segment directory is a whole trace.
                _writing(self._close_segment, segments, loaded, end, True)
                if opts.rotating:
                    _writing(segments.rotate, opts.keep)
                _writing(segments.finish)
            except _WriteFailed as e:
                error = e.__cause__
        if error is not None:
            segments.abort()
            kept = segments.data_files()  # not the header: it holds no events
            rows = sum(_rows_in(f) for f in kept)
            raise OutputError(
                f"writing {partial} failed: {getattr(error, 'strerror', None) or error}; "
                f"stopped, {rows} events in {len(kept)} complete segment(s) kept in {partial}",
                "free space or fix permissions; every command reads that directory as a trace",
            ) from error
        if child is not None and exit_status is None:
            # Stopped by -d or a signal while the command still runs: it is not ours to kill.
            self.log(f"note: command (pid {child}) still running; recording stopped")
        final = self._meta(loaded, end, clean=True)
        if opts.rotating:  # the directory is the trace: nothing to merge
            ev = final["events"]
            return RecordResult(
                opts.output,
                sum(v["written"] for v in ev.values()),
                sum(v["lost"] for v in ev.values()),
                segments.closed_bytes(),
                exit_status,
                final,
            )
        n_segments = len(segments.data_files())
        if n_segments > 10:
            rows = sum(self.written.values())
            self.log(
                f"Stopped ({self._stop_reason}); merging {n_segments} segments "
                f"({rows} events) into {opts.output}..."
            )
        try:
            size = merge_files(segments.files(), opts.output, final, force=opts.force)
        except (OSError, ValueError) as e:  # ValueError: ParquetConcatError
            raise OutputError(
                f"writing {opts.output} failed: {getattr(e, 'strerror', None) or e}",
                f"the complete recording is kept as segments in {partial}",
            ) from e
        segments.remove()
        ev = final["events"]
        return RecordResult(
            opts.output,
            sum(v["written"] for v in ev.values()),
            sum(v["lost"] for v in ev.values()),
            size,
            exit_status,
            final,
        )

    def _rotation_due(self, segments: SegmentDir, now: int, rotated_at: int) -> bool:
        """A new file is due: SIGHUP came, the period ran out, or the segments since the
        last rotation reached the size."""
        o = self.opts
        if self._rotate_now:
            return True
        if o.rotate_s is not None and now - rotated_at >= o.rotate_s * 1e9:
            return True
        return o.rotate_bytes is not None and segments.single_bytes() >= o.rotate_bytes

    def _check_limit(self, sink) -> None:
        """--max-events: stop once the rows written and drained reach the limit."""
        limit = self.opts.max_events
        if limit is not None and sum(self.written.values()) + sink.total_rows >= limit:
            self._stop_reason = self._stop_reason or "max-events"

    def _close_segment(self, segments: SegmentDir, loaded, now: int, clean: bool) -> None:
        """Close the current segment with the records drained since the last one: they are
        counted here (from their headers) and decoded in the writer thread. With
        --max-events, rows past the limit are counted (over_limit), not written."""
        rows = {BY_KIND_ID[k].name: n for k, n in loaded.sink.rows.items()}
        records = loaded.take()
        caps = {}
        limit = self.opts.max_events
        for name, n in rows.items():
            if limit is not None:
                room = max(0, limit - sum(self.written.values()))
                if n > room:
                    self.over_limit[name] += n - room
                    caps[name] = n = room
            self.written[name] += n
        meta = self._meta(loaded, now, clean=clean)
        segments.close_segment(meta, lambda: _decode(records, caps, loaded.sink))

    def _meta(self, loaded, now_ns: int, clean: bool) -> dict:
        stats = loaded.stats()
        events = {}
        for t in self.opts.events:
            seen = stats[:, 2 * t.kind_id]
            lost = stats[:, 2 * t.kind_id + 1]
            line = self.lost_timeline.setdefault(t.name, [])
            if int(lost.sum()) > (line[-1][2] if line else 0):
                line.append([self._segment_from_ns, now_ns, int(lost.sum())])
            events[t.name] = {
                "seen": int(seen.sum()),
                "lost": int(lost.sum()),
                "over_limit": self.over_limit[t.name],
                "lost_timeline": [list(x) for x in line],  # a copy: the writer thread has it
                "written": self.written[t.name],
                "seen_per_cpu": [int(x) for x in seen],
                "lost_per_cpu": [int(x) for x in lost],
            }
        self._segment_from_ns = now_ns
        missed = loaded.missed_runs()
        tree_full = loaded.tree_full() if self.opts.command else 0
        if tree_full and not self._told_tree_full:
            self._told_tree_full = True
            self.log(
                f"warning: the process-tree filter is full ({tree_full} new tasks of the "
                "command not followed): their events are not recorded"
            )
        ru = resource.getrusage(resource.RUSAGE_SELF)
        agent = dict(
            self.static_meta["agent"],
            bpf_compile_cpu_s=round(loaded.compile_cpu_s, 3),
            max_drain_gap_ms=round(self.max_drain_gap_ns / 1e6, 1),
            # The most bytes waiting in the ring buffer at a drain, of ringbuf_bytes:
            # how close the recording came to losing events.
            ring_high_water_bytes=loaded.ring_high_water,
            ringbuf_bytes=loaded.ring_size,
            bpf_compile_max_rss_kb=loaded.compile_max_rss_kb,
            cpu_user_s=round(ru.ru_utime, 3),
            cpu_sys_s=round(ru.ru_stime, 3),
            max_rss_kb=ru.ru_maxrss,
        )
        return dict(
            self.static_meta,
            start_ns=self.start_ns,
            end_ns=now_ns,
            clean_stop=clean,
            stop_reason=self._stop_reason,
            events=events,
            # Program runs the kernel skipped (another BPF program was running on that
            # CPU), by program: events that may be missing without being counted lost.
            missed_runs=missed,
            # New tasks of `-- COMMAND` the in-kernel tree filter could not add (its
            # bound, the host's pid_max, or kernel memory): their events are missing.
            tree_filter_full=tree_full,
            agent=agent,
        )
