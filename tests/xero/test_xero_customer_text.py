"""Through xero-python against the emulator: a fee line and a fee invoice show the customer a
short reference ("(ref. AR-…)"), never `ar-sync:` or the key, and reconciliation after a lost
answer still finds both writes (Xero keeps no private field on either: the reference is the
proof)."""

from __future__ import annotations

from xero_support import Session

from ar_sync.domain.models import ActionKind, FeeMode, Invoice, Money
from ar_sync.domain.references import customer_reference
from ar_sync_emulators.xero.model import XInvoice
from ar_sync_emulators.xero.server import XeroEmulator
from ar_sync_xero.mapping import fee_lines_total, fee_parent, fee_reference

LINE_KEY = "ar" + "5ca1ab1e" * 4
INVOICE_KEY = "ar" + "0ddba11" * 4 + "0000"


def _customer_text(inv: XInvoice) -> str:
    """What the customer reads on a Xero invoice: its Reference and line descriptions."""
    return "\n".join([inv.reference, *(line.description for line in inv.lines)])


def _two_overdue(session: Session) -> list[Invoice]:
    found = [i for i in session.connector.fetch_open_invoices().invoices
             if i.customer_email and not i.disputed and i.amount_paid == 0]
    return found[:2]


def test_fee_writes_show_no_key_and_are_found_after_lost_answers(emu: XeroEmulator,
                                                                 session: Session) -> None:
    on_line, separate = _two_overdue(session)
    connector = session.connector
    emu.faults.drop_after_write(1)  # the answer is lost: found again by its reference
    line_ref = connector.add_late_fee(on_line, Money.of(5, on_line.currency), "Late fee",
                                      key=LINE_KEY, mode=FeeMode.LINE)
    emu.faults.drop_after_write(1)
    invoice_ref = connector.add_late_fee(separate, Money.of(8, separate.currency), "Late fee",
                                         key=INVOICE_KEY, mode=FeeMode.INVOICE)
    assert emu.counters.writes_replayed == 0  # reconciled, not replayed
    fee_invoice = emu.invoice(invoice_ref.split(":", 1)[1])
    for inv in (emu.invoice(on_line.id), fee_invoice):
        text = _customer_text(inv)
        assert "ar-sync:" not in text and LINE_KEY not in text and INVOICE_KEY not in text
    assert f"Late fee (ref. {customer_reference(LINE_KEY)})" in _customer_text(
        emu.invoice(on_line.id))
    assert fee_invoice.reference == (
        f"Late fee for {separate.number} (ref. {customer_reference(INVOICE_KEY)})")
    assert connector.find_effect(on_line, ActionKind.LATE_FEE, LINE_KEY) == line_ref
    assert connector.find_effect(separate, ActionKind.LATE_FEE, INVOICE_KEY) == invoice_ref
    assert connector.find_effect(separate, ActionKind.LATE_FEE, "ar" + "0ddba12" * 4) is None
    fees = sorted((e.invoice_id, e.key) for e in emu.effects() if e.kind == "late_fee")
    assert fees == sorted([(on_line.id, LINE_KEY), (separate.id, INVOICE_KEY)])
    fetched = {i.id: i for i in connector.fetch_open_invoices().invoices}
    assert fee_invoice.id not in fetched  # not chased: counted on its parent
    assert fetched[separate.id].late_fees_charged == separate.late_fees_charged + 8


def test_both_reference_forms_are_read() -> None:
    old = "Late fee for INV-0042 | ar-sync:ar00ff"
    assert fee_parent(old) == ("INV-0042", "ar00ff")  # written by an earlier version
    new = fee_reference("INV-0042", INVOICE_KEY, "Late fee")
    assert new == f"Late fee for INV-0042 (ref. {customer_reference(INVOICE_KEY)})"
    assert fee_parent(new) == ("INV-0042", customer_reference(INVOICE_KEY))
    assert fee_parent("Order for INV-0042 (ref. our PO 7)") is None

    class Line:
        def __init__(self, description: str, amount: int) -> None:
            self.description, self.line_amount, self.tax_amount = description, amount, 0

    lines = [Line("Widgets", 100), Line("Late fee ar-sync:arold", 3),
             Line(f"Late fee (ref. {customer_reference(LINE_KEY)})", 4)]
    assert fee_lines_total(lines) == 7
