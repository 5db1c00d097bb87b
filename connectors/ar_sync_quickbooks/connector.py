"""The QuickBooks Online connector: reads open invoices, writes notes, fees and reminders,
each write carrying its idempotency key as `requestid` and as the `ar-sync:<key>` marker.

Reads: `select * from Invoice where Balance > '0'` in pages of 1000 for a full fetch, and
`MetaData.LastUpdatedTime >= <checkpoint>` for an incremental one (paid and voided invoices
come back too, so the caller learns they closed). The query, not CDC: it pages, it has no
30-day look-back limit, and full and incremental runs share one code path. Customer e-mails
come from BillEmail, else from one `Customer where Id in (...)` query per 500 customers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from quickbooks.objects.attachable import Attachable
from quickbooks.objects.customer import Customer
from quickbooks.objects.invoice import Invoice as QBInvoice
from quickbooks.objects.item import Item

from ar_sync.connector import Connection, FetchResult, key_marker
from ar_sync.errors import PlatformValidationError, StaleObjectError
from ar_sync.models import ActionKind, FeeMode, Invoice, Money
from ar_sync.money import round_money, to_decimal
from ar_sync.retry import write_reconciled
from ar_sync_quickbooks import waivers
from ar_sync_quickbooks.client import QuickBooksClient, run
from ar_sync_quickbooks.mapping import (
    LATE_FEE_ITEM,
    MalformedInvoice,
    checkpoint_from,
    dumps,
    fee_description,
    fee_invoice_note,
    fee_line,
    find_line_with_marker,
    has_marker,
    item_lines,
    map_invoices,
    needs_customer_email,
    note_text,
    query_time,
    to_invoice,
)

log = logging.getLogger(__name__)
PAGE = 1000  # QBO's largest page
IDS_PER_QUERY = 500  # customer ids per `Id in (...)` query (keeps the statement short)
# get_invoice reads up to this many invoices in one `Id in (...)` query: the ones the sync loop
# will most likely re-check next (fees come first, oldest debt first), each served only while
# younger than FRESH_SECONDS. One call instead of one per fee before a burst of fees; the first
# such read also looks up the Late fee item in the same /batch request.
READ_AHEAD = 200
FRESH_SECONDS = 10.0


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


quote = _quote


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


DUPLICATE_NAME = "6240"  # Fault code of "Duplicate Name Exists Error"


class QuickBooksConnector:
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
        self._fee_item_looked_up = False
        self._candidates: list[str] = []  # open invoice ids from the last fetch, likely order
        self._fresh_at: dict[str, float] = {}  # when _raw[id] was last read or written
        self.monotonic: Callable[[], float] = time.monotonic
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
        where = ("Balance > '0'" if since is None
                 else f"MetaData.LastUpdatedTime >= {_quote(query_time(since))}")
        raws: list[dict[str, Any]] = []
        first_time: str | None = None
        for rows, stamp in self._pages(where):
            first_time = first_time or stamp
            raws.extend(rows)
        self._remember(raws)
        self._load_emails({str((r.get("CustomerRef") or {}).get("value", ""))
                           for r in raws if needs_customer_email(r)})
        invoices, warnings = map_invoices(raws, realm=self.realm, emails=self._emails)
        self._candidates = [inv.id for inv in sorted(
            (i for i in invoices if i.is_open), key=lambda i: (i.due_date, -i.balance))]
        self._fresh_at.clear()
        for warning in warnings:
            log.warning("%s", warning)
        return FetchResult(invoices=invoices, warnings=warnings,
                           checkpoint=checkpoint_from(first_time, self.clock()),
                           full=since is None)

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
        seen = self._fresh_at.get(invoice_id)
        if seen is not None and self.monotonic() - seen <= FRESH_SECONDS:
            return self._raw.get(invoice_id)
        if invoice_id not in self._candidates:
            return self._read_raw(invoice_id)
        others = [c for c in self._candidates if c != invoice_id][: READ_AHEAD - 1]
        wanted = [invoice_id, *others]
        self._candidates = [c for c in self._candidates if c not in wanted]
        ids = ", ".join(_quote(i) for i in wanted)
        found = self._batch_queries(select("Invoice", f"Id in ({ids})"))["Invoice"]
        self._remember(found, fresh=True)
        return next((r for r in found if str(r["Id"]) == invoice_id), None)

    def _batch_queries(self, invoices: str) -> dict[str, list[dict[str, Any]]]:
        """The invoice query, plus the Late fee item lookup while it is still unknown: two
        queries in one /batch request (one API call)."""
        if self._fee_item is not None or self._fee_item_looked_up:
            return {"Invoice": self._query(invoices).get("QueryResponse", {}).get("Invoice", [])}
        body = dumps({"BatchItemRequest": [
            {"bId": "invoices", "Query": invoices},
            {"bId": "item", "Query": select("Item", f"Name = {_quote(LATE_FEE_ITEM)}")}]})
        answer: dict[str, Any] = self._run(lambda: self.client.batch_operation(body),
                                           "batch read")
        out: dict[str, list[dict[str, Any]]] = {"Invoice": [], "Item": []}
        for item in answer.get("BatchItemResponse", []):
            if "Fault" in item:
                error = (item["Fault"].get("Error") or [{}])[0]
                raise PlatformValidationError(
                    f"{error.get('Message', 'batch fault')}: {error.get('Detail', '')}",
                    platform_code=str(error.get("code") or "") or None)
            response = item.get("QueryResponse", {})
            for entity in out:
                out[entity].extend(response.get(entity, []))
        self._fee_item_looked_up = True
        if out["Item"]:
            found = Item.from_json(out["Item"][0])
            self._fee_item = (str(found.Id), str(found.Name))
        return out

    def get_invoice(self, invoice_id: str) -> Invoice | None:
        raw = self._read_ahead(invoice_id)
        if raw is None:
            return None
        if needs_customer_email(raw):
            self._load_emails({str((raw.get("CustomerRef") or {}).get("value", ""))})
        customer = str((raw.get("CustomerRef") or {}).get("value", ""))
        try:
            return to_invoice(raw, realm=self.realm, email=self._emails.get(customer))
        except MalformedInvoice as exc:
            raise PlatformValidationError(f"invoice {invoice_id} is malformed: {exc}") from exc

    # ------------------------------------------------------------------ writes

    def add_note(self, invoice: Invoice, text: str, *, key: str) -> str:
        return self._reconciled(lambda: self._add_note(invoice, text, key), invoice,
                                ActionKind.NOTE, key)

    def _add_note(self, invoice: Invoice, text: str, key: str) -> str:
        """An Attachable note linked to the invoice (create-only: no SyncToken race)."""
        note = Attachable()
        note.Note = note_text(text, key)
        note.AttachableRef = [{"EntityRef": {"type": "Invoice", "value": invoice.id},
                               "IncludeOnSend": False}]
        body = note.to_json()
        answer: dict[str, Any] = self._run(
            lambda: self.client.create_object("Attachable", body, request_id=key), "add note",
            write=True)
        return f"Attachable:{Attachable.from_json(answer['Attachable']).Id}"

    def send_reminder(self, invoice: Invoice, *, key: str, to: str | None = None) -> str:
        return self._reconciled(lambda: self._send(invoice, key, to), invoice,
                                ActionKind.REMINDER_EMAIL, key)

    def _send(self, invoice: Invoice, key: str, to: str | None) -> str:
        if not to and not invoice.customer_email:
            # QBO would answer "Email Address Invalid"; no need to spend a call to learn it
            raise PlatformValidationError(
                f"invoice {invoice.number}: no BillEmail and no customer e-mail to send to")
        params = {"sendTo": to} if to else {}
        answer: dict[str, Any] = self._run(
            lambda: self.client.post(self._url(f"invoice/{invoice.id}/send"), None,
                                     content_type="application/octet-stream", params=dict(params),
                                     request_id=key), "send invoice", write=True)
        self._remember([answer["Invoice"]], fresh=True)
        sent = QBInvoice.from_json(answer["Invoice"])
        delivered = getattr(sent.DeliveryInfo, "DeliveryTime", "") if sent.DeliveryInfo else ""
        return f"InvoiceSend:{sent.Id}@{delivered or sent.EmailStatus}"

    def add_late_fee(self, invoice: Invoice, fee: Money, label: str, *, key: str,
                     mode: FeeMode, tax: str | None = None) -> str:
        if fee.currency != invoice.currency:
            raise PlatformValidationError(
                f"fee in {fee.currency} on a {invoice.currency} invoice {invoice.number}")
        amount = round_money(fee.amount, fee.currency)
        if amount <= 0:
            raise PlatformValidationError(f"late fee must be positive, got {amount}")
        item_id, item_name = self.fee_item()
        if mode == FeeMode.INVOICE:
            return self._reconciled(
                lambda: self._fee_invoice(invoice, amount, label, key, item_id, item_name),
                invoice, ActionKind.LATE_FEE, key)
        return self._reconciled(
            lambda: self._fee_line(invoice, amount, label, key, item_id, item_name),
            invoice, ActionKind.LATE_FEE, key)

    def _fee_line(self, invoice: Invoice, amount: Decimal, label: str, key: str,
                  item_id: str, item_name: str) -> str:
        """Sparse update adding one line (QBO replaces Line as a whole: send all lines)."""
        raw = self._raw.get(invoice.id)
        if raw is None or str(raw.get("SyncToken")) != str(invoice.version):
            raw = self._read_raw(invoice.id)
        for attempt, request_id in enumerate((key, f"{key}-r")):
            if raw is None:
                raise PlatformValidationError(f"invoice {invoice.id} no longer exists")
            present = find_line_with_marker(raw, key)
            if present is not None:
                return present
            body = {"Id": raw["Id"], "SyncToken": raw["SyncToken"], "sparse": True,
                    "Line": [*item_lines(raw),
                             fee_line(amount, fee_description(label, key), item_id, item_name)]}
            text = dumps(body)
            try:
                answer: dict[str, Any] = self._run(
                    partial(self.client.update_object, "Invoice", text, request_id=request_id),
                    "add fee line", write=True)
            except StaleObjectError:
                if attempt == 1:
                    raise
                raw = self._read_raw(invoice.id)  # someone edited it: re-read, retry once
                if raw is not None and to_decimal(raw.get("Balance") or 0) <= 0:
                    raise PlatformValidationError(
                        f"invoice {invoice.number} was paid or closed meanwhile: no fee") from None
                continue
            updated: dict[str, Any] = answer["Invoice"]
            self._remember([updated], fresh=True)
            ref = find_line_with_marker(updated, key)
            if ref is None:
                raise PlatformValidationError("QuickBooks dropped the fee line")
            return ref
        raise StaleObjectError(f"invoice {invoice.number} kept changing")  # pragma: no cover

    def _fee_invoice(self, invoice: Invoice, amount: Decimal, label: str, key: str,
                     item_id: str, item_name: str) -> str:
        body: dict[str, Any] = {
            "CustomerRef": {"value": invoice.customer_id},
            "CurrencyRef": {"value": invoice.currency},
            "Line": [fee_line(amount, f"{label} on invoice {invoice.number} {key_marker(key)}",
                              item_id, item_name)],
            "PrivateNote": fee_invoice_note(label, invoice.number, invoice.id, key),
            "TxnDate": self.clock().date().isoformat(),
            "DueDate": self.clock().date().isoformat(),
        }
        if invoice.customer_email:
            body["BillEmail"] = {"Address": invoice.customer_email}
        text = dumps(body)
        answer: dict[str, Any] = self._run(
            lambda: self.client.create_object("Invoice", text, request_id=key),
            "create fee invoice", write=True)
        fee = QBInvoice.from_json(answer["Invoice"])
        return f"Invoice:{fee.Id}"

    def waive_fee(self, invoice: Invoice, fee_key: str, amount: Money, label: str, *,
                  key: str) -> str:
        """A CreditMemo applied to the invoice (see waivers.py for why not a line removal)."""
        return self._reconciled(lambda: waivers.waive_fee(self, invoice, amount, label, key),
                                invoice, ActionKind.WAIVE_FEE, key)

    def forget(self, invoice_id: str) -> None:
        """Drop what this session knows of an invoice another write just changed."""
        self._raw.pop(invoice_id, None)
        self._fresh_at.pop(invoice_id, None)

    def fee_item(self) -> tuple[str, str]:
        """The 'Late fee' service Item: found by name, else created (once per connector)."""
        if self._fee_item is not None:
            return self._fee_item
        items: list[dict[str, Any]] = []
        if not self._fee_item_looked_up:
            answer = self._query(select("Item", f"Name = {_quote(LATE_FEE_ITEM)}"))
            items = answer.get("QueryResponse", {}).get("Item", [])
        if not items:
            accounts = self._query(select("Account", "AccountType = 'Income'", limit=1)).get(
                "QueryResponse", {}).get("Account", [])
            if not accounts:
                raise PlatformValidationError("no Income account to book late fees to")
            item = Item()
            item.Name, item.Type = LATE_FEE_ITEM, "Service"
            item.Description = "Late payment fee (added by ar-sync)"
            item.IncomeAccountRef = {"value": accounts[0]["Id"]}
            text = item.to_json()
            try:
                created: dict[str, Any] = self._run(
                    lambda: self.client.create_object(
                        "Item", text, request_id=f"ar-sync-fee-item-{self.realm}"),
                    "create fee item")
                items = [created["Item"]]
            except PlatformValidationError as exc:
                if exc.platform_code != DUPLICATE_NAME:
                    raise
                # another runner created it first (its requestid need not be replayed to us)
                items = self._query(select("Item", f"Name = {_quote(LATE_FEE_ITEM)}")).get(
                    "QueryResponse", {}).get("Item", [])
                if not items:
                    raise
        found = Item.from_json(items[0])
        self._fee_item = (str(found.Id), str(found.Name))
        return self._fee_item

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
