"""The customer's payment link (InvoiceLink) through python-quickbooks: the emulator gives it on
a read with include=invoiceLink, for an invoice that takes online payments and has an e-mail
address; the connector leaves a lazy reference at fetch and reads the link once, on demand."""

from __future__ import annotations

from typing import Any

import requests
from qbo_helpers import Session
from quickbooks.objects.invoice import Invoice as QBInvoice

from ar_sync.domain.money import to_decimal
from ar_sync_emulators.quickbooks.links import LINK_PATH
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_quickbooks.mapping import LAZY_LINK, note_text, to_invoice

ASK = {"include": "invoiceLink"}


def _open_with_email(emu: QuickBooksEmulator) -> list[dict[str, Any]]:
    return [r for r in emu.rows["Invoice"].values()
            if to_decimal(r["Balance"]) > 0 and r.get("BillEmail")]


def _take_online_payments(row: dict[str, Any], *, card: bool = True) -> str:
    row["AllowOnlineCreditCardPayment" if card else "AllowOnlineACHPayment"] = True
    return str(row["Id"])


def test_emulator_links_only_when_asked_online_and_mailable(qbo: Session) -> None:
    emu, client = qbo.emu, qbo.open().client
    card_row, ach_row, offline_row, no_mail_row = _open_with_email(emu)[:4]
    card, ach = _take_online_payments(card_row), _take_online_payments(ach_row, card=False)
    no_mail = _take_online_payments(no_mail_row)
    del no_mail_row["BillEmail"]
    emu.rows["Customer"][no_mail_row["CustomerRef"]["value"]].pop("PrimaryEmailAddr", None)

    link = QBInvoice.get(card, qb=client, params=ASK).InvoiceLink
    assert link.startswith(emu.url + LINK_PATH)
    assert QBInvoice.get(ach, qb=client, params=ASK).InvoiceLink.startswith(emu.url + LINK_PATH)
    assert QBInvoice.get(ach, qb=client, params=ASK).InvoiceLink != link  # one per invoice
    assert QBInvoice.get(card, qb=client).InvoiceLink == ""  # not asked for: not sent
    assert QBInvoice.get(str(offline_row["Id"]), qb=client, params=ASK).InvoiceLink == ""
    assert QBInvoice.get(no_mail, qb=client, params=ASK).InvoiceLink == ""
    page = requests.get(link, timeout=5)
    assert page.status_code == 200 and card_row["DocNumber"] in page.text
    assert requests.get(link + "0", timeout=5).status_code == 404


def test_fetch_leaves_a_lazy_link_and_the_connector_reads_it_once(qbo: Session) -> None:
    rows = _open_with_email(qbo.emu)
    online, offline = _take_online_payments(rows[0]), str(rows[1]["Id"])
    ach = _take_online_payments(rows[2], card=False)
    connector = qbo.open()
    fetched = {i.id: i for i in connector.fetch_open_invoices().invoices}
    assert fetched[online].payment_link == LAZY_LINK.format(invoice_id=online)
    assert fetched[ach].payment_link == LAZY_LINK.format(invoice_id=ach)
    assert fetched[offline].payment_link is None  # QuickBooks would give none
    qbo.emu.counters.reset()
    link = connector.payment_link(online)
    assert link is not None and link.startswith(qbo.emu.url + LINK_PATH)
    assert connector.payment_link(online) == link
    assert qbo.emu.counters.calls == {"GET /v3/company/{realm}/invoice/{id}": 1}
    assert connector.payment_link(offline) is None
    assert connector.payment_link("987654") is None  # no such invoice (610)
    # a plain read keeps the lazy reference; one that asked for the link maps the link itself
    read = connector.get_invoice(online)
    assert read is not None and read.payment_link == LAZY_LINK.format(invoice_id=online)
    raw = connector.client.get_single_object("Invoice", pk=online, params=ASK)["Invoice"]
    assert to_invoice(raw, realm=qbo.connection.external_id).payment_link == link


def test_notes_never_carry_the_lazy_reference() -> None:
    text = "Firm reminder: invoice 1001 is 30 days overdue (10.00 USD). " + LAZY_LINK.format(
        invoice_id="1001")
    stored = note_text(text, "ar" + "0" * 32)
    assert "quickbooks-invoice-link" not in stored
    assert stored.startswith("Firm reminder: invoice 1001 is 30 days overdue (10.00 USD). \n")
