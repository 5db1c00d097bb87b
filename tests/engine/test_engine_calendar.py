"""Business days, holidays and the company's own date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ar_sync.domain.calendar import BusinessCalendar, check_holiday_region, local_date, zone

US = BusinessCalendar(country="US")


def test_weekend_moves_to_monday() -> None:
    assert US.shift_to_business_day(date(2026, 11, 28)) == date(2026, 11, 30)  # Sat -> Mon
    assert US.shift_to_business_day(date(2026, 11, 30)) == date(2026, 11, 30)
    assert US.next_business_day(date(2026, 11, 30)) == date(2026, 12, 1)


def test_thanksgiving_and_christmas_are_not_business_days() -> None:
    assert not US.is_business_day(date(2026, 11, 26))  # Thanksgiving (Thursday)
    assert US.shift_to_business_day(date(2026, 11, 26)) == date(2026, 11, 27)
    assert US.shift_to_business_day(date(2026, 12, 25)) == date(2026, 12, 28)  # Fri -> Mon
    assert US.holiday_name(date(2026, 11, 26)) == "Thanksgiving Day"


def test_uk_boxing_day_and_regions() -> None:
    eng = BusinessCalendar(country="GB", subdivision="ENG")
    sct = BusinessCalendar(country="GB", subdivision="SCT")
    assert eng.shift_to_business_day(date(2026, 12, 25)) == date(2026, 12, 29)  # Fri, Mon 28 sub
    assert eng.is_business_day(date(2027, 1, 4))
    assert not sct.is_business_day(date(2027, 1, 4))  # 2 January substitute in Scotland


def test_custom_weekend_and_extra_days() -> None:
    cal = BusinessCalendar(weekend=(4, 5), extra=[date(2026, 12, 6)])  # Fri/Sat weekend
    assert cal.shift_to_business_day(date(2026, 12, 4)) == date(2026, 12, 7)  # Fri -> Sun(x) -> Mon
    assert cal.is_business_day(date(2026, 11, 29))  # a Sunday works


def test_holidays_cached_per_year() -> None:
    cal = BusinessCalendar(country="US")
    assert cal.holidays_in(2026) is cal.holidays_in(2026)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)))
def test_shift_lands_on_the_first_business_day_at_or_after(d: date) -> None:
    shifted = US.shift_to_business_day(d)
    assert shifted >= d and US.is_business_day(shifted)
    assert all(not US.is_business_day(d + timedelta(days=i)) for i in range((shifted - d).days))
    assert US.next_business_day(d) > d


def test_local_date_in_the_company_zone() -> None:
    late_evening_ny = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 22:00 on 30 Nov in New York
    assert local_date(late_evening_ny, zone("America/New_York")) == date(2026, 11, 30)
    assert local_date(late_evening_ny, zone("Asia/Tokyo")) == date(2026, 12, 1)
    assert local_date(datetime(2026, 12, 1, 3, 0), zone("UTC")) == date(2026, 12, 1)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd"])
def test_unknown_zone(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        zone(name)


def test_unknown_holiday_region() -> None:
    with pytest.raises(ValueError, match="unknown holiday country 'XX'"):
        check_holiday_region("XX", None)
    with pytest.raises(ValueError, match="unknown subdivision 'ZZ' for US"):
        check_holiday_region("US", "ZZ")
