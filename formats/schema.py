"""How an event type is declared, and what one declaration produces.

One `EventType` (fields with C types, units and docs) yields:

* the C struct the BPF program fills (`c_struct()`),
* the numpy dtype that views raw ring-buffer bytes without copying (`numpy_dtype()`),
* the Arrow fields of the trace schema, with doc and unit in the field metadata.

Every trace is one wide table: the common columns (`COMMON_FIELDS`) plus the union of every
registered type's own columns, which are null on rows of other kinds. Writers put one kind
per row group, so `kind = 'open'` prunes row groups from their statistics in any Parquet
reader. A column name means one thing in every kind that has it (checked at import).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa

_INT_TYPES = {
    "u8": (np.uint8, pa.uint8()),
    "u16": (np.uint16, pa.uint16()),
    "u32": (np.uint32, pa.uint32()),
    "u64": (np.uint64, pa.uint64()),
    "s32": (np.int32, pa.int32()),
    "s64": (np.int64, pa.int64()),
}
_CHAR_RE = re.compile(r"^char\[(\d+)\](?:\[(\d+)\])?$")
_BYTES_RE = re.compile(r"^u8\[(\d+)\]$")


@dataclass(frozen=True)
class Field:
    """One member of an event struct and, unless `column` is False, one trace column.

    ctype: `u8`..`u64`, `s32`, `s64`, `char[N]` (a NUL-terminated string, stored as
    binary: kernel strings need not be UTF-8), or `char[K][N]` (K strings; `count` names
    the member holding how many are used; stored as list<binary>). For a `char[N]`,
    `length` may name a member where the BPF code stores the string's length, which spares
    the decoder a scan for the NUL.
    `u8[N]` is N raw bytes (addresses), stored as fixed-size binary.
    enum: for an integer code, the names it maps to (stored as a string column).
    boolean: an integer flag stored as a bool column.
    null_if: an integer value that means "not known", stored as null.
    batch: the column is the batch's (every event of a batch has the CPU it was sent
    from), so the event struct does not hold it.
    """

    name: str
    ctype: str
    doc: str
    unit: str = ""
    enum: tuple[str, ...] | None = None
    boolean: bool = False
    count: str | None = None
    length: str | None = None
    column: bool = True
    null_if: int | None = None
    batch: bool = False  # a column from the batch header (the CPU), not in the event struct

    @cached_property
    def string_shape(self) -> tuple[int, ...] | None:
        m = _CHAR_RE.match(self.ctype)
        if not m:
            return None
        return (int(m.group(1)), int(m.group(2))) if m.group(2) else (int(m.group(1)),)

    @cached_property
    def bytes_len(self) -> int | None:
        m = _BYTES_RE.match(self.ctype)
        return int(m.group(1)) if m else None

    def c_decl(self) -> str:
        if self.bytes_len is not None:
            return f"u8 {self.name}[{self.bytes_len}];"
        shape = self.string_shape
        if shape is None:
            return f"{self.ctype} {self.name};"
        return "char " + self.name + "".join(f"[{n}]" for n in shape) + ";"

    def numpy_type(self) -> tuple:
        if self.bytes_len is not None:
            return (self.name, np.uint8, (self.bytes_len,))
        shape = self.string_shape
        if shape is None:
            return (self.name, _INT_TYPES[self.ctype][0])
        return (self.name, np.uint8, shape)

    def arrow_type(self) -> pa.DataType:
        if self.bytes_len is not None:
            return pa.binary(self.bytes_len)
        shape = self.string_shape
        if shape is not None:
            return pa.binary() if len(shape) == 1 else pa.list_(pa.binary())
        if self.enum is not None:
            return pa.string()
        if self.boolean:
            return pa.bool_()
        return _INT_TYPES[self.ctype][1]

    def arrow_field(self) -> pa.Field:
        meta = {"doc": self.doc}
        if self.unit:
            meta["unit"] = self.unit
        return pa.field(self.name, self.arrow_type(), nullable=True, metadata=meta)


# Every event starts with these members; they are the trace's first columns after `kind`.
COMMON_FIELDS: tuple[Field, ...] = (
    Field(
        "ts_ns",
        "u64",
        "When the event started (syscall entry for paired events), bpf_ktime_get_ns(); "
        "convert with the trace's clock mapping",
        unit="ns since boot, CLOCK_MONOTONIC",
    ),
    Field("tgid", "u32", "Process id (thread group id), what BCC tools call PID"),
    Field("tid", "u32", "Thread id (the kernel's task pid)"),
    Field("uid", "u32", "Real user id of the task"),
    Field(
        "cpu",
        "u32",
        "CPU the event was recorded on (for paired events: at completion)",
        batch=True,
    ),
    Field("comm", "char[16]", "Task command name (at completion for paired events)"),
)

KIND_FIELD = pa.field(
    "kind",
    pa.string(),
    nullable=False,
    metadata={"doc": "Event type of the row (one of the registered types); one kind per row group"},
)


@dataclass(frozen=True)
class KernelRead:
    """Kernel struct members that a type's BPF code reads, and what they give.

    No tracepoint carries some of what BCC shows (a task's parent, its working directory,
    the socket behind a file descriptor, a TCP socket's byte counts): the BPF code reads
    them from kernel structs, at byte offsets found in the running kernel's BTF when
    recording starts (capture/btf.py), never from header files, which may belong to
    another kernel. Without BTF (or where a member is missing or of another size) the
    read is compiled out: `columns` stay null, a `required` read means the type records
    nothing, and the trace's `kernel_reads` metadata says which and why.

    members: ("struct.member[.member]", size in bytes the BPF code reads, or None where
    only the offset is used), e.g. ("task_struct.real_parent", 8).
    The BPF code is compiled with `HAVE_KREAD_<type>_<name>` and one `KF_...` offset
    constant per member (capture/btf.py member_macro()).
    """

    name: str
    doc: str
    members: tuple[tuple[str, int | None], ...]
    columns: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class EventType:
    """An event type: its id in the BPF program, its hooks, its fields, its docs.

    hooks: groups of tracepoints ("category:name"); each group works on its own (e.g. the
    enter/exit pair of one syscall), so a kernel that lacks one group still records the
    others. The BPF code for the type lives in capture/bpf/<name>.c, unless `emitted_by`
    names the type whose programs emit its rows (then its hooks are that type's).
    batch: events per ring-buffer record (bounded by the 32 KiB per-CPU map value limit).
    default: recorded when `record` is given no -e (False for types whose volume should
    be asked for).
    kernel_reads: struct members its BPF code reads (see KernelRead).
    with_types: types recorded whenever this one is (their rows complete its reports).
    """

    name: str
    kind_id: int
    doc: str
    hooks: tuple[tuple[str, ...], ...]
    fields: tuple[Field, ...]
    max_batch: int = 64
    default: bool = True
    kernel_reads: tuple[KernelRead, ...] = ()
    with_types: tuple[str, ...] = ()
    emitted_by: str | None = None
    all_fields: tuple[Field, ...] = field(init=False)  # the event struct's members

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "all_fields", tuple(f for f in COMMON_FIELDS + self.fields if not f.batch)
        )

    @property
    def columns(self) -> tuple[Field, ...]:
        return tuple(f for f in COMMON_FIELDS + self.fields if f.column)

    def c_struct(self) -> str:
        members = "\n".join("    " + f.c_decl() for f in self.all_fields)
        return f"struct {self.name}_event {{\n{members}\n}};\n"

    def numpy_dtype(self) -> np.dtype:
        return self._numpy_dtype

    @cached_property
    def _numpy_dtype(self) -> np.dtype:
        # align=True lays members out as a C compiler does (tested against gcc).
        return np.dtype([f.numpy_type() for f in self.all_fields], align=True)

    @cached_property
    def event_size(self) -> int:
        return self.numpy_dtype().itemsize

    @cached_property
    def tail(self) -> Field | None:
        """The last member when it is a string (with `length`) or strings (with `count`):
        then an event takes only the bytes used in it, not the whole array, in the ring
        buffer (a path of 20 bytes costs 24, not 256)."""
        last = self.all_fields[-1]
        shape = last.string_shape
        if shape is not None and (last.length if len(shape) == 1 else last.count):
            return last
        return None

    @cached_property
    def tail_offset(self) -> int:
        return self.numpy_dtype().fields[self.tail.name][1]

    @cached_property
    def min_event_size(self) -> int:
        """The smallest event of a type with a tail: the members before it and one byte
        (an empty string's NUL, or nothing for no strings), 8-aligned."""
        return (self.tail_offset + 1 + 7) & ~7

    @cached_property
    def batch(self) -> int:
        """Events per ring-buffer record at most."""
        if self.tail is not None:
            n = (BATCH_BYTES - BATCH_HEADER_SIZE) // (self.min_event_size + 2)
            return max(1, min(VAR_MAX_BATCH, n) & ~3)
        return max(1, min(self.max_batch, (BATCH_BYTES - BATCH_HEADER_SIZE) // self.event_size))

    @cached_property
    def batch_data(self) -> int:
        """Bytes of event data in a batch of a type with a tail."""
        return (BATCH_BYTES - BATCH_HEADER_SIZE - 2 * self.batch) & ~7

    def batch_dtype(self) -> np.dtype:
        return self._batch_dtype

    @cached_property
    def _batch_dtype(self) -> np.dtype:
        """A per-CPU batch as the BPF program fills it and sends it. Fixed-size events:
        an array of `batch` events. Events with a tail: `off`, where each event starts
        in `data` (8-aligned, each as long as its used bytes), then `data`; a record in
        the ring buffer is the header, `off` and only the used part of `data`."""
        if self.tail is not None:
            return np.dtype(
                [
                    ("hdr", BATCH_HEADER_DTYPE),
                    ("off", np.uint16, (self.batch,)),
                    ("data", np.uint8, (self.batch_data,)),
                ],
                align=True,
            )
        return np.dtype(
            [("hdr", BATCH_HEADER_DTYPE), ("ev", self.numpy_dtype(), (self.batch,))], align=True
        )


# A batch (a per-CPU map value) within the kernel's 32 KiB limit for one.
BATCH_BYTES = 28 * 1024
VAR_MAX_BATCH = 512

# Header of every ring-buffer record: which type, how many events are valid, which CPU.
BATCH_HEADER_DTYPE = np.dtype(
    [
        ("kind", np.uint32),
        ("count", np.uint32),
        ("cpu", np.uint32),
        ("used", np.uint32),  # bytes used in `data` (types with a tail)
        ("seen", np.uint64),  # running counters of the CPU's batch buffer (see common.h)
        ("lost", np.uint64),
    ]
)
BATCH_HEADER_SIZE = BATCH_HEADER_DTYPE.itemsize


def empty_table(schema: pa.Schema) -> pa.Table:
    """A table of `schema` with no rows. (pyarrow's Schema.empty_table() imports pandas
    when it is installed: half a second, and ~50 MB, for every command.)"""
    return pa.Table.from_batches([], schema=schema)


def trace_schema(types: list[EventType] | tuple[EventType, ...]) -> pa.Schema:
    """The Arrow schema of a trace holding `types`: kind, common columns, then each type's own."""
    fields: dict[str, Field] = {}
    for t in types:
        for f in t.columns:
            seen = fields.get(f.name)
            if seen is None:
                fields[f.name] = f
            elif (seen.arrow_type(), seen.unit) != (f.arrow_type(), f.unit):
                raise TypeError(f"column {f.name!r} declared twice with different meaning")
    return pa.schema([KIND_FIELD] + [f.arrow_field() for f in fields.values()])
