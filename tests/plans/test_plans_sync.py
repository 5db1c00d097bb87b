"""A payment plan through run_tenant on the in-memory platform, and risk from the ledger."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from pathlib import Path

from sync.fakes import FakeConnector, FakePlatform, FaultPlan
from sync.harness import CIPHER

from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection
from ar_sync.sync.run import run_tenant

from .conftest import invoice, rules

CONN = Connection(id="fake:1", platform="fake", external_id="1", name="Fake Ltd")


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)


def test_plan_end_to_end_on_track_then_broken(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    store.save_connection(CONN)
    inv = invoice(due=date(2026, 10, 1)).model_copy(update={"tenant": CONN.id})
    state = FakePlatform(invoices={inv.id: inv})
    store.save_payment_plan(CONN.id, PaymentPlan(
        invoice="INV-1", instalments=3, every="1 month", first_due=date(2026, 12, 2)))
    policy = rules()

    def run(day: date) -> list[str]:
        before = len(state.notes)
        connector = FakeConnector(state, CONN, FaultPlan(rng=random.Random(0)))
        report = run_tenant(store, CONN.id, now=_at(day), policy=policy, connector=connector)
        assert report.errors == []
        return [text for _, text in state.notes[before:]]

    first = run(date(2026, 11, 30))
    assert len(first) == 2 and any(t.startswith("Payment plan agreed") for t in first)
    assert any(t.startswith("Instalment 1 of 3") for t in first)
    assert state.fees == [] and run(date(2026, 11, 30)) == []  # second run: nothing
    broken = run(date(2026, 12, 6))
    assert any(t.startswith("Payment plan broken: instalment 1 of 3") for t in broken)
    assert len(state.fees) == 1  # the normal rules resumed: the late fee is charged
    assert not any("Payment plan broken" in t for t in run(date(2026, 12, 7)))
    assert all(n == 1 for n in state.effects().values())
