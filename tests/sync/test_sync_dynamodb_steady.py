"""DynamoDB: a no-change run costs the same few calls however old the ledger is, and the
per-invoice summary of finished rows follows its invoice (rewritten, paid, reopened) and
mends itself from the rows."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

from ar_sync.domain.models import AddNote, InvoiceStatus
from ar_sync.store.dynamodb.store import TENANT_INDEX, DynamoDBStore
from ar_sync.sync.run import run_tenant

from .dynamo_helpers import CONN, POLICY, START, dynamodb_client, invoice, new_store
from .fakes import FakeConnector, FakePlatform, FaultPlan

__all__ = ["dynamodb_client"]  # the fixture

PADDING = "x" * 600  # an old row's payload and reasons: ~0.8 KB a row, as real rows are


def _age(store: DynamoDBStore, rows: int) -> None:
    """`rows` finished rows of long-closed invoices of the same tenant (an old ledger)."""
    requests = [{"PutRequest": {"Item": {
        "pk": {"S": f"old{n:06d}"}, "tenant": {"S": CONN.id},
        "isk": {"S": f"old-inv-{n // 5}#old{n:06d}"}, "invoice_id": {"S": f"old-inv-{n // 5}"},
        "kind": {"S": "note"}, "rule": {"S": "overdue-1"}, "occurrence": {"S": str(n % 5)},
        "state": {"S": "done"}, "due_on": {"S": "2025-01-02"},
        "updated_at": {"S": "2025-01-02T15:00:00+00:00"}, "rev": {"N": "2"},
        "payload": {"S": PADDING}, "expires_at": {"N": "4102444800"}}}}
        for n in range(rows)]
    for start in range(0, len(requests), 25):
        store._db.batch_write_item(RequestItems={store._ledger: requests[start:start + 25]})


class Calls:
    """DynamoDB calls of one client, by operation (and index), and the items they read."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.items = 0
        self.events = client.meta.events
        self.events.register("provide-client-params.dynamodb.*", self._count)
        self.events.register("after-call.dynamodb.*", self._read)

    def stop(self) -> None:
        self.events.unregister("provide-client-params.dynamodb.*", self._count)
        self.events.unregister("after-call.dynamodb.*", self._read)

    def _count(self, params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        index = params.get("IndexName")
        self.calls[model.name + (f"[{index}]" if index else "")] += 1

    def _read(self, parsed: dict[str, Any], **kwargs: Any) -> None:
        self.items += int(parsed.get("Count", 1 if "Item" in parsed else 0))


def _steady(client: Any, old_rows: int) -> tuple[Counter[str], int]:
    store = new_store(client, retention_days=400)
    _age(store, old_rows)
    state = FakePlatform(invoices={i.id: i for i in (
        invoice(n, START.date() + timedelta(days=d))
        for n, d in enumerate((-60, -40, -20, -8, -2, 0, 3, 10, 25, 40)))})

    def run(day: int) -> Any:
        now = START + timedelta(days=day, minutes=len(state.notes))
        connector = FakeConnector(state, CONN, FaultPlan(rng=random.Random(0)))
        return run_tenant(store, CONN.id, policy=POLICY, connector=connector,
                          clock=lambda: now)

    for day in range(3):
        assert run(day).errors == []
    calls = Calls(store._db)
    report = run(2)  # the same day again: nothing changed, nothing due
    calls.stop()
    assert report.planned == 0 and report.errors == []
    return calls.calls, calls.items


def test_a_steady_run_costs_the_same_few_calls_however_old_the_ledger(
        dynamodb_client: Any) -> None:
    young_calls, young_items = _steady(dynamodb_client, 0)
    old_calls, old_items = _steady(dynamodb_client, 3000)  # ~2.5 MB: 3 pages of history
    assert sum(old_calls.values()) <= 10, old_calls
    assert old_calls == young_calls and old_items == young_items
    assert f"Query[{TENANT_INDEX}]" not in old_calls  # no history read at all


def _note(n: int, rule: str = "overdue-1") -> AddNote:
    inv = invoice(n, START.date())
    return AddNote(key=f"k{n}-{rule}", tenant=CONN.id, platform="fake", invoice_id=inv.id,
                   invoice_number=inv.number, rule=rule, occurrence="once",
                   due_on=START.date(), reason="why", text="hello")


def _done(store: DynamoDBStore, action: AddNote) -> None:
    store.claim(action, owner="o", now=START, lease_seconds=60)
    assert store.complete(action.key, owner="o", ref="r", now=START)


def _kept(store: DynamoDBStore, invoice_id: str) -> set[str] | None:
    store.open_invoices(CONN.id)
    rows = (store.finished_rows(CONN.id) or {}).get(invoice_id)
    return None if rows is None else {f.rule for f in rows}


def test_the_summary_follows_its_invoice(dynamodb_client: Any) -> None:
    store = new_store(dynamodb_client, retention_days=400)
    inv = invoice(1, START.date())
    store.save_invoices(CONN.id, [inv], replace_all=True)
    assert _kept(store, inv.id) == set()  # a new invoice: known to have nothing finished
    _done(store, _note(1))
    assert _kept(store, inv.id) == {"overdue-1"}
    changed = inv.model_copy(update={"balance": inv.balance - 1})
    store.save_invoices(CONN.id, [changed], replace_all=False)  # rewritten: the summary stays
    store.save_invoices(CONN.id, [changed.model_copy(update={"number": "X"})], replace_all=True)
    assert _kept(store, inv.id) == {"overdue-1"}
    paid = changed.model_copy(update={"balance": Decimal(0), "status": InvoiceStatus.PAID})
    store.save_invoices(CONN.id, [paid], replace_all=False)
    assert _kept(store, inv.id) is None  # no longer open
    _done(store, _note(1, "overdue-2"))  # finished while the invoice was paid (a leftover)
    store.save_invoices(CONN.id, [changed], replace_all=False)  # reopened
    assert _kept(store, inv.id) == {"overdue-1", "overdue-2"}


def test_a_summary_missing_a_row_is_mended_from_the_rows(dynamodb_client: Any) -> None:
    store = new_store(dynamodb_client, retention_days=400)
    inv = invoice(2, START.date())
    store.save_invoices(CONN.id, [inv], replace_all=True)
    _done(store, _note(2))
    key = {"pk": {"S": f"inv#{CONN.id}"}, "sk": {"S": inv.id}}
    # a crash between the row's write and the summary's; then a summary from an older version
    for damage in ("REMOVE done", "REMOVE done, sv"):
        dynamodb_client.update_item(TableName=store._tenants, Key=key, UpdateExpression=damage)
        assert _kept(store, inv.id) == (set() if damage == "REMOVE done" else None)
        assert [e.rule for e in store.history(CONN.id, [inv.id])[inv.id]] == ["overdue-1"]
        assert _kept(store, inv.id) == {"overdue-1"}
    dynamodb_client.update_item(TableName=store._tenants, Key=key, UpdateExpression="REMOVE done")
    store.open_invoices(CONN.id)
    claim = store.claim(_note(2), owner="p", now=START, lease_seconds=60)
    assert claim.outcome == "finished"  # planned again: the claim mends the summary too
    assert _kept(store, inv.id) == {"overdue-1"}
