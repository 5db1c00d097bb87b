"""The fee terms as a customer reads them: `{late_fee_terms}` and `{interest_terms}`, one
sentence each, from the rules for one currency. Pure.

Which kind a fee rule is announced as (`terms_kind`) is part of the same promise: a message
that stated `{late_fee_terms}` announced every fixed or percent rule, one that stated
`{interest_terms}` every interest rule (statutory ones included). The planner charges a rule
only after its kind was announced to the customer (`journey.notice_days`).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ar_sync.domain.money import format_money
from ar_sync.rules.schema import Policy, Reminder
from ar_sync.rules.templates import EMAIL_FIELDS, compile_template
from ar_sync.rules.wording import DEFAULT_BODIES, DEFAULT_SUBJECTS

__all__ = ["INTEREST", "LATE_FEE", "TERMS_PLACEHOLDER", "journey_values", "stage_announces",
           "terms_kind", "terms_text", "unannounced"]

LATE_FEE = "late_fee"
INTEREST = "interest"
TERMS_PLACEHOLDER = {LATE_FEE: "late_fee_terms", INTEREST: "interest_terms"}


def terms_kind(rule: Any) -> str:
    """'interest' for interest and statutory rules, 'late_fee' for fixed and percent ones."""
    return INTEREST if rule.kind in ("interest", "uk_statutory") else LATE_FEE


def stage_announces(r: Reminder) -> frozenset[str]:
    """The fee-terms kinds a stage's e-mail states. Only ar-sync's own e-mail reaches the
    customer in words the rules choose: a note is the bookkeeper's, and the platform's e-mail
    has no custom text."""
    if r.delivery != "email":
        return frozenset()
    names: set[str] = set()
    for text in (r.subject or DEFAULT_SUBJECTS.get(r.tone, ""),
                 r.body or DEFAULT_BODIES.get(r.tone, "")):
        names.update(compile_template(text, EMAIL_FIELDS).names)
    return frozenset(k for k, name in TERMS_PLACEHOLDER.items() if name in names)


def unannounced(policy: Policy) -> list[str]:
    """Fee rules that can never be charged: `journey.fee_notice: announced` and no stage's
    e-mail states their kind of terms (for `rules validate`)."""
    if policy.journey.fee_notice != "announced":
        return []
    stated = {k for r in policy.reminders for k in stage_announces(r)}
    return [f"late_fees: {rule.name}: never charged: no stage's e-mail (channel: email) "
            f"states {{{TERMS_PLACEHOLDER[terms_kind(rule)]}}}; send one that does, or set "
            "journey.fee_notice: agreed if the customer agreed the terms elsewhere"
            for rule in policy.late_fees if terms_kind(rule) not in stated]


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _when(rule: Any) -> str:
    every = rule.every
    how = ("once" if every == "once" else "each month" if every == "month"
           else f"every {every} days")
    start = (f"from {rule.grace_days} days after the due date" if rule.grace_days
             else "from the due date")
    return f"{how} {start}"


def _one(rule: Any, currency: str) -> str | None:
    if rule.currencies is not None and currency not in rule.currencies:
        return None
    if rule.kind == "fixed":
        amount = rule.amount.for_currency(currency)
        if amount is None:
            return None
        return f"a late fee of {format_money(amount, currency)} {_when(rule)}"
    if rule.kind == "percent":
        return f"a late fee of {_plain(rule.percent)}% of the unpaid balance {_when(rule)}"
    if rule.kind == "uk_statutory":
        extra = " plus the fixed compensation the Late Payment Act allows" if (
            rule.compensation) else ""
        return (f"statutory interest at {_rate(rule)} a year on the unpaid balance, charged "
                f"{_when(rule)}{extra}")
    extra = ""
    if rule.compensation is not None:
        fixed = rule.compensation.for_currency(currency)
        if fixed is not None:
            extra = f", and a fixed compensation of {format_money(fixed, currency)}"
    return (f"interest at {_rate(rule)} a year on the unpaid balance, charged "
            f"{_when(rule)}{extra}")


_TABLES = {"bank_of_england": "the Bank of England Bank Rate",
           "ecb_main_refinancing": "the ECB main refinancing rate"}


def _rate(rule: Any) -> str:
    """'8%', or a dated reference rate and its margin in words."""
    fixed = getattr(rule, "rate", None)
    if fixed is not None:
        return f"{_plain(fixed)}%"
    ref = rule.reference_rate
    if isinstance(ref, str):
        return f"{_TABLES.get(ref, ref)} plus {_plain(rule.margin)} points"
    return f"{_plain(ref + rule.margin)}%"


def terms_text(policy: Policy, currency: str) -> dict[str, str]:
    """{'late_fee_terms': ..., 'interest_terms': ...} for invoices in `currency` (cached per
    policy object: rendered for every message)."""
    hit = _CACHE.get((id(policy), currency))
    if hit is not None and hit[0] is policy:
        return hit[1]
    parts: dict[str, list[str]] = {LATE_FEE: [], INTEREST: []}
    for rule in policy.late_fees:
        text = _one(rule, currency)
        if text is not None:
            parts[terms_kind(rule)].append(text)
    out = {
        "late_fee_terms": ("Late payment: " + "; ".join(parts[LATE_FEE]) + "."
                           if parts[LATE_FEE] else ""),
        "interest_terms": ("Interest on late payment: " + "; ".join(parts[INTEREST]) + "."
                           if parts[INTEREST] else ""),
    }
    if len(_CACHE) >= 256:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[(id(policy), currency)] = (policy, out)
    return out


_CACHE: dict[tuple[int, str], tuple[Policy, dict[str, str]]] = {}


def journey_values(policy: Policy, currency: str, today: date) -> dict[str, str]:
    """The journey's placeholders: the fee terms for `currency` and the final notice's
    deadline counted from `today`."""
    days = policy.journey.deadline_days
    return {**terms_text(policy, currency),
            "deadline": (today + timedelta(days=days)).isoformat(),
            "deadline_days": str(days)}
