"""Batched writes in the sync core: the schedule (pure, property-tested) and the batch path
through the real ledger (SQLite) with an in-memory BatchWriter: per-item results, a lost
answer, a crash before / after the call, Ctrl-C and the budget inside a chunk."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from journey_support import old_journey

from ar_sync.domain.errors import (
    BudgetExhaustedError,
    ConnectorError,
    NotApplicableError,
    PlatformTimeoutError,
    PlatformValidationError,
    ReauthorizationRequiredError,
    TransientError,
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
)
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.batch import BATCH_FAILED, execute_batch, line_lock, schedule
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import BatchItemResult, BatchWrite
from ar_sync.sync.run import run_tenant

from .fakes import FakeConnector, FakePlatform, FaultPlan, SimulatedCrash
from .fakes_batch import BatchFakeConnector
from .harness import CIPHER
from .test_sync_faults_fake import CONNECTION, TODAY

NOW = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)
POLICY = old_journey("platform-email")


def _note(n: int, invoice: str, batchable: bool) -> AddNote:
    return AddNote(key=f"k{n}", tenant="t", platform="fake", invoice_id=invoice,
                   invoice_number=invoice, rule="b" if batchable else "s", occurrence="once",
                   due_on=date(2026, 1, 1), reason="r", text="x")


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), max_size=40),
       st.integers(0, 4))
def test_schedule_keeps_every_action_once_and_each_invoices_order(
        spec: list[tuple[int, bool]], max_batch: int) -> None:
    queue = [_note(n, f"inv-{i}", b) for n, (i, b) in enumerate(spec)]
    steps = schedule(queue, lambda a: a.rule == "b", max_batch)
    flat = [a for s in steps for a in s.actions]
    assert sorted(a.key for a in flat) == sorted(a.key for a in queue)  # each exactly once
    for invoice in {a.invoice_id for a in queue}:  # per invoice: the queue's order
        assert ([a.key for a in flat if a.invoice_id == invoice]
                == [a.key for a in queue if a.invoice_id == invoice])
    for step in steps:
        if step.batch:
            assert 1 <= len(step.actions) <= max_batch
            assert all(a.rule == "b" for a in step.actions)
            assert len({a.invoice_id for a in step.actions}) == len(step.actions)
        else:
            assert len(step.actions) == 1
    position = {a.key: n for n, a in enumerate(queue)}
    for i, step in enumerate(steps):  # no chunk is held back behind a later single write
        if step.batch:
            last = max(position[a.key] for a in step.actions)
            invoices = {a.invoice_id for a in step.actions}
            assert not any(not s.batch and position[s.actions[0].key] > last
                           and s.actions[0].invoice_id not in invoices for s in steps[:i])
    if max_batch == 0:
        assert not any(s.batch for s in steps)
    else:  # nothing batchable runs alone
        assert all(s.batch for s in steps if s.actions[0].rule == "b")


def test_schedule_releases_waiting_actions_in_queue_order() -> None:
    spec = [(0, True), (1, True), (1, True), (0, False)]  # found by hypothesis
    queue = [_note(n, f"inv-{i}", b) for n, (i, b) in enumerate(spec)]
    steps = schedule(queue, lambda a: a.rule == "b", 3)
    assert [[a.key for a in s.actions] for s in steps] == [["k0", "k1"], ["k2"], ["k3"]]


def test_schedule_fills_chunks_across_invoices() -> None:
    queue = [_note(n, f"inv-{n}", True) for n in range(7)]
    assert [len(s.actions) for s in schedule(queue, lambda a: True, 3)] == [3, 3, 1]


def _invoice(n: int, days_overdue: int) -> Invoice:
    due = TODAY - timedelta(days=days_overdue)
    return Invoice(platform="fake", tenant=CONNECTION.id, id=f"inv-{n}", number=f"INV-{n}",
                   customer_id=f"c{n}", customer_name=f"Customer {n}",
                   customer_email=f"c{n}@example.com", issue_date=due - timedelta(days=30),
                   due_date=due, currency="USD", total=Decimal("1000.00"),
                   balance=Decimal("1000.00"), updated_at=datetime(2026, 10, 1, tzinfo=UTC))


def _state() -> FakePlatform:
    days = [45, 50, 70, 33, 40, 8, 90, 31]
    return FakePlatform(invoices={i.id: i for i in (_invoice(n, d) for n, d in enumerate(days))})


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    s.save_connection(CONNECTION)
    return s


def _batcher(state: FakePlatform, budget: CallBudget | None = None) -> BatchFakeConnector:
    return BatchFakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0)), budget)


def _rows(store: SQLiteStore) -> dict[str, EntryState]:
    return {e.key: e.state for rows in store.history(CONNECTION.id).values() for e in rows}


def _run(store: SQLiteStore, conn: FakeConnector, **kw: object) -> object:
    return run_tenant(store, CONNECTION.id, now=NOW, clock=lambda: NOW, policy=POLICY,
                      connector=conn, **kw)  # type: ignore[arg-type]


def test_batches_write_what_single_writes_write_in_each_invoices_order(
        store: SQLiteStore, tmp_path: Path) -> None:
    single_state = _state()
    single = SQLiteStore(tmp_path / "single.db", cipher=CIPHER)
    single.save_connection(CONNECTION)
    one_by_one = BatchFakeConnector(single_state, CONNECTION, FaultPlan(rng=random.Random(0)))
    one_by_one.kinds = ()  # nothing batchable: the single path
    _run(single, one_by_one)

    state = _state()
    conn = _batcher(state)
    report = _run(store, conn)
    assert report.errors == [] and report.stopped_early is None  # type: ignore[attr-defined]
    assert Counter(state.effects()) == Counter(single_state.effects())
    assert all(n == 1 for n in state.effects().values())
    assert conn.batches and all(len(b) <= conn.max_batch for b in conn.batches)
    assert sum(len(b) for b in conn.batches) == sum(
        1 for a in report.actions if a.kind in ("note", "late_fee"))  # type: ignore[attr-defined]
    for invoice in single_state.invoices:
        assert ([k for i, k in conn.order if i == invoice]
                == [k for i, k in one_by_one.order if i == invoice])
    # one fresh read per chunk, not one per fee
    assert len(conn.reads) == len(conn.batches)
    done = {a.key for a in report.actions if a.outcome == "done"}  # type: ignore[attr-defined]
    assert done == set(state.effects()) and all(
        _rows(store)[k] == EntryState.DONE for k in done)


def _fee_keys(store: SQLiteStore, conn: BatchFakeConnector) -> list[str]:
    """The fee keys the plan holds (a dry run first: nothing written)."""
    report = run_tenant(store, CONNECTION.id, now=NOW, clock=lambda: NOW, policy=POLICY,
                        connector=conn, dry_run=True)
    return [a.key for a in report.actions if a.kind == ActionKind.LATE_FEE]


def test_each_item_is_settled_by_its_own_result(store: SQLiteStore) -> None:
    state = _state()
    conn = _batcher(state)
    fees = _fee_keys(store, conn)
    assert len(fees) >= 4
    refused, moot, unsure = fees[0], fees[1], fees[2]
    conn.refuse = {refused: PlatformValidationError("refused"),
                   moot: NotApplicableError("nothing to charge"),
                   unsure: TransientError("element timed out")}  # applied, answer unclear
    report = _run(store, conn)
    by_key = {a.key: a.outcome for a in report.actions}  # type: ignore[attr-defined]
    assert (by_key[refused], by_key[moot], by_key[unsure]) == ("failed", "skipped", "retry")
    rows = _rows(store)
    assert (rows[refused], rows[moot], rows[unsure]) == (
        EntryState.FAILED, EntryState.SKIPPED, EntryState.RETRY)
    assert all(by_key[k] == "done" for k in fees[3:])
    # next run: the unsure one is reconciled from the platform, not written again
    again = _run(store, _batcher(state))
    assert {a.key: a.outcome for a in again.actions}[unsure] == "reconciled"  # type: ignore[attr-defined]
    assert state.effects()[unsure] == 1 and refused not in state.effects()
    assert all(n == 1 for n in state.effects().values())


@pytest.mark.parametrize("fault", ["lose_answer", "after", "before"])
def test_a_batch_call_lost_or_crashed_is_reconciled_never_repeated(
        store: SQLiteStore, fault: str) -> None:
    state = _state()
    conn = _batcher(state)
    if fault == "lose_answer":
        conn.lose_answer = True
        report = _run(store, conn)
        first = conn.batches[0]
        assert all(o.outcome == "retry" for o in report.actions  # type: ignore[attr-defined]
                   if o.key in {k for _, k in first})
    else:
        conn.crash = fault
        with pytest.raises(SimulatedCrash):
            _run(store, conn)
        first = conn.batches[0]
    later = NOW + timedelta(seconds=1000)  # past every lease
    final = run_tenant(store, CONNECTION.id, now=NOW, clock=lambda: later, policy=POLICY,
                       connector=_batcher(state))
    outcomes = {a.key: a.outcome for a in final.actions}
    for _, key in first:
        assert outcomes[key] == ("done" if fault == "before" else "reconciled")
    assert all(n == 1 for n in state.effects().values())
    assert all(s == EntryState.DONE for s in _rows(store).values()
               if s not in (EntryState.SKIPPED,))


def test_ctrl_c_inside_a_batch_releases_every_claim_of_the_chunk(store: SQLiteStore) -> None:
    state = _state()
    conn = _batcher(state)
    conn.interrupt = True
    report = _run(store, conn)
    assert report.stopped_early == "interrupted"  # type: ignore[attr-defined]
    chunk = [k for _, k in conn.batches[0]]
    rows = _rows(store)
    assert all(rows[k] == EntryState.RETRY for k in chunk)  # released, not left claimed
    assert all(store.get(k).reason == "interrupted" for k in chunk)  # type: ignore[union-attr]
    outcomes = {a.key: a.outcome for a in report.actions}  # type: ignore[attr-defined]
    assert [outcomes[k] for k in chunk] == ["deferred"] * len(chunk)  # first next run
    final = _run(store, _batcher(state))
    assert final.stopped_early is None  # type: ignore[attr-defined]
    assert all(n == 1 for n in state.effects().values())
    assert set(chunk) <= set(state.effects())


def test_budget_stops_before_a_chunk_and_releases_it(store: SQLiteStore) -> None:
    state = _state()
    budget = CallBudget(max_calls=4)
    conn = _batcher(state, budget)
    report = _run(store, conn, budget=budget)
    assert report.stopped_early == "budget used up"  # type: ignore[attr-defined]
    rows = _rows(store)
    assert not any(s == EntryState.CLAIMED for s in rows.values())
    deferred = [a for a in report.actions if a.outcome == "deferred"]  # type: ignore[attr-defined]
    assert deferred


def test_deleted_and_paid_invoices_in_a_chunk_are_skipped(store: SQLiteStore) -> None:
    state = _state()
    conn = _batcher(state)
    fees = _fee_keys(store, conn)
    report = run_tenant(store, CONNECTION.id, now=NOW, clock=lambda: NOW, policy=POLICY,
                        connector=conn, dry_run=True)
    invoice_of = {a.key: a.invoice_id for a in report.actions}  # type: ignore[attr-defined]
    first = {invoice_of[k]: k for k in reversed(fees)}  # each invoice's first fee
    (gone, gone_fee), (paid, paid_fee) = list(first.items())[:2]
    real_read = conn.get_invoices

    def reads(ids: list[str]) -> dict[str, Invoice | None]:
        got = real_read(ids)
        state.invoices.pop(gone, None)
        if paid in state.invoices:
            state.invoices[paid] = state.invoices[paid].model_copy(
                update={"status": InvoiceStatus.PAID, "balance": Decimal(0)})
        return {i: (None if i == gone else state.invoices.get(i)) for i in got}

    conn.get_invoices = reads  # type: ignore[method-assign]
    out = {a.key: (a.outcome, a.detail) for a in _run(store, conn).actions}  # type: ignore[attr-defined]
    assert out[gone_fee][0] == "skipped" and "deleted" in out[gone_fee][1]
    assert out[paid_fee] == ("skipped", "invoice paid or closed since planning")
    assert gone_fee not in state.effects() and paid_fee not in state.effects()


def test_a_connector_without_the_capability_takes_the_single_path(store: SQLiteStore) -> None:
    state = _state()
    conn = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0)))
    report = _run(store, conn)
    assert report.done > 0 and not hasattr(conn, "write_batch")  # type: ignore[attr-defined]
    assert all(n == 1 for n in state.effects().values())




def test_a_failed_read_of_a_chunk_releases_its_claims_for_the_next_run(
        store: SQLiteStore) -> None:
    """Nothing was written: each claim of the chunk goes back to `retry` with the reason."""
    state = _state()
    conn = _batcher(state)
    real_read = conn.get_invoices

    def reads(ids: list[str]) -> dict[str, Invoice | None]:
        if not conn.reads:
            conn.reads.append(list(ids))
            raise TransientError("503 on the chunk's read")
        return real_read(ids)

    conn.get_invoices = reads  # type: ignore[method-assign]
    report = _run(store, conn)
    chunk = [k for k, (outcome, _) in
             {a.key: (a.outcome, a.detail) for a in report.actions}.items()  # type: ignore[attr-defined]
             if outcome == "retry"]
    assert len(chunk) == len(conn.reads[0]) > 0  # the one chunk whose read failed
    for key in chunk:
        entry = store.get(key)
        assert entry is not None and entry.state == EntryState.RETRY
        assert entry.reason == "503 on the chunk's read"
    details = {a.detail for a in report.actions if a.key in chunk}  # type: ignore[attr-defined]
    assert details == {"503 on the chunk's read"}
    assert set(chunk).isdisjoint(state.effects())
    _run(store, _batcher(state))
    assert set(chunk) <= set(state.effects())
    assert all(n == 1 for n in state.effects().values())


class _Answers:
    """A batch writer answering each write with `answers[key]` (a missing key: no result),
    after `during` (another runner at work while the call is on the wire)."""

    max_batch = 3

    def __init__(self, answers: dict[str, BatchItemResult], during: Any = None) -> None:
        self.answers, self.during = answers, during

    def get_invoices(self, invoice_ids: Sequence[str]) -> dict[str, Invoice | None]:
        return {i: _invoice(int(i.removeprefix("inv-")), 40) for i in invoice_ids}

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchItemResult]:
        if self.during is not None:
            self.during()
        return [self.answers[w.action.key] for w in writes if w.action.key in self.answers]


def _chunk(store: SQLiteStore, connector: _Answers, notes: list[AddNote],
           ) -> dict[str, tuple[str, str, str | None]]:
    def no_reconcile(action: Any, claim: Any) -> Any:
        raise AssertionError("fresh claims are not reconciled")

    out = execute_batch(store, connector, notes, owner="me", clock=lambda: NOW,  # type: ignore[arg-type]
                        lease_seconds=60, rules_version=None, reconcile=no_reconcile)
    return {o.key: (o.outcome, o.detail, o.ref) for o in out}


def _row(store: SQLiteStore, key: str) -> tuple[EntryState, str | None, str | None]:
    entry = store.get(key)
    assert entry is not None
    return entry.state, entry.ref, entry.reason


def test_each_batch_answer_settles_its_row(store: SQLiteStore) -> None:
    done, unanswered, no_ref, both = (_note(n, f"inv-{n}", True) for n in range(4))
    connector = _Answers({
        done.key: BatchItemResult(done.key, ref="note-1"),
        no_ref.key: BatchItemResult(no_ref.key),
        # a ref with an error: the error wins (the answer is not trusted as proof)
        both.key: BatchItemResult(both.key, ref="note-4", error=TransientError("timed out")),
    })
    out = _chunk(store, connector, [done, unanswered, no_ref])
    assert out == {done.key: ("done", "r", "note-1"),
                   unanswered.key: ("retry", "no result for this write", None),
                   no_ref.key: ("retry", "no reference returned", None)}
    assert _row(store, done.key) == (EntryState.DONE, "note-1", None)
    assert _row(store, unanswered.key) == (EntryState.RETRY, None, "no result for this write")
    assert _row(store, no_ref.key) == (EntryState.RETRY, None, "no reference returned")
    assert _chunk(store, connector, [both]) == {both.key: ("retry", "timed out", None)}
    assert _row(store, both.key) == (EntryState.RETRY, None, "timed out")


def test_a_refused_batch_item_is_skipped_or_failed_with_the_platforms_words(
        store: SQLiteStore) -> None:
    moot, invalid = _note(1, "inv-1", True), _note(2, "inv-2", True)
    connector = _Answers({
        moot.key: BatchItemResult(moot.key, error=NotApplicableError("invoice is paid")),
        invalid.key: BatchItemResult(invalid.key, error=PlatformValidationError("6000 bad")),
    })
    assert _chunk(store, connector, [moot, invalid]) == {
        moot.key: ("skipped", "invoice is paid", None),
        invalid.key: ("failed", "6000 bad", None)}
    assert _row(store, moot.key) == (EntryState.SKIPPED, None, "invoice is paid")
    assert _row(store, invalid.key) == (EntryState.FAILED, None, "6000 bad")


def test_a_lease_lost_during_the_batch_call_leaves_the_row_to_the_other_runner(
        store: SQLiteStore) -> None:
    note = _note(1, "inv-1", True)

    def takeover() -> None:
        later = NOW + timedelta(minutes=5)
        assert store.claim(note, owner="other", now=later, lease_seconds=60).ours

    connector = _Answers({note.key: BatchItemResult(note.key, ref="note-1")}, takeover)
    assert _chunk(store, connector, [note]) == {
        note.key: ("busy", "lease lost; the other runner reconciles", "note-1")}
    assert _row(store, note.key)[0] == EntryState.CLAIMED  # the other runner's, to reconcile


def _fee(n: int, mode: FeeMode = FeeMode.LINE) -> ApplyLateFee:
    return ApplyLateFee(key=f"fee{n}", tenant="t", platform="fake", invoice_id=f"inv-{n}",
                        invoice_number=f"INV-{n}", rule="fee", occurrence="2026-11",
                        due_on=date(2026, 11, 1), reason="r", amount=Money.of("10.00", "USD"),
                        label="Late fee", mode=mode)


def test_rows_finished_or_held_elsewhere_are_not_written(store: SQLiteStore) -> None:
    finished, held, fresh = (_note(n, f"inv-{n}", True) for n in range(3))
    assert store.claim(finished, owner="x", now=NOW, lease_seconds=60).ours
    assert store.complete(finished.key, owner="x", ref="note-0", now=NOW)
    assert store.claim(held, owner="other", now=NOW, lease_seconds=60).ours
    written: list[str] = []
    connector = _Answers({fresh.key: BatchItemResult(fresh.key, ref="note-2")},
                         lambda: written.append("call"))
    assert _chunk(store, connector, [finished, held, fresh]) == {
        finished.key: ("skipped", "already recorded", None),
        held.key: ("busy", "another runner holds it", None),
        fresh.key: ("done", "r", "note-2")}
    assert written == ["call"]
    assert _row(store, held.key)[0] == EntryState.CLAIMED


def test_a_fee_line_holds_its_invoices_lock_through_the_call(store: SQLiteStore) -> None:
    """Adding a line rewrites the invoice's lines: one writer per invoice at a time."""
    line, separate, blocked = _fee(1), _fee(2, FeeMode.INVOICE), _fee(3)
    assert line_lock(separate) is None
    assert store.acquire_lock(line_lock(blocked) or "", owner="other", now=NOW, ttl_seconds=60)
    seen: list[bool] = []

    def during() -> None:  # another runner tries to change the same invoices' lines
        for fee in (line, separate):
            lock = line_lock(fee) or f"invoice:t:{fee.invoice_id}"
            seen.append(store.acquire_lock(lock, owner="other", now=NOW, ttl_seconds=60))

    connector = _Answers({f.key: BatchItemResult(f.key, ref=f"line-{f.key}")
                          for f in (line, separate)}, during)
    out = _chunk(store, connector, [line, separate, blocked])
    assert out[blocked.key] == ("busy", "another runner is changing this invoice's lines", None)
    assert out[line.key][0] == out[separate.key][0] == "done"
    assert seen == [False, True]  # the line's lock was held, the separate invoice needs none
    assert store.acquire_lock(line_lock(line) or "", owner="next", now=NOW, ttl_seconds=60)
    assert store.get(blocked.key) is None  # not even claimed


