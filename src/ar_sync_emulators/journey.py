"""`ar-sync demo --days N`: the four demo businesses run forward N days from the demo date.

Each simulated day: some customers pay (recorded the way the platforms do: `pay()` on each
emulator), then every company has its daily run at 15:00 UTC on a clock that is that day,
so each e-mail's `Date:` header, each payment and each write carry the simulated day. Every
write a run completes becomes one journal line (`journal_line`); the journal is what the
timeline, the figures and the tests read.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

from ar_sync.delivery.transports import SmtpMailer
from ar_sync.domain.models import Invoice
from ar_sync.messages.sending import MailSetup
from ar_sync.messages.thanks import THANKS
from ar_sync.rules.policy import Policy
from ar_sync.sync.connector import Connection
from ar_sync.sync.run import ActionOutcome, RunReport, run_tenant
from ar_sync.sync.store import Store
from ar_sync_emulators.books import DEMO_TODAY
from ar_sync_emulators.demo import (
    Sandbox,
    business,
    company_policy,
    connect_all,
    running_sandbox,
    take_card_payments,
)
from ar_sync_emulators.smtp_sink import SinkMessage, SmtpSink

__all__ = ["Journey", "SimClock", "journal_line", "run_days"]

RUN_AT = time(15, 0)  # each day's run, UTC
KINDS = {"note": "note", "reminder_email": "platform_email", "message": "message",
         "late_fee": "fee", "escalate": "escalation", "notify": "escalation",
         "waive_fee": "fee"}
ACCRUING = ("interest", "uk_statutory")
# A message that names its fee terms (the figures' "announced"): it speaks of a late fee,
# interest or compensation.
MESSAGE_KEY = re.compile(r"<([^.@>]+)")
FEE_WORDS = re.compile(r"late fee|interest|compensation", re.IGNORECASE)


class SimClock:
    """The simulated time: a day's 15:00 UTC, a millisecond later on every reading (so
    leases and tokens see time pass within a day)."""

    def __init__(self, day: date) -> None:
        self.set(day)

    def set(self, day: date) -> None:
        self._base = datetime.combine(day, RUN_AT, tzinfo=UTC)
        self._ticks = 0

    def __call__(self) -> datetime:
        self._ticks += 1
        return self._base + timedelta(milliseconds=self._ticks)


@dataclass
class Journey:
    """What N days did: the journal, the messages, the payments and each run's report."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    messages: list[SinkMessage] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    reports: list[RunReport] = field(default_factory=list)
    duplicates: int = 0


def journal_line(day: date, company: str, outcome: ActionOutcome, invoice: Invoice | None,
                 policy: Policy, customer: str, text: str = "") -> dict[str, Any] | None:
    """One write as a journal line (None for what is not a write, e.g. a skipped stage)."""
    kind = KINDS.get(outcome.kind)
    if kind is None:
        return None
    stage = outcome.stage or outcome.rule
    tone = outcome.tone or next((r.tone for r in policy.reminders if r.name == stage), "")
    if kind == "fee" and any(f.name == stage and f.kind in ACCRUING for f in policy.late_fees):
        kind = "interest"
    line: dict[str, Any] = {
        "day": day.isoformat(), "company": company, "customer": customer,
        "invoice": outcome.invoice_number, "kind": kind, "stage": stage,
        "tone": tone or None, "amount": outcome.amount or None,
        "currency": outcome.currency or (invoice.currency if invoice else None)}
    if kind == "message":
        line["invoices"] = list(outcome.invoices)
        line["fee_terms"] = bool(FEE_WORDS.search(text))
    if kind in ("fee", "interest"):
        line["period"] = outcome.occurrence
    return line


def _payers(invoices: Iterable[Invoice], day: date, seed: int,
            told: dict[str, date]) -> Iterator[Invoice]:
    """Who pays today, deterministically: a small chance any day, more in the days after
    the customer was last written to, and some customers never pay."""
    for inv in invoices:
        rng = random.Random(f"{seed}:{inv.tenant}:{inv.id}:{day}")
        habit = random.Random(f"{seed}:{inv.tenant}:{inv.customer_id}").random()
        if habit < 0.3:
            continue  # a customer who does not pay in these 90 days
        last = told.get(f"{inv.tenant}:{inv.customer_id}")
        chance = 0.005 + (0.04 if last is not None and 1 <= (day - last).days <= 7 else 0)
        if inv.due_date >= day:
            chance /= 2
        if rng.random() < chance:
            yield inv


def _texts(sink: SmtpSink, known: dict[str, str]) -> dict[str, str]:
    """Each message's plain text by its ledger key (the Message-ID carries the key)."""
    for m in sink.snapshot()[len(known):]:
        msg = m.message
        key = MESSAGE_KEY.match(str(msg["Message-ID"] or ""))
        body = msg.get_body(("plain",))
        known[key.group(1) if key else f"?{len(known)}"] = (
            body.get_content() if body is not None else "")
    return known


