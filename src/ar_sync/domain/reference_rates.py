"""Dated central-bank rates that statutory late-payment interest is built on.

Two tables ship with ar-sync: the Bank of England Bank Rate (the UK Late Payment Act's
reference rate) and the ECB main refinancing operations rate (the EU Late Payment
Directive's). Each row is (the day a new rate took effect, the rate in percent); a rate is in
force from its day until the next row's. `checked` is the last day the table is known to be
complete: a rate decision after it may be missing, so a half-year that starts after it gets
a warning (`stale_on`). How to add a row is in docs/rules.md (Reference rates).

Each row was checked against the sources in `sources` (the central bank's own history page
and dated announcements); the tests pin every row to the table in docs/rules.md.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

__all__ = [
    "BANK_OF_ENGLAND",
    "ECB_MAIN_REFINANCING",
    "RATE_TABLES",
    "RateTable",
    "half_year_start",
]


def half_year_start(day: date) -> date:
    """1 January or 1 July: the first day of `day`'s half-year."""
    return date(day.year, 1 if day.month <= 6 else 7, 1)


@dataclass(frozen=True, slots=True)
class RateTable:
    """A central bank's rate as dated changes (oldest first)."""

    name: str  # what a rules file writes: reference_rate: <name>
    title: str
    changes: tuple[tuple[date, Decimal], ...]
    checked: date  # complete up to and including this day
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        days = [d for d, _ in self.changes]
        if not days or days != sorted(set(days)):
            raise ValueError(f"{self.name}: changes must be dated, distinct and in order")

    @property
    def first(self) -> date:
        return self.changes[0][0]

    def rate_on(self, day: date) -> Decimal | None:
        """The rate in force on `day` (None before the table's first row)."""
        i = bisect_right(self.changes, day, key=lambda row: row[0])
        return self.changes[i - 1][1] if i else None

    def stale_on(self, today: date) -> bool:
        """Whether a rate decision that fixes today's half-year may be missing: the table
        is checked up to a day before the half-year `today` is in."""
        return self.checked < half_year_start(today)

    def extended(self, changes: tuple[tuple[date, Decimal], ...], checked: date | None,
                 ) -> RateTable:
        """This table with `changes` added (a row on an existing day replaces it) and a
        later `checked` day (for a company that updates its rules before a release)."""
        rows = dict(self.changes)
        rows.update(changes)
        return RateTable(self.name, self.title, tuple(sorted(rows.items())),
                         max(self.checked, checked or self.checked), self.sources)


def _rows(*pairs: tuple[str, str]) -> tuple[tuple[date, Decimal], ...]:
    return tuple((date.fromisoformat(d), Decimal(r)) for d, r in pairs)


# Bank of England Bank Rate ("Official Bank Rate history", Bank of England Database), in
# force from the day the Monetary Policy Committee announced it.
BANK_OF_ENGLAND = RateTable(
    name="bank_of_england",
    title="Bank of England Bank Rate",
    changes=_rows(
        ("2009-03-05", "0.50"), ("2016-08-04", "0.25"), ("2017-11-02", "0.50"),
        ("2018-08-02", "0.75"), ("2020-03-11", "0.25"), ("2020-03-19", "0.10"),
        ("2021-12-16", "0.25"), ("2022-02-03", "0.50"), ("2022-03-17", "0.75"),
        ("2022-05-05", "1.00"), ("2022-06-16", "1.25"), ("2022-08-04", "1.75"),
        ("2022-09-22", "2.25"), ("2022-11-03", "3.00"), ("2022-12-15", "3.50"),
        ("2023-02-02", "4.00"), ("2023-03-23", "4.25"), ("2023-05-11", "4.50"),
        ("2023-06-22", "5.00"), ("2023-08-03", "5.25"), ("2024-08-01", "5.00"),
        ("2024-11-07", "4.75"), ("2025-02-06", "4.50"), ("2025-05-08", "4.25"),
        ("2025-08-07", "4.00"), ("2025-12-18", "3.75"),
    ),
    # Held at 3.75 on 5 Feb, 19 Mar, 30 Apr and 18 Jun 2026: the rate on 30 June 2026.
    checked=date(2026, 7, 1),
    sources=(
        "https://www.bankofengland.co.uk/boeapps/database/Bank-Rate.asp",
        "https://www.bankofengland.co.uk/monetary-policy/the-interest-rate-bank-rate",
    ),
)

# ECB interest rate on the main refinancing operations ("Key ECB interest rates"), in force
# from the date of effect the ECB gives (the Wednesday after the decision).
ECB_MAIN_REFINANCING = RateTable(
    name="ecb_main_refinancing",
    title="ECB main refinancing operations rate",
    changes=_rows(
        ("2013-11-13", "0.25"), ("2014-06-11", "0.15"), ("2014-09-10", "0.05"),
        ("2016-03-16", "0.00"), ("2022-07-27", "0.50"), ("2022-09-14", "1.25"),
        ("2022-11-02", "2.00"), ("2022-12-21", "2.50"), ("2023-02-08", "3.00"),
        ("2023-03-22", "3.50"), ("2023-05-10", "3.75"), ("2023-06-21", "4.00"),
        ("2023-08-02", "4.25"), ("2023-09-20", "4.50"), ("2024-06-12", "4.25"),
        ("2024-09-18", "3.65"), ("2024-10-23", "3.40"), ("2024-12-18", "3.15"),
        ("2025-02-05", "2.90"), ("2025-03-12", "2.65"), ("2025-04-23", "2.40"),
        ("2025-06-11", "2.15"), ("2026-06-17", "2.40"),
    ),
    # Unchanged on 5 Feb, 19 Mar and 30 Apr 2026; raised on 11 Jun 2026 with effect from
    # 17 Jun: the rate on 1 July 2026.
    checked=date(2026, 7, 1),
    sources=(
        "https://www.ecb.europa.eu/stats/policy_and_exchange_rates/key_ecb_interest_rates/"
        "html/index.en.html",
        "https://www.ecb.europa.eu/press/pr/date/2026/html/ecb.mp260611~4d41bd5e83.en.html",
    ),
)

RATE_TABLES: dict[str, RateTable] = {t.name: t for t in (BANK_OF_ENGLAND, ECB_MAIN_REFINANCING)}
