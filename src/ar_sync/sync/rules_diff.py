"""`ar-sync rules diff`: what a rules change would do, before it is applied.

Both rule sets are simulated over the same days from the same snapshot and ledger (the
engine's `simulate`: nobody pays, every action is taken as done the day it is due), and the
two lists of actions are compared by what they are — invoice, kind, rule, occurrence (the same
identity the idempotency key has). Pure: no store, no platform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from ar_sync.domain.models import Action, ActionKind, Invoice, LedgerEntry, SkipStage
from ar_sync.planner.compiled import compile_policy
from ar_sync.planner.fee_maths import due_occurrences
from ar_sync.planner.invoice_checks import plannable
from ar_sync.planner.plan import simulate
from ar_sync.rules.policy import Policy
from ar_sync.sync.company import fee_totals
from ar_sync.sync.run import describe


@dataclass(frozen=True)
class DiffRow:
    change: str  # "new" | "gone" | "changed"
    invoice: str
    kind: str
    rule: str
    occurrence: str
    day: date  # when it becomes due (under the new rules for "new" and "changed")
    before: str  # what the current rules write ("" for new)
    after: str  # what the new rules write ("" for gone)


@dataclass(frozen=True)
class RulesDiff:
    start: date
    days: int
    rows: list[DiffRow]
    before: dict[str, str]  # fees (net of waivers) per currency under the current rules
    after: dict[str, str]
    counts: dict[str, int]  # new / gone / changed / same
    skipped: tuple[str, ...] = ()  # stored invoices the planner cannot take, and why

    def money(self) -> dict[str, Decimal]:
        """The money difference per currency (new minus current)."""
        out: dict[str, Decimal] = {}
        for cur in sorted(set(self.before) | set(self.after)):
            out[cur] = Decimal(self.after.get(cur, "0")) - Decimal(self.before.get(cur, "0"))
        return out


def _identity(a: Action) -> tuple[str, str, str, str]:
    return (a.invoice_id, str(a.kind), a.rule, a.occurrence)


def diff_actions(old: Sequence[Action], new: Sequence[Action], *, start: date,
                 days: int) -> RulesDiff:
    """Compare two simulations (skipped stages are bookkeeping, not differences)."""
    before = {_identity(a): a for a in old if not isinstance(a, SkipStage)}
    after = {_identity(a): a for a in new if not isinstance(a, SkipStage)}
    rows: list[DiffRow] = []
    same = 0
    for ident in sorted(set(before) | set(after), key=lambda i: (
            (after.get(i) or before[i]).due_on, (after.get(i) or before[i]).invoice_number, i)):
        a, b = before.get(ident), after.get(ident)
        shown = b or a
        assert shown is not None
        what_a, what_b = (describe(a) if a else ""), (describe(b) if b else "")
        if a is not None and b is not None and what_a == what_b and a.due_on == b.due_on:
            same += 1
            continue
        change = "new" if a is None else "gone" if b is None else "changed"
        if change == "changed" and what_a == what_b:
            what_a, what_b = f"{what_a} (due {a.due_on})", f"{what_b} (due {b.due_on})"  # type: ignore[union-attr]
        rows.append(DiffRow(change, shown.invoice_number, str(shown.kind), shown.rule,
                            shown.occurrence, shown.due_on, what_a, what_b))
    counts = {k: sum(r.change == k for r in rows) for k in ("new", "gone", "changed")}
    counts["same"] = same
    return RulesDiff(start, days, rows, fee_totals(list(before.values())),
                     fee_totals(list(after.values())), counts)


def history_before(history: Mapping[str, Sequence[LedgerEntry]], day: date,
                   zone: tzinfo = UTC) -> dict[str, list[LedgerEntry]]:
    """The ledger as it stood at the start of `day`, the company's day in its time zone
    `zone` (a backtest replays from there)."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    return {k: [e for e in v if _aware(e.updated_at) < start] for k, v in history.items()}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def rules_diff(invoices: Sequence[Invoice], history: Mapping[str, Sequence[LedgerEntry]],
               current: Policy, new: Policy, *, start: date, days: int,
               since: date | None = None, **planner: Any) -> RulesDiff:
    """Simulate `days` days from `start` under both rule sets; with `since`, replay the past
    instead: from `since` through `start` from the ledger as it was then (a backtest)."""
    if since is not None:
        history = history_before(history, since, compile_policy(current).zone)
        days = (start - since).days + 1
        start = since
    usable, skipped = plannable(invoices)  # a store written before the fetch filtered them
    old = simulate(usable, history, current, start, days, **planner)
    fresh = simulate(usable, history, new, start, days, **planner)
    diff = diff_actions(old, fresh, start=start, days=days)
    naive = simulate(usable, _exact_only(usable, history, new, start + timedelta(days=days)),
                     new, start, days, **planner)
    kept = not_repeated(naive, fresh)
    return replace(diff, rows=diff.rows + kept, skipped=tuple(skipped),
                   counts={**diff.counts, NOT_REPEATED: len(kept)})


NOT_REPEATED = "not repeated"
_REPEATABLE = (ActionKind.LATE_FEE, ActionKind.REMINDER_EMAIL, ActionKind.CUSTOMER_EMAIL)
_STAGE_KIND = {"platform": ActionKind.REMINDER_EMAIL, "email": ActionKind.CUSTOMER_EMAIL}


def _exact_only(invoices: Sequence[Invoice], history: Mapping[str, Sequence[LedgerEntry]],
                new: Policy, until: date) -> dict[str, list[LedgerEntry]]:
    """The ledger as a planner that matched rows only by their exact identity would read it:
    fee rows written under another rule name or schedule, and stage e-mails sent through
    another channel, left out. What that planner would write and the real one does not is
    what a change would repeat without the journey's rules (shown as "not repeated")."""
    fees = compile_policy(new).fees
    due = {i.id: i.due_date for i in invoices}
    channel = {r.name: _STAGE_KIND.get(r.delivery) for r in new.reminders}

    def exact(e: LedgerEntry) -> bool:
        if e.kind == ActionKind.LATE_FEE:
            day = due.get(e.invoice_id)
            return day is not None and any(
                f.name == e.rule and e.occurrence in
                {o.label for o in due_occurrences(f.terms, day, until)} for f in fees)
        if e.kind in (ActionKind.REMINDER_EMAIL, ActionKind.CUSTOMER_EMAIL):
            return channel.get(e.rule) == e.kind
        return True

    return {k: [e for e in v if exact(e)] for k, v in history.items()}


def not_repeated(naive: Sequence[Action], fresh: Sequence[Action]) -> list[DiffRow]:
    """Fees and stage e-mails the new rules would write again if rows matched only by
    identity, and do not: a fee day another rule or schedule charged, a stage sent through
    the other channel."""
    planned = {_identity(a) for a in fresh}
    return [DiffRow(NOT_REPEATED, a.invoice_number, str(a.kind), a.rule, a.occurrence,
                    a.due_on, "", f"not repeated: {describe(a)}")
            for a in naive if a.kind in _REPEATABLE and _identity(a) not in planned]


def end_of(diff: RulesDiff) -> date:
    return diff.start + timedelta(days=diff.days - 1)


__all__ = ["NOT_REPEATED", "DiffRow", "RulesDiff", "diff_actions", "end_of", "history_before",
           "not_repeated", "rules_diff"]
