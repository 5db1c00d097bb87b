"""QuickBooks Online JSON shapes: the Fault envelope, timestamps, and the demo company mapped
into Customers, Items and Invoices as QBO v3 (minorversion 75) writes them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from ar_sync.domain.money import round_money
from ar_sync_emulators.base import Response
from ar_sync_emulators.books import DemoCompany, DemoCustomer, DemoInvoice

# QuickBooks reports times in the company's zone; the demo company sits in US Pacific (PST).
COMPANY_TZ = timezone(timedelta(hours=-8))
MARKER_RE = re.compile(r"ar-sync:([A-Za-z0-9_-]+)")
FEE_FOR_RE = re.compile(r"\[invoice:(\w+)\]")

CURRENCY_NAMES = {"USD": "United States Dollar", "GBP": "British Pound Sterling",
                  "EUR": "Euro", "JPY": "Japanese Yen", "BHD": "Bahraini Dinar",
                  "CAD": "Canadian Dollar", "AUD": "Australian Dollar"}


class QboFault(Exception):
    """Raised inside a handler to answer with a Fault envelope."""

    def __init__(self, status: int, code: str, message: str, detail: str = "",
                 kind: str = "ValidationFault") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail, self.kind = (
            status, code, message, detail, kind)


def required(what: str) -> QboFault:
    """QBO's 2020 'Required param missing' fault for `what`."""
    return QboFault(400, "2020", "Required param missing, need to supply the required value "
                    "for the API", f"Required parameter {what} is missing in the request")


def qbo_time(moment: datetime) -> str:
    """`2026-11-16T09:00:00-08:00`: QBO's MetaData format (whole seconds, company offset)."""
    return moment.astimezone(COMPANY_TZ).replace(microsecond=0).isoformat()


def response_time(moment: datetime) -> str:
    """The envelope's `time`: milliseconds, company offset."""
    return moment.astimezone(COMPANY_TZ).isoformat(timespec="milliseconds")


def parse_qbo_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def fault(status: int, code: str, message: str, detail: str = "",
          kind: str = "ValidationFault", now: datetime | None = None) -> Response:
    """The real error envelope: {"Fault": {"Error": [...], "type": ...}, "time": ...}."""
    body: dict[str, Any] = {"Fault": {"Error": [{"Message": message, "Detail": detail or message,
                                                 "code": code, "element": ""}],
                                      "type": kind}}
    body["time"] = response_time(now or datetime.now(UTC))
    return Response.json(status, body)


def fault_body(code: str, message: str, detail: str = "",
               kind: str = "ValidationFault") -> dict[str, Any]:
    return {"Error": [{"Message": message, "Detail": detail or message, "code": code,
                       "element": ""}], "type": kind}


def amount(value: Decimal) -> float | int:
    """JSON number the way QBO writes it (Python float/int; the client parses it back)."""
    return int(value) if value == value.to_integral_value() else float(value)


def customer_json(cid: str, customer: DemoCustomer, stamp: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Id": cid, "SyncToken": "0", "DisplayName": customer.name,
        "CompanyName": customer.name, "FullyQualifiedName": customer.name, "Active": True,
        "Balance": 0, "CurrencyRef": {"value": customer.currency,
                                      "name": CURRENCY_NAMES.get(customer.currency, "")},
        "domain": "QBO", "sparse": False,
        "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp},
    }
    if customer.email:
        body["PrimaryEmailAddr"] = {"Address": customer.email}
    return body


