"""What a business sets per company and the store keeps: rule versions, pauses, and who its
e-mails come from (CompanyMail).

Rule versions are append-only (a rollback stores the old text again as a new version), so
`rules history` is an audit trail and every ledger row can name the version that planned it.
Pauses are never deleted: `resume` records the day it ended, so the planner still knows the
paused period (for `after_pause: forgive | catch_up`) and `pause --list --all` shows the past.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ar_sync.domain.addresses import mailbox
from ar_sync.domain.models import Action
from ar_sync.domain.pauses import Pause
from ar_sync.sync.ledger import Ledger

SECRET_FIELDS = ("smtp_password", "webhook_secret")


class CompanyMail(BaseModel):
    """One company's sending settings; a field left None falls back to the deployment's
    environment (AR_SYNC_MAIL_FROM, ...). Stored encrypted like tokens; the secrets never
    show in a repr, a log or an answer of the admin API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    from_address: str | None = Field(None, description="'Acme Ltd <accounts@acme.example>'")
    reply_to: str | None = None
    smtp_username: str | None = Field(None, max_length=256)
    smtp_password: str | None = Field(None, max_length=1024, repr=False)
    webhook_secret: str | None = Field(None, min_length=16, max_length=1024, repr=False)

    @field_validator("from_address", "reply_to")
    @classmethod
    def _mailbox(cls, value: str | None) -> str | None:
        if value is not None:
            mailbox(value)  # one plain mailbox, or ValueError
        return value

    @field_validator("smtp_username", "smtp_password", "webhook_secret")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and any(c in value for c in "\r\n\0"):
            raise ValueError("must be one line")
        return value

    def public(self) -> dict[str, object]:
        """What may be shown: the addresses, and whether each secret is set."""
        shown: dict[str, object] = {k: v for k, v in self.model_dump().items()
                                    if k not in SECRET_FIELDS}
        shown.update({f"{k}_set": getattr(self, k) is not None for k in SECRET_FIELDS})
        return shown


@dataclass(frozen=True)
class RulesVersion:
    """One stored version of a company's rules file."""

    version: int
    text: str
    source: str  # the file or shipped rule set it was applied from
    created_at: datetime
    note: str = ""  # e.g. "rollback to version 2"


@dataclass(frozen=True)
class StoredPause:
    """A pause as stored: its id, and the day `resume` ended it (None: not resumed)."""

    id: str
    pause: Pause
    resumed_on: date | None = None

    def effective(self) -> Pause:
        """The pause as the planner sees it: a resume ends it the day before."""
        if self.resumed_on is None:
            return self.pause
        last = self.resumed_on - timedelta(days=1)
        until = last if self.pause.until is None else min(self.pause.until, last)
        return self.pause.model_copy(update={"until": until})

    def active_on(self, day: date) -> bool:
        p = self.effective()
        return p.since <= day and (p.until is None or day <= p.until)


def planner_pauses(stored: Iterable[StoredPause]) -> list[Pause]:
    """Every pause, past ones included (the planner needs paused periods to forgive fees)."""
    out = []
    for s in stored:
        pause = s.effective()
        if pause.until is None or pause.until >= pause.since:  # resumed the day it began: none
            out.append(pause)
    return out


def matching_pauses(stored: Iterable[StoredPause], invoice_id: str | None, customer_id: str | None,
              on: date) -> Iterator[StoredPause]:
    """Pauses of that invoice / customer that are still in force on `on` (or start later)."""
    for s in stored:
        if s.resumed_on is not None:
            continue
        target = (s.pause.invoice_id == invoice_id if invoice_id is not None
                  else s.pause.customer_id == customer_id)
        if target and (s.pause.until is None or s.pause.until >= on):
            yield s


class TrustStore(Ledger, Protocol):
    """The Store's part for issue 12: rule versions, pauses and queued requests."""

    def apply_rules(self, connection_id: str, text: str, *, source: str, now: datetime,
                    note: str = "") -> int:
        """Store `text` (already validated) as the next version; returns its number."""
        ...

    def rules_versions(self, connection_id: str) -> list[RulesVersion]:
        """Every version, oldest first; the last one is current."""
        ...

    def current_rules(self, connection_id: str) -> RulesVersion | None: ...

    def add_pause(self, connection_id: str, pause: Pause) -> str:
        """Store a pause; returns its id."""
        ...

    def list_pauses(self, connection_id: str) -> list[StoredPause]:
        """Every stored pause, resumed ones included, oldest first."""
        ...

    def end_pauses(self, connection_id: str, *, invoice_id: str | None = None,
                   customer_id: str | None = None, on: date) -> int:
        """Resume: end the pauses of that invoice or customer still active on `on`."""
        ...

    def save_company_mail(self, connection_id: str, mail: CompanyMail) -> None:
        """Store the company's sending settings (encrypted, bound to the company)."""
        ...

    def company_mail(self, connection_id: str) -> CompanyMail | None:
        """The company's sending settings, or None: the environment's apply."""
        ...

    def queue_action(self, action: Action, *, reason: str, now: datetime,
                     rules_version: int | None = None) -> bool:
        """Put `action` in the ledger as waiting (`retry`, no attempt yet) if its key is new,
        so the next run executes it through claim -> write -> complete. False: known key."""
        ...


__all__ = ["CompanyMail", "RulesVersion", "StoredPause", "TrustStore", "matching_pauses",
           "planner_pauses"]
