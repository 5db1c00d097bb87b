"""Payment plans: an agreed schedule of instalments for one invoice. Pure, no I/O.

A plan says how many instalments, how often and from when; the amounts are derived here:
split evenly in the currency's minor units, the remainder on the last instalment, so the
instalments always add up exactly to the amount covered. The planner (ar_sync.planner.plan) uses the
schedule to send instalment reminders instead of overdue reminders while the plan is met.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ar_sync.domain.calendar import add_months
from ar_sync.domain.money import MAX_RULE_MINOR_UNITS, minor_units, quantum, to_decimal

__all__ = ["Instalment", "PaymentPlan", "instalment_date", "parse_every", "plan_id", "schedule",
           "split_evenly"]

PLAN_MAX = Decimal(MAX_RULE_MINOR_UNITS)  # a plan names no currency: the most of any unit
_EVERY = re.compile(r"^\s*(\d+)?\s*(day|days|week|weeks|month|months)\s*$")


def parse_every(value: Any) -> str:
    """'month', '1 month', '2 weeks', '14 days' or a number of days -> '<n> month(s)|day(s)'."""
    if isinstance(value, bool):
        raise ValueError("every: expected e.g. '1 month', '2 weeks' or '14 days'")
    if isinstance(value, int):
        count, unit = value, "day"
    else:
        found = _EVERY.match(str(value).lower())
        if found is None:
            raise ValueError(f"every: {value!r} is not e.g. '1 month', '2 weeks' or '14 days'")
        count = int(found.group(1) or 1)
        unit = found.group(2).rstrip("s")
        if unit == "week":
            count, unit = count * 7, "day"
    if not 1 <= count <= (120 if unit == "month" else 3650):
        raise ValueError(f"every: {value!r} is out of range")
    return f"{count} {unit}{'s' if count > 1 else ''}"


def instalment_date(first: date, every: str, k: int) -> date:
    """The due date of instalment k (0-based) for a normalised `every` (see parse_every)."""
    count, unit = every.split()
    if unit.startswith("month"):
        return add_months(first, int(count) * k)
    return first + timedelta(days=int(count) * k)


class PaymentPlan(BaseModel):
    """An agreed schedule for one invoice (from the CLI's store or the rules file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    invoice: str = Field(min_length=1, description="Invoice number (or platform invoice id)")
    instalments: int = Field(ge=1, le=120, description="How many instalments")
    every: str = Field("1 month", description="Interval: 'month', '2 weeks', '14 days', ...")
    first_due: date = Field(description="Due date of the first instalment")
    amount: Decimal | None = Field(None, ge=0, le=PLAN_MAX, description="Amount the plan "
                                   "covers; default: the invoice total")
    already_paid: Decimal = Field(Decimal(0), ge=0, le=PLAN_MAX, description="Paid on the "
                                  "invoice before the plan; payments count towards "
                                  "instalments beyond it")

    @field_validator("every", mode="before")
    @classmethod
    def _every(cls, value: Any) -> str:
        return parse_every(value)

    @field_validator("amount", "already_paid", mode="before")
    @classmethod
    def _decimal(cls, value: Any) -> Decimal | None:
        return None if value is None else to_decimal(value)


@dataclass(frozen=True, slots=True)
class Instalment:
    number: int
    due: date
    amount: Decimal
    cumulative: Decimal  # what must be paid (beyond already_paid) once this one is due


def split_evenly(amount: Decimal, count: int, currency: str) -> tuple[Decimal, ...]:
    """`count` amounts in minor units adding up to `amount`; the remainder goes last."""
    if count < 1:
        raise ValueError("at least one instalment")
    q = quantum(currency)
    units = int((amount / q).to_integral_value())
    if Decimal(units) * q != amount:
        raise ValueError(f"{amount} is not a whole number of {currency} minor units")
    each, rest = divmod(units, count)
    places = minor_units(currency)
    parts = [Decimal(each).scaleb(-places)] * (count - 1)
    parts.append(Decimal(each + rest).scaleb(-places))
    return tuple(p.quantize(q) for p in parts)


def schedule(plan: PaymentPlan, amount: Decimal, currency: str) -> tuple[Instalment, ...]:
    """The instalments of `plan` for `amount` (see PaymentPlan.amount) in `currency`."""
    out: list[Instalment] = []
    total = Decimal(0)
    for k, part in enumerate(split_evenly(amount, plan.instalments, currency)):
        total += part
        out.append(Instalment(k + 1, instalment_date(plan.first_due, plan.every, k), part, total))
    return tuple(out)


def plan_id(sched: tuple[Instalment, ...], currency: str) -> str:
    """A short, stable hash of a schedule: part of every key the plan's actions use, so a
    changed plan (new dates or amounts) gets fresh reminders and a fresh note."""
    text = ";".join(f"{i.due.isoformat()}={i.amount}" for i in sched) + f";{currency}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]
