"""Paid invoices are kept (from incremental fetches) so DSO, days late and trend are real.

Hand-computed fixture, one customer, USD, as of 2026-11-16 (DSO window: issued after
2026-08-18):
  A  issued 09-01, due 10-01, 1000.00, still open         -> 46 days late so far
  B  issued 09-15, due 10-15,  500.00, paid 10-25 (Xero gives the day)        -> 10 late
  C  issued 10-01, due 10-31,  300.00, paid; no payment day (QuickBooks): the platform's
     last change, 11-10, stands in                                            -> 10 late
  D  issued 06-01, due 07-01,  200.00, paid 07-01: outside the window, on time -> 0
DSO = open 1000 / sales in window (1000 + 500 + 300) x 90 = 50.0 days (90.0 if paid
invoices were forgotten). Trend: due-date order D, A, B, C; newer half B, C (avg 10, all
paid) against older half D, A (avg 23): 13 days sooner -> improving (n/a without them).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.domain.models import Invoice, InvoiceStatus
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection

TENANT = "xero:t1"


def _inv(n: str, issued: str, due: str, total: str, **extra: object) -> Invoice:
    fields: dict[str, object] = dict(
        platform="xero", tenant=TENANT, id=f"id-{n}", number=f"INV-{n}", customer_id="c1",
        customer_name="Acme", issue_date=date.fromisoformat(f"2026-{issued}"),
        due_date=date.fromisoformat(f"2026-{due}"), currency="USD", total=Decimal(total),
        balance=Decimal(total), updated_at=datetime(2026, 9, 1, tzinfo=UTC))
    fields.update(extra)
    return Invoice(**fields)  # type: ignore[arg-type]


def _paid(inv: Invoice, changed: str, paid_at: str | None) -> Invoice:
    return inv.model_copy(update={
        "status": InvoiceStatus.PAID, "balance": Decimal(0),
        "updated_at": datetime.fromisoformat(f"2026-{changed}T09:00:00+00:00"),
        "paid_at": date.fromisoformat(f"2026-{paid_at}") if paid_at else None})


def test_report_keeps_paid_invoices_hand_computed(tmp_path: Path) -> None:
    db = tmp_path / "ar.db"
    store = SQLiteStore(db)
    store.save_connection(Connection(id=TENANT, platform="xero", external_id="t1",
                                     name="Demo"))
    a, b = _inv("A", "09-01", "10-01", "1000.00"), _inv("B", "09-15", "10-15", "500.00")
    c, d = _inv("C", "10-01", "10-31", "300.00"), _inv("D", "06-01", "07-01", "200.00")
    store.save_invoices(TENANT, [a, b, c, d], replace_all=True)  # a full fetch: all open
    # incremental fetches: paid since the last run
    store.save_invoices(TENANT, [_paid(d, "07-01", "07-01")], replace_all=False)
    store.save_invoices(TENANT, [_paid(b, "10-25", "10-25"), _paid(c, "11-10", None)],
                        replace_all=False)
    store.save_invoices(TENANT, [a], replace_all=True)  # the daily full read: open only
    assert [i.id for i in store.open_invoices(TENANT)] == ["id-A"]
    assert {i.id: i.paid_at for i in store.paid_invoices(TENANT)} == {
        "id-B": date(2026, 10, 25), "id-C": date(2026, 11, 10), "id-D": date(2026, 7, 1)}

    result = CliRunner().invoke(app, ["report", "--format", "json", "--today", "2026-11-16",
                                      "--db", str(db)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)[0]
    assert report["paid_invoices"] == 3 and report["open_invoices"] == 1
    (dso,) = report["dso"]
    assert (dso["receivables"], dso["credit_sales"], dso["days"]) == ("1000.00", "1800.00",
                                                                      "50.0")
    (customer,) = report["customers"]
    assert customer["scored_invoices"] == 4
    assert customer["avg_days_late"] == "16.5"  # (46 + 10 + 10 + 0) / 4
    assert customer["recent_avg_days_late"] == "10.0"
    assert customer["older_avg_days_late"] == "23.0"
    assert customer["trend"] == "improving"
    assert report["notes"] == []


def test_paid_invoices_age_out_after_retention(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ar.db")
    old = _paid(_inv("O", "01-01", "02-01", "10.00"), "02-01", "02-01")
    store.save_invoices(TENANT, [old], replace_all=False)
    assert len(store.paid_invoices(TENANT)) == 1
    later = _inv("N", "06-01", "07-01", "10.00").model_copy(
        update={"updated_at": datetime(2028, 3, 1, tzinfo=UTC)})
    store.save_invoices(TENANT, [later], replace_all=False)  # 2 years + a month later
    assert store.paid_invoices(TENANT) == []
