"""Waiving a late fee in QuickBooks: a CreditMemo applied to the invoice by a zero payment.

Why not delete the fee line: that edits an invoice the customer already has, and QuickBooks
refuses edits in a closed period (closing date) and once payments are linked. A credit memo
is the bookkeeping answer: the invoice keeps what was sent, the credit lowers its balance, and
the reversal has its own document and date. The key marker goes in the memo's `PrivateNote`
(internal, never printed); the customer sees only the line "Late fee waived: …".

Two writes, each with its own requestid (the memo: the action key; the application: key +
"-p"). After a crash or a lost answer `find_waiver` (reconciliation) finds the memo by its
marker; a memo with credit left is applied on the next attempt instead of creating another.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ar_sync.domain.models import Invoice, Money
from ar_sync.domain.money import round_money, to_decimal
from ar_sync.domain.references import key_marker
from ar_sync.sync.connector import waiver_amount
from ar_sync_quickbooks.mapping import dumps, fee_line, has_marker
from ar_sync_quickbooks.session import PAGE, QuickBooksSession, quote, select


def waiver_text(label: str, number: str) -> str:
    """What the customer reads on the credit memo (no keys, no hashes)."""
    return f"Late fee waived: {label} (invoice {number})"


def waive_fee(session: QuickBooksSession, invoice: Invoice, amount: Money, label: str,
              key: str) -> str:
    memo = session.waiver_memos.pop(key, None)
    if memo is None:
        value = waiver_amount(invoice, amount)
        item_id, item_name = session.fee_item()
        body = {"CustomerRef": {"value": invoice.customer_id},
                "CurrencyRef": {"value": invoice.currency},
                "Line": [fee_line(value, waiver_text(label, invoice.number), item_id,
                                  item_name)],
                "PrivateNote": f"ar-sync waiver of {label} on invoice {invoice.number} "
                               f"{key_marker(key)}"}
        text = dumps(body)
        answer: dict[str, Any] = session.run(
            lambda: session.client.create_object("CreditMemo", text, request_id=key),
            "create credit memo", write=True)
        memo = answer["CreditMemo"]
    _apply(session, invoice, memo, key)
    return f"CreditMemo:{memo['Id']}"


def _apply(session: QuickBooksSession, invoice: Invoice, memo: dict[str, Any],
           key: str) -> None:
    left = to_decimal(memo.get("RemainingCredit", memo.get("Balance", 0)))
    value = round_money(min(left, invoice.balance), invoice.currency)
    if value <= 0:
        return  # applied already (or nothing left to apply it to)
    line = {"Amount": str(value)}
    body = {"CustomerRef": {"value": invoice.customer_id}, "TotalAmt": "0",
            "Line": [{**line, "LinkedTxn": [{"TxnId": invoice.id, "TxnType": "Invoice"}]},
                     {**line, "LinkedTxn": [{"TxnId": str(memo["Id"]),
                                             "TxnType": "CreditMemo"}]}],
            "PrivateNote": f"applies credit memo {memo.get('DocNumber', memo['Id'])} "
                           f"{key_marker(key)}"}
    text = dumps(body)
    session.run(lambda: session.client.create_object("Payment", text, request_id=f"{key}-p"),
                "apply credit memo", write=True)
    session.forget(invoice.id)  # its balance and SyncToken moved


def find_waiver(session: QuickBooksSession, invoice: Invoice, key: str) -> str | None:
    """The memo carrying `key`, if it is fully applied; one with credit left is remembered so
    the retried write applies it instead of creating another."""
    start = 1
    while True:
        answer = session.query(select(
            "CreditMemo", f"CustomerRef = {quote(invoice.customer_id)}", start=start))
        rows: list[dict[str, Any]] = answer.get("QueryResponse", {}).get("CreditMemo", [])
        for row in rows:
            if has_marker(row.get("PrivateNote"), key):
                if to_decimal(row.get("RemainingCredit", 0)) <= Decimal(0):
                    return f"CreditMemo:{row['Id']}"
                session.waiver_memos[key] = row
                return None
        if len(rows) < PAGE:
            return None
        start += PAGE
