"""Reconciliation's questions to QuickBooks (ar_sync_quickbooks.effects), with the answers
given by hand: which rows it asks for, that it pages, and that an empty answer (QuickBooks
leaves the entity out of `QueryResponse` when nothing matches, as the emulator does) means
"not written". The emulator suites ask the same questions end to end."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from ar_sync.domain.models import ActionKind, Invoice, action_key
from ar_sync_quickbooks.effects import find_effect, find_fee, find_note, find_send
from ar_sync_quickbooks.mapping import fee_invoice_note, note_text
from ar_sync_quickbooks.session import PAGE

KEY = action_key("quickbooks:1", "quickbooks", "130", ActionKind.NOTE, "overdue-1", "once")
INVOICE = Invoice(platform="quickbooks", tenant="quickbooks:1", id="130", number="1037",
                  customer_id="58", customer_name="Sonnenschein Family Store",
                  customer_email=None, issue_date=date(2026, 9, 1), due_date=date(2026, 10, 1),
                  currency="USD", total=Decimal("100.00"), balance=Decimal("100.00"),
                  updated_at=datetime(2026, 10, 1, tzinfo=UTC))


class Session:
    """Answers each query with the next page given (then nothing), records the statements;
    the invoice read answers `raw`. effects.py uses nothing else of QuickBooksSession."""

    def __init__(self, *pages: dict[str, Any], raw: dict[str, Any] | None = None) -> None:
        self.pages = list(pages)
        self.raw = raw
        self.statements: list[str] = []

    def query(self, statement: str) -> dict[str, Any]:
        self.statements.append(statement)
        return {"QueryResponse": self.pages.pop(0) if self.pages else {}}

    def read_raw(self, invoice_id: str) -> dict[str, Any] | None:
        assert invoice_id == INVOICE.id
        return self.raw


def test_a_note_is_found_among_the_invoices_own_attachables() -> None:
    session = Session({"Attachable": [{"Id": "7", "Note": "a note of someone else"},
                                      {"Id": "8", "Note": note_text("Overdue.", KEY)}]})
    assert find_note(session, INVOICE, KEY) == "Attachable:8"  # type: ignore[arg-type]
    # the invoice's own notes, not the company's first page; names as Intuit writes them
    # (a query's entity is case sensitive: Intuit, "Data queries")
    assert session.statements == [
        "select * from Attachable where AttachableRef.EntityRef.Type = 'Invoice' and "
        "AttachableRef.EntityRef.value = '130' MAXRESULTS 1000"]


def test_no_attachable_means_no_note() -> None:
    session = Session()  # QuickBooks answers {"QueryResponse": {}}
    assert find_note(session, INVOICE, KEY) is None  # type: ignore[arg-type]
    assert find_effect(session, INVOICE, ActionKind.ESCALATE, KEY) is None  # type: ignore[arg-type]


def test_a_fee_invoice_is_found_on_a_later_page_of_the_customers_invoices() -> None:
    others = [{"Id": str(1000 + i), "PrivateNote": None} for i in range(PAGE)]
    fee = {"Id": "2001", "PrivateNote": fee_invoice_note("Late fee", "1037", "130", KEY)}
    session = Session({"Invoice": others}, {"Invoice": [fee]},
                      raw={"Id": "130", "Line": []})
    assert find_fee(session, INVOICE, KEY) == "Invoice:2001"  # type: ignore[arg-type]
    assert session.statements == [
        "select * from Invoice where CustomerRef = '58' and TxnDate >= '2026-09-01' "
        f"STARTPOSITION {start} MAXRESULTS {PAGE}" for start in (1, PAGE + 1)]


def test_no_fee_line_and_no_fee_invoice_means_no_fee() -> None:
    session = Session(raw={"Id": "130", "Line": []})
    assert find_fee(session, INVOICE, KEY) is None  # type: ignore[arg-type]
    assert len(session.statements) == 1


SINCE = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)  # when the lost send was tried


def _sent(status: str | None = "EmailSent", stamp: str | None = "2026-11-16T06:00:00-08:00",
          ) -> dict[str, Any]:
    return {"Id": "130", "EmailStatus": status, "DeliveryInfo": {"DeliveryTime": stamp}}


@pytest.mark.parametrize(("raw", "found"), [
    (_sent(), "InvoiceSend:130@2026-11-16T06:00:00-08:00"),  # 14:00 UTC: at `since` counts
    (_sent(stamp="2026-11-16T13:59:59Z"), None),  # before the try: another day's e-mail
    (_sent(status="NotSet"), None),
    (_sent(stamp=None), None),
    (_sent(stamp="not a time"), None),
    ({"Id": "130", "EmailStatus": "EmailSent"}, None),
    (None, None),  # QuickBooks no longer has the invoice
])
def test_a_lost_send_is_found_by_the_invoices_own_delivery_record(
        raw: dict[str, Any] | None, found: str | None) -> None:
    session = Session(raw=raw)
    assert find_send(session, INVOICE, SINCE) == found  # type: ignore[arg-type]
    assert find_effect(session, INVOICE, ActionKind.REMINDER_EMAIL, KEY,  # type: ignore[arg-type]
                       SINCE) == found
    assert find_effect(session, INVOICE, ActionKind.REMINDER_EMAIL, KEY) is None  # type: ignore[arg-type]
