"""The quiet index's bound: for an invoice plan() has nothing for today, plan() has nothing for
it on any day before quiet_until (same invoice, ledger and rules). Histories are made the way
runs make them: some days' plans recorded (done, skipped, failed for good), some missed, some
actions dropped, so stages, fee occurrences and escalations are left in every state."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ar_sync.domain.models import (
    TERMINAL_STATES,
    ApplyLateFee,
    EntryState,
    FeeMode,
    Invoice,
    LedgerEntry,
)
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.planner.can_act import (
    NEVER,
    can_act,
    index_applies,
    quiet_days,
    quiet_stamp,
    quiet_until,
)
from ar_sync.planner.compiled import compile_policy
from ar_sync.planner.fee_maths import FeeTerms, due_occurrences, next_occurrence_on
from ar_sync.planner.plan import plan
from ar_sync.planner.state import Planner
from ar_sync.rules.policy import Policy, load_policy, parse_policy
from ar_sync.rules.schema import RiskAdjustment, RiskRules

from .conftest import TODAY, make_invoice, record

POLICIES = {name: load_policy(name) for name in
            ("default", "firm", "gentle", "uk-late-payment", "eu-late-payment", "email")}
# every fee cadence and escalation kind, on calendar days (no business-day shift)
POLICIES["varied"] = parse_policy("""
version: 1
calendar: {timezone: UTC, send_on: any_day}
exclude: {below_balance: 5}
reminders:
  - {name: early, days: -2, tone: friendly, email: true, note: "early {invoice_number}"}
  - {name: one, days: 3, tone: neutral, email: true, note: "one {invoice_number}"}
  - {name: two, days: 10, tone: firm, email: false, note: "two {invoice_number}"}
late_fees:
  - {name: flat, kind: fixed, amount: 15, grace_days: 5, every: 14, max_occurrences: 3,
     label: "fee {period}", currencies: [USD, EUR]}
  - {name: once, kind: fixed, amount: 25, grace_days: 20, every: once, label: "once {period}",
     mode: line, cap_amount: 30}
escalations:
  - name: soon
    when: [{days_overdue: 12}, {reminders_ignored: 1}]
    to: {person: "Credit control"}
  - name: big
    when: [{days_overdue: 4, balance_over: 900}]
    to: {person: "Boss"}
""", "varied.yaml")
# an escalation on the balance alone, not hidden behind nearer stages
POLICIES["balance"] = parse_policy("""
version: 1
calendar: {timezone: UTC, send_on: any_day}
reminders:
  - {name: once, days: 1, tone: friendly, email: false, note: "once {invoice_number}"}
escalations:
  - name: big
    when: [{days_overdue: 20, balance_over: {USD: 900, EUR: 900, GBP: 900}}]
    to: {person: "Boss"}
