"""The phases of one run, in order: fetch -> snapshot -> plan -> execute -> checkpoint.

Each is a function of the run's context (context.py) and what the phase before it returned,
so `run._run` reads as the list of phases. Only `execute` writes to the platform; the others
read it (fetch) or the store.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ar_sync.domain.errors import BudgetExhaustedError
from ar_sync.domain.models import Action, Invoice, InvoiceStatus, SkipStage
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.planner.invoice_checks import plannable, unplannable_reason
from ar_sync.rules.rates import stale_rate_warnings
from ar_sync.sync.batch import Step, batchable, execute_batch, schedule
from ar_sync.sync.company import DuePlan, fee_totals, plan_due
from ar_sync.sync.connector import BatchWriter, FetchResult
from ar_sync.sync.context import RunContext
from ar_sync.sync.execute import execute_action, write_claimed
from ar_sync.sync.mail import execute as mail_execute
from ar_sync.sync.mail import group_plan, keys_in_plan, leftover_order
from ar_sync.sync.run_report import ActionOutcome, Breaker, defer
from ar_sync.sync.run_report import outcome_of as _outcome
from ar_sync.sync.snapshot import NO_INDEX, QuietRun, read_snapshot
from ar_sync.sync.store import Checkpoint, is_url
from ar_sync.sync.thanks import keep_paid, thank_yous

FULL_FETCH_EVERY = timedelta(hours=24)  # incremental fetches in between
INTERRUPTED = "interrupted"
PLATFORM_UNAVAILABLE = "platform unavailable"


@dataclass
class Fetched:
    """What the platform returned, and the checkpoint it was asked from."""

    result: FetchResult
    checkpoint: Checkpoint
    full: bool
    started: datetime


@dataclass
class Candidates:
    """The open invoices to plan today, the quiet index's view of the rest, and the company's
    payment plans (read once: the planner and the index both need them)."""

    invoices: list[Invoice]
    quiet: QuietRun
    plans: list[PaymentPlan]


@dataclass
class Planned:
    """Today's actions for the run, e-mail items grouped into messages."""

    actions: list[Action]
    by_id: dict[str, Invoice]


def fetch(ctx: RunContext, full: bool | None) -> Fetched:
    """Read the open invoices: everything once a day, what changed since the checkpoint else."""
    checkpoint = ctx.store.get_checkpoint(ctx.tenant)
    started = ctx.clock()
    if full is None:
        full = (checkpoint.since is None or checkpoint.last_full_at is None
                or started - checkpoint.last_full_at >= FULL_FETCH_EVERY)
    ctx.report.full_fetch = full
    if hasattr(ctx.connector, "read_payments"):  # payments matter only to interest
        ctx.connector.read_payments = any(f.accrues for f in ctx.policy.late_fees)
    result = ctx.connector.fetch_open_invoices(None if full else checkpoint.since)
    # Keys and ledger rows are per ar-sync connection: make sure every invoice says which.
    tenant = ctx.tenant
    result.invoices = [i if i.tenant == tenant else i.model_copy(update={"tenant": tenant})
                       for i in result.invoices]
    ctx.report.invoices_seen = len(result.invoices)
    ctx.report.warnings.extend(result.warnings)
    return Fetched(result, checkpoint, full, started)


def snapshot(ctx: RunContext, fetched: Fetched) -> Candidates:
    """Store what was fetched and read back the open invoices that can have an action today
    (the quiet index, snapshot.py). A dry run of a live company stores nothing."""
    store, tenant, result = ctx.store, ctx.tenant, fetched.result
    removed = set(result.removed)
    # Filter before storing: an absurd invoice (a due date in year 1) never enters the
    # snapshot that `rules diff`, `plan` and the reports read; an older stored copy leaves it.
    absurd = {i.id for i in result.invoices if unplannable_reason(i) is not None}
    if absurd:
        result.invoices, unstored = plannable(result.invoices)
        ctx.report.warnings.extend(unstored)
        removed |= absurd
    plans = store.payment_plans(tenant)
    quiet = NO_INDEX
    if ctx.dry_run and ctx.connection.mode != "preview":  # a preview keeps its snapshot
        by_id = {i.id: i for i in store.open_invoices(tenant)} if not fetched.full else {}
        by_id.update({i.id: i for i in result.invoices})
        invoices = [i for i in by_id.values() if i.is_open and i.id not in removed]
    else:
        before = ({i.id for i in store.open_invoices(tenant)}
                  if fetched.full and ctx.policy.on_paid is not None else set())
        store.save_invoices(tenant, result.invoices, replace_all=fetched.full)
        keep_paid(ctx, before - {i.id for i in result.invoices} - removed)
        # all of them when some were deleted on the platform (they leave the snapshot)
        quiet = read_snapshot(store, tenant, ctx.policy, ctx.today,
                              go_live=ctx.go_live,
                              plans=plans,
                              use_index=not (ctx.dry_run or removed))
        invoices = _drop_removed(ctx, quiet.snapshot.invoices, removed)
    invoices, unplannable = plannable(invoices)
    ctx.report.warnings.extend(unplannable)
    ctx.report.invoices_open = len(invoices) + quiet.snapshot.quiet
    return Candidates(invoices, quiet, plans)


