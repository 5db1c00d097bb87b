"""The sync run for one connected company: fetch, plan, execute exactly once, checkpoint.

The shell around the pure planner. Exactly-once comes from the ledger protocol, not from the
lock: for every write, `claim` (a conditional write only one runner wins) -> the platform call
carrying the idempotency key -> `complete`. A claim left behind by a crashed runner is, after
its lease, reconciled against the platform (the write carries its key, so the runner can see
whether it happened) before it is tried again. The per-tenant lock only saves wasted work.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from ar_sync.domain.errors import (
    BudgetExhaustedError,
    ConnectorError,
    NotApplicableError,
    PlatformValidationError,
    QuotaReachedError,
    ReauthorizationRequiredError,
    TransientError,
)
from ar_sync.domain.models import (
    Action,
    ActionKind,
    AddNote,
    ApplyLateFee,
    Escalate,
    FeeMode,
    Invoice,
    InvoiceStatus,
    SendReminder,
    SkipStage,
    WaiveFee,
)
from ar_sync.messages.sending import MailSetup
from ar_sync.planner.invoice_checks import plannable
from ar_sync.rules.policy import Policy
from ar_sync.sync.batch import DELETED, Step, batchable, execute_batch, schedule
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.company import fee_totals, plan_due, tenant_setup
from ar_sync.sync.connector import BatchWriter, Connection, Connector, PlatformSettings, load_plugin
from ar_sync.sync.ledger import Claim, ClaimOutcome
from ar_sync.sync.mail import execute as mail_execute
from ar_sync.sync.mail import group_plan, keys_in_plan, leftover_order
from ar_sync.sync.run_report import (
    BREAKER_FAILURES,
    BREAKER_SECONDS,
    ActionOutcome,
    Breaker,
    RunReport,
    defer,
    describe,
)
from ar_sync.sync.run_report import outcome_of as _outcome
from ar_sync.sync.snapshot import NO_INDEX, read_snapshot
from ar_sync.sync.store import Checkpoint, Store

log = logging.getLogger(__name__)

LEASE_SECONDS = 300.0  # a claim older than this belongs to a crashed runner
FULL_FETCH_EVERY = timedelta(hours=24)  # incremental fetches in between
INTERRUPTED = "interrupted"
LOCK_HELD = "lock held by another run"
PLATFORM_UNAVAILABLE = "platform unavailable"


def _settings_for(
    settings: Mapping[str, PlatformSettings] | PlatformSettings, platform: str
) -> PlatformSettings:
    if isinstance(settings, PlatformSettings):
        return settings
    return settings[platform]


def open_connector(
    store: Store,
    connection: Connection,
    settings: Mapping[str, PlatformSettings] | PlatformSettings,
    budget: CallBudget,
    clock: Callable[[], datetime],
) -> Connector:
    plugin = load_plugin(connection.platform)
    return plugin.open(_settings_for(settings, connection.platform), connection, store, budget,
                       clock=clock)


def run_tenant(
    store: Store,
    connection_id: str,
    *,
    settings: Mapping[str, PlatformSettings] | PlatformSettings | None = None,
    now: datetime | None = None,
    budget: CallBudget | None = None,
    dry_run: bool = False,
    full: bool | None = None,
    owner: str | None = None,
    only_invoices: Collection[str] | None = None,
    policy: Policy | None = None,
    rules_override: str | None = None,
    connector: Connector | None = None,
    clock: Callable[[], datetime] | None = None,
    lease_seconds: float = LEASE_SECONDS,
    use_lock: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    today: date | None = None,
    mail: MailSetup | None = None,
) -> RunReport:
    """Run one tenant once. Safe to call concurrently and after any crash.

    `today` (the company's local date) or `now` only change what is planned; leases, locks
    and the daily full fetch always follow `clock`, so a run "as of" another day can neither
    block nor be blocked by real runs. Ctrl-C / SIGTERM (KeyboardInterrupt) releases the
    current claim and the locks and returns a report with `stopped_early="interrupted"`.
    """
    clock = clock or (lambda: datetime.now(UTC))
    now = now or clock()
    owner = owner or f"run-{secrets.token_hex(6)}"
    budget = budget or CallBudget()
    report = RunReport(connection_id=connection_id, started_at=now, dry_run=dry_run)

    connection = store.get_connection(connection_id)
    if connection is None:
        report.errors.append(f"unknown connection {connection_id!r}")
        report.stopped_early = "unknown connection"
        return _finish(store, report, clock, save=False)
    setup = tenant_setup(store, connection, policy, rules_override)
    setup.annotate(report)
    policy = setup.policy
    dry_run = report.dry_run = dry_run or setup.preview  # preview writes nothing
    mail = mail or MailSetup()  # nothing configured: nothing sent (reported as deferred)

    lock_name = f"tenant:{connection_id}"
    use_lock = use_lock and not dry_run
    if use_lock and not store.acquire_lock(lock_name, owner=owner, now=clock(),
                                              ttl_seconds=lease_seconds):
        report.stopped_early = LOCK_HELD
        return _finish(store, report, clock, save=False)
    try:
        if connector is None:
            if settings is None:
                raise ValueError("run_tenant needs `settings` or a `connector`")
            connector = open_connector(store, connection, settings, budget, clock)
        _run(store, connection, connector, policy, report, budget=budget,
             today=today or policy.today(now), clock=clock, owner=owner, full=full,
             dry_run=dry_run, only_invoices=only_invoices, lease_seconds=lease_seconds,
             on_progress=on_progress, rules_version=setup.rules_version, mail=mail)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: the current claim was released by _run; the locks are released
        # below; what is left is in the report (deferred) and goes first next run.
        report.stopped_early = INTERRUPTED
    except ReauthorizationRequiredError as exc:
        report.errors.append(f"reconnect needed: {exc}")
        report.stopped_early = "authorisation lost"
    except BudgetExhaustedError as exc:
        report.stopped_early = f"budget: {exc}"
    except TransientError as exc:
        # A read failed after the connector's retries (5xx storm, platform down): nothing
        # was planned from partial data; the next run starts over from the same checkpoint.
        report.errors.append(f"{PLATFORM_UNAVAILABLE}: {exc}")
        report.stopped_early = PLATFORM_UNAVAILABLE
    except ConnectorError as exc:
        report.errors.append(f"platform error: {exc}")
        report.stopped_early = "platform error"
    finally:
        if use_lock:
            store.release_lock(lock_name, owner=owner)
    report.api_calls = budget.calls
    # a preview connection's scheduled runs keep their report: what it would have done
    return _finish(store, report, clock, save=not dry_run or setup.preview)


def _finish(store: Store, report: RunReport, clock: Callable[[], datetime], *,
            save: bool) -> RunReport:
    report.finished_at = clock()
    if save:
        store.save_report(report.connection_id, report.to_dict())
    return report


def _run(
    store: Store,
    connection: Connection,
    connector: Connector,
    policy: Policy,
    report: RunReport,
    *,
    budget: CallBudget,
    today: date,
    clock: Callable[[], datetime],
    owner: str,
    full: bool | None,
    dry_run: bool,
    only_invoices: Collection[str] | None,
    lease_seconds: float,
    on_progress: Callable[[int, int], None] | None,
    rules_version: int | None = None,
    mail: MailSetup | None = None,
) -> None:
    tenant = connection.id
    checkpoint = store.get_checkpoint(tenant)
    started = clock()
    if full is None:
        full = (checkpoint.since is None or checkpoint.last_full_at is None
                or started - checkpoint.last_full_at >= FULL_FETCH_EVERY)
    report.full_fetch = full
    fetched = connector.fetch_open_invoices(None if full else checkpoint.since)
    # Keys and ledger rows are per ar-sync connection: make sure every invoice says which.
    fetched.invoices = [i if i.tenant == tenant else i.model_copy(update={"tenant": tenant})
                        for i in fetched.invoices]
    report.invoices_seen = len(fetched.invoices)
    report.warnings.extend(fetched.warnings)

    removed = set(fetched.removed)
    plans = store.payment_plans(tenant)
    quiet = NO_INDEX
    if dry_run and connection.mode != "preview":  # a preview keeps its snapshot (rules diff)
        by_id = {i.id: i for i in store.open_invoices(tenant)} if not full else {}
        by_id.update({i.id: i for i in fetched.invoices})
        invoices = [i for i in by_id.values() if i.is_open and i.id not in removed]
    else:
        store.save_invoices(tenant, fetched.invoices, replace_all=full)
        # the open invoices that can have an action today (the quiet index, sync/snapshot.py);
        # all of them when some were deleted on the platform (they leave the snapshot)
        quiet = read_snapshot(store, tenant, policy, today, go_live=connection.live_from(),
                              plans=plans, use_index=not (dry_run or removed))
        invoices = _drop_removed(store, tenant, quiet.snapshot.invoices, fetched.removed)
    invoices, unplannable = plannable(invoices)
    report.warnings.extend(unplannable)
    report.invoices_open = len(invoices) + quiet.snapshot.quiet

    # plan_run (the planning path `plan` and `rules explain` share, risk included) over the
    # invoices that can be due today: those the quiet index did not leave out, narrowed by a
    # store's summary of finished rows where it keeps one (DynamoDB, planner.can_act)
    due = plan_due(store, connector, invoices, policy, today, tenant=tenant, plans=plans,
                   go_live=connection.live_from(), pauses=quiet.pauses)
    quiet.remember(store, tenant, due.planned, due.history, due.actions)
    actions, by_id = due.actions, due.by_id
    if only_invoices is not None:
        wanted = set(only_invoices)
        actions = [a for a in actions if a.invoice_id in wanted]
    mail = mail or MailSetup()
    grouped = group_plan(store, tenant, actions, by_id, policy, today, mail, connector)
    actions = grouped.actions
    report.not_emailed = [f"{u.customer_name} ({', '.join(u.invoices)}): {u.why}"
                          for u in grouped.unreachable]
    report.planned = len(actions)
    report.fees = fee_totals(actions)

    if dry_run:
        for action in actions:
            report.count(_outcome(action, "planned", action.reason))
        return

    # Leftovers from earlier runs first (claims of crashed runners, transient failures), from
    # the payload stored with the claim: nothing planned is lost even if the plan moved on.
    planned_keys = keys_in_plan(actions)
    leftovers: list[Action] = []
    for entry in store.unfinished(tenant):
        if entry.key in planned_keys:
            continue
        payload = store.action_payload(entry.key)
        if payload is not None and (only_invoices is None or payload.invoice_id in only_invoices):
            leftovers.append(payload)
    # Skipped stages cost no platform call: record them all, whatever the budget.
    skips = [a for a in actions if isinstance(a, SkipStage)]
    recorded = store.record_skips(skips, now=clock(), rules_version=rules_version)
    for action, new in zip(skips, recorded, strict=True):
        if new:
            report.count(_outcome(action, "skipped", action.reason))
    leftovers.sort(key=leftover_order)
    queue = leftovers + [a for a in actions if not isinstance(a, SkipStage)]
    total = len(queue)
    breaker = Breaker(clock)
    steps = (schedule(queue, lambda a: batchable(connector, a), connector.max_batch)
             if isinstance(connector, BatchWriter) else [Step((a,)) for a in queue])
    done_count = 0
    for number, step in enumerate(steps):
        if on_progress:
            on_progress(done_count, total)
        action = step.actions[0]
        sent = None
        try:
            if not budget.can_spend(2):
                raise BudgetExhaustedError("not enough budget left for another write")
            action_started = clock()
            if step.batch:
                assert isinstance(connector, BatchWriter)
                outcomes = execute_batch(
                    store, connector, step.actions, owner=owner, clock=clock,
                    lease_seconds=lease_seconds, rules_version=rules_version,
                    reconcile=lambda a, c: _write_claimed(
                        store, connector, a, by_id.get(a.invoice_id), c, owner=owner,
                        clock=clock))
            else:
                sent = mail_execute(store, connector, action, setup=mail, invoices=by_id,
                                    today=today, owner=owner, clock=clock,
                                    lease_seconds=lease_seconds)
                outcomes = [_outcome(action, sent.outcome, sent.detail, sent.ref) if sent else
                            _execute(store, connector, action, by_id.get(action.invoice_id),
                                     owner=owner, clock=clock, lease_seconds=lease_seconds,
                                     rules_version=rules_version)]
        except BudgetExhaustedError:
            # Stop cleanly: the claims (if any) were released for retry; the rest goes first
            # next run, because the plan will contain it again and leftovers go first.
            rest = _rest(steps[number:])
            defer(report, rest, "budget used up")
            report.stopped_early = "budget used up"
            break
        except KeyboardInterrupt:
            # Release our claim if the interrupt came between claim and complete (a no-op
            # otherwise: the update is conditional on our live claim; a batch released its
            # own). A write that did happen is found by its key when the next run reconciles.
            if not step.batch:
                store.fail(action.key, owner=owner, reason=INTERRUPTED, now=clock(),
                           permanent=False)
            defer(report, _rest(steps[number:]), "interrupted; goes first next run")
            raise
        done_count += len(outcomes)
        for outcome in outcomes:
            report.count(outcome)
        # One platform call, one verdict: a batch failing as a whole is one failure, and any
        # item that got through says the platform answers. A mail server or a notice
        # receiver failing says nothing about the platform.
        judged = max(outcomes, key=lambda o: o.outcome != "retry")
        if sent is None and breaker.opens(judged, started=action_started):
            defer(report, _rest(steps[number + 1:]), PLATFORM_UNAVAILABLE)
            report.errors.append(f"{PLATFORM_UNAVAILABLE}: {breaker.failures} writes in a "
                                 f"row failed after retries ({outcomes[-1].detail})")
            report.stopped_early = PLATFORM_UNAVAILABLE
            break
    if on_progress:
        on_progress(total, total)
    moved = Checkpoint(since=fetched.checkpoint,
                       last_full_at=started if full else checkpoint.last_full_at)
    if fetched.checkpoint is not None and moved != checkpoint:  # unchanged: no write
        store.save_checkpoint(tenant, moved)


def _rest(steps: Sequence[Step]) -> list[Action]:
    return [a for step in steps for a in step.actions]




def _drop_removed(store: Store, tenant: str, invoices: list[Invoice],
                  removed: Collection[str]) -> list[Invoice]:
    """Invoices deleted on the platform leave the snapshot (stored as voided: they will never
    be open again), so nothing more is planned for them."""
    if not removed:
        return invoices
    gone = [i.model_copy(update={"status": InvoiceStatus.VOIDED}) for i in invoices
            if i.id in removed]
    if gone:
        store.save_invoices(tenant, gone, replace_all=False)
    return [i for i in invoices if i.id not in removed]


def _execute(
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
    return _write_claimed(store, connector, action, invoice, claim, owner=owner, clock=clock)


def _write_claimed(
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
            ref = connector.find_effect(fresh, action.kind, action.key)
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
                                      mode=action.mode, tax=action.tax)
    if isinstance(action, Escalate):
        return connector.add_note(invoice, action.text, key=action.key)
    if isinstance(action, WaiveFee):
        return connector.waive_fee(invoice, action.fee_key, action.amount, action.label,
                                   key=action.key)
    raise AssertionError(f"not a write: {action.kind}")  # pragma: no cover


execute_action = _execute  # one action through the ledger (`ar-sync fee waive --now`)

__all__ = ["BREAKER_FAILURES", "BREAKER_SECONDS", "INTERRUPTED", "LOCK_HELD",
           "PLATFORM_UNAVAILABLE", "ActionKind", "ActionOutcome", "RunReport", "describe",
           "execute_action", "run_tenant"]
