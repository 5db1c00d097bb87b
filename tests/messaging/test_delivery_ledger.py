"""The e-mail ledger protocol step by step (ar_sync.sync.deliver), each path from a ledger
state set up by hand: a runner that stopped after sending or before, a same-day regroup, an
item left behind, and the escalation notice's at-least-once path. The fault suite
(test_mail_faults.py) finds the same paths by chance; these name them, and run in
milliseconds (the mutation run uses them)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sync.fakes import FakeConnector, FakePlatform, FaultPlan
from sync.harness import CIPHER

from ar_sync.domain.errors import TransientError
from ar_sync.domain.models import (
    CustomerMessage,
    EmailReminder,
    EntryState,
    EscalationNotice,
    Invoice,
    InvoiceStatus,
)
from ar_sync.messages.mime import Envelope, Outcome, Sender, SendResult, tag_value
from ar_sync.messages.sending import MailSetup, WebhookRefusedError, WebhookRetryableError
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.deliver import (
    AMBIGUOUS,
    Delivered,
    deliver_message,
    deliver_notice,
    settle_leftover_item,
)
from ar_sync.sync.mail import execute as mail_execute
from ar_sync.sync.mail import mail_problem, webhook_urls
from ar_sync.sync.run import run_tenant

from .helpers import CONNECTION, NOW, RULES, invoice, rules

SENDER = Sender("Acme Supplies <accounts@acme.example>", "accounts@acme.example")
LATER = NOW + timedelta(minutes=5)  # the dead runner's 60-second leases have run out
STOPPED = AMBIGUOUS + "a runner stopped while sending; check the mailbox before resending"
BASE: dict[str, Any] = {"tenant": CONNECTION.id, "platform": "fake",
                        "occurrence": NOW.date().isoformat(), "due_on": NOW.date(),
                        "reason": "test", "customer_id": "c1"}


def _item(n: int) -> EmailReminder:
    return EmailReminder(key=f"ar-item-{n}", rule="overdue-1", invoice_id=f"inv-{n}",
                         invoice_number=f"INV-{n}", **BASE)


def _message(*items: EmailReminder, occurrence: str | None = None) -> CustomerMessage:
    base = {**BASE, "occurrence": occurrence or BASE["occurrence"]}
    return CustomerMessage(key="ar-message-1", rule="email", customer_name="One",
                           to="one@example.com", subject="Overdue", text="t", html="<p>t</p>",
                           tone="friendly", items=items, message_id="<ar1@acme.example>",
                           invoice_id=items[0].invoice_id,
                           invoice_number=items[0].invoice_number, **base)


class Mailer:
    """Records what it is handed and answers `result`."""

    def __init__(self, result: SendResult | None = None) -> None:
        self.result = result or SendResult(Outcome.SENT, ref="provider-1")
        self.sent: list[tuple[EmailMessage, Envelope, Mapping[str, str]]] = []

    def send(self, message: EmailMessage, *, envelope: Envelope,
             tags: Mapping[str, str]) -> SendResult:
        self.sent.append((message, envelope, tags))
        return self.result


class Hooks:
    """A webhook notifier that answers `answer` or raises `error`."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.posts: list[tuple[str, Mapping[str, Any], str]] = []

    def post(self, url: str, body: Mapping[str, Any], *, delivery: str) -> str:
        self.posts.append((url, body, delivery))
        if self.error is not None:
            raise self.error
        return "accepted"


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    s.save_connection(CONNECTION)
    return s


def _deliver(store: SQLiteStore, message: CustomerMessage, mailer: Mailer,
             now: datetime = LATER) -> Delivered:
    return deliver_message(store, message, setup=MailSetup(sender=SENDER, mailer=mailer),
                           today=NOW.date(), owner="me", clock=lambda: now, lease_seconds=60)


def _dead_claims(store: SQLiteStore, *actions: EmailReminder | CustomerMessage) -> None:
    for action in actions:
        assert store.claim(action, owner="dead", now=NOW, lease_seconds=60).ours


def _state(store: SQLiteStore, key: str) -> tuple[EntryState, str | None, str | None]:
    entry = store.get(key)
    assert entry is not None
    return entry.state, entry.ref, entry.reason


# ------------------------------------------------------------------ customer messages