def service_item(iid: str, name: str, stamp: str, income_account: str = "1") -> dict[str, Any]:
    return {"Id": iid, "Name": name, "FullyQualifiedName": name, "Type": "Service",
            "Active": True, "SyncToken": "0", "Taxable": False, "UnitPrice": 0,
            "IncomeAccountRef": {"value": income_account, "name": "Services"},
            "domain": "QBO", "sparse": False,
            "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}


def income_account(aid: str, name: str, stamp: str) -> dict[str, Any]:
    return {"Id": aid, "Name": name, "FullyQualifiedName": name, "AccountType": "Income",
            "AccountSubType": "ServiceFeeIncome", "Classification": "Revenue", "Active": True,
            "SyncToken": "0", "CurrencyRef": {"value": "USD", "name": CURRENCY_NAMES["USD"]},
            "domain": "QBO", "sparse": False,
            "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}


def sales_line(line_id: str, description: str, value: Decimal, item_id: str,
               item_name: str) -> dict[str, Any]:
    return {"Id": line_id, "LineNum": int(line_id), "Description": description,
            "Amount": amount(value), "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item_id, "name": item_name},
                                    "Qty": 1, "UnitPrice": amount(value),
                                    "TaxCodeRef": {"value": "NON"}}}


def subtotal_line(total: Decimal) -> dict[str, Any]:
    return {"Amount": amount(total), "DetailType": "SubTotalLineDetail",
            "SubTotalLineDetail": {}}


def _at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=COMPANY_TZ)


def invoice_json(iid: str, inv: DemoInvoice, customer_id: str, customer: DemoCustomer,
                 service_item_id: str, seeded_at: datetime) -> dict[str, Any]:
    """One demo invoice as QBO holds it; voided ones keep their lines at zero."""
    voided = inv.status == "voided"
    lines = [sales_line(str(n), line.description, Decimal(0) if voided else line.amount,
                        service_item_id, "Services")
             for n, line in enumerate(inv.lines, start=1)]
    total = Decimal(0) if voided else inv.total
    balance = Decimal(0) if voided else inv.balance
    created = min(_at(inv.issue_date), seeded_at - timedelta(minutes=10))
    updated = created
    if inv.amount_paid > 0:  # a payment was applied later (before seeding)
        updated = min(_at(inv.issue_date + timedelta(days=3), 14), seeded_at - timedelta(minutes=5))
    note = ""
    if voided:
        note = "Voided"
    elif inv.disputed:
        note = "#disputed customer queries the hours billed"
    body: dict[str, Any] = {
        "Id": iid, "SyncToken": "0" if inv.amount_paid == 0 else "1", "domain": "QBO",
        "sparse": False, "DocNumber": inv.number,
        "TxnDate": inv.issue_date.isoformat(), "DueDate": inv.due_date.isoformat(),
        "CurrencyRef": {"value": inv.currency, "name": CURRENCY_NAMES.get(inv.currency, "")},
        "ExchangeRate": 1, "CustomerRef": {"value": customer_id, "name": customer.name},
        "Line": [*lines, subtotal_line(total)],
        "TotalAmt": amount(round_money(total, inv.currency)),
        "Balance": amount(round_money(balance, inv.currency)),
        "HomeBalance": amount(round_money(balance, inv.currency)),
        "PrivateNote": note, "EmailStatus": "NotSet", "PrintStatus": "NotSet",
        "AllowOnlineCreditCardPayment": False, "AllowOnlineACHPayment": False,
        "ApplyTaxAfterDiscount": False, "GlobalTaxCalculation": "NotApplicable",
        "SalesTermRef": {"value": "3"}, "LinkedTxn": [],
        "MetaData": {"CreateTime": qbo_time(created), "LastUpdatedTime": qbo_time(updated)},
    }
    if customer.email:
        body["BillEmail"] = {"Address": customer.email}
    return body


def seed_rows(company: DemoCompany, seeded_at: datetime) -> dict[str, dict[str, dict[str, Any]]]:
    """Customers, Items, Accounts and Invoices of a demo company, keyed by their QBO Id."""
    stamp = qbo_time(seeded_at - timedelta(days=400))
    customers: dict[str, dict[str, Any]] = {}
    id_of: dict[str, str] = {}
    for n, customer in enumerate(company.customers, start=1):
        id_of[customer.id] = str(n)
        customers[str(n)] = customer_json(str(n), customer, stamp)
    invoices: dict[str, dict[str, Any]] = {}
    for n, inv in enumerate(company.invoices, start=1001):
        customer = company.customer(inv.customer_id)
        invoices[str(n)] = invoice_json(str(n), inv, id_of[inv.customer_id], customer, "1",
                                        seeded_at)
    return {"Customer": customers,
            "Item": {"1": service_item("1", "Services", stamp)},
            "Account": {"1": income_account("1", "Services", stamp)},
            "Invoice": invoices}
