"""Issue 21 through run_tenant: a go-live date in the future holds every write until that date
(random books and days), and the company's dates are counted in its own time zone
(Pacific/Auckland, Pacific/Kiritimati at UTC+14, America/Adak at UTC-10)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sync.fakes import FakeConnector, FakePlatform, FaultPlan
from sync.harness import CIPHER

from ar_sync.domain.models import EntryState, Invoice, LedgerEntry
from ar_sync.rules.policy import parse_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.company_rules import company_today
from ar_sync.sync.connector import Connection
from ar_sync.sync.rules_diff import history_before
from ar_sync.sync.run import run_tenant

START = date(2026, 11, 2)
RULES = """
calendar: {{timezone: {zone}, send_on: any_day}}
journey: {{fee_notice: agreed}}
reminders:
  - {{name: heads-up, days: -3}}
  - {{name: overdue-1, days: 1, channel: platform}}
  - {{name: final, days: 20, tone: final, channel: platform}}
late_fees:
  - {{name: fee, kind: fixed, amount: 20, every: once, backfill: all}}
escalations:
  - {{name: agency, when: {{days_overdue: 5}}, to: {{agency: A}}}}
"""


def _invoice(n: int, overdue: int) -> Invoice:
    due = START - timedelta(days=overdue)
    return Invoice(platform="fake", tenant="fake:1", id=f"i{n}", number=f"INV-{n}",
                   customer_id=f"c{n % 3}", customer_name=f"C{n % 3}",
                   customer_email=f"c{n % 3}@example.com", issue_date=due, due_date=due,
                   currency="USD", total=Decimal(500), balance=Decimal(500),
                   updated_at=datetime(2026, 10, 1, tzinfo=UTC))


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(overdue=st.lists(st.integers(-10, 150), min_size=1, max_size=6),
       wait=st.integers(1, 20), zone=st.sampled_from(["UTC", "Pacific/Auckland",
                                                      "Pacific/Kiritimati", "America/Adak"]))
def test_a_go_live_date_in_the_future_writes_nothing_before_it(
        tmp_path_factory: object, overdue: list[int], wait: int, zone: str) -> None:
    """Was: `go-live --date 2026-12-20` went live at once for all but fees (318 actions)."""
    path = tmp_path_factory.mktemp("golive") / "ar.db"  # type: ignore[attr-defined]
    store = SQLiteStore(path, cipher=CIPHER)
    go_live = START + timedelta(days=wait)
    conn = Connection(id="fake:1", platform="fake", external_id="1", name="Fake",
                      go_live=go_live, created_at=datetime(2026, 10, 1, tzinfo=UTC))
    store.save_connection(conn)
    state = FakePlatform(invoices={i.id: i for i in (
        _invoice(n, d) for n, d in enumerate(overdue))})
    policy = parse_policy(RULES.format(zone=zone), "r.yaml")
    tz = ZoneInfo(zone)
    # on past go-live until a stage is due for every draw (an invoice due in 10 days has its
    # heads-up 7 days on): hypothesis found wait=1 with an invoice due in 7 days (nothing due)
    for n in range(max(wait, 8) + 3):
        day = START + timedelta(days=n)
        report = run_tenant(store, conn.id, now=datetime.combine(day, time(12), tzinfo=tz),
                            policy=policy, connector=FakeConnector(
                                state, conn, FaultPlan(rng=random.Random(n))))
        written = state.notes or state.fees or state.emails
        rows = store.history(conn.id)
        if day < go_live:
            assert report.mode == "preview" and report.dry_run
            assert not written and rows == {}, (day, go_live)
    assert state.notes  # from go-live on, the run writes


def _connection(created: datetime) -> Connection:
    return Connection(id="fake:1", platform="fake", external_id="1", name="Fake",
                      created_at=created)


def test_go_live_and_today_are_the_company_s_dates(tmp_path: Path) -> None:
    """23:30 UTC on 30 November: Auckland (UTC+13) and Kiritimati (UTC+14) are on 1 December,
    Adak (UTC-10) on 30 November; a company connected then goes live on its own day."""
    moment = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    conn = _connection(moment)
    expected = {"Pacific/Auckland": date(2026, 12, 1), "Pacific/Kiritimati": date(2026, 12, 1),
                "America/Adak": date(2026, 11, 30), "UTC": date(2026, 11, 30)}
    for zone, day in expected.items():
        assert conn.live_from(ZoneInfo(zone)) == day
        store = SQLiteStore(tmp_path / f"{zone.replace('/', '-')}.db", cipher=CIPHER)
        store.save_connection(conn)
        store.apply_rules(conn.id, RULES.format(zone=zone), source="r.yaml", now=moment)
        assert company_today(store, conn, moment) == day
    # Kiritimati is a day ahead of UTC most of the day: 10:30 UTC is already 00:30 tomorrow
    early = datetime(2026, 11, 30, 10, 30, tzinfo=UTC)
    assert _connection(early).live_from(ZoneInfo("Pacific/Kiritimati")) == date(2026, 12, 1)
    # and Adak behind: 09:30 UTC on 1 December is still 30 November there
    late = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert _connection(late).live_from(ZoneInfo("America/Adak")) == date(2026, 11, 30)


def test_a_backtest_starts_at_the_company_s_midnight() -> None:
    """`rules diff --since 2026-12-01` in Auckland replays from Auckland's midnight: a row
    written at 10:00 UTC on 30 November (23:00 there) was in the ledger that morning, one
    written at 12:00 UTC (01:00 on 1 December there) was not."""
    def row(at: datetime) -> LedgerEntry:
        return LedgerEntry(key=f"k{at.hour}", tenant="t", invoice_id="i", kind="note",
                           rule="r", occurrence="once", state=EntryState.DONE,
                           due_on=at.date(), updated_at=at)
    before = row(datetime(2026, 11, 30, 10, 0, tzinfo=UTC))  # 23:00 NZDT, 30 Nov
    after = row(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))  # 01:00 NZDT, 1 Dec
    kept = history_before({"i": [before, after]}, date(2026, 12, 1), ZoneInfo(
        "Pacific/Auckland"))
    assert [e.key for e in kept["i"]] == ["k10"]
    # in UTC both were written before 1 December
    assert len(history_before({"i": [before, after]}, date(2026, 12, 1))["i"]) == 2
