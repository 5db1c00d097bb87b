"""Pure translation between QuickBooks Online JSON / SDK objects and ar-sync's models.

No HTTP here: fee lines, marker search, status rules and the malformed-invoice checks are
plain functions, tested without a server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import ValidationError
from quickbooks.objects.invoice import Invoice as QBInvoice

from ar_sync.domain.models import Invoice, InvoiceStatus
from ar_sync.domain.money import normalise_currency, to_decimal
from ar_sync.domain.pause_markers import from_lines
from ar_sync.domain.references import key_marker, key_references, mentions_key, reference_text

PLATFORM = "quickbooks"
LATE_FEE_ITEM = "Late fee"
MARKER_PREFIX = "ar-sync:"
DISPUTED_TAG = "#disputed"
FEE_FOR = "[invoice:{id}]"  # in a fee invoice's PrivateNote: which invoice the fee is for
_FEE_FOR_RE = re.compile(r"\[invoice:(\w+)\]")
NOTE_MAX = 2000  # an Attachable note holds at most 2000 characters (Intuit's limit on Note)
# The customer's payment link (InvoiceLink) comes only with a read that asks for it, one call
# an invoice (links.py): a fetch leaves this lazy reference in payment_link for an invoice that
# takes online payments, and only the invoices about to be e-mailed spend the read. Notes are
# private (PrivateNote, Attachable): the reference is dropped from their text, as before.
LAZY_LINK = "quickbooks-invoice-link:{invoice_id}"
LAZY_LINK_RE = re.compile(r"quickbooks-invoice-link:(?P<id>\w+)")


class MalformedInvoice(ValueError):
    """A platform invoice ar-sync cannot trust (skipped with a warning, the run goes on)."""


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def query_time(moment: datetime) -> str:
    """A literal for `MetaData.LastUpdatedTime >= '...'` (UTC, whole seconds)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def checkpoint_from(response_time: str | None, fallback: datetime) -> datetime:
    """The server's clock at the start of a fetch, floored to the second: QBO stamps
    LastUpdatedTime in whole seconds, so `>=` this value misses nothing changed later."""
    moment = parse_time(response_time) if response_time else fallback
    return moment.replace(microsecond=0)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def has_marker(text: str | None, key: str) -> bool:
    """`key` in text: the short customer reference, or the full marker (internal notes, and
    fee lines written by earlier versions)."""
    return mentions_key(text, key)


def is_fee_line(line: Mapping[str, Any]) -> bool:
    """A late fee line: carries an ar-sync reference (or old marker) or uses the Late fee item."""
    if key_references(line.get("Description")):
        return True
    detail = line.get("SalesItemLineDetail") or {}
    ref = detail.get("ItemRef") or {}
    return str(ref.get("name") or "").strip().lower() == LATE_FEE_ITEM.lower()


