"""Which invoices can have an action today: the one place that answers it.

Part 1, the quiet index (`quiet_until`, `first_due`, `can_act`): from which day on the
planner can next have something for an invoice.

The quiet index: from which day on the planner can next have something for an invoice.

`plan()` is a pure function of (invoice, its ledger rows, the rules, today, go-live, pauses,
payment plans, risk). With everything but `today` fixed, the days on which an invoice can get
an action are bounded below by dates this module reads off the rules:

* a reminder stage not yet settled (its note or skip recorded, and its e-mail when it still
  has one to send) can act from its unshifted date, due + days (a business-day shift only
  moves it later);
* a fee rule acts on the next occurrence's date, or any day while an occurrence already due
  is not recorded for good (caps, minimums and accruals decide, so no bound is claimed);
* an escalation alternative from due + max(1, days_overdue); never while the debt is at or
  under its threshold or fewer overdue-stage notes are recorded than `reminders_ignored`
  asks (a note counts from the day after it was written, so such an alternative is
  possible from tomorrow on).

`quiet_until` returns the least of those bounds after today: for an invoice the planner has
nothing for today, nothing can be planned on [today, quiet_until) while the invoice, its
ledger rows and the rules stay as they were. The store keeps that mark with the invoice and
drops it when the invoice or one of its ledger rows changes, and `quiet_stamp` names the rest
of the inputs (rules, go-live, this module's version), so a run plans only the invoices that
can have something to do (tests/engine/test_engine_quiet.py checks the bound against plan()).
Paused invoices, disputed ones under a rule with `waive_on_dispute`, claimed or retrying
rows, and runs with payment plans, pauses or risk rules are never marked: they take the full
path.

Part 2, a summary of finished rows (`may_act`, `with_summary`): which invoices can have an
action today, judged from a summary of their finished rows.

A store that keeps, per open invoice, a summary of its ledger rows recorded for good (done,
skipped, failed) — DynamoDB does, on the invoice's snapshot item — lets a run read ledger
rows only for the invoices this module names, instead of the tenant's whole ledger.

Two steps. can_act, the quiet index's bound from the finished keys alone, leaves
out every invoice for which nothing can be due before a later day. It names the rest, among
them every invoice it cannot bound: a fee occurrence due but held back by a cap, a dispute or
a pause (in a long-delinquent book, most of them, every run). Those are then planned on a
history made from their summaries (key, state, a done row's time, a done fee's amount and due
day), where each detail a summary does not carry is set to the value that makes the planner do
the most: a note of unknown time counts as written long ago (the most reminders "ignored", so
escalations fire soonest), a fee of unknown amount as charging nothing (the most room under
the caps), nothing is in flight (no period taken, no sum pending); only the invoices the
planner acts on stay named. An invoice that plan() would act on with its real rows is
therefore named (tests/engine/test_engine_due.py checks this with hypothesis, disputes,
pauses and payment plans included); so are those without a summary, and disputed or paused
ones with a done fee of unknown amount (a waiver repeats the amount). Pure.

`with_summary` is the other half: once rows can age out, a run plans from the rows that
exist plus the summary of those that are gone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import metadata
from typing import NamedTuple

from ar_sync.domain.construct import ACTION_KINDS, construct
from ar_sync.domain.models import Action, ActionKind, EntryState, Invoice, LedgerEntry, action_key
from ar_sync.domain.pauses import Pause
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.planner.compiled import DONE, FEE, OPEN, TERMINAL, compile_policy, facts_for
from ar_sync.planner.escalation import debt
from ar_sync.planner.fee_maths import next_occurrence_on
from ar_sync.planner.journey import Optimistic, customer_logs
from ar_sync.planner.plan import plan
from ar_sync.planner.stages import emailed
from ar_sync.planner.state import InvoiceJob, Planner
from ar_sync.rules.policy import Policy

__all__ = ["NEVER", "QUIET_VERSION", "Finished", "can_act", "finished_of", "first_due",
           "index_applies", "may_act", "quiet_days", "quiet_stamp", "quiet_until",
           "summary_history", "with_summary"]

QUIET_VERSION = 2  # bump when this module changes what a mark means
NEVER = date.max  # nothing more can be planned while the inputs stay the same
_DAY = timedelta(days=1)
_STAMPS: dict[int, tuple[Policy, date | None, str]] = {}


def quiet_stamp(policy: Policy, go_live: date | None) -> str:
    """Names the inputs a quiet mark depends on besides the invoice and its ledger rows."""
    hit = _STAMPS.get(id(policy))
    if hit is not None and hit[0] is policy and hit[1] == go_live:
        return hit[2]
    # the installed ar-sync too: another planner may plan other things on other days
    text = f"{_release()}\n{policy.model_dump_json()}"
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    stamp = f"q{QUIET_VERSION}:{digest}:{go_live or '-'}"
    if len(_STAMPS) >= 64:
        _STAMPS.pop(next(iter(_STAMPS)))
    _STAMPS[id(policy)] = (policy, go_live, stamp)  # holding the policy keeps its id unique
    return stamp


def _release() -> str:
    try:
        return metadata.version("ar-sync")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "source"


def index_applies(policy: Policy, *, plans: Sequence[object], pauses: Sequence[object]) -> bool:
    """Whether a run may use the quiet index: not with payment plans (stored or in the rules),
    pauses (every invoice takes the pause path) or risk rules (levels read every invoice)."""
    return not (plans or pauses or policy.payment_plans or policy.risk.levels())


# per due date: each fee rule's keys due by today and the day its next occurrence falls due
_FeeDates = tuple[tuple[tuple[tuple[str, str, str], ...], date | None], ...]


def quiet_until(p: Planner, inv: Invoice, entries: Sequence[LedgerEntry],
                fee_dates: dict[date, _FeeDates] | None = None) -> date | None:
    """The first day after p.today on which plan() can have an action for `inv` with these
    ledger rows (NEVER: no such day), or None when the invoice must be planned every run.
    Meaningful only for an invoice plan() has nothing for on p.today. `fee_dates`: a cache
    shared by the calls of one day (the fee facts depend on the due date only)."""
    mine = [e for e in entries if e.tenant == inv.tenant]
    if any(e.state not in TERMINAL for e in mine):
        return None  # claimed or retrying: planned again, and leftovers go first
    first = first_due(p, inv, {(e.kind, e.rule, e.occurrence) for e in mine}, fee_dates)
    return None if first is None else max(first, p.today + _DAY)


def first_due(p: Planner, inv: Invoice, finished: AbstractSet[tuple[str, str, str]],
              fee_dates: dict[date, _FeeDates] | None = None) -> date | None:
    """The first day from which plan() can have an action for `inv` (today or earlier: it
    can act today) when `finished` holds the (kind, rule, occurrence) of its ledger rows
    recorded for good; a key in flight (claimed, retry) counts as not finished. NEVER: no
    such day; None: no bound is claimed (disputed, paused, dates near the calendar's end)."""
    if inv.pause is not None or p.pauses or (inv.disputed and p.c.waives):
        return None  # pauses and waivers: the special path's own dates
    # a dispute without waivers plans as any invoice (or not at all, `exclude: disputed`)
    if inv.status != OPEN or inv.balance <= 0 or p.excluded(inv) is not None:
        return NEVER
    try:
        bounds = [*_stage_bounds(p, inv, finished),
                  *_fee_bounds(p, inv, finished, {} if fee_dates is None else fee_dates),
                  *_escalation_bounds(p, inv, finished)]
    except OverflowError:  # dates near the end of the calendar: no claim
        return None
    return min(bounds, default=NEVER)


def can_act(invoices: Iterable[Invoice], finished: Mapping[str, AbstractSet[tuple[str, str, str]]],
            policy: Policy, today: date, *, plans: Iterable[PaymentPlan] = (),
            go_live: date | None = None, pauses: Sequence[Pause] = ()) -> set[str] | None:
    """Ids of the invoices plan_run() could act on today, judged from the keys each one has
    recorded for good (`finished`, by invoice id), without its ledger rows: a store that keeps
    those keys with its snapshot reads rows only for these. Always named: an invoice missing
    from `finished`, paused ones, disputed ones under `waive_on_dispute`, those with a payment
    plan. None when the rules use risk levels (computed from every invoice's rows). Never
    leaves out an invoice plan() acts on (tests/engine/test_engine_quiet.py)."""
    if policy.risk.levels():
        return None
    planner = Planner(policy, today, go_live=go_live, pauses=pauses)
    agreed = {pp.invoice for pp in (*policy.payment_plans, *plans)}
    fee_dates: dict[date, _FeeDates] = {}
    named: set[str] = set()
    for inv in invoices:
        keys = finished.get(inv.id)
        if keys is None or inv.id in agreed or inv.number in agreed:
            named.add(inv.id)
            continue
        first = first_due(planner, inv, keys, fee_dates)
        if first is None or first <= today:
            named.add(inv.id)
    return named


def _stage_bounds(p: Planner, inv: Invoice, final: AbstractSet[tuple[str, str, str]]
                  ) -> Iterable[date]:
    later_handled = False
    for st in reversed(p.c.stages):
        handled = st.note_key in final or st.skip_key in final
        if not handled:
            settled = False
        elif st.skip_key in final or later_handled:
            settled = True  # a superseded stage's e-mail is never sent
        else:
            wants_mail = st.email and (st.channel == "email" or bool(inv.customer_email))
            settled = not wants_mail or emailed(st, final)
        if not settled:
            yield inv.due_date + timedelta(days=st.days)
        later_handled = later_handled or handled


def _fee_bounds(p: Planner, inv: Invoice, final: AbstractSet[tuple[str, str, str]],
                cache: dict[date, _FeeDates]) -> Iterable[date]:
    if not p.c.fees:
        return
    per_rule = cache.get(inv.due_date)
    if per_rule is None:
        # what is due by today, as plan() sees it on a sending day (go-live's backfill applied)
        facts = facts_for(p.c, inv.due_date, p.today, True, p.go_live)
        per_rule = cache[inv.due_date] = tuple(
            (facts.fee_keys[i] if facts is not None else (),
             next_occurrence_on(fee.terms, inv.due_date, p.today))
            for i, fee in enumerate(p.c.fees))
    for fee, (keys, nxt) in zip(p.c.fees, per_rule, strict=True):
        if not fee.terms.applies_to(inv.currency):
            continue  # charges() never charges this currency
        if any(k not in final for k in keys):
            yield p.today  # held back today (cap, minimum, another rule's period): look daily
        if nxt is not None:
            yield nxt


def _escalation_bounds(p: Planner, inv: Invoice, final: AbstractSet[tuple[str, str, str]]
                       ) -> Iterable[date]:
    if not p.c.escalations:
        return
    job = InvoiceJob(p, inv, None, final, (), [])  # type: ignore[arg-type]  # debt: no facts
    noted = sum(1 for s in p.c.stages if s.days > 0 and s.note_key in final)
    owed = debt(job)
    for esc in p.c.escalations:
        if esc.key in final:
            continue
        for min_days, over, min_ignored in esc.alternatives:
            if over is not None:
                threshold = over.for_currency(inv.currency)
                if threshold is None or owed <= threshold:
                    continue  # holds only once the invoice changes
            if min_ignored is not None and noted < min_ignored:
                continue  # holds only once more notes are recorded (a ledger change)
            # with reminders_ignored the count may grow overnight: quiet_until's floor
            # (tomorrow) covers it
            yield inv.due_date + timedelta(days=max(1, min_days or 0))


def quiet_days(invoices: Iterable[Invoice], history: Mapping[str, Sequence[LedgerEntry]],
               policy: Policy, today: date, actions: Iterable[Action], *,
               go_live: date | None = None) -> dict[str, date]:
    """quiet_until for every invoice `actions` (today's plan for them) has nothing for."""
    busy = {a.invoice_id for a in actions}
    planner = Planner(policy, today, go_live=go_live)
    fee_dates: dict[date, _FeeDates] = {}
    out: dict[str, date] = {}
    for inv in invoices:
        if inv.id in busy:
            continue
        until = quiet_until(planner, inv, history.get(inv.id, ()), fee_dates)
        if until is not None:
            out[inv.id] = until
    return out


# ----------------------------------------------------------------------------- summaries


class Finished(NamedTuple):
    """One ledger row recorded for good, as compact as a summary keeps it."""

    kind: str
    rule: str
    occurrence: str
    state: str  # done, skipped or failed
    amount: Decimal | None = None  # a done fee: what it charged
    at: datetime | None = None  # a done row: when it was written (reminders "ignored")
    due_on: date | None = None  # a fee: the day it was due (periods of removed fee rules)


_LONG_AGO = datetime(1970, 1, 2, tzinfo=UTC)
_STATES = {s.value: s for s in EntryState}


def finished_of(entry: LedgerEntry) -> Finished:
    """What a summary keeps of a row in a terminal state."""
    done = entry.state == EntryState.DONE
    fee = entry.kind == ActionKind.LATE_FEE
    return Finished(str(entry.kind), entry.rule, entry.occurrence, str(entry.state),
                    entry.amount if done and fee else None,
                    entry.updated_at if done else None, entry.due_on if fee else None)


def summary_history(invoice: Invoice, rows: Iterable[Finished]) -> list[LedgerEntry]:
    """Ledger entries standing for `rows`; what a row does not say is set to the value that
    makes the planner do the most (see the module docstring)."""
    return [construct(LedgerEntry, {
        "key": action_key(invoice.tenant, invoice.platform, invoice.id, f.kind, f.rule,
                          f.occurrence), "tenant": invoice.tenant, "invoice_id": invoice.id,
        "kind": ACTION_KINDS.get(f.kind, f.kind), "rule": f.rule, "occurrence": f.occurrence,
        "state": _STATES[f.state], "due_on": f.due_on or _LONG_AGO.date(),
        "updated_at": f.at or _LONG_AGO, "ref": None, "reason": None, "amount": f.amount,
        "attempts": 1, "owner": None, "lease_until": None, "rules_version": None})
        for f in rows]


def with_summary(invoices: Iterable[Invoice],
                 history: Mapping[str, Sequence[LedgerEntry]],
                 finished: Mapping[str, Collection[Finished]]) -> dict[str, list[LedgerEntry]]:
    """Each invoice's ledger rows plus what its summary keeps of rows no longer there (aged
    out): the history to plan from once rows can expire. A row that exists wins."""
    out = {i: list(rows) for i, rows in history.items()}
    for inv in invoices:
        kept = finished.get(inv.id)
        if not kept:
            continue
        rows = out.setdefault(inv.id, [])
        present = {(str(e.kind), e.rule, e.occurrence) for e in rows}
        rows += summary_history(inv, [f for f in kept
                                      if (f.kind, f.rule, f.occurrence) not in present])
    return out


def may_act(
    invoices: Iterable[Invoice],
    finished: Mapping[str, Collection[Finished]],
    policy: Policy,
    today: date,
    *,
    plans: Iterable[PaymentPlan] = (),
    go_live: date | None = None,
    pauses: Sequence[Pause] = (),
    busy: Collection[str] = (),
) -> set[str] | None:
    """Ids of the invoices plan_run() could act on today, given each invoice's finished keys
    (`finished`, by invoice id; an invoice missing from it is always named). `busy`: invoices
    with a row in flight (claimed or retry, the run's leftovers), always named: a journey step
    under way is finished whatever the gap (planner.journey), and a summary keeps no such
    row. None when the rules use customer risk levels: those are computed from every
    invoice's ledger rows."""
    invoices, plans = list(invoices), list(plans)
    keys = {i: {(f.kind, f.rule, f.occurrence) for f in rows} for i, rows in finished.items()}
    bound = can_act(invoices, keys, policy, today, plans=plans, go_live=go_live, pauses=pauses)
    if bound is None:
        return None  # risk rules
    judge = Planner(policy, today, go_live=go_live, pauses=pauses)
    named: set[str] = {inv.id for inv in invoices if inv.id in busy}
    plain: list[Invoice] = []
    history: dict[str, list[LedgerEntry]] = {}
    for inv in invoices:
        if inv.id in named:
            continue
        if inv.id not in bound:
            continue  # nothing can be due for it before a later day (first_due)
        rows = finished.get(inv.id)
        if rows is None or ((inv.disputed or judge.pauses_for(inv)) and any(
                f.kind == FEE and f.state == DONE and f.amount is None for f in rows)):
            named.add(inv.id)  # no summary; or waivers, which need every fee's amount
            continue
        plain.append(inv)
        if rows:
            history[inv.id] = summary_history(inv, rows)
    # the gap read from every summary of the customer's invoices (not only the ones planned);
    # rows the summaries lack could only hold more back (journey.Optimistic)
    customers = {inv.customer_id for inv in plain}
    logs = customer_logs(((inv.customer_id, summary_history(inv, finished.get(inv.id, ())))
                          for inv in invoices if inv.customer_id in customers),
                         compile_policy(policy))
    named.update(a.invoice_id for a in plan(plain, history, policy, today, plans,
                                            go_live=go_live, pauses=pauses,
                                            contacts=Optimistic(logs)))
    return named
