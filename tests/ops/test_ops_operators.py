"""What an operator meets at the terminal and in cron (issue 20): a missing sender is a
configuration error (non-zero exit), a key rotated through the variable leaves a key file
that opens the tokens and the tool says to set the key, tables fit 80 and 120 columns,
`report --format html > file` holds only the page, history amounts carry their currency, and
no message points to a README section that is gone."""

from __future__ import annotations

import io
import random
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from core.test_core_readme_links import anchors
from rich.console import Console
from sync.fakes import FakeConnector, FakePlatform, FaultPlan
from sync.harness import CIPHER
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.cli.commands.sync import exit_code
from ar_sync.cli.render.runs import actions_table, history_table, summary_table
from ar_sync.delivery.notify import WebhookSender
from ar_sync.domain.models import ApplyLateFee, Money, action_key
from ar_sync.messages.mime import Sender
from ar_sync.messages.sending import MailSetup
from ar_sync.rules.policy import parse_policy
from ar_sync.store.crypto import TokenCipher, key_file
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection, TokenSet
from ar_sync.sync.run import ActionOutcome, RunReport, run_tenant

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample-invoices.json"
NOW = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)
CONN = Connection(id="fake:ops", platform="fake", external_id="ops", created_at=NOW)
runner = CliRunner()

EMAILING = ("calendar: {send_on: any_day}\nreminders:\n"
            "  - {name: overdue-1, days: 1, channel: email}\n")
HOOKING = ("calendar: {send_on: any_day}\nescalations:\n  - name: agency\n"
           "    when: {days_overdue: 1}\n    to: {agency: A}\n"
           "    notify: {webhook: [\"https://hooks.example.com/x\"]}\n")


def _run(tmp_path: Path, rules: str, mail: MailSetup | None, *, dry_run: bool = False
         ) -> RunReport:
    from messaging.helpers import invoice

    store = SQLiteStore(tmp_path / f"ar-{random.random()}.db", cipher=CIPHER)
    store.save_connection(CONN)
    state = FakePlatform(invoices={"inv-1": invoice(1, 5, tenant=CONN.id)})
    return run_tenant(store, CONN.id, now=NOW, policy=parse_policy(rules, "r.yaml"), mail=mail,
                      dry_run=dry_run,
                      connector=FakeConnector(state, CONN, FaultPlan(rng=random.Random(0))))


# ----------------------------------------------------------------------------- mail setup


def test_rules_that_e_mail_without_a_sender_are_a_configuration_error(tmp_path: Path) -> None:
    """Before: every e-mail 'deferred' and exit 0, so cron saw success run after run."""
    report = _run(tmp_path, EMAILING, None)
    assert any(e.startswith("configuration:") and "AR_SYNC_MAIL_FROM" in e
               for e in report.errors)
    assert exit_code([report], interrupted=False) == 1
    assert [a.outcome for a in report.actions if a.kind == "message"] == ["deferred"]
    dry = _run(tmp_path, EMAILING, None, dry_run=True)  # a preview warns, and shows the plan
    assert not dry.errors and any("configuration:" in w for w in dry.warnings)


def test_webhooks_without_a_secret_are_one_too_and_a_full_setup_is_none(tmp_path: Path) -> None:
    hooked = _run(tmp_path, HOOKING, None)
    assert any("webhook secret" in e for e in hooked.errors)
    assert exit_code([hooked], interrupted=False) == 1
    quiet = _run(tmp_path, "calendar: {send_on: any_day}\nreminders:\n"
                           "  - {name: r, days: 1}\n", None)
    assert quiet.errors == []  # notes only: nothing to configure
    setup = MailSetup(sender=Sender("Acme <ar@acme.example>"), mailer=_NullMailer(),
                      webhooks=WebhookSender("whsec-test-operators"))
    assert not [e for e in _run(tmp_path, EMAILING, setup).errors if "configuration" in e]


class _NullMailer:
    def send(self, *args: object, **kwargs: object) -> object:
        from ar_sync.messages.mime import Outcome, SendResult

        return SendResult(Outcome.SENT, ref="null")


# ----------------------------------------------------------------------------- keys


