"""Properties of the report over generated invoices and ledgers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ar_sync.domain.models import ActionKind, EntryState, Invoice, InvoiceStatus, LedgerEntry
from ar_sync.domain.money import quantum
from ar_sync.report.figures import BUCKETS, RiskLevel, aging, build_report, customer_risks

AS_OF = date(2026, 6, 30)
CURRENCIES = ("USD", "EUR", "JPY", "BHD")


@st.composite
def invoices(draw: st.DrawFn, *, on_time_customer: str | None = None) -> Invoice:
    currency = draw(st.sampled_from(CURRENCIES))
    total = draw(st.integers(1, 10**7)) * quantum(currency)
    issued = AS_OF - timedelta(days=draw(st.integers(-10, 400)))
    due = issued + timedelta(days=draw(st.integers(0, 60)))
    status = draw(st.sampled_from(list(InvoiceStatus)))
    customer = on_time_customer or draw(st.sampled_from(["c1", "c2", "c3"]))
    paid_at = None
    if status == InvoiceStatus.PAID:
        late = draw(st.integers(-30, 0) if on_time_customer else st.integers(-30, 200))
        paid_at = draw(st.none()) if draw(st.booleans()) else due + timedelta(days=late)
        balance = Decimal(0)
    else:
        balance = draw(st.integers(0, int(total / quantum(currency)))) * quantum(currency)
    if on_time_customer and status == InvoiceStatus.OPEN and due < AS_OF:
        due = AS_OF + timedelta(days=draw(st.integers(0, 30)))  # never overdue
    number = draw(st.integers(1, 10**6))
    return Invoice(platform="p", tenant="t", id=f"i{number}", number=str(number),
                   customer_id=customer, customer_name=f"Customer {customer}",
                   issue_date=issued, due_date=due, currency=currency, total=total,
                   balance=balance, status=status, paid_at=paid_at,
                   updated_at=datetime(2026, 6, 1, tzinfo=UTC), disputed=draw(st.booleans()))


@st.composite
def ledgers(draw: st.DrawFn, ids: list[str]) -> dict[str, list[LedgerEntry]]:
    out: dict[str, list[LedgerEntry]] = {}
    for n in range(draw(st.integers(0, 12))):
        if not ids:
            break
        invoice_id = draw(st.sampled_from(ids))
        day = AS_OF - timedelta(days=draw(st.integers(-5, 300)))
        out.setdefault(invoice_id, []).append(LedgerEntry(
            key=f"k{n}", tenant="t", invoice_id=invoice_id,
            kind=draw(st.sampled_from(list(ActionKind))), rule="r", occurrence="once",
            state=draw(st.sampled_from(list(EntryState))), due_on=day,
            updated_at=datetime.combine(day, time(8), tzinfo=UTC)))
    return out


def _dedup(invs: list[Invoice]) -> list[Invoice]:
    return list({i.id: i for i in invs}.values())


@settings(max_examples=150, deadline=None)
@given(st.lists(invoices(), max_size=30).map(_dedup))
def test_bucket_totals_equal_open_balances_per_currency(invs: list[Invoice]) -> None:
    rows = {r.currency: r for r in aging(invs, AS_OF)}
    expected: dict[str, Decimal] = {}
    for i in invs:
        if i.is_open and i.issue_date <= AS_OF:
            expected[i.currency] = expected.get(i.currency, Decimal(0)) + i.balance
    assert {c: r.total for c, r in rows.items()} == expected
    for row in rows.values():
        assert len(row.buckets) == len(BUCKETS) and all(b >= 0 for b in row.buckets)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_score_within_bounds_and_report_serialises(data: st.DataObject) -> None:
    invs = _dedup(data.draw(st.lists(invoices(), max_size=30)))
    history = data.draw(ledgers([i.id for i in invs]))
    report = build_report(invs, history, as_of=AS_OF)
    for risk in report.customers:
        assert 0 <= risk.score <= 100
        assert risk.reasons
    json.dumps(report.to_dict())  # everything JSON-ready (Decimals as strings)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_customer_who_always_pays_on_time_is_never_high(data: st.DataObject) -> None:
    punctual = _dedup(data.draw(st.lists(invoices(on_time_customer="good"), min_size=1,
                                         max_size=15)))
    others = _dedup(data.draw(st.lists(invoices(), max_size=15)))
    invs = _dedup(punctual + [o for o in others if o.id not in {p.id for p in punctual}])
    history = data.draw(ledgers([i.id for i in invs]))
    good = {r.customer_id: r for r in customer_risks(invs, history, AS_OF)}.get("good")
    if good is not None:  # all of its invoices may have been drafts or issued later
        assert good.level != RiskLevel.HIGH
        assert good.reminders_ignored == 0 and good.oldest_overdue_days == 0