def test_sent_then_stopped_is_reconciled_from_its_items(store: SQLiteStore) -> None:
    """Stopped after the send, with one item completed: the message is recognised as sent,
    the other item is completed too, and nothing is handed to the mailer again."""
    one, two = _item(1), _item(2)
    message = _message(one, two)
    _dead_claims(store, message, one, two)
    assert store.complete(one.key, owner="dead", ref=message.key, now=NOW)
    mailer = Mailer()
    got = _deliver(store, message, mailer)
    assert got == Delivered("reconciled", "its invoices were recorded as sent",
                            message.message_id)
    assert mailer.sent == []
    assert _state(store, message.key) == (EntryState.DONE, message.message_id, None)
    assert _state(store, two.key) == (EntryState.DONE, message.key, None)
    assert store.get(message.key).updated_at == LATER  # type: ignore[union-attr]


def test_an_item_done_by_another_message_proves_nothing(store: SQLiteStore) -> None:
    one = _item(1)
    message = _message(one)
    _dead_claims(store, message, one)
    assert store.complete(one.key, owner="dead", ref="ar-other-message", now=NOW)
    got = _deliver(store, message, Mailer())
    assert got == Delivered("ambiguous", STOPPED)
    assert _state(store, message.key) == (EntryState.FAILED, None, STOPPED)


def test_stopped_before_any_item_is_ambiguous_never_resent(store: SQLiteStore) -> None:
    """Stopped between the claims and the end: SMTP cannot be asked, so the message and all
    its items (also those of the first grouping, regrouped today) fail for a person."""
    one, two, three = _item(1), _item(2), _item(3)
    first = _message(one, two)
    _dead_claims(store, first, one, two)
    regrouped = _message(one, three)  # the same key, today's items
    mailer = Mailer()
    got = _deliver(store, regrouped, mailer)
    assert got == Delivered("ambiguous", STOPPED)
    assert mailer.sent == []
    for key in (regrouped.key, one.key, two.key, three.key):  # one message a day at most
        assert _state(store, key) == (EntryState.FAILED, None, STOPPED)
    assert _deliver(store, regrouped, mailer).outcome == "skipped"
    assert mailer.sent == []


def test_a_finished_message_settles_its_leftover_items(store: SQLiteStore) -> None:
    """The message row is done but an item was left claimed (stopped between the two
    completions): the item is completed with the message's key, nothing sent."""
    one, two = _item(1), _item(2)
    message = _message(one, two)
    _dead_claims(store, message, one, two)
    assert store.complete(message.key, owner="dead", ref="provider-1", now=NOW)
    mailer = Mailer()
    got = _deliver(store, message, mailer)
    assert got == Delivered("skipped", "this customer's message of the day is already recorded")
    assert mailer.sent == []
    for key in (one.key, two.key):
        assert _state(store, key) == (EntryState.DONE, message.key, None)


def test_an_ambiguous_message_fails_its_leftover_items(store: SQLiteStore) -> None:
    one = _item(1)
    message = _message(one)
    _dead_claims(store, message, one)
    reason = AMBIGUOUS + "connection lost during DATA"
    assert store.fail(message.key, owner="dead", reason=reason, now=NOW, permanent=True)
    got = _deliver(store, message, Mailer())
    assert got.outcome == "skipped"
    assert _state(store, one.key) == (EntryState.FAILED, None, reason)


def test_a_message_failed_for_another_reason_leaves_its_items(store: SQLiteStore) -> None:
    one = _item(1)
    message = _message(one)
    _dead_claims(store, message, one)
    assert store.fail(message.key, owner="dead", reason="cannot build the message: x",
                      now=NOW, permanent=True)
    assert _deliver(store, message, Mailer()).outcome == "skipped"
    assert _state(store, one.key) == (EntryState.CLAIMED, None, None)


def test_a_known_unsent_message_is_sent_on_its_day(store: SQLiteStore) -> None:
    """Released as unsent by the attempt before: sent now, items completed with its key."""
    one = _item(1)
    message = _message(one)
    _dead_claims(store, message, one)
    for key in (message.key, one.key):
        assert store.fail(key, owner="dead", reason="unsent (attempt 1): refused", now=NOW,
                          permanent=False)
    mailer = Mailer()
    got = _deliver(store, message, mailer)
    assert got == Delivered("done", "to one@example.com: 1 invoice(s)", "provider-1")
    assert len(mailer.sent) == 1
    assert mailer.sent[0][1] == Envelope("accounts@acme.example", ("one@example.com",))
    assert mailer.sent[0][2] == {"tenant": tag_value(CONNECTION.id), "customer": "c1"}
    assert _state(store, message.key) == (EntryState.DONE, "provider-1", None)
    assert _state(store, one.key) == (EntryState.DONE, message.key, None)


