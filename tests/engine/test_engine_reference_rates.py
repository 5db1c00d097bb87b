"""Dated reference rates (issue 21): the UK rate order fixes one rate for a debt's life from
the Bank Rate on 30 June / 31 December before interest starts; the EU Directive takes each
half-year's ECB rate on 1 January / 1 July. Hand-computed cases at the rate changes, property
tests over the tables, the out-of-date warning, and rows a rules file adds."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ar_sync.domain.models import ApplyLateFee
from ar_sync.domain.reference_rates import (
    BANK_OF_ENGLAND,
    ECB_MAIN_REFINANCING,
    RATE_TABLES,
    RateTable,
    half_year_start,
)
from ar_sync.planner.fee_maths import FeeTerms, charges
from ar_sync.planner.interest import accrued, half_year_schedule, uk_fixing_day
from ar_sync.planner.plan import plan
from ar_sync.rules.policy import load_policy, parse_policy
from ar_sync.rules.rates import stale_rate_warnings

from .conftest import by_age, make_invoice

D = Decimal
DOCS = Path(__file__).parents[2] / "docs" / "rules.md"


def first_charges(table: RateTable, fixing: str, due: date, months: int = 1,
                  total: str = "10000.00") -> list[tuple[str, Decimal]]:
    """The first `months` monthly interest charges on a debt due on `due` (no compensation)."""
    terms = FeeTerms(kind="uk_statutory" if fixing == "debt_start" else "interest",
                     every="month", reference=table, margin=D(8), fixing=fixing,
                     fees_on_invoice=False)
    month_later = due + timedelta(days=31 * months)
    found = charges(terms, currency="GBP", total=D(total), balance=D(total), charged=D(0),
                    due_date=due, today=month_later)
    return [(c.label, c.amount) for c in found][:months]


# ----------------------------------------------------------------------------- UK, by hand

@pytest.mark.parametrize(("due", "rate", "days", "amount"), [
    # the issue's case: interest starts 15 Nov 2025 -> Bank Rate on 30 Jun 2025 (4.25) + 8
    (date(2025, 11, 14), "12.25", 30, "100.68"),  # 10000 x .1225 x 30/365 = 100.6849
    # starts 31 Dec 2025, still July-December -> 30 Jun 2025 (4.25), not the 18 Dec cut
    (date(2025, 12, 30), "12.25", 31, "104.04"),  # 10000 x .1225 x 31/365 = 104.0411
    # starts 1 Jan 2026 -> 31 Dec 2025: 3.75 (cut on 18 Dec 2025)
    (date(2025, 12, 31), "11.75", 31, "99.79"),  # 10000 x .1175 x 31/365 = 99.7945
    # starts 30 Jun 2025 -> 31 Dec 2024: 4.75
    (date(2025, 6, 29), "12.75", 30, "104.79"),  # 10000 x .1275 x 30/365 = 104.7945
    # starts 1 Jul 2025 -> 30 Jun 2025: 4.25 (cut on 8 May 2025)
    (date(2025, 6, 30), "12.25", 30, "100.68"),
    # starts 1 Jul 2023 -> 30 Jun 2023: 5.00 (raised on 22 Jun 2023)
    (date(2023, 6, 30), "13.00", 30, "106.85"),  # 10000 x .13 x 30/365 = 106.8493
    # starts 1 Jan 2024 -> 31 Dec 2023: 5.25 (raised on 3 Aug 2023)
    (date(2023, 12, 31), "13.25", 31, "112.53"),  # 10000 x .1325 x 31/365 = 112.5342
    # starts 1 Jan 2025 -> 31 Dec 2024: 4.75 (cut on 7 Nov 2024)
    (date(2024, 12, 31), "12.75", 31, "108.29"),  # 10000 x .1275 x 31/365 = 108.2877
    # starts 1 Jan 2023 -> 31 Dec 2022: 3.50 (raised on 15 Dec 2022)
    (date(2022, 12, 31), "11.50", 31, "97.67"),  # 10000 x .115 x 31/365 = 97.6712
])
def test_uk_rate_fixed_by_the_bank_rate_before_interest_starts(
        due: date, rate: str, days: int, amount: str) -> None:
    ((_label, got),) = first_charges(BANK_OF_ENGLAND, "debt_start", due)
    assert got == D(amount)
    assert got == (D(10000) * D(rate) / 100 * days / 365).quantize(D("0.01"), ROUND_HALF_UP)


def test_uk_rate_stays_fixed_for_the_debts_life() -> None:
    """Due 14 Nov 2025: 12.25 % also for January 2026, although Bank Rate on 31 Dec 2025 was
    3.75 (the 2002 order fixes the rate when interest starts to run)."""
    got = first_charges(BANK_OF_ENGLAND, "debt_start", date(2025, 11, 14), months=3)
    # 14 Dec -> 14 Jan and 14 Jan -> 14 Feb: 31 days each, 10000 x .1225 x 31/365 = 104.0411
    assert got == [("2025-12", D("100.68")), ("2026-01", D("104.04")),
                   ("2026-02", D("104.04"))]


def test_uk_issue_example_through_the_shipped_rules() -> None:
    """10,000 GBP due 2025-11-14, planned on Monday 15 Dec 2025 with `uk-late-payment`."""
    today = date(2025, 12, 15)
    inv = make_invoice(days_overdue=31, total="10000.00", currency="GBP", today=today)
    assert inv.due_date == date(2025, 11, 14)
    fees = [a for a in plan([inv], {}, by_age(load_policy("uk-late-payment")), today)
            if isinstance(a, ApplyLateFee)]
    assert [(f.occurrence, f.amount.amount) for f in fees] == [
        ("compensation", D("100.00")), ("2025-12", D("100.68"))]
    assert "12.25% (Bank of England Bank Rate 4.25% on 2025-06-30 + 8%)" in fees[1].reason


# ----------------------------------------------------------------------------- EU, by hand

@pytest.mark.parametrize(("due", "months", "amounts"), [
    # June 2026 is in January-June: ECB rate on 1 Jan 2026 (2.15), not the 17 June hike;
    # 31 May -> 30 Jun: 10000 x .1015 x 30/365 = 83.4247;
    # 30 Jun -> 31 Jul: 10000 x .1015 x 1/365 + 10000 x .1040 x 30/365 = 2.7808 + 85.4795
    (date(2026, 5, 31), 2, ["83.42", "88.26"]),
    # 15 Dec 2024 -> 15 Jan 2025: 17 days at 4.25 + 8 (1 Jul 2024), 14 at 3.15 + 8 (1 Jan
    # 2025): 10000 x .1225 x 17/365 + 10000 x .1115 x 14/365 = 57.0548 + 42.7671
    (date(2024, 12, 15), 1, ["99.82"]),
    # 10 Jun -> 10 Jul 2025: 21 days at 3.15 + 8, 9 days at 2.15 + 8 (1 Jul 2025):
    # 10000 x .1115 x 21/365 + 10000 x .1015 x 9/365 = 64.1507 + 25.0274
    (date(2025, 6, 10), 1, ["89.18"]),
    # 30 Jun -> 30 Jul 2023: 1 day at 2.50 + 8 (1 Jan 2023), 29 days at 4.00 + 8 (1 Jul
    # 2023; raised on 21 Jun): 10000 x .105 x 1/365 + 10000 x .12 x 29/365 = 2.8767 + 95.3425
    (date(2023, 6, 30), 1, ["98.22"]),
])
def test_eu_each_half_year_at_its_own_rate(due: date, months: int,
                                           amounts: list[str]) -> None:
    got = first_charges(ECB_MAIN_REFINANCING, "half_year", due, months=months)
    assert [a for _, a in got] == [D(a) for a in amounts]


def test_eu_shipped_rules_name_the_rates_they_used() -> None:
    today = date(2026, 8, 3)  # a Monday
    inv = make_invoice(days_overdue=64, total="10000.00", currency="EUR", today=today)
    fees = [a for a in plan([inv], {}, by_age(load_policy("eu-late-payment")), today)
            if isinstance(a, ApplyLateFee)]
    assert [(f.occurrence, f.amount.amount) for f in fees] == [
        ("compensation", D("40.00")), ("2026-06", D("83.42")), ("2026-07", D("88.26"))]
    assert ("10.15%, 10.40% from 2026-07-01 (ECB main refinancing operations rate + 8% by "
            "half-year)") in fees[2].reason


def test_no_rate_before_the_table_charges_no_interest() -> None:
    early = date(2008, 1, 31)
    assert BANK_OF_ENGLAND.rate_on(uk_fixing_day(early)) is None
    assert first_charges(BANK_OF_ENGLAND, "debt_start", early) == []
    assert first_charges(ECB_MAIN_REFINANCING, "half_year", early) == []


# ----------------------------------------------------------------------------- the tables

@pytest.mark.parametrize("table", list(RATE_TABLES.values()), ids=list(RATE_TABLES))
def test_each_change_takes_effect_on_its_day(table: RateTable) -> None:
    previous = None
    for day, rate in table.changes:
        assert table.rate_on(day) == rate
        assert table.rate_on(day - timedelta(days=1)) == previous
        previous = rate
    assert table.checked >= table.changes[-1][0]
    assert table.sources


def test_every_row_is_in_the_documented_table() -> None:
    """docs/rules.md lists each row with its source; the code and the page agree."""
    text = DOCS.read_text(encoding="utf-8")
    for table in RATE_TABLES.values():
        rows = re.findall(rf"^\| `{table.name}` \| (\d{{4}}-\d\d-\d\d) \| ([\d.]+) \|", text,
                          re.MULTILINE)
        assert [(date.fromisoformat(d), D(r)) for d, r in rows] == list(table.changes)
        assert f"checked up to {table.checked}" in text


@given(st.dates(date(2009, 3, 5), date(2026, 12, 31)))
def test_uk_fixing_day_is_the_last_day_before_interests_half_year(due: date) -> None:
    starts = due + timedelta(days=1)
    fixing = uk_fixing_day(due)
    assert fixing == half_year_start(starts) - timedelta(days=1)
    assert fixing.month in (6, 12) and 0 < (starts - fixing).days <= 184


@given(st.dates(date(2014, 1, 1), date(2026, 12, 31)), st.integers(1, 800),
       st.decimals(D("0.01"), D("1000000"), places=2))
def test_eu_accrual_equals_the_sum_of_its_days(start: date, days: int,
                                               principal: Decimal) -> None:
    """Every day accrues at the rate in force on the first day of its own half-year."""
    end = start + timedelta(days=days)
    schedule = half_year_schedule(ECB_MAIN_REFINANCING, D(8), start, end)
    assert schedule is not None
    got, counted = accrued(principal, [(start, end)], schedule, 365)
    by_day = sum(principal * (ECB_MAIN_REFINANCING.rate_on(half_year_start(start + timedelta(
        days=i))) + 8) / 100 / 365 for i in range(days))
    assert counted == days
    assert abs(got - by_day) < D("1e-18")


@given(st.dates(date(2014, 1, 1), date(2026, 6, 30)), st.integers(2, 400),
       st.data())
def test_splitting_a_span_changes_no_cent(start: date, days: int, data: st.DataObject) -> None:
    end = start + timedelta(days=days)
    cut = start + timedelta(days=data.draw(st.integers(1, days - 1)))
    schedule = half_year_schedule(ECB_MAIN_REFINANCING, D(8), start, end)
    assert schedule is not None
    whole, _ = accrued(D(5000), [(start, end)], schedule, 365)
    parts, _ = accrued(D(5000), [(start, cut), (cut, end)], schedule, 365)
    assert abs(whole - parts) < D("1e-18")


@given(st.dates(date(2009, 7, 1), date(2026, 5, 31)), st.integers(1, 12))
def test_uk_every_month_of_a_debt_at_one_rate(due: date, months: int) -> None:
    """Whatever Bank Rate does later, each period is charged at the debt's one rate."""
    terms = FeeTerms(kind="uk_statutory", every="month", reference=BANK_OF_ENGLAND,
                     margin=D(8), fixing="debt_start", fees_on_invoice=False)
    found = charges(terms, currency="GBP", total=D(100000), balance=D(100000),
                    charged=D(0), due_date=due, today=due + timedelta(days=31 * months))
    ref = BANK_OF_ENGLAND.rate_on(uk_fixing_day(due))
    assert ref is not None and len(found) >= months
    for c in found:
        match = re.search(r"for (\d+) days", c.detail)
        assert match is not None
        expected = D(100000) * (ref + 8) / 100 * int(match.group(1)) / 365
        assert c.amount == expected.quantize(D("0.01"), ROUND_HALF_UP)


