"""Friendly errors through the real entry point: a message and a hint, exit 2, no traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ar_sync.cli import main
from ar_sync.cli.errors import UserError, user_error_for
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection, TokenSet


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["ar-sync", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out + captured.err


@pytest.mark.parametrize(("args", "message", "hint"), [
    (["run", "--rules", "/nowhere/rules.yaml"], "rules: /nowhere/rules.yaml: cannot read",
     "rules file"),
    (["report", "--db", "/"], "cannot use the store", "--db"),
    (["report", "--today", "31/03/2026", "--invoices", "/nowhere/x.json"], "is not a date",
     "YYYY-MM-DD"),
    (["connect", "xero"], "AR_SYNC_XERO_CLIENT_ID", "ar-sync demo"),
])
def test_user_errors_print_message_and_hint(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            args: list[str], message: str, hint: str) -> None:
    monkeypatch.delenv("AR_SYNC_XERO_CLIENT_ID", raising=False)
    monkeypatch.setenv("AR_SYNC_HOME", str(tmp_path))
    code, output = _run(monkeypatch, capsys, *args)
    flat = " ".join(output.split())
    assert code == 2
    assert "Traceback" not in output
    assert f"error: {message}" in flat or message in flat
    assert "hint:" in flat and hint in flat


def test_wrong_store_key_is_explained(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from datetime import UTC, datetime

    db = tmp_path / "k.db"
    store = SQLiteStore(db, cipher=TokenCipher(TokenCipher.generate_key()))
    store.save_connection(Connection(id="xero:t", platform="xero", external_id="t"))
    store.save_tokens("xero:t", TokenSet(access_token="a", refresh_token="r",
                                         expires_at=datetime.now(UTC)), expected_version=-1)
    monkeypatch.setenv("AR_SYNC_SECRET_KEY", TokenCipher.generate_key().decode())
    monkeypatch.setenv("AR_SYNC_XERO_CLIENT_ID", "id")
    monkeypatch.setenv("AR_SYNC_XERO_CLIENT_SECRET", "secret")
    code, output = _run(monkeypatch, capsys, "run", "--db", str(db), "--dry-run")
    flat = " ".join(output.split())
    assert code == 2 and "Traceback" not in output
    assert "cannot be decrypted" in flat and "AR_SYNC_SECRET_KEY" in flat


def test_bugs_keep_their_traceback() -> None:
    assert user_error_for(KeyError("x")) is None
    assert user_error_for(ZeroDivisionError()) is None
    same = UserError("m", hint="h")
    assert user_error_for(same) is same
