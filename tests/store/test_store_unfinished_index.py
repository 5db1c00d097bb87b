"""DynamoDB finds a run's leftovers through a sparse index: only claimed/retry rows are in
it, so the query's cost follows the leftovers, not the age of the ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from ar_sync.domain.models import AddNote
from ar_sync.store.dynamodb.store import UNFINISHED_INDEX

T0 = datetime(2026, 11, 16, 9, tzinfo=UTC)


def _note(n: int) -> AddNote:
    return AddNote(key=f"k{n:04d}", tenant="xero:t", platform="xero", invoice_id=f"i{n}",
                   invoice_number=f"N{n}", rule="r", occurrence="once",
                   due_on=date(2026, 11, 16), reason="why", text="hello")


def test_sparse_index_holds_only_unfinished_rows(backend: Any) -> None:
    if backend.name != "dynamodb":
        pytest.skip("a DynamoDB index")
    store = backend.store
    for n in range(60):  # an old ledger: finished rows of every kind
        store.claim(_note(n), owner="a", now=T0, lease_seconds=60)
        if n % 3 == 0:
            store.complete(f"k{n:04d}", owner="a", ref="r", now=T0)
        elif n % 3 == 1:
            store.fail(f"k{n:04d}", owner="a", reason="bad", now=T0, permanent=True)
    store.record_skips([_note(100), _note(101)], now=T0)
    store.claim(_note(200), owner="b", now=T0, lease_seconds=60)
    store.fail("k0200", owner="b", reason="503", now=T0, permanent=False)  # retry: stays
    client = store._db
    indexed = client.query(TableName=store._ledger, IndexName=UNFINISHED_INDEX,
                           KeyConditionExpression="open_tenant = :t",
                           ExpressionAttributeValues={":t": {"S": "xero:t"}})["Items"]
    expected = {f"k{n:04d}" for n in range(60) if n % 3 == 2} | {"k0200"}
    assert {i["pk"]["S"] for i in indexed} == expected  # claimed (live) + retry, nothing else
    assert {e.key for e in store.unfinished("xero:t")} == expected
    # a takeover and a completion move a row in and out
    taken = store.claim(_note(200), owner="c", now=T0, lease_seconds=60)
    assert taken.outcome == "reconcile"
    store.complete("k0200", owner="c", ref="x", now=T0)
    assert "k0200" not in {e.key for e in store.unfinished("xero:t")}
