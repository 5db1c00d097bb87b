"""Exactly once, stated honestly: the ledger protocol for customer e-mails and notices.

A message's ledger row is keyed by (tenant, customer, day[, invoice]), so whatever two runs
grouped, one customer gets at most one message a day. Each invoice's item row is claimed
before the send and completed with the message's key after it, so an invoice is never in two
messages. The order is: claim message -> claim items -> send -> complete items -> complete
message. Outcomes:

* sent: items and message `done` (the message's ref is the provider's id).
* known not sent (refused connection, refused recipient/data): rows go to `retry` with a
  reason starting `unsent:`; a later run of the same day may send it; a later day regroups.
* unknown (connection lost during DATA, SES 5xx or timeout), or a runner that stopped
  between the claim and the end: SMTP and SES cannot be asked afterwards, so we take the
  customer's side — rows go to `failed` with a reason starting `ambiguous:`, are never sent
  again automatically, and the run report lists them for a person to check. A stale message
  whose items were completed is recognised as sent (`reconciled`).
"""

from __future__ import annotations

import email.errors
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage

from ar_sync.domain.models import (
    CustomerMessage,
    EmailReminder,
    EntryState,
    EscalationNotice,
    LedgerEntry,
)
from ar_sync.messages.mime import (
    Envelope,
    Mailer,
    Outcome,
    SendResult,
    build_mime,
    notice_mime,
    tag_value,
    wire_bytes,
)
from ar_sync.messages.sending import MailSetup, WebhookRefusedError, WebhookRetryableError
from ar_sync.sync.ledger import ClaimOutcome
from ar_sync.sync.store import Store

UNSENT = "unsent"  # reason prefix: 'unsent (attempt N): why'
AMBIGUOUS = "ambiguous: "
_UNSENT = re.compile(r"^unsent \(attempt (\d+)\): ")

PdfSource = Callable[[str], bytes | None]  # invoice id -> the platform's PDF, if any


@dataclass(frozen=True)
class Delivered:
    outcome: str  # done | reconciled | skipped | busy | retry | failed | ambiguous | deferred
    detail: str = ""
    ref: str | None = None


def _unsent(entry: LedgerEntry | None, why: str) -> str:
    """A reason saying the attempt that holds `entry` (our claim) certainly did not send."""
    return f"{UNSENT} (attempt {entry.attempts if entry else 0}): {why}"


def _known_unsent(entry: LedgerEntry | None) -> bool:
    """True when the row was released as unsent by the attempt just before ours: a later
    attempt that stopped without a word (a crash after sending) leaves the old reason behind,
    and the attempt counter then tells the two apart."""
    match = _UNSENT.match(entry.reason or "") if entry is not None else None
    return match is not None and entry is not None and int(match[1]) == entry.attempts - 1


@dataclass
class _Run:
    store: Store
    owner: str
    clock: Callable[[], datetime]
    lease_seconds: float

    def fail(self, key: str, reason: str, *, permanent: bool) -> None:
        self.store.fail(key, owner=self.owner, reason=reason, now=self.clock(),
                        permanent=permanent)

    def settle_items(self, items: Sequence[EmailReminder], message_key: str,
                     state: EntryState, reason: str) -> None:
        """Bring the items of a message whose fate is known to the same state."""
        for item in items:
            claim = self.store.claim(item, owner=self.owner, now=self.clock(),
                                     lease_seconds=self.lease_seconds)
            if not claim.ours:
                continue
            if state == EntryState.DONE:
                self.store.complete(item.key, owner=self.owner, ref=message_key,
                                    now=self.clock())
            else:
                self.fail(item.key, reason, permanent=True)


def _items_of(store: Store, message: CustomerMessage) -> list[EmailReminder]:
    """The current items plus those the row was first claimed with (a same-day regroup)."""
    stored = store.action_payload(message.key)
    items = {i.key: i for i in message.items}
    if isinstance(stored, CustomerMessage):
        items.update({i.key: i for i in stored.items if i.key not in items})
    return list(items.values())


