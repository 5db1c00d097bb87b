"""Shared builders for the planner tests: invoices, ledger entries made from actions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from journey_support import by_age  # noqa: F401  (shared with the sync suites)

from ar_sync.domain.models import (
    Action,
    ActionKind,
    ApplyLateFee,
    EntryState,
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    action_key,
)
from ar_sync.rules.policy import Policy

TODAY = date(2026, 11, 30)  # a Monday
NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def make_invoice(
    n: int = 1,
    *,
    days_overdue: int = 10,
    total: str | Decimal = "1000.00",
    balance: str | Decimal | None = None,
    currency: str = "USD",
    status: InvoiceStatus = InvoiceStatus.OPEN,
    today: date = TODAY,
    **extra: object,
) -> Invoice:
    due = today - timedelta(days=days_overdue)
    fields: dict[str, object] = {
        "platform": "quickbooks", "tenant": "t1", "id": f"inv-{n}", "number": f"INV-{n}",
        "customer_id": f"c{n % 5}", "customer_name": f"Customer {n % 5}",
        "customer_email": f"c{n % 5}@example.com", "issue_date": due - timedelta(days=30),
        "due_date": due, "currency": currency, "total": Decimal(str(total)),
        "balance": Decimal(str(total if balance is None else balance)), "status": status,
        "updated_at": NOW,
    }
    fields.update(extra)
    return Invoice.model_validate(fields)


def entry(action: Action, state: EntryState = EntryState.DONE,
          at: datetime = NOW) -> LedgerEntry:
    """The ledger row the sync shell writes for `action` (at `at`)."""
    amount = action.amount.amount if isinstance(action, ApplyLateFee) else None
    return LedgerEntry(key=action.key, tenant=action.tenant, invoice_id=action.invoice_id,
                       kind=action.kind, rule=action.rule, occurrence=action.occurrence,
                       state=state, due_on=action.due_on, updated_at=at, amount=amount)


def record(history: dict[str, list[LedgerEntry]], actions: Iterable[Action],
           state: EntryState = EntryState.DONE,
           on: date | None = None) -> dict[str, list[LedgerEntry]]:
    """A new history with `actions` recorded in `state` (skips are always 'skipped'), on
    the day `on` (noon UTC; default NOW)."""
    at = datetime.combine(on, time(12), tzinfo=UTC) if on is not None else NOW
    out = {k: list(v) for k, v in history.items()}
    for a in actions:
        st = EntryState.SKIPPED if str(a.kind) == "skip" and state == EntryState.DONE else state
        out.setdefault(a.invoice_id, []).append(entry(a, st, at))
    return out


def noticed(invoices: Iterable[Invoice], policy: Policy, days_ago: int,
            today: date = TODAY) -> dict[str, list[LedgerEntry]]:
    """A history in which each invoice's final notice (the last stage of tone final) was
    written `days_ago` days before `today`: what an escalation waits for."""
    final = [r for r in sorted(policy.reminders, key=lambda r: r.days) if r.tone == "final"]
    stage = (final or sorted(policy.reminders, key=lambda r: r.days))[-1]
    kinds = [ActionKind.NOTE, *{"email": [ActionKind.CUSTOMER_EMAIL],  # and its e-mail
                                "platform": [ActionKind.REMINDER_EMAIL]}.get(stage.delivery, [])]
    at = datetime.combine(today - timedelta(days=days_ago), time(12), tzinfo=UTC)
    return {inv.id: [LedgerEntry(
        key=action_key(inv.tenant, inv.platform, inv.id, kind, stage.name, "once"),
        tenant=inv.tenant, invoice_id=inv.id, kind=kind, rule=stage.name,
        occurrence="once", state=EntryState.DONE, due_on=at.date(), updated_at=at)
        for kind in kinds] for inv in invoices}


# The default rules as they were before issue 21: every overdue stage through the platform's
# own invoice e-mail, the heads-up a note only (tests of platform e-mails use these).
PLATFORM_RULES = "extends: platform-email\n"
