"""One message per customer and day: grouping a plan's e-mail items. Pure (functional core).

The planner emits one EmailReminder per invoice whose stage says `channel: email`. Here the
items of one customer become one CustomerMessage (or one per invoice with `group_by:
invoice`), composed in the firmest tone among them, with a ledger key derived from (tenant,
customer, day[, invoice]) so that whatever a crashed or concurrent run grouped, a customer
gets at most one message a day; the Message-ID adds a digest of the items' own keys.
Escalations that name people or webhooks to notify get one EscalationNotice per target.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from ar_sync.domain.contacts import Contact, resolve
from ar_sync.domain.models import (
    Action,
    ActionKind,
    CustomerMessage,
    EmailReminder,
    Escalate,
    EscalationNotice,
    Invoice,
    action_key,
)
from ar_sync.messages.compose import House, Line, Wording, compose, firmest

GroupBy = Literal["customer", "invoice"]


@dataclass(frozen=True)
class MailRules:
    """What the rules say about e-mail, read once from the Policy."""

    company: str = ""
    group_by: GroupBy = "customer"
    attach_pdf: bool = False
    wording: Mapping[str, Wording] = field(default_factory=dict)
    notify: Mapping[str, tuple[tuple[Literal["email", "webhook"], str], ...]] = field(
        default_factory=dict)  # escalation rule -> ((channel, target), ...)
    locale: str | None = None  # the rules' `locale` (None: from the country or currency)
    country: str | None = None  # the company's country (calendar.holidays)
    instructions: str | None = None  # email.payment_instructions (a template)
    # (currency, today) -> the journey's placeholders: fee terms, the final notice's deadline
    values: Callable[[str, date], Mapping[str, str]] | None = None

    @property
    def house(self) -> House:
        return House(self.company, self.locale, self.country, self.instructions)


@dataclass
class Unreachable:
    """A customer who was due an e-mail and gets none: the run report lists them."""

    customer_id: str
    customer_name: str
    invoices: tuple[str, ...]
    why: str


@dataclass
class MessagePlan:
    actions: list[Action] = field(default_factory=list)
    messages: list[CustomerMessage] = field(default_factory=list)
    unreachable: list[Unreachable] = field(default_factory=list)


def message_key(tenant: str, platform: str, customer_id: str, day: date, group: str) -> str:
    """The ledger key of a customer's message of the day (one row per customer and day)."""
    return action_key(tenant, platform, f"customer:{customer_id}", ActionKind.MESSAGE, group,
                      day.isoformat())


def message_id(key: str, item_keys: Sequence[str], domain: str) -> str:
    """RFC 5322 Message-ID: the ledger key plus a digest of the invoices' action keys."""
    digest = hashlib.sha256("\x1f".join(sorted(item_keys)).encode()).hexdigest()[:16]
    return f"<{key}.{digest}@{domain or 'ar-sync.invalid'}>"


def _notices(action: Escalate, rules: MailRules, inv: Invoice | None) -> list[Action]:
    out: list[Action] = []
    for channel, target in rules.notify.get(action.rule, ()):
        body: dict[str, Any] = {
            "event": "invoice.escalated", "tenant": action.tenant, "platform": action.platform,
            "invoice_id": action.invoice_id, "invoice_number": action.invoice_number,
            "escalation": action.rule, "to": action.to, "reason": action.reason,
            "note": action.text, "date": action.due_on.isoformat(), "id": action.key,
        }
        if inv is not None:
            body.update(customer_id=inv.customer_id, customer_name=inv.customer_name,
                        currency=inv.currency, balance=str(inv.balance),
                        due_date=inv.due_date.isoformat(), payment_link=inv.payment_link)
        out.append(EscalationNotice(
            key=action_key(action.tenant, action.platform, action.invoice_id, ActionKind.NOTIFY,
                           f"{action.rule}:{channel}:{target}", action.occurrence),
            tenant=action.tenant, platform=action.platform, invoice_id=action.invoice_id,
            invoice_number=action.invoice_number, rule=action.rule,
            occurrence=action.occurrence, due_on=action.due_on,
            reason=f"escalation {action.rule} notifies {channel}", channel=channel,
            target=target, escalation=action.key, body=body))
    return out