@pytest.mark.parametrize(("error", "reason"), [
    (ReauthorizationRequiredError("token revoked"), "authorisation lost"),
    (BudgetExhaustedError("100 calls"), "budget used up"),
    (KeyboardInterrupt(), "interrupted"),
])
def test_a_stop_during_the_call_releases_each_claim_with_why(
        store: SQLiteStore, error: BaseException, reason: str) -> None:
    notes = [_note(n, f"inv-{n}", True) for n in range(2)]

    def stop() -> None:
        raise error

    with pytest.raises(type(error)):
        _chunk(store, _Answers({}, stop), notes)
    for note in notes:
        assert _row(store, note.key) == (EntryState.RETRY, None, reason)


def test_a_chunk_skips_the_rows_of_invoices_gone_or_paid_since_planning(
        store: SQLiteStore) -> None:
    gone, paid, open_ = (_note(n, f"inv-{n}", True) for n in range(3))
    connector = _Answers({open_.key: BatchItemResult(open_.key, ref="note-2")})
    paid_invoice = _invoice(1, 40).model_copy(
        update={"status": InvoiceStatus.PAID, "balance": Decimal(0)})
    connector.get_invoices = lambda ids: {  # type: ignore[method-assign]
        "inv-0": None, "inv-1": paid_invoice, "inv-2": _invoice(2, 40)}
    out = _chunk(store, connector, [gone, paid, open_])
    deleted = "invoice deleted on the platform (or no longer readable)"
    assert out == {gone.key: ("skipped", deleted, None),
                   paid.key: ("skipped", "invoice paid or closed since planning", None),
                   open_.key: ("done", "r", "note-2")}
    assert _row(store, gone.key) == (EntryState.SKIPPED, None, deleted)
    assert _row(store, paid.key) == (EntryState.SKIPPED, None, "invoice no longer open")


