"""`ar-sync connect` end to end against the emulators' authorize and token endpoints.

The browser is simulated: `webbrowser.open` GETs the authorize URL, takes the emulator's 302
and follows it to the CLI's own callback server on 127.0.0.1, as a browser would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


@pytest.fixture(params=["quickbooks", "xero"])
def platform(request: pytest.FixtureRequest) -> Iterator[tuple[str, PlatformSettings]]:
    company = demo_company(3, customers=2, invoices=4)
    emulator: QuickBooksEmulator | XeroEmulator = (
        QuickBooksEmulator() if request.param == "quickbooks" else XeroEmulator())
    emulator.seed(company)
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


class FakeBrowser:
    """Follows the consent redirect to the callback; `tamper` may rewrite the callback URL."""

    def __init__(self, tamper: Callable[[str], str] = lambda url: url) -> None:
        self.tamper = tamper
        self.callback_status: int | None = None
        self.callback_page = ""

    def __call__(self, url: str, *args: Any, **kwargs: Any) -> bool:
        consent = requests.get(url, allow_redirects=False, timeout=10)
        assert consent.status_code in (302, 303), consent.text
        back = requests.get(self.tamper(consent.headers["Location"]), timeout=10)
        self.callback_status, self.callback_page = back.status_code, back.text
        return True


def _with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit((*parts[:3], urlencode(query), ""))


def _store(db: Path) -> SQLiteStore:
    return SQLiteStore(db, cipher=TokenCipher(KEY))


def test_connect_stores_encrypted_tokens_and_the_company(
        platform: tuple[str, PlatformSettings], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name, settings = platform
    browser = FakeBrowser()
    monkeypatch.setattr(connect_module.webbrowser, "open", browser)
    db = tmp_path / "ar.db"
    result = runner.invoke(app, ["connect", name, "--db", str(db), "--business", "acme",
                                 "--timeout", "20"], env=_env(name, settings))
    assert result.exit_code == 0, (result.output, result.exception)
    assert browser.callback_status == 200 and "connected" in browser.callback_page
    store = _store(db)
    [connection] = store.list_connections()
    assert connection.platform == name and connection.business_id == "acme"
    assert connection.id in result.output and "Demo" in result.output
    tokens = store.load_tokens(connection.token_key)  # Xero: the consent's shared row
    assert tokens is not None and tokens.access_token
    raw = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("ar.db-*"))
    assert tokens.access_token.encode() not in raw  # encrypted at rest
    assert tokens.refresh_token.encode() not in raw
    assert tokens.access_token not in result.output


def test_wrong_state_is_refused_and_nothing_is_stored(
        platform: tuple[str, PlatformSettings], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name, settings = platform
    browser = FakeBrowser(lambda url: _with_param(url, state="forged-state"))
    monkeypatch.setattr(connect_module.webbrowser, "open", browser)
    db = tmp_path / "ar.db"
    result = runner.invoke(app, ["connect", name, "--db", str(db), "--timeout", "20"],
                           env=_env(name, settings))
    assert isinstance(result.exception, UserError), result.output
    assert "state" in str(result.exception) and result.exception.hint
    assert browser.callback_status == 400 and "Not connected" in browser.callback_page
    store = _store(db)
    assert store.list_connections() == []
    assert store.load_tokens(f"{name}:anything") is None
    assert store._query("SELECT COUNT(*) AS n FROM tokens")[0]["n"] == 0


def test_declined_consent_is_refused(platform: tuple[str, PlatformSettings], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    name, settings = platform

    def decline(url: str) -> str:
        query = dict(parse_qsl(urlsplit(url).query))
        return _with_param(url.split("?")[0], state=query["state"], error="access_denied")

    browser = FakeBrowser(decline)
    monkeypatch.setattr(connect_module.webbrowser, "open", browser)
    result = runner.invoke(app, ["connect", name, "--db", str(tmp_path / "ar.db"),
                                 "--timeout", "20"], env=_env(name, settings))
    assert isinstance(result.exception, UserError)
    assert "access_denied" in str(result.exception) and "consent" in (result.exception.hint or "")
    assert browser.callback_status == 400


def test_no_browser_prints_the_url_and_times_out(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr(connect_module.webbrowser, "open", opened.append)
    emulator = XeroEmulator()
    with emulator.serve():
        settings = emulator.settings(redirect_uri="http://127.0.0.1:0/cb")
        result = runner.invoke(app, ["connect", "xero", "--no-browser", "--timeout", "1",
                                     "--db", str(tmp_path / "ar.db")],
                               env=_env("xero", settings))
    assert opened == []
    assert "/identity/connect/authorize?" in result.output
    assert isinstance(result.exception, UserError) and "within 1 s" in str(result.exception)


def test_settings_problems_are_user_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["connect", "xero", "--db", str(tmp_path / "a.db")],
                           env={"AR_SYNC_XERO_CLIENT_ID": "", "AR_SYNC_XERO_CLIENT_SECRET": ""})
    assert isinstance(result.exception, UserError) and "CLIENT_ID" in str(result.exception)
    env = {"AR_SYNC_XERO_CLIENT_ID": "x", "AR_SYNC_XERO_CLIENT_SECRET": "y",
           "AR_SYNC_XERO_REDIRECT_URI": "https://example.com/callback"}
    result = runner.invoke(app, ["connect", "xero", "--db", str(tmp_path / "a.db")], env=env)
    assert isinstance(result.exception, UserError)
    assert "127.0.0.1" in str(result.exception) and result.exception.hint


def test_port_in_use_is_a_user_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"AR_SYNC_XERO_CLIENT_ID": "x", "AR_SYNC_XERO_CLIENT_SECRET": "y",
               "AR_SYNC_XERO_REDIRECT_URI": f"http://127.0.0.1:{port}/callback"}
        result = runner.invoke(app, ["connect", "xero", "--db", str(tmp_path / "a.db")], env=env)
    assert isinstance(result.exception, UserError)
    assert f"cannot listen on 127.0.0.1:{port}" in str(result.exception)
    assert "--port" in (result.exception.hint or "")


def test_callback_server_answers_once_and_ignores_other_paths() -> None:
    from ar_sync.cli.oauth_callback import CallbackRefused, CallbackServer

    seen: list[dict[str, str]] = []

    def handler(params: dict[str, str]) -> tuple[str, str]:
        seen.append(params)
        if params.get("state") != "good":
            raise CallbackRefused("bad <state>")
        return "ok", "done"

    server = CallbackServer("127.0.0.1", 0, "/cb", handler)
    base = f"http://127.0.0.1:{server.port}"
    with server.running():
        assert requests.get(base + "/favicon.ico", timeout=5).status_code == 404
        assert requests.get(base + "/cb", timeout=5).status_code == 404  # no state, no code
        assert not server.wait(0.05)
        first = requests.get(base + "/cb?state=evil&code=1", timeout=5)
        assert first.status_code == 400 and "bad &lt;state&gt;" in first.text  # escaped
        assert requests.get(base + "/cb?state=good&code=1", timeout=5).status_code == 409
        assert server.wait(1)
    assert seen == [{"state": "evil", "code": "1"}]
    assert isinstance(server.result.error, CallbackRefused)
