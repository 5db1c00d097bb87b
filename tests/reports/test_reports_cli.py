"""`ar-sync report` over a JSON file and over the SQLite store, and its user errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from reports_helpers import AS_OF, fixture_invoices
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.cli.errors import UserError
from ar_sync.domain.models import AddNote
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection

runner = CliRunner()


@pytest.fixture()
def invoice_file(tmp_path: Path) -> Path:
    path = tmp_path / "invoices.json"
    path.write_text(json.dumps([i.model_dump(mode="json") for i in fixture_invoices()]))
    return path


def test_json_from_file_matches_hand_figures(invoice_file: Path) -> None:
    result = runner.invoke(app, ["report", "--invoices", str(invoice_file), "--today",
                                 "2026-03-31", "--format", "json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output)
    dso = {d["currency"]: d["days"] for d in report["dso"]}
    assert dso == {"EUR": "90.0", "JPY": "126.0", "USD": "101.0"}  # see test_reports_figures
    # a file has no ledger: Globex loses the 2 x 5 points of ignored reminders, 85 - 10 = 75
    assert [(c["customer_name"], c["score"]) for c in report["customers"]] == [
        ("Globex", 75), ("Initech", 70), ("Acme Ltd", 31), ("Umbrella", 0)]


def test_table_and_html_from_file(invoice_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--invoices", str(invoice_file), "--today",
                                 "2026-03-31"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "1,500.00" in result.output and "101.0" in result.output  # USD 90+, USD DSO
    assert "Globex (high 75): pays 66.7 days late on average" in result.output
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "--invoices", str(invoice_file), "--today",
                                 "2026-03-31", "--format", "html", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().count('class="bar"') == 15


def test_report_from_store(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db, cipher=TokenCipher(TokenCipher.generate_key()))
    store.save_connection(Connection(id="quickbooks:1", platform="quickbooks", external_id="1",
                                     name="Shop <One>"))
    store.save_invoices("quickbooks:1", fixture_invoices(), replace_all=True)  # keeps open ones
    note = AddNote(key="k1", tenant="quickbooks:1", platform="quickbooks", invoice_id="G2",
                   invoice_number="INV-G2", rule="first", occurrence="once",
                   due_on=date(2026, 2, 12), reason="r", text="please pay")
    sent = datetime(2026, 2, 12, 9, tzinfo=UTC)
    assert store.claim(note, owner="me", now=sent, lease_seconds=60).ours
    assert store.complete("k1", owner="me", ref="n1", now=sent)
    store.close()
    result = runner.invoke(app, ["report", "--db", str(db), "--today", AS_OF.isoformat(),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output)
    assert report["title"] == "Shop <One> (quickbooks:1)"
    # paid invoices are kept apart from the open snapshot, for the report
    assert (report["open_invoices"], report["paid_invoices"]) == (6, 4)
    globex = next(c for c in report["customers"] if c["customer_id"] == "C2")
    assert globex["reminders_ignored"] == 1  # the note of 02-12, from the store's ledger
    assert report["notes"] == []  # no "DSO reads high" caveat: paid invoices are there


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"),
    ("{not json", "not valid JSON"),
    ('{"rows": []}', "expected a JSON list"),
])
def test_file_errors_are_user_errors(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    result = runner.invoke(app, ["report", "--invoices", str(path)])
    assert isinstance(result.exception, UserError)
    assert message in str(result.exception)


def test_malformed_invoices_are_skipped_with_a_warning(invoice_file: Path) -> None:
    good = json.loads(invoice_file.read_text())
    invoice_file.write_text(json.dumps([*good, {"id": "broken"}]))
    result = runner.invoke(app, ["report", "--invoices", str(invoice_file), "--today",
                                 "2026-03-31", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "skipped invoice [12] broken" in result.stderr
    [report] = json.loads(result.stdout)
    assert report["open_invoices"] == 6


def test_sample_file_of_the_examples_folder() -> None:
    sample = Path(__file__).parents[2] / "examples" / "sample-invoices.json"
    if not sample.exists():
        pytest.skip("examples/sample-invoices.json is not in this checkout")
    result = runner.invoke(app, ["report", "--invoices", str(sample), "--format", "json",
                                 "--today", "2026-12-01"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    expected = sum(1 for i in json.loads(sample.read_text())  # broken entries are skipped
                   if i.get("status") == "open" and i.get("issue_date", "9") <= "2026-12-01"
                   and Decimal(i["balance"]) > 0)
    assert report["open_invoices"] == expected and report["aging"]


def test_no_connection_is_a_user_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--db", str(tmp_path / "empty.db")])
    assert isinstance(result.exception, UserError)
    assert "ar-sync connect" in (result.exception.hint or "")
