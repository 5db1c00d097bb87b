"""The request elements of a Xero late fee and the checks of Xero's answer, shared by the
single write (connector.add_late_fee) and the batch (batch.write_batch): a fee line re-sends
every existing line exactly as read plus the fee line; a fee invoice is a new ACCREC invoice
dated today. Pure: no call is made here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from xero_python.accounting import Contact, CurrencyCode
from xero_python.accounting import Invoice as XeroInvoice

from ar_sync.domain.errors import PlatformValidationError, WriteVerificationError
from ar_sync.domain.models import FeeMode, Invoice, Money
from ar_sync.domain.references import mentions_key, reference_text
from ar_sync_xero import mapping
from ar_sync_xero.fee_lines import (
    EDIT_REFUSALS,
    LineSet,
    OrgFacts,
    amount_types_enum,
    copy_line,
    fee_line,
    fee_tax,
    verify,
)

REFERENCE_MAX = 255


@dataclass(frozen=True)
class FeeSpec:
    """One fee to write: on which invoice, how much, with what tax and key."""

    invoice: Invoice
    fee: Money
    label: str
    key: str
    account: str
    tax_type: str
    rate: Decimal


def check_currency(invoice: Invoice, fee: Money) -> None:
    if fee.currency != invoice.currency:
        raise PlatformValidationError(
            f"fee currency {fee.currency} differs from invoice {invoice.number} "
            f"currency {invoice.currency}")


def wants_line(invoice: Invoice, mode: FeeMode, org: OrgFacts) -> bool:
    """A fee line while Xero allows the edit; else (invoice mode, a payment applied, dated on
    or before the lock date) a separate fee invoice, without trying the edit."""
    return (mode == FeeMode.LINE and invoice.amount_paid == 0
            and not org.locks(invoice.issue_date))


def edit_refused(exc: PlatformValidationError) -> bool:
    """A refusal of the line edit that a separate fee invoice avoids."""
    return not isinstance(exc, WriteVerificationError) and any(
        word in str(exc).lower() for word in EDIT_REFUSALS)


def line_edit(spec: FeeSpec, lineset: LineSet) -> tuple[XeroInvoice, Decimal]:
    """The invoice element re-sending every line as read + the fee line, and the fee's tax."""
    tax = fee_tax(spec.fee.amount, spec.rate, lineset.amount_types, spec.fee.currency)
    new_line = fee_line(f"{spec.label} {reference_text(spec.key)}", spec.fee.amount, tax,
                        lineset.amount_types, spec.account, spec.tax_type)
    element = XeroInvoice(
        invoice_id=spec.invoice.id, line_amount_types=amount_types_enum(lineset.amount_types),
        line_items=[*(copy_line(li) for li in lineset.lines), new_line])
    return element, tax


def line_edit_ref(spec: FeeSpec, current_total: Decimal, lineset: LineSet, updated: Any,
                  tax: Decimal) -> str:
    """Xero's answer checked (total up by exactly fee + tax, every other line as it was);
    the fee line's reference. WriteVerificationError otherwise (the write did happen)."""
    verify(spec.invoice.number, current_total, lineset.lines, updated, spec.fee.amount + tax)
    for li in updated.line_items or []:
        if mentions_key(li.description, spec.key):
            return f"line:{spec.invoice.id}:{li.line_item_id}"
    return f"line:{spec.invoice.id}:{spec.key}"


def fee_invoice(spec: FeeSpec, today: date) -> tuple[XeroInvoice, Decimal]:
    """A separate ACCREC fee invoice dated today (its Reference names the parent and key)."""
    suffix = mapping.fee_reference(spec.invoice.number, spec.key)
    reference = f"{spec.label[:REFERENCE_MAX - len(suffix)]}{suffix}"
    tax = fee_tax(spec.fee.amount, spec.rate, "Exclusive", spec.fee.currency)
    line = fee_line(f"{spec.label} {reference_text(spec.key)}", spec.fee.amount, tax,
                    "Exclusive", spec.account, spec.tax_type)
    element = XeroInvoice(
        type="ACCREC", contact=Contact(contact_id=spec.invoice.customer_id), line_items=[line],
        date=today, due_date=today, status="AUTHORISED", reference=reference,
        line_amount_types=amount_types_enum("Exclusive"),
        currency_code=CurrencyCode(spec.invoice.currency))
    return element, tax


def fee_invoice_ref(spec: FeeSpec, created: Any, tax: Decimal) -> str:
    """The created fee invoice checked (its total is the fee + tax); its reference."""
    if created is not None and created.total is not None and (
            Decimal(str(created.total)) != spec.fee.amount + tax):
        raise WriteVerificationError(
            f"Xero fee invoice for {spec.invoice.number}: total is not the fee",
            expected=str(spec.fee.amount + tax), actual=str(created.total))
    return f"invoice:{getattr(created, 'invoice_id', None) or spec.key}"
