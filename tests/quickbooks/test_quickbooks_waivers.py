"""Waivers through python-quickbooks against the emulator: a CreditMemo applied to the
invoice by a zero payment, once, whatever fails in between."""

from __future__ import annotations

from decimal import Decimal

import pytest
from qbo_helpers import Session

from ar_sync.domain.errors import ConnectorError
from ar_sync.domain.models import ActionKind, FeeMode, Invoice, Money
from ar_sync.domain.references import key_marker


def _charged(qbo: Session, fee: str = "25.00") -> tuple[Invoice, Money]:
    """An open invoice with a late-fee line charged by ar-sync, freshly read."""
    connector = qbo.open()
    inv = next(i for i in connector.fetch_open_invoices().invoices
               if i.currency == "USD" and i.balance > 100)
    money = Money.of(fee, "USD")
    connector.add_late_fee(inv, money, "Late fee (2026-10)", key="arfee-w1", mode=FeeMode.LINE)
    fresh = qbo.open().get_invoice(inv.id)
    assert fresh is not None
    return fresh, money


def _applications(qbo: Session) -> list[dict[str, object]]:
    """The Payments that apply a credit memo (a waiver's), not the customers' own."""
    return [p for p in qbo.emu.rows["Payment"].values()
            if any(t["TxnType"] == "CreditMemo" for ln in p["Line"] for t in ln["LinkedTxn"])]


def _balance(qbo: Session, invoice_id: str) -> Decimal:
    return Decimal(str(qbo.emu.invoice(invoice_id)["Balance"]))


def test_waiver_is_a_credit_memo_applied_to_the_invoice(qbo: Session) -> None:
    inv, fee = _charged(qbo)
    lines_before = list(qbo.emu.invoice(inv.id)["Line"])
    connector = qbo.open()
    ref = connector.waive_fee(inv, "arfee-w1", fee, "Late fee (2026-10)", key="arwaive1")
    memo = qbo.emu.rows["CreditMemo"][ref.split(":")[1]]
    assert Decimal(str(memo["TotalAmt"])) == Decimal("25.00")
    assert Decimal(str(memo["RemainingCredit"])) == 0
    assert key_marker("arwaive1") in memo["PrivateNote"]  # proof where only the bookkeeper looks
    assert "ar-sync:" not in memo["Line"][0]["Description"]  # nothing technical for the customer
    assert memo["CustomerRef"]["value"] == inv.customer_id
    assert _balance(qbo, inv.id) == inv.balance - Decimal("25.00")
    assert qbo.emu.invoice(inv.id)["Line"] == lines_before  # the sent invoice is not edited
    kinds = sorted((e.kind, e.invoice_id, e.key) for e in qbo.emu.effects()
                   if e.kind.startswith("waive"))
    assert kinds == [("waive_applied", inv.id, "arwaive1"), ("waive_fee", inv.id, "arwaive1")]
    assert connector.find_effect(inv, ActionKind.WAIVE_FEE, "arwaive1") == ref
    assert qbo.open().find_effect(inv, ActionKind.WAIVE_FEE, "arother") is None


def test_a_crash_between_memo_and_application_resumes_without_a_second_memo(
        qbo: Session) -> None:
    inv, fee = _charged(qbo)
    qbo.emu.faults.fail_next(10, status=503, match="/payment")
    with pytest.raises(ConnectorError):
        qbo.open().waive_fee(inv, "arfee-w1", fee, "Late fee", key="arwaive2")
    assert len(qbo.emu.rows["CreditMemo"]) == 1 and not _applications(qbo)
    assert _balance(qbo, inv.id) == inv.balance  # memo exists, not applied
    qbo.emu.faults.clear()
    # the next runner reconciles first: the memo is found but has credit left -> not done
    again = qbo.open()
    assert again.find_effect(inv, ActionKind.WAIVE_FEE, "arwaive2") is None
    ref = again.waive_fee(inv, "arfee-w1", fee, "Late fee", key="arwaive2")
    assert len(qbo.emu.rows["CreditMemo"]) == 1 and len(_applications(qbo)) == 1
    assert ref == f"CreditMemo:{next(iter(qbo.emu.rows['CreditMemo']))}"
    assert _balance(qbo, inv.id) == inv.balance - Decimal("25.00")


def test_lost_answers_are_found_by_the_marker_not_written_twice(qbo: Session) -> None:
    inv, fee = _charged(qbo)
    qbo.emu.faults.drop_after_write(1, match="/creditmemo")
    qbo.emu.faults.drop_after_write(1, match="/payment")
    qbo.open().waive_fee(inv, "arfee-w1", fee, "Late fee", key="arwaive3")
    assert len(qbo.emu.rows["CreditMemo"]) == 1 and len(_applications(qbo)) == 1
    # found by reconciliation (the memo's PrivateNote marker), not by the platform's replay
    assert qbo.emu.counters.writes_replayed == 0
    assert _balance(qbo, inv.id) == inv.balance - Decimal("25.00")


def test_a_waiver_never_credits_more_than_the_balance(qbo: Session) -> None:
    inv, _ = _charged(qbo)
    qbo.emu.pay(inv.id, inv.balance - Decimal("10.00"))
    fresh = qbo.open().get_invoice(inv.id)
    assert fresh is not None and fresh.balance == Decimal("10.00")
    ref = qbo.open().waive_fee(fresh, "arfee-w1", Money.of("25.00", "USD"), "Late fee",
                               key="arwaive4")
    memo = qbo.emu.rows["CreditMemo"][ref.split(":")[1]]
    assert Decimal(str(memo["TotalAmt"])) == Decimal("10.00")
    assert _balance(qbo, inv.id) == 0


def test_the_emulator_refuses_to_apply_more_than_the_open_balance(qbo: Session) -> None:
    inv, fee = _charged(qbo)
    connector = qbo.open()
    ref = connector.waive_fee(inv, "arfee-w1", fee, "Late fee", key="arwaive5")
    memo_id = ref.split(":")[1]
    qbo.emu.rows["CreditMemo"][memo_id]["RemainingCredit"] = 10_000  # pretend credit is left
    big = inv.model_copy(update={"balance": Decimal(10_000)})
    connector.waiver_memos["arwaive6"] = dict(qbo.emu.rows["CreditMemo"][memo_id])
    with pytest.raises(ConnectorError, match="more than its open balance"):
        connector.waive_fee(big, "arfee-w1", Money.of("9000", "USD"), "Late fee",
                            key="arwaive6")
