"""Every path of the exactly-once protocol, end to end through run_tenant, on the in-memory
platform with notes and fees NOT replayed by key (`email-only`): what the platform holds is
the verdict, so a write done twice shows up twice."""

from __future__ import annotations

import random
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from journey_support import old_journey

from ar_sync.domain.errors import (
    BudgetExhaustedError,
    NotApplicableError,
    PlatformValidationError,
    ReauthorizationRequiredError,
)
from ar_sync.domain.models import (
    ActionKind,
    AddNote,
    ApplyLateFee,
    EntryState,
    FeeMode,
    Invoice,
    InvoiceStatus,
    Money,
    SendReminder,
    action_key,
)
from ar_sync.planner.plan import plan
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.execute import earliest_write
from ar_sync.sync.run import execute_action, run_tenant

from .fakes import FakeConnector, FakePlatform, FaultPlan, SimulatedCrash
from .harness import CIPHER, CrashingConnector, Stall
from .test_sync_faults_fake import CONNECTION
from .test_sync_run import _invoice

NOW = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)
LEASE = 60.0
POLICY = old_journey("platform-email")


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    s.save_connection(CONNECTION)
    return s


def _platform(*invoices: Invoice) -> FakePlatform:
    return FakePlatform(invoices={i.id: i for i in invoices})


def _fake(state: FakePlatform, **faults: float) -> FakeConnector:
    return FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0),
                                                      platform_keys="email-only", **faults))


def _run(store: SQLiteStore, connector: object, at: datetime, **kw: object):  # type: ignore[no-untyped-def]
    return run_tenant(store, CONNECTION.id, clock=lambda: at, policy=POLICY,
                      connector=connector, lease_seconds=LEASE, **kw)  # type: ignore[arg-type]


def _crash(store: SQLiteStore, state: FakePlatform, at: datetime, **where: int) -> None:
    with pytest.raises(SimulatedCrash):
        _run(store, CrashingConnector(_fake(state), before=where.get("before"),
                                      after=where.get("after")), at)


def _outcomes(report: object, key: str) -> list[str]:
    return [a.outcome for a in report.actions if a.key == key]  # type: ignore[attr-defined]


def test_leftover_of_a_crashed_run_is_finished_after_the_plan_moved_on(
        store: SQLiteStore) -> None:
    state = _platform(_invoice(1, 3))
    _crash(store, state, NOW, before=1)  # claims its first write, dies before the call
    leftover = store.unfinished(CONNECTION.id)
    assert len(leftover) == 1 and state.effects() == {}
    key = leftover[0].key
    later = NOW + timedelta(days=14)  # overdue-2 and -3 are due now: the plan moved on
    today = POLICY.today(later)
    planned = {a.key for a in plan(list(state.invoices.values()),
                                   store.history(CONNECTION.id), POLICY, today)}
    assert key not in planned
    report = _run(store, _fake(state), later)
    assert _outcomes(report, key) == ["done"]
    assert state.effects()[key] == 1
    assert all(n == 1 for n in state.effects().values())
    assert store.unfinished(CONNECTION.id) == []
    assert store.get(key).state == EntryState.DONE  # type: ignore[union-attr]


def test_takeover_finds_the_write_a_crashed_run_made(store: SQLiteStore) -> None:
    state = _platform(_invoice(1, 3))
    _crash(store, state, NOW, after=1)  # the note is on the platform, the ledger says claimed
    (entry,) = store.unfinished(CONNECTION.id)
    assert entry.kind == ActionKind.NOTE and state.effects() == {entry.key: 1}
    early = _run(store, _fake(state), NOW + timedelta(seconds=LEASE - 1))
    assert _outcomes(early, entry.key) == ["busy"]  # a live lease is left alone
    report = _run(store, _fake(state), NOW + timedelta(seconds=LEASE + 1))
    assert _outcomes(report, entry.key) == ["reconciled"]
    assert state.effects()[entry.key] == 1  # found by its marker, not written again
    assert all(n == 1 for n in state.effects().values())
    assert store.get(entry.key).ref == "note-0"  # type: ignore[union-attr]