def plan(ctx: RunContext, candidates: Candidates) -> Planned:
    """plan_run (the path `plan` and `rules explain` share) over the invoices that can be due
    today, narrowed by a store's summary of finished rows where it keeps one (DynamoDB);
    e-mail items grouped into one message per customer and day."""
    store, tenant, quiet = ctx.store, ctx.tenant, candidates.quiet
    ctx.report.warnings.extend(stale_rate_warnings(ctx.policy, ctx.today))
    ctx.leftovers = store.unfinished(tenant)  # read once: the judge's and execute's
    due: DuePlan = plan_due(store, ctx.connector, candidates.invoices, ctx.policy, ctx.today,
                            tenant=tenant, plans=candidates.plans,
                            go_live=ctx.go_live, pauses=quiet.pauses,
                            busy={e.invoice_id for e in ctx.leftovers})
    quiet.remember(store, tenant, due.planned, due.history, due.actions)
    actions = due.actions
    if ctx.only_invoices is not None:
        wanted = set(ctx.only_invoices)
        actions = [a for a in actions if a.invoice_id in wanted]
    grouped = group_plan(store, tenant, actions, due.by_id, ctx.policy, ctx.today, ctx.mail,
                         ctx.connector)
    grouped.actions.extend(thank_yous(ctx, grouped.actions))
    report = ctx.report
    report.not_emailed = [f"{u.customer_name} ({', '.join(u.invoices)}): {u.why}"
                          for u in grouped.unreachable]
    report.planned = len(grouped.actions)
    report.fees = fee_totals(grouped.actions)
    if ctx.dry_run:
        report.plan = list(grouped.actions)
        for action in grouped.actions:
            report.count(_outcome(action, "planned", action.reason))
    return Planned(list(grouped.actions), dict(due.by_id))


def execute(ctx: RunContext, planned: Planned) -> None:
    """Leftovers of earlier runs first, then today's writes, each exactly once, within the
    budget; stops early on a spent budget, an interrupt or a platform that stopped answering."""
    steps = _steps(ctx, _queue(ctx, planned.actions))
    total = sum(len(s.actions) for s in steps)
    breaker = Breaker(ctx.clock)
    done = 0
    for number, step in enumerate(steps):
        if ctx.on_progress:
            ctx.on_progress(done, total)
        started = ctx.clock()
        outcomes, mailed = _one_step(ctx, step, planned, steps[number:])
        if outcomes is None:
            break  # budget used up: deferred
        done += len(outcomes)
        for outcome in outcomes:
            ctx.report.count(outcome)
        # One platform call, one verdict: a batch failing as a whole is one failure, and any
        # item that got through says the platform answers. A mail server or a notice
        # receiver failing says nothing about the platform.
        judged = max(outcomes, key=lambda o: o.outcome != "retry")
        if not mailed and breaker.opens(judged, started=started):
            defer(ctx.report, _rest(steps[number + 1:]), PLATFORM_UNAVAILABLE)
            ctx.report.errors.append(f"{PLATFORM_UNAVAILABLE}: {breaker.failures} writes in a "
                                     f"row failed after retries ({outcomes[-1].detail})")
            ctx.report.stopped_early = PLATFORM_UNAVAILABLE
            break
    if ctx.on_progress:
        ctx.on_progress(total, total)


def remember_links(ctx: RunContext, planned: Planned) -> None:
    """Store the payment links the connector resolved this run (one platform read each: Xero's
    online invoice, QuickBooks' InvoiceLink): an invoice's link is stable, so the snapshot
    keeps it and no later run reads it again (store.with_kept_link)."""
    resolved: Callable[[], Mapping[str, str]] | None = getattr(
        ctx.connector, "resolved_links", None)
    if resolved is None:
        return
    found = [inv.model_copy(update={"payment_link": url})
             for invoice_id, url in resolved().items()
             if (inv := planned.by_id.get(invoice_id)) is not None and inv.is_open
             and is_url(url) and inv.payment_link != url]
    if found:
        ctx.store.save_invoices(ctx.tenant, found, replace_all=False)


def checkpoint(ctx: RunContext, fetched: Fetched) -> None:
    """Move the checkpoint to what the platform said it was when the fetch began."""
    moved = Checkpoint(since=fetched.result.checkpoint,
                       last_full_at=fetched.started if fetched.full
                       else fetched.checkpoint.last_full_at)
    if fetched.result.checkpoint is not None and moved != fetched.checkpoint:
        ctx.store.save_checkpoint(ctx.tenant, moved)  # unchanged: no write


