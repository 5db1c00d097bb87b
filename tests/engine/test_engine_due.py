"""may_act: the invoices that can have an action today, judged from their finished keys alone.

The property: for any invoices, any ledger an earlier sequence of runs could have left
(rows done, skipped, failed, claimed or waiting for a retry, written at any hour, fees of any
amount) and any rule set, every invoice the full planner acts on is named. And it is useful:
after a complete run, a no-change run names nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ar_sync.domain.models import TERMINAL_STATES, ActionKind, ApplyLateFee, EntryState, LedgerEntry
from ar_sync.domain.pauses import Pause
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.planner.can_act import Finished, finished_of, may_act, summary_history, with_summary
from ar_sync.planner.plan import plan_run
from ar_sync.rules.policy import load_policy, parse_policy

from .conftest import TODAY, make_invoice, record

POLICIES = {name: load_policy(name) for name in
            ("default", "firm", "gentle", "email", "uk-late-payment", "eu-late-payment")}
POLICIES["waivers"] = parse_policy(
    "journey: {fee_notice: agreed}\n"
    "late_fees: [{name: lf, kind: fixed, amount: 25, every: month, waive_on_dispute: true}]\n"
    "escalations: [{name: esc, when: [{reminders_ignored: 2}], to: {agency: A}}]\n", "t.yaml")
# the old journey (latest stage by age, fees from go-live as agreed terms), so the fee paths
# of the shipped sets that announce nothing are judged too
for _name in ("default", "firm", "uk-late-payment"):
    POLICIES[f"{_name}-by-age"] = POLICIES[_name].model_copy(update={"journey": POLICIES[
        _name].journey.model_copy(update={"first_contact": "by_age", "fee_notice": "agreed"})})
STATES = [EntryState.DONE, EntryState.FAILED, EntryState.CLAIMED, EntryState.RETRY, None]


def _finished(history: dict[str, list[LedgerEntry]]) -> dict[str, list[Finished]]:
    return {i: [finished_of(e) for e in rows if e.state in TERMINAL_STATES]
            for i, rows in history.items()}


@st.composite
def _ledger(draw: st.DrawFn, invoices: list, rules: str,
            **planner: Any) -> dict[str, list[LedgerEntry]]:
    """What runs on some earlier days left behind, each action in a random state."""
    policy = POLICIES[rules]
    history: dict[str, list[LedgerEntry]] = {}
    days = sorted(draw(st.sets(st.integers(min_value=1, max_value=240), max_size=6)),
                  reverse=True)
    for back in days:
        day = TODAY - timedelta(days=back)
        for action in plan_run(invoices, history, policy, day, **planner):
            state = draw(st.sampled_from(STATES))
            if state is None:
                continue  # the run stopped before this one
            if action.kind == ActionKind.SKIP:
                state = EntryState.SKIPPED
            hour = draw(st.integers(min_value=0, max_value=23))
            at = datetime.combine(day, time(hour), tzinfo=UTC)
            entry = record({}, [action], state, day)[action.invoice_id][0]
            if isinstance(action, ApplyLateFee):
                scale = draw(st.sampled_from([Decimal(0), Decimal("0.5"), Decimal(1),
                                              Decimal(3)]))
                entry = entry.model_copy(update={"amount": action.amount.amount * scale})
            rows = history.setdefault(action.invoice_id, [])  # one row per key, as a ledger
            rows[:] = [e for e in rows if e.key != action.key]
            rows.append(entry.model_copy(update={"updated_at": at}))
    return history


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), rules=st.sampled_from(sorted(POLICIES)),
       overdue=st.lists(st.integers(min_value=-10, max_value=400), min_size=1, max_size=4),
       paid=st.sampled_from([Decimal(0), Decimal("0.3"), Decimal("0.9")]),
       fees_charged=st.sampled_from([Decimal(0), Decimal(20), Decimal(500)]),
       exact=st.booleans(), disputed=st.sets(st.integers(0, 3)),
       paused=st.sampled_from([None, "dispute", "promise", "other"]),
       pause_days=st.tuples(st.integers(0, 120), st.integers(0, 60)),
       with_plan=st.booleans())
def test_never_leaves_out_an_invoice_the_planner_acts_on(
        data: st.DataObject, rules: str, overdue: list[int], paid: Decimal,
        fees_charged: Decimal, exact: bool, disputed: set[int], paused: str | None,
        pause_days: tuple[int, int], with_plan: bool) -> None:
    invoices = [make_invoice(n, days_overdue=d, total="2000.00",
                             balance=Decimal("2000.00") * (1 - paid),
                             late_fees_charged=fees_charged)
                for n, d in enumerate(overdue)]
    policy = POLICIES[rules]
    back, length = pause_days
    since = TODAY - timedelta(days=back)
    pauses = [] if paused is None else [Pause(
        invoice_id=invoices[0].id, reason=paused, since=since,
        until=since + timedelta(days=length))]
    plans = [PaymentPlan(invoice=invoices[-1].number, instalments=3,
                         first_due=invoices[-1].due_date)] if with_plan else []
    planner: dict[str, Any] = {"pauses": pauses, "plans": plans}
    history = data.draw(_ledger(invoices, rules, **planner))
    invoices = [i.model_copy(update={"disputed": True}) if n in disputed else i
                for n, i in enumerate(invoices)]  # disputed since the last run
    acted = {a.invoice_id for a in plan_run(invoices, history, policy, TODAY, **planner)}
    finished = {i.id: list[Finished]() for i in invoices}
    finished.update(_finished(history))
    if not exact:  # a summary that kept only keys and states
        finished = {i: [f._replace(amount=None, at=None, due_on=None) for f in rows]
                    for i, rows in finished.items()}
    busy = {i for i, rows in history.items() if any(e.state not in TERMINAL_STATES
                                                    for e in rows)}  # the run's leftovers
    named = may_act(invoices, finished, policy, TODAY, busy=busy, **planner)
    assert named is not None
    assert acted <= named, (acted - named)


@settings(max_examples=60, deadline=None)
@given(rules=st.sampled_from(sorted(POLICIES)),
       overdue=st.lists(st.integers(min_value=-10, max_value=400), min_size=1, max_size=6))
def test_after_a_complete_run_nothing_is_named(rules: str, overdue: list[int]) -> None:
    invoices = [make_invoice(n, days_overdue=d) for n, d in enumerate(overdue)]
    policy = POLICIES[rules]
    history = record({}, plan_run(invoices, {}, policy, TODAY), on=TODAY - timedelta(days=1))
    history = record(history, plan_run(invoices, history, policy, TODAY))
    finished = {i.id: list[Finished]() for i in invoices}
    finished.update(_finished(history))
    assert may_act(invoices, finished, policy, TODAY) == set()


def test_invoices_it_cannot_judge_are_always_named() -> None:
    waivers = POLICIES["waivers"]  # waive_on_dispute: a dispute reverses the fees charged
    owing = make_invoice(1, days_overdue=70)
    charged = _finished(record({}, plan_run([owing], {}, waivers, TODAY)))[owing.id]
    against = owing.model_copy(update={"disputed": True})
    unknown = make_invoice(3, days_overdue=70)
    assert may_act([owing, unknown], {owing.id: charged}, waivers, TODAY) == {unknown.id}
    assert may_act([against], {owing.id: charged}, waivers, TODAY) == {owing.id}  # waivers
    # a summary without the fees' amounts: a waiver could not repeat them, so it is named
    blind = [f._replace(amount=None) for f in charged]
    assert may_act([owing], {owing.id: blind}, waivers, TODAY) == set()
    assert may_act([against], {owing.id: blind}, waivers, TODAY) == {owing.id}
    waived = _finished(record({}, plan_run([against], {owing.id: record({}, plan_run(
        [owing], {}, waivers, TODAY))[owing.id]}, waivers, TODAY)))[owing.id]
    assert may_act([against], {owing.id: charged + waived}, waivers, TODAY) == set()


def test_a_finished_stage_key_is_what_keeps_an_invoice_out() -> None:
    policy = POLICIES["default"]
    invoice = make_invoice(1, days_overdue=10)
    done = record({}, plan_run([invoice], {}, policy, TODAY))
    rows = _finished(done)[invoice.id]
    assert may_act([invoice], {invoice.id: rows}, policy, TODAY) == set()
    named = set()
    for n in range(len(rows)):  # lose a row: named exactly when the plan then acts
        fewer = rows[:n] + rows[n + 1:]
        acts = bool(plan_run([invoice], {invoice.id: summary_history(invoice, fewer)},
                             policy, TODAY))
        assert may_act([invoice], {invoice.id: fewer}, policy, TODAY) == (
            {invoice.id} if acts else set())
        if acts:
            named.add(rows[n].kind)
    # without the skip or the note it is named (a skipped stage and a stage's note when its
    # e-mail already went send nothing: they are written whatever the gap); without the
    # e-mail's row the note, written today, holds the next stage for the gap (min_gap)
    assert named == {"skip", "note"}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), rules=st.sampled_from(sorted(POLICIES)),
       overdue=st.lists(st.integers(min_value=-10, max_value=400), min_size=1, max_size=3),
       disputed=st.booleans())
def test_a_summary_plans_like_the_rows_it_stands_for(data: st.DataObject, rules: str,
                                                     overdue: list[int],
                                                     disputed: bool) -> None:
    """Every finished row aged out, only the summary left: the same plan, waivers included."""
    invoices = [make_invoice(n, days_overdue=d, total="2000.00") for n, d in enumerate(overdue)]
    policy = POLICIES[rules]
    history = data.draw(_ledger(invoices, rules))
    if disputed:
        invoices = [i.model_copy(update={"disputed": True}) for i in invoices]
    left = {i: [e for e in rows if e.state not in TERMINAL_STATES]
            for i, rows in history.items()}
    aged = with_summary(invoices, left, _finished(history))
    assert plan_run(invoices, aged, policy, TODAY) == plan_run(invoices, history, policy, TODAY)
