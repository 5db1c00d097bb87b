"""The store protocol: everything ar-sync persists, whatever the backend.

Two backends implement it: `store.sqlite` (embedded, the CLI's default) and `store.dynamodb`
(serverless). Tokens are encrypted by the store before they are written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from ar_sync.domain.contacts import Contact
from ar_sync.domain.models import Invoice
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.sync.company_store import TrustStore
from ar_sync.sync.connector import Connection, TokenSet
from ar_sync.sync.ledger import Ledger

PAID_RETENTION_DAYS = 730  # two years of paid invoices: DSO windows and lateness trends
CAS_ATTEMPTS = 5  # compare-and-swap rounds before a store gives up on a busy row


class StoreConflictError(Exception):
    """A row kept changing under a compare-and-swap update; nothing was written."""


def as_paid(invoice: Invoice) -> Invoice:
    """A paid invoice as the report keeps it: its payment day, or, when the platform does not
    say (QuickBooks invoices carry none), the day the platform last changed it — when the
    payment was applied, or later: lateness is never understated."""
    if invoice.paid_at is not None:
        return invoice
    return invoice.model_copy(update={"paid_at": invoice.updated_at.date()})


def is_url(link: str | None) -> bool:
    """A resolved payment link (a connector may leave a lazy reference to resolve instead)."""
    return bool(link) and str(link).startswith(("https://", "http://"))


def with_kept_link(invoice: Invoice, stored_link: str | None) -> Invoice:
    """The invoice to store, keeping the payment link resolved earlier: an invoice's online
    link is stable for its life, so a fetch's lazy reference never replaces a URL read once
    (a connector reads it again only when the platform gives no link or another one)."""
    if is_url(stored_link) and invoice.payment_link and not is_url(invoice.payment_link):
        return invoice.model_copy(update={"payment_link": stored_link})
    return invoice


@dataclass(frozen=True)
class Checkpoint:
    """Where the last run got to: `since` for the next incremental fetch."""

    since: datetime | None
    last_full_at: datetime | None


@dataclass(frozen=True)
class Snapshot:
    """The open invoices a run must plan on one day (Store.active_invoices): every open
    invoice but those marked quiet for that day under the same rules stamp."""

    invoices: list[Invoice]
    quiet: int = 0  # open invoices left out: nothing can be planned for them that day
    versions: Mapping[str, int] = field(default_factory=dict)  # per invoice id, as read


@dataclass(frozen=True)
class PendingAuth:
    """An OAuth flow in progress, keyed by its single-use `state`."""

    state: str
    platform: str
    business_id: str
    code_verifier: str | None
    expires_at: datetime


class Store(TrustStore, Ledger, Protocol):
    # connections -----------------------------------------------------------------------
    def save_connection(self, connection: Connection) -> None: ...

    def get_connection(self, connection_id: str) -> Connection | None: ...

    def list_connections(self) -> list[Connection]: ...

    def update_connection(self, connection_id: str,
                          changes: Mapping[str, Any]) -> Connection | None:
        """Change only these fields of the stored connection, on top of its latest version
        (compare-and-swap: a concurrent write to another field, a reconnect's token row, is
        kept); the updated connection, or None when there is none."""
        ...

    # tokens (encrypted at rest) --------------------------------------------------------
    def load_tokens(self, connection_id: str) -> TokenSet | None: ...

    def save_tokens(self, connection_id: str, tokens: TokenSet, *, expected_version: int) -> bool:
        ...

    # OAuth state -------------------------------------------------------------------------
    def put_pending_auth(self, pending: PendingAuth, *, now: datetime | None = None,
                         limit_per_business: int | None = None) -> bool:
        """Store a flow; with a limit, False (nothing stored) when the business already has
        that many unexpired flows pending. Atomic: concurrent starts cannot exceed it."""
        ...

    def take_pending_auth(self, state: str, *, now: datetime) -> PendingAuth | None:
        """Single use: returns the record and deletes it; None if unknown, used or expired."""
        ...

    # per-tenant lock ---------------------------------------------------------------------
    def acquire_lock(self, name: str, *, owner: str, now: datetime, ttl_seconds: float) -> bool:
        ...

    def release_lock(self, name: str, *, owner: str) -> None: ...

    # the open-invoice snapshot -----------------------------------------------------------
    # Reminders depend on the date, not only on changes, so every run plans over all open
    # invoices; an incremental fetch only refreshes this snapshot with what changed.
    def save_invoices(
        self, connection_id: str, invoices: Sequence[Invoice], *, replace_all: bool
    ) -> None:
        """Upsert open invoices and drop the ones no longer open; with `replace_all` (a full
        fetch) also drop every stored invoice not in `invoices`."""
        ...

    def open_invoices(self, connection_id: str) -> list[Invoice]: ...

    # The quiet index: per open invoice, "nothing can be planned for it on the days
    # [since, until) under the rules `stamp`" (planner.can_act computes it). A changed body
    # (save_invoices) or any ledger write for the invoice clears its mark, so a run only
    # reads and plans the invoices that can have an action today.
    def active_invoices(self, connection_id: str, *, on: date, stamp: str) -> Snapshot:
        """The open invoices not marked quiet on `on` under `stamp`, how many were left out,
        and each returned invoice's version (for save_quiet). A store without the index
        returns every open invoice."""
        ...

    def save_quiet(self, connection_id: str, until: Mapping[str, date], *, since: date,
                   stamp: str, versions: Mapping[str, int]) -> int:
        """Mark each invoice in `until` quiet on [since, until[id]) under `stamp`, only if its
        version is still the one active_invoices returned (a ledger write or a new body in
        between leaves it unmarked). Returns how many were marked (0: no index)."""
        ...

    def paid_invoices(self, connection_id: str) -> list[Invoice]:
        """Invoices seen paid (kept PAID_RETENTION_DAYS after payment), for the aging/DSO
        report: save_invoices keeps every PAID invoice it is given here, never planned on."""
        ...

    # checkpoints and run reports ---------------------------------------------------------
    def get_checkpoint(self, connection_id: str) -> Checkpoint: ...

    def save_checkpoint(self, connection_id: str, checkpoint: Checkpoint) -> None: ...

    def save_report(self, connection_id: str, report: dict[str, Any]) -> None: ...

    def last_report(self, connection_id: str) -> dict[str, Any] | None: ...

    def recent_reports(self, connection_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The last saved run reports, newest first (the console's list of runs)."""
        ...

    # payment plans -----------------------------------------------------------------------
    def save_payment_plan(self, connection_id: str, plan: PaymentPlan) -> None:
        """Insert or replace the plan for `plan.invoice` (one plan per invoice)."""
        ...

    def payment_plans(self, connection_id: str) -> list[PaymentPlan]: ...

    def delete_payment_plan(self, connection_id: str, invoice: str) -> bool:
        """Remove the plan for `invoice`; False if there was none."""
        ...

    # contacts ----------------------------------------------------------------------------
    def save_contact(self, contact: Contact) -> None:
        """Insert or replace the contact for (contact.tenant, contact.customer_id)."""
        ...

    def contacts(self, tenant: str) -> dict[str, Contact]:
        """Every stored contact of one tenant, by customer id."""
        ...
