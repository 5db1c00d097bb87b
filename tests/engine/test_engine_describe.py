"""How an action is described for people: the run report's line and the plan table's column
(`ar-sync plan`), both from `describe`, for every kind of action."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from ar_sync.domain.models import (
    Action,
    AddNote,
    ApplyLateFee,
    CustomerMessage,
    EmailReminder,
    Escalate,
    EscalationNotice,
    FeeMode,
    Money,
    SendReminder,
    SkipStage,
    WaiveFee,
)
from ar_sync.sync.run_report import describe

BASE: dict[str, Any] = {"key": "k", "tenant": "t", "platform": "xero", "invoice_id": "i1",
                        "invoice_number": "INV-1", "rule": "overdue", "occurrence": "once",
                        "due_on": date(2026, 11, 30), "reason": "why"}
ITEM = EmailReminder(**BASE, customer_id="c1")
ITEM2 = EmailReminder(**{**BASE, "invoice_number": "INV-2"}, customer_id="c1")

# (action, the run report's line, the plan table's column)
CASES: list[tuple[Action, str, str]] = [
    (AddNote(**BASE, text="Reminder sent"), "note: Reminder sent", "Reminder sent"),
    (AddNote(**BASE, text="x" * 80), "note: " + "x" * 80, "x" * 69 + "…"),
    (AddNote(**BASE, text="y" * 70), "note: " + "y" * 70, "y" * 70),
    (SendReminder(**BASE, to="a@b.example"), "platform e-mail to a@b.example",
     "to a@b.example"),
    (SendReminder(**BASE), "platform e-mail to the customer", "platform e-mail"),
    (ApplyLateFee(**BASE, amount=Money(amount=Decimal("1234.5"), currency="USD"),
                  label="Late fee"),
     "fee 1234.50 USD (line mode): Late fee", "1,234.50 USD (line)"),
    (ApplyLateFee(**BASE, amount=Money(amount=Decimal(2000), currency="JPY"), label="Fee",
                  mode=FeeMode.INVOICE),
     "fee 2000 JPY (invoice mode): Fee", "2,000 JPY (invoice)"),
    (WaiveFee(**BASE, fee_key="f", amount=Money(amount=Decimal(20), currency="EUR"),
              label="Waived"),
     "waive fee 20.00 EUR: Waived", "-20.00 EUR (Waived)"),
    (Escalate(**BASE, to="agency", text="Handed over"), "escalation note: Handed over",
     "to agency"),
    (SkipStage(**BASE, superseded_by="final"), "skip stage (superseded by final)",
     "recorded, not sent"),
    (ITEM, "e-mail item of stage overdue", ""),
    (CustomerMessage(**BASE, customer_id="c1", customer_name="C", to="c@d.example",
                     items=(ITEM, ITEM2), message_id="m", subject="Overdue", text="t",
                     html="h", tone="firm"),
     "e-mail to c@d.example: 'Overdue' (INV-1, INV-2)", "to c@d.example: Overdue (2 invoice(s))"),
    (EscalationNotice(**BASE, channel="webhook", target="https://hook.example", escalation="e",
                      body={}),
     "escalation notice by webhook to https://hook.example", "webhook https://hook.example"),
]


@pytest.mark.parametrize(("action", "line", "column"), CASES,
                         ids=[f"{a.kind}-{n}" for n, (a, _, _) in enumerate(CASES)])
def test_describe_full_and_brief(action: Action, line: str, column: str) -> None:
    assert describe(action) == line
    assert describe(action, brief=True) == column


def test_every_kind_of_action_is_described() -> None:
    kinds = {type(a) for a, _, _ in CASES}
    assert kinds == set(Action.__origin__.__args__)  # type: ignore[attr-defined]
