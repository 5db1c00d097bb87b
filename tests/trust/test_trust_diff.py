"""`ar-sync rules diff`: a rules change previewed from the stored snapshot and ledger."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.domain.models import Invoice
from ar_sync.rules.policy import parse_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection
from ar_sync.sync.rules_diff import rules_diff

runner = CliRunner()
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CONN = Connection(id="xero:7", platform="xero", external_id="7", created_at=NOW)
# fees as agreed terms (the contract): these tests are about the diff, not announcements
QUIET = ("calendar: {send_on: any_day}\njourney: {fee_notice: agreed}\n"
         "reminders:\n  - {name: overdue, days: 7}\n")
FEES = QUIET + ("late_fees:\n  - {name: late, kind: fixed, amount: {USD: 20, JPY: 2000}, "
                "every: once, grace_days: 30, backfill: all}\n")


def _invoice(n: int, due: date, currency: str = "USD", total: str = "500") -> Invoice:
    return Invoice(platform="xero", tenant=CONN.id, id=f"i{n}", number=f"INV-{n}",
                   customer_id=f"c{n}", customer_name=f"Customer {n}", issue_date=due,
                   due_date=due, currency=currency, total=Decimal(total),
                   balance=Decimal(total), updated_at=NOW)


INVOICES = [_invoice(1, date(2026, 10, 1)), _invoice(2, date(2026, 11, 20)),
            _invoice(3, date(2026, 10, 15), "JPY", "90000")]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ar.db"
    store = SQLiteStore(path)
    store.save_connection(CONN)
    store.save_invoices(CONN.id, INVOICES, replace_all=True)
    store.apply_rules(CONN.id, QUIET, source="quiet.yaml", now=NOW)
    store.close()
    return path


def _rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "new.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _diff_json(db: Path, new: Path, *args: str) -> dict[str, Any]:
    """`ar-sync rules diff NEW ARGS --format json` against the stored rules."""
    out = runner.invoke(app, ["rules", "diff", str(new), *args, "--format", "json",
                              "--db", str(db)])
    assert out.exit_code == 0, out.output
    got: dict[str, Any] = json.loads(out.output)
    return got


def test_a_new_fee_rule_shows_the_fees_it_adds_and_their_money(db: Path, tmp_path: Path) -> None:
    new = _rules_file(tmp_path, FEES)
    got = _diff_json(db, new, "--today", "2026-12-01", "--days", "30")
    assert got["current"].startswith("version 1")
    fees = [r for r in got["rows"] if r["kind"] == "late_fee"]
    # all three invoices pass 30 days overdue within the 30 days simulated
    assert {r["invoice"] for r in fees} == {"INV-1", "INV-2", "INV-3"}
    assert all(r["change"] == "new" for r in fees)
    assert got["difference"] == {"JPY": "2000", "USD": "40.00"}
    assert got["counts"]["gone"] == 0 and got["counts"]["same"] >= 2  # the reminders
    table = runner.invoke(app, ["rules", "diff", str(new), "--today", "2026-12-01",
                                "--db", str(db)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "3 new, 0 gone, 0 changed" in table.output
    assert "USD: fees" in table.output and "JPY: fees" in table.output


def test_the_same_rules_change_nothing(db: Path, tmp_path: Path) -> None:
    got = _diff_json(db, _rules_file(tmp_path, QUIET), "--today", "2026-12-01")
    assert got["rows"] == [] and got["difference"] == {}
    assert got["counts"] == {"new": 0, "gone": 0, "changed": 0, "same": got["counts"]["same"],
                             "not repeated": 0}


def test_backtest_replays_from_the_ledger_as_it_was(db: Path, tmp_path: Path) -> None:
    got = _diff_json(db, _rules_file(tmp_path, FEES), "--since", "2026-11-01",
                     "--today", "2026-11-30")
    assert got["start"] == "2026-11-01" and got["days"] == 30
    fees = {r["invoice"]: r["day"] for r in got["rows"] if r["kind"] == "late_fee"}
    # the day each fee became due (INV-1 30 days after 1 Oct); INV-2 is not 30 days late yet
    assert fees == {"INV-1": "2026-10-31", "INV-3": "2026-11-14"}


def test_history_before_keeps_only_what_was_recorded_before_the_day() -> None:
    from ar_sync.domain.models import ActionKind, EntryState, LedgerEntry
    from ar_sync.sync.rules_diff import history_before

    def row(day: int) -> LedgerEntry:
        return LedgerEntry(key=f"k{day}", tenant=CONN.id, invoice_id="i1",
                           kind=ActionKind.NOTE, rule="overdue", occurrence="once",
                           state=EntryState.DONE, due_on=date(2026, 11, day),
                           updated_at=datetime(2026, 11, day, 9, tzinfo=UTC))

    kept = history_before({"i1": [row(3), row(10), row(20)]}, date(2026, 11, 10))
    assert [e.key for e in kept["i1"]] == ["k3"]


def test_user_errors(db: Path, tmp_path: Path) -> None:
    bad = _rules_file(tmp_path, "reminders: 3\n")
    out = runner.invoke(app, ["rules", "diff", str(bad), "--db", str(db)])
    assert out.exit_code != 0 and "new.yaml" in str(out.exception)
    out = runner.invoke(app, ["rules", "diff", "default", "--since", "2027-01-01",
                              "--today", "2026-12-01", "--db", str(db)])
    assert "after" in str(out.exception)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 90), st.sampled_from(["USD", "JPY"])),
                min_size=1, max_size=6))
def test_money_difference_is_the_sum_of_added_fees(rows: list[tuple[int, str]]) -> None:
    start = date(2026, 12, 1)
    invoices = [_invoice(n, start - timedelta(days=d), cur) for n, (d, cur) in enumerate(rows)]
    quiet, fees = parse_policy(QUIET, "q.yaml"), parse_policy(FEES, "f.yaml")
    diff = rules_diff(invoices, {}, quiet, fees, start=start, days=20)
    assert rules_diff(invoices, {}, quiet, quiet, start=start, days=20).rows == []
    expected: dict[str, Decimal] = {}
    for d, cur in rows:
        if d + 19 >= 30:  # 30 days overdue within the window: one fee
            expected[cur] = expected.get(cur, Decimal(0)) + (
                Decimal(20) if cur == "USD" else Decimal(2000))
    assert {k: v for k, v in diff.money().items() if v} == expected
    assert all(r.change == "new" and r.kind == "late_fee" for r in diff.rows)
