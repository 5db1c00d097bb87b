"""A customer's follow-up as a journey, not a function of each invoice's age alone. Pure.

What the planner knows of a customer comes from the ledger (`customer_logs`): the last day a
message reached them (ar-sync's e-mail, the platform's e-mail, an escalation, or the note of
a stage meant to tell them, written even when its e-mail could not go; a row in any state
but `skipped` counts, so an e-mail whose fate is unknown holds the next one as surely as a
sent one). Nothing else is kept: a crash or a re-run reads the same rows and plans the
same day, and a preview is this code. (When fee terms were announced is a fact of each
invoice, `announced_on`: the message that stated them listed that invoice.)

The invoice steps run first and hand their reminder stages in as offers; `settle` then decides
per customer what goes out today:

* no stage that reaches the customer within `journey.min_gap` days of the last message;
* one message a day: every ar-sync e-mail due that day goes out as the day's one grouped
  message; without one, the single most urgent platform e-mail or escalation; the rest wait
  for the gap (their stage is offered again, one step at a time);
* stages that only write a note (the bookkeeper's) always go.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ar_sync.domain.models import Action, ActionKind, EntryState, LedgerEntry
from ar_sync.planner.compiled import Compiled

__all__ = ["CustomerLog", "Offer", "Optimistic", "announced_on", "customer_logs", "day_of",
           "holds", "settle"]

_CONTACT = frozenset({ActionKind.MESSAGE.value, ActionKind.REMINDER_EMAIL.value,
                      ActionKind.CUSTOMER_EMAIL.value, ActionKind.ESCALATE.value})
_OWN_EMAIL = ActionKind.CUSTOMER_EMAIL.value
_MAIL = frozenset({ActionKind.MESSAGE.value, _OWN_EMAIL})
_NOTE = ActionKind.NOTE.value
_SKIPPED = EntryState.SKIPPED.value
_DONE = EntryState.DONE.value


@dataclass(slots=True)
class CustomerLog:
    """What the ledger says about one customer: the last day a message reached them."""

    last: date | None = None
    earlier: date | None = None  # the last such day before `last` (see settle: silent steps)
    mail_day: bool = False  # every contact on `last` was ar-sync's e-mail: that day's message


class Optimistic(Mapping[str, CustomerLog]):
    """What a judge that sees only some of a customer's rows plans with, so it names every
    invoice the real plan could act on (can_act.may_act): every offer that the gap lets
    through goes out (no one-a-day choice, which other rows could turn the other way). The
    gap is read from `logs` (made from what the judge has: more rows only hold more back),
    else from the plan's own history."""

    def __init__(self, logs: Mapping[str, CustomerLog] | None = None) -> None:
        self.logs = logs

    def __getitem__(self, key: str) -> CustomerLog:
        if self.logs is None:
            raise KeyError(key)
        return self.logs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.logs or ())

    def __len__(self) -> int:
        return len(self.logs or ())


