"""What the parts of one QuickBooks connection share: the client, the clock and retry waits,
the query helpers, and the per-session caches (invoice JSON, e-mails, company facts, the Late
fee item, waiver memos, payment links).

The connector composes one QuickBooksSession and hands it to its parts (reads, writes, batch,
links, waivers, effects), so none of them depends on connector.py and each sees the same state
the connector sees. Company facts a fee needs (the Late fee item, TaxCode, TaxRate,
CompanyInfo's country) are read once per session, in one /batch request of queries.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from quickbooks.objects.item import Item

from ar_sync.domain.errors import PlatformValidationError
from ar_sync.domain.money import to_decimal
from ar_sync.sync.connector import Connection
from ar_sync_quickbooks import accounts
from ar_sync_quickbooks.client import QuickBooksClient, run
from ar_sync_quickbooks.fees import FeeTax, choose_fee_tax
from ar_sync_quickbooks.mapping import LATE_FEE_ITEM, dumps

PAGE = 1000  # QBO's largest page
DUPLICATE_NAME = "6240"  # Fault code of "Duplicate Name Exists Error"


def quote(value: str) -> str:
    """A QBO query string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def select(entity: str, where: str = "", *, start: int | None = None,
           limit: int | None = PAGE) -> str:
    """A QBO query statement; every literal in `where` went through quote."""
    parts = [f"select * from {entity}"]  # noqa: S608 - fixed entity names, quoted literals
    if where:
        parts.append(f"where {where}")
    if start is not None:
        parts.append(f"STARTPOSITION {start}")
    if limit is not None:
        parts.append(f"MAXRESULTS {limit}")
    return " ".join(parts)


def fact_queries() -> dict[str, str]:
    """bId -> query of the company facts a late fee needs."""
    item = "select * from Item where Name = " + quote(LATE_FEE_ITEM)  # noqa: S608 - quoted
    return {"item": item,
            "taxcode": "select * from TaxCode MAXRESULTS 1000",
            "taxrate": "select * from TaxRate MAXRESULTS 1000",
            "company": "select * from CompanyInfo"}


