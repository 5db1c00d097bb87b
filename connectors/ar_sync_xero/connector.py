"""A live session with one Xero organisation: fetch receivables, write notes, fees, e-mails.

Composes a XeroSession (session.py: tenant, SDK api, caller, caches) and delegates to the parts
that take it: reads.py, writes.py, batch.py, waivers.py, pauses.py and effects.py
(reconciliation). What stays here is the Connector interface and the write_reconciled wrapper
around each single write. Each write is one call with its Idempotency-Key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal

from xero_python.accounting import AccountingApi

from ar_sync.connect.tokens import TokenManager
from ar_sync.domain.errors import PlatformValidationError
from ar_sync.domain.models import Action, ActionKind, FeeMode, Invoice, Money
from ar_sync.domain.pauses import Pause
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import (
    BatchItemResult,
    BatchWrite,
    Connection,
    FetchResult,
    PlatformSettings,
    TokenStore,
)
from ar_sync.sync.deadline import DEADLINE
from ar_sync.sync.retry import CLOCK_SKEW, write_reconciled
from ar_sync_xero import accounts, batch, effects, fee_writes, pauses, reads, waivers, writes
from ar_sync_xero.calls import Caller, Timeout
from ar_sync_xero.fee_lines import LineSet, OrgFacts
from ar_sync_xero.fee_writes import FeeSpec
from ar_sync_xero.session import PAGE_SIZE, XeroSession

log = logging.getLogger(__name__)


class XeroConnector:
    """The ar_sync Connector for one Xero tenant (and a BatchWriter for fees: batch.py)."""

    platform = "xero"
    max_batch = batch.MAX_BATCH

    def __init__(self, settings: PlatformSettings, connection: Connection, tokens: TokenStore,
                 budget: CallBudget, *, clock: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 timeout: Timeout = (5.0, 30.0), page_size: int = PAGE_SIZE,
                 fee_account_code: str = "200", attempts: int = 6,
                 recheck_seconds: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 deadline: float = DEADLINE) -> None:
        self.connection = connection
        self.settings = settings
        self.tenant = connection.external_id
        self.session = XeroSession(settings, connection, tokens, budget, clock=clock,
                                   sleep=sleep, timeout=timeout, page_size=page_size,
                                   fee_account_code=fee_account_code, attempts=attempts,
                                   recheck_seconds=recheck_seconds, monotonic=monotonic,
                                   deadline=deadline)

    # ------------------------------------------------------------------ the session's parts

    @property
    def tokens(self) -> TokenManager:
        return self.session.tokens

    @property
    def caller(self) -> Caller:
        return self.session.caller

    @property
    def api(self) -> AccountingApi:
        return self.session.api

    @property
    def fresh_lines(self) -> dict[str, LineSet]:
        """batch.get_invoices -> batch.write_batch: the lines a fee line re-sends."""
        return self.session.fresh_lines

    @property
    def waiver_notes(self) -> dict[str, tuple[str, Decimal, bool]]:
        """waivers.find_waiver -> waive_fee: key -> (credit note id, credit left, marked)."""
        return self.session.waiver_notes

    @property
    def timeout(self) -> Timeout:
        return self.session.timeout

    @property
    def fee_account(self) -> str:
        return self.session.fee_account

    @property
    def fee_tax_type(self) -> str | None:
        """The organisation's no-tax code (what a fee carries unless its rule names a tax)."""
        return self.session.fee_tax_type

    def today(self) -> date:
        return self.session.today()

    # ------------------------------------------------------------------ reads (reads.py)

    def fetch_open_invoices(self, since: datetime | None = None) -> FetchResult:
        """Open ACCREC invoices; with `since`, those changed since (PAID/VOIDED included)."""
        return reads.fetch_open_invoices(self.session, since)

    def get_invoice(self, invoice_id: str) -> Invoice | None:
        """A fresh view of one invoice (see reads.get_invoice for what "fresh" costs)."""
        return reads.get_invoice(self.session, invoice_id)

    def remember(self, invoice: Invoice | None, lines: LineSet, *,
                 invoice_id: str | None = None) -> None:
        """An invoice (or only its lines) as Xero just answered it."""
        self.session.remember(invoice, lines, invoice_id=invoice_id)

    def lines_of(self, invoice_id: str) -> LineSet | None:
        return self.session.lines_of(invoice_id)

    def known(self, invoice_id: str) -> Invoice | None:
        return self.session.known(invoice_id)

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        """The invoice as Xero prints it, for an e-mail attachment (None: none to give)."""
        return reads.invoice_pdf(self.session, invoice)

    def payment_link(self, invoice_id: str) -> str | None:
        """The customer's online invoice URL (one GET, then cached for this session)."""
        return reads.payment_link(self.session, invoice_id)

    def resolved_links(self) -> dict[str, str]:
        """The online invoice URLs read this session (the sync stores them: read once in an
        invoice's life)."""
        return dict(self.session.links)

    # BatchWriter (batch.py): fees only; notes and e-mails have no batch form in Xero
    def can_batch(self, action: Action) -> bool:
        return batch.can_batch(action)

    def get_invoices(self, invoice_ids: Sequence[str]) -> dict[str, Invoice | None]:
        return batch.get_invoices(self.session, invoice_ids)

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchItemResult]:
        return batch.write_batch(self.session, writes)

    # ------------------------------------------------------------------ writes (writes.py)

    def _reconciled(self, write: Callable[[], str], invoice: Invoice, kind: ActionKind,
                    key: str) -> str:
        """A write tried again after a lost answer only if find_effect does not see it (an
        e-mail: an "emailed" history entry since just before the first try)."""
        since = self.session.clock() - CLOCK_SKEW
        return write_reconciled(write, lambda: self.find_effect(invoice, kind, key,
                                                                since=since),
                                what=f"xero {kind} {key}", sleep=self.session.sleep)

    def add_note(self, invoice: Invoice, text: str, *, key: str) -> str:
        return self._reconciled(lambda: writes.add_note(self.session, invoice, text, key),
                                invoice, ActionKind.NOTE, key)

    def send_reminder(self, invoice: Invoice, *, key: str, to: str | None = None) -> str:
        return self._reconciled(lambda: writes.send(self.session, invoice, key, to), invoice,
                                ActionKind.REMINDER_EMAIL, key)

    def organisation(self) -> OrgFacts:
        """Version and lock date from GET /Organisation (one call per session)."""
        return self.session.organisation()

    def fee_spec(self, invoice: Invoice, fee: Money, label: str, key: str,
                 tax: str | None, account: str | None = None) -> FeeSpec:
        """What a fee writes (PlatformValidationError: a currency mismatch, an unknown tax)."""
        return self.session.fee_spec(invoice, fee, label, key, tax, account)

    def add_late_fee(self, invoice: Invoice, fee: Money, label: str, *, key: str,
                     mode: FeeMode, tax: str | None = None, account: str | None = None) -> str:
        """A fee line on the invoice while Xero allows the edit, else a separate ACCREC fee
        invoice dated today: in invoice mode, when a payment is applied, when the invoice is
        dated on or before the organisation's lock date, or when Xero refuses the edit."""
        spec = self.fee_spec(invoice, fee, label, key, tax, account)
        if fee_writes.wants_line(invoice, mode, self.organisation()):
            try:
                return self._reconciled(lambda: writes.fee_on_invoice(self.session, spec),
                                        invoice, ActionKind.LATE_FEE, key)
            except PlatformValidationError as exc:
                if not fee_writes.edit_refused(exc):
                    raise
                log.info("xero %s: %s cannot take a fee line (%s); fee goes on its own "
                         "invoice", self.tenant, invoice.number, exc)
        return self._reconciled(lambda: writes.fee_invoice(self.session, spec), invoice,
                                ActionKind.LATE_FEE, key)

    def waive_fee(self, invoice: Invoice, fee_key: str, amount: Money, label: str, *,
                  key: str, account: str | None = None) -> str:
        """A sales credit note allocated to the invoice (see waivers.py for why), booked to
        the fee's account."""
        return self._reconciled(
            lambda: waivers.waive_fee(self.session, invoice, amount, label, key, account),
            invoice, ActionKind.WAIVE_FEE, key)

    def pause_markers(self, invoices: Sequence[Invoice]) -> dict[str, Pause]:
        """Pauses of customers in the "ar-sync: paused" / "ar-sync: disputed" contact groups
        (one or two calls a session, whatever the number of invoices; see pauses.py)."""
        return pauses.pause_markers(self.session, invoices)

    def check_fee_accounts(self, wanted: Sequence[str | None]) -> list[str]:
        """AccountChecker: the fee rules' account codes against GET /Accounts (accounts.py)."""
        return accounts.check_fee_accounts(self.session, wanted)

    # ------------------------------------------------------------------ reconciliation

    def find_effect(self, invoice: Invoice, kind: ActionKind, key: str, *,
                    since: datetime | None = None) -> str | None:
        """Proof from Xero that a write with `key` happened (effects.py)."""
        return effects.find_effect(self.session, invoice, kind, key, since)
