"""The issue-12 commands against a temp SQLite store: go-live, pause/resume/pauses, rules
apply/show/history/rollback, fee waive (queued through the ledger) and history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.cli.errors import UserError
from ar_sync.domain.models import ActionKind, ApplyLateFee, EntryState, Invoice, Money, action_key
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection

runner = CliRunner()
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CONN = Connection(id="quickbooks:42", platform="quickbooks", external_id="42", name="Acme",
                  created_at=NOW - timedelta(days=3))


def _invoice(n: int, customer: str = "c1") -> Invoice:
    return Invoice(platform="quickbooks", tenant=CONN.id, id=f"{100 + n}", number=f"INV-{n}",
                   customer_id=customer, customer_name=f"Customer {customer}",
                   issue_date=date(2026, 8, 1), due_date=date(2026, 9, 1), currency="USD",
                   total=Decimal("500.00"), balance=Decimal("500.00"), updated_at=NOW)


def _fee(n: int, occurrence: str) -> ApplyLateFee:
    inv = _invoice(n)
    return ApplyLateFee(key=action_key(CONN.id, "quickbooks", inv.id, "late_fee", "late",
                                       occurrence),
                        tenant=CONN.id, platform="quickbooks", invoice_id=inv.id,
                        invoice_number=inv.number, rule="late", occurrence=occurrence,
                        due_on=date(2026, 10, 1), reason="30 days overdue",
                        amount=Money.of("25.00", "USD"), label="Late fee")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ar.db"
    store = SQLiteStore(path)
    store.save_connection(CONN)
    store.save_invoices(CONN.id, [_invoice(1), _invoice(2), _invoice(3, "c2")],
                        replace_all=True)
    for fee in (_fee(1, "2026-10"), _fee(1, "2026-11"), _fee(2, "2026-10")):
        store.claim(fee, owner="run-0", now=NOW, lease_seconds=60, rules_version=1)
        store.complete(fee.key, owner="run-0", ref="Invoice:1:7", now=NOW)
    store.close()
    return path


def ok(*args: str) -> str:
    result = runner.invoke(app, [*args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def user_error(*args: str) -> str:
    result = runner.invoke(app, [*args])
    assert isinstance(result.exception, UserError), (result.output, result.exception)
    return str(result.exception)


def test_go_live_switches_mode_and_date(db: Path) -> None:
    assert SQLiteStore(db).get_connection(CONN.id).live_from() == CONN.created_at.date()
    out = ok("go-live", "--preview", "--date", "2026-12-01", "--db", str(db))
    assert "preview" in out
    got = SQLiteStore(db).get_connection(CONN.id)
    assert got.mode == "preview" and got.go_live == date(2026, 12, 1)
    out = ok("go-live", "--date", "2026-12-05", "--db", str(db))
    assert "live" in out and "2026-12-05" in out
    got = SQLiteStore(db).get_connection(CONN.id)
    assert got.mode == "live" and got.go_live == date(2026, 12, 5)
    status = ok("status", "--db", str(db))
    assert "go-live 2026-12-05" in status
    assert "not a date" in user_error("go-live", "--date", "soon", "--db", str(db))


def test_pause_list_resume_an_invoice_and_a_customer(db: Path) -> None:
    until = (datetime.now(UTC).date() + timedelta(days=20)).isoformat()
    out = ok("pause", "INV-1", "--until", until, "--reason", "promise", "--note", "pays Friday",
             "--db", str(db))
    assert "paused invoice INV-1" in out
    ok("pause", "--customer", "Customer c2", "--reason", "dispute", "--db", str(db))
    stored = SQLiteStore(db).list_pauses(CONN.id)
    assert {(s.pause.invoice_id, s.pause.customer_id, s.pause.reason) for s in stored} == {
        ("101", None, "promise"), (None, "c2", "dispute")}
    listed = ok("pauses", "--db", str(db))
    assert "invoice INV-1" in listed and "customer Customer c2" in listed and "active" in listed
    ok("resume", "INV-1", "--db", str(db))
    assert "invoice INV-1" not in ok("pauses", "--db", str(db))
    assert "resumed" in ok("pauses", "--all", "--db", str(db))
    assert "nothing paused" in user_error("resume", "INV-1", "--db", str(db))
    ok("resume", "--customer", "c2", "--db", str(db))


def test_pause_refuses_what_it_cannot_name(db: Path) -> None:
    assert "one invoice or one --customer" in user_error("pause", "--db", str(db))
    assert "needs the date" in user_error("pause", "INV-1", "--reason", "promise",
                                          "--db", str(db))
    assert "no open invoice 'INV-9'" in user_error("pause", "INV-9", "--db", str(db))
    assert "in the past" in user_error("pause", "INV-1", "--until", "2020-01-01",
                                       "--db", str(db))
    assert SQLiteStore(db).list_pauses(CONN.id) == []


def test_rules_apply_show_history_rollback(db: Path, tmp_path: Path) -> None:
    assert "no stored rules" in ok("rules", "show", "--db", str(db))
    assert "version 1 applied from default" in ok("rules", "apply", "default", "--db", str(db))
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: default\nreminders: []\n", encoding="utf-8")
    assert "version 2 applied from mine.yaml" in ok("rules", "apply", str(mine), "--note",
                                                    "quieter", "--db", str(db))
    assert "unchanged" in ok("rules", "apply", str(mine), "--db", str(db))
    shown = ok("rules", "show", "--db", str(db))
    assert "version 2" in shown and "reminders: []" in shown
    first = ok("rules", "show", "--version", "1", "--db", str(db))
    assert "version 1 from default" in first and "\nreminders: []" not in first
    assert "quieter" in ok("rules", "history", "--db", str(db))
    assert "version 3 = version 1" in ok("rules", "rollback", "--db", str(db))
    store = SQLiteStore(db)
    assert store.current_rules(CONN.id).text == store.rules_versions(CONN.id)[0].text
    assert "no rules version 9" in user_error("rules", "rollback", "9", "--db", str(db))


def test_rules_apply_refuses_a_broken_file_and_a_relative_extends(db: Path,
                                                                  tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("reminders:\n  - {name: x, days: soon}\n", encoding="utf-8")
    assert "bad.yaml:2" in user_error("rules", "apply", str(bad), "--db", str(db))
    (tmp_path / "base.yaml").write_text("reminders: []\n", encoding="utf-8")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\n", encoding="utf-8")
    assert "extends" in user_error("rules", "apply", str(child), "--db", str(db))
    assert SQLiteStore(db).rules_versions(CONN.id) == []


def test_fee_waive_queues_one_waiver_per_fee_through_the_ledger(db: Path) -> None:
    # two fees on INV-1: the bookkeeper must say which (or --all)
    assert "2 fees charged" in user_error("fee", "waive", "INV-1", "--db", str(db))
    fee = _fee(1, "2026-10")
    out = ok("fee", "waive", fee.key, "--reason", "goodwill", "--db", str(db))
    assert "requested" in out
    store = SQLiteStore(db)
    [queued] = store.unfinished(CONN.id)
    waiver = store.action_payload(queued.key)
    assert waiver.kind == ActionKind.WAIVE_FEE and waiver.fee_key == fee.key
    assert waiver.amount == Money.of("25.00", "USD") and queued.state == EntryState.RETRY
    # the same key the planner uses for this fee (waive kind, the fee's rule and occurrence)
    assert queued.key == action_key(CONN.id, "quickbooks", "101", "waive_fee", "late",
                                    "2026-10")
    assert "no charged fee left" not in ok("fee", "waive", "INV-1", "--db", str(db))
    assert len(store.unfinished(CONN.id)) == 2  # the other fee of INV-1
    assert "no charged fee left" in user_error("fee", "waive", "INV-1", "--db", str(db))
    ok("fee", "waive", "INV-2", "--all", "--db", str(db))
    assert len(store.unfinished(CONN.id)) == 3
    history = ok("history", "INV-1", "--db", str(db))  # by number
    assert history.count("waive_fee") == 2 and "late_fee" in history
    assert "not a charged fee" in user_error("fee", "waive", queued.key, "--db", str(db))


def test_commands_on_one_company_want_tenant_when_several_are_connected(db: Path) -> None:
    store = SQLiteStore(db)
    store.save_connection(Connection(id="xero:7", platform="xero", external_id="7",
                                     created_at=NOW))
    xero = [_invoice(1).model_copy(update={"tenant": "xero:7", "id": "INV-2"}),
            _invoice(2).model_copy(update={"tenant": "xero:7", "id": "b"})]
    store.save_invoices("xero:7", xero, replace_all=True)
    store.close()
    for command in (["rules", "history"], ["contact", "show"], ["payment-plan", "cancel", "x"],
                    ["pause", "INV-1"]):
        message = user_error(*command, "--db", str(db))
        assert "several companies are connected" in message, command
    # --tenant names the company, by id or by the platform's id
    assert "no stored rules versions" in ok("rules", "history", "-t", "7", "--db", str(db))
    assert "xero:7" in ok("rules", "history", "--tenant", "xero:7", "--db", str(db))
    # an invoice is named by its id first, then by its number: in xero:7 "INV-2" is the id of
    # invoice INV-1 and the number of invoice b; in quickbooks:42 only a number
    ok("pause", "INV-2", "--tenant", "xero:7", "--db", str(db))
    ok("pause", "INV-2", "--tenant", CONN.id, "--db", str(db))
    assert [s.pause.invoice_id for s in SQLiteStore(db).list_pauses("xero:7")] == ["INV-2"]
    assert [s.pause.invoice_id for s in SQLiteStore(db).list_pauses(CONN.id)] == ["102"]
