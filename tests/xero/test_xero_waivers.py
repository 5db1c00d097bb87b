"""Waivers through xero-python against the emulator: a sales credit note, its key marker in
the credit note's history, allocated to the invoice once, whatever fails in between."""

from __future__ import annotations

from decimal import Decimal

import pytest
from xero_support import Session

from ar_sync.domain.errors import ConnectorError, PlatformValidationError
from ar_sync.domain.models import ActionKind, FeeMode, Invoice, Money
from ar_sync.domain.references import key_marker
from ar_sync_emulators.xero.credit import notes_of
from ar_sync_emulators.xero.server import XeroEmulator
from ar_sync_xero import XeroConnector

LABEL = "Late fee 2026-10 waived on invoice {n} (25.00 GBP)"


def _charged(emu: XeroEmulator, session: Session) -> tuple[Invoice, Money]:
    """An open GBP invoice with a fee line ar-sync added, freshly read."""
    connector = session.connector
    inv = next(i for i in connector.fetch_open_invoices().invoices
               if i.currency == "GBP" and i.amount_paid == 0 and i.balance > 100)
    fee = Money.of("25.00", "GBP")
    connector.add_late_fee(inv, fee, "Late fee", key="arfee-x1", mode=FeeMode.LINE)
    got = _fresh(emu, session, inv.id)
    assert got.balance == inv.balance + Decimal("25.00")
    return got, fee


def _fresh(emu: XeroEmulator, session: Session, invoice_id: str) -> Invoice:
    """GET /Invoices/{id} (not the session's cached listing)."""
    got = session.connector.session.read(invoice_id)
    assert got is not None
    return got[0]


def _waive(session: Session, inv: Invoice, fee: Money, key: str) -> str:
    return session.connector.waive_fee(inv, "arfee-x1", fee, LABEL.format(n=inv.number),
                                       key=key)


def test_waiver_is_a_credit_note_allocated_to_the_invoice(emu: XeroEmulator,
                                                          session: Session) -> None:
    inv, fee = _charged(emu, session)
    lines_before = [(ln.id, ln.unit_amount) for ln in emu.invoice(inv.id).lines]
    ref = _waive(session, inv, fee, "arwaive-x1")
    [note] = notes_of(emu.org()).values()
    assert ref == f"creditnote:{note.id}" and note.total == Decimal("25.00")
    assert note.remaining == 0 and note.status == "AUTHORISED"
    assert "ar-sync:" not in note.reference and "ar-sync:" not in note.lines[0].description
    assert any(key_marker("arwaive-x1") in h.details for h in note.history)
    raw = emu.invoice(inv.id)
    assert raw.amount_due == inv.balance - Decimal("25.00") and raw.amount_credited == 25
    assert [(ln.id, ln.unit_amount) for ln in raw.lines] == lines_before  # not edited
    effects = sorted((e.kind, e.invoice_id, e.key) for e in emu.effects()
                     if e.kind.startswith("waive"))
    assert effects == [("waive_applied", inv.id, "arwaive-x1"),
                       ("waive_fee", inv.id, "arwaive-x1")]
    assert session.connector.find_effect(inv, ActionKind.WAIVE_FEE, "arwaive-x1") == ref
    assert session.connector.find_effect(inv, ActionKind.WAIVE_FEE, "arother") is None
    assert _fresh(emu, session, inv.id).balance == inv.balance - Decimal("25.00")


@pytest.mark.parametrize("fail_on", ["/History", "/Allocations"])
def test_a_failure_after_the_credit_note_resumes_without_a_second_one(
        emu: XeroEmulator, session: Session, fail_on: str) -> None:
    inv, fee = _charged(emu, session)
    emu.faults.fail_next(100, status=503, match=fail_on)
    with pytest.raises(ConnectorError):
        _waive(session, inv, fee, "arwaive-x2")
    assert len(notes_of(emu.org())) == 1
    assert emu.invoice(inv.id).amount_due == inv.balance  # not allocated yet
    emu.faults.clear()
    again = XeroConnector(session.connector.settings, session.connection, session.store,
                          session.budget, clock=session.connector.session.clock)  # a new runner
    assert again.find_effect(inv, ActionKind.WAIVE_FEE, "arwaive-x2") is None
    ref = again.waive_fee(inv, "arfee-x1", fee, LABEL.format(n=inv.number), key="arwaive-x2")
    [note] = notes_of(emu.org()).values()
    assert ref == f"creditnote:{note.id}" and note.remaining == 0
    assert sum(key_marker("arwaive-x2") in h.details for h in note.history) == 1
    assert emu.invoice(inv.id).amount_due == inv.balance - Decimal("25.00")


