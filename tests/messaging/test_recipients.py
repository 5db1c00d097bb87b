"""Who a message goes to is decided by ar-sync, never by what a header parser makes of it
(issue 20): an RFC 2047 encoded word in a platform's address is refused, SES gets an explicit
Destination and SMTP an explicit envelope; and one unusual value fails its own message only
(the run goes on, nothing stays claimed)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sync.fakes import FakeConnector, FakePlatform, FaultPlan
from sync.harness import CIPHER

from ar_sync.delivery.settings import mail_setup
from ar_sync.delivery.transports import SesMailer, SmtpMailer
from ar_sync.domain.addresses import address_problem, mailbox, valid_address
from ar_sync.domain.contacts import Contact, resolve
from ar_sync.domain.errors import SettingsError
from ar_sync.domain.models import EntryState
from ar_sync.messages.mime import Envelope, Outcome, Sender, notice_mime
from ar_sync.messages.sending import MailSetup
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import run_tenant
from ar_sync_emulators.smtp_sink import SmtpSink

from .helpers import CONNECTION, NOW, invoice, rules

HIDDEN = "=?utf-8?q?attacker=40evil.example=2C_ap?=@client.example"
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


@pytest.mark.parametrize("address", [
    HIDDEN, "a@b.example\r\nBcc: x@evil.example", "\"quoted, name\"@client.example",
    "josé@exämple.com", "ap@client.example, x@evil.example", "Name <ap@client.example>",
    "ap@[127.0.0.1]", "ap@localhost", "ap@@client.example", ".ap@client.example",
    "a..p@client.example", "ap@client..example", "ap@-client.example", "",
])
def test_only_one_plain_ascii_addr_spec_is_an_address(address: str) -> None:
    assert not valid_address(address), address
    assert address_problem(address)
    with pytest.raises(ValueError):
        Contact(tenant="t", customer_id="c", email=address)


def test_ordinary_addresses_still_pass() -> None:
    for address in ("ap@client.example", "first.last+ar@mail.client.co.uk",
                    "o'brien@xn--bcher-kva.example", "a_b-c=d?e@x1.example"):
        assert valid_address(address), address
    assert mailbox("Acme Ltd. <ar@acme.example>") == ("Acme Ltd.", "ar@acme.example")


def test_the_encoded_word_address_gets_no_message(store: SQLiteStore, sink: SmtpSink) -> None:
    """Before the fix it went out with `To: attacker@evil.example, ap@client.example`."""
    state = FakePlatform(invoices={i.id: i for i in [invoice(1, 1, email=HIDDEN),
                                                      invoice(2, 1, customer="c2",
                                                              email="two@example.com")]})
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=rules(), mail=MailSetup(
        sender=SENDER, mailer=SmtpMailer(sink.settings(timeout=5))),
        connector=FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0))))
    wire = b"".join(m.data for m in sink.snapshot())
    assert b"evil.example" not in wire and b"attacker" not in wire
    assert [m.recipients for m in sink.snapshot()] == [["two@example.com"]]
    assert any("encoded word" in line for line in report.not_emailed)
    assert resolve("c1", HIDDEN, {}).address is None


class _Recording:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def send_email(self, **kwargs: Any) -> dict[str, str]:
        self.calls.append(kwargs)
        return {"MessageId": "m-1"}


def _mime(to: str) -> EmailMessage:
    return notice_mime(to=to, subject="Reminder", text="Hello", sender=SENDER,
                       message_id="<ar1@acme.example>", now=datetime(2026, 11, 16, tzinfo=UTC))


def test_ses_is_told_the_recipients_instead_of_reading_the_headers() -> None:
    """Raw content without Destination makes SES send to every address in To/Cc/Bcc."""
    client = _Recording()
    mime = _mime("ap@client.example")
    del mime["To"]
    mime["To"] = "ap@client.example, attacker@evil.example"  # what a header might come to say
    result = SesMailer(client).send(mime, envelope=SENDER.envelope("ap@client.example"),
                                    tags={})
    assert result.outcome == Outcome.SENT
    (call,) = client.calls
    assert call["Destination"] == {"ToAddresses": ["ap@client.example"]}
    assert call["FromEmailAddress"] == "accounts@acme.example"


def test_smtp_recipients_are_the_envelope_not_the_header(sink: SmtpSink) -> None:
    mime = _mime("ap@client.example")
    del mime["To"]
    mime["To"] = "ap@client.example, attacker@evil.example"
    result = SmtpMailer(sink.settings(timeout=5)).send(
        mime, envelope=SENDER.envelope("ap@client.example"), tags={})
    assert result.outcome == Outcome.SENT
    (got,) = sink.snapshot()
    assert got.recipients == ["ap@client.example"] and got.mail_from == "accounts@acme.example"


def test_an_envelope_takes_only_checked_addresses() -> None:
    with pytest.raises(ValueError):
        Envelope("accounts@acme.example", (HIDDEN,))
    with pytest.raises(ValueError):
        Envelope("accounts@acme.example", ())


@pytest.mark.parametrize("value", [
    "Acme <a@acme.example>, Evil <e@evil.example>", "=?utf-8?q?Acme?= <a@acme.example>",
    "Acme\r\nBcc: e@evil.example <a@acme.example>", HIDDEN, "Acme, Ltd <a@acme.example>",
])
def test_a_bad_from_setting_is_a_configuration_error(value: str) -> None:
    with pytest.raises(SettingsError):
        mail_setup({"AR_SYNC_MAIL_FROM": value, "AR_SYNC_MAIL_TRANSPORT": "folder",
                    "AR_SYNC_MAIL_FOLDER": "/tmp/ar-sync-test-unused"})


# ----------------------------------------------------------------------------- one fails alone


def test_an_unbuildable_message_fails_alone_and_nothing_stays_claimed(
        store: SQLiteStore, sink: SmtpSink) -> None:
    """CR/LF in an invoice number with attach_pdf raised ValueError out of the run, which
    left its rows claimed; a non-ASCII address raised UnicodeEncodeError the same way."""
    text = rules.__defaults__[0].replace("email: {group_by: customer}",  # type: ignore[index]
                                         "email: {group_by: customer, attach_pdf: true}")
    bad = invoice(1, 1).model_copy(update={"number": "INV-1\r\nBcc: x@evil.example"})
    other = invoice(2, 1, customer="c2", email="two@example.com")
    state = FakePlatform(invoices={i.id: i for i in [bad, other]})
    connector = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0)))
    connector.invoice_pdf = lambda inv: b"%PDF-1.4 test"  # type: ignore[attr-defined]
    setup = MailSetup(sender=SENDER, mailer=SmtpMailer(sink.settings(timeout=5)))
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=rules(text), mail=setup,
                        connector=connector)
    assert report.stopped_early is None
    sent = sink.snapshot()
    assert {m.recipients[0] for m in sent} >= {"two@example.com"}
    for m in sent:  # the PDF went out under a clean name, no header was split off
        assert m.message["Bcc"] is None
        names = [p.get_filename() for p in m.message.iter_attachments()]
        assert all("\r" not in n and "\n" not in n for n in names if n)
    assert store.unfinished(CONNECTION.id) == []
    messages = [a for a in report.actions if a.kind == "message"]
    assert [a.outcome for a in messages] == ["done", "done"]


def test_a_message_to_a_non_ascii_address_fails_alone(store: SQLiteStore) -> None:
    """The grouping refuses such an address today; if one ever reached the send, the message
    fails (recorded, permanent) instead of stopping the run with UnicodeEncodeError."""
    from ar_sync.domain.models import CustomerMessage, EmailReminder
    from ar_sync.sync.deliver import deliver_message

    class Exploding:
        def send(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("must not be handed over")

    base = {"tenant": CONNECTION.id, "platform": "fake", "invoice_id": "inv-1",
            "invoice_number": "INV-1", "occurrence": NOW.date().isoformat(),
            "due_on": NOW.date(), "reason": "test", "customer_id": "c1"}
    item = EmailReminder(key="ar-item-1", rule="overdue-1", **base)
    message = CustomerMessage(key="ar-message-1", rule="email", customer_name="One",
                              to="josé@exämple.com", subject="s", text="t", html="<p>t</p>",
                              tone="friendly", items=(item,), message_id="<ar1@acme.example>",
                              **base)
    got = deliver_message(store, message, setup=MailSetup(sender=SENDER, mailer=Exploding()),
                          today=NOW.date(), owner="me", clock=lambda: NOW, lease_seconds=60)
    assert got.outcome == "failed" and "cannot build" in got.detail
    entry = store.get(message.key)
    assert entry is not None and entry.state == EntryState.FAILED
    assert store.unfinished(CONNECTION.id) == []


def test_a_non_ascii_platform_address_does_not_stop_the_run(store: SQLiteStore,
                                                            sink: SmtpSink) -> None:
    """Before the fix: UnicodeEncodeError out of the run, two rows left claimed."""
    state = FakePlatform(invoices={i.id: i for i in [
        invoice(1, 1, email="josé@exämple.com"),
        invoice(2, 1, customer="c2", email="two@example.com")]})
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=rules(), mail=MailSetup(
        sender=SENDER, mailer=SmtpMailer(sink.settings(timeout=5))),
        connector=FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0))))
    assert report.stopped_early is None and store.unfinished(CONNECTION.id) == []
    assert [m.recipients for m in sink.snapshot()] == [["two@example.com"]]
    assert any("non-ASCII" in line for line in report.not_emailed)
