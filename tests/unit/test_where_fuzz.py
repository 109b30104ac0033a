"""`--where` against any input (issue 11): expressions built from the grammar's pieces,
well formed or not, and any text. Each compiles and filters every kind's rows, or is
refused with a UsageError; nothing else (status 70) may come out. Budget as
tests/unit/test_fuzz.py (BPFCAP_FUZZ_EXAMPLES)."""

from __future__ import annotations

import os

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfcap.analyze.where import compile_where
from bpfcap.formats.errors import UsageError
from bpfcap.formats.events import SCHEMA
from bpfcap.tests.builders import one_of_each, table

FUZZ = settings(
    max_examples=int(os.environ.get("BPFCAP_FUZZ_EXAMPLES", "150")) * 4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ROWS = pa.concat_tables(table([r]) for r in one_of_each())
COLUMNS = [*SCHEMA.names, "nope", "Kind", "_"]
NUMBERS = st.one_of(
    st.integers(min_value=-(1 << 70), max_value=1 << 70).map(str),
    st.integers(min_value=0, max_value=1 << 70).map(hex),
    st.integers(min_value=0, max_value=1 << 70).map(lambda n: f"0o{n:o}"),
    st.integers(min_value=0, max_value=99999).map(lambda n: f"0{n}"),
    st.sampled_from(["0x", "0o", "08", "1e3", "1.5", "--1", "0xg"]),
)
STRINGS = st.lists(
    st.sampled_from([*"ab/()[]*+?.^$|{}'", "\\", '\\"', "\x00", "é", "\n"]), max_size=6
).map(lambda t: '"' + "".join(t) + '"')
OPS = ["==", "!=", "<", "<=", ">", ">=", "~", "&", "in", "and", "or", "not", "&&", "||", "!"]
ATOM = st.one_of(st.sampled_from(COLUMNS), NUMBERS, STRINGS)
EXPR = st.recursive(
    ATOM,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(OPS), inner).map(" ".join),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"not {e}"),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: f"({', '.join(xs)})"),
        st.tuples(inner, st.lists(ATOM, min_size=1, max_size=3)).map(
            lambda p: f"{p[0]} in ({', '.join(p[1])})"
        ),
    ),
    max_leaves=10,
)


def _apply(text: str) -> None:
    try:
        expr, used = compile_where(text, SCHEMA)
    except UsageError:
        return
    assert used <= set(SCHEMA.names)
    ROWS.filter(expr)  # any compiled filter runs over every kind's rows


@FUZZ
@given(EXPR)
def test_expressions_from_the_grammar(text: str) -> None:
    _apply(text)


@FUZZ
@given(st.text(max_size=40))
def test_any_text(text: str) -> None:
    _apply(text)


@given(st.integers(min_value=1, max_value=5000), st.sampled_from(["not ", "!", "(", "-"]))
@settings(max_examples=50, deadline=None)
def test_deep_nesting(depth: int, piece: str) -> None:
    closing = ")" * depth if piece == "(" else ""
    _apply(piece * depth + "tgid == 1" + closing)
