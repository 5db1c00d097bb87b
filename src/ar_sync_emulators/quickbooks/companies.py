"""Companies with the shapes tidy test data hides, as QuickBooks Online JSON: tax-exclusive
and tax-inclusive invoices, percent and fixed discounts, a bundle (group) line with a subtotal
in the middle, a foreign-currency customer, part-paid and not-yet-due invoices, a customer
without an e-mail. Used by the demo's UK company and by the connector's test matrix.

`real_company(edition)` gives (rows, amounts paid) for `QuickBooksEmulator.seed_rows`; the
emulator prices every invoice itself, so totals and tax are QBO's, not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ar_sync_emulators.books import DEMO_TODAY, DemoCustomer
from ar_sync_emulators.quickbooks.shapes import CURRENCY_NAMES, amount, customer_json, service_item
from ar_sync_emulators.quickbooks.tax import Edition
from ar_sync_emulators.quickbooks.tax import edition as _edition

SHAPES = ("tax_exclusive", "tax_inclusive", "discounted", "fixed_discount", "bundle",
          "multi_currency", "part_paid")
NAMES = {"GB": "Thames Joinery Ltd", "US": "Bayside Supply Inc", "CA": "Lakeshore Design Inc",
         "AU": "Harbour Electrics Pty Ltd"}


@dataclass(frozen=True)
class _Customer:
    id: str
    name: str
    email: str | None
    currency: str | None  # None: the home currency


_CUSTOMERS = (_Customer("1", "Northwind Traders", "ap@northwind.example", None),
              _Customer("2", "Fjord Imports AS", "faktura@fjord.example", "EUR"),
              _Customer("3", "Granite Builders", "accounts@granite.example", None),
              _Customer("4", "Willow Studio", None, None))


def _codes(ed: Edition) -> tuple[str, str]:
    """(standard-rated, zero / non-taxable) line codes of the edition."""
    if ed.us:
        return "TAX", "NON"
    standard = max(ed.codes, key=lambda c: ed.rate_of(c))
    zero = next(c for c in ed.codes if ed.rate_of(c) == 0 and c.rate_ids)
    return standard.id, zero.id


def _sales(value: str, description: str, code: str, *, item: str = "1",
           gross: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"ItemRef": {"value": item, "name": "Services" if item == "1"
                                          else "Materials"},
                              "Qty": 1, "UnitPrice": amount(Decimal(value)),
                              "TaxCodeRef": {"value": code},
                              "ItemAccountRef": {"value": "1", "name": "Services"},
                              "ServiceDate": "2026-09-30"}
    if gross is not None:
        detail["TaxInclusiveAmt"] = amount(Decimal(gross))
    return {"Description": description, "Amount": amount(Decimal(value)),
            "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}


def _lines(shape: str, standard: str, zero: str) -> list[dict[str, Any]]:
    if shape == "tax_inclusive":
        return [_sales("500.00", "Joinery work (price incl. tax)", standard, gross="600.00"),
                _sales("80.00", "Site visit", zero, gross="80.00")]
    lines = [_sales("1200.00", "Kitchen fitting", standard),
             _sales("150.00", "Delivery", zero, item="2")]
    if shape == "discounted":
        lines.append({"Amount": 0, "DetailType": "DiscountLineDetail",
                      "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10,
                                             "DiscountAccountRef": {"value": "2"}}})
    if shape == "fixed_discount":
        lines.append({"Amount": 25, "DetailType": "DiscountLineDetail",
                      "DiscountLineDetail": {"PercentBased": False,
                                             "DiscountAccountRef": {"value": "2"}}})
    if shape == "bundle":
        lines.insert(1, {"Amount": 0, "DetailType": "SubTotalLineDetail",
                         "SubTotalLineDetail": {}})
        lines.append({"Amount": 0, "DetailType": "GroupLineDetail", "Description": "Bundle",
                      "GroupLineDetail": {"GroupItemRef": {"value": "3", "name": "Bundle"},
                                          "Quantity": 1,
                                          "Line": [_sales("90.00", "Hinges", standard, item="2"),
                                                   _sales("60.00", "Fixing", standard)]}})
    return lines


def real_company(name: str | Edition = "UK", *, today: date = DEMO_TODAY,
                 copies: int = 1) -> tuple[str, dict[str, dict[str, dict[str, Any]]],
                                           dict[str, Decimal]]:
    """(company name, rows, amount paid per invoice id): every shape `copies` times, overdue
    by 20..60 days, plus one not yet due; DocNumber `<SHAPE>-<n>`."""
    ed = _edition(name)
    standard, zero = _codes(ed)
    stamp = f"{today - timedelta(days=400)}T09:00:00-08:00"
    customers = {}
    for c in _CUSTOMERS:
        row = customer_json(c.id, _demo_customer(c, ed), stamp)
        customers[c.id] = row
    items = {"1": service_item("1", "Services", stamp),
             "2": service_item("2", "Materials", stamp),
             "3": {**service_item("3", "Bundle", stamp), "Type": "Group"}}
    accounts = {"1": {"Id": "1", "Name": "Services", "AccountType": "Income", "Active": True,
                      "SyncToken": "0", "MetaData": {"LastUpdatedTime": stamp}},
                "2": {"Id": "2", "Name": "Discounts given", "AccountType": "Income",
                      "Active": True, "SyncToken": "0", "MetaData": {"LastUpdatedTime": stamp}}}
    invoices: dict[str, dict[str, Any]] = {}
    paid: dict[str, Decimal] = {}
    n = 2000
    for copy in range(1, copies + 1):
        for i, shape in enumerate((*SHAPES, "not_due")):
            n += 1
            customer = _CUSTOMERS[1] if shape == "multi_currency" else _CUSTOMERS[
                3 if shape == "not_due" else (i + copy) % 2 * 2]
            due = today + timedelta(days=10) if shape == "not_due" else today - timedelta(
                days=20 + 8 * i + copy % 7)
            currency = customer.currency or ed.home_currency
            inv: dict[str, Any] = {
                "Id": str(n), "SyncToken": "0", "domain": "QBO", "sparse": False,
                "DocNumber": f"{shape.upper().replace('_', '-')}-{copy}",
                "TxnDate": (due - timedelta(days=30)).isoformat(), "DueDate": due.isoformat(),
                "CurrencyRef": {"value": currency, "name": CURRENCY_NAMES.get(currency, "")},
                "ExchangeRate": 0.86 if currency != ed.home_currency else 1,
                "CustomerRef": {"value": customer.id, "name": customer.name},
                "Line": _lines("tax_exclusive" if shape == "not_due" else shape, standard,
                               zero),
                "TotalAmt": 0, "Balance": 0, "PrivateNote": "", "EmailStatus": "NotSet",
                "PrintStatus": "NotSet", "ApplyTaxAfterDiscount": False, "LinkedTxn": [],
                "CustomerMemo": {"value": "Thank you for your business."},
                "SalesTermRef": {"value": "3"},
                "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp},
            }
            if not ed.us:
                inv["GlobalTaxCalculation"] = ("TaxInclusive" if shape == "tax_inclusive"
                                               else "TaxExcluded")
            else:
                inv["TxnTaxDetail"] = {"TxnTaxCodeRef": {"value": ed.default_sales_code}}
            if customer.email:
                inv["BillEmail"] = {"Address": customer.email}
            invoices[str(n)] = inv
            paid[str(n)] = Decimal("100.00") if shape == "part_paid" else Decimal(0)
    rows = {"Customer": customers, "Item": items, "Account": accounts, "Invoice": invoices}
    return NAMES.get(ed.country, "Real Company"), rows, paid


def _demo_customer(c: _Customer, ed: Edition) -> DemoCustomer:
    return DemoCustomer(id=c.id, name=c.name, email=c.email,
                        currency=c.currency or ed.home_currency)
