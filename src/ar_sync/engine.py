"""The planner: which notes, e-mails, fees and escalations are due today. Pure, no I/O.

`plan(invoices, history, policy, today)` looks at each invoice and its ledger history and
returns the actions still to do, each with a deterministic idempotency key:

* Reminders: of the stages whose (business-day-shifted) date has come, only the LATEST is
  sent (an AddNote, plus a SendReminder when the stage says `email: true`); earlier stages
  not yet handled become SkipStage records, so a missed run never sends a burst. Stages never
  go backwards: once a later stage is handled, earlier ones are only ever skipped. With
  `send_on: business_days`, nothing is sent on a weekend or holiday.
* Late fees: every occurrence of every fee rule has its own key; missed occurrences are all
  caught up, within the cap, counting fees already on the platform (`late_fees_charged`).
* Escalation: once per rule per invoice, when any of its alternatives holds.
* A paid, voided, draft or excluded invoice gets nothing.
* Payment plans (`plans=`, or the rules' `payment_plans`): while every instalment due so far
  is met (paid = total - balance - already_paid reaches the running sum), the invoice gets
  only instalment reminders (rule `instalment-<n>`, occurrence `<plan hash>-before|due`, the
  latest point only) and the plan note (rule `payment-plan`): no stages, fees or escalation.
  An instalment unmet `grace_days` after its due date breaks the plan: one note (rule
  `payment-plan-broken`), then the normal rules as if there had been no plan.
* Risk (`risk=` customer id -> level, and the rules' `risk` section): a level's customers are
  planned with a derived policy (stages shifted, escalation days capped); stage and rule
  names, hence keys, stay the same.

A key whose ledger entry is in a terminal state (done, skipped, failed) is never planned
again; claimed/retry entries are planned again (the sync shell reconciles them). So planning
again after recording every action yields nothing.

Output order (the order a run should spend its call budget in): late fees first; then by
days overdue (most first), balance (largest first), tenant, platform, invoice id; then by
kind (late fee, escalate, note, e-mail, skip), due date, rule and occurrence.

Speed: the policy is compiled once (cached on the Policy object) and per-due-date facts are
cached per call, so an invoice with nothing due costs a dict lookup; actions are built with
model_construct (their fields are computed here, not user input).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ar_sync.calendar import ANY_DAY, BusinessCalendar
from ar_sync.fees import Amounts, FeeTerms, Occurrence, charges, due_occurrences
from ar_sync.models import (
    TERMINAL_STATES,
    Action,
    ActionKind,
    AddNote,
    ApplyLateFee,
    EntryState,
    Escalate,
    FeeMode,
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    Money,
    SendReminder,
    SkipStage,
    action_key,
)
from ar_sync.plans import PaymentPlan, plan_id, schedule
from ar_sync.policy import Policy, RiskAdjustment, UkStatutoryInterest, weekday_numbers
from ar_sync.templates import (
    ESCALATION_FIELDS,
    FEE_LABEL_FIELDS,
    NOTE_FIELDS,
    Template,
    compile_template,
    format_money,
    invoice_values,
)

__all__ = ["PLAN_BROKEN", "PLAN_NOTE", "compile_policy", "explain", "plan", "sort_key"]

ONCE = "once"
_NOTE = ActionKind.NOTE.value
_EMAIL = ActionKind.REMINDER_EMAIL.value
_FEE = ActionKind.LATE_FEE.value
_ESC = ActionKind.ESCALATE.value
_SKIP = ActionKind.SKIP.value
KIND_ORDER = {_FEE: 0, _ESC: 1, _NOTE: 2, _EMAIL: 3, _SKIP: 4}
_TERMINAL = frozenset(s.value for s in TERMINAL_STATES)
_DONE = EntryState.DONE.value
_OPEN = InvoiceStatus.OPEN.value
_NEVER = 10**9
_ZERO = Decimal(0)
_MISSING: Any = object()
_NO_KEYS: frozenset[tuple[str, str, str]] = frozenset()


# ============================================================================= compiled policy


@dataclass(frozen=True, slots=True)
class _Stage:
    index: int
    name: str
    days: int
    tone: str
    email: bool
    note: Template
    note_key: tuple[str, str, str]  # (kind, rule, occurrence) as in the ledger
    email_key: tuple[str, str, str]
    skip_key: tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class _Fee:
    name: str
    terms: FeeTerms
    label: Template
    mode: FeeMode
    describe: str
    every_text: str


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


def _fee_terms(rule: Any) -> FeeTerms:
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
    assert isinstance(rule, UkStatutoryInterest)
    return FeeTerms(kind="uk_statutory", percent=rule.reference_rate + rule.margin,
                    compensation=rule.compensation, **common)


def _every_text(rule: Any) -> str:
    return {"once": "once", "month": "monthly"}.get(str(rule.every), f"every {rule.every} days")


def _describe_fee(rule: Any) -> str:
    every = _every_text(rule)
    if rule.kind == "fixed":
        what = f"fixed fee {rule.amount.describe()}"
    elif rule.kind == "percent":
        what = f"{rule.percent}% of balance" + (" compounding" if rule.compounding else "")
    else:
        what = (f"UK statutory interest {rule.reference_rate}% + {rule.margin}%"
                + (" with compensation" if rule.compensation else ""))
    return f"{every} {what}"


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
        _Stage(i, r.name, r.days, r.tone, r.email, compile_template(r.note, NOTE_FIELDS),
               (_NOTE, r.name, ONCE), (_EMAIL, r.name, ONCE), (_SKIP, r.name, ONCE))
        for i, r in enumerate(ordered)
    )
    fees = tuple(
        _Fee(f.name, _fee_terms(f), compile_template(f.label, FEE_LABEL_FIELDS), f.mode,
             _describe_fee(f), _every_text(f))
        for f in policy.late_fees
    )
    escalations = tuple(
        _Escalation(
            (_ESC, e.name, ONCE), e.name,
            tuple((w.days_overdue, w.balance_over, w.reminders_ignored) for w in e.when),
            str(e.to), compile_template(e.note, ESCALATION_FIELDS),
        )
        for e in policy.escalations
    )
    offsets = [s.days for s in stages] + [f.terms.grace_days for f in fees]
    if any(f.terms.compensation for f in fees):
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
    )
    if len(_COMPILED) >= 64:  # a handful of rule sets per process; keep it bounded
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[id(policy)] = (policy, compiled)  # holding the policy keeps its id unique
    return compiled


_COMPILED: dict[int, tuple[Policy, Compiled]] = {}


# ============================================================================= per-day facts


@dataclass(frozen=True, slots=True)
class _DueFacts:
    """What is due today for every invoice with a given due date."""

    days_overdue: int
    latest: int  # index of the latest stage due today, -1 for none
    stage_dates: tuple[date, ...]
    fee_due: tuple[tuple[Occurrence, ...], ...]  # per fee rule
    fee_keys: tuple[tuple[tuple[str, str, str], ...], ...]  # their ledger keys


def _facts(c: Compiled, due: date, today: date, sending_day: bool) -> _DueFacts | None:
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
    fee_due = tuple(tuple(due_occurrences(f.terms, due, today)) for f in c.fees)
    if latest < 0 and days < 1 and not any(fee_due):
        return None
    fee_keys = tuple(tuple((_FEE, f.name, o.label) for o in occ)
                     for f, occ in zip(c.fees, fee_due, strict=True))
    return _DueFacts(days, latest, stage_dates, fee_due, fee_keys)


# ============================================================================= the planner


class _Planner:
    """One plan() call: the compiled policy, today, and caches keyed by due date."""

    __slots__ = ("c", "facts", "policy", "sending_day", "today")

    def __init__(self, policy: Policy, today: date) -> None:
        self.policy = policy
        self.c = compile_policy(policy)
        self.today = today
        self.sending_day = not self.c.business_only or self.c.calendar.is_business_day(today)
        self.facts: dict[date, _DueFacts | None] = {}

    def excluded(self, inv: Invoice) -> str | None:
        c = self.c
        if c.excl_disputed and inv.disputed:
            return "disputed"
        if inv.customer_id in c.excl_ids:
            return f"customer id {inv.customer_id} excluded"
        if c.excl_names and inv.customer_name.casefold() in c.excl_names:
            return f"customer {inv.customer_name!r} excluded"
        if inv.currency in c.excl_currencies:
            return f"currency {inv.currency} excluded"
        if c.excl_below is not None:
            below = c.excl_below.for_currency(inv.currency)
            if below is not None and inv.balance < below:
                return f"balance {inv.balance} below {below} {inv.currency}"
        return None

    def due_facts(self, due: date) -> _DueFacts | None:
        try:
            return self.facts[due]
        except KeyError:
            found = self.facts[due] = _facts(self.c, due, self.today, self.sending_day)
            return found

    def invoice(self, inv: Invoice, history: Mapping[str, Sequence[LedgerEntry]],
                out: list[tuple[tuple[Any, ...], Action]]) -> None:
        due = inv.due_date
        facts = self.facts.get(due, _MISSING)
        if facts is _MISSING:
            facts = self.due_facts(due)
        if facts is None:
            return
        if inv.status != _OPEN or inv.balance <= 0 or self.excluded(inv) is not None:
            return
        entries = history.get(inv.id)
        if entries:
            tenant = inv.tenant
            # ledger keys recorded for good (StrEnum kinds hash like their values)
            final: set[tuple[str, str, str]] = {
                (e.kind, e.rule, e.occurrence) for e in entries
                if e.state in _TERMINAL and e.tenant == tenant
            }
            _Invoice(self, inv, facts, final, entries, out).run()
        else:
            _Invoice(self, inv, facts, _NO_KEYS, (), out).run()


    def payment_plan(self, pp: PaymentPlan, inv: Invoice,
                     history: Mapping[str, Sequence[LedgerEntry]],
                     out: list[tuple[tuple[Any, ...], Action]]) -> bool:
        """Plan an invoice under a payment plan; False when the plan is broken (or does not
        fit the invoice) and the normal rules apply."""
        if inv.status != _OPEN or inv.balance <= 0 or self.excluded(inv) is not None:
            return True
        # Without an agreed amount the plan covers the invoice as issued: our own fee lines
        # (added once a plan is broken) must not change the schedule, hence its keys.
        fee_lines = inv.late_fees_charged if self.c.fees_on_invoice else _ZERO
        amount = pp.amount if pp.amount is not None else inv.total - fee_lines
        try:
            sched = schedule(pp, amount, inv.currency)
        except ValueError:
            return False  # an amount not in the currency's minor units: no plan to follow
        pid = plan_id(sched, inv.currency)
        tenant = inv.tenant
        entries = [e for e in history.get(inv.id, ()) if e.tenant == tenant]
        final = {(str(e.kind), e.rule, e.occurrence) for e in entries if e.state in _TERMINAL}
        facts = _DueFacts((self.today - inv.due_date).days, -1, (), (), ())
        job = _Invoice(self, inv, facts, final, entries, out)
        settings = self.policy.instalment_reminders
        paid = inv.total - inv.balance - pp.already_paid
        current = None
        for ins in sched:
            if paid >= ins.cumulative:
                continue
            if self.today > ins.due + timedelta(days=settings.grace_days):
                if (_NOTE, PLAN_BROKEN, pid) not in final:
                    job.emit(AddNote, _NOTE, PLAN_BROKEN, pid,
                             ins.due + timedelta(days=settings.grace_days + 1),
                             f"instalment {ins.number} missed; normal rules resume",
                             text=f"Payment plan broken: instalment {ins.number} of "
                                  f"{len(sched)} ({format_money(ins.amount, inv.currency)} "
                                  f"due {ins.due}) was not paid by "
                                  f"{ins.due + timedelta(days=settings.grace_days)}.",
                             tone="firm")
                return False
            current = ins
            break
        if (_NOTE, PLAN_NOTE, pid) not in final:
            parts = ", ".join(f"{i.due} {format_money(i.amount, inv.currency)}" for i in sched)
            job.emit(AddNote, _NOTE, PLAN_NOTE, pid, sched[0].due,
                     f"payment plan of {len(sched)} instalments agreed",
                     text=f"Payment plan agreed for invoice {inv.number}: {len(sched)} "
                          f"instalments every {pp.every}: {parts}.", tone="friendly")
        if current is None:
            return True  # every instalment met
        points = []
        if settings.days_before > 0:
            points.append((current.due - timedelta(days=settings.days_before), "before"))
        if settings.on_due_date:
            points.append((current.due, "due"))
        latest = [p for p in points if p[0] <= self.today]
        if not latest:
            return True
        on, label = latest[-1]
        rule = f"instalment-{current.number}"
        occurrence = f"{pid}-{label}"
        when = "due today" if on == current.due and on == self.today else (
            f"due {current.due}")
        why = f"payment plan instalment {current.number} of {len(sched)} {when}"
        if (_NOTE, rule, occurrence) not in final:
            job.emit(AddNote, _NOTE, rule, occurrence, on, why,
                     text=f"Instalment {current.number} of {len(sched)} on invoice "
                          f"{inv.number}: {format_money(current.amount, inv.currency)} due "
                          f"{current.due} under the agreed payment plan.", tone="friendly")
        if settings.email and inv.customer_email and (_EMAIL, rule, occurrence) not in final:
            job.emit(SendReminder, _EMAIL, rule, occurrence, on, why, to=inv.customer_email)
        return True


PLAN_NOTE = "payment-plan"
PLAN_BROKEN = "payment-plan-broken"


def _adjusted(policy: Policy, adj: RiskAdjustment) -> Policy:
    """`policy` with one risk level's changes applied (stage names, hence keys, unchanged)."""
    offset = adj.reminder_offset_days
    reminders = tuple(r.model_copy(update={"days": max(-365, r.days + offset)})
                      for r in policy.reminders)
    escalations = policy.escalations
    cap = adj.escalate_after_days
    if cap is not None:
        escalations = tuple(e.model_copy(update={"when": tuple(
            w.model_copy(update={"days_overdue": min(w.days_overdue, cap)})
            if w.days_overdue is not None else w for w in e.when)}) for e in escalations)
    return policy.model_copy(update={"reminders": reminders, "escalations": escalations})


