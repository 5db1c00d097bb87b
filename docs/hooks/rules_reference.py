"""MkDocs hook: the rules file reference, rendered from the rules JSON Schema at build time.

A page holding `<!-- rules-schema -->` gets one table per object of the schema (the top
level, then every object in the order the file reaches it): each key with its type, default,
constraints and description, exactly as `policy_json_schema()` states them. A page holding
`<!-- rules-placeholders -->` gets the placeholders that notes, labels and e-mails may use.
No row of these tables is written by hand, so the reference cannot drift from the code; a
build where the schema marker was never replaced fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ar_sync.rules.policy import policy_json_schema
from ar_sync.rules.templates import PLACEHOLDERS

SCHEMA_MARKER = "<!-- rules-schema -->"
PLACEHOLDER_MARKER = "<!-- rules-placeholders -->"

_replaced: set[str] = set()

Schema = dict[str, Any]


# --- loading -----------------------------------------------------------------------------

def load_schema() -> Schema:
    """The rules JSON Schema, from the code."""
    schema: Schema = policy_json_schema()
    return schema


def load_placeholders() -> dict[str, str]:
    placeholders: dict[str, str] = dict(PLACEHOLDERS)
    return placeholders


# --- rendering ---------------------------------------------------------------------------

def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _is_object(spec: Schema) -> bool:
    return spec.get("type") == "object" and "properties" in spec


def _is_amount(spec: Schema) -> bool:
    """A number, or a number per currency (`{USD: 10, GBP: 8}`)."""
    branches = spec.get("anyOf", [])
    return (len(branches) == 2 and branches[0].get("type") == "number"
            and branches[1].get("type") == "object" and "propertyNames" in branches[1])


def _is_decimal(spec: Schema) -> bool:
    """A number that may also be written as a string (an exact decimal)."""
    kinds = [str(b.get("type")) for b in spec.get("anyOf", [])]
    return sorted(kinds) == ["number", "string"]


def _without_null(spec: Schema) -> tuple[Schema, bool]:
    """(the spec without its `null` alternative, whether null was allowed)."""
    branches = spec.get("anyOf")
    if not branches or not any(b.get("type") == "null" for b in branches):
        return spec, False
    rest = [b for b in branches if b.get("type") != "null"]
    inner = dict(rest[0]) if len(rest) == 1 else {"anyOf": rest}
    for key, value in spec.items():  # constraints pydantic puts next to anyOf
        if key not in ("anyOf", "default", "description", "title"):
            inner.setdefault(key, value)
    return inner, True


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"`{text}`"


def _one_of(values: list[Any]) -> str:
    return "one of " + ", ".join(_code(v) for v in values)


def _type(spec: Schema, defs: Schema) -> str:
    """How a value of `spec` is written, in words; objects link to their own table."""
    spec, _ = _without_null(spec)
    if "$ref" in spec:
        name = _ref_name(spec["$ref"])
        target = defs.get(name, {})
        if "enum" in target:
            return _one_of(target["enum"])
        return f"[{name}](#{name.lower()})"
    if "const" in spec:
        return _code(spec["const"])
    if "enum" in spec:
        return _one_of(spec["enum"])
    if _is_amount(spec):
        return "number, or `{CURRENCY: number}`"
    if _is_decimal(spec):
        return "number"
    if "oneOf" in spec or "anyOf" in spec:
        parts = [_type(b, defs) for b in spec.get("oneOf") or spec.get("anyOf") or []]
        text = " or ".join(parts)
        if "discriminator" in spec:
            text += f" (chosen by `{spec['discriminator']['propertyName']}`)"
        return text
    kind = spec.get("type")
    if kind == "array":
        return f"list of {_type(spec.get('items', {}), defs)}"
    if kind == "object":
        return "mapping"
    if spec.get("format") == "date":
        return "date (YYYY-MM-DD)"
    return str(kind or "any")


_BOUNDS = (("minimum", "≥"), ("ge", "≥"), ("exclusiveMinimum", ">"), ("gt", ">"),
           ("maximum", "≤"), ("le", "≤"), ("exclusiveMaximum", "<"), ("lt", "<"))


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _constraints(spec: Schema, defs: Schema) -> list[str]:
    """Every limit the schema puts on a value, in words."""
    spec, _ = _without_null(spec)
    found: list[str] = []
    for key, sign in _BOUNDS:
        if key in spec:
            found.append(f"{sign} {_number(spec[key])}")
    if "maxLength" in spec:
        found.append(f"{spec.get('minLength', 0)} to {spec['maxLength']} characters")
    elif "minLength" in spec:
        found.append(f"at least {spec['minLength']} character(s)")
    if "pattern" in spec:
        found.append(f"matches `{spec['pattern']}`")
    if "minItems" in spec:
        found.append(f"at least {spec['minItems']} item(s)")
    if "maxItems" in spec:
        found.append(f"at most {spec['maxItems']} item(s)")
    if spec.get("uniqueItems"):
        found.append("no repeats")
    if "minProperties" in spec:
        found.append(f"at least {spec['minProperties']} entry(ies)")
    if "propertyNames" in spec and "pattern" in spec["propertyNames"]:
        found.append(f"keys match `{spec['propertyNames']['pattern']}`")
    if "additionalProperties" in spec and isinstance(spec["additionalProperties"], dict):
        found += [f"each value {c}" for c in _constraints(spec["additionalProperties"], defs)]
    if spec.get("type") == "array" and isinstance(spec.get("items"), dict):
        found += [f"each item {c}" for c in _constraints(spec["items"], defs)]
    branches = spec.get("anyOf", [])
    if _is_amount(spec):
        found += _constraints(branches[0], defs)
        per_currency = branches[1]
        values = _constraints(per_currency.get("additionalProperties", {}), defs)
        found.append("per currency: at least " + str(per_currency.get("minProperties", 1))
                     + ", ISO 4217 codes" + (f", each {', '.join(values)}" if values else ""))
    elif _is_decimal(spec):
        for branch in branches:
            found += [c for c in _constraints(branch, defs) if c not in found]
    elif branches:
        for branch in branches:
            inner = _constraints(branch, defs)
            if inner:
                found.append(f"{_type(branch, defs)}: {', '.join(inner)}")
    return found


def _default(spec: Schema, required: bool) -> str:
    if required:
        return "**required**"
    if "default" not in spec:
        if "$ref" in spec:
            return "each key's own default"
        return "—"
    value = spec["default"]
    if value is None:
        return "not set"
    if value == "":
        return "empty"
    return _code(value)


def _description(spec: Schema) -> str:
    text = str(spec.get("description", "")).strip()
    if not text and "const" in spec:
        text = f"Always `{spec['const']}`: it selects this kind"
    if not text:
        _, nullable = _without_null(spec)
        text = "(no description)" if not nullable else "Optional"
    return _cell(text)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _walk(schema: Schema, defs: Schema) -> tuple[list[str], dict[str, list[str]]]:
    """The object definitions in the order a reader of the file meets them, and where each
    is used (e.g. `late_fees[]` with `kind: fixed`)."""
    order: list[str] = []
    used: dict[str, list[str]] = {}

    def visit(spec: Schema, path: str) -> None:
        if not isinstance(spec, dict):
            return
        if "$ref" in spec:
            name = _ref_name(spec["$ref"])
            target = defs.get(name, {})
            if not _is_object(target):
                return
            where = f"`{path}`"
            if "const" in target["properties"].get("kind", {}):
                where += f" with `kind: {target['properties']['kind']['const']}`"
            used.setdefault(name, [])
            if where not in used[name]:
                used[name].append(where)
            if name not in order:
                order.append(name)
                walk_object(target, path)
            return
        for key in ("anyOf", "oneOf"):
            for branch in spec.get(key, []):
                visit(branch, path)
        if spec.get("type") == "array":
            visit(spec.get("items", {}), f"{path}[]")
        if isinstance(spec.get("additionalProperties"), dict):
            visit(spec["additionalProperties"], f"{path}.CURRENCY")

    def walk_object(spec: Schema, prefix: str) -> None:
        for key, prop in spec.get("properties", {}).items():
            visit(prop, f"{prefix}.{key}" if prefix else key)

    walk_object(schema, "")
    for name in sorted(defs):  # anything the walk did not reach still gets its table
        if _is_object(defs[name]) and name not in order:
            order.append(name)
            used[name] = []
    return order, used


def _table(title: str, spec: Schema, defs: Schema, where: list[str]) -> list[str]:
    lines = [f"## {title}", ""]
    summary = " ".join(str(spec.get("description", "")).split())
    if summary:
        lines += [summary, ""]
    if where:
        lines += ["Used as " + ", ".join(where) + ".", ""]
    if spec.get("additionalProperties") is False:
        lines += ["Any other key is an error.", ""]
    lines += ["| key | type | default | constraints | description |",
              "|---|---|---|---|---|"]
    required = set(spec.get("required", []))
    for key, prop in spec.get("properties", {}).items():
        limits = "; ".join(_constraints(prop, defs)) or "—"
        lines.append(f"| `{key}` | {_cell(_type(prop, defs))} | "
                     f"{_cell(_default(prop, key in required))} | {_cell(limits)} | "
                     f"{_description(prop)} |")
    return [*lines, ""]


def render_schema(schema: Schema) -> str:
    """Markdown: one `##` section per object of the schema, the top level first."""
    defs: Schema = schema.get("$defs", {})
    order, used = _walk(schema, defs)
    lines = _table("Top level", schema, defs, [])
    for name in order:
        lines += _table(name, defs[name], defs, used[name])
    return "\n".join(lines)


def render_placeholders(placeholders: dict[str, str]) -> str:
    lines = ["| placeholder | becomes |", "|---|---|"]
    lines += [f"| `{{{name}}}` | {_cell(text)} |" for name, text in placeholders.items()]
    return "\n".join(lines) + "\n"


# --- MkDocs events -----------------------------------------------------------------------

def on_config(config: Any) -> Any:
    """Import the code of the tree being built, whatever is installed."""
    root = Path(config["config_file_path"]).resolve().parent
    for folder in ("connectors", "src"):
        path = str(root / folder)
        if path not in sys.path:
            sys.path.insert(0, path)
    _replaced.clear()
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if SCHEMA_MARKER in markdown:
        markdown = markdown.replace(SCHEMA_MARKER, render_schema(load_schema()))
        _replaced.add(SCHEMA_MARKER)
    if PLACEHOLDER_MARKER in markdown:
        markdown = markdown.replace(PLACEHOLDER_MARKER, render_placeholders(load_placeholders()))
        _replaced.add(PLACEHOLDER_MARKER)
    return markdown


def on_post_build(config: Any) -> None:
    if SCHEMA_MARKER not in _replaced:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"no page holds {SCHEMA_MARKER}: the rules reference was not built")
