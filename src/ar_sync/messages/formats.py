"""Amounts and dates as a customer reads them, in the company's locale (Babel, CLDR data).

A customer sees '£1,234.50' and '14 November 2025' (en_GB) or '$1,234.50' and 'November 14,
2025' (en_US), never '1,234.50 GBP' or '2025-11-14'. The language stays English (the wording
is English); the locale's territory decides the formats. Without a `locale:` in the rules it
follows the company's country (calendar.holidays), else the invoice's currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from babel import localedata
from babel.dates import format_date
from babel.numbers import format_currency

__all__ = ["FALLBACK", "day", "known_locale", "locale_for", "money", "money_sum"]

FALLBACK = "en_US"
# The territory whose English formats suit a currency when the company's country is unknown.
CURRENCY_TERRITORY = {
    "USD": "US", "GBP": "GB", "EUR": "IE", "NZD": "NZ", "AUD": "AU", "CAD": "CA",
    "JPY": "JP", "CHF": "CH", "SGD": "SG", "HKD": "HK", "ZAR": "ZA", "INR": "IN",
    "SEK": "SE", "DKK": "DK", "NOK": "NO", "PLN": "PL", "ILS": "IL", "AED": "AE",
}


def known_locale(name: str) -> bool:
    """Whether Babel has CLDR data for `name` (e.g. en_GB)."""
    try:
        return localedata.exists(name)
    except (TypeError, ValueError):
        return False


def locale_for(explicit: str | None, country: str | None, currency: str) -> str:
    """The locale a message is formatted in: the rules' `locale`, else English for the
    company's country, else for the currency's country, else en_US."""
    if explicit:
        return explicit
    for territory in (country, CURRENCY_TERRITORY.get(currency)):
        if territory and known_locale(f"en_{territory}"):
            return f"en_{territory}"
    return FALLBACK


def money(amount: Decimal, currency: str, locale: str) -> str:
    """'£1,234.50', 'BHD1,234.500', '¥1,500' (the currency's own decimals)."""
    return format_currency(amount, currency, locale=locale)


def money_sum(amounts: Iterable[tuple[Decimal, str]], locale: str) -> str:
    """Sums per currency, never converted: '£1,200.00 + $300.00'."""
    sums: dict[str, Decimal] = {}
    for amount, currency in amounts:
        sums[currency] = sums.get(currency, Decimal(0)) + amount
    return " + ".join(money(a, c, locale) for c, a in sorted(sums.items()))


def day(d: date, locale: str) -> str:
    """'14 November 2025' (en_GB), 'November 14, 2025' (en_US)."""
    return format_date(d, format="long", locale=locale)
