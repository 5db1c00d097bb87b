"""Invoice lines and totals as QuickBooks Online computes them. Pure functions, no server.

Line kinds: `SalesItemLineDetail`, `GroupLineDetail` (a bundle whose Amount is the sum of its
own sales lines), `DiscountLineDetail` (percent or fixed), `DescriptionOnly`, and the
`SubTotalLineDetail` lines QBO computes itself. Tax follows the edition (see qbo_tax):
US `TAX`/`NON` at the invoice's sales-tax rate; elsewhere a `TaxCodeRef` on every sales line
(else Fault 6000) and `GlobalTaxCalculation` TaxExcluded / TaxInclusive / NotApplicable.

Choices where Intuit's documentation is silent (the safe side, listed in the README):
- a percent discount applies to every sales line of the invoice, wherever it sits (QBO Online
  shows one transaction discount on the subtotal), so a line added later is discounted too;
- the discount is spread over the tax codes in proportion to their net amounts, and tax is
  charged after it outside the US (US: only with `ApplyTaxAfterDiscount`);
- tax is rounded once per tax rate (the TxnTaxDetail TaxLine), half up;
- lines keep the `Id` they were sent with; new lines get the next free number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ar_sync.domain.money import round_money, to_decimal
from ar_sync_emulators.quickbooks.shapes import QboFault, amount, required
from ar_sync_emulators.quickbooks.tax import Edition

SALES = "SalesItemLineDetail"
GROUP = "GroupLineDetail"
DISCOUNT = "DiscountLineDetail"
SUBTOTAL = "SubTotalLineDetail"
DESCRIPTION = "DescriptionOnly"
KINDS = (SALES, GROUP, DISCOUNT, SUBTOTAL, DESCRIPTION)
MODES = ("TaxExcluded", "TaxInclusive", "NotApplicable")


@dataclass
class _Group:
    """Sales lines sharing one tax rate: what a TxnTaxDetail TaxLine reports."""

    rate_ids: tuple[str, ...]
    rate: Decimal
    amount: Decimal = Decimal(0)  # net (exclusive) or gross (inclusive)
    lines: list[dict[str, Any]] = field(default_factory=list)


def _clean(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if v not in ("", None)}


def _sales_lines(lines: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.get("DetailType") == SALES:
            yield line
        elif line.get("DetailType") == GROUP:
            yield from (ln for ln in (line.get(GROUP) or {}).get("Line") or []
                        if ln.get("DetailType") == SALES)


def normalise_lines(lines: list[dict[str, Any]], items: set[str]) -> list[dict[str, Any]]:
    """Check each line as QBO does and give it an Id; trailing subtotal lines are dropped
    (QBO appends its own). Raises QboFault."""
    kept = [_clean(dict(line)) for line in lines]
    while kept and kept[-1].get("DetailType") == SUBTOTAL:
        kept.pop()
    if not any(ln.get("DetailType") in (SALES, GROUP, DESCRIPTION) for ln in kept):
        raise required("Line")
    used = {int(ln["Id"]) for ln in kept if str(ln.get("Id", "")).isdigit()}
    next_id = max(used, default=0) + 1
    for position, line in enumerate(kept, start=1):
        kind = line.get("DetailType")
        if kind not in KINDS:
            raise required("Line.DetailType")
        if kind == GROUP:
            inner = [_clean(dict(x)) for x in (line.get(GROUP) or {}).get("Line") or []]
            if not inner:
                raise required("GroupLineDetail.Line")
            line[GROUP] = {**line[GROUP], "Line": inner}
        for sales in ([line] if kind == SALES else
                      (line[GROUP]["Line"] if kind == GROUP else [])):
            ref = (sales.get(SALES) or {}).get("ItemRef") or {}
            if str(ref.get("value", "")) not in items:
                raise QboFault(400, "2500", "Invalid Reference Id",
                               "Invalid Reference Id : Item assigned to this transaction has "
                               f"been deleted or does not exist ({ref.get('value')})")
        if not str(line.get("Id", "")).isdigit():
            line["Id"] = str(next_id)
            next_id += 1
        line["LineNum"] = position
    return kept


def _tax_code(line: dict[str, Any], ed: Edition) -> tuple[tuple[str, ...], Decimal, str]:
    """(rate ids, rate %, code id) of a sales line; Fault 6000 / 2500 as QBO answers."""
    ref = ((line.get(SALES) or {}).get("TaxCodeRef") or {}).get("value")
    if ref in (None, ""):
        if ed.line_code_required:
            raise QboFault(400, "6000", "A business validation error has occurred while "
                           "processing your request", "Business Validation Error: Make sure "
                           f"all your transactions have a {ed.tax_word} rate before you save")
        return (), Decimal(0), "NON"
    code = ed.code(str(ref))
    if code is None or (ed.us and code.id not in ("TAX", "NON")):
        raise QboFault(400, "2500", "Invalid Reference Id",
                       f"Invalid Reference Id : TaxCode {ref} does not exist or cannot be used "
                       "on a line")
    return code.rate_ids, ed.rate_of(code), code.id


def price(inv: dict[str, Any], ed: Edition, paid: Decimal) -> None:
    """Compute every derived amount of `inv` in place: group, discount and subtotal line
    amounts, inclusive/exclusive line nets, TxnTaxDetail, TotalAmt, Balance, home amounts."""
    currency = (inv.get("CurrencyRef") or {}).get("value", ed.home_currency)
    lines: list[dict[str, Any]] = list(inv.get("Line") or [])
    while lines and lines[-1].get("DetailType") == SUBTOTAL:
        lines.pop()  # QBO's own trailing subtotal, recomputed below
    mode = "TaxExcluded" if ed.us else str(inv.get("GlobalTaxCalculation") or "TaxExcluded")
    if mode not in MODES:
        raise QboFault(400, "2010", "Invalid Enumeration",
                       f"GlobalTaxCalculation {mode!r} is not one of {', '.join(MODES)}")
    if not ed.us:
        inv["GlobalTaxCalculation"] = mode
    us_code = ed.code(str(((inv.get("TxnTaxDetail") or {}).get("TxnTaxCodeRef") or {})
                          .get("value") or ed.default_sales_code)) if ed.us else None
    groups: dict[tuple[str, ...], _Group] = {}
    for line in _sales_lines(lines):
        rate_ids, rate, code_id = _tax_code(line, ed)
        if ed.us:
            rate_ids, rate = ((us_code.rate_ids, ed.rate_of(us_code))
                              if code_id == "TAX" and us_code else ((), Decimal(0)))
        if mode == "NotApplicable":
            rate_ids, rate = (), Decimal(0)
        detail = line.setdefault(SALES, {})
        value = to_decimal(line.get("Amount", 0))
        if mode == "TaxInclusive":
            gross = (to_decimal(detail["TaxInclusiveAmt"]) if "TaxInclusiveAmt" in detail
                     else value + round_money(value * rate / 100, currency))
            detail["TaxInclusiveAmt"] = amount(gross)
            line["Amount"] = amount(gross - round_money(gross * rate / (100 + rate), currency))
            value = gross
        group = groups.setdefault(rate_ids, _Group(rate_ids, rate))
        group.amount += value
        group.lines.append(line)
    base = sum((g.amount for g in groups.values()), Decimal(0))
    discount = Decimal(0)
    running = Decimal(0)
    for line in lines:
        kind = line.get("DetailType")
        if kind == GROUP:
            inner = line[GROUP]["Line"]
            line["Amount"] = amount(sum((to_decimal(x.get("Amount", 0)) for x in inner
                                         if x.get("DetailType") == SALES), Decimal(0)))
        if kind == DISCOUNT:
            detail = line.setdefault(DISCOUNT, {})
            if detail.get("PercentBased"):
                share = to_decimal(detail.get("DiscountPercent", 0))
                line["Amount"] = amount(round_money(base * share / 100, currency))
            discount += to_decimal(line.get("Amount", 0))
        elif kind == SUBTOTAL:
            line["Amount"] = amount(running)
        elif kind in (SALES, GROUP):
            running += to_decimal(line.get("Amount", 0))
    after_discount = mode == "TaxInclusive" or not ed.us or bool(inv.get("ApplyTaxAfterDiscount"))
    tax_lines: list[dict[str, Any]] = []
    total_tax = Decimal(0)
    rates = {r.id: r.rate for r in ed.rates}
    for group in groups.values():
        taxable = group.amount
        if discount and base and after_discount:
            taxable -= round_money(discount * group.amount / base, currency)
        if mode == "TaxInclusive" and group.rate_ids:
            tax = round_money(taxable * group.rate / (100 + group.rate), currency)
            parts = [(group.rate_ids[0], group.rate, tax, taxable - tax)]
        else:
            parts = [(rid, rates[rid], round_money(taxable * rates[rid] / 100, currency),
                      taxable) for rid in group.rate_ids]
        for rate_id, percent, tax, net in parts:
            total_tax += tax
            tax_lines.append({"Amount": amount(tax), "DetailType": "TaxLineDetail",
                              "TaxLineDetail": {"TaxRateRef": {"value": rate_id},
                                                "PercentBased": True,
                                                "TaxPercent": amount(percent),
                                                "NetAmountTaxable": amount(net)}})
    detail_out: dict[str, Any] = {"TotalTax": amount(total_tax), "TaxLine": tax_lines}
    if ed.us and us_code is not None and tax_lines:
        detail_out["TxnTaxCodeRef"] = {"value": us_code.id}
    inv["TxnTaxDetail"] = detail_out
    gross_total = base - discount + (Decimal(0) if mode == "TaxInclusive" else total_tax)
    total = round_money(gross_total, currency)
    inv["Line"] = [*lines, {"Amount": amount(running), "DetailType": SUBTOTAL, SUBTOTAL: {}}]
    balance = max(Decimal(0), total - paid)
    rate = to_decimal(inv.get("ExchangeRate") or 1)
    inv["TotalAmt"], inv["Balance"] = amount(total), amount(round_money(balance, currency))
    inv["HomeTotalAmt"] = amount(round_money(total * rate, ed.home_currency))
    inv["HomeBalance"] = amount(round_money(balance * rate, ed.home_currency))
