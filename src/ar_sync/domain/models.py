"""The domain: invoices, money, planned actions and the ledger entries that record them.

Everything here is a frozen pydantic model, so a plan is a value: it can be compared, hashed,
printed and serialised to JSON without touching a platform.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ar_sync.domain.money import normalise_currency, round_money, to_decimal
from ar_sync.domain.pauses import Pause

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Money(BaseModel):
    """An amount in one currency, always rounded to that currency's minor units."""

    model_config = _FROZEN

    amount: Decimal
    currency: str

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return normalise_currency(value)

    @model_validator(mode="before")
    @classmethod
    def _round(cls, data: Any) -> Any:
        if isinstance(data, dict) and "amount" in data and "currency" in data:
            currency = normalise_currency(str(data["currency"]))
            data = {**data, "currency": currency,
                    "amount": round_money(to_decimal(data["amount"]), currency)}
        return data

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        return cls(amount=to_decimal(amount), currency=currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


class InvoiceStatus(StrEnum):
    """The platform's status, reduced to what follow-up cares about."""

    DRAFT = "draft"
    OPEN = "open"  # QuickBooks: Balance > 0; Xero: AUTHORISED (or SUBMITTED awaiting approval)
    PAID = "paid"
    VOIDED = "voided"


class Invoice(BaseModel):
    """A receivable as ar-sync sees it, whichever platform it came from."""

    model_config = _FROZEN

    platform: str
    tenant: str = Field(description="ar-sync's connection id (Connection.id), e.g. 'xero:<id>'")
    id: str
    number: str
    customer_id: str
    customer_name: str
    customer_email: str | None = None
    issue_date: date
    due_date: date
    currency: str
    total: Decimal
    balance: Decimal = Field(description="Amount still due")
    status: InvoiceStatus = InvoiceStatus.OPEN
    version: str | None = Field(default=None, description="QuickBooks SyncToken; Xero: None")
    updated_at: datetime
    late_fees_charged: Decimal = Field(
        default=Decimal(0), description="Late fees already on the platform (lines or fee invoices)"
    )
    fee_lines: Decimal | None = Field(
        default=None, description="The part of late_fees_charged that is lines on this invoice "
        "(in its total and balance); None: unknown, then all of late_fees_charged counts as "
        "lines when a rule adds lines")
    disputed: bool = False
    payment_link: str | None = None
    paid_at: date | None = Field(
        default=None, description="Day the invoice was fully paid, when known (risk report)"
    )
    pause: Pause | None = Field(
        default=None, description="A pause marker the bookkeeper set on the platform (a "
        "QuickBooks private note, a Xero history note), read by the connector")
    payments: tuple[tuple[date, Decimal], ...] | None = Field(
        default=None, description="Payments and credits applied (day, amount), when the "
        "connector knows them: interest accrues on the balance as it was in each period. "
        "None: unknown (the balance is taken to have been the same all along)")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return normalise_currency(value)

    @field_validator("payments", mode="before")
    @classmethod
    def _payments(cls, value: Any) -> Any:
        if value is None:
            return None
        return tuple((d, to_decimal(a)) for d, a in value)

    @field_validator("fee_lines", mode="before")
    @classmethod
    def _optional_decimal(cls, value: Any) -> Decimal | None:
        return None if value is None else to_decimal(value)

    @field_validator("total", "balance", "late_fees_charged", mode="before")
    @classmethod
    def _decimal(cls, value: Any) -> Decimal:
        return to_decimal(value)

    @model_validator(mode="after")
    def _consistent(self) -> Invoice:
        if self.balance < 0:
            raise ValueError(f"negative balance {self.balance}")
        if self.total < 0:
            raise ValueError(f"negative total {self.total}")
        if self.late_fees_charged < 0:
            raise ValueError("negative late fees")
        if self.updated_at.tzinfo is None:
            raise ValueError("updated_at must carry a time zone")
        return self

    @property
    def amount_paid(self) -> Decimal:
        return max(Decimal(0), self.total - self.balance)

    @property
    def is_open(self) -> bool:
        return self.status == InvoiceStatus.OPEN and self.balance > 0


class ActionKind(StrEnum):
    NOTE = "note"
    REMINDER_EMAIL = "reminder_email"
    LATE_FEE = "late_fee"
    ESCALATE = "escalate"
    SKIP = "skip"  # recorded in the ledger only: a stage that was missed and will never be sent
    WAIVE_FEE = "waive_fee"  # reverse a fee we charged (credit note allocated to the invoice)
    CUSTOMER_EMAIL = "customer_email"  # one invoice's stage in ar-sync's own e-mail
    MESSAGE = "message"  # one e-mail to one customer on one day (groups customer_email items)
    NOTIFY = "notify"  # an escalation notice to a person (e-mail) or a receiver (webhook)


def action_key(
    tenant: str, platform: str, invoice_id: str, kind: ActionKind | str, rule: str, occurrence: str
) -> str:
    """Deterministic idempotency key: same inputs, same key, on every run and every machine.

    34 characters: fits QuickBooks' requestid (50) and Xero's Idempotency-Key (128).
    """
    material = "\x1f".join((tenant, platform, invoice_id, str(kind), rule, occurrence))
    return "ar" + hashlib.sha256(material.encode()).hexdigest()[:32]


class _ActionBase(BaseModel):
    model_config = _FROZEN

    key: str
    tenant: str
    platform: str
    invoice_id: str
    invoice_number: str
    rule: str = Field(description="Name of the reminder stage, fee or escalation rule")
    occurrence: str = Field(description="Which occurrence of the rule: 'once', '2026-11', 'n3'")
    due_on: date = Field(description="The business day the action became due")
    reason: str = Field(description="Why the planner chose this action, for people")


class AddNote(_ActionBase):
    """A note on the invoice where the bookkeeper sees it (Xero history, QuickBooks note)."""

    kind: Literal[ActionKind.NOTE] = ActionKind.NOTE
    text: str
    tone: str = "friendly"


class SendReminder(_ActionBase):
    """Ask the platform to send its own invoice e-mail to the customer."""

    kind: Literal[ActionKind.REMINDER_EMAIL] = ActionKind.REMINDER_EMAIL
    to: str | None = None


class FeeMode(StrEnum):
    LINE = "line"  # a line added to the overdue invoice
    INVOICE = "invoice"  # a separate invoice for the fee, same customer


class ApplyLateFee(_ActionBase):
    """Charge a late fee or statutory interest."""

    kind: Literal[ActionKind.LATE_FEE] = ActionKind.LATE_FEE
    amount: Money
    label: str
    mode: FeeMode = FeeMode.LINE
    tax: str | None = None  # platform tax code for the fee line; None: the no-tax default
    account: str | None = None  # platform income account for the fee; None: the default


class WaiveFee(_ActionBase):
    """Reverse a late fee we charged (the ledger row `fee_key`), e.g. when the invoice becomes
    disputed under `waive_on_dispute: true`. The connector credits it on the platform."""

    kind: Literal[ActionKind.WAIVE_FEE] = ActionKind.WAIVE_FEE
    fee_key: str = Field(description="Idempotency key of the ApplyLateFee being reversed")
    amount: Money
    label: str
    account: str | None = None  # the fee's income account (the credit books there too)


class Escalate(_ActionBase):
    """Hand the debt to a person or agency; written back as a note so the bookkeeper sees it."""

    kind: Literal[ActionKind.ESCALATE] = ActionKind.ESCALATE
    to: str
    text: str


class SkipStage(_ActionBase):
    """A reminder stage overtaken by a later one (a missed run): recorded, never sent."""

    kind: Literal[ActionKind.SKIP] = ActionKind.SKIP
    superseded_by: str


class EmailReminder(_ActionBase):
    """One invoice's reminder stage in ar-sync's own e-mail to the customer (`channel: email`).

    Never written alone: ar_sync.messaging groups the items of one customer and day into one
    CustomerMessage; the item's ledger row is completed with the message's key."""

    kind: Literal[ActionKind.CUSTOMER_EMAIL] = ActionKind.CUSTOMER_EMAIL
    customer_id: str
    tone: str = "friendly"


class CustomerMessage(_ActionBase):
    """One e-mail to one customer on one day, listing every invoice due a reminder.

    `invoice_id` is the first invoice's (ledger rows are filed per invoice); `occurrence` is
    the day. The content is composed when planning, so a dry run shows the exact message."""

    kind: Literal[ActionKind.MESSAGE] = ActionKind.MESSAGE
    customer_id: str
    customer_name: str
    to: str
    items: tuple[EmailReminder, ...]
    message_id: str
    subject: str
    text: str
    html: str
    tone: str
    attach_pdf: bool = False


class EscalationNotice(_ActionBase):
    """Tell a person (e-mail) or a receiver (signed webhook) that a debt was escalated."""

    kind: Literal[ActionKind.NOTIFY] = ActionKind.NOTIFY
    channel: Literal["email", "webhook"]
    target: str
    escalation: str = Field(description="The Escalate action's key")
    body: dict[str, Any] = Field(description="The JSON document (webhook) / facts (e-mail)")


Action = Annotated[
    AddNote | SendReminder | ApplyLateFee | Escalate | SkipStage | WaiveFee | EmailReminder
    | CustomerMessage | EscalationNotice,
    Field(discriminator="kind"),
]
WRITE_KINDS = frozenset({ActionKind.NOTE, ActionKind.REMINDER_EMAIL, ActionKind.LATE_FEE,
                         ActionKind.ESCALATE, ActionKind.WAIVE_FEE})


class EntryState(StrEnum):
    CLAIMED = "claimed"  # a runner holds it; after its lease it must be reconciled
    DONE = "done"  # the platform has it; ref says where
    SKIPPED = "skipped"  # decided never to do (superseded stage, invoice paid meanwhile)
    RETRY = "retry"  # a transient failure; the next run tries again
    FAILED = "failed"  # a permanent failure (validation); a person must look


TERMINAL_STATES = frozenset({EntryState.DONE, EntryState.SKIPPED, EntryState.FAILED})


class LedgerEntry(BaseModel):
    """One row of the action ledger: what was (or is being) done for one action key."""

    model_config = _FROZEN

    key: str
    tenant: str
    invoice_id: str
    kind: ActionKind
    rule: str
    occurrence: str
    state: EntryState
    due_on: date
    updated_at: datetime
    ref: str | None = None
    reason: str | None = None
    amount: Decimal | None = None
    attempts: int = 0
    owner: str | None = None
    lease_until: datetime | None = None
    rules_version: int | None = Field(
        default=None, description="The stored rules version that planned it (None: a file)")
