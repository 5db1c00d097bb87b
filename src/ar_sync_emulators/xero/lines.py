"""Line items as a client sends them, checked and stored the way Xero does.

Updating an invoice's `LineItems` replaces the whole list. A line that names an existing
`LineItemID` keeps its identity (and its description, quantity, unit amount and account when
those are left out), but every optional field not sent is gone afterwards: no TaxType means
the account's default tax, no TaxAmount means Xero's own, no discount, no tracking, no item.
That is the harsher reading of the reports of discounts and totals changing on updates
(Xero-OpenAPI#713, xero-node#592): a client must re-send every line exactly as read.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from ar_sync.domain.money import minor_units, round_money
from ar_sync_emulators.xero.model import Organisation, ValidationFailed, XLine, XTracking
from ar_sync_emulators.xero.tax import HUNDRED, line_amount

_FOUR = Decimal("0.0001")


def amount(value: object, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(f"{what} must be a number") from exc
    if not number.is_finite():
        raise ValidationFailed(f"{what} must be a number")
    return number


def _optional(raw: dict[str, Any], name: str) -> Decimal | None:
    value = raw.get(name)
    return None if value is None else amount(value, name)


def _unit(value: Decimal, currency: str) -> Decimal:
    """UnitAmount as Xero keeps it: the currency's decimals, or up to 4 (unitdp=4)."""
    money = round_money(value, currency)
    return money if money == value else value.quantize(_FOUR)


def _tracking(org: Organisation, raw: Any) -> tuple[XTracking, ...]:
    if raw in (None, []):
        return ()
    if not isinstance(raw, list):
        raise ValidationFailed("Tracking must be a list")
    if len(raw) > 2:
        raise ValidationFailed("A line item can have a maximum of 2 tracking categories")
    out: list[XTracking] = []
    for item in raw:
        item = item or {}
        wanted_id = str(item.get("TrackingCategoryID") or "").lower()
        found = next(((name, cat) for name, cat in org.tax.tracking.items()
                      if cat[0] == wanted_id or name == item.get("Name")), None)
        if found is None:
            raise ValidationFailed(f"Tracking category '{item.get('Name') or wanted_id}' "
                                   "could not be found")
        name, (cat_id, options) = found
        option_id = str(item.get("TrackingOptionID") or "").lower()
        option = next((o for o, oid in options.items()
                       if oid == option_id or o == item.get("Option")), None)
        if option is None:
            raise ValidationFailed(f"Tracking option '{item.get('Option') or option_id}' "
                                   f"could not be found in category '{name}'")
        out.append(XTracking(cat_id, name, options[option], option))
    if len({t.category_id for t in out}) < len(out):
        raise ValidationFailed("A tracking category can be used only once on a line item")
    return tuple(out)


def parse_line(org: Organisation, raw: dict[str, Any], old: XLine | None, currency: str,
               new_id: Callable[[], str]) -> XLine:
    """One line of a request, validated against the organisation's chart, taxes and items."""
    description = str(raw.get("Description", old.description if old else "")).strip()
    if not description:
        raise ValidationFailed("Description is required for line items")
    if len(description) > 4000:
        raise ValidationFailed("Description must be 4000 characters or less")
    qty = amount(raw.get("Quantity", old.quantity if old else 1), "Quantity").quantize(_FOUR)
    rate, off = _optional(raw, "DiscountRate"), _optional(raw, "DiscountAmount")
    if rate is not None and off is not None:
        raise ValidationFailed("Only one of DiscountRate or DiscountAmount can be given")
    if rate is not None and not 0 <= rate <= HUNDRED:
        raise ValidationFailed("DiscountRate must be between 0 and 100")
    sent_amount = _optional(raw, "LineAmount")
    if "UnitAmount" in raw:
        unit = amount(raw["UnitAmount"], "UnitAmount")
    elif sent_amount is not None and qty:
        gross = sent_amount + (off or 0)
        unit = gross / qty if rate is None or rate == HUNDRED else (
            gross * HUNDRED / (HUNDRED - rate) / qty)
    elif old is not None:
        unit = old.unit_amount
    else:
        raise ValidationFailed("UnitAmount is required for line items")
    unit = _unit(unit, currency)
    expected = line_amount(qty, unit, rate, off, currency)
    if sent_amount is not None and round_money(sent_amount, currency) != expected:
        raise ValidationFailed(f"The line total {sent_amount} does not match the expected "
                               f"line total {expected}")
    if off is not None and round_money(off, currency) != off:
        raise ValidationFailed(f"DiscountAmount can have at most {minor_units(currency)} "
                               "decimal places")
    code = str(raw.get("AccountCode") or (old.account_code if old else "200"))
    account = org.tax.accounts.get(code)
    if account is None or not account.usable_on_sales():
        raise ValidationFailed("Account code '" + code + "' is not a valid code for this "
                               "document.")
    tax_type = str(raw.get("TaxType") or account.tax_type)
    tax = org.tax.rates.get(tax_type)
    if tax is None or tax.status != "ACTIVE" or not tax.revenue:
        raise ValidationFailed(f"The TaxType code '{tax_type}' does not exist or cannot be "
                               "used with this type of transaction.")
    item = raw.get("ItemCode")
    if item and str(item) not in org.tax.items:
        raise ValidationFailed(f"Item code '{item}' is not valid")
    return XLine(old.id if old else new_id(), description, qty, unit, code, tax_type, tax.rate,
                 _optional(raw, "TaxAmount"), rate, off, str(item) if item else None,
                 _tracking(org, raw.get("Tracking")))


def parse_lines(org: Organisation, data: Any, currency: str, existing: list[XLine],
                new_id: Callable[[int], str]) -> list[XLine]:
    """A request's LineItems: the invoice's new line list (it replaces the old one)."""
    if not isinstance(data, list) or not data:
        raise ValidationFailed("One or more line items must be specified")
    by_id = {line.id: line for line in existing}
    out: list[XLine] = []
    for raw in data:
        if not isinstance(raw, dict):
            raise ValidationFailed("A line item must be an object")
        old = by_id.pop(str(raw.get("LineItemID", "")).lower(), None)
        out.append(parse_line(org, raw, old, currency, lambda: new_id(len(out))))
    return out
