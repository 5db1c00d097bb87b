"""Pure translation between Xero's invoices (xero-python models) and ar-sync's Invoice.

No I/O here: the connector feeds raw page JSON in, gets Invoices and warnings out. Each invoice
is deserialised on its own, so one malformed invoice is skipped with a warning naming it
instead of failing the whole page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from xero_python.accounting import AccountingApi
from xero_python.api_client import ModelFinder
from xero_python.api_client.deserializer import deserialize

from ar_sync.domain.models import Invoice, InvoiceStatus
from ar_sync.domain.money import UnknownCurrencyError, normalise_currency, to_decimal
from ar_sync.domain.references import key_references, reference_text
from ar_sync_xero.fee_lines import LineSet, amount_types_of

PLATFORM = "xero"
DISPUTE_TAG = "#disputed"
# A fee invoice's Reference (customer-visible): "<label> for <invoice number> (ref. AR-…)";
# earlier versions wrote "<label> for <invoice number> | ar-sync:<key>", still recognised.
FEE_REFERENCE = "{label} for {number} {ref}"
_FEE_REF = re.compile(r" for (?P<number>\S+) (?:\| ar-sync:(?P<key>[A-Za-z0-9_\-]+)"
                      r"|\(ref\. (?P<ref>AR-[0-9A-Z]{1,8})\))")
# Online invoice URLs cost one call each; the fetch puts this lazy reference in payment_link
# and add_note swaps it for the real URL only when a rendered note actually uses it.
LAZY_LINK = "xero-online-invoice:{invoice_id}"
LAZY_LINK_RE = re.compile(r"xero-online-invoice:(?P<id>[0-9a-fA-F-]{36})")

_STATUS = {"AUTHORISED": InvoiceStatus.OPEN, "SUBMITTED": InvoiceStatus.OPEN,
           "PAID": InvoiceStatus.PAID, "VOIDED": InvoiceStatus.VOIDED,
           "DELETED": InvoiceStatus.VOIDED, "DRAFT": InvoiceStatus.DRAFT}
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")

_MODELS = ModelFinder(AccountingApi.models_module)  # no ApiClient: that would set defaults


class MalformedInvoice(ValueError):
    """An invoice the platform sent that ar-sync cannot trust; skipped with a warning."""


@dataclass
class Page:
    """One page of GET /Invoices, mapped."""

    invoices: list[Invoice] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: dict[str, LineSet] = field(default_factory=dict)  # invoice id -> its lines
    fees_for: dict[str, Decimal] = field(default_factory=dict)  # parent number -> fee total
    server_time: datetime | None = None
    page_count: int | None = None
    raw_count: int = 0


def parse_ms_date(value: object) -> datetime | None:
    """Xero's `/Date(ms+zzzz)/` as an aware UTC datetime (the offset is informational)."""
    m = _MS_DATE.match(str(value or ""))
    if m is None:
        return None
    return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _value(enum_or_str: object) -> str:
    return _text(getattr(enum_or_str, "value", enum_or_str))


def fee_reference(number: str, key: str, label: str = "") -> str:
    """A fee invoice's Reference: the parent's number and the short reference, no key."""
    return FEE_REFERENCE.format(label=label, number=number, ref=reference_text(key))


def fee_parent(reference: str) -> tuple[str, str] | None:
    """(parent invoice number, key or short reference) if the Reference marks an ar-sync
    fee invoice."""
    m = _FEE_REF.search(reference)
    return (m.group("number"), m.group("key") or m.group("ref")) if m else None


def marker_keys(text: str) -> list[str]:
    """The keys (old full markers) and short references a text carries."""
    return key_references(text)


def fee_lines_total(lines: Iterable[Any], amount_types: str = "Exclusive", *,
                    gross: bool = False) -> Decimal:
    """Late fees already on the invoice: the lines whose description carries a key marker.
    Net of their tax (what the rules charged), or `gross`: what they add to the balance."""
    total = Decimal(0)
    for line in lines or ():
        if marker_keys(_text(getattr(line, "description", ""))):
            total += to_decimal(getattr(line, "line_amount", 0) or 0)
            tax = to_decimal(getattr(line, "tax_amount", 0) or 0)
            if amount_types == "Inclusive" and not gross:
                total -= tax
            elif amount_types == "Exclusive" and gross:
                total += tax
    return total


def payments_of(model: Any) -> tuple[tuple[date, Decimal], ...]:
    """The customer's payments on the invoice, (day, amount in the invoice's currency), as
    Xero lists them on the invoice (`Payments`: PaymentID, Date, Amount). Left out, on the safe
    side (interest can then only be under-charged): a payment marked DELETED, credit notes
    (a waiver of our own fee is one), prepayments and overpayments (their Date is the
    prepayment's, not the allocation's)."""
    out: list[tuple[date, Decimal]] = []
    for payment in getattr(model, "payments", None) or ():
        if _value(getattr(payment, "status", None)).upper() == "DELETED":
            continue
        day, amount = getattr(payment, "date", None), getattr(payment, "amount", None)
        if day is None or amount is None or to_decimal(amount) <= 0:
            continue
        out.append((_as_date(day), to_decimal(amount)))
    return tuple(sorted(out))


