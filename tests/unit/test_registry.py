"""Every registered event type, checked from its one declaration."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bpfcap.capture.bpfgen import generate
from bpfcap.capture.decode import decode_records
from bpfcap.formats import docs
from bpfcap.formats.events import BY_NAME, EVENT_TYPES, SCHEMA
from bpfcap.formats.schema import BATCH_HEADER_DTYPE
from bpfcap.formats.trace import FORMAT_VERSION, open_trace
from bpfcap.formats.writer import write_table_file

ROOT = Path(__file__).resolve().parents[2]
C_TYPES = (
    "typedef unsigned char u8; typedef unsigned short u16; typedef unsigned int u32;\n"
    "typedef unsigned long long u64; typedef int s32; typedef long long s64;\n"
)


@pytest.mark.parametrize("t", EVENT_TYPES, ids=lambda t: t.name)
def test_struct_layout_matches_a_c_compiler(t, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to check struct layout against")
    dtype = t.numpy_dtype()
    prints = "".join(
        f'printf("{f.name} %zu\\n", offsetof(struct {t.name}_event, {f.name}));\n'
        for f in t.all_fields
    )
    src = tmp_path / "layout.c"
    src.write_text(
        "#include <stdio.h>\n#include <stddef.h>\n"
        + C_TYPES
        + t.c_struct()
        + f'int main(void) {{\n{prints}printf("sizeof %zu\\n", sizeof(struct {t.name}_event));'
        "\nreturn 0; }\n"
    )
    subprocess.run([cc, "-o", tmp_path / "layout", src], check=True)
    out = subprocess.run([tmp_path / "layout"], capture_output=True, text=True, check=True).stdout
    got = dict(line.split() for line in out.splitlines())
    want = {f.name: str(dtype.fields[f.name][1]) for f in t.all_fields}
    want["sizeof"] = str(dtype.itemsize)
    assert got == want


@pytest.mark.parametrize("t", EVENT_TYPES, ids=lambda t: t.name)
def test_declaration_is_complete(t):
    assert t.doc and all(f.doc for f in t.all_fields)
    names = {f.name for f in t.all_fields}
    assert all(f.length in names for f in t.all_fields if f.length)
    assert all(f.count in names for f in t.all_fields if f.count)
    source = t.emitted_by or t.name  # a type emitted by another's programs has no file
    assert resources.files("bpfcap.capture").joinpath("bpf", f"{source}.c").is_file()
    assert t.emitted_by is None or t.hooks == BY_NAME[t.emitted_by].hooks
    assert all(c in BY_NAME for c in t.with_types)
    assert t.hooks and all(":" in tp for g in t.hooks for tp in g)
    column_names = {f.name for f in t.columns}
    for r in t.kernel_reads:
        assert r.doc and r.members
        assert set(r.columns) <= column_names
        for member, size in r.members:
            assert member.count(".") >= 1 and size in (None, 1, 2, 4, 8, 16)
    # A batch must fit the kernel's 32 KiB limit for a per-CPU map value.
    assert t.batch_dtype().itemsize <= 32 * 1024
    for f in t.columns:
        assert SCHEMA.field(f.name).metadata[b"doc"]


def test_registry_ids_and_names_unique():
    assert len({t.kind_id for t in EVENT_TYPES}) == len(EVENT_TYPES)
    assert len(BY_NAME) == len(EVENT_TYPES)


def _random_batches(t, n: int, rng) -> tuple[list[bytes], np.ndarray, list[int]]:
    """n random events of type t, packed into ring-buffer batch records (each from a CPU
    of its own: the events' cpu column), and each event's CPU."""
    cpus: list[int] = []
    ev = np.zeros(n, dtype=t.numpy_dtype())
    raw = ev.view(np.uint8).reshape(n, -1)
    raw[:] = rng.integers(0, 256, size=raw.shape, dtype=np.uint8)
    for f in t.all_fields:
        if f.count:
            ev[f.count] = rng.integers(0, f.string_shape[0] + 1, size=n)
        elif f.enum:
            ev[f.name] = rng.integers(0, len(f.enum), size=n)
        elif f.null_if is not None:
            ev[f.name][::3] = f.null_if  # "not known": null
    if "family" in ev.dtype.names:
        # Addresses as the BPF code writes them: IPv4 in 4 bytes, then zeros.
        ev["family"] = rng.choice([2, 10, 1], size=n)
        for f in t.all_fields:
            if f.bytes_len:
                ev[f.name][ev["family"] == 2, 4:] = 0
    records = []
    if t.tail is None:
        for start in range(0, n, t.batch):
            chunk = ev[start : start + t.batch]
            b = np.zeros(1, dtype=t.batch_dtype())
            b["hdr"]["kind"] = t.kind_id
            b["hdr"]["count"] = len(chunk)
            b["hdr"]["cpu"] = len(records) + 7
            cpus += [len(records) + 7] * len(chunk)
            b["ev"][0, : len(chunk)] = chunk
            records.append(b.tobytes())
        return records, ev, cpus
    # Events that vary in size, as the BPF code packs them: each takes the bytes up to the
    # end of its tail's used part, 8-aligned; `off` says where it starts; a batch is sent
    # when full or when a whole event struct would no longer fit after the used bytes.
    shape = t.tail.string_shape
    data_at = t.batch_dtype().fields["data"][1]
    last = t.batch_data - t.event_size
    b = None
    for e in ev:
        if b is None:
            b = np.zeros(1, dtype=t.batch_dtype())
            b["hdr"]["kind"] = t.kind_id
            b["hdr"]["cpu"] = len(records) + 7
        cpus.append(len(records) + 7)
        i, used = int(b["hdr"]["count"][0]), int(b["hdr"]["used"][0])
        if len(shape) == 1:
            size = t.tail_offset + min(int(e[t.tail.length]), shape[0] - 1) + 1
        else:
            size = t.tail_offset + min(int(e[t.tail.count]), shape[0]) * shape[1]
        size = (size + 7) & ~7
        b["off"][0, i] = used
        b["data"][0, used : used + size] = np.frombuffer(e.tobytes()[:size], np.uint8)
        b["hdr"]["count"] = i + 1
        b["hdr"]["used"] = used + size
        if i + 1 == t.batch or used + size > last:
            # The record in the ring: the header, `off` and the used data only.
            records.append(b.tobytes()[: data_at + used + size])
            b = None
    if b is not None:
        records.append(b.tobytes()[: data_at + int(b["hdr"]["used"][0])])
    return records, ev, cpus


@pytest.mark.parametrize("t", EVENT_TYPES, ids=lambda t: t.name)
def test_decode_and_parquet_round_trip_is_lossless(t, tmp_path):
    rng = np.random.default_rng(t.kind_id)
    records, ev, cpus = _random_batches(t, 3 * t.batch + 5, rng)
    table = decode_records(records)[t.name]
    assert table.num_rows == len(ev)
    for f in t.columns:
        col = table.column(f.name).to_pylist()
        if f.batch:
            assert col == cpus
            continue
        shape = f.string_shape
        if shape and len(shape) == 1 and f.length:
            want = [bytes(r)[: min(n, shape[0] - 1)] for r, n in zip(ev[f.name], ev[f.length])]
        elif shape and len(shape) == 1:
            want = [bytes(r).split(b"\0")[0] for r in ev[f.name]]
        elif shape:
            want = [
                [bytes(s).split(b"\0")[0] for s in r[:c]] for r, c in zip(ev[f.name], ev[f.count])
            ]
        elif f.bytes_len:
            want = [bytes(r) for r in ev[f.name]]
        elif f.enum:
            want = [f.enum[i] if i < len(f.enum) else None for i in ev[f.name]]
        elif f.boolean:
            want = [bool(v) for v in ev[f.name]]
        else:
            want = [None if v == f.null_if else v for v in ev[f.name].tolist()]
        assert col == want, f.name
    path = tmp_path / "t.parquet"
    write_table_file(path, [table], {"start_ns": 0})
    back = open_trace(path).read(t.name)
    for name in back.column_names:  # (the decoder's comm and enums are dictionary arrays)
        assert back[name].to_pylist() == table[name].to_pylist(), name


def test_header_layout():
    assert BATCH_HEADER_DTYPE.itemsize == 32


def test_generated_program_has_every_type():
    hooks = {tp for t in EVENT_TYPES for g in t.hooks for tp in g}
    prog = generate(EVENT_TYPES, hooks, self_tgid=1, filter_tgid=7, filter_tree=True)
    for t in EVENT_TYPES:
        assert f"struct {t.name}_event {{" in prog.text
        assert f"-DEVENT_{t.name}" in prog.cflags
    assert "-DFILTER_TGID=7" in prog.cflags and "-DFILTER_TREE" in prog.cflags
    partial = generate((BY_NAME["open"],), set(), self_tgid=1)
    assert not any(f.startswith("-DHAVE_") for f in partial.cflags)
    assert "struct exec_event" not in partial.text


def test_trace_format_doc_is_current():
    assert (ROOT / "docs" / "trace-format.md").read_text() == docs.render(), (
        "run: python -m bpfcap.formats.docs > docs/trace-format.md"
    )


@pytest.mark.parametrize("t", EVENT_TYPES, ids=lambda t: t.name)
def test_a_sample_trace_of_the_current_format_has_each_type(t):
    samples = sorted((ROOT / "sample-traces").glob(f"v{FORMAT_VERSION}-*.parquet"))
    assert samples
    assert any(open_trace(s).read(t.name).num_rows for s in samples), (
        f"no sample has {t.name} rows: `make sample`"
    )


def test_schema_types():
    assert SCHEMA.field("comm").type == pa.binary()
    assert SCHEMA.field("args").type == pa.list_(pa.binary())
