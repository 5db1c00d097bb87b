"""A QuickBooks fee books to the 'Late fee' item's income account: the rule's `account:`
decides it when ar-sync creates the item, and a rule naming another account than the
existing item's is refused with both named (QuickBooks books every fee through that item)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from qbo_helpers import Session

from ar_sync.domain.errors import PlatformValidationError
from ar_sync.domain.models import FeeMode, Money
from ar_sync.domain.money import to_decimal
from ar_sync.sync.connector import fee_account_problems
from ar_sync_emulators.quickbooks.shapes import income_account

STAMP = "2025-01-01T00:00:00-08:00"


def _add_income(qbo: Session, aid: str, name: str, number: str) -> None:
    row = income_account(aid, name, STAMP)
    row["AcctNum"] = number
    qbo.emu.rows["Account"][aid] = row


def test_a_new_late_fee_item_books_to_the_rules_account(qbo: Session) -> None:
    _add_income(qbo, "77", "Late fee income", "4300")
    connector = qbo.open()
    invoice = next(i for i in connector.fetch_open_invoices().invoices
                   if i.is_open and not i.disputed)
    connector.add_late_fee(invoice, Money(amount=Decimal(5), currency=invoice.currency),
                           "Late fee", key="arfee-account-1", mode=FeeMode.INVOICE,
                           account="4300")
    [item] = [i for i in qbo.emu.rows["Item"].values() if i["Name"] == "Late fee"]
    assert item["IncomeAccountRef"]["value"] == "77"
    assert fee_account_problems(connector, ["4300", None, "late FEE income"]) == []


def test_a_rule_naming_another_account_than_the_items_is_refused(qbo: Session) -> None:
    _add_income(qbo, "77", "Late fee income", "4300")
    connector = qbo.open()
    connector.fee_item()  # made with the default: the first Income account ("Services")
    invoice = next(i for i in connector.fetch_open_invoices().invoices
                   if i.is_open and not i.disputed)
    with pytest.raises(PlatformValidationError) as err:
        connector.add_late_fee(invoice, Money(amount=Decimal(5), currency=invoice.currency),
                               "Late fee", key="arfee-account-2", mode=FeeMode.LINE,
                               account="Late fee income")
    assert "'Late fee' item books to Services" in str(err.value)
    assert "Late fee income (4300)" in str(err.value)
    assert to_decimal(qbo.emu.invoice(invoice.id)["TotalAmt"]) == invoice.total  # unchanged
    [two] = fee_account_problems(connector, ["4300", "Services"])
    assert "one 'Late fee' item" in two and "one account" in two
    [unknown] = fee_account_problems(connector, ["Nonexistent", "Services"])
    assert "'Nonexistent' is not an active Income account" in unknown
    assert "Services, id 1" in unknown  # what the company has instead
    [elsewhere] = fee_account_problems(connector, ["4300"])
    assert "books to Services" in elsewhere and "Late fee income (4300)" in elsewhere
    assert fee_account_problems(connector, [None, "Services"]) == []