def item_lines(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The invoice's own lines, without the subtotal line QBO computes."""
    return [dict(line) for line in raw.get("Line") or []
            if line.get("DetailType") != "SubTotalLineDetail"]


def fee_lines_total(raw: Mapping[str, Any]) -> Decimal:
    return sum((to_decimal(line.get("Amount", 0)) for line in item_lines(raw)
                if is_fee_line(line)), Decimal(0))


def fee_target(raw: Mapping[str, Any]) -> str | None:
    """For a separate fee invoice: the id of the invoice the fee was charged on."""
    note = str(raw.get("PrivateNote") or "")
    if MARKER_PREFIX not in note:
        return None
    found = _FEE_FOR_RE.search(note)
    return found.group(1) if found else None


def find_line_with_marker(raw: Mapping[str, Any], key: str) -> str | None:
    for line in item_lines(raw):
        if has_marker(line.get("Description"), key):
            return f"{raw.get('Id')}:line:{line.get('Id', '')}"
    return None


def fee_line(amount: Decimal, description: str, item_id: str, item_name: str,
             tax_code: str | None = None) -> dict[str, Any]:
    """A sales line for a fee (or its credit); `tax_code` is its TaxCodeRef (required
    outside the US: see fees.choose_fee_tax)."""
    detail: dict[str, Any] = {"ItemRef": {"value": item_id, "name": item_name},
                              "Qty": 1, "UnitPrice": amount}
    if tax_code is not None:
        detail["TaxCodeRef"] = {"value": tax_code}
    return {"Amount": amount, "Description": description,
            "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}


_DECIMAL_TAG = re.compile(r'"@@ar-sync-decimal:(-?[0-9]+(?:\.[0-9]+)?(?:E[+-]?[0-9]+)?)"')


def dumps(body: Any) -> str:
    """JSON with Decimals written as exact JSON numbers (never through float)."""

    def tag(value: object) -> str:
        if isinstance(value, Decimal):
            return f"@@ar-sync-decimal:{value}"
        raise TypeError(f"not JSON serializable: {type(value).__name__}")

    return _DECIMAL_TAG.sub(r"\1", json.dumps(body, default=tag))


def fee_description(label: str, key: str) -> str:
    """A fee line as the customer reads it: the label and the short reference, no key."""
    return f"{label} {reference_text(key)}"


def fee_invoice_note(label: str, number: str, invoice_id: str, key: str) -> str:
    return f"Late fee: {label} on invoice {number} {FEE_FOR.format(id=invoice_id)} " \
           f"{key_marker(key)}"


def payment_link(sdk: QBInvoice) -> str | None:
    """The invoice's link as read (with include=invoiceLink), else the lazy reference when it
    takes online payments (card or ACH), else None: QuickBooks gives no link then."""
    link = str(sdk.InvoiceLink or "")
    if link.startswith(("https://", "http://")):
        return link
    if sdk.AllowOnlineCreditCardPayment or sdk.AllowOnlineACHPayment:
        return LAZY_LINK.format(invoice_id=sdk.Id)
    return None


def note_text(text: str, key: str) -> str:
    """The note as stored: the text (cut to fit) and the key marker on its own line."""
    marker = key_marker(key)
    text = LAZY_LINK_RE.sub("", text)
    room = NOTE_MAX - len(marker) - 2
    body = text if len(text) <= room else text[: room - 1] + "…"
    return f"{body}\n\n{marker}"


def _status(raw: Mapping[str, Any], balance: Decimal, total: Decimal) -> InvoiceStatus:
    if balance > 0:
        return InvoiceStatus.OPEN
    note = str(raw.get("PrivateNote") or "").strip().lower()
    if total == 0 and note.startswith("voided"):
        return InvoiceStatus.VOIDED
    return InvoiceStatus.PAID


def _date(text: object, what: str) -> date:
    if not text:
        raise MalformedInvoice(f"missing {what}")
    try:
        return date.fromisoformat(str(text))
    except ValueError as exc:
        raise MalformedInvoice(f"bad {what} {text!r}") from exc


def to_invoice(raw: Mapping[str, Any], *, realm: str, email: str | None = None,
               extra_fees: Decimal = Decimal(0),
               payments: tuple[tuple[date, Decimal], ...] | None = None) -> Invoice:
    """Map one QBO invoice (JSON as received) to the model; MalformedInvoice if it is unfit.

    The raw JSON is first read through the SDK's `Invoice.from_json`, so what ar-sync relies on
    is exactly what python-quickbooks understands.
    """
    try:
        sdk = QBInvoice.from_json({k: v for k, v in raw.items() if v is not None})
    except (TypeError, AttributeError, KeyError) as exc:
        raise MalformedInvoice(f"unreadable invoice JSON ({type(exc).__name__})") from exc
    currency_ref = sdk.CurrencyRef
    try:
        currency = normalise_currency(str(currency_ref.value if currency_ref else ""))
    except ValueError as exc:
        raise MalformedInvoice(f"unknown currency {getattr(currency_ref, 'value', None)!r}") \
            from exc
    try:
        total, balance = to_decimal(sdk.TotalAmt), to_decimal(sdk.Balance)
    except ValueError as exc:
        raise MalformedInvoice(str(exc)) from exc
    if balance < 0:
        raise MalformedInvoice(f"negative balance {balance}")
    if sdk.CustomerRef is None or not sdk.CustomerRef.value:
        raise MalformedInvoice("missing CustomerRef")
    meta = sdk.MetaData
    if meta is None or not meta.LastUpdatedTime:
        raise MalformedInvoice("missing MetaData.LastUpdatedTime")
    bill_email = sdk.BillEmail.Address if sdk.BillEmail is not None else None
    note = str(sdk.PrivateNote or "")
    try:
        return Invoice(
            platform=PLATFORM, tenant=realm, id=str(sdk.Id), number=str(sdk.DocNumber or sdk.Id),
            customer_id=str(sdk.CustomerRef.value), customer_name=str(sdk.CustomerRef.name or ""),
            customer_email=bill_email or email,
            issue_date=_date(sdk.TxnDate, "TxnDate"), due_date=_date(sdk.DueDate, "DueDate"),
            currency=currency, total=total, balance=balance,
            status=_status(raw, balance, total), version=str(sdk.SyncToken),
            updated_at=parse_time(str(meta.LastUpdatedTime)),
            late_fees_charged=fee_lines_total(raw) + extra_fees, fee_lines=fee_lines_total(raw),
            disputed=DISPUTED_TAG in note.lower(), payment_link=payment_link(sdk),
            # `ar-sync: pause …` in the private note (ar_sync.domain.pause_markers), dated by the
            # invoice's last change: QBO keeps no date per line of the note
            pause=from_lines([(parse_time(str(meta.LastUpdatedTime)).date(), note)],
                             invoice_id=str(sdk.Id)),
            payments=payments,
        )
    except ValidationError as exc:
        raise MalformedInvoice(exc.errors()[0].get("msg", "invalid")) from exc


def label_of(raw: Mapping[str, Any]) -> str:
    return f"{raw.get('DocNumber') or '?'} (Id {raw.get('Id') or '?'})"


def map_invoices(raws: Iterable[Mapping[str, Any]], *, realm: str,
                 emails: Mapping[str, str | None],
                 payments: Mapping[str, tuple[tuple[date, Decimal], ...]] | None = None,
                 ) -> tuple[list[Invoice], list[str]]:
    """Good invoices and one warning per skipped malformed one; ar-sync's own fee invoices
    add their amount to the invoice they were charged on and are not chased themselves
    (no reminders, no fee on a fee)."""
    raws = list(raws)
    linked: dict[str, Decimal] = {}
    for raw in raws:
        target = fee_target(raw)
        if target is not None:
            linked[target] = linked.get(target, Decimal(0)) + to_decimal(raw.get("TotalAmt", 0))
    out: list[Invoice] = []
    warnings: list[str] = []
    for raw in raws:
        if fee_target(raw) is not None:
            continue
        customer = str((raw.get("CustomerRef") or {}).get("value", ""))
        try:
            out.append(to_invoice(raw, realm=realm, email=emails.get(customer),
                                  extra_fees=linked.get(str(raw.get("Id")), Decimal(0)),
                                  payments=(payments or {}).get(str(raw.get("Id")))))
        except (MalformedInvoice, ValueError, TypeError, AttributeError) as exc:
            warnings.append(f"skipped QuickBooks invoice {label_of(raw)}: {exc}")
    return out, warnings


def needs_customer_email(raw: Mapping[str, Any]) -> bool:
    return not ((raw.get("BillEmail") or {}).get("Address"))