def test_a_known_unsent_message_of_an_earlier_day_is_skipped(store: SQLiteStore) -> None:
    yesterday = (NOW - timedelta(days=1)).date().isoformat()
    message = _message(_item(1), occurrence=yesterday)
    _dead_claims(store, message)
    assert store.fail(message.key, owner="dead", reason="unsent (attempt 1): refused", now=NOW,
                      permanent=False)
    mailer = Mailer()
    got = _deliver(store, message, mailer)
    assert got == Delivered("skipped", "not sent on its day; its invoices are planned again")
    assert mailer.sent == []
    assert _state(store, message.key) == (EntryState.SKIPPED, None,
                                          "not sent that day; regrouped later")


def test_a_crash_after_an_unsent_attempt_is_not_known_unsent(store: SQLiteStore) -> None:
    """The reason of attempt 1 is still there, but attempt 2 stopped without a word (it may
    have sent): the attempt counter tells, and the message is ambiguous."""
    one = _item(1)
    message = _message(one)
    _dead_claims(store, message, one)
    assert store.fail(message.key, owner="dead", reason="unsent (attempt 1): refused", now=NOW,
                      permanent=False)
    assert store.claim(message, owner="dead", now=NOW, lease_seconds=60).ours  # attempt 2
    mailer = Mailer()
    assert _deliver(store, message, mailer).outcome == "ambiguous"
    assert mailer.sent == []


def test_an_item_held_by_a_message_of_unknown_fate_blocks_the_send(store: SQLiteStore) -> None:
    one, two = _item(1), _item(2)
    _dead_claims(store, two)  # claimed by a message whose runner stopped
    message = _message(one, two)
    mailer = Mailer()
    got = _deliver(store, message, mailer)
    blocked = "invoice INV-2 is held by another message"
    assert got == Delivered("busy", blocked + "; regrouped next run")
    assert mailer.sent == []
    assert _state(store, two.key) == (
        EntryState.FAILED, None, AMBIGUOUS + "in a message a runner stopped sending")
    assert _state(store, one.key) == (EntryState.RETRY, None, f"unsent (attempt 1): {blocked}")
    assert _state(store, message.key) == (EntryState.RETRY, None,
                                          f"unsent (attempt 1): {blocked}")


@pytest.mark.parametrize("attach", [True, False])
def test_the_pdfs_the_platform_has_are_attached_when_asked(store: SQLiteStore,
                                                           attach: bool) -> None:
    message = _message(_item(1), _item(2)).model_copy(update={"attach_pdf": attach})
    pdfs = {"inv-1": b"%PDF-1.4 one"}  # the platform has none for inv-2
    mailer = Mailer()
    got = deliver_message(store, message, setup=MailSetup(sender=SENDER, mailer=mailer),
                          today=NOW.date(), owner="me", clock=lambda: NOW, lease_seconds=60,
                          pdf=pdfs.get)
    assert got.outcome == "done"
    attached = [(a.get_filename(), a.get_content()) for a in mailer.sent[0][0].iter_attachments()]
    assert attached == ([("Invoice INV-1.pdf", b"%PDF-1.4 one")] if attach else [])


def test_a_lease_lost_during_the_send_leaves_the_message_to_the_other_runner(
        store: SQLiteStore) -> None:
    one = _item(1)
    message = _message(one)

    class Slow(Mailer):  # the send outlives the lease; another runner takes the message over
        def send(self, *args: Any, **kwargs: Any) -> SendResult:
            assert store.claim(message, owner="other", now=LATER, lease_seconds=60).ours
            return super().send(*args, **kwargs)

    got = _deliver(store, message, Slow(), now=NOW)
    assert got == Delivered("busy", "lease lost after sending; the other runner reconciles",
                            "provider-1")
    assert _state(store, one.key) == (EntryState.DONE, message.key, None)
    assert _state(store, message.key)[0] == EntryState.CLAIMED  # the other runner's now


