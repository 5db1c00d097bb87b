"""Late fees and interest for one invoice: every due occurrence within the cap."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ar_sync.domain.models import ApplyLateFee, Money
from ar_sync.domain.money import format_money
from ar_sync.planner.fee_days import Covered, blocked, covered
from ar_sync.planner.fee_maths import Occurrence, charges
from ar_sync.planner.fee_periods import Window, live_only, period_of, without_windows
from ar_sync.planner.journey import announced_on

if TYPE_CHECKING:
    from ar_sync.planner.state import InvoiceJob as Job
from ar_sync.domain.construct import construct
from ar_sync.planner.compiled import DONE, FEE, TERMINAL, ZERO


def known_fees(job: Job) -> Decimal:
    """Our fees on this invoice, done or in flight (an in-flight one may be on the
    platform already)."""
    total = ZERO
    for e in job.mine():
        if e.kind == FEE and e.amount is not None and (
                e.state == DONE or e.state not in TERMINAL):
            total += e.amount
    return total

def pending_fees(job: Job, rule: str) -> dict[str, Decimal]:
    """Occurrences of `rule` claimed or waiting for a retry, with their recorded sums."""
    final = job.final
    return {e.occurrence: e.amount for e in job.mine()
            if e.kind == FEE and e.rule == rule and e.amount is not None
            and e.state not in TERMINAL and (e.kind, e.rule, e.occurrence) not in final}


def fee_lines(job: Job) -> Decimal:
    """Our fee lines inside the invoice's total and balance (not the customer's debt)."""
    inv = job.inv
    if inv.fee_lines is not None:
        return inv.fee_lines
    return inv.late_fees_charged if job.p.c.fees_on_invoice else ZERO


def invoice_cap(job: Job, lines: Decimal) -> Decimal | None:
    """The lowest cap of every fee rule for this currency: caps hold whatever the mix."""
    inv = job.inv
    base = max(ZERO, inv.total - lines)
    caps = [cap for f in job.p.c.fees if f.terms.applies_to(inv.currency)
            if (cap := f.terms.cap_for(base, inv.currency)) is not None]
    return min(caps) if caps else None


def announced_only(job: Job, fee: Any, due: Sequence[Occurrence]) -> Sequence[Occurrence]:
    """`journey.fee_notice: announced`: only the periods (the days of interest) from
    `notice_days` after a message stating this kind of terms and listing this invoice reached
    the customer; none before such a message. This is go-live's `backfill: none` counted from
    the announcement, so it replaces backfill wherever the two overlap."""
    c = job.p.c
    journey = c.journey
    if journey.fee_notice != "announced":
        return due
    first = announced_on(job.mine(), c, fee.notice)
    if first is None:
        return ()
    return live_only(due, first + timedelta(days=journey.notice_days), "none",
                     fee.terms.accrues)


def plan_fees(job: Job) -> None:
    inv = job.inv
    final = job.final
    charged: Decimal | None = None
    lines = ZERO
    cap: Decimal | None = None
    facts = job.facts
    emitted: list[tuple[str, Window]] = []  # periods charged in this plan, per rule
    rows: list[Covered] | None = None  # the windows fees on this invoice cover (fee_days)
    for fee, due, keys in zip(job.p.c.fees, facts.fee_due, facts.fee_keys, strict=True):
        if not due:
            continue
        if final and all(k in final for k in keys):
            continue  # every occurrence so far is recorded for good
        due = tuple(announced_only(job, fee, due))
        if not due:
            continue  # not announced yet (journey.notice_days)
        if charged is None:  # what the platform shows, or what we know we charged
            charged = max(inv.late_fees_charged, known_fees(job))
            lines = fee_lines(job)
            cap = invoice_cap(job, lines)
        name = fee.name
        finished = {k[2] for k in keys if k in final}
        pending = pending_fees(job, name)
        if job.windows and fee.forgive:
            due = tuple(without_windows(due, job.windows, fee.terms.accrues))
        if job.entries or (emitted and not fee.stack):
            if rows is None:
                rows = covered(job)
            finished |= blocked(due, name, fee.stack, rows, emitted) - pending.keys()
        found = charges(fee.terms, currency=inv.currency, total=inv.total,
                        balance=inv.balance, charged=charged, due_date=inv.due_date,
                        today=job.p.today, finished=finished, pending=pending, due=due,
                        fee_lines=lines, cap=cap, payments=inv.payments)
        by_label = {o.label: o for o in due}
        for ch in found:
            if ch.label not in pending:
                charged += ch.amount
            emitted.append((name, period_of(by_label[ch.label])))
            values = job.template_values(name)
            values["fee"] = format_money(ch.amount, inv.currency)
            values["period"] = ch.label
            label = fee.label.render(values)
            amount = construct(Money, {"amount": ch.amount, "currency": inv.currency})
            job.emit(ApplyLateFee, FEE, name, ch.label, ch.on,
                     f"{ch.detail} ({fee.every_text}); due {ch.on}",
                     amount=amount, label=label, mode=fee.mode, tax=fee.tax,
                     account=fee.account)