def deliver_message(store: Store, message: CustomerMessage, *, setup: MailSetup, today: date,
                    owner: str, clock: Callable[[], datetime], lease_seconds: float,
                    pdf: PdfSource | None = None) -> Delivered:
    """claim -> claim items -> send -> complete items -> complete, for one message."""
    if not setup.can_send:
        return Delivered("deferred", "no e-mail transport configured (AR_SYNC_MAIL_FROM)")
    run = _Run(store, owner, clock, lease_seconds)
    claim = store.claim(message, owner=owner, now=clock(), lease_seconds=lease_seconds)
    if claim.outcome == ClaimOutcome.BUSY:
        return Delivered("busy", "another runner is sending it")
    if claim.outcome == ClaimOutcome.FINISHED:
        entry = claim.entry
        if entry is not None and entry.state == EntryState.DONE:
            run.settle_items(_items_of(store, message), message.key, EntryState.DONE, "")
        elif entry is not None and (entry.reason or "").startswith(AMBIGUOUS):
            run.settle_items(_items_of(store, message), message.key, EntryState.FAILED,
                             entry.reason or AMBIGUOUS)
        return Delivered("skipped", "this customer's message of the day is already recorded")
    if claim.outcome == ClaimOutcome.RECONCILE and not _known_unsent(claim.entry):
        return _reconcile(run, message)
    if message.occurrence != today.isoformat():
        # A known-unsent message of an earlier day: its invoices are planned again today.
        store.record_skip(message, reason="not sent that day; regrouped later", now=clock(),
                          owner=owner)
        return Delivered("skipped", "not sent on its day; its invoices are planned again")
    return _send(run, message, claim.entry, setup, pdf)


def _reconcile(run: _Run, message: CustomerMessage) -> Delivered:
    """A runner stopped while holding this message: sent if any item says so, else unknown."""
    items = _items_of(run.store, message)
    for item in items:
        entry = run.store.get(item.key)
        if entry is not None and entry.state == EntryState.DONE and entry.ref == message.key:
            run.settle_items(items, message.key, EntryState.DONE, "")
            run.store.complete(message.key, owner=run.owner, ref=message.message_id,
                               now=run.clock())
            return Delivered("reconciled", "its invoices were recorded as sent",
                             message.message_id)
    reason = AMBIGUOUS + "a runner stopped while sending; check the mailbox before resending"
    run.fail(message.key, reason, permanent=True)
    run.settle_items(items, message.key, EntryState.FAILED, reason)
    return Delivered("ambiguous", reason)


@dataclass
class _Progress:
    """How far a send got, for an interrupt (Ctrl-C, SIGTERM) to leave nothing claimed."""

    ours: list[tuple[EmailReminder, LedgerEntry | None]] = field(default_factory=list)
    stage: str = "before"  # before the hand-over | sending | after (the answer is known)
    result: SendResult | None = None


def _send(run: _Run, message: CustomerMessage, entry: LedgerEntry | None, setup: MailSetup,
          pdf: PdfSource | None) -> Delivered:
    progress = _Progress()
    try:
        return _send_steps(run, message, entry, setup, pdf, progress)
    except KeyboardInterrupt:
        _interrupted(run, message, entry, progress)
        raise


def _interrupted(run: _Run, message: CustomerMessage, entry: LedgerEntry | None,
                 progress: _Progress) -> None:
    """Before the hand-over nothing went out: release every row as known unsent. During it
    the server may have the message: ambiguous, never resent. After it the answer is known:
    finish writing it down."""
    if progress.stage == "before":
        why = "interrupted before sending"
        held = {item.key: claimed for item, claimed in progress.ours}
        for item in message.items:  # one claimed just as the interrupt came is ours too
            row = held[item.key] if item.key in held else run.store.get(item.key)
            run.fail(item.key, _unsent(row, why), permanent=False)
        run.fail(message.key, _unsent(entry, why), permanent=False)
    elif progress.stage == "sending":
        reason = AMBIGUOUS + "interrupted while handing it over; check the mailbox"
        for item in message.items:
            run.fail(item.key, reason, permanent=True)
        run.fail(message.key, reason, permanent=True)
    elif progress.result is not None:  # finish writing down the answer
        _record(run, message, entry, progress.ours, progress.result)


