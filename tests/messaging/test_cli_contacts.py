"""`ar-sync contact set|show` against a temp store, and `ar-sync demo --outbox`."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.cli.errors import UserError
from ar_sync.store.sqlite.store import SQLiteStore

from .helpers import CONNECTION


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ar.db"
    store = SQLiteStore(path)
    store.save_connection(CONNECTION)
    store.close()
    return path


def test_set_and_show(db: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["contact", "set", "c1", "--email", "ap@one.example",
                               "--db", str(db)])
    assert made.exit_code == 0, made.output
    out = runner.invoke(app, ["contact", "set", "c2", "--opt-out", "--db", str(db)])
    assert out.exit_code == 0, out.output
    contacts = SQLiteStore(db).contacts(CONNECTION.id)
    assert contacts["c1"].email == "ap@one.example" and not contacts["c1"].opted_out
    assert contacts["c2"].opted_out and contacts["c2"].email is None
    shown = runner.invoke(app, ["contact", "show", "--db", str(db)])
    assert "ap@one.example" in shown.output and "c2" in shown.output
    back = runner.invoke(app, ["contact", "set", "c2", "--opt-in", "--db", str(db)])
    assert back.exit_code == 0
    assert not SQLiteStore(db).contacts(CONNECTION.id)["c2"].opted_out


def test_user_errors(db: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["contact", "set", "c1", "--email", "not an address",
                              "--db", str(db)])
    assert isinstance(bad.exception, UserError) and "not an e-mail address" in str(bad.exception)
    none = runner.invoke(app, ["contact", "show", "c9", "--db", str(db)])
    assert isinstance(none.exception, UserError) and "no contact" in str(none.exception)


def test_demo_writes_each_message_as_eml(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    result = CliRunner().invoke(app, ["demo", "--outbox", str(outbox), "--show", "1",
                                      "--db", str(tmp_path / "demo.db")])
    assert result.exit_code == 0, result.output[-3000:]
    files = sorted(outbox.glob("*.eml"))
    assert len(files) > 10 and "Sample" in result.output
    recipients: dict[str, int] = {}
    senders = set()
    for path in files:
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        senders.add(msg["From"].addresses[0].display_name)
        assert msg["Reply-To"] and msg["Message-ID"]
        html = msg.get_body(("html",)).get_content()
        assert "<table" in html
        recipients[str(msg["To"])] = recipients.get(str(msg["To"]), 0) + 1
    # four businesses, each writing from its own name
    assert senders == {"Bluebird Office Supply Inc.", "Harbour & Vine Trading LLC",
                       "Thames Joinery Ltd", "Kowhai Trades Ltd"}
    # two connected companies at most: a customer gets at most one message from each
    assert max(recipients.values()) <= 2


def test_plan_previews_one_message_per_customer(tmp_path: Path) -> None:
    import json

    rows = [{"platform": "fake", "tenant": "t", "id": str(n), "number": f"INV-{n}",
             "customer_id": cust, "customer_name": name, "customer_email": email,
             "issue_date": "2026-09-01", "due_date": due, "currency": "USD", "total": "100",
             "balance": "100", "updated_at": "2026-10-01T00:00:00Z"}
            for n, cust, name, email, due in [
                (1, "c1", "Bob", "bob@example.com", "2026-10-01"),
                (2, "c1", "Bob", "bob@example.com", "2026-11-10"),
                (3, "c2", "Ann", None, "2026-11-10")]]
    path = tmp_path / "invoices.json"
    path.write_text(json.dumps(rows))
    out = CliRunner().invoke(app, ["plan", "--rules", "email", "--invoices", str(path),
                                   "--today", "2026-11-16", "--format", "json"])
    assert out.exit_code == 0, out.output
    start = out.output.index("[")
    actions = json.loads(out.output[start:])
    messages = [a for a in actions if a["kind"] == "message"]
    assert len(messages) == 1 and messages[0]["to"] == "bob@example.com"
    assert sorted(i["invoice_number"] for i in messages[0]["items"]) == ["INV-1", "INV-2"]
    assert "Ann (INV-3): no e-mail address" in out.output
