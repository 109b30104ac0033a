"""The report docs are generated from the declarations (cli/docs.py) and current; every
report's JSON output, for each of its examples, matches its JSON Schema."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from bpfcap.analyze import registry
from bpfcap.cli import docs
from bpfcap.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample-traces" / "v2-kernel.parquet"
REGENERATE = "run: python -m bpfcap.cli.docs"


def test_reports_md_is_current() -> None:
    assert (ROOT / "docs" / "reports.md").read_text() == docs.reports_md(), REGENERATE


def test_schemas_are_current() -> None:
    committed = {p.name: p.read_text() for p in (ROOT / "docs" / "reports").glob("*.json")}
    assert committed == docs.schemas(), REGENERATE


def test_readme_table_is_current() -> None:
    text = (ROOT / "README.md").read_text()
    assert text == docs.readme(text), REGENERATE


def _valid(value, prop: dict) -> bool:
    types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    checks = {
        "null": value is None,
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
    }
    if not any(checks[t] for t in types):
        return False
    if isinstance(value, list):
        return all(_valid(v, prop["items"]) for v in value)
    return True


EXAMPLES = [
    (name, line)
    for name in registry.names()
    for line, _ in registry.get(name).examples
    if "--list" not in line and " -j" not in line
]


@pytest.mark.parametrize("name,line", EXAMPLES, ids=[f"{n}: {e}" for n, e in EXAMPLES])
def test_json_lines_match_the_schema(name: str, line: str, capsysbinary) -> None:
    schema = json.loads((ROOT / "docs" / "reports" / f"{name}.schema.json").read_text())
    args = [str(SAMPLE) if a == "t.parquet" else a for a in shlex.split(line.split(">")[0])]
    args = [a for a in args if a not in ("--format", "csv", "json")]
    with pytest.raises(SystemExit) as exit_:
        main(["report", *args, "--format", "json"])
    out, err = capsysbinary.readouterr()
    assert exit_.value.code == 0, err
    props = schema["properties"]
    for text in out.decode().splitlines():
        row = json.loads(text)
        assert set(row) <= set(props), f"{name}: {set(row) - set(props)} not in the schema"
        for key, value in row.items():
            assert _valid(value, props[key]), f"{name}: {key}={value!r} vs {props[key]}"
