"""Reconciliation for QuickBooks: proof that a write with a given key happened, whatever
became of its answer. Here rather than in connector.py so that the batch (which looks for each
write of a call that failed ambiguously) and the connector's single writes ask the same
question the same way.
"""

from __future__ import annotations

from datetime import datetime

from ar_sync.domain.models import ActionKind, Invoice
from ar_sync_quickbooks import waivers
from ar_sync_quickbooks.mapping import find_line_with_marker, has_marker, parse_time
from ar_sync_quickbooks.session import PAGE, QuickBooksSession, quote, select


def find_effect(session: QuickBooksSession, invoice: Invoice, kind: ActionKind,
                key: str, since: datetime | None = None) -> str | None:
    """The platform's reference of a write carrying `key`, or None if there is none."""
    if kind in (ActionKind.NOTE, ActionKind.ESCALATE):
        return find_note(session, invoice, key)
    if kind == ActionKind.LATE_FEE:
        return find_fee(session, invoice, key)
    if kind == ActionKind.WAIVE_FEE:
        return waivers.find_waiver(session, invoice, key)
    if kind == ActionKind.REMINDER_EMAIL and since is not None:
        return find_send(session, invoice, since)
    return None


def find_send(session: QuickBooksSession, invoice: Invoice, since: datetime) -> str | None:
    """The invoice's own record of an e-mail sent at or after `since`: QuickBooks keeps no
    key with a send, but `invoice/{id}/send` sets `EmailStatus` to EmailSent and
    `DeliveryInfo.DeliveryTime` to the moment it went (Intuit API reference, Invoice: send;
    python-quickbooks `Invoice.DeliveryInfo`). So a send whose answer was lost, or whose
    runner died before the ledger heard of it, is found here even where QuickBooks no longer
    replays its requestid. (Anyone's send counts: the customer had an e-mail then.)"""
    raw = session.read_raw(invoice.id)  # fresh: the send may be newer than our copy
    if raw is None or str(raw.get("EmailStatus") or "") != "EmailSent":
        return None
    stamp = str((raw.get("DeliveryInfo") or {}).get("DeliveryTime") or "")
    try:
        sent = parse_time(stamp) if stamp else None
    except ValueError:
        return None
    if sent is None or sent < since:
        return None
    return f"InvoiceSend:{raw.get('Id')}@{stamp}"


def find_note(session: QuickBooksSession, invoice: Invoice, key: str) -> str | None:
    """The invoice's Attachable note carrying the key marker."""
    answer = session.query(select(
        "Attachable", "AttachableRef.EntityRef.Type = 'Invoice' and "
        f"AttachableRef.EntityRef.value = {quote(invoice.id)}"))
    for row in answer.get("QueryResponse", {}).get("Attachable", []):
        if has_marker(row.get("Note"), key):
            return f"Attachable:{row['Id']}"
    return None


def find_fee(session: QuickBooksSession, invoice: Invoice, key: str) -> str | None:
    """A fee line on the invoice (read fresh), else a fee invoice of the same customer."""
    raw = session.read_raw(invoice.id)  # fresh: the line may be newer than our copy
    if raw is not None and (ref := find_line_with_marker(raw, key)) is not None:
        return ref
    start = 1
    while True:  # a separate fee invoice for the same customer
        answer = session.query(select(
            "Invoice", f"CustomerRef = {quote(invoice.customer_id)} and "
            f"TxnDate >= {quote(invoice.issue_date.isoformat())}", start=start))
        rows = answer.get("QueryResponse", {}).get("Invoice", [])
        for row in rows:
            if has_marker(row.get("PrivateNote"), key):
                return f"Invoice:{row['Id']}"
        if len(rows) < PAGE:
            return None
        start += PAGE