_ADJUSTED: dict[tuple[int, str], tuple[Policy, Policy]] = {}


def _risk_planners(policy: Policy, today: date) -> dict[str, _Planner]:
    """One planner per risk level the rules adjust (derived policies cached like compiled
    ones, so their compiled form is reused across calls)."""
    out = {}
    for level, adj in policy.risk.levels().items():
        hit = _ADJUSTED.get((id(policy), level))
        if hit is None or hit[0] is not policy:
            if len(_ADJUSTED) >= 64:
                _ADJUSTED.pop(next(iter(_ADJUSTED)))
            hit = _ADJUSTED[(id(policy), level)] = (policy, _adjusted(policy, adj))
        out[level] = _Planner(hit[1], today)
    return out


_KINDS = {k.value: k for k in ActionKind}
# every field is always given, so one shared set per class (pydantic copies it on model_copy)
_FIELDS_SET: dict[type, set[str]] = {
    cls: set(cls.model_fields)
    for cls in (AddNote, SendReminder, ApplyLateFee, Escalate, SkipStage, Money)
}
_set = object.__setattr__


def _construct(cls: Any, fields: dict[str, Any]) -> Any:
    """A frozen pydantic model from fields the planner computed itself and typed correctly:
    what model_construct does, minus its per-field default and alias handling (which costs
    more than the whole rest of planning an invoice). Every field must be given."""
    obj = cls.__new__(cls)
    _set(obj, "__dict__", fields)
    _set(obj, "__pydantic_fields_set__", _FIELDS_SET[cls])
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


