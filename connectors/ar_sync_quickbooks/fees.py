"""Late fees on QuickBooks invoices, the pure part: which tax code the fee carries, the line
list of the sparse update, and the check that the write changed nothing but the fee.

A sparse update replaces `Line` as a whole, so every existing line goes back exactly as read
(group, discount and subtotal lines included) with the fee line before QBO's trailing
subtotal. After the write the invoice must show every other line unchanged and a total risen
by exactly the fee plus its tax; anything else is a WriteVerificationError with both figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ar_sync.domain.errors import PlatformValidationError, WriteVerificationError
from ar_sync.domain.money import quantum, round_money, to_decimal
from ar_sync_quickbooks.mapping import fee_line as fee_line
from ar_sync_quickbooks.mapping import has_marker

SUBTOTAL = "SubTotalLineDetail"
US_CODES = ("TAX", "NON")
# The code a fee carries by default: out of scope of VAT/GST first (a late-payment fee is
# compensation, not a supply, in the UK, Canada and Australia), then zero-rated or exempt.
NO_TAX_NAMES = ("no vat", "out of scope", "outside the scope", "0.0% z", "zero-rated",
                "zero rated", "gst free", "gst-free", "exempt")


@dataclass(frozen=True)
class FeeTax:
    """The TaxCodeRef a fee line carries and the sales rate it charges (percent, None when
    QBO decides it: a US `TAX` line takes the invoice's own rate)."""

    code: str
    rate: Decimal | None


def _rate_of(code: Mapping[str, Any], rates: Mapping[str, Decimal]) -> Decimal:
    details = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
    return sum((rates.get(str((d.get("TaxRateRef") or {}).get("value")), Decimal(0))
                for d in details), Decimal(0))


def choose_fee_tax(wanted: str | None, *, us: bool, codes: Iterable[Mapping[str, Any]],
                   rates: Mapping[str, Decimal]) -> FeeTax:
    """The rule's `tax:` (a code's Name or Id) or the company's no-tax default."""
    if us:
        choice = (wanted or "NON").upper()
        if choice not in US_CODES:
            raise PlatformValidationError(f"tax {wanted!r} on a US QuickBooks company: use "
                                          "TAX or NON (the rate comes from the invoice)")
        return FeeTax(choice, Decimal(0) if choice == "NON" else None)
    active = [c for c in codes if c.get("Active", True) and not c.get("Hidden")]
    if wanted:
        for code in active:
            if wanted.strip().lower() in (str(code.get("Name", "")).lower(), str(code.get("Id"))):
                return FeeTax(str(code["Id"]), _rate_of(code, rates))
        names = ", ".join(sorted(str(c.get("Name")) for c in active))
        raise PlatformValidationError(f"tax code {wanted!r} not found in this QuickBooks "
                                      f"company (it has: {names})")
    free = [c for c in active if _rate_of(c, rates) == 0
            and (c.get("SalesTaxRateList") or {}).get("TaxRateDetail")]
    for name in NO_TAX_NAMES:
        for code in free:
            if name in str(code.get("Name", "")).lower():
                return FeeTax(str(code["Id"]), Decimal(0))
    if free:
        return FeeTax(str(free[0]["Id"]), Decimal(0))
    raise PlatformValidationError("no zero-rate or out-of-scope tax code in this QuickBooks "
                                  "company: name one with `tax:` on the late-fee rule")


def lines_with_fee(raw: Mapping[str, Any], fee: dict[str, Any]) -> list[dict[str, Any]]:
    """Every line exactly as read, the fee before QBO's trailing subtotal line(s)."""
    lines = [dict(line) for line in raw.get("Line") or []]
    at = len(lines)
    while at and lines[at - 1].get("DetailType") == SUBTOTAL:
        at -= 1
    return [*lines[:at], fee, *lines[at:]]


def discounted(raw: Mapping[str, Any]) -> bool:
    """A discount would shift with a new line: a percent one takes its share of the fee, a
    fixed one is spread over the tax codes in proportion to their amounts, so another line's
    tax moves. Such invoices get their fee on a separate invoice."""
    return any(line.get("DetailType") == "DiscountLineDetail"
               and to_decimal(line.get("Amount") or 0) != 0
               for line in raw.get("Line") or [])


def _canon(value: Any) -> Any:
    """JSON compared by meaning: numbers as Decimal (2 == 2.0), empty values dropped."""
    if isinstance(value, Mapping):
        return {k: _canon(v) for k, v in value.items() if v not in ("", None, [], {})}
    if isinstance(value, list):
        return [_canon(v) for v in value]
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return to_decimal(value).normalize()
    return value


def _kept_lines(raw: Mapping[str, Any], key: str | None) -> list[Any]:
    lines = list(raw.get("Line") or [])
    while lines and lines[-1].get("DetailType") == SUBTOTAL:
        lines.pop()
    return [_canon(line) for line in lines
            if key is None or not has_marker(line.get("Description"), key)]


def _money(raw: Mapping[str, Any], field: str) -> Decimal:
    return to_decimal(raw.get(field) or 0)


def _tax(raw: Mapping[str, Any]) -> Decimal:
    return to_decimal((raw.get("TxnTaxDetail") or {}).get("TotalTax") or 0)


def invoice_rate(raw: Mapping[str, Any]) -> Decimal | None:
    """A US invoice's sales-tax rate: the sum of its TaxLine percents (None if it has none)."""
    lines = (raw.get("TxnTaxDetail") or {}).get("TaxLine") or []
    if not lines:
        return None
    return sum((to_decimal((t.get("TaxLineDetail") or {}).get("TaxPercent") or 0)
                for t in lines), Decimal(0))


def verify_fee_line(before: Mapping[str, Any], after: Mapping[str, Any], fee: Decimal,
                    rate: Decimal | None, key: str, currency: str) -> None:
    """Every other line unchanged field by field; total and balance up by fee + its tax."""
    label = f"invoice {before.get('DocNumber') or before.get('Id')}"
    old_lines, new_lines = _kept_lines(before, None), _kept_lines(after, key)
    if old_lines != new_lines:
        changed = [n for n, (a, b) in enumerate(zip(old_lines, new_lines, strict=False), 1)
                   if a != b] or [min(len(old_lines), len(new_lines)) + 1]
        raise WriteVerificationError(f"{label}: adding the late fee changed line(s) "
                                     f"{', '.join(map(str, changed))}",
                                     expected=f"{len(old_lines)} lines as before",
                                     actual=f"{len(new_lines)} lines, line {changed[0]} "
                                            "differs")
    _verify_amounts(label, _money(before, "TotalAmt"), _money(after, "TotalAmt"),
                    _tax(before), _tax(after), fee, rate, currency)
    paid_before = _money(before, "TotalAmt") - _money(before, "Balance")
    paid_after = _money(after, "TotalAmt") - _money(after, "Balance")
    if paid_before != paid_after:
        raise WriteVerificationError(f"{label}: the balance did not rise with the fee",
                                     expected=f"balance {_money(before, 'Balance') + fee}",
                                     actual=f"balance {_money(after, 'Balance')}")


def verify_fee_invoice(created: Mapping[str, Any], fee: Decimal, rate: Decimal | None,
                       currency: str) -> None:
    """A separate fee invoice totals the fee plus its tax, nothing else."""
    _verify_amounts(f"fee invoice {created.get('DocNumber') or created.get('Id')}",
                    Decimal(0), _money(created, "TotalAmt"), Decimal(0), _tax(created), fee,
                    rate, currency)


def _verify_amounts(label: str, total_before: Decimal, total_after: Decimal,
                    tax_before: Decimal, tax_after: Decimal, fee: Decimal,
                    rate: Decimal | None, currency: str) -> None:
    tax = tax_after - tax_before
    if rate == 0 and tax != 0:
        raise WriteVerificationError(f"{label}: tax was charged on a no-tax late fee",
                                     expected="tax +0", actual=f"tax {tax:+}")
    if rate is not None and rate > 0:
        due = round_money(fee * rate / 100, currency)
        if abs(tax - due) > quantum(currency):  # QBO rounds tax once per rate, not per line
            raise WriteVerificationError(f"{label}: the fee's tax is not {rate}% of the fee",
                                         expected=f"tax +{due}", actual=f"tax {tax:+}")
    if total_after - total_before != fee + tax:
        raise WriteVerificationError(f"{label}: the total did not rise by exactly the fee",
                                     expected=f"total {total_before + fee + tax} "
                                              f"({total_before} + fee {fee} + tax {tax})",
                                     actual=f"total {total_after}")
