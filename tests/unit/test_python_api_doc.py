"""docs/python-api.md runs: every ```python block, in order, in one namespace, from the
repository's root (the blocks assert what they show)."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_python_api_doc_runs() -> None:
    text = (ROOT / "docs" / "python-api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 5
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        namespace: dict = {}
        for i, code in enumerate(blocks):
            exec(compile(code, f"docs/python-api.md block {i + 1}", "exec"), namespace)
    finally:
        os.chdir(cwd)
