"""Single Xero writes of one session: a history note, the invoice e-mail, a fee line, a fee
invoice. Each is one call carrying its Idempotency-Key; the connector wraps each in
write_reconciled (a lost answer is looked for with effects.find_effect before a retry).
"""

from __future__ import annotations

import logging

from xero_python.accounting import HistoryRecord, HistoryRecords, RequestEmpty
from xero_python.accounting import Invoices as XeroInvoices

from ar_sync.domain.errors import PlatformValidationError, QuotaReachedError
from ar_sync.domain.models import Invoice
from ar_sync.domain.references import key_marker
from ar_sync_xero import fee_writes
from ar_sync_xero.fee_lines import LineSet, fee_invoice_key
from ar_sync_xero.fee_writes import FeeSpec
from ar_sync_xero.reads import resolve_links
from ar_sync_xero.session import XeroSession

log = logging.getLogger(__name__)

HISTORY_DETAILS_MAX = 2500
EMAIL_LIMIT_REACHED = ("Xero's daily e-mail limit for this organisation is reached; the "
                       "reminder is sent on a later run")


def add_note(session: XeroSession, invoice: Invoice, text: str, key: str) -> str:
    """A note in the invoice's History and Notes, ending with the key marker."""
    marker = key_marker(key)
    body = resolve_links(session, text).strip()
    room = HISTORY_DETAILS_MAX - len(marker) - 1
    details = f"{body[:room]}\n{marker}" if marker not in body else body[:HISTORY_DETAILS_MAX]
    records = HistoryRecords(history_records=[HistoryRecord(details=details)])
    session.caller.call("PUT Invoices/{id}/History", lambda: session.api.create_invoice_history(
        session.tenant, invoice.id, records, idempotency_key=key,
        _return_http_data_only=False, _request_timeout=session.timeout), write=True)
    return f"history:{invoice.id}:{key}"


def send(session: XeroSession, invoice: Invoice, key: str, to: str | None) -> str:
    """Xero e-mails the invoice to the contact's own address (it cannot be redirected)."""
    if to and invoice.customer_email and to.lower() != invoice.customer_email.lower():
        # never an address in the log (personal data): the invoice says which
        log.warning("xero %s: invoice %s is e-mailed to its contact's own address, not to "
                    "the other address asked for", session.tenant, invoice.number)
    if session.email_limited:  # a limit, not a fault: no retry within this run
        raise QuotaReachedError(EMAIL_LIMIT_REACHED)
    try:
        session.caller.call("POST Invoices/{id}/Email", lambda: session.api.email_invoice(
            session.tenant, invoice.id, RequestEmpty(), idempotency_key=key,
            _return_http_data_only=False, _request_timeout=session.timeout), write=True)
    except PlatformValidationError as exc:
        if "email limit" not in str(exc).lower():
            raise
        session.email_limited = True  # no more e-mail calls this run: they would all fail
        raise QuotaReachedError(EMAIL_LIMIT_REACHED) from exc
    return f"email:{invoice.id}:{key}"


def fee_on_invoice(session: XeroSession, spec: FeeSpec) -> str:
    """The fee as a new line of the invoice, every existing line re-sent as just read."""
    # Xero replaces an invoice's whole line list on update and has no version check, so
    # the lines must be read right before the write (the sync holds a per-invoice lock
    # across both): a cached list would silently drop a line another runner (or a person)
    # added since our fetch.
    invoice = spec.invoice
    found = session.read(invoice.id)
    if found is None:
        raise PlatformValidationError(f"invoice {invoice.number} is gone from Xero")
    current, lineset = found
    element, tax = fee_writes.line_edit(spec, lineset)
    body = XeroInvoices(invoices=[element])
    got = session.caller.call("POST Invoices/{id}", lambda: session.api.update_invoice(
        session.tenant, invoice.id, body, unitdp=4, idempotency_key=spec.key,
        _return_http_data_only=False, _request_timeout=session.timeout), write=True)
    updated = (got.invoices or [None])[0]
    if updated is None:
        raise PlatformValidationError(f"Xero returned no invoice for {invoice.number}")
    session.lines[invoice.id] = LineSet(list(updated.line_items or []), lineset.amount_types)
    return fee_writes.line_edit_ref(spec, current.total, lineset, updated, tax)


def fee_invoice(session: XeroSession, spec: FeeSpec) -> str:
    """The fee on its own ACCREC invoice dated today."""
    element, tax = fee_writes.fee_invoice(spec, session.today())
    body = XeroInvoices(invoices=[element])
    # Its own Idempotency-Key, derived from the action's: never the key of a line edit
    # that was refused (a layer replaying that answer would replay the refusal).
    got = session.caller.call("PUT Invoices", lambda: session.api.create_invoices(
        session.tenant, body, unitdp=4, idempotency_key=fee_invoice_key(spec.key),
        _return_http_data_only=False, _request_timeout=session.timeout), write=True)
    return fee_writes.fee_invoice_ref(spec, (got.invoices or [None])[0], tax)
