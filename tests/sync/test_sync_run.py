"""The sync shell on the in-memory platform: reports, budgets, paid-after-planning, dry run."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from journey_support import old_journey

from ar_sync.domain.models import ActionKind, EntryState, Invoice
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import Connection
from ar_sync.sync.run import run_tenant

from .fakes import FakeConnector, FakePlatform, FaultPlan
from .harness import CIPHER
from .test_sync_faults_fake import CONNECTION, TODAY

NOW = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)


def _invoice(n: int, days_overdue: int, total: str = "1000.00", currency: str = "USD") -> Invoice:
    due = TODAY - timedelta(days=days_overdue)
    return Invoice(platform="fake", tenant=CONNECTION.id, id=f"inv-{n}", number=f"INV-{n}",
                   customer_id="c1", customer_name="Customer One",
                   customer_email="one@example.com", issue_date=due - timedelta(days=30),
                   due_date=due, currency=currency, total=Decimal(total),
                   balance=Decimal(total), updated_at=datetime(2026, 10, 1, tzinfo=UTC))


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    s.save_connection(CONNECTION)
    return s


def _connector(state: FakePlatform, conn: Connection = CONNECTION) -> FakeConnector:
    return FakeConnector(state, conn, FaultPlan(rng=random.Random(0)))


def test_run_writes_plan_once_and_second_run_is_a_no_op(store: SQLiteStore) -> None:
    state = FakePlatform(invoices={i.id: i for i in [_invoice(1, 45), _invoice(2, 8),
                                                     _invoice(3, -20)]})
    policy = old_journey("platform-email")
    first = run_tenant(store, CONNECTION.id, now=NOW, policy=policy, connector=_connector(state))
    assert first.planned > 0 and first.done > 0 and first.errors == []
    assert first.done == len(state.effects())
    assert all(n == 1 for n in state.effects().values())
    second = run_tenant(store, CONNECTION.id, now=NOW, policy=policy, connector=_connector(state))
    assert second.done == 0 and second.planned == 0
    assert store.last_report(CONNECTION.id)["planned"] == 0  # type: ignore[index]


def test_dry_run_touches_neither_platform_nor_ledger(store: SQLiteStore) -> None:
    state = FakePlatform(invoices={"inv-1": _invoice(1, 45)})
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=old_journey("platform-email"),
                        connector=_connector(state), dry_run=True)
    assert report.planned > 0
    assert {a.outcome for a in report.actions} == {"planned"}
    assert state.effects() == {} and store.history(CONNECTION.id) == {}


def test_invoice_paid_after_planning_gets_no_fee(store: SQLiteStore) -> None:
    state = FakePlatform(invoices={"inv-1": _invoice(1, 60)})
    connector = _connector(state)
    original_fetch = connector.fetch_open_invoices

    def fetch_then_customer_pays(since=None):  # type: ignore[no-untyped-def]
        result = original_fetch(since)
        connector.pay("inv-1")  # paid between the fetch (planning) and the write
        return result

    connector.fetch_open_invoices = fetch_then_customer_pays  # type: ignore[method-assign]
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=old_journey("platform-email"),
                        connector=connector)
    fee_outcomes = [a for a in report.actions if a.kind == ActionKind.LATE_FEE]
    assert fee_outcomes, "the plan must have contained a fee for a 60-day-old invoice"
    assert all(a.outcome == "skipped" for a in fee_outcomes)
    assert state.fees == []
    entries = store.history(CONNECTION.id)["inv-1"]
    assert all(e.state == EntryState.SKIPPED for e in entries if e.kind == ActionKind.LATE_FEE)


def test_run_cut_off_by_budget_resumes_without_loss(store: SQLiteStore) -> None:
    invoices = {f"inv-{n}": _invoice(n, 10 + 7 * n) for n in range(8)}
    policy = old_journey("platform-email")
    reference = FakePlatform(invoices=dict(invoices))
    ref_store = SQLiteStore(store.path.parent / "ref.db", cipher=CIPHER)
    ref_store.save_connection(CONNECTION)
    run_tenant(ref_store, CONNECTION.id, now=NOW, policy=policy, connector=_connector(reference))
    expected = set(reference.effects())

    state = FakePlatform(invoices=dict(invoices))
    budget = CallBudget(max_calls=5)
    connector = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0)), budget)
    cut = run_tenant(store, CONNECTION.id, now=NOW, policy=policy, connector=connector,
                     budget=budget)
    assert cut.stopped_early and cut.deferred > 0
    assert len(state.effects()) < len(expected)
    later = NOW + timedelta(hours=1)
    rest = run_tenant(store, CONNECTION.id, now=later, policy=policy, connector=_connector(state))
    assert rest.done > 0
    assert set(state.effects()) == expected
    assert all(n == 1 for n in state.effects().values())


def test_time_budget_stops_cleanly(store: SQLiteStore) -> None:
    state = FakePlatform(invoices={f"inv-{n}": _invoice(n, 40) for n in range(4)})
    left = [60.0]

    def remaining() -> float:  # a Lambda running out of time: 20 s pass per check
        left[0] -= 20
        return left[0]

    budget = CallBudget(remaining_time=remaining, time_reserve_seconds=5.0)
    connector = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0)), budget)
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=old_journey("platform-email"),
                        connector=connector, budget=budget)
    assert report.stopped_early == "budget used up"
    assert report.deferred > 0 and report.done + report.deferred + report.skipped == report.planned
    # no claim is left hanging: an interrupted write is released for retry
    interrupted = store.unfinished(CONNECTION.id)
    assert interrupted and all(e.state == EntryState.RETRY for e in interrupted)
    rest = run_tenant(store, CONNECTION.id, now=NOW + timedelta(minutes=5),
                      policy=old_journey("platform-email"), connector=_connector(state))
    assert rest.stopped_early is None and store.unfinished(CONNECTION.id) == []
    assert all(n == 1 for n in state.effects().values())


def test_lock_held_by_another_run(store: SQLiteStore) -> None:
    # locks live on the real clock, whatever day the run plans for
    assert store.acquire_lock(f"tenant:{CONNECTION.id}", owner="other",
                              now=datetime.now(UTC), ttl_seconds=60)
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=old_journey("platform-email"),
                        connector=_connector(FakePlatform()))
    assert report.stopped_early == "lock held by another run"


def test_transient_failure_is_retried_next_run_without_duplicate(store: SQLiteStore) -> None:
    state = FakePlatform(invoices={"inv-1": _invoice(1, 45)})
    # every write is applied and its answer lost; notes and fees are not replayed by key
    flaky = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(3), p_drop_after=1.0,
                                                       platform_keys="email-only"))
    policy = old_journey("platform-email")
    first = run_tenant(store, CONNECTION.id, now=NOW, policy=policy, connector=flaky)
    retried = {a.key: a.kind for a in first.actions if a.outcome == "retry"}
    assert retried and first.done == 0 and len(retried) == first.retry
    # the platform did apply the writes: the lost responses must not cause a second write
    second = run_tenant(store, CONNECTION.id, now=NOW + timedelta(minutes=1), policy=policy,
                        connector=FakeConnector(state, CONNECTION, FaultPlan(
                            rng=random.Random(0), platform_keys="email-only")))
    found = {a.key: a.outcome for a in second.actions if a.key in retried}
    # notes and fees are found by their marker; an e-mail (no marker) is resent under its key
    assert found == {k: "done" if kind == ActionKind.REMINDER_EMAIL else "reconciled"
                     for k, kind in retried.items()}
    assert state.effects() == {key: 1 for key in retried}  # exactly one effect each
    assert store.unfinished(CONNECTION.id) == []


def test_invoice_deleted_on_the_platform_leaves_the_snapshot(store: SQLiteStore) -> None:
    """An incremental fetch reports a deletion (QuickBooks CDC `status: Deleted`): the invoice
    leaves the snapshot, nothing more is planned for it, and its retry is skipped with why."""
    state = FakePlatform(invoices={"inv-1": _invoice(1, 45), "inv-2": _invoice(2, 45)})
    policy = old_journey("platform-email")
    flaky = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(3), p_throttle=1.0))
    first = run_tenant(store, CONNECTION.id, now=NOW, policy=policy, connector=flaky)
    assert first.retry > 0
    del state.invoices["inv-1"]
    connector = _connector(state)
    original_fetch = connector.fetch_open_invoices

    def fetch_with_deletion(since=None):  # type: ignore[no-untyped-def]
        result = original_fetch(since)
        result.removed = ["inv-1"]
        return result

    connector.fetch_open_invoices = fetch_with_deletion  # type: ignore[method-assign]
    second = run_tenant(store, CONNECTION.id, now=NOW + timedelta(hours=1), policy=policy,
                        connector=connector, full=False)
    assert "inv-1" not in {i.id for i in store.open_invoices(CONNECTION.id)}
    skipped = [a for a in second.actions if a.invoice_id == "inv-1"]
    assert skipped and {a.outcome for a in skipped} == {"skipped"}
    assert all("deleted" in a.detail for a in skipped)
    assert all(e.state == EntryState.SKIPPED for e in store.history(CONNECTION.id)["inv-1"])
    assert store.unfinished(CONNECTION.id) == []
    assert all(n == 1 for n in state.effects().values())