@pytest.mark.parametrize("permanent", [True, False])
def test_a_refused_send_releases_the_message_and_its_items(store: SQLiteStore,
                                                           permanent: bool) -> None:
    one, two = _item(1), _item(2)
    message = _message(one, two)
    refused = SendResult(Outcome.UNSENT, detail="550 mailbox unavailable", permanent=permanent)
    got = _deliver(store, message, Mailer(refused), now=NOW)
    reason = "unsent (attempt 1): 550 mailbox unavailable"
    assert got == Delivered("failed" if permanent else "retry", reason)
    state = EntryState.FAILED if permanent else EntryState.RETRY
    for key in (message.key, one.key, two.key):
        assert _state(store, key) == (state, None, reason)


def test_a_message_that_cannot_be_built_fails_with_its_items(store: SQLiteStore) -> None:
    one = _item(1)
    message = _message(one).model_copy(update={"to": "josé@exämple.com"})
    mailer = Mailer()
    got = _deliver(store, message, mailer, now=NOW)
    assert got.outcome == "failed" and mailer.sent == []
    prefix = "unsent (attempt 1): cannot build the message: "
    assert got.detail.startswith(prefix + "ValueError: ")
    for key in (message.key, one.key):
        assert _state(store, key) == (EntryState.FAILED, None, got.detail)


def test_a_transport_error_is_ambiguous_and_never_resent(store: SQLiteStore) -> None:
    """An exception the transport did not classify may come after the hand-over."""
    one = _item(1)
    message = _message(one)

    class Broken(Mailer):
        def send(self, *args: Any, **kwargs: Any) -> SendResult:
            super().send(*args, **kwargs)
            raise ConnectionResetError("reset by peer")

    mailer = Broken()
    got = _deliver(store, message, mailer, now=NOW)
    reason = AMBIGUOUS + "transport error: ConnectionResetError: reset by peer"
    assert got == Delivered("ambiguous", reason)
    for key in (message.key, one.key):
        assert _state(store, key) == (EntryState.FAILED, None, reason)
    assert _deliver(store, message, mailer).outcome == "skipped" and len(mailer.sent) == 1


# ------------------------------------------------------------------ items left behind


def test_a_leftover_item_of_a_stopped_message_is_ambiguous(store: SQLiteStore) -> None:
    one = _item(1)
    _dead_claims(store, one)
    got = settle_leftover_item(store, one, owner="me", clock=lambda: LATER, lease_seconds=60)
    reason = AMBIGUOUS + "in a message a runner stopped sending"
    assert got == Delivered("ambiguous", reason)
    assert _state(store, one.key) == (EntryState.FAILED, None, reason)
    assert store.get(one.key).updated_at == LATER  # type: ignore[union-attr]


def test_a_leftover_item_known_unsent_is_skipped(store: SQLiteStore) -> None:
    one = _item(1)
    _dead_claims(store, one)
    assert store.fail(one.key, owner="dead", reason="unsent (attempt 1): refused", now=NOW,
                      permanent=False)
    got = settle_leftover_item(store, one, owner="me", clock=lambda: LATER, lease_seconds=60)
    assert got == Delivered("skipped", "e-mail no longer due")
    assert _state(store, one.key) == (EntryState.SKIPPED, None, "not sent; no longer due")


def test_a_leftover_item_held_by_a_live_runner_is_left_alone(store: SQLiteStore) -> None:
    one = _item(1)
    _dead_claims(store, one)
    got = settle_leftover_item(store, one, owner="me", clock=lambda: NOW, lease_seconds=60)
    assert got is None
    assert _state(store, one.key) == (EntryState.CLAIMED, None, None)


# ------------------------------------------------------------------ escalation notices


def _notice(channel: str = "webhook", target: str = "https://hooks.example/ar") -> EscalationNotice:
    return EscalationNotice(key="ar-notice-1", rule="collections", invoice_id="inv-1",
                            invoice_number="INV-1", channel=channel, target=target,
                            escalation="ar-escalation-1",
                            body={"customer_name": "One", "amount": "100.00", "note": None},
                            **{k: v for k, v in BASE.items() if k != "customer_id"})


def _notify(store: SQLiteStore, notice: EscalationNotice, setup: MailSetup,
            now: datetime = NOW) -> Delivered:
    return deliver_notice(store, notice, setup=setup, owner="me", clock=lambda: now,
                          lease_seconds=60)


