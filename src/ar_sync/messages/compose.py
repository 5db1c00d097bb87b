"""What the customer reads: subject, plain text and HTML of one reminder e-mail. Pure.

The stage's `subject` and `body` are admin-written templates (templates.py: placeholders only,
no code). The HTML part is built by escaping *everything* — the template's literal text and
every placeholder value — so a customer named `<script>` shows as text; the only markup is
ours. The statement (each invoice, its stage, balance and payment link) is always appended,
so a grouped message lists every invoice it covers. Nothing technical (keys, hashes) appears
in the text a customer reads; the Message-ID header carries the key, for the bookkeeper.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from ar_sync.domain.models import Invoice
from ar_sync.domain.money import format_money
from ar_sync.messages.formats import day, locale_for, money, money_sum
from ar_sync.rules.templates import EMAIL_FIELDS, Template, compile_template, invoice_values
from ar_sync.rules.wording import DEFAULT_BODIES, DEFAULT_SUBJECTS, TONE_RANK, TONES

__all__ = ["ALREADY_PAID", "ALSO_OPEN", "DEFAULT_BODIES", "DEFAULT_SUBJECTS", "HOW_TO_PAY",
           "TONES", "TONE_RANK", "Composed", "House", "Line", "Wording", "compose", "firmest",
           "total_due"]

# Every message, whatever its tone or template, ends its statement with this line.
ALREADY_PAID = "If you have already paid, thank you, and please ignore this message."
HOW_TO_PAY = "How to pay"
# no payment link on any invoice and no payment_instructions in the rules: still say how
ASK_FOR_DETAILS = "Reply to this e-mail and we will send you the payment details."


@dataclass(frozen=True, slots=True)
class House:
    """How the company writes: its name, locale and payment instructions (from the rules)."""

    company: str = ""
    locale: str | None = None  # None: from the company's country, else the currency
    country: str | None = None  # the company's country (calendar.holidays)
    instructions: str | None = None  # a template: bank details, a reference to quote


@dataclass(frozen=True, slots=True)
class Wording:
    """A stage's e-mail wording: its tone and optional own subject/body templates."""

    tone: str = "friendly"
    subject: str | None = None
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """One invoice in a message: what the statement shows."""

    invoice: Invoice
    stage: str
    tone: str


@dataclass(frozen=True, slots=True)
class Composed:
    subject: str
    text: str
    html: str
    tone: str


def firmest(lines: Sequence[Line]) -> Line:
    """The line whose tone sets the message's: firmest tone, then most overdue, then largest."""
    return max(lines, key=lambda ln: (TONE_RANK.get(ln.tone, 0), -ln.invoice.due_date.toordinal(),
                                      ln.invoice.balance, ln.invoice.id))


def total_due(invoices: Sequence[Invoice]) -> str:
    """'1,200.00 USD' or, across currencies, '1,200.00 USD + 300.00 GBP' (never converted)."""
    sums: dict[str, Decimal] = {}
    for inv in invoices:
        sums[inv.currency] = sums.get(inv.currency, Decimal(0)) + inv.balance
    return " + ".join(format_money(amount, cur) for cur, amount in sorted(sums.items()))


def _values(lead: Line, lines: Sequence[Line], company: str, today: date,
            locale: str) -> dict[str, str]:
    """The placeholders, amounts and dates as the customer reads them (the locale's)."""
    inv = lead.invoice
    values = invoice_values(
        number=inv.number, customer_name=inv.customer_name, balance=inv.balance,
        total=inv.total, currency=inv.currency, issue_date=inv.issue_date,
        due_date=inv.due_date, today=today, payment_link=inv.payment_link,
        company_name=company, stage=lead.stage)
    values.update(
        balance=money(inv.balance, inv.currency, locale),
        total=money(inv.total, inv.currency, locale),
        issue_date=day(inv.issue_date, locale), due_date=day(inv.due_date, locale),
        invoice_count=str(len(lines)),
        total_due=money_sum(((ln.invoice.balance, ln.invoice.currency) for ln in lines),
                            locale))
    return values


def _template(text: str | None, fallback: Mapping[str, str], tone: str) -> Template:
    return compile_template(text or fallback.get(tone, fallback["friendly"]), EMAIL_FIELDS)


def _overdue(inv: Invoice, today: date) -> str:
    days = (today - inv.due_date).days
    if days > 0:
        return f"{days} day{'s' if days != 1 else ''} overdue"
    return "due today" if days == 0 else f"due in {-days} day{'s' if days != -1 else ''}"


def _safe_link(url: str | None) -> str | None:
    """Only http(s) links become clickable; anything else (javascript:, data:) is dropped."""
    if url and url.lower().startswith(("https://", "http://")):
        return url
    return None


