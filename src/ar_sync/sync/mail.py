"""The e-mail step of a sync run: group the plan's e-mail items, then deliver messages and
notices through the ledger. Thin glue so sync.py only calls two functions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import partial
from typing import Literal

from ar_sync.domain.errors import ConnectorError
from ar_sync.domain.models import Action, CustomerMessage, EmailReminder, EscalationNotice, Invoice
from ar_sync.messages.compose import Wording
from ar_sync.messages.grouping import MailRules, MessagePlan, plan_messages
from ar_sync.messages.sending import MailSetup
from ar_sync.rules.policy import Policy
from ar_sync.rules.terms import journey_values
from ar_sync.sync.connector import Connector
from ar_sync.sync.deliver import (
    Delivered,
    PdfSource,
    deliver_message,
    deliver_notice,
    settle_leftover_item,
)
from ar_sync.sync.store import Store

log = logging.getLogger(__name__)

MAIL_KINDS = (CustomerMessage, EmailReminder, EscalationNotice)


def mail_rules(policy: Policy) -> MailRules:
    notify: dict[str, tuple[tuple[Literal["email", "webhook"], str], ...]] = {}
    for esc in policy.escalations:
        if esc.notify is not None:
            notify[esc.name] = (tuple(("email", a) for a in esc.notify.email)
                                + tuple(("webhook", u) for u in esc.notify.webhook))
    return MailRules(
        company=policy.company_name, group_by=policy.email.group_by,
        attach_pdf=policy.email.attach_pdf,
        wording={r.name: Wording(r.tone, r.subject, r.body) for r in policy.reminders},
        notify=notify, locale=policy.locale,
        country=policy.calendar.holidays.country if policy.calendar.holidays else None,
        instructions=policy.email.payment_instructions,
        values=partial(journey_values, policy))


def mail_problem(policy: Policy, setup: MailSetup) -> str | None:
    """Why these rules cannot do what they say with this setup, or None. A rule set that
    e-mails customers (or notifies by e-mail or webhook) with nothing to send it through
    would defer every e-mail, run after run, while the run looked successful."""
    needs: list[str] = []
    stages = [r.name for r in policy.reminders if r.delivery == "email"]
    people = [e.name for e in policy.escalations if e.notify is not None and e.notify.email]
    if (stages or people) and not setup.can_send:
        what = ", ".join([*(f"stage {n}" for n in stages), *(f"escalation {n}" for n in people)])
        needs.append(f"the rules send ar-sync's own e-mail ({what}) but no sender is "
                     "configured: set AR_SYNC_MAIL_FROM and a transport, or the company's "
                     "own (`ar-sync sending set --from ...`)")
    if webhook_urls(policy) and setup.webhooks is None:
        needs.append("the rules notify webhooks but no webhook secret is configured: set "
                     "AR_SYNC_NOTIFY_WEBHOOK_SECRET, or the company's own (`ar-sync sending "
                     "set --webhook-secret-file ...`)")
    if not needs:
        return None
    return "; ".join(needs) + " (until then these are kept as deferred, nothing is lost)"


def webhook_urls(policy: Policy) -> list[str]:
    """Every escalation webhook URL a rule set would POST to."""
    return [u for esc in policy.escalations if esc.notify is not None
            for u in esc.notify.webhook]


def group_plan(store: Store, tenant: str, actions: Sequence[Action],
               invoices: Mapping[str, Invoice], policy: Policy, today: date,
               setup: MailSetup, connector: Connector | None = None) -> MessagePlan:
    """The plan with e-mail items grouped into messages (pure, but for reading contacts and
    resolving payment links the connector only fetches on demand)."""
    items = [a for a in actions if isinstance(a, EmailReminder)]
    contacts = store.contacts(tenant) if items else {}
    if items and connector is not None:
        invoices = _with_links(invoices, {a.invoice_id for a in items}, connector)
    domain = setup.sender.domain if setup.sender else ""
    return plan_messages(actions, invoices, mail_rules(policy), contacts, today,
                         sender_domain=domain)


def _with_links(invoices: Mapping[str, Invoice], wanted: set[str],
                connector: Connector) -> Mapping[str, Invoice]:
    """Replace a platform's lazy link reference (Xero: `xero-online-invoice:<id>`, one call
    each) by the customer's URL, for the invoices about to be e-mailed only."""
    resolve: Callable[[str], str | None] | None = getattr(connector, "payment_link", None)
    if resolve is None:
        return invoices
    out = dict(invoices)
    for invoice_id in wanted:
        inv = out.get(invoice_id)
        link = inv.payment_link if inv is not None else None
        if inv is None or not link or link.startswith(("https://", "http://")):
            continue
        try:
            url = resolve(inv.id)
        except ConnectorError as exc:
            log.warning("invoice %s: no payment link (%s)", inv.number, exc)
            url = None
        out[invoice_id] = inv.model_copy(update={"payment_link": url})
    return out


def keys_in_plan(actions: Iterable[Action]) -> set[str]:
    """Every key the plan covers, a message's items included (they are not leftovers)."""
    keys: set[str] = set()
    for a in actions:
        keys.add(a.key)
        if isinstance(a, CustomerMessage):
            keys.update(i.key for i in a.items)
    return keys


def leftover_order(action: Action) -> int:
    """Leftover messages settle their items, so they go before leftover items."""
    return 1 if isinstance(action, EmailReminder) else 0


def _pdf_source(connector: Connector, invoices: Mapping[str, Invoice]) -> PdfSource | None:
    fetch: Callable[[Invoice], bytes | None] | None = getattr(connector, "invoice_pdf", None)
    if fetch is None:
        return None

    def pdf(invoice_id: str) -> bytes | None:
        inv = invoices.get(invoice_id)
        if inv is None:
            return None
        try:
            return fetch(inv)
        except ConnectorError as exc:  # send without the PDF rather than not at all
            log.warning("invoice %s: no PDF (%s)", inv.number, exc)
            return None

    return pdf


def execute(store: Store, connector: Connector, action: Action, *, setup: MailSetup,
            invoices: Mapping[str, Invoice], today: date, owner: str,
            clock: Callable[[], datetime], lease_seconds: float) -> Delivered | None:
    """Deliver one message or notice (or close a leftover item); None: not a mail action."""
    if isinstance(action, CustomerMessage):
        return deliver_message(store, action, setup=setup, today=today, owner=owner,
                               clock=clock, lease_seconds=lease_seconds,
                               pdf=_pdf_source(connector, invoices))
    if isinstance(action, EscalationNotice):
        return deliver_notice(store, action, setup=setup, owner=owner, clock=clock,
                              lease_seconds=lease_seconds)
    if isinstance(action, EmailReminder):
        return settle_leftover_item(store, action, owner=owner, clock=clock,
                                    lease_seconds=lease_seconds) or Delivered(
                                        "skipped", "settled by its message")
    return None
