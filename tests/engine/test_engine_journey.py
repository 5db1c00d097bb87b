"""A customer's follow-up is a journey (issue 21): random books and rules run for 120 days, day
by day through plan_run and a ledger that records every action the day it is planned (some
invoices paid along the way). Over every run:

* the first message to a customer is never firmer than the journey's first stage;
* two messages to one customer are at least `journey.min_gap` days apart, and a customer gets
  one message a day at most (the day's ar-sync e-mail items are one grouped message);
* an escalation comes only after the invoice's final notice, `deadline_days` later;
* no fee or interest day is charged before a message stating its terms listed the invoice,
  plus `notice_days`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ar_sync.domain.models import (
    Action,
    ActionKind,
    AddNote,
    ApplyLateFee,
    EmailReminder,
    EntryState,
    Escalate,
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    SendReminder,
)
from ar_sync.planner.compiled import compile_policy
from ar_sync.planner.plan import plan_run
from ar_sync.rules.policy import Policy, parse_policy

from .conftest import make_invoice

START = date(2026, 11, 2)  # a Monday
DAYS = 120
STAGE_DAYS = (-5, -2, 0, 1, 3, 5, 7, 10, 14, 21, 30, 45, 60)
TONES = ("friendly", "neutral", "firm", "final")
FEES = (
    "{name: admin, kind: fixed, amount: 25, grace_days: 10, every: once, stack: true}",
    "{name: late-fee, kind: percent, percent: 1.5, grace_days: 30, every: month}",
    "{name: monthly, kind: fixed, amount: 10, grace_days: 5, every: 30}",
    "{name: interest, kind: interest, rate: 8, grace_days: 0, every: month}",
)


@dataclass
class Journey:
    policy: Policy
    invoices: list[Invoice]
    paid_on: dict[str, date]


@st.composite
def journeys(draw: st.DrawFn) -> Journey:
    days = sorted(draw(st.sets(st.sampled_from(STAGE_DAYS), min_size=1, max_size=5)))
    tones = sorted(draw(st.lists(st.sampled_from(TONES), min_size=len(days),
                                 max_size=len(days))), key=TONES.index)
    stages = []
    for n, (d, tone) in enumerate(zip(days, tones, strict=True)):
        channel = draw(st.sampled_from(["note", "platform", "email", "email"]))
        stages.append(f"  - {{name: s{n}, days: {d}, tone: {tone}, channel: {channel}}}")
    fees = draw(st.lists(st.sampled_from(FEES), unique=True, max_size=2))
    escalation = draw(st.one_of(st.none(), st.sampled_from([
        "{days_overdue: 20}", "{days_overdue: 60}", "{reminders_ignored: 2}"])))
    zone = draw(st.sampled_from(["UTC", "Pacific/Auckland", "Pacific/Kiritimati",
                                 "America/Adak"]))
    text = "\n".join([
        f"calendar: {{timezone: {zone}, send_on: "
        f"{draw(st.sampled_from(['any_day', 'business_days']))}}}",
        f"journey: {{min_gap: {draw(st.integers(1, 7))}, notice_days: "
        f"{draw(st.integers(1, 14))}, deadline_days: {draw(st.integers(1, 14))}, "
        f"first_contact: {draw(st.sampled_from(['gentle', 'gentle', 'by_age']))}}}",
        "reminders:", *stages,
        "late_fees: [" + ", ".join(fees) + "]",
        "escalations: []" if escalation is None else
        f"escalations: [{{name: agency, when: [{escalation}], to: {{agency: A}}}}]",
    ])
    policy = parse_policy(text + "\n", "journey.yaml")
    invoices, paid_on = [], {}
    for n in range(draw(st.integers(1, 9))):
        customer = draw(st.integers(0, 3))
        inv = make_invoice(n, days_overdue=draw(st.integers(-40, 200)), today=START,
                           total=draw(st.sampled_from(["80.00", "900.00", "12000.00"])),
                           customer_id=f"c{customer}", customer_name=f"Customer {customer}",
                           customer_email=draw(st.sampled_from(
                               [f"c{customer}@example.com"] * 3 + [None])))
        invoices.append(inv)
        if draw(st.booleans()):
            paid_on[inv.id] = START + timedelta(days=draw(st.integers(5, DAYS)))
    return Journey(policy, invoices, paid_on)


def run(j: Journey, *, go_live: date = START) -> list[tuple[date, Action]]:
    """120 days of runs; each action recorded (done, skips skipped) at noon that day."""
    zone = ZoneInfo(j.policy.calendar.timezone)
    history: dict[str, list[LedgerEntry]] = {}
    out: list[tuple[date, Action]] = []
    for n in range(DAYS):
        today = START + timedelta(days=n)
        book = [i.model_copy(update={"status": InvoiceStatus.PAID, "balance": Decimal(0)})
                if j.paid_on.get(i.id, date.max) <= today else i for i in j.invoices]
        at = datetime.combine(today, time(12), tzinfo=zone)
        for a in plan_run(book, history, j.policy, today, go_live=go_live):
            out.append((today, a))
            skipped = a.kind == ActionKind.SKIP
            history.setdefault(a.invoice_id, []).append(LedgerEntry(
                key=a.key, tenant=a.tenant, invoice_id=a.invoice_id, kind=a.kind, rule=a.rule,
                occurrence=a.occurrence, due_on=a.due_on, updated_at=at,
                state=EntryState.SKIPPED if skipped else EntryState.DONE,
                amount=a.amount.amount if isinstance(a, ApplyLateFee) else None))
    return out


def _customer(j: Journey) -> dict[str, str]:
    return {i.id: i.customer_id for i in j.invoices}


MESSAGES = (SendReminder, EmailReminder, Escalate)


@settings(max_examples=60, deadline=None)
@given(j=journeys())
def test_the_first_message_is_never_firmer_than_the_first_stage(j: Journey) -> None:
    c = compile_policy(j.policy)
    after_due = [s.index for s in c.stages if s.days >= 1]
    entry = after_due[0] if after_due else len(c.stages) - 1
    # the first stage from there that tells the customer (a note-only stage tells nobody)
    entry = min((s.index for s in c.stages if s.index >= entry and s.channel != "note"),
                default=entry)
    index = {s.name: s.index for s in c.stages}
    # a customer with no address gets no platform e-mail: judged where every invoice has one
    reachable = {i.customer_id for i in j.invoices} - {
        i.customer_id for i in j.invoices if not i.customer_email}
    first: dict[str, Action] = {}
    for _, a in run(j):
        if isinstance(a, SendReminder | EmailReminder):
            first.setdefault(_customer(j)[a.invoice_id], a)
    first = {k: v for k, v in first.items() if k in reachable}
    for a in first.values():
        if j.policy.journey.first_contact == "gentle":
            assert index[a.rule] <= entry, (a.rule, [s.name for s in c.stages])
            tone = c.stages[index[a.rule]].tone
            assert TONES.index(tone) <= TONES.index(c.stages[entry].tone)


@settings(max_examples=60, deadline=None)
@given(j=journeys())
def test_messages_to_a_customer_keep_the_gap_and_one_a_day(j: Journey) -> None:
    gap = j.policy.journey.min_gap
    days: dict[str, dict[date, list[Action]]] = {}
    for day, a in run(j):
        if isinstance(a, MESSAGES):
            days.setdefault(_customer(j)[a.invoice_id], {}).setdefault(day, []).append(a)
    for per_day in days.values():
        ordered = sorted(per_day)
        for earlier, later in itertools.pairwise(ordered):
            assert (later - earlier).days >= gap, (earlier, later, gap)
        for sent in per_day.values():  # one message: e-mail items group, anything else alone
            assert all(isinstance(a, EmailReminder) for a in sent) or len(sent) == 1, sent


@settings(max_examples=60, deadline=None)
@given(j=journeys())
def test_no_escalation_before_the_final_notice_and_its_deadline(j: Journey) -> None:
    c = compile_policy(j.policy)
    final = c.stages[c.final_stage].name
    deadline = j.policy.journey.deadline_days
    noticed: dict[str, date] = {}
    for day, a in run(j):
        if isinstance(a, AddNote) and a.rule == final:
            noticed.setdefault(a.invoice_id, day)
        if isinstance(a, Escalate):
            assert a.invoice_id in noticed, "escalated before its final notice"
            assert (day - noticed[a.invoice_id]).days >= deadline


@settings(max_examples=60, deadline=None)
@given(j=journeys())
def test_no_fee_day_is_charged_before_its_announcement_and_the_notice(j: Journey) -> None:
    c = compile_policy(j.policy)
    notice = j.policy.journey.notice_days
    kinds = {f.name: f.notice for f in c.fees}
    rules = {f.name: f for f in j.policy.late_fees}
    announced: dict[tuple[str, str], date] = {}
    for day, a in run(j):
        if isinstance(a, EmailReminder):
            for kind in c.stage_announces.get(a.rule, ()):
                announced.setdefault((a.invoice_id, kind), day)
        if not isinstance(a, ApplyLateFee):
            continue
        told = announced.get((a.invoice_id, kinds[a.rule]))
        assert told is not None, f"{a.rule} {a.occurrence} charged, never announced"
        start = told + timedelta(days=notice)
        assert a.due_on >= start
        rule = rules[a.rule]
        if rule.kind == "interest":  # every day it accrued over lies from `start` on
            inv = next(i for i in j.invoices if i.id == a.invoice_id)
            days = (a.due_on - start).days
            most = inv.balance * rule.annual_rate * days / Decimal(36500)
            assert a.amount.amount <= most + Decimal("0.01"), (a.amount, days)


def test_the_issue_s_case_a_136_day_old_invoice_starts_gently() -> None:
    """81 of the demo's 86 first e-mails were final notices; now each starts at overdue-1, a
    stage a step, fees only a notice period after a message that stated them."""
    policy = parse_policy("extends: email\n", "e.yaml")
    inv = make_invoice(1, days_overdue=136, total="10000.00", today=START)
    j = Journey(policy, [inv], {})
    ran = run(j)
    stages = [(day, a.rule) for day, a in ran if isinstance(a, EmailReminder)]
    assert stages[0] == (START, "overdue-1")
    assert [r for _, r in stages] == ["overdue-1", "overdue-2", "overdue-3", "final-notice"]
    assert all((b - a).days >= 3 for (a, _), (b, _) in itertools.pairwise(stages))
    fees = [(day, a.occurrence) for day, a in ran if isinstance(a, ApplyLateFee)]
    assert fees and fees[0][0] >= START + timedelta(days=7)  # a week's notice, then monthly
    escalations = [day for day, a in ran if isinstance(a, Escalate)]
    final_day = stages[-1][0]
    assert escalations == [] or escalations[0] >= final_day + timedelta(days=7)


def test_a_channel_change_never_sends_a_stage_again() -> None:
    """The issue's 37 final notices re-sent an hour after a switch from the platform's e-mail
    to ar-sync's: an e-mail recorded under either channel settles the stage."""
    platform = parse_policy("extends: platform-email\ncalendar: {send_on: any_day}\n",
                            "p.yaml")
    own = parse_policy("extends: default\ncalendar: {send_on: any_day}\n", "o.yaml")
    inv = make_invoice(1, days_overdue=2, today=START)
    first = plan_run([inv], {}, platform, START)
    assert [a.rule for a in first if isinstance(a, SendReminder)] == ["overdue-1"]
    at = datetime.combine(START, time(9), tzinfo=UTC)
    history = {inv.id: [LedgerEntry(
        key=a.key, tenant=a.tenant, invoice_id=a.invoice_id, kind=a.kind, rule=a.rule,
        occurrence=a.occurrence, due_on=a.due_on, updated_at=at,
        state=EntryState.SKIPPED if a.kind == ActionKind.SKIP else EntryState.DONE)
        for a in first]}
    assert plan_run([inv], history, own, START) == []  # an hour later, other channel
