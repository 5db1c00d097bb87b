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
from ar_sync.planner.journey import Optimistic, customer_logs, settle
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


def run_jobs(p: Planner, invoices: Sequence[Invoice],
             history: Mapping[str, Sequence[LedgerEntry]],
             out: list[tuple[tuple[Any, ...], Action]]) -> None:
    """The steps of every invoice plan_invoice kept, with its customer's log (journey.py),
    then journey.settle: what reaches each customer today."""
    jobs = p.jobs
    if not jobs:
        return
    logs = p.contacts
    if isinstance(logs, Optimistic) and logs.logs is None:
        logs = None
    if logs is None:
        needed = {j.inv.customer_id for j in jobs}
        pairs = [(i.customer_id, history.get(i.id, ())) for i in invoices
                 if i.customer_id in needed]
        logs = customer_logs(pairs, p.c)
    for job in jobs:
        log = logs.get(job.inv.customer_id)
        if log is not None:
            job.log = log
        run_steps(job)
    p.jobs = []
    settle(p.offers, logs, p.c, p.today, out, open_gates=p.open_gates)
    p.offers = {}


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
            p.jobs.append(job)
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
        p.jobs.append(InvoiceJob(p, inv, facts, final, entries, out))
    else:
        p.jobs.append(InvoiceJob(p, inv, facts, NO_KEYS, (), out))

