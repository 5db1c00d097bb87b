"""One invoice through the planner's steps: late fees, reminder stages, escalations; disputed
and paused invoices through pauses.plan_special first. Kept apart from state.py, which the
steps import for their job's type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ar_sync.domain.models import Action, Invoice, LedgerEntry
from ar_sync.planner.compiled import MISSING, NO_KEYS, OPEN, TERMINAL
from ar_sync.planner.escalation import plan_escalations
from ar_sync.planner.fees import plan_fees
from ar_sync.planner.pauses import plan_special
from ar_sync.planner.stages import plan_reminders
from ar_sync.planner.state import InvoiceJob, Planner


def run_steps(job: InvoiceJob) -> None:
    """Fees first (a reminder quotes the balance with them), then stages, then escalations."""
    if job.facts.has_fees:
        plan_fees(job)
    if job.facts.latest >= 0:
        plan_reminders(job)
    p = job.p
    if p.c.escalations and job.facts.days_overdue >= 1 and p.sending_day:
        plan_escalations(job)


def plan_invoice(p: Planner, inv: Invoice, history: Mapping[str, Sequence[LedgerEntry]],
                 out: list[tuple[tuple[Any, ...], Action]]) -> None:
    """Append `inv`'s actions for today to `out` (with their sort keys). The hot path."""
    due = inv.due_date
    facts = p.facts.get(due, MISSING)
    if facts is MISSING:
        facts = p.due_facts(due)
    if facts is None:
        return
    if inv.status != OPEN or inv.balance <= 0:
        return
    if inv.disputed or inv.pause is not None or p.pauses:
        # the rare paths: disputes (waivers), pauses (freeze, forgive, broken promises)
        job = p.job(inv, facts, history, out)
        if plan_special(job):
            run_steps(job)
        return
    if p.excluded(inv) is not None:
        return
    entries = history.get(inv.id)  # Planner.job, inlined: this is the hot path
    if entries:
        tenant = inv.tenant
        final: set[tuple[str, str, str]] = {
            (e.kind, e.rule, e.occurrence) for e in entries
            if e.state in TERMINAL and e.tenant == tenant
        }
        run_steps(InvoiceJob(p, inv, facts, final, entries, out))
    else:
        run_steps(InvoiceJob(p, inv, facts, NO_KEYS, (), out))

