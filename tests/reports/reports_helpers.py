"""Builders for the report tests: invoices and ledger entries with only what matters said."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from ar_sync.domain.models import ActionKind, EntryState, Invoice, InvoiceStatus, LedgerEntry

UPDATED = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def inv(id: str, customer: str, name: str, issued: str, due: str, total: str, *,
        balance: str | None = None, currency: str = "USD", paid_at: str | None = None,
        status: InvoiceStatus | None = None, disputed: bool = False) -> Invoice:
    """An invoice; `paid_at` makes it PAID with balance 0, else it is OPEN (balance = total)."""
    if status is None:
        status = InvoiceStatus.PAID if paid_at else InvoiceStatus.OPEN
    bal = "0" if status == InvoiceStatus.PAID else (balance if balance is not None else total)
    return Invoice(platform="file", tenant="t1", id=id, number=f"INV-{id}", customer_id=customer,
                   customer_name=name, issue_date=date.fromisoformat(issued),
                   due_date=date.fromisoformat(due), currency=currency, total=Decimal(total),
                   balance=Decimal(bal), status=status, updated_at=UPDATED,
                   paid_at=date.fromisoformat(paid_at) if paid_at else None, disputed=disputed)


def entry(invoice_id: str, kind: ActionKind, on: str, state: EntryState = EntryState.DONE,
          rule: str = "stage") -> LedgerEntry:
    day = date.fromisoformat(on)
    return LedgerEntry(key=f"k-{invoice_id}-{kind}-{on}-{state}", tenant="t1",
                       invoice_id=invoice_id, kind=kind, rule=rule, occurrence="once",
                       state=state, due_on=day,
                       updated_at=datetime.combine(day, time(9, 0), tzinfo=UTC))


AS_OF = date(2026, 3, 31)


def fixture_invoices() -> list[Invoice]:
    """Four customers; the expected figures are worked out by hand in test_reports_figures."""
    return [
        # Acme Ltd (USD): one paid 10 days late, one 28 days overdue, one not yet due
        inv("A1", "C1", "Acme Ltd", "2026-01-01", "2026-01-31", "1000.00", paid_at="2026-02-10"),
        inv("A2", "C1", "Acme Ltd", "2026-02-01", "2026-03-03", "500.00"),
        inv("A3", "C1", "Acme Ltd", "2026-03-15", "2026-04-14", "300.00"),
        # Globex (USD and EUR): 120 and 50 days overdue, one paid 30 days late
        inv("G1", "C2", "Globex", "2025-11-01", "2025-12-01", "2000.00", balance="1500.00"),
        inv("G2", "C2", "Globex", "2026-01-10", "2026-02-09", "800.00", currency="EUR"),
        inv("G3", "C2", "Globex", "2025-10-01", "2025-10-31", "400.00", currency="EUR",
            paid_at="2025-11-30"),
        # Initech (JPY): 40 days overdue and disputed, 90 days overdue
        inv("I1", "C3", "Initech", "2026-01-20", "2026-02-19", "50000", currency="JPY",
            disputed=True),
        inv("I2", "C3", "Initech", "2025-12-01", "2025-12-31", "20000", currency="JPY"),
        # Umbrella (USD): always on time; a voided and a draft invoice that count nowhere
        inv("U1", "C4", "Umbrella", "2026-02-01", "2026-03-01", "250.00", paid_at="2026-02-25"),
        inv("U2", "C4", "Umbrella", "2025-12-15", "2026-01-14", "100.00", paid_at="2026-01-14"),
        inv("U3", "C4", "Umbrella", "2026-03-01", "2026-01-01", "999.00",
            status=InvoiceStatus.VOIDED, balance="999.00"),
        inv("U4", "C4", "Umbrella", "2026-03-01", "2026-01-01", "888.00",
            status=InvoiceStatus.DRAFT, balance="888.00"),
    ]


def fixture_history() -> dict[str, list[LedgerEntry]]:
    return {
        "G1": [
            entry("G1", ActionKind.NOTE, "2026-01-05", rule="overdue-1"),  # unpaid 85 days after
            entry("G1", ActionKind.REMINDER_EMAIL, "2026-01-05", rule="overdue-1"),  # same stage
            entry("G1", ActionKind.NOTE, "2026-02-01", EntryState.FAILED, rule="overdue-2"),
            entry("G1", ActionKind.REMINDER_EMAIL, "2026-03-28", rule="overdue-3"),  # in grace
        ],
        "G2": [
            entry("G2", ActionKind.REMINDER_EMAIL, "2026-02-12"),  # ignored
            entry("G2", ActionKind.LATE_FEE, "2026-02-20"),  # a fee is not a reminder
        ],
        "U1": [entry("U1", ActionKind.NOTE, "2026-02-20")],  # before due: not ignored
    }
