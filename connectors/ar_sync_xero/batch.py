"""Xero's BatchWriter side: many fresh reads per `GET /Invoices?IDs=`, many fees per
`POST /Invoices?summarizeErrors=false`.

Limits (sources in docs/connectors/xero.md#batched-fees): Xero's API limits page recommends
batches "in bundles of up to 50" elements (a POST is otherwise only bounded by 3.5 MB), so a batch
carries at most 50 fees; a `GET /Invoices?IDs=` with many ids is refused for its URL length
(Xero-NetStandard issue #413: more than 55 ids answered 404), so ids are read 50 at a time,
with `page=1` (Xero returns line items on paged reads only).

Only fees go in a batch: notes (`PUT …/History`) and e-mails (`POST …/Email`) have no batch
form in Xero. Each fee element is what the single write sends (fee_writes.py): a fee line
re-sends every line of the invoice exactly as just read + the fee line; a fee invoice (invoice
mode, part-paid, locked period) is created in the same call. A line edit Xero refuses for a
reason a fee invoice avoids falls back to a fee invoice, in a second batch call whose
Idempotency-Key derives from the actions' fee-invoice keys (never the refused call's key).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from xero_python.accounting import Invoice as XeroInvoice
from xero_python.accounting import Invoices as XeroInvoices

from ar_sync.domain.errors import (
    ConnectorError,
    PlatformTimeoutError,
    PlatformValidationError,
    RateLimitedError,
    TransientError,
)
from ar_sync.domain.models import Action, ActionKind, ApplyLateFee, Invoice
from ar_sync.sync.connector import BatchItemResult, BatchWrite
from ar_sync_xero import effects, fee_writes, mapping
from ar_sync_xero.calls import NotFound
from ar_sync_xero.fee_lines import LineSet, fee_invoice_key
from ar_sync_xero.fee_writes import FeeSpec
from ar_sync_xero.session import XeroSession

log = logging.getLogger(__name__)

MAX_BATCH = 50  # Xero API limits: "batch elements in bundles of up to 50"
IDS_PER_READ = 50  # GET /Invoices?IDs=: the URL stays short (Xero-NetStandard #413)
KEY_PREFIX = "ar-batch-"
ATTEMPTS = 3  # as write_reconciled: a batch call tried at most this often


def batch_key(keys: Sequence[str]) -> str:
    """The batch's Idempotency-Key: a hash of its elements' sorted keys (<= 128 characters;
    the same set of writes gets the same key, any other set another one)."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode("utf-8")).hexdigest()
    return KEY_PREFIX + digest


def can_batch(action: Action) -> bool:
    return isinstance(action, ApplyLateFee)


def get_invoices(session: XeroSession, invoice_ids: Sequence[str]) -> dict[str, Invoice | None]:
    """Fresh reads with full lines, IDS_PER_READ ids per call; None for an id Xero no longer
    has (deleted) or cannot map. Each read is remembered as the invoice's latest lines."""
    out: dict[str, Invoice | None] = {i: None for i in invoice_ids}
    wanted = list(dict.fromkeys(invoice_ids))
    for start in range(0, len(wanted), IDS_PER_READ):
        ids = wanted[start:start + IDS_PER_READ]
        try:
            raw = session.caller.call(
                "GET Invoices", lambda ids=ids: session.api.get_invoices(  # type: ignore[misc]
                    session.tenant, i_ds=ids, page=1, page_size=len(ids), unitdp=4,
                    _preload_content=False, _return_http_data_only=False,
                    _request_timeout=session.timeout))
        except NotFound:
            continue
        payload = json.loads(raw.data.decode("utf-8"), parse_float=Decimal)
        for row in payload.get("Invoices") or []:
            try:
                invoice, lines = mapping.to_invoice(row, session.tenant)
            except mapping.MalformedInvoice as exc:
                log.warning("xero %s: skipped %s", session.tenant, exc)
                continue
            if invoice.id in out:
                session.remember(invoice, lines)
                session.fresh_lines[invoice.id] = lines  # what write_batch re-sends
                out[invoice.id] = invoice
    return out


@dataclass
class _Element:
    """One fee of the batch: what was sent for it and how to check the answer."""

    spec: FeeSpec
    element: XeroInvoice
    tax: Decimal
    lineset: LineSet | None  # a line edit: the lines as read; None: a fee invoice

    @property
    def request_key(self) -> str:
        return self.spec.key if self.lineset is not None else fee_invoice_key(self.spec.key)


