"""The customer's payment link of a QuickBooks invoice, for ar-sync's own e-mails.

QuickBooks returns `InvoiceLink` ("Sharable link for the invoice sent to external customers",
minor version 36) only on a read that asks for it with `include=invoiceLink`, and only for an
invoice that takes online payments and has a customer e-mail address (Intuit Accounting API
reference, Invoice; python-quickbooks reads it as `Invoice.get(id, qb=…, params={"include":
"invoiceLink"})`, tests/integration/test_invoice.py `test_invoice_link`). A fetch leaves a lazy
reference in `Invoice.payment_link` (mapping.LAZY_LINK); ar_sync.messaging resolves it through
`payment_link()` for the invoices about to be e-mailed only: one read each, kept for the
session. The Xero connector does the same with its online invoice URL.
"""

from __future__ import annotations

from quickbooks.objects.invoice import Invoice as QBInvoice

from ar_sync.domain.errors import PlatformValidationError
from ar_sync_quickbooks.session import QuickBooksSession


def payment_link(session: QuickBooksSession, invoice_id: str) -> str | None:
    """The invoice's InvoiceLink (None: QuickBooks gives none, or no longer has the
    invoice)."""
    links = session.payment_links
    if invoice_id not in links:
        try:
            got: QBInvoice = session.run(lambda: QBInvoice.get(
                invoice_id, qb=session.client, params={"include": "invoiceLink"}),
                "read invoice link")
        except PlatformValidationError:
            return None
        link = str(got.InvoiceLink or "")
        links[invoice_id] = link if link.startswith(("https://", "http://")) else None
    return links[invoice_id]