class _Invoice:
    """Planning for one invoice (kept as an object so the steps share their inputs)."""

    __slots__ = ("entries", "facts", "final", "inv", "out", "p", "values")

    def __init__(self, p: _Planner, inv: Invoice, facts: _DueFacts,
                 final: AbstractSet[tuple[str, str, str]], entries: Sequence[LedgerEntry],
                 out: list[tuple[tuple[Any, ...], Action]]) -> None:
        self.p = p
        self.inv = inv
        self.facts = facts
        self.final = final  # ledger keys in a terminal state
        self.entries = entries  # the invoice's ledger rows (any tenant: filter when reading)
        self.out = out
        self.values: dict[str, str] | None = None

    def _mine(self) -> list[LedgerEntry]:
        tenant = self.inv.tenant
        return [e for e in self.entries if e.tenant == tenant]

    def known_fees(self) -> Decimal:
        """Our fees on this invoice, done or in flight (an in-flight one may be on the
        platform already)."""
        total = _ZERO
        for e in self._mine():
            if e.kind == _FEE and e.amount is not None and (
                    e.state == _DONE or e.state not in _TERMINAL):
                total += e.amount
        return total

    def pending_fees(self, rule: str) -> dict[str, Decimal]:
        """Occurrences of `rule` claimed or waiting for a retry, with their recorded sums."""
        final = self.final
        return {e.occurrence: e.amount for e in self._mine()
                if e.kind == _FEE and e.rule == rule and e.amount is not None
                and e.state not in _TERMINAL and (e.kind, e.rule, e.occurrence) not in final}

    def run(self) -> None:
        if self.p.c.fees:
            self.fees()
        if self.facts.latest >= 0:
            self.reminders()
        if self.p.c.escalations and self.facts.days_overdue >= 1:
            self.escalations()

    # -- helpers

    def template_values(self, stage: str) -> dict[str, str]:
        if self.values is None:
            inv = self.inv
            self.values = invoice_values(
                number=inv.number, customer_name=inv.customer_name, balance=inv.balance,
                total=inv.total, currency=inv.currency, issue_date=inv.issue_date,
                due_date=inv.due_date, today=self.p.today, payment_link=inv.payment_link,
                company_name=self.p.c.company_name, stage=stage,
            )
        self.values["stage"] = stage
        return self.values

    def emit(self, cls: Any, kind: str, rule: str, occurrence: str, due_on: date, reason: str,
             **fields: Any) -> None:
        inv = self.inv
        action = _construct(cls, {
            "key": action_key(inv.tenant, inv.platform, inv.id, kind, rule, occurrence),
            "tenant": inv.tenant, "platform": inv.platform, "invoice_id": inv.id,
            "invoice_number": inv.number, "rule": rule, "occurrence": occurrence,
            "due_on": due_on, "reason": reason, **fields, "kind": _KINDS[kind],
        })
        sort = (1 if kind != _FEE else 0, -self.facts.days_overdue, -inv.balance, inv.tenant,
                inv.platform, inv.id, KIND_ORDER[kind], due_on, rule, occurrence)
        self.out.append((sort, action))

    def overdue_text(self) -> str:
        d = self.facts.days_overdue
        if d > 0:
            return f"{d} day{'s' if d > 1 else ''} overdue"
        return "due today" if d == 0 else f"due in {-d} days"

    # -- reminders

    def reminders(self) -> None:
        stages = self.p.c.stages
        final = self.final
        latest = self.facts.latest
        handled_top = -1
        if final:
            for i in range(len(stages) - 1, -1, -1):
                st = stages[i]
                if st.note_key in final or st.skip_key in final:
                    handled_top = i
                    break
        top = max(latest, handled_top)
        top_stage = stages[top]
        dates = self.facts.stage_dates
        for i in range(min(top, latest + 1)):
            st = stages[i]
            if st.note_key not in final and st.skip_key not in final:
                self.emit(SkipStage, _SKIP, st.name, ONCE, dates[i],
                          f"missed (day {st.days:+d}, {dates[i]}); superseded by "
                          f"{top_stage.name}", superseded_by=top_stage.name)
        if top != latest:
            return  # a later stage was already handled: never go backwards
        st = top_stage
        if st.skip_key in final:
            return
        send_note = latest > handled_top
        # No address, no e-mail: the platform would refuse it; the note still records the stage.
        send_email = (st.email and st.email_key not in final
                      and bool(self.inv.customer_email))
        if not (send_note or send_email):
            return
        on = dates[latest]
        why = f"stage day {st.days:+d}, due {on}; {self.overdue_text()}"
        if send_note:
            text = st.note.render(self.template_values(st.name))
            self.emit(AddNote, _NOTE, st.name, ONCE, on, why, text=text, tone=st.tone)
        if send_email:
            self.emit(SendReminder, _EMAIL, st.name, ONCE, on, why,
                      to=self.inv.customer_email)

    # -- fees

    def fees(self) -> None:
        inv = self.inv
        final = self.final
        charged: Decimal | None = None
        facts = self.facts
        for fee, due, keys in zip(self.p.c.fees, facts.fee_due, facts.fee_keys, strict=True):
            if not due:
                continue
            if final and all(k in final for k in keys):
                continue  # every occurrence so far is recorded for good
            if charged is None:  # what the platform shows, or what we know we charged
                charged = max(inv.late_fees_charged, self.known_fees())
            name = fee.name
            finished = {k[2] for k in keys if k in final}
            pending = self.pending_fees(name)
            found = charges(fee.terms, currency=inv.currency, total=inv.total,
                            balance=inv.balance, charged=charged, due_date=inv.due_date,
                            today=self.p.today, finished=finished, pending=pending, due=due,
                            fees_in_balance=inv.late_fees_charged)
            for ch in found:
                if ch.label not in pending:
                    charged += ch.amount
                values = self.template_values(name)
                values["fee"] = format_money(ch.amount, inv.currency)
                values["period"] = ch.label
                label = fee.label.render(values)
                amount = _construct(Money, {"amount": ch.amount, "currency": inv.currency})
                self.emit(ApplyLateFee, _FEE, name, ch.label, ch.on,
                          f"{ch.detail} ({fee.every_text}); due {ch.on}",
                          amount=amount, label=label, mode=fee.mode)

    # -- escalation

    def ignored_reminders(self, needed: int) -> int:
        """Overdue stages whose note was written (done) while the invoice stays unpaid."""
        final = self.final
        recorded = sum(1 for s in self.p.c.stages if s.days > 0 and s.note_key in final)
        if recorded < needed:
            return recorded  # an upper bound is enough to say no, without reading rows
        done = {e.rule for e in self._mine() if e.kind == _NOTE and e.state == _DONE}
        return sum(1 for s in self.p.c.stages if s.days > 0 and s.name in done)

    def debt(self) -> Decimal:
        """The balance without our own fee lines, so charging a fee never tips an invoice
        over an escalation threshold (that would make the plan depend on execution order)."""
        inv = self.inv
        if self.p.c.fees_on_invoice:
            return max(Decimal(0), inv.balance - inv.late_fees_charged)
        return inv.balance

    def escalations(self) -> None:
        inv = self.inv
        days = self.facts.days_overdue
        ignored: int | None = None
        for esc in self.p.c.escalations:
            if esc.key in self.final:
                continue
            for min_days, over, min_ignored in esc.alternatives:
                if min_days is not None and days < min_days:
                    continue
                if over is not None:
                    threshold = over.for_currency(inv.currency)
                    if threshold is None or self.debt() <= threshold:
                        continue
                if min_ignored is not None:
                    if ignored is None:
                        ignored = self.ignored_reminders(min_ignored)
                    if ignored < min_ignored:
                        continue
                why = _conditions(min_days, over, min_ignored, inv.currency)
                values = self.template_values(esc.name)
                values["to"] = esc.to
                self.emit(Escalate, _ESC, esc.name, ONCE, self.p.today,
                          f"{why}; {self.overdue_text()}",
                          to=esc.to, text=esc.note.render(values))
                break


