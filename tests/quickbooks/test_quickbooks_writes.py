"""Every write kind, both fee modes, reconciliation by marker, stale SyncToken, lost answers."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from qbo_helpers import Session

from ar_sync.domain.errors import NotApplicableError, PlatformValidationError, StaleObjectError
from ar_sync.domain.models import ActionKind, FeeMode, Invoice, Money
from ar_sync.domain.references import key_marker


def _overdue(qbo: Session) -> list[Invoice]:
    invoices = qbo.open().fetch_open_invoices().invoices
    return [inv for inv in invoices if inv.customer_email and not inv.disputed]


def test_note_is_an_attachable_with_the_marker_and_is_found_again(qbo: Session) -> None:
    inv = _overdue(qbo)[0]
    connector = qbo.open()
    ref = connector.add_note(inv, "Friendly reminder: 30 days overdue", key="arnote1")
    assert ref.startswith("Attachable:")
    effects = [e for e in qbo.emu.effects() if e.kind == "note"]
    assert [(e.invoice_id, e.key) for e in effects] == [(inv.id, "arnote1")]
    att = qbo.emu.rows["Attachable"][ref.split(":")[1]]
    assert key_marker("arnote1") in att["Note"] and "30 days overdue" in att["Note"]
    assert connector.find_effect(inv, ActionKind.NOTE, "arnote1") == ref
    assert connector.find_effect(inv, ActionKind.NOTE, "arother") is None


def test_fee_line_mode_adds_one_line_keeping_the_others(qbo: Session) -> None:
    inv = _overdue(qbo)[0]
    connector = qbo.open()
    fresh = connector.get_invoice(inv.id)
    assert fresh is not None
    before = qbo.emu.invoice(inv.id)
    n_lines = len([ln for ln in before["Line"] if ln["DetailType"] != "SubTotalLineDetail"])
    fee = Money.of("12.50", inv.currency) if inv.currency != "JPY" else Money.of(1250, "JPY")
    ref = connector.add_late_fee(fresh, fee, "Late fee", key="arfee1", mode=FeeMode.LINE)
    after = qbo.emu.invoice(inv.id)
    lines = [ln for ln in after["Line"] if ln["DetailType"] != "SubTotalLineDetail"]
    assert len(lines) == n_lines + 1
    assert Decimal(str(after["TotalAmt"])) == inv.total + fee.amount
    assert Decimal(str(after["Balance"])) == inv.balance + fee.amount
    assert [(e.kind, e.invoice_id, e.key) for e in qbo.emu.effects()] == [
        ("late_fee", inv.id, "arfee1")]
    again = connector.get_invoice(inv.id)
    assert again is not None and again.late_fees_charged == fee.amount
    assert connector.find_effect(again, ActionKind.LATE_FEE, "arfee1") == ref
    # the 'Late fee' item was created once, with an income account
    items = [i for i in qbo.emu.rows["Item"].values() if i["Name"] == "Late fee"]
    assert len(items) == 1 and items[0]["Type"] == "Service"


def test_fee_invoice_mode_creates_a_linked_fee_invoice(qbo: Session) -> None:
    inv = _overdue(qbo)[1]
    connector = qbo.open()
    fee = Money.of("25", inv.currency)
    ref = connector.add_late_fee(inv, fee, "Late fee", key="arfee2", mode=FeeMode.INVOICE)
    fee_id = ref.split(":")[1]
    created = qbo.emu.invoice(fee_id)
    assert created["CustomerRef"]["value"] == inv.customer_id
    assert Decimal(str(created["TotalAmt"])) == fee.amount
    assert created["CurrencyRef"]["value"] == inv.currency
    assert qbo.emu.invoice(inv.id)["SyncToken"] == inv.version  # the original is untouched
    assert [(e.kind, e.invoice_id, e.key, e.ref) for e in qbo.emu.effects()] == [
        ("late_fee", inv.id, "arfee2", fee_id)]
    assert connector.find_effect(inv, ActionKind.LATE_FEE, "arfee2") == ref
    # the next full fetch counts the open fee invoice against the original
    refetched = {i.id: i for i in qbo.open().fetch_open_invoices().invoices}
    assert refetched[inv.id].late_fees_charged == fee.amount


def test_fee_line_and_invoice_reuse_one_fee_item(qbo: Session) -> None:
    a, b = _overdue(qbo)[:2]
    connector = qbo.open()
    connector.add_late_fee(a, Money.of(5, a.currency), "Late fee", key="k1", mode=FeeMode.LINE)
    connector.add_late_fee(b, Money.of(5, b.currency), "Late fee", key="k2",
                           mode=FeeMode.INVOICE)
    other = qbo.open()  # a new run finds the existing item instead of creating another
    other.add_late_fee(b, Money.of(5, b.currency), "Late fee", key="k3", mode=FeeMode.INVOICE)
    assert sum(1 for i in qbo.emu.rows["Item"].values() if i["Name"] == "Late fee") == 1


def test_fee_in_another_currency_is_refused(qbo: Session) -> None:
    inv = next(i for i in _overdue(qbo) if i.currency != "EUR")
    with pytest.raises(PlatformValidationError):
        qbo.open().add_late_fee(inv, Money.of(5, "EUR"), "Late fee", key="k",
                                mode=FeeMode.LINE)


def test_reminder_uses_the_platform_send_with_the_requestid(qbo: Session) -> None:
    inv = _overdue(qbo)[2]
    connector = qbo.open()
    ref = connector.send_reminder(inv, key="armail1")
    assert ref.startswith(f"InvoiceSend:{inv.id}@")
    assert qbo.emu.sends[-1].to == inv.customer_email
    assert qbo.emu.invoice(inv.id)["EmailStatus"] == "EmailSent"
    connector.send_reminder(inv, key="armail1")  # a retry with the same key: replayed
    assert len(qbo.emu.sends) == 1 and qbo.emu.counters.writes_replayed == 1
    bill_email = dict(qbo.emu.invoice(inv.id)["BillEmail"])
    # never sendTo: QBO would store it as the invoice's BillEmail (the recipients change)
    connector.send_reminder(inv, key="armail2", to="boss@example.com")
    assert [(e.key, s.to) for e, s in zip(
        [e for e in qbo.emu.effects() if e.kind == "email"], qbo.emu.sends, strict=True)] == [
        ("armail1", inv.customer_email), ("armail2", inv.customer_email)]
    assert qbo.emu.invoice(inv.id)["BillEmail"] == bill_email
    assert connector.find_effect(inv, ActionKind.REMINDER_EMAIL, "armail1") is None


def test_emulator_send_to_overwrites_bill_email(qbo: Session) -> None:
    """What the connector avoids: `sendTo` becomes the invoice's BillEmail."""
    inv = _overdue(qbo)[2]
    connector = qbo.open()
    connector.client.post(connector.session.url(f"invoice/{inv.id}/send"), None,
                          content_type="application/octet-stream",
                          params={"sendTo": "boss@example.com"})
    assert qbo.emu.invoice(inv.id)["BillEmail"] == {"Address": "boss@example.com"}


