"""The planner's per-call and per-invoice state: exclusions, due-date caches, emitting
actions in priority order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime, time
from typing import Any

from ar_sync.domain.construct import _KINDS, _construct
from ar_sync.domain.models import Action, Invoice, LedgerEntry, action_key
from ar_sync.domain.pauses import Pause, active_pauses
from ar_sync.planner.compiled import (
    _FEE,
    _MISSING,
    _NO_KEYS,
    _OPEN,
    _TERMINAL,
    KIND_ORDER,
    _DueFacts,
    _facts,
    compile_policy,
)
from ar_sync.planner.escalation import plan_escalations
from ar_sync.planner.fees import plan_fees
from ar_sync.planner.pauses import plan_special
from ar_sync.planner.stages import plan_reminders
from ar_sync.rules.policy import Policy
from ar_sync.rules.templates import invoice_values


class _Planner:
    """One plan() call: the compiled policy, today, and caches keyed by due date."""

    __slots__ = ("c", "facts", "go_live", "pauses", "policy", "sending_day", "today")

    def __init__(self, policy: Policy, today: date, *, go_live: date | None = None,
                 pauses: Sequence[Pause] = ()) -> None:
        self.policy = policy
        self.c = compile_policy(policy)
        self.today = today
        self.go_live = go_live
        self.pauses = _index_pauses(pauses)
        self.sending_day = not self.c.business_only or self.c.calendar.is_business_day(today)
        self.facts: dict[date, _DueFacts | None] = {}

    def midnight(self) -> datetime:
        """The instant today began in the company's time zone."""
        return datetime.combine(self.today, time(0), tzinfo=self.c.zone)

    def pauses_for(self, inv: Invoice) -> tuple[Pause, ...]:
        """Every pause given for `inv` or its customer (active or ended), marker included."""
        found = self.pauses.get(("i", inv.id), ()) + self.pauses.get(("c", inv.customer_id), ())
        return (*found, inv.pause) if inv.pause is not None else found

    def pause(self, inv: Invoice) -> Pause | None:
        """The pause in force for `inv` today (stored or the platform marker), if any."""
        if inv.pause is None and not self.pauses:
            return None
        return active_pauses(self.pauses_for(inv), inv, self.today)

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
            found = self.facts[due] = _facts(self.c, due, self.today, self.sending_day,
                                             self.go_live)
            return found

    def invoice(self, inv: Invoice, history: Mapping[str, Sequence[LedgerEntry]],
                out: list[tuple[tuple[Any, ...], Action]]) -> None:
        due = inv.due_date
        facts = self.facts.get(due, _MISSING)
        if facts is _MISSING:
            facts = self.due_facts(due)
        if facts is None:
            return
        if inv.status != _OPEN or inv.balance <= 0:
            return
        if inv.disputed or inv.pause is not None or self.pauses:
            # the rare paths: disputes (waivers), pauses (freeze, forgive, broken promises)
            plan_special(self._job(inv, facts, history, out))
            return
        if self.excluded(inv) is not None:
            return
        entries = history.get(inv.id)  # _job, inlined: this is the hot path
        if entries:
            tenant = inv.tenant
            final: set[tuple[str, str, str]] = {
                (e.kind, e.rule, e.occurrence) for e in entries
                if e.state in _TERMINAL and e.tenant == tenant
            }
            _Invoice(self, inv, facts, final, entries, out).run()
        else:
            _Invoice(self, inv, facts, _NO_KEYS, (), out).run()

    def _job(self, inv: Invoice, facts: _DueFacts, history: Mapping[str, Sequence[LedgerEntry]],
             out: list[tuple[tuple[Any, ...], Action]]) -> _Invoice:
        entries = history.get(inv.id)
        if not entries:
            return _Invoice(self, inv, facts, _NO_KEYS, (), out)
        tenant = inv.tenant
        # ledger keys recorded for good (StrEnum kinds hash like their values)
        final: set[tuple[str, str, str]] = {
            (e.kind, e.rule, e.occurrence) for e in entries
            if e.state in _TERMINAL and e.tenant == tenant
        }
        return _Invoice(self, inv, facts, final, entries, out)


def _index_pauses(pauses: Sequence[Pause]) -> dict[tuple[str, str], tuple[Pause, ...]]:
    """Pauses by ("i", invoice id) or ("c", customer id), so a lookup costs two dict hits."""
    out: dict[tuple[str, str], tuple[Pause, ...]] = {}
    for p in pauses:
        target = ("i", p.invoice_id) if p.invoice_id is not None else ("c", str(p.customer_id))
        out[target] = (*out.get(target, ()), p)
    return out

class _Invoice:
    """Planning for one invoice (kept as an object so the steps share their inputs)."""

    __slots__ = ("entries", "facts", "final", "inv", "out", "p", "values", "windows")

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
        self.windows: tuple[tuple[date, date], ...] = ()  # paused days to forgive

    def mine(self) -> list[LedgerEntry]:
        tenant = self.inv.tenant
        return [e for e in self.entries if e.tenant == tenant]

    def run(self) -> None:
        if self.facts.has_fees:
            plan_fees(self)
        if self.facts.latest >= 0:
            plan_reminders(self)
        if self.p.c.escalations and self.facts.days_overdue >= 1 and self.p.sending_day:
            plan_escalations(self)

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

