"""`on_paid` (issue 21): a thank-you, once, when an invoice that got a reminder is paid."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from html_dom import parse_html
from hypothesis import given, settings
from hypothesis import strategies as st

from ar_sync.domain.contacts import Contact
from ar_sync.domain.models import (
    ActionKind,
    EntryState,
    Invoice,
    InvoiceStatus,
    LedgerEntry,
)
from ar_sync.messages.thanks import THANKS, ThankRules, plan_thanks
from ar_sync.rules.policy import PolicyError, parse_policy
from ar_sync.sync.thanks import thank_rules

from .helpers import TODAY, invoice

RULES = ThankRules(subject="Thank you, {customer_name}", body="We received {total} for "
                   "invoice {invoice_number}, due {due_date}.", company="Acme")


def paid(n: int, days_ago: int = 1, **extra: object) -> Invoice:
    inv = invoice(n, 20, **extra)  # type: ignore[arg-type]
    return inv.model_copy(update={"status": InvoiceStatus.PAID, "balance": Decimal(0),
                                  "paid_at": TODAY - timedelta(days=days_ago)})


def row(inv: Invoice, kind: ActionKind, rule: str, state: EntryState,
        day: int = 5) -> LedgerEntry:
    return LedgerEntry(key=f"k-{inv.id}-{rule}-{state}", tenant=inv.tenant,
                       invoice_id=inv.id, kind=kind, rule=rule, occurrence="once",
                       state=state, due_on=TODAY - timedelta(days=day),
                       updated_at=datetime(2026, 11, 1, tzinfo=UTC))


def reminded(inv: Invoice) -> list[LedgerEntry]:
    return [row(inv, ActionKind.CUSTOMER_EMAIL, "overdue-1", EntryState.DONE)]


def test_thanks_once_for_a_reminded_paid_invoice() -> None:
    inv = paid(1)
    (msg,) = plan_thanks([inv], {inv.id: reminded(inv)}, RULES, {}, TODAY)
    assert msg.rule == THANKS and msg.to == "one@example.com"
    assert [(i.invoice_id, i.rule, i.occurrence) for i in msg.items] == [
        ("inv-1", THANKS, "once")]  # the invoice's own ledger row: once, whatever the day
    assert msg.subject == "Thank you, Customer One"
    assert "We received $100.00 for invoice INV-1, due October 27, 2026." in msg.text
    assert not re.search(r"\d{4}-\d\d-\d\d", msg.text + msg.html)
    done = [*reminded(inv), row(inv, ActionKind.MESSAGE, THANKS, EntryState.DONE, 0)]
    assert plan_thanks([inv], {inv.id: done}, RULES, {}, TODAY) == []  # never twice


def test_one_message_a_customer_lists_every_paid_invoice() -> None:
    one, two, other = paid(1), paid(2, balance="250.00"), paid(3, customer="c2",
                                                              email="c2@example.com")
    history = {i.id: reminded(i) for i in (one, two, other)}
    got = plan_thanks([one, two, other], history, RULES, {}, TODAY)
    assert sorted((m.customer_id, len(m.items)) for m in got) == [("c1", 2), ("c2", 1)]
    both = next(m for m in got if m.customer_id == "c1")
    assert "INV-1: $100.00, paid in full\nINV-2: $250.00, paid in full" in both.text
    # thanked already for INV-1 (its item row is done): only INV-2 is listed
    history[one.id] = [*reminded(one), row(one, ActionKind.CUSTOMER_EMAIL, THANKS,
                                              EntryState.DONE, 0)]
    (again,) = [m for m in plan_thanks([one, two], history, RULES, {}, TODAY)]
    assert [i.invoice_id for i in again.items] == ["inv-2"]


@pytest.mark.parametrize("state", [EntryState.FAILED, EntryState.CLAIMED, EntryState.RETRY])
def test_a_recorded_thank_you_is_never_planned_again(state: EntryState) -> None:
    inv = paid(1)
    rows = [*reminded(inv), row(inv, ActionKind.MESSAGE, THANKS, state, 1)]
    assert plan_thanks([inv], {inv.id: rows}, RULES, {}, TODAY) == []


def test_one_not_sent_on_its_day_is_planned_again() -> None:
    inv = paid(1)
    rows = [*reminded(inv), row(inv, ActionKind.MESSAGE, THANKS, EntryState.SKIPPED, 1)]
    assert len(plan_thanks([inv], {inv.id: rows}, RULES, {}, TODAY)) == 1


def test_who_is_not_thanked() -> None:
    quiet = paid(1)  # paid, never reminded
    note_only = paid(2)  # only a note on the invoice
    old = paid(3, days_ago=40)  # paid long ago
    before_live = paid(4, days_ago=3)
    opted_out = paid(5, customer="c5")
    history = {
        note_only.id: [row(note_only, ActionKind.NOTE, "overdue-1", EntryState.DONE)],
        old.id: reminded(old), before_live.id: reminded(before_live),
        opted_out.id: reminded(opted_out)}
    contacts = {"c5": Contact(tenant=opted_out.tenant, customer_id="c5", opted_out=True)}
    got = plan_thanks([quiet, note_only, old, before_live, opted_out], history, RULES,
                      contacts, TODAY, go_live=TODAY - timedelta(days=2))
    assert got == []
    platform = paid(6)
    rows = [row(platform, ActionKind.REMINDER_EMAIL, "overdue-1", EntryState.DONE)]
    assert len(plan_thanks([platform], {platform.id: rows}, RULES, {}, TODAY)) == 1


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_names_stay_text(name: str) -> None:
    inv = paid(1, name=name)
    rules = ThankRules(subject=RULES.subject, body="Dear {customer_name}, thank you.")
    (msg,) = plan_thanks([inv], {inv.id: reminded(inv)}, rules, {}, TODAY)
    tags = parse_html(msg.html)
    assert tags.tags() <= {"html", "head", "meta", "title", "body", "p", "br"}
    assert "\n" not in msg.subject and "\r" not in msg.subject
    plain = name.replace("\r\n", "\n").replace("\r", "\n")
    if plain.strip() and "\n" not in plain:
        assert plain.strip() in "".join(tags.text)


def test_on_paid_in_the_rules() -> None:
    assert thank_rules(parse_policy("company_name: Acme\n", "t.yaml")) is None
    rules = thank_rules(parse_policy("company_name: Acme\non_paid: {}\n", "t.yaml"))
    assert rules is not None and rules.within_days == 14 and "{customer_name}" in rules.body
    with pytest.raises(PolicyError, match="on_paid"):
        parse_policy("on_paid: {body: '{invoice.__init__}'}\n", "t.yaml")
