"""`ar-sync status`: connections, token expiry (never token values), last run, checkpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.cli.errors import UserError
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection, TokenSet
from ar_sync.sync.store import Checkpoint

runner = CliRunner()
KEY = TokenCipher.generate_key().decode()
ACCESS = "eyJ-very-secret-access-token-value"
REFRESH = "AB-very-secret-refresh-token-value"


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    store = SQLiteStore(path, cipher=TokenCipher(KEY))
    now = datetime.now(UTC)
    for cid, name in (("quickbooks:111", "Corner Shop"), ("xero:abc", "Harbour Ltd")):
        platform, external = cid.split(":")
        store.save_connection(Connection(id=cid, platform=platform, external_id=external,
                                         name=name, business_id="acme", created_at=now))
    assert store.save_tokens("quickbooks:111", TokenSet(
        access_token=ACCESS, refresh_token=REFRESH, expires_at=now + timedelta(minutes=50),
        refresh_expires_at=now + timedelta(days=99)), expected_version=-1)
    store.save_report("quickbooks:111", {
        "connection_id": "quickbooks:111", "started_at": (now - timedelta(hours=2)).isoformat(),
        "finished_at": (now - timedelta(hours=2)).isoformat(), "dry_run": False,
        "full_fetch": True, "invoices_seen": 30, "invoices_open": 12, "planned": 7, "done": 6,
        "reconciled": 0, "skipped": 0, "failed": 1, "retry": 0, "deferred": 0, "busy": 0,
        "api_calls": 19, "stopped_early": None, "errors": ["INV-9: fee rejected"],
        "warnings": [], "actions": []})
    pacific = timezone(timedelta(hours=-8))  # QuickBooks answers in the company's zone
    store.save_checkpoint("quickbooks:111", Checkpoint(
        since=(now - timedelta(hours=3)).astimezone(pacific),
        last_full_at=now - timedelta(hours=2)))
    # xero:abc was connected with another key: its tokens cannot be read here
    other = SQLiteStore(path, cipher=TokenCipher(TokenCipher.generate_key()))
    assert other.save_tokens("xero:abc", TokenSet(access_token=ACCESS, refresh_token=REFRESH,
                                                  expires_at=now), expected_version=-1)
    return path


def test_status_table(db: Path) -> None:
    result = runner.invoke(app, ["status", "--db", str(db)],
                           env={"AR_SYNC_SECRET_KEY": KEY, "COLUMNS": "100"})
    assert result.exit_code == 0, (result.output, result.exception)
    out = result.output
    assert ACCESS not in out and REFRESH not in out
    assert "Corner Shop" in out and "quickbooks:111" in out and "Harbour Ltd" in out
    assert "access token   expires" in out and ("(in 50 min)" in out or "(in 49 min)" in out)
    assert "refresh token  expires" in out and "(in 99 d)" in out
    assert "full fetch: 7 planned, 6 done, 1 failed; 19 API calls" in out
    assert "INV-9: fee rejected" in out and "2 h ago" in out
    since = datetime.now(UTC) - timedelta(hours=3)
    assert f"changes since {since:%Y-%m-%d %H}" in out and "(3 h ago)" in out  # shown in UTC
    assert "unreadable" in out  # the xero tokens, without a traceback
    assert "no run yet" in out


def test_status_json(db: Path) -> None:
    result = runner.invoke(app, ["status", "--db", str(db), "--format", "json"],
                           env={"AR_SYNC_SECRET_KEY": KEY})
    assert result.exit_code == 0, (result.output, result.exception)
    assert ACCESS not in result.output and REFRESH not in result.output
    qbo, xero = json.loads(result.output)
    assert qbo["tenant"] == "quickbooks:111" and qbo["business"] == "acme"
    assert qbo["tokens"]["access_expired"] is False and qbo["tokens"]["version"] == 0
    assert set(qbo["tokens"]) == {"access_expires_at", "access_expired", "refresh_expires_at",
                                  "version"}
    assert qbo["last_run"]["done"] == 6 and qbo["last_run"]["errors"] == ["INV-9: fee rejected"]
    assert qbo["checkpoint"]["since"] is not None
    assert xero["tokens"] == {"problem": "unreadable with this key"}
    assert xero["last_run"] is None


def test_status_filters_tenants_and_reports_unknown_ones(db: Path) -> None:
    env = {"AR_SYNC_SECRET_KEY": KEY}
    result = runner.invoke(app, ["status", "--db", str(db), "-t", "xero:abc", "--format",
                                 "json"], env=env)
    assert [s["tenant"] for s in json.loads(result.output)] == ["xero:abc"]
    result = runner.invoke(app, ["status", "--db", str(db), "-t", "nope"], env=env)
    assert isinstance(result.exception, UserError) and "nope" in str(result.exception)


def test_status_without_connections_hints_connect(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--db", str(tmp_path / "none.db")],
                           env={"AR_SYNC_SECRET_KEY": KEY})
    assert isinstance(result.exception, UserError)
    assert "ar-sync connect" in (result.exception.hint or "")
