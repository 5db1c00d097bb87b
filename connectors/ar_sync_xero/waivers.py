"""Waiving a late fee in Xero: a sales credit note (ACCRECCREDIT) allocated to the invoice.

Why not remove the fee line: Xero refuses line edits once a payment or a credit note is
allocated and for documents dated on or before the lock date, and the customer already has
the invoice as sent. A credit note is the bookkeeping answer: its own document and date.

Three writes, each with its own Idempotency-Key: the credit note (the action key), a note in
the credit note's History and Notes carrying the key marker (key + "-h"; internal, never shown
to the customer, unlike `Reference`), the allocation (key + "-a"). Reconciliation
(`find_waiver`) looks at the contact's sales credit notes: one whose history carries our marker
is ours; a credit note left without a marker by a crash between the first two writes is
adopted when it is the only unallocated one waiving a fee on this invoice (its Reference says
so). A credit note with credit left is allocated on the next attempt, never created twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from xero_python.accounting import (
    Allocation,
    Allocations,
    Contact,
    CreditNote,
    CreditNotes,
    CurrencyCode,
    HistoryRecord,
    HistoryRecords,
    LineAmountTypes,
    LineItem,
)
from xero_python.accounting import Invoice as XeroInvoice

from ar_sync.domain.errors import PlatformValidationError
from ar_sync.domain.models import Invoice, Money
from ar_sync.domain.money import round_money
from ar_sync.domain.references import key_marker
from ar_sync.sync.connector import waiver_amount
from ar_sync_xero.session import XeroSession

REFERENCE = "Late fee waived on invoice {number}"  # what the customer reads, no keys


def waive_fee(session: XeroSession, invoice: Invoice, amount: Money, label: str,
              key: str, account: str | None = None) -> str:
    found = session.waiver_notes.pop(key, None)
    if found is None:
        value = waiver_amount(invoice, amount)
        note_id, left, marked = (_create(session, invoice, value, label, key, account),
                                 value, False)
    else:
        note_id, left, marked = found
    if not marked:
        _mark(session, note_id, invoice, label, key)
    value = round_money(min(left, invoice.balance), invoice.currency)
    if value > 0:
        body = Allocations(allocations=[Allocation(
            invoice=XeroInvoice(invoice_id=invoice.id), amount=value,
            date=session.today())])
        session.caller.call("PUT CreditNotes/{id}/Allocations",
                            lambda: session.api.create_credit_note_allocation(
                                session.tenant, note_id, body, idempotency_key=f"{key}-a",
                                _return_http_data_only=False,
                                _request_timeout=session.timeout),
                            write=True)
    return f"creditnote:{note_id}"


def _create(session: XeroSession, invoice: Invoice, value: Decimal, label: str,
            key: str, account: str | None) -> str:
    line = LineItem(description=label, quantity=Decimal(1), unit_amount=value,
                    account_code=account or session.fee_account)
    if session.fee_tax_type:
        line.tax_type = session.fee_tax_type
    body = CreditNotes(credit_notes=[CreditNote(
        type="ACCRECCREDIT", contact=Contact(contact_id=invoice.customer_id),
        date=session.today(), status="AUTHORISED",
        line_amount_types=LineAmountTypes.INCLUSIVE,
        line_items=[line], reference=REFERENCE.format(number=invoice.number),
        currency_code=CurrencyCode(invoice.currency))])
    got = session.caller.call("PUT CreditNotes", lambda: session.api.create_credit_notes(
        session.tenant, body, unitdp=4, idempotency_key=key, _return_http_data_only=False,
        _request_timeout=session.timeout), write=True)
    notes = got.credit_notes or []
    if not notes or not notes[0].credit_note_id:
        raise PlatformValidationError("Xero did not return the credit note")
    return str(notes[0].credit_note_id)


def _mark(session: XeroSession, note_id: str, invoice: Invoice, label: str, key: str) -> None:
    records = HistoryRecords(history_records=[HistoryRecord(
        details=f"ar-sync: {label} (invoice {invoice.number}) {key_marker(key)}")])
    session.caller.call("PUT CreditNotes/{id}/History",
                        lambda: session.api.create_credit_note_history(
                            session.tenant, note_id, records, idempotency_key=f"{key}-h",
                            _return_http_data_only=False, _request_timeout=session.timeout),
                        write=True)


def find_waiver(session: XeroSession, invoice: Invoice, key: str) -> str | None:
    """`creditnote:<id>` when the waiver is complete (allocated); a credit note of ours with
    credit left is remembered for the retried write (allocated, not created again)."""
    marker = key_marker(key)
    where = (f'Contact.ContactID==guid("{invoice.customer_id}") AND Type=="ACCRECCREDIT" '
             'AND Status=="AUTHORISED"')
    got = session.caller.call("GET CreditNotes", lambda: session.api.get_credit_notes(
        session.tenant, where=where, page=1, unitdp=4, _return_http_data_only=False,
        _request_timeout=session.timeout))
    reference = REFERENCE.format(number=invoice.number)
    orphans: list[Any] = []
    for note in got.credit_notes or []:
        allocated_here = any(a.invoice and str(a.invoice.invoice_id) == invoice.id
                             for a in note.allocations or [])
        remaining = Decimal(str(note.remaining_credit or 0))
        if not allocated_here and remaining <= 0:
            continue  # spent on other invoices: not about this one
        details = _history(session, str(note.credit_note_id))
        if any(marker in d for d in details):
            if remaining <= 0 or allocated_here:
                return f"creditnote:{note.credit_note_id}"
            session.waiver_notes[key] = (str(note.credit_note_id), remaining, True)
            return None
        if (note.reference == reference and not allocated_here
                and not any("ar-sync:" in d for d in details)):
            orphans.append(note)
    if len(orphans) == 1:  # a crash left it without its marker: adopt it, then mark it
        note = orphans[0]
        session.waiver_notes[key] = (str(note.credit_note_id),
                                     Decimal(str(note.remaining_credit or 0)), False)
    return None


def _history(session: XeroSession, note_id: str) -> list[str]:
    got = session.caller.call("GET CreditNotes/{id}/History",
                              lambda: session.api.get_credit_note_history(
                                  session.tenant, note_id, _return_http_data_only=False,
                                  _request_timeout=session.timeout))
    return [str(r.details or "") for r in got.history_records or []]
