"""Pause markers a connector reads on demand (Xero: one History call per invoice) are asked
for only where a pause must stop a write: fees, e-mails, escalations; not internal notes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from ar_sync.domain.models import Invoice
from ar_sync.domain.pauses import Pause
from ar_sync.rules.policy import load_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.company import plan_tenant

TODAY = date(2026, 11, 16)  # a Monday


def _invoice(n: int, due_in: int) -> Invoice:
    due = TODAY + timedelta(days=due_in)
    return Invoice(platform="xero", tenant="xero:t", id=f"inv-{n}", number=f"INV-{n}",
                   customer_id=f"c{n}", customer_name=f"C {n}", customer_email="c@example.com",
                   issue_date=due - timedelta(days=30), due_date=due, currency="USD",
                   total=Decimal("1000.00"), balance=Decimal("1000.00"),
                   updated_at=datetime(2026, 10, 1, tzinfo=UTC))


class Reader:
    def __init__(self, marked: dict[str, Pause]) -> None:
        self.asked: list[str] = []
        self.marked = marked

    def pause_markers(self, invoices: Sequence[Invoice]) -> dict[str, Pause]:
        self.asked.extend(i.id for i in invoices)
        return {i.id: self.marked[i.id] for i in invoices if i.id in self.marked}


def test_only_invoices_with_a_pausable_write_are_asked_and_replanned(tmp_path: Path) -> None:
    heads_up, overdue = _invoice(1, 3), _invoice(2, -45)  # a note only / fee + e-mail
    pause = Pause(invoice_id=overdue.id, reason="promise", since=TODAY - timedelta(days=2))
    reader = Reader({overdue.id: pause})
    store = SQLiteStore(tmp_path / "ar.db")
    actions, invoices = plan_tenant(store, reader, [heads_up, overdue],  # type: ignore[arg-type]
                                    {}, load_policy("platform-email"), TODAY, tenant="xero:t",
                                    plans=[], go_live=None)
    assert reader.asked == [overdue.id]
    kinds = {(a.invoice_id, str(a.kind)) for a in actions}
    assert (heads_up.id, "note") in kinds  # the heads-up note is still written
    assert not any(i == overdue.id and k != "skip" for i, k in kinds)  # the pause stops it
    assert next(i for i in invoices if i.id == overdue.id).pause is not None
