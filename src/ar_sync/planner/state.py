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
    Compiled,
    DueFacts,
    compile_policy,
    facts_for,
)
from ar_sync.planner.journey import CustomerLog, Offer, Optimistic
from ar_sync.rules.policy import Policy
from ar_sync.rules.templates import invoice_values
from ar_sync.rules.terms import journey_values


class Planner:
    """One plan() call: the compiled policy, today, and caches keyed by due date."""

    __slots__ = ("c", "contacts", "facts", "go_live", "jobs", "offers", "open_gates",
                 "pauses", "policy", "sending_day", "today", "versions")

    def __init__(self, policy: Policy, today: date, *, go_live: date | None = None,
                 pauses: Sequence[Pause] = (),
                 contacts: Mapping[str, CustomerLog] | None = None,
                 versions: Mapping[int, Policy] | None = None) -> None:
        self.policy = policy
        # the company's stored rules versions, by number: which days an older fee row
        # covered is read from the version that planned it (fee_days.py)
        self.versions = versions if versions is not None else {}
        # customer id -> what the ledger says of them (None: read from the plan's history);
        # Optimistic: every gate open (a judge that must not leave anything out)
        self.contacts = contacts
        self.open_gates = isinstance(contacts, Optimistic)
        self.jobs: list[InvoiceJob] = []  # invoices with something possibly due today
        self.offers: dict[str, list[Offer]] = {}  # customer id -> today's stage offers
        self.c = compile_policy(policy)
        self.today = today
        self.go_live = go_live
        self.pauses = _index_pauses(pauses)
        self.sending_day = not self.c.business_only or self.c.calendar.is_business_day(today)
        self.facts: dict[date, DueFacts | None] = {}

    def version(self, number: int | None) -> Compiled:
        """The compiled rules version `number` (the current rules when not given)."""
        found = self.versions.get(number) if number is not None else None
        return self.c if found is None else compile_policy(found)

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


NO_LOG = CustomerLog()


def _index_pauses(pauses: Sequence[Pause]) -> dict[tuple[str, str], tuple[Pause, ...]]:
    """Pauses by ("i", invoice id) or ("c", customer id), so a lookup costs two dict hits."""
    out: dict[tuple[str, str], tuple[Pause, ...]] = {}
    for p in pauses:
        target = ("i", p.invoice_id) if p.invoice_id is not None else ("c", str(p.customer_id))
        out[target] = (*out.get(target, ()), p)
    return out

class InvoiceJob:
    """Planning for one invoice (kept as an object so the steps share their inputs)."""

    __slots__ = ("entries", "facts", "final", "inv", "log", "out", "p", "rows", "values",
                 "windows")

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
        self.log = NO_LOG  # the customer's (journey.customer_logs), set before the steps run
        self.rows: list[LedgerEntry] | None = None

    def mine(self) -> list[LedgerEntry]:
        """The invoice's rows of this tenant (read once per job: the steps ask often)."""
        if self.rows is None:
            tenant = self.inv.tenant
            self.rows = [e for e in self.entries if e.tenant == tenant]
        return self.rows

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
            self.values.update(journey_values(self.p.policy, inv.currency, self.p.today))
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

    def offer(self, actions: list[tuple[tuple[Any, ...], Action]], *, facing: bool,
              own_email: bool, rank: int, noted: date | None = None,
              sends: bool = True, stepped_today: bool = False) -> None:
        """Hand today's stage (or escalation) actions to journey.settle, which decides per
        customer what goes out today. `rank`: which reaches the customer first when only one
        may (an escalation before a platform e-mail), then the most overdue and largest.
        `noted`: for an e-mail still owed, the day its stage's note was written. `sends`:
        whether anything reaches the customer (a stage whose e-mail cannot go is a step of
        the journey all the same)."""
        if not actions:
            return
        inv = self.inv
        if facing and self.entries:
            # a step already under way (one of its writes claimed or waiting for a retry,
            # e.g. a runner died between the note and the e-mail) is finished, not held:
            # it is the same message, not a new one
            flight = {e.key for e in self.entries if e.state not in TERMINAL}
            facing = not any(a.key in flight for _, a in actions)
        offer = Offer(inv.customer_id, facing, own_email,
                      (rank, self.facts.days_overdue, inv.balance, inv.id), actions, noted,
                      sends, stepped_today)
        self.p.offers.setdefault(inv.customer_id, []).append(offer)

    def overdue_text(self) -> str:
        d = self.facts.days_overdue
        if d > 0:
            return f"{d} day{'s' if d > 1 else ''} overdue"
        return "due today" if d == 0 else f"due in {-d} days"

