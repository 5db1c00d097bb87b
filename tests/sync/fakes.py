"""An in-memory platform and connector with switchable faults, for fast fault-injection runs.

The emulator suites (tests/sync/test_sync_emulators_*.py) prove the same properties through the
real SDKs over HTTP; this fake lets thousands of random schedules run in seconds.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ar_sync.domain.errors import RateLimitedError, TransientError
from ar_sync.domain.models import ActionKind, FeeMode, Invoice, InvoiceStatus, Money
from ar_sync.domain.references import key_marker, mentions_key, reference_text
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import Connection, FetchResult
from ar_sync_emulators.base import utcnow
from ar_sync_emulators.effect_keys import keys_in
from ar_sync_emulators.replay import ReplayMode


class SimulatedCrash(BaseException):
    """The process dies here: nothing after this point of the run happens."""


@dataclass
class FakePlatform:
    """The platform's own state: what a bookkeeper would see."""

    invoices: dict[str, Invoice] = field(default_factory=dict)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (invoice id, text)
    fees: list[tuple[str, str, Money]] = field(default_factory=list)  # (invoice id, label, fee)
    emails: list[tuple[str, str]] = field(default_factory=list)  # (invoice id, idempotency key)
    replay: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # key -> first ref, when
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], datetime] = utcnow  # for `window=SECONDS` replay
    writes = 0

    def effects(self) -> Counter[str]:
        """How many times each ar-sync key is present on the platform."""
        seen: Counter[str] = Counter()
        for _, text in self.notes:
            seen[text.rsplit("ar-sync:", 1)[1].strip("]")] += 1
        for _, label, _fee in self.fees:  # the customer sees a short reference, not the key
            seen.update(keys_in(label, self.replay))
        for _, key in self.emails:
            seen[key] += 1
        return seen


@dataclass
class FaultPlan:
    """Random faults for one runner; `crash_at` counts write attempts."""

    rng: random.Random
    p_transient_before: float = 0.0  # 5xx before the platform did anything
    p_drop_after: float = 0.0  # platform applied the write, the response was lost
    p_throttle: float = 0.0  # 429
    crash_before_write: int | None = None  # crash on the Nth write attempt, before the call
    crash_after_write: int | None = None  # crash on the Nth write, after the platform applied it
    # Does the platform replay a write whose idempotency key it has seen? all | email-only |
    # window=SECONDS | off (see ar_sync_emulators.replay.ReplayMode).
    platform_keys: ReplayMode | str = "all"
    attempts: int = 0


class FakeConnector:
    platform = "fake"

    def __init__(self, state: FakePlatform, connection: Connection, faults: FaultPlan,
                 budget: CallBudget | None = None) -> None:
        self.state = state
        self.connection = connection
        self.faults = faults
        self.budget = budget or CallBudget()

    # reads ---------------------------------------------------------------------------------
    def fetch_open_invoices(self, since: datetime | None = None) -> FetchResult:
        self.budget.spend("GET invoices")
        with self.state.lock:
            invoices = [i for i in self.state.invoices.values() if since is None or
                        i.updated_at > since or not i.is_open]
        latest = max((i.updated_at for i in invoices), default=None)
        return FetchResult(invoices=invoices, checkpoint=latest, full=since is None)

    def get_invoice(self, invoice_id: str) -> Invoice | None:
        self.budget.spend("GET invoice")
        with self.state.lock:
            return self.state.invoices.get(invoice_id)

    def find_effect(self, invoice: Invoice, kind: ActionKind, key: str, *,
                    since: datetime | None = None) -> str | None:
        with self.state.lock:
            for n, (inv, text) in enumerate(self.state.notes):
                if inv == invoice.id and mentions_key(text, key):
                    return f"note-{n}"
            for n, (inv, label, _) in enumerate(self.state.fees):
                if inv == invoice.id and mentions_key(label, key):
                    return f"fee-{n}"
        return None  # e-mails carry no marker: the idempotency key protects them

    # writes --------------------------------------------------------------------------------
    def _write(self, key: str, apply: Callable[[], str], *, email: bool = False) -> str:
        f = self.faults
        mode = ReplayMode.parse(f.platform_keys)
        f.attempts += 1
        self.budget.spend("POST write")
        if f.crash_before_write == f.attempts:
            raise SimulatedCrash("before write")
        if f.rng.random() < f.p_throttle:
            raise RateLimitedError("429 Too Many Requests", retry_after=0)
        if f.rng.random() < f.p_transient_before:
            raise TransientError("503 Service Unavailable")
        with self.state.lock:
            seen = self.state.replay.get(key)
            now = self.state.clock()
            if seen is not None and mode.replays(
                    email=email, age_seconds=(now - seen[1]).total_seconds()):
                ref = seen[0]
            else:
                ref = apply()
                self.state.writes += 1
                self.state.replay[key] = (ref, now)
        if f.crash_after_write == f.attempts:
            raise SimulatedCrash("after write, before the ledger")
        if f.rng.random() < f.p_drop_after:
            raise TransientError("connection reset after write")
        return ref

    def add_note(self, invoice: Invoice, text: str, *, key: str) -> str:
        def apply() -> str:
            self.state.notes.append((invoice.id, f"{text} [{key_marker(key)}]"))
            return f"note-{len(self.state.notes) - 1}"
        return self._write(key, apply)

    def add_late_fee(self, invoice: Invoice, fee: Money, label: str, *, key: str,
                     mode: FeeMode, tax: str | None = None, account: str | None = None) -> str:
        def apply() -> str:
            self.state.fees.append((invoice.id, f"{label} {reference_text(key)}", fee))
            inv = self.state.invoices[invoice.id]
            self.state.invoices[invoice.id] = inv.model_copy(update={
                "total": inv.total + fee.amount, "balance": inv.balance + fee.amount,
                "late_fees_charged": inv.late_fees_charged + fee.amount})
            return f"fee-{len(self.state.fees) - 1}"
        return self._write(key, apply)

    def send_reminder(self, invoice: Invoice, *, key: str, to: str | None = None) -> str:
        def apply() -> str:
            self.state.emails.append((invoice.id, key))
            return f"email-{len(self.state.emails) - 1}"
        return self._write(key, apply, email=True)

    def pay(self, invoice_id: str) -> None:
        with self.state.lock:
            inv = self.state.invoices[invoice_id]
            self.state.invoices[invoice_id] = inv.model_copy(
                update={"balance": 0, "status": InvoiceStatus.PAID})
