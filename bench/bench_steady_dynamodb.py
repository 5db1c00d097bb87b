"""DynamoDB calls per steady tenant-run, young ledger against old ledger.

    .venv/bin/python bench/bench_steady_dynamodb.py [--invoices 300] [--days 30]

moto in server mode on 127.0.0.1 (real boto3, real HTTP), the in-memory platform of
bench_steady.py. A tenant runs once a day for --days days (its ledger grows each day); on the
first and the last day a second, no-change run is measured: DynamoDB calls (by operation)
and items read. The target: at most 10 calls per steady run, whatever the ledger's age.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from ar_sync.aws.local import moto_server
from ar_sync.connector import Connection
from ar_sync.crypto import TokenCipher
from ar_sync.policy import load_policy
from ar_sync.store.dynamodb import DynamoDBStore, create_tables
from ar_sync.sync import run_tenant

sys.path.insert(0, str(Path(__file__).parent))
from bench_plan import synthetic_invoices
from bench_steady import MemoryConnector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=300)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    policy = load_policy("default")
    tenant = "quickbooks:bench"
    book = [i.model_copy(update={"tenant": tenant})
            for i in synthetic_invoices(args.invoices, "delinquent")]
    connector = MemoryConnector(book)
    calls: Counter[str] = Counter()
    items = [0]
    with moto_server() as endpoint:
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="x")

        def count(event_name: str, **kwargs: Any) -> None:
            calls[event_name.rsplit(".", 1)[-1]] += 1

        def read(parsed: dict[str, Any], **kwargs: Any) -> None:
            items[0] += int(parsed.get("Count", 1 if "Item" in parsed else 0))

        client.meta.events.register("before-call.dynamodb", count)
        client.meta.events.register("after-call.dynamodb", read)
        prefix = f"b{uuid.uuid4().hex[:8]}"
        names = (f"{prefix}-tenants", f"{prefix}-ledger", f"{prefix}-locks")
        create_tables(client, *names)
        store = DynamoDBStore(tenants_table=names[0], ledger_table=names[1],
                              locks_table=names[2],
                              cipher=TokenCipher(TokenCipher.generate_key()), client=client)
        store.save_connection(Connection(id=tenant, platform="quickbooks",
                                         external_id="bench", rules="default",
                                         go_live=date(2026, 1, 1)))
        start = datetime(2026, 11, 1, 14, tzinfo=UTC)
        print(f"{args.invoices} invoices (delinquent book), one run a day for {args.days} "
              "days; DynamoDB calls of a steady (no-change) run:")
        for day in range(args.days):
            when = start + timedelta(days=day)
            daily = run_tenant(store, tenant, today=when.date(), policy=policy,
                               connector=connector, clock=lambda w=when: w, full=day == 0)
            if daily.errors or daily.stopped_early:
                print(f"  day {day + 1}: {daily.stopped_early} {daily.errors[:2]}")
            if day in (0, args.days - 1):
                calls.clear()
                items[0] = 0
                report = run_tenant(store, tenant, today=when.date(), policy=policy,
                                    connector=connector, clock=lambda w=when: w, full=False)
                assert report.planned == 0, report.planned
                counted, read = sum(calls.values()), items[0]
                line = ", ".join(f"{k} {n}" for k, n in sorted(calls.items()))
                rows = sum(len(v) for v in store.history(tenant).values())
                print(f"  day {day + 1:>3}: {counted:>3} calls ({line}), {read:>6} items read; "
                      f"ledger {rows} rows")


if __name__ == "__main__":
    main()
