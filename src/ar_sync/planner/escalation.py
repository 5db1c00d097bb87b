"""Escalation: once per rule per invoice, when any of its alternatives holds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ar_sync.domain.models import Action, Escalate
from ar_sync.domain.money import Amounts
from ar_sync.planner.compiled import DONE, ESC, NOTE, ONCE
from ar_sync.planner.fees import fee_lines
from ar_sync.planner.journey import day_of

if TYPE_CHECKING:
    from ar_sync.planner.state import InvoiceJob as Job


def ignored_reminders(job: Job, needed: int) -> int:
    """Overdue stages whose note was written (done) BEFORE today (the company's day) while
    the invoice stays unpaid: a reminder written today has not been ignored yet, so a dry
    run right after a complete run plans nothing."""
    final = job.final
    recorded = sum(1 for s in job.p.c.stages if s.days > 0 and s.note_key in final)
    if recorded < needed:
        return recorded  # an upper bound is enough to say no, without reading rows
    midnight = job.p.midnight()  # today's start in the company's zone
    done = {e.rule for e in job.mine() if e.kind == NOTE and e.state == DONE
            and _aware(e.updated_at) < midnight}
    return sum(1 for s in job.p.c.stages if s.days > 0 and s.name in done)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def debt(job: Job) -> Decimal:
    """The balance without our own fee lines, so charging a fee never tips an invoice
    over an escalation threshold (that would make the plan depend on execution order)."""
    return max(Decimal(0), job.inv.balance - fee_lines(job))

def final_notice_day(job: Job) -> date | None:
    """The company's day the invoice's final notice (the last stage of tone `final`, else the
    last stage) was written, or None; with no stages at all there is nothing to wait for."""
    c = job.p.c
    if c.final_stage < 0:
        return date.min
    st = c.stages[c.final_stage]
    if st.note_key not in job.final:
        return None
    days = [day_of(e.updated_at, c) for e in job.mine()
            if e.kind == NOTE and e.rule == st.name and e.state == DONE]
    return min(days, default=None)


def deadline_passed(job: Job) -> bool:
    """Escalation waits for the final notice and the deadline it names (journey.deadline_days),
    so nobody is escalated before being told, nor before the day they were told of."""
    day = final_notice_day(job)
    if day is None:
        return False
    return day == date.min or (job.p.today - day).days >= job.p.c.journey.deadline_days


def plan_escalations(job: Job) -> None:
    if not deadline_passed(job):
        return
    actions: list[tuple[tuple[Any, ...], Action]] = []
    saved, job.out = job.out, actions
    try:
        _escalate(job)
    finally:
        job.out = saved
    job.offer(actions, facing=True, own_email=False, rank=2)


def _escalate(job: Job) -> None:
    inv = job.inv
    days = job.facts.days_overdue
    ignored: int | None = None
    for esc in job.p.c.escalations:
        if esc.key in job.final:
            continue
        for min_days, over, min_ignored in esc.alternatives:
            if min_days is not None and days < min_days:
                continue
            if over is not None:
                threshold = over.for_currency(inv.currency)
                if threshold is None or debt(job) <= threshold:
                    continue
            if min_ignored is not None:
                if ignored is None:
                    ignored = ignored_reminders(job, min_ignored)
                if ignored < min_ignored:
                    continue
            why = describe_when(min_days, over, min_ignored, inv.currency)
            values = job.template_values(esc.name)
            values["to"] = esc.to
            job.emit(Escalate, ESC, esc.name, ONCE, job.p.today,
                      f"{why}; {job.overdue_text()}",
                      to=esc.to, text=esc.note.render(values))
            break


def describe_when(days: int | None, over: Amounts | None, ignored: int | None,
                currency: str) -> str:
    parts = []
    if days is not None:
        parts.append(f"at least {days} days overdue")
    if over is not None:
        parts.append(f"balance over {over.for_currency(currency)} {currency}")
    if ignored is not None:
        parts.append(f"{ignored}+ reminders ignored")
    return " and ".join(parts)
