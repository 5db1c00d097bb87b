"""A platform e-mail carries no key of ours: after a crash it is reconciled from the invoice's
own record (an e-mail sent since the earliest moment the crashed attempt could have sent it).
That window must leave out the invoice's *other* e-mails the ledger already has as done: with
the journey (one step at a time) an earlier stage is often sent after a later stage's due
day, and taking it for the later stage would mark that stage done without ever sending it
(the fault suite's `lost=1` on Xero, seed 0, under load)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ar_sync.domain.models import ActionKind, EntryState, Invoice, SendReminder, action_key
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.execute import execute_action

from .fakes import FakeConnector, FakePlatform, FaultPlan, SimulatedCrash
from .harness import CIPHER
from .test_sync_faults_fake import CONNECTION
from .test_sync_run import _invoice

LEASE = 60.0


class RecordedEmails(FakeConnector):
    """The fake platform with an e-mail record per invoice (QuickBooks DeliveryInfo, Xero's
    "Emailed" history entry): when each e-mail went, and no key."""

    def __init__(self, state: FakePlatform, clock: list[datetime]) -> None:
        super().__init__(state, CONNECTION, FaultPlan(rng=random.Random(0), platform_keys="off"))
        self.clock = clock
        self.sent: list[tuple[str, datetime]] = []
        self.crash_after_send = False

    def send_reminder(self, invoice: Invoice, *, key: str, to: str | None = None) -> str:
        ref = super().send_reminder(invoice, key=key, to=to)
        self.sent.append((invoice.id, self.clock[0]))
        if self.crash_after_send:
            raise SimulatedCrash("after the e-mail, before the ledger")
        return ref

    def find_effect(self, invoice: Invoice, kind: ActionKind, key: str, *,
                    since: datetime | None = None) -> str | None:
        if kind != ActionKind.REMINDER_EMAIL:
            return super().find_effect(invoice, kind, key, since=since)
        found = [at for inv, at in self.sent if inv == invoice.id and (since is None
                                                                         or at >= since)]
        return f"email:{invoice.id}@{max(found).isoformat()}" if found else None


def _stage(invoice: Invoice, rule: str, due_on: date) -> SendReminder:
    key = action_key(CONNECTION.id, "fake", invoice.id, ActionKind.REMINDER_EMAIL, rule, "once")
    return SendReminder(key=key, tenant=CONNECTION.id, platform="fake", invoice_id=invoice.id,
                        invoice_number=invoice.number, rule=rule, occurrence="once",
                        due_on=due_on, reason="test")


def _company(tmp_path: Path) -> tuple[Invoice, FakePlatform, list[datetime], RecordedEmails,
                                      SQLiteStore]:
    """One invoice 30 days overdue on the recording platform, on 20 Nov, and its ledger."""
    invoice = _invoice(1, days_overdue=30)
    state = FakePlatform(invoices={invoice.id: invoice})
    clock = [datetime(2026, 11, 20, 9, 0, tzinfo=UTC)]
    store = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    store.save_connection(CONNECTION)
    return invoice, state, clock, RecordedEmails(state, clock), store


def _emails_by_key(state: FakePlatform) -> dict[str, int]:
    return {k: n for k, n in state.effects().items() if n}


def test_an_earlier_stage_sent_late_is_not_taken_for_a_later_one(tmp_path: Path) -> None:
    invoice, state, clock, connector, store = _company(tmp_path)
    first, second = (_stage(invoice, "overdue-1", date(2026, 11, 1)),
                     _stage(invoice, "overdue-2", date(2026, 11, 7)))
    # overdue-1 goes on 20 Nov (late, one step at a time): after overdue-2's due day
    done = execute_action(store, connector, first, invoice, owner="a", clock=lambda: clock[0],
                          lease_seconds=LEASE)
    assert done.outcome == "done"
    # three days later overdue-2's runner dies before its send: nothing of it on the record
    clock[0] += timedelta(days=3)
    store.claim(second, owner="b", now=clock[0], lease_seconds=LEASE)
    clock[0] += timedelta(seconds=LEASE + 1)
    taken_over = execute_action(store, connector, second, invoice, owner="c",
                                clock=lambda: clock[0], lease_seconds=LEASE)
    assert taken_over.outcome == "done", taken_over  # sent, not "reconciled" from overdue-1's
    assert _emails_by_key(state) == {first.key: 1, second.key: 1}
    entry = store.get(second.key)
    assert entry is not None and entry.state == EntryState.DONE


def test_a_send_the_ledger_never_heard_of_is_still_found(tmp_path: Path) -> None:
    """The other side of the window: overdue-2 sent, then the runner died before the ledger
    heard of it; the platform forgets keys (`off`): the record finds it, nothing goes twice."""
    invoice, state, clock, connector, store = _company(tmp_path)
    first, second = (_stage(invoice, "overdue-1", date(2026, 11, 1)),
                     _stage(invoice, "overdue-2", date(2026, 11, 7)))
    execute_action(store, connector, first, invoice, owner="a", clock=lambda: clock[0],
                   lease_seconds=LEASE)
    clock[0] += timedelta(days=3)
    connector.crash_after_send = True
    try:
        execute_action(store, connector, second, invoice, owner="b", clock=lambda: clock[0],
                       lease_seconds=LEASE)
    except SimulatedCrash:
        pass
    connector.crash_after_send = False
    clock[0] += timedelta(seconds=LEASE + 1)
    taken_over = execute_action(store, connector, second, invoice, owner="c",
                                clock=lambda: clock[0], lease_seconds=LEASE)
    assert taken_over.outcome == "reconciled", taken_over
    assert _emails_by_key(state) == {first.key: 1, second.key: 1}
