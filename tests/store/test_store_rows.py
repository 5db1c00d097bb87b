"""Rows read back without re-validation equal the validated models that were written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ar_sync.domain.models import AddNote, Invoice, InvoiceStatus, SkipStage
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore

CIPHER = TokenCipher(TokenCipher.generate_key())

amounts = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False)
days = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1))
texts = st.text(min_size=1, max_size=20)


@st.composite
def invoices(draw: st.DrawFn) -> Invoice:
    total = draw(amounts)
    status = draw(st.sampled_from([InvoiceStatus.OPEN, InvoiceStatus.PAID]))
    payments = draw(st.none() | st.just(((date(2026, 1, 2), Decimal("1.50")),)))
    return Invoice(
        platform="xero", tenant="xero:t", id=draw(texts), number=draw(texts),
        customer_id=draw(texts), customer_name=draw(texts),
        customer_email=draw(st.none() | st.just("a@example.com")),
        issue_date=draw(days), due_date=draw(days), currency=draw(st.sampled_from(
            ["USD", "JPY", "BHD", "EUR"])), total=total,
        balance=total if status == InvoiceStatus.OPEN else Decimal(1),
        status=status, version=draw(st.none() | texts),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=draw(
            st.integers(0, 10**8))),
        late_fees_charged=draw(amounts), disputed=draw(st.booleans()),
        payment_link=draw(st.none() | st.just("https://pay.example/x")),
        paid_at=draw(st.none() | days), payments=payments)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(invoices(), max_size=8, unique_by=lambda i: i.id))
def test_snapshot_reads_back_equal(tmp_path: Path, written: list[Invoice]) -> None:
    store = SQLiteStore(":memory:", cipher=CIPHER)
    store.save_invoices("xero:t", written, replace_all=True)
    read = {i.id: i for i in store.open_invoices("xero:t")}
    expected = {i.id: i for i in written if i.is_open}
    assert read == expected
    for key, invoice in read.items():  # same types, not only equal values
        assert invoice.model_dump() == expected[key].model_dump()
        assert type(invoice.status) is InvoiceStatus and isinstance(invoice.total, Decimal)


def test_ledger_entries_read_back_typed(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db", cipher=CIPHER)
    now = datetime(2026, 11, 16, 9, tzinfo=UTC)
    base = dict(tenant="xero:t", platform="xero", invoice_id="i1", invoice_number="N1",
                due_on=date(2026, 11, 16), reason="why")
    note = AddNote(key="k1", rule="r", occurrence="once", text="hello", **base)
    skip = SkipStage(key="k2", rule="s", occurrence="once", superseded_by="r", **base)
    claim = store.claim(note, owner="me", now=now, lease_seconds=60)
    assert claim.entry is not None and claim.entry.lease_until == now + timedelta(seconds=60)
    assert store.record_skips([skip, skip], now=now) == [True, False]
    entries = store.history("xero:t")["i1"]
    assert {e.key for e in entries} == {"k1", "k2"}
    for e in entries:
        assert e.model_dump() == type(e).model_validate(e.model_dump()).model_dump()
        assert e.due_on == date(2026, 11, 16) and e.updated_at == now
