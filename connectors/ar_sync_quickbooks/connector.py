"""The QuickBooks Online connector: reads open invoices, writes notes, fees and reminders,
each write carrying its idempotency key as `requestid` and as the `ar-sync:<key>` marker.

Composes a QuickBooksSession (session.py: client, clock, query helpers, caches) and delegates
to the parts that take it: reads.py (full and incremental fetches, fresh views), writes.py,
batch.py (the BatchWriter over /batch), links.py, waivers.py and effects.py (reconciliation).
What stays here is the Connector interface and the write_reconciled wrapper around each single
write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ar_sync.domain.models import Action, ActionKind, FeeMode, Invoice, Money
from ar_sync.domain.pauses import Pause
from ar_sync.sync.connector import BatchItemResult, BatchWrite, Connection, FetchResult
from ar_sync.sync.retry import CLOCK_SKEW, write_reconciled
from ar_sync_quickbooks import (
    accounts,
    batch,
    effects,
    links,
    pauses,
    reads,
    waivers,
    writes,
)
from ar_sync_quickbooks.client import QuickBooksClient
from ar_sync_quickbooks.fees import FeeTax
from ar_sync_quickbooks.session import QuickBooksSession

__all__ = ["QuickBooksConnector"]


class QuickBooksConnector:
    """A live session with one QuickBooks company (realm)."""

    platform = "quickbooks"
    max_batch = batch.MAX_BATCH

    def __init__(self, connection: Connection, client: QuickBooksClient, *,
                 clock: Callable[[], datetime], sleep: Callable[[float], None] = time.sleep,
                 max_wait: float = 30.0) -> None:
        self.connection = connection
        self.session = QuickBooksSession(connection, client, clock=clock, sleep=sleep,
                                         max_wait=max_wait)

    # ------------------------------------------------------------------ the session's parts

    @property
    def client(self) -> QuickBooksClient:
        return self.session.client

    @property
    def realm(self) -> str:
        return self.session.realm

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.session.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.session.clock = clock

    @property
    def sleep(self) -> Callable[[float], None]:
        return self.session.sleep

    @sleep.setter
    def sleep(self, sleep: Callable[[float], None]) -> None:
        self.session.sleep = sleep

    @property
    def max_wait(self) -> float:
        return self.session.max_wait

    @max_wait.setter
    def max_wait(self, seconds: float) -> None:
        self.session.max_wait = seconds

    @property
    def monotonic(self) -> Callable[[], float]:
        """The clock of the read-ahead's freshness window (replaceable in tests)."""
        return self.session.monotonic

    @monotonic.setter
    def monotonic(self, monotonic: Callable[[], float]) -> None:
        self.session.monotonic = monotonic

    @property
    def waiver_memos(self) -> dict[str, dict[str, Any]]:
        """Key -> a credit memo find_effect found with credit left, applied by waive_fee."""
        return self.session.waiver_memos

    # ------------------------------------------------------------------ reads (reads.py)

    @property
    def read_payments(self) -> bool:
        """Whether a fetch reads the open invoices' payments (payments.py): the sync turns it
        off when no rule accrues interest, the only thing payments change."""
        return self.session.read_payments

    @read_payments.setter
    def read_payments(self, wanted: bool) -> None:
        self.session.read_payments = wanted

    def fetch_open_invoices(self, since: datetime | None = None) -> FetchResult:
        return reads.fetch_open_invoices(self.session, since)

    def get_invoice(self, invoice_id: str) -> Invoice | None:
        return reads.get_invoice(self.session, invoice_id)

    def get_invoices(self, invoice_ids: Sequence[str]) -> dict[str, Invoice | None]:
        """BatchWriter: fresh reads of many invoices in one `Id in (...)` query."""
        return reads.get_invoices(self.session, invoice_ids)

    def forget(self, invoice_id: str) -> None:
        """Drop what this session knows of an invoice another write just changed."""
        self.session.forget(invoice_id)

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        """The invoice as QuickBooks prints it (GET invoice/{id}/pdf with Accept
        application/pdf, as python-quickbooks' `download_pdf` sends it; that method needs the
        SDK's own session, so the request goes through our client), for an e-mail
        attachment; None when QuickBooks has none to give."""
        response = self.session.run(lambda: self.client.process_request(
            "GET", self.session.url(f"invoice/{invoice.id}/pdf"),
            headers={"Accept": "application/pdf, application/json"}), "invoice pdf")
        if response.status_code != 200 or not response.content.startswith(b"%PDF"):
            return None
        return bytes(response.content)

    def payment_link(self, invoice_id: str) -> str | None:
        """The invoice's InvoiceLink (links.py; None: QuickBooks gives none)."""
        return links.payment_link(self.session, invoice_id)

    def resolved_links(self) -> dict[str, str]:
        """The InvoiceLinks read this session (the sync stores them: read once in an
        invoice's life)."""
        return {k: v for k, v in self.session.payment_links.items() if v}

    # ------------------------------------------------------------------ writes (writes.py)

    def _reconciled(self, write: Callable[[], str], invoice: Invoice, kind: ActionKind,
                    key: str) -> str:
        """A write tried again after a lost answer only if find_effect does not see it (an
        e-mail: a send on the invoice's record since just before the first try)."""
        since = self.session.clock() - CLOCK_SKEW
        return write_reconciled(write, lambda: self.find_effect(invoice, kind, key,
                                                                since=since),
                                what=f"quickbooks {kind} {key}", sleep=self.session.sleep,
                                max_wait=self.session.max_wait)

    def fee_tax(self, wanted: str | None) -> FeeTax:
        return self.session.fee_tax(wanted)

    def fee_item(self) -> tuple[str, str]:
        """The 'Late fee' service Item: found by name, else created (once per connector)."""
        return self.session.fee_item()

    def add_note(self, invoice: Invoice, text: str, *, key: str) -> str:
        return self._reconciled(lambda: writes.add_note(self.session, invoice, text, key),
                                invoice, ActionKind.NOTE, key)

    def send_reminder(self, invoice: Invoice, *, key: str, to: str | None = None) -> str:
        """QBO's own invoice e-mail to the invoice's BillEmail (writes.check_reminder)."""
        writes.check_reminder(self.session, invoice)
        return self._reconciled(lambda: writes.send(self.session, invoice, key), invoice,
                                ActionKind.REMINDER_EMAIL, key)

    def fee_inputs(self, invoice: Invoice, fee: Money, tax: str | None,
                   account: str | None = None) -> tuple[Decimal, tuple[str, str], FeeTax]:
        """The fee rounded, the Late fee item and the fee's tax (both paths check the same)."""
        return writes.fee_inputs(self.session, invoice, fee, tax, account)

    def add_late_fee(self, invoice: Invoice, fee: Money, label: str, *, key: str,
                     mode: FeeMode, tax: str | None = None, account: str | None = None) -> str:
        amount, item, charge = self.fee_inputs(invoice, fee, tax, account)
        if mode == FeeMode.INVOICE:
            return self._reconciled(lambda: writes.fee_invoice(
                self.session, invoice, amount, label, key, item, charge, request_id=key),
                invoice, ActionKind.LATE_FEE, key)
        return self._reconciled(lambda: writes.fee_line_write(
            self.session, invoice, amount, label, key, item, charge),
            invoice, ActionKind.LATE_FEE, key)

    def fee_line_written(self, invoice: Invoice, before: dict[str, Any],
                         updated: dict[str, Any], amount: Decimal, key: str,
                         charge: FeeTax) -> str:
        """QuickBooks' answer to a fee-line update, checked (writes.fee_line_written)."""
        return writes.fee_line_written(self.session, invoice, before, updated, amount, key,
                                       charge)

    def fee_invoice_body(self, invoice: Invoice, amount: Decimal, label: str, key: str,
                         item: tuple[str, str], charge: FeeTax) -> dict[str, Any]:
        return writes.fee_invoice_body(self.session, invoice, amount, label, key, item,
                                       charge)

    def waive_fee(self, invoice: Invoice, fee_key: str, amount: Money, label: str, *,
                  key: str, account: str | None = None) -> str:
        """A CreditMemo applied to the invoice (see waivers.py for why not a line removal);
        its line uses the 'Late fee' item, so the credit books where the fee did
        (`account` needs no other handling)."""
        return self._reconciled(
            lambda: waivers.waive_fee(self.session, invoice, amount, label, key),
            invoice, ActionKind.WAIVE_FEE, key)

    # ------------------------------------------------------------------ BatchWriter (batch.py)

    def can_batch(self, action: Action) -> bool:
        """Notes, escalations and late fees; not e-mails nor waivers."""
        return batch.can_batch(action)

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchItemResult]:
        return batch.write_batch(self.session, writes, max_batch=self.max_batch)

    def pause_markers(self, invoices: Sequence[Invoice]) -> dict[str, Pause]:
        """Pauses in the customers' notes (one /batch call a session; pauses.py). The
        invoices' own private-note markers come with the fetch."""
        return pauses.pause_markers(self.session, invoices)

    def check_fee_accounts(self, wanted: Sequence[str | None]) -> list[str]:
        """AccountChecker: the fee rules' accounts against the 'Late fee' item and the
        company's Income accounts (accounts.py)."""
        return accounts.check_fee_accounts(self.session, wanted)

    # ------------------------------------------------------------------ reconciliation

    def find_effect(self, invoice: Invoice, kind: ActionKind, key: str, *,
                    since: datetime | None = None) -> str | None:
        """The platform's reference of a write carrying `key` (effects.py), or None."""
        return effects.find_effect(self.session, invoice, kind, key, since)
