"""The QuickBooks connector's writes: notes, reminder e-mails and late fees, each carrying its
idempotency key as `requestid` (a distinct key per distinct request) and as the `ar-sync:<key>`
marker the reconciliation searches for.

Company facts a fee needs (the Late fee item, TaxCode, TaxRate, CompanyInfo's country) are
read once per connector, in one /batch request of queries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from quickbooks.objects.attachable import Attachable
from quickbooks.objects.invoice import Invoice as QBInvoice
from quickbooks.objects.item import Item

from ar_sync.domain.errors import NotApplicableError, PlatformValidationError, StaleObjectError
from ar_sync.domain.models import ActionKind, FeeMode, Invoice, Money
from ar_sync.domain.money import round_money, to_decimal
from ar_sync.domain.references import reference_text
from ar_sync_quickbooks.client import QuickBooksClient
from ar_sync_quickbooks.fees import (
    FeeTax,
    choose_fee_tax,
    discounted,
    fee_line,
    invoice_rate,
    lines_with_fee,
    verify_fee_invoice,
    verify_fee_line,
)
from ar_sync_quickbooks.mapping import (
    LATE_FEE_ITEM,
    dumps,
    fee_description,
    fee_invoice_note,
    find_line_with_marker,
    note_text,
)

RETRY_SUFFIX = "-r"  # the fee line re-sent after a stale SyncToken (a different request)
FALLBACK_SUFFIX = "-i"  # the separate fee invoice written instead of a refused line edit
NOT_FOUND = "610"
DUPLICATE_NAME = "6240"  # Fault code of "Duplicate Name Exists Error"


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fact_queries() -> dict[str, str]:
    """bId -> query of the company facts a late fee needs."""
    item = "select * from Item where Name = " + quote(LATE_FEE_ITEM)  # noqa: S608 - quoted
    return {"item": item,
            "taxcode": "select * from TaxCode MAXRESULTS 1000",
            "taxrate": "select * from TaxRate MAXRESULTS 1000",
            "company": "select * from CompanyInfo"}


class QuickBooksWrites:
    """Mixin of QuickBooksConnector (which sets the attributes below)."""

    client: QuickBooksClient
    realm: str
    clock: Callable[[], datetime]
    _raw: dict[str, dict[str, Any]]
    _fee_item: tuple[str, str] | None
    _facts_loaded: bool
    _tax_codes: list[dict[str, Any]]
    _tax_rates: dict[str, Decimal]
    _country: str

    def _run(self, fn: Callable[[], Any], what: str, *, write: bool = False) -> Any:
        raise NotImplementedError

    def _reconciled(self, write: Callable[[], str], invoice: Invoice, kind: ActionKind,
                    key: str) -> str:
        raise NotImplementedError

    def _query(self, statement: str) -> dict[str, Any]:
        raise NotImplementedError

    def _read_raw(self, invoice_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _remember(self, raws: list[dict[str, Any]], *, fresh: bool = False) -> None:
        raise NotImplementedError

    def _batch_queries(self, queries: dict[str, str]) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    # ------------------------------------------------------------------ company facts

    def _absorb_facts(self, answers: dict[str, dict[str, Any]]) -> None:
        items = answers.get("item", {}).get("Item", [])
        if items:
            found = Item.from_json(items[0])
            self._fee_item = (str(found.Id), str(found.Name))
        self._tax_codes = list(answers.get("taxcode", {}).get("TaxCode", []))
        self._tax_rates = {str(r["Id"]): to_decimal(r.get("RateValue") or 0)
                           for r in answers.get("taxrate", {}).get("TaxRate", [])}
        company = answers.get("company", {}).get("CompanyInfo", [])
        self._country = str((company[0] if company else {}).get("Country") or "US")
        self._facts_loaded = True

    def _load_facts(self) -> None:
        if not self._facts_loaded:
            self._absorb_facts(self._batch_queries(fact_queries()))

    def fee_tax(self, wanted: str | None) -> FeeTax:
        self._load_facts()
        return choose_fee_tax(wanted, us=self._country.upper() == "US", codes=self._tax_codes,
                              rates=self._tax_rates)

    def fee_item(self) -> tuple[str, str]:
        """The 'Late fee' service Item: found by name, else created (once per connector)."""
        self._load_facts()
        if self._fee_item is not None:
            return self._fee_item
        accounts = self._query("select * from Account where AccountType = 'Income' "
                               "MAXRESULTS 1").get("QueryResponse", {}).get("Account", [])
        if not accounts:
            raise PlatformValidationError("no Income account to book late fees to")
        item = Item()
        item.Name, item.Type = LATE_FEE_ITEM, "Service"
        item.Description = "Late payment fee (added by ar-sync)"
        item.IncomeAccountRef = {"value": accounts[0]["Id"]}
        text = item.to_json()
        try:
            created: dict[str, Any] = self._run(
                lambda: self.client.create_object("Item", text,
                                                  request_id=f"ar-sync-fee-item-{self.realm}"),
                "create fee item")
            items = [created["Item"]]
        except PlatformValidationError as exc:
            if exc.platform_code != DUPLICATE_NAME:
                raise
            # another runner created it first (its requestid need not be replayed to us)
            items = self._query(fact_queries()["item"]).get("QueryResponse", {}).get("Item", [])
            if not items:
                raise
        found = Item.from_json(items[0])
        self._fee_item = (str(found.Id), str(found.Name))
        return self._fee_item

    # ------------------------------------------------------------------ notes and e-mail

    def add_note(self, invoice: Invoice, text: str, *, key: str) -> str:
        return self._reconciled(lambda: self._add_note(invoice, text, key), invoice,
                                ActionKind.NOTE, key)

    def _add_note(self, invoice: Invoice, text: str, key: str) -> str:
        """An Attachable note linked to the invoice (create-only: no SyncToken race)."""
        body = note_body(invoice, text, key)
        answer: dict[str, Any] = self._run(
            lambda: self.client.create_object("Attachable", body, request_id=key), "add note",
            write=True)
        return note_written(answer["Attachable"])

    def send_reminder(self, invoice: Invoice, *, key: str, to: str | None = None) -> str:
        """QBO's own invoice e-mail to the invoice's BillEmail. Never `sendTo`: QBO stores it
        as the invoice's BillEmail, and a reminder must not change who gets the invoice."""
        raw = self._raw.get(invoice.id) or self._read_raw(invoice.id)
        if raw is None:
            raise NotApplicableError(f"invoice {invoice.number} no longer exists")
        if not (raw.get("BillEmail") or {}).get("Address"):
            raise NotApplicableError(f"invoice {invoice.number} has no BillEmail: QuickBooks "
                                     "would send only to an address it then stores on the "
                                     "invoice, so no reminder e-mail")
        return self._reconciled(lambda: self._send(invoice, key), invoice,
                                ActionKind.REMINDER_EMAIL, key)

    def _send(self, invoice: Invoice, key: str) -> str:
        answer: dict[str, Any] = self._run(
            lambda: self.client.post(f"{self.client.api_url}/company/{self.realm}/invoice/"
                                     f"{invoice.id}/send", None,
                                     content_type="application/octet-stream", params={},
                                     request_id=key), "send invoice", write=True)
        self._remember([answer["Invoice"]], fresh=True)
        sent = QBInvoice.from_json(answer["Invoice"])
        delivered = getattr(sent.DeliveryInfo, "DeliveryTime", "") if sent.DeliveryInfo else ""
        return f"InvoiceSend:{sent.Id}@{delivered or sent.EmailStatus}"

    # ------------------------------------------------------------------ late fees

    def fee_inputs(self, invoice: Invoice, fee: Money,
                   tax: str | None) -> tuple[Decimal, tuple[str, str], FeeTax]:
        """The fee rounded, the Late fee item and the fee's tax (both paths check the same)."""
        if fee.currency != invoice.currency:
            raise PlatformValidationError(
                f"fee in {fee.currency} on a {invoice.currency} invoice {invoice.number}")
        amount = round_money(fee.amount, fee.currency)
        if amount <= 0:
            raise PlatformValidationError(f"late fee must be positive, got {amount}")
        return amount, self.fee_item(), self.fee_tax(tax)

    def add_late_fee(self, invoice: Invoice, fee: Money, label: str, *, key: str,
                     mode: FeeMode, tax: str | None = None) -> str:
        amount, item, charge = self.fee_inputs(invoice, fee, tax)
        if mode == FeeMode.INVOICE:
            return self._reconciled(lambda: self._fee_invoice(
                invoice, amount, label, key, item, charge, request_id=key),
                invoice, ActionKind.LATE_FEE, key)
        return self._reconciled(
            lambda: self._fee_line(invoice, amount, label, key, item, charge),
            invoice, ActionKind.LATE_FEE, key)

    def _fee_line(self, invoice: Invoice, amount: Decimal, label: str, key: str,
                  item: tuple[str, str], charge: FeeTax) -> str:
        """Sparse update adding one line; every existing line goes back as read."""
        raw = self._raw.get(invoice.id)
        if raw is None or str(raw.get("SyncToken")) != str(invoice.version):
            raw = self._read_raw(invoice.id)
        for request_id in (key, key + RETRY_SUFFIX):
            if raw is None:
                raise NotApplicableError(f"invoice {invoice.number} no longer exists")
            present = find_line_with_marker(raw, key)
            if present is not None:
                return present
            if discounted(raw):  # the discount would shift: other amounts would change
                return self._fee_invoice(invoice, amount, label, key, item, charge,
                                         request_id=key + FALLBACK_SUFFIX)
            text = dumps(fee_line_update(raw, amount, label, key, item, charge))
            try:
                answer: dict[str, Any] = self._run(
                    partial(self.client.update_object, "Invoice", text, request_id=request_id),
                    "add fee line", write=True)
            except StaleObjectError:
                if request_id != key:
                    raise
                raw = self._read_raw(invoice.id)  # someone edited it: re-read, retry once
                if raw is not None and to_decimal(raw.get("Balance") or 0) <= 0:
                    raise NotApplicableError(
                        f"invoice {invoice.number} was paid or closed meanwhile: no fee"
                    ) from None
                continue
            except PlatformValidationError as exc:
                if exc.platform_code == NOT_FOUND:
                    raise NotApplicableError(f"invoice {invoice.number} was deleted") from exc
                # The edit is refused (a business rule): the fee goes on its own invoice,
                # under a key derived from the action's, so no replay of the refusal.
                return self._fee_invoice(invoice, amount, label, key, item, charge,
                                         request_id=key + FALLBACK_SUFFIX)
            return self.fee_line_written(invoice, raw, answer["Invoice"], amount, key, charge)
        raise StaleObjectError(f"invoice {invoice.number} kept changing")  # pragma: no cover

    def fee_line_written(self, invoice: Invoice, before: dict[str, Any],
                         updated: dict[str, Any], amount: Decimal, key: str,
                         charge: FeeTax) -> str:
        """QuickBooks' answer to a fee-line update, checked: the line is there, every other
        line unchanged, the total up by exactly the fee and its tax."""
        self._remember([updated], fresh=True)
        ref = find_line_with_marker(updated, key)
        if ref is None:
            raise PlatformValidationError("QuickBooks dropped the fee line")
        rate = invoice_rate(updated) if charge.code == "TAX" else charge.rate
        verify_fee_line(before, updated, amount, rate, key, invoice.currency)
        return ref

    def _fee_invoice(self, invoice: Invoice, amount: Decimal, label: str, key: str,
                     item: tuple[str, str], charge: FeeTax, *, request_id: str) -> str:
        """A separate invoice for the fee, same customer and currency, dated today."""
        text = dumps(self.fee_invoice_body(invoice, amount, label, key, item, charge))
        answer: dict[str, Any] = self._run(
            lambda: self.client.create_object("Invoice", text, request_id=request_id),
            "create fee invoice", write=True)
        return fee_invoice_written(answer["Invoice"], amount, charge, invoice.currency)

    def fee_invoice_body(self, invoice: Invoice, amount: Decimal, label: str, key: str,
                         item: tuple[str, str], charge: FeeTax) -> dict[str, Any]:
        today = self.clock().date().isoformat()
        body: dict[str, Any] = {
            "CustomerRef": {"value": invoice.customer_id},
            "CurrencyRef": {"value": invoice.currency},
            "Line": [fee_line(amount, f"{label} on invoice {invoice.number} {reference_text(key)}",
                              *item, charge.code)],
            "PrivateNote": fee_invoice_note(label, invoice.number, invoice.id, key),
            "TxnDate": today, "DueDate": today,
        }
        if self._country.upper() != "US":
            body["GlobalTaxCalculation"] = "TaxExcluded"
        original = self._raw.get(invoice.id) or {}
        if original.get("ExchangeRate") is not None:
            body["ExchangeRate"] = original["ExchangeRate"]
        bill_to = (original.get("BillEmail") or {}).get("Address") or invoice.customer_email
        if bill_to:
            body["BillEmail"] = {"Address": bill_to}
        return body