def test_takeover_writes_when_the_crashed_run_never_called(store: SQLiteStore) -> None:
    state = _platform(_invoice(1, 3))
    _crash(store, state, NOW, before=1)
    (entry,) = store.unfinished(CONNECTION.id)
    report = _run(store, _fake(state), NOW + timedelta(seconds=LEASE + 1))
    assert _outcomes(report, entry.key) == ["done"]
    assert state.effects()[entry.key] == 1
    assert store.get(entry.key).attempts == 2  # type: ignore[union-attr]


def test_validation_error_during_a_write_fails_that_action_for_good(
        store: SQLiteStore) -> None:
    other = _invoice(2, 3).model_copy(update={  # another customer: both written today
        "customer_id": "c2", "customer_email": "two@example.com"})
    state = _platform(_invoice(1, 3), other)
    connector = _fake(state)
    real = connector.add_note

    def refuse_inv1(invoice, text, *, key):  # type: ignore[no-untyped-def]
        if invoice.id == "inv-1":
            raise PlatformValidationError("Business Validation Error: invoice is locked")
        return real(invoice, text, key=key)

    connector.add_note = refuse_inv1  # type: ignore[method-assign]
    first = _run(store, connector, NOW)
    failed = [a for a in first.actions if a.outcome == "failed"]
    assert [(a.invoice_id, a.kind) for a in failed] == [("inv-1", ActionKind.NOTE)]
    assert "locked" in failed[0].detail
    assert store.get(failed[0].key).state == EntryState.FAILED  # type: ignore[union-attr]
    assert failed[0].key not in state.effects()
    assert any(a.invoice_id == "inv-2" and a.outcome == "done" for a in first.actions)
    again = _run(store, _fake(state), NOW + timedelta(hours=1))
    assert failed[0].key not in {a.key for a in again.actions}  # not retried for ever
    assert failed[0].key not in state.effects()


def test_lost_authorisation_during_a_write_stops_and_the_next_run_finishes(
        store: SQLiteStore) -> None:
    state = _platform(_invoice(1, 3), _invoice(2, 3))
    connector = _fake(state)
    real = connector.send_reminder
    calls = [0]

    def revoked(invoice, *, key, to=None):  # type: ignore[no-untyped-def]
        calls[0] += 1
        raise ReauthorizationRequiredError("invalid_grant: refresh token revoked")

    connector.send_reminder = revoked  # type: ignore[method-assign]
    first = _run(store, connector, NOW)
    assert first.stopped_early == "authorisation lost" and calls == [1]
    assert any("reconnect" in e for e in first.errors)
    (entry,) = store.unfinished(CONNECTION.id)
    assert entry.state == EntryState.RETRY and entry.kind == ActionKind.REMINDER_EMAIL
    assert entry.key not in state.effects()
    del real
    again = _run(store, _fake(state), NOW + timedelta(minutes=5))  # reconnected
    assert again.stopped_early is None
    assert state.effects()[entry.key] == 1
    expected = {a.key for a in again.actions if a.outcome in ("done", "reconciled")}
    expected |= {a.key for a in first.actions if a.outcome == "done"}
    assert set(state.effects()) == expected
    assert all(n == 1 for n in state.effects().values())
    assert store.unfinished(CONNECTION.id) == []


