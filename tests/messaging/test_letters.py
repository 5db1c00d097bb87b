"""Messages that get paid (issue 21): every message has the payment links, a total row, the
"already paid" line in every tone, the rules' payment instructions, and amounts and dates in
the company's locale; nothing technical (no ISO dates, no ledger keys) reaches the customer."""

from __future__ import annotations

import re

import pytest
from html_dom import parse_html
from hypothesis import given, settings
from hypothesis import strategies as st

from ar_sync.messages.compose import (
    ALREADY_PAID,
    ASK_FOR_DETAILS,
    TONES,
    House,
    Line,
    Wording,
    compose,
)
from ar_sync.messages.formats import locale_for
from ar_sync.messages.grouping import plan_messages
from ar_sync.planner.plan import plan
from ar_sync.rules.policy import PolicyError, parse_policy
from ar_sync.sync.mail import mail_rules

from .helpers import RULES, TODAY, invoice

ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


@pytest.mark.parametrize("tone", TONES)
def test_every_tone_says_thank_you_if_already_paid(tone: str) -> None:
    """Also with the admin's own body (before: only the friendly default said it)."""
    lines = [Line(invoice(1, 20), "s", tone)]
    for wording in ({}, {"s": Wording(tone, body="Pay {total_due} now.")}):
        msg = compose(lines, wording=wording, today=TODAY, house=House("Acme"))
        assert msg.text.count(ALREADY_PAID) == 1
        assert ALREADY_PAID in "".join(parse_html(msg.html).text)


def test_amounts_and_dates_in_the_companys_locale() -> None:
    inv = invoice(1, 16, balance="1234.50", currency="GBP")  # due 31 Oct 2026
    lines = [Line(inv, "s", "firm")]
    gb = compose(lines, wording={}, today=TODAY, house=House("Acme", locale="en_GB"))
    us = compose(lines, wording={}, today=TODAY, house=House("Acme", locale="en_US"))
    assert "£1,234.50" in gb.text and "31 October 2026" in gb.text
    assert "October 31, 2026" in us.text
    for msg in (gb, us):
        assert not ISO_DATE.search(msg.text) and not ISO_DATE.search(msg.html)
        assert "GBP" not in msg.text


def test_locale_defaults_to_the_companys_country_then_the_currency() -> None:
    assert locale_for(None, "GB", "USD") == "en_GB"
    assert locale_for(None, None, "NZD") == "en_NZ"
    assert locale_for(None, None, "XXX") == "en_US"
    assert locale_for("de_DE", "GB", "GBP") == "de_DE"
    uk = parse_policy("extends: uk-late-payment\n", "t.yaml")
    assert mail_rules(uk).house.country == "GB"


def test_unknown_locale_is_a_clear_error() -> None:
    for bad in ("xx_YY", "../../etc/passwd", "en-GB"):
        with pytest.raises(PolicyError, match="unknown locale"):
            parse_policy(f"locale: {bad!r}\n", "t.yaml")


def test_payment_instructions_in_every_message_escaped_and_safe() -> None:
    text = RULES + ('locale: en_GB\n'
                    'email: {group_by: customer, payment_instructions: "Bank transfer to '
                    '<b>Acme</b>, sort code 12-34-56, account 12345678.\\nQuote '
                    '{invoice_number}; {total_due} in all."}\n')
    text = text.replace("email: {group_by: customer}\n", "", 1)
    policy = parse_policy(text, "r.yaml")
    invs = [invoice(1, 20, balance="80.00", currency="GBP"),
            invoice(2, 3, customer="c2", name="Two", email="two@example.com")]
    actions = plan(invs, {}, policy, TODAY)
    grouped = plan_messages(actions, {i.id: i for i in invs}, mail_rules(policy), {}, TODAY)
    assert len(grouped.messages) == 2
    for msg in grouped.messages:
        assert "How to pay:\nBank transfer to <b>Acme</b>, sort code 12-34-56" in msg.text
        assert "&lt;b&gt;Acme&lt;/b&gt;" in msg.html and "<b>" not in msg.html
    one = next(m for m in grouped.messages if m.customer_id == "c1")
    assert "Quote INV-1; £80.00 in all." in one.text
    with pytest.raises(PolicyError, match="payment_instructions"):
        parse_policy("email: {payment_instructions: '{invoice.__class__}'}\n", "t.yaml")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 120), st.sampled_from(TONES),
                          st.sampled_from(["USD", "GBP", "EUR", "JPY", "BHD", "NZD"]),
                          st.booleans()), min_size=1, max_size=5),
       st.sampled_from([None, "en_GB", "en_US", "en_NZ", "de_DE"]))
def test_every_message_has_links_total_and_nothing_technical(
        rows: list[tuple[int, str, str, bool]], locale: str | None) -> None:
    lines = []
    for n, (days, tone, currency, linked) in enumerate(rows, start=1):
        inv = invoice(n, days, currency=currency, balance="1234.5" if currency != "JPY"
                      else "1234", link="https://pay.example/inv" if linked else None)
        lines.append(Line(inv, f"stage-{n}", tone))
    msg = compose(lines, wording={}, today=TODAY,
                  house=House("Acme", locale=locale, instructions="Pay to {company_name}."))
    shown = "".join(parse_html(msg.html).text)
    for ln in lines:
        link = ln.invoice.payment_link
        if link:
            assert f"Pay online: {link}" in msg.text and link in parse_html(msg.html).links
    assert re.search(r"^Total due +\S", msg.text, re.MULTILINE) and "Total due" in shown
    assert ALREADY_PAID in msg.text and ALREADY_PAID in shown
    assert "How to pay:\nPay to Acme." in msg.text
    for text in (msg.text, shown, msg.subject):
        assert not ISO_DATE.search(text)
        assert "Traceback" not in text and "stage-" not in text


def test_a_message_without_link_or_instructions_still_says_how_to_pay() -> None:
    """No payment link on any invoice (QuickBooks without online payments) and no
    payment_instructions: the customer is told to ask for the details (before: nothing)."""
    bare = [Line(invoice(1, 20, link=None), "s", "friendly")]
    msg = compose(bare, wording={}, today=TODAY, house=House("Acme"))
    assert f"How to pay:\n{ASK_FOR_DETAILS}" in msg.text
    assert ASK_FOR_DETAILS in "".join(parse_html(msg.html).text)
    linked = compose([Line(invoice(1, 20), "s", "friendly")], wording={}, today=TODAY,
                     house=House("Acme"))
    assert ASK_FOR_DETAILS not in linked.text and "Pay online: " in linked.text
