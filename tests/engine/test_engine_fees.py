"""Fee and interest maths: examples per rule kind, hand-computed statutory figures, and
properties (never negative, never over the cap, always in the currency's minor units)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ar_sync.domain.calendar import add_months
from ar_sync.domain.money import Amounts, minor_units, round_money
from ar_sync.planner.fee_maths import (
    FeeTerms,
    charges,
    clamp_fee,
    invoice_cap,
    occurrences,
    simple_interest,
    uk_compensation,
)

D = Decimal
DUE = date(2026, 9, 30)
TODAY = date(2026, 11, 30)


def _charge(terms: FeeTerms, *, total: str = "1000", balance: str | None = None,
            currency: str = "USD", charged: str = "0", today: date = TODAY,
            **kw: object) -> list[tuple[str, Decimal]]:
    found = charges(terms, currency=currency, total=D(total), balance=D(balance or total),
                    charged=D(charged), due_date=DUE, today=today, **kw)  # type: ignore[arg-type]
    return [(c.label, c.amount) for c in found]


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 15), 2) == date(2027, 1, 15)


def test_occurrence_labels_are_stable() -> None:
    monthly = occurrences(date(2026, 8, 31), "month", TODAY)
    assert [o.label for o in monthly] == ["2026-08", "2026-09", "2026-10", "2026-11"]
    assert [o.on for o in monthly][1] == date(2026, 9, 30)
    every = occurrences(date(2026, 11, 1), 14, TODAY)
    assert [o.label for o in every] == ["n1", "n2", "n3"]
    assert occurrences(date(2026, 12, 1), "once", TODAY) == []
    assert [o.label for o in occurrences(date(2026, 11, 30), "once", TODAY)] == ["once"]
    accrual = occurrences(DUE, "month", TODAY, accrual=True)
    assert [(o.period_start, o.on) for o in accrual] == [
        (date(2026, 9, 30), date(2026, 10, 30)), (date(2026, 10, 30), date(2026, 11, 30))]


def test_fixed_fee_once_after_grace() -> None:
    terms = FeeTerms(kind="fixed", amount=Amounts(D(25)), grace_days=15)
    assert _charge(terms) == [("once", D("25.00"))]
    assert _charge(terms, today=DUE + timedelta(days=14)) == []


def test_fixed_fee_per_currency_and_missing_currency() -> None:
    terms = FeeTerms(kind="fixed", amount=Amounts(None, {"USD": D(10), "JPY": D(1500)}))
    assert _charge(terms, currency="JPY", total="50000") == [("once", D("1500"))]
    assert _charge(terms, currency="EUR") == []  # no amount configured for EUR


def test_percent_monthly_catches_up_missed_occurrences() -> None:
    terms = FeeTerms(kind="percent", percent=D("1.5"), every="month", grace_days=30)
    # first charge on 30 Oct, second on 30 Nov
    assert _charge(terms, total="2000") == [("2026-10", D("30.00")), ("2026-11", D("30.00"))]
    # one already recorded for good: only the other
    assert _charge(terms, total="2000", finished={"2026-10"}) == [("2026-11", D("30.00"))]


def test_percent_compounding_charges_on_earlier_fees() -> None:
    simple = FeeTerms(kind="percent", percent=D(10), every=30, fees_on_invoice=False)
    compound = FeeTerms(kind="percent", percent=D(10), every=30, compounding=True,
                        fees_on_invoice=False)
    assert [a for _, a in _charge(simple)] == [D("100.00"), D("100.00"), D("100.00")]
    assert [a for _, a in _charge(compound)] == [D("100.00"), D("110.00"), D("121.00")]


def test_line_mode_excludes_fee_lines_from_the_principal() -> None:
    terms = FeeTerms(kind="percent", percent=D(10), fees_on_invoice=True)
    # balance 1100 includes a 100 fee line already charged: fee on 1000 only
    assert _charge(terms, total="1100", balance="1100", charged="100") == [("once", D("100.00"))]


def test_min_and_max_fee_and_min_balance() -> None:
    terms = FeeTerms(kind="percent", percent=D(1), min_fee=Amounts(D(10)),
                     max_fee=Amounts(D(50)), min_balance=Amounts(D(100)))
    assert _charge(terms, total="200") == [("once", D("10.00"))]  # 2.00 raised to 10
    assert _charge(terms, total="90000") == [("once", D("50.00"))]  # 900 lowered to 50
    assert _charge(terms, total="99.99") == []  # below the minimum balance


def test_cap_as_percent_and_amount_the_lower_wins() -> None:
    terms = FeeTerms(kind="fixed", amount=Amounts(D(40)), every=10, cap_percent=D(10),
                     cap_amount=Amounts(D(1000)))
    got = _charge(terms, total="1000")
    assert sum(a for _, a in got) == D("100.00")  # 10 % of 1000 < 1000
    assert [a for _, a in got][-1] == D("20.00")  # the last charge is cut to fit
    # fees already on the platform count toward the cap
    assert sum(a for _, a in _charge(terms, total="1090", charged="90")) == D("10.00")
    assert _charge(terms, total="1000", charged="150") == []


def test_pending_occurrence_keeps_its_recorded_amount() -> None:
    terms = FeeTerms(kind="percent", percent=D("1.5"), every="month", grace_days=30,
                     cap_percent=D(10))
    # 2026-10 is in flight (claimed, maybe on the platform, maybe not): charged includes it,
    # the platform's balance does not yet
    got = _charge(terms, total="2000", charged="30", pending={"2026-10": D("30.00")},
                  fees_in_balance=D(0))
    assert got == [("2026-10", D("30.00")), ("2026-11", D("30.00"))]
    # the cap counts the in-flight charge: 200 cap, 190 already charged or in flight
    got = _charge(terms, total="2000", charged="190", pending={"2026-10": D("30.00")},
                  fees_in_balance=D(0))
    assert got == [("2026-10", D("30.00")), ("2026-11", D("10.00"))]


def test_max_occurrences() -> None:
    terms = FeeTerms(kind="fixed", amount=Amounts(D(5)), every=7, max_occurrences=2)
    assert [label for label, _ in _charge(terms)] == ["n1", "n2"]


def test_uk_statutory_interest_and_compensation_hand_computed() -> None:
    # 5,000 GBP, base rate 4 % + 8 % = 12 % a year, simple, daily, charged monthly.
    terms = FeeTerms(kind="uk_statutory", percent=D(12), every="month", compensation=True,
                     fees_on_invoice=False)
    got = _charge(terms, total="5000", currency="GBP")
    assert got == [
        ("compensation", D("70.00")),  # debt 1,000 - 9,999.99
        ("2026-10", D("49.32")),  # 5000 * 0.12 * 30 / 365 = 49.3150...
        ("2026-11", D("50.96")),  # 5000 * 0.12 * 31 / 365 = 50.9589...
    ]
    # interest in other currencies, compensation only in GBP
    assert [label for label, _ in _charge(terms, total="5000", currency="EUR")] == [
        "2026-10", "2026-11"]


@pytest.mark.parametrize(("debt", "sum_"), [
    ("0.01", 40), ("999.99", 40), ("1000", 70), ("9999.99", 70), ("10000", 100),
    ("250000", 100)])
def test_uk_compensation_bands(debt: str, sum_: int) -> None:
    assert uk_compensation(D(debt)) == D(sum_)


def test_simple_interest() -> None:
    assert simple_interest(D(10000), D("12.5"), 73) == D(250)
    assert simple_interest(D(10000), D(12), 0) == 0
    assert simple_interest(D(-5), D(12), 10) == 0


def test_invoice_cap_rounds_down() -> None:
    assert invoice_cap(D("333.33"), "USD", None, D(10)) == D("33.33")
    assert invoice_cap(D("15584"), "JPY", None, D(10)) == D("1558")
    assert invoice_cap(D(100), "USD", None, None) is None


# ----------------------------------------------------------------------------- properties

CURRENCIES = ["USD", "JPY", "BHD", "GBP"]
money = st.decimals(min_value=0, max_value=10**7, places=3, allow_nan=False)
opt_amount = st.none() | money.map(Amounts)


@st.composite
def fee_terms(draw: st.DrawFn) -> FeeTerms:
    kind = draw(st.sampled_from(["fixed", "percent", "uk_statutory"]))
    choices: list[str | int] = (["once", "month", 1, 7, 30] if kind != "uk_statutory"
                                else ["month", 14])
    every = draw(st.sampled_from(choices))
    return FeeTerms(
        kind=kind, every=every, grace_days=draw(st.integers(0, 60)),
        amount=Amounts(draw(money)) if kind == "fixed" else None,
        percent=draw(st.decimals(min_value="0.01", max_value=100, places=2))
        if kind != "fixed" else None,
        compounding=draw(st.booleans()), fees_on_invoice=draw(st.booleans()),
        min_balance=draw(opt_amount), min_fee=draw(opt_amount), max_fee=draw(opt_amount),
        cap_amount=draw(opt_amount),
        cap_percent=draw(st.none() | st.decimals(min_value="0.01", max_value=100, places=2)),
        max_occurrences=draw(st.none() | st.integers(1, 50)),
        compensation=draw(st.booleans()) and kind == "uk_statutory",
    )


@settings(max_examples=300, deadline=None)
@given(terms=fee_terms(), currency=st.sampled_from(CURRENCIES), total=money,
       paid=st.decimals(min_value=0, max_value=1, places=2), charged=money,
       days=st.integers(-30, 800))
def test_fees_never_negative_never_over_cap_always_minor_units(
    terms: FeeTerms, currency: str, total: Decimal, paid: Decimal, charged: Decimal, days: int
) -> None:
    total = round_money(total, currency)
    balance = round_money(total * (1 - paid), currency)
    charged = round_money(charged, currency) if charged < total else Decimal(0)
    due = TODAY - timedelta(days=days)
    found = charges(terms, currency=currency, total=total, balance=balance, charged=charged,
                    due_date=due, today=TODAY)
    labels = [c.label for c in found]
    assert len(labels) == len(set(labels))
    cap = invoice_cap(total, currency, terms.cap_amount.default if terms.cap_amount else None,
                      terms.cap_percent)
    for c in found:
        assert c.amount > 0
        assert c.amount.as_tuple().exponent == -minor_units(currency)
        assert c.on <= TODAY
        if terms.max_fee is not None and c.label != "compensation":
            assert c.amount <= terms.max_fee.default  # type: ignore[operator]
    if cap is not None:
        assert charged + sum(c.amount for c in found) <= max(cap, charged)


@given(raw=st.decimals(min_value=-1000, max_value=10**6, places=4),
       currency=st.sampled_from(CURRENCIES), cap=st.none() | money, charged=money)
def test_clamp_fee_bounds(raw: Decimal, currency: str, cap: Decimal | None,
                          charged: Decimal) -> None:
    amount = clamp_fee(raw, currency, charged=charged, cap=cap)
    assert amount >= 0
    assert amount == round_money(amount, currency)
    if cap is not None:
        assert amount <= max(Decimal(0), cap - charged)


@given(amount=st.decimals(min_value=-10**9, max_value=10**9, allow_nan=False,
                          allow_infinity=False),
       currency=st.sampled_from([*CURRENCIES, "KWD", "EUR", "KRW"]))
def test_cached_rounding_matches_money_round_money(amount: Decimal, currency: str) -> None:
    from ar_sync.domain import money
    from ar_sync.planner import fee_maths as fees

    assert fees.round_money(amount, currency) == money.round_money(amount, currency)
    assert str(fees.round_money(amount, currency)) == str(money.round_money(amount, currency))
