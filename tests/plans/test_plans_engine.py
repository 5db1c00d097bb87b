"""The planner with payment plans: on track, missed, paid early, idempotent; the even split."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ar_sync.domain.models import Action, AddNote, ApplyLateFee, Escalate, LedgerEntry, SendReminder
from ar_sync.domain.money import quantum
from ar_sync.domain.payment_plans import PaymentPlan, schedule, split_evenly
from ar_sync.planner.plan import PLAN_BROKEN, PLAN_NOTE, plan

from .conftest import invoice, record, rules

DUE = date(2026, 10, 1)  # the invoice's own due date: long overdue by December
PP = PaymentPlan(invoice="INV-1", instalments=3, every="month", first_due=date(2026, 12, 2))


def _rules_of(actions: list[Action]) -> list[tuple[str, str]]:
    return sorted((str(a.kind), a.rule) for a in actions)


def test_on_track_sends_instalment_reminders_instead_of_overdue_rules() -> None:
    policy = rules()
    inv = invoice(due=DUE)  # 60 days overdue on 11-30: stages and fee due
    normal = plan([inv], {}, policy, date(2026, 11, 30))
    assert {type(a) for a in normal} >= {AddNote, ApplyLateFee}
    actions = plan([inv], {}, policy, date(2026, 11, 30), plans=[PP])
    assert _rules_of(actions) == [("note", "instalment-1"), ("note", PLAN_NOTE)]
    reminder = next(a for a in actions if a.rule == "instalment-1")
    assert isinstance(reminder, AddNote)
    assert "Instalment 1 of 3" in reminder.text and "300.00 USD" in reminder.text
    assert reminder.due_on == date(2026, 11, 29)  # 3 days before 12-02
    created = next(a for a in actions if a.rule == PLAN_NOTE)
    assert isinstance(created, AddNote) and "2027-02-02 300.00 USD" in created.text


def test_on_track_day_of_due_then_next_instalment() -> None:
    policy = rules("instalment_reminders: {email: true}\n")
    history = record({}, plan([invoice(due=DUE)], {}, policy, date(2026, 11, 30), plans=[PP]))
    on_day = plan([invoice(due=DUE)], history, policy, date(2026, 12, 2), plans=[PP])
    assert _rules_of(on_day) == [("note", "instalment-1"), ("reminder_email", "instalment-1")]
    assert all(a.occurrence.endswith("-due") for a in on_day)
    history = record(history, on_day)
    # first instalment paid: nothing until three days before the second
    paid_one = invoice(due=DUE, balance="600.00")
    assert plan([paid_one], history, policy, date(2026, 12, 20), plans=[PP]) == []
    second = plan([paid_one], history, policy, date(2026, 12, 30), plans=[PP])
    assert _rules_of(second) == [("note", "instalment-2"), ("reminder_email", "instalment-2")]
    assert all(isinstance(a, AddNote | SendReminder) for a in second)


def test_missed_instalment_breaks_plan_once_then_normal_rules_resume() -> None:
    policy = rules()
    inv = invoice(due=DUE, balance="900.00")
    history = record({}, plan([inv], {}, policy, date(2026, 11, 30), plans=[PP]))
    within_grace = plan([inv], history, policy, date(2026, 12, 5), plans=[PP])
    assert not any(a.rule == PLAN_BROKEN for a in within_grace)
    assert not any(isinstance(a, ApplyLateFee | Escalate) for a in within_grace)
    history = record(history, within_grace)
    broken = plan([inv], history, policy, date(2026, 12, 6), plans=[PP])
    notes = [a for a in broken if a.rule == PLAN_BROKEN]
    assert len(notes) == 1 and isinstance(notes[0], AddNote)
    assert notes[0].text.startswith("Payment plan broken: instalment 1 of 3 (300.00 USD due "
                                    "2026-12-02) was not paid by 2026-12-05")
    assert any(isinstance(a, ApplyLateFee) for a in broken)
    # the final notice comes first: escalation waits for the deadline it names
    assert not any(isinstance(a, Escalate) for a in broken)
    stage_notes = [a.rule for a in broken if isinstance(a, AddNote) and a.rule != PLAN_BROKEN]
    assert stage_notes == ["final"]  # only the latest stage; earlier ones are skipped
    history = record(history, broken, datetime(2026, 12, 6, 12, tzinfo=UTC))
    later = plan([inv], history, policy, date(2026, 12, 20), plans=[PP])
    # the broken note is written once; the final notice of 12-06 gave 7 days: escalated now
    assert [(str(a.kind), a.rule) for a in later] == [("escalate", "agency")]


def test_paid_early_gets_nothing_more() -> None:
    policy = rules()
    history = record({}, plan([invoice(due=DUE)], {}, policy, date(2026, 11, 30), plans=[PP]))
    two_paid = invoice(due=DUE, balance="300.00")  # instalments 1 and 2 paid early
    assert plan([two_paid], history, policy, date(2027, 1, 1), plans=[PP]) == []
    paid = invoice(due=DUE, balance="0.00")
    assert plan([paid], history, policy, date(2027, 3, 30), plans=[PP]) == []


def test_replan_after_recording_is_empty_on_every_day() -> None:
    policy = rules()
    inv = invoice(due=DUE)
    history: dict[str, list[LedgerEntry]] = {}
    day = date(2026, 11, 25)
    while day < date(2027, 1, 10):
        actions = plan([inv], history, policy, day, plans=[PP])
        assert len({a.key for a in actions}) == len(actions)
        history = record(history, actions, datetime.combine(day, time(12), tzinfo=UTC))
        assert plan([inv], history, policy, day, plans=[PP]) == []
        assert plan([inv], history, policy, day, plans=[PP]) == plan(
            [inv], history, policy, day, plans=[PP])
        day += timedelta(days=1)
    assert sum(1 for e in history["inv-1"] if e.rule == PLAN_BROKEN) == 1


def test_rules_file_plan_keyed_by_number_and_store_plan_wins() -> None:
    policy = rules("payment_plans: [{invoice: INV-1, instalments: 2, every: 14 days, "
                   "first_due: 2026-12-01}]\n")
    actions = plan([invoice(due=DUE)], {}, policy, date(2026, 11, 30))
    assert ("note", "instalment-1") in _rules_of(actions)
    created = next(a for a in actions if a.rule == PLAN_NOTE)
    assert isinstance(created, AddNote) and "450.00 USD" in created.text
    override = plan([invoice(due=DUE)], {}, policy, date(2026, 11, 30), plans=[PP])
    created = next(a for a in override if a.rule == PLAN_NOTE)
    assert isinstance(created, AddNote) and "300.00 USD" in created.text


@given(units=st.integers(min_value=0, max_value=10**9), count=st.integers(1, 36),
       currency=st.sampled_from(["JPY", "USD", "BHD"]))
def test_even_split_sums_exactly_in_minor_units(units: int, count: int, currency: str) -> None:
    amount = Decimal(units) * quantum(currency)
    parts = split_evenly(amount, count, currency)
    assert len(parts) == count and sum(parts, Decimal(0)) == amount
    assert all(p == p.quantize(quantum(currency)) and p >= 0 for p in parts)
    assert len(set(parts[:-1])) <= 1
    assert parts[-1] >= parts[0] and parts[-1] - parts[0] < count * quantum(currency)


def test_split_examples_and_schedule_dates() -> None:
    assert split_evenly(Decimal("100.00"), 3, "USD") == (
        Decimal("33.33"), Decimal("33.33"), Decimal("33.34"))
    assert split_evenly(Decimal("1000"), 3, "JPY") == (Decimal(333), Decimal(333), Decimal(334))
    assert split_evenly(Decimal("10.000"), 3, "BHD") == (
        Decimal("3.333"), Decimal("3.333"), Decimal("3.334"))
    with pytest.raises(ValueError, match="minor units"):
        split_evenly(Decimal("10.5"), 2, "JPY")
    pp = PaymentPlan(invoice="x", instalments=3, every="1 month", first_due=date(2027, 1, 31))
    assert [i.due for i in schedule(pp, Decimal(3), "USD")] == [
        date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31)]
    weekly = PaymentPlan(invoice="x", instalments=2, every="2 weeks", first_due=date(2027, 1, 1))
    assert weekly.every == "14 days"
    assert [i.due for i in schedule(weekly, Decimal(3), "USD")][1] == date(2027, 1, 15)