def compose(lines: Sequence[Line], *, wording: Mapping[str, Wording], company: str = "",
            today: date, house: House | None = None,
            extra: Mapping[str, str] | None = None) -> Composed:
    """The e-mail for `lines` (one customer's invoices), in the tone of the firmest stage due
    that day: the opening, the statement with its total (an invoice at a milder stage listed
    as "also open", never threatened), the already-paid line, how to pay. `extra`: the
    journey's placeholders (the fee terms; the final notice's deadline, dated here in the
    company's locale)."""
    if not lines:
        raise ValueError("a message needs at least one invoice")
    house = house or House(company=company)
    lead = firmest(lines)
    locale = locale_for(house.locale, house.country, lead.invoice.currency)
    stage = wording.get(lead.stage, Wording(tone=lead.tone))
    values = {**(extra or {}), **_values(lead, lines, house.company, today, locale)}
    if "deadline_days" in values:
        values["deadline"] = day(today + timedelta(days=int(values["deadline_days"])), locale)
    subject = _template(stage.subject, DEFAULT_SUBJECTS, lead.tone).render(values)
    subject = " ".join(subject.split())  # no header injection through a newline
    intro = _template(stage.body, DEFAULT_BODIES, lead.tone).render(values)
    how = (compile_template(house.instructions, EMAIL_FIELDS).render(values).strip()
           if house.instructions else "")
    ordered = sorted(lines, key=lambda ln: (ln.invoice.due_date, ln.invoice.number))
    sign_off = f"Kind regards,\n{house.company}" if house.company else "Kind regards"
    firm = TONE_RANK.get(lead.tone, 0)
    rows = [_row(ln.invoice, today, locale, TONE_RANK.get(ln.tone, 0) < firm) for ln in ordered]
    if not how and not any(r.link for r in rows):
        how = ASK_FOR_DETAILS
    total = values["total_due"]
    return Composed(subject=subject,
                    text=_text(intro, rows, total, how, sign_off),
                    html=_html(subject, intro, rows, total, how, sign_off),
                    tone=lead.tone)


@dataclass(frozen=True, slots=True)
class _Row:
    number: str
    due: str
    status: str
    balance: str
    link: str | None


ALSO_OPEN = "also open"  # an invoice at a milder stage than the message's


def _row(inv: Invoice, today: date, locale: str, milder: bool = False) -> _Row:
    status = _overdue(inv, today)
    return _Row(inv.number, day(inv.due_date, locale),
                f"{ALSO_OPEN}, {status}" if milder else status,
                money(inv.balance, inv.currency, locale), _safe_link(inv.payment_link))


def _text(intro: str, rows: Sequence[_Row], total: str, how: str, sign_off: str) -> str:
    out = [intro.rstrip(), "",
           f"{'Invoice':<13} {'Due':<19} {'Status':<18} Balance"]
    for r in rows:
        out.append(f"{r.number:<13} {r.due:<19} {r.status:<18} {r.balance}")
        if r.link:
            out.append(f"    Pay online: {r.link}")
    out += [f"{'Total due':<52} {total}", "", ALREADY_PAID]
    if how:
        out += ["", f"{HOW_TO_PAY}:", how]
    out += ["", sign_off, ""]
    return "\n".join(out)


def _paragraphs(text: str) -> str:
    esc = html.escape
    return "".join(f"<p>{esc(p).replace(chr(10), '<br>')}</p>"
                   for p in text.strip().split("\n\n") if p.strip())


def _html(subject: str, intro: str, rows: Sequence[_Row], total: str, how: str,
          sign_off: str) -> str:
    esc = html.escape
    body = []
    for r in rows:
        pay = (f'<a class="pay" href="{esc(r.link, quote=True)}">Pay invoice {esc(r.number)}</a>'
               if r.link else "")
        body.append(
            f'<tr><td class="number">{esc(r.number)}</td>'
            f"<td>{esc(r.due)}</td><td>{esc(r.status)}</td>"
            f'<td class="balance" style="text-align:right">{esc(r.balance)}</td>'
            f"<td>{pay}</td></tr>")
    instructions = (f'<div class="how-to-pay"><h3>{HOW_TO_PAY}</h3>{_paragraphs(how)}</div>'
                    if how else "")
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{esc(subject)}</title></head>"
        '<body style="font-family:sans-serif;max-width:40em">'
        f"{_paragraphs(intro)}"
        '<table class="statement" style="border-collapse:collapse" cellpadding="4">'
        "<thead><tr><th>Invoice</th><th>Due</th><th>Status</th><th>Balance</th><th></th>"
        f"</tr></thead><tbody>{''.join(body)}</tbody>"
        '<tfoot><tr class="total"><th colspan="3" style="text-align:left">Total due</th>'
        f'<th class="total-due" style="text-align:right">{esc(total)}</th><th></th></tr>'
        "</tfoot></table>"
        f'<p class="already-paid">{esc(ALREADY_PAID)}</p>'
        f"{instructions}{_paragraphs(sign_off)}</body></html>"
    )
