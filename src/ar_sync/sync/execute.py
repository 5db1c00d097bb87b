"""One write, exactly once: claim -> (reconcile) -> fresh read -> write with the key -> complete.

The ledger protocol for a single action (the batched form is batch.py; e-mails are mail.py).
A claim is a conditional write only one runner wins; the platform call carries the action's
key; `complete` records the platform's reference. A claim left by a crashed runner comes back
as RECONCILE after its lease: the write is looked up on the platform by its key first, so it
is never made twice. Every failure is typed, and each type has one place in the ledger:
permanent failures end the row, transient ones leave it for the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from ar_sync.domain.errors import (
    BudgetExhaustedError,
    ConnectorError,
    NotApplicableError,
    PlatformTimeoutError,
    PlatformValidationError,
    QuotaReachedError,
    ReauthorizationRequiredError,
)
from ar_sync.domain.models import (
    Action,
    ActionKind,
    AddNote,
    ApplyLateFee,
    EntryState,
    Escalate,
    FeeMode,
    Invoice,
    SendReminder,
    WaiveFee,
)
from ar_sync.sync.batch import DELETED
from ar_sync.sync.connector import Connector
from ar_sync.sync.ledger import Claim, ClaimOutcome, Ledger
from ar_sync.sync.retry import CLOCK_SKEW
from ar_sync.sync.run_report import ActionOutcome
from ar_sync.sync.run_report import outcome_of as _outcome
from ar_sync.sync.store import Store

LEASE_SECONDS = 300.0  # a claim older than this belongs to a crashed runner


def execute_action(
    store: Store,
    connector: Connector,
    action: Action,
    invoice: Invoice | None,
    *,
    owner: str,
    clock: Callable[[], datetime],
    lease_seconds: float = LEASE_SECONDS,
    rules_version: int | None = None,
) -> ActionOutcome:
    """claim -> (reconcile) -> write with the key -> complete, for one action."""
    if isinstance(action, ApplyLateFee) and action.mode == FeeMode.LINE:
        # A fee line is a read-modify-write of the invoice's lines on the platform; runners
        # must not interleave two of them on one invoice or one line could overwrite the other.
        lock = f"invoice:{action.tenant}:{action.invoice_id}"
        if not store.acquire_lock(lock, owner=owner, now=clock(), ttl_seconds=lease_seconds):
            return _outcome(action, "busy", "another runner is changing this invoice's lines")
        try:
            return _claim_and_write(store, connector, action, invoice, owner=owner,
                                    clock=clock, lease_seconds=lease_seconds,
                                    rules_version=rules_version)
        finally:
            store.release_lock(lock, owner=owner)
    return _claim_and_write(store, connector, action, invoice, owner=owner, clock=clock,
                            lease_seconds=lease_seconds, rules_version=rules_version)


def _claim_and_write(
    store: Store,
    connector: Connector,
    action: Action,
    invoice: Invoice | None,
    *,
    owner: str,
    clock: Callable[[], datetime],
    lease_seconds: float,
    rules_version: int | None,
) -> ActionOutcome:
    claim = store.claim(action, owner=owner, now=clock(), lease_seconds=lease_seconds,
                        rules_version=rules_version)
    if claim.outcome == ClaimOutcome.FINISHED:
        return _outcome(action, "skipped", "already recorded")
    if claim.outcome == ClaimOutcome.BUSY:
        return _outcome(action, "busy", "another runner holds it")
    return write_claimed(store, connector, action, invoice, claim, owner=owner, clock=clock)


# The first moment anywhere on Earth of an action's due day (UTC+14): a claim of the action
# cannot be older, so neither can the write an earlier runner may have made under it.
_DAY_BEGINS_EARLIER = timedelta(hours=14)


def earliest_write(action: Action, ledger: Ledger | None = None) -> datetime:
    """The earliest an earlier attempt of `action` could have written: the start of its due
    day in the earliest time zone (a platform e-mail sent since then is taken as ours, the
    safe side against sending twice when the platform forgets its key). A platform e-mail
    carries no key, so the invoice's other e-mails the ledger has as done are left out: the
    window starts after the last of them (CLOCK_SKEW later), or a stage sent late (one step at
    a time) would be taken for this one and this one never sent."""
    since = datetime.combine(action.due_on, time.min, tzinfo=UTC) - _DAY_BEGINS_EARLIER
    if ledger is None or action.kind != ActionKind.REMINDER_EMAIL:
        return since
    rows = ledger.history(action.tenant, [action.invoice_id]).get(action.invoice_id, [])
    others = [e.updated_at + CLOCK_SKEW for e in rows if e.kind == action.kind
              and e.key != action.key and e.state == EntryState.DONE]
    return max([since, *others])


def write_claimed(
    store: Store,
    connector: Connector,
    action: Action,
    invoice: Invoice | None,
    claim: Claim,
    *,
    owner: str,
    clock: Callable[[], datetime],
) -> ActionOutcome:
    """(reconcile) -> fresh read -> write with the key -> complete, for a claim we hold."""
    try:
        fresh = invoice
        if isinstance(action, ApplyLateFee | WaiveFee) or invoice is None:
            # Re-read before charging: an invoice paid since planning gets no fee (and a
            # waiver is credited against the balance as it is now).
            fresh = connector.get_invoice(action.invoice_id)
        if claim.outcome == ClaimOutcome.RECONCILE and fresh is not None:
            ref = connector.find_effect(fresh, action.kind, action.key,
                                        since=earliest_write(action, store))
            if ref is not None:
                store.complete(action.key, owner=owner, ref=ref, now=clock())
                return _outcome(action, "reconciled", "found on the platform", ref)
        if fresh is None:  # deleted on the platform (a leftover, or deleted mid-run)
            store.record_skip(action, reason=DELETED, now=clock(), owner=owner)
            return _outcome(action, "skipped", DELETED)
        if not fresh.is_open:
            store.record_skip(action, reason="invoice no longer open", now=clock(), owner=owner)
            return _outcome(action, "skipped", "invoice paid or closed since planning")
        ref = _write(connector, action, fresh)
    except BudgetExhaustedError:
        store.fail(action.key, owner=owner, reason="budget used up", now=clock(),
                   permanent=False)
        raise
    except NotApplicableError as exc:
        store.record_skip(action, reason=str(exc), now=clock(), owner=owner)
        return _outcome(action, "skipped", str(exc))
    except PlatformValidationError as exc:
        store.fail(action.key, owner=owner, reason=str(exc), now=clock(), permanent=True)
        return _outcome(action, "failed", str(exc))
    except ReauthorizationRequiredError:
        store.fail(action.key, owner=owner, reason="authorisation lost", now=clock(),
                   permanent=False)
        raise
    except QuotaReachedError as exc:
        # Nothing was sent; the row stays for a later run, and the breaker ignores it.
        store.fail(action.key, owner=owner, reason=str(exc), now=clock(), permanent=False)
        return replace(_outcome(action, "retry", str(exc)), quota=True)
    except PlatformTimeoutError as exc:
        # No answer at all: it may have happened (reconciled next run); the breaker stops
        # the tenant on it rather than wait out a silent platform write after write.
        store.fail(action.key, owner=owner, reason=str(exc), now=clock(), permanent=False)
        return replace(_outcome(action, "retry", str(exc)), silent=True)
    except ConnectorError as exc:
        # Transient: the write may or may not have happened; the next run reconciles first.
        store.fail(action.key, owner=owner, reason=str(exc), now=clock(), permanent=False)
        return _outcome(action, "retry", str(exc))
    if not store.complete(action.key, owner=owner, ref=ref, now=clock()):
        # Our lease ran out and another runner took the claim over; it will reconcile and
        # find this write by its key. Report it, do not write again.
        return _outcome(action, "busy", "lease lost; the other runner reconciles", ref)
    return _outcome(action, "done", action.reason, ref)


def _write(connector: Connector, action: Action, invoice: Invoice) -> str:
    if isinstance(action, AddNote):
        return connector.add_note(invoice, action.text, key=action.key)
    if isinstance(action, SendReminder):
        return connector.send_reminder(invoice, key=action.key, to=action.to)
    if isinstance(action, ApplyLateFee):
        return connector.add_late_fee(invoice, action.amount, action.label, key=action.key,
                                      mode=action.mode, tax=action.tax,
                                      account=action.account)
    if isinstance(action, Escalate):
        return connector.add_note(invoice, action.text, key=action.key)
    if isinstance(action, WaiveFee):
        return connector.waive_fee(invoice, action.fee_key, action.amount, action.label,
                                   key=action.key, account=action.account)
    raise AssertionError(f"not a write: {action.kind}")  # pragma: no cover
