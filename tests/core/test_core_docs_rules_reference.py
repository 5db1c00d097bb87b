"""The docs' rules reference (docs/hooks/rules_reference.py) renders every key of the rules
schema: the site is built from the schema, so it cannot leave a key out or drift from it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "docs" / "hooks" / "rules_reference.py"


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rules_reference_hook", HOOK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sections(markdown: str) -> dict[str, list[str]]:
    """`## Title` -> the keys of its table rows."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            found[current] = []
        match = re.match(r"\| `([^`]+)` \|", line)
        if match and current:
            found[current].append(match.group(1))
    return found


def test_every_key_of_every_object_has_its_row() -> None:
    hook = load_hook()
    schema = hook.load_schema()
    rendered = sections(hook.render_schema(schema))
    assert rendered["Top level"] == list(schema["properties"])
    objects = {name: spec for name, spec in schema["$defs"].items() if "properties" in spec}
    assert objects, "the schema has object definitions"
    for name, spec in objects.items():
        assert rendered.get(name) == list(spec["properties"]), name
    assert set(rendered) == {"Top level", *objects}


def test_required_keys_defaults_and_limits_are_shown() -> None:
    hook = load_hook()
    text = hook.render_schema(hook.load_schema())
    reminder = text.split("## Reminder\n", 1)[1].split("\n## ", 1)[0]
    assert "| `name` | string | **required** |" in reminder
    assert "| `days` | integer | **required** | ≥ -365; ≤ 3650 |" in reminder
    assert "| `tone` | one of `friendly`, `neutral`, `firm`, `final` | `friendly` |" in reminder
    assert "(chosen by `kind`)" in text  # late_fees: one table per kind, linked


def test_placeholders_are_rendered_and_the_markers_replaced() -> None:
    hook = load_hook()
    page = "intro\n\n<!-- rules-placeholders -->\n\n<!-- rules-schema -->\n"
    out = hook.on_page_markdown(page, page=None, config=None, files=None)
    assert "<!--" not in out
    for name in hook.load_placeholders():
        assert f"| `{{{name}}}` |" in out
