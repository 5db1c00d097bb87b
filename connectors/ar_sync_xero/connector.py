"""A live session with one Xero organisation: fetch receivables, write notes, fees, e-mails.

Calls: a full fetch is ceil(open invoices / 1000) GETs; an incremental one (If-Modified-Since)
is usually one. Each write is one call with its Idempotency-Key. The online-invoice link costs
one GET, spent only when a note's text actually uses it (see mapping.LAZY_LINK).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from xero_python.accounting import (
    AccountingApi,
    HistoryRecord,
    HistoryRecords,
    RequestEmpty,
)
from xero_python.accounting import Invoices as XeroInvoices

from ar_sync.connect.tokens import TokenManager
from ar_sync.domain.errors import (
    PlatformValidationError,
    QuotaReachedError,
    ReauthorizationRequiredError,
)
from ar_sync.domain.models import Action, ActionKind, FeeMode, Invoice, Money
from ar_sync.domain.pauses import Pause
from ar_sync.domain.references import customer_reference, key_marker, mentions_key
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import (
    BatchItemResult,
    BatchWrite,
    Connection,
    FetchResult,
    PlatformSettings,
    TokenStore,
)
from ar_sync.sync.retry import write_reconciled
from ar_sync_xero import batch, fee_writes, mapping, oauth, pauses, waivers
from ar_sync_xero.calls import Caller, NotFound, Timeout
from ar_sync_xero.fee_lines import LineSet, OrgFacts, fee_invoice_key
from ar_sync_xero.fee_writes import FeeSpec

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # Xero's largest page
HISTORY_DETAILS_MAX = 2500
EMAIL_LIMIT_REACHED = ("Xero's daily e-mail limit for this organisation is reached; the "
                       "reminder is sent on a later run")


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
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.connection = connection
        self.settings = settings
        self.tenant = connection.external_id
        self._clock = clock or (lambda: datetime.now(UTC))
        self._timeout = timeout
        self._page_size = page_size
        self._fee_account = fee_account_code  # the sales account fees are booked to
        self._org: OrgFacts | None = None  # GET /Organisation, once per session
        self._tax_rates: dict[str, tuple[str, Decimal]] | None = None  # name/code -> rate
        self._email_limited = False  # the organisation's daily e-mail limit was reached
        self.tokens = TokenManager(connection.token_key, tokens,
                                   lambda rt: oauth.refresh(settings, rt, self._clock),
                                   clock=self._clock)
        self.caller = Caller(budget, access_token=self.tokens.access_token,
                             after_unauthorized=self.tokens.after_unauthorized, sleep=sleep,
                             attempts=attempts)
        self._sleep = sleep
        self.api = AccountingApi(self.caller.client,
                                 base_url=oauth.endpoint(settings, "api", oauth.API_URL))
        self._lines: dict[str, LineSet] = {}  # invoice id -> its lines last seen
        self._links: dict[str, str] = {}
        self._known: dict[str, Invoice] = {}  # invoice id -> latest version seen
        self._fresh_since: datetime | None = None  # Xero's time of the latest listing
        self._fresh_at: float | None = None  # our monotonic time of it
        self._recheck = recheck_seconds
        self._monotonic = monotonic
        self.fresh_lines: dict[str, LineSet] = {}  # batch.get_invoices -> batch.write_batch
        # waivers.find_waiver -> waive_fee: key -> (credit note id, credit left, marked)
        self.waiver_notes: dict[str, tuple[str, Decimal, bool]] = {}

    # ------------------------------------------------------------------ reads

    def _page(self, page: int, since: datetime | None) -> mapping.Page:
        kwargs: dict[str, Any] = {
            "where": 'Type=="ACCREC"', "page": page, "page_size": self._page_size, "unitdp": 4,
            "statuses": ["AUTHORISED"] if since is None else ["AUTHORISED", "PAID", "VOIDED"]}
        if since is not None:
            kwargs["if_modified_since"] = mapping.if_modified_since(since)
        raw = self.caller.call("GET Invoices", lambda: self.api.get_invoices(
            self.tenant, _preload_content=False, _return_http_data_only=False,
            _request_timeout=self._timeout, **kwargs))
        payload = json.loads(raw.data.decode("utf-8"), parse_float=Decimal)
        return mapping.map_page(payload, self.tenant)

    def _collect(self, since: datetime | None) -> FetchResult:
        """All pages of one listing; remembers what it saw and when Xero said it was."""
        result = FetchResult(full=since is None)
        fees: dict[str, Decimal] = {}
        server_time: datetime | None = None
        started = self._monotonic()
        page = 1
        while True:
            got = self._page(page, since)
            server_time = server_time or got.server_time
            result.invoices.extend(got.invoices)
            result.warnings.extend(got.warnings)
            self._lines.update(got.lines)
            for number, amount in got.fees_for.items():
                fees[number] = fees.get(number, Decimal(0)) + amount
            if (got.page_count is not None and page >= got.page_count) or (
                    got.raw_count < self._page_size):
                break
            page += 1
        result.invoices = mapping.with_fees(result.invoices, fees)
        newest = max((i.updated_at for i in result.invoices), default=None)
        result.checkpoint = server_time or newest or since
        self._known.update((i.id, i) for i in result.invoices)
        if result.checkpoint is not None:
            self._fresh_since, self._fresh_at = result.checkpoint, started
        return result

    def fetch_open_invoices(self, since: datetime | None = None) -> FetchResult:
        """Open ACCREC invoices; with `since`, those changed since (PAID/VOIDED included)."""
        result = self._collect(since)
        for warning in result.warnings:
            log.warning("xero %s: %s", self.tenant, warning)
        return result

    def _read(self, invoice_id: str) -> tuple[Invoice, LineSet] | None:
        try:
            raw = self.caller.call("GET Invoices/{id}", lambda: self.api.get_invoice(
                self.tenant, invoice_id, unitdp=4, _preload_content=False,
                _return_http_data_only=False, _request_timeout=self._timeout))
        except NotFound:
            return None
        payload = json.loads(raw.data.decode("utf-8"), parse_float=Decimal)
        rows = payload.get("Invoices") or []
        if not rows:
            return None
        try:
            invoice, lines = mapping.to_invoice(rows[0], self.tenant)
        except mapping.MalformedInvoice as exc:
            log.warning("xero %s: skipped %s", self.tenant, exc)
            return None
        self._lines[invoice.id] = lines
        self._known[invoice.id] = invoice
        return invoice, lines

    def get_invoice(self, invoice_id: str) -> Invoice | None:
        """A fresh view of one invoice.

        For an invoice this session fetched, "fresh" is proven by asking Xero what changed
        since the fetch (If-Modified-Since: one call, usually one page, for every invoice),
        at most once per `recheck_seconds`; so re-checking before each of a run's fees costs
        a call every few seconds instead of a call per fee. Other invoices: GET /Invoices/{id}.
        """
        if invoice_id in self._known and self._fresh_since is not None:
            if self._fresh_at is None or self._monotonic() - self._fresh_at >= self._recheck:
                self._collect(self._fresh_since)
            return self._known.get(invoice_id)
        found = self._read(invoice_id)
        return None if found is None else found[0]

    def remember(self, invoice: Invoice | None, lines: LineSet, *,
                 invoice_id: str | None = None) -> None:
        """An invoice (or only its lines) as Xero just answered it."""
        if invoice is not None:
            self._known[invoice.id] = invoice
        self._lines[invoice.id if invoice is not None else str(invoice_id)] = lines

    def lines_of(self, invoice_id: str) -> LineSet | None:
        return self._lines.get(invoice_id)

    def known(self, invoice_id: str) -> Invoice | None:
        return self._known.get(invoice_id)

    # BatchWriter (batch.py): fees only; notes and e-mails have no batch form in Xero
    def can_batch(self, action: Action) -> bool:
        return batch.can_batch(action)

    def get_invoices(self, invoice_ids: Sequence[str]) -> dict[str, Invoice | None]:
        return batch.get_invoices(self, invoice_ids)

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchItemResult]:
        return batch.write_batch(self, writes)

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        """The invoice as Xero prints it (GET Invoices/{id} with Accept: application/pdf), for
        an e-mail attachment. xero-python writes the body to a temporary file; read and
        remove it."""
        try:
            path = self.caller.call("GET Invoices/{id}", lambda: self.api.get_invoice_as_pdf(
                self.tenant, invoice.id, _return_http_data_only=False,
                _request_timeout=self._timeout))
        except (PlatformValidationError, NotFound):
            return None
        if not path:
            return None
        file = Path(str(path))
        try:
            return file.read_bytes() or None
        finally:
            file.unlink(missing_ok=True)

    def payment_link(self, invoice_id: str) -> str | None:
        """The customer's online invoice URL (one GET, then cached for this session)."""
        if invoice_id not in self._links:
            try:
                got = self.caller.call("GET Invoices/{id}/OnlineInvoice",
                                       lambda: self.api.get_online_invoice(
                                           self.tenant, invoice_id, _return_http_data_only=False,
                                           _request_timeout=self._timeout))
            except (PlatformValidationError, NotFound):
                return None
            urls = [o.online_invoice_url for o in (got.online_invoices or [])
                    if o.online_invoice_url]
            if not urls:
                return None
            self._links[invoice_id] = str(urls[0])
        return self._links[invoice_id]

    def _resolve_links(self, text: str) -> str:
        for match in list(mapping.LAZY_LINK_RE.finditer(text)):
            url = self.payment_link(match.group("id")) or ""
            text = text.replace(match.group(0), url)
        return text

    # ------------------------------------------------------------------ writes

    def _reconciled(self, write: Callable[[], str], invoice: Invoice, kind: ActionKind,
                    key: str) -> str:
        """A write tried again after a lost answer only if find_effect does not see it."""
        return write_reconciled(write, lambda: self.find_effect(invoice, kind, key),
                                what=f"xero {kind} {key}", sleep=self._sleep)

    def add_note(self, invoice: Invoice, text: str, *, key: str) -> str:
        return self._reconciled(lambda: self._add_note(invoice, text, key), invoice,
                                ActionKind.NOTE, key)

    def _add_note(self, invoice: Invoice, text: str, key: str) -> str:
        """A note in the invoice's History and Notes, ending with the key marker."""
        marker = key_marker(key)
        body = self._resolve_links(text).strip()
        room = HISTORY_DETAILS_MAX - len(marker) - 1
        details = f"{body[:room]}\n{marker}" if marker not in body else body[:HISTORY_DETAILS_MAX]
        records = HistoryRecords(history_records=[HistoryRecord(details=details)])
        self.caller.call("PUT Invoices/{id}/History", lambda: self.api.create_invoice_history(
            self.tenant, invoice.id, records, idempotency_key=key,
            _return_http_data_only=False, _request_timeout=self._timeout), write=True)
        return f"history:{invoice.id}:{key}"

    def send_reminder(self, invoice: Invoice, *, key: str, to: str | None = None) -> str:
        return self._reconciled(lambda: self._send(invoice, key, to), invoice,
                                ActionKind.REMINDER_EMAIL, key)

    def _send(self, invoice: Invoice, key: str, to: str | None) -> str:
        """Xero e-mails the invoice to the contact's own address (it cannot be redirected)."""
        if to and invoice.customer_email and to.lower() != invoice.customer_email.lower():
            log.warning("xero sends invoice e-mails to the contact's address, not %s", to)
        if self._email_limited:  # a limit, not a fault: no retry within this run
            raise QuotaReachedError(EMAIL_LIMIT_REACHED)
        try:
            self.caller.call("POST Invoices/{id}/Email", lambda: self.api.email_invoice(
                self.tenant, invoice.id, RequestEmpty(), idempotency_key=key,
                _return_http_data_only=False, _request_timeout=self._timeout), write=True)
        except PlatformValidationError as exc:
            if "email limit" not in str(exc).lower():
                raise
            self._email_limited = True  # no more e-mail calls this run: they would all fail
            raise QuotaReachedError(EMAIL_LIMIT_REACHED) from exc
        return f"email:{invoice.id}:{key}"

    # ------------------------------------------------------------------ late fees

    def organisation(self) -> OrgFacts:
        """Version and lock date from GET /Organisation (one call per session). Without the
        accounting.settings.read scope (connected before it was asked for) the lock date is
        unknown: edits are tried and a lock refusal still falls back to a fee invoice."""
        if self._org is None:
            try:
                got = self.caller.call("GET Organisation", lambda: self.api.get_organisations(
                    self.tenant, _return_http_data_only=False, _request_timeout=self._timeout))
            except ReauthorizationRequiredError as exc:
                log.warning("xero %s: cannot read the organisation's lock dates (%s); "
                            "connect it again to grant accounting.settings.read",
                            self.tenant, exc)
                self._org = OrgFacts(known=False)
                return self._org
            org = (got.organisations or [None])[0]
            locks = [d for d in (getattr(org, "period_lock_date", None),
                                 getattr(org, "end_of_year_lock_date", None)) if d is not None]
            self._org = OrgFacts(
                version=str(getattr(getattr(org, "version", None), "value",
                                    getattr(org, "version", None)) or "GLOBAL"),
                lock_date=max(locks) if locks else None)
        return self._org

    def _fee_tax(self, tax: str | None) -> tuple[str, Decimal]:
        """(TaxType, rate in percent) for a fee: the region's no-tax code unless the rules
        name a tax rate (by TaxType or by name, checked against GET /TaxRates once)."""
        if tax is None:
            return self.organisation().no_tax_type, Decimal(0)
        if self._tax_rates is None:
            got = self.caller.call("GET TaxRates", lambda: self.api.get_tax_rates(
                self.tenant, _return_http_data_only=False, _request_timeout=self._timeout))
            self._tax_rates = {}
            for rate in got.tax_rates or []:
                if str(getattr(rate.status, "value", rate.status)) != "ACTIVE" or (
                        rate.can_apply_to_revenue is False):
                    continue
                pair = (str(rate.tax_type), Decimal(str(rate.effective_rate or 0)))
                self._tax_rates[str(rate.tax_type).lower()] = pair
                self._tax_rates[str(rate.name or "").lower()] = pair
        found = self._tax_rates.get(tax.strip().lower())
        if found is None:
            raise PlatformValidationError(
                f"tax {tax!r} of the fee rule is not an active sales tax rate of this Xero "
                "organisation (GET /TaxRates: use its TaxType or Name)")
        return found

    def fee_spec(self, invoice: Invoice, fee: Money, label: str, key: str,
                 tax: str | None) -> FeeSpec:
        """What a fee writes (PlatformValidationError: a currency mismatch, an unknown tax)."""
        fee_writes.check_currency(invoice, fee)
        tax_type, rate = self._fee_tax(tax)
        return FeeSpec(invoice, fee, label, key, self._fee_account, tax_type, rate)

    def add_late_fee(self, invoice: Invoice, fee: Money, label: str, *, key: str,
                     mode: FeeMode, tax: str | None = None) -> str:
        """A fee line on the invoice while Xero allows the edit, else a separate ACCREC fee
        invoice dated today: in invoice mode, when a payment is applied, when the invoice is
        dated on or before the organisation's lock date, or when Xero refuses the edit."""
        spec = self.fee_spec(invoice, fee, label, key, tax)
        if fee_writes.wants_line(invoice, mode, self.organisation()):
            try:
                return self._reconciled(lambda: self._fee_on_invoice(spec), invoice,
                                        ActionKind.LATE_FEE, key)
            except PlatformValidationError as exc:
                if not fee_writes.edit_refused(exc):
                    raise
                log.info("xero %s: %s cannot take a fee line (%s); fee goes on its own "
                         "invoice", self.tenant, invoice.number, exc)
        return self._reconciled(lambda: self._fee_invoice(spec), invoice,
                                ActionKind.LATE_FEE, key)

    def _fee_on_invoice(self, spec: FeeSpec) -> str:
        # Xero replaces an invoice's whole line list on update and has no version check, so
        # the lines must be read right before the write (the sync holds a per-invoice lock
        # across both): a cached list would silently drop a line another runner (or a person)
        # added since our fetch.
        invoice = spec.invoice
        found = self._read(invoice.id)
        if found is None:
            raise PlatformValidationError(f"invoice {invoice.number} is gone from Xero")
        current, lineset = found
        element, tax = fee_writes.line_edit(spec, lineset)
        body = XeroInvoices(invoices=[element])
        got = self.caller.call("POST Invoices/{id}", lambda: self.api.update_invoice(
            self.tenant, invoice.id, body, unitdp=4, idempotency_key=spec.key,
            _return_http_data_only=False, _request_timeout=self._timeout), write=True)
        updated = (got.invoices or [None])[0]
        if updated is None:
            raise PlatformValidationError(f"Xero returned no invoice for {invoice.number}")
        self._lines[invoice.id] = LineSet(list(updated.line_items or []), lineset.amount_types)
        return fee_writes.line_edit_ref(spec, current.total, lineset, updated, tax)

    def _fee_invoice(self, spec: FeeSpec) -> str:
        element, tax = fee_writes.fee_invoice(spec, self._clock().date())
        body = XeroInvoices(invoices=[element])
        # Its own Idempotency-Key, derived from the action's: never the key of a line edit
        # that was refused (a layer replaying that answer would replay the refusal).
        got = self.caller.call("PUT Invoices", lambda: self.api.create_invoices(
            self.tenant, body, unitdp=4, idempotency_key=fee_invoice_key(spec.key),
            _return_http_data_only=False, _request_timeout=self._timeout), write=True)
        return fee_writes.fee_invoice_ref(spec, (got.invoices or [None])[0], tax)

    # ------------------------------------------------------------------ reconciliation

    # ------------------------------------------------------------------ waivers (waivers.py)

    def waive_fee(self, invoice: Invoice, fee_key: str, amount: Money, label: str, *,
                  key: str) -> str:
        """A sales credit note allocated to the invoice (see waivers.py for why)."""
        return self._reconciled(lambda: waivers.waive_fee(self, invoice, amount, label, key),
                                invoice, ActionKind.WAIVE_FEE, key)

    def pause_markers(self, invoices: Sequence[Invoice]) -> dict[str, Pause]:
        """`ar-sync: pause …` notes in the invoices' history (one call each; see pauses.py)."""
        return pauses.pause_markers(self, invoices)

    def today(self) -> date:
        return self._clock().date()

    @property
    def timeout(self) -> Timeout:
        return self._timeout

    @property
    def fee_account(self) -> str:
        return self._fee_account

    @property
    def fee_tax_type(self) -> str | None:
        """The organisation's no-tax code (what a fee carries unless its rule names a tax)."""
        return self.organisation().no_tax_type

    def find_effect(self, invoice: Invoice, kind: ActionKind, key: str) -> str | None:
        """Proof from Xero that a write with `key` happened (its response may have been lost).

        E-mails leave no key in Xero; for them this answers None and the retry reuses the
        Idempotency-Key, which Xero replays instead of sending twice.
        """
        marker = key_marker(key)
        if kind in (ActionKind.NOTE, ActionKind.ESCALATE):
            got = self.caller.call(
                "GET Invoices/{id}/History", lambda: self.api.get_invoice_history(
                    self.tenant, invoice.id, _return_http_data_only=False,
                    _request_timeout=self._timeout))
            for record in got.history_records or []:
                if marker in str(record.details or ""):
                    return f"history:{invoice.id}:{key}"
            return None
        if kind == ActionKind.LATE_FEE:
            found = self._read(invoice.id)
            for li in (found[1].lines if found else []):
                if mentions_key(li.description, key):
                    return f"line:{invoice.id}:{li.line_item_id}"
            # SearchTerm is case-insensitive: the reference's digits find both the new
            # "(ref. AR-3F9A2C1D)" and an old "ar-sync:ar3f9a2c1d…" Reference in one call.
            term = customer_reference(key).removeprefix("AR-")
            got = self.caller.call("GET Invoices", lambda: self.api.get_invoices(
                self.tenant, search_term=term, contact_i_ds=[invoice.customer_id],
                page=1, _return_http_data_only=False, _request_timeout=self._timeout))
            for fee_invoice in got.invoices or []:
                if mentions_key(fee_invoice.reference, key):
                    return f"invoice:{fee_invoice.invoice_id}"
            return None
        if kind == ActionKind.WAIVE_FEE:
            return waivers.find_waiver(self, invoice, key)
        return None