def test_send_without_bill_email_is_skipped_with_the_reason(qbo: Session) -> None:
    inv = _overdue(qbo)[2]
    del qbo.emu.invoice(inv.id)["BillEmail"]
    connector = qbo.open()
    fresh = connector.get_invoice(inv.id)
    assert fresh is not None and fresh.customer_email  # the customer has one; not used
    with pytest.raises(NotApplicableError, match="no BillEmail"):
        connector.send_reminder(fresh, key="armail3")
    assert qbo.emu.sends == []


def test_stale_synctoken_is_reread_and_retried_once(qbo: Session) -> None:
    inv = _overdue(qbo)[3]
    connector = qbo.open()
    qbo.emu.edit(inv.id, CustomerMemo={"value": "edited by a person"})  # SyncToken moves
    ref = connector.add_late_fee(inv, Money.of(7, inv.currency), "Late fee", key="arstale",
                                 mode=FeeMode.LINE)
    assert ref.startswith(f"{inv.id}:line:")
    assert qbo.emu.invoice(inv.id)["CustomerMemo"] == {"value": "edited by a person"}
    assert len([e for e in qbo.emu.effects() if e.kind == "late_fee"]) == 1


def test_stale_twice_raises_stale_object_error(qbo: Session) -> None:
    inv = _overdue(qbo)[4]
    connector = qbo.open()
    connector.fee_item()
    emu = qbo.emu
    original = emu._read

    def read_then_edit(entity: str, object_id: str) -> dict[str, Any]:
        row: dict[str, Any] = original(entity, object_id)
        emu.edit(object_id, CustomerMemo={"value": "racing"})  # someone edits after each read
        return row

    emu._read = read_then_edit  # type: ignore[method-assign,unused-ignore]
    emu.edit(inv.id, CustomerMemo={"value": "first edit"})
    with pytest.raises(StaleObjectError, match="Stale Object"):
        connector.add_late_fee(inv, Money.of(7, inv.currency), "Late fee", key="arstale2",
                               mode=FeeMode.LINE)
    assert [e for e in emu.effects() if e.kind == "late_fee"] == []


