"""DynamoDB: finished ledger rows age out by TTL, and nothing is written twice after they do.

Runs go through run_tenant against the in-memory platform (tests/sync/fakes.py) with the
platform's own key replay off, so a write made twice shows up twice. DynamoDB's TTL sweep is
played by deleting every ledger row whose `expires_at` has passed, after every run.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from ar_sync.store.dynamodb.store import DynamoDBStore
from ar_sync.sync.run import run_tenant

from .dynamo_helpers import CONN, POLICY, START, dynamodb_client, invoice, new_store
from .fakes import FakeConnector, FakePlatform, FaultPlan

__all__ = ["dynamodb_client"]  # the fixture


def _ledger_items(store: DynamoDBStore) -> Iterator[dict[str, Any]]:
    pages = store._db.get_paginator("scan").paginate(TableName=store._ledger)
    for page in pages:
        yield from page["Items"]


def _sweep(store: DynamoDBStore, now: datetime) -> Counter[str]:
    """What DynamoDB's TTL does (some time after expiry): delete expired rows. Returns the
    kinds of the rows deleted."""
    gone: Counter[str] = Counter()
    for item in _ledger_items(store):
        expires = item.get("expires_at")
        if expires is not None and int(expires["N"]) <= now.timestamp():
            store._db.delete_item(TableName=store._ledger, Key={"pk": item["pk"]})
            gone[item["kind"]["S"]] += 1
    return gone


def _daily_runs(store: DynamoDBStore, days: int) -> tuple[FakePlatform, Counter[str]]:
    # due dates spread so that stages, fees and the escalation come on many different days
    state = FakePlatform(invoices={i.id: i for i in (
        invoice(n, START.date() + timedelta(days=d))
        for n, d in enumerate((-40, -8, -2, 3, 10, 25)))})
    swept: Counter[str] = Counter()
    for day in range(days):
        now = START + timedelta(days=day)
        connector = FakeConnector(state, CONN, FaultPlan(rng=random.Random(day),
                                                          platform_keys="off"))
        report = run_tenant(store, CONN.id, policy=POLICY, connector=connector,
                            clock=lambda now=now: now)
        assert report.errors == [] and report.stopped_early is None, report.errors
        swept += _sweep(store, now)
    return state, swept


def test_finished_rows_expire_after_the_retention_and_unfinished_rows_never(
        dynamodb_client: Any) -> None:
    store = new_store(dynamodb_client, retention_days=400)
    state, _ = _daily_runs(store, 3)
    items = list(_ledger_items(store))
    assert items and state.effects()
    for item in items:
        state_ = item["state"]["S"]
        updated = datetime.fromisoformat(item["updated_at"]["S"])
        if state_ in ("done", "skipped", "failed"):
            expected = int((updated + timedelta(days=400)).timestamp())
            assert int(item["expires_at"]["N"]) == expected
        else:
            assert "expires_at" not in item
    ttl = dynamodb_client.describe_time_to_live(TableName=store._ledger)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"


def test_nothing_is_written_twice_after_the_rows_age_out(dynamodb_client: Any) -> None:
    store = new_store(dynamodb_client, retention_days=2)
    state, swept = _daily_runs(store, 75)
    # the sweep took every kind of row, e-mails of stages still the latest among them
    assert swept["note"] > 10 and swept["reminder_email"] > 5 and swept["skip"] > 0
    assert swept["late_fee"] > 0
    effects = state.effects()
    assert len(effects) > 30
    assert [k for k, n in effects.items() if n != 1] == []
    assert len(state.emails) == len({k for _, k in state.emails})


def test_without_the_summary_aged_out_rows_would_be_written_again(
        dynamodb_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The schedule above is a real test: a store that keeps no summary (history from the
    rows alone) sends e-mails and notes again once their rows are gone."""
    store = new_store(dynamodb_client, retention_days=2)
    monkeypatch.setattr(store, "_summarize", lambda *a, **k: None)
    monkeypatch.setattr(store, "finished_rows", lambda tenant: None)
    monkeypatch.setattr(store, "_mend", lambda *a, **k: None)
    state, _ = _daily_runs(store, 75)
    assert [k for k, n in state.effects().items() if n > 1] != []
