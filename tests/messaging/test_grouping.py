"""Grouping is pure: one message per customer and day, in the firmest tone, every invoice
listed; contacts decide who gets nothing; keys and Message-IDs are deterministic."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ar_sync.domain.contacts import Contact
from ar_sync.domain.models import (
    ActionKind,
    CustomerMessage,
    EmailReminder,
    EntryState,
    Escalate,
    EscalationNotice,
    Invoice,
    LedgerEntry,
    action_key,
)
from ar_sync.messages.compose import TONES
from ar_sync.messages.grouping import plan_messages
from ar_sync.planner.plan import plan
from ar_sync.rules.policy import PolicyError, parse_policy
from ar_sync.sync.mail import mail_rules

from .helpers import RULES, TODAY, invoice, rules


def _group(invoices: list[Invoice], *, text: str = RULES,  # type: ignore[no-untyped-def]
           contacts: dict[str, Contact] | None = None, today=TODAY, history=None):
    policy = rules(text)
    actions = plan(invoices, history or {}, policy, today)
    by_id = {i.id: i for i in invoices}
    return actions, plan_messages(actions, by_id, mail_rules(policy), contacts or {}, today,
                                  sender_domain="acme.example")


def test_channel_email_plans_items_not_platform_emails() -> None:
    actions, _ = _group([invoice(1, 3)])
    kinds = sorted(str(a.kind) for a in actions if str(a.kind) != "skip")
    assert kinds == ["customer_email", "note"]  # the note still records the stage
    item = next(a for a in actions if isinstance(a, EmailReminder))
    assert item.rule == "overdue-1" and item.customer_id == "c1"


def test_one_message_per_customer_listing_every_invoice_in_the_firmest_tone() -> None:
    invs = [invoice(1, 3), invoice(2, 20, balance="250.00"), invoice(3, 50, balance="75.50"),
            invoice(4, 3, customer="c2", name="Other", email="other@example.com")]
    _, grouped = _group(invs)
    assert len(grouped.messages) == 2
    one = next(m for m in grouped.messages if m.customer_id == "c1")
    assert sorted(i.invoice_number for i in one.items) == ["INV-1", "INV-2", "INV-3"]
    assert one.tone == "final"  # the firmest among friendly, firm and final
    assert one.subject.startswith("Final notice from Acme Supplies")
    for n, amount in (("INV-1", "$100.00"), ("INV-2", "$250.00"), ("INV-3", "$75.50")):
        assert n in one.text and amount in one.text
        assert f"https://pay.example/inv/{n[4:]}" in one.text
    assert "notice: $425.50 is" in one.text  # total_due in the final tone's opening
    assert re.search(r"^Total due +\$425\.50$", one.text, re.MULTILINE)
    assert one.to == "one@example.com"
    # no e-mail item is left in the plan: the message replaced them, at the first one's place
    assert not any(isinstance(a, EmailReminder) for a in grouped.actions)
    assert sum(isinstance(a, CustomerMessage) for a in grouped.actions) == 2


def test_group_by_invoice_sends_one_message_each() -> None:
    text = RULES.replace("email: {group_by: customer}", "email: {group_by: invoice}")
    _, grouped = _group([invoice(1, 3), invoice(2, 20)], text=text)
    assert len(grouped.messages) == 2
    assert len({m.key for m in grouped.messages}) == 2
    assert all(len(m.items) == 1 for m in grouped.messages)


def test_stage_wording_and_placeholders() -> None:
    _, grouped = _group([invoice(1, 20), invoice(2, 16)])
    (msg,) = grouped.messages
    assert msg.subject == "Second reminder: $200.00 overdue"
    assert msg.text.startswith("Dear Customer One,\n\n2 invoice(s) are overdue.")


def test_totals_are_per_currency_never_converted() -> None:
    _, grouped = _group([invoice(1, 20, currency="JPY", balance="15000"),
                         invoice(2, 16, currency="BHD", balance="12.345"),
                         invoice(3, 16, balance="1000.00")])
    (msg,) = grouped.messages
    # en_US (no country in the rules: the firmest invoice's currency), each currency's decimals
    assert "BHD12.345 + ¥15,000 + $1,000.00" in msg.subject
    assert re.search(r"^Total due +BHD12\.345 \+ ¥15,000 \+ \$1,000\.00$", msg.text,
                     re.MULTILINE)


def test_keys_are_deterministic_and_one_per_customer_and_day() -> None:
    invs = [invoice(1, 3), invoice(2, 20)]
    _, a = _group(invs)
    _, b = _group(list(reversed(invs)))
    assert [m.key for m in a.messages] == [m.key for m in b.messages]
    assert a.messages[0].message_id == b.messages[0].message_id
    assert a.messages[0].message_id.endswith("@acme.example>")
    assert a.messages[0].key in a.messages[0].message_id
    # the same customer with a different set of invoices, same day: same ledger key (one row a
    # day), different Message-ID
    _, c = _group([invoice(1, 3)])
    assert c.messages[0].key == a.messages[0].key
    assert c.messages[0].message_id != a.messages[0].message_id
    # the next day: another key
    later = [i.model_copy(update={"due_date": i.due_date + timedelta(days=1)}) for i in invs]
    _, d = _group(later, today=TODAY + timedelta(days=1))
    assert d.messages[0].key != a.messages[0].key


def test_contacts_override_opt_out_bounce_and_missing_address() -> None:
    invs = [invoice(1, 3), invoice(2, 3, customer="c2", name="Two", email=None),
            invoice(3, 3, customer="c3", name="Three", email="three@example.com"),
            invoice(4, 3, customer="c4", name="Four", email="four@example.com"),
            invoice(5, 3, customer="c5", name="Five", email=None)]
    contacts = {
        "c1": Contact(tenant="fake:1", customer_id="c1", email="ap@one.example"),
        "c3": Contact(tenant="fake:1", customer_id="c3", opted_out=True),
        "c4": Contact(tenant="fake:1", customer_id="c4", bounced="550 no such user"),
        "c5": Contact(tenant="fake:1", customer_id="c5", email="five@example.com"),
    }
    _, grouped = _group(invs, contacts=contacts)
    assert {m.customer_id: m.to for m in grouped.messages} == {"c1": "ap@one.example",
                                                               "c5": "five@example.com"}
    why = {u.customer_id: u.why for u in grouped.unreachable}
    assert why["c2"] == "no e-mail address"
    assert why["c3"] == "opted out"
    assert why["c4"].startswith("address bounced")


def test_escalation_notifies_each_target_once() -> None:
    inv = invoice(1, 70)
    at = datetime.combine(TODAY - timedelta(days=7), time(12), tzinfo=UTC)
    told = {inv.id: [LedgerEntry(  # the final notice, whose 7 days have passed
        key=action_key(inv.tenant, inv.platform, inv.id, kind, "final-notice", "once"),
        tenant=inv.tenant, invoice_id=inv.id, kind=kind, rule="final-notice",
        occurrence="once", state=EntryState.DONE, due_on=at.date(), updated_at=at)
        for kind in (ActionKind.NOTE, ActionKind.CUSTOMER_EMAIL)]}
    _actions, grouped = _group([inv], history=told)
    esc = [a for a in grouped.actions if isinstance(a, Escalate)]
    notices = [a for a in grouped.actions if isinstance(a, EscalationNotice)]
    assert len(esc) == 1
    assert sorted((n.channel, n.target) for n in notices) == [
        ("email", "credit@acme.example"), ("webhook", "http://127.0.0.1:9/hook")]
    assert all(n.escalation == esc[0].key for n in notices)
    assert len({n.key for n in notices}) == 2
    body = notices[0].body
    assert body["invoice_number"] == "INV-1" and body["balance"] == "100.00"


@pytest.mark.parametrize("bad, message", [
    ("channel: email, email: true", "contradicts"),
    ("channel: fax", "channel"),
    ('channel: email, subject: "{customer.name}"', "attribute access"),
    ('channel: email, body: "{fee}"', "unknown placeholder"),
])
def test_rules_errors_name_the_field(bad: str, message: str) -> None:
    text = RULES.replace("{name: overdue-1, days: 1, tone: friendly, channel: email}",
                         "{name: overdue-1, days: 1, tone: friendly, " + bad + "}")
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "rules.yaml")
    assert message in str(err.value) and "rules.yaml" in str(err.value)


def test_bad_notify_targets_are_refused() -> None:
    text = RULES.replace('webhook: ["http://127.0.0.1:9/hook"]', 'webhook: ["http://evil/x"]')
    with pytest.raises(PolicyError, match="https"):
        parse_policy(text, "rules.yaml")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(-5, 80), st.booleans()),
                min_size=1, max_size=14),
       st.sampled_from(["customer", "invoice"]))
def test_grouping_properties(rows: list[tuple[int, int, bool]], group_by: str) -> None:
    invs = [invoice(n, overdue, customer=f"c{cust}", name=f"Customer {cust}",
                    email=f"c{cust}@example.com" if has_email else None)
            for n, (cust, overdue, has_email) in enumerate(rows)]
    text = RULES.replace("email: {group_by: customer}", f"email: {{group_by: {group_by}}}")
    actions, grouped = _group(invs, text=text)
    items = [a for a in actions if isinstance(a, EmailReminder)]
    in_messages = [i.key for m in grouped.messages for i in m.items]
    unreachable = {n for u in grouped.unreachable for n in u.invoices}
    # every item is in exactly one message, or its customer is reported as not e-mailed
    assert len(in_messages) == len(set(in_messages))
    for item in items:
        assert (item.key in in_messages) != (item.invoice_number in unreachable)
    # one message per customer (per invoice with group_by: invoice), one ledger key each
    groups = [(m.customer_id, m.invoice_id if group_by == "invoice" else "") for m in
              grouped.messages]
    assert len(groups) == len(set(groups)) and len({m.key for m in grouped.messages}) == len(
        grouped.messages)
    for m in grouped.messages:
        assert len({i.customer_id for i in m.items}) == 1
        assert m.tone == max((i.tone for i in m.items), key=TONES.index)
        assert all(i.invoice_number in m.text for i in m.items)
