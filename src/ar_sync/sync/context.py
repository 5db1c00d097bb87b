"""What every phase of one run shares: the company, its connector and rules, the day, the
clock, who holds the claims, and the report the phases fill in."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime

from ar_sync.domain.calendar import zone
from ar_sync.domain.models import LedgerEntry
from ar_sync.messages.sending import MailSetup
from ar_sync.rules.policy import Policy
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import Connection, Connector
from ar_sync.sync.run_report import RunReport
from ar_sync.sync.store import Store


@dataclass
class RunContext:
    store: Store
    connection: Connection
    connector: Connector
    policy: Policy
    report: RunReport
    budget: CallBudget
    mail: MailSetup
    today: date  # the company's date the plan is for
    clock: Callable[[], datetime]  # leases, locks and the full fetch follow this, not `today`
    owner: str  # who holds the claims this run makes
    lease_seconds: float
    dry_run: bool = False
    rules_version: int | None = None
    only_invoices: Collection[str] | None = None
    on_progress: Callable[[int, int], None] | None = None
    leftovers: list[LedgerEntry] | None = None  # rows in flight, read once by the plan phase

    @property
    def tenant(self) -> str:
        return self.connection.id

    @property
    def go_live(self) -> date | None:
        """The go-live date as the company counts days (its rules' time zone)."""
        return self.connection.live_from(zone(self.policy.calendar.timezone))
