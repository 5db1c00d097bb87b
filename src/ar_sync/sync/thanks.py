"""The run's side of `on_paid`: see which reminded invoices were paid, plan their thank-yous.

A daily full fetch returns open invoices only, so an invoice paid since yesterday just
leaves the list. For those that got a reminder e-mail, one read asks the platform why: paid
ones are kept as paid (what the report's DSO also reads); voided or deleted ones are not
thanked. The thank-you messages themselves are planned by messages.thanks (pure) from the
paid invoices and the ledger, and sent like any message (claim -> send -> complete).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from ar_sync.domain.errors import ConnectorError
from ar_sync.domain.models import Action, CustomerMessage, InvoiceStatus
from ar_sync.messages.thanks import REMINDED, ThankRules, plan_thanks
from ar_sync.rules.policy import Policy
from ar_sync.sync.context import RunContext

log = logging.getLogger(__name__)


def thank_rules(policy: Policy) -> ThankRules | None:
    on_paid = policy.on_paid
    if on_paid is None:
        return None
    return ThankRules(on_paid.subject, on_paid.body, on_paid.within_days,
                      policy.company_name, policy.locale,
                      policy.calendar.holidays.country if policy.calendar.holidays else None)


def keep_paid(ctx: RunContext, gone: Collection[str]) -> None:
    """`gone` left the open invoices in a full fetch: keep the reminded ones that the
    platform says are paid as paid invoices (one read each)."""
    if not gone or ctx.policy.on_paid is None or ctx.dry_run:
        return
    history = ctx.store.history(ctx.tenant, gone)
    reminded = [i for i, entries in history.items()
                if any(str(e.kind) in REMINDED for e in entries)]
    for invoice_id in sorted(reminded):
        try:
            inv = ctx.connector.get_invoice(invoice_id)
        except ConnectorError as exc:  # not thanked today; nothing else depends on it
            log.warning("invoice %s: cannot read it (%s)", invoice_id, exc)
            continue
        if inv is not None and inv.status == InvoiceStatus.PAID:
            paid = inv if inv.tenant == ctx.tenant else inv.model_copy(
                update={"tenant": ctx.tenant})
            ctx.store.save_invoices(ctx.tenant, [paid], replace_all=False)


def thank_yous(ctx: RunContext, planned: Sequence[Action] = ()) -> list[CustomerMessage]:
    """Today's thank-you messages (none without `on_paid`). A customer who gets a reminder
    message today (`planned`) is thanked on a later day: one e-mail a day."""
    rules = thank_rules(ctx.policy)
    if rules is None:
        return []
    paid = [i for i in ctx.store.paid_invoices(ctx.tenant)
            if 0 <= (ctx.today - (i.paid_at or i.updated_at.date())).days <= rules.within_days]
    if not paid:
        return []
    history = ctx.store.history(ctx.tenant, [i.id for i in paid])
    domain = ctx.mail.sender.domain if ctx.mail.sender else ""
    busy = {a.customer_id for a in planned if isinstance(a, CustomerMessage)}
    return [m for m in plan_thanks(paid, history, rules, ctx.store.contacts(ctx.tenant),
                                   ctx.today, go_live=ctx.connection.live_from(),
                                   sender_domain=domain)
            if m.customer_id not in busy]