def _conditions(days: int | None, over: Amounts | None, ignored: int | None,
                currency: str) -> str:
    parts = []
    if days is not None:
        parts.append(f"at least {days} days overdue")
    if over is not None:
        parts.append(f"balance over {over.for_currency(currency)} {currency}")
    if ignored is not None:
        parts.append(f"{ignored}+ reminders ignored")
    return " and ".join(parts)


def sort_key(item: tuple[tuple[Any, ...], Action]) -> tuple[Any, ...]:
    return item[0]


def plan(
    invoices: Iterable[Invoice],
    history: Mapping[str, Sequence[LedgerEntry]],
    policy: Policy,
    today: date,
    plans: Iterable[PaymentPlan] | None = None,
    risk: Mapping[str, str] | None = None,
) -> list[Action]:
    """The actions due `today` (the company's date, see Policy.today), in priority order.

    `plans`: payment plans (e.g. the store's), matched to invoices by id or number; they
    take precedence over the rules file's `payment_plans`. `risk`: customer id -> risk level
    (ar_sync.report.risk_levels), used by the rules' `risk` section.
    """
    planner = _Planner(policy, today)
    out: list[tuple[tuple[Any, ...], Action]] = []
    step = planner.invoice
    by_invoice = {p.invoice: p for p in policy.payment_plans}
    by_invoice.update({p.invoice: p for p in plans or ()})
    levels = _risk_planners(policy, today) if risk and policy.risk.levels() else {}
    if by_invoice or levels:
        step = _special_step(planner, by_invoice, levels, risk or {})
    # The loop allocates many small objects and no reference cycles: the cyclic collector
    # would only rescan the caller's (possibly millions of) invoices over and over.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for inv in invoices:
            step(inv, history, out)
    finally:
        if collecting:
            gc.enable()
    out.sort(key=sort_key)
    return [a for _, a in out]


