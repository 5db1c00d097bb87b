"""Reading through the connector against the emulator: full, paged, incremental, malformed."""

from __future__ import annotations

from decimal import Decimal

from qbo_helpers import Session, connect

from ar_sync.domain.models import InvoiceStatus
from ar_sync_emulators.books import DemoCompany, demo_company
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_quickbooks import QuickBooksPlugin


def test_full_fetch_matches_the_demo_company(qbo: Session, company: DemoCompany) -> None:
    result = qbo.open().fetch_open_invoices()
    expected = {inv.number: inv for inv in company.invoices if inv.status == "open"}
    got = {inv.number: inv for inv in result.invoices}
    assert set(got) == set(expected)
    for number, inv in got.items():
        demo = expected[number]
        assert inv.balance == demo.balance and inv.total == demo.total
        assert inv.currency == demo.currency and inv.due_date == demo.due_date
        assert inv.status == InvoiceStatus.OPEN
        assert inv.customer_email == company.customer(demo.customer_id).email
        assert inv.disputed == demo.disputed
    assert sum(inv.disputed for inv in got.values()) == 1
    assert result.full and result.warnings == []
    assert result.checkpoint is not None and result.checkpoint.tzinfo is not None


def test_emails_are_looked_up_in_bulk_only_for_invoices_without_billemail(
        qbo: Session, company: DemoCompany) -> None:
    result = qbo.open().fetch_open_invoices()
    calls = qbo.emu.counters.calls
    part_paid = any(i.payments for i in result.invoices)
    assert calls["POST /v3/company/{realm}/query"] + calls.get(
        "POST /v3/company/{realm}/batch", 0) == qbo.budget.calls
    no_email = [c for c in company.customers if c.email is None]
    # one invoice page + at most one customer query + one /batch of payment queries,
    # whatever the number of invoices
    assert qbo.budget.calls == 1 + bool(no_email) + part_paid


def test_pages_of_1000_for_a_large_company() -> None:
    big = demo_company(seed=3, customers=60, invoices=2600)
    emu = QuickBooksEmulator().seed(big)
    plugin = QuickBooksPlugin(sleep=lambda s: None)
    with emu.serve():
        settings = emu.settings()
        store, connection = connect(emu, plugin, settings)
        emu.counters.reset()
        from ar_sync.sync.budget import CallBudget

        budget = CallBudget()
        result = plugin.open(settings, connection, store, budget).fetch_open_invoices()
    open_count = sum(1 for inv in big.invoices if inv.status == "open")
    assert len(result.invoices) == open_count
    assert len({inv.id for inv in result.invoices}) == open_count
    pages = budget.by_endpoint["POST query"] - (1 if any(c.email is None
                                                          for c in big.customers) else 0)
    assert pages == open_count // 1000 + 1


def test_incremental_returns_only_changes_including_paid_ones(qbo: Session) -> None:
    connector = qbo.open()
    first = connector.fetch_open_invoices()
    assert first.checkpoint is not None
    calls_before = qbo.budget.calls
    nothing = qbo.open().fetch_open_invoices(since=first.checkpoint)
    assert nothing.invoices == [] and not nothing.full
    assert qbo.budget.calls - calls_before == 1  # a no-change incremental run: one call
    victim, partly = first.invoices[0], first.invoices[1]
    qbo.emu.pay(victim.id, victim.balance)
    qbo.emu.pay(partly.id, Decimal("1"))
    changed = qbo.open().fetch_open_invoices(since=first.checkpoint)
    by_id = {inv.id: inv for inv in changed.invoices}
    assert set(by_id) == {victim.id, partly.id}
    assert by_id[victim.id].status == InvoiceStatus.PAID and by_id[victim.id].balance == 0
    assert by_id[partly.id].balance == partly.balance - 1
    assert by_id[partly.id].version != partly.version


def test_voided_invoice_is_reported_voided(qbo: Session, company: DemoCompany) -> None:
    voided = next(inv for inv in company.invoices if inv.status == "voided")
    raw = qbo.emu.invoice_by_number(voided.number)
    got = qbo.open().get_invoice(raw["Id"])
    assert got is not None and got.status == InvoiceStatus.VOIDED and got.total == 0


def test_malformed_invoices_are_skipped_with_a_warning_naming_them(qbo: Session) -> None:
    first = qbo.open().fetch_open_invoices()
    a, b = (inv.id for inv in first.invoices[:2])
    qbo.emu.invoice(a)["DueDate"] = ""
    qbo.emu.invoice(b)["CurrencyRef"] = {"value": "XYZ"}
    result = qbo.open().fetch_open_invoices()
    ids = {inv.id for inv in result.invoices}
    assert not ids & {a, b}
    assert len(result.invoices) == len(first.invoices) - 2
    numbers = {qbo.emu.invoice(x)["DocNumber"] for x in (a, b)}
    assert all(any(n in w for w in result.warnings) for n in numbers)
    assert any("DueDate" in w for w in result.warnings)
    assert any("currency" in w for w in result.warnings)


def test_negative_balance_is_skipped(qbo: Session) -> None:
    first = qbo.open().fetch_open_invoices()
    target = first.invoices[5]
    qbo.emu.edit(target.id, DocNumber="NEG-1")
    qbo.emu.invoice(target.id)["Balance"] = -12.5
    result = qbo.open().fetch_open_invoices(since=first.checkpoint)
    assert target.id not in {inv.id for inv in result.invoices}
    assert any("NEG-1" in w and "negative balance" in w for w in result.warnings)
