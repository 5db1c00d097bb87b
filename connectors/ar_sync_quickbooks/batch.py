"""Batched writes through QuickBooks `/batch` (the core's optional BatchWriter capability).

One `POST /v3/company/{realm}/batch` carries up to MAX_BATCH operations: fee-line sparse
updates, fee invoices and Attachable notes, built by exactly the functions the single path
uses (writes.py) and checked the same way afterwards. Every written object carries its key's
marker for `find_effect`.

Ids: with a batch `requestid`, QuickBooks joins it with each operation's `bId` into one id of
at most 50 characters, and refuses every item past it with Fault 6000 (Intuit blog
2015-04-06: a batch `requestid` of at most 36 characters, at most 10 per bId;
QuickBooks-V3-Java-SDK #180). So each operation's bId is its place in the request ("0" to
"9"), mapped back to its write here, and the request's `requestid` (36 characters) is derived
from the operations' idempotency keys (the action's key, `<key>-i` for a fee invoice written
instead of a line edit) and the SyncTokens they were built on: the same writes on the same
invoice versions are the same request, with the same bIds, and replay the first answer; a
retry after someone changed an invoice is a different request.

Each operation is answered on its own: a Fault inside the BatchItemResponse becomes that
item's typed error (5010 stale SyncToken: StaleObjectError, retried on a later run; 610:
deleted, skipped; 6000 and other validation faults: PlatformValidationError), and a fee line
QuickBooks refuses for a business rule falls back to a fee invoice in a second batch, as the
single path does. When the call as a whole fails after it may have reached QuickBooks (5xx,
timeout, a lost connection), each write is looked for by its key before anything is sent
again (write_reconciled's rule, per item), under the same `requestid` and the same bIds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.batchrequest import Fault

from ar_sync.domain.errors import (
    ConnectorError,
    NotApplicableError,
    PlatformTimeoutError,
    PlatformValidationError,
    RateLimitedError,
    ReauthorizationRequiredError,
    TransientError,
)
from ar_sync.domain.models import (
    Action,
    AddNote,
    ApplyLateFee,
    Escalate,
    FeeMode,
    Invoice,
)
from ar_sync.sync.connector import BatchItemResult, BatchWrite
from ar_sync_quickbooks import effects
from ar_sync_quickbooks.client import map_sdk_error
from ar_sync_quickbooks.fees import FeeTax, discounted
from ar_sync_quickbooks.mapping import dumps, find_line_with_marker
from ar_sync_quickbooks.session import QuickBooksSession
from ar_sync_quickbooks.writes import (
    FALLBACK_SUFFIX,
    NOT_FOUND,
    fee_inputs,
    fee_invoice_body,
    fee_invoice_written,
    fee_line_update,
    fee_line_written,
    note_body,
    note_written,
)

log = logging.getLogger(__name__)

# Operations per request. 30 today: Intuit's "API call limits and throttles" page
# ("recommended maximum number of payloads in a single batch request is 30"), its 2023 blog
# "Batch without a Scratch", QuickBooks-V3-DotNET-SDK #358 (30 accepted in the API Explorer,
# 31 refused) and PR #363 ("Batch item limit updated to 30"), python-quickbooks
# (max_request_items=30). 10 in older pages: the "Batch operation" page and the 2017 blog
# "What are Batch Operations" (and .NET SDK #46: "later reduced to 10"). Ten is the side no
# reading refuses.
MAX_BATCH = 10
BATCH_REQUEST_ID_MAX = 36  # characters of a /batch `requestid` (Intuit blog 2015-04-06)
BID_MAX = 10  # characters of a bId when the request carries a requestid (same post)
JOINED_ID_MAX = 50  # requestid + bId, as QuickBooks checks it (QuickBooks-V3-Java-SDK #180)
RECONCILE_ATTEMPTS = 3


@dataclass
class _Op:
    """One /batch operation for one write, and what to do with its answer."""

    write: BatchWrite
    ident: str  # the idempotency key the single path would send as `requestid`
    entity: str
    operation: str
    body: dict[str, Any]
    done: Callable[[dict[str, Any]], str]
    fallback: Callable[[], _Op] | None = field(default=None)
    bid: str = ""  # its place in its request (numbered), never longer than BID_MAX

    @property
    def key(self) -> str:
        return self.write.action.key


def numbered(ops: list[_Op], writes: Sequence[BatchWrite]) -> list[_Op]:
    """Give each operation the place of its write among `writes` (those the requestid is
    derived from) as bId: short enough for any requestid, and the same whenever the same
    request is sent again, also when fewer of its writes need a call by then (a recorded
    answer replayed to that request maps back to the same writes)."""
    place = {id(w): n for n, w in enumerate(writes)}
    for op in ops:
        op.bid = str(place[id(op.write)])
    return ops


def batch_request_id(items: Sequence[tuple[str, str | None]]) -> str:
    """36 characters from (idempotency key, invoice SyncToken) of each write, in order: the
    same writes on the same invoice versions are the same request; per company, as QuickBooks
    scopes it."""
    text = "\n".join(f"{key}@{version or ''}" for key, version in items)
    return ("batch-" + hashlib.sha256(text.encode()).hexdigest())[:BATCH_REQUEST_ID_MAX]


def fits(request_id: str, bids: Sequence[str]) -> bool:
    """Whether QuickBooks takes these ids: each bId within BID_MAX, the requestid within
    BATCH_REQUEST_ID_MAX, and every requestid + bId within JOINED_ID_MAX."""
    return len(request_id) <= BATCH_REQUEST_ID_MAX and all(
        len(b) <= BID_MAX and len(request_id) + len(b) <= JOINED_ID_MAX for b in bids)


def fault_error(fault: dict[str, Any]) -> ConnectorError:
    """A BatchItemResponse Fault (python-quickbooks' Fault object) as an ar_sync error."""
    parsed = Fault.from_json(fault)
    first = parsed.Error[0] if parsed.Error else None
    if first is None:
        return TransientError("QuickBooks answered a batch operation with an empty Fault")
    return map_sdk_error(QuickbooksException(first.Message, first.code, first.Detail))


def can_batch(action: Action) -> bool:
    """Notes, escalations (Attachable notes) and late fees; not e-mails (`invoice/send`
    has no batch form) nor waivers (a credit memo and its payment: two dependent writes)."""
    return isinstance(action, AddNote | Escalate | ApplyLateFee)


def write_batch(session: QuickBooksSession, writes: Sequence[BatchWrite], *,
                max_batch: int = MAX_BATCH) -> list[BatchItemResult]:
    """The writes in /batch calls of at most `max_batch` operations, each answered alone."""
    results: dict[str, BatchItemResult] = {}
    for start in range(0, len(writes), max_batch):
        chunk = writes[start: start + max_batch]
        ops: list[_Op] = []
        for write in chunk:
            key = write.action.key
            try:
                op = _operation(session, write)
            except (RateLimitedError, ReauthorizationRequiredError):
                raise
            except ConnectorError as exc:
                results[key] = BatchItemResult(key, error=exc)
                continue
            if isinstance(op, str):  # already on the invoice (a fee line with the key)
                results[key] = BatchItemResult(key, ref=op)
            else:
                ops.append(op)
        if ops:  # the id names the writes asked for, whichever needed no call
            request_id = batch_request_id([(w.action.key, w.invoice.version)
                                           for w in chunk])
            results.update(_send_batch(session, numbered(ops, chunk), request_id))
    return [results[w.action.key] for w in writes]


# ---------------------------------------------------------------------- operations

def _operation(session: QuickBooksSession, write: BatchWrite) -> _Op | str:
    action, invoice = write.action, write.invoice
    if isinstance(action, AddNote | Escalate):
        body = note_body(invoice, action.text, action.key)
        return _Op(write, action.key, "Attachable", "create", _loads(body),
                   lambda created: note_written(created))
    if not isinstance(action, ApplyLateFee):
        raise PlatformValidationError(f"{action.kind} has no QuickBooks batch form")
    amount, item, charge = fee_inputs(session, invoice, action.amount, action.tax,
                                      action.account)

    def fee_invoice(ident: str) -> _Op:
        body = fee_invoice_body(session, invoice, amount, action.label, action.key, item,
                                charge)
        return _Op(write, ident, "Invoice", "create", body, lambda created:
                   fee_invoice_written(created, amount, charge, invoice.currency))

    if action.mode == FeeMode.INVOICE:
        return fee_invoice(action.key)
    raw = session.raw.get(invoice.id)
    if raw is None or str(raw.get("SyncToken")) != str(invoice.version):
        raw = session.read_raw(invoice.id)
    if raw is None:
        raise NotApplicableError(f"invoice {invoice.number} no longer exists")
    present = find_line_with_marker(raw, action.key)
    if present is not None:
        return present
    if discounted(raw):  # as the single path: the discount would shift other amounts
        return fee_invoice(action.key + FALLBACK_SUFFIX)
    return _Op(write, action.key, "Invoice", "update",
               fee_line_update(raw, amount, action.label, action.key, item, charge),
               _fee_line_check(session, invoice, raw, amount, action.key, charge),
               fallback=lambda: fee_invoice(action.key + FALLBACK_SUFFIX))


def _fee_line_check(session: QuickBooksSession, invoice: Invoice, before: dict[str, Any],
                    amount: Decimal, key: str,
                    charge: FeeTax) -> Callable[[dict[str, Any]], str]:
    return lambda updated: fee_line_written(session, invoice, before, updated, amount, key,
                                            charge)


# ---------------------------------------------------------------------- the call

def _send_batch(session: QuickBooksSession, ops: list[_Op],
                request_id: str) -> dict[str, BatchItemResult]:
    """One /batch call for `ops` (≤ max_batch); after an ambiguous failure, each write is
    looked for by its key and only the missing ones go again, under the same id."""
    results: dict[str, BatchItemResult] = {}
    pending = ops
    for attempt in range(1, RECONCILE_ATTEMPTS + 1):
        try:
            answer = _post(session, pending, request_id)
        except (RateLimitedError, PlatformTimeoutError):
            raise  # refused before anything was applied / a silent platform: not asked again
        except TransientError as exc:
            missing: list[_Op] = []
            for op in pending:
                found = effects.find_effect(session, op.write.invoice, op.write.action.kind,
                                            op.key)
                if found is not None:
                    results[op.key] = BatchItemResult(op.key, ref=found)
                elif attempt == RECONCILE_ATTEMPTS:
                    results[op.key] = BatchItemResult(op.key, error=exc)
                else:
                    missing.append(op)
            if not missing:
                return results
            log.info("quickbooks batch: answer lost, %d of %d writes not there; sending "
                     "them again (attempt %d)", len(missing), len(pending), attempt)
            session.sleep(random.uniform(0, min(session.max_wait, 0.25 * 2 ** attempt)))
            pending = missing
            continue
        results.update(_answers(session, pending, answer))
        return results
    return results  # pragma: no cover - the loop returns


def _post(session: QuickBooksSession, ops: list[_Op], request_id: str) -> dict[str, Any]:
    if not fits(request_id, [op.bid for op in ops]):  # a bug here would fail every item
        raise PlatformValidationError(f"batch ids too long for QuickBooks: {request_id!r}")
    body = dumps({"BatchItemRequest": [{"bId": op.bid, "operation": op.operation,
                                        op.entity: op.body} for op in ops]})
    answer: dict[str, Any] = session.run(
        lambda: session.client.post(session.url("batch"), body, request_id=request_id),
        "batch write", write=True)
    return answer


def _answers(session: QuickBooksSession, ops: list[_Op],
             answer: dict[str, Any]) -> dict[str, BatchItemResult]:
    by_bid = {str(item.get("bId")): item for item in answer.get("BatchItemResponse") or []}
    results: dict[str, BatchItemResult] = {}
    fallbacks: list[_Op] = []
    for op in ops:
        item = by_bid.get(op.bid)
        if item is None or ("Fault" not in item and op.entity not in item):
            # unanswered (or an answer of another shape): it may or may not have happened
            results[op.key] = BatchItemResult(op.key, error=TransientError(
                f"QuickBooks gave no answer for batch operation {op.bid}"))
            continue
        if "Fault" in item:
            error = fault_error(item["Fault"])
            session.forget(op.write.invoice.id)  # whatever we hold of it may be stale
            if error.platform_code == NOT_FOUND:
                error = NotApplicableError(
                    f"invoice {op.write.invoice.number} was deleted",
                    platform_code=NOT_FOUND)
            elif (op.fallback is not None and isinstance(error, PlatformValidationError)):
                # the line edit is refused (a business rule): the fee goes on its own
                # invoice under `<key>-i`, never the refused request's id
                fallbacks.append(op.fallback())
                continue
            results[op.key] = BatchItemResult(op.key, error=error)
            continue
        try:
            results[op.key] = BatchItemResult(op.key, ref=op.done(item[op.entity]))
        except ConnectorError as exc:  # WriteVerificationError: it happened, look at it
            results[op.key] = BatchItemResult(op.key, error=exc)
    if fallbacks:  # a request of its own, from the `<key>-i` ids: never a refused request's
        request_id = batch_request_id([(op.ident, op.write.invoice.version)
                                       for op in fallbacks])
        own = [op.write for op in fallbacks]
        results.update(_send_batch(session, numbered(fallbacks, own), request_id))
    return results


def _loads(text: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(text)
    return body