def test_a_runner_whose_lease_ran_out_cannot_finish_the_row_it_lost(
        store: SQLiteStore, tmp_path: Path) -> None:
    """A pauses before its first write and its lease runs out; B takes the claim over, writes
    and crashes before recording it; A's write is then refused. A's `fail` must leave B's
    claim alone (owner check), so the next run reconciles it to `done`."""
    state = _platform(_invoice(1, 3))
    clock = [NOW]
    stall = Stall(at=1, after_write=False, expire=True, outcome="refused", kind="note")
    slow = CrashingConnector(_fake(state), before=None, after=None, stall=stall)
    other = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)  # A's own connection to the file
    reports = []
    a = threading.Thread(target=lambda: reports.append(run_tenant(
        other, CONNECTION.id, clock=lambda: clock[0], policy=POLICY, connector=slow,
        lease_seconds=LEASE, use_lock=False)))
    a.start()
    assert stall.reached.wait(10)
    (held,) = store.unfinished(CONNECTION.id)
    clock[0] = NOW + timedelta(seconds=LEASE + 1)
    with pytest.raises(SimulatedCrash):
        _run(store, CrashingConnector(_fake(state), before=None, after=1), clock[0],
             use_lock=False)
    assert state.effects() == {held.key: 1}
    stall.resume.set()
    a.join(10)
    assert _outcomes(reports[0], held.key) == ["failed"]  # A's own attempt was refused
    assert store.get(held.key).state == EntryState.CLAIMED  # type: ignore[union-attr]
    clock[0] += timedelta(seconds=LEASE + 1)
    final = _run(store, _fake(state), clock[0])
    assert _outcomes(final, held.key) == ["reconciled"]
    assert store.get(held.key).state == EntryState.DONE  # type: ignore[union-attr]
    assert state.effects()[held.key] == 1
    other.close()


def test_ledger_reads_of_an_unknown_key(store: SQLiteStore) -> None:
    assert store.get("ar-unknown") is None
    assert store.action_payload("ar-unknown") is None
    assert store.unfinished(CONNECTION.id) == []


def test_a_runner_that_planned_an_action_another_finished_records_it_as_skipped(
        store: SQLiteStore) -> None:
    """Two runners planned the same note from the same ledger; the first wrote it. The
    second's claim finds the row finished: nothing is written, its report says why."""
    state = _platform(_invoice(1, 3))
    actions = plan(list(state.invoices.values()), store.history(CONNECTION.id), POLICY,
                   POLICY.today(NOW))
    note = next(a for a in actions if a.kind == ActionKind.NOTE)
    _run(store, _fake(state), NOW)
    assert state.effects()[note.key] == 1
    late = execute_action(store, _fake(state), note, state.invoices[note.invoice_id],
                          owner="late-runner", clock=lambda: NOW, lease_seconds=LEASE)
    assert (late.key, late.outcome, late.detail) == (note.key, "skipped", "already recorded")
    assert state.effects()[note.key] == 1
    assert store.get(note.key).owner != "late-runner"  # type: ignore[union-attr]


def _email(rule: str, invoice: str = "inv-1", kind: ActionKind = ActionKind.REMINDER_EMAIL,
           ) -> SendReminder | AddNote:
    base = {"key": action_key(CONNECTION.id, "fake", invoice, kind, rule, "once"),
            "tenant": CONNECTION.id, "platform": "fake", "invoice_id": invoice,
            "invoice_number": "INV-1", "rule": rule, "occurrence": "once",
            "due_on": date(2026, 11, 16), "reason": "due"}
    return SendReminder(**base) if kind == ActionKind.REMINDER_EMAIL else AddNote(
        **base, text="note")


def test_a_platform_e_mail_is_looked_for_after_the_invoices_other_e_mails(
        store: SQLiteStore) -> None:
    """The reconciliation window of a platform e-mail (no key): from the first moment of its
    due day anywhere (UTC+14), or after the invoice's last other e-mail done, if later."""
    day_starts = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)  # 16 Nov 00:00 at UTC+14
    this = _email("overdue-2")
    assert earliest_write(this) == earliest_write(this, None) == day_starts
    done_at = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
    for action, at, finish in [
        (_email("overdue-1"), done_at, "complete"),  # done: its e-mail is not this one's
        (_email("heads-up"), done_at - timedelta(hours=1), "complete"),
        (_email("final"), done_at + timedelta(hours=2), "fail"),  # not sent: no e-mail
        (_email("note", kind=ActionKind.NOTE), done_at + timedelta(hours=3), "complete"),
        (_email("overdue-1", invoice="inv-2"), done_at + timedelta(hours=4), "complete"),
        (this, done_at + timedelta(hours=5), "complete"),  # its own earlier attempt
    ]:
        assert store.claim(action, owner="a", now=at, lease_seconds=60).ours
        if finish == "complete":
            assert store.complete(action.key, owner="a", ref="r", now=at)
        else:
            assert store.fail(action.key, owner="a", reason="x", now=at, permanent=True)
    assert earliest_write(this, store) == done_at + timedelta(minutes=5)  # clock skew
    note = _email("note", kind=ActionKind.NOTE)
    assert earliest_write(note, store) == day_starts  # a key of ours proves a note


