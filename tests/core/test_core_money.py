"""Money: Decimal only, rounded to the currency's minor units."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ar_sync.domain.models import Money
from ar_sync.domain.money import ISO_4217_CODES, minor_units, round_money, to_decimal


@pytest.mark.parametrize(("currency", "places"), [("JPY", 0), ("USD", 2), ("GBP", 2),
                                                  ("BHD", 3), ("KWD", 3), ("CLF", 4)])
def test_minor_units(currency: str, places: int) -> None:
    assert minor_units(currency) == places


def test_rounding_is_half_up_per_currency() -> None:
    assert Money.of("10.005", "USD").amount == Decimal("10.01")
    assert Money.of("10.5", "JPY").amount == Decimal("11")
    assert Money.of("1.0005", "BHD").amount == Decimal("1.001")
    assert str(Money.of("3", "usd")) == "3.00 USD"


def test_unknown_currency_is_rejected() -> None:
    with pytest.raises(ValidationError, match="unknown currency"):
        Money.of("1", "XXQ")


def test_float_input_never_leaks_binary_noise() -> None:
    assert to_decimal(0.1) == Decimal("0.1")
    assert to_decimal(12.1) + to_decimal(0.2) == Decimal("12.3")
    with pytest.raises(ValueError):
        to_decimal(True)
    with pytest.raises(ValueError):
        to_decimal("12,3")


@given(
    amount=st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), allow_nan=False,
                       allow_infinity=False, places=6),
    currency=st.sampled_from(sorted(ISO_4217_CODES)),
)
def test_rounded_amounts_have_exactly_the_minor_units(amount: Decimal, currency: str) -> None:
    rounded = round_money(amount, currency)
    assert -rounded.as_tuple().exponent == minor_units(currency)  # type: ignore[operator]
    assert abs(rounded - amount) <= Decimal(1).scaleb(-minor_units(currency)) / 2
