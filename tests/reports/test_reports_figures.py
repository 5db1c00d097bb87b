"""Report figures against numbers worked out by hand on the fixture in reports_helpers."""

from __future__ import annotations

import json
from decimal import Decimal as D

from reports_helpers import AS_OF, entry, fixture_history, fixture_invoices, inv

from ar_sync.domain.models import ActionKind, InvoiceStatus
from ar_sync.report.figures import (
    RiskLevel,
    Trend,
    aging,
    bucket_of,
    build_report,
    customer_risks,
    dso,
    reminders_ignored,
    risk_levels,
)


def test_bucket_edges() -> None:
    assert [bucket_of(d) for d in (-5, 0, 1, 30, 31, 60, 61, 90, 91)] == [
        "current", "current", "1-30", "1-30", "31-60", "31-60", "61-90", "61-90", "90+"]


def test_aging_by_hand() -> None:
    rows = {r.currency: r for r in aging(fixture_invoices(), AS_OF)}
    # days past due on 2026-03-31:
    #   A2 due 03-03: 28 -> 1-30 | A3 due 04-14: -14 -> current | G1 due 2025-12-01:
    #   30 (Dec) + 31 (Jan) + 28 (Feb) + 31 (Mar) = 120 -> 90+ (balance 1500.00 of 2000.00)
    #   G2 due 02-09: 19 (rest of Feb) + 31 = 50 -> 31-60 | I1 due 02-19: 9 + 31 = 40 -> 31-60
    #   I2 due 2025-12-31: 31 + 28 + 31 = 90 -> 61-90 | paid, voided, draft: not in aging
    assert set(rows) == {"EUR", "JPY", "USD"}
    assert rows["USD"].by_bucket() == {"current": D("300.00"), "1-30": D("500.00"),
                                       "31-60": D(0), "61-90": D(0), "90+": D("1500.00")}
    assert rows["USD"].total == D("2300.00")  # 300 + 500 + 1500
    assert rows["USD"].invoices == 3
    assert rows["EUR"].by_bucket()["31-60"] == D("800.00") and rows["EUR"].total == D("800.00")
    assert rows["JPY"].by_bucket() == {"current": D(0), "1-30": D(0), "31-60": D(50000),
                                       "61-90": D(20000), "90+": D(0)}
    assert rows["JPY"].total == D(70000)


def test_dso_by_hand() -> None:
    figures = {f.currency: f for f in dso(fixture_invoices(), AS_OF)}
    # window: issued after 2026-03-31 - 90 days = 2025-12-31
    # USD sales: A1 1000 + A2 500 + A3 300 + U1 250 = 2050 (G1 2025-11-01, U2 2025-12-15 are older)
    # USD DSO = 2300 / 2050 x 90 = 100.9756... -> 101.0
    assert figures["USD"].receivables == D("2300.00")
    assert figures["USD"].credit_sales == D("2050.00")
    assert figures["USD"].days == D("101.0")
    # EUR: 800 / 800 (G2; G3 issued 2025-10-01 is outside) x 90 = 90.0
    assert (figures["EUR"].credit_sales, figures["EUR"].days) == (D("800.00"), D("90.0"))
    # JPY: 70000 / 50000 (I1 only; I2 issued 2025-12-01) x 90 = 126.0
    assert (figures["JPY"].credit_sales, figures["JPY"].days) == (D(50000), D("126.0"))


def test_dso_without_sales_in_window_is_none() -> None:
    old = [inv("X", "C", "Old Co", "2025-01-01", "2025-01-31", "10.00")]
    [figure] = dso(old, AS_OF)
    assert figure.receivables == D("10.00") and figure.days is None