def _fee(n: int, mode: FeeMode) -> ApplyLateFee:
    return ApplyLateFee(key=action_key(CONNECTION.id, "fake", f"inv-{n}", "late_fee", "fee",
                                       "2026-11"),
                        tenant=CONNECTION.id, platform="fake", invoice_id=f"inv-{n}",
                        invoice_number=f"INV-{n}", rule="fee", occurrence="2026-11",
                        due_on=date(2026, 11, 16), reason="30 days overdue",
                        amount=Money.of("10.00", "USD"), label="Late fee", mode=mode)


def test_a_fee_line_holds_its_invoices_lock_on_the_single_path(store: SQLiteStore) -> None:
    """Adding a line rewrites the invoice's lines: one writer per invoice at a time; a fee on
    its own invoice needs no lock. The claim records the rules version that planned it."""
    line, separate, blocked = _fee(1, FeeMode.LINE), _fee(2, FeeMode.INVOICE), _fee(3, FeeMode.LINE)
    state = _platform(_invoice(1, 40), _invoice(2, 40), _invoice(3, 40))
    others: list[bool] = []

    class Watching(FakeConnector):
        def _write(self, key: str, apply: Any, **kwargs: Any) -> str:
            invoice = "inv-1" if key == line.key else "inv-2"
            others.append(store.acquire_lock(f"invoice:{CONNECTION.id}:{invoice}",
                                             owner="other", now=NOW, ttl_seconds=60))
            return super()._write(key, apply, **kwargs)

    connector = Watching(state, CONNECTION, FaultPlan(rng=random.Random(0)))
    assert store.acquire_lock(f"invoice:{CONNECTION.id}:inv-3", owner="other", now=NOW,
                              ttl_seconds=60)
    out = [execute_action(store, connector, fee, state.invoices[fee.invoice_id], owner="me",
                          clock=lambda: NOW, rules_version=3) for fee in (line, separate, blocked)]
    assert [(o.outcome, o.detail) for o in out][2] == (
        "busy", "another runner is changing this invoice's lines")
    assert [o.outcome for o in out][:2] == ["done", "done"]
    assert others == [False, True]  # held during the line's write; none for a fee invoice
    assert store.acquire_lock(f"invoice:{CONNECTION.id}:inv-1", owner="next", now=NOW,
                              ttl_seconds=60)  # released after
    assert store.get(line.key).rules_version == 3  # type: ignore[union-attr]
    assert store.get(blocked.key) is None  # not even claimed


def test_a_write_without_the_runs_copy_of_its_invoice_reads_it_fresh(store: SQLiteStore) -> None:
    """A leftover whose invoice the run did not plan is read again, not taken for deleted;
    an action another runner holds is left to it."""
    state = _platform(_invoice(1, 40))
    connector = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0)))
    note = AddNote(key=action_key(CONNECTION.id, "fake", "inv-1", "note", "n", "once"),
                   tenant=CONNECTION.id, platform="fake", invoice_id="inv-1",
                   invoice_number="INV-1", rule="n", occurrence="once",
                   due_on=date(2026, 11, 16), reason="due", text="Overdue.")
    held = note.model_copy(update={"key": note.key.replace("ar", "ar0", 1)})
    assert store.claim(held, owner="other", now=NOW, lease_seconds=60).ours
    out = execute_action(store, connector, held, None, owner="me", clock=lambda: NOW)
    assert (out.outcome, out.detail) == ("busy", "another runner holds it")
    out = execute_action(store, connector, note, None, owner="me", clock=lambda: NOW)
    assert out.outcome == "done" and len(state.notes) == 1


