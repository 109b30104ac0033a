"""Dependencies point one way, and nothing but capture/bpf_loader.py needs BCC."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

IMPORT_ALL_WITHOUT_BCC = """
import importlib, pkgutil, sys
sys.modules["bcc"] = None  # as on a laptop: importing it fails
import bpfcap
names = [m.name for m in pkgutil.walk_packages(bpfcap.__path__, "bpfcap.")
         if m.name != "bpfcap.__main__"]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_every_module_imports_without_bcc():
    r = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_WITHOUT_BCC], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) >= 20


def _imports(path: Path) -> str:
    return "\n".join(
        ln for ln in path.read_text().splitlines() if ln.lstrip().startswith(("import ", "from "))
    )


def test_dependencies_point_one_way():
    for f in (ROOT / "formats").glob("*.py"):
        assert "bpfcap.capture" not in _imports(f) and "bpfcap.analyze" not in _imports(f), f
        assert "bpfcap.cli" not in _imports(f), f
    for f in (ROOT / "analyze").glob("*.py"):
        text = _imports(f)
        assert "capture" not in text and "bpfcap.cli" not in text and "click" not in text, f
    for f in (ROOT / "capture").glob("*.py"):
        assert "bpfcap.analyze" not in _imports(f) and "bpfcap.cli" not in _imports(f), f
    # The reader only reads: the writer (formats/writer.py) and the recorder's segment
    # directory (capture/segments.py) build on it, never the reverse.
    assert "writer" not in _imports(ROOT / "formats" / "trace.py")
    bcc_users = [
        f.name
        for d in ("formats", "analyze", "capture", "cli")
        for f in (ROOT / d).glob("*.py")
        if "import bcc" in f.read_text()
    ]
    assert bcc_users == ["bpf_loader.py"]


def test_recording_never_imports_pandas(tmp_path):
    """pandas is for users' notebooks: importing it (pyarrow does, behind some calls,
    e.g. Schema.empty_table(), pa.scalar()) costs half a second and ~50 MB, which the
    recorder must not pay on a host that happens to have it. Decoding ring records and
    writing a trace, in a fresh interpreter."""
    code = f"""
import sys
from pathlib import Path
import numpy as np
from bpfcap.capture.decode import decode_records
from bpfcap.formats.events import BY_NAME
from bpfcap.formats import trace, writer
records = []
for name in ("fork", "signal", "syscall"):
    t = BY_NAME[name]
    b = np.zeros(1, dtype=t.batch_dtype())
    b["hdr"]["kind"], b["hdr"]["count"] = t.kind_id, 3
    records.append(b.tobytes())
tables = decode_records(records)
writer.write_table_file(Path({str(tmp_path / "t.parquet")!r}), list(tables.values()), {{}})
assert trace.open_trace({str(tmp_path / "t.parquet")!r}).read("signal").num_rows == 3
assert "pandas" not in sys.modules, "pandas was imported"
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
