"""Steady state: what a daily run costs when nothing has changed on the platform.

    .venv/bin/python bench/bench_steady.py [--invoices 10000] [--repeat 3]

A SQLite store (a real file, WAL) holds N open invoices of a typical book (bench_plan's
synthetic portfolio) and their ledger; the connector is in memory (no HTTP), so the figures
are ar-sync's own cost: reading the snapshot and the ledger, planning, recording skips.

Printed:
  first run     every due action written once (claim -> write -> complete), with the number
                of SQLite write transactions and fsyncs-per-commit mode
  no-change run the day's incremental run with nothing new (target <= 0.3 s at 10,000):
                the first one after the catch-up run (it marks the invoices that run wrote
                for), then the best of --repeat through the quiet index and, in the same
                process on the same file, without it (every open invoice read and planned,
                the path before the index), and a no-change run with the daily full fetch
  next day      the following day's run (new stages due), through the index
  profile       where the no-change run's time goes (top functions, cumulative)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ar_sync.domain.models import ActionKind, FeeMode, Invoice, Money
from ar_sync.rules.policy import load_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection, FetchResult
from ar_sync.sync.run import run_tenant
from ar_sync.sync.store import Snapshot

sys.path.insert(0, str(Path(__file__).parent))
from bench_plan import synthetic_invoices

TODAY = date(2026, 12, 1)
TENANT = "bench"


class MemoryConnector:
    """The platform in memory: a full fetch returns the book, an incremental one nothing."""

    platform = "quickbooks"

    def __init__(self, invoices: list[Invoice]) -> None:
        self.invoices = {i.id: i for i in invoices}
        self.writes = 0

    def fetch_open_invoices(self, since: datetime | None = None) -> FetchResult:
        found = list(self.invoices.values()) if since is None else []
        return FetchResult(invoices=found, checkpoint=datetime(2026, 12, 1, tzinfo=UTC),
                           full=since is None)

    def get_invoice(self, invoice_id: str) -> Invoice | None:
        return self.invoices.get(invoice_id)

    def _write(self) -> str:
        self.writes += 1
        return f"ref-{self.writes}"

    def add_note(self, invoice: Invoice, text: str, *, key: str) -> str:
        return self._write()

    def add_late_fee(self, invoice: Invoice, fee: Money, label: str, *, key: str,
                     mode: FeeMode, **_: Any) -> str:
        return self._write()

    def send_reminder(self, invoice: Invoice, *, key: str, to: str | None = None) -> str:
        return self._write()

    def waive_fee(self, *args: Any, **kwargs: Any) -> str:
        return self._write()

    def find_effect(self, invoice: Invoice, kind: ActionKind, key: str,
                    **_: Any) -> str | None:
        return None


class CountingStore(SQLiteStore):
    """The store, noting how many invoices the last run read and how many it left out."""

    read = quiet = 0

    def active_invoices(self, connection_id: str, *, on: date, stamp: str) -> Snapshot:
        got = super().active_invoices(connection_id, on=on, stamp=stamp)
        self.read, self.quiet = len(got.invoices), got.quiet
        return got


class NoIndexStore(SQLiteStore):
    """The same file without the quiet index: every open invoice read and planned."""

    def active_invoices(self, connection_id: str, *, on: date, stamp: str) -> Snapshot:
        return Snapshot(self.open_invoices(connection_id))

    def save_quiet(self, connection_id: str, until: Any, *, since: date, stamp: str,
                   versions: Any) -> int:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print the no-change profile")
    args = parser.parse_args()
    policy = load_policy("default")
    book = [i.model_copy(update={"tenant": f"quickbooks:{TENANT}"})
            for i in synthetic_invoices(args.invoices, "typical")]
    connector = MemoryConnector(book)
    with tempfile.TemporaryDirectory() as folder:
        store = CountingStore(Path(folder) / "ar.db")
        plain = NoIndexStore(Path(folder) / "ar.db")
        connection = Connection(id=f"quickbooks:{TENANT}", platform="quickbooks",
                                external_id=TENANT, name="Bench Ltd", rules="default")
        store.save_connection(connection)
        sync_mode = store._db.execute("PRAGMA synchronous").fetchone()[0]
        day = datetime(2026, 12, 1, 14, tzinfo=UTC)

        def run(when: datetime, on: SQLiteStore = store, **kw: Any) -> Any:
            return run_tenant(on, connection.id, today=when.date(), policy=policy,
                              connector=connector, clock=lambda: when, **kw)

        def best_of(when: datetime, on: SQLiteStore, **kw: Any) -> tuple[float, float]:
            best = best_cpu = float("inf")
            for _ in range(args.repeat):
                start, start_cpu = time.perf_counter(), time.process_time()
                report = run(when, on, **kw)
                best = min(best, time.perf_counter() - start)
                best_cpu = min(best_cpu, time.process_time() - start_cpu)
                assert report.done == 0 and report.planned == 0, report.planned
            return best, best_cpu

        commits = [0]

        def trace(statement: str) -> None:
            commits[0] += statement == "COMMIT"

        store._db.set_trace_callback(trace)
        begin = commits[0]
        start, start_cpu = time.perf_counter(), time.process_time()
        first = run(day - timedelta(days=1), full=True)
        took, took_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        store._db.set_trace_callback(None)
        print(f"{args.invoices:,} invoices, rules/default.yaml, SQLite synchronous="
              f"{['OFF', 'NORMAL', 'FULL', 'EXTRA'][sync_mode]} (WAL)")
        print(f"first run      {took:7.3f} s wall, {took_cpu:.3f} s CPU: {first.done:,} "
              f"written, {first.skipped:,} skipped, {commits[0] - begin:,} write transactions")
        # the next day's run catches up one day of new actions; the ones after have none new
        catch_up = run(day, full=False)
        start, start_cpu = time.perf_counter(), time.process_time()
        run(day, full=False)
        took, took_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        print(f"catch-up run   {catch_up.done:,} written; the no-change run after it: "
              f"{took:.3f} s wall, {took_cpu:.3f} s CPU (reads {store.read:,} invoices and "
              "marks the quiet ones)")
        target = 0.3 * args.invoices / 10_000
        indexed, indexed_cpu = best_of(day, store, full=False)
        verdict = "ok" if indexed_cpu <= target else "OVER TARGET"
        print(f"no-change run  {indexed:7.3f} s wall, {indexed_cpu:.3f} s CPU, best of "
              f"{args.repeat}: {store.read:,} invoices read, {store.quiet:,} left out as quiet "
              f"(target <= 0.3 s per 10,000 invoices: {verdict}; CPU time is the figure on a "
              "shared machine)")
        old, old_cpu = best_of(day, plain, full=False)
        print(f"  without the index {old:7.3f} s wall, {old_cpu:.3f} s CPU: the index is "
              f"{old_cpu / indexed_cpu:,.0f}x cheaper in CPU")
        full_wall, full_cpu = best_of(day + timedelta(hours=1), store, full=True)
        print(f"  with the daily full fetch {full_wall:7.3f} s wall, {full_cpu:.3f} s CPU "
              "(10,000 unchanged invoices compared, none rewritten)")
        start, start_cpu = time.perf_counter(), time.process_time()
        following = run(day + timedelta(days=1), full=False)
        took, took_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        print(f"next day       {took:7.3f} s wall, {took_cpu:.3f} s CPU: {following.done:,} "
              f"written, {following.skipped:,} skipped; {store.read:,} invoices read, "
              f"{store.quiet:,} left out")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run(day + timedelta(days=1), full=False)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(18)
            print(out.getvalue())
        plain.close()
        store.close()


if __name__ == "__main__":
    main()
