"""Pure helpers for a Xero late fee: copy lines exactly as read, the fee's tax, the check.

Xero replaces an invoice's whole line list on update and recomputes what is not sent (a line
without TaxType takes the account's default tax, one without its discount loses it, and the
invoice's LineAmountTypes falls back to Exclusive). So every existing line goes back with
every field Xero returned (Xero-OpenAPI `LineItem`), and after the write the answer is
compared field by field: a fee must change nothing but the total, by the fee (+ its tax).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from xero_python.accounting import LineAmountTypes, LineItem, LineItemTracking

from ar_sync.domain.errors import WriteVerificationError
from ar_sync.domain.money import round_money, to_decimal

HUNDRED = Decimal(100)
# Each Xero region's "no tax" code (developer docs, Tax Rates): a fee carries it unless the
# rules name a tax. AU has no NONE; BAS Excluded keeps the fee off the BAS.
NO_TAX_TYPE = {"AU": "BASEXCLUDED"}
DEFAULT_NO_TAX = "NONE"
# Refusals of a line edit that a separate fee invoice avoids.
EDIT_REFUSALS = ("payment", "credit note allocated", "lock date")


@dataclass
class LineSet:
    """An invoice's lines as last read, and how their amounts treat tax."""

    lines: list[Any] = field(default_factory=list)  # xero-python LineItem models
    amount_types: str = "Exclusive"


@dataclass(frozen=True)
class OrgFacts:
    """What a run needs from GET /Organisation (read once per session)."""

    version: str = "GLOBAL"
    lock_date: date | None = None  # the later of PeriodLockDate and EndOfYearLockDate
    known: bool = True  # False when /Organisation could not be read (no settings scope)

    @property
    def no_tax_type(self) -> str:
        return NO_TAX_TYPE.get(self.version, DEFAULT_NO_TAX)

    def locks(self, day: date) -> bool:
        return self.lock_date is not None and day <= self.lock_date


def _text(value: object) -> str:
    return "" if value is None else str(getattr(value, "value", value))


def _dec(value: object) -> Decimal | None:
    return None if value is None else to_decimal(value)


def copy_line(li: Any) -> LineItem:
    """An existing line exactly as read: every field Xero lets a client send back."""
    tracking = [LineItemTracking(tracking_category_id=t.tracking_category_id,
                                 tracking_option_id=t.tracking_option_id, name=t.name,
                                 option=t.option) for t in (li.tracking or [])]
    line = LineItem(line_item_id=li.line_item_id, description=li.description,
                    quantity=li.quantity, unit_amount=li.unit_amount,
                    account_code=li.account_code, tax_type=li.tax_type,
                    tax_amount=li.tax_amount, line_amount=li.line_amount, tracking=tracking)
    if li.item_code:
        line.item_code = li.item_code
    if li.discount_rate is not None:
        line.discount_rate = li.discount_rate
    if li.discount_amount is not None:
        line.discount_amount = li.discount_amount
    return line


def snapshot(li: Any) -> tuple[object, ...]:
    """The fields of a line that must not change, comparable across two reads."""
    return (str(li.line_item_id), _text(li.description), _dec(li.quantity),
            _dec(li.unit_amount), _text(li.item_code), _text(li.account_code),
            _text(li.tax_type), _dec(li.tax_amount), _dec(li.line_amount),
            _dec(li.discount_rate), _dec(li.discount_amount),
            tuple(sorted((str(t.tracking_category_id), str(t.tracking_option_id))
                         for t in (li.tracking or []))))


def fee_tax(fee: Decimal, rate: Decimal, amount_types: str, currency: str) -> Decimal:
    """The tax a fee adds on top (a NoTax invoice carries none)."""
    if amount_types == "NoTax" or rate == 0:
        return round_money(Decimal(0), currency)
    return round_money(fee * rate / HUNDRED, currency)


def fee_line(description: str, fee: Decimal, tax: Decimal, amount_types: str,
             account_code: str, tax_type: str) -> LineItem:
    """The fee line: its amount includes the tax when the invoice's amounts do."""
    unit = fee + tax if amount_types == "Inclusive" else fee
    return LineItem(description=description, quantity=Decimal(1), unit_amount=unit,
                    account_code=account_code, tax_type=tax_type)


def fee_invoice_key(key: str) -> str:
    """The Idempotency-Key of a fee invoice: derived from the action's key, so distinct
    from the key of the line edit it may replace, and the same on every retry."""
    return f"{key}-fee-invoice"


def amount_types_of(value: object) -> str:
    text = _text(value)
    return text if text in ("Exclusive", "Inclusive", "NoTax") else "Exclusive"


def amount_types_enum(value: str) -> LineAmountTypes:
    return LineAmountTypes(value)


def verify(number: str, before_total: Decimal, kept: list[Any], after: Any,
           increase: Decimal) -> None:
    """After the write: the total rose by exactly `increase` and every kept line is as it was.

    Raises WriteVerificationError with both figures otherwise (the write did happen)."""
    after_total = to_decimal(after.total or 0)
    if after_total != before_total + increase:
        raise WriteVerificationError(
            f"Xero invoice {number}: the total did not rise by exactly the fee",
            expected=str(before_total + increase), actual=str(after_total))
    now = {str(li.line_item_id): snapshot(li) for li in (after.line_items or [])}
    for li in kept:
        was, line_id = snapshot(li), str(li.line_item_id)
        if now.get(line_id) != was:
            raise WriteVerificationError(
                f"Xero invoice {number}: line {line_id} changed with the fee",
                expected=repr(was), actual=repr(now.get(line_id)))
