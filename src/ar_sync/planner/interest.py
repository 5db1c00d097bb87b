"""Interest on a late debt: simple, daily pro rata, on the balance as it was each day.

Interest accrues on the customer's debt only, never on our own fee lines, and never
compounds. When the connector knows the invoice's payments, each day accrues on the balance
owed that day (a payment stops interest on the amount paid from the day it is received);
without them the current balance is used for every day, which can only under-charge.

Day count: `actual/365` (every day counts, 365 a year, also in leap years: the UK Late
Payment Act and most EU transpositions) or `actual/360` (common in contracts).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

from ar_sync.domain.reference_rates import RateTable, half_year_start

ZERO = Decimal(0)
HUNDRED = Decimal(100)
DAY_COUNTS = {"actual/365": 365, "actual/360": 360}

# Late Payment of Commercial Debts (Interest) Act 1998, s.5A: fixed compensation by debt size.
UK_COMPENSATION_BANDS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal(1000), Decimal(40)),
    (Decimal(10000), Decimal(70)),
)
UK_COMPENSATION_TOP = Decimal(100)

Payments = Sequence[tuple[date, Decimal]]
# An annual rate that changes over time: (first day, percent) pairs, oldest first; the first
# pair's day is date.min. A plain rate is ((date.min, rate),).
RateSchedule = tuple[tuple[date, Decimal], ...]


def flat(annual_percent: Decimal) -> RateSchedule:
    """One rate for every day."""
    return ((date.min, annual_percent),)


def uk_fixing_day(due_date: date) -> date:
    """The day whose Bank Rate fixes a UK debt's statutory interest for its whole life.

    Late Payment of Commercial Debts (Rate of Interest) (No. 3) Order 2002, art. 4: the
    official dealing rate in force on 30 June (for interest that starts to run between 1 July
    and 31 December) or 31 December (1 January to 30 June) immediately before the day
    interest starts to run; and interest runs from the day after the agreed due date (Act,
    s.4)."""
    starts = due_date + timedelta(days=1)
    return date(starts.year, 6, 30) if starts.month >= 7 else date(starts.year - 1, 12, 31)


def uk_statutory_rate(table: RateTable, margin: Decimal, due_date: date,
                      ) -> tuple[Decimal | None, Decimal | None, date]:
    """(annual rate, reference rate, fixing day) for a UK debt due on `due_date`; the rates
    are None when the table has no rate that early."""
    fixing = uk_fixing_day(due_date)
    ref = table.rate_on(fixing)
    return (None if ref is None else ref + margin), ref, fixing


def half_year_schedule(table: RateTable, margin: Decimal, start: date, end: date,
                       ) -> RateSchedule | None:
    """The EU Directive's rates over [start, end): each half-year at the reference rate in
    force on its first day (Directive 2011/7/EU, art. 3(2)) plus `margin`. None when the
    table has no rate for a half-year in the range."""
    out: list[tuple[date, Decimal]] = []
    h = half_year_start(start)
    while h < end:
        ref = table.rate_on(h)
        if ref is None:
            return None
        out.append((date.min if not out else h, ref + margin))
        h = date(h.year, 7, 1) if h.month == 1 else date(h.year + 1, 1, 1)
    return tuple(out) or flat(Decimal(0))


def rate_on(schedule: RateSchedule, day: date) -> Decimal:
    """The schedule's rate on `day`."""
    rate = schedule[0][1]
    for since, r in schedule:
        if since > day:
            break
        rate = r
    return rate


def simple_interest(principal: Decimal, annual_percent: Decimal, days: int,
                    day_count: int = 365) -> Decimal:
    """Daily simple interest: principal x rate x days / day_count, unrounded."""
    if days <= 0 or principal <= 0:
        return ZERO
    return principal * annual_percent * days / (HUNDRED * day_count)


def debt_on(day: date, debt_now: Decimal, payments: Payments | None) -> Decimal:
    """What the customer owed on `day`: today's debt plus what was paid after that day."""
    if not payments:
        return debt_now
    return debt_now + sum((a for d, a in payments if d > day), ZERO)


def accrued(debt_now: Decimal, spans: Sequence[tuple[date, date]],
            annual_percent: Decimal | RateSchedule, day_count: int,
            payments: Payments | None = None) -> tuple[Decimal, int]:
    """Interest over the days in `spans` (half-open [start, end) pairs) and the number of
    days, each day on the debt as it was that day and at the rate of that day. Unrounded."""
    schedule = flat(annual_percent) if isinstance(annual_percent, Decimal) else annual_percent
    changes = [d for d, _ in schedule[1:]]
    total = ZERO
    days = 0
    for start, end in spans:
        cuts = sorted({d for d, _ in payments or () if start < d < end}
                      | {d for d in changes if start < d < end})
        edges = [start, *cuts, end]
        for a, b in pairwise(edges):
            n = (b - a).days
            days += n
            total += simple_interest(debt_on(a, debt_now, payments), rate_on(schedule, a), n,
                                     day_count)
    return total, days


def uk_compensation(debt: Decimal) -> Decimal:
    """The Act's fixed sum in GBP: 40 below 1,000; 70 below 10,000; 100 from 10,000."""
    for below, amount in UK_COMPENSATION_BANDS:
        if debt < below:
            return amount
    return UK_COMPENSATION_TOP


def dated_rates(table: RateTable, margin: Decimal, fixing: str, due_date: date,
                spans: Sequence[tuple[date, date]]) -> tuple[RateSchedule | None, str]:
    """The rates a debt due on `due_date` accrues at over `spans` under a statute's
    rate-fixing rule, and how they were found (for the fee's reason). `fixing`: 'debt_start'
    (UK: one rate for the debt's life) or 'half_year' (EU: each half-year's own rate)."""
    if fixing == "debt_start":
        rate, ref, day = uk_statutory_rate(table, margin, due_date)
        if rate is None:
            return None, f"no {table.title} known for {day}"
        return flat(rate), f"{table.title} {ref}% on {day} + {margin}%"
    if not spans:
        return flat(Decimal(0)), ""
    schedule = half_year_schedule(table, margin, spans[0][0], spans[-1][1])
    if schedule is None:
        return None, f"no {table.title} known for {half_year_start(spans[0][0])}"
    parts = [f"{r}%" if d == date.min else f"{r}% from {d}" for d, r in schedule]
    return schedule, f"{', '.join(parts)} ({table.title} + {margin}% by half-year)"
