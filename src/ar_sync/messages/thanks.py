"""`on_paid`: thank a customer, once, when an invoice they were reminded about is paid. Pure.

The run keeps the invoices it saw paid (the store's paid invoices); this plans one thank-you
per customer and day listing each such invoice that got a reminder e-mail (ar-sync's or the
platform's) and has no thank-you recorded yet. Each invoice is an item of the message with
its own ledger row (rule "thanks", occurrence "once"), so the ledger makes it exactly once:
a recorded row (sent, failed, ambiguous) is never planned again; an invoice whose message
was not sent (no mail setup yet) is planned the next day, within `within_days` of the
payment.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from ar_sync.domain.contacts import Contact, resolve
from ar_sync.domain.models import (
    ActionKind,
    CustomerMessage,
    EmailReminder,
    EntryState,
    Invoice,
    LedgerEntry,
    action_key,
)
from ar_sync.messages.formats import day, locale_for, money, money_sum
from ar_sync.messages.grouping import message_id, message_key
from ar_sync.rules.templates import EMAIL_FIELDS, compile_template, invoice_values

__all__ = ["THANKS", "ThankRules", "plan_thanks"]

THANKS = "thanks"
REMINDED = frozenset({ActionKind.CUSTOMER_EMAIL.value, ActionKind.REMINDER_EMAIL.value})


@dataclass(frozen=True)
class ThankRules:
    """The rules' `on_paid` with what the messages need from the rest of the rules."""

    subject: str
    body: str
    within_days: int = 14
    company: str = ""
    locale: str | None = None
    country: str | None = None


def _reminded(entries: Sequence[LedgerEntry]) -> bool:
    return any(str(e.kind) in REMINDED and e.rule != THANKS and e.state == EntryState.DONE
               for e in entries)


def _thanked(entries: Sequence[LedgerEntry]) -> bool:
    return any(e.rule == THANKS and e.state != EntryState.SKIPPED for e in entries)


def plan_thanks(paid: Sequence[Invoice], history: Mapping[str, Sequence[LedgerEntry]],
                rules: ThankRules, contacts: Mapping[str, Contact], today: date, *,
                go_live: date | None = None, sender_domain: str = "",
                ) -> list[CustomerMessage]:
    """One thank-you per customer and day, listing each paid invoice that was reminded
    about and is not yet thanked."""
    due: dict[tuple[str, str, str], list[Invoice]] = {}
    for inv in sorted(paid, key=lambda i: (i.customer_id, i.number)):
        paid_on = inv.paid_at or inv.updated_at.date()
        if not 0 <= (today - paid_on).days <= rules.within_days:
            continue
        if go_live is not None and paid_on < go_live:
            continue
        entries = history.get(inv.id, ())
        if _reminded(entries) and not _thanked(entries):
            due.setdefault((inv.tenant, inv.platform, inv.customer_id), []).append(inv)
    out = []
    for (_, _, customer_id), invoices in due.items():
        address = next((i.customer_email for i in invoices if i.customer_email), None)
        recipient = resolve(customer_id, address, contacts)
        if recipient.address is not None:
            out.append(_message(invoices, recipient.address, rules, today, sender_domain))
    return out


def _values(inv: Invoice, invoices: Sequence[Invoice], rules: ThankRules, today: date,
            locale: str) -> dict[str, str]:
    values = invoice_values(
        number=inv.number, customer_name=inv.customer_name, balance=inv.balance,
        total=inv.total, currency=inv.currency, issue_date=inv.issue_date,
        due_date=inv.due_date, today=today, payment_link=None,
        company_name=rules.company, stage=THANKS)
    values.update(balance=money(inv.balance, inv.currency, locale),
                  total=money(inv.total, inv.currency, locale),
                  issue_date=day(inv.issue_date, locale), due_date=day(inv.due_date, locale),
                  invoice_count=str(len(invoices)),
                  total_due=money_sum(((i.total, i.currency) for i in invoices), locale))
    return values


def _message(invoices: Sequence[Invoice], to: str, rules: ThankRules, today: date,
             domain: str) -> CustomerMessage:
    inv = invoices[0]
    locale = locale_for(rules.locale, rules.country, inv.currency)
    values = _values(inv, invoices, rules, today, locale)
    subject = " ".join(compile_template(rules.subject, EMAIL_FIELDS).render(values).split())
    body = compile_template(rules.body, EMAIL_FIELDS).render(values).strip()
    listed = "\n".join(f"{i.number}: {money(i.total, i.currency, locale)}, paid in full"
                        for i in invoices)
    sign_off = f"Kind regards,\n{rules.company}" if rules.company else "Kind regards"
    items = tuple(EmailReminder(
        key=action_key(i.tenant, i.platform, i.id, ActionKind.CUSTOMER_EMAIL, THANKS, "once"),
        tenant=i.tenant, platform=i.platform, invoice_id=i.id, invoice_number=i.number,
        rule=THANKS, occurrence="once", due_on=today, reason="paid after a reminder",
        customer_id=i.customer_id) for i in invoices)
    key = message_key(inv.tenant, inv.platform, inv.customer_id, today, THANKS)
    text = f"{body}\n\n{listed}\n\n{sign_off}\n"
    paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>"
                         for p in text.split("\n\n") if p.strip())
    return CustomerMessage(
        key=key, tenant=inv.tenant, platform=inv.platform, invoice_id=inv.id,
        invoice_number=inv.number, rule=THANKS, occurrence=today.isoformat(), due_on=today,
        reason=f"paid after a reminder: {', '.join(i.number for i in invoices)}",
        customer_id=inv.customer_id, customer_name=inv.customer_name, to=to, items=items,
        message_id=message_id(key, tuple(i.key for i in items), domain), subject=subject,
        text=text,
        html=('<!DOCTYPE html><html><head><meta charset="utf-8">'
              f"<title>{html.escape(subject)}</title></head>"
              f'<body style="font-family:sans-serif;max-width:40em">{paragraphs}</body></html>'),
        tone="friendly")