def day_of(moment: datetime, c: Compiled) -> date:
    """The company's day at `moment` (a naive time is UTC, as the stores write it)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(c.zone).date()


def customer_logs(rows: Iterable[tuple[str, Sequence[LedgerEntry]]], c: Compiled
                  ) -> dict[str, CustomerLog]:
    """Logs from (customer id, ledger rows) pairs, one pair per invoice of the customer (a
    message's own row is kept under its first invoice)."""
    # a stage that tells the customer is a step of the journey even when its e-mail could not
    # go (no address, opted out): its note counts, so the next stage still waits the gap
    facing = {s.name for s in c.stages if s.channel != "note"}
    mailed = {s.name for s in c.stages if s.channel == "email"}
    moments: dict[str, list[tuple[datetime, bool]]] = {}
    for customer, entries in rows:
        for e in entries:
            if e.state == _SKIPPED or (e.kind not in _CONTACT and not (
                    e.kind == _NOTE and e.rule in facing)):
                continue
            mail = e.kind in _MAIL or (e.kind == _NOTE and e.rule in mailed)
            found = moments.get(customer)
            if found is None:
                moments[customer] = [(_aware(e.updated_at), mail)]
            else:
                found.append((_aware(e.updated_at), mail))
    logs: dict[str, CustomerLog] = {}
    for customer, found in moments.items():  # days from the latest moments only: cheap
        found.sort(reverse=True)
        last = day_of(found[0][0], c)
        earlier, mail_day = None, True
        for moment, mail in found:
            d = day_of(moment, c)
            if d < last:
                earlier = d
                break
            mail_day = mail_day and mail
        logs[customer] = CustomerLog(last, earlier, mail_day)
    return logs


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def announced_on(entries: Iterable[LedgerEntry], c: Compiled, kind: str) -> date | None:
    """The first day a message stating `kind` of fee terms ('late_fee', 'interest') and
    listing this invoice was sent (its e-mail item done), from the invoice's rows; None: never.
    Only a `done` item counts: a fee waits for a certain announcement."""
    first: date | None = None
    for e in entries:
        if e.kind == _OWN_EMAIL and e.state == _DONE and kind in c.stage_announces.get(
                e.rule, ()):
            day = day_of(e.updated_at, c)
            if first is None or day < first:
                first = day
    return first


@dataclass(slots=True)
class Offer:
    """One invoice's reminder stage for today, with its actions (sort key, action): skipped
    stages, the note, the e-mail item or request. `facing`: it reaches the customer."""

    customer: str
    facing: bool
    own_email: bool  # ar-sync's e-mail: grouped with the customer's others of the day
    urgency: tuple[Any, ...]
    actions: list[tuple[tuple[Any, ...], Action]]
    noted: date | None = None  # an owed e-mail: the day its stage's note was written
    sends: bool = True  # something reaches the customer (False: its e-mail cannot go)
    stepped_today: bool = False  # the invoice already took a stage step today


def _within(log: CustomerLog | None, today: date, gap: int, before_today: bool) -> bool:
    """Whether the customer's last message (before today, when `before_today`) is less than
    `gap` days old."""
    if log is None:
        return False
    day = log.earlier if before_today and log.last == today else log.last
    return day is not None and (today - day).days < gap


def holds(log: CustomerLog | None, today: date, gap: int, *, sends: bool,
          stepped_today: bool, own_email: bool = False) -> bool:
    """Whether a new stage step that tells the customer waits today (see settle): one that
    sends, while the last message is under `gap` days old (for ar-sync's e-mail of an invoice
    that took no step today, today's own e-mail does not count: the step joins that day's
    one message, whatever order the day's runs wrote it in); one whose e-mail cannot go,
    while an earlier day's message is, or when its invoice already took a step today."""
    if sends:
        if (own_email and not stepped_today and log is not None and log.last == today
                and log.mail_day):
            return _within(log, today, gap, True)
        return log is not None and log.last is not None and (today - log.last).days < gap
    return stepped_today or _within(log, today, gap, True)


def settle(offers: Mapping[str, Sequence[Offer]], logs: Mapping[str, CustomerLog],
           c: Compiled, today: date, out: list[tuple[tuple[Any, ...], Action]], *,
           open_gates: bool = False) -> None:
    """Append to `out` the offers that go out today (see the module docstring);
    `open_gates`: every offer the gap lets through (see Optimistic)."""
    gap = c.journey.min_gap
    for customer, found in offers.items():
        facing = []
        for o in found:
            if o.facing:
                facing.append(o)
            else:
                out.extend(o.actions)
        if not facing:
            continue
        log = logs.get(customer)
        # a step whose e-mail cannot go (no address) sends nothing: it waits the gap after
        # earlier days' messages and takes one step a day, but today's other messages do
        # not hold it (whatever order a day's runs wrote them in, the same steps are taken)
        for o in facing:
            if not o.sends and not holds(log, today, gap, sends=False,
                                         stepped_today=o.stepped_today):
                out.extend(o.actions)
        facing = [o for o in facing if o.sends]
        if not facing:
            continue
        if log is not None and log.last is not None and (today - log.last).days < gap:
            # too soon after the last message: the stage waits, but an e-mail still owed for
            # a stage whose note is the last step (not sent yet: no address, no transport)
            # is that same step, not a new message; nor is ar-sync's e-mail on a day whose
            # messages were all ar-sync's e-mail (it joins that day's message)
            facing = [o for o in facing if (o.noted is not None and o.noted >= log.last) or (
                o.own_email and not holds(log, today, gap, sends=True,
                                          stepped_today=o.stepped_today, own_email=True))]
            if not facing:
                continue
        sending = [o for o in facing if o.sends]
        mails = [o for o in sending if o.own_email]
        chosen = sending if open_gates else mails or [max(sending, key=lambda o: o.urgency)]
        for o in chosen:
            out.extend(o.actions)