def test_a_rotation_through_the_variable_leaves_a_key_file_that_opens_the_tokens(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AR_SYNC_SECRET_KEY", raising=False)
    db = tmp_path / "ar.db"
    store = SQLiteStore(db)  # creates the key file
    store.save_connection(CONN)
    store.save_tokens(CONN.id, TokenSet(access_token="a", refresh_token="r",
                                        expires_at=datetime(2030, 1, 1, tzinfo=UTC)),
                      expected_version=-1)
    store.close()
    old = key_file(tmp_path).read_text()
    new = TokenCipher.generate_key().decode()
    rotated = runner.invoke(app, ["keys", "rotate", "--db", str(db)],
                            env={"AR_SYNC_SECRET_KEY": f"{new},{old}"})
    assert rotated.exit_code == 0, rotated.output
    assert key_file(tmp_path).read_text().startswith(new)  # before: still only the old key
    assert oct(key_file(tmp_path).stat().st_mode & 0o777) == "0o600"
    assert SQLiteStore(db).load_tokens(CONN.id).access_token == "a"  # type: ignore[union-attr]


def test_unreadable_tokens_say_set_the_key_not_reconnect(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AR_SYNC_SECRET_KEY", raising=False)
    db = tmp_path / "ar.db"
    store = SQLiteStore(db, cipher=TokenCipher(TokenCipher.generate_key()))
    store.save_connection(CONN)
    store.save_tokens(CONN.id, TokenSet(access_token="a", refresh_token="r",
                                        expires_at=datetime(2030, 1, 1, tzinfo=UTC)),
                      expected_version=-1)
    store.close()
    shown = runner.invoke(app, ["status", "--db", str(db)], env={"COLUMNS": "200"})
    text = " ".join(shown.output.split())
    assert "key file" in text and "AR_SYNC_SECRET_KEY" in text
    assert "reconnect only if it is lost" in text and "reconnect with" not in text


# ----------------------------------------------------------------------------- widths


def _lines(renderable: object, width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text().splitlines()


@pytest.mark.parametrize("width", [80, 120])
def test_plan_keeps_what_and_why_at_80_and_120_columns(width: int, tmp_path: Path) -> None:
    # fees as agreed terms, so the plan holds the longest what/why lines (a fee's)
    rules = tmp_path / "agreed.yaml"
    rules.write_text("extends: default\njourney: {first_contact: by_age, fee_notice: agreed}\n",
                     encoding="utf-8")
    out = runner.invoke(app, ["plan", "--invoices", str(SAMPLE), "--today", "2026-11-30",
                              "--rules", str(rules)], env={"COLUMNS": str(width)})
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert all(len(line) <= width for line in lines), max(map(len, lines))
    flat = " ".join(" ".join(lines).replace("│", " ").split())
    assert "192.00 USD (line)" in flat  # the what
    assert "1.5% of 12,800.00 USD (monthly); due 2026-08-02" in flat  # the why


def _report() -> RunReport:
    report = RunReport(connection_id="quickbooks:9130354236412345", started_at=NOW,
                       dry_run=False, full_fetch=True, invoices_open=240, planned=37,
                       done=35, skipped=2, api_calls=118)
    key = "ar3d2f419f0c1e2d3b4a5968778695a4b3"
    report.actions = [ActionOutcome(key=key, invoice_id=f"i{n}", invoice_number=f"INV-10{n}",
                                    kind="late_fee",
                                    rule="late-fee", outcome="done", ref=key,
                                    detail="1.5% of 12,800.00 USD (monthly); due 2026-08-02")
                      for n in range(3)]
    return report


@pytest.mark.parametrize("width", [80, 120])
def test_run_report_and_actions_keep_every_column(width: int) -> None:
    report = _report()
    lines = _lines(summary_table([report]), width)
    assert all(len(line) <= width for line in lines)
    text = " ".join(lines)
    for value in ("quickbooks:9130354236412345", "240", "37", "35", "118", "ambiguous",
                  "deferred", "calls"):
        assert value in text, value
    actions = _lines(actions_table(report, refs=True), width)
    assert all(len(line) <= width for line in actions)
    assert sum("ar3d2f419f0c1e2d3b4a5968778695a4b3" in line for line in actions) == 3
    assert "due 2026-08-02" in " ".join(" ".join(actions).replace("│", " ").split())


@pytest.mark.parametrize("width", [80, 120])
def test_history_keeps_each_key_on_one_line_with_its_currency(tmp_path: Path,
                                                              width: int) -> None:
    """Before: the 34-character key folded over 16 lines at 80 columns; amounts had no
    currency."""
    store = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    fee = ApplyLateFee(key=action_key(CONN.id, "fake", "inv-1", "late_fee", "late", "2026-11"),
                       tenant=CONN.id, platform="fake", invoice_id="inv-1",
                       invoice_number="INV-1", rule="late", occurrence="2026-11",
                       due_on=date(2026, 11, 2), reason="30 days overdue",
                       amount=Money.of("25", "JPY"), label="Late fee")
    store.claim(fee, owner="o", now=NOW, lease_seconds=60)
    store.complete(fee.key, owner="o", ref=fee.key, now=NOW)
    entries = store.history(CONN.id, ["inv-1"])["inv-1"]
    lines = _lines(history_table("INV-1", entries, {fee.key: "JPY"}), width)
    assert all(len(line) <= width for line in lines)
    assert any(fee.key in line for line in lines)  # whole, on one line
    assert "25 JPY" in " ".join(lines)


def test_history_command_names_the_currency(tmp_path: Path) -> None:
    db = tmp_path / "ar.db"
    store = SQLiteStore(db)
    store.save_connection(CONN)
    fee = ApplyLateFee(key=action_key(CONN.id, "fake", "inv-1", "late_fee", "late", "2026-11"),
                       tenant=CONN.id, platform="fake", invoice_id="inv-1",
                       invoice_number="INV-1", rule="late", occurrence="2026-11",
                       due_on=date(2026, 11, 2), reason="30 days overdue",
                       amount=Money.of("12.5", "EUR"), label="Late fee")
    store.claim(fee, owner="o", now=NOW, lease_seconds=60)
    store.complete(fee.key, owner="o", ref="f-1", now=NOW)
    store.close()
    table = runner.invoke(app, ["history", "inv-1", "--db", str(db)], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    assert "12.50 EUR" in table.output
    as_json = runner.invoke(app, ["history", "inv-1", "--db", str(db), "--format", "json"])
    assert '"currency": "EUR"' in as_json.stdout


# ----------------------------------------------------------------------------- report, links


def test_report_html_redirected_is_only_the_page(tmp_path: Path) -> None:
    """Before: `report --format html > file` put "wrote ar-sync-report.html" in the file."""
    out = runner.invoke(app, ["report", "--invoices", str(SAMPLE), "--today", "2026-11-30",
                              "--format", "html"])
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("<!DOCTYPE html>") and "wrote" not in out.stdout
    page = tmp_path / "r.html"
    to_file = runner.invoke(app, ["report", "--invoices", str(SAMPLE), "--today",
                                  "2026-11-30", "--format", "html", "-o", str(page)])
    assert to_file.stdout == "" and "wrote" in to_file.stderr
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_no_message_points_to_a_readme_section_and_docs_links_resolve() -> None:
    """`connect` pointed to README 'Connect a real company', which no longer exists."""
    sources = [p for base in ("src/ar_sync", "connectors") for p in (ROOT / base).rglob("*.py")]
    assert not [p for p in sources if "README" in p.read_text(encoding="utf-8")]
    found = 0
    for path in sources:
        for page, anchor in re.findall(r"docs/([\w/-]+\.md)#([\w-]+)", path.read_text()):
            found += 1
            target = ROOT / "docs" / page
            assert target.exists(), (path, page)
            assert anchor in anchors(target.read_text(encoding="utf-8")), (path, page, anchor)
    assert found >= 3
    from ar_sync.connect.settings import platform_settings
    from ar_sync.domain.errors import SettingsError

    with pytest.raises(SettingsError, match=re.escape("docs/getting-started.md#connect-a-real")):
        platform_settings("quickbooks", {})
