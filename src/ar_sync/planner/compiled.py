"""The planner's view of a policy: the rules compiled once into plain data, and the
facts shared by every invoice with one due date (which stages and fee occurrences are due)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from ar_sync.domain.calendar import ANY_DAY, BusinessCalendar, zone
from ar_sync.domain.models import TERMINAL_STATES, ActionKind, EntryState, FeeMode, InvoiceStatus
from ar_sync.domain.money import Amounts
from ar_sync.domain.reference_rates import RATE_TABLES, RateTable
from ar_sync.planner.fee_maths import FeeTerms, Occurrence, due_occurrences
from ar_sync.planner.fee_periods import live_only
from ar_sync.planner.interest import DAY_COUNTS
from ar_sync.rules.policy import Interest, Policy, UkStatutoryInterest, weekday_numbers
from ar_sync.rules.rates import rate_tables
from ar_sync.rules.schema import Journey
from ar_sync.rules.templates import (
    ESCALATION_FIELDS,
    FEE_LABEL_FIELDS,
    NOTE_FIELDS,
    Template,
    compile_template,
)
from ar_sync.rules.terms import stage_announces, terms_kind

__all__ = ["Compiled", "compile_policy"]


ONCE = "once"
NOTE = ActionKind.NOTE.value
EMAIL = ActionKind.REMINDER_EMAIL.value
OWN_EMAIL = ActionKind.CUSTOMER_EMAIL.value
FEE = ActionKind.LATE_FEE.value
ESC = ActionKind.ESCALATE.value
SKIP = ActionKind.SKIP.value
WAIVE = ActionKind.WAIVE_FEE.value
KIND_ORDER = {WAIVE: 0, FEE: 0, ESC: 1, NOTE: 2, EMAIL: 3, OWN_EMAIL: 3, SKIP: 4}
TERMINAL = frozenset(s.value for s in TERMINAL_STATES)
DONE = EntryState.DONE.value
OPEN = InvoiceStatus.OPEN.value
_NEVER = 10**9
ZERO = Decimal(0)
MISSING: Any = object()
NO_KEYS: frozenset[tuple[str, str, str]] = frozenset()


# ============================================================================= compiled policy


@dataclass(frozen=True, slots=True)
class _Stage:
    index: int
    name: str
    days: int
    tone: str
    email: bool  # an e-mail goes out (the platform's or ar-sync's, see `channel`)
    note: Template
    note_key: tuple[str, str, str]  # (kind, rule, occurrence) as in the ledger
    email_key: tuple[str, str, str]
    skip_key: tuple[str, str, str]
    backfill: bool  # may be the catch-up stage when its date fell before go-live
    channel: str = "note"  # note | platform | email
    announces: frozenset[str] = frozenset()  # fee-terms kinds its e-mail states
    alt_email_key: tuple[str, str, str] = ("", "", "")  # the other channel's e-mail key


@dataclass(frozen=True, slots=True)
class _Fee:
    name: str
    terms: FeeTerms
    label: Template
    mode: FeeMode
    describe: str
    every_text: str
    tax: str | None
    backfill: str  # none | latest | all
    forgive: bool  # after_pause: forgive
    stack: bool
    waive_on_dispute: bool
    account: str | None = None
    notice: str = "late_fee"  # which announcement it waits for (rules.terms.terms_kind)


@dataclass(frozen=True, slots=True)
class _Escalation:
    key: tuple[str, str, str]
    name: str
    alternatives: tuple[tuple[int | None, Amounts | None, int | None], ...]
    to: str
    note: Template


@dataclass(frozen=True, slots=True)
class Compiled:
    """A policy reduced to plain data the planner's loop can use cheaply."""

    stages: tuple[_Stage, ...]
    fees: tuple[_Fee, ...]
    escalations: tuple[_Escalation, ...]
    calendar: BusinessCalendar
    business_only: bool
    excl_ids: frozenset[str]
    excl_names: frozenset[str]
    excl_currencies: frozenset[str]
    excl_disputed: bool
    excl_below: Amounts | None
    earliest: int  # fewest days relative to the due date at which anything can happen
    company_name: str
    fees_on_invoice: bool  # some fee rule adds lines to the invoice itself (mode: line)
    waives: bool  # some fee rule has waive_on_dispute
    zone: ZoneInfo  # the company's time zone (what "today" is)
    journey: Journey  # first contact, min_gap, notice_days, deadline_days, fee_notice
    final_stage: int = -1  # the final notice's index (last 'final' tone, else last stage)
    # stage name -> the fee-terms kinds its e-mail states
    stage_announces: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _fee_terms(rule: Any, tables: dict[str, RateTable]) -> FeeTerms:
    common: dict[str, Any] = {
        "every": rule.every, "grace_days": rule.grace_days,
        "fees_on_invoice": rule.mode == FeeMode.LINE, "min_balance": rule.min_balance,
        "min_fee": rule.min_fee, "max_fee": rule.max_fee, "cap_amount": rule.cap_amount,
        "cap_percent": rule.cap_percent, "max_occurrences": rule.max_occurrences,
        "currencies": frozenset(rule.currencies) if rule.currencies is not None else None,
    }
    if rule.kind == "fixed":
        return FeeTerms(kind="fixed", amount=rule.amount, **common)
    if rule.kind == "percent":
        return FeeTerms(kind="percent", percent=rule.percent, compounding=rule.compounding,
                        **common)
    if isinstance(rule, Interest):
        dated = isinstance(rule.reference_rate, str)
        return FeeTerms(kind="interest", percent=rule.annual_rate,
                        day_count=DAY_COUNTS[rule.day_count],
                        fixed_compensation=rule.compensation,
                        reference=tables[str(rule.reference_rate)] if dated else None,
                        margin=rule.margin, fixing="half_year", **common)
    assert isinstance(rule, UkStatutoryInterest)
    if isinstance(rule.reference_rate, str):
        return FeeTerms(kind="uk_statutory", reference=tables[rule.reference_rate],
                        margin=rule.margin, fixing="debt_start",
                        compensation=rule.compensation, **common)
    return FeeTerms(kind="uk_statutory", percent=rule.reference_rate + rule.margin,
                    compensation=rule.compensation, **common)


