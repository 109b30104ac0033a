"""`--where EXPR`: a small, safe filter language over trace columns, compiled to an
Arrow compute expression (nothing is evaluated as Python).

    ret < 0 and comm == "bash"
    not (path ~ "^/proc/") or tgid in (1, 181)
    syscall == "openat2" && flags & 64 != 0

Operands: column names, integers (decimal, 0x, 0o), strings in single or double quotes.
Operators, loosest first: `or` `||`; `and` `&&`; `not` `!`; comparisons `== != < <= > >=`,
`~` (regular expression search, RE2 syntax) and `in (v, ...)`; `&` (bit and).
Strings compare with the raw bytes of binary columns (comm, path, args) and with the
text of name columns (kind, syscall, states).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from bpfcap.formats.errors import UsageError

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>0[xX][0-9a-fA-F]+|0[oO][0-7]+|\d+)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>~!&(),-])
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.X,
)
_CMP = {
    "==": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}


@dataclass(frozen=True)
class _Tok:
    kind: str  # num, str, op, name, end
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise UsageError(f"--where: cannot read {text[pos:].strip()[:20]!r} (at {pos})")
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


# Deepest nesting of parentheses and `not` (a filter a person writes nests a few
# levels; the parser recurses once per level).
MAX_DEPTH = 64
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _fits(value, t: pa.DataType | None) -> bool:
    """`value` is representable in integer type `t` (anything fits other types)."""
    if t is None or not isinstance(value, int):
        return True
    if pa.types.is_dictionary(t):
        t = t.value_type
    if not pa.types.is_integer(t):
        return True
    bits = t.bit_width
    if pa.types.is_signed_integer(t):
        return -(1 << (bits - 1)) <= value < (1 << (bits - 1))
    return 0 <= value < (1 << bits)


def _literal(side) -> bool:
    """An operand that is a number or string, not a column or a condition."""
    return side[1] is None


def _kind_of(t: pa.DataType | None, value=None) -> str:
    """What a value compares as: "number", "text" or "bool" (a literal: by its value)."""
    if t is None:
        return "text" if isinstance(value, str) else "number"
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return "list"
    if pa.types.is_fixed_size_binary(t):
        return "address"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_timestamp(t):
        return "number"
    return "text"


class _Parser:
    def __init__(self, text: str, schema: pa.Schema):
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0
        self.schema = schema
        self.used: set[str] = set()
        self.refs: list[str] = []  # every column reference, in order

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise UsageError(f"--where: nested more than {MAX_DEPTH} deep")

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self, *texts: str) -> _Tok | None:
        t = self.peek()
        if (t.kind in ("op", "name")) and t.text in texts:
            self.i += 1
            return t
        return None

    def fail(self, what: str) -> UsageError:
        t = self.peek()
        found = "the end" if t.kind == "end" else repr(t.text)
        return UsageError(f"--where: expected {what}, found {found} (at {t.pos})")

    def parse(self) -> pc.Expression:
        e = self.or_()
        if self.peek().kind != "end":
            raise self.fail("an operator or the end")
        return e

    def or_(self):
        e = self.and_()
        while self.take("or", "||"):
            e = e | self.and_()
        return e

    def and_(self):
        e = self.not_()
        while self.take("and", "&&"):
            e = e & self.not_()
        return e

    def not_(self):
        if self.take("not", "!"):
            self.nest()
            e = ~self.not_()
            self.depth -= 1
            return e
        return self.cmp()

    def cmp(self):
        left = self.bits()
        t = self.peek()
        if t.kind == "op" and t.text in _CMP:
            self.i += 1
            right = self.bits()
            if _literal(left) and _literal(right):
                raise UsageError(f"--where: {t.text} compares no column")
            self.check_types(left, right, t.text)
            return _CMP[t.text](*self.coerce(left, right))
        if self.take("~"):
            pattern = self.peek()
            if pattern.kind != "str":
                raise self.fail("a quoted regular expression after ~")
            self.i += 1
            if _literal(left) or _kind_of(left[1]) != "text":
                raise UsageError("--where: ~ needs a text column on its left")
            regex = _unquote(pattern.text)
            try:  # RE2 syntax, checked now rather than when the first row is read
                pc.match_substring_regex(pa.array([b""], pa.binary()), regex)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise UsageError(f"--where: bad regular expression {regex!r}: {e}") from None
            return pc.match_substring_regex(left[0], regex)
        if self.take("in"):
            if _literal(left):
                raise UsageError("--where: in needs a column on its left")
            if not self.take("("):
                raise self.fail("( after in")
            values = [self.literal()]
            while self.take(","):
                values.append(self.literal())
            if not self.take(")"):
                raise self.fail(") or ,")
            col_type = left[1]
            for v in values:
                self.check_types(left, (v, None), "in")
            # A number the column's type cannot hold matches no row.
            values = [v for v in values if _fits(v, col_type)]
            return pc.is_in(
                left[0], value_set=pa.array([_as(v, col_type) for v in values], col_type)
            )
        if left[1] is not None and pa.types.is_boolean(left[1]):
            return left[0]
        raise self.fail("a comparison (== != < <= > >= ~ in)")

    def bits(self):
        e = self.operand()
        while self.take("&"):
            right = self.operand()
            for side in (e, right):
                if _kind_of(side[1], side[0]) != "number":
                    raise UsageError("--where: & takes numbers (flags & 64)")
            if _literal(e) and _literal(right):
                raise UsageError("--where: & needs a column")
            e = (pc.bit_wise_and(_expr(e[0], right[1]), _expr(right[0], e[1])), e[1] or right[1])
        return e

    def check_types(self, left, right, op: str) -> None:
        """Both sides compare alike (a number with a number, text with text)."""
        (a, atype), (b, btype) = left, right
        ka, kb = _kind_of(atype, a), _kind_of(btype, b)
        if "list" in (ka, kb):
            raise UsageError(f"--where: {op} cannot compare a list column (args, dirs)")
        if "address" in (ka, kb):
            raise UsageError(
                f"--where: {op} cannot compare an address column (saddr, daddr)",
                "filter by port, pid or comm, or read the trace with `bpfcap export`",
            )
        if atype is not None and btype is not None and ka == kb == "text":
            plain = [t.value_type if pa.types.is_dictionary(t) else t for t in (atype, btype)]
            if plain[0] != plain[1]:
                raise UsageError(
                    f"--where: cannot compare columns of types {plain[0]} and {plain[1]}"
                )
        if ka != kb:
            raise UsageError(
                f"--where: cannot compare {ka} with {kb} ({op})",
                "numbers compare with numbers, quoted strings with text columns",
            )

    def operand(self):
        """(expression, column type or None for a literal)."""
        t = self.peek()
        if self.take("("):
            self.nest()
            e = self.or_()
            if not self.take(")"):
                raise self.fail(")")
            self.depth -= 1
            return (e, pa.bool_())
        if t.kind == "name" and t.text not in ("and", "or", "not", "in"):
            self.i += 1
            if t.text not in self.schema.names:
                raise UsageError(
                    f"--where: no column {t.text!r}",
                    f"columns: {', '.join(n for n in self.schema.names)}",
                )
            self.used.add(t.text)
            self.refs.append(t.text)
            return (pc.field(t.text), self.schema.field(t.text).type)
        return (self.literal(), None)

    def literal(self):
        t = self.peek()
        neg = False
        if t.kind == "op" and t.text == "-":
            self.i += 1
            neg, t = True, self.peek()
        if t.kind == "num":
            self.i += 1
            prefix = t.text[:2].lower()
            base = 16 if prefix == "0x" else 8 if prefix == "0o" else 10
            value = int(t.text[2:] if base != 10 else t.text, base)  # 0123 is decimal
            value = -value if neg else value
            if not _INT64[0] <= value <= _INT64[1]:
                raise UsageError(f"--where: {t.text} is out of range (64-bit integers)")
            return value
        if t.kind == "str" and not neg:
            self.i += 1
            return _unquote(t.text)
        raise self.fail("a column, a number or a quoted string")

    def coerce(self, left, right):
        """Both sides as expressions; a literal takes the type of the column it meets."""
        (a, atype), (b, btype) = left, right
        return _expr(a, btype), _expr(b, atype)


def _expr(value, other_type):
    """A literal (int or str) as an expression typed for a column of `other_type`; an
    expression as it is."""
    if isinstance(value, (int, str)):
        return pc.scalar(_scalar(value, other_type))
    return value


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _as(value, col_type):
    if isinstance(value, str) and col_type is not None and pa.types.is_binary(col_type):
        return value.encode("utf-8", "surrogateescape")
    return value


def _scalar(value, col_type):
    if col_type is None:
        return pa.scalar(value)
    if isinstance(value, str):
        if pa.types.is_binary(col_type) or pa.types.is_fixed_size_binary(col_type):
            return pa.scalar(value.encode("utf-8", "surrogateescape"), pa.binary())
        return pa.scalar(value, pa.string())
    if pa.types.is_integer(col_type):
        return pa.scalar(value, pa.int64())
    return pa.scalar(value)


def compile_where(text: str, schema: pa.Schema) -> tuple[pc.Expression, set[str]]:
    """The Arrow expression of `text` over `schema`, and the columns it reads."""
    p = _Parser(text, schema)
    expr = p.parse()
    return expr, p.used


class _KindParser(_Parser):
    """The --where grammar, with every comparison that reads a column other than `kind`
    replaced by null (unknown): the expression then says, per event type, whether its
    rows can match at all (Kleene logic: false whatever the unknowns are)."""

    def cmp(self):
        before = len(self.refs)
        e = super().cmp()
        if set(self.refs[before:]) == {"kind"}:
            return e
        return pc.scalar(pa.scalar(None, pa.bool_()))


def kinds_matching(text: str, schema: pa.Schema, kinds: list[str]) -> list[str]:
    """The event types of `kinds` whose rows `text` (a --where expression) may let
    through: all but those its conditions on `kind` exclude whatever the other columns
    hold (`kind in ("open", "exec") and ret < 0` excludes every other type)."""
    import pyarrow.dataset as ds

    expr = _KindParser(text, schema).parse()
    table = pa.table({"kind": pa.array(kinds, pa.string())})
    verdict = ds.dataset(table).to_table(columns={"v": expr})["v"].to_pylist()
    return [k for k, v in zip(kinds, verdict) if v is not False]