class QuickBooksSession:
    """One company's client, clock and caches, shared by the connector's parts."""

    def __init__(self, connection: Connection, client: QuickBooksClient, *,
                 clock: Callable[[], datetime], sleep: Callable[[float], None] = time.sleep,
                 max_wait: float = 30.0) -> None:
        self.client = client
        self.clock = clock
        self.sleep = sleep
        self.max_wait = max_wait
        self.monotonic: Callable[[], float] = time.monotonic
        self.realm = connection.external_id
        self.raw: dict[str, dict[str, Any]] = {}  # last JSON seen per invoice id
        self.emails: dict[str, str | None] = {}  # customer id -> e-mail (None: has none)
        self.candidates: list[str] = []  # open invoice ids from the last fetch, likely order
        self.position: dict[str, int] = {}  # id -> its place in candidates
        self.fresh_at: dict[str, float] = {}  # when raw[id] was last read or written
        self.asked: deque[tuple[float, int]] = deque()  # (when, ids) re-checks asked for
        self.waiver_memos: dict[str, dict[str, Any]] = {}  # key -> found memo not yet applied
        self.payment_links: dict[str, str | None] = {}  # invoice id -> InvoiceLink
        self.customers: dict[str, dict[str, Any]] = {}  # id -> Customer JSON (pauses.py)
        self.read_payments = True  # payments.py: off when no fee rule accrues interest
        self.facts_loaded = False  # Late fee item, TaxCode, TaxRate, CompanyInfo
        self.fee_item_ref: tuple[str, str] | None = None  # the Late fee item (id, name)
        self.fee_item_account: str | None = None  # the account id the Late fee item books to
        self.tax_codes: list[dict[str, Any]] = []
        self.tax_rates: dict[str, Decimal] = {}
        self.country = "US"

    # ------------------------------------------------------------------ plumbing

    def run(self, fn: Callable[[], Any], what: str, *, write: bool = False) -> Any:
        """One SDK operation with this session's retries and waits."""
        return run(fn, what=f"quickbooks {what}", sleep=self.sleep, max_wait=self.max_wait,
                   write=write)

    def query(self, statement: str) -> dict[str, Any]:
        result: dict[str, Any] = self.run(lambda: self.client.query(statement), "query")
        return result

    def url(self, tail: str) -> str:
        return f"{self.client.api_url}/company/{self.realm}/{tail}"

    # ------------------------------------------------------------------ invoice JSON

    def remember(self, raws: list[dict[str, Any]], *, fresh: bool = False) -> None:
        """Keep the latest JSON per invoice; `fresh` marks it as a just-read (or just-written)
        state that get_invoice may serve for a few seconds instead of reading again."""
        now = self.monotonic()
        for raw in raws:
            self.raw[str(raw.get("Id"))] = raw
            if fresh:
                self.fresh_at[str(raw.get("Id"))] = now

    def forget(self, invoice_id: str) -> None:
        """Drop what this session knows of an invoice another write just changed."""
        self.raw.pop(invoice_id, None)
        self.fresh_at.pop(invoice_id, None)

    def read_raw(self, invoice_id: str) -> dict[str, Any] | None:
        """The invoice's JSON read now (None: QuickBooks no longer has it), remembered."""
        try:
            answer: dict[str, Any] = self.run(
                lambda: self.client.get_single_object("Invoice", pk=invoice_id), "read invoice")
        except PlatformValidationError as exc:
            if exc.platform_code == "610":
                return None
            raise
        raw: dict[str, Any] = answer["Invoice"]
        self.remember([raw], fresh=True)
        return raw

    def batch_queries(self, queries: dict[str, str]) -> dict[str, dict[str, Any]]:
        """bId -> QueryResponse for several queries in one /batch request (one API call),
        with the company facts a fee needs added while they are still unread."""
        wanted = dict(queries)
        if not self.facts_loaded:
            wanted.update(fact_queries())
        if len(wanted) == 1:
            (bid, text), = wanted.items()
            return {bid: self.query(text).get("QueryResponse", {})}
        body = dumps({"BatchItemRequest": [{"bId": bid, "Query": text}
                                           for bid, text in wanted.items()]})
        answer: dict[str, Any] = self.run(lambda: self.client.batch_operation(body),
                                          "batch read")
        out: dict[str, dict[str, Any]] = {}
        for item in answer.get("BatchItemResponse", []):
            if "Fault" in item:
                error = (item["Fault"].get("Error") or [{}])[0]
                raise PlatformValidationError(
                    f"{error.get('Message', 'batch fault')}: {error.get('Detail', '')}",
                    platform_code=str(error.get("code") or "") or None)
            out[str(item.get("bId"))] = item.get("QueryResponse", {})
        if not self.facts_loaded:
            self.absorb_facts(out)
        return out

    # ------------------------------------------------------------------ company facts

    def absorb_facts(self, answers: dict[str, dict[str, Any]]) -> None:
        """Keep the company facts from the answers to fact_queries()."""
        items = answers.get("item", {}).get("Item", [])
        if items:
            self.keep_item(items[0])
        self.tax_codes = list(answers.get("taxcode", {}).get("TaxCode", []))
        self.tax_rates = {str(r["Id"]): to_decimal(r.get("RateValue") or 0)
                          for r in answers.get("taxrate", {}).get("TaxRate", [])}
        company = answers.get("company", {}).get("CompanyInfo", [])
        self.country = str((company[0] if company else {}).get("Country") or "US")
        self.facts_loaded = True

    def load_facts(self) -> None:
        if not self.facts_loaded:
            self.absorb_facts(self.batch_queries(fact_queries()))

    def fee_tax(self, wanted: str | None) -> FeeTax:
        """The TaxCodeRef and rate a fee carries (the rule's `tax:` or the no-tax default)."""
        self.load_facts()
        return choose_fee_tax(wanted, us=self.country.upper() == "US", codes=self.tax_codes,
                              rates=self.tax_rates)

    def keep_item(self, raw: dict[str, Any]) -> tuple[str, str]:
        found = Item.from_json(raw)
        self.fee_item_ref = (str(found.Id), str(found.Name))
        self.fee_item_account = str((raw.get("IncomeAccountRef") or {}).get("value") or "") \
            or None
        return self.fee_item_ref

    def fee_item(self, account: str | None = None) -> tuple[str, str]:
        """The 'Late fee' service Item: found by name, else created (once per session),
        booking to the rule's `account` (accounts.py: refused when the item books
        elsewhere)."""
        self.load_facts()
        if self.fee_item_ref is not None:
            if account is not None:
                accounts.check_item_books_to(self, account)
            return self.fee_item_ref
        item = Item()
        item.Name, item.Type = LATE_FEE_ITEM, "Service"
        item.Description = "Late payment fee (added by ar-sync)"
        item.IncomeAccountRef = {"value": accounts.account_for_new_item(self, account)}
        text = item.to_json()
        try:
            created: dict[str, Any] = self.run(
                lambda: self.client.create_object("Item", text,
                                                  request_id=f"ar-sync-fee-item-{self.realm}"),
                "create fee item")
            items = [created["Item"]]
        except PlatformValidationError as exc:
            if exc.platform_code != DUPLICATE_NAME:
                raise
            # another runner created it first (its requestid need not be replayed to us)
            items = self.query(fact_queries()["item"]).get("QueryResponse", {}).get("Item", [])
            if not items:
                raise
        ref = self.keep_item(items[0])
        if account is not None:
            accounts.check_item_books_to(self, account)
        return ref
