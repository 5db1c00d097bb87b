"""Re-planning after the platform reflects our own writes yields nothing new.

The pure idempotency property records actions in the ledger but leaves the invoice as it was;
here the invoice also changes the way the platforms change it when a fee line is added (its
total, balance and late fees grow). A cap computed on the grown total would find room for one
more fee on every run; this property caught exactly that.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ar_sync.domain.models import ApplyLateFee, FeeMode, Invoice
from ar_sync.planner.plan import plan
from ar_sync.rules.policy import load_policy, parse_policy

from .conftest import PLATFORM_RULES, TODAY, make_invoice, record

POLICIES = {name: load_policy(name) for name in ("default", "firm", "uk-late-payment")}


def _apply_fee_lines(invoice: Invoice, fees: list[ApplyLateFee]) -> Invoice:
    added = sum((f.amount.amount for f in fees if f.mode == FeeMode.LINE), Decimal(0))
    return invoice.model_copy(update={
        "total": invoice.total + added, "balance": invoice.balance + added,
        "late_fees_charged": invoice.late_fees_charged + added})


@settings(max_examples=200, deadline=None)
@given(
    policy=st.sampled_from(sorted(POLICIES)),
    days_overdue=st.integers(min_value=-5, max_value=200),
    total=st.decimals(min_value=Decimal("1"), max_value=Decimal("50000"), places=2),
    paid_share=st.sampled_from([Decimal(0), Decimal("0.25"), Decimal("0.5")]),
    currency=st.sampled_from(["USD", "GBP", "JPY", "EUR"]),
)
def test_second_run_after_writes_plans_nothing(policy: str, days_overdue: int, total: Decimal,
                                               paid_share: Decimal, currency: str) -> None:
    if currency == "JPY":
        total = total.quantize(Decimal(1))
    balance = (total * (1 - paid_share)).quantize(Decimal(1) if currency == "JPY"
                                                  else Decimal("0.01"))
    invoice = make_invoice(days_overdue=days_overdue, total=total, balance=balance,
                           currency=currency)
    rules = POLICIES[policy]
    first = plan([invoice], {}, rules, TODAY)
    history = record({}, first)
    after = _apply_fee_lines(invoice, [a for a in first if isinstance(a, ApplyLateFee)])
    assert plan([after], history, rules, TODAY) == []


def test_no_platform_email_for_a_customer_without_an_address() -> None:
    rules = parse_policy(PLATFORM_RULES, "platform.yaml")
    with_address = make_invoice(days_overdue=8)
    without = make_invoice(days_overdue=8, customer_email=None)
    kinds = {str(a.kind) for a in plan([with_address], {}, rules, TODAY)}
    assert "reminder_email" in kinds and "note" in kinds
    kinds = {str(a.kind) for a in plan([without], {}, rules, TODAY)}
    assert "reminder_email" not in kinds and "note" in kinds
