"""The subset of QuickBooks' query language the emulator answers.

`select * | count(*) from Entity [where cond and cond ...] [orderby Field [asc|desc]]
[startposition n] [maxresults m]`, where a condition is `Field op 'value'` with op one of
= < > <= >= like, or `Field in ('a', 'b')`. Fields may be dotted (`MetaData.LastUpdatedTime`,
`AttachableRef.EntityRef.value`); a list on the path matches if any element does.
Pure functions only: parsing and filtering are tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_RESULTS = 1000


class QueryError(ValueError):
    """A query the emulator cannot parse (QuickBooks answers these with code 4000)."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    entity: str
    count: bool = False
    where: tuple[Condition, ...] = ()
    order_by: str | None = None
    descending: bool = False
    start: int = 1
    max_results: int = 100
    raw: str = field(default="", compare=False)


_HEAD = re.compile(r"^\s*select\s+(?P<what>\*|count\(\*\)|[\w.,\s*]+?)\s+from\s+(?P<entity>\w+)"
                   r"(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_TAIL_START = re.compile(r"\s+startposition\s+(\d+)", re.IGNORECASE)
_TAIL_MAX = re.compile(r"\s+maxresults\s+(\d+)", re.IGNORECASE)
_ORDER = re.compile(r"\s+order\s*by\s+([\w.]+)(?:\s+(asc|desc))?", re.IGNORECASE)
_COND = re.compile(
    r"\s*(?P<field>[\w.]+)\s*(?:(?P<op><=|>=|!=|=|<|>|\blike\b)\s*'(?P<value>(?:[^']|\\')*)'"
    r"|\s+(?P<in>in)\s*\((?P<list>[^)]*)\))\s*",
    re.IGNORECASE,
)


def parse_query(text: str) -> Query:
    head = _HEAD.match(text.strip())
    if head is None:
        raise QueryError(f"cannot parse query: {text!r}")
    rest = head.group("rest")
    start, maximum = 1, 100
    for pattern in (_TAIL_MAX, _TAIL_START):
        found = pattern.search(rest)
        if found:
            if pattern is _TAIL_MAX:
                maximum = int(found.group(1))
            else:
                start = int(found.group(1))
            rest = rest[: found.start()] + rest[found.end():]
    order_by, descending = None, False
    found = _ORDER.search(rest)
    if found:
        order_by = found.group(1)
        descending = (found.group(2) or "").lower() == "desc"
        rest = rest[: found.start()] + rest[found.end():]
    if start < 1:
        raise QueryError("STARTPOSITION must be 1 or more")
    if maximum > MAX_RESULTS:
        raise QueryError(f"MAXRESULTS may not exceed {MAX_RESULTS}")
    return Query(entity=head.group("entity"), count=head.group("what").lower() == "count(*)",
                 where=_conditions(rest), order_by=order_by, descending=descending,
                 start=start, max_results=maximum, raw=text)


def _conditions(text: str) -> tuple[Condition, ...]:
    text = text.strip()
    if not text:
        return ()
    if not text.lower().startswith("where "):
        raise QueryError(f"unexpected text in query: {text!r}")
    parts = re.split(r"\s+and\s+", text[6:], flags=re.IGNORECASE)
    out: list[Condition] = []
    for part in parts:
        found = _COND.fullmatch(part)
        if found is None:
            raise QueryError(f"cannot parse condition: {part!r}")
        if found.group("in"):
            values = tuple(v.strip().strip("'") for v in found.group("list").split(",")
                           if v.strip())
            out.append(Condition(found.group("field"), "in", values))
        else:
            out.append(Condition(found.group("field"), found.group("op").lower(),
                                 (found.group("value").replace("\\'", "'"),)))
    return tuple(out)


def _values_at(obj: Any, path: Sequence[str]) -> list[Any]:
    if not path:
        return [obj]
    if isinstance(obj, list):
        return [v for item in obj for v in _values_at(item, path)]
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key.lower() == path[0].lower():
                return _values_at(value, path[1:])
    return []


def _scalar(value: Any) -> Any:
    return value.get("value") if isinstance(value, dict) else value


def _compare(left: Any, right: str) -> int:
    """-1/0/1 comparing a stored value to a query literal: as number, time, or text."""
    left = _scalar(left)
    if isinstance(left, bool):
        left = str(left).lower()
    try:
        a, b = Decimal(str(left)), Decimal(right)
        return (a > b) - (a < b)
    except (InvalidOperation, ValueError):
        pass
    ta, tb = _as_time(str(left)), _as_time(right)
    if ta is not None and tb is not None:
        return (ta > tb) - (ta < tb)
    sa, sb = str(left).lower(), right.lower()
    return (sa > sb) - (sa < sb)


def _as_time(text: str) -> datetime | None:
    if len(text) < 19 or "T" not in text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _like(value: Any, pattern: str) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("%")) + "$"
    return re.match(regex, str(_scalar(value)), re.IGNORECASE | re.DOTALL) is not None


def _holds(value: Any, cond: Condition) -> bool:
    if cond.op == "in":
        return any(_compare(value, v) == 0 for v in cond.values)
    if cond.op == "like":
        return _like(value, cond.values[0])
    c = _compare(value, cond.values[0])
    return {"=": c == 0, "!=": c != 0, "<": c < 0, ">": c > 0, "<=": c <= 0,
            ">=": c >= 0}[cond.op]


def matches(obj: dict[str, Any], cond: Condition) -> bool:
    return any(_holds(v, cond) for v in _values_at(obj, cond.field.split(".")))


def run_query(query: Query, rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The page of rows the query selects, and how many rows matched in all."""
    hits = [row for row in rows if all(matches(row, c) for c in query.where)]
    if query.order_by:
        path = query.order_by.split(".")

        def key(row: dict[str, Any]) -> str:
            values = _values_at(row, path)
            return str(_scalar(values[0])) if values else ""

        hits.sort(key=key, reverse=query.descending)
    else:
        hits.sort(key=lambda row: int(row["Id"]) if str(row.get("Id", "")).isdigit() else 0)
    return hits[query.start - 1: query.start - 1 + query.max_results], len(hits)
