"""What a run reports: the outcome of each action, the run report, and the circuit breaker
that turns a string of failed writes into "platform unavailable" (split out of sync.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from ar_sync.domain.models import (
    Action,
    AddNote,
    ApplyLateFee,
    CustomerMessage,
    EmailReminder,
    Escalate,
    EscalationNotice,
    SendReminder,
    WaiveFee,
)
from ar_sync.domain.money import format_money

# The circuit breaker: a platform that keeps failing (5xx, refused connections) after the
# connector's own retries stops its tenant instead of burning minutes on every action.
BREAKER_FAILURES = 3  # consecutive writes left for retry open the breaker ...
BREAKER_SECONDS = 10.0  # ... and so does a failing streak that has lasted this long


@dataclass
class ActionOutcome:
    key: str
    kind: str
    invoice_id: str
    invoice_number: str
    rule: str
    outcome: str  # done | reconciled | skipped | busy | retry | failed | deferred | planned
    detail: str = ""
    ref: str | None = None
    what: str = ""  # what is (or would be) written: the note, the fee, the e-mail
    quota: bool = False  # a retry held by a platform quota (no sign the platform is down)
    silent: bool = False  # a retry because the platform gave no answer at all (a deadline)
    occurrence: str = ""  # which occurrence: a fee's period, a message's day
    customer: str = ""  # a message's customer (others: see the invoice)
    tone: str = ""  # a message's tone
    stage: str = ""  # a message's stage: its firmest item's
    amount: str = ""  # a fee's amount and currency
    currency: str = ""
    invoices: tuple[str, ...] = ()  # the invoices a message lists


@dataclass
class RunReport:
    connection_id: str
    started_at: datetime
    dry_run: bool
    finished_at: datetime | None = None
    mode: str = "live"  # "preview": the connection writes nothing yet (before go-live)
    rules: str = ""  # which rules planned it: a stored version, a file, the default
    rules_version: int | None = None
    go_live: str | None = None
    fees: dict[str, str] = field(default_factory=dict)  # planned fees per currency
    full_fetch: bool = False
    invoices_seen: int = 0
    invoices_open: int = 0
    planned: int = 0
    done: int = 0
    reconciled: int = 0  # found already written on the platform (a lost response, a crash)
    skipped: int = 0
    failed: int = 0
    retry: int = 0
    deferred: int = 0  # left for the next run (budget)
    busy: int = 0  # held by another runner's live claim
    ambiguous: int = 0  # e-mails whose send outcome is unknown: never resent, check by hand
    not_emailed: list[str] = field(default_factory=list)  # customers due an e-mail who got none
    api_calls: int = 0
    stopped_early: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    actions: list[ActionOutcome] = field(default_factory=list)
    # a dry run's plan as the run built it (messages composed as the customer reads them),
    # for previews in the faces; held in memory only, never stored with the report
    plan: list[Action] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, plan=[]))
        del data["plan"]
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return data

    def count(self, outcome: ActionOutcome) -> None:
        self.actions.append(outcome)
        if outcome.outcome in ("done", "reconciled", "skipped", "failed", "retry", "deferred",
                               "busy", "ambiguous"):
            setattr(self, outcome.outcome, getattr(self, outcome.outcome) + 1)


def describe(action: Action, *, brief: bool = False) -> str:
    """One line saying what the action writes, for people. `brief`: the plan table's column,
    which shows the kind beside it (amounts formatted, a note's text cut at 70 characters)."""
    full, short = _texts(action)
    return short if brief else full


def _texts(action: Action) -> tuple[str, str]:
    """(the full line, the brief one): one dispatch, so a new kind of action is described in
    one place."""
    if isinstance(action, AddNote):
        text = action.text
        return f"note: {text}", text if len(text) <= 70 else text[:69] + "…"
    if isinstance(action, SendReminder):
        return (f"platform e-mail to {action.to or 'the customer'}",
                f"to {action.to}" if action.to else "platform e-mail")
    if isinstance(action, ApplyLateFee):
        return (f"fee {action.amount} ({action.mode} mode): {action.label}",
                f"{format_money(action.amount.amount, action.amount.currency)} ({action.mode})")
    if isinstance(action, Escalate):
        return f"escalation note: {action.text}", f"to {action.to}"
    if isinstance(action, WaiveFee):
        return (f"waive fee {action.amount}: {action.label}",
                f"-{format_money(action.amount.amount, action.amount.currency)} "
                f"({action.label})")
    if isinstance(action, CustomerMessage):
        numbers = ", ".join(i.invoice_number for i in action.items)
        return (f"e-mail to {action.to}: {action.subject!r} ({numbers})",
                f"to {action.to}: {action.subject} ({len(action.items)} invoice(s))")
    if isinstance(action, EscalationNotice):
        return (f"escalation notice by {action.channel} to {action.target}",
                f"{action.channel} {action.target}")
    if isinstance(action, EmailReminder):
        return f"e-mail item of stage {action.rule}", ""
    return f"skip stage (superseded by {action.superseded_by})", "recorded, not sent"


def outcome_of(action: Action, outcome: str, detail: str = "",
             ref: str | None = None) -> ActionOutcome:
    extra: dict[str, Any] = {}
    if isinstance(action, CustomerMessage):
        lead = next((i for i in action.items if i.tone == action.tone), None)
        extra = {"customer": action.customer_name, "tone": action.tone,
                 "stage": lead.rule if lead is not None else "",
                 "invoices": tuple(i.invoice_number for i in action.items)}
    elif isinstance(action, ApplyLateFee | WaiveFee):
        extra = {"amount": str(action.amount.amount), "currency": action.amount.currency}
    return ActionOutcome(key=action.key, kind=str(action.kind), invoice_id=action.invoice_id,
                         invoice_number=action.invoice_number, rule=action.rule,
                         outcome=outcome, detail=detail, ref=ref, what=describe(action),
                         occurrence=action.occurrence, **extra)


def defer(report: RunReport, rest: Sequence[Action], why: str) -> None:
    for action in rest:
        report.count(outcome_of(action, "deferred", why))


class Breaker:
    """Opens on writes left for retry in a row (each already retried by the connector):
    BREAKER_FAILURES of them, or a failing streak that has lasted BREAKER_SECONDS; and at once
    on a write the platform did not answer within its deadline (a silent platform would hold
    the run one deadline per write)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self.failures = 0
        self._since: datetime | None = None

    def opens(self, outcome: ActionOutcome, *, started: datetime) -> bool:
        if outcome.quota:  # a used-up daily quota says nothing about the platform's health
            return False
        if outcome.outcome != "retry":
            self.failures, self._since = 0, None
            return False
        self._since = self._since or started
        self.failures += 1
        if outcome.silent:
            return True
        elapsed = (self._clock() - self._since).total_seconds()
        return self.failures >= BREAKER_FAILURES or elapsed >= BREAKER_SECONDS
