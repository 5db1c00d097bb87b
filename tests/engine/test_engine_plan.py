"""The planner: reminder stages, skips, business days, fees, escalation, exclusions,
idempotency and determinism."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ar_sync.domain.models import (
    ActionKind,
    AddNote,
    ApplyLateFee,
    EntryState,
    Escalate,
    FeeMode,
    InvoiceStatus,
    SendReminder,
    SkipStage,
    action_key,
)
from ar_sync.planner.fee_maths import invoice_cap
from ar_sync.planner.plan import explain, plan
from ar_sync.rules.policy import load_policy, parse_policy

from .conftest import PLATFORM_RULES, TODAY, by_age, make_invoice, noticed, record

DEFAULT = by_age(load_policy("default"))
PLATFORM = by_age(parse_policy(PLATFORM_RULES, "platform.yaml"))  # stages by the platform's e-mail
ANY_DAY = by_age(parse_policy("extends: default\ncalendar: {send_on: any_day}\n", "any.yaml"))


def kinds(actions: list) -> list[tuple[str, str, str]]:  # type: ignore[type-arg]
    return [(str(a.kind), a.rule, a.occurrence) for a in actions]


def test_missed_run_sends_only_the_latest_stage_and_skips_the_rest() -> None:
    inv = make_invoice(days_overdue=25)  # overdue-3 (+21) is the latest due
    actions = plan([inv], {}, PLATFORM, TODAY)
    assert kinds(actions) == [
        ("note", "overdue-3", "once"), ("reminder_email", "overdue-3", "once"),
        ("skip", "heads-up", "once"), ("skip", "overdue-1", "once"),
        ("skip", "overdue-2", "once")]
    note = actions[0]
    assert isinstance(note, AddNote) and note.tone == "firm"
    assert "INV-1" in note.text and "25 days overdue" in note.text and "1,000.00 USD" in note.text
    email = actions[1]
    assert isinstance(email, SendReminder) and email.to == "c1@example.com"
    assert all(a.superseded_by == "overdue-3" for a in actions if isinstance(a, SkipStage))
    assert note.key == action_key("t1", "quickbooks", "inv-1", ActionKind.NOTE, "overdue-3",
                                  "once")


def test_recorded_plan_is_idempotent_and_later_stages_follow() -> None:
    inv = make_invoice(days_overdue=25)
    history = record({}, plan([inv], {}, DEFAULT, TODAY))
    assert plan([inv], history, DEFAULT, TODAY) == []
    later = TODAY + timedelta(days=21)  # 46 days overdue: final-notice
    actions = plan([inv], history, DEFAULT, later)
    assert ("note", "final-notice", "once") in kinds(actions)
    assert not [a for a in actions if isinstance(a, SkipStage)]  # nothing left to skip


def test_stages_never_go_backwards() -> None:
    inv = make_invoice(days_overdue=50)
    history = record({}, plan([inv], {}, ANY_DAY, TODAY))  # final-notice done
    moved = make_invoice(days_overdue=10)  # due date moved later: overdue-2 is "latest" now
    actions = plan([moved], history, ANY_DAY, TODAY)
    assert not [a for a in actions if isinstance(a, AddNote | SendReminder)]


def test_claimed_and_retry_entries_are_planned_again_failed_are_not() -> None:
    inv = make_invoice(days_overdue=2)
    first = plan([inv], {}, PLATFORM, TODAY)
    note = next(a for a in first if isinstance(a, AddNote))
    email = next(a for a in first if isinstance(a, SendReminder))
    for state in (EntryState.CLAIMED, EntryState.RETRY):
        history = record({}, [note, email], state)
        assert {a.key for a in plan([inv], history, PLATFORM, TODAY)} >= {note.key, email.key}
    history = record(record({}, [note]), [email], EntryState.RETRY)  # note done, e-mail retry
    assert [a.key for a in plan([inv], history, PLATFORM, TODAY)
            if not isinstance(a, SkipStage)] == [email.key]
    history = record(record({}, first), [email], EntryState.FAILED)
    assert plan([inv], history, PLATFORM, TODAY) == []


def test_reminder_on_a_weekend_moves_to_monday() -> None:
    # due Friday 2026-11-27 -> overdue-1 (+1) falls on Saturday 28th -> Monday 30th
    inv = make_invoice(days_overdue=3)
    assert inv.due_date == date(2026, 11, 27)
    saturday, sunday = date(2026, 11, 28), date(2026, 11, 29)
    assert plan([inv], {}, DEFAULT, saturday) == []  # nothing is sent on a weekend
    assert plan([inv], {}, DEFAULT, sunday) == []
    monday = plan([inv], {}, DEFAULT, TODAY)
    note = next(a for a in monday if isinstance(a, AddNote))
    assert note.rule == "overdue-1" and note.due_on == TODAY
    # with send_on: any_day the stage was due on Saturday itself
    sat = next(a for a in plan([inv], {}, ANY_DAY, saturday) if isinstance(a, AddNote))
    assert sat.due_on == saturday


def test_holiday_moves_the_stage() -> None:
    # due Wednesday 2026-11-25 -> overdue-1 on Thanksgiving (26th) -> Friday 27th
    inv = make_invoice(days_overdue=5)
    assert plan([inv], {}, DEFAULT, date(2026, 11, 26)) == []  # Thanksgiving: no sending
    friday = plan([inv], {}, DEFAULT, date(2026, 11, 27))
    assert next(a for a in friday if isinstance(a, AddNote)).due_on == date(2026, 11, 27)


def test_monthly_fee_catches_up_within_the_cap() -> None:
    inv = make_invoice(days_overdue=150, total="1000.00")  # 30 + 4 months: 5 occurrences
    fees = [a for a in plan([inv], {}, DEFAULT, TODAY) if isinstance(a, ApplyLateFee)]
    assert [f.occurrence for f in fees] == ["2026-08", "2026-09", "2026-10", "2026-11"]
    # 1.5 % of 1000 = 15.00 each; min fee 10; cap 10 % of total = 100
    assert [f.amount.amount for f in fees] == [Decimal("15.00")] * 4
    assert all(f.mode == FeeMode.LINE and "ar-sync" not in f.label for f in fees)
    assert "Late fee 2026-08 (15.00 USD)" in fees[0].label
    small = make_invoice(days_overdue=150, total="200.00")  # cap 20; min fee 10 each
    got = [a.amount.amount for a in plan([small], {}, DEFAULT, TODAY)
           if isinstance(a, ApplyLateFee)]
    assert got == [Decimal("10.00"), Decimal("10.00")]


def test_fees_on_the_platform_count_toward_the_cap() -> None:
    # 95.00 of fee lines are already on the invoice: they are part of its total and balance;
    # the cap is 10 % of the original 1000.00, so only 5.00 more may be charged
    inv = make_invoice(days_overdue=150, total="1095.00", balance="1095.00",
                       late_fees_charged="95.00")
    fees = [a for a in plan([inv], {}, DEFAULT, TODAY) if isinstance(a, ApplyLateFee)]
    assert sum(f.amount.amount for f in fees) == Decimal("5.00")


def test_fees_come_first_then_most_overdue() -> None:
    a = make_invoice(1, days_overdue=40, total="500")
    b = make_invoice(2, days_overdue=90, total="900")
    c = make_invoice(3, days_overdue=90, total="5000")
    actions = plan([a, b, c], {}, DEFAULT, TODAY)
    first_non_fee = next(i for i, x in enumerate(actions) if not isinstance(x, ApplyLateFee))
    assert all(isinstance(x, ApplyLateFee) for x in actions[:first_non_fee])
    assert not any(isinstance(x, ApplyLateFee) for x in actions[first_non_fee:])
    order = list(dict.fromkeys(x.invoice_id for x in actions[first_non_fee:]))
    assert order == ["inv-3", "inv-2", "inv-1"]  # days overdue desc, then balance desc


def test_escalation_once_by_days_and_balance() -> None:
    big = make_invoice(1, days_overdue=61, total="6000.00")
    small = make_invoice(2, days_overdue=61, total="4000.00")
    yen = make_invoice(3, days_overdue=61, total="6000", currency="JPY")  # 5000 is USD-only
    told = noticed([big, small, yen], DEFAULT, 7)  # the final notice's deadline has passed
    actions = plan([big, small, yen], told, DEFAULT, TODAY)
    esc = [a for a in actions if isinstance(a, Escalate)]
    assert [e.invoice_id for e in esc] == ["inv-1"]
    assert esc[0].to == "person Credit control" and "61 days overdue" in esc[0].text
    history = record(told, actions)
    assert plan([big, small, yen], history, DEFAULT, TODAY + timedelta(days=30)) and not [
        a for a in plan([big], history, DEFAULT, TODAY + timedelta(days=30))
        if isinstance(a, Escalate)]


def test_escalation_after_three_ignored_reminders() -> None:
    inv = make_invoice(days_overdue=30, total="100.00")
    history: dict = {}  # type: ignore[type-arg]
    for day in (1, 7, 21, 45):  # runs on each stage day (any_day calendar)
        today = inv.due_date + timedelta(days=day)
        history = record(history, plan([inv], history, ANY_DAY, today), on=today)
    # three reminders ignored, but the final notice (day 45) gives 7 days: not before day 52
    actions = plan([inv], history, ANY_DAY, inv.due_date + timedelta(days=51))
    assert not [a for a in actions if isinstance(a, Escalate)]
    actions = plan([inv], history, ANY_DAY, inv.due_date + timedelta(days=52))
    assert [a.rule for a in actions if isinstance(a, Escalate)] == ["collections"]


@pytest.mark.parametrize("change", [
    {"status": InvoiceStatus.PAID, "balance": "0"},
    {"status": InvoiceStatus.VOIDED},
    {"status": InvoiceStatus.DRAFT},
    {"disputed": True},
    {"balance": "0.99"},
])
def test_paid_voided_draft_disputed_small_get_nothing(change: dict) -> None:  # type: ignore[type-arg]
    inv = make_invoice(days_overdue=100, total="9000.00", **change)
    assert plan([inv], {}, DEFAULT, TODAY) == []


def test_customer_and_currency_exclusions() -> None:
    policy = parse_policy(
        "extends: default\nexclude: {customer_ids: [c1], customer_names: [customer 2],"
        " currencies: [EUR]}\n", "x.yaml")
    invs = [make_invoice(n, days_overdue=40) for n in (1, 2, 3)]
    invs.append(make_invoice(4, days_overdue=40, currency="EUR"))
    planned = {a.invoice_id for a in plan(invs, {}, policy, TODAY)}
    assert planned == {"inv-3"}
    # the plain exclusion list replaced the parent's, disputed still on from default
    assert policy.exclude.disputed


def test_uk_statutory_plan() -> None:
    uk = by_age(load_policy("uk-late-payment"))
    inv = make_invoice(days_overdue=61, total="5000.00", currency="GBP")  # due 30 Sep
    fees = [a for a in plan([inv], {}, uk, TODAY) if isinstance(a, ApplyLateFee)]
    # by hand: (3.75 + 8) % a year, actual/365, on 5,000 GBP:
    # 30 Sep -> 30 Oct, 30 days: 5000 x 0.1175 x 30 / 365 = 48.2876.. -> 48.29
    # 30 Oct -> 30 Nov, 31 days: 5000 x 0.1175 x 31 / 365 = 49.8972.. -> 49.90
    assert [(f.occurrence, f.amount.amount) for f in fees] == [
        ("compensation", Decimal("70.00")), ("2026-10", Decimal("48.29")),
        ("2026-11", Decimal("49.90"))]
    assert all(f.mode == FeeMode.INVOICE for f in fees)


def test_fees_and_escalations_follow_send_on_like_reminders() -> None:
    inv = make_invoice(days_overdue=90, total="9000.00", today=date(2026, 11, 28))  # Saturday
    assert plan([inv], {}, DEFAULT, date(2026, 11, 28)) == []
    assert plan([inv], {}, DEFAULT, date(2026, 11, 29)) == []  # Sunday
    told = noticed([inv], DEFAULT, 7, today=date(2026, 11, 28))
    monday = plan([inv], told, DEFAULT, date(2026, 11, 30))
    fees = [a for a in monday if isinstance(a, ApplyLateFee)]
    assert [a.occurrence for a in fees] == ["2026-09", "2026-10", "2026-11"]  # Nov 29: a Sunday
    assert [a.rule for a in monday if isinstance(a, Escalate)] == ["collections"]
    anyday = plan([inv], told, ANY_DAY, date(2026, 11, 28))
    assert {str(a.kind) for a in anyday} >= {"late_fee", "escalate"}


def test_not_yet_due_invoice_gets_nothing_until_heads_up() -> None:
    inv = make_invoice(days_overdue=-10)
    assert plan([inv], {}, DEFAULT, TODAY) == []
    assert kinds(plan([inv], {}, DEFAULT, inv.due_date - timedelta(days=3))) == [
        ("note", "heads-up", "once"), ("customer_email", "heads-up", "once")]


def test_explain_lists_stages_fees_and_plan() -> None:
    inv = make_invoice(days_overdue=40)
    lines = explain(inv, {}, DEFAULT, TODAY)
    text = "\n".join(lines)
    assert "stage overdue-3 day +21" in text and "fee late-fee" in text
    assert "planned today: note final-notice" not in text  # 40 < 45
    assert "planned today: note overdue-3" in text
    paid = make_invoice(days_overdue=40, status=InvoiceStatus.PAID, balance="0")
    assert "nothing to do" in explain(paid, {}, DEFAULT, TODAY)[-1]


def test_explain_says_what_the_journey_holds_back() -> None:
    """The shipped rules: a first contact that starts gently, fees only after their terms
    were announced, an escalation only after the final notice's deadline; 'agreed' fee terms
    say nothing of an announcement."""
    inv = make_invoice(days_overdue=61)
    text = "\n".join(explain(inv, {}, load_policy("default"), TODAY))
    assert "journey: first contact gentle, then one stage at a time, at least 3 days" in text
    assert "charged only from 7 days after a message stating its terms" in text
    assert "only after the final notice and the 7-day deadline it names" in text
    agreed = "\n".join(explain(inv, {}, by_age(load_policy("default")), TODAY))
    assert "first contact by_age" in agreed and "stating its terms" not in agreed


# ----------------------------------------------------------------------------- properties

POLICIES = [load_policy(n) for n in ("default", "gentle", "firm", "uk-late-payment", "email")]
POLICIES += [by_age(p) for p in POLICIES] + [ANY_DAY]


@st.composite
def invoice_sets(draw: st.DrawFn) -> list:  # type: ignore[type-arg]
    n = draw(st.integers(1, 12))
    out = []
    for i in range(n):
        currency = draw(st.sampled_from(["USD", "GBP", "JPY", "BHD", "EUR"]))
        total = draw(st.decimals(min_value="0.5", max_value=50000, places=3))
        paid = draw(st.sampled_from([0, 0, 0.5, 1]))
        status = draw(st.sampled_from([InvoiceStatus.OPEN] * 4 + list(InvoiceStatus)))
        out.append(make_invoice(
            i, days_overdue=draw(st.integers(-10, 400)), total=total,
            balance=total * Decimal(1 - paid), currency=currency, status=status,
            disputed=draw(st.booleans()) and draw(st.booleans()),
            late_fees_charged=draw(st.sampled_from([Decimal(0), Decimal(0), Decimal("7.5")]))))
    return out


@settings(max_examples=120, deadline=None)
@given(invoices=invoice_sets(), policy_index=st.integers(0, len(POLICIES) - 1),
       seed=st.integers(0, 2**16), offset=st.integers(0, 6))
def test_plan_deterministic_idempotent_and_safe(
    invoices: list, policy_index: int, seed: int, offset: int  # type: ignore[type-arg]
) -> None:
    policy = POLICIES[policy_index]
    today = TODAY + timedelta(days=offset)
    first = plan(invoices, {}, policy, today)
    shuffled = list(invoices)
    random.Random(seed).shuffle(shuffled)
    assert plan(shuffled, {}, policy, today) == first  # order of input is irrelevant
    assert plan(invoices, {}, policy, today) == first  # deterministic

    by_id = {i.id: i for i in invoices}
    keys = [a.key for a in first]
    assert len(keys) == len(set(keys))
    stages: dict[str, set[str]] = {}
    for a in first:
        inv = by_id[a.invoice_id]
        assert inv.status == InvoiceStatus.OPEN and inv.balance > 0 and not inv.disputed
        if isinstance(a, AddNote | SendReminder):
            stages.setdefault(a.invoice_id, set()).add(a.rule)
    assert all(len(s) == 1 for s in stages.values())  # never two stages for one invoice

    fees: Counter[str] = Counter()
    by_rule: dict[tuple[str, str], Decimal] = {}
    for a in first:
        if isinstance(a, ApplyLateFee):
            inv = by_id[a.invoice_id]
            assert a.amount.currency == inv.currency and a.amount.amount > 0
            fees[a.invoice_id] += a.amount.amount  # type: ignore[assignment]
            key = (a.invoice_id, a.rule)
            by_rule[key] = by_rule.get(key, Decimal(0)) + a.amount.amount
    for iid, total_fees in fees.items():
        inv = by_id[iid]
        for rule in policy.late_fees:
            cap = invoice_cap(inv.total, inv.currency,
                              rule.cap_amount.for_currency(inv.currency)
                              if rule.cap_amount else None, rule.cap_percent)
            own = by_rule.get((iid, rule.name), Decimal(0))
            if cap is not None and own:
                # a rule's cap bounds all fees on the invoice when that rule charges
                others = total_fees - own
                assert inv.late_fees_charged + own <= max(cap, inv.late_fees_charged) + others

    # record everything (on the day planned), and let the platform show the fees it now carries
    history = record({}, first, on=today)
    updated = []
    for inv in invoices:
        extra = Decimal(fees.get(inv.id, 0))
        on_invoice = extra if policy.late_fees and policy.late_fees[0].mode == FeeMode.LINE \
            else Decimal(0)
        updated.append(inv.model_copy(update={"late_fees_charged": inv.late_fees_charged + extra,
                                              "balance": inv.balance + on_invoice}))
    assert plan(updated, history, policy, today) == []  # idempotent


def test_fast_built_actions_equal_validated_ones() -> None:
    from pydantic import TypeAdapter

    from ar_sync.domain.models import Action

    invs = [make_invoice(1, days_overdue=70, total="9000.00"), make_invoice(2, days_overdue=25)]
    actions = (plan(invs, noticed(invs[:1], DEFAULT, 7), DEFAULT, TODAY)
               + plan(invs, noticed(invs[:1], PLATFORM, 7), PLATFORM, TODAY))
    assert {type(a).__name__ for a in actions} == {
        "AddNote", "EmailReminder", "SendReminder", "ApplyLateFee", "Escalate", "SkipStage"}
    for a in actions:
        assert set(a.__dict__) == set(type(a).model_fields)
    adapter = TypeAdapter(list[Action])
    assert adapter.validate_json(adapter.dump_json(actions)) == actions


def test_fee_rule_tax_reaches_the_action_and_defaults_to_none() -> None:
    """`tax:` on a late-fee rule is the platform tax code the connector puts on the fee."""
    taxed = by_age(parse_policy("extends: default\ncalendar: {send_on: any_day}\nlate_fees:\n"
                                "  - {name: late, kind: fixed, amount: 25, tax: '20.0% S'}\n",
                                "taxed.yaml"))
    inv = make_invoice(days_overdue=40)
    fees = [a for a in plan([inv], {}, taxed, TODAY) if isinstance(a, ApplyLateFee)]
    assert {f.tax for f in fees if f.rule == "late"} == {"20.0% S"}
    plain = [a for a in plan([inv], {}, DEFAULT, TODAY) if isinstance(a, ApplyLateFee)]
    assert plain and {f.tax for f in plain} == {None}
    with pytest.raises(Exception, match="tax"):
        parse_policy("late_fees:\n  - {name: late, kind: fixed, amount: 25, tax: ''}\n",
                     "bad.yaml")
