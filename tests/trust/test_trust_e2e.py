"""Issue 12 end to end through the real SDKs against both emulators: a company connected by
the OAuth flow into a SQLite store, then runs that honour preview mode, the stored rules
version, pauses (stored and platform markers) and waivers requested with `ar-sync fee waive`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.connect.onboarding import finish_connect, start_connect
from ar_sync.domain.models import ActionKind, EntryState
from ar_sync.domain.pauses import Pause
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection, PlatformSettings
from ar_sync.sync.run import RunReport, run_tenant
from ar_sync_emulators.books import demo_company
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_emulators.xero.server import XeroEmulator

KEY = TokenCipher.generate_key().decode()
# fees as agreed terms (the contract): these tests are about preview, pauses and waivers
RULES = """
calendar: {send_on: any_day}
journey: {fee_notice: agreed}
reminders:
  - {name: overdue, days: 7, tone: friendly}
late_fees:
  - {name: late, kind: fixed, amount: {USD: 20, GBP: 20, EUR: 20, JPY: 2000, BHD: 8}, every: once,
     backfill: all}
"""


@dataclass
class Company:
    name: str
    emu: Any
    settings: PlatformSettings
    store: SQLiteStore
    connection: Connection
    db: Path

    def run(self, **kw: Any) -> RunReport:
        return run_tenant(self.store, self.connection.id, settings=self.settings, **kw)

    def set_mode(self, mode: str) -> None:
        c = self.store.get_connection(self.connection.id)
        assert c is not None
        self.store.save_connection(c.model_copy(update={"mode": mode}))

    def writes(self) -> list[Any]:
        return [e for e in self.emu.effects() if e.kind in ("note", "late_fee", "waive_fee")]


@pytest.fixture(params=["quickbooks", "xero"])
def company(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Company]:
    monkeypatch.setenv("AR_SYNC_SECRET_KEY", KEY)
    emu: Any = QuickBooksEmulator() if request.param == "quickbooks" else XeroEmulator()
    emu.seed(demo_company(5, customers=6, invoices=24))
    with ExitStack() as stack:
        stack.enter_context(emu.serve())
        settings = emu.settings()
        db = tmp_path / "ar.db"
        store = SQLiteStore(db, cipher=TokenCipher(KEY))
        now = datetime.now(UTC)
        url = start_connect(store, request.param, "local", settings, now=now)
        consent = requests.get(url, allow_redirects=False, timeout=10)
        params = dict(parse_qsl(urlsplit(consent.headers["Location"]).query))
        [connection] = finish_connect(store, params, settings, now=now)
        for name, value in {"CLIENT_ID": settings.client_id,
                            "CLIENT_SECRET": settings.client_secret,
                            "REDIRECT_URI": settings.redirect_uri}.items():
            monkeypatch.setenv(f"AR_SYNC_{request.param.upper()}_{name}", value)
        import json
        monkeypatch.setenv(f"AR_SYNC_{request.param.upper()}_ENDPOINTS",
                           json.dumps(dict(settings.endpoints)))
        yield Company(request.param, emu, settings, store, connection, db)


def _apply_rules(company: Company, tmp_path: Path) -> None:
    path = tmp_path / "firm.yaml"
    path.write_text(RULES, encoding="utf-8")
    out = CliRunner().invoke(app, ["rules", "apply", str(path), "--db", str(company.db)])
    assert out.exit_code == 0, out.output


def test_preview_writes_nothing_then_live_uses_the_stored_version(company: Company,
                                                                  tmp_path: Path) -> None:
    _apply_rules(company, tmp_path)
    company.set_mode("preview")
    preview = company.run()
    assert preview.mode == "preview" and preview.dry_run and preview.planned > 0
    assert preview.rules.startswith("version 1") and preview.fees  # fees per currency
    assert company.writes() == [] and company.store.history(company.connection.id) == {}
    assert company.store.last_report(company.connection.id)["mode"] == "preview"
    company.set_mode("live")
    live = company.run()
    assert live.mode == "live" and live.done == preview.planned - live.skipped
    rows = [e for es in company.store.history(company.connection.id).values() for e in es]
    assert rows and {e.rules_version for e in rows} == {1}
    assert company.run().done == 0  # nothing twice


def test_pauses_stored_and_platform_markers_stop_follow_up(company: Company,
                                                          tmp_path: Path) -> None:
    _apply_rules(company, tmp_path)
    company.set_mode("preview")
    preview = company.run()
    due = {a.invoice_id for a in preview.actions}
    # a marker on the platform is read before writes a pause must stop (fees, e-mails,
    # escalations); an invoice with only internal notes planned is not asked about
    stoppable = {a.invoice_id for a in preview.actions
                 if a.kind not in ("note", "waive_fee", "skip")}
    stored = sorted(due)[0]
    marked = sorted(stoppable - {stored})[0]
    today = datetime.now(UTC).date()
    company.store.add_pause(company.connection.id, Pause(
        invoice_id=stored, reason="dispute", since=today - timedelta(days=1)))
    line = f"ar-sync: pause until {today + timedelta(days=30)} promise pays on the 15th"
    paused = {marked}
    if company.name == "quickbooks":  # the invoice's private note, read with every fetch
        company.emu.edit(marked, PrivateNote=line)
    else:  # Xero: the customer in the "ar-sync: paused" contact group
        customer = company.emu.invoice(marked).contact_id
        company.emu.group("ar-sync: paused", customer)
        paused = {a.invoice_id for a in preview.actions if a.invoice_id in stoppable
                  and company.emu.invoice(a.invoice_id).contact_id == customer}
    company.set_mode("live")
    report = company.run()
    touched = {a.invoice_id for a in report.actions if a.outcome == "done"}
    assert stored not in touched and not paused & touched
    assert touched == due - {stored} - paused
    assert {e.invoice_id for e in company.writes()} == touched


def test_a_waiver_requested_on_the_cli_is_applied_once_by_the_next_runs(
        company: Company, tmp_path: Path) -> None:
    _apply_rules(company, tmp_path)
    company.run()
    fees = [e for es in company.store.history(company.connection.id).values() for e in es
            if e.kind == ActionKind.LATE_FEE and e.state == EntryState.DONE]
    assert fees
    fee = fees[0]
    out = CliRunner().invoke(app, ["fee", "waive", fee.key, "--reason", "goodwill",
                                   "--db", str(company.db)])
    assert out.exit_code == 0 and "requested" in out.output, out.output
    first = company.run()
    assert [a.kind for a in first.actions if a.outcome in ("done", "reconciled")] == [
        "waive_fee"]
    assert company.run().done == 0 and company.run().done == 0
    waived = [e for e in company.emu.effects() if e.kind == "waive_fee"]
    applied = [e for e in company.emu.effects() if e.kind == "waive_applied"]
    assert len(waived) == 1 and len(applied) == 1 and applied[0].invoice_id == fee.invoice_id
    history = CliRunner().invoke(app, ["history", fee.invoice_id, "--db", str(company.db)],
                                 env={"COLUMNS": "200"})
    assert "waive_fee" in history.output and "done" in history.output


def test_fee_waive_now_applies_it_at_once_and_the_next_run_adds_nothing(
        company: Company, tmp_path: Path) -> None:
    _apply_rules(company, tmp_path)
    company.run()
    fee = next(e for es in company.store.history(company.connection.id).values() for e in es
               if e.kind == ActionKind.LATE_FEE and e.state == EntryState.DONE)
    out = CliRunner().invoke(app, ["fee", "waive", fee.key, "--now", "--db", str(company.db)])
    assert out.exit_code == 0 and ": done" in out.output, out.output
    assert [e.invoice_id for e in company.emu.effects() if e.kind == "waive_applied"] == [
        fee.invoice_id]
    again = CliRunner().invoke(app, ["fee", "waive", fee.key, "--db", str(company.db)])
    assert "no charged fee left" in str(again.exception)
    assert company.run().done == 0
    assert len([e for e in company.emu.effects() if e.kind == "waive_fee"]) == 1


def test_connect_stores_rules_and_mode_and_previews_the_first_live_run(
        company: Company, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ar_sync.cli.connect_rules import after_connect, print_first_run, read_rules_checked

    path = tmp_path / "firm.yaml"
    path.write_text(RULES, encoding="utf-8")
    rules = read_rules_checked(str(path))
    [updated] = after_connect(company.store, [company.connection], rules, preview=True)
    assert updated.mode == "preview" and company.store.current_rules(updated.id).version == 1
    after_connect(company.store, [updated], rules, preview=False)  # reconnect: same text
    assert len(company.store.rules_versions(updated.id)) == 1
    print_first_run(company.store, [updated], company.settings)
    out = capsys.readouterr().out
    assert "rules version 1" in out and "the first live run would do:" in out
    assert "fees: " in out and company.writes() == []  # a preview writes nothing


def test_a_dispute_pause_waives_fees_under_waive_on_dispute(company: Company,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "waiving.yaml"
    path.write_text(RULES.replace("backfill: all}", "backfill: all, waive_on_dispute: true}"),
                    encoding="utf-8")
    out = CliRunner().invoke(app, ["rules", "apply", str(path), "--db", str(company.db)])
    assert out.exit_code == 0, out.output
    company.run()
    fee = next(e for es in company.store.history(company.connection.id).values() for e in es
               if e.kind == ActionKind.LATE_FEE and e.state == EntryState.DONE)
    company.store.add_pause(company.connection.id, Pause(
        invoice_id=fee.invoice_id, reason="dispute", since=datetime.now(UTC).date()))
    report = company.run()
    assert [(a.kind, a.outcome) for a in report.actions] == [("waive_fee", "done")]
    assert [e.invoice_id for e in company.emu.effects() if e.kind == "waive_applied"] == [
        fee.invoice_id]
    assert company.run().done == 0