def test_a_takeover_asks_the_platform_for_this_write_since_it_could_have_happened(
        store: SQLiteStore) -> None:
    """Reconciliation asks about this kind of write, from the earliest moment a stopped
    attempt could have made it (after the invoice's last other e-mail done), and records
    what the platform found."""
    asked: list[tuple[ActionKind, str, datetime | None]] = []

    class Asking(FakeConnector):
        def find_effect(self, invoice: Invoice, kind: ActionKind, key: str, *,
                        since: datetime | None = None) -> str | None:
            asked.append((kind, key, since))
            return "email-7"

    state = _platform(_invoice(1, 40))
    earlier, this = _email("overdue-1"), _email("overdue-2")
    sent_at = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    assert store.claim(earlier, owner="a", now=sent_at, lease_seconds=60).ours
    assert store.complete(earlier.key, owner="a", ref="email-1", now=sent_at)
    assert store.claim(this, owner="dead", now=NOW, lease_seconds=60).ours  # then it stopped
    out = execute_action(store, Asking(state, CONNECTION, FaultPlan(rng=random.Random(0))),
                         this, state.invoices["inv-1"], owner="me",
                         clock=lambda: NOW + timedelta(minutes=10))
    assert (out.outcome, out.detail, out.ref) == ("reconciled", "found on the platform",
                                                  "email-7")
    assert asked == [(ActionKind.REMINDER_EMAIL, this.key, sent_at + timedelta(minutes=5))]
    assert store.get(this.key).ref == "email-7" and state.emails == []  # type: ignore[union-attr]


def test_a_write_for_an_invoice_gone_or_paid_since_planning_is_recorded_skipped(
        store: SQLiteStore) -> None:
    paid = _invoice(2, 40).model_copy(update={"balance": 0, "status": InvoiceStatus.PAID})
    state = _platform(paid)  # inv-1 is no longer on the platform
    connector = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0)))
    for n, reason in ((1, "invoice deleted on the platform (or no longer readable)"),
                      (2, "invoice no longer open")):
        note = AddNote(key=action_key(CONNECTION.id, "fake", f"inv-{n}", "note", "n", "once"),
                       tenant=CONNECTION.id, platform="fake", invoice_id=f"inv-{n}",
                       invoice_number=f"INV-{n}", rule="n", occurrence="once",
                       due_on=date(2026, 11, 16), reason="due", text="Overdue.")
        assert execute_action(store, connector, note, None, owner="me",
                              clock=lambda: NOW).outcome == "skipped"
        entry = store.get(note.key)
        assert entry is not None and (entry.state, entry.reason) == (EntryState.SKIPPED, reason)
    assert state.notes == []


@pytest.mark.parametrize(("error", "state", "outcome", "reason"), [
    (NotApplicableError("the invoice is voided"), EntryState.SKIPPED, "skipped",
     "the invoice is voided"),
    (BudgetExhaustedError("100 calls"), EntryState.RETRY, None, "budget used up"),
])
def test_a_write_the_platform_says_does_not_apply_or_the_budget_stops(
        store: SQLiteStore, error: Exception, state: EntryState, outcome: str | None,
        reason: str) -> None:
    class Refusing(FakeConnector):
        def add_note(self, invoice: Invoice, text: str, *, key: str) -> str:
            raise error

    platform = _platform(_invoice(1, 40))
    note = _email("n", kind=ActionKind.NOTE)
    connector = Refusing(platform, CONNECTION, FaultPlan(rng=random.Random(0)))
    if outcome is None:
        with pytest.raises(BudgetExhaustedError):
            execute_action(store, connector, note, platform.invoices["inv-1"], owner="me",
                           clock=lambda: NOW)
    else:
        out = execute_action(store, connector, note, platform.invoices["inv-1"], owner="me",
                             clock=lambda: NOW)
        assert (out.outcome, out.detail) == (outcome, reason)
    entry = store.get(note.key)
    assert entry is not None and (entry.state, entry.reason) == (state, reason)
