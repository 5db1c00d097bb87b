"""The Xero emulator's sales credit notes and their allocations (how a waiver is applied).

Modelled on the Xero Accounting API (developer.xero.com, Credit Notes; XeroAPI/Xero-OpenAPI
xero_accounting.yaml: createCreditNotes, getCreditNotes, createCreditNoteAllocation,
createCreditNoteHistory) and xero-python's accounting_api.py:

- `PUT /CreditNotes` creates credit notes (`Type` ACCRECCREDIT for a customer, `Contact`,
  `LineItems` as on an invoice, `Status` DRAFT or AUTHORISED, `Reference`, `CurrencyCode`).
  `Total` follows the lines (tax as on invoices); `RemainingCredit` is what is not allocated.
- `PUT /CreditNotes/{id}/Allocations` with `{"Allocations": [{"Invoice": {"InvoiceID"},
  "Amount", "Date"}]}` allocates credit to an invoice: its `AmountCredited` rises, its
  `AmountDue` falls, and it becomes PAID at zero. Refused (ValidationException) unless both
  are AUTHORISED, of the same contact and currency, the amount is positive and at most the
  credit left and the invoice's amount due (the safe side where Xero's docs are silent about
  the exact wording), and the date is after the lock date.
- `PUT /CreditNotes/{id}/History` adds a note in the credit note's History and Notes (internal:
  the customer never sees it) — where ar-sync keeps its key marker. Same rules and JSON as an
  invoice's history (xero_writes.add_history); lines and LineAmountTypes as on invoices too.
- `GET /CreditNotes` (where, page) and `GET /CreditNotes/{id}` read them back.
An invoice with a credit note allocated can no longer have its lines edited (xero_writes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ar_sync.domain.money import round_money
from ar_sync_emulators.base import Effect
from ar_sync_emulators.xero.model import (
    Organisation,
    ValidationFailed,
    XHistory,
    XInvoice,
    XLine,
    XPayment,
    history_json,
    line_json,
    ms_date,
    parse_xero_date,
    stable_id,
    truncate_ms,
)
from ar_sync_emulators.xero.tax import totals
from ar_sync_emulators.xero.where import GUID, Value, parse_where
from ar_sync_emulators.xero.writes import add_history, new_document, new_lines

MARKER = re.compile(r"ar-sync:([A-Za-z0-9_\-]+)")
ROUTES = ("GET /api.xro/2.0/CreditNotes", "PUT /api.xro/2.0/CreditNotes",
          "POST /api.xro/2.0/CreditNotes", "GET /api.xro/2.0/CreditNotes/{id}",
          "PUT /api.xro/2.0/CreditNotes/{id}/Allocations",
          "GET /api.xro/2.0/CreditNotes/{id}/History", "PUT /api.xro/2.0/CreditNotes/{id}/History")
WHERE_FIELDS: dict[str, type] = {"Type": str, "Status": str, "Reference": str,
                                 "CreditNoteNumber": str, "Contact.ContactID": GUID,
                                 "CurrencyCode": str, "Date": date}


@dataclass
class XAllocation:
    invoice_id: str
    amount: Decimal
    on: date


@dataclass
class XCreditNote:
    id: str
    number: str
    contact_id: str
    date: date
    currency: str
    status: str
    lines: list[XLine]
    reference: str
    updated: datetime
    amount_types: str = "Exclusive"
    allocations: list[XAllocation] = field(default_factory=list)
    history: list[XHistory] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return totals([(ln.amount(self.currency), ln.tax(self.currency, self.amount_types))
                       for ln in self.lines], self.amount_types, self.currency)[2]

    @property
    def remaining(self) -> Decimal:
        return self.total - sum((a.amount for a in self.allocations), Decimal(0))


def notes_of(org: Organisation) -> dict[str, XCreditNote]:
    """The organisation's credit notes (kept beside its invoices)."""
    notes: dict[str, XCreditNote] = org.credit_notes
    return notes


def credit_json(org: Organisation, note: XCreditNote) -> dict[str, Any]:
    contact = org.contacts[note.contact_id]
    sub, tax, total = totals([(ln.amount(note.currency), ln.tax(note.currency,
                                                                 note.amount_types))
                              for ln in note.lines], note.amount_types, note.currency)
    return {"Type": "ACCRECCREDIT", "CreditNoteID": note.id, "CreditNoteNumber": note.number,
            "Contact": {"ContactID": contact.id, "Name": contact.name},
            "Date": ms_date(note.date), "DateString": f"{note.date.isoformat()}T00:00:00",
            "Status": note.status, "LineAmountTypes": note.amount_types, "SubTotal": sub,
            "TotalTax": tax, "Total": total, "RemainingCredit": note.remaining,
            "CurrencyCode": note.currency, "Reference": note.reference,
            "UpdatedDateUTC": ms_date(note.updated), "HasAttachments": False,
            "LineItems": [line_json(ln, note) for ln in note.lines],  # type: ignore[arg-type]
            "Allocations": [{"Amount": a.amount, "Date": ms_date(a.on),
                             "Invoice": {"InvoiceID": a.invoice_id,
                                         "InvoiceNumber": org.invoices[a.invoice_id].number}}
                            for a in note.allocations]}


def _record(org: Organisation, note: XCreditNote) -> dict[str, Value]:
    return {"Type": "ACCRECCREDIT", "Status": note.status, "Reference": note.reference,
            "CreditNoteNumber": note.number, "Contact.ContactID": note.contact_id,
            "CurrencyCode": note.currency, "Date": note.date}


