"""Rendering report tables (from analyze/) onto a binary stream: BCC text, JSON Lines, CSV.

Writers know nothing of reports: text takes the report's column declarations
(analyze.common.OutputColumn: header, %-formats), JSON and CSV only the table. All the
formatting of report values lives here.

Text is bytes, as the BCC tool writes it: kernel text (comm, path, args) goes out raw,
whatever its encoding, where the tool uses printb; where it decodes first, the column
says how (OutputColumn.text) and the result goes out as UTF-8. JSON decodes bytes as
UTF-8 with U+FFFD for invalid sequences (JSON has no bytes). CSV decodes with
surrogateescape and encodes back the same way, so the bytes in a CSV field are exactly
the kernel's.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from bpfcap.analyze.common import OutputColumn

FORMATS = ("text", "json", "csv")
_BATCH_ROWS = 65536
_BATCH_BYTES = 16 << 20


def write(
    table: pa.Table,
    columns: Sequence[OutputColumn],
    fmt: str,
    stream: IO[bytes],
    header: bool = True,
    raw: bool = False,
) -> None:
    """Write `table` to `stream` as `fmt` (one of FORMATS); `columns` declares the text
    layout of every column the table may have. `header=False` continues an output whose
    first part (with the header) was written by an earlier call. Unless `raw`, text
    values have their newlines and other controls escaped (a value cannot forge a line)
    and CSV cells cannot start a formula."""
    if fmt == "text":
        write_text(table, columns, stream, header, raw)
    elif fmt == "json":
        write_json(table, stream)
    elif fmt == "csv":
        write_csv(table, stream, header, raw)
    else:
        raise ValueError(f"unknown output format {fmt!r}")


def write_text(
    table: pa.Table,
    columns: Sequence[OutputColumn],
    stream: IO[bytes],
    header: bool = True,
    raw: bool = False,
) -> None:
    """BCC's layout: a header line, then one line per row, each the concatenation of the
    shown columns' %-formats (so, as in BCC, `%-16s` pads but never truncates). Bytes are
    formatted as bytes (widths count bytes), str as str (widths count characters).

    Formatting is column by column with Arrow compute (integers, strings, octal), which
    keeps a multi-million-row report to well under a microsecond per row; only formats
    Arrow has no kernel for (`%f`) go through Python, one column at a time. The result is
    byte for byte what `fmt % value` gives (tests/unit/test_render.py checks both)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    by_name = {c.name: c for c in columns}
    # Columns the report declares no text layout for (end_ns, argv) are for machines.
    shown = [name for name in table.column_names if name in by_name]
    if len(shown) < table.num_columns:
        table = table.select(shown)
    cols = [by_name[name] for name in shown]
    if header:
        stream.write("".join(c.head_fmt % c.header for c in cols).encode() + b"\n")
    # Rows at a time: _BATCH_ROWS, fewer where rows are wide (the text of a batch is
    # built in memory: what a report holds is bounded by _BATCH_BYTES, not by its rows).
    rows = _BATCH_ROWS
    if table.num_rows and table.nbytes > _BATCH_BYTES:
        rows = max(1, min(rows, _BATCH_BYTES * table.num_rows // table.nbytes))
    for batch in table.to_batches(max_chunksize=rows):
        parts = [
            part
            for i, c in enumerate(cols)
            for part in _column_parts(
                _escaped(_as_printed(batch.column(i), c.text), raw),
                c.fmt,
                (c.head_fmt % c.null).encode(),
            )
        ]
        lines = pc.binary_join_element_wise(*parts, pa.scalar(b"\n"), pa.scalar(b""))
        offsets = lines.buffers()[1]
        data = lines.buffers()[2]
        if data is None:
            continue
        start, end = (
            int.from_bytes(offsets[i * 4 : i * 4 + 4], "little", signed=True)
            for i in (lines.offset, lines.offset + len(lines))
        )
        stream.write(memoryview(data)[start:end])


def _as_printed(arr: pa.Array, text: Callable[[bytes], str | bytes] | None) -> pa.Array:
    """`text(value)` for each value of a binary column (a string array if `text` gives
    str), run once per distinct value (comms repeat a lot); `arr` as it is without
    `text`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if text is None or not pa.types.is_binary(arr.type):
        return arr
    distinct = pc.unique(arr).drop_null()
    printed = pa.array(
        [text(v) for v in distinct.to_pylist()],
        pa.string() if isinstance(text(b""), str) else pa.binary(),
    )
    return pc.take(printed, pc.index_in(arr, value_set=distinct))


def _escaped(arr: pa.Array, raw: bool) -> pa.Array:
    """A text column with control characters (newlines included) escaped, computed for
    the few values that have any; as it is if `raw` or not text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if raw or not (pa.types.is_binary(arr.type) or pa.types.is_string(arr.type)):
        return arr
    binary = arr.cast(pa.binary()) if pa.types.is_string(arr.type) else arr
    bad = pc.match_substring_regex(binary, _CONTROL_RE2)
    if not pc.any(bad).as_py():
        return arr
    fixed = [None if v is None else escape_controls(v) for v in pc.filter(binary, bad).to_pylist()]
    out = pc.replace_with_mask(binary, bad, pa.array(fixed, pa.binary()))
    return out.cast(arr.type) if pa.types.is_string(arr.type) else out


# _CONTROLS_AND_NEWLINE for Arrow (RE2): bytes as escapes, no UTF-8 decoding.
_CONTROL_RE2 = r"[\x00-\x1f\x7f]|\xc2[\x80-\x9f]"


_SPEC = re.compile(r"^([^%]*)%(-?)(0?)(\d*)(?:\.(\d+))?([dsof])(.*)$", re.S)


def _format_column(arr: pa.Array, fmt: str, null: bytes) -> pa.Array:
    """`fmt % value` for every value of `arr`, as a binary array; `null` where null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = _column_parts(arr, fmt, null)
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, pa.scalar(b""))


def _column_parts(arr: pa.Array, fmt: str, null: bytes) -> list:
    """`fmt % value` as pieces to concatenate: the formatted values (binary array) and
    the format's literal text around them (scalars), joined once per line by the caller."""
    import pyarrow as pa
    import pyarrow.compute as pc

    m = _SPEC.match(fmt)
    if m is None or (m.group(5) is not None and m.group(6) not in "fs"):
        return [_format_python(arr, fmt, null)]
    prefix, left, zero, width, prec, conv, suffix = m.groups()
    w = int(width or 0)
    ascii_text = None  # set where widths count characters: padding is then one kernel
    if conv == "f":
        if zero or not pa.types.is_floating(arr.type):
            return [_format_python(arr, fmt, null)]
        ascii_text = _fixed(arr, int(prec) if prec is not None else 6).cast(pa.string())
    elif conv in "d":
        if not pa.types.is_integer(arr.type) or zero:
            return [_format_python(arr, fmt, null)]
        ascii_text = pc.cast(arr, pa.string())
    elif conv == "s":
        if pa.types.is_string(arr.type):  # str: `%.Ns` and widths count characters
            if prec is not None:
                arr = pc.utf8_slice_codeunits(arr, 0, int(prec))  # code points, as str
            text = arr.cast(pa.binary())
            if w:
                ascii_text = arr
        elif pa.types.is_binary(arr.type):  # bytes: they count bytes
            text = arr if prec is None else pc.binary_slice(arr, 0, int(prec))
            if w and _is_ascii(text):
                ascii_text = text.cast(pa.string())
        else:
            return [_format_python(arr, fmt, null)]
    else:  # "o"
        if not pa.types.is_integer(arr.type) or not zero or left:
            return [_format_python(arr, fmt, null)]
        text = _octal(arr, w)
        w = 0
    if ascii_text is not None:
        pad = pc.utf8_rpad if left else pc.utf8_lpad  # pads to `w` characters
        text = (pad(ascii_text, w, " ") if w else ascii_text).cast(pa.binary())
    elif w:
        spaces = pc.binary_repeat(
            pa.scalar(b" "), pc.max_element_wise(pc.subtract(w, pc.binary_length(text)), 0)
        )
        text = pc.binary_join_element_wise(
            *((text, spaces) if left else (spaces, text)), pa.scalar(b"")
        )
    parts = [text]
    if prefix:
        parts.insert(0, pa.scalar(prefix.encode()))
    if suffix:
        parts.append(pa.scalar(suffix.encode()))
    if arr.null_count:  # a null prints as `null`, literal text included
        joined = pc.binary_join_element_wise(*parts, pa.scalar(b"")) if len(parts) > 1 else text
        return [pc.fill_null(joined, pa.scalar(null))]
    return parts


def _is_ascii(text: pa.Array) -> bool:
    """Every value is ASCII (no byte >= 0x80): then byte and character widths agree."""
    import numpy as np

    data = text.buffers()[2]
    if data is None:
        return True
    return not (np.frombuffer(data, dtype=np.uint8) & 0x80).any()


def _octal(arr: pa.Array, width: int) -> pa.Array:
    """`%0<width>o` of non-negative integers: octal, zero-padded to at least `width`."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    v = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False)).astype(np.uint64)
    # Digits each value needs (at least 1), then at least `width`.
    needed = np.ones(len(v), dtype=np.int64)
    rest = v >> np.uint64(3)
    while rest.any():
        needed += rest > 0
        rest >>= np.uint64(3)
    needed = np.maximum(needed, width)
    ndig = int(needed.max()) if len(v) else width
    shifts = np.arange(ndig - 1, -1, -1, dtype=np.uint64) * np.uint64(3)
    digits = ((v[:, None] >> shifts) & np.uint64(7)).astype(np.uint8) + ord("0")
    data = np.ascontiguousarray(digits[np.arange(ndig) >= (ndig - needed)[:, None]])
    offsets = np.zeros(len(v) + 1, dtype=np.int32)
    np.cumsum(needed, out=offsets[1:])
    out = pa.Array.from_buffers(
        pa.binary(), len(v), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return pc.if_else(arr.is_null(), pa.scalar(None, pa.binary()), out) if arr.null_count else out


def _fixed(arr: pa.Array, prec: int) -> pa.Array:
    """`%.<prec>f` of floats. Where x * 10**prec lies within 0.25 of an integer q (and
    |q| < 1e12), printf's correctly rounded result is q's digits, exactly; the other
    values (near a rounding tie, huge, NaN, inf) are formatted by Python one by one."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    x = np.asarray(arr.fill_null(0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        r = x * 10.0**prec
        q = np.rint(r)
        safe = np.isfinite(r) & (np.abs(r - q) < 0.25) & (np.abs(q) < 1e12)
    q = np.abs(np.where(safe, q, 0).astype(np.int64))
    scale = 10**prec
    text = pc.cast(pa.array(q // scale), pa.string())
    if prec:
        frac = pc.utf8_lpad(pc.cast(pa.array(q % scale), pa.string()), prec, "0")
        text = pc.binary_join_element_wise(text, frac, ".")
    sign = pc.if_else(pa.array(np.signbit(x)), "-", "")  # printf keeps -0.000's sign
    text = pc.binary_join_element_wise(sign, text, "").cast(pa.binary())
    if not safe.all():
        slow = [(f"%.{prec}f" % v).encode() for v in x[~safe]]
        text = pc.replace_with_mask(text, pa.array(~safe), pa.array(slow, pa.binary()))
    if arr.null_count:
        text = pc.if_else(arr.is_null(), pa.scalar(None, pa.binary()), text)
    return text


def _format_python(arr: pa.Array, fmt: str, null: bytes) -> pa.Array:
    """`fmt % value` one by one: bytes formatted as bytes, anything else as str."""
    import pyarrow as pa

    f = fmt.encode()
    return pa.array(
        [
            null if v is None else f % v if isinstance(v, bytes) else (fmt % v).encode()
            for v in arr.to_pylist()
        ],
        pa.binary(),
    )


def write_json(table: pa.Table, stream: IO[bytes]) -> None:
    """JSON Lines: one object per row, keyed by column name; null stays null, times
    are ISO 8601 UTC strings (to the ns), lists are arrays."""
    table = _iso_times(table)
    names = table.column_names
    for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
        lines = []
        for row in batch.to_pylist():
            obj = {k: _json_value(row[k]) for k in names}
            lines.append(json.dumps(obj, ensure_ascii=False) + "\n")
        stream.write("".join(lines).encode("utf-8", "surrogateescape"))


def _json_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


def write_csv(table: pa.Table, stream: IO[bytes], header: bool = True, raw: bool = False) -> None:
    """A header row of column names, then the rows; null is an empty field, a float is
    a plain decimal (0.000016, never 1.6e-05), a time ISO 8601 UTC, a list its JSON
    array. Text cells that would start a spreadsheet formula get a leading ' unless
    `raw`."""
    table = _iso_times(table)
    cell = _csv_value if raw else _csv_safe
    text = io.TextIOWrapper(
        stream, encoding="utf-8", errors="surrogateescape", newline="", write_through=True
    )
    try:
        w = csv.writer(text, lineterminator="\n")
        if header:
            w.writerow(table.column_names)
        for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            w.writerows([cell(v) for v in row] for row in zip(*columns))
        text.flush()
    finally:
        text.detach()  # the stream belongs to the caller: do not close it


def _csv_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    if isinstance(v, float):
        return _plain_float(v)
    if isinstance(v, list):
        return json.dumps([_json_value(x) for x in v], ensure_ascii=False)
    return v


def _plain_float(v: float) -> str:
    """The shortest decimal that reads back as `v`, without an exponent."""
    import numpy as np

    if v != v or v in (float("inf"), float("-inf")):
        return repr(v)
    return np.format_float_positional(v, unique=True, trim="0")


def _iso_times(table: pa.Table) -> pa.Table:
    """Timestamp columns as ISO 8601 UTC text to the nanosecond (2026-11-30T14:03:07.
    123456789Z): what JSON and CSV readers parse, and exact."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            col = table.column(i).cast(pa.timestamp("ns", tz="UTC"))
            text = pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ")
            table = table.set_column(i, f.name, text)
    return table


def _csv_safe(v: Any) -> Any:
    v = _csv_value(v)
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        return "'" + v
    return v


def log2_hist_text(vals: Sequence[int], val_type: str) -> str:
    """BCC's print_log2_hist of one histogram (bcc/table.py, section 2.2 of
    bcc-formats.md): `vals[i]` counts slot i (slot 0 is never printed); narrow layout up
    to slot 32, wide beyond; nothing at all when no slot above 0 has a count."""
    idx_max = max((i for i, v in enumerate(vals) if v > 0), default=-1)
    val_max = max(vals, default=0)
    if idx_max <= 0:
        return ""
    if idx_max <= 32:
        lines = ["     %-19s : count     distribution" % val_type]
        row, width = "%10d -> %-10d : %-8d |%-*s|", 40
    else:
        lines = ["               %-29s : count     distribution" % val_type]
        row, width = "%20d -> %-20d : %-8d |%-*s|", 20
    for i in range(1, idx_max + 1):
        low, high = (1 << i) >> 1, (1 << i) - 1
        if low == high:
            low -= 1
        val = vals[i] if i < len(vals) else 0
        stars = "*" * min(width, int(width * val / val_max)) if val_max else ""
        lines.append(row % (low, high, val, width, stars))
    return "\n".join(lines) + "\n"


def log2_hist_json(
    vals: Sequence[int], val_type: str, ts: str, section: tuple[str, str] | None
) -> str:
    """BCC's print_json_hist (section 2.4): a Python dict repr, not JSON, as BCC prints it."""
    idx_max = max((i for i, v in enumerate(vals) if v > 0), default=-1)
    data = []
    prev = 0
    for i in range(1, idx_max + 1):
        data.append({"interval-start": prev, "interval-end": (1 << i) - 1, "count": int(vals[i])})
        prev = 1 << i
    out: dict[str, Any] = {"ts": ts, "val_type": val_type, "data": data}
    if section is not None:
        out[section[0]] = section[1]
    return repr(out) + "\n"


def log2_windows_text(
    windows: Sequence[Any],
    times: Sequence[str],
    val_type: str,
    section: str | None,
    *,
    timestamp: bool,
    extension: bool = False,
) -> str:
    """What a BCC histogram tool (biolatency, runqlat) prints over its intervals, after
    its banner (the result's): per window (analyze.aggregate.HistWindow) an empty line, its time
    (`times[i]`, HH:MM:SS) with -T, each histogram (after `\\n<section> = <key>` when
    sectioned), and with -e the avg/total/count line."""
    out = []
    for w, hms in zip(windows, times):
        out.append("\n")
        if timestamp:
            out.append(f"{hms:<8}\n")
        for key, vals in w.sections:
            if section is not None:
                out.append(f"\n{section} = {key}\n")
            out.append(log2_hist_text(vals, val_type))
        if extension and w.count:
            out.append(
                f"\navg = {w.total // w.count} {val_type}, total: {w.total} {val_type}, "
                f"count: {w.count}\n\n"
            )
    return "".join(out)


def bpftrace_key(key: Sequence[Any], raw: bool = False) -> str:
    """A map key as bpftrace prints it, `k1, k2`: a string's raw bytes, unescaped (its
    string values are the bytes up to the NUL, src/types_format.cpp:127-128, written
    as they are, src/output/text.cpp:19), unless `raw` is False: then control characters
    (newlines too: a key cannot forge a line) are escaped. Bytes come back as such from
    the result's `.encode("utf-8", "surrogateescape")`, as the bpftrace_* writers encode."""

    def text(v: Any) -> str:
        if v is None:
            return ""
        if not isinstance(v, (bytes, str)):
            return str(v)
        data = v if isinstance(v, bytes) else v.encode("utf-8", "surrogateescape")
        return (data if raw else escape_controls(data)).decode("utf-8", "surrogateescape")

    return ", ".join(text(v) for v in key)


def bpftrace_map_text(
    name: str, rows: Sequence[tuple[Sequence[Any], int]], raw: bool = False
) -> bytes:
    """bpftrace's print of a count() map: `@name[k1, k2]: value` per key, smallest value
    first (bpftrace sorts maps by value when printing); keys as bpftrace_key(key, raw)."""
    ordered = sorted(rows, key=lambda kv: kv[1])
    text = "".join(f"@{name}[{bpftrace_key(key, raw)}]: {count}\n" for key, count in ordered)
    return text.encode("utf-8", "surrogateescape")


def _pow2_label(power: int) -> str:
    for bits, suffix in ((60, "E"), (50, "P"), (40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if power >= bits:
            return f"{1 << (power - bits)}{suffix}"
    return str(1 << power)


def bpftrace_hist_text(
    title: str, counts: Sequence[int], linear: tuple[int, int, int] | None = None
) -> bytes:
    """bpftrace's print of one hist() (pow2 buckets, analyze.aggregate.pow2_buckets) or
    lhist(lo, hi, step) (linear_buckets): `@title:`, then one line per bucket from the
    first to the last non-empty one: the label left-justified to 16, the count
    right-justified to 8, and a bar of up to 52 `@`; then an empty line. The title's
    key is bpftrace_key()'s (raw bytes)."""
    used = [i for i, c in enumerate(counts) if c]
    lines = [f"@{title}:"]
    if used:
        top = max(counts)
        for i in range(used[0], used[-1] + 1):
            if linear is None:
                label = (
                    "(..., 0)" if i == 0 else "[0]" if i == 1 else "[1]" if i == 2
                    else f"[{_pow2_label(i - 2)}, {_pow2_label(i - 1)})"
                )  # fmt: skip
            else:
                lo, hi, step = linear
                last = len(counts) - 1
                label = (
                    f"(..., {lo})" if i == 0 else f"[{hi}, ...)" if i == last
                    else f"[{lo + (i - 1) * step}, {min(lo + i * step, hi)})"
                )  # fmt: skip
            bar = "@" * (int(counts[i]) * 52 // int(top))
            lines.append(f"{label:<16}{int(counts[i]):>8} |{bar:<52}|")
    return ("\n".join(lines) + "\n\n").encode("utf-8", "surrogateescape")


# Terminal controls: C0 (ESC, BEL, CR, BS...) and DEL, and C1 as UTF-8 (U+0080-U+009F:
# CSI, OSC...). Any local user can put them in a comm, a path or argv (and a hostile
# trace anywhere); printed raw, they move the cursor, rewrite lines, set the title or
# the clipboard (OSC 52) of the terminal of whoever reads the report.
_CONTROLS = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")
_CONTROLS_AND_NEWLINE = re.compile(rb"[\x00-\x1f\x7f]|\xc2[\x80-\x9f]")


def _hex(m: re.Match) -> bytes:
    return b"".join(b"\\x%02x" % c for c in m.group())


def _has_controls(data: bytes) -> bool:
    """Whether `data` holds a control escape_controls(newline=False) would escape: one
    vectorised pass (report text is escaped value by value already, so this is almost
    always False, and a regex scan of all output cost 20% of a big opensnoop)."""
    if len(data) < 4096:
        return _CONTROLS.search(data) is not None
    import numpy as np

    a = np.frombuffer(data, dtype=np.uint8)
    if (((a < 0x20) & (a != 0x0A)) | (a == 0x7F)).any():
        return True
    c2 = np.flatnonzero(a[:-1] == 0xC2)
    return bool(((a[c2 + 1] >= 0x80) & (a[c2 + 1] <= 0x9F)).any())


def escape_controls(data: bytes, newline: bool = True) -> bytes:
    """`data` with terminal control characters as \\xNN text (newlines too unless
    `newline` is False: a stream's own line ends)."""
    pattern = _CONTROLS_AND_NEWLINE if newline else _CONTROLS
    return pattern.sub(_hex, data)


class EscapingWriter(io.RawIOBase):
    """A binary stream that escapes terminal controls (except newlines) in what goes
    through it to `out`: the one way report and info text reaches stdout, so that no
    value, wherever it is printed, can drive the reader's terminal. `raw` lets bytes
    through as they are (--raw)."""

    def __init__(self, out: IO[bytes]):
        self._out = out
        self._held = b""  # a trailing \xc2: a C1 control may continue in the next write
        self.raw = False

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        if self.raw:
            self._out.write(data)
            return len(data)
        chunk = self._held + data
        self._held = b""
        if chunk.endswith(b"\xc2"):
            chunk, self._held = chunk[:-1], b"\xc2"
        self._out.write(escape_controls(chunk, newline=False) if _has_controls(chunk) else chunk)
        return len(data)

    def flush(self) -> None:
        if self._held:
            self._out.write(self._held)
            self._held = b""
        self._out.flush()


# CSV cells a spreadsheet would run as a formula (=, +, -, @, and the tab and CR some
# apps strip first): written with a leading ' (OWASP's advice), unless --raw.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escaping_stdout(ctx: Any) -> EscapingWriter:
    """Route sys.stdout through an EscapingWriter until `ctx` (a click context) closes;
    returns the writer (set .raw for --raw)."""
    import sys

    orig = sys.stdout
    writer = EscapingWriter(orig.buffer)
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(writer),
        encoding=orig.encoding or "utf-8",
        errors=orig.errors or "strict",
        line_buffering=orig.line_buffering,
    )

    def restore() -> None:
        ours = sys.stdout
        sys.stdout = orig
        try:
            ours.flush()
        finally:
            ours.detach()

    ctx.call_on_close(restore)
    return writer


def render(result: Any, fmt: str, stream: IO[bytes], raw: bool = False) -> None:
    """Write a report's result (analyze.report: Rows, Windows, Log2Histograms,
    Histograms, Counts, Lines) as `fmt`: BCC's (or bpftrace's) text with its banner and
    footer lines, or JSON Lines / CSV of its machine-readable table. Listings stream:
    one chunk at a time is in memory."""
    from bpfcap.analyze import report as r

    text = fmt == "text"
    if text:
        for line in result.banner:
            stream.write(line.encode("utf-8", "surrogateescape") + b"\n")
    if isinstance(result, r.Rows):
        header = True
        for chunk in result:
            if text:
                write_text(chunk, result.columns, stream, header, raw)
            else:
                _machine(r.machine_table(chunk, result), fmt, stream, header, raw)
            header = False
    elif isinstance(result, r.Windows) and text:
        from bpfcap.analyze.common import wall_clock

        ends = [end for end, _ in result.windows]
        clock = result.meta.clock.as_dict() if result.meta is not None else {}
        labels = wall_clock(_uint64(ends), clock).to_pylist() if ends else []
        for (_, table), label in zip(result.windows, labels):
            stream.write(f"[{label}]\n".encode())
            write_text(table, result.columns, stream, True, raw)
            stream.write(b"\n")
    elif isinstance(result, r.Log2Histograms) and text:
        stream.write(_log2_text(result).encode("utf-8", "surrogateescape"))
    elif isinstance(result, r.Histograms) and text:
        for key, counts in result.ordered():
            title = result.field_name + (f"[{bpftrace_key(key, raw)}]" if result.keys else "")
            stream.write(bpftrace_hist_text(title, counts.tolist(), result.linear))
    elif isinstance(result, r.Counts) and text:
        t = result.table
        keys = result.keys
        rows = list(zip(zip(*(t[k].to_pylist() for k in keys)), t["count"].to_pylist()))
        stream.write(bpftrace_map_text("", rows, raw))
    elif isinstance(result, r.Lines) and text:
        for line in result.lines:
            stream.write(line.encode("utf-8", "surrogateescape") + b"\n")
    elif not text:
        _machine(result.to_arrow(), fmt, stream, True, raw)
    if text:
        for line in result.footer:
            stream.write(line.encode("utf-8", "surrogateescape") + b"\n")
    stream.flush()


def _machine(table: pa.Table, fmt: str, stream: IO[bytes], header: bool, raw: bool) -> None:
    if fmt == "json":
        write_json(table, stream)
    elif fmt == "csv":
        write_csv(table, stream, header, raw)
    else:
        raise ValueError(f"unknown output format {fmt!r}")


def _uint64(values: Sequence[int]) -> pa.Array:
    import pyarrow as pa

    return pa.array(values, pa.uint64())


def _log2_text(h: Any) -> str:
    """biolatency's and runqlat's output over their intervals: BCC's histograms, or with
    -j (biolatency) its dict lines."""
    from bpfcap.analyze.common import wall_clock

    clock = h.meta.clock.as_dict() if h.meta is not None else {}
    ends = _uint64([w.end_ns for w in h.windows])
    hhmmss = wall_clock(ends, clock).to_pylist() if len(ends) else []
    if h.bcc_json:
        stamps = wall_clock(ends, clock, "%Y-%m-%d %H:%M:%S").to_pylist() if len(ends) else []
        return "".join(
            (f"{hms:<8}\n" if h.timestamp else "")
            + "".join(
                log2_hist_json(vals, h.unit, stamp, None if key is None else (h.section, key))
                for key, vals in w.sections
            )
            for w, hms, stamp in zip(h.windows, hhmmss, stamps)
        )
    return log2_windows_text(
        h.windows,
        hhmmss,
        h.unit,
        h.section,
        timestamp=h.timestamp,
        extension=h.extension,
    )
