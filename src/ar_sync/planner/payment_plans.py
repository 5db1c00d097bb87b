"""Payment plans: instalment reminders while the plan holds, one note when it breaks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from ar_sync.domain.models import Action, AddNote, Invoice, LedgerEntry, SendReminder
from ar_sync.domain.money import format_money
from ar_sync.domain.payment_plans import PaymentPlan, plan_id, schedule
from ar_sync.planner.compiled import EMAIL, NOTE, OPEN, TERMINAL, ZERO, DueFacts
from ar_sync.planner.state import InvoiceJob, Planner

PLAN_NOTE = "payment-plan"
PLAN_BROKEN = "payment-plan-broken"


def plan_payment_plan(planner: Planner, pp: PaymentPlan, inv: Invoice,
                      history: Mapping[str, Sequence[LedgerEntry]],
                      out: list[tuple[tuple[Any, ...], Action]]) -> bool:
    """Plan an invoice under a payment plan; False when the plan is broken (or does not
    fit the invoice) and the normal rules apply."""
    if inv.status != OPEN or inv.balance <= 0 or planner.excluded(inv) is not None:
        return True
    # Without an agreed amount the plan covers the invoice as issued: our own fee lines
    # (added once a plan is broken) must not change the schedule, hence its keys.
    fee_lines = inv.late_fees_charged if planner.c.fees_on_invoice else ZERO
    amount = pp.amount if pp.amount is not None else inv.total - fee_lines
    try:
        sched = schedule(pp, amount, inv.currency)
    except ValueError:
        return False  # an amount not in the currency's minor units: no plan to follow
    pid = plan_id(sched, inv.currency)
    tenant = inv.tenant
    entries = [e for e in history.get(inv.id, ()) if e.tenant == tenant]
    final = {(str(e.kind), e.rule, e.occurrence) for e in entries if e.state in TERMINAL}
    facts = DueFacts((planner.today - inv.due_date).days, -1, (), (), ())
    job = InvoiceJob(planner, inv, facts, final, entries, out)
    settings = planner.policy.instalment_reminders
    paid = inv.total - inv.balance - pp.already_paid
    current = None
    for ins in sched:
        if paid >= ins.cumulative:
            continue
        if planner.today > ins.due + timedelta(days=settings.grace_days):
            if (NOTE, PLAN_BROKEN, pid) not in final:
                job.emit(AddNote, NOTE, PLAN_BROKEN, pid,
                         ins.due + timedelta(days=settings.grace_days + 1),
                         f"instalment {ins.number} missed; normal rules resume",
                         text=f"Payment plan broken: instalment {ins.number} of "
                              f"{len(sched)} ({format_money(ins.amount, inv.currency)} "
                              f"due {ins.due}) was not paid by "
                              f"{ins.due + timedelta(days=settings.grace_days)}.",
                         tone="firm")
            return False
        current = ins
        break
    if (NOTE, PLAN_NOTE, pid) not in final:
        parts = ", ".join(f"{i.due} {format_money(i.amount, inv.currency)}" for i in sched)
        job.emit(AddNote, NOTE, PLAN_NOTE, pid, sched[0].due,
                 f"payment plan of {len(sched)} instalments agreed",
                 text=f"Payment plan agreed for invoice {inv.number}: {len(sched)} "
                      f"instalments every {pp.every}: {parts}.", tone="friendly")
    if current is None:
        return True  # every instalment met
    points = []
    if settings.days_before > 0:
        points.append((current.due - timedelta(days=settings.days_before), "before"))
    if settings.on_due_date:
        points.append((current.due, "due"))
    latest = [p for p in points if p[0] <= planner.today]
    if not latest:
        return True
    on, label = latest[-1]
    rule = f"instalment-{current.number}"
    occurrence = f"{pid}-{label}"
    when = "due today" if on == current.due and on == planner.today else (
        f"due {current.due}")
    why = f"payment plan instalment {current.number} of {len(sched)} {when}"
    if (NOTE, rule, occurrence) not in final:
        job.emit(AddNote, NOTE, rule, occurrence, on, why,
                 text=f"Instalment {current.number} of {len(sched)} on invoice "
                      f"{inv.number}: {format_money(current.amount, inv.currency)} due "
                      f"{current.due} under the agreed payment plan.", tone="friendly")
    if settings.email and inv.customer_email and (EMAIL, rule, occurrence) not in final:
        job.emit(SendReminder, EMAIL, rule, occurrence, on, why, to=inv.customer_email)
    return True