def write_batch(session: XeroSession, writes: Sequence[BatchWrite]) -> list[BatchItemResult]:
    """The fees in one POST /Invoices (summarizeErrors=false), each element checked on its
    own; refused line edits retried as fee invoices in one more call. A call that failed
    ambiguously is settled fee by fee (_attempts). Raises only what stops the run (budget,
    authorisation, 429 after the caller's waits)."""
    results: dict[str, BatchItemResult] = {}
    elements: list[_Element] = []
    org = session.organisation()
    for write in writes:
        action, invoice = write.action, write.invoice
        if not isinstance(action, ApplyLateFee):
            results[action.key] = BatchItemResult(action.key, error=PlatformValidationError(
                "Xero batches late fees only"))
            continue
        try:
            spec = session.fee_spec(invoice, action.amount, action.label, action.key,
                                    action.tax, action.account)
        except PlatformValidationError as exc:
            results[action.key] = BatchItemResult(action.key, error=exc)
            continue
        lineset = session.fresh_lines.pop(invoice.id, None)
        if fee_writes.wants_line(invoice, action.mode, org):
            if lineset is None:  # never re-send lines not read right before the write
                results[action.key] = BatchItemResult(action.key, error=TransientError(
                    f"invoice {invoice.number} was not read just before its fee line"))
                continue
            element, tax = fee_writes.line_edit(spec, lineset)
            elements.append(_Element(spec, element, tax, lineset))
        else:
            element, tax = fee_writes.fee_invoice(spec, session.today())
            elements.append(_Element(spec, element, tax, None))
    fallback: list[_Element] = []
    for item, answer in _attempts(session, elements, create_only=False):
        outcome = (answer if isinstance(answer, BatchItemResult)
                   else _settle(session, item, answer))
        if (isinstance(outcome.error, PlatformValidationError) and item.lineset is not None
                and fee_writes.edit_refused(outcome.error)):
            log.info("xero %s: %s cannot take a fee line (%s); fee goes on its own invoice",
                     session.tenant, item.spec.invoice.number, outcome.error)
            element, tax = fee_writes.fee_invoice(item.spec, session.today())
            fallback.append(_Element(item.spec, element, tax, None))
            continue
        results[item.spec.key] = outcome
    for item, answer in _attempts(session, fallback, create_only=True):
        results[item.spec.key] = (answer if isinstance(answer, BatchItemResult)
                                  else _settle(session, item, answer))
    return [results.get(w.action.key) or BatchItemResult(
        w.action.key, error=TransientError("no answer for this fee")) for w in writes]


def _attempts(session: XeroSession, items: list[_Element], *, create_only: bool
              ) -> list[tuple[_Element, Any]]:
    """The call, tried again after an ambiguous failure (5xx, timeout, lost answer) only for
    the fees Xero does not show (find_effect, per fee), as write_reconciled does for one
    write; a fee found there is settled with its reference (BatchItemResult). After
    ATTEMPTS, what is still unsure is a TransientError item: reconciled by key next run."""
    done: list[tuple[_Element, Any]] = []
    pending = items
    for attempt in range(1, ATTEMPTS + 1):
        if not pending:
            break
        try:
            return done + list(zip(pending, _post(session, pending, create_only=create_only),
                                   strict=True))
        except (RateLimitedError, PlatformTimeoutError):
            raise  # refused before Xero did anything / no answer at all: not asked again
        except TransientError as exc:
            if attempt == ATTEMPTS:
                return done + [(i, BatchItemResult(i.spec.key, error=exc)) for i in pending]
            log.info("xero %s: batch of %d answered %s; looking for its fees",
                     session.tenant, len(pending), type(exc).__name__)
            still: list[_Element] = []
            for item in pending:
                ref = effects.find_effect(session, item.spec.invoice, ActionKind.LATE_FEE,
                                          item.spec.key)
                if ref is not None:
                    done.append((item, BatchItemResult(item.spec.key, ref=ref)))
                else:
                    still.append(_again(session, item))
            pending = still
    return done


def _again(session: XeroSession, item: _Element) -> _Element:
    """A line edit rebuilt from the lines find_effect just read (never the older ones)."""
    if item.lineset is None:
        return item
    lineset = session.lines_of(item.spec.invoice.id) or item.lineset
    current = session.known(item.spec.invoice.id) or item.spec.invoice
    spec = replace(item.spec, invoice=current)
    element, tax = fee_writes.line_edit(spec, lineset)
    return _Element(spec, element, tax, lineset)


def _post(session: XeroSession, items: list[_Element], *,
          create_only: bool) -> list[Any]:
    """One call; Xero's element per item, in order (an element with HasErrors for a refused
    one), or TransientError for an item the answer does not account for."""
    body = XeroInvoices(invoices=[i.element for i in items])
    key = batch_key([i.request_key for i in items])
    if create_only:
        got = session.caller.call("PUT Invoices", lambda: session.api.create_invoices(
            session.tenant, body, summarize_errors=False, unitdp=4, idempotency_key=key,
            _return_http_data_only=False, _request_timeout=session.timeout), write=True)
    else:
        got = session.caller.call(
            "POST Invoices", lambda: session.api.update_or_create_invoices(
                session.tenant, body, summarize_errors=False, unitdp=4, idempotency_key=key,
                _return_http_data_only=False, _request_timeout=session.timeout), write=True)
    answers: list[Any] = list(got.invoices or [])
    if len(answers) != len(items):
        missing = TransientError(f"Xero answered {len(answers)} elements for {len(items)}")
        return [missing] * len(items)
    return answers


def _settle(session: XeroSession, item: _Element, answer: Any) -> BatchItemResult:
    key = item.spec.key
    if isinstance(answer, ConnectorError):
        return BatchItemResult(key, error=answer)
    if answer.has_errors:
        messages = "; ".join(str(e.message) for e in (answer.validation_errors or [])
                             if e.message) or "refused"
        return BatchItemResult(key, error=PlatformValidationError(
            f"Xero POST Invoices: {messages}", platform_code="ValidationException"))
    try:
        if item.lineset is None:
            return BatchItemResult(key, ref=fee_writes.fee_invoice_ref(item.spec, answer,
                                                                     item.tax))
        if str(answer.invoice_id) != item.spec.invoice.id:
            return BatchItemResult(key, error=TransientError(
                f"Xero answered invoice {answer.invoice_id} for {item.spec.invoice.id}"))
        session.remember(None, LineSet(list(answer.line_items or []),
                                       item.lineset.amount_types),
                         invoice_id=item.spec.invoice.id)
        return BatchItemResult(key, ref=fee_writes.line_edit_ref(
            item.spec, item.spec.invoice.total, item.lineset, answer, item.tax))
    except PlatformValidationError as exc:  # WriteVerificationError: it happened; look
        return BatchItemResult(key, error=exc)
