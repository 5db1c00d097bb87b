"""Shared fixtures for the e-mail tests: invoices, rules with `channel: email`, a store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from ar_sync.domain.models import Invoice
from ar_sync.rules.policy import Policy, parse_policy
from ar_sync.sync.connector import Connection

TODAY = date(2026, 11, 16)  # a Monday
NOW = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)
CONNECTION = Connection(id="fake:1", platform="fake", external_id="1", name="Fake Ltd")

RULES = """
version: 1
company_name: "Acme Supplies"
calendar: {timezone: UTC, send_on: any_day}
# the first stage by age and a message a day at most (the journey's own rules are tested in
# tests/engine/test_engine_journey.py): these tests are about grouping and delivery
journey: {first_contact: by_age, min_gap: 1}
reminders:
  - {name: heads-up, days: -3, tone: friendly}
  - {name: overdue-1, days: 1, tone: friendly, channel: email}
  - {name: overdue-2, days: 14, tone: firm, channel: email,
     subject: "Second reminder: {total_due} overdue",
     body: "Dear {customer_name},\\n\\n{invoice_count} invoice(s) are overdue."}
  - {name: final-notice, days: 45, tone: final, channel: email}
escalations:
  - name: collections
    when: {days_overdue: 60}
    to: {agency: "Collectors Inc"}
    notify:
      email: ["credit@acme.example"]
      webhook: ["http://127.0.0.1:9/hook"]
email: {group_by: customer}
"""


def rules(text: str = RULES) -> Policy:
    return parse_policy(text, "rules.yaml")


def invoice(n: int, days_overdue: int, *, customer: str = "c1", name: str = "Customer One",
            email: str | None = "one@example.com", balance: str = "100.00",
            currency: str = "USD", link: str | None = "https://pay.example/inv",
            tenant: str = CONNECTION.id) -> Invoice:
    due = TODAY - timedelta(days=days_overdue)
    return Invoice(platform="fake", tenant=tenant, id=f"inv-{n}", number=f"INV-{n}",
                   customer_id=customer, customer_name=name, customer_email=email,
                   issue_date=due - timedelta(days=30), due_date=due, currency=currency,
                   total=Decimal(balance), balance=Decimal(balance),
                   updated_at=datetime(2026, 10, 1, tzinfo=UTC),
                   payment_link=f"{link}/{n}" if link else None)