def _every_text(rule: Any) -> str:
    return {"once": "once", "month": "monthly"}.get(str(rule.every), f"every {rule.every} days")


def _table_title(name: str) -> str:
    return RATE_TABLES[name].title


def _describe_fee(rule: Any) -> str:
    every = _every_text(rule)
    if rule.kind == "fixed":
        what = f"fixed fee {rule.amount.describe()}"
    elif rule.kind == "percent":
        what = f"{rule.percent}% of balance" + (" compounding" if rule.compounding else "")
    elif isinstance(rule, Interest):
        if rule.rate is not None:
            rate = f"{rule.rate}%"
        elif isinstance(rule.reference_rate, str):
            rate = f"{_table_title(rule.reference_rate)} + {rule.margin}%, by half-year"
        else:
            rate = f"{rule.reference_rate}% + {rule.margin}% = {rule.annual_rate}%"
        what = (f"interest {rate} a year ({rule.day_count}) on the debt"
                + (f", compensation {rule.compensation.describe()}" if rule.compensation
                   else ""))
    else:
        ref = (f"{_table_title(rule.reference_rate)} fixed for each debt"
               if isinstance(rule.reference_rate, str) else f"{rule.reference_rate}%")
        what = (f"UK statutory interest {ref} + {rule.margin}%"
                + (" with compensation" if rule.compensation else ""))
    return f"{every} {what}"


def _final_stage(stages: tuple[_Stage, ...]) -> int:
    finals = [s.index for s in stages if s.tone == "final"]
    return finals[-1] if finals else len(stages) - 1


