"""A fee's income account in Xero: the rule's `account:` on the fee line, the fee invoice and
the waiver's credit note (single writes and batches), the default "200" otherwise, and the
chart-of-accounts check (GET /Accounts) naming what is missing."""

from __future__ import annotations

from decimal import Decimal

from xero_support import Session

from ar_sync.domain.models import ActionKind, ApplyLateFee, FeeMode, Invoice, Money, action_key
from ar_sync.sync.connector import BatchWrite, fee_account_problems
from ar_sync_emulators.xero.server import XeroEmulator
from ar_sync_emulators.xero.tax import Account


def _open_unpaid(emu: XeroEmulator, session: Session, count: int) -> list[Invoice]:
    ids = [i.id for i in emu.org().invoices.values()
           if i.status == "AUTHORISED" and not i.payments and not i.credits][:count]
    fresh = session.connector.get_invoices(ids)
    return [v for v in fresh.values() if v is not None]


def _fee(inv: Invoice, occurrence: str, account: str | None,
         mode: FeeMode = FeeMode.LINE) -> ApplyLateFee:
    return ApplyLateFee(
        key=action_key("xero:t", "xero", inv.id, ActionKind.LATE_FEE, "late", occurrence),
        tenant="xero:t", platform="xero", invoice_id=inv.id, invoice_number=inv.number,
        rule="late", occurrence=occurrence, due_on=inv.due_date, reason="late",
        amount=Money(amount=Decimal(5), currency=inv.currency), label="Late fee", mode=mode,
        account=account)


def _fee_codes(emu: XeroEmulator) -> list[str]:
    return sorted(line.account_code for inv in emu.org().invoices.values()
                  for line in inv.lines if "(ref. AR-" in line.description)


def test_a_rules_account_goes_on_every_fee_it_writes(emu: XeroEmulator,
                                                     session: Session) -> None:
    a, b, c, d = _open_unpaid(emu, session, 4)
    connector = session.connector
    for inv, fee in ((a, _fee(a, "1", "270")), (b, _fee(b, "1", "270", FeeMode.INVOICE))):
        connector.add_late_fee(inv, fee.amount, fee.label, key=fee.key, mode=fee.mode,
                               account=fee.account)
    results = connector.write_batch([BatchWrite(_fee(c, "1", "270"), c),
                                     BatchWrite(_fee(d, "1", None), d)])
    assert all(r.ref for r in results)
    assert _fee_codes(emu) == ["200", "270", "270", "270"]  # the default where none is named
    connector.waive_fee(a, "k", Money(amount=Decimal(5), currency=a.currency), "Late fee",
                        key="arwaive-account", account="270")
    notes = emu.org().credit_notes.values()
    assert [line.account_code for n in notes for line in n.lines] == ["270"]


def test_the_chart_of_accounts_check_names_what_is_missing(emu: XeroEmulator,
                                                           session: Session) -> None:
    connector = session.connector
    assert fee_account_problems(connector, [None, "270"]) == []
    assert fee_account_problems(connector, []) == []
    emu.org().tax.accounts["270"].status = "ARCHIVED"
    emu.org().tax.accounts["999"] = Account("999", "Bank fees", "NONE", "EXPENSE")
    problems = fee_account_problems(connector, ["270", "999", "4711", None])
    assert len(problems) == 3 and all("fee account" in p for p in problems)
    assert "'270'" in problems[0] and "archived" in problems[0]
    assert "'4711'" in problems[1] and "not in this Xero organisation" in problems[1]
    assert "'999'" in problems[2] and "not revenue" in problems[2]
    assert "200 Sales" in problems[-1] and "account:" in problems[-1]  # what to use instead
    del emu.org().tax.accounts["200"]
    [missing] = fee_account_problems(connector, [None])
    assert "'200' (the default)" in missing