def _send_steps(run: _Run, message: CustomerMessage, entry: LedgerEntry | None,
                setup: MailSetup, pdf: PdfSource | None, progress: _Progress) -> Delivered:
    store = run.store
    ours = progress.ours
    blocked = ""
    for item in message.items:
        claim = store.claim(item, owner=run.owner, now=run.clock(),
                            lease_seconds=run.lease_seconds)
        if claim.outcome == ClaimOutcome.ACQUIRED or (
                claim.outcome == ClaimOutcome.RECONCILE and _known_unsent(claim.entry)):
            ours.append((item, claim.entry))
            continue
        if claim.outcome == ClaimOutcome.RECONCILE:  # in a message whose fate is unknown
            run.fail(item.key, AMBIGUOUS + "in a message a runner stopped sending",
                     permanent=True)
        blocked = f"invoice {item.invoice_number} is held by another message"
        break
    if blocked:
        for item, held in ours:
            run.fail(item.key, _unsent(held, blocked), permanent=False)
        run.fail(message.key, _unsent(entry, blocked), permanent=False)
        return Delivered("busy", blocked + "; regrouped next run")
    assert setup.sender is not None and setup.mailer is not None
    try:
        mime, envelope = _build(message, setup, run.clock(), pdf)
    except (ValueError, UnicodeError, LookupError, email.errors.MessageError) as exc:
        # one unusual value (an address, an invoice number) fails this message alone
        reason = _unsent(entry, f"cannot build the message: {_short(exc)}")
        for item, held in ours:
            run.fail(item.key, _unsent(held, f"cannot build the message: {_short(exc)}"),
                     permanent=True)
        run.fail(message.key, reason, permanent=True)
        return Delivered("failed", reason)
    progress.stage = "sending"
    result = _hand_over(setup.mailer, mime, envelope,
                        {"tenant": tag_value(message.tenant),
                         "customer": tag_value(message.customer_id)})
    progress.stage, progress.result = "after", result
    return _record(run, message, entry, ours, result)


def _record(run: _Run, message: CustomerMessage, entry: LedgerEntry | None,
            ours: Sequence[tuple[EmailReminder, LedgerEntry | None]],
            result: SendResult) -> Delivered:
    """Write down what the transport answered; every update is conditional on our claim, so
    doing it again (after an interrupt in the middle of it) changes nothing twice."""
    store = run.store
    if result.outcome == Outcome.SENT:
        for item in message.items:
            store.complete(item.key, owner=run.owner, ref=message.key, now=run.clock())
        ref = result.ref or message.message_id
        if not store.complete(message.key, owner=run.owner, ref=ref, now=run.clock()):
            return Delivered("busy", "lease lost after sending; the other runner reconciles",
                             ref)
        return Delivered("done", f"to {message.to}: {len(message.items)} invoice(s)", ref)
    if result.outcome == Outcome.UNSENT:
        for item, held in ours:
            run.fail(item.key, _unsent(held, result.detail), permanent=result.permanent)
        reason = _unsent(entry, result.detail)
        run.fail(message.key, reason, permanent=result.permanent)
        return Delivered("failed" if result.permanent else "retry", reason)
    reason = AMBIGUOUS + result.detail
    for item in message.items:
        run.fail(item.key, reason, permanent=True)
    run.fail(message.key, reason, permanent=True)
    return Delivered("ambiguous", reason)


def _build(message: CustomerMessage, setup: MailSetup, now: datetime,
           pdf: PdfSource | None) -> tuple[EmailMessage, Envelope]:
    """The MIME message, its envelope, and proof that it serialises (so the transport cannot
    fail on it half-way); raises ValueError & co. for what cannot be sent."""
    assert setup.sender is not None
    attachments = []
    if message.attach_pdf and pdf is not None:
        for item in message.items:
            data = pdf(item.invoice_id)
            if data:
                attachments.append((item.invoice_number, data))
    mime = build_mime(message, sender=setup.sender, now=now, attachments=attachments)
    envelope = setup.sender.envelope(message.to)
    wire_bytes(mime)
    return mime, envelope