# ----------------------------------------------------------------------------- helpers


def _drop_removed(ctx: RunContext, invoices: list[Invoice],
                  removed: Collection[str]) -> list[Invoice]:
    """Invoices deleted on the platform leave the snapshot (stored as voided: they will never
    be open again), so nothing more is planned for them."""
    if not removed:
        return invoices
    gone = [i.model_copy(update={"status": InvoiceStatus.VOIDED}) for i in invoices
            if i.id in removed]
    if gone:
        ctx.store.save_invoices(ctx.tenant, gone, replace_all=False)
    return [i for i in invoices if i.id not in removed]


def _queue(ctx: RunContext, actions: list[Action]) -> list[Action]:
    """Leftovers from earlier runs (claims of crashed runners, transient failures) from the
    payload stored with the claim, so nothing planned is lost even if the plan moved on; then
    today's writes. Skipped stages cost no platform call: all recorded here, whatever the
    budget."""
    store, wanted = ctx.store, ctx.only_invoices
    planned_keys = keys_in_plan(actions)
    leftovers: list[Action] = []
    for entry in ctx.leftovers if ctx.leftovers is not None else store.unfinished(ctx.tenant):
        if entry.key in planned_keys:
            continue
        payload = store.action_payload(entry.key)
        if payload is not None and (wanted is None or payload.invoice_id in wanted):
            leftovers.append(payload)
    skips = [a for a in actions if isinstance(a, SkipStage)]
    recorded = store.record_skips(skips, now=ctx.clock(), rules_version=ctx.rules_version)
    for action, new in zip(skips, recorded, strict=True):
        if new:
            ctx.report.count(_outcome(action, "skipped", action.reason))
    leftovers.sort(key=leftover_order)
    return leftovers + [a for a in actions if not isinstance(a, SkipStage)]


def _steps(ctx: RunContext, queue: list[Action]) -> list[Step]:
    connector = ctx.connector
    if isinstance(connector, BatchWriter):
        return schedule(queue, lambda a: batchable(connector, a), connector.max_batch)
    return [Step((a,)) for a in queue]


def _one_step(ctx: RunContext, step: Step, planned: Planned, rest: Sequence[Step]
              ) -> tuple[list[ActionOutcome] | None, bool]:
    """One write (or one batch) through the ledger: (outcomes, whether it was an e-mail);
    (None, _) when the budget is spent, the step and the rest deferred."""
    action = step.actions[0]
    try:
        if not ctx.budget.can_spend(2):
            raise BudgetExhaustedError("not enough budget left for another write")
        if step.batch:
            return _batch(ctx, step, planned), False
        sent = mail_execute(ctx.store, ctx.connector, action, setup=ctx.mail,
                            invoices=planned.by_id, today=ctx.today, owner=ctx.owner,
                            clock=ctx.clock, lease_seconds=ctx.lease_seconds)
        if sent:
            return [_outcome(action, sent.outcome, sent.detail, sent.ref)], True
        return [execute_action(ctx.store, ctx.connector, action,
                               planned.by_id.get(action.invoice_id), owner=ctx.owner,
                               clock=ctx.clock, lease_seconds=ctx.lease_seconds,
                               rules_version=ctx.rules_version)], False
    except BudgetExhaustedError:
        # Stop cleanly: the claims (if any) were released for retry; the rest goes first
        # next run, because the plan will contain it again and leftovers go first.
        defer(ctx.report, _rest(rest), "budget used up")
        ctx.report.stopped_early = "budget used up"
        return None, False
    except KeyboardInterrupt:
        # Release our claim if the interrupt came between claim and complete (a no-op
        # otherwise: the update is conditional on our live claim; a batch released its
        # own). A write that did happen is found by its key when the next run reconciles.
        if not step.batch:
            ctx.store.fail(action.key, owner=ctx.owner, reason=INTERRUPTED, now=ctx.clock(),
                           permanent=False)
        defer(ctx.report, _rest(rest), "interrupted; goes first next run")
        raise


def _batch(ctx: RunContext, step: Step, planned: Planned) -> list[ActionOutcome]:
    connector = ctx.connector
    assert isinstance(connector, BatchWriter)
    return execute_batch(
        ctx.store, connector, step.actions, owner=ctx.owner, clock=ctx.clock,
        lease_seconds=ctx.lease_seconds, rules_version=ctx.rules_version,
        reconcile=lambda a, c: write_claimed(ctx.store, ctx.connector, a,
                                             planned.by_id.get(a.invoice_id), c,
                                             owner=ctx.owner, clock=ctx.clock))


def _rest(steps: Sequence[Step]) -> list[Action]:
    return [a for step in steps for a in step.actions]
