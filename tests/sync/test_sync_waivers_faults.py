"""A waiver is applied once under crashes, races and platform faults (issue 12).

Each schedule: a small company on an emulator (key replay `email-only`, so a credit note
written twice would show twice), one clean run that charges fees, waivers queued for some of
them as `ar-sync fee waive` does, then rounds of runners — some racing, half without the
lock — that crash before or after any platform write, including between a waiver's credit
note and its application, while the emulator fails, throttles and drops answers. A final clean
run, then the verdict from the emulator's own state: every waiver's credit note exists once and
is applied once to its invoice, nothing else was written twice, and the ledger agrees.
AR_SYNC_WAIVER_SCHEDULES sets the number of schedules per platform (default 6; the slow
variant: AR_SYNC_WAIVER_SCHEDULES=60 pytest -m slow tests/sync/test_sync_waivers_faults.py).
"""

from __future__ import annotations

import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from ar_sync.domain.models import ActionKind, ApplyLateFee, EntryState
from ar_sync.rules.policy import parse_policy
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import run_tenant
from ar_sync.sync.waivers import waiver_for

from .emulators import EmulatorAdapter, small_company
from .fakes import SimulatedCrash
from .rounds import Clock, ScheduleTally, run_round

CIPHER = TokenCipher(TokenCipher.generate_key())
POLICY = parse_policy("""
calendar: {send_on: any_day}
journey: {fee_notice: agreed}
reminders:
  - {name: overdue, days: 7}
late_fees:
  - {name: late, kind: fixed, amount: {USD: 20, GBP: 20, EUR: 20, JPY: 2000, BHD: 8},
     every: once, backfill: all}
""", "waiver-faults.yaml")


@dataclass
class Tally(ScheduleTally):
    waivers: int = 0

    def line(self) -> str:
        return (f"schedules={self.schedules} runs={self.runs} crashes={self.crashes} "
                f"waivers={self.waivers} duplicates={self.duplicates} lost={self.lost}")


class Crasher:
    """Kills the runner (SimulatedCrash) before or after its Nth platform write call."""

    def __init__(self, connector: Any, *, at: int | None, after: bool) -> None:
        self.at, self.after, self.writes = at, after, 0
        self._lock = threading.Lock()
        if hasattr(connector, "client"):  # QuickBooks: every write goes through these
            for name in ("create_object", "update_object", "post"):
                setattr(connector.client, name, self._wrap(getattr(connector.client, name)))
        else:  # Xero: writes are the Caller's write=True calls
            call = connector.caller.call

            def xero_call(endpoint: str, fn: Callable[[], Any], *, write: bool = False) -> Any:
                if not write:
                    return call(endpoint, fn)
                return self._wrap(lambda: call(endpoint, fn, write=True))()

            connector.caller.call = xero_call

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.writes += 1
                crash = self.writes == self.at
            if crash and not self.after:
                raise SimulatedCrash
            result = fn(*args, **kwargs)
            if crash:
                raise SimulatedCrash
            return result
        return wrapped


@pytest.fixture(params=["quickbooks", "xero"])
def adapter(request: pytest.FixtureRequest) -> Iterator[EmulatorAdapter]:
    a = EmulatorAdapter(request.param)
    yield a
    a.close()