def _hand_over(mailer: Mailer, mime: EmailMessage, envelope: Envelope,
               tags: Mapping[str, str]) -> SendResult:
    """The transport's answer; an exception it did not classify may have come after the
    hand-over, so it counts as UNKNOWN (never sent again automatically, never left claimed)."""
    try:
        return mailer.send(mime, envelope=envelope, tags=tags)
    except Exception as exc:
        return SendResult(Outcome.UNKNOWN, detail=f"transport error: {_short(exc)}")


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:160]


def settle_leftover_item(store: Store, item: EmailReminder, *, owner: str,
                         clock: Callable[[], datetime], lease_seconds: float) -> Delivered | None:
    """An item row left unfinished and no longer planned: close it without sending."""
    claim = store.claim(item, owner=owner, now=clock(), lease_seconds=lease_seconds)
    if not claim.ours:
        return None
    if _known_unsent(claim.entry):
        store.record_skip(item, reason="not sent; no longer due", now=clock(), owner=owner)
        return Delivered("skipped", "e-mail no longer due")
    reason = AMBIGUOUS + "in a message a runner stopped sending"
    store.fail(item.key, owner=owner, reason=reason, now=clock(), permanent=True)
    return Delivered("ambiguous", reason)


def deliver_notice(store: Store, notice: EscalationNotice, *, setup: MailSetup, owner: str,
                   clock: Callable[[], datetime], lease_seconds: float) -> Delivered:
    """At least once: claim -> post/send -> complete; a failure is retried next run."""
    claim = store.claim(notice, owner=owner, now=clock(), lease_seconds=lease_seconds)
    if claim.outcome == ClaimOutcome.FINISHED:
        return Delivered("skipped", "already notified")
    if claim.outcome == ClaimOutcome.BUSY:
        return Delivered("busy", "another runner holds it")
    try:
        ref = _notify(notice, setup, clock)
    except (WebhookRetryableError, WebhookRefusedError, OSError) as exc:
        store.fail(notice.key, owner=owner, reason=f"receiver failed: {exc}", now=clock(),
                   permanent=False)
        return Delivered("retry", f"receiver failed: {exc}; retried next run")
    except (ValueError, UnicodeError, LookupError, email.errors.MessageError) as exc:
        reason = f"cannot build the notice: {_short(exc)}"
        store.fail(notice.key, owner=owner, reason=reason, now=clock(), permanent=True)
        return Delivered("failed", reason)
    if ref is None:
        store.fail(notice.key, owner=owner, reason="not configured", now=clock(),
                   permanent=False)
        return Delivered("retry", "notice channel not configured")
    store.complete(notice.key, owner=owner, ref=ref, now=clock())
    return Delivered("done", f"{notice.channel} {notice.target}", ref)


def _notify(notice: EscalationNotice, setup: MailSetup,
            clock: Callable[[], datetime]) -> str | None:
    if notice.channel == "webhook":
        if setup.webhooks is None:
            return None
        return setup.webhooks.post(notice.target, notice.body, delivery=notice.key)
    if not setup.can_send:
        return None
    assert setup.sender is not None and setup.mailer is not None
    body = notice.body
    text = "\n".join(f"{k}: {v}" for k, v in sorted(body.items()) if v is not None)
    mime = notice_mime(
        to=notice.target, sender=setup.sender, now=clock(),
        subject=f"Escalated: invoice {notice.invoice_number} ({body.get('customer_name', '')})",
        text=f"An invoice was escalated by ar-sync.\n\n{text}\n",
        message_id=f"<{notice.key}@{setup.sender.domain or 'ar-sync.invalid'}>")
    envelope = setup.sender.envelope(notice.target)
    wire_bytes(mime)
    result = _hand_over(setup.mailer, mime, envelope, {"tenant": tag_value(notice.tenant)})
    if result.outcome != Outcome.SENT:
        raise WebhookRetryableError(f"e-mail {result.outcome}: {result.detail}")
    return result.ref or notice.key
