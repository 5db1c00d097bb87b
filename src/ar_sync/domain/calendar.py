"""Company calendar: its time zone, its weekend, its public holidays.

Reminders go out on business days in the company's own zone, so "today" and "is this a
holiday" are always asked here. Holiday sets come from the `holidays` package and are
computed once per year and cached on the calendar.
"""

from __future__ import annotations

import calendar as _cal
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

WEEKDAYS: tuple[str, ...] = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
)
_ONE_DAY = timedelta(days=1)


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError naming it if unknown."""
    try:
        return _zone(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as "
                         "'America/New_York' or 'Europe/London')") from exc


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    if not name or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(name)
    return ZoneInfo(name)


def local_date(now: datetime, tz: ZoneInfo) -> date:
    """The calendar date at instant `now` in zone `tz` (a naive `now` is taken as UTC)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(tz).date()


def check_holiday_region(country: str, subdivision: str | None) -> None:
    """Raise ValueError unless the `holidays` package knows this country (and subdivision)."""
    supported = holidays_lib.list_supported_countries()
    if country not in supported:
        raise ValueError(f"unknown holiday country {country!r} (use an ISO 3166 code "
                         "such as 'US', 'GB', 'DE')")
    if subdivision is not None and subdivision not in supported[country]:
        known = ", ".join(supported[country][:30]) or "none"
        raise ValueError(f"unknown subdivision {subdivision!r} for {country} (known: {known})")


class BusinessCalendar:
    """Which days are business days: not a weekend day, not a public or extra holiday."""

    __slots__ = ("_by_year", "_shift_cache", "country", "extra", "subdivision", "weekend")

    def __init__(
        self,
        country: str | None = None,
        subdivision: str | None = None,
        weekend: Iterable[int] = (5, 6),
        extra: Iterable[date] = (),
    ) -> None:
        self.country = country
        self.subdivision = subdivision
        self.weekend = frozenset(weekend)
        if len(self.weekend) >= 7:
            raise ValueError("a week needs at least one working day")
        self.extra = frozenset(extra)
        self._by_year: dict[int, frozenset[date]] = {}
        self._shift_cache: dict[date, date] = {}

    def holidays_in(self, year: int) -> frozenset[date]:
        """Public holidays (plus the extra ones) in `year`; computed once per year."""
        cached = self._by_year.get(year)
        if cached is None:
            days: set[date] = {d for d in self.extra if d.year == year}
            if self.country:
                found = holidays_lib.country_holidays(
                    self.country, subdiv=self.subdivision, years=year
                )
                days.update(found.keys())
            cached = self._by_year[year] = frozenset(days)
        return cached

    def is_business_day(self, d: date) -> bool:
        return d.weekday() not in self.weekend and d not in self.holidays_in(d.year)

    def shift_to_business_day(self, d: date) -> date:
        """`d` itself if it is a business day, else the next one."""
        hit = self._shift_cache.get(d)
        if hit is None:
            hit = d
            while not self.is_business_day(hit):
                hit += _ONE_DAY
            if len(self._shift_cache) < 100_000:
                self._shift_cache[d] = hit
        return hit

    def next_business_day(self, d: date) -> date:
        """The first business day strictly after `d`."""
        return self.shift_to_business_day(d + _ONE_DAY)

    def holiday_name(self, d: date) -> str | None:
        """The holiday's name, for explanations."""
        if d in self.extra:
            return "company holiday"
        if self.country and d in self.holidays_in(d.year):
            found = holidays_lib.country_holidays(
                self.country, subdiv=self.subdivision, years=d.year
            )
            name: str | None = found.get(d)
            return name
        return None


ANY_DAY = BusinessCalendar(weekend=())
"""A calendar where every day is a business day (send_on: any_day)."""


def add_months(d: date, months: int) -> date:
    """Same day `months` later, clamped to the month's end (Jan 31 + 1 month = Feb 28/29)."""
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(d.day, _cal.monthrange(year, month)[1]))