def _schedule(seed: int, adapter: EmulatorAdapter, workdir: Path, tally: Tally) -> None:
    rng = random.Random(seed)
    adapter.reset(small_company(rng))
    connection = adapter.connection
    assert connection is not None
    db = workdir / f"w-{seed}.db"
    store = SQLiteStore(db, cipher=CIPHER)
    store.save_connection(connection)
    clock = Clock(datetime.now(UTC))

    run_tenant(store, connection.id, clock=clock, policy=POLICY,
               connector=adapter.connector(connection, rng, faulty=False))
    fees = [e for es in store.history(connection.id).values() for e in es
            if e.kind == ActionKind.LATE_FEE and e.state == EntryState.DONE]
    chosen = rng.sample(fees, k=min(len(fees), rng.randint(1, 2)))
    waivers = []
    for fee in chosen:
        payload = store.action_payload(fee.key)
        assert isinstance(payload, ApplyLateFee)
        w = waiver_for(fee, payload, payload.amount.currency, payload.invoice_number,
                       "goodwill", date.today())
        assert store.queue_action(w, reason="goodwill", now=clock())
        waivers.append(w)
    store.close()
    before = Counter(e.key for e in adapter.emu.effects() if e.key)

    for _ in range(rng.randint(1, 4)):
        threads = []
        for _r in range(rng.choice([1, 1, 2, 3])):
            inner = adapter.connector(connection, random.Random(rng.random()), faulty=True)
            Crasher(inner, at=rng.choice([None, rng.randint(1, 4), rng.randint(1, 4)]),
                    after=rng.random() < 0.5)
            use_lock = rng.random() < 0.5

            def work(conn: Any = inner, use_lock: bool = use_lock) -> None:
                s = SQLiteStore(db, cipher=CIPHER)
                try:
                    run_tenant(s, connection.id, clock=clock, policy=POLICY, connector=conn,
                               use_lock=use_lock, lease_seconds=60)
                except SimulatedCrash:
                    tally.crashes += 1
                finally:
                    s.close()

            threads.append(threading.Thread(target=work))
            tally.runs += 1
        run_round(threads)
        clock.advance(rng.choice([5, 61, 120]))  # crashed runners' leases run out, or not
    clock.advance(61)
    adapter.emu.faults.clear()
    final = SQLiteStore(db, cipher=CIPHER)
    run_tenant(final, connection.id, clock=clock, policy=POLICY,
               connector=adapter.connector(connection, rng, faulty=False))
    effects = adapter.emu.effects()
    credited = Counter(e.key for e in effects if e.kind == "waive_fee")
    applied = Counter((e.key, e.invoice_id) for e in effects if e.kind == "waive_applied")
    others = Counter(e.key for e in effects if e.key and not e.kind.startswith("waive"))
    rows = {w.key: final.get(w.key) for w in waivers}
    final.close()

    tally.schedules += 1
    tally.waivers += len(waivers)
    dup = sum(n - 1 for n in credited.values() if n > 1) + sum(
        n - 1 for n in applied.values() if n > 1) + sum(
        n - 1 for k, n in others.items() if n > max(1, before.get(k, 0)))
    lost = sum(1 for w in waivers if credited[w.key] != 1 or applied[(w.key, w.invoice_id)] != 1
               or rows[w.key] is None or rows[w.key].state != EntryState.DONE)  # type: ignore[union-attr]
    tally.duplicates += dup
    tally.lost += lost
    if dup or lost:
        states = [r.state if r else None for r in rows.values()]
        tally.failures.append(f"seed {seed}: duplicates={dup} lost={lost} credited={credited} "
                              f"applied={applied} rows={states}")


def _suite(adapter: EmulatorAdapter, tmp_path: Path, count: int,
           capsys: pytest.CaptureFixture[str]) -> None:
    tally = Tally()
    for seed in range(count):
        _schedule(seed, adapter, tmp_path, tally)
    with capsys.disabled():
        print(f"\n[waiver faults {adapter.platform}] {tally.line()}")
    assert tally.waivers > 0 and tally.crashes > 0
    assert not tally.failures, "\n".join(tally.failures[:5])


def test_waivers_apply_once_under_crashes(adapter: EmulatorAdapter, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _suite(adapter, tmp_path, int(os.environ.get("AR_SYNC_WAIVER_SCHEDULES", "6")), capsys)


@pytest.mark.slow
def test_waivers_apply_once_under_crashes_long(adapter: EmulatorAdapter, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _suite(adapter, tmp_path, int(os.environ.get("AR_SYNC_WAIVER_SCHEDULES", "60")), capsys)
