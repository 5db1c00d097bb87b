"""Reminder stages of one invoice: where its journey starts and the one step it may take today.

* First contact (nothing recorded for the invoice yet): `journey.first_contact: gentle` starts
  at the gentlest stage after the due date that has come (the latest pre-due one while it is
  not overdue), whatever the invoice's age; `by_age` at the latest stage due. The stages
  before it are recorded as skipped, so a missed run never sends a burst.
* After that, one step at a time: the next stage once its date has come. Stages never go
  backwards; a stage whose e-mail is still owed offers that e-mail until the next stage is due.
* A stage dated before go-live with `backfill: none` is recorded as skipped, never sent.

What goes out is an offer (InvoiceJob.offer): journey.settle holds it while the customer's
last message is less than `journey.min_gap` days old and sends one message a day.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ar_sync.domain.models import Action, AddNote, EmailReminder, SendReminder, SkipStage
from ar_sync.planner.compiled import EMAIL, NOTE, ONCE, OWN_EMAIL, SKIP, TERMINAL
from ar_sync.planner.journey import day_of, holds

if TYPE_CHECKING:
    from ar_sync.planner.state import InvoiceJob as Job


def emailed(st: Any, final: Any) -> bool:
    """The stage's e-mail is recorded for good, by either channel: switching a stage from
    the platform's e-mail to ar-sync's (or back) never sends it again."""
    return st.email_key in final or st.alt_email_key in final


def _entry(job: Job, latest: int) -> int:
    """The stage an invoice's journey starts at (nothing recorded for it yet)."""
    stages = job.p.c.stages
    if job.p.c.journey.first_contact == "gentle":
        for i in range(latest + 1):
            if stages[i].days >= 1:
                return i
    return latest


def plan_reminders(job: Job) -> None:
    stages = job.p.c.stages
    final = job.final
    latest = job.facts.latest
    sent = -1  # the last stage written for this invoice (a skipped one was never sent)
    if final:
        for i in range(len(stages) - 1, -1, -1):
            if stages[i].note_key in final:
                sent = i
                break
    target = _entry(job, latest) if sent < 0 else sent + 1
    while target < len(stages) and stages[target].skip_key in final:
        target += 1  # recorded as skipped (backfill: none): the journey goes on past it
    if target > latest:
        if sent >= 0:
            _owed_email(job, sent)
        return
    dates = job.facts.stage_dates
    go_live = job.p.go_live
    # skipped stages are ledger records, not messages: written whatever the gap says
    while (go_live is not None and dates[target] < go_live
           and not stages[target].backfill and target < latest):
        st = stages[target]  # `backfill: none`: dated before go-live, recorded, never sent
        job.emit(SkipStage, SKIP, st.name, ONCE, dates[target],
                 f"dated {dates[target]}, before go-live {go_live} (backfill: none)",
                 superseded_by="go-live")
        target += 1
    top = stages[target]
    for i in range(target):
        st = stages[i]
        if st.note_key not in final and st.skip_key not in final:
            job.emit(SkipStage, SKIP, st.name, ONCE, dates[i],
                     f"missed (day {st.days:+d}, {dates[i]}); the journey goes on with "
                     f"{top.name}", superseded_by=top.name)
    if go_live is not None and dates[target] < go_live and not top.backfill:
        job.emit(SkipStage, SKIP, top.name, ONCE, dates[target],
                 f"dated {dates[target]}, before go-live {go_live} (backfill: none)",
                 superseded_by="go-live")
        return
    # a stage meant to tell the customer waits for the gap even when its e-mail cannot go
    # (no address): its note is a step of the journey all the same (journey.customer_logs)
    facing = top.channel != "note"
    sends = _sends(job, top)
    stepped = False
    if facing and job.entries:
        midnight = job.p.midnight()  # a stage step of this invoice already written today
        stepped = any(e.kind == NOTE and e.rule != top.name and _aware(e.updated_at) >= midnight
                      for e in job.mine())
    if facing and not _under_way(job, top) and holds(
            job.log, job.p.today, job.p.c.journey.min_gap, sends=sends, stepped_today=stepped,
            own_email=sends and top.channel == "email"):
        return  # settle would hold it: not built (most invoices waiting for the gap)
    actions: list[tuple[tuple[Any, ...], Action]] = []
    saved, job.out = job.out, actions
    try:
        _send(job, target, note=True)
    finally:
        job.out = saved
    job.offer(actions, facing=facing, own_email=sends and top.channel == "email",
              rank=1, sends=sends, stepped_today=stepped)


def _under_way(job: Job, st: Any) -> bool:
    """One of the stage's writes is claimed or waiting for a retry (InvoiceJob.offer)."""
    keys = (st.note_key, st.email_key)
    return any(e.state not in TERMINAL and (e.kind, e.rule, e.occurrence) in keys
               for e in job.mine()) if job.entries else False


def _sends(job: Job, st: Any) -> bool:
    """Whether the stage's e-mail goes (a platform e-mail needs the invoice's address; ar-sync's
    own may go to a contact's override address: messaging decides)."""
    return bool(st.email and not emailed(st, job.final)
                and (st.channel == "email" or bool(job.inv.customer_email)))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _owed_email(job: Job, index: int) -> None:
    """A recorded stage whose e-mail is still owed (it failed to go, or the customer had no
    address then) offers that e-mail again until the next stage is due."""
    st = job.p.c.stages[index]
    if st.skip_key in job.final:
        return
    actions: list[tuple[tuple[Any, ...], Action]] = []
    saved, job.out = job.out, actions
    try:
        facing = _send(job, index, note=False)
    finally:
        job.out = saved
    noted = min((day_of(e.updated_at, job.p.c) for e in job.mine()
                 if e.kind == NOTE and e.rule == st.name), default=None)
    job.offer(actions, facing=facing, own_email=facing and st.channel == "email", rank=1,
              noted=noted)


def _send(job: Job, index: int, *, note: bool) -> bool:
    """Emit stage `index`'s note (when `note`) and its e-mail when one is owed; whether an
    e-mail (something the customer receives) was emitted."""
    st = job.p.c.stages[index]
    on = job.facts.stage_dates[index]
    # No address, no platform e-mail: the platform would refuse it; the note still records
    # the stage.
    send_email = _sends(job, st)
    why = f"stage day {st.days:+d}, due {on}; {job.overdue_text()}"
    if note:
        text = st.note.render(job.template_values(st.name))
        job.emit(AddNote, NOTE, st.name, ONCE, on, why, text=text, tone=st.tone)
    if send_email and st.channel == "email":
        job.emit(EmailReminder, OWN_EMAIL, st.name, ONCE, on, why,
                 customer_id=job.inv.customer_id, tone=st.tone)
    elif send_email:
        job.emit(SendReminder, EMAIL, st.name, ONCE, on, why, to=job.inv.customer_email)
    return send_email
