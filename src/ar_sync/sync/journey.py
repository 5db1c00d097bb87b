"""One customer's follow-up as a person follows it: what was sent or written when (the
ledger), and what comes next and when (the planner's simulation of the coming days, nobody
paying, from the same snapshot, ledger, pauses and rules a run uses)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ar_sync.domain.models import ActionKind, EmailReminder, EntryState, Invoice, SkipStage
from ar_sync.planner.plan import simulate_days
from ar_sync.sync.company_rules import choose_rules
from ar_sync.sync.company_store import planner_pauses
from ar_sync.sync.connector import Connection
from ar_sync.sync.run_report import describe
from ar_sync.sync.store import Store

KIND_WORDS: dict[str, str] = {
    ActionKind.MESSAGE: "e-mail", ActionKind.NOTE: "note on the invoice",
    ActionKind.REMINDER_EMAIL: "invoice e-mailed by the platform",
    ActionKind.LATE_FEE: "late fee", ActionKind.WAIVE_FEE: "fee waived",
    ActionKind.ESCALATE: "escalation", ActionKind.NOTIFY: "escalation notice",
}

# bookkeeping rows, and e-mail items (the customer's message of the day is listed)
NOT_SHOWN = (ActionKind.SKIP, ActionKind.CUSTOMER_EMAIL)


@dataclass(frozen=True)
class JourneyStep:
    day: date
    invoice: str  # the invoice number
    kind: str  # in words: "e-mail", "late fee", ...
    what: str
    state: str  # done | waiting | failed | planned (next steps)


@dataclass(frozen=True)
class Journey:
    customer_id: str
    customer_name: str
    invoices: list[Invoice]
    past: list[JourneyStep]
    upcoming: list[JourneyStep]


def _word(kind: ActionKind | str) -> str:
    return KIND_WORDS.get(str(kind), str(kind).replace("_", " "))


def customer_journey(store: Store, connection: Connection, customer_id: str, today: date, *,
                     days: int = 45) -> Journey | None:
    """None when the customer has no open invoice in the snapshot."""
    tenant = connection.id
    invoices = [i for i in store.open_invoices(tenant) if i.customer_id == customer_id]
    if not invoices:
        return None
    numbers = {i.id: i.number for i in invoices}
    history = store.history(tenant, [i.id for i in invoices])
    past: list[JourneyStep] = []
    for entries in history.values():
        for e in entries:
            if e.state == EntryState.SKIPPED or e.kind in NOT_SHOWN:
                continue
            payload = store.action_payload(e.key)
            what = describe(payload) if payload is not None else f"{e.rule} {e.occurrence}"
            state = {EntryState.DONE: "done", EntryState.FAILED: "failed"}.get(
                e.state, "waiting")
            past.append(JourneyStep(e.updated_at.date(), numbers.get(e.invoice_id, ""),
                                    _word(e.kind), what, state))
    policy = choose_rules(store, connection).policy
    coming = simulate_days(invoices, history, policy, today, days,
                           go_live=connection.live_from(),
                           pauses=planner_pauses(store.list_pauses(tenant)),
                           plans=store.payment_plans(tenant))
    upcoming = [JourneyStep(day, a.invoice_number,  # the day it goes, not the stage's due day
                            f"e-mail ({a.rule})" if isinstance(a, EmailReminder)
                            else _word(a.kind), describe(a), "planned")
                for day, a in coming if not isinstance(a, SkipStage)]
    past.sort(key=lambda s: (s.day, s.invoice), reverse=True)
    return Journey(customer_id, invoices[0].customer_name, invoices, past, upcoming)


__all__ = ["Journey", "JourneyStep", "customer_journey"]