def plan_messages(actions: Sequence[Action], invoices: Mapping[str, Invoice], rules: MailRules,
                  contacts: Mapping[str, Contact], today: date, *,
                  sender_domain: str = "") -> MessagePlan:
    """Replace e-mail items by one message per customer (or invoice) and add escalation
    notices; every other action keeps its place. A message takes the place of its first item
    (the plan is in priority order)."""
    groups: dict[tuple[str, str, str, str], list[tuple[EmailReminder, Invoice]]] = {}
    addresses: dict[tuple[str, str, str], set[str]] = {}
    for action in actions:
        if isinstance(action, EmailReminder):
            inv = invoices.get(action.invoice_id)
            if inv is not None:
                addresses.setdefault((action.tenant, action.platform, inv.customer_id),
                                     set()).add(_address_of(inv, contacts))
    for action in actions:
        if isinstance(action, EmailReminder):
            inv = invoices.get(action.invoice_id)
            if inv is None:
                continue
            groups.setdefault(_group_id(action, inv, rules, contacts, addresses),
                              []).append((action, inv))
    out = MessagePlan()
    built: dict[tuple[str, str, str, str], CustomerMessage | None] = {}
    for action in actions:
        if isinstance(action, Escalate):
            out.actions.append(action)
            out.actions.extend(_notices(action, rules, invoices.get(action.invoice_id)))
            continue
        if not isinstance(action, EmailReminder):
            out.actions.append(action)
            continue
        inv = invoices.get(action.invoice_id)
        if inv is None:
            continue
        gid = _group_id(action, inv, rules, contacts, addresses)
        if gid in built:
            continue
        message = _message(gid, groups[gid], rules, contacts, today, sender_domain, out)
        built[gid] = message
        if message is not None:
            out.actions.append(message)
            out.messages.append(message)
    return out


def _address_of(inv: Invoice, contacts: Mapping[str, Contact]) -> str:
    """Where an invoice's message goes: the customer's override address, else the invoice's
    own (QuickBooks `BillEmail`), casefolded."""
    contact = contacts.get(inv.customer_id)
    override = contact.email if contact is not None else None
    return (override or inv.customer_email or "").casefold()


def _group_id(action: EmailReminder, inv: Invoice, rules: MailRules,
              contacts: Mapping[str, Contact],
              addresses: Mapping[tuple[str, str, str], set[str]]) -> tuple[str, str, str, str]:
    """One message per customer, day and recipient address: an invoice's payment link goes
    only to the address that invoice names. A customer with one address keeps the group
    'customer' (the ledger row of the day); each further address gets its own row."""
    if rules.group_by == "invoice":
        return (action.tenant, action.platform, inv.customer_id, inv.id)
    found = addresses.get((action.tenant, action.platform, inv.customer_id), set())
    if len(found) <= 1:
        return (action.tenant, action.platform, inv.customer_id, "customer")
    digest = hashlib.sha256(_address_of(inv, contacts).encode()).hexdigest()[:12]
    return (action.tenant, action.platform, inv.customer_id, f"customer@{digest}")


def _message(gid: tuple[str, str, str, str], items: list[tuple[EmailReminder, Invoice]],
             rules: MailRules, contacts: Mapping[str, Contact], today: date, domain: str,
             out: MessagePlan) -> CustomerMessage | None:
    tenant, platform, customer_id, group = gid
    lines = [Line(inv, item.rule, item.tone) for item, inv in items]
    first = items[0][1]
    # every invoice of the group names this address (or the customer's override): _group_id
    address = next((inv.customer_email for _, inv in items if inv.customer_email), None)
    recipient = resolve(customer_id, address, contacts)
    if recipient.address is None:
        out.unreachable.append(Unreachable(customer_id, first.customer_name,
                                           tuple(inv.number for _, inv in items),
                                           recipient.why_not or "no address"))
        return None
    lead = firmest(lines).invoice
    extra = rules.values(lead.currency, today) if rules.values is not None else None
    composed = compose(lines, wording=rules.wording, today=today, house=rules.house,
                       extra=extra)
    key = message_key(tenant, platform, customer_id, today, group)
    item_keys = tuple(item.key for item, _ in items)
    numbers = ", ".join(inv.number for _, inv in items)
    return CustomerMessage(
        key=key, tenant=tenant, platform=platform, invoice_id=first.id,
        invoice_number=first.number, rule="message", occurrence=today.isoformat(),
        due_on=today, reason=f"{len(items)} invoice(s) due a reminder: {numbers}",
        customer_id=customer_id, customer_name=first.customer_name, to=recipient.address,
        items=tuple(item for item, _ in items), message_id=message_id(key, item_keys, domain),
        subject=composed.subject, text=composed.text, html=composed.html, tone=composed.tone,
        attach_pdf=rules.attach_pdf)