def test_dropped_answer_after_a_write_is_retried_with_the_same_requestid(qbo: Session) -> None:
    inv = _overdue(qbo)[5]
    connector = qbo.open()
    connector.fee_item()
    writes: tuple[tuple[str, Callable[[], str]], ...] = (
        ("note", lambda: connector.add_note(inv, "note", key="ardrop1")),
        ("late_fee", lambda: connector.add_late_fee(inv, Money.of(3, inv.currency), "Late fee",
                                                    key="ardrop2", mode=FeeMode.INVOICE)),
        ("email", lambda: connector.send_reminder(inv, key="ardrop3")),
    )
    for kind, write in writes:
        qbo.emu.faults.drop_after_write()
        write()
        assert sum(1 for e in qbo.emu.effects() if e.kind == kind) == 1
    fresh = connector.get_invoice(inv.id)
    assert fresh is not None
    qbo.emu.faults.drop_after_write()
    connector.add_late_fee(fresh, Money.of(3, inv.currency), "Late fee", key="ardrop4",
                           mode=FeeMode.LINE)
    keys = sorted(e.key or "" for e in qbo.emu.effects())
    assert keys == ["ardrop1", "ardrop2", "ardrop3", "ardrop4"]
    # a lost answer is looked for before the write is repeated: notes and fees by their key
    # marker, the e-mail (no marker) on the invoice's own record (EmailStatus EmailSent,
    # DeliveryInfo.DeliveryTime since the first try): nothing relies on the requestid replay
    assert qbo.emu.counters.writes_replayed == 0
    assert len(qbo.emu.sends) == 1 and not qbo.sleeps


def test_rechecks_before_fees_are_read_ahead_in_one_batch(qbo: Session) -> None:
    connector = qbo.open()
    invoices = connector.fetch_open_invoices().invoices
    overdue = sorted((i for i in invoices if i.is_open), key=lambda i: (i.due_date, -i.balance))
    before = qbo.budget.calls
    fresh = [connector.get_invoice(inv.id) for inv in overdue[:5]]
    assert [f.id for f in fresh if f] == [inv.id for inv in overdue[:5]]
    assert qbo.budget.calls - before == 1  # invoices and the Late fee lookup: one /batch
    assert qbo.emu.counters.calls["POST /v3/company/{realm}/batch"] == 1
    # a payment after the read-ahead is seen once the freshness window has passed
    qbo.emu.pay(overdue[6].id, overdue[6].balance)
    connector.monotonic = lambda: 1e12
    later = connector.get_invoice(overdue[6].id)
    assert later is not None and later.balance == 0


def test_send_without_an_address_spends_no_call(qbo: Session) -> None:
    inv = _overdue(qbo)[0]
    del qbo.emu.invoice(inv.id)["BillEmail"]
    connector = qbo.open()
    connector.fetch_open_invoices()  # the invoice's JSON as read: no BillEmail
    before = qbo.budget.calls
    with pytest.raises(NotApplicableError, match="no BillEmail"):
        connector.send_reminder(inv, key="arnomail")
    assert qbo.budget.calls == before and qbo.emu.sends == []
