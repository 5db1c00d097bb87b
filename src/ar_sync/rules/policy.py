"""The follow-up rules an admin writes in YAML: schema, safe loading, precise errors.

A rules file is parsed with yaml.SafeLoader into a node tree that remembers every value's file
and line, merged with the rule set it `extends`, then validated by the frozen pydantic models
below. Any problem (YAML syntax, wrong type, unknown key, bad currency, unsafe template, bad
time zone, unknown holiday country, an `extends` cycle) becomes one PolicyError whose message
names the file, the line and the field path:

    rules/my.yaml:14: reminders[2].days: Input should be a valid integer (got -5x)

Merge semantics of `extends` (documented for admins in rules/default.yaml and docs/rules.md):
the file and its sections (calendar, exclude) merge key by key, values inside them (holidays,
amounts, lists) are replaced whole;
the named lists `reminders`, `late_fees` and `escalations` merge item by item on `name`: an
item whose name the parent has is merged over the parent's item, a new name is appended, and
`{name: x, remove: true}` deletes the parent's item.

The parts live in policy_fields (errors, field types), policy_fees (fee rules),
policy_schema (the other sections and Policy), policy_yaml (reading, extends) and
policy_issues (errors mapped to lines); this module is the API and re-exports them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from ar_sync.domain.calendar import WEEKDAYS
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.rules.fee_rules import FixedFee, Interest, LateFee, PercentFee, UkStatutoryInterest
from ar_sync.rules.fields import PolicyError, PolicyIssue, fail
from ar_sync.rules.issues import clashes, rule_issues
from ar_sync.rules.safe_read import read_rules_file
from ar_sync.rules.schema import (
    CalendarSettings,
    Escalation,
    EscalationTarget,
    EscalationWhen,
    Exclusions,
    Holidays,
    InstalmentReminders,
    Policy,
    Reminder,
    RiskAdjustment,
    RiskRules,
)
from ar_sync.rules.yaml_lines import (
    MAX_EXTENDS_DEPTH,
    MAX_NODES,
    NAMED_LISTS,
    display,
    flatten,
    is_name,
    read_tree,
    shipped_rule_sets,
    shipped_rules_dir,
    with_chain,
)

__all__ = [
    "MAX_EXTENDS_DEPTH", "MAX_NODES", "NAMED_LISTS", "SCHEMA_ID", "CalendarSettings",
    "Escalation", "EscalationTarget", "EscalationWhen", "Exclusions", "FixedFee", "Holidays",
    "InstalmentReminders", "Interest", "LateFee", "PaymentPlan", "PercentFee", "Policy",
    "PolicyError", "PolicyIssue", "Reminder", "RiskAdjustment", "RiskRules", "UkStatutoryInterest",
    "load_policy", "parse_policy", "policy_json_schema", "shipped_rule_sets",
    "shipped_rules_dir", "weekday_numbers",
]

SCHEMA_ID = "https://ar-sync.dev/schemas/rules-v1.json"

# ============================================================================= API


def parse_policy(text: str, filename: str, *, base_dir: Path | None = None) -> Policy:
    """Parse and validate rules from `text`; `filename` is used in messages and, unless
    `base_dir` is given, to resolve a relative `extends`."""
    if base_dir is None:
        base_dir = Path(filename).parent
    start = (Path(filename).resolve(),)
    chains: dict[str, str] = {}
    tree = read_tree(text, filename, base_dir, start, chains)
    data, locs = flatten(tree)
    issues = clashes(data, locs)
    if not issues:
        try:
            return Policy.model_validate(data)
        except ValidationError as exc:
            issues = rule_issues(exc, data, locs)
    # A problem in an extended file names that file and how this file reached it.
    raise PolicyError([with_chain(i, chains[i.file]) if i.file in chains else i
                       for i in issues]) from None


def load_policy(source: str | Path) -> Policy:
    """Load a shipped rule set by name ('default') or a rules file by path."""
    if isinstance(source, str) and is_name(source) and not Path(source).is_file():
        shipped = shipped_rule_sets()
        if source not in shipped:
            known = ", ".join(shipped) or "none"
            raise fail(source, None, f"no shipped rule set named {source!r} (shipped: {known})")
        path = shipped[source]
        filename = display(path)
    else:
        path = Path(source)
        filename = str(source)
    return parse_policy(read_rules_file(path, filename), filename, base_dir=path.parent)


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema of the rules file, for editors (yaml-language-server, VS Code)."""
    schema = Policy.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **schema, "title": "ar-sync rules"}


def weekday_numbers(names: tuple[str, ...]) -> frozenset[int]:
    """'saturday' -> 5, as datetime.weekday() counts."""
    return frozenset(WEEKDAYS.index(n) for n in names)
