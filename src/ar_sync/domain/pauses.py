"""Pauses: a bookkeeper stops all follow-up on an invoice or a customer for a while.

A pause comes from the store (`ar-sync pause`) or from a marker on the platform that the
customer never sees (`source="platform"`, read by the connectors into `Invoice.pause`).
While a pause is active the planner plans nothing for the invoice: no reminder, fee or
escalation. A `promise` pause whose `until` has passed with the invoice still unpaid is a
broken promise: the rules resume (with a note). Pure data and pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, model_validator

PauseReason = Literal["dispute", "promise", "other"]
REASONS: tuple[PauseReason, ...] = ("dispute", "promise", "other")


class Pausable(Protocol):
    """What a pause looks at on an invoice (models.Invoice is one; models imports this module,
    so the pause names the shape it needs instead of the class)."""

    @property
    def id(self) -> str: ...

    @property
    def customer_id(self) -> str: ...

    @property
    def pause(self) -> Pause | None: ...


class Pause(BaseModel):
    """No follow-up for one invoice or one customer from `since` through `until` (inclusive;
    None: until resumed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    invoice_id: str | None = None
    customer_id: str | None = None
    until: date | None = None
    reason: PauseReason
    since: date
    note: str = ""
    source: Literal["store", "platform"] = "store"

    @model_validator(mode="after")
    def _one_target(self) -> Pause:
        if (self.invoice_id is None) == (self.customer_id is None):
            raise ValueError("a pause names exactly one of invoice_id or customer_id")
        if self.until is not None and self.until < self.since:
            raise ValueError(f"pause ends ({self.until}) before it starts ({self.since})")
        return self

    def applies_to(self, invoice: Pausable) -> bool:
        """Whether this pause is about `invoice` (by id, or by its customer)."""
        if self.invoice_id is not None:
            return self.invoice_id == invoice.id
        return self.customer_id == invoice.customer_id

    def active_on(self, today: date) -> bool:
        return self.since <= today and (self.until is None or today <= self.until)


def active_pauses(pauses: Iterable[Pause], invoice: Pausable, today: date) -> Pause | None:
    """The pause in force for `invoice` on `today` (from `pauses` or the invoice's own
    platform marker), or None. With several, a dispute wins, then the one lasting longest."""
    found: Pause | None = None
    candidates = [*pauses, invoice.pause] if invoice.pause is not None else pauses
    for p in candidates:
        if p.active_on(today) and p.applies_to(invoice) and (
                found is None or _rank(p) < _rank(found)):
            found = p
    return found


def _rank(p: Pause) -> tuple[int, int]:
    """Lower ranks first: disputes, then the pause ending last (open-ended first)."""
    return (0 if p.reason == "dispute" else 1,
            -(p.until.toordinal() if p.until is not None else date.max.toordinal()))
