"""Fault injection for customer e-mails, counted from the SMTP server's own mailbox.

Each seeded schedule: a few customers with invoices at different stages, several days; each
day 1–4 rounds of 1–3 runners (with or without the tenant lock), runners that crash before or
after handing a message to the server, or between ledger writes, a server that refuses or
drops the connection before or after keeping a message; then a clean run at the end of the
day. Counted from the sink (the customer's side):

* duplicates: a customer receiving a second message on one day, or an invoice's reminder
  stage arriving in two messages;
* lost: an e-mail item planned but neither delivered nor recorded for a person (a `failed`
  row, ambiguous ones included), or recorded `done` without reaching the server;
* ambiguous: items recorded as ambiguous (split by whether the server did keep the message).
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sync.fakes import FakeConnector, FakePlatform, FaultPlan, SimulatedCrash
from sync.harness import CIPHER
from sync.rounds import Clock, ScheduleTally, run_round

from ar_sync.delivery.transports import SmtpMailer
from ar_sync.domain.models import EntryState, Invoice
from ar_sync.messages.mime import Mailer, Sender, SendResult
from ar_sync.messages.sending import MailSetup
from ar_sync.rules.policy import Policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.deliver import AMBIGUOUS
from ar_sync.sync.run import run_tenant
from ar_sync_emulators.smtp_sink import SmtpSink

from .helpers import CONNECTION, invoice

STAGES = ((1, "overdue-1"), (14, "overdue-2"), (45, "final-notice"))  # as in helpers.RULES
SENDER = Sender("Acme Supplies <accounts@acme.example>", "accounts@acme.example")
_NUMBER = re.compile(r"^(INV-\d+)\s+(\d{4}-\d{2}-\d{2})", re.M)


@dataclass
class MailTally(ScheduleTally):
    concurrent_rounds: int = 0
    unlocked_runs: int = 0
    server_faults: int = 0
    messages: int = 0
    items: int = 0
    ambiguous: int = 0  # items
    ambiguous_messages: int = 0
    ambiguous_delivered: int = 0  # ambiguous messages the server did keep

    def line(self) -> str:
        return (f"schedules={self.schedules} runs={self.runs} crashes={self.crashes} "
                f"concurrent_rounds={self.concurrent_rounds} unlocked_runs={self.unlocked_runs} "
                f"server_faults={self.server_faults} messages={self.messages} "
                f"items={self.items} duplicates={self.duplicates} lost={self.lost} "
                f"ambiguous_items={self.ambiguous} ambiguous_messages={self.ambiguous_messages} "
                f"(of which the server kept {self.ambiguous_delivered})")


class CrashingMailer:
    """The runner dies just before or just after the server accepted the message."""

    def __init__(self, inner: Mailer, *, before: int | None, after: int | None) -> None:
        self.inner, self.before, self.after, self.sends = inner, before, after, 0

    def send(self, message: EmailMessage, *, envelope: Any, tags: Any) -> SendResult:
        self.sends += 1
        if self.sends == self.before:
            raise SimulatedCrash("crash before handing the message over")
        result = self.inner.send(message, envelope=envelope, tags=tags)
        if self.sends == self.after:
            raise SimulatedCrash("crash after the server answered")
        return result


class CrashingStore:
    """The runner dies at its Nth ledger completion (between the send and the records)."""

    def __init__(self, inner: SQLiteStore, crash_at: int | None) -> None:
        self._inner, self._crash_at, self._completes = inner, crash_at, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def complete(self, key: str, **kwargs: Any) -> bool:
        self._completes += 1
        if self._completes == self._crash_at:
            raise SimulatedCrash("crash between ledger writes")
        return self._inner.complete(key, **kwargs)


def _company(rng: random.Random) -> list[Invoice]:
    out: list[Invoice] = []
    n = 0
    for c in range(rng.randint(1, 4)):
        for _ in range(rng.randint(1, 4)):
            n += 1
            out.append(invoice(n, rng.randint(-2, 50), customer=f"c{c}", name=f"Customer {c}",
                               email=f"c{c}@example.com", balance=f"{rng.randint(1, 900)}.00"))
    return out


def _stage(due: date, day: date) -> str | None:
    overdue = (day - due).days
    found = None
    for days, name in STAGES:
        if overdue >= days:
            found = name
    return found


def run_schedule(seed: int, policy: Policy, sink: SmtpSink, workdir: Path,
                 tally: MailTally) -> None:
    rng = random.Random(seed)
    invoices = _company(rng)
    due = {i.number: i.due_date for i in invoices}
    state = FakePlatform(invoices={i.id: i for i in invoices})
    db = workdir / f"mail-{seed}.db"
    first = SQLiteStore(db, cipher=CIPHER)
    first.save_connection(CONNECTION)
    first.close()
    start = len(sink.snapshot())
    base = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    clock = Clock(base)

    def runner(crash_mail: tuple[int | None, int | None], crash_store: int | None,
               use_lock: bool, clean: bool = False) -> None:
        store = SQLiteStore(db, cipher=CIPHER)
        mailer = SmtpMailer(sink.settings(timeout=5))
        setup = MailSetup(sender=SENDER, mailer=mailer if clean else CrashingMailer(
            mailer, before=crash_mail[0], after=crash_mail[1]))
        try:
            run_tenant(store if clean else CrashingStore(store, crash_store),  # type: ignore[arg-type]
                       CONNECTION.id, now=clock(), clock=clock, policy=policy, mail=setup,
                       connector=FakeConnector(state, CONNECTION,
                                               FaultPlan(rng=random.Random(rng.random()))),
                       use_lock=use_lock, lease_seconds=60)
        except SimulatedCrash:
            tally.crashes += 1
        finally:
            store.close()

    days = rng.randint(1, 3)
    for d in range(days):
        clock.set(base + timedelta(days=d))
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.4:
                sink.fail_next(rng.choice(["refuse_data", "refuse_rcpt", "drop_after_store",
                                           "drop_before_store", "reject_data"]))
                tally.server_faults += 1
            count = rng.choice([1, 1, 2, 3])
            tally.concurrent_rounds += count > 1
            threads = []
            for _r in range(count):
                use_lock = rng.random() < 0.5
                tally.unlocked_runs += not use_lock
                crash_mail = (rng.choice([None, None, 1, 2]), rng.choice([None, None, 1, 2]))
                crash_store = rng.choice([None, None, None, rng.randint(1, 12)])
                threads.append(threading.Thread(target=runner,
                                                args=(crash_mail, crash_store, use_lock)))
                tally.runs += 1
            run_round(threads)
            clock.advance(rng.choice([5, 61, 600]))
        sink._faults.clear()  # a fault nobody consumed must not leak into the clean run
        clock.advance(61)
        runner((None, None), None, True, clean=True)
        tally.runs += 1
    _check(seed, db, sink.snapshot()[start:], due, base.date(), tally)


def _check(seed: int, db: Path, got: list[Any], due: dict[str, date], first_day: date,
           tally: MailTally) -> None:
    store = SQLiteStore(db, cipher=CIPHER)
    rows = [e for es in store.history(CONNECTION.id).values() for e in es]
    store.close()
    per_day: Counter[tuple[str, str]] = Counter()
    per_item: Counter[tuple[str, str]] = Counter()
    delivered_keys: set[str] = set()
    for m in got:
        msg = m.message
        day = msg["Date"].datetime.date().isoformat()
        per_day[(m.recipients[0], day)] += 1
        delivered_keys.add(msg["Message-ID"].strip("<>").split(".")[0])
        text = msg.get_body(("plain",)).get_content()
        for number, _due in _NUMBER.findall(text):
            per_item[(number, str(_stage(due[number], date.fromisoformat(day))))] += 1
    dup = sum(n - 1 for n in per_day.values() if n > 1)
    dup += sum(n - 1 for n in per_item.values() if n > 1)
    items = [e for e in rows if e.kind == "customer_email"]
    lost = 0
    ambiguous = 0
    for e in items:
        if e.state == EntryState.DONE:
            if e.ref not in delivered_keys:
                lost += 1  # recorded as sent, never reached the server
        elif e.state == EntryState.FAILED and (e.reason or "").startswith(AMBIGUOUS):
            ambiguous += 1
        elif e.state not in (EntryState.FAILED, EntryState.SKIPPED):
            lost += 1  # still claimed or waiting after the clean run
    delivered_items = sum(per_item.values())
    unknown = [e for e in rows if e.kind == "message" and e.state == EntryState.FAILED
               and (e.reason or "").startswith(AMBIGUOUS)]
    tally.ambiguous_messages += len(unknown)
    tally.ambiguous_delivered += sum(1 for e in unknown if e.key in delivered_keys)
    tally.schedules += 1
    tally.messages += len(got)
    tally.items += len(items)
    tally.duplicates += dup
    tally.lost += lost
    tally.ambiguous += ambiguous
    if dup or lost:
        tally.failures.append(f"seed {seed}: duplicates={dup} lost={lost} "
                              f"delivered_items={delivered_items} days from {first_day}")
