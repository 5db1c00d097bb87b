"""What the customer sees carries no key: fee lines and fee invoices show a short reference
("(ref. AR-…)"), the full `ar-sync:<key>` stays in the PrivateNote only the bookkeeper sees,
and reconciliation still finds both writes. ar-sync's own fee invoices are not chased."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from qbo_helpers import Session

from ar_sync.domain.models import ActionKind, FeeMode, Invoice, Money
from ar_sync.domain.references import customer_reference, key_marker
from ar_sync_quickbooks.mapping import find_line_with_marker, is_fee_line, map_invoices

LINE_KEY = "ar" + "3f9a2c1d" * 4
INVOICE_KEY = "ar" + "7b0e" * 8


def _customer_text(raw: dict[str, Any]) -> str:
    """Every field of a QBO invoice a customer reads on the invoice or its PDF."""
    parts = [str(ln.get("Description") or "") for ln in raw.get("Line", [])]
    parts += [json.dumps(raw.get("CustomerMemo")), str(raw.get("DocNumber") or "")]
    return "\n".join(parts)


def _overdue(qbo: Session) -> list[Invoice]:
    return [i for i in qbo.open().fetch_open_invoices().invoices
            if i.customer_email and not i.disputed and i.balance > 10]


def test_fee_writes_show_no_key_and_are_found_after_lost_answers(qbo: Session) -> None:
    on_line, separate = _overdue(qbo)[:2]
    connector = qbo.open()
    connector.fee_item()
    qbo.emu.faults.drop_after_write()  # the answer is lost: found again by its reference
    line_ref = connector.add_late_fee(on_line, Money.of(7, on_line.currency), "Late fee",
                                      key=LINE_KEY, mode=FeeMode.LINE)
    qbo.emu.faults.drop_after_write()
    invoice_ref = connector.add_late_fee(separate, Money.of(9, separate.currency), "Late fee",
                                         key=INVOICE_KEY, mode=FeeMode.INVOICE)
    assert qbo.emu.counters.writes_replayed == 0  # reconciled, not replayed
    fee_invoice = qbo.emu.invoice(invoice_ref.split(":", 1)[1])
    for raw in (qbo.emu.invoice(on_line.id), fee_invoice):
        text = _customer_text(raw)
        for key in (LINE_KEY, INVOICE_KEY):
            assert "ar-sync:" not in text and key not in text
    assert f"Late fee (ref. {customer_reference(LINE_KEY)})" in _customer_text(
        qbo.emu.invoice(on_line.id))
    assert f"(ref. {customer_reference(INVOICE_KEY)})" in _customer_text(fee_invoice)
    assert key_marker(INVOICE_KEY) in fee_invoice["PrivateNote"]  # the bookkeeper's proof
    fresh = connector.get_invoice(on_line.id)
    assert fresh is not None
    assert connector.find_effect(fresh, ActionKind.LATE_FEE, LINE_KEY) == line_ref
    assert connector.find_effect(separate, ActionKind.LATE_FEE, INVOICE_KEY) == invoice_ref
    fees = sorted((e.invoice_id, e.key) for e in qbo.emu.effects() if e.kind == "late_fee")
    assert fees == sorted([(on_line.id, LINE_KEY), (separate.id, INVOICE_KEY)])


def test_a_fee_invoice_is_counted_on_its_parent_and_not_chased(qbo: Session) -> None:
    parent = _overdue(qbo)[2]
    connector = qbo.open()
    connector.fee_item()
    ref = connector.add_late_fee(parent, Money.of(11, parent.currency), "Late fee",
                                 key=INVOICE_KEY, mode=FeeMode.INVOICE)
    fee_id = ref.split(":", 1)[1]
    fetched = {i.id: i for i in qbo.open().fetch_open_invoices().invoices}
    assert fee_id not in fetched  # no reminder, no fee on the fee
    assert fetched[parent.id].late_fees_charged == parent.late_fees_charged + Decimal(11)


def _raw(inv_id: str, *, note: str = "", lines: list[dict[str, Any]] | None = None,
         total: str = "100.00") -> dict[str, Any]:
    return {"Id": inv_id, "DocNumber": f"D{inv_id}", "CustomerRef": {"value": "c1"},
            "CurrencyRef": {"value": "USD"}, "TotalAmt": total, "Balance": total,
            "TxnDate": "2026-01-01", "DueDate": "2026-01-31", "SyncToken": "0",
            "PrivateNote": note, "Line": lines or [],
            "MetaData": {"LastUpdatedTime": "2026-02-01T00:00:00-08:00"}}


def test_map_invoices_drops_fee_invoices_and_reads_both_marker_forms() -> None:
    old_line = {"Id": "1", "Amount": "4.00", "Description": f"Late fee {key_marker('arold')}"}
    new_line = {"Id": "2", "Amount": "6.00", "Description": "Late fee (ref. AR-3F9A2C1D)"}
    parent = _raw("10", lines=[old_line, new_line])
    fee = _raw("11", total="5.00", note=f"Late fee: x on invoice D10 [invoice:10] "
                                        f"{key_marker(INVOICE_KEY)}")
    invoices, warnings = map_invoices([parent, fee], realm="r", emails={})
    assert warnings == [] and [i.id for i in invoices] == ["10"]
    assert invoices[0].fee_lines == Decimal("10.00")
    assert invoices[0].late_fees_charged == Decimal("15.00")
    assert all(is_fee_line(ln) for ln in (old_line, new_line))
    assert not is_fee_line({"Description": "Consulting, ref. AR-3F9A2C1D"})
    assert find_line_with_marker(parent, "arold") == "10:line:1"  # written by an old version
    assert find_line_with_marker(parent, LINE_KEY) == "10:line:2"
    assert find_line_with_marker(parent, "ar" + "3f9a2c1e" * 4) is None
