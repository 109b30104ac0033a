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


class _Parser:
    def __init__(self, text: str, schema: pa.Schema):
        self.toks = _tokens(text)
        self.i = 0
        self.schema = schema
        self.used: set[str] = set()

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
            return ~self.not_()
        return self.cmp()

    def cmp(self):
        left = self.bits()
        t = self.peek()
        if t.kind == "op" and t.text in _CMP:
            self.i += 1
            right = self.bits()
            return _CMP[t.text](*self.coerce(left, right))
        if self.take("~"):
            pattern = self.peek()
            if pattern.kind != "str":
                raise self.fail("a quoted regular expression after ~")
            self.i += 1
            if isinstance(left[0], (int, str)):
                raise UsageError("--where: ~ needs a column on its left")
            return pc.match_substring_regex(left[0], _unquote(pattern.text))
        if self.take("in"):
            if not self.take("("):
                raise self.fail("( after in")
            values = [self.literal()]
            while self.take(","):
                values.append(self.literal())
            if not self.take(")"):
                raise self.fail(") or ,")
            col_type = left[1]
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
            e = (pc.bit_wise_and(e[0], right[0]), e[1] or right[1])
        return e

    def operand(self):
        """(expression, column type or None for a literal)."""
        t = self.peek()
        if self.take("("):
            e = self.or_()
            if not self.take(")"):
                raise self.fail(")")
            return (e, pa.bool_())
        if t.kind == "name" and t.text not in ("and", "or", "not", "in"):
            self.i += 1
            if t.text not in self.schema.names:
                raise UsageError(
                    f"--where: no column {t.text!r}",
                    f"columns: {', '.join(n for n in self.schema.names)}",
                )
            self.used.add(t.text)
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
            return -int(t.text, 0) if neg else int(t.text, 0)
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