def fee_line_update(raw: dict[str, Any], amount: Decimal, label: str, key: str,
                    item: tuple[str, str], charge: FeeTax) -> dict[str, Any]:
    """The sparse update adding a fee line: every existing line as read, the fee line, and
    the SyncToken the lines were read at."""
    line = fee_line(amount, fee_description(label, key), *item, charge.code)
    return {"Id": raw["Id"], "SyncToken": raw["SyncToken"], "sparse": True,
            "Line": lines_with_fee(raw, line)}


def fee_invoice_written(created: dict[str, Any], amount: Decimal, charge: FeeTax,
                        currency: str) -> str:
    """A created fee invoice, checked: it totals the fee plus its tax."""
    verify_fee_invoice(created, amount, None if charge.code == "TAX" else charge.rate, currency)
    return f"Invoice:{QBInvoice.from_json(created).Id}"


def note_body(invoice: Invoice, text: str, key: str) -> str:
    """An Attachable note on the invoice carrying the key marker (fits 2,000 characters)."""
    note = Attachable()
    note.Note = note_text(text, key)
    note.AttachableRef = [{"EntityRef": {"type": "Invoice", "value": invoice.id},
                           "IncludeOnSend": False}]
    text_json: str = note.to_json()
    return text_json


def note_written(created: dict[str, Any]) -> str:
    return f"Attachable:{Attachable.from_json(created).Id}"
