"""Batched writes in the sync core: the schedule (pure, property-tested) and the batch path
through the real ledger (SQLite) with an in-memory BatchWriter: per-item results, a lost
answer, a crash before / after the call, Ctrl-C and the budget inside a chunk."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from journey_support import old_journey

from ar_sync.domain.errors import NotApplicableError, PlatformValidationError, TransientError
from ar_sync.domain.models import ActionKind, AddNote, EntryState, Invoice, InvoiceStatus
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.batch import schedule
from ar_sync.sync.budget import CallBudget
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
    assert {a.key: a.outcome for a in report.actions  # type: ignore[attr-defined]
            }.keys() >= set(chunk)
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


