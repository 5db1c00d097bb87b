"""The QuickBooks emulator's customer payment link: `InvoiceLink` on a read that asks for it.

Intuit's Accounting API reference (Invoice, `InvoiceLink`, minor version 36, read only):
"Sharable link for the invoice sent to external customers. The link is generated only for
invoices with online payment enabled and having a valid customer email address. Include query
param `include=invoiceLink` to get the link back"; python-quickbooks' own integration test
(tests/integration/test_invoice.py, `test_invoice_link`) reads it with
`Invoice.get(id, params={"include": "invoiceLink"})` after setting `AllowOnlineCreditCardPayment`,
`AllowOnlineACHPayment` and `BillEmail`. So: `GET /invoice/{id}?include=invoiceLink` adds the
field when the invoice allows an online payment (card or ACH) and has an e-mail address (its
`BillEmail`, else the customer's `PrimaryEmailAddr`); otherwise, and without `include`, the
field is absent. The link opens a page on the emulator with the amount due.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from html import escape
from typing import Any

LINK_PATH = "/portal/app/CommerceNetwork/view/"


def link_token(realm: str, invoice_id: str) -> str:
    """The link's last segment: the realm (so one URL serves several companies) and a hash."""
    digest = hashlib.sha256(f"{realm}/{invoice_id}".encode()).hexdigest()[:24]
    return f"scs-v1-{realm}-{digest}"


def realm_of(path: str) -> str | None:
    """The realm a link page's path names (None: not a link page)."""
    if not path.startswith(LINK_PATH):
        return None
    parts = path[len(LINK_PATH):].split("-")
    return parts[2] if len(parts) == 4 and parts[:2] == ["scs", "v1"] else None


def wants_link(include: str) -> bool:
    return "invoicelink" in {part.strip().lower() for part in include.split(",")}


def with_link(row: dict[str, Any], customers: Mapping[str, Mapping[str, Any]], *,
              base_url: str, realm: str) -> dict[str, Any]:
    """The invoice's JSON with `InvoiceLink` when QuickBooks would give one."""
    online = row.get("AllowOnlineCreditCardPayment") or row.get("AllowOnlineACHPayment")
    customer = customers.get(str((row.get("CustomerRef") or {}).get("value", ""))) or {}
    email = ((row.get("BillEmail") or {}).get("Address")
             or (customer.get("PrimaryEmailAddr") or {}).get("Address"))
    if not online or not email:
        return row
    return {**row, "InvoiceLink": f"{base_url}{LINK_PATH}{link_token(realm, str(row['Id']))}"}


def link_page(invoices: Mapping[str, Mapping[str, Any]], realm: str, token: str,
              company: str) -> str | None:
    """The page a link opens: the company, the invoice number and what is due (None: no such
    link)."""
    for iid, row in invoices.items():
        if link_token(realm, iid) == token:
            currency = (row.get("CurrencyRef") or {}).get("value", "")
            return (f"<html><body><h1>{escape(company)}</h1><p>Invoice "
                    f"{escape(str(row.get('DocNumber') or iid))}: {row.get('Balance')} "
                    f"{escape(str(currency))} due</p></body></html>")
    return None
