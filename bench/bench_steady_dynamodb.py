"""DynamoDB calls and read units of a steady tenant-run, as the ledger ages.

    .venv/bin/python bench/bench_steady_dynamodb.py [--invoices 100] [--days 4]
                                                    [--ages 1000,10000,50000]

moto in server mode on 127.0.0.1 (real boto3, real HTTP), the in-memory platform of
bench_steady.py. A tenant runs once a day for --days days; then its ledger is aged to each of
--ages rows (finished rows of long-closed invoices, ~0.8 KB each, as real rows are) and a
second, no-change run of the last day is measured: DynamoDB calls by operation, items read,
and read units (strongly consistent: one per 4 KB of each call's items, eventually consistent
half that; what DynamoDB bills, estimated from the items' size). For comparison, "whole
ledger" is what reading the tenant's history once costs (what every run did before history
was read only for the invoices that can be due). The target: at most 10 calls per steady
run, whatever the ledger's age.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from ar_sync.rules.policy import load_policy
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.dynamodb.store import DynamoDBStore, create_tables
from ar_sync.sync.connector import Connection
from ar_sync.sync.run import run_tenant
from ar_sync_emulators.aws import moto_server

sys.path.insert(0, str(Path(__file__).parent))
from bench_plan import synthetic_invoices
from bench_steady import MemoryConnector

TENANT = "quickbooks:bench"


@dataclass
class Meter:
    """Calls by operation, items read and estimated read units of one boto3 client."""

    calls: Counter[str] = field(default_factory=Counter)
    items: int = 0
    units: float = 0.0
    _consistent: list[bool] = field(default_factory=list)

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.dynamodb.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def reset(self) -> None:
        self.calls.clear()
        self.items, self.units = 0, 0.0

    def _before(self, params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        index = params.get("IndexName")
        self.calls[model.name + (f"[{index}]" if index else "")] += 1
        self._consistent.append(bool(params.get("ConsistentRead")))

    def _after(self, parsed: dict[str, Any], **kwargs: Any) -> None:
        consistent = self._consistent.pop() if self._consistent else False
        found = parsed.get("Items") or ([parsed["Item"]] if "Item" in parsed else [])
        for table in (parsed.get("Responses") or {}).values():
            found = found + table
        self.items += len(found)
        size = sum(len(json.dumps(item, default=str)) for item in found)
        if found:
            self.units += math.ceil(size / 4096) * (1.0 if consistent else 0.5)

    def line(self) -> str:
        ops = ", ".join(f"{k} {n}" for k, n in sorted(self.calls.items()))
        return (f"{sum(self.calls.values()):>3} calls, {self.items:>6} items, "
                f"{self.units:>6.1f} read units  ({ops})")


def age_ledger(store: DynamoDBStore, start: int, rows: int) -> None:
    """Finished rows of long-closed invoices of the tenant, numbered from `start`."""
    padding = "x" * 600
    requests = [{"PutRequest": {"Item": {
        "pk": {"S": f"old{n:07d}"}, "tenant": {"S": TENANT},
        "isk": {"S": f"old-{n // 6}#old{n:07d}"}, "invoice_id": {"S": f"old-{n // 6}"},
        "kind": {"S": "note"}, "rule": {"S": "overdue-1"}, "occurrence": {"S": str(n % 6)},
        "state": {"S": "done"}, "due_on": {"S": "2025-06-02"},
        "updated_at": {"S": "2025-06-02T15:00:00+00:00"}, "rev": {"N": "2"},
        "payload": {"S": padding}, "expires_at": {"N": "4102444800"}}}}
        for n in range(start, start + rows)]
    for at in range(0, len(requests), 25):
        store._db.batch_write_item(RequestItems={store._ledger: requests[at:at + 25]})


def ledger_rows(store: DynamoDBStore) -> int:
    pages = store._db.get_paginator("scan").paginate(TableName=store._ledger, Select="COUNT")
    return sum(page["Count"] for page in pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--ages", default="1000,10000,50000")
    args = parser.parse_args()
    ages = sorted(int(a) for a in args.ages.split(","))
    policy = load_policy("default")
    book = [i.model_copy(update={"tenant": TENANT})
            for i in synthetic_invoices(args.invoices, "delinquent")]
    connector = MemoryConnector(book)
    meter = Meter()
    with moto_server() as endpoint:
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="x")
        meter.attach(client)
        prefix = f"b{uuid.uuid4().hex[:8]}"
        names = (f"{prefix}-tenants", f"{prefix}-ledger", f"{prefix}-locks")
        create_tables(client, *names)
        store = DynamoDBStore(tenants_table=names[0], ledger_table=names[1],
                              locks_table=names[2],
                              cipher=TokenCipher(TokenCipher.generate_key()), client=client)
        store.save_connection(Connection(id=TENANT, platform="quickbooks",
                                         external_id="bench", rules="default",
                                         go_live=date(2026, 1, 1)))
        start = datetime(2026, 11, 1, 14, tzinfo=UTC)
        when = start
        for day in range(args.days):
            when = start + timedelta(days=day)
            daily = run_tenant(store, TENANT, today=when.date(), policy=policy,
                               connector=connector, clock=lambda w=when: w, full=day == 0)
            if daily.errors or daily.stopped_early:
                print(f"  day {day + 1}: {daily.stopped_early} {daily.errors[:2]}")
        own = ledger_rows(store)
        print(f"{args.invoices} invoices (delinquent book), one run a day for {args.days} days "
              f"({own} ledger rows of its own); a second, no-change run of the last day at "
              "each ledger age:")
        aged = own
        for age in ages:
            if age > aged:
                age_ledger(store, aged, age - aged)
                aged = age
            meter.reset()
            report = run_tenant(store, TENANT, today=when.date(), policy=policy,
                                connector=connector, clock=lambda w=when: w, full=False)
            assert report.planned == 0 and not report.errors, (report.planned, report.errors)
            steady = meter.line()
            meter.reset()
            store.history(TENANT)
            whole = meter.line()
            print(f"  {aged:>6} rows: steady run {steady}")
            print(f"  {'':>6}       whole ledger {whole}")


if __name__ == "__main__":
    main()
