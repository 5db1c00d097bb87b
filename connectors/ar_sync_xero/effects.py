"""Reconciliation for Xero: proof that a write with a given key happened, whatever became of
its answer. Here rather than in connector.py so that the batch (which settles a lost answer
fee by fee) and the connector's single writes ask the same question the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ar_sync.domain.models import ActionKind, Invoice
from ar_sync.domain.references import customer_reference, key_marker, mentions_key
from ar_sync_xero import waivers
from ar_sync_xero.session import XeroSession


def find_effect(session: XeroSession, invoice: Invoice, kind: ActionKind,
                key: str, since: datetime | None = None) -> str | None:
    """Proof from Xero that a write with `key` happened (its response may have been lost).

    E-mails leave no key in Xero: a send is found on the invoice's own history (find_email),
    so nothing is sent twice even where Xero no longer replays the Idempotency-Key.
    """
    if kind in (ActionKind.NOTE, ActionKind.ESCALATE):
        return find_note(session, invoice, key)
    if kind == ActionKind.LATE_FEE:
        return find_fee(session, invoice, key)
    if kind == ActionKind.WAIVE_FEE:
        return waivers.find_waiver(session, invoice, key)
    if kind == ActionKind.REMINDER_EMAIL and since is not None:
        return find_email(session, invoice, since)
    return None


def find_email(session: XeroSession, invoice: Invoice, since: datetime) -> str | None:
    """An e-mail of the invoice in its History and Notes at or after `since`: Xero records
    each send there (`Changes` "Emailed"; the invoice's `SentToContact` turns true, but has no
    date). The exact wording is not documented [unverified]: any record whose `Changes`
    speaks of an e-mail counts (the safe side against sending twice; anyone's send counts,
    the customer had an e-mail then)."""
    got = session.caller.call(
        "GET Invoices/{id}/History", lambda: session.api.get_invoice_history(
            session.tenant, invoice.id, _return_http_data_only=False,
            _request_timeout=session.timeout))
    for record in got.history_records or []:
        when = record.date_utc
        if not isinstance(when, datetime) or "email" not in str(record.changes or "").lower():
            continue
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        if when >= since:
            return f"email:{invoice.id}:history@{when.isoformat()}"
    return None


def find_note(session: XeroSession, invoice: Invoice, key: str) -> str | None:
    """The invoice's history note carrying the key marker."""
    marker = key_marker(key)
    got = session.caller.call(
        "GET Invoices/{id}/History", lambda: session.api.get_invoice_history(
            session.tenant, invoice.id, _return_http_data_only=False,
            _request_timeout=session.timeout))
    for record in got.history_records or []:
        if marker in str(record.details or ""):
            return f"history:{invoice.id}:{key}"
    return None


def find_fee(session: XeroSession, invoice: Invoice, key: str) -> str | None:
    """A fee line on the invoice (read fresh), else a fee invoice of the same contact."""
    found = session.read(invoice.id)
    for li in (found[1].lines if found else []):
        if mentions_key(li.description, key):
            return f"line:{invoice.id}:{li.line_item_id}"
    # SearchTerm is case-insensitive: the reference's digits find both the new
    # "(ref. AR-3F9A2C1D)" and an old "ar-sync:ar3f9a2c1d…" Reference in one call.
    term = customer_reference(key).removeprefix("AR-")
    got = session.caller.call("GET Invoices", lambda: session.api.get_invoices(
        session.tenant, search_term=term, contact_i_ds=[invoice.customer_id],
        page=1, _return_http_data_only=False, _request_timeout=session.timeout))
    for fee_invoice in got.invoices or []:
        if mentions_key(fee_invoice.reference, key):
            return f"invoice:{fee_invoice.invoice_id}"
    return None
