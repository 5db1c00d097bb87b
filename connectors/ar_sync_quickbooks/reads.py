"""QuickBooks reads of one session: open invoices, changes since a checkpoint, fresh views.

Reads: `select * from Invoice where Balance > '0'` in pages of 1000 for a full fetch. An
incremental fetch asks /cdc (one call: changed invoices, paid and voided ones included, and the
deleted ones, which no query returns); when CDC cannot answer (more than 30 days back, or its
1,000-object cap reached) it falls back to `MetaData.LastUpdatedTime >= <checkpoint>` query
pages, keeping CDC's deletions. Customer e-mails come from BillEmail, else from one
`Customer where Id in (...)` query per 500 customers; the payments of the open invoices read
from their linked Payments in batches (payments.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from quickbooks.objects.customer import Customer

from ar_sync.domain.errors import PlatformValidationError
from ar_sync.domain.models import Invoice
from ar_sync.sync.connector import FetchResult
from ar_sync_quickbooks.mapping import (
    MalformedInvoice,
    checkpoint_from,
    map_invoices,
    needs_customer_email,
    query_time,
    to_invoice,
)
from ar_sync_quickbooks.payments import load_payments
from ar_sync_quickbooks.session import PAGE, QuickBooksSession, quote, select

log = logging.getLogger(__name__)
IDS_PER_QUERY = 500  # customer ids per `Id in (...)` query (keeps the statement short)
# get_invoice / get_invoices read up to this many invoices in one `Id in (...)` query: the ones
# asked for and the open invoices that follow them in the order the sync asks (oldest debt
# first), each served only while younger than FRESH_SECONDS; once re-checks come at a steady
# rate, as many as are asked for in half that window. One call instead of one per fee or per
# batch; the first such read also looks up the company facts in the same /batch request.
READ_AHEAD = 200
FRESH_SECONDS = 10.0
CDC_LOOKBACK = timedelta(days=29)  # /cdc answers at most 30 days back; keep a day's margin
CDC_MAX = 1000  # objects in one /cdc answer
Changes = tuple[list[dict[str, Any]], list[str], str | None, bool]


def pages(session: QuickBooksSession, where: str
          ) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
    """Every page of `select * from Invoice where …`, with QuickBooks' time of each."""
    start = 1
    while True:
        answer = session.query(select("Invoice", where, start=start))
        rows: list[dict[str, Any]] = answer.get("QueryResponse", {}).get("Invoice", [])
        yield rows, answer.get("time")
        if len(rows) < PAGE:
            return
        start += PAGE


def fetch_open_invoices(session: QuickBooksSession, since: datetime | None) -> FetchResult:
    """Open invoices (full), or what changed since `since` (CDC, else query pages)."""
    raws: list[dict[str, Any]] = []
    removed: list[str] = []
    first_time: str | None = None
    changes = cdc(session, since) if since is not None else None
    if changes is not None:
        raws, removed, first_time, complete = changes
        if not complete:  # CDC's 1,000-object cap: page through the query instead
            raws = []
    if changes is None or (not raws and not changes[3]):
        where = ("Balance > '0'" if since is None
                 else f"MetaData.LastUpdatedTime >= {quote(query_time(since))}")
        for rows, stamp in pages(session, where):
            first_time = first_time or stamp
            raws.extend(rows)
    session.remember(raws)
    load_emails(session, {str((r.get("CustomerRef") or {}).get("value", ""))
                          for r in raws if needs_customer_email(r)})
    payments = load_payments(session, raws) if session.read_payments else None
    invoices, warnings = map_invoices(raws, realm=session.realm, emails=session.emails,
                                      payments=payments)
    session.candidates = [inv.id for inv in sorted(
        (i for i in invoices if i.is_open), key=lambda i: (i.due_date, -i.balance))]
    session.position = {iid: n for n, iid in enumerate(session.candidates)}
    session.fresh_at.clear()
    for gone in removed:
        session.raw.pop(gone, None)
    for warning in warnings:
        log.warning("%s", warning)
    return FetchResult(invoices=invoices, warnings=warnings,
                       checkpoint=checkpoint_from(first_time, session.clock()),
                       full=since is None, removed=removed)


def cdc(session: QuickBooksSession, since: datetime) -> Changes | None:
    """(changed invoices, deleted ids, server time, complete?) from one /cdc call; None
    when `since` is beyond CDC's 30-day look-back. One second of overlap: the checkpoint
    is floored to the second and CDC compares with `>`."""
    if session.clock() - since >= CDC_LOOKBACK:
        return None
    stamp = query_time(since - timedelta(seconds=1))
    answer: dict[str, Any] = session.run(
        lambda: session.client.change_data_capture("Invoice", stamp), "cdc")
    rows: list[dict[str, Any]] = []
    for block in (answer.get("CDCResponse") or [{}])[0].get("QueryResponse") or []:
        rows.extend(block.get("Invoice") or [])
    deleted = [str(r.get("Id")) for r in rows if str(r.get("status")) == "Deleted"]
    live = [r for r in rows if str(r.get("status")) != "Deleted"]
    return live, deleted, answer.get("time"), len(rows) < CDC_MAX


