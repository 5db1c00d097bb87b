"""The customer payments on QuickBooks invoices, read in batches (Invoice.payments).

An invoice only names its payments (`LinkedTxn`, TxnType `Payment`); the amount applied and
the day are on each Payment (`TxnDate`, `Line[].Amount` with a `LinkedTxn` to the invoice:
Intuit, "Manage linked transactions"). So a fetch collects the payment ids of the open
invoices it read and reads them with `select * from Payment where Id in (...)`, IDS_PER_QUERY
ids a query and up to QUERIES_PER_CALL queries in one `/batch` request: one call for up to
3,000 payments, never one call per invoice.

Left out, on the safe side (interest can then only be under-charged, never over-charged): a
Payment that also applies a credit memo (a waiver of our own fee is one; its credit is not
the customer's money), and any amount QuickBooks does not show linked to the invoice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from ar_sync.domain.money import to_decimal
from ar_sync_quickbooks.session import QuickBooksSession, quote, select

IDS_PER_QUERY = 500
QUERIES_PER_CALL = 6  # with the 4 company-fact queries of a first batch: 10 operations
Payments = tuple[tuple[date, Decimal], ...]


def linked_payments(raw: Mapping[str, Any]) -> list[str]:
    """The ids of the Payments the invoice names in its LinkedTxn."""
    return [str(t.get("TxnId")) for t in raw.get("LinkedTxn") or []
            if str(t.get("TxnType")) == "Payment" and t.get("TxnId")]


def is_open(raw: Mapping[str, Any]) -> bool:
    try:
        return to_decimal(raw.get("Balance") or 0) > 0
    except ValueError:
        return False


def load_payments(session: QuickBooksSession, raws: Iterable[Mapping[str, Any]]
                  ) -> dict[str, Payments]:
    """Invoice id -> its payments (day, amount applied), oldest first, for every open
    invoice in `raws` (an empty tuple: none); read in as few calls as the batch allows."""
    raws = [r for r in raws if is_open(r)]
    wanted = sorted({pid for r in raws for pid in linked_payments(r)}, key=_numeric)
    rows: dict[str, dict[str, Any]] = {}
    chunks = [wanted[i: i + IDS_PER_QUERY] for i in range(0, len(wanted), IDS_PER_QUERY)]
    for start in range(0, len(chunks), QUERIES_PER_CALL):
        queries = {f"pay{n}": select("Payment", "Id in ({})".format(
            ", ".join(quote(pid) for pid in chunk)))
            for n, chunk in enumerate(chunks[start: start + QUERIES_PER_CALL])}
        for answer in session.batch_queries(queries).values():
            rows.update((str(p.get("Id")), p) for p in answer.get("Payment") or [])
    return {str(r.get("Id")): applied(str(r.get("Id")), linked_payments(r), rows)
            for r in raws}


def applied(invoice_id: str, payment_ids: Iterable[str],
            rows: Mapping[str, Mapping[str, Any]]) -> Payments:
    """(day, amount) of each payment applied to the invoice, as the Payments show them."""
    out: list[tuple[date, Decimal]] = []
    for pid in payment_ids:
        payment = rows.get(pid)
        if payment is None or _applies_credit(payment):
            continue
        try:
            day = date.fromisoformat(str(payment.get("TxnDate") or "")[:10])
        except ValueError:
            continue
        value = sum((to_decimal(line.get("Amount") or 0)
                     for line in payment.get("Line") or []
                     if any(str(t.get("TxnType")) == "Invoice"
                            and str(t.get("TxnId")) == invoice_id
                            for t in line.get("LinkedTxn") or [])), Decimal(0))
        if value > 0:
            out.append((day, value))
    return tuple(sorted(out))


def _applies_credit(payment: Mapping[str, Any]) -> bool:
    return any(str(t.get("TxnType")) == "CreditMemo" for line in payment.get("Line") or []
               for t in line.get("LinkedTxn") or [])


def _numeric(pid: str) -> tuple[int, str]:
    return (int(pid), pid) if pid.isdigit() else (0, pid)
