"""Fan-out on the serverless path: N tenants x M invoices through dispatch and sync_tenant.

    .venv/bin/python bench/bench_fanout.py [--tenants 1000] [--invoices 500] [--workers 4]

Everything is real except the clouds: DynamoDB and SQS are moto in server mode on 127.0.0.1
(real HTTP, real boto3), Xero is the emulator (one organisation per tenant, each connected by
its own OAuth consent through ar_sync.connect.onboarding), and the handlers are the Lambda handlers
themselves, called with the EventBridge and SQS events Lambda would pass. `--workers` threads
play the concurrent Lambda instances (reserved concurrency): each takes one message (batch
size 1), runs `sync_tenant.handler` and deletes the message, as the event source mapping does.

Printed: tenants per minute, platform calls per tenant, and the slowest tenant's wait (from
dispatch until a worker started it). The emulator's rate limits are lifted so the figures
measure our work, not Xero's 60-a-minute throttle; the projection line says what that limit
alone would make each tenant's first run take.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

XERO_PER_MINUTE = 60


@dataclass
class Run:
    connection_id: str
    waited: float  # dispatch -> a worker picked it up
    took: float
    api_calls: int
    done: int
    failed: bool


def _connect_all(emu: Any, store: Any, settings: Any, tenants: list[str]) -> float:
    """One OAuth consent per organisation, through start_connect / finish_connect."""
    from ar_sync.connect.onboarding import finish_connect, start_connect

    started = time.perf_counter()
    for n, tenant in enumerate(tenants):
        now = datetime.now(UTC)
        url = start_connect(store, "xero", f"business-{n}", settings, now=now)
        query = dict(parse_qsl(urlsplit(url).query))
        back = emu.authorize(settings.client_id, settings.redirect_uri, query["state"],
                             code_challenge=query.get("code_challenge"), tenants=[tenant])
        finish_connect(store, dict(parse_qsl(urlsplit(back).query)), settings, now=now)
    return time.perf_counter() - started


def _worker(sqs: Any, queue_url: str, store: Any, dispatched_at: float, total: int,
            runs: list[Run], lock: threading.Lock, timeout_ms: int) -> None:
    from ar_sync.aws import sync_tenant
    from ar_sync_emulators.aws import LocalContext, sqs_event

    while True:
        with lock:
            if len(runs) >= total:
                return
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1,
                                  AttributeNames=["All"], WaitTimeSeconds=1).get("Messages", [])
        if not got:
            continue
        message = got[0]
        cid = json.loads(message["Body"])["connection_id"]
        start = time.perf_counter()
        failed = False
        try:
            context = cast("LambdaContext", LocalContext(remaining_ms=timeout_ms))
            out = sync_tenant.handler(sqs_event([message]), context)
            failed = bool(out["batchItemFailures"])
        except Exception as exc:  # a failed invocation: the message would come back
            print(f"  ! {cid}: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed = True
        took = time.perf_counter() - start
        if not failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        report = store.last_report(cid) or {}
        with lock:
            runs.append(Run(cid, start - dispatched_at, took, int(report.get("api_calls", 0)),
                            int(report.get("done", 0)), failed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--invoices", type=int, default=500, help="per tenant")
    parser.add_argument("--workers", type=int, default=4, help="concurrent Lambda instances")
    parser.add_argument("--timeout", type=int, default=600, help="sync_tenant timeout, s")
    parser.add_argument("--rounds", type=int, default=2,
                        help="scheduled rounds: the first clears the backlog, later ones "
                             "show the steady state")
    args = parser.parse_args()

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    import boto3

    from ar_sync.aws import config, dispatch
    from ar_sync_emulators.aws import LocalContext, local_aws, scheduled_event
    from ar_sync_emulators.books import large_company
    from ar_sync_emulators.xero.server import XeroEmulator

    config.logger.setLevel("WARNING")
    company = large_company(invoices=args.invoices)
    emu = XeroEmulator(per_minute=None, per_day=None, concurrent=None, app_per_minute=None)
    t = time.perf_counter()
    tenants = [emu.seed(company, tenant_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"org-{n}")),
                        name=f"Org {n}")
               for n in range(args.tenants)]
    seeded = time.perf_counter() - t
    with local_aws(prefix="bench") as env, emu.serve():
        settings = emu.settings(redirect_uri="https://bench.example/oauth/xero/callback")
        os.environ.update({
            "AR_SYNC_XERO_CLIENT_ID": settings.client_id,
            "AR_SYNC_XERO_CLIENT_SECRET": settings.client_secret,
            "AR_SYNC_XERO_REDIRECT_URI": settings.redirect_uri,
            "AR_SYNC_XERO_ENDPOINTS": json.dumps(dict(settings.endpoints))})
        store = config.store()
        dynamodb_calls = [0]

        def count_call(**_: Any) -> None:
            dynamodb_calls[0] += 1  # CPython: one bytecode add under the GIL is fine here

        store._db.meta.events.register("before-call.dynamodb", count_call)
        connect_s = _connect_all(emu, store, settings, tenants)
        sqs = boto3.client("sqs")
        queue_url = env[config.QUEUE_URL]
        print(f"fan-out: {args.tenants} tenants x {args.invoices} invoices, {args.workers} "
              f"concurrent sync_tenant workers; moto server + Xero emulator on 127.0.0.1 "
              f"({os.cpu_count()} CPUs)")
        print(f"  setup: seeded in {seeded:.1f} s, {args.tenants} OAuth connects in "
              f"{connect_s:.1f} s")

        for round_no in range(1, args.rounds + 1):
            emu.counters.reset()
            dynamodb_calls[0] = 0
            t0 = time.perf_counter()
            dispatched = dispatch.handler(scheduled_event(),
                                          cast("LambdaContext", LocalContext()))
            dispatch_s = time.perf_counter() - t0
            runs: list[Run] = []
            lock = threading.Lock()
            workers = [threading.Thread(target=_worker, args=(
                sqs, queue_url, store, t0, args.tenants, runs, lock, args.timeout * 1000))
                for _ in range(args.workers)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            wall = time.perf_counter() - t0
            api_total = sum(n for k, n in emu.counters.calls.items() if "/api.xro/" in k)
            label = "first run (backlog)" if round_no == 1 else f"run {round_no} (steady state)"
            _print_round(label, runs, wall, dispatched["sent"], dispatch_s, api_total,
                         args.workers)
            print(f"    DynamoDB calls per tenant: {dynamodb_calls[0] / len(runs):.1f} "
                  f"(reports and dispatch included)")


def _print_round(label: str, runs: list[Run], wall: float, sent: int, dispatch_s: float,
                 api_total: int, workers: int) -> None:
    calls = [r.api_calls for r in runs]
    slowest = max(runs, key=lambda r: r.waited)
    print(f"  {label}: dispatch sent {sent} messages in {dispatch_s:.2f} s")
    print(f"    all tenants synced in {wall:.1f} s: {len(runs) / wall * 60:.1f} tenants/minute "
          f"({len(runs) / wall * 60 / workers:.1f} per worker)")
    print(f"    platform calls per tenant: mean {statistics.mean(calls):.1f}, median "
          f"{statistics.median(calls):.0f}, max {max(calls)} (emulator total {api_total})")
    print(f"    writes per tenant: mean {statistics.mean(r.done for r in runs):.1f}; "
          f"failed runs: {sum(r.failed for r in runs)}")
    print(f"    run time per tenant: median {statistics.median(r.took for r in runs):.2f} s, "
          f"max {max(r.took for r in runs):.2f} s")
    print(f"    slowest tenant's wait (dispatch -> start): {slowest.waited:.1f} s")
    print(f"    at Xero's {XERO_PER_MINUTE} calls/minute per tenant, {max(calls)} calls take "
          f">= {max(calls) / XERO_PER_MINUTE:.1f} min of that tenant's own quota")


if __name__ == "__main__":
    main()
