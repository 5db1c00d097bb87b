"""Late-fee and statutory-interest maths: pure functions on Decimal.

Everything here is deterministic and rounded to the currency's minor units. A fee is never
negative and never takes the late fees on an invoice beyond its cap. Recurring fees are a
series of occurrences, each with a stable label ('once', '2026-11', 'n3', 'compensation'),
which the planner turns into one idempotency key each; occurrences that a missed run skipped
are all still listed here, so they are caught up (within the cap) on the next run.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from ar_sync.domain.calendar import add_months
from ar_sync.domain.money import Amounts, quantum
from ar_sync.domain.reference_rates import RateTable
from ar_sync.planner.interest import (
    UK_COMPENSATION_BANDS,
    UK_COMPENSATION_TOP,
    Payments,
    RateSchedule,
    accrued,
    dated_rates,
    debt_on,
    simple_interest,
    uk_compensation,
)

__all__ = [
    "UK_COMPENSATION_BANDS",
    "UK_COMPENSATION_TOP",
    "Charge",
    "FeeTerms",
    "Occurrence",
    "charges",
    "clamp_fee",
    "due_occurrences",
    "invoice_cap",
    "occurrences",
    "percent_of",
    "round_money",
    "simple_interest",
    "uk_compensation",
]

ZERO = Decimal(0)
HUNDRED = Decimal(100)
MAX_OCCURRENCES = 1000  # safety bound on catch-up for a single rule and invoice
MAX_CHARGE = Decimal(10) ** 15  # safety bound on one charge (runaway compounding, no cap)

UK_STATUTORY_MARGIN = Decimal(8)


_quantum = lru_cache(maxsize=None)(quantum)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """domain.money.round_money with the currency's quantum cached (the planner's hot path)."""
    return amount.quantize(_quantum(currency), rounding=ROUND_HALF_UP)


def floor_money(amount: Decimal, currency: str) -> Decimal:
    """Round down to the currency's minor unit (for caps: never round a cap up)."""
    return amount.quantize(_quantum(currency), rounding=ROUND_FLOOR)


# ----------------------------------------------------------------------------- occurrences


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One charge of a recurring rule: its stable label, the day it falls due, and the period
    it covers, [period_start, period_end). For interest the period is the days it accrued
    over; `spans` narrows them when some days must not accrue (before go-live, paused)."""

    label: str
    on: date
    period_start: date
    period_end: date | None = None  # None: the single day `period_start`
    spans: tuple[tuple[date, date], ...] | None = None  # None: the whole period

    @property
    def end(self) -> date:
        return self.period_end if self.period_end is not None else (
            self.period_start + timedelta(days=1))

    def accrual_spans(self) -> tuple[tuple[date, date], ...]:
        return self.spans if self.spans is not None else ((self.period_start, self.end),)

    def overlaps(self, start: date, end: date) -> bool:
        """Whether [start, end) shares a day with this occurrence's period."""
        return start < self.end and self.period_start < end


def _step(start: date, every: str | int, k: int) -> date:
    if every == "month":
        return add_months(start, k)
    assert isinstance(every, int)
    return start + timedelta(days=every * k)


def _label(every: str | int, k: int, on: date) -> str:
    if every == "once":
        return "once"
    if every == "month":
        return f"{on.year:04d}-{on.month:02d}"
    return f"n{k}"


def occurrences(
    start: date, every: str | int, today: date, *, accrual: bool = False,
    limit: int | None = None,
) -> list[Occurrence]:
    """Occurrences due by `today` (inclusive), oldest first.

    A fee (accrual=False) is charged at `start` and then every period after it. Interest
    (accrual=True) is charged at the end of each period it accrued over, so the first charge
    falls one period after `start`. `every` is 'once', 'month' or a number of days.
    """
    bound = MAX_OCCURRENCES if limit is None else min(limit, MAX_OCCURRENCES)
    if every == "once":
        if accrual or start > today or bound < 1:
            return []
        return [Occurrence("once", start, start)]
    found: list[Occurrence] = []
    k = 0
    while len(found) < bound:
        period_start = _step(start, every, k)
        period_end = _step(start, every, k + 1)
        on = period_end if accrual else period_start
        if on > today:
            break
        found.append(Occurrence(_label(every, k + 1, on), on, period_start, period_end))
        k += 1
    return found


