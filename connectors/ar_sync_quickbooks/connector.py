"""The QuickBooks Online connector: reads open invoices, writes notes, fees and reminders,
each write carrying its idempotency key as `requestid` and as the `ar-sync:<key>` marker.

Reads: `select * from Invoice where Balance > '0'` in pages of 1000 for a full fetch. An
incremental fetch asks /cdc (one call: changed invoices, paid and voided ones included, and the
deleted ones, which no query returns); when CDC cannot answer (more than 30 days back, or its
1,000-object cap reached) it falls back to `MetaData.LastUpdatedTime >= <checkpoint>` query
pages, keeping CDC's deletions. Customer e-mails come from BillEmail, else from one
`Customer where Id in (...)` query per 500 customers. Writes are in writes.py.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from quickbooks.objects.customer import Customer

from ar_sync.domain.errors import PlatformValidationError
from ar_sync.domain.models import ActionKind, Invoice, Money
from ar_sync.sync.connector import Connection, FetchResult
from ar_sync.sync.retry import write_reconciled
from ar_sync_quickbooks import waivers
from ar_sync_quickbooks.batch import QuickBooksBatch
from ar_sync_quickbooks.client import QuickBooksClient, run
from ar_sync_quickbooks.links import QuickBooksLinks
from ar_sync_quickbooks.mapping import (
    MalformedInvoice,
    checkpoint_from,
    dumps,
    find_line_with_marker,
    has_marker,
    map_invoices,
    needs_customer_email,
    query_time,
    to_invoice,
)
from ar_sync_quickbooks.writes import fact_queries, quote

log = logging.getLogger(__name__)
PAGE = 1000  # QBO's largest page
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


_quote = quote
__all__ = ["PAGE", "QuickBooksConnector", "quote", "select"]


def select(entity: str, where: str = "", *, start: int | None = None,
           limit: int | None = PAGE) -> str:
    """A QBO query statement; every literal in `where` went through _quote."""
    parts = [f"select * from {entity}"]  # noqa: S608 - fixed entity names, quoted literals
    if where:
        parts.append(f"where {where}")
    if start is not None:
        parts.append(f"STARTPOSITION {start}")
    if limit is not None:
        parts.append(f"MAXRESULTS {limit}")
    return " ".join(parts)


class QuickBooksConnector(QuickBooksLinks, QuickBooksBatch):
    """A live session with one QuickBooks company (realm)."""

    platform = "quickbooks"

    def __init__(self, connection: Connection, client: QuickBooksClient, *,
                 clock: Callable[[], datetime], sleep: Callable[[float], None] = time.sleep,
                 max_wait: float = 30.0) -> None:
        self.connection = connection
        self.client = client
        self.clock = clock
        self.sleep = sleep
        self.max_wait = max_wait
        self.realm = connection.external_id
        self._raw: dict[str, dict[str, Any]] = {}  # last JSON seen per invoice id
        self._emails: dict[str, str | None] = {}  # customer id -> e-mail (None: has none)
        self._fee_item: tuple[str, str] | None = None
        self._facts_loaded = False  # Late fee item, TaxCode, TaxRate, CompanyInfo (writes.py)
        self._tax_codes: list[dict[str, Any]] = []
        self._tax_rates: dict[str, Decimal] = {}
        self._country = "US"
        self._candidates: list[str] = []  # open invoice ids from the last fetch, likely order
        self._position: dict[str, int] = {}  # id -> its place in _candidates
        self._fresh_at: dict[str, float] = {}  # when _raw[id] was last read or written
        self.monotonic: Callable[[], float] = time.monotonic
        self._asked: deque[tuple[float, int]] = deque()  # (when, ids) re-checks asked for
        self.waiver_memos: dict[str, dict[str, Any]] = {}  # key -> found memo not yet applied

    # ------------------------------------------------------------------ plumbing

    def _run(self, fn: Callable[[], Any], what: str, *, write: bool = False) -> Any:
        return run(fn, what=f"quickbooks {what}", sleep=self.sleep, max_wait=self.max_wait,
                   write=write)

    def _reconciled(self, write: Callable[[], str], invoice: Invoice, kind: ActionKind,
                    key: str) -> str:
        """A write tried again after a lost answer only if find_effect does not see it."""
        return write_reconciled(write, lambda: self.find_effect(invoice, kind, key),
                                what=f"quickbooks {kind} {key}", sleep=self.sleep,
                                max_wait=self.max_wait)

    def _query(self, statement: str) -> dict[str, Any]:
        result: dict[str, Any] = self._run(lambda: self.client.query(statement), "query")
        return result

    def _url(self, tail: str) -> str:
        return f"{self.client.api_url}/company/{self.realm}/{tail}"

    # ------------------------------------------------------------------ reads

    def _pages(self, where: str) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        start = 1
        while True:
            answer = self._query(select("Invoice", where, start=start))
            rows: list[dict[str, Any]] = answer.get("QueryResponse", {}).get("Invoice", [])
            yield rows, answer.get("time")
            if len(rows) < PAGE:
                return
            start += PAGE

    def fetch_open_invoices(self, since: datetime | None = None) -> FetchResult:
        raws: list[dict[str, Any]] = []
        removed: list[str] = []
        first_time: str | None = None
        changes = self._cdc(since) if since is not None else None
        if changes is not None:
            raws, removed, first_time, complete = changes
            if not complete:  # CDC's 1,000-object cap: page through the query instead
                raws = []
        if changes is None or (not raws and not changes[3]):
            where = ("Balance > '0'" if since is None
                     else f"MetaData.LastUpdatedTime >= {_quote(query_time(since))}")
            for rows, stamp in self._pages(where):
                first_time = first_time or stamp
                raws.extend(rows)
        self._remember(raws)
        self._load_emails({str((r.get("CustomerRef") or {}).get("value", ""))
                           for r in raws if needs_customer_email(r)})
        invoices, warnings = map_invoices(raws, realm=self.realm, emails=self._emails)
        self._candidates = [inv.id for inv in sorted(
            (i for i in invoices if i.is_open), key=lambda i: (i.due_date, -i.balance))]
        self._position = {iid: n for n, iid in enumerate(self._candidates)}
        self._fresh_at.clear()
        for gone in removed:
            self._raw.pop(gone, None)
        for warning in warnings:
            log.warning("%s", warning)
        return FetchResult(invoices=invoices, warnings=warnings,
                           checkpoint=checkpoint_from(first_time, self.clock()),
                           full=since is None, removed=removed)

    def _cdc(self, since: datetime) -> tuple[list[dict[str, Any]], list[str], str | None,
                                              bool] | None:
        """(changed invoices, deleted ids, server time, complete?) from one /cdc call; None
        when `since` is beyond CDC's 30-day look-back. One second of overlap: the checkpoint
        is floored to the second and CDC compares with `>`."""
        if self.clock() - since >= CDC_LOOKBACK:
            return None
        stamp = query_time(since - timedelta(seconds=1))
        answer: dict[str, Any] = self._run(
            lambda: self.client.change_data_capture("Invoice", stamp), "cdc")
        rows: list[dict[str, Any]] = []
        for block in (answer.get("CDCResponse") or [{}])[0].get("QueryResponse") or []:
            rows.extend(block.get("Invoice") or [])
        deleted = [str(r.get("Id")) for r in rows if str(r.get("status")) == "Deleted"]
        live = [r for r in rows if str(r.get("status")) != "Deleted"]
        return live, deleted, answer.get("time"), len(rows) < CDC_MAX

    def _remember(self, raws: list[dict[str, Any]], *, fresh: bool = False) -> None:
        """Keep the latest JSON per invoice; `fresh` marks it as a just-read (or just-written)
        state that get_invoice may serve for FRESH_SECONDS instead of reading again."""
        now = self.monotonic()
        for raw in raws:
            self._raw[str(raw.get("Id"))] = raw
            if fresh:
                self._fresh_at[str(raw.get("Id"))] = now

    def _load_emails(self, customer_ids: set[str]) -> None:
        """Bulk e-mail lookup for customers whose invoices carry no BillEmail."""
        wanted = sorted(c for c in customer_ids if c and c not in self._emails)
        for i in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[i: i + IDS_PER_QUERY]
            ids = ", ".join(_quote(c) for c in chunk)
            answer = self._query(select("Customer", f"Id in ({ids})"))
            for found in answer.get("QueryResponse", {}).get("Customer", []):
                customer = Customer.from_json(found)
                address = customer.PrimaryEmailAddr.Address if customer.PrimaryEmailAddr else None
                self._emails[str(customer.Id)] = address or None
            for cid in chunk:
                self._emails.setdefault(cid, None)

    def _read_raw(self, invoice_id: str) -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = self._run(
                lambda: self.client.get_single_object("Invoice", pk=invoice_id), "read invoice")
        except PlatformValidationError as exc:
            if exc.platform_code == "610":
                return None
            raise
        raw: dict[str, Any] = answer["Invoice"]
        self._remember([raw], fresh=True)
        return raw

    def _read_ahead(self, invoice_id: str) -> dict[str, Any] | None:
        """Fresh JSON of `invoice_id`, read together with the next likely re-checks."""
        return self._read_many([invoice_id])[invoice_id]

    def _read_many(self, invoice_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """Fresh JSON of each invoice (None: QuickBooks no longer has it): the ones read or
        written within FRESH_SECONDS as they are, the others in one `Id in (...)` query per
        IDS_PER_QUERY ids, topped up with the next likely re-checks up to READ_AHEAD."""
        now = self.monotonic()
        out: dict[str, dict[str, Any] | None] = {}
        stale: list[str] = []
        for iid in dict.fromkeys(invoice_ids):
            seen = self._fresh_at.get(iid)
            if seen is not None and now - seen <= FRESH_SECONDS and iid in self._raw:
                out[iid] = self._raw[iid]
            else:
                stale.append(iid)
        if len(stale) == 1 and stale[0] not in self._position:
            out[stale[0]] = self._read_raw(stale[0])
            return out
        if stale:
            wanted = stale + self._next_candidates(stale, now, self._ahead(now, len(invoice_ids)))
            found: dict[str, dict[str, Any]] = {}
            for i in range(0, len(wanted), IDS_PER_QUERY):
                ids = ", ".join(_quote(c) for c in wanted[i: i + IDS_PER_QUERY])
                answers = self._batch_queries({"invoices": select("Invoice", f"Id in ({ids})")})
                rows: list[dict[str, Any]] = answers.get("invoices", {}).get("Invoice", [])
                self._remember(rows, fresh=True)
                found.update((str(r["Id"]), r) for r in rows)
            for iid in stale:
                out[iid] = found.get(iid)
                if iid not in found:
                    self.forget(iid)
        return out

    def _next_candidates(self, stale: list[str], now: float, size: int) -> list[str]:
        """The open invoices that follow the ones asked for, in the order re-checks come
        (oldest debt first, as the planner orders them), not read within FRESH_SECONDS."""
        start = max((self._position.get(i, -1) for i in stale), default=-1) + 1
        asked = set(stale)
        out: list[str] = []
        for iid in self._candidates[start:]:
            if len(out) + len(stale) >= size:
                break
            seen = self._fresh_at.get(iid)
            if iid not in asked and (seen is None or now - seen > FRESH_SECONDS):
                out.append(iid)
        return out

    def _ahead(self, now: float, asked: int) -> int:
        """How many invoices to read at once: as many re-checks as were asked for at the rate
        of the last FRESH_SECONDS, over half that window (read ahead, they are asked for while
        still fresh); READ_AHEAD before there is a rate to go by."""
        self._asked.append((now, asked))
        while now - self._asked[0][0] > FRESH_SECONDS:
            self._asked.popleft()
        if len(self._asked) < 2:
            return READ_AHEAD
        rate = sum(n for _, n in self._asked) / max(now - self._asked[0][0], 1.0)
        return max(asked, min(READ_AHEAD, int(rate * FRESH_SECONDS / 2)))

    def _batch_queries(self, queries: dict[str, str]) -> dict[str, dict[str, Any]]:
        """bId -> QueryResponse for several queries in one /batch request (one API call),
        with the company facts a fee needs added while they are still unread."""
        wanted = dict(queries)
        if not self._facts_loaded:
            wanted.update(fact_queries())
        if len(wanted) == 1:
            (bid, text), = wanted.items()
            return {bid: self._query(text).get("QueryResponse", {})}
        body = dumps({"BatchItemRequest": [{"bId": bid, "Query": text}
                                           for bid, text in wanted.items()]})
        answer: dict[str, Any] = self._run(lambda: self.client.batch_operation(body),
                                           "batch read")
        out: dict[str, dict[str, Any]] = {}
        for item in answer.get("BatchItemResponse", []):
            if "Fault" in item:
                error = (item["Fault"].get("Error") or [{}])[0]
                raise PlatformValidationError(
                    f"{error.get('Message', 'batch fault')}: {error.get('Detail', '')}",
                    platform_code=str(error.get("code") or "") or None)
            out[str(item.get("bId"))] = item.get("QueryResponse", {})
        if not self._facts_loaded:
            self._absorb_facts(out)
        return out

    def get_invoice(self, invoice_id: str) -> Invoice | None:
        raw = self._read_ahead(invoice_id)
        return None if raw is None else self._to_invoice(raw)

    def get_invoices(self, invoice_ids: Sequence[str]) -> dict[str, Invoice | None]:
        """BatchWriter: fresh reads of many invoices in one `Id in (...)` query."""
        raws = self._read_many(invoice_ids)
        return {iid: None if raw is None else self._to_invoice(raw)
                for iid, raw in raws.items()}

    def _to_invoice(self, raw: dict[str, Any]) -> Invoice:
        if needs_customer_email(raw):
            self._load_emails({str((raw.get("CustomerRef") or {}).get("value", ""))})
        customer = str((raw.get("CustomerRef") or {}).get("value", ""))
        try:
            return to_invoice(raw, realm=self.realm, email=self._emails.get(customer))
        except MalformedInvoice as exc:
            raise PlatformValidationError(f"invoice {raw.get('Id')} is malformed: {exc}") from exc

    def waive_fee(self, invoice: Invoice, fee_key: str, amount: Money, label: str, *,
                  key: str) -> str:
        """A CreditMemo applied to the invoice (see waivers.py for why not a line removal)."""
        return self._reconciled(lambda: waivers.waive_fee(self, invoice, amount, label, key),
                                invoice, ActionKind.WAIVE_FEE, key)

    def forget(self, invoice_id: str) -> None:
        """Drop what this session knows of an invoice another write just changed."""
        self._raw.pop(invoice_id, None)
        self._fresh_at.pop(invoice_id, None)

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        """The invoice as QuickBooks prints it (GET invoice/{id}/pdf with Accept
        application/pdf, as python-quickbooks' `download_pdf` sends it; that method needs the
        SDK's own session, so the request goes through our client), for an e-mail
        attachment; None when QuickBooks has none to give."""
        response = self._run(lambda: self.client.process_request(
            "GET", self._url(f"invoice/{invoice.id}/pdf"),
            headers={"Accept": "application/pdf, application/json"}), "invoice pdf")
        if response.status_code != 200 or not response.content.startswith(b"%PDF"):
            return None
        return bytes(response.content)

    # ------------------------------------------------------------------ reconciliation

    def find_effect(self, invoice: Invoice, kind: ActionKind, key: str) -> str | None:
        if kind in (ActionKind.NOTE, ActionKind.ESCALATE):
            answer = self._query(select(
                "Attachable", "AttachableRef.EntityRef.Type = 'Invoice' and "
                f"AttachableRef.EntityRef.value = {_quote(invoice.id)}"))
            for row in answer.get("QueryResponse", {}).get("Attachable", []):
                if has_marker(row.get("Note"), key):
                    return f"Attachable:{row['Id']}"
            return None
        if kind == ActionKind.LATE_FEE:
            raw = self._read_raw(invoice.id)  # fresh: the line may be newer than our copy
            if raw is not None and (ref := find_line_with_marker(raw, key)) is not None:
                return ref
            start = 1
            while True:  # a separate fee invoice for the same customer
                answer = self._query(select(
                    "Invoice", f"CustomerRef = {_quote(invoice.customer_id)} and "
                    f"TxnDate >= {_quote(invoice.issue_date.isoformat())}", start=start))
                rows = answer.get("QueryResponse", {}).get("Invoice", [])
                for row in rows:
                    if has_marker(row.get("PrivateNote"), key):
                        return f"Invoice:{row['Id']}"
                if len(rows) < PAGE:
                    return None
                start += PAGE
        if kind == ActionKind.WAIVE_FEE:
            return waivers.find_waiver(self, invoice, key)
        # e-mail sends leave nothing searchable: the requestid replay protects a retried send
        return None
