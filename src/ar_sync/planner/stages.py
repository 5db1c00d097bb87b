"""Reminder stages: only the latest due stage is sent, earlier unhandled ones are skipped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ar_sync.domain.models import AddNote, EmailReminder, SendReminder, SkipStage
from ar_sync.planner.compiled import EMAIL, NOTE, ONCE, OWN_EMAIL, SKIP

if TYPE_CHECKING:
    from ar_sync.planner.state import InvoiceJob as Job


def plan_reminders(job: Job) -> None:
    stages = job.p.c.stages
    final = job.final
    latest = job.facts.latest
    handled_top = -1
    if final:
        for i in range(len(stages) - 1, -1, -1):
            st = stages[i]
            if st.note_key in final or st.skip_key in final:
                handled_top = i
                break
    top = max(latest, handled_top)
    top_stage = stages[top]
    dates = job.facts.stage_dates
    for i in range(min(top, latest + 1)):
        st = stages[i]
        if st.note_key not in final and st.skip_key not in final:
            job.emit(SkipStage, SKIP, st.name, ONCE, dates[i],
                      f"missed (day {st.days:+d}, {dates[i]}); superseded by "
                      f"{top_stage.name}", superseded_by=top_stage.name)
    if top != latest:
        return  # a later stage was already handled: never go backwards
    st = top_stage
    if st.skip_key in final:
        return
    if job.facts.before_live and latest > handled_top:
        # `backfill: none`: a stage dated before go-live is recorded, never sent
        job.emit(SkipStage, SKIP, st.name, ONCE, dates[latest],
                 f"dated {dates[latest]}, before go-live {job.p.go_live} (backfill: none)",
                 superseded_by="go-live")
        return
    send_note = latest > handled_top
    # No address, no platform e-mail: the platform would refuse it; the note still records the
    # stage. ar-sync's own e-mail may go to a contact's override address: messaging decides.
    send_email = (st.email and st.email_key not in final
                  and (st.channel == "email" or bool(job.inv.customer_email)))
    if not (send_note or send_email):
        return
    on = dates[latest]
    why = f"stage day {st.days:+d}, due {on}; {job.overdue_text()}"
    if send_note:
        text = st.note.render(job.template_values(st.name))
        job.emit(AddNote, NOTE, st.name, ONCE, on, why, text=text, tone=st.tone)
    if send_email and st.channel == "email":
        job.emit(EmailReminder, OWN_EMAIL, st.name, ONCE, on, why,
                 customer_id=job.inv.customer_id, tone=st.tone)
    elif send_email:
        job.emit(SendReminder, EMAIL, st.name, ONCE, on, why,
                  to=job.inv.customer_email)