def test_customers_by_hand() -> None:
    risks = {r.customer_id: r for r in customer_risks(fixture_invoices(), fixture_history(), AS_OF)}

    acme = risks["C1"]
    # days late in due-date order: A1 paid 02-10, due 01-31 -> 10; A2 open 28 so far; A3 not due
    # avg (10 + 28) / 2 = 19.0; trend: older [10] vs newer [28]: +18 > 7 -> worsening
    # score: late 19 x 40/60 = 12.67 -> 13; oldest 28 x 25/90 = 7.78 -> 8; worsening 10 = 31
    assert (acme.avg_days_late, acme.trend, acme.older_avg_days_late,
            acme.recent_avg_days_late) == (D("19.0"), Trend.WORSENING, D("10.0"), D("28.0"))
    assert (acme.oldest_overdue_days, acme.reminders_ignored, acme.score, acme.level) == (
        28, 0, 31, RiskLevel.MEDIUM)
    assert acme.open_balance == {"USD": D("800.00")}  # 500 + 300
    assert acme.overdue_balance == {"USD": D("500.00")}

    globex = risks["C2"]
    # due-date order: G3 (paid 30 late), G1 (120 so far), G2 (50 so far): avg 200/3 = 66.7
    # trend: older [30] vs newer [120, 50] = 85.0 -> worsening
    # ignored: G1 stage overdue-1 of 01-05 (note and e-mail: one stage, unpaid 85 days) + G2
    # e-mail 02-12 (unpaid 47 days) = 2; the failed note, the e-mail 3 days ago (grace 7) and
    # the late fee do not count
    # score: late capped 40 + oldest 120 capped 25 + ignored 2 x 5 = 10 + worsening 10 = 85
    assert (globex.avg_days_late, globex.trend, globex.recent_avg_days_late) == (
        D("66.7"), Trend.WORSENING, D("85.0"))
    assert (globex.oldest_overdue_days, globex.reminders_ignored, globex.score, globex.level) == (
        120, 2, 85, RiskLevel.HIGH)
    assert globex.open_balance == {"USD": D("1500.00"), "EUR": D("800.00")}  # never added up
    assert any("ignored 2 reminders" in r for r in globex.reasons)

    initech = risks["C3"]
    # I2 90, I1 40: avg 65.0; older [90] vs newer [40], but I1 is still open (40 is a lower
    # bound) so no improvement can be claimed -> n/a (no points either way)
    # score: late capped 40 + oldest 90 x 25/90 = 25 + disputed 5 = 70 -> high
    assert (initech.avg_days_late, initech.trend, initech.disputed) == (
        D("65.0"), Trend.UNKNOWN, 1)
    assert (initech.score, initech.level) == (70, RiskLevel.HIGH)
    assert "invoice INV-I2 is 90 days overdue (20,000 JPY open)" in initech.reasons

    umbrella = risks["C4"]
    # U2 paid on the due day, U1 early: 0 and 0; the note before the due date is not ignored
    assert (umbrella.avg_days_late, umbrella.trend, umbrella.reminders_ignored) == (
        D("0.0"), Trend.STEADY, 0)
    assert (umbrella.score, umbrella.level, umbrella.reasons) == (0, RiskLevel.LOW,
                                                                  ("pays on time",))


def test_trend_improving_needs_the_newer_invoices_paid() -> None:
    paid = [inv("P1", "C", "Co", "2025-10-01", "2025-10-31", "10.00", paid_at="2025-12-10"),
            inv("P2", "C", "Co", "2025-11-01", "2025-12-01", "10.00", paid_at="2025-12-31"),
            inv("P3", "C", "Co", "2026-01-01", "2026-01-31", "10.00", paid_at="2026-02-03")]
    [risk] = customer_risks(paid, {}, AS_OF)
    # 40, 30, 3 days late: older [40] vs newer [30, 3] = 16.5 -> 23.5 days sooner: improving
    assert (risk.trend, risk.older_avg_days_late, risk.recent_avg_days_late) == (
        Trend.IMPROVING, D("40.0"), D("16.5"))
    # avg 73/3 = 24.3 -> 24.3 x 40/60 = 16.2 -> 16 points, low; improving adds nothing
    assert (risk.avg_days_late, risk.score, risk.level) == (D("24.3"), 16, RiskLevel.LOW)
    still_open = [*paid[:2], inv("P3", "C", "Co", "2026-01-01", "2026-03-25", "10.00")]
    [risk] = customer_risks(still_open, {}, AS_OF)
    assert risk.trend == Trend.UNKNOWN  # 6 days late so far proves nothing yet


def test_order_and_risk_levels() -> None:
    ordered = customer_risks(fixture_invoices(), fixture_history(), AS_OF)
    assert [r.customer_name for r in ordered] == ["Globex", "Initech", "Acme Ltd", "Umbrella"]
    assert risk_levels(fixture_invoices(), fixture_history(), as_of=AS_OF) == {
        "C1": RiskLevel.MEDIUM, "C2": RiskLevel.HIGH, "C3": RiskLevel.HIGH, "C4": RiskLevel.LOW}


def test_reminders_ignored_needs_payment_day_and_grace() -> None:
    paid_unknown = inv("P", "C", "Co", "2026-01-01", "2026-01-31", "10.00", paid_at=None,
                       balance="0", status=InvoiceStatus.PAID)
    note = [entry("P", ActionKind.NOTE, "2026-02-05")]
    assert reminders_ignored(paid_unknown, note, AS_OF) == 0  # payment day unknown
    paid_soon = inv("P", "C", "Co", "2026-01-01", "2026-01-31", "10.00", paid_at="2026-02-11")
    assert reminders_ignored(paid_soon, note, AS_OF) == 0  # paid 6 days after: heard it
    paid_late = inv("P", "C", "Co", "2026-01-01", "2026-01-31", "10.00", paid_at="2026-02-12")
    assert reminders_ignored(paid_late, note, AS_OF) == 1  # 7 days: ignored


def test_report_counts_and_json() -> None:
    report = build_report(fixture_invoices(), fixture_history(), as_of=AS_OF, title="Fixture")
    assert (report.open_invoices, report.paid_invoices) == (6, 4)  # A2 A3 G1 G2 I1 I2 / A1 G3 U1 U2
    assert report.notes == ()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["aging"][2]["buckets"]["90+"] == "1500.00"  # USD, after EUR and JPY
    assert data["dso"][2]["days"] == "101.0"
    assert data["customers"][0]["level"] == "high"
    only_open = build_report([i for i in fixture_invoices() if i.is_open], {}, as_of=AS_OF)
    assert only_open.paid_invoices == 0 and only_open.notes
