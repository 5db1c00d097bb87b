"""Escalation notices: a signed JSON POST a receiver can verify, retried with backoff, and a
failing receiver never blocks the run (the notice is retried next run through the ledger)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sync.fakes import FakeConnector, FakePlatform, FaultPlan
from sync.harness import CIPHER

from ar_sync.delivery.notify import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    WebhookSender,
    signature,
    verify,
)
from ar_sync.domain.models import EntryState
from ar_sync.messages.sending import MailSetup, WebhookRefusedError, WebhookRetryableError
from ar_sync.planner.plan import plan
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import run_tenant

from .helpers import CONNECTION, NOW, RULES, invoice, rules

SECRET = "whsec-test-not-a-real-secret"


class Receiver:
    """A local HTTP receiver that answers with scripted statuses and keeps what it got."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.got: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_receiver_verifies_the_signature(receiver: Receiver) -> None:
    sender = WebhookSender(SECRET, allow_loopback=True, clock=lambda: 1_800_000_000.0)
    assert sender.post(receiver.url, {"event": "invoice.escalated", "invoice_number": "INV-1"},
                       delivery="ar123") == "accepted"
    ((headers, body),) = receiver.got
    assert headers[DELIVERY_HEADER.lower()] == "ar123"
    assert headers["content-type"] == "application/json"
    sig = headers[SIGNATURE_HEADER.lower()]
    assert verify(SECRET, body, sig, now=1_800_000_010.0)
    assert not verify("another-secret", body, sig, now=1_800_000_010.0)
    assert not verify(SECRET, body.replace(b"INV-1", b"INV-2"), sig, now=1_800_000_010.0)
    assert not verify(SECRET, body, sig, now=1_800_000_000.0 + 3600)  # a replay, an hour later
    assert not verify(SECRET, body, "t=1,v1=zz", now=1.0) and not verify(SECRET, body, "junk")
    doc = json.loads(body)
    assert doc["invoice_number"] == "INV-1" and "INV-1" in doc["text"]  # chat hooks show text
    # the scheme, written out: hex HMAC-SHA256 over "<t>.<body>"
    assert sig == signature(SECRET, body, 1_800_000_000)


def test_retries_with_exponential_backoff_then_succeeds(receiver: Receiver) -> None:
    receiver.statuses = [503, 502, 429]
    waits: list[float] = []
    sender = WebhookSender(SECRET, allow_loopback=True, sleep=waits.append, attempts=4)
    assert sender.post(receiver.url, {"event": "x"}, delivery="k") == "accepted"
    assert len(receiver.got) == 4
    assert waits == sorted(waits) and waits[0] > 0 and waits[-1] > waits[0]  # backing off
    # every attempt carries the same delivery id, so the receiver can drop repeats
    assert {h[DELIVERY_HEADER.lower()] for h, _ in receiver.got} == {"k"}


def test_gives_up_after_the_last_attempt_and_client_errors_are_not_retried(
        receiver: Receiver) -> None:
    receiver.statuses = [500] * 10
    sender = WebhookSender(SECRET, allow_loopback=True, sleep=lambda _s: None, attempts=3)
    with pytest.raises(WebhookRetryableError):
        sender.post(receiver.url, {"event": "x"}, delivery="k")
    assert len(receiver.got) == 3
    receiver.statuses, receiver.got = [404], []
    with pytest.raises(WebhookRefusedError):
        sender.post(receiver.url, {"event": "x"}, delivery="k")
    assert len(receiver.got) == 1


def test_failing_receiver_never_blocks_the_run_and_is_retried_next_run(
        receiver: Receiver, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    store.save_connection(CONNECTION)
    policy = rules(RULES.replace('email: ["credit@acme.example"]', "email: []")
                   .replace("http://127.0.0.1:9/hook", receiver.url))
    # another customer's invoice (a customer's escalation and reminder would not share a day)
    other = invoice(2, 3, customer="c2", name="Two", email="two@example.com")
    state = FakePlatform(invoices={i.id: i for i in [invoice(1, 70), other]})
    setup = MailSetup(webhooks=WebhookSender(SECRET, allow_loopback=True,
                                             sleep=lambda _s: None, attempts=2))

    def run() -> object:
        return run_tenant(store, CONNECTION.id, now=NOW, policy=policy, mail=setup,
                          connector=FakeConnector(state, CONNECTION,
                                                  FaultPlan(rng=random.Random(0))))

    # the final notice went out 8 days ago: its deadline has passed, so the escalation is due
    before = NOW - timedelta(days=8)
    for a in plan([invoice(1, 62)], {}, policy, before.date()):
        if a.rule == "final-notice":
            store.claim(a, owner="seed", now=before, lease_seconds=60)
            store.complete(a.key, owner="seed", ref="seed", now=before)
    receiver.statuses = [500, 500]
    first = run()
    notice = [a for a in first.actions if a.kind == "notify"]  # type: ignore[attr-defined]
    assert [a.outcome for a in notice] == ["retry"]
    assert first.stopped_early is None  # type: ignore[attr-defined]
    assert len(state.notes) >= 2  # the escalation note and the other invoice's note went on
    second = run()
    assert [a.outcome for a in second.actions if a.kind == "notify"] == ["done"]  # type: ignore[attr-defined]
    entry = store.get(notice[0].key)
    assert entry is not None and entry.state == EntryState.DONE
    bodies = [json.loads(b) for _, b in receiver.got]
    assert len(bodies) == 3 and {b["id"] for b in bodies} == {bodies[0]["id"]}
    third = run()
    assert not [a for a in third.actions if a.kind == "notify"]  # type: ignore[attr-defined]
    assert len(receiver.got) == 3
