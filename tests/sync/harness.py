"""Fault-injection harness: random, seeded schedules of crashing, stalling and racing runners.

A *platform* adapter gives fresh platform state, connectors with platform-level faults, and
the platform's own count of effects per ar-sync key. The harness adds process crashes at
random write attempts (before the call, or after the platform applied it but before the ledger
recorded it), runners that stall at a write while another runner works (with or without their
lease running out meanwhile), 1–3 runners at once with or without the tenant lock, over one
day or several (so an action claimed by a crashed run can be superseded in the plan: a
leftover), then a final clean run. The verdict comes from the platform's state:
- duplicates: a key present more than once on the platform;
- lost: an action some runner claimed, or the final plan holds, that is not on the platform
  and not closed in the ledger (failed for good or skipped); any row still unfinished;
- mismatch: the ledger's `done` rows and the platform's effects differ;
- for one-day schedules, the platform must hold exactly what a clean run writes.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

from ar_sync.domain.errors import PlatformValidationError, TransientError
from ar_sync.domain.models import Action, EntryState, Invoice
from ar_sync.rules.policy import Policy
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import BatchItemResult, BatchWrite, BatchWriter, Connection, Connector
from ar_sync.sync.ledger import Claim
from ar_sync.sync.run import run_tenant

from .fakes import SimulatedCrash
from .rounds import Clock, ScheduleTally, run_round

CIPHER = TokenCipher(TokenCipher.generate_key())
LEASE = 60.0  # seconds, on the schedule's clock
START = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)


class Platform(Protocol):
    def reset(self, company: Any) -> None: ...

    def connector(self, connection: Connection, rng: random.Random, *, faulty: bool) -> Connector:
        ...

    def effects(self) -> Counter[str]: ...


@dataclass
class Stall:
    """A runner pauses at its first write of `kind` from the `at`-th on, while the harness
    lets another runner work."""

    at: int
    after_write: bool  # the platform applied the write before the pause
    expire: bool  # the harness lets the stalled runner's lease run out meanwhile
    outcome: str  # after the pause: "ok" | "lost" (answer lost) | "refused" (400, not applied)
    kind: str = "note"  # "note" | "fee" | "email"
    used: bool = False
    reached: threading.Event = field(default_factory=threading.Event)
    resume: threading.Event = field(default_factory=threading.Event)

    def pause(self) -> None:
        self.reached.set()
        self.resume.wait(60)

    @classmethod
    def random(cls, rng: random.Random, *, forgets_keys: bool = False) -> Stall:
        at, kind = rng.randint(1, 3), rng.choice(["note", "note", "fee", "email"])
        if rng.random() < 0.5:  # paused before the call: a live lease, or an expired one and
            # the write refused (a write still in flight after its lease is the one case the
            # protocol cannot cover: leases must outlast a write, see the README)
            expire = rng.random() < 0.5
            if forgets_keys and kind == "email":
                # an e-mail is never refused, and a platform that forgets keys cannot turn
                # the stalled runner's late send away: that is the in-flight case itself
                expire = False
            return cls(at, False, expire,
                       "refused" if expire or rng.random() < 0.3 else "ok", kind)
        return cls(at, True, rng.random() < 0.7, rng.choice(["ok", "lost"]), kind)

    def hits(self, n: int, kind: str) -> bool:
        if self.used or n < self.at or kind != self.kind:
            return False
        self.used = True
        return True


class CrashingConnector:
    """Wraps a connector; the process 'dies' (or stalls) at the chosen write attempt."""

    def __init__(self, inner: Connector, *, before: int | None, after: int | None,
                 stall: Stall | None = None, only: str | None = None) -> None:
        self._inner = inner
        self._before, self._after, self._stall = before, after, stall
        self._only = only  # count only this kind of write ("email"): crash at its n-th
        self._writes = 0
        self._of_kind: Counter[str] = Counter()
        self.platform = inner.platform
        self.connection = inner.connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _wrap(self, call: Callable[[], Any], kind: str) -> Any:
        self._writes += 1
        self._of_kind[kind] += 1
        n, email = self._writes, kind == "email"
        if self._only is not None:  # the n-th write of that kind, or none at all
            n = self._of_kind[kind] if kind == self._only else 0
        stall = self._stall if self._stall is not None and self._stall.hits(n, kind) else None
        if self._before == n:
            raise SimulatedCrash("crash before the platform call")
        if stall is not None and not stall.after_write:
            stall.pause()
            # (an e-mail is not refused: its key may have been sent before, and the platform
            # would replay that answer rather than refuse)
            if stall.outcome == "refused" and not email:
                raise PlatformValidationError("refused: the invoice changed while we waited")
        ref = call()
        if stall is not None and stall.after_write:
            stall.pause()
            if stall.outcome == "lost":
                raise TransientError("answer lost while the runner was stalled")
        if self._after == n:
            raise SimulatedCrash(f"crash after the platform applied the write ({kind})")
        return ref

    def add_note(self, invoice, text, *, key):  # type: ignore[no-untyped-def]
        return self._wrap(lambda: self._inner.add_note(invoice, text, key=key), "note")

    def add_late_fee(self, invoice, fee, label, *, key, mode, **kw):  # type: ignore[no-untyped-def]
        return self._wrap(lambda: self._inner.add_late_fee(invoice, fee, label, key=key,
                                                           mode=mode, **kw), "fee")

    def send_reminder(self, invoice, *, key, to=None):  # type: ignore[no-untyped-def]
        return self._wrap(lambda: self._inner.send_reminder(invoice, key=key, to=to), "email")

    def write_batch(self, writes):  # type: ignore[no-untyped-def]
        """A batch is as many write attempts as it holds writes. A crash due before its first
        one dies before the call; one due at a later one dies *inside* it (the writes before
        it applied, in a call of their own, the rest not); one due after dies once the
        platform applied all of it, before the ledger recorded anything. (Only reached when
        the inner connector is a BatchWriter: `max_batch` comes from it.)"""
        if self._only is not None:  # crashes counted at another kind of write only
            self._writes += len(writes)
            return self._inner.write_batch(writes)
        first = self._writes + 1
        self._writes += len(writes)
        span = range(first, self._writes + 1)
        if self._before in span:
            if self._before > first:
                self._inner.write_batch(writes[: self._before - first])
                raise SimulatedCrash("batch inside: crash inside the batch call")
            raise SimulatedCrash("batch before: crash before the batch call")
        results = self._inner.write_batch(writes)
        if self._after in span:
            raise SimulatedCrash("batch after: crash after the platform applied the batch")
        return results


class CrashingBatchConnector(CrashingConnector):
    """The same for the random schedules, for a connector with the BatchWriter capability
    (run_one_crash uses CrashingConnector.write_batch, which counts one attempt per write
    instead): a batch call is one write attempt, stalled at (kind "fee"), crashed before it,
    "inside" it (the platform applied the whole batch and the answer is lost: the connector
    raises TransientError, the run goes on) or after it (the platform applied it and the
    process dies before the ledger records anything); or one item of it refused by the
    platform (not applied: it must end failed, never done)."""

    def __init__(self, inner: Connector, *, before: int | None, after: int | None,
                 inside: int | None = None, refuse: int | None = None,
                 stall: Stall | None = None) -> None:
        super().__init__(inner, before=before, after=after, stall=stall)
        self._inside = inside
        self._refuse = refuse  # this batch's first item is refused (400, not applied)
        self.max_batch = cast(BatchWriter, inner).max_batch

    def can_batch(self, action: Action) -> bool:
        return cast(BatchWriter, self._inner).can_batch(action)

    def get_invoices(self, invoice_ids: Sequence[str]) -> dict[str, Invoice | None]:
        return cast(BatchWriter, self._inner).get_invoices(invoice_ids)

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchItemResult]:
        inner = cast(BatchWriter, self._inner)

        def call() -> list[BatchItemResult]:
            if self._refuse == self._writes and writes:
                refused = BatchItemResult(writes[0].action.key, error=PlatformValidationError(
                    "refused: the invoice changed while we waited"))
                return [refused, *inner.write_batch(writes[1:])] if writes[1:] else [refused]
            results = inner.write_batch(writes)
            if self._inside == self._writes:
                raise TransientError("answer to the batch lost after the platform applied it")
            return results

        try:
            got: list[BatchItemResult] = self._wrap(call, "fee")
        except SimulatedCrash as crash:  # counted apart in the tally (Tally.count)
            where = "before" if "before" in str(crash) else "after"
            raise SimulatedCrash(f"batch {where}: {crash}") from None
        return got


class WatchedStore(SQLiteStore):
    """The real SQLite store, noting every key a runner claimed (what it meant to write)."""

    claimed: set[str]

    def claim(self, action: Action, *, owner: str, now: datetime, lease_seconds: float,
              rules_version: int | None = None) -> Claim:
        got = super().claim(action, owner=owner, now=now, lease_seconds=lease_seconds,
                            rules_version=rules_version)
        if got.ours:
            self.claimed.add(action.key)
        return got


@dataclass
class Tally(ScheduleTally):
    days: int = 0
    batch_crashes: Counter[str] = field(default_factory=Counter)  # before / inside / after
    stalls: int = 0
    concurrent_rounds: int = 0
    unlocked_runs: int = 0
    actions_expected: int = 0
    extra: int = 0
    mismatch: int = 0
    sent_then_crashed: int = 0  # crashes right after a platform e-mail went out

    def line(self) -> str:
        return (f"schedules={self.schedules} days={self.days} runs={self.runs} "
                f"crashes={self.crashes} (batch {self._batch()}; right after an e-mail "
                f"{self.sent_then_crashed}) "
                f"stalls={self.stalls} "
                f"concurrent_rounds={self.concurrent_rounds} unlocked_runs={self.unlocked_runs} "
                f"actions_expected={self.actions_expected} duplicates={self.duplicates} "
                f"lost={self.lost} extra={self.extra} mismatch={self.mismatch}")


    def _batch(self) -> str:
        return "/".join(f"{k}={self.batch_crashes[k]}" for k in ("before", "inside", "after"))

    def count(self, crash: SimulatedCrash) -> None:
        self.crashes += 1
        self.sent_then_crashed += "after" in str(crash) and "(email)" in str(crash)
        words = str(crash).split(":")[0].split()
        if words[0] == "batch":
            self.batch_crashes[words[1]] += 1


def _store(path: Path, claimed: set[str] | None = None) -> WatchedStore:
    store = WatchedStore(path, cipher=CIPHER)
    store.claimed = claimed if claimed is not None else set()
    return store


def schedule_clock(platform: Platform, start: datetime = START) -> Clock:
    """The schedule's clock: the platform's own when it keeps one (the emulators do, as a
    platform shares the runners' time), set to `start`."""
    shared = getattr(platform, "clock", None)
    clock = shared if isinstance(shared, Clock) else Clock(start)
    clock.set(start)
    return clock


def _clean_effects(platform: Platform, invoices: Any, connection: Connection,
                   policy: Policy, now: datetime, db: Path) -> set[str]:
    """For one-day schedules: the same company, one clean run, no faults."""
    platform.reset(invoices)
    store = _store(db)
    store.save_connection(connection)
    run_tenant(store, connection.id, now=now, clock=schedule_clock(platform, now),
               policy=policy,
               connector=platform.connector(connection, random.Random(0), faulty=False))
    store.close()
    _learn(platform, store.claimed)
    return set(platform.effects())


def _learn(platform: Platform, keys: set[str]) -> None:
    """Batched fees carry one Idempotency-Key per call: the emulator resolves their short
    references through the keys runners claimed (a fee nobody claimed stays unresolved and
    counts as extra)."""
    learn = getattr(platform, "learn_keys", None)
    if learn is not None:
        learn(keys)


def run_schedule(seed: int, platform: Platform, make_invoices: Callable[[random.Random], Any],
                 policy: Policy, workdir: Path, tally: Tally,
                 connection: Connection, *, multi_day: float = 0.4) -> None:
    """One random schedule; `multi_day` is the chance it spans several days."""
    rng = random.Random(seed)
    invoices = make_invoices(rng)
    days = [0]
    if rng.random() < multi_day:
        days += sorted(rng.sample(range(3, 40), rng.randint(1, 2)))
    expected_clean = (_clean_effects(platform, invoices, connection, policy, START,
                                     workdir / f"oracle-{seed}.db") if len(days) == 1 else None)

    platform.reset(invoices)
    db = workdir / f"run-{seed}.db"
    claimed: set[str] = set()
    setup = _store(db, claimed)
    setup.save_connection(connection)
    setup.close()
    clock = schedule_clock(platform)

    def runner(conn: Connector, use_lock: bool) -> threading.Thread:
        def work() -> None:
            store = _store(db, claimed)
            try:
                run_tenant(store, connection.id, clock=clock, policy=policy, connector=conn,
                           use_lock=use_lock, lease_seconds=LEASE)
            except SimulatedCrash as crash:
                tally.count(crash)
            except BaseException as exc:  # a runner must never die of anything else
                tally.failures.append(f"seed {seed}: a runner raised {exc!r}")
            finally:
                store.close()
        tally.runs += 1
        tally.unlocked_runs += not use_lock
        return threading.Thread(target=work)

    def faulty(*, crash: bool = True, stall: Stall | None = None) -> CrashingConnector:
        inner = platform.connector(connection, random.Random(rng.random()), faulty=True)
        before = rng.choice([None, None, rng.randint(1, 8)]) if crash else None
        after = rng.choice([None, None, rng.randint(1, 8)]) if crash else None
        if isinstance(inner, BatchWriter):  # (other platforms keep their seeds' schedules)
            inside = rng.choice([None, None, rng.randint(1, 8)]) if crash else None
            refuse = rng.choice([None, rng.randint(1, 4)])
            return CrashingBatchConnector(inner, before=before, after=after, inside=inside,
                                          refuse=refuse, stall=stall)
        return CrashingConnector(inner, before=before, after=after, stall=stall)

    for n, offset in enumerate(days):
        if n:
            clock.advance((offset - days[n - 1]) * 86400.0)
        tally.days += 1
        for r in range(rng.randint(1, 4)):
            if rng.random() < (0.4 if r == 0 else 0.15):  # early in the day: writes to do
                _stall_round(rng, clock, runner, faulty, tally,
                             forgets_keys=str(getattr(platform, "replay", "")) == "off")
            else:
                count = rng.choice([1, 1, 2, 3])
                tally.concurrent_rounds += count > 1
                run_round([runner(faulty(), rng.random() < 0.5) for _ in range(count)])
            # the next round starts after crashed runners' leases ran out, or not
            clock.advance(rng.choice([5, LEASE + 1, 120]))

    clock.advance(LEASE + 1)
    final = _store(db, claimed)
    run_tenant(final, connection.id, clock=clock, policy=policy, lease_seconds=LEASE,
               connector=platform.connector(connection, random.Random(1), faulty=False))
    _verdict(seed, platform, final, connection, claimed, expected_clean, tally)
    final.close()


def run_one_crash(seed: int, platform: Platform, invoices: Any, policy: Policy, workdir: Path,
                  tally: Tally, connection: Connection, *, before: int | None = None,
                  after: int | None = None, only: str | None = None) -> None:
    """One runner that dies at write attempt `before` (or right after `after`) with the
    platform's own faults on, then a clean run; judged like a schedule, against a clean run."""
    expected_clean = _clean_effects(platform, invoices, connection, policy, START,
                                    workdir / f"oracle-{seed}.db")
    platform.reset(invoices)
    db = workdir / f"crash-{seed}.db"
    claimed: set[str] = set()
    store = _store(db, claimed)
    store.save_connection(connection)
    clock = schedule_clock(platform)
    inner = platform.connector(connection, random.Random(seed), faulty=True)
    tally.runs += 1
    try:
        run_tenant(store, connection.id, clock=clock, policy=policy, lease_seconds=LEASE,
                   connector=CrashingConnector(inner, before=before, after=after, only=only))
    except SimulatedCrash as crash:
        tally.count(crash)
    finally:
        store.close()
    clock.advance(LEASE + 1)
    final = _store(db, claimed)
    tally.runs += 1
    run_tenant(final, connection.id, clock=clock, policy=policy, lease_seconds=LEASE,
               connector=platform.connector(connection, random.Random(1), faulty=False))
    _verdict(seed, platform, final, connection, claimed, expected_clean, tally)
    final.close()


def _stall_round(rng: random.Random, clock: Clock,
                 runner: Callable[[Connector, bool], threading.Thread],
                 faulty: Callable[..., CrashingConnector], tally: Tally, *,
                 forgets_keys: bool = False) -> None:
    """Runner A pauses at a write; B runs meanwhile (after A's lease ran out, or not)."""
    stall = Stall.random(rng, forgets_keys=forgets_keys)
    first = runner(faulty(crash=False, stall=stall), rng.random() < 0.5)
    first.start()
    while first.is_alive() and not stall.reached.wait(0.01):
        pass
    if stall.reached.is_set():
        tally.stalls += 1
        if stall.expire:
            clock.advance(LEASE + 1)
        second = runner(faulty(crash=rng.random() < 0.3), False)
        second.start()
        second.join()
    stall.resume.set()
    first.join()


def _verdict(seed: int, platform: Platform, final: SQLiteStore, connection: Connection,
             claimed: set[str], expected_clean: set[str] | None, tally: Tally) -> None:
    _learn(platform, claimed)
    effects = platform.effects()
    rows = [e for entries in final.history(connection.id).values() for e in entries]
    done = {e.key for e in rows if e.state == EntryState.DONE}
    closed = {e.key for e in rows if e.state in (EntryState.FAILED, EntryState.SKIPPED)}
    unfinished = {e.key for e in rows if e.state in (EntryState.CLAIMED, EntryState.RETRY)}
    on_platform = set(effects)
    expected = (claimed | done) - closed
    tally.schedules += 1
    tally.actions_expected += len(expected)
    dup = sum(n - 1 for n in effects.values() if n > 1)
    lost = len(expected - on_platform) + len(unfinished - (expected - on_platform))
    extra = len(on_platform - claimed)  # written without anybody holding its claim
    mismatch = len(done ^ on_platform)
    if expected_clean is not None:
        # (a write the harness made the platform refuse is closed as failed, rightly)
        lost += len(expected_clean - on_platform - closed - (expected - on_platform))
        extra += len(on_platform - expected_clean - (on_platform - claimed))
    tally.duplicates += dup
    tally.lost += lost
    tally.extra += extra
    tally.mismatch += mismatch
    if dup or lost or extra or mismatch:
        tally.failures.append(
            f"seed {seed}: duplicates={dup} lost={lost} extra={extra} mismatch={mismatch} "
            f"e.g. {sorted(done ^ on_platform)[:2]}")


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A throw-away folder for the schedules' SQLite files, in memory (tmpfs) when the machine
    has one: the suites commit thousands of small transactions."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="ar-sync-faults-",
                                     dir=shm if shm.is_dir() else None) as name:
        yield Path(name)