def load_emails(session: QuickBooksSession, customer_ids: set[str]) -> None:
    """Bulk e-mail lookup for customers whose invoices carry no BillEmail."""
    wanted = sorted(c for c in customer_ids if c and c not in session.emails)
    for i in range(0, len(wanted), IDS_PER_QUERY):
        chunk = wanted[i: i + IDS_PER_QUERY]
        ids = ", ".join(quote(c) for c in chunk)
        answer = session.query(select("Customer", f"Id in ({ids})"))
        for found in answer.get("QueryResponse", {}).get("Customer", []):
            customer = Customer.from_json(found)
            address = customer.PrimaryEmailAddr.Address if customer.PrimaryEmailAddr else None
            session.emails[str(customer.Id)] = address or None
        for cid in chunk:
            session.emails.setdefault(cid, None)


def read_many(session: QuickBooksSession, invoice_ids: Sequence[str]
              ) -> dict[str, dict[str, Any] | None]:
    """Fresh JSON of each invoice (None: QuickBooks no longer has it): the ones read or
    written within FRESH_SECONDS as they are, the others in one `Id in (...)` query per
    IDS_PER_QUERY ids, topped up with the next likely re-checks up to READ_AHEAD."""
    now = session.monotonic()
    out: dict[str, dict[str, Any] | None] = {}
    stale: list[str] = []
    for iid in dict.fromkeys(invoice_ids):
        seen = session.fresh_at.get(iid)
        if seen is not None and now - seen <= FRESH_SECONDS and iid in session.raw:
            out[iid] = session.raw[iid]
        else:
            stale.append(iid)
    if len(stale) == 1 and stale[0] not in session.position:
        out[stale[0]] = session.read_raw(stale[0])
        return out
    if stale:
        wanted = stale + next_candidates(session, stale, now,
                                         ahead(session, now, len(invoice_ids)))
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), IDS_PER_QUERY):
            ids = ", ".join(quote(c) for c in wanted[i: i + IDS_PER_QUERY])
            answers = session.batch_queries({"invoices": select("Invoice", f"Id in ({ids})")})
            rows: list[dict[str, Any]] = answers.get("invoices", {}).get("Invoice", [])
            session.remember(rows, fresh=True)
            found.update((str(r["Id"]), r) for r in rows)
        for iid in stale:
            out[iid] = found.get(iid)
            if iid not in found:
                session.forget(iid)
    return out


def next_candidates(session: QuickBooksSession, stale: list[str], now: float,
                    size: int) -> list[str]:
    """The open invoices that follow the ones asked for, in the order re-checks come
    (oldest debt first, as the planner orders them), not read within FRESH_SECONDS."""
    start = max((session.position.get(i, -1) for i in stale), default=-1) + 1
    asked = set(stale)
    out: list[str] = []
    for iid in session.candidates[start:]:
        if len(out) + len(stale) >= size:
            break
        seen = session.fresh_at.get(iid)
        if iid not in asked and (seen is None or now - seen > FRESH_SECONDS):
            out.append(iid)
    return out


def ahead(session: QuickBooksSession, now: float, asked: int) -> int:
    """How many invoices to read at once: as many re-checks as were asked for at the rate
    of the last FRESH_SECONDS, over half that window (read ahead, they are asked for while
    still fresh); READ_AHEAD before there is a rate to go by."""
    session.asked.append((now, asked))
    while now - session.asked[0][0] > FRESH_SECONDS:
        session.asked.popleft()
    if len(session.asked) < 2:
        return READ_AHEAD
    rate = sum(n for _, n in session.asked) / max(now - session.asked[0][0], 1.0)
    return max(asked, min(READ_AHEAD, int(rate * FRESH_SECONDS / 2)))


def get_invoice(session: QuickBooksSession, invoice_id: str) -> Invoice | None:
    """A fresh view of one invoice, read together with the next likely re-checks."""
    raw = read_many(session, [invoice_id])[invoice_id]
    return None if raw is None else invoice_of(session, raw)


def get_invoices(session: QuickBooksSession,
                 invoice_ids: Sequence[str]) -> dict[str, Invoice | None]:
    """Fresh reads of many invoices in one `Id in (...)` query."""
    raws = read_many(session, invoice_ids)
    return {iid: None if raw is None else invoice_of(session, raw)
            for iid, raw in raws.items()}


def invoice_of(session: QuickBooksSession, raw: dict[str, Any]) -> Invoice:
    """The invoice of one JSON, with its customer's e-mail looked up when it has none."""
    if needs_customer_email(raw):
        load_emails(session, {str((raw.get("CustomerRef") or {}).get("value", ""))})
    customer = str((raw.get("CustomerRef") or {}).get("value", ""))
    try:
        return to_invoice(raw, realm=session.realm, email=session.emails.get(customer))
    except MalformedInvoice as exc:
        raise PlatformValidationError(f"invoice {raw.get('Id')} is malformed: {exc}") from exc
