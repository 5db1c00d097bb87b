"""Invoice.payments from Xero: the payments Xero lists on each invoice (`Payments`: Date and
Amount, in the same page as the invoice: no extra call), so interest accrues on the balance as
it was each day, not on today's balance."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from xero_support import FakeClock, Session

from ar_sync.domain.models import ApplyLateFee, Invoice, Money
from ar_sync.planner.plan import plan
from ar_sync.rules.policy import parse_policy
from ar_sync_emulators.xero.model import XInvoice
from ar_sync_emulators.xero.server import XeroEmulator

INTEREST = parse_policy("""
journey: {fee_notice: agreed}  # the interest's terms taken as agreed: no announcement needed
late_fees:
  - {name: interest, kind: interest, rate: 12, every: month, mode: invoice, backfill: all}
""", "interest.yaml")


def _overdue_unpaid(emu: XeroEmulator, clock: FakeClock, count: int) -> list[XInvoice]:
    today = clock().date()
    return [i for i in emu.org().invoices.values()
            if i.status == "AUTHORISED" and not i.payments and not i.credits
            and "#disputed" not in i.reference.lower()
            and i.due_date is not None and i.due_date < today - timedelta(days=70)][:count]


def _interest(invoice: Invoice, today: object) -> Decimal:
    actions = plan([invoice], {}, INTEREST, today)  # type: ignore[arg-type]
    return sum((a.amount.amount for a in actions
                if isinstance(a, ApplyLateFee) and a.invoice_id == invoice.id), Decimal(0))


def _pay_on(emu: XeroEmulator, clock: FakeClock, inv: XInvoice, amount: Decimal,
            days_ago: int) -> None:
    """A payment Xero dates `days_ago` before today (as if entered then)."""
    clock.advance(-days_ago * 86400)
    try:
        emu.pay(inv.id, amount)
    finally:
        clock.advance(days_ago * 86400)


def test_payments_are_read_from_the_invoice_listing_at_no_extra_call(
        emu: XeroEmulator, clock: FakeClock, session: Session) -> None:
    targets = _overdue_unpaid(emu, clock, 5)
    expected: dict[str, tuple[object, ...]] = {}
    for inv in targets:
        first = (inv.total * Decimal("0.3")).quantize(Decimal("0.01"))
        _pay_on(emu, clock, inv, first, 40)
        _pay_on(emu, clock, inv, Decimal("5.00"), 12)
        today = clock().date()
        expected[inv.id] = tuple((p.on, p.amount) for p in emu.invoice(inv.id).payments)
        assert [d for d, _ in expected[inv.id]] == [today - timedelta(days=40),
                                                    today - timedelta(days=12)]
    emu.counters.reset()
    result = session.connector.fetch_open_invoices()
    by_id = {i.id: i for i in result.invoices}
    for iid, payments in expected.items():
        assert by_id[iid].payments == payments
    assert sum(emu.counters.calls.values()) == 1  # the one page, payments included
    unpaid = [i for i in result.invoices if i.balance == i.total]
    assert unpaid and all(i.payments == () for i in unpaid)


def test_interest_accrues_on_the_balance_as_it_was_each_day(
        emu: XeroEmulator, clock: FakeClock, session: Session) -> None:
    inv = _overdue_unpaid(emu, clock, 1)[0]
    _pay_on(emu, clock, inv, (inv.total / 2).quantize(Decimal("0.01")), 30)
    half = emu.invoice(inv.id).payments[0].amount  # as Xero rounded it to the currency
    invoice = next(i for i in session.connector.fetch_open_invoices().invoices
                   if i.id == inv.id)
    today = clock().date()
    charged = _interest(invoice, today)
    assert charged > _interest(invoice.model_copy(update={"payments": None}), today) > 0
    assert charged == _interest(invoice.model_copy(update={
        "payments": ((today - timedelta(days=30), half),)}), today)


def test_a_waiver_credit_note_is_not_counted_as_a_payment(
        emu: XeroEmulator, clock: FakeClock, session: Session) -> None:
    inv = _overdue_unpaid(emu, clock, 1)[0]
    invoice = next(i for i in session.connector.fetch_open_invoices().invoices
                   if i.id == inv.id)
    session.connector.waive_fee(invoice, "arfee", Money.of("5.00", invoice.currency),
                                "Late fee", key="arwaiver-payments-x")
    assert emu.invoice(inv.id).credits
    again = next(i for i in session.connector.fetch_open_invoices().invoices
                 if i.id == inv.id)
    assert again.payments == ()