def test_lost_answers_are_found_again_not_written_twice(emu: XeroEmulator,
                                                        session: Session) -> None:
    inv, fee = _charged(emu, session)
    for path in ("/CreditNotes", "/History", "/Allocations"):
        emu.faults.drop_after_write(1, match=path)
    # every answer is lost once: the connector finds each write by its marker and goes on;
    # after three ambiguous attempts it leaves the action for the next run's reconciliation
    with pytest.raises(ConnectorError):
        _waive(session, inv, fee, "arwaive-x3")
    assert emu.faults.pending() == 0
    [note] = notes_of(emu.org()).values()
    ref = session.connector.find_effect(inv, ActionKind.WAIVE_FEE, "arwaive-x3")
    assert ref == f"creditnote:{note.id}"  # the next run completes the ledger row
    assert emu.invoice(inv.id).amount_due == inv.balance - Decimal("25.00")
    assert len([e for e in emu.effects() if e.kind == "waive_applied"]) == 1


def test_the_emulator_refuses_what_xero_refuses(emu: XeroEmulator, session: Session) -> None:
    inv, fee = _charged(emu, session)
    ref = _waive(session, inv, fee, "arwaive-x4")
    note_id = ref.split(":")[1]
    # no credit left on the note: a second allocation is refused by the platform
    session.connector.waiver_notes["arwaive-x5"] = (note_id, Decimal("10"), True)
    with pytest.raises(PlatformValidationError, match="remaining credit"):
        session.connector.waive_fee(inv, "arfee-x1", fee, "again", key="arwaive-x5")
    # an invoice with a credit note allocated can no longer have its lines edited: the
    # emulator refuses the line, so the connector puts a new fee on its own invoice
    lines = list(emu.invoice(inv.id).lines)
    ref = session.connector.add_late_fee(inv, fee, "Late fee", key="arfee-x9",
                                         mode=FeeMode.LINE)
    assert ref.startswith("invoice:") and emu.invoice(inv.id).lines == lines


def test_credit_note_history_follows_the_invoice_rules(emu: XeroEmulator,
                                                        session: Session) -> None:
    """Through xero-python: a credit note's History answers as an invoice's does, and refuses
    what an invoice's refuses (no details, more than 2,500 characters)."""
    from xero_python.accounting import HistoryRecord, HistoryRecords
    from xero_python.exceptions import AccountingBadRequestException

    inv, fee = _charged(emu, session)
    note_id = _waive(session, inv, fee, "arwaive-h1").split(":")[1]
    api, tenant = session.connector.api, session.connector.tenant
    records = api.get_credit_note_history(tenant, note_id).history_records
    ours = [r for r in records if key_marker("arwaive-h1") in (r.details or "")]
    assert len(ours) == 1 and ours[0].user == "ar-sync (API)" and ours[0].changes == "Note"
    assert ours[0].date_utc is not None
    for details, refusal in (("", "Details field is required"),
                             ("x" * 2501, "2500 characters or less")):
        with pytest.raises(AccountingBadRequestException, match=refusal):
            api.create_credit_note_history(tenant, note_id, HistoryRecords(
                history_records=[HistoryRecord(details=details)]))
    added = api.create_credit_note_history(tenant, note_id, HistoryRecords(
        history_records=[HistoryRecord(details="y" * 2500)])).history_records
    assert [r.details for r in added] == ["y" * 2500]
    assert notes_of(emu.org())[note_id].history[-1].details == "y" * 2500
