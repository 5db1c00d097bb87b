"""Customer payments in the QuickBooks emulator: a `Payment` entity linked to the invoice.

As Intuit's "Manage linked transactions" page and API reference (Payment, Invoice) describe:
a payment applied to an invoice is a Payment object whose `Line[]` carries the `Amount`
applied and a `LinkedTxn` (TxnType `Invoice`, TxnId the invoice), dated by its `TxnDate`; the
invoice in turn lists the payment in its own `LinkedTxn` (TxnType `Payment`), and its `Balance`
drops by the amount. The invoice only names the payment: its amount and date are read from the
Payment itself (`select * from Payment where Id in (...)`, or `GET /payment/{id}`).
python-quickbooks models the same shapes (quickbooks/objects/payment.py: `Payment.Line`,
`PaymentLine.LinkedTxn`; quickbooks/objects/base.py: `LinkedTxn`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from ar_sync.domain.money import round_money, to_decimal
from ar_sync_emulators.quickbooks.shapes import amount, qbo_time


class _Emulator(Protocol):
    rows: dict[str, dict[str, dict[str, Any]]]

    def _new_id(self) -> str: ...


def link_payment(emu: _Emulator, inv: dict[str, Any], paid: Decimal, on: date,
                 at: datetime) -> dict[str, Any]:
    """A Payment of `paid` applied to `inv` on `on`, linked both ways (the caller moves the
    invoice's balance)."""
    currency = str((inv.get("CurrencyRef") or {}).get("value") or "USD")
    value = amount(round_money(paid, currency))
    pid = emu._new_id()
    stamp = qbo_time(at)
    payment = {
        "Id": pid, "SyncToken": "0", "domain": "QBO", "sparse": False,
        "TxnDate": on.isoformat(), "TotalAmt": value, "UnappliedAmt": amount(Decimal(0)),
        "ProcessPayment": False, "CustomerRef": dict(inv.get("CustomerRef") or {}),
        "CurrencyRef": dict(inv.get("CurrencyRef") or {"value": currency}),
        "Line": [{"Amount": value,
                  "LinkedTxn": [{"TxnId": str(inv["Id"]), "TxnType": "Invoice"}]}],
        "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}
    emu.rows["Payment"][pid] = payment
    inv.setdefault("LinkedTxn", []).append({"TxnId": pid, "TxnType": "Payment"})
    return payment


def seed_payments(emu: _Emulator, paid: dict[str, Decimal]) -> None:
    """Seeded invoices with an amount paid but no linked payment get one, dated by the
    invoice's last change (when the payment was applied): a part-paid QBO invoice always has
    the Payment that paid it."""
    for iid, value in paid.items():
        inv = emu.rows["Invoice"].get(iid)
        if inv is None or value <= 0 or _linked_payments(inv):
            continue
        when = str((inv.get("MetaData") or {}).get("LastUpdatedTime") or "")
        on = date.fromisoformat(when[:10]) if when else date.fromisoformat(inv["TxnDate"])
        link_payment(emu, inv, to_decimal(value), on,
                     datetime.fromisoformat(when) if when else datetime.now())


def _linked_payments(inv: dict[str, Any]) -> list[str]:
    return [str(t.get("TxnId")) for t in inv.get("LinkedTxn") or []
            if t.get("TxnType") == "Payment"]
