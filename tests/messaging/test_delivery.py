"""Delivery through the ledger, counted from a real SMTP server (the sandbox sink): one message
per customer and day, refusals retried, unknown outcomes recorded as ambiguous and never sent
twice, contacts respected, and the run report says who got nothing."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sync.fakes import FakeConnector, FakePlatform, FaultPlan
from sync.harness import CIPHER

from ar_sync.delivery.notify import WebhookSender
from ar_sync.delivery.transports import SmtpMailer
from ar_sync.domain.contacts import Contact
from ar_sync.domain.models import EntryState, Invoice
from ar_sync.messages.mime import Sender
from ar_sync.messages.sending import MailSetup
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import RunReport, run_tenant
from ar_sync_emulators.smtp_sink import SmtpSink

from .helpers import CONNECTION, NOW, invoice, rules

SENDER = Sender("Acme Supplies <accounts@acme.example>", "accounts@acme.example")


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink().serve() as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    s.save_connection(CONNECTION)
    return s


def _setup(sink: SmtpSink) -> MailSetup:
    # the rules notify a webhook too: a setup without a signer is a configuration error now
    hooks = WebhookSender("whsec-test-delivery-only", allow_loopback=True, attempts=1,
                          sleep=lambda _s: None)
    return MailSetup(sender=SENDER, mailer=SmtpMailer(sink.settings(timeout=5)), webhooks=hooks)


def _run(store: SQLiteStore, state: FakePlatform, sink: SmtpSink, *, days: int = 0,
         text: str | None = None) -> RunReport:
    policy = rules() if text is None else rules(text)
    connector = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0)))
    return run_tenant(store, CONNECTION.id, now=NOW + timedelta(days=days), policy=policy,
                      connector=connector, mail=_setup(sink))


def _state(*invoices: Invoice) -> FakePlatform:
    return FakePlatform(invoices={i.id: i for i in invoices})


def test_one_message_per_customer_a_day_and_none_on_rerun(store, sink) -> None:  # type: ignore[no-untyped-def]
    state = _state(invoice(1, 3), invoice(2, 20), invoice(3, 50),
                   invoice(4, 3, customer="c2", name="Two", email="two@example.com"))
    first = _run(store, state, sink)
    assert first.errors == [] and first.ambiguous == 0
    got = sink.snapshot()
    assert sorted(m.recipients[0] for m in got) == ["one@example.com", "two@example.com"]
    one = next(m.message for m in got if m.recipients == ["one@example.com"])
    assert one["From"] == SENDER.from_address and one["Reply-To"] == "accounts@acme.example"
    assert one["Message-ID"].startswith("<ar") and one["Message-ID"].endswith("@acme.example>")
    body = one.get_body(("plain",)).get_content()
    assert all(f"INV-{n}" in body for n in (1, 2, 3))
    assert "ar" + "-sync:" not in body and one["Message-ID"][1:35] not in body  # no keys shown
    # the ledger: one message row per customer, each invoice's item done with the message key
    history = store.history(CONNECTION.id)
    items = [e for rows in history.values() for e in rows if e.kind == "customer_email"]
    assert len(items) == 4 and all(e.state == EntryState.DONE for e in items)
    # same day again, and the next day: nothing new (each stage is e-mailed once)
    again = _run(store, state, sink)
    later = _run(store, state, sink, days=1)
    assert again.done == 0 and later.ambiguous == 0
    assert len(sink.snapshot()) == 2


def test_refused_send_is_retried_and_sent_once(store, sink) -> None:  # type: ignore[no-untyped-def]
    state = _state(invoice(1, 3), invoice(2, 20))
    sink.fail_next("refuse_data")
    first = _run(store, state, sink)
    assert sink.snapshot() == [] and first.retry >= 1
    second = _run(store, state, sink)
    assert len(sink.snapshot()) == 1 and second.ambiguous == 0
    _run(store, state, sink)
    assert len(sink.snapshot()) == 1


@pytest.mark.parametrize("fault", ["drop_after_store", "drop_before_store"])
def test_unknown_outcome_is_ambiguous_never_resent(store, sink, fault) -> None:  # type: ignore[no-untyped-def]
    state = _state(invoice(1, 3), invoice(2, 20))
    sink.fail_next(fault)
    first = _run(store, state, sink)
    assert first.ambiguous == 1
    listed = [a for a in first.actions if a.outcome == "ambiguous"]
    assert listed and "ambiguous" in listed[0].detail and "one@example.com" in listed[0].what
    kept = len(sink.snapshot())
    assert kept == (1 if fault == "drop_after_store" else 0)
    for day in (0, 1, 2):  # later runs, later days: never sent again automatically
        _run(store, state, sink, days=day)
    assert len(sink.snapshot()) == kept


def test_permanent_refusal_is_failed_not_retried_daily(store, sink) -> None:  # type: ignore[no-untyped-def]
    state = _state(invoice(1, 3))
    sink.fail_next("reject_rcpt")
    first = _run(store, state, sink)
    assert first.failed == 1
    _run(store, state, sink, days=1)
    assert sink.snapshot() == []


def test_contacts_and_missing_addresses_are_reported(store, sink) -> None:  # type: ignore[no-untyped-def]
    store.save_contact(Contact(tenant=CONNECTION.id, customer_id="c2", opted_out=True))
    store.save_contact(Contact(tenant=CONNECTION.id, customer_id="c3", email="ap@three.example"))
    state = _state(invoice(1, 3, email=None),
                   invoice(2, 3, customer="c2", name="Two", email="two@example.com"),
                   invoice(3, 3, customer="c3", name="Three", email="three@example.com"))
    report = _run(store, state, sink)
    assert [m.recipients for m in sink.snapshot()] == [["ap@three.example"]]
    assert sorted(report.not_emailed) == ["Customer One (INV-1): no e-mail address",
                                          "Two (INV-2): opted out"]


def test_no_transport_configured_sends_nothing_and_keeps_the_items(store, sink) -> None:  # type: ignore[no-untyped-def]
    state = _state(invoice(1, 3))
    connector = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0)))
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=rules(), connector=connector,
                        mail=MailSetup())
    assert report.deferred == 1
    assert _run(store, state, sink).done >= 1  # configured later the same day: it goes out
    assert len(sink.snapshot()) == 1


def test_dry_run_previews_the_exact_message(store, sink) -> None:  # type: ignore[no-untyped-def]
    state = _state(invoice(1, 3), invoice(2, 20))
    connector = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0)))
    preview = run_tenant(store, CONNECTION.id, now=NOW, policy=rules(), connector=connector,
                         mail=_setup(sink), dry_run=True)
    planned = [a for a in preview.actions if a.kind == "message"]
    assert len(planned) == 1 and sink.snapshot() == []
    _run(store, state, sink)
    (sent,) = sink.snapshot()
    assert planned[0].what == f"e-mail to one@example.com: {sent.message['Subject']!r} " \
        "(INV-2, INV-1)"
    assert Counter(e.kind for rows in store.history(CONNECTION.id).values()
                   for e in rows)["message"] == 1
