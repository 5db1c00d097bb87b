"""What Xero does with a write: create or update invoices, add history, send an e-mail.

Plain functions over an Organisation (the HTTP shell in xero/server.py holds the lock and
turns ValidationFailed into Xero's ValidationException envelope). The rules modelled here:
lock dates (Organisation.PeriodLockDate / EndOfYearLockDate refuse changes to documents dated
on or before them), no line edits once a payment is applied, LineAmountTypes defaulting to
Exclusive when a request leaves it out, the daily e-mail limit.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from typing import Any

from ar_sync.domain.money import UnknownCurrencyError, normalise_currency
from ar_sync_emulators.xero.lines import parse_lines
from ar_sync_emulators.xero.model import (
    Organisation,
    ValidationFailed,
    XContact,
    XHistory,
    XInvoice,
    XLine,
    invoice_json,
    parse_xero_date,
    stable_id,
    truncate_ms,
)
from ar_sync_emulators.xero.tax import LINE_AMOUNT_TYPES

HISTORY_DETAILS_MAX = 2500
_ALLOWED_STATUS = {("DRAFT", "SUBMITTED"), ("DRAFT", "AUTHORISED"), ("SUBMITTED", "AUTHORISED"),
                   ("AUTHORISED", "VOIDED"), ("DRAFT", "DELETED"), ("SUBMITTED", "DELETED")}


def find_invoice(org: Organisation, ref: str) -> XInvoice | None:
    """Xero accepts an InvoiceID or an InvoiceNumber in the path."""
    inv = org.invoices.get(ref.lower())
    if inv is None:
        inv = next((i for i in org.invoices.values() if i.number.lower() == ref.lower()), None)
    return inv


def touch(inv: XInvoice, now: datetime, changes: str, details: str) -> None:
    inv.updated = truncate_ms(now)
    inv.history.append(XHistory(now, changes, details))


def amount_types(data: dict[str, Any]) -> str:
    # Xero's invoice docs: "Line amounts are exclusive of tax by default if you don't specify
    # this element". Applied to updates too [unverified]: the harsher reading.
    value = str(data.get("LineAmountTypes") or "Exclusive")
    match = next((t for t in LINE_AMOUNT_TYPES if t.lower() == value.lower()), None)
    if match is None:
        raise ValidationFailed(f"LineAmountTypes '{value}' is not valid")
    return match


def upsert(org: Organisation, data: Any, existing: XInvoice | None, now: datetime, *,
           create_only: bool) -> XInvoice:
    if not isinstance(data, dict):
        raise ValidationFailed("An invoice must be an object")
    if existing is None and data.get("InvoiceID"):
        existing = find_invoice(org, str(data["InvoiceID"]))
        if existing is None:
            raise ValidationFailed("Invoice could not be found")
        if create_only:
            raise ValidationFailed("PUT creates invoices; use POST to update one")
    if existing is None:
        return create(org, data, now)
    update(org, existing, data, now)
    return existing


def new_document(org: Organisation, data: dict[str, Any], now: datetime, errors: list[str],
                 what: str) -> tuple[XContact, str, date, str]:
    """A new invoice's or credit note's contact, status, date and currency; every refusal
    (with those already in `errors`) in one ValidationFailed."""
    contact_ref = data.get("Contact") or {}
    contact = org.contacts.get(str(contact_ref.get("ContactID", "")).lower()) or next(
        (c for c in org.contacts.values() if c.name == contact_ref.get("Name")), None)
    if contact is None:
        errors.append("A Contact must be specified for this type of transaction")
    status = str(data.get("Status") or "DRAFT").upper()
    if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
        errors.append(f"{what} Status {status} is not valid for a new {what.lower()}")
    if what == "Invoice" and status == "AUTHORISED" and not data.get("DueDate"):
        errors.append("Due Date is required")
    day = parse_xero_date(data["Date"]) if data.get("Date") else now.date()
    errors.extend(org.lock_messages(day))
    if errors:
        raise ValidationFailed(*errors)
    assert contact is not None
    try:
        currency = normalise_currency(str(data.get("CurrencyCode") or contact.currency))
    except UnknownCurrencyError as exc:
        raise ValidationFailed(f"The currency {data.get('CurrencyCode')} is not valid") from exc
    return contact, status, day, currency


def new_lines(org: Organisation, data: dict[str, Any], currency: str, number: str,
              now: datetime) -> tuple[list[XLine], str]:
    """A new invoice's or credit note's lines (their ids derived from the organisation, the
    document's number and the moment) and its LineAmountTypes."""
    stamp = str(now.timestamp())
    lines = parse_lines(org, data.get("LineItems"), currency, [],
                        lambda n: stable_id(org.tenant_id, number, stamp, str(n)))
    return lines, amount_types(data)


def create(org: Organisation, data: dict[str, Any], now: datetime) -> XInvoice:
    errors: list[str] = []
    if data.get("Type") != "ACCREC":
        errors.append("Invoice Type must be ACCREC (the emulator holds sales invoices only)")
    contact, status, day, currency = new_document(org, data, now, errors, "Invoice")
    number = str(data.get("InvoiceNumber") or org.new_number())
    if any(i.number == number for i in org.invoices.values()):
        raise ValidationFailed("Invoice # must be unique.")
    reference = str(data.get("Reference") or "")
    if len(reference) > 255:
        raise ValidationFailed("Reference must be 255 characters or less")
    lines, types = new_lines(org, data, currency, number, now)
    inv = XInvoice(
        id=stable_id(org.tenant_id, "created", number, str(now.timestamp())), number=number,
        type="ACCREC", contact_id=contact.id, date=day,
        due_date=parse_xero_date(data["DueDate"]) if data.get("DueDate") else None,
        currency=currency, status=status, lines=lines, reference=reference,
        updated=truncate_ms(now), online_token=stable_id("online", org.tenant_id, number),
        amount_types=types)
    inv.history.append(XHistory(now, "Created", f"INV {number} created via the API."))
    if status == "AUTHORISED":
        inv.history.append(XHistory(now, "Approved", f"INV {number} approved."))
    org.invoices[inv.id] = inv
    return inv


def update(org: Organisation, inv: XInvoice, data: dict[str, Any], now: datetime) -> None:
    if inv.status in ("PAID", "VOIDED", "DELETED"):
        raise ValidationFailed("Invoice not of valid status for modification")
    if set(data) - {"InvoiceID", "InvoiceNumber"}:
        locked = org.lock_messages(inv.date)
        if locked:
            raise ValidationFailed(*locked)
    changed: list[str] = []
    if "LineItems" in data:
        if inv.payments or inv.credits:
            raise ValidationFailed("This document cannot be edited as it has a payment or "
                                   "credit note allocated to it.")
        stamp = str(now.timestamp())
        lines = parse_lines(org, data["LineItems"], inv.currency, inv.lines,
                            lambda n: stable_id(inv.id, "line", stamp, str(n)))
        new_types = amount_types(data)
        before = inv.total
        inv.lines, inv.amount_types = lines, new_types
        if inv.total < inv.amount_paid:
            raise ValidationFailed("The invoice total cannot be less than the amount paid")
        changed.append("line items" if inv.total == before else f"line items, total {inv.total}")
    elif "LineAmountTypes" in data:
        inv.amount_types = amount_types(data)
        changed.append("amounts tax")
    if "Reference" in data:
        reference = str(data["Reference"] or "")
        if len(reference) > 255:
            raise ValidationFailed("Reference must be 255 characters or less")
        inv.reference = reference
        changed.append("reference")
    if data.get("DueDate"):
        inv.due_date = parse_xero_date(data["DueDate"])
        changed.append("due date")
    status = str(data.get("Status") or inv.status).upper()
    if status != inv.status:
        settled = inv.payments or inv.credits
        if (inv.status, status) not in _ALLOWED_STATUS or (status == "VOIDED" and settled):
            raise ValidationFailed(f"Invoice cannot go from {inv.status} to {status}")
        inv.status = status
        changed.append(f"status {status}")
    if changed:
        touch(inv, now, "Edited", f"INV {inv.number} updated: {', '.join(changed)}.")


def add_history(history: list[XHistory], body: Any, now: datetime) -> list[XHistory]:
    """PUT/POST …/History on an invoice or a credit note: notes appended to `history`."""
    records = body.get("HistoryRecords") if isinstance(body, dict) else None
    if not isinstance(records, list) or not records:
        raise ValidationFailed("HistoryRecords must be specified")
    added: list[XHistory] = []
    for rec in records:
        details = str((rec or {}).get("Details") or "").strip()
        if not details:
            raise ValidationFailed("The Details field is required")
        if len(details) > HISTORY_DETAILS_MAX:
            raise ValidationFailed("The Details field must be 2500 characters or less")
        added.append(XHistory(now, "Note", details, user="ar-sync (API)"))
    history.extend(added)  # a note does not change the document's UpdatedDateUTC
    return added


class EmailLimitReached(Exception):
    """The organisation's API e-mails for today are used up (answered 400, try tomorrow)."""


def email(org: Organisation, inv: XInvoice, key: str | None, now: datetime) -> None:
    if inv.type != "ACCREC" or inv.status not in ("SUBMITTED", "AUTHORISED", "PAID"):
        raise ValidationFailed("Invoice must be of status SUBMITTED, AUTHORISED or PAID "
                               "to be emailed")
    contact = org.contacts[inv.contact_id]
    if not contact.email:
        raise ValidationFailed("The contact must have a valid email address")
    if org.email_limit is not None and org.emails_on(now.date()) >= org.email_limit:
        raise EmailLimitReached(f"Daily email limit of {org.email_limit} reached for this "
                                "organisation")
    org.emails.append((inv.id, key, now))
    inv.history.append(XHistory(now, "Emailed", f"INV {inv.number} sent to {contact.email}"))
    if not inv.sent_to_contact:
        inv.sent_to_contact = True
        inv.updated = truncate_ms(now)


def save_many(org: Organisation, items: Any, now: datetime, *, create_only: bool,
              summarize: bool) -> list[dict[str, Any]]:
    """PUT/POST /Invoices: many invoices in one request. With summarizeErrors=false each
    one is saved or refused on its own (HasErrors + ValidationErrors on its element, 200);
    otherwise one refusal fails the whole request and nothing is saved."""
    if not isinstance(items, list) or not items:
        raise ValidationFailed("Invoices must be specified")
    saved = copy.deepcopy(org.invoices) if summarize and len(items) > 1 else None
    out: list[dict[str, Any]] = []
    for item in items:
        try:
            done = invoice_json(org, upsert(org, item, None, now, create_only=create_only))
            out.append(done if summarize else {**done, "StatusAttributeString": "OK"})
        except ValidationFailed as exc:
            if summarize:
                if saved is not None:
                    org.invoices = saved
                raise
            element = {k: v for k, v in (item if isinstance(item, dict) else {}).items()
                       if k in ("InvoiceID", "InvoiceNumber", "Reference", "Type")}
            out.append({**element, "HasErrors": True, "StatusAttributeString": "ERROR",
                        "ValidationErrors": [{"Message": m} for m in exc.messages]})
    return out
