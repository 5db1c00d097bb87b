"""What the parts of one Xero connection share: the tenant, the SDK api and its Caller, the
clock, and the per-session caches (invoices and lines seen, organisation facts, tax rates).

The connector composes one XeroSession and hands it to its parts (reads, writes, batch,
waivers, pauses, effects), so none of them depends on connector.py and each sees the same
state the connector sees.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

from xero_python.accounting import AccountingApi

from ar_sync.connect.tokens import TokenManager
from ar_sync.domain.errors import PlatformValidationError, ReauthorizationRequiredError
from ar_sync.domain.models import Invoice, Money
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import Connection, PlatformSettings, TokenStore
from ar_sync.sync.deadline import DEADLINE
from ar_sync_xero import fee_writes, mapping, oauth
from ar_sync_xero.calls import Caller, NotFound, Timeout
from ar_sync_xero.fee_lines import LineSet, OrgFacts
from ar_sync_xero.fee_writes import FeeSpec

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # Xero's largest page


def _utcnow() -> datetime:
    return datetime.now(UTC)


class XeroSession:
    """One tenant's SDK access and caches, shared by the connector's parts."""

    def __init__(self, settings: PlatformSettings, connection: Connection, tokens: TokenStore,
                 budget: CallBudget, *, clock: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 timeout: Timeout = (5.0, 30.0), page_size: int = PAGE_SIZE,
                 fee_account_code: str = "200", attempts: int = 6,
                 recheck_seconds: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 deadline: float = DEADLINE) -> None:
        self.tenant = connection.external_id
        self.clock = clock or _utcnow
        self.sleep = sleep
        self.monotonic = monotonic
        self.timeout = timeout
        self.page_size = page_size
        self.recheck = recheck_seconds
        self.fee_account = fee_account_code  # the sales account fees are booked to
        self.tokens = TokenManager(connection.token_key, tokens,
                                   lambda rt: oauth.refresh(settings, rt, self.clock),
                                   clock=self.clock)
        self.caller = Caller(budget, access_token=self.tokens.access_token,
                             after_unauthorized=self.tokens.after_unauthorized, sleep=sleep,
                             attempts=attempts, deadline=deadline)
        self.api = AccountingApi(self.caller.client,
                                 base_url=oauth.endpoint(settings, "api", oauth.API_URL))
        self.lines: dict[str, LineSet] = {}  # invoice id -> its lines last seen
        self.invoices: dict[str, Invoice] = {}  # invoice id -> latest version seen
        self.links: dict[str, str] = {}  # invoice id -> online invoice URL
        self.paused_customers: dict[str, str] | None = None  # contact id -> reason (pauses.py)
        self.fresh_since: datetime | None = None  # Xero's time of the latest listing
        self.fresh_at: float | None = None  # our monotonic time of it
        self.fresh_lines: dict[str, LineSet] = {}  # batch.get_invoices -> batch.write_batch
        # waivers.find_waiver -> waive_fee: key -> (credit note id, credit left, marked)
        self.waiver_notes: dict[str, tuple[str, Decimal, bool]] = {}
        self.email_limited = False  # the organisation's daily e-mail limit was reached
        self.org: OrgFacts | None = None  # GET /Organisation, once per session
        self.tax_rates: dict[str, tuple[str, Decimal]] | None = None  # name/code -> rate

    # ------------------------------------------------------------------ invoices seen

    def today(self) -> date:
        return self.clock().date()

    def remember(self, invoice: Invoice | None, lines: LineSet, *,
                 invoice_id: str | None = None) -> None:
        """An invoice (or only its lines) as Xero just answered it."""
        if invoice is not None:
            self.invoices[invoice.id] = invoice
        self.lines[invoice.id if invoice is not None else str(invoice_id)] = lines

    def lines_of(self, invoice_id: str) -> LineSet | None:
        return self.lines.get(invoice_id)

    def known(self, invoice_id: str) -> Invoice | None:
        return self.invoices.get(invoice_id)

    def read(self, invoice_id: str) -> tuple[Invoice, LineSet] | None:
        """GET Invoices/{id} with its lines, remembered; None when Xero has no such invoice
        (or cannot map it). Fee writes and reconciliation need this fresh, never cached."""
        try:
            raw = self.caller.call("GET Invoices/{id}", lambda: self.api.get_invoice(
                self.tenant, invoice_id, unitdp=4, _preload_content=False,
                _return_http_data_only=False, _request_timeout=self.timeout))
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
        self.remember(invoice, lines)
        return invoice, lines

    # ------------------------------------------------------------------ organisation facts

    def organisation(self) -> OrgFacts:
        """Version and lock date from GET /Organisation (one call per session). Without the
        accounting.settings.read scope (connected before it was asked for) the lock date is
        unknown: edits are tried and a lock refusal still falls back to a fee invoice."""
        if self.org is None:
            try:
                got = self.caller.call("GET Organisation", lambda: self.api.get_organisations(
                    self.tenant, _return_http_data_only=False, _request_timeout=self.timeout))
            except ReauthorizationRequiredError as exc:
                log.warning("xero %s: cannot read the organisation's lock dates (%s); "
                            "connect it again to grant accounting.settings.read",
                            self.tenant, exc)
                self.org = OrgFacts(known=False)
                return self.org
            org = (got.organisations or [None])[0]
            locks = [d for d in (getattr(org, "period_lock_date", None),
                                 getattr(org, "end_of_year_lock_date", None)) if d is not None]
            self.org = OrgFacts(
                version=str(getattr(getattr(org, "version", None), "value",
                                    getattr(org, "version", None)) or "GLOBAL"),
                lock_date=max(locks) if locks else None)
        return self.org

    @property
    def fee_tax_type(self) -> str | None:
        """The organisation's no-tax code (what a fee carries unless its rule names a tax)."""
        return self.organisation().no_tax_type

    def fee_tax(self, tax: str | None) -> tuple[str, Decimal]:
        """(TaxType, rate in percent) for a fee: the region's no-tax code unless the rules
        name a tax rate (by TaxType or by name, checked against GET /TaxRates once)."""
        if tax is None:
            return self.organisation().no_tax_type, Decimal(0)
        if self.tax_rates is None:
            self.tax_rates = self._read_tax_rates()
        found = self.tax_rates.get(tax.strip().lower())
        if found is None:
            raise PlatformValidationError(
                f"tax {tax!r} of the fee rule is not an active sales tax rate of this Xero "
                "organisation (GET /TaxRates: use its TaxType or Name)")
        return found

    def _read_tax_rates(self) -> dict[str, tuple[str, Decimal]]:
        """The active sales tax rates by TaxType and by name (lower case)."""
        got = self.caller.call("GET TaxRates", lambda: self.api.get_tax_rates(
            self.tenant, _return_http_data_only=False, _request_timeout=self.timeout))
        rates: dict[str, tuple[str, Decimal]] = {}
        for rate in got.tax_rates or []:
            if str(getattr(rate.status, "value", rate.status)) != "ACTIVE" or (
                    rate.can_apply_to_revenue is False):
                continue
            pair = (str(rate.tax_type), Decimal(str(rate.effective_rate or 0)))
            rates[str(rate.tax_type).lower()] = pair
            rates[str(rate.name or "").lower()] = pair
        return rates

    def fee_spec(self, invoice: Invoice, fee: Money, label: str, key: str,
                 tax: str | None, account: str | None = None) -> FeeSpec:
        """What a fee writes (PlatformValidationError: a currency mismatch, an unknown tax);
        booked to the rule's `account`, else this connection's default."""
        fee_writes.check_currency(invoice, fee)
        tax_type, rate = self.fee_tax(tax)
        return FeeSpec(invoice, fee, label, key, account or self.fee_account, tax_type, rate)
