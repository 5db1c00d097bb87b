"""A fee rule's income account (`account:`) is checked against the company's chart of accounts
at `ar-sync connect` and by `ar-sync rules validate FILE --company ID`: a clear error and a
non-zero exit, not a fee that fails on the platform later (Xero: GET /Accounts; QuickBooks:
the Income accounts the 'Late fee' item may book to)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.cli.commands import connect as connect_module
from ar_sync.cli.errors import UserError
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import PlatformSettings
from ar_sync_emulators.books import demo_company
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_emulators.xero.server import XeroEmulator

runner = CliRunner()
KEY = TokenCipher.generate_key().decode()
GOOD = {"quickbooks": "Services", "xero": "270"}  # an Income / revenue account each has


@pytest.fixture(params=["quickbooks", "xero"])
def platform(request: pytest.FixtureRequest) -> Iterator[tuple[str, PlatformSettings]]:
    emulator: QuickBooksEmulator | XeroEmulator = (
        QuickBooksEmulator() if request.param == "quickbooks" else XeroEmulator())
    emulator.seed(demo_company(3, customers=2, invoices=4))
    with ExitStack() as stack:
        stack.enter_context(emulator.serve())
        yield request.param, emulator.settings(redirect_uri="http://127.0.0.1:0/callback")


def _env(name: str, settings: PlatformSettings) -> dict[str, str]:
    prefix = f"AR_SYNC_{name.upper()}_"
    return {prefix + "CLIENT_ID": settings.client_id,
            prefix + "CLIENT_SECRET": settings.client_secret,
            prefix + "REDIRECT_URI": settings.redirect_uri,
            prefix + "ENDPOINTS": json.dumps(dict(settings.endpoints)),
            "AR_SYNC_SECRET_KEY": KEY}


def _browser(url: str, *args: Any, **kwargs: Any) -> bool:
    consent = requests.get(url, allow_redirects=False, timeout=10)
    requests.get(consent.headers["Location"], timeout=10)
    return True


def _rules(tmp_path: Path, account: str) -> Path:
    path = tmp_path / f"rules-{account.replace(' ', '_')}.yaml"
    path.write_text("extends: default\nlate_fees:\n  - name: interest\n    kind: interest\n"
                    f"    rate: 8\n    account: \"{account}\"\n", encoding="utf-8")
    return path


def _connect(name: str, settings: PlatformSettings, db: Path, rules: Path | None,
             monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(connect_module.webbrowser, "open", _browser)
    args = ["connect", name, "--db", str(db), "--timeout", "20", "--no-show-preview"]
    if rules is not None:
        args += ["--rules", str(rules)]
    return runner.invoke(app, args, env=_env(name, settings))


def test_connect_refuses_a_fee_account_the_company_does_not_have(
        platform: tuple[str, PlatformSettings], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name, settings = platform
    db = tmp_path / "ar.db"
    result = _connect(name, settings, db, _rules(tmp_path, "9999 Late fees"), monkeypatch)
    assert isinstance(result.exception, UserError), result.output
    assert result.exit_code != 0
    assert "9999 Late fees" in result.output and "account" in str(result.exception)
    assert "account:" in (result.exception.hint or "")
    # the connection itself is kept (the consent went through): fix the rules, not the token
    assert len(SQLiteStore(db, cipher=TokenCipher(KEY)).list_connections()) == 1


def test_connect_with_a_known_account_and_the_default_passes(
        platform: tuple[str, PlatformSettings], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name, settings = platform
    result = _connect(name, settings, tmp_path / "a.db", _rules(tmp_path, GOOD[name]),
                      monkeypatch)
    assert result.exit_code == 0, (result.output, result.exception)
    result = _connect(name, settings, tmp_path / "b.db", None, monkeypatch)  # default rules
    assert result.exit_code == 0, (result.output, result.exception)


def test_rules_validate_with_a_company_checks_its_chart_of_accounts(
        platform: tuple[str, PlatformSettings], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name, settings = platform
    db = tmp_path / "ar.db"
    assert _connect(name, settings, db, None, monkeypatch).exit_code == 0
    env = _env(name, settings)
    bad = _rules(tmp_path, "4711")
    result = runner.invoke(app, ["rules", "validate", str(bad)], env=env)
    assert result.exit_code == 0  # without a company the file alone is fine
    result = runner.invoke(app, ["rules", "validate", str(bad), "--company",
                                 f"{name}:", "--db", str(db)], env=env)
    assert result.exit_code != 0  # an unknown tenant is an error too
    tenant = SQLiteStore(db, cipher=TokenCipher(KEY)).list_connections()[0].id
    result = runner.invoke(app, ["rules", "validate", str(bad), "--company", tenant,
                                 "--db", str(db)], env=env)
    assert result.exit_code == 1, result.output
    assert "'4711'" in result.output and tenant in result.output
    good = _rules(tmp_path, GOOD[name])
    result = runner.invoke(app, ["rules", "validate", str(good), "--company", tenant,
                                 "--db", str(db)], env=env)
    assert result.exit_code == 0, result.output
    assert "ok" in result.output
