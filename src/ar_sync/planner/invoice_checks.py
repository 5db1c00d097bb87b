"""Invoices the planner cannot reason about, caught before planning.

The connectors already skip what they cannot map (no due date, unknown currency); this is the
last guard for what maps but is absurd — a due date in year 1 or an amount of 10^30 — which
would otherwise overflow date or money arithmetic and stop planning for every invoice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from ar_sync.domain.models import Invoice

EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)  # leaves room for offsets, recurring fees and business days
MAX_AMOUNT = Decimal(10) ** 15  # far above any invoice, far below overflow


def unplannable_reason(invoice: Invoice) -> str | None:
    """Why the planner must not see this invoice, or None if it can."""
    for name in ("issue_date", "due_date"):
        day: date = getattr(invoice, name)
        if not EARLIEST <= day <= LATEST:
            return f"{name} {day.isoformat()} is outside {EARLIEST.year}-{LATEST.year}"
    for name in ("total", "balance", "late_fees_charged"):
        amount: Decimal = getattr(invoice, name)
        if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
            return f"{name} {amount} is not a plausible amount"
    return None


def plannable(invoices: Iterable[Invoice]) -> tuple[list[Invoice], list[str]]:
    """The invoices the planner can take, and one warning for each one it cannot."""
    kept: list[Invoice] = []
    warnings: list[str] = []
    for invoice in invoices:
        reason = unplannable_reason(invoice)
        if reason is None:
            kept.append(invoice)
        else:
            warnings.append(f"invoice {invoice.number} ({invoice.id}) skipped: {reason}")
    return kept, warnings
