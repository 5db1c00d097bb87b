"""Builders for the payment-plan and risk tests: invoices, rules, recorded ledger rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal

from ar_sync.domain.models import Action, ApplyLateFee, EntryState, Invoice, LedgerEntry
from ar_sync.rules.policy import Policy, parse_policy

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

# the journey as before issue 21 (first stage by age, fees as agreed terms, a message a day at
# most): these tests are about payment plans and risk underneath it
RULES = """
calendar: {send_on: any_day}
journey: {first_contact: by_age, fee_notice: agreed, min_gap: 1}
reminders:
  - {name: before, days: -3}
  - {name: first, days: 7, email: true}
  - {name: second, days: 14, tone: firm}
  - {name: final, days: 30, tone: final}
late_fees:
  - {name: late, kind: fixed, amount: 25, every: once, grace_days: 5}
escalations:
  - {name: agency, when: {days_overdue: 60}, to: {agency: Collectors Ltd}}
"""


def rules(extra: str = "") -> Policy:
    return parse_policy(RULES + extra, "test.yaml")


def invoice(*, due: date, total: str = "900.00", balance: str | None = None,
            currency: str = "USD", n: int = 1, customer: str = "c1") -> Invoice:
    return Invoice(platform="fake", tenant="t1", id=f"inv-{n}", number=f"INV-{n}",
                   customer_id=customer, customer_name=f"Customer {customer}",
                   customer_email=f"{customer}@example.com", issue_date=date(2026, 9, 1),
                   due_date=due, currency=currency, total=Decimal(total),
                   balance=Decimal(total if balance is None else balance), updated_at=NOW)


def record(history: dict[str, list[LedgerEntry]], actions: Iterable[Action],
           at: datetime = NOW) -> dict[str, list[LedgerEntry]]:
    """A new history with every action recorded as done (skips as skipped) at `at`."""
    out = {k: list(v) for k, v in history.items()}
    for a in actions:
        state = EntryState.SKIPPED if str(a.kind) == "skip" else EntryState.DONE
        amount = a.amount.amount if isinstance(a, ApplyLateFee) else None
        out.setdefault(a.invoice_id, []).append(LedgerEntry(
            key=a.key, tenant=a.tenant, invoice_id=a.invoice_id, kind=a.kind, rule=a.rule,
            occurrence=a.occurrence, state=state, due_on=a.due_on, updated_at=at,
            amount=amount))
    return out
