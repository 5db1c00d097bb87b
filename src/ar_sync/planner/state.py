"""The planner's per-call and per-invoice state: exclusions, due-date caches, emitting
actions in priority order. The steps that use it (stages, fees, escalation, pauses) are run by
steps.py, so this module imports none of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime, time
from typing import Any

from ar_sync.domain.construct import ACTION_KINDS, construct
from ar_sync.domain.models import Action, Invoice, LedgerEntry, action_key
from ar_sync.domain.pauses import Pause, active_pauses
from ar_sync.planner.compiled import (
    FEE,
    KIND_ORDER,
    NO_KEYS,
    TERMINAL,
    DueFacts,
    compile_policy,
    facts_for,
)
from ar_sync.rules.policy import Policy
from ar_sync.rules.templates import invoice_values


class Planner:
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
        self.facts: dict[date, DueFacts | None] = {}

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

    def due_facts(self, due: date) -> DueFacts | None:
        try:
            return self.facts[due]
        except KeyError:
            found = self.facts[due] = facts_for(self.c, due, self.today, self.sending_day,
                                             self.go_live)
            return found

    def job(self, inv: Invoice, facts: DueFacts, history: Mapping[str, Sequence[LedgerEntry]],
             out: list[tuple[tuple[Any, ...], Action]]) -> InvoiceJob:
        entries = history.get(inv.id)
        if not entries:
            return InvoiceJob(self, inv, facts, NO_KEYS, (), out)
        tenant = inv.tenant
        # ledger keys recorded for good (StrEnum kinds hash like their values)
        final: set[tuple[str, str, str]] = {
            (e.kind, e.rule, e.occurrence) for e in entries
            if e.state in TERMINAL and e.tenant == tenant
        }
        return InvoiceJob(self, inv, facts, final, entries, out)


def _index_pauses(pauses: Sequence[Pause]) -> dict[tuple[str, str], tuple[Pause, ...]]:
    """Pauses by ("i", invoice id) or ("c", customer id), so a lookup costs two dict hits."""
    out: dict[tuple[str, str], tuple[Pause, ...]] = {}
    for p in pauses:
        target = ("i", p.invoice_id) if p.invoice_id is not None else ("c", str(p.customer_id))
        out[target] = (*out.get(target, ()), p)
    return out

class InvoiceJob:
    """Planning for one invoice (kept as an object so the steps share their inputs)."""

    __slots__ = ("entries", "facts", "final", "inv", "out", "p", "values", "windows")

    def __init__(self, p: Planner, inv: Invoice, facts: DueFacts,
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
        action = construct(cls, {
            "key": action_key(inv.tenant, inv.platform, inv.id, kind, rule, occurrence),
            "tenant": inv.tenant, "platform": inv.platform, "invoice_id": inv.id,
            "invoice_number": inv.number, "rule": rule, "occurrence": occurrence,
            "due_on": due_on, "reason": reason, **fields, "kind": ACTION_KINDS[kind],
        })
        sort = (1 if kind != FEE else 0, -self.facts.days_overdue, -inv.balance, inv.tenant,
                inv.platform, inv.id, KIND_ORDER[kind], due_on, rule, occurrence)
        self.out.append((sort, action))

    def overdue_text(self) -> str:
        d = self.facts.days_overdue
        if d > 0:
            return f"{d} day{'s' if d > 1 else ''} overdue"
        return "due today" if d == 0 else f"due in {-d} days"