def to_invoice(raw: Mapping[str, Any], tenant: str) -> tuple[Invoice, LineSet]:
    """Map one raw invoice (Xero JSON) to an Invoice and its SDK line items.

    Raises MalformedInvoice with a message naming the invoice when it cannot be trusted.
    """
    label = f"{raw.get('InvoiceNumber') or '?'} ({raw.get('InvoiceID') or 'no id'})"
    try:
        model = deserialize("Invoice", dict(raw), _MODELS)
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedInvoice(f"invoice {label}: not a valid Xero invoice ({exc})") from exc
    if not model.invoice_id:
        raise MalformedInvoice(f"invoice {label}: no InvoiceID")
    if model.due_date is None:
        raise MalformedInvoice(f"invoice {label}: missing DueDate")
    if model.date is None:
        raise MalformedInvoice(f"invoice {label}: missing Date")
    try:
        currency = normalise_currency(_value(model.currency_code))
    except UnknownCurrencyError as exc:
        raise MalformedInvoice(
            f"invoice {label}: unknown currency {_value(model.currency_code)!r}") from exc
    total = to_decimal(model.total if model.total is not None else 0)
    due = to_decimal(model.amount_due if model.amount_due is not None else 0)
    if due < 0 or total < 0:
        raise MalformedInvoice(f"invoice {label}: negative AmountDue {due} or Total {total}")
    status = _STATUS.get(_text(model.status).upper())
    if status is None:
        raise MalformedInvoice(f"invoice {label}: unknown Status {model.status!r}")
    updated = model.updated_date_utc
    if not isinstance(updated, datetime):
        raise MalformedInvoice(f"invoice {label}: missing UpdatedDateUTC")
    contact = model.contact
    if contact is None or not contact.contact_id:
        raise MalformedInvoice(f"invoice {label}: no Contact")
    lines = list(model.line_items or [])
    amount_types = amount_types_of(model.line_amount_types)
    reference = _text(model.reference)
    try:
        invoice = Invoice(
            platform=PLATFORM, tenant=tenant, id=str(model.invoice_id),
            number=_text(model.invoice_number) or str(model.invoice_id),
            customer_id=str(contact.contact_id), customer_name=_text(contact.name),
            customer_email=_text(contact.email_address) or None,
            issue_date=_as_date(model.date), due_date=_as_date(model.due_date),
            currency=currency, total=total, balance=due, status=status,
            updated_at=(updated if updated.tzinfo else updated.replace(tzinfo=UTC)
                        ).astimezone(UTC),
            late_fees_charged=fee_lines_total(lines, amount_types),
            fee_lines=fee_lines_total(lines, amount_types, gross=True),
            disputed=DISPUTE_TAG in reference.lower(),
            payment_link=LAZY_LINK.format(invoice_id=model.invoice_id),
            paid_at=_as_date(model.fully_paid_on_date) if model.fully_paid_on_date else None,
            payments=payments_of(model) if raw.get("Payments") is not None else None,
        )
    except ValueError as exc:
        raise MalformedInvoice(f"invoice {label}: {exc}") from exc
    return invoice, LineSet(lines, amount_types)


def _as_date(value: date | datetime) -> date:
    """Xero dates are the organisation's calendar dates sent as midnight UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    return value


def map_page(payload: Mapping[str, Any], tenant: str) -> Page:
    """A GET /Invoices answer, mapped: good invoices, warnings, fee invoices, server time."""
    page = Page(server_time=parse_ms_date(payload.get("DateTimeUTC")))
    pagination = payload.get("pagination") or {}
    if isinstance(pagination, Mapping) and pagination.get("pageCount") is not None:
        page.page_count = int(pagination["pageCount"])
    raws = payload.get("Invoices") or []
    page.raw_count = len(raws)
    for raw in raws:
        try:
            invoice, lines = to_invoice(raw, tenant)
        except MalformedInvoice as exc:
            page.warnings.append(f"skipped {exc}")
            continue
        parent = fee_parent(_text(raw.get("Reference")))
        if parent is not None:  # an ar-sync fee invoice: counted on its parent, not chased
            page.fees_for[parent[0]] = page.fees_for.get(parent[0], Decimal(0)) + invoice.total
            continue
        page.invoices.append(invoice)
        page.lines[invoice.id] = lines
    return page


def with_fees(invoices: list[Invoice], fees_for: Mapping[str, Decimal]) -> list[Invoice]:
    """Add the totals of fee invoices seen in the same fetch to their parents' late fees."""
    if not fees_for:
        return invoices
    return [inv.model_copy(update={"late_fees_charged": inv.late_fees_charged
                                   + fees_for.get(inv.number, Decimal(0))})
            if inv.number in fees_for else inv for inv in invoices]


def if_modified_since(since: datetime) -> str:
    """The header value: UTC, whole seconds rounded down (a little early is safe, late is not)."""
    moment = since.astimezone(UTC) if since.tzinfo else since
    return moment.replace(microsecond=0, tzinfo=None).isoformat()