def test_a_webhook_notice_is_posted_once(store: SQLiteStore) -> None:
    notice, hooks = _notice(), Hooks()
    got = _notify(store, notice, MailSetup(webhooks=hooks))
    assert got == Delivered("done", "webhook https://hooks.example/ar", "accepted")
    assert hooks.posts == [("https://hooks.example/ar", notice.body, notice.key)]
    assert _state(store, notice.key) == (EntryState.DONE, "accepted", None)
    assert store.get(notice.key).updated_at == NOW  # type: ignore[union-attr]
    again = _notify(store, notice, MailSetup(webhooks=hooks), LATER)
    assert again == Delivered("skipped", "already notified")
    assert len(hooks.posts) == 1


def test_a_notice_held_by_another_runner_is_busy(store: SQLiteStore) -> None:
    notice, hooks = _notice(), Hooks()
    assert store.claim(notice, owner="other", now=NOW, lease_seconds=60).ours
    got = _notify(store, notice, MailSetup(webhooks=hooks))
    assert got == Delivered("busy", "another runner holds it")
    assert hooks.posts == []


@pytest.mark.parametrize("error", [WebhookRetryableError("status 503"),
                                   WebhookRefusedError("status 410"), OSError("reset")])
def test_a_failed_receiver_is_retried_next_run(store: SQLiteStore, error: Exception) -> None:
    notice = _notice()
    got = _notify(store, notice, MailSetup(webhooks=Hooks(error)))
    assert got == Delivered("retry", f"receiver failed: {error}; retried next run")
    assert _state(store, notice.key) == (EntryState.RETRY, None, f"receiver failed: {error}")
    hooks = Hooks()
    assert _notify(store, notice, MailSetup(webhooks=hooks), LATER).outcome == "done"
    assert len(hooks.posts) == 1


@pytest.mark.parametrize("why", ["bad url", "x" * 300])
def test_a_notice_that_cannot_be_built_fails_for_good(store: SQLiteStore, why: str) -> None:
    notice = _notice()
    got = _notify(store, notice, MailSetup(webhooks=Hooks(ValueError(why))))
    reason = "cannot build the notice: " + f"ValueError: {why}"[:160]  # a long one is cut
    assert got == Delivered("failed", reason)
    assert _state(store, notice.key) == (EntryState.FAILED, None, reason)


@pytest.mark.parametrize("channel", ["webhook", "email"])
def test_an_unconfigured_channel_keeps_the_notice(store: SQLiteStore, channel: str) -> None:
    notice = _notice(channel, "credit@acme.example")
    got = _notify(store, notice, MailSetup())
    assert got == Delivered("retry", "notice channel not configured")
    assert _state(store, notice.key) == (EntryState.RETRY, None, "not configured")


def test_an_e_mail_notice_is_sent_to_its_person(store: SQLiteStore) -> None:
    notice, mailer = _notice("email", "credit@acme.example"), Mailer(SendResult(Outcome.SENT))
    got = _notify(store, notice, MailSetup(sender=SENDER, mailer=mailer))
    assert got == Delivered("done", "email credit@acme.example", notice.key)
    (mime, envelope, tags), = mailer.sent
    assert mime["Subject"] == "Escalated: invoice INV-1 (One)"
    assert mime["To"] == "credit@acme.example"
    assert mime["Message-ID"] == f"<{notice.key}@acme.example>"
    assert mime["Date"] is not None and "16 Nov 2026 15:00" in mime["Date"]
    text = mime.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "amount: 100.00\ncustomer_name: One\n" in text and "note" not in text
    assert envelope == Envelope("accounts@acme.example", ("credit@acme.example",))
    assert tags == {"tenant": tag_value(CONNECTION.id)}


def test_an_e_mail_notice_without_a_customer_name(store: SQLiteStore) -> None:
    notice = _notice("email", "credit@acme.example").model_copy(update={"body": {}})
    mailer = Mailer(SendResult(Outcome.SENT, ref="provider-9"))
    got = _notify(store, notice, MailSetup(sender=SENDER, mailer=mailer))
    assert got.ref == "provider-9"
    assert mailer.sent[0][0]["Subject"] == "Escalated: invoice INV-1 ()"