def test_a_batch_call_that_fails_whole_leaves_each_row_for_reconciliation(
        store: SQLiteStore) -> None:
    """Each write may or may not have happened: `retry`, reconciled by its key next run."""
    notes = [_note(n, f"inv-{n}", True) for n in range(2)]

    def lost() -> None:
        raise TransientError("connection reset")

    out = _chunk(store, _Answers({}, lost), notes)
    reason = f"{BATCH_FAILED} (connection reset)"
    assert out == {n.key: ("retry", reason, None) for n in notes}
    for note in notes:
        assert _row(store, note.key) == (EntryState.RETRY, None, reason)


@pytest.mark.parametrize("where", ["read", "call", "item"])
@pytest.mark.parametrize("error", [PlatformTimeoutError("no answer in 30 s"),
                                   TransientError("503")])
def test_a_batch_the_platform_never_answered_is_a_silent_retry(
        store: SQLiteStore, where: str, error: ConnectorError) -> None:
    """Silent (no answer within the deadline) tells the breaker to stop the tenant; an
    answer that was an error does not."""
    note = _note(1, "inv-1", True)

    def fail() -> None:
        raise error

    connector = _Answers({note.key: BatchItemResult(note.key, error=error)} if where == "item"
                         else {}, fail if where == "call" else None)
    if where == "read":
        connector.get_invoices = lambda ids: fail()  # type: ignore[assignment, method-assign, func-returns-value]
    out = execute_batch(store, connector, [note], owner="me", clock=lambda: NOW,  # type: ignore[arg-type]
                        lease_seconds=60, rules_version=None, reconcile=lambda a, c: None)  # type: ignore[arg-type, return-value]
    assert [(o.outcome, o.silent) for o in out] == [
        ("retry", isinstance(error, PlatformTimeoutError))]
