"""Currencies and rounding: every amount is a Decimal in the currency's minor units.

Kept apart from the models so fee maths can use it without pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 active codes whose minor unit is not 2 (the standard's "E" column).
_MINOR_UNITS_NOT_TWO: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}

# ISO 4217 active currency codes (funds and precious metals left out).
ISO_4217_CODES: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
    FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD
    JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT
    MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG
    QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS
    TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG
    XOF XPF YER ZAR ZMW ZWG
    """.split()
)


# The largest amount a rules file may give, in the currency's smallest unit: 10^11 minor units
# is 1,000,000,000.00 USD, 100,000,000,000 JPY, 100,000,000.000 BHD — above any real fee or
# threshold, far below what Decimal arithmetic or a platform's amount field would choke on.
# `amount: 1e400` (text to YAML, a finite Decimal) used to validate and then be charged.
MAX_RULE_MINOR_UNITS = 10**11


class UnknownCurrencyError(ValueError):
    """A currency code that is not an active ISO 4217 code."""


def normalise_currency(code: str) -> str:
    """Upper-case and check an ISO 4217 code; raise UnknownCurrencyError otherwise."""
    upper = code.strip().upper()
    if upper not in ISO_4217_CODES:
        raise UnknownCurrencyError(f"unknown currency code {code!r} (expected an ISO 4217 code)")
    return upper


def minor_units(currency: str) -> int:
    """Number of decimals the currency is written with: JPY 0, USD 2, BHD 3."""
    return _MINOR_UNITS_NOT_TWO.get(normalise_currency(currency), 2)


def quantum(currency: str) -> Decimal:
    """The smallest amount of the currency, as a Decimal exponent (e.g. Decimal('0.01'))."""
    return Decimal(1).scaleb(-minor_units(currency))


def max_rule_amount(currency: str | None) -> Decimal:
    """The largest amount a rules file may give in `currency`; without one (a bare number
    that applies to whatever currency an invoice is in) the strictest: 10,000,000."""
    units = minor_units(currency) if currency else max(_MINOR_UNITS_NOT_TWO.values())
    return Decimal(MAX_RULE_MINOR_UNITS).scaleb(-units)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit (commercial rounding, what invoices use)."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def to_decimal(value: object) -> Decimal:
    """Convert a platform's number to Decimal without passing through binary float."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # JSON decoders hand us floats; repr() is the shortest string that round-trips,
        # so "12.1" stays 12.1 and never becomes 12.0999999...
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"not an amount: {value!r}") from exc
    raise ValueError(f"not an amount: {value!r}")


@dataclass(frozen=True, slots=True)
class Amounts:
    """An amount given in the rules file: one number (in the invoice's own currency) or a
    number per currency ({USD: 10, GBP: 8}); a currency not listed has no amount."""

    default: Decimal | None = None
    per_currency: Mapping[str, Decimal] = field(default_factory=dict)

    def for_currency(self, currency: str) -> Decimal | None:
        value = self.per_currency.get(currency)
        return self.default if value is None else value

    def describe(self) -> str:
        if self.default is not None:
            return f"{self.default}"
        return ", ".join(f"{v} {k}" for k, v in sorted(self.per_currency.items()))


def parse_amounts(value: object) -> Amounts:
    """Build Amounts from YAML: a non-negative number, or a mapping of currency to number."""
    if isinstance(value, Amounts):
        return value
    if isinstance(value, Mapping):
        if not value:
            raise ValueError("must list at least one currency")
        per: dict[str, Decimal] = {}
        for code, amount in value.items():
            if not isinstance(code, str):
                raise ValueError(f"currency keys must be ISO 4217 codes, got {code!r}")
            currency = normalise_currency(code)
            per[currency] = _non_negative(amount, currency)
        return Amounts(None, per)
    return Amounts(_non_negative(value, None), {})


def _non_negative(value: object, currency: str | None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float | str):
        raise ValueError("must be a number or a mapping of currency to number")
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except ArithmeticError as exc:
        raise ValueError("must be a number") from exc
    if not amount.is_finite():
        raise ValueError("must be a finite number")
    if amount < 0:
        raise ValueError("must not be negative")
    limit = max_rule_amount(currency)
    if amount > limit:
        where = (f"{limit:,f} {currency} (10^11 of its smallest unit)" if currency else
                 f"{limit.normalize():,f} for a number without a currency (give "
                 f"{{USD: ...}} for more)")
        raise ValueError(f"{value} is more than the largest amount a rules file may give: "
                         f"{where}")
    return amount


def format_money(amount: Decimal, currency: str) -> str:
    """'1,234.50 USD': grouped, rounded to the currency's minor units."""
    return f"{round_money(amount, currency):,} {currency}"