_Step = Any


def _special_step(base: _Planner, by_invoice: Mapping[str, PaymentPlan],
                  levels: Mapping[str, _Planner], risk: Mapping[str, str]) -> _Step:
    """The per-invoice step when payment plans or risk rules are in play (the plain step
    stays untouched, so invoices without either cost nothing extra)."""
    def step(inv: Invoice, history: Mapping[str, Sequence[LedgerEntry]],
             out: list[tuple[tuple[Any, ...], Action]]) -> None:
        planner = levels.get(str(risk.get(inv.customer_id)), base) if levels else base
        pp = by_invoice.get(inv.id) or by_invoice.get(inv.number) if by_invoice else None
        if pp is not None and planner.payment_plan(pp, inv, history, out):
            return
        planner.invoice(inv, history, out)
    return step


def explain(
    invoice: Invoice,
    history: Mapping[str, Sequence[LedgerEntry]],
    policy: Policy,
    today: date,
) -> list[str]:
    """Why the planner does (or does not do) each thing for one invoice, for people."""
    planner = _Planner(policy, today)
    c = planner.c
    inv = invoice
    days = (today - inv.due_date).days
    lines = [f"invoice {inv.number} ({inv.id}) for {inv.customer_name}: "
             f"{format_money(inv.balance, inv.currency)} of "
             f"{format_money(inv.total, inv.currency)}, due {inv.due_date}, "
             f"{days} days overdue, status {inv.status}"]
    if inv.status != _OPEN or inv.balance <= 0:
        return [*lines, "nothing to do: the invoice is not open with a balance"]
    why = planner.excluded(inv)
    if why is not None:
        return [*lines, f"nothing to do: excluded ({why})"]
    if c.business_only and not planner.sending_day:
        lines.append(f"today ({today}) is not a business day: no reminders are sent")
    entries = {(str(e.kind), e.rule, e.occurrence): e.state
               for e in history.get(inv.id, ()) if e.tenant == inv.tenant}
    shift = c.calendar.shift_to_business_day if c.business_only else (lambda d: d)
    for s in c.stages:
        raw = inv.due_date + timedelta(days=s.days)
        on = shift(raw)
        moved = f" (moved from {raw})" if on != raw else ""
        rec = entries.get((_NOTE, s.name, ONCE)) or entries.get((_SKIP, s.name, ONCE))
        status = f"ledger: {rec}" if rec else ("due" if on <= today else "not yet due")
        lines.append(f"stage {s.name} day {s.days:+d} -> {on}{moved}: {status}")
    for fee in c.fees:
        due = due_occurrences(fee.terms, inv.due_date, today)
        labels = ", ".join(o.label for o in due) or "none yet"
        lines.append(f"fee {fee.name} ({fee.describe}): occurrences due {labels}; "
                     f"already on the platform {inv.late_fees_charged} {inv.currency}")
    for esc in c.escalations:
        alts = " or ".join(_conditions(d, o, i, inv.currency) for d, o, i in esc.alternatives)
        lines.append(f"escalation {esc.name} to {esc.to} when {alts}")
    actions = plan([inv], history, policy, today)
    if not actions:
        lines.append("planned today: nothing")
    lines.extend(f"planned today: {a.kind} {a.rule} {a.occurrence}: {a.reason}" for a in actions)
    return lines