def test_an_e_mail_notice_not_sent_is_retried(store: SQLiteStore) -> None:
    notice = _notice("email", "credit@acme.example")
    mailer = Mailer(SendResult(Outcome.UNSENT, detail="421 busy"))
    got = _notify(store, notice, MailSetup(sender=SENDER, mailer=mailer))
    assert got.outcome == "retry" and "e-mail unsent: 421 busy" in got.detail
    assert _state(store, notice.key)[0] == EntryState.RETRY


def test_webhook_urls_lists_every_escalation_receiver() -> None:
    assert webhook_urls(rules()) == ["http://127.0.0.1:9/hook"]


def test_the_next_run_settles_a_stopped_message_before_its_items(store: SQLiteStore) -> None:
    """Leftovers of a runner that stopped after sending: the message goes first, so its
    unfinished item is completed as sent, not failed as ambiguous on its own."""
    one, two = _item(1), _item(2)
    message = _message(one, two)
    _dead_claims(store, message, one, two)
    assert store.complete(one.key, owner="dead", ref=message.key, now=NOW)
    mailer = Mailer()
    state = FakePlatform(invoices={})
    report = run_tenant(store, CONNECTION.id, now=NOW + timedelta(days=1), policy=rules(),
                        mail=MailSetup(sender=SENDER, mailer=mailer),
                        connector=FakeConnector(state, CONNECTION, FaultPlan(random.Random(0))))
    assert mailer.sent == [] and report.ambiguous == 0
    assert _state(store, message.key) == (EntryState.DONE, message.message_id, None)
    assert _state(store, two.key) == (EntryState.DONE, message.key, None)


class _Linking(FakeConnector):
    """A platform whose payment links are lazy references, resolved one call each."""

    def __init__(self, state: FakePlatform, error: Exception | None = None) -> None:
        super().__init__(state, CONNECTION, FaultPlan(random.Random(0)))
        self.asked: list[str] = []
        self.error = error

    def payment_link(self, invoice_id: str) -> str | None:
        self.asked.append(invoice_id)
        if self.error is not None:
            raise self.error
        return f"https://pay.example/resolved/{invoice_id}"


@pytest.mark.parametrize("error", [None, TransientError("503")])
def test_lazy_payment_links_are_resolved_for_the_e_mailed_invoices_only(
        store: SQLiteStore, error: Exception | None) -> None:
    due, later = (invoice(n, days).model_copy(update={"payment_link": f"lazy:inv-{n}"})
                  for n, days in ((1, 3), (2, -20)))
    ready = [invoice(3, 3, link="https://pay.example/ready"),
             invoice(4, 3, link="http://pay.example/ready")]  # URLs already: no call
    connector = _Linking(FakePlatform(invoices={i.id: i for i in (due, later, *ready)}), error)
    mailer = Mailer()
    run_tenant(store, CONNECTION.id, now=NOW, policy=rules(), connector=connector,
               mail=MailSetup(sender=SENDER, mailer=mailer))
    (sent, _, _), = mailer.sent
    body = sent.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert connector.asked == ["inv-1"]  # not the invoice no e-mail is due for
    assert "https://pay.example/ready/3" in body and "http://pay.example/ready/4" in body
    assert "lazy:" not in body
    assert ("https://pay.example/resolved/inv-1" in body) == (error is None)


def test_no_transport_defers_and_a_live_claim_is_busy(store: SQLiteStore) -> None:
    message = _message(_item(1))
    unset = deliver_message(store, message, setup=MailSetup(), today=NOW.date(), owner="me",
                            clock=lambda: NOW, lease_seconds=60)
    assert unset == Delivered("deferred", "no e-mail transport configured (AR_SYNC_MAIL_FROM)")
    assert store.get(message.key) is None  # nothing claimed: sent once configured
    assert store.claim(message, owner="other", now=NOW, lease_seconds=60).ours
    mailer = Mailer()
    assert _deliver(store, message, mailer, now=NOW) == Delivered(
        "busy", "another runner is sending it")
    assert mailer.sent == []


class _Pdfs(FakeConnector):
    """A platform with a PDF for each invoice but `broken`, whose PDF read fails."""

    def __init__(self, state: FakePlatform, broken: str) -> None:
        super().__init__(state, CONNECTION, FaultPlan(random.Random(0)))
        self.broken = broken

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        if invoice.id == self.broken:
            raise TransientError("503 on the PDF")
        return f"%PDF-1.4 {invoice.number}".encode()