# ----------------------------------------------------------------------------- out of date

def test_warns_when_a_half_year_starts_after_the_checked_day() -> None:
    uk, eu, default = (load_policy(n) for n in ("uk-late-payment", "eu-late-payment",
                                                 "default"))
    assert stale_rate_warnings(uk, date(2026, 12, 7)) == []
    assert stale_rate_warnings(eu, date(2026, 12, 31)) == []
    (warning,) = stale_rate_warnings(uk, date(2027, 1, 1))
    assert "Bank of England Bank Rate" in warning and "2026-07-01" in warning
    assert len(stale_rate_warnings(eu, date(2027, 3, 1))) == 1
    assert stale_rate_warnings(default, date(2030, 1, 1)) == []  # uses no table


def test_a_rules_file_adds_a_decision_and_silences_the_warning() -> None:
    policy = parse_policy(
        "extends: uk-late-payment\n"
        "journey: {fee_notice: agreed}\n"  # the rate is judged here, not the announcement
        "reference_rates:\n"
        "  bank_of_england:\n"
        "    checked: 2027-01-04\n"
        "    changes: [{effective: 2026-12-17, rate: 3.5}]\n", "t.yaml")
    assert stale_rate_warnings(policy, date(2027, 1, 4)) == []
    today = date(2027, 2, 1)  # a Monday
    inv = make_invoice(days_overdue=32, total="10000.00", currency="GBP", today=today)
    assert inv.due_date == date(2026, 12, 31)  # interest starts 1 Jan 2027 -> 3.50 + 8
    fees = [a for a in plan([inv], {}, policy, today) if isinstance(a, ApplyLateFee)]
    # 31 Dec -> 31 Jan: 10000 x .115 x 31/365 = 97.6712 -> 97.67 (3.75 + 8 would be 99.79)
    assert [(f.occurrence, f.amount.amount) for f in fees][1] == ("2027-01", D("97.67"))


def test_unknown_table_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown reference rate 'fed'"):
        parse_policy("late_fees: [{name: i, kind: interest, reference_rate: fed, margin: 8}]",
                     "t.yaml")
