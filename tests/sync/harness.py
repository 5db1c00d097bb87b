"""Fault-injection harness: random, seeded schedules of crashing, racing, throttled runners.

A *platform* adapter gives fresh platform state, connectors with platform-level faults, and
the platform's own count of effects per ar-sync key. The harness adds process crashes at
random write attempts (before the call, or after the platform applied it but before the ledger
recorded it), runs 1–3 runners at once with or without the tenant lock, then a final clean run,
and checks from the platform's state: every planned action applied exactly once.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from ar_sync.connector import Connection, Connector
from ar_sync.crypto import TokenCipher
from ar_sync.models import EntryState
from ar_sync.policy import Policy
from ar_sync.store.sqlite import SQLiteStore
from ar_sync.sync import run_tenant

from .fakes import SimulatedCrash

CIPHER = TokenCipher(TokenCipher.generate_key())


class Platform(Protocol):
    def reset(self, company: Any) -> None: ...

    def connector(self, connection: Connection, rng: random.Random, *, faulty: bool) -> Connector:
        ...

    def effects(self) -> Counter[str]: ...


class CrashingConnector:
    """Wraps a connector; the process 'dies' at the chosen write attempt."""

    def __init__(self, inner: Connector, *, before: int | None, after: int | None) -> None:
        self._inner = inner
        self._before, self._after = before, after
        self._writes = 0
        self.platform = inner.platform
        self.connection = inner.connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _wrap(self, call: Callable[[], str]) -> str:
        self._writes += 1
        if self._before == self._writes:
            raise SimulatedCrash("crash before the platform call")
        ref = call()
        if self._after == self._writes:
            raise SimulatedCrash("crash after the platform applied the write")
        return ref

    def add_note(self, invoice, text, *, key):  # type: ignore[no-untyped-def]
        return self._wrap(lambda: self._inner.add_note(invoice, text, key=key))

    def add_late_fee(self, invoice, fee, label, *, key, mode,  # type: ignore[no-untyped-def]
                     tax=None):
        return self._wrap(lambda: self._inner.add_late_fee(invoice, fee, label, key=key,
                                                           mode=mode, tax=tax))

    def send_reminder(self, invoice, *, key, to=None):  # type: ignore[no-untyped-def]
        return self._wrap(lambda: self._inner.send_reminder(invoice, key=key, to=to))


@dataclass
class Tally:
    schedules: int = 0
    runs: int = 0
    crashes: int = 0
    concurrent_rounds: int = 0
    unlocked_runs: int = 0
    actions_expected: int = 0
    duplicates: int = 0
    lost: int = 0
    extra: int = 0
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"schedules={self.schedules} runs={self.runs} crashes={self.crashes} "
                f"concurrent_rounds={self.concurrent_rounds} unlocked_runs={self.unlocked_runs} "
                f"actions_expected={self.actions_expected} duplicates={self.duplicates} "
                f"lost={self.lost} extra={self.extra}")


def _store(path: Path) -> SQLiteStore:
    return SQLiteStore(path, cipher=CIPHER)


def _clean_effects(platform: Platform, invoices: Any, connection: Connection,
                   policy: Policy, now: datetime, db: Path) -> set[str]:
    """The oracle: the same company, one clean run, no faults."""
    platform.reset(invoices)
    store = _store(db)
    store.save_connection(connection)
    run_tenant(store, connection.id, now=now, policy=policy,
               connector=platform.connector(connection, random.Random(0), faulty=False))
    store.close()
    return set(platform.effects())


def run_schedule(seed: int, platform: Platform, make_invoices: Callable[[random.Random], Any],
                 policy: Policy, workdir: Path, tally: Tally,
                 connection: Connection) -> None:
    rng = random.Random(seed)
    invoices = make_invoices(rng)
    now = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)
    expected = _clean_effects(platform, invoices, connection, policy, now,
                              workdir / f"oracle-{seed}.db")

    platform.reset(invoices)
    db = workdir / f"run-{seed}.db"
    setup = _store(db)
    setup.save_connection(connection)
    setup.close()
    clock_time = [now]
    clock_lock = threading.Lock()

    def clock() -> datetime:
        with clock_lock:
            return clock_time[0]

    rounds = rng.randint(1, 4)
    for _ in range(rounds):
        runners = rng.choice([1, 1, 2, 3])
        if runners > 1:
            tally.concurrent_rounds += 1
        threads = []
        for _r in range(runners):
            use_lock = rng.random() < 0.5
            if not use_lock:
                tally.unlocked_runs += 1
            crash_before = rng.choice([None, None, rng.randint(1, 8)])
            crash_after = rng.choice([None, None, rng.randint(1, 8)])
            inner = platform.connector(connection, random.Random(rng.random()), faulty=True)
            conn = CrashingConnector(inner, before=crash_before, after=crash_after)

            def work(conn: CrashingConnector = conn, use_lock: bool = use_lock) -> None:
                store = _store(db)
                try:
                    run_tenant(store, connection.id, now=now, clock=clock, policy=policy,
                               connector=conn, use_lock=use_lock, lease_seconds=60)
                except SimulatedCrash:
                    tally.crashes += 1
                finally:
                    store.close()

            threads.append(threading.Thread(target=work))
            tally.runs += 1
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with clock_lock:  # the next round starts after crashed runners' leases ran out
            clock_time[0] += timedelta(seconds=rng.choice([5, 61, 120]))

    with clock_lock:
        clock_time[0] += timedelta(seconds=61)
    final = _store(db)
    run_tenant(final, connection.id, now=now, clock=clock, policy=policy,
               connector=platform.connector(connection, random.Random(1), faulty=False))
    effects = platform.effects()
    done = {e.key for entries in final.history(connection.id).values() for e in entries
            if e.state == EntryState.DONE}
    unfinished = final.unfinished(connection.id)
    final.close()

    tally.schedules += 1
    tally.actions_expected += len(expected)
    dup = sum(n - 1 for n in effects.values() if n > 1)
    lost = len(expected - set(effects)) + len(unfinished)
    extra = len(set(effects) - expected)
    tally.duplicates += dup
    tally.lost += lost
    tally.extra += extra
    if dup or lost or extra or done != set(effects):
        tally.failures.append(
            f"seed {seed}: duplicates={dup} lost={lost} extra={extra} "
            f"ledger/platform mismatch={sorted(done ^ set(effects))[:3]}")