def test_a_run_attaches_the_platforms_pdfs_and_sends_without_one_it_cannot_read(
        store: SQLiteStore) -> None:
    state = FakePlatform(invoices={i.id: i for i in (invoice(1, 3), invoice(2, 3))})
    mailer = Mailer()
    policy = rules(RULES.replace("email: {group_by: customer}",
                                 "email: {group_by: customer, attach_pdf: true}"))
    run_tenant(store, CONNECTION.id, now=NOW, policy=policy, connector=_Pdfs(state, "inv-2"),
               mail=MailSetup(sender=SENDER, mailer=mailer))
    (sent, _, _), = mailer.sent
    assert [(a.get_filename(), a.get_content()) for a in sent.iter_attachments()] == [
        ("Invoice INV-1.pdf", b"%PDF-1.4 INV-1")]


# ------------------------------------------------------------------ interrupted sends


class _Interrupted(SQLiteStore):
    """Ctrl-C right after the `n`-th claim or the `n`-th completion of this store."""

    def interrupt(self, method: str, n: int) -> _Interrupted:
        self.method, self.left = method, n
        return self

    def _maybe(self, method: str) -> None:
        if getattr(self, "method", None) == method:
            self.left -= 1
            if self.left == 0:
                raise KeyboardInterrupt

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        got = super().claim(*args, **kwargs)
        self._maybe("claim")
        return got

    def complete(self, *args: Any, **kwargs: Any) -> bool:
        done = super().complete(*args, **kwargs)
        self._maybe("complete")
        return done

    def fail(self, *args: Any, **kwargs: Any) -> bool:
        done = super().fail(*args, **kwargs)
        self._maybe("fail")
        return done


@pytest.fixture
def istore(tmp_path: Path) -> _Interrupted:
    s = _Interrupted(tmp_path / "ar.db", cipher=CIPHER)
    s.save_connection(CONNECTION)
    return s


def test_an_interrupt_before_the_hand_over_releases_every_row_as_unsent(
        istore: _Interrupted) -> None:
    """Ctrl-C just after the second item's claim: that item is released too."""
    one, two = _item(1), _item(2)
    message = _message(one, two)
    mailer = Mailer()
    with pytest.raises(KeyboardInterrupt):
        _deliver(istore.interrupt("claim", 3), message, mailer, now=NOW)  # message, one, two
    why = "unsent (attempt 1): interrupted before sending"
    for key in (message.key, one.key, two.key):
        assert _state(istore, key) == (EntryState.RETRY, None, why)  # type: ignore[arg-type]
    assert mailer.sent == []
    istore.method = ""
    assert _deliver(istore, message, mailer).outcome == "done" and len(mailer.sent) == 1


def test_an_interrupt_during_the_hand_over_is_ambiguous(store: SQLiteStore) -> None:
    one = _item(1)
    message = _message(one)

    class Cut(Mailer):
        def send(self, *args: Any, **kwargs: Any) -> SendResult:
            super().send(*args, **kwargs)
            raise KeyboardInterrupt  # the server has it, then the signal came

    with pytest.raises(KeyboardInterrupt):
        _deliver(store, message, Cut(), now=NOW)
    reason = AMBIGUOUS + "interrupted while handing it over; check the mailbox"
    for key in (message.key, one.key):
        assert _state(store, key) == (EntryState.FAILED, None, reason)


def test_an_interrupt_after_the_send_writes_the_answer_down(istore: _Interrupted) -> None:
    one, two = _item(1), _item(2)
    message = _message(one, two)
    with pytest.raises(KeyboardInterrupt):
        _deliver(istore.interrupt("complete", 1), message, Mailer(), now=NOW)
    istore.method = ""
    assert _state(istore, message.key) == (  # type: ignore[arg-type]
        EntryState.DONE, "provider-1", None)
    for key in (one.key, two.key):
        assert _state(istore, key) == (EntryState.DONE, message.key, None)  # type: ignore[arg-type]


# ------------------------------------------------------------------ what a run needs to send


