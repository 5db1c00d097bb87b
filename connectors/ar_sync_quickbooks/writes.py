"""The QuickBooks connector's single writes: notes, reminder e-mails and late fees, each
carrying its idempotency key as `requestid` (a distinct key per distinct request) and as the
`ar-sync:<key>` marker the reconciliation (effects.py) searches for. The connector wraps each in
write_reconciled; batch.py builds its operations from the same bodies.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

from quickbooks.objects.attachable import Attachable
from quickbooks.objects.invoice import Invoice as QBInvoice

from ar_sync.domain.errors import NotApplicableError, PlatformValidationError, StaleObjectError
from ar_sync.domain.models import Invoice, Money
from ar_sync.domain.money import round_money, to_decimal
from ar_sync.domain.references import reference_text
from ar_sync_quickbooks.fees import (
    FeeTax,
    discounted,
    fee_line,
    invoice_rate,
    lines_with_fee,
    verify_fee_invoice,
    verify_fee_line,
)
from ar_sync_quickbooks.mapping import (
    dumps,
    fee_description,
    fee_invoice_note,
    find_line_with_marker,
    note_text,
)
from ar_sync_quickbooks.session import QuickBooksSession

RETRY_SUFFIX = "-r"  # the fee line re-sent after a stale SyncToken (a different request)
FALLBACK_SUFFIX = "-i"  # the separate fee invoice written instead of a refused line edit
NOT_FOUND = "610"


# ---------------------------------------------------------------------- notes and e-mail

def add_note(session: QuickBooksSession, invoice: Invoice, text: str, key: str) -> str:
    """An Attachable note linked to the invoice (create-only: no SyncToken race)."""
    body = note_body(invoice, text, key)
    answer: dict[str, Any] = session.run(
        lambda: session.client.create_object("Attachable", body, request_id=key), "add note",
        write=True)
    return note_written(answer["Attachable"])


def check_reminder(session: QuickBooksSession, invoice: Invoice) -> None:
    """NotApplicableError unless the invoice has a BillEmail. QBO's own invoice e-mail goes
    to it; never `sendTo`: QBO stores it as the invoice's BillEmail, and a reminder must not
    change who gets the invoice."""
    raw = session.raw.get(invoice.id) or session.read_raw(invoice.id)
    if raw is None:
        raise NotApplicableError(f"invoice {invoice.number} no longer exists")
    if not (raw.get("BillEmail") or {}).get("Address"):
        raise NotApplicableError(f"invoice {invoice.number} has no BillEmail: QuickBooks "
                                 "would send only to an address it then stores on the "
                                 "invoice, so no reminder e-mail")


def send(session: QuickBooksSession, invoice: Invoice, key: str) -> str:
    """POST invoice/{id}/send: QBO e-mails the invoice to its BillEmail."""
    answer: dict[str, Any] = session.run(
        lambda: session.client.post(f"{session.client.api_url}/company/{session.realm}/"
                                    f"invoice/{invoice.id}/send", None,
                                    content_type="application/octet-stream", params={},
                                    request_id=key), "send invoice", write=True)
    session.remember([answer["Invoice"]], fresh=True)
    sent = QBInvoice.from_json(answer["Invoice"])
    delivered = getattr(sent.DeliveryInfo, "DeliveryTime", "") if sent.DeliveryInfo else ""
    return f"InvoiceSend:{sent.Id}@{delivered or sent.EmailStatus}"


# ---------------------------------------------------------------------- late fees

def fee_inputs(session: QuickBooksSession, invoice: Invoice, fee: Money,
               tax: str | None, account: str | None = None
               ) -> tuple[Decimal, tuple[str, str], FeeTax]:
    """The fee rounded, the Late fee item (booking to the rule's `account`) and the fee's
    tax (both paths check the same)."""
    if fee.currency != invoice.currency:
        raise PlatformValidationError(
            f"fee in {fee.currency} on a {invoice.currency} invoice {invoice.number}")
    amount = round_money(fee.amount, fee.currency)
    if amount <= 0:
        raise PlatformValidationError(f"late fee must be positive, got {amount}")
    return amount, session.fee_item(account), session.fee_tax(tax)


def fee_line_write(session: QuickBooksSession, invoice: Invoice, amount: Decimal, label: str,
                   key: str, item: tuple[str, str], charge: FeeTax) -> str:
    """Sparse update adding one line; every existing line goes back as read."""
    raw = session.raw.get(invoice.id)
    if raw is None or str(raw.get("SyncToken")) != str(invoice.version):
        raw = session.read_raw(invoice.id)
    for request_id in (key, key + RETRY_SUFFIX):
        if raw is None:
            raise NotApplicableError(f"invoice {invoice.number} no longer exists")
        present = find_line_with_marker(raw, key)
        if present is not None:
            return present
        if discounted(raw):  # the discount would shift: other amounts would change
            return fee_invoice(session, invoice, amount, label, key, item, charge,
                               request_id=key + FALLBACK_SUFFIX)
        text = dumps(fee_line_update(raw, amount, label, key, item, charge))
        try:
            answer: dict[str, Any] = session.run(
                partial(session.client.update_object, "Invoice", text, request_id=request_id),
                "add fee line", write=True)
        except StaleObjectError:
            if request_id != key:
                raise
            raw = session.read_raw(invoice.id)  # someone edited it: re-read, retry once
            if raw is not None and to_decimal(raw.get("Balance") or 0) <= 0:
                raise NotApplicableError(
                    f"invoice {invoice.number} was paid or closed meanwhile: no fee"
                ) from None
            continue
        except PlatformValidationError as exc:
            if exc.platform_code == NOT_FOUND:
                raise NotApplicableError(f"invoice {invoice.number} was deleted") from exc
            # The edit is refused (a business rule): the fee goes on its own invoice,
            # under a key derived from the action's, so no replay of the refusal.
            return fee_invoice(session, invoice, amount, label, key, item, charge,
                               request_id=key + FALLBACK_SUFFIX)
        return fee_line_written(session, invoice, raw, answer["Invoice"], amount, key, charge)
    raise StaleObjectError(f"invoice {invoice.number} kept changing")  # pragma: no cover


def fee_line_written(session: QuickBooksSession, invoice: Invoice, before: dict[str, Any],
                     updated: dict[str, Any], amount: Decimal, key: str,
                     charge: FeeTax) -> str:
    """QuickBooks' answer to a fee-line update, checked: the line is there, every other
    line unchanged, the total up by exactly the fee and its tax."""
    session.remember([updated], fresh=True)
    ref = find_line_with_marker(updated, key)
    if ref is None:
        raise PlatformValidationError("QuickBooks dropped the fee line")
    rate = invoice_rate(updated) if charge.code == "TAX" else charge.rate
    verify_fee_line(before, updated, amount, rate, key, invoice.currency)
    return ref


def fee_invoice(session: QuickBooksSession, invoice: Invoice, amount: Decimal, label: str,
                key: str, item: tuple[str, str], charge: FeeTax, *, request_id: str) -> str:
    """A separate invoice for the fee, same customer and currency, dated today."""
    text = dumps(fee_invoice_body(session, invoice, amount, label, key, item, charge))
    answer: dict[str, Any] = session.run(
        lambda: session.client.create_object("Invoice", text, request_id=request_id),
        "create fee invoice", write=True)
    return fee_invoice_written(answer["Invoice"], amount, charge, invoice.currency)


def fee_invoice_body(session: QuickBooksSession, invoice: Invoice, amount: Decimal,
                     label: str, key: str, item: tuple[str, str],
                     charge: FeeTax) -> dict[str, Any]:
    """The fee invoice: the parent's customer, currency, exchange rate and BillEmail."""
    today = session.clock().date().isoformat()
    body: dict[str, Any] = {
        "CustomerRef": {"value": invoice.customer_id},
        "CurrencyRef": {"value": invoice.currency},
        "Line": [fee_line(amount, f"{label} on invoice {invoice.number} {reference_text(key)}",
                          *item, charge.code)],
        "PrivateNote": fee_invoice_note(label, invoice.number, invoice.id, key),
        "TxnDate": today, "DueDate": today,
    }
    if session.country.upper() != "US":
        body["GlobalTaxCalculation"] = "TaxExcluded"
    original = session.raw.get(invoice.id) or {}
    if original.get("ExchangeRate") is not None:
        body["ExchangeRate"] = original["ExchangeRate"]
    bill_to = (original.get("BillEmail") or {}).get("Address") or invoice.customer_email
    if bill_to:
        body["BillEmail"] = {"Address": bill_to}
    return body


def fee_line_update(raw: dict[str, Any], amount: Decimal, label: str, key: str,
                    item: tuple[str, str], charge: FeeTax) -> dict[str, Any]:
    """The sparse update adding a fee line: every existing line as read, the fee line, and
    the SyncToken the lines were read at."""
    line = fee_line(amount, fee_description(label, key), *item, charge.code)
    return {"Id": raw["Id"], "SyncToken": raw["SyncToken"], "sparse": True,
            "Line": lines_with_fee(raw, line)}


def fee_invoice_written(created: dict[str, Any], amount: Decimal, charge: FeeTax,
                        currency: str) -> str:
    """A created fee invoice, checked: it totals the fee plus its tax."""
    verify_fee_invoice(created, amount, None if charge.code == "TAX" else charge.rate, currency)
    return f"Invoice:{QBInvoice.from_json(created).Id}"


def note_body(invoice: Invoice, text: str, key: str) -> str:
    """An Attachable note on the invoice carrying the key marker (fits 2,000 characters)."""
    note = Attachable()
    note.Note = note_text(text, key)
    note.AttachableRef = [{"EntityRef": {"type": "Invoice", "value": invoice.id},
                           "IncludeOnSend": False}]
    text_json: str = note.to_json()
    return text_json


def note_written(created: dict[str, Any]) -> str:
    return f"Attachable:{Attachable.from_json(created).Id}"
