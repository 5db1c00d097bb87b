"""`ar-sync demo --days N` (issue 21): four businesses run forward day by day, customers pay
on the emulators as on the platforms, every write is one journal line, every e-mail is dated
the simulated day."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.cli.errors import UserError
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync_emulators.books import DEMO_TODAY
from ar_sync_emulators.journey import Journey, figures, run_days, summary

DAYS = 8
KEYS = {"day", "company", "customer", "invoice", "kind", "stage", "tone", "amount", "currency"}
KINDS = {"message", "note", "fee", "interest", "escalation", "platform_email"}


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> tuple[Journey, Path]:
    tmp = tmp_path_factory.mktemp("days")
    store = SQLiteStore(tmp / "demo.db", cipher=TokenCipher(TokenCipher.generate_key()))
    journal = tmp / "journal.jsonl"
    return run_days(store, days=DAYS, journal=journal), journal


def test_every_write_is_one_journal_line(journey: tuple[Journey, Path]) -> None:
    result, journal = journey
    lines = [json.loads(x) for x in journal.read_text(encoding="utf-8").splitlines()]
    assert lines == result.lines and len(lines) > 100
    last = DEMO_TODAY + timedelta(days=DAYS - 1)
    for line in lines:
        assert KEYS <= set(line) and line["kind"] in KINDS
        assert DEMO_TODAY <= date.fromisoformat(line["day"]) <= last
        assert line["company"] and line["customer"] and line["invoice"]
        if line["kind"] in ("fee", "interest"):
            assert line["amount"] and line["currency"]
    kinds = {x["kind"] for x in lines}
    assert kinds >= {"message", "note", "fee"}
    # a customer's journey: the final notice comes three steps (min_gap 3 days) after the
    # first contact, and an escalation 7 days after it, so none in the first 8 days
    assert "escalation" not in kinds
    # the four demo companies are four businesses
    assert len({x["company"] for x in lines}) == 4
    assert result.duplicates == 0
    assert not [e for r in result.reports for e in r.errors]


def test_each_message_is_dated_its_simulated_day_from_its_business(
        journey: tuple[Journey, Path]) -> None:
    result, _ = journey
    days = {parsedate_to_datetime(str(m.message["Date"])).date() for m in result.messages}
    assert days <= {DEMO_TODAY + timedelta(days=n) for n in range(DAYS)} and len(days) > 3
    senders = {str(m.message["From"]) for m in result.messages}
    assert len(senders) == 4 and all(".example>" in s for s in senders)
    message_days = {x["day"] for x in result.lines if x["kind"] == "message"}
    assert len(message_days) > 3  # not only the first day


def test_customers_pay_along_the_way_and_get_nothing_after(
        journey: tuple[Journey, Path]) -> None:
    result, _ = journey
    assert result.payments, "some customers pay"
    paid_on: dict[tuple[str, str], str] = {}
    for p in result.payments:
        paid_on.setdefault((p["company"], p["invoice"]), p["day"])
    for line in result.lines:
        day = paid_on.get((line["company"], line["invoice"]))
        if day is not None and line["kind"] in ("fee", "interest", "escalation", "note"):
            assert line["day"] < day, line  # paid before that day's run: nothing after
    f = figures(result.lines, result.payments)
    assert f.paid == len(result.payments) and sum(f.messages.values()) > 0
    # on_paid: one thank-you per paid invoice that had a reminder e-mail, after its payment
    thanks = [x for x in result.lines if x["kind"] == "message" and x["stage"] == "thanks"]
    assert thanks, "some reminded customers paid and were thanked"
    keys = [(x["company"], n) for x in thanks for n in x["invoices"]]
    assert len(keys) == len(set(keys))  # each paid invoice thanked once
    for x in thanks:
        for n in x["invoices"]:
            assert paid_on[(x["company"], n)] <= x["day"]
    # reminders to one customer at least min_gap (3, the default) days apart
    assert f.gaps and min(f.gaps) >= 3, sorted(f.gaps)[:5]
    # one e-mail a customer a day: never a thank-you on a day with a reminder
    mails = Counter((x["company"], x["customer"], x["day"]) for x in result.lines
                    if x["kind"] == "message")
    assert max(mails.values()) == 1


def test_journal_needs_days(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--journal", str(tmp_path / "j.jsonl")])
    assert isinstance(result.exception, UserError)
    assert "--journal needs --days" in str(result.exception)


def test_figures_by_hand() -> None:
    def line(day: str, kind: str, customer: str = "A", **extra: object) -> dict[str, object]:
        return {"day": f"2026-11-{day}", "company": "Co", "customer": customer,
                "invoice": "INV-1", "kind": kind, "stage": extra.pop("stage", "s"),
                "tone": extra.pop("tone", "friendly"), "amount": extra.pop("amount", None),
                "currency": "USD", **extra}
    lines = [line("16", "message", stage="overdue-1", fee_terms=False, invoices=["INV-1"]),
             line("17", "fee", amount="10.00"),  # before any message stating the terms
             line("20", "message", stage="final-notice", tone="final", fee_terms=True,
                  invoices=["INV-1"]),
             line("27", "fee", amount="5.50"),  # 7 days after the terms were stated
             line("30", "escalation"),  # 10 days after the final notice
             line("18", "message", customer="B", stage="heads-up", fee_terms=False,
                  invoices=["INV-2"]),
             line("21", "message", stage="thanks", invoices=["INV-1"])]  # chases nobody
    f = figures(lines, [{"day": "2026-11-21"}])
    assert dict(f.messages) == {"A (Co)": 3, "B (Co)": 1}
    assert dict(f.first_stage) == {"overdue-1": 1, "heads-up": 1} and f.gaps == [4]
    assert f.thanks == 1
    text = "\n".join(summary(f))
    assert "escalations: 1 invoices of 1 customers; final notice first: 0 not after one; " \
           "the others at least 10 days after it" in text
    assert "2 charges (15.50 USD), first 2026-11-17; a message stating the fee terms " \
           "first: 1 not after one; the others at least 7 days after it" in text
    assert "payments: 1" in text
