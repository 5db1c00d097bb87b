"""Ctrl-C or SIGTERM in the middle of an e-mail leaves nothing claimed (found when the ops
tests began to send the sandbox's e-mails: an interrupt left a message's item rows claimed,
so the next run took them for a stopped runner and recorded them ambiguous, never sent).

Before the hand-over nothing went out: every row is released as known unsent and the next
run sends it. During the hand-over the server may have it: ambiguous. After it the answer is
known and is written down in full."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sync.fakes import FakeConnector, FakePlatform, FaultPlan
from sync.harness import CIPHER

from ar_sync.delivery.transports import SmtpMailer
from ar_sync.domain.models import EntryState
from ar_sync.messages.mime import Sender
from ar_sync.messages.sending import MailSetup
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import run_tenant
from ar_sync_emulators.smtp_sink import SmtpSink

from .helpers import CONNECTION, NOW, invoice, rules

SENDER = Sender("Acme Supplies <accounts@acme.example>")
ONLY_EMAIL = ("calendar: {send_on: any_day}\nemail: {attach_pdf: true}\nreminders:\n"
              "  - {name: overdue-1, days: 1, channel: email}\n")
MAIL_KINDS = ("customer_email", "message")


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink().serve() as running:
        yield running


class _Interrupting:
    """A mailer whose hand-over is interrupted once the server has the message."""

    def __init__(self, inner: Any, *, at: str) -> None:
        self.inner, self.at = inner, at

    def send(self, message: Any, **kwargs: Any) -> Any:
        result = self.inner.send(message, **kwargs)
        if self.at == "sending":
            raise KeyboardInterrupt  # the server got it, then the signal came
        return result


class _StoreInterruptingComplete:
    def __init__(self, inner: SQLiteStore) -> None:
        self._inner, self.completes = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def complete(self, key: str, **kwargs: Any) -> bool:
        self.completes += 1
        if self.completes == 2:  # between the items' completions, after the send
            raise KeyboardInterrupt
        return self._inner.complete(key, **kwargs)


def _run(store: Any, mailer: Any, *, pdf_interrupts: bool = False) -> Any:
    state = FakePlatform(invoices={i.id: i for i in [invoice(1, 1), invoice(2, 2)]})
    connector = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0)))

    def pdf(inv: Any) -> bytes:
        if pdf_interrupts:
            raise KeyboardInterrupt  # while the message is being built: nothing went out
        return b"%PDF-1.4 test"

    connector.invoice_pdf = pdf  # type: ignore[attr-defined]
    return run_tenant(store, CONNECTION.id, now=NOW, policy=rules(ONLY_EMAIL),
                      mail=MailSetup(sender=SENDER, mailer=mailer), connector=connector)


def _states(store: SQLiteStore) -> set[str]:
    return {str(e.state) for rows in store.history(CONNECTION.id).values() for e in rows
            if e.kind in MAIL_KINDS}


def _store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    store.save_connection(CONNECTION)
    return store


@pytest.mark.parametrize("at, first, after_rerun", [
    ("before", "retry", "done"),  # known unsent: the next run sends it
    ("sending", "failed", "failed"),  # the server may have it: ambiguous, never resent
])
def test_an_interrupt_leaves_nothing_claimed(tmp_path: Path, sink: SmtpSink, at: str,
                                             first: str, after_rerun: str) -> None:
    store = _store(tmp_path)
    mailer = SmtpMailer(sink.settings(timeout=5))
    report = _run(store, _Interrupting(mailer, at=at), pdf_interrupts=at == "before")
    assert report.stopped_early == "interrupted"
    assert all(e.state != EntryState.CLAIMED for e in store.unfinished(CONNECTION.id))
    assert _states(store) == {first}
    _run(store, mailer)
    assert _states(store) == {after_rerun}
    assert len(sink.snapshot()) == 1  # sent once: by the rerun, or by the interrupted run


def test_an_interrupt_after_the_send_writes_the_answer_down(tmp_path: Path,
                                                            sink: SmtpSink) -> None:
    inner = _store(tmp_path)
    report = _run(_StoreInterruptingComplete(inner), SmtpMailer(sink.settings(timeout=5)))
    assert report.stopped_early == "interrupted"
    assert _states(inner) == {"done"}  # items and message, all of them
    assert len(sink.snapshot()) == 1


def test_a_transaction_left_open_by_an_interrupt_does_not_block_the_store(
        tmp_path: Path) -> None:
    store = _store(tmp_path)
    store._db.execute("BEGIN IMMEDIATE")  # what Ctrl-C between BEGIN and try leaves behind
    store.save_connection(CONNECTION)  # before: "cannot start a transaction within a ..."
    assert store.get_connection(CONNECTION.id) == CONNECTION
