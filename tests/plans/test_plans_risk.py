"""Risk-aware rules: a high-risk customer gets earlier reminders and escalates earlier."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from ar_sync.domain.models import (
    ActionKind,
    EntryState,
    Escalate,
    Invoice,
    LedgerEntry,
    action_key,
)
from ar_sync.planner.plan import plan

from .conftest import invoice, record, rules

TODAY = date(2026, 11, 30)
RISK = "risk: {high: {reminder_offset_days: -3, escalate_after_days: 30}}\n"


def test_high_risk_gets_stage_earlier_under_the_same_key() -> None:
    policy = rules(RISK)
    invs = [invoice(due=TODAY - timedelta(days=4), n=1, customer="risky"),
            invoice(due=TODAY - timedelta(days=4), n=2, customer="fine")]
    risk = {"risky": "high", "fine": "low"}
    actions = plan(invs, {}, policy, TODAY, risk=risk)
    assert {(a.invoice_id, a.rule) for a in actions if str(a.kind) == "note"} == {
        ("inv-1", "first"), ("inv-2", "before")}  # day 7 - 3 = 4 for the risky customer only
    without = plan(invs, {}, policy, TODAY)  # no risk levels given: rules as written
    assert not any(a.rule == "first" for a in without)
    # the same stage name, so the key is the one the normal rules would use: no repeat later
    history = record({}, actions)
    later = plan(invs[:1], history, policy, TODAY + timedelta(days=3))
    assert not any(a.rule == "first" and str(a.kind) == "note" for a in later)


def test_high_risk_escalates_after_30_days_others_after_60() -> None:
    policy = rules(RISK)
    invs = [invoice(due=TODAY - timedelta(days=31), n=1, customer="risky"),
            invoice(due=TODAY - timedelta(days=31), n=2, customer="fine"),
            invoice(due=TODAY - timedelta(days=31), n=3, customer="medium")]
    told = _final_notice(invs, TODAY - timedelta(days=7))  # its deadline has passed
    actions = plan(invs, told, policy, TODAY,
                   risk={"risky": "high", "fine": "low", "medium": "medium"})
    assert [a.invoice_id for a in actions if isinstance(a, Escalate)] == ["inv-1"]


def _final_notice(invs: list[Invoice], on: date) -> dict[str, list[LedgerEntry]]:
    """Each invoice's final notice written on `on`."""
    at = datetime.combine(on, time(12), tzinfo=UTC)
    return {i.id: [LedgerEntry(
        key=action_key(i.tenant, i.platform, i.id, ActionKind.NOTE, "final", "once"),
        tenant=i.tenant, invoice_id=i.id, kind=ActionKind.NOTE, rule="final",
        occurrence="once", state=EntryState.DONE, due_on=on, updated_at=at)] for i in invs}


def test_levels_without_adjustments_change_nothing() -> None:
    policy = rules("risk: {low: {reminder_offset_days: 0}}\n")
    invs = [invoice(due=TODAY - timedelta(days=d), n=d) for d in range(-5, 70, 3)]
    assert plan(invs, {}, policy, TODAY, risk={"c1": "low"}) == plan(invs, {}, policy, TODAY)
