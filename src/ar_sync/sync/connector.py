"""The Connector protocol and plugin discovery.

The core never imports a platform SDK. A platform is a package that exposes a `plugin` object
(a ConnectorPlugin) under the `ar_sync.connectors` entry-point group; adding a third platform
means adding one package under `connectors/` and one entry point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ar_sync.domain.errors import (
    ConnectorError,
    PlatformValidationError,
)
from ar_sync.domain.models import (
    Action,
    ActionKind,
    AddNote,
    ApplyLateFee,
    Escalate,
    FeeMode,
    Invoice,
    Money,
)
from ar_sync.domain.money import round_money
from ar_sync.sync.budget import CallBudget

ENTRY_POINT_GROUP = "ar_sync.connectors"


def waiver_amount(invoice: Invoice, amount: Money) -> Decimal:
    """What a waiver credits: the fee, at most the invoice's balance now (a credit cannot be
    applied beyond what is due); PlatformValidationError when nothing can be credited."""
    if amount.currency != invoice.currency:
        raise PlatformValidationError(
            f"waiver in {amount.currency} on a {invoice.currency} invoice {invoice.number}")
    value = round_money(min(amount.amount, invoice.balance), invoice.currency)
    if value <= 0:
        raise PlatformValidationError(
            f"invoice {invoice.number} has no balance left to waive a fee against")
    return value


# ----------------------------------------------------------------------------- records


_FROZEN = ConfigDict(frozen=True, extra="forbid")


class TokenSet(BaseModel):
    """OAuth2 tokens for one connection. `version` increases on every stored refresh."""

    model_config = _FROZEN

    access_token: str
    refresh_token: str
    expires_at: datetime
    refresh_expires_at: datetime | None = None
    version: int = 0

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return (self.expires_at - now).total_seconds() <= seconds

    def __repr__(self) -> str:  # never leak a secret through a log line or a traceback
        return f"TokenSet(version={self.version}, expires_at={self.expires_at.isoformat()})"

    __str__ = __repr__


class TokenStore(Protocol):
    """Where a connection's tokens live (encrypted at rest by the implementation)."""

    def load_tokens(self, connection_id: str) -> TokenSet | None: ...

    def save_tokens(self, connection_id: str, tokens: TokenSet, *, expected_version: int) -> bool:
        """Versioned write: store `tokens` as version expected_version + 1, only if the stored
        version is still `expected_version` (-1 means "nothing stored yet": the first save stores
        version 0). False means another runner saved first; the stored set is left untouched."""
        ...


class PlatformSettings(BaseModel):
    """An app registration with a platform, and where its endpoints are.

    `endpoints` overrides the production URLs (the local emulators use it): keys a connector
    understands, e.g. `api`, `token`, `authorize`, `discovery`, `connections`, `identity`.
    """

    model_config = _FROZEN

    client_id: str
    client_secret: str
    redirect_uri: str
    scopes: tuple[str, ...] = ()
    endpoints: Mapping[str, str] = Field(default_factory=dict)
    webhook_key: str | None = None

    def __repr__(self) -> str:
        return f"PlatformSettings(client_id={self.client_id!r}, endpoints={dict(self.endpoints)})"

    __str__ = __repr__


class Connection(BaseModel):
    """One connected company: a QuickBooks realm or a Xero organisation."""

    model_config = _FROZEN

    id: str = Field(description="ar-sync's tenant id, e.g. 'quickbooks:9130...' ")
    platform: str
    external_id: str = Field(description="QuickBooks realmId or Xero tenantId")
    name: str = ""
    business_id: str = Field(default="local", description="The ar-sync account that connected it")
    rules: str = Field(default="default", description="Shipped rule set name or YAML path")
    created_at: datetime | None = None
    token_id: str | None = Field(default=None, description="Where its tokens are stored when "
                                 "several companies share one consent (Xero: one row per "
                                 "authEventId); None: under its own id")
    go_live: date | None = Field(
        default=None, description="First day fees may be charged for (backfill rules); "
        "None: the day it connected")
    mode: Literal["preview", "live"] = Field(
        default="live", description="preview: runs plan and report, but write nothing")

    @property
    def token_key(self) -> str:
        """The token-store id of this connection's tokens (shared by a grant's companies)."""
        return self.token_id or self.id

    def live_from(self, zone: tzinfo | None = None) -> date | None:
        """The go-live date the planner gets: the stored one, else the day it connected, the
        company's day in its time zone `zone` (the rules' calendar.timezone; UTC if not
        given): connected at 23:00 UTC is already the next day in Auckland."""
        if self.go_live is not None:
            return self.go_live
        if self.created_at is None:
            return None
        at = self.created_at if self.created_at.tzinfo else self.created_at.replace(tzinfo=UTC)
        return at.astimezone(zone or UTC).date()


@dataclass(frozen=True)
class AuthorizedCompany:
    """A company the user granted access to during the OAuth consent. `grant` names the
    consent when its companies share one token set (Xero's authEventId)."""

    external_id: str
    name: str
    grant: str | None = None


def grant_token_id(platform: str, grant: str) -> str:
    """The token-store id of a consent whose companies share one rotating token set."""
    return f"{platform}:grant:{grant}"


@dataclass
class FetchResult:
    """What one fetch returned: good invoices, skipped malformed ones, and the next checkpoint."""

    invoices: list[Invoice] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checkpoint: datetime | None = None  # platform-side time to use as `since` next run
    full: bool = True  # False for an incremental (changed-since) fetch
    removed: list[str] = field(default_factory=list)  # ids deleted on the platform since then


# ----------------------------------------------------------------------------- protocols


