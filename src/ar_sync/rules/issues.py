"""Mapping validation errors back to the file, line and field path a person wrote."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Union

from pydantic import (
    BaseModel,
    ValidationError,
)

from ar_sync.rules.fields import PolicyIssue
from ar_sync.rules.schema import Policy
from ar_sync.rules.yaml_lines import NAMED_LISTS, Loc

# ============================================================================= error mapping


def _unwrap(annotation: Any, tag: Any) -> type[BaseModel] | None:
    """The model class behind a field annotation (through Optional, tuple, Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0], tag)
    if origin in (tuple, list):
        return _unwrap(typing.get_args(annotation)[0], tag)
    if origin in (Union, types.UnionType):
        models = [m for a in typing.get_args(annotation) if (m := _unwrap(a, tag)) is not None]
        for m in models:
            kind = m.model_fields.get("kind")
            if kind is not None and tag in typing.get_args(kind.annotation):
                return m
        return models[0] if len(models) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at the parent of `loc` accepts (for 'did you mean')."""
    model: type[BaseModel] | None = Policy
    ann: Any = None
    for el in loc[:-1]:
        if isinstance(el, int):
            continue
        if ann is not None:
            plain, tagged = _unwrap(ann, None), _unwrap(ann, el)
            ann = None
            if plain is None and tagged is not None:
                model = tagged  # `el` was a discriminator tag
                continue
            model = plain
        if model is None or el not in model.model_fields:
            return []
        ann = model.model_fields[el].annotation
    if ann is not None:
        model = _unwrap(ann, None)
    return sorted(model.model_fields) if model is not None else []


def _locate(
    loc: tuple[Any, ...], data: Any, locs: Mapping[tuple[str | int, ...], Loc]
) -> tuple[str, Loc, bool]:
    """Field path for people, the closest located node, and whether loc was fully found."""
    parts: list[str] = []
    cur = data
    path: tuple[str | int, ...] = ()
    found = True
    for i, el in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(cur, dict) and isinstance(el, str):
            if not last and el == cur.get("kind"):
                continue  # the discriminator tag pydantic puts in the location
            if el in cur:
                path = (*path, el)
                cur = cur[el]
                parts.append(el)
            elif last:
                parts.append(el)
                found = False
            continue
        if isinstance(cur, list) and isinstance(el, int) and 0 <= el < len(cur):
            path = (*path, el)
            cur = cur[el]
            parts.append(f"[{el}]")
            continue
        found = False
    text = ".".join(parts).replace(".[", "[")
    return text, locs.get(path, locs[()]), found


_MESSAGES = {
    "missing": "required field missing",
    "union_tag_not_found": "missing 'kind' (one of: fixed, percent, interest, uk_statutory)",
}


def rule_issues(exc: ValidationError, data: Any,
            locs: Mapping[tuple[str | int, ...], Loc]) -> list[PolicyIssue]:
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path, node, found = _locate(loc, data, locs)
        kind = err["type"]
        message = _MESSAGES.get(kind, str(err["msg"]))
        if message.startswith(("Value error, ", "Assertion failed, ")):
            message = message.split(", ", 1)[1]
        got: str | None = None
        if kind == "extra_forbidden":
            allowed = _allowed_keys(loc)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            message = "unknown key" + (f", did you mean {close[0]!r}?" if close else "")
            if allowed:
                message += f" (allowed: {', '.join(allowed)})"
        elif kind != "missing":
            if found and node.text is not None:
                got = node.text
            elif not isinstance(err.get("input"), dict | list):
                got = repr(err.get("input"))[:60]
        issues.append(PolicyIssue(node.file, node.line, path, message, got))
    return issues


def clashes(data: Any, locs: Mapping[tuple[str | int, ...], Loc]) -> list[PolicyIssue]:
    """Two items of a named list with one name (or two stages on one day), located at the
    second one: pydantic could only point at the whole list."""
    issues = []
    for section in NAMED_LISTS:
        items = data.get(section) if isinstance(data, dict) else None
        if not isinstance(items, list):
            continue
        for field in ("name", "days") if section == "reminders" else ("name",):
            seen: dict[Any, int] = {}
            for i, item in enumerate(items):
                value = item.get(field) if isinstance(item, dict) else None
                if value is None or isinstance(value, dict | list):
                    continue
                if value in seen:
                    node = locs[(section, i, field)]
                    what = "name" if field == "name" else "day"
                    issues.append(PolicyIssue(
                        node.file, node.line, f"{section}[{i}].{field}",
                        f"{what} {value!r} is already used by {section}[{seen[value]}]"))
                else:
                    seen[value] = i
    return issues
