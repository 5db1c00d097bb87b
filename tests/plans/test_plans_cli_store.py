"""`ar-sync payment-plan` against a temp SQLite store, and the store's schema upgrade."""

from __future__ import annotations

import sqlite3
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.cli.errors import UserError
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.store.sqlite.store import SCHEMA_VERSION, SQLiteStore
from ar_sync.sync.connector import Connection

from .conftest import invoice

CONN = Connection(id="fake:1", platform="fake", external_id="1", name="Fake Ltd")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ar.db"
    store = SQLiteStore(path)
    store.save_connection(CONN)
    store.save_invoices(CONN.id, [invoice(due=date(2026, 10, 1), total="100.00",
                                          balance="90.00").model_copy(update={"tenant": CONN.id})],
                        replace_all=True)
    store.close()
    return path


def test_create_list_cancel(db: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["payment-plan", "create", "INV-1", "--instalments", "4",
                               "--every", "2 weeks", "--first", "2026-12-01", "--db", str(db)])
    assert made.exit_code == 0, made.output
    assert "22.50 USD" in made.output and "2026-12-15" in made.output
    store = SQLiteStore(db)
    assert store.payment_plans(CONN.id) == [PaymentPlan(
        invoice="inv-1", instalments=4, every="14 days", first_due=date(2026, 12, 1),
        amount=Decimal("90.00"), already_paid=Decimal("10.00"))]
    listed = runner.invoke(app, ["payment-plan", "list", "--db", str(db)])
    assert listed.exit_code == 0 and "INV-1" in listed.output and "14 days" in listed.output
    gone = runner.invoke(app, ["payment-plan", "cancel", "INV-1", "--db", str(db)])
    assert gone.exit_code == 0 and "cancelled" in gone.output
    assert store.payment_plans(CONN.id) == []
    again = runner.invoke(app, ["payment-plan", "cancel", "INV-1", "--db", str(db)])
    assert isinstance(again.exception, UserError) and "no payment plan" in str(again.exception)


def test_user_errors(db: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["payment-plan", "create", "INV-9", "-n", "2", "--db", str(db)])
    assert isinstance(unknown.exception, UserError)
    assert "no open invoice" in str(unknown.exception)
    bad = runner.invoke(app, ["payment-plan", "create", "INV-1", "-n", "2", "--every",
                              "fortnightly", "--db", str(db)])
    assert isinstance(bad.exception, UserError) and "every" in str(bad.exception)
    assert SQLiteStore(db).payment_plans(CONN.id) == []


def test_version_1_file_upgrades_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    SQLiteStore(path).save_connection(CONN)
    raw = sqlite3.connect(path)  # make it look like a file written by schema version 1
    raw.execute("DROP TABLE payment_plans")
    raw.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
    raw.commit()
    raw.close()
    store = SQLiteStore(path)
    assert store.get_connection(CONN.id) == CONN
    pp = PaymentPlan(invoice="inv-1", instalments=2, first_due=date(2027, 1, 1))
    store.save_payment_plan(CONN.id, pp)
    assert store.payment_plans(CONN.id) == [pp]
    version = store._query("SELECT value FROM meta WHERE name = 'schema_version'")[0]["value"]
    assert int(version) == SCHEMA_VERSION >= 2
    assert store.delete_payment_plan(CONN.id, "inv-1") and not store.payment_plans(CONN.id)