@runtime_checkable
class Connector(Protocol):
    """A live, authorised session with one connected company."""

    platform: str
    connection: Connection

    def fetch_open_invoices(self, since: datetime | None = None) -> FetchResult:
        """Open receivables; with `since`, only those changed since then (paid ones included,
        with status PAID, so the caller learns an invoice stopped being open)."""
        ...

    def get_invoice(self, invoice_id: str) -> Invoice | None:
        """Fresh read of one invoice (re-checked before a fee is charged)."""
        ...

    def add_note(self, invoice: Invoice, text: str, *, key: str) -> str: ...

    def add_late_fee(
        self, invoice: Invoice, fee: Money, label: str, *, key: str, mode: FeeMode,
        tax: str | None = None, account: str | None = None,
    ) -> str:
        """Charge `fee`; `tax` is the rule's platform tax code for the fee (None: the
        company's no-tax / out-of-scope code, so no tax is charged that no rule asked for);
        `account` the rule's income account (None: the connector's default)."""
        ...

    def send_reminder(self, invoice: Invoice, *, key: str, to: str | None = None) -> str: ...

    def waive_fee(self, invoice: Invoice, fee_key: str, amount: Money, label: str, *,
                  key: str, account: str | None = None) -> str:
        """Reverse a fee already charged: a credit note for `amount` (at most the balance)
        applied to the invoice, carrying `key` where only the bookkeeper sees it. The fee's
        line stays: a sent invoice is not edited (locked periods, payments applied)."""
        ...

    def find_effect(self, invoice: Invoice, kind: ActionKind, key: str, *,
                    since: datetime | None = None) -> str | None:
        """Reconciliation: the platform's reference of a write carrying `key`, or None if the
        platform has no such write (so it is safe to do it now). A platform e-mail carries no
        key: it is found on the invoice's own record (QuickBooks `DeliveryInfo`, Xero's
        history) as a send at or after `since`, the earliest the write could have happened
        (None: not known, and an e-mail is then never taken as sent)."""
        ...


@dataclass(frozen=True)
class BatchWrite:
    """One write in a batch: the action (claimed in the ledger before the call) and the
    invoice as re-read just before it (`BatchWriter.get_invoices`)."""

    action: AddNote | ApplyLateFee | Escalate
    invoice: Invoice


@dataclass(frozen=True)
class BatchItemResult:
    """What a batch call did for one of its writes, by the action's key.

    `ref` is set when the write happened. Otherwise `error` says why not:
    NotApplicableError / PlatformValidationError are final for this item (recorded as skipped
    or failed); any other ConnectorError means it may or may not have happened (the ledger row
    is left for reconciliation by its key, exactly as for a single write).
    """

    key: str
    ref: str | None = None
    error: ConnectorError | None = None


@runtime_checkable
class BatchWriter(Protocol):
    """Optional capability: a connector that reads and writes many invoices per call
    (QuickBooks `/batch`, Xero `POST /Invoices?summarizeErrors=false`). The sync uses it when
    a connector has it and falls back to one call per write otherwise."""

    max_batch: int  # writes per call; the platform's own limit (QuickBooks 30, Xero 50)

    def can_batch(self, action: Action) -> bool:
        """Whether this action may go in a batch (e.g. Xero: fee lines and fee invoices,
        not History notes, which have no batch form)."""
        ...

    def get_invoices(self, invoice_ids: Sequence[str]) -> dict[str, Invoice | None]:
        """Fresh reads of many invoices in as few calls as the platform allows; None for an
        id the platform no longer has (deleted)."""
        ...

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchItemResult]:
        """Do the writes in one call (or as few as the platform's limits allow), each carrying
        its own idempotency key; one result per write, in order. An invoice appears at most
        once per batch (the caller guarantees it). Raises only when the call as a whole failed
        (then every write in it may or may not have happened)."""
        ...


@runtime_checkable
class AccountChecker(Protocol):
    """Optional capability: whether the company's chart of accounts has the income accounts
    the fee rules book to (a rule's `account:`, None: the connector's default). Checked at
    connect and by `rules validate --company`; the answer is the problems, said plainly."""

    def check_fee_accounts(self, accounts: Sequence[str | None]) -> list[str]: ...


def fee_account_problems(connector: object, accounts: Sequence[str | None]) -> list[str]:
    """The connector's word on the fee rules' accounts (none asked when there is no fee
    rule, or when the connector cannot tell)."""
    if not accounts or not isinstance(connector, AccountChecker):
        return []
    return connector.check_fee_accounts(accounts)


class ConnectorPlugin(Protocol):
    """What an entry point in the `ar_sync.connectors` group must expose."""

    platform: str
    display_name: str

    def authorization_url(
        self, settings: PlatformSettings, *, state: str, code_challenge: str | None
    ) -> str: ...

    def exchange_code(
        self,
        settings: PlatformSettings,
        *,
        code: str,
        code_verifier: str | None,
        callback_params: Mapping[str, str],
    ) -> tuple[TokenSet, Sequence[AuthorizedCompany]]:
        """Trade the authorization code for tokens, and list the companies granted."""
        ...

    def open(
        self,
        settings: PlatformSettings,
        connection: Connection,
        tokens: TokenStore,
        budget: CallBudget,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> Connector: ...


class UnknownConnectorError(LookupError):
    pass


def available_plugins() -> dict[str, str]:
    """Installed connector names mapped to their entry-point targets."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_plugin(name: str) -> ConnectorPlugin:
    """Find a connector plugin by platform name through its entry point."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            plugin: ConnectorPlugin = ep.load()
            return plugin
    installed = ", ".join(sorted(available_plugins())) or "none"
    raise UnknownConnectorError(
        f"no connector named {name!r} is installed (installed: {installed}); "
        f"try: pip install 'ar-sync[{name}]'"
    )