def create(org: Organisation, data: Any, now: datetime) -> XCreditNote:
    if not isinstance(data, dict):
        raise ValidationFailed("A credit note must be an object")
    errors = []
    if data.get("Type") != "ACCRECCREDIT":
        errors.append("Type must be ACCRECCREDIT (the emulator holds sales credit notes only)")
    contact, status, day, currency = new_document(org, data, now, errors, "Credit note")
    notes = notes_of(org)
    number = f"CN-{len(notes) + 1:05d}"
    lines, amount_types = new_lines(org, data, currency, number, now)
    note = XCreditNote(
        id=stable_id(org.tenant_id, "credit", number, str(now.timestamp())), number=number,
        contact_id=contact.id, date=day, currency=currency, status=status, lines=lines,
        reference=str(data.get("Reference") or "")[:255], updated=truncate_ms(now),
        amount_types=amount_types)
    if note.total <= 0:
        raise ValidationFailed("The credit note total must be greater than zero")
    note.history.append(XHistory(now, "Created", f"Credit Note {number} created via the API."))
    notes[note.id] = note
    return note


def allocate(org: Organisation, note: XCreditNote, body: Any, now: datetime) -> list[XAllocation]:
    items = body.get("Allocations") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise ValidationFailed("Allocations must be specified")
    done = []
    for item in items:
        invoice_id = str(((item or {}).get("Invoice") or {}).get("InvoiceID", "")).lower()
        inv = org.invoices.get(invoice_id)
        if inv is None:
            raise ValidationFailed("Invoice could not be found")
        value = round_money(Decimal(str(item.get("Amount", 0))), note.currency)
        day = parse_xero_date(item["Date"]) if item.get("Date") else now.date()
        _check(org, note, inv, value, day)
        note.allocations.append(XAllocation(inv.id, value, day))
        inv.credits.append(XPayment(note.id, value, day))
        if inv.amount_due <= 0:
            inv.status = "PAID"
        inv.history.append(XHistory(now, "Credit Note Applied",
                                    f"Credit Note {note.number} applied for {value}"))
        inv.updated = note.updated = truncate_ms(now)
        done.append(note.allocations[-1])
    return done


def _check(org: Organisation, note: XCreditNote, inv: XInvoice, value: Decimal,
           day: date) -> None:
    errors = []
    if note.status != "AUTHORISED":
        errors.append("Only an AUTHORISED credit note can be allocated")
    if inv.status != "AUTHORISED" or inv.type != "ACCREC":
        errors.append("The invoice must be an AUTHORISED sales invoice")
    if inv.contact_id != note.contact_id:
        errors.append("The credit note and the invoice must be for the same contact")
    if inv.currency != note.currency:
        errors.append("The credit note and the invoice must be in the same currency")
    if value <= 0:
        errors.append("Amount must be greater than zero")
    if value > note.remaining:
        errors.append("Amount must be less than or equal to the remaining credit")
    if value > inv.amount_due:
        errors.append("Amount must be less than or equal to the invoice's amount due")
    errors.extend(org.lock_messages(day))
    if errors:
        raise ValidationFailed(*errors)


def listing(org: Organisation, query: dict[str, str]) -> list[XCreditNote]:
    q = {k.lower(): v for k, v in query.items()}
    predicate = parse_where(q.get("where", ""), WHERE_FIELDS)
    rows = [n for n in notes_of(org).values() if predicate(_record(org, n))]
    rows.sort(key=lambda n: (n.date, n.number))
    page = int(q.get("page", "1") or 1)
    size = int(q.get("pagesize", "100") or 100)
    return rows[(page - 1) * size: page * size]


def route(org: Organisation, template: str, obj_id: str | None, body: Any,
          query: dict[str, str], now: datetime) -> tuple[int, dict[str, Any]]:
    """(status, payload) for a credit-note request; 404 payload {} when not found."""
    if template == "GET /api.xro/2.0/CreditNotes":
        return 200, {"CreditNotes": [credit_json(org, n) for n in listing(org, query)]}
    if template in ("PUT /api.xro/2.0/CreditNotes", "POST /api.xro/2.0/CreditNotes"):
        items = body.get("CreditNotes") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise ValidationFailed("CreditNotes must be specified")
        made = [create(org, item, now) for item in items]
        return 200, {"CreditNotes": [credit_json(org, n) for n in made]}
    note = notes_of(org).get((obj_id or "").lower()) or next(
        (n for n in notes_of(org).values() if n.number == obj_id), None)
    if note is None:
        return 404, {}
    if template.endswith("/Allocations"):
        done = allocate(org, note, body, now)
        return 200, {"Allocations": [{"Amount": a.amount, "Date": ms_date(a.on),
                                      "Invoice": {"InvoiceID": a.invoice_id},
                                      "CreditNote": {"CreditNoteID": note.id}} for a in done]}
    if template.endswith("/History"):  # as on invoices (xero_writes.add_history)
        shown = reversed(note.history) if template.startswith("GET") else add_history(
            note.history, body, now)
        return 200, {"HistoryRecords": [history_json(h) for h in shown]}
    return 200, {"CreditNotes": [credit_json(org, note)]}


def credit_effects(org: Organisation) -> list[Effect]:
    """One `waive_fee` effect per credit note whose history carries a key, on the invoice it
    was allocated to ("" while unallocated), and one `waive_applied` per allocation."""
    out = []
    for note in notes_of(org).values():
        keys = [k for h in note.history if h.changes == "Note" for k in MARKER.findall(h.details)]
        for key in keys:
            first = note.allocations[0].invoice_id if note.allocations else ""
            out.append(Effect("waive_fee", first, key, note.id))
            out.extend(Effect("waive_applied", a.invoice_id, key, note.id)
                       for a in note.allocations)
    return out
