"""Batched writes (split out of sync.py): which writes share a platform call, and how a chunk
of them goes through the ledger protocol.

`schedule` is pure: it turns the run's queue into steps, each one action or one chunk of at
most `max_batch` batchable actions on distinct invoices, keeping every invoice's actions in
their queue order (an action waits while an earlier action of its invoice sits in an unsent
chunk). `execute_batch` runs one chunk exactly as the single path runs one write, per item:
per-invoice line lock (fee lines) -> claim -> ONE fresh read of the chunk's invoices -> skip
deleted / closed ones -> ONE batch call -> complete or fail each item by its own result ->
release the locks. A claim left by a crashed runner (RECONCILE) goes through the single path,
which asks the platform for the write's key first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from ar_sync.domain.errors import (
    BudgetExhaustedError,
    ConnectorError,
    NotApplicableError,
    PlatformTimeoutError,
    PlatformValidationError,
    ReauthorizationRequiredError,
)
from ar_sync.domain.models import Action, AddNote, ApplyLateFee, Escalate, FeeMode
from ar_sync.sync.connector import BatchItemResult, BatchWrite, BatchWriter
from ar_sync.sync.ledger import Claim, ClaimOutcome, Ledger
from ar_sync.sync.run_report import ActionOutcome
from ar_sync.sync.run_report import outcome_of as _outcome

DELETED = "invoice deleted on the platform (or no longer readable)"
NOT_OPEN = "invoice paid or closed since planning"
INTERRUPTED = "interrupted"
BATCH_FAILED = "the batch call failed as a whole; reconciled by key next run"


@dataclass(frozen=True)
class Step:
    """One action through the single path, or a chunk of actions through one batch call."""

    actions: tuple[Action, ...]
    batch: bool = False


def batchable(connector: object, action: Action) -> bool:
    """Whether `action` may go into a batch with this connector (a BatchWriter saying so)."""
    return (isinstance(action, AddNote | ApplyLateFee | Escalate)
            and isinstance(connector, BatchWriter) and connector.can_batch(action))


def schedule(queue: Sequence[Action], can_batch: Callable[[Action], bool],
             max_batch: int) -> list[Step]:
    """The queue as steps (pure). Every action appears exactly once; a chunk holds at most
    `max_batch` actions, each batchable and on a distinct invoice; per invoice, the order of
    its actions is the queue's. A chunk is sent before any single write queued after all of
    its actions (fees, first in the queue, are not held back behind notes and e-mails)."""
    steps: list[Step] = []
    chunk: list[Action] = []
    waiting: dict[str, list[Action]] = {}  # invoice in the open chunk -> its later actions
    position = {id(a): n for n, a in enumerate(queue)}

    def flush() -> None:
        nonlocal chunk
        if not chunk:
            return
        steps.append(Step(tuple(chunk), batch=True))
        released = [a for c in chunk for a in waiting.pop(c.invoice_id, [])]
        chunk = []
        for action in sorted(released, key=lambda a: position[id(a)]):  # queue order
            place(action)

    def place(action: Action) -> None:
        if action.invoice_id in waiting:
            waiting[action.invoice_id].append(action)
        elif max_batch > 0 and can_batch(action):
            chunk.append(action)
            waiting[action.invoice_id] = []
            if len(chunk) >= max_batch:
                flush()
        else:
            while chunk:  # the queue's priority holds: chunks go before what came after
                flush()
            steps.append(Step((action,)))

    for action in queue:
        place(action)
    while chunk:
        flush()
    return steps


def line_lock(action: Action) -> str | None:
    """The per-invoice lock a fee line needs (a read-modify-write of the invoice's lines)."""
    if isinstance(action, ApplyLateFee) and action.mode == FeeMode.LINE:
        return f"invoice:{action.tenant}:{action.invoice_id}"
    return None


class _Store(Ledger, Protocol):
    def acquire_lock(self, name: str, *, owner: str, now: datetime,
                     ttl_seconds: float) -> bool: ...

    def release_lock(self, name: str, *, owner: str) -> None: ...


@dataclass
class _Chunk:
    """What one batch step holds while it runs (so an interrupt can release it all)."""

    locks: list[str] = field(default_factory=list)
    claimed: list[Action] = field(default_factory=list)  # ours, not yet completed or failed
    outcomes: dict[str, ActionOutcome] = field(default_factory=dict)


Reconcile = Callable[[Action, Claim], ActionOutcome]


def execute_batch(store: _Store, connector: BatchWriter, actions: Sequence[Action], *,
                  owner: str, clock: Callable[[], datetime], lease_seconds: float,
                  rules_version: int | None, reconcile: Reconcile) -> list[ActionOutcome]:
    """One chunk through the ledger protocol and one batch call; an outcome per action, in
    order. BudgetExhaustedError / ReauthorizationRequiredError / KeyboardInterrupt release
    every claim still ours (retry) and propagate, as on the single path."""
    run = _Chunk()
    try:
        for action in actions:
            _claim(store, action, run, owner=owner, clock=clock, lease_seconds=lease_seconds,
                   rules_version=rules_version, reconcile=reconcile)
        if run.claimed:
            _write(store, connector, run, owner=owner, clock=clock)
    except BudgetExhaustedError:
        _release(store, run, owner, clock, "budget used up")
        raise
    except ReauthorizationRequiredError:
        _release(store, run, owner, clock, "authorisation lost")
        raise
    except KeyboardInterrupt:
        _release(store, run, owner, clock, INTERRUPTED)
        raise
    finally:
        for lock in run.locks:
            store.release_lock(lock, owner=owner)
    return [run.outcomes[a.key] for a in actions]


def _claim(store: _Store, action: Action, run: _Chunk, *, owner: str,
           clock: Callable[[], datetime], lease_seconds: float, rules_version: int | None,
           reconcile: Reconcile) -> None:
    lock = line_lock(action)
    if lock is not None:
        if not store.acquire_lock(lock, owner=owner, now=clock(), ttl_seconds=lease_seconds):
            run.outcomes[action.key] = _outcome(
                action, "busy", "another runner is changing this invoice's lines")
            return
        run.locks.append(lock)
    claim = store.claim(action, owner=owner, now=clock(), lease_seconds=lease_seconds,
                        rules_version=rules_version)
    if claim.outcome == ClaimOutcome.FINISHED:
        run.outcomes[action.key] = _outcome(action, "skipped", "already recorded")
    elif claim.outcome == ClaimOutcome.BUSY:
        run.outcomes[action.key] = _outcome(action, "busy", "another runner holds it")
    elif claim.outcome == ClaimOutcome.RECONCILE:
        # an earlier attempt may have written: the single path asks the platform first
        run.outcomes[action.key] = reconcile(action, claim)
    else:
        run.claimed.append(action)


def _write(store: _Store, connector: BatchWriter, run: _Chunk, *, owner: str,
           clock: Callable[[], datetime]) -> None:
    try:
        fresh = connector.get_invoices([a.invoice_id for a in run.claimed])
    except (BudgetExhaustedError, ReauthorizationRequiredError):
        raise
    except ConnectorError as exc:  # nothing was written: retry next run
        _release(store, run, owner, clock, str(exc),
                 silent=isinstance(exc, PlatformTimeoutError))
        return
    writes: list[BatchWrite] = []
    for action in list(run.claimed):
        invoice = fresh.get(action.invoice_id)
        if invoice is None or not invoice.is_open:
            reason, detail = ((DELETED, DELETED) if invoice is None else
                              ("invoice no longer open", NOT_OPEN))
            store.record_skip(action, reason=reason, now=clock(), owner=owner)
            run.outcomes[action.key] = _outcome(action, "skipped", detail)
            run.claimed.remove(action)
            continue
        assert isinstance(action, AddNote | ApplyLateFee | Escalate)  # batchable() said so
        writes.append(BatchWrite(action, invoice))
    if not writes:
        return
    try:
        results = connector.write_batch(writes)
    except (BudgetExhaustedError, ReauthorizationRequiredError):
        raise
    except ConnectorError as exc:
        # The call as a whole failed: each write may or may not have happened; the rows stay
        # for reconciliation by key, exactly as for a single write whose answer was lost.
        _release(store, run, owner, clock, f"{BATCH_FAILED} ({exc})",
                 silent=isinstance(exc, PlatformTimeoutError))
        return
    by_key = {r.key: r for r in results}
    for write in writes:
        _settle(store, write.action, by_key.get(write.action.key), run, owner=owner,
                clock=clock)


def _settle(store: _Store, action: Action, result: BatchItemResult | None, run: _Chunk, *,
            owner: str, clock: Callable[[], datetime]) -> None:
    run.claimed.remove(action)
    if result is None:  # the connector said nothing about it: may have happened
        result = BatchItemResult(action.key, error=ConnectorError("no result for this write"))
    error = result.error
    if result.ref is not None and error is None:
        if store.complete(action.key, owner=owner, ref=result.ref, now=clock()):
            run.outcomes[action.key] = _outcome(action, "done", action.reason, result.ref)
        else:
            run.outcomes[action.key] = _outcome(
                action, "busy", "lease lost; the other runner reconciles", result.ref)
        return
    if isinstance(error, NotApplicableError):
        store.record_skip(action, reason=str(error), now=clock(), owner=owner)
        run.outcomes[action.key] = _outcome(action, "skipped", str(error))
    elif isinstance(error, PlatformValidationError):
        store.fail(action.key, owner=owner, reason=str(error), now=clock(), permanent=True)
        run.outcomes[action.key] = _outcome(action, "failed", str(error))
    else:
        why = str(error) if error is not None else "no reference returned"
        store.fail(action.key, owner=owner, reason=why, now=clock(), permanent=False)
        run.outcomes[action.key] = replace(_outcome(action, "retry", why),
                                           silent=isinstance(error, PlatformTimeoutError))


def _release(store: _Store, run: _Chunk, owner: str, clock: Callable[[], datetime],
             reason: str, *, silent: bool = False) -> None:
    """Every claim still ours goes back to `retry` (a no-op for rows already settled);
    `silent`: the platform gave no answer at all (the breaker stops the tenant on it)."""
    for action in run.claimed:
        store.fail(action.key, owner=owner, reason=reason, now=clock(), permanent=False)
        run.outcomes.setdefault(action.key, replace(_outcome(action, "retry", reason),
                                                    silent=silent))
    run.claimed.clear()


__all__ = ["Step", "batchable", "execute_batch", "line_lock", "schedule"]
