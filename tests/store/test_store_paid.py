"""Both backends keep paid invoices for the report and never plan on them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ar_sync.domain.models import Invoice, InvoiceStatus


def _invoice(n: int, **extra: Any) -> Invoice:
    fields: dict[str, Any] = dict(
        platform="xero", tenant="xero:t", id=f"i{n}", number=f"N{n}", customer_id="c",
        customer_name="C", issue_date=date(2026, 1, 1), due_date=date(2026, 2, 1),
        currency="USD", total=Decimal("10.00"), balance=Decimal("10.00"),
        updated_at=datetime(2026, 3, 5, 8, tzinfo=UTC))
    fields.update(extra)
    return Invoice(**fields)


def test_paid_invoices_are_kept_apart_from_the_open_snapshot(store: Any) -> None:
    open_one, paid_one = _invoice(1), _invoice(2)
    store.save_invoices("xero:t", [open_one, paid_one], replace_all=True)
    paid = paid_one.model_copy(update={"status": InvoiceStatus.PAID, "balance": Decimal(0)})
    voided = open_one.model_copy(update={"status": InvoiceStatus.VOIDED})
    store.save_invoices("xero:t", [paid], replace_all=False)
    assert [i.id for i in store.open_invoices("xero:t")] == ["i1"]
    (kept,) = store.paid_invoices("xero:t")
    assert kept.id == "i2" and kept.paid_at == date(2026, 3, 5)  # the platform's last change
    store.save_invoices("xero:t", [voided], replace_all=True)  # a full read keeps paid ones
    assert store.open_invoices("xero:t") == []
    assert [i.id for i in store.paid_invoices("xero:t")] == ["i2"]
    assert store.paid_invoices("xero:other") == []