# ----------------------------------------------------------------------------- amounts


def percent_of(base: Decimal, percent: Decimal) -> Decimal:
    """`percent` % of `base`, unrounded."""
    return base * percent / HUNDRED


def invoice_cap(
    total: Decimal, currency: str, cap_amount: Decimal | None, cap_percent: Decimal | None
) -> Decimal | None:
    """The most late fees an invoice may carry: the lower of the amount and the percentage
    of the original total; None when neither is set. Rounded down, never negative."""
    caps = []
    if cap_amount is not None:
        caps.append(floor_money(cap_amount, currency))
    if cap_percent is not None:
        caps.append(floor_money(percent_of(total, cap_percent), currency))
    return max(ZERO, min(caps)) if caps else None


def clamp_fee(
    raw: Decimal,
    currency: str,
    *,
    min_fee: Decimal | None = None,
    max_fee: Decimal | None = None,
    charged: Decimal = ZERO,
    cap: Decimal | None = None,
) -> Decimal:
    """One charge: raw amount raised to the minimum, lowered to the maximum and to what the
    cap still allows, rounded to the currency. Never negative; zero means "charge nothing"."""
    if raw <= 0:
        return round_money(ZERO, currency)
    amount = min(raw, MAX_CHARGE)
    if min_fee is not None and amount < min_fee:
        amount = min_fee
    amount = round_money(amount, currency)
    if max_fee is not None:
        amount = min(amount, floor_money(max_fee, currency))
    if cap is not None:
        amount = min(amount, floor_money(cap - charged, currency))
    return round_money(max(amount, ZERO), currency)


# ----------------------------------------------------------------------------- a fee rule

ACCRUING = frozenset({"uk_statutory", "interest"})


@dataclass(frozen=True, slots=True)
class FeeTerms:
    """A fee rule reduced to what the maths needs (built once per policy by the planner)."""

    kind: str  # 'fixed' | 'percent' | 'uk_statutory' | 'interest'
    every: str | int = "once"
    grace_days: int = 0
    amount: Amounts | None = None  # fixed fee
    percent: Decimal | None = None  # percent fee, or the annual interest rate (ref + margin)
    compounding: bool = False
    fees_on_invoice: bool = True  # mode line: the balance includes earlier fee lines
    min_balance: Amounts | None = None
    min_fee: Amounts | None = None
    max_fee: Amounts | None = None
    cap_amount: Amounts | None = None
    cap_percent: Decimal | None = None
    max_occurrences: int | None = None
    compensation: bool = False  # uk_statutory: charge the fixed sum (GBP invoices)
    currencies: frozenset[str] | None = None
    day_count: int = 365  # interest: days in a year (actual/365 or actual/360)
    fixed_compensation: Amounts | None = None  # interest: a fixed sum once, per currency
    reference: RateTable | None = None  # interest: a dated reference rate (+ margin)
    margin: Decimal = ZERO  # points over `reference`
    fixing: str = "half_year"  # 'debt_start' (UK: one rate a debt) | 'half_year' (EU)

    @property
    def accrues(self) -> bool:
        return self.kind in ACCRUING

    @property
    def compensates(self) -> bool:
        return self.accrues and (self.compensation or self.fixed_compensation is not None)

    def start(self, due_date: date) -> date:
        """The first day of charging: due date plus the grace period."""
        return due_date + timedelta(days=self.grace_days)

    def cap_for(self, total: Decimal, currency: str) -> Decimal | None:
        """This rule's cap on all late fees of an invoice whose original total is `total`."""
        return invoice_cap(total, currency, _opt(self.cap_amount, currency), self.cap_percent)

    def applies_to(self, currency: str) -> bool:
        return self.currencies is None or currency in self.currencies


@dataclass(frozen=True, slots=True)
class Charge:
    """One fee occurrence to charge now."""

    label: str
    on: date
    amount: Decimal
    detail: str


COMPENSATION = "compensation"


def due_occurrences(terms: FeeTerms, due_date: date, today: date) -> list[Occurrence]:
    """Every occurrence of the rule due by `today` (statutory compensation first)."""
    start = terms.start(due_date)
    found = occurrences(start, terms.every, today, accrual=terms.accrues,
                        limit=terms.max_occurrences)
    if terms.compensates:
        on = due_date + timedelta(days=1)
        if on <= today:
            found.insert(0, Occurrence(COMPENSATION, on, on))
    return found


