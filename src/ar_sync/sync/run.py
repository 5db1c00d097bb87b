"""The sync run for one connected company: fetch, plan, execute exactly once, checkpoint.

The shell around the pure planner. Exactly-once comes from the ledger protocol (execute.py,
batch.py, mail.py), not from the lock: for every write, `claim` (a conditional write only one
runner wins) -> the platform call carrying the idempotency key -> `complete`. A claim left
behind by a crashed runner is, after its lease, reconciled against the platform (the write
carries its key, so the runner can see whether it happened) before it is tried again. The
per-tenant lock only saves wasted work. The phases themselves are in phases.py.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, date, datetime

from ar_sync.domain.errors import (
    BudgetExhaustedError,
    ConnectorError,
    ReauthorizationRequiredError,
    TransientError,
)
from ar_sync.domain.models import ActionKind
from ar_sync.messages.sending import MailSetup
from ar_sync.rules.policy import Policy
from ar_sync.sync import phases
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.company import tenant_setup
from ar_sync.sync.connector import Connection, Connector, PlatformSettings, load_plugin
from ar_sync.sync.context import RunContext
from ar_sync.sync.execute import LEASE_SECONDS, execute_action
from ar_sync.sync.mail import mail_problem
from ar_sync.sync.phases import INTERRUPTED, PLATFORM_UNAVAILABLE
from ar_sync.sync.run_report import (
    BREAKER_FAILURES,
    BREAKER_SECONDS,
    ActionOutcome,
    RunReport,
    describe,
)
from ar_sync.sync.store import Store

log = logging.getLogger(__name__)

LOCK_HELD = "lock held by another run"


def open_connector(
    store: Store,
    connection: Connection,
    settings: Mapping[str, PlatformSettings] | PlatformSettings,
    budget: CallBudget,
    clock: Callable[[], datetime],
) -> Connector:
    plugin = load_plugin(connection.platform)
    chosen = settings if isinstance(settings, PlatformSettings) else settings[connection.platform]
    return plugin.open(chosen, connection, store, budget, clock=clock)


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
    `mail`: how to send (nothing configured: e-mails are deferred, and the report says so).
    """
    clock = clock or (lambda: datetime.now(UTC))
    now = now or clock()
    report = RunReport(connection_id=connection_id, started_at=now, dry_run=dry_run)
    connection = store.get_connection(connection_id)
    if connection is None:
        report.errors.append(f"unknown connection {connection_id!r}")
        report.stopped_early = "unknown connection"
        return _finish(store, report, clock, save=False)
    setup = tenant_setup(store, connection, policy, rules_override)
    if today is None:
        today = setup.policy.today(now)
    if setup.go_live is not None and today < setup.go_live:
        # live from a later date: until that day (the company's) a preview, which writes
        # nothing: no note, e-mail, fee or escalation goes out early
        setup.preview = True
    setup.annotate(report)
    owner = owner or f"run-{secrets.token_hex(6)}"
    budget = budget or CallBudget()
    dry_run = report.dry_run = dry_run or setup.preview  # a preview writes nothing
    mail = mail or MailSetup()
    if problem := mail_problem(setup.policy, mail):  # a configuration error, not a success
        (report.warnings if dry_run else report.errors).append(f"configuration: {problem}")
    lock = f"tenant:{connection_id}"
    use_lock = use_lock and not dry_run
    if use_lock and not store.acquire_lock(lock, owner=owner, now=clock(),
                                              ttl_seconds=lease_seconds):
        report.stopped_early = LOCK_HELD
        return _finish(store, report, clock, save=False)
    try:
        if connector is None:
            if settings is None:
                raise ValueError("run_tenant needs `settings` or a `connector`")
            connector = open_connector(store, connection, settings, budget, clock)
        _run(RunContext(
            store=store, connection=connection, connector=connector, policy=setup.policy,
            report=report, budget=budget, mail=mail,
            today=today, clock=clock, owner=owner,
            lease_seconds=lease_seconds, dry_run=dry_run, rules_version=setup.rules_version,
            only_invoices=only_invoices, on_progress=on_progress), full)
    except (KeyboardInterrupt, ConnectorError, BudgetExhaustedError) as exc:
        _stopped_early(report, exc)
    finally:
        if use_lock:
            store.release_lock(lock, owner=owner)
    report.api_calls = budget.calls
    # a preview connection's scheduled runs keep their report: what it would have done
    return _finish(store, report, clock, save=not dry_run or setup.preview)


def _stopped_early(report: RunReport,
                   exc: KeyboardInterrupt | ConnectorError | BudgetExhaustedError) -> None:
    """Each way a run can stop early, in the report's words."""
    if isinstance(exc, KeyboardInterrupt):
        # Ctrl-C or SIGTERM: the current claim was released by the execute phase, the locks
        # by run_tenant; what is left is in the report (deferred) and goes first next run.
        report.stopped_early = INTERRUPTED
    elif isinstance(exc, ReauthorizationRequiredError):
        report.errors.append(f"reconnect needed: {exc}")
        report.stopped_early = "authorisation lost"
    elif isinstance(exc, BudgetExhaustedError):
        report.stopped_early = f"budget: {exc}"
    elif isinstance(exc, TransientError):
        # A read failed after the connector's retries (5xx storm, platform down): nothing
        # was planned from partial data; the next run starts over from the same checkpoint.
        report.errors.append(f"{PLATFORM_UNAVAILABLE}: {exc}")
        report.stopped_early = PLATFORM_UNAVAILABLE
    else:
        report.errors.append(f"platform error: {exc}")
        report.stopped_early = "platform error"


def _run(ctx: RunContext, full: bool | None) -> None:
    fetched = phases.fetch(ctx, full)
    candidates = phases.snapshot(ctx, fetched)
    planned = phases.plan(ctx, candidates)
    if ctx.dry_run:
        return  # a dry run counted what it would do; nothing written, checkpoint unmoved
    phases.execute(ctx, planned)
    phases.remember_links(ctx, planned)
    phases.checkpoint(ctx, fetched)


def _finish(store: Store, report: RunReport, clock: Callable[[], datetime], *,
            save: bool) -> RunReport:
    report.finished_at = clock()
    if save:
        store.save_report(report.connection_id, report.to_dict())
    return report


__all__ = ["BREAKER_FAILURES", "BREAKER_SECONDS", "INTERRUPTED", "LEASE_SECONDS", "LOCK_HELD",
           "PLATFORM_UNAVAILABLE", "ActionKind", "ActionOutcome", "RunReport", "describe",
           "execute_action", "run_tenant"]
