"""Escalation: once per rule per invoice, when any of its alternatives holds."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from ar_sync.domain.models import Escalate
from ar_sync.domain.money import Amounts
from ar_sync.planner.compiled import DONE, ESC, NOTE, ONCE
from ar_sync.planner.fees import fee_lines

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

def plan_escalations(job: Job) -> None:
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