""", "balance.yaml")
# the old journey (latest stage by age, fees from go-live as agreed terms), so the fee paths
# of the shipped sets that announce nothing are bounded too
for _name in ("default", "firm", "uk-late-payment"):
    POLICIES[f"{_name}-by-age"] = POLICIES[_name].model_copy(update={"journey": POLICIES[
        _name].journey.model_copy(update={"first_contact": "by_age", "fee_notice": "agreed"})})
HORIZON = 100  # days after today checked against the bound
_FATES = (None, EntryState.DONE, EntryState.FAILED, EntryState.SKIPPED,  # None: dropped
          EntryState.CLAIMED, EntryState.RETRY)


def _anchors(rules_name: str) -> list[int]:
    """Days overdue around which something happens under the rules (stages, fees, escalations)."""
    c = compile_policy(POLICIES[rules_name])
    days = [s.days for s in c.stages] + [f.terms.grace_days for f in c.fees]
    days += [d for e in c.escalations for d, _, _ in e.alternatives if d is not None]
    return sorted({d + k for d in days for k in (0, 1, 7, 30, 31)})


def _history(inv: Invoice, rules_name: str, start: date, today: date,
             rng: random.Random) -> dict[str, list[LedgerEntry]]:
    """Runs from `start` to `today` (inclusive): each day missed (1 in 4), or planned with
    each action recorded (mostly done, some skipped or failed) or dropped."""
    rules = POLICIES[rules_name]
    history: dict[str, list[LedgerEntry]] = {}
    day = start
    while day <= today:
        if rng.random() >= 0.25:
            actions = plan([inv], history, rules, day)
            for a in actions:
                state = rng.choices(_FATES, weights=(3, 6, 0.5, 0.5, 0.2, 0.2))[0]
                if state is not None:
                    history = record(history, [a], state, on=day)
        day += timedelta(days=rng.choice([1, 1, 1, 2, 5]))
    return history


@dataclass
class Case:
    rules: Policy
    inv: Invoice
    today: date
    go_live: date | None
    history: dict[str, list[LedgerEntry]]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """An invoice under one of the rule sets, on some day, with the history runs left."""
    rules_name = draw(st.sampled_from(sorted(POLICIES)))
    today = TODAY + timedelta(days=draw(st.integers(min_value=0, max_value=6)))  # weekends too
    days_overdue = draw(st.integers(min_value=-15, max_value=220) | st.tuples(
        st.integers(min_value=0, max_value=99), st.integers(min_value=-2, max_value=2)))
    if isinstance(days_overdue, tuple):  # near a day something happens
        anchors = _anchors(rules_name)
        days_overdue = anchors[days_overdue[0] % len(anchors)] + days_overdue[1]
    total = draw(st.sampled_from([Decimal("2.50"), Decimal("950"), Decimal("1800"),
                                  Decimal("5500"), Decimal("80000")])
                 | st.decimals(min_value=Decimal("2"), max_value=Decimal("20000"), places=2))
    currency = draw(st.sampled_from(["USD", "GBP", "EUR", "JPY"]))
    if currency == "JPY":
        total = total.quantize(Decimal(1))
    paid_share = draw(st.sampled_from([Decimal(0), Decimal("0.5"), Decimal("0.999")]))
    balance = (total * (1 - paid_share)).quantize(Decimal(1) if currency == "JPY"
                                                  else Decimal("0.01"))
    email = draw(st.booleans())
    inv = make_invoice(days_overdue=days_overdue, total=total, balance=balance,
                       currency=currency, customer_email="a@example.com" if email else None,
                       today=today, disputed=draw(st.sampled_from([False] * 4 + [True])))
    go_live_back = draw(st.one_of(st.none(), st.integers(min_value=-5, max_value=120)))
    go_live = None if go_live_back is None else today - timedelta(days=go_live_back)
    rng = random.Random(draw(st.integers(min_value=0, max_value=2**32)))
    ran_for = draw(st.integers(min_value=0, max_value=90))
    # today's run included: its notes count as ignored only from tomorrow
    history = _history(inv, rules_name, today - timedelta(days=ran_for), today, rng)
    return Case(POLICIES[rules_name], inv, today, go_live, history)


@settings(max_examples=1000, deadline=None)
@given(case=cases())
def test_nothing_is_planned_before_the_quiet_bound(case: Case) -> None:
    rules, inv, today, go_live, history = (case.rules, case.inv, case.today, case.go_live,
                                           case.history)
    if go_live is not None:  # plan() is what is checked: pass go-live to both
        def planned(day: date) -> list[object]:
            return list(plan([inv], history, rules, day, go_live=go_live))
    else:
        def planned(day: date) -> list[object]:
            return list(plan([inv], history, rules, day))
    if planned(today):
        event("planned today")
        return  # the bound is only claimed for an invoice with nothing to do today
    until = quiet_until(Planner(rules, today, go_live=go_live), inv,
                        history.get(inv.id, ()))
    if until is None:
        event("no bound")
        return
    event("bound checked" if until < today + timedelta(days=HORIZON) else "quiet past horizon")
    assert until > today
    day = today
    while day < min(until, today + timedelta(days=HORIZON)):
        assert planned(day) == [], (day, until)
        day += timedelta(days=1)


@settings(max_examples=1000, deadline=None)
@given(case=cases())
def test_can_act_names_every_invoice_the_planner_acts_on(case: Case) -> None:
    """From the finished keys alone (no rows): every invoice plan() acts on is named."""
    finished = {i: {(e.kind, e.rule, e.occurrence) for e in rows if e.state in TERMINAL_STATES}
                for i, rows in case.history.items()}
    finished.setdefault(case.inv.id, set())
    acted = {a.invoice_id for a in plan([case.inv], case.history, case.rules, case.today,
                                        go_live=case.go_live)}
    named = can_act([case.inv], finished, case.rules, case.today, go_live=case.go_live)
    assert named is not None and acted <= named
    event("named" if named else "left out")


def test_can_act_names_what_it_cannot_judge() -> None:
    rules = POLICIES["default"]
    calm = make_invoice(1, days_overdue=-30)
    disputed = make_invoice(2, days_overdue=-30, disputed=True)
    unknown = make_invoice(3, days_overdue=-30)
    agreed = make_invoice(4, days_overdue=-30)
    plans = [PaymentPlan(invoice=agreed.number, instalments=2,
                         first_due=TODAY + timedelta(days=5))]
    finished: dict[str, set[tuple[str, str, str]]] = {calm.id: set(), disputed.id: set(),
                                                      agreed.id: set()}
    assert can_act([calm, disputed, unknown, agreed], finished, rules, TODAY,
                   plans=plans) == {unknown.id, agreed.id}  # disputes are excluded here
    waived = parse_policy("version: 1\nlate_fees:\n  - {name: f, kind: fixed, amount: 5,"
                          " grace_days: 1, every: once, waive_on_dispute: true,"
                          " label: fee}\n", "waived.yaml")
    assert can_act([calm, disputed], finished, waived, TODAY) == {disputed.id}
    risky = rules.model_copy(update={"risk": RiskRules(high=RiskAdjustment(
        reminder_offset_days=-2))})
    assert can_act([calm], finished, risky, TODAY) is None


def test_the_bound_is_the_next_stage_for_a_quiet_invoice() -> None:
    rules = POLICIES["default"]
    inv = make_invoice(days_overdue=3, customer_email=None)  # overdue-1 done, no e-mail
    history = record({}, plan([inv], {}, rules, TODAY))
    assert plan([inv], history, rules, TODAY) == []
    until = quiet_until(Planner(rules, TODAY), inv, history[inv.id])
    assert until == inv.due_date + timedelta(days=7)  # overdue-2, before any business shift
    assert plan([inv], history, rules, until) != []  # a Friday: sent that day


def test_claimed_rows_disputes_and_pauses_are_never_quiet() -> None:
    rules = POLICIES["default"]
    inv = make_invoice(days_overdue=2)
    actions = plan([inv], {}, rules, TODAY)
    claimed = record({}, actions, EntryState.CLAIMED)
    assert quiet_until(Planner(rules, TODAY), inv, claimed[inv.id]) is None
    waived = parse_policy("version: 1\nlate_fees:\n  - {name: f, kind: fixed, amount: 5,"
                          " grace_days: 1, every: once, waive_on_dispute: true,"
                          " label: fee}\n", "waived.yaml")
    disputed = make_invoice(days_overdue=2, disputed=True)
    assert quiet_until(Planner(waived, TODAY), disputed, ()) is None  # waivers: full path
    assert quiet_until(Planner(rules, TODAY), disputed, ()) == NEVER  # exclude: disputed
    # a fully handled invoice of a rule set without fees or escalations: never again
    gentle = parse_policy("version: 1\nreminders:\n  - {name: r, days: 1, tone: friendly,"
                          " email: false, note: x}\n", "gentle.yaml")
    done = record({}, plan([inv], {}, gentle, TODAY))
    assert quiet_until(Planner(gentle, TODAY), inv, done[inv.id]) == NEVER


def test_quiet_days_leaves_out_invoices_with_actions() -> None:
    rules = POLICIES["default"]
    busy = make_invoice(1, days_overdue=2)
    calm = make_invoice(2, days_overdue=-30)
    actions = plan([busy, calm], {}, rules, TODAY)
    got = quiet_days([busy, calm], {}, rules, TODAY, actions)
    assert set(got) == {calm.id}
    assert got[calm.id] == calm.due_date - timedelta(days=3)  # heads-up


def test_stamp_follows_rules_and_go_live_and_applies_without_plans_pauses_risk() -> None:
    a, b = POLICIES["default"], POLICIES["firm"]
    assert quiet_stamp(a, None) == quiet_stamp(load_policy("default"), None)
    assert quiet_stamp(a, None) != quiet_stamp(b, None)
    assert quiet_stamp(a, None) != quiet_stamp(a, TODAY)
    # the same in every process (a CLI run is one): no set order or hash seed leaks in
    code = ("from ar_sync.rules.policy import load_policy; from ar_sync.planner.can_act import "
            "quiet_stamp; print(quiet_stamp(load_policy('default'), None))")
    seen = {subprocess.run([sys.executable, "-c", code], env={**os.environ,
                           "PYTHONHASHSEED": seed}, capture_output=True, text=True,
                           check=True).stdout.strip() for seed in ("1", "2")}
    assert seen == {quiet_stamp(a, None)}
    assert index_applies(a, plans=[], pauses=[])
    assert not index_applies(a, plans=[object()], pauses=[])
    assert not index_applies(a, plans=[], pauses=[object()])


@settings(max_examples=300, deadline=None)
@given(
    every=st.sampled_from(["once", "month", 1, 7, 30]),
    kind=st.sampled_from(["fixed", "interest"]),
    grace=st.integers(min_value=0, max_value=40),
    limit=st.one_of(st.none(), st.integers(min_value=0, max_value=5)),
    due_back=st.integers(min_value=-60, max_value=400),
    compensation=st.booleans(),
)
def test_next_occurrence_is_the_first_one_after_today(
        every: str | int, kind: str, grace: int, limit: int | None, due_back: int,
        compensation: bool) -> None:
    terms = FeeTerms(kind=kind, amount=None, percent=Decimal(8), every=every,
                     grace_days=grace, max_occurrences=limit,
                     compensation=compensation and kind == "interest")
    due = TODAY - timedelta(days=due_back)
    now = due_occurrences(terms, due, TODAY)
    later = due_occurrences(terms, due, TODAY + timedelta(days=800))
    upcoming = sorted(o.on for o in later if o.on > TODAY)
    assert [o.on for o in later if o.on <= TODAY] == [o.on for o in now]
    assert next_occurrence_on(terms, due, TODAY) == (upcoming[0] if upcoming else None)


@pytest.mark.parametrize("mode", [FeeMode.LINE, FeeMode.INVOICE])
def test_a_capped_fee_is_looked_at_daily(mode: FeeMode) -> None:
    rules = parse_policy(f"""
version: 1
calendar: {{timezone: UTC, send_on: any_day}}
journey: {{fee_notice: agreed}}
late_fees:
  - {{name: f, kind: fixed, amount: 50, grace_days: 1, every: 7, cap_amount: 60,
     mode: {mode.value}, label: "fee {{period}}"}}
""", "capped.yaml")
    inv = make_invoice(days_overdue=30)
    first = plan([inv], {}, rules, TODAY)
    assert [a.amount.amount for a in first if isinstance(a, ApplyLateFee)] == [
        Decimal(50), Decimal(10)]
    history = record({}, first)
    assert plan([inv], history, rules, TODAY) == []
    # later occurrences are due but capped: no bound beyond tomorrow is claimed
    assert quiet_until(Planner(rules, TODAY), inv, history[inv.id]) == (
        TODAY + timedelta(days=1))
