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
from datetime import date
from decimal import Decimal
from itertools import pairwise

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


def accrued(debt_now: Decimal, spans: Sequence[tuple[date, date]], annual_percent: Decimal,
            day_count: int, payments: Payments | None = None) -> tuple[Decimal, int]:
    """Interest over the days in `spans` (half-open [start, end) pairs) and the number of
    days, each day on the debt as it was that day. Unrounded."""
    total = ZERO
    days = 0
    for start, end in spans:
        cuts = sorted({d for d, _ in payments or () if start < d < end})
        edges = [start, *cuts, end]
        for a, b in pairwise(edges):
            n = (b - a).days
            days += n
            total += simple_interest(debt_on(a, debt_now, payments), annual_percent, n,
                                     day_count)
    return total, days


def uk_compensation(debt: Decimal) -> Decimal:
    """The Act's fixed sum in GBP: 40 below 1,000; 70 below 10,000; 100 from 10,000."""
    for below, amount in UK_COMPENSATION_BANDS:
        if debt < below:
            return amount
    return UK_COMPENSATION_TOP