def next_occurrence_on(terms: FeeTerms, due_date: date, today: date) -> date | None:
    """The day the rule's first occurrence after `today` falls due (None: there is none),
    so due_occurrences(terms, due_date, d) == due_occurrences(terms, due_date, today) for
    every day d from today until then."""
    found = []
    if terms.compensates and due_date + timedelta(days=1) > today:
        found.append(due_date + timedelta(days=1))
    start = terms.start(due_date)
    bound = (MAX_OCCURRENCES if terms.max_occurrences is None
             else min(terms.max_occurrences, MAX_OCCURRENCES))
    if terms.every == "once":
        if not terms.accrues and start > today and bound >= 1:
            found.append(start)
    else:
        k = len(occurrences(start, terms.every, today, accrual=terms.accrues,
                            limit=terms.max_occurrences))
        if k < bound:
            found.append(_step(start, terms.every, k + 1 if terms.accrues else k))
    return min(found, default=None)


def _opt(amounts: Amounts | None, currency: str) -> Decimal | None:
    return None if amounts is None else amounts.for_currency(currency)


def principal_of(terms: FeeTerms, balance: Decimal, fees_charged: Decimal) -> Decimal:
    """The unpaid debt the fee is computed on: fee lines already on the invoice do not
    count (they are not the customer's original debt)."""
    if terms.fees_on_invoice:
        return max(ZERO, balance - fees_charged)
    return balance


_UNSET: Any = object()


def charges(
    terms: FeeTerms,
    *,
    currency: str,
    total: Decimal,
    balance: Decimal,
    charged: Decimal,
    due_date: date,
    today: date,
    finished: Container[str] = (),
    pending: Mapping[str, Decimal | None] | None = None,
    due: Sequence[Occurrence] | None = None,
    fees_in_balance: Decimal | None = None,
    fee_lines: Decimal | None = None,
    cap: Decimal | None = _UNSET,
    payments: Payments | None = None,
) -> list[Charge]:
    """The occurrences of `terms` to charge now, oldest first, with their amounts.

    `charged` is what late fees the invoice already carries or has in flight (all rules,
    pending ones included); `finished` are the labels recorded for good (never charged
    again); `pending` are labels claimed but not finished, with the amount recorded then:
    they are charged again with exactly that amount (a retry must not change the sum).
    `due` is `due_occurrences(terms, due_date, today)` when the caller has it cached.

    The debt a fee is computed on is the balance without our fee lines: `fee_lines` when
    the caller knows them (whatever this rule's mode), else `fees_in_balance` (default
    `charged`) for a rule adding lines. `cap`: the invoice-wide cap (the planner passes the
    lowest of every rule's cap); by default this rule's own. `payments`: (day, amount) of
    the invoice's payments, so interest accrues on the balance as it was each day.
    """
    if due is None:
        due = due_occurrences(terms, due_date, today)
    if all(o.label in finished for o in due) or not terms.applies_to(currency):
        return []
    debt = _debt(terms, currency, total, balance, charged, fees_in_balance, fee_lines)
    if debt is None:
        return []
    principal, original_total = debt
    if cap is _UNSET:
        cap = terms.cap_for(original_total, currency)
    tally = _Tally(currency, finished, pending or {}, _opt(terms.min_fee, currency),
                   _opt(terms.max_fee, currency), cap, charged)
    if terms.accrues:
        _accrue(tally, terms, due, principal, due_date, payments)
    else:
        _flat(tally, terms, due, principal)
    return tally.out


def _debt(terms: FeeTerms, currency: str, total: Decimal, balance: Decimal, charged: Decimal,
          fees_in_balance: Decimal | None, fee_lines: Decimal | None,
          ) -> tuple[Decimal, Decimal] | None:
    """(the debt a fee is computed on, the original total the cap is a share of), or None
    when there is nothing to charge on (paid down, or under the rule's minimum balance)."""
    if fee_lines is not None:
        principal = max(ZERO, balance - fee_lines)
        original_total = max(ZERO, total - fee_lines)
    else:
        on_invoice = charged if fees_in_balance is None else fees_in_balance
        principal = principal_of(terms, balance, on_invoice)
        # The cap is a share of the ORIGINAL total: fee lines already added to the invoice
        # must not raise it, or every run would find a little more room and charge again.
        original_total = principal_of(terms, total, on_invoice)
    if principal <= 0:
        return None
    min_balance = _opt(terms.min_balance, currency)
    if min_balance is not None and principal < min_balance:
        return None
    return principal, original_total


