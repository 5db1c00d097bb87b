"""Xero reads of one session: the ACCREC listing (full or If-Modified-Since), the fresh view
of one invoice, its PDF and its online-invoice link.

Calls: a full fetch is ceil(open invoices / page size) GETs; an incremental one is usually
one. The online-invoice link costs one GET, spent only when a note's text actually uses it
(see mapping.LAZY_LINK).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ar_sync.domain.errors import PlatformValidationError
from ar_sync.domain.models import Invoice
from ar_sync.sync.connector import FetchResult
from ar_sync_xero import mapping
from ar_sync_xero.calls import NotFound
from ar_sync_xero.session import XeroSession

log = logging.getLogger(__name__)


def page(session: XeroSession, number: int, since: datetime | None) -> mapping.Page:
    """One page of the listing: open invoices, or (with `since`) every changed one."""
    kwargs: dict[str, Any] = {
        "where": 'Type=="ACCREC"', "page": number, "page_size": session.page_size,
        "unitdp": 4,
        "statuses": ["AUTHORISED"] if since is None else ["AUTHORISED", "PAID", "VOIDED"]}
    if since is not None:
        kwargs["if_modified_since"] = mapping.if_modified_since(since)
    raw = session.caller.call("GET Invoices", lambda: session.api.get_invoices(
        session.tenant, _preload_content=False, _return_http_data_only=False,
        _request_timeout=session.timeout, **kwargs))
    payload = json.loads(raw.data.decode("utf-8"), parse_float=Decimal)
    return mapping.map_page(payload, session.tenant)


def collect(session: XeroSession, since: datetime | None) -> FetchResult:
    """All pages of one listing; remembers what it saw and when Xero said it was."""
    result = FetchResult(full=since is None)
    fees: dict[str, Decimal] = {}
    server_time: datetime | None = None
    started = session.monotonic()
    number = 1
    while True:
        got = page(session, number, since)
        server_time = server_time or got.server_time
        result.invoices.extend(got.invoices)
        result.warnings.extend(got.warnings)
        session.lines.update(got.lines)
        for parent, amount in got.fees_for.items():
            fees[parent] = fees.get(parent, Decimal(0)) + amount
        if (got.page_count is not None and number >= got.page_count) or (
                got.raw_count < session.page_size):
            break
        number += 1
    result.invoices = mapping.with_fees(result.invoices, fees)
    newest = max((i.updated_at for i in result.invoices), default=None)
    result.checkpoint = server_time or newest or since
    session.invoices.update((i.id, i) for i in result.invoices)
    if result.checkpoint is not None:
        session.fresh_since, session.fresh_at = result.checkpoint, started
    return result


def fetch_open_invoices(session: XeroSession, since: datetime | None) -> FetchResult:
    """Open ACCREC invoices; with `since`, those changed since (PAID/VOIDED included)."""
    result = collect(session, since)
    tagged = [i.number for i in result.invoices if i.disputed and i.is_open]
    if tagged:  # still read (no extra call), but the customer sees the Reference
        log.warning("xero %s: %d open invoice(s) carry the old %r tag in their Reference, "
                    "which the customer sees (e.g. %s): use `ar-sync pause INV --reason "
                    "dispute` or the Xero contact group %r instead, and clear the Reference",
                    session.tenant, len(tagged), mapping.DISPUTE_TAG, ", ".join(tagged[:3]),
                    "ar-sync: disputed")
    for warning in result.warnings:
        log.warning("xero %s: %s", session.tenant, warning)
    return result


def get_invoice(session: XeroSession, invoice_id: str) -> Invoice | None:
    """A fresh view of one invoice.

    For an invoice this session fetched, "fresh" is proven by asking Xero what changed
    since the fetch (If-Modified-Since: one call, usually one page, for every invoice),
    at most once per `recheck_seconds`; so re-checking before each of a run's fees costs
    a call every few seconds instead of a call per fee. Other invoices: GET /Invoices/{id}.
    """
    if invoice_id in session.invoices and session.fresh_since is not None:
        if (session.fresh_at is None
                or session.monotonic() - session.fresh_at >= session.recheck):
            collect(session, session.fresh_since)
        return session.known(invoice_id)
    found = session.read(invoice_id)
    return None if found is None else found[0]


def invoice_pdf(session: XeroSession, invoice: Invoice) -> bytes | None:
    """The invoice as Xero prints it (GET Invoices/{id} with Accept: application/pdf), for
    an e-mail attachment. xero-python writes the body to a temporary file; read and
    remove it."""
    try:
        path = session.caller.call("GET Invoices/{id}", lambda: session.api.get_invoice_as_pdf(
            session.tenant, invoice.id, _return_http_data_only=False,
            _request_timeout=session.timeout))
    except (PlatformValidationError, NotFound):
        return None
    if not path:
        return None
    file = Path(str(path))
    try:
        return file.read_bytes() or None
    finally:
        file.unlink(missing_ok=True)


def payment_link(session: XeroSession, invoice_id: str) -> str | None:
    """The customer's online invoice URL (one GET, then cached for this session)."""
    if invoice_id not in session.links:
        try:
            got = session.caller.call("GET Invoices/{id}/OnlineInvoice",
                                      lambda: session.api.get_online_invoice(
                                          session.tenant, invoice_id,
                                          _return_http_data_only=False,
                                          _request_timeout=session.timeout))
        except (PlatformValidationError, NotFound):
            return None
        urls = [o.online_invoice_url for o in (got.online_invoices or [])
                if o.online_invoice_url]
        if not urls:
            return None
        session.links[invoice_id] = str(urls[0])
    return session.links[invoice_id]


def resolve_links(session: XeroSession, text: str) -> str:
    """A note's text with each lazy link reference replaced by the invoice's URL (or "")."""
    for match in list(mapping.LAZY_LINK_RE.finditer(text)):
        url = payment_link(session, match.group("id")) or ""
        text = text.replace(match.group(0), url)
    return text
