"""The subset of Xero's `where` filter language the emulator understands.

Xero filters list endpoints with a C#-like expression, e.g.
`Type=="ACCREC" AND Status=="AUTHORISED" AND AmountDue>0` or
`Contact.ContactID==guid("…")`. The emulator parses it honestly and rejects anything outside
the subset with an error, instead of silently returning everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

Value = str | Decimal | bool | date | datetime | None
Record = Mapping[str, Value]  # field path ("Contact.Name") -> comparable value
Predicate = Callable[[Record], bool]


class WhereError(ValueError):
    """The filter is malformed or outside the supported subset (answered with a 400)."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<op>==|!=|>=|<=|>|<|&&|\|\||\(|\)|,|\.)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_STRING_METHODS = {"Contains", "StartsWith", "EndsWith"}


@dataclass
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise WhereError(f"unexpected character at {pos} in where clause")
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m.group(kind)))
        pos = m.end()
    return out


def _compare(op: str, left: Value, right: Value) -> bool:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if left is None or right is None:
        return False
    try:
        if op == ">":
            return left > right  # type: ignore[operator]
        if op == ">=":
            return left >= right  # type: ignore[operator]
        if op == "<":
            return left < right  # type: ignore[operator]
        return left <= right  # type: ignore[operator]
    except TypeError as exc:
        raise WhereError(f"cannot compare {left!r} {op} {right!r}") from exc


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, type]) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.fields = fields

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, text: str | None = None) -> _Tok:
        tok = self.peek()
        if tok is None or (text is not None and tok.text.upper() != text.upper()):
            raise WhereError(f"expected {text or 'more input'} in where clause")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.disjunction()
        if self.peek() is not None:
            raise WhereError(f"unexpected {self.peek().text!r} in where clause")  # type: ignore[union-attr]
        return pred

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while (tok := self.peek()) is not None and tok.text.upper() in ("OR", "||"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.term()]
        while (tok := self.peek()) is not None and tok.text.upper() in ("AND", "&&"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def term(self) -> Predicate:
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.take("(")
            inner = self.disjunction()
            self.take(")")
            return inner
        if tok is not None and tok.text.upper() == "NOT":
            self.take()
            negated = self.term()
            return lambda r: not negated(r)
        return self.comparison()

    def field(self) -> tuple[str, str | None]:
        """A field path, and a trailing string method name if one follows (`.Contains`)."""
        parts = [self.take().text]
        while (tok := self.peek()) is not None and tok.text == ".":
            self.take(".")
            parts.append(self.take().text)
        method = parts.pop() if parts[-1] in _STRING_METHODS else None
        name = ".".join(parts)
        if name not in self.fields:
            raise WhereError(f"field {name!r} is not supported in where clauses by this emulator")
        return name, method

    def literal(self, expected: type) -> Value:
        tok = self.take()
        if tok.kind == "str":
            text = bytes(tok.text[1:-1], "utf-8").decode("unicode_escape")
            return text.lower() if expected is _Guid else text
        if tok.kind == "num":
            return Decimal(tok.text)
        word = tok.text.lower()
        if word in ("true", "false"):
            return word == "true"
        if word == "null":
            return None
        if word == "guid":
            self.take("(")
            value = self.take().text.strip('"').lower()
            self.take(")")
            return value
        if word == "datetime":
            self.take("(")
            nums = [int(self.take().text)]
            while (nxt := self.peek()) is not None and nxt.text == ",":
                self.take(",")
                nums.append(int(self.take().text))
            self.take(")")
            if len(nums) == 3:
                return date(nums[0], nums[1], nums[2])
            return datetime(*nums)  # type: ignore[arg-type]
        raise WhereError(f"unsupported value {tok.text!r} in where clause")

    def comparison(self) -> Predicate:
        name, method = self.field()
        expected = self.fields[name]
        if method is not None:
            self.take("(")
            needle = self.literal(str)
            self.take(")")
            if not isinstance(needle, str):
                raise WhereError(f"{method} needs a string")
            low = needle.lower()
            ops: dict[str, Callable[[str], bool]] = {
                "Contains": lambda v: low in v, "StartsWith": lambda v: v.startswith(low),
                "EndsWith": lambda v: v.endswith(low)}
            test = ops[method]
            return lambda r: isinstance(r.get(name), str) and test(str(r.get(name)).lower())
        op = self.take().text
        if op not in ("==", "!=", ">", ">=", "<", "<="):
            raise WhereError(f"unsupported operator {op!r} in where clause")
        right = self.literal(expected)
        if right is not None and not _fits(right, expected):
            raise WhereError(f"field {name!r} cannot be compared with {right!r}")
        if expected is date and isinstance(right, datetime):
            right = right.date()
        return lambda r: _compare(op, _norm(r.get(name), expected), right)


class _Guid(str):
    """Marker type: a field holding a GUID (compared case-insensitively)."""


GUID = _Guid


def _fits(value: Value, expected: type) -> bool:
    if expected is Decimal:
        return isinstance(value, Decimal)
    if expected in (date, datetime):
        return isinstance(value, date)
    if expected is bool:
        return isinstance(value, bool)
    return isinstance(value, str)


def _norm(value: Value, expected: type) -> Value:
    if expected is _Guid and isinstance(value, str):
        return value.lower()
    return value


def parse_where(text: str, fields: Mapping[str, type]) -> Predicate:
    """Compile a where clause into a predicate over records with the given field types.

    `fields` maps each supported field path to str, GUID, Decimal, bool, date or datetime.
    """
    if not text.strip():
        return lambda r: True
    return _Parser(text, fields).parse()
