"""The planner: which notes, e-mails, fees and escalations are due today. Pure, no I/O.

`plan(invoices, history, policy, today)` looks at each invoice and its ledger history and
returns the actions still to do, each with a deterministic idempotency key:

* Reminders: of the stages whose (business-day-shifted) date has come, only the LATEST is
  sent (an AddNote, plus a SendReminder when the stage says `email: true`); earlier stages
  not yet handled become SkipStage records, so a missed run never sends a burst. Stages never
  go backwards: once a later stage is handled, earlier ones are only ever skipped. With
  `send_on: business_days`, nothing is sent on a weekend or holiday.
* Late fees: every occurrence of every fee rule has its own key; missed occurrences are all
  caught up, within the cap, counting fees already on the platform (`late_fees_charged`).
* Escalation: once per rule per invoice, when any of its alternatives holds.
* A paid, voided, draft or excluded invoice gets nothing.
* Payment plans (`plans=`, or the rules' `payment_plans`): while every instalment due so far
  is met (paid = total - balance - already_paid reaches the running sum), the invoice gets
  only instalment reminders (rule `instalment-<n>`, occurrence `<plan hash>-before|due`, the
  latest point only) and the plan note (rule `payment-plan`): no stages, fees or escalation.
  An instalment unmet `grace_days` after its due date breaks the plan: one note (rule
  `payment-plan-broken`), then the normal rules as if there had been no plan.
* Risk (`risk=` customer id -> level, and the rules' `risk` section): a level's customers are
  planned with a derived policy (stages shifted, escalation days capped); stage and rule
  names, hence keys, stay the same.

A key whose ledger entry is in a terminal state (done, skipped, failed) is never planned
again; claimed/retry entries are planned again (the sync shell reconciles them). So planning
again after recording every action yields nothing.

Output order (the order a run should spend its call budget in): late fees first; then by
days overdue (most first), balance (largest first), tenant, platform, invoice id; then by
kind (late fee, escalate, note, e-mail, skip), due date, rule and occurrence.

Speed: the policy is compiled once (cached on the Policy object) and per-due-date facts are
cached per call, so an invoice with nothing due costs a dict lookup; actions are built with
model_construct (their fields are computed here, not user input).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any

from ar_sync.domain.models import (
    Action,
    ActionKind,
    ApplyLateFee,
    EntryState,
    Invoice,
    LedgerEntry,
    WaiveFee,
)
from ar_sync.domain.money import format_money
from ar_sync.domain.pauses import Pause
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.planner.compiled import NOTE, ONCE, OPEN, SKIP, compile_policy
from ar_sync.planner.escalation import describe_when
from ar_sync.planner.fee_maths import due_occurrences
from ar_sync.planner.journey import CustomerLog
from ar_sync.planner.payment_plans import PLAN_BROKEN, PLAN_NOTE, plan_payment_plan
from ar_sync.planner.risk import risk_planners
from ar_sync.planner.state import Planner
from ar_sync.planner.steps import plan_invoice, run_jobs
from ar_sync.report.figures import risk_levels
from ar_sync.rules.policy import Policy

__all__ = ["PLAN_BROKEN", "PLAN_NOTE", "compile_policy", "explain", "plan", "plan_run",
           "risk_for", "simulate", "simulate_days", "sort_key"]


def sort_key(item: tuple[tuple[Any, ...], Action]) -> tuple[Any, ...]:
    return item[0]


def plan(
    invoices: Iterable[Invoice],
    history: Mapping[str, Sequence[LedgerEntry]],
    policy: Policy,
    today: date,
    plans: Iterable[PaymentPlan] | None = None,
    risk: Mapping[str, str] | None = None,
    *,
    go_live: date | None = None,
    pauses: Sequence[Pause] = (),
    contacts: Mapping[str, CustomerLog] | None = None,
    versions: Mapping[int, Policy] | None = None,
) -> list[Action]:
    """The actions due `today` (the company's date, see Policy.today), in priority order.

    `plans`: payment plans (e.g. the store's), matched to invoices by id or number; they
    take precedence over the rules file's `payment_plans`. `risk`: customer id -> risk level
    (ar_sync.report.figures.risk_levels), used by the rules' `risk` section. `go_live`: the day the
    connection went live (what may be caught up is the rules' `backfill`). `pauses`: stored
    pauses (an invoice's own platform marker, `Invoice.pause`, counts too). `contacts`:
    customer id -> journey.CustomerLog, when the caller read the customers' rows beyond
    `history` (a run does: messages about invoices not planned today count too); else they
    are read from `history` for the invoices given. `versions`: the company's stored rules
    versions by number, so the days an older fee row covered are read from the version that
    planned it (planner.fee_days).
    """
    invoices = invoices if isinstance(invoices, list) else list(invoices)
    planner = Planner(policy, today, go_live=go_live, pauses=pauses, contacts=contacts,
                      versions=versions)
    out: list[tuple[tuple[Any, ...], Action]] = []
    step: _Step = partial(plan_invoice, planner)
    by_invoice = {p.invoice: p for p in policy.payment_plans}
    by_invoice.update({p.invoice: p for p in plans or ()})
    levels = (risk_planners(policy, today, go_live=go_live, pauses=pauses, contacts=contacts,
                            versions=versions)
              if risk and policy.risk.levels() else {})
    if by_invoice or levels:
        step = _special_step(planner, by_invoice, levels, risk or {})
    # The loop allocates many small objects and no reference cycles: the cyclic collector
    # would only rescan the caller's (possibly millions of) invoices over and over.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for inv in invoices:
            step(inv, history, out)
        for each in (planner, *levels.values()):
            run_jobs(each, invoices, history, out)
    finally:
        if collecting:
            gc.enable()
    out.sort(key=sort_key)
    return [a for _, a in out]


_Step = Any


def _special_step(base: Planner, by_invoice: Mapping[str, PaymentPlan],
                  levels: Mapping[str, Planner], risk: Mapping[str, str]) -> _Step:
    """The per-invoice step when payment plans or risk rules are in play (the plain step
    stays untouched, so invoices without either cost nothing extra)."""
    def step(inv: Invoice, history: Mapping[str, Sequence[LedgerEntry]],
             out: list[tuple[tuple[Any, ...], Action]]) -> None:
        planner = levels.get(str(risk.get(inv.customer_id)), base) if levels else base
        pp = by_invoice.get(inv.id) or by_invoice.get(inv.number) if by_invoice else None
        if pp is not None and plan_payment_plan(planner, pp, inv, history, out):
            return
        plan_invoice(planner, inv, history, out)
    return step


def risk_for(invoices: Sequence[Invoice], history: Mapping[str, Sequence[LedgerEntry]],
             policy: Policy, today: date) -> dict[str, str] | None:
    """Customer risk levels as a run computes them, or None when the rules do not use them
    (the report reads every invoice's ledger history)."""
    if not policy.risk.levels():
        return None
    return dict(risk_levels(invoices, history, as_of=today))


def plan_run(
    invoices: Iterable[Invoice],
    history: Mapping[str, Sequence[LedgerEntry]],
    policy: Policy,
    today: date,
    *,
    plans: Iterable[PaymentPlan] | None = None,
    go_live: date | None = None,
    pauses: Sequence[Pause] = (),
    contacts: Mapping[str, CustomerLog] | None = None,
    versions: Mapping[int, Policy] | None = None,
) -> list[Action]:
    """The one planning call every path shares (run, dry run, `ar-sync plan`, `rules
    explain`, `rules diff`), so a preview is the run: risk levels included."""
    invoices = list(invoices)
    risk = risk_for(invoices, history, policy, today)
    return plan(invoices, history, policy, today, plans, risk, go_live=go_live,
                pauses=pauses, contacts=contacts, versions=versions)


def simulate(
    invoices: Sequence[Invoice],
    ledger_history: Mapping[str, Sequence[LedgerEntry]],
    policy: Policy,
    start: date,
    days: int,
    **planner_kwargs: Any,
) -> list[Action]:
    """Every action the next `days` days from `start` would bring (for `rules diff`),
    assuming nobody pays: each day is planned as a run would (plan_run), and each action
    is recorded as done (skips as skipped) at noon that day, so the next day sees it."""
    return [a for _, a in simulate_days(invoices, ledger_history, policy, start, days,
                                        **planner_kwargs)]


def simulate_days(
    invoices: Sequence[Invoice],
    ledger_history: Mapping[str, Sequence[LedgerEntry]],
    policy: Policy,
    start: date,
    days: int,
    **planner_kwargs: Any,
) -> list[tuple[date, Action]]:
    """simulate(), each action with the day its run would write it: under the journey that
    is often later than its `due_on` (one step at a time, min_gap, announcements)."""
    zone_ = compile_policy(policy).zone
    history = {k: list(v) for k, v in ledger_history.items()}
    out: list[tuple[date, Action]] = []
    for n in range(days):
        today = start + timedelta(days=n)
        actions = plan_run(invoices, history, policy, today, **planner_kwargs)
        at = datetime.combine(today, time(12), tzinfo=zone_)
        for a in actions:
            state = EntryState.SKIPPED if a.kind == ActionKind.SKIP else EntryState.DONE
            amount = a.amount.amount if isinstance(a, ApplyLateFee | WaiveFee) else None
            history.setdefault(a.invoice_id, []).append(LedgerEntry.model_construct(
                key=a.key, tenant=a.tenant, invoice_id=a.invoice_id, kind=a.kind,
                rule=a.rule, occurrence=a.occurrence, state=state, due_on=a.due_on,
                updated_at=at, ref=None, reason=None, amount=amount, attempts=1, owner=None,
                lease_until=None))
        out.extend((today, a) for a in actions)
    return out


def explain(
    invoice: Invoice,
    history: Mapping[str, Sequence[LedgerEntry]],
    policy: Policy,
    today: date,
    *,
    go_live: date | None = None,
    pauses: Sequence[Pause] = (),
    plans: Iterable[PaymentPlan] | None = None,
    risk: Mapping[str, str] | None = None,
) -> list[str]:
    """Why the planner does (or does not do) each thing for one invoice, for people. The
    actions listed are plan()'s with the same inputs (`risk`: see risk_for)."""
    planner = Planner(policy, today, go_live=go_live, pauses=pauses)
    c = planner.c
    inv = invoice
    days = (today - inv.due_date).days
    lines = [f"invoice {inv.number} ({inv.id}) for {inv.customer_name}: "
             f"{format_money(inv.balance, inv.currency)} of "
             f"{format_money(inv.total, inv.currency)}, due {inv.due_date}, "
             f"{days} days overdue, status {inv.status}"]
    actions = plan([inv], history, policy, today, plans, risk, go_live=go_live,
                   pauses=pauses)
    planned = [f"planned today: {a.kind} {a.rule} {a.occurrence}: {a.reason}"
               for a in actions]
    if inv.status != OPEN or inv.balance <= 0:
        return [*lines, "nothing to do: the invoice is not open with a balance"]
    level = risk.get(inv.customer_id) if risk else None
    if level is not None and level in policy.risk.levels():
        lines.append(f"customer risk {level}: the rules' risk section adjusts this invoice")
    why = planner.excluded(inv)
    if why is not None:
        return [*lines, f"nothing to do: excluded ({why})", *planned]
    paused = planner.pause(inv)
    if paused is not None:
        until = f"until {paused.until}" if paused.until else "until resumed"
        return [*lines, f"nothing to do: paused ({paused.reason}, since {paused.since}, "
                        f"{until}, from the {paused.source})", *planned]
    if go_live is not None:
        lines.append(f"live since {go_live}: what began before is caught up per the rules' "
                     "backfill")
    if c.business_only and not planner.sending_day:
        lines.append(f"today ({today}) is not a business day: no reminders, fees or "
                     "escalations are sent")
    entries = {(str(e.kind), e.rule, e.occurrence): e.state
               for e in history.get(inv.id, ()) if e.tenant == inv.tenant}
    shift = c.calendar.shift_to_business_day if c.business_only else (lambda d: d)
    for s in c.stages:
        raw = inv.due_date + timedelta(days=s.days)
        on = shift(raw)
        moved = f" (moved from {raw})" if on != raw else ""
        rec = entries.get((NOTE, s.name, ONCE)) or entries.get((SKIP, s.name, ONCE))
        status = f"ledger: {rec}" if rec else ("due" if on <= today else "not yet due")
        lines.append(f"stage {s.name} day {s.days:+d} -> {on}{moved}: {status}")
    journey = policy.journey
    lines.append(f"journey: first contact {journey.first_contact}, then one stage at a time, "
                 f"at least {journey.min_gap} days between two messages to the customer")
    for fee in c.fees:
        due = due_occurrences(fee.terms, inv.due_date, today)
        labels = ", ".join(o.label for o in due) or "none yet"
        lines.append(f"fee {fee.name} ({fee.describe}): occurrences due {labels}; "
                     f"already on the platform {inv.late_fees_charged} {inv.currency}")
        if journey.fee_notice == "announced":
            lines.append(f"  charged only from {journey.notice_days} days after a message "
                         "stating its terms reached the customer (journey.notice_days)")
    for esc in c.escalations:
        alts = " or ".join(describe_when(d, o, i, inv.currency) for d, o, i in esc.alternatives)
        lines.append(f"escalation {esc.name} to {esc.to} when {alts}; only after the final "
                     f"notice and the {journey.deadline_days}-day deadline it names")
    if not actions:
        lines.append("planned today: nothing")
    return [*lines, *planned]
