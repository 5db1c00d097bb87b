"""Which invoices can have an action today, judged from a summary of their finished rows.

A store that keeps, per open invoice, a summary of its ledger rows recorded for good (done,
skipped, failed) — DynamoDB does, on the invoice's snapshot item — lets a run read ledger
rows only for the invoices this module names, instead of the tenant's whole ledger.

Two steps. engine_quiet.can_act, the quiet index's bound from the finished keys alone, leaves
out every invoice for which nothing can be due before a later day. It names the rest, among
them every invoice it cannot bound: a fee occurrence due but held back by a cap, a dispute or
a pause (in a long-delinquent book, most of them, every run). Those are then planned on a
history made from their summaries (key, state, a done row's time, a done fee's amount and due
day), where each detail a summary does not carry is set to the value that makes the planner do
the most: a note of unknown time counts as written long ago (the most reminders "ignored", so
escalations fire soonest), a fee of unknown amount as charging nothing (the most room under
the caps), nothing is in flight (no period taken, no sum pending); only the invoices the
planner acts on stay named. An invoice that plan() would act on with its real rows is
therefore named (tests/engine/test_engine_due.py checks this with hypothesis, disputes,
pauses and payment plans included); so are those without a summary, and disputed or paused
ones with a done fee of unknown amount (a waiver repeats the amount). Pure.

`with_summary` is the other half: once rows can age out, a run plans from the rows that
exist plus the summary of those that are gone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import NamedTuple

from ar_sync.domain.construct import ACTION_KINDS, construct
from ar_sync.domain.models import ActionKind, EntryState, Invoice, LedgerEntry, action_key
from ar_sync.domain.pauses import Pause
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.planner.can_act import can_act
from ar_sync.planner.plan import plan
from ar_sync.planner.state import Planner
from ar_sync.rules.policy import Policy


class Finished(NamedTuple):
    """One ledger row recorded for good, as compact as a summary keeps it."""

    kind: str
    rule: str
    occurrence: str
    state: str  # done, skipped or failed
    amount: Decimal | None = None  # a done fee: what it charged
    at: datetime | None = None  # a done row: when it was written (reminders "ignored")
    due_on: date | None = None  # a fee: the day it was due (periods of removed fee rules)


_LONG_AGO = datetime(1970, 1, 2, tzinfo=UTC)
_STATES = {s.value: s for s in EntryState}
_FEE, _DONE = ActionKind.LATE_FEE.value, EntryState.DONE.value


def finished_of(entry: LedgerEntry) -> Finished:
    """What a summary keeps of a row in a terminal state."""
    done = entry.state == EntryState.DONE
    fee = entry.kind == ActionKind.LATE_FEE
    return Finished(str(entry.kind), entry.rule, entry.occurrence, str(entry.state),
                    entry.amount if done and fee else None,
                    entry.updated_at if done else None, entry.due_on if fee else None)


def summary_history(invoice: Invoice, rows: Iterable[Finished]) -> list[LedgerEntry]:
    """Ledger entries standing for `rows`; what a row does not say is set to the value that
    makes the planner do the most (see the module docstring)."""
    return [construct(LedgerEntry, {
        "key": action_key(invoice.tenant, invoice.platform, invoice.id, f.kind, f.rule,
                          f.occurrence), "tenant": invoice.tenant, "invoice_id": invoice.id,
        "kind": ACTION_KINDS.get(f.kind, f.kind), "rule": f.rule, "occurrence": f.occurrence,
        "state": _STATES[f.state], "due_on": f.due_on or _LONG_AGO.date(),
        "updated_at": f.at or _LONG_AGO, "ref": None, "reason": None, "amount": f.amount,
        "attempts": 1, "owner": None, "lease_until": None, "rules_version": None})
        for f in rows]


def with_summary(invoices: Iterable[Invoice],
                 history: Mapping[str, Sequence[LedgerEntry]],
                 finished: Mapping[str, Collection[Finished]]) -> dict[str, list[LedgerEntry]]:
    """Each invoice's ledger rows plus what its summary keeps of rows no longer there (aged
    out): the history to plan from once rows can expire. A row that exists wins."""
    out = {i: list(rows) for i, rows in history.items()}
    for inv in invoices:
        kept = finished.get(inv.id)
        if not kept:
            continue
        rows = out.setdefault(inv.id, [])
        present = {(str(e.kind), e.rule, e.occurrence) for e in rows}
        rows += summary_history(inv, [f for f in kept
                                      if (f.kind, f.rule, f.occurrence) not in present])
    return out


def may_act(
    invoices: Iterable[Invoice],
    finished: Mapping[str, Collection[Finished]],
    policy: Policy,
    today: date,
    *,
    plans: Iterable[PaymentPlan] = (),
    go_live: date | None = None,
    pauses: Sequence[Pause] = (),
) -> set[str] | None:
    """Ids of the invoices plan_run() could act on today, given each invoice's finished keys
    (`finished`, by invoice id; an invoice missing from it is always named). None when the
    rules use customer risk levels: those are computed from every invoice's ledger rows."""
    invoices, plans = list(invoices), list(plans)
    keys = {i: {(f.kind, f.rule, f.occurrence) for f in rows} for i, rows in finished.items()}
    bound = can_act(invoices, keys, policy, today, plans=plans, go_live=go_live, pauses=pauses)
    if bound is None:
        return None  # risk rules
    judge = Planner(policy, today, go_live=go_live, pauses=pauses)
    named: set[str] = set()
    plain: list[Invoice] = []
    history: dict[str, list[LedgerEntry]] = {}
    for inv in invoices:
        if inv.id not in bound:
            continue  # nothing can be due for it before a later day (engine_quiet.first_due)
        rows = finished.get(inv.id)
        if rows is None or ((inv.disputed or judge.pauses_for(inv)) and any(
                f.kind == _FEE and f.state == _DONE and f.amount is None for f in rows)):
            named.add(inv.id)  # no summary; or waivers, which need every fee's amount
            continue
        plain.append(inv)
        if rows:
            history[inv.id] = summary_history(inv, rows)
    named.update(a.invoice_id for a in plan(plain, history, policy, today, plans,
                                            go_live=go_live, pauses=pauses))
    return named


__all__ = ["Finished", "finished_of", "may_act", "summary_history", "with_summary"]
