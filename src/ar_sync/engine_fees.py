"""Late fees and interest for one invoice: every due occurrence within the cap."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ar_sync.fees import charges
from ar_sync.models import (
    ApplyLateFee,
    Money,
)
from ar_sync.templates import (
    format_money,
)

if TYPE_CHECKING:
    from ar_sync.engine_core import _Invoice as Job
from ar_sync.engine_common import _construct
from ar_sync.engine_compile import _DONE, _FEE, _TERMINAL, _ZERO


def known_fees(job: Job) -> Decimal:
    """Our fees on this invoice, done or in flight (an in-flight one may be on the
    platform already)."""
    total = _ZERO
    for e in job.mine():
        if e.kind == _FEE and e.amount is not None and (
                e.state == _DONE or e.state not in _TERMINAL):
            total += e.amount
    return total

def pending_fees(job: Job, rule: str) -> dict[str, Decimal]:
    """Occurrences of `rule` claimed or waiting for a retry, with their recorded sums."""
    final = job.final
    return {e.occurrence: e.amount for e in job.mine()
            if e.kind == _FEE and e.rule == rule and e.amount is not None
            and e.state not in _TERMINAL and (e.kind, e.rule, e.occurrence) not in final}


def plan_fees(job: Job) -> None:
    inv = job.inv
    final = job.final
    charged: Decimal | None = None
    facts = job.facts
    for fee, due, keys in zip(job.p.c.fees, facts.fee_due, facts.fee_keys, strict=True):
        if not due:
            continue
        if final and all(k in final for k in keys):
            continue  # every occurrence so far is recorded for good
        if charged is None:  # what the platform shows, or what we know we charged
            charged = max(inv.late_fees_charged, known_fees(job))
        name = fee.name
        finished = {k[2] for k in keys if k in final}
        pending = pending_fees(job, name)
        found = charges(fee.terms, currency=inv.currency, total=inv.total,
                        balance=inv.balance, charged=charged, due_date=inv.due_date,
                        today=job.p.today, finished=finished, pending=pending, due=due,
                        fees_in_balance=inv.late_fees_charged)
        for ch in found:
            if ch.label not in pending:
                charged += ch.amount
            values = job.template_values(name)
            values["fee"] = format_money(ch.amount, inv.currency)
            values["period"] = ch.label
            label = fee.label.render(values)
            amount = _construct(Money, {"amount": ch.amount, "currency": inv.currency})
            job.emit(ApplyLateFee, _FEE, name, ch.label, ch.on,
                      f"{ch.detail} ({fee.every_text}); due {ch.on}",
                      amount=amount, label=label, mode=fee.mode, tax=fee.tax)

# -- escalation
