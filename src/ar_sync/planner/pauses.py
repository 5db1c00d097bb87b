"""Disputes and pauses for one invoice: waivers, the freeze, broken promises, forgiveness.

Only invoices that are disputed or have a pause (stored, or the platform marker) come here,
so the plain path stays as cheap as it was:

* disputed (the platform flag or an active `dispute` pause) and a fee rule says
  `waive_on_dispute: true`: every fee of that rule we charged (done in the ledger) gets a
  WaiveFee, once (its key is the fee's rule and occurrence under the waive kind);
* an active pause: nothing else at all (no reminder, fee or escalation);
* a `promise` pause whose `until` passed with the invoice unpaid: one note for the
  bookkeeper (rule `promise-broken`), then the rules resume;
* ended pauses: their days are forgiven for fee rules with `after_pause: forgive`. The
  planner needs the ended pauses for that (the store keeps them), as it needs the ledger.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ar_sync.domain.construct import construct
from ar_sync.domain.models import AddNote, Money, WaiveFee
from ar_sync.domain.money import format_money
from ar_sync.domain.pauses import Pause, active_pauses
from ar_sync.planner.compiled import DONE, FEE, NOTE, WAIVE
from ar_sync.planner.fee_periods import pause_window

if TYPE_CHECKING:
    from ar_sync.planner.state import InvoiceJob as Job

PROMISE_BROKEN = "promise-broken"
_ONE_DAY = timedelta(days=1)


def plan_special(job: Job) -> bool:
    """Plan a disputed or paused invoice (see the module docstring); True when the usual steps
    (fees, stages, escalations) should then run for it."""
    p = job.p
    inv = job.inv
    pauses = p.pauses_for(inv)
    active = active_pauses(pauses, inv, p.today) if pauses else None
    if p.c.waives and (inv.disputed or (active is not None and active.reason == "dispute")):
        plan_waivers(job)
    if active is not None or p.excluded(inv) is not None:
        return False
    ended = [x for x in pauses if x.applies_to(inv) and x.since <= p.today]
    for x in ended:
        if x.reason == "promise" and x.until is not None and x.until < p.today:
            broken_promise(job, x)
    job.windows = tuple(pause_window(x.since, x.until, p.today) for x in ended)
    return True


def broken_promise(job: Job, pause: Pause) -> None:
    occurrence = f"{pause.since}..{pause.until}"
    if (NOTE, PROMISE_BROKEN, occurrence) in job.final:
        return
    inv = job.inv
    assert pause.until is not None
    job.emit(AddNote, NOTE, PROMISE_BROKEN, occurrence, pause.until + _ONE_DAY,
             f"promise to pay by {pause.until} not kept; the rules resume",
             text=f"Promise to pay invoice {inv.number} by {pause.until} was not kept: "
                  f"{format_money(inv.balance, inv.currency)} is still unpaid. Follow-up "
                  f"resumes.", tone="firm")


def plan_waivers(job: Job) -> None:
    """Reverse every fee charged under a `waive_on_dispute` rule, once each."""
    rules = {f.name: f.account for f in job.p.c.fees if f.waive_on_dispute}
    inv = job.inv
    final = job.final
    for e in job.mine():
        if (e.kind != FEE or e.rule not in rules or e.state != DONE or not e.amount
                or (WAIVE, e.rule, e.occurrence) in final):
            continue
        amount = construct(Money, {"amount": e.amount, "currency": inv.currency})
        shown = format_money(e.amount, inv.currency)
        job.emit(WaiveFee, WAIVE, e.rule, e.occurrence, job.p.today,
                 f"invoice disputed: {e.rule} {e.occurrence} ({shown}) waived under "
                 f"waive_on_dispute", fee_key=e.key, amount=amount,
                 label=f"Late fee {e.occurrence} waived on invoice {inv.number} ({shown})",
                 account=rules[e.rule])