@dataclass(slots=True)
class _Tally:
    """The charges of one `charges()` call and their running sum, which every next one is
    clamped against (the minimum and maximum fee, the cap)."""

    currency: str
    finished: Container[str]
    pending: Mapping[str, Decimal | None]
    min_fee: Decimal | None
    max_fee: Decimal | None
    cap: Decimal | None
    running: Decimal
    out: list[Charge] = field(default_factory=list)

    def add(self, label: str, on: date, raw: Decimal, detail: str, limits: bool = True) -> None:
        if label in self.finished:
            return
        recorded = self.pending.get(label)
        if recorded is not None:  # already counted in `charged`: charge the same sum again
            self.out.append(Charge(label, on, round_money(recorded, self.currency),
                                   detail + " (retry)"))
            return
        amount = clamp_fee(raw, self.currency, min_fee=self.min_fee if limits else None,
                           max_fee=self.max_fee if limits else None, charged=self.running,
                           cap=self.cap)
        if amount > 0:
            self.running += amount
            self.out.append(Charge(label, on, amount, detail))


def _accrue(tally: _Tally, terms: FeeTerms, due: Sequence[Occurrence], principal: Decimal,
            due_date: date, payments: Payments | None) -> None:
    """Interest periods (and a statute's fixed compensation) on the debt as it was."""
    currency = tally.currency
    rate = terms.percent or ZERO
    basis = terms.day_count
    for occ in due:
        if occ.label == COMPENSATION:
            _compensate(tally, terms, occ, debt_on(due_date, principal, payments))
            continue
        if occ.label in tally.finished:
            continue
        spans = occ.accrual_spans()
        rates: Decimal | RateSchedule = rate
        how = f"{rate}%"
        if terms.reference is not None:
            schedule, why = dated_rates(terms.reference, terms.margin, terms.fixing,
                                        due_date, spans)
            if schedule is None:
                continue  # no reference rate known that early: nothing to charge
            rates, how = schedule, (f"{schedule[0][1]}% ({why})"
                                    if terms.fixing == "debt_start" else why)
        raw, days = accrued(principal, spans, rates, basis, payments)
        first = spans[0][0] if spans else occ.period_start
        tally.add(occ.label, occ.on, raw,
                  f"{how} a year (actual/{basis}) on {round_money(principal, currency):,} "
                  f"{currency}{' (balance as paid down)' if payments else ''} for {days} "
                  f"days from {first}")


def _compensate(tally: _Tally, terms: FeeTerms, occ: Occurrence, owed: Decimal) -> None:
    """The statute's fixed compensation: the rule's own amount, else the UK bands."""
    currency = tally.currency
    if terms.fixed_compensation is not None:
        fixed = _opt(terms.fixed_compensation, currency)
        if fixed is not None:
            tally.add(occ.label, occ.on, fixed, f"fixed compensation {fixed} {currency}",
                      limits=False)
    elif currency == "GBP":
        tally.add(occ.label, occ.on, uk_compensation(owed),
                  f"fixed compensation for a debt of {owed:,} GBP", limits=False)


def _flat(tally: _Tally, terms: FeeTerms, due: Sequence[Occurrence],
          principal: Decimal) -> None:
    """Fixed or percent fees, one per occurrence (compounding: on the fees charged so far)."""
    currency = tally.currency
    for occ in due:
        if terms.kind == "fixed":
            fixed = _opt(terms.amount, currency)
            if fixed is None:
                return
            tally.add(occ.label, occ.on, fixed, f"fixed fee {fixed} {currency}")
        else:
            rate = terms.percent or ZERO
            base = principal + tally.running if terms.compounding else principal
            tally.add(occ.label, occ.on, percent_of(base, rate),
                      f"{rate}% of {round_money(base, currency):,} {currency}"
                      + (" (compounding)" if terms.compounding else ""))