def test_rules_that_send_without_a_way_to_send_are_a_configuration_error() -> None:
    policy = rules()  # e-mail stages, an escalation notifying by e-mail and webhook
    stages = "stage overdue-1, stage overdue-2, stage final-notice, escalation collections"
    sender = (f"the rules send ar-sync's own e-mail ({stages}) but no sender is configured: "
              "set AR_SYNC_MAIL_FROM and a transport, or the company's own "
              "(`ar-sync sending set --from ...`)")
    webhook = ("the rules notify webhooks but no webhook secret is configured: set "
               "AR_SYNC_NOTIFY_WEBHOOK_SECRET, or the company's own (`ar-sync sending set "
               "--webhook-secret-file ...`)")
    kept = " (until then these are kept as deferred, nothing is lost)"
    assert mail_problem(policy, MailSetup()) == f"{sender}; {webhook}{kept}"
    can_send = MailSetup(sender=SENDER, mailer=Mailer())
    assert mail_problem(policy, can_send) == webhook + kept
    assert mail_problem(policy, MailSetup(sender=SENDER, mailer=Mailer(),
                                          webhooks=Hooks())) is None
    stages_only = rules("version: 1\nreminders:\n  - {name: overdue-1, days: 1, channel: email}\n")
    assert mail_problem(stages_only, MailSetup()) == (
        "the rules send ar-sync's own e-mail (stage overdue-1) but no sender is configured: "
        "set AR_SYNC_MAIL_FROM and a transport, or the company's own "
        "(`ar-sync sending set --from ...`)" + kept)
    platform_only = rules("version: 1\nreminders:\n  - {name: overdue-1, days: 1}\n")
    assert mail_problem(platform_only, MailSetup()) is None


def test_a_run_keeps_the_payment_links_its_connector_resolved(store: SQLiteStore) -> None:
    class Resolving(FakeConnector):
        def resolved_links(self) -> dict[str, str]:
            return {"inv-1": "https://pay.example/kept/1", "inv-2": "lazy:2",
                    "inv-3": "https://pay.example/kept/3", "inv-9": "https://pay.example/9"}

    paid = invoice(3, 3).model_copy(update={"balance": Decimal(0),
                                            "status": InvoiceStatus.PAID})
    state = FakePlatform(invoices={i.id: i for i in (invoice(1, 3), invoice(2, 3), paid)})
    run_tenant(store, CONNECTION.id, now=NOW, policy=rules(),
               connector=Resolving(state, CONNECTION, FaultPlan(random.Random(0))),
               mail=MailSetup(sender=SENDER, mailer=Mailer(), webhooks=Hooks()))
    links = {i.id: i.payment_link for i in store.open_invoices(CONNECTION.id)}
    assert links == {"inv-1": "https://pay.example/kept/1",  # kept: never read again
                     "inv-2": "https://pay.example/inv/2"}  # not a URL: not kept


def test_an_interrupt_while_recording_a_refusal_still_lets_the_next_attempt_send(
        istore: _Interrupted) -> None:
    """The refusal is written down in full (attempt numbers included), so the next attempt
    knows the message was not sent and sends it."""
    one = _item(1)
    message = _message(one)
    refused = Mailer(SendResult(Outcome.UNSENT, detail="421 try later"))
    with pytest.raises(KeyboardInterrupt):
        _deliver(istore.interrupt("fail", 1), message, refused, now=NOW)
    istore.method = ""
    why = "unsent (attempt 1): 421 try later"
    for key in (message.key, one.key):
        assert _state(istore, key) == (EntryState.RETRY, None, why)  # type: ignore[arg-type]
    mailer = Mailer()
    assert _deliver(istore, message, mailer).outcome == "done" and len(mailer.sent) == 1


def test_a_leftover_item_is_closed_by_the_run_or_was_settled_by_its_message(
        store: SQLiteStore) -> None:
    one, two = _item(1), _item(2)
    _dead_claims(store, one, two)
    assert store.complete(two.key, owner="dead", ref="ar-message-1", now=NOW)

    def run(item: EmailReminder) -> Delivered | None:
        return mail_execute(store, FakeConnector(FakePlatform(invoices={}), CONNECTION,
                                                 FaultPlan(random.Random(0))), item,
                            setup=MailSetup(), invoices={}, today=NOW.date(), owner="me",
                            clock=lambda: LATER, lease_seconds=60)

    reason = AMBIGUOUS + "in a message a runner stopped sending"
    assert run(one) == Delivered("ambiguous", reason)
    assert _state(store, one.key) == (EntryState.FAILED, None, reason)
    assert run(two) == Delivered("skipped", "settled by its message")