def compile_policy(policy: Policy) -> Compiled:
    """The policy's compiled form, built once per (frozen) policy object and cached."""
    hit = _COMPILED.get(id(policy))
    if hit is not None and hit[0] is policy:
        return hit[1]
    cal_cfg = policy.calendar
    business_only = cal_cfg.send_on == "business_days"
    if business_only:
        holidays = cal_cfg.holidays
        calendar = BusinessCalendar(
            country=holidays.country if holidays else None,
            subdivision=holidays.subdivision if holidays else None,
            weekend=weekday_numbers(cal_cfg.weekend), extra=cal_cfg.extra_holidays,
        )
    else:
        calendar = ANY_DAY
    ordered = sorted(policy.reminders, key=lambda r: r.days)
    stages = tuple(
        _Stage(i, r.name, r.days, r.tone, r.delivery != "note",
               compile_template(r.note, NOTE_FIELDS), (NOTE, r.name, ONCE),
               (OWN_EMAIL if r.delivery == "email" else EMAIL, r.name, ONCE),
               (SKIP, r.name, ONCE), r.backfill != "none", r.delivery, stage_announces(r),
               (EMAIL if r.delivery == "email" else OWN_EMAIL, r.name, ONCE))
        for i, r in enumerate(ordered)
    )
    tables = rate_tables(policy)
    fees = tuple(
        _Fee(f.name, _fee_terms(f, tables), compile_template(f.label, FEE_LABEL_FIELDS), f.mode,
             _describe_fee(f), _every_text(f), f.tax, f.backfill,
             f.after_pause == "forgive", f.stack, f.waive_on_dispute, f.account, terms_kind(f))
        for f in policy.late_fees
    )
    escalations = tuple(
        _Escalation(
            (ESC, e.name, ONCE), e.name,
            tuple((w.days_overdue, w.balance_over, w.reminders_ignored) for w in e.when),
            str(e.to), compile_template(e.note, ESCALATION_FIELDS),
        )
        for e in policy.escalations
    )
    offsets = [s.days for s in stages] + [f.terms.grace_days for f in fees]
    if any(f.terms.compensates for f in fees):
        offsets.append(1)
    if escalations:
        offsets.append(1)
    excl = policy.exclude
    compiled = Compiled(
        stages=stages, fees=fees, escalations=escalations, calendar=calendar,
        business_only=business_only, excl_ids=frozenset(excl.customer_ids),
        excl_names=frozenset(n.casefold() for n in excl.customer_names),
        excl_currencies=frozenset(excl.currencies), excl_disputed=excl.disputed,
        excl_below=excl.below_balance, earliest=min(offsets, default=_NEVER),
        company_name=policy.company_name,
        fees_on_invoice=any(f.mode == FeeMode.LINE for f in policy.late_fees),
        waives=any(f.waive_on_dispute for f in fees),
        zone=zone(cal_cfg.timezone), journey=policy.journey,
        final_stage=_final_stage(stages),
        stage_announces=MappingProxyType({s.name: s.announces for s in stages
                                          if s.announces}),
    )
    if len(_COMPILED) >= 64:  # a handful of rule sets per process; keep it bounded
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[id(policy)] = (policy, compiled)  # holding the policy keeps its id unique
    return compiled


_COMPILED: dict[int, tuple[Policy, Compiled]] = {}


# ============================================================================= per-day facts


@dataclass(frozen=True, slots=True)
class DueFacts:
    """What is due today for every invoice with a given due date."""

    days_overdue: int
    latest: int  # index of the latest stage due today, -1 for none
    stage_dates: tuple[date, ...]
    fee_due: tuple[tuple[Occurrence, ...], ...]  # per fee rule
    fee_keys: tuple[tuple[tuple[str, str, str], ...], ...]  # their ledger keys
    before_live: bool = False  # the latest stage fell before go-live and may not catch up
    has_fees: bool = False  # some fee rule has an occurrence due (else skip the fee step)


_NO_FEES: tuple[tuple[Occurrence, ...], ...] = ()


def facts_for(c: Compiled, due: date, today: date, sending_day: bool,
           go_live: date | None = None) -> DueFacts | None:
    """What is due for invoices due on `due`. Fees and escalations, like reminders, only
    on a sending day (`send_on`); with `go_live`, each rule's `backfill` decides what from
    before go-live may still be sent or charged."""
    days = (today - due).days
    if days < c.earliest:
        return None
    if c.business_only:
        shift = c.calendar.shift_to_business_day
        stage_dates = tuple(shift(due + timedelta(days=s.days)) for s in c.stages)
    else:
        stage_dates = tuple(due + timedelta(days=s.days) for s in c.stages)
    latest = -1
    if sending_day:
        for i, d in enumerate(stage_dates):
            if d <= today:
                latest = i
    fee_due: tuple[tuple[Occurrence, ...], ...]
    if not sending_day:
        fee_due = tuple(() for _ in c.fees)
    elif go_live is None:
        fee_due = tuple(tuple(due_occurrences(f.terms, due, today)) for f in c.fees)
    else:
        fee_due = tuple(live_only(due_occurrences(f.terms, due, today), go_live, f.backfill,
                                  f.terms.accrues) for f in c.fees)
    if latest < 0 and days < 1 and not any(fee_due):
        return None
    fee_keys = tuple(tuple((FEE, f.name, o.label) for o in occ)
                     for f, occ in zip(c.fees, fee_due, strict=True))
    before_live = (go_live is not None and latest >= 0 and stage_dates[latest] < go_live
                   and not c.stages[latest].backfill)
    return DueFacts(days, latest, stage_dates, fee_due, fee_keys, before_live,
                     any(fee_due))