def _pay(sandbox: Sandbox, connection: Connection, inv: Invoice) -> Decimal:
    """Record a payment of everything due, as the platform does (QuickBooks: a Payment;
    Xero: Payments), fee lines added since the last fetch included. Returns the amount."""
    if connection.platform == "xero":
        due = sandbox.xero.invoice(inv.id, connection.external_id).amount_due
        if due > 0:
            sandbox.xero.pay(inv.id, due, tenant_id=connection.external_id)
        return due
    for emu in (sandbox.quickbooks, sandbox.quickbooks_uk):
        if emu is not None and emu.realm_id == connection.external_id:
            due = Decimal(str(emu.rows["Invoice"][inv.id]["Balance"]))
            if due > 0:
                emu.pay(inv.id, due)
            return due
    return Decimal(0)


class _Once(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        fresh = text not in self.seen
        self.seen.add(text)
        return fresh


@contextmanager
def _each_warning_once() -> Iterator[None]:
    """N days are N runs: a warning that holds every day (a demo invoice still tagged the
    old way) is shown once, not N times."""
    once = _Once()
    # no handler configured: Python's last resort prints warnings to stderr
    handlers = list(logging.getLogger().handlers) or [
        h for h in (logging.lastResort,) if h is not None]
    for handler in handlers:
        handler.addFilter(once)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(once)


def run_days(store: Store, *, days: int, seed: int = 7, rules: str = "default",
             start: date = DEMO_TODAY, journal: Path | None = None,
             on_day: Callable[[date], None] | None = None) -> Journey:
    """Run the four demo businesses forward `days` days from `start`."""
    clock = SimClock(start)
    result = Journey()
    sink = SmtpSink()
    with _each_warning_once(), running_sandbox(seed, clock=clock) as sandbox, sink.serve():
        take_card_payments(sandbox)
        connections = connect_all(store, sandbox, now=clock())
        setups = {c.id: (business(c.name), company_policy(rules, c.name)) for c in connections}
        customers: dict[tuple[str, str], Invoice] = {}
        told: dict[str, date] = {}
        texts: dict[str, str] = {}
        out = journal.open("w", encoding="utf-8") if journal is not None else None
        try:
            for n in range(days):
                day = start + timedelta(days=n)
                clock.set(day)
                for connection in connections:
                    firm, policy = setups[connection.id]
                    if n:
                        for inv in _payers(store.open_invoices(connection.id), day, seed, told):
                            paid = _pay(sandbox, connection, inv)
                            if paid > 0:
                                result.payments.append({
                                    "day": day.isoformat(), "company": firm.name,
                                    "customer": inv.customer_name, "invoice": inv.number,
                                    "amount": str(paid), "currency": inv.currency})
                    for inv in store.open_invoices(connection.id):
                        customers[(connection.id, inv.id)] = inv
                    mail = MailSetup(sender=firm.sender, mailer=SmtpMailer(sink.settings()))
                    report = run_tenant(store, connection.id, settings=sandbox.settings,
                                        clock=clock, now=clock(), policy=policy, mail=mail)
                    result.reports.append(report)
                    texts = _texts(sink, texts)
                    for inv in store.open_invoices(connection.id):
                        customers[(connection.id, inv.id)] = inv
                    for outcome in report.actions:
                        if outcome.outcome != "done":
                            continue
                        about = customers.get((connection.id, outcome.invoice_id))
                        who = outcome.customer or (about.customer_name if about else "")
                        line = journal_line(day, firm.name, outcome, about, policy, who,
                                            texts.get(outcome.key, ""))
                        if line is None:
                            continue
                        result.lines.append(line)
                        if out is not None:
                            out.write(json.dumps(line, sort_keys=False) + "\n")
                        if line["kind"] in ("message", "platform_email") and about:
                            told[f"{connection.id}:{about.customer_id}"] = day
                if on_day is not None:
                    on_day(day)
        finally:
            if out is not None:
                out.close()
        for platform in ("quickbooks", "xero"):
            keys = Counter(e.key for e in sandbox.effects(platform) if e.key)
            result.duplicates += sum(k - 1 for k in keys.values() if k > 1)
        result.messages = sink.snapshot()
    return result


# ----------------------------------------------------------------------------- figures


@dataclass
class Figures:
    """What a business would ask of N days: per customer, the messages, the first contact,
    the gaps, the escalations and the fees with when they were announced."""

    messages: Counter[str] = field(default_factory=Counter)
    first_stage: Counter[str] = field(default_factory=Counter)
    gaps: list[int] = field(default_factory=list)  # days between two reminders
    thanks: int = 0
    escalations: list[dict[str, Any]] = field(default_factory=list)
    fees: list[dict[str, Any]] = field(default_factory=list)
    paid: int = 0


def figures(lines: list[dict[str, Any]], payments: list[dict[str, Any]]) -> Figures:
    out = Figures(paid=len(payments))
    by_customer: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        by_customer[(line["company"], line["customer"])].append(line)
    for who, events in by_customer.items():
        sent = [e for e in events if e["kind"] in ("message", "platform_email")]
        days = sorted({date.fromisoformat(e["day"]) for e in sent})
        chasing = [e for e in sent if e["stage"] != THANKS]  # a thank-you chases nobody
        if sent:
            out.messages[f"{who[1]} ({who[0]})"] = len(days)
        if chasing:
            out.first_stage[chasing[0]["stage"]] += 1
        out.thanks += len(sent) - len(chasing)
        chased = sorted({date.fromisoformat(e["day"]) for e in chasing})
        out.gaps += [(b - a).days for a, b in pairwise(chased)]
        announced = next((e["day"] for e in sent if e.get("fee_terms")), None)
        for e in events:
            if e["kind"] == "escalation":
                finals = [m["day"] for m in sent if m.get("tone") == "final"]
                out.escalations.append({**e, "final_notice": finals[0] if finals else None})
            elif e["kind"] in ("fee", "interest"):
                out.fees.append({**e, "announced": announced})
    return out


def money(amount: str | None, currency: str | None) -> str:
    return f"{Decimal(amount):,} {currency}" if amount else ""


def _event(line: dict[str, Any]) -> str:
    day = line["day"][5:]
    if line["kind"] == "message":
        many = len(line["invoices"])
        return f"{day} e-mail {line['stage']}" + (f" ({many} invoices)" if many > 1 else "")
    if line["kind"] == "platform_email":
        return f"{day} platform e-mail {line['stage']}"
    if line["kind"] in ("fee", "interest"):
        return f"{day} {line['kind']} {money(line['amount'], line['currency'])}"
    if line["kind"] == "escalation":
        return f"{day} escalated ({line['stage']})"
    return ""


def timeline(journey: Journey, per_company: int = 3, per_line: int = 12) -> list[str]:
    """A short timeline per customer: for each company, the customers with the most
    happening (messages, fees, escalations, payments), one line each."""
    events: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for line in journey.lines:
        text = _event(line)
        if text:
            events[(line["company"], line["customer"])].append((f"{line['day']}1", text))
    for p in journey.payments:  # a payment comes before that day's run
        events[(p["company"], p["customer"])].append(
            (f"{p['day']}0", f"{p['day'][5:]} paid {p['invoice']}"))
    out: list[str] = []
    for company in dict.fromkeys(c for c, _ in events):
        mine = sorted(((who, evs) for (c, who), evs in events.items() if c == company),
                      key=lambda item: (-len(item[1]), item[0]))[:per_company]
        out.append(company)
        for who, evs in mine:
            shown = [t for _, t in sorted(evs, key=lambda e: e[0])]
            more = f" · … {len(shown) - per_line} more" if len(shown) > per_line else ""
            out.append(f"  {who}: " + " · ".join(shown[:per_line]) + more)
    return out


def _after(events: list[dict[str, Any]], since: str) -> str:
    """'N before any <since>; otherwise at least D days after it' over `events`."""
    before = [e for e in events if not e[since] or e[since] >= e["day"]]
    gaps = [(date.fromisoformat(e["day"]) - date.fromisoformat(e[since])).days
            for e in events if e not in before]
    text = f"{len(before)} not after one"
    return text + (f"; the others at least {min(gaps)} days after it" if gaps else "")


def summary(f: Figures) -> list[str]:
    """The figures a business signs off on, as lines of text."""
    counts = sorted(f.messages.values())
    customers = len({e["customer"] for e in f.escalations})
    out = [f"customers written to: {len(counts)}; days with an e-mail per customer: "
           + (f"min {counts[0]}, median {counts[len(counts) // 2]}, max {counts[-1]}"
              if counts else "none"),
           "first contact by stage: " + ", ".join(f"{s} {n}" for s, n in
                                                  f.first_stage.most_common()),
           "days between two reminders to one customer: "
           + (f"min {min(f.gaps)}, median {sorted(f.gaps)[len(f.gaps) // 2]}" if f.gaps
              else "no customer got two")
           + f" (and {f.thanks} thank-you e-mails after payments)",
           f"escalations: {len(f.escalations)} invoices of {customers} customers"
           + (f"; final notice first: {_after(f.escalations, 'final_notice')}"
              if f.escalations else ""),
           f"payments: {f.paid}"]
    if f.fees:
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for e in f.fees:
            totals[e["currency"]] += Decimal(e["amount"])
        out.append(f"fees and interest: {len(f.fees)} charges ("
                   + ", ".join(f"{a:,} {c}" for c, a in sorted(totals.items()))
                   + f"), first {min(e['day'] for e in f.fees)}; a message stating the fee "
                   f"terms first: {_after(f.fees, 'announced')}")
    else:
        out.append("fees and interest: none charged")
    return out
