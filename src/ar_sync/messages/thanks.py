"""`on_paid`: thank a customer, once, when an invoice they were reminded about is paid. Pure.

The run keeps the invoices it saw paid (the store's paid invoices); this plans one thank-you
message per such invoice that got a reminder e-mail (ar-sync's or the platform's) and has
no thank-you recorded yet. Its ledger row is filed under the invoice with the rule "thanks",
so the ledger makes it exactly once: a recorded row (sent, failed, ambiguous) is never
planned again; a message not sent on its day (no mail setup yet) is planned the next day,
within `within_days` of the payment.
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
    EntryState,
    Invoice,
    LedgerEntry,
    action_key,
)
from ar_sync.messages.formats import day, locale_for, money
from ar_sync.messages.grouping import message_id
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
    return any(str(e.kind) in REMINDED and e.state == EntryState.DONE for e in entries)


def _thanked(entries: Sequence[LedgerEntry]) -> bool:
    return any(e.rule == THANKS and e.state != EntryState.SKIPPED for e in entries)


def plan_thanks(paid: Sequence[Invoice], history: Mapping[str, Sequence[LedgerEntry]],
                rules: ThankRules, contacts: Mapping[str, Contact], today: date, *,
                go_live: date | None = None, sender_domain: str = "",
                ) -> list[CustomerMessage]:
    """One thank-you per paid invoice that was reminded about and is not yet thanked."""
    out = []
    for inv in paid:
        paid_on = inv.paid_at or inv.updated_at.date()
        if not 0 <= (today - paid_on).days <= rules.within_days:
            continue
        if go_live is not None and paid_on < go_live:
            continue
        entries = history.get(inv.id, ())
        if not _reminded(entries) or _thanked(entries):
            continue
        recipient = resolve(inv.customer_id, inv.customer_email, contacts)
        if recipient.address is None:
            continue
        out.append(_message(inv, recipient.address, rules, today, sender_domain))
    return out


def _message(inv: Invoice, to: str, rules: ThankRules, today: date,
             domain: str) -> CustomerMessage:
    locale = locale_for(rules.locale, rules.country, inv.currency)
    values = invoice_values(
        number=inv.number, customer_name=inv.customer_name, balance=inv.balance,
        total=inv.total, currency=inv.currency, issue_date=inv.issue_date,
        due_date=inv.due_date, today=today, payment_link=None,
        company_name=rules.company, stage=THANKS)
    values.update(balance=money(inv.balance, inv.currency, locale),
                  total=money(inv.total, inv.currency, locale),
                  issue_date=day(inv.issue_date, locale), due_date=day(inv.due_date, locale),
                  invoice_count="1", total_due=money(inv.total, inv.currency, locale))
    subject = " ".join(compile_template(rules.subject, EMAIL_FIELDS).render(values).split())
    body = compile_template(rules.body, EMAIL_FIELDS).render(values).strip()
    sign_off = f"Kind regards,\n{rules.company}" if rules.company else "Kind regards"
    key = action_key(inv.tenant, inv.platform, inv.id, ActionKind.MESSAGE, THANKS,
                     today.isoformat())
    paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>"
                         for p in (body, sign_off) for p in p.split("\n\n") if p.strip())
    return CustomerMessage(
        key=key, tenant=inv.tenant, platform=inv.platform, invoice_id=inv.id,
        invoice_number=inv.number, rule=THANKS, occurrence=today.isoformat(), due_on=today,
        reason=f"invoice {inv.number} paid after a reminder: thank the customer",
        customer_id=inv.customer_id, customer_name=inv.customer_name, to=to, items=(),
        message_id=message_id(key, (), domain), subject=subject,
        text=f"{body}\n\n{sign_off}\n",
        html=('<!DOCTYPE html><html><head><meta charset="utf-8">'
              f"<title>{html.escape(subject)}</title></head>"
              f'<body style="font-family:sans-serif;max-width:40em">{paragraphs}</body></html>'),
        tone="friendly")
