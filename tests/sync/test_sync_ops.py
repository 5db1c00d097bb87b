"""Run-time behaviour: locks on the real clock, `today`, interrupts, the circuit breaker and
invoices the planner cannot reason about."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from journey_support import old_journey

from ar_sync.domain.errors import (
    BudgetExhaustedError,
    ConnectorError,
    QuotaReachedError,
    TransientError,
)
from ar_sync.domain.models import EntryState, Invoice
from ar_sync.planner.plan import plan
from ar_sync.rules.policy import load_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import INTERRUPTED, LOCK_HELD, PLATFORM_UNAVAILABLE, run_tenant

from .fakes import FakeConnector, FakePlatform, FaultPlan
from .harness import CIPHER
from .test_sync_faults_fake import CONNECTION, TODAY

NOW = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)
LOCK = f"tenant:{CONNECTION.id}"


def _invoice(n: int, days_overdue: int, **extra: Any) -> Invoice:
    due = TODAY - timedelta(days=days_overdue)
    fields: dict[str, Any] = dict(
        platform="fake", tenant=CONNECTION.id, id=f"inv-{n}", number=f"INV-{n}",
        customer_id=f"c{n}", customer_name=f"Customer {n}", customer_email=f"c{n}@example.com",
        issue_date=due - timedelta(days=30), due_date=due, currency="USD",
        total=Decimal("1000.00"), balance=Decimal("1000.00"),
        updated_at=datetime(2026, 10, 1, tzinfo=UTC))
    fields.update(extra)
    return Invoice(**fields)


def _book(n: int = 6) -> FakePlatform:
    return FakePlatform(invoices={f"inv-{i}": _invoice(i, 40 + i) for i in range(n)})


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    s.save_connection(CONNECTION)
    return s


class Interrupting(FakeConnector):
    """Ctrl-C arrives during the Nth write: before the platform call, or after it applied."""

    def __init__(self, state: FakePlatform, at: int, *, after: bool) -> None:
        super().__init__(state, CONNECTION, FaultPlan(rng=random.Random(0)))
        self.at, self.after, self.calls = at, after, 0

    def _write(self, key: str, apply: Any) -> str:
        self.calls += 1
        if self.calls == self.at and not self.after:
            raise KeyboardInterrupt
        ref = super()._write(key, apply)
        if self.calls == self.at:
            raise KeyboardInterrupt
        return ref


class Down(FakeConnector):
    """The platform answers reads, then every write fails with a 5xx after retries."""

    def __init__(self, state: FakePlatform) -> None:
        super().__init__(state, CONNECTION, FaultPlan(rng=random.Random(0)))
        self.write_attempts = 0

    def _write(self, key: str, apply: Any) -> str:
        self.write_attempts += 1
        raise TransientError("503 Service Unavailable")


class EmailQuota(FakeConnector):
    """Every platform e-mail is refused by a used-up daily quota (Xero's API e-mail limit);
    notes and fees still go through."""

    def __init__(self, state: FakePlatform) -> None:
        super().__init__(state, CONNECTION, FaultPlan(rng=random.Random(0)))
        self.refused = 0

    def send_reminder(self, invoice: Invoice, *, key: str, to: str | None = None) -> str:
        self.refused += 1
        raise QuotaReachedError("daily e-mail limit reached; sent on a later run")


def test_lock_and_leases_follow_the_real_clock_not_today(
        store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = old_journey("platform-email")
    state = _book()
    # a run "as of" a day weeks ahead is SIGKILLed (its lock is never released) ...
    monkeypatch.setattr(store, "release_lock", lambda name, *, owner: None)
    killed = run_tenant(store, CONNECTION.id, now=NOW + timedelta(days=40), policy=policy,
                        connector=FakeConnector(state, CONNECTION, FaultPlan(random.Random(0))))
    assert killed.stopped_early is None
    monkeypatch.undo()
    # ... its lock blocks for the real lease only: a plain run 6 real minutes later goes on
    later = datetime.now(UTC) + timedelta(minutes=6)
    plain = run_tenant(store, CONNECTION.id, policy=policy, clock=lambda: later,
                       connector=FakeConnector(state, CONNECTION, FaultPlan(random.Random(0))))
    assert plain.stopped_early is None
    # ... and a lock a real runner holds right now blocks a run planning for any day
    assert store.acquire_lock(LOCK, owner="other", now=datetime.now(UTC), ttl_seconds=60)
    blocked = run_tenant(store, CONNECTION.id, now=NOW - timedelta(days=400), policy=policy,
                         connector=FakeConnector(state, CONNECTION, FaultPlan(random.Random(0))))
    assert blocked.stopped_early == LOCK_HELD
    # a lock left by a crashed run expires on the real clock, whatever `now` said
    store.release_lock(LOCK, owner="other")
    stale = datetime.now(UTC) - timedelta(minutes=10)
    assert store.acquire_lock(LOCK, owner="crashed", now=stale, ttl_seconds=300)
    after = run_tenant(store, CONNECTION.id, now=NOW + timedelta(days=400), policy=policy,
                       connector=FakeConnector(state, CONNECTION, FaultPlan(random.Random(0))))
    assert after.stopped_early is None


def test_today_is_the_companys_local_date_for_run_and_plan(store: SQLiteStore,
                                                           tmp_path: Path) -> None:
    rules = tmp_path / "auckland.yaml"
    rules.write_text("extends: platform-email\ncalendar:\n  timezone: Pacific/Auckland\n",
                     encoding="utf-8")
    policy = old_journey(str(rules))
    invoices = [_invoice(i, d) for i, d in enumerate((-3, 0, 1, 6, 7, 8, 20, 21, 22, 45))]
    state = FakePlatform(invoices={i.id: i for i in invoices})
    for day in (TODAY - timedelta(days=1), TODAY, TODAY + timedelta(days=1)):
        report = run_tenant(store, CONNECTION.id, today=day, dry_run=True, policy=policy,
                            connector=FakeConnector(state, CONNECTION,
                                                    FaultPlan(random.Random(0))))
        expected = {a.key for a in plan(invoices, {}, policy, day)}
        assert {a.key for a in report.actions} == expected


def test_impossible_invoice_is_skipped_with_a_warning(store: SQLiteStore) -> None:
    good = [_invoice(1, 45), _invoice(2, 8)]
    bad = [_invoice(3, 0, due_date=date(1, 1, 1), issue_date=date(1, 1, 1)),
           _invoice(4, 0, due_date=date(9999, 12, 31)),
           _invoice(5, 30, total=Decimal("1e30"), balance=Decimal("1e30"))]
    state = FakePlatform(invoices={i.id: i for i in good + bad})
    policy = old_journey("platform-email")
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=policy,
                        connector=FakeConnector(state, CONNECTION, FaultPlan(random.Random(0))))
    assert report.errors == [] and report.done > 0
    assert {a.invoice_id for a in report.actions} <= {"inv-1", "inv-2"}
    for number in ("INV-3", "INV-4", "INV-5"):
        assert any(number in w and "skipped" in w for w in report.warnings), number
    assert report.invoices_open == 2


@pytest.mark.parametrize("after", [False, True])
def test_interrupt_releases_claim_and_locks_and_next_run_finishes(
        store: SQLiteStore, after: bool) -> None:
    state = _book()
    policy = old_journey("platform-email")
    first = run_tenant(store, CONNECTION.id, now=NOW, policy=policy,
                       connector=Interrupting(state, at=3, after=after))
    assert first.stopped_early == INTERRUPTED
    assert first.done == 2 and first.deferred == first.planned - first.done - first.skipped
    # nothing is held: no live claim, no tenant lock, no invoice lock
    assert all(e.state == EntryState.RETRY for e in store.unfinished(CONNECTION.id))
    assert len(store.unfinished(CONNECTION.id)) == 1
    assert store.acquire_lock(LOCK, owner="next", now=datetime.now(UTC), ttl_seconds=1)
    store.release_lock(LOCK, owner="next")
    second = run_tenant(store, CONNECTION.id, now=NOW, policy=policy,
                        connector=FakeConnector(state, CONNECTION, FaultPlan(random.Random(0))))
    assert second.stopped_early is None and second.busy == 0
    assert store.unfinished(CONNECTION.id) == []
    effects = state.effects()
    assert all(n == 1 for n in effects.values())
    assert len(effects) == first.planned - first.skipped


def test_breaker_stops_a_tenant_whose_platform_is_down(store: SQLiteStore) -> None:
    state = _book(10)
    down = Down(state)
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=old_journey("platform-email"),
                        connector=down)
    assert report.stopped_early == PLATFORM_UNAVAILABLE
    assert down.write_attempts == 3 and report.retry == 3
    assert report.deferred == report.planned - report.skipped - 3 > 0
    assert any(PLATFORM_UNAVAILABLE in e for e in report.errors)
    # nothing lost: the next run, with the platform back, does everything once
    again = run_tenant(store, CONNECTION.id, now=NOW, policy=old_journey("platform-email"),
                       connector=FakeConnector(state, CONNECTION, FaultPlan(random.Random(0))))
    assert again.errors == [] and store.unfinished(CONNECTION.id) == []
    assert all(n == 1 for n in state.effects().values())


def test_breaker_opens_on_a_slow_failing_streak(store: SQLiteStore) -> None:
    ticks = iter(range(0, 10_000, 6))  # each clock reading is 6 s later

    def clock() -> datetime:
        return NOW + timedelta(seconds=next(ticks))

    down = Down(_book(10))
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=old_journey("platform-email"),
                        connector=down, clock=clock)
    assert report.stopped_early == PLATFORM_UNAVAILABLE
    assert down.write_attempts < 3


def test_one_failure_between_successes_does_not_open_the_breaker(store: SQLiteStore) -> None:
    state = _book(10)
    flaky = FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(5),
                                                       p_transient_before=0.3))
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=old_journey("platform-email"),
                        connector=flaky)
    assert report.retry > 0
    if report.stopped_early == PLATFORM_UNAVAILABLE:  # only three in a row may open it
        outcomes = [a.outcome for a in report.actions if a.outcome != "deferred"]
        assert outcomes[-3:] == ["retry"] * 3


def test_a_used_up_email_quota_is_not_a_platform_outage(store: SQLiteStore) -> None:
    """A daily quota holds the e-mails, not the run: the breaker stays shut even when the
    held e-mails come first, in a row, in the next run of the day; every other write is done
    and each held e-mail is sent once when the quota is back."""
    state = _book(10)
    quota = EmailQuota(state)
    first = run_tenant(store, CONNECTION.id, now=NOW, policy=old_journey("platform-email"),
                       connector=quota)
    assert first.stopped_early is None and first.deferred == 0
    assert first.retry == quota.refused > 3  # more than the breaker's three in a row
    assert first.done == first.planned - first.skipped - quota.refused > 0
    held = store.unfinished(CONNECTION.id)
    assert len(held) == quota.refused and all(e.state == EntryState.RETRY for e in held)
    # later the same day: the held e-mails go first and are refused again, one after another
    again = EmailQuota(state)
    second = run_tenant(store, CONNECTION.id, now=NOW + timedelta(hours=2),
                        policy=old_journey("platform-email"), connector=again)
    assert again.refused == len(held)
    assert second.stopped_early is None and second.deferred == 0
    assert PLATFORM_UNAVAILABLE not in " ".join(second.errors)
    third = run_tenant(store, CONNECTION.id, now=NOW + timedelta(days=1),
                       policy=old_journey("platform-email"),
                       connector=FakeConnector(state, CONNECTION, FaultPlan(random.Random(0))))
    assert third.stopped_early is None and store.unfinished(CONNECTION.id) == []
    assert len(state.emails) == len({key for _, key in state.emails}) >= len(held)


def test_every_run_warns_when_a_rate_table_is_older_than_the_half_year(
        store: SQLiteStore) -> None:
    state = FakePlatform(invoices={i.id: i for i in [_invoice(1, 45)]})
    policy = load_policy("uk-late-payment")
    for day, stale in ((date(2026, 12, 7), False), (date(2027, 1, 4), True)):
        report = run_tenant(store, CONNECTION.id, today=day, dry_run=True, policy=policy,
                            connector=FakeConnector(state, CONNECTION,
                                                    FaultPlan(random.Random(0))))
        found = [w for w in report.warnings if "Bank of England Bank Rate table" in w]
        assert bool(found) == stale, report.warnings


class FailingFetch(FakeConnector):
    """The first read fails with `error` (after the connector's own retries)."""

    def __init__(self, state: FakePlatform, error: Exception) -> None:
        super().__init__(state, CONNECTION, FaultPlan(rng=random.Random(0)))
        self.error = error

    def fetch_open_invoices(self, since: datetime | None = None) -> Any:
        raise self.error


@pytest.mark.parametrize(("error", "stopped", "errors"), [
    (TransientError("503 storm"), PLATFORM_UNAVAILABLE, [f"{PLATFORM_UNAVAILABLE}: 503 storm"]),
    (ConnectorError("400 bad query"), "platform error", ["platform error: 400 bad query"]),
    (BudgetExhaustedError("call budget used up"), "budget: call budget used up", []),
])
def test_a_run_stopped_by_its_first_read_says_why(store: SQLiteStore, error: Exception,
                                                  stopped: str, errors: list[str]) -> None:
    state = _book(3)
    report = run_tenant(store, CONNECTION.id, now=NOW, policy=load_policy("platform-email"),
                        connector=FailingFetch(state, error))
    assert report.stopped_early == stopped and report.errors == errors
    assert report.planned == 0 and state.effects() == {}
