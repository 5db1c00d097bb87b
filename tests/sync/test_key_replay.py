"""The key-replay switch of the emulators and the in-memory fake: `all` (what the platforms
promise), `email-only`, `window=SECONDS`, `off` — so the fault suites can take the platforms'
help away and prove the ledger alone keeps writes single."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from ar_sync.domain.models import Invoice
from ar_sync.sync.connector import Connection
from ar_sync_emulators.base import Response
from ar_sync_emulators.replay import IdempotencyCache, ReplayMode, is_email_path

from .emulators import EmulatorAdapter, small_company
from .fakes import FakeConnector, FakePlatform, FaultPlan

T0 = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)


def test_parse_modes_and_reject_garbage() -> None:
    assert ReplayMode.parse("all") == ReplayMode()
    assert ReplayMode.parse(" Email-Only ") == ReplayMode("email-only")
    assert ReplayMode.parse("window=90") == ReplayMode("window", 90.0)
    assert str(ReplayMode.parse("window=90")) == "window=90"
    assert ReplayMode.parse(None) == ReplayMode()
    for bad in ("sometimes", "window=", "window=-1", "window=abc"):
        with pytest.raises(ValueError, match="key replay mode"):
            ReplayMode.parse(bad)


def test_email_endpoints_are_recognised() -> None:
    assert is_email_path("/v3/company/1/invoice/42/send")
    assert is_email_path("t1:/api.xro/2.0/invoices/abc/email")
    assert not is_email_path("/v3/company/1/attachable")
    assert not is_email_path("t1:/api.xro/2.0/invoices/abc/history")


@pytest.mark.parametrize(("mode", "note_replayed", "email_replayed"), [
    ("all", True, True), ("email-only", False, True), ("off", False, False)])
def test_cache_replays_by_mode(mode: str, note_replayed: bool, email_replayed: bool) -> None:
    cache = IdempotencyCache(mode, clock=lambda: T0)
    ok = Response.json(200, {"ok": True})
    cache.put("k", "post", "/v3/company/1/attachable", ok)
    cache.put("k", "post", "/v3/company/1/invoice/9/send", ok)
    assert (cache.get("k", "POST", "/v3/company/1/attachable") is not None) is note_replayed
    assert (cache.get("k", "POST", "/v3/company/1/invoice/9/send") is not None) is email_replayed
    assert cache.get("other", "POST", "/v3/company/1/attachable") is None


def test_window_forgets_keys_after_its_seconds() -> None:
    now = [T0]
    cache = IdempotencyCache("window=60", clock=lambda: now[0])
    cache.put("k", "PUT", "t:/invoices/1/history", Response.json(200, {}))
    now[0] = T0 + timedelta(seconds=60)
    assert cache.get("k", "PUT", "t:/invoices/1/history") is not None
    now[0] = T0 + timedelta(seconds=61)
    assert cache.get("k", "PUT", "t:/invoices/1/history") is None


def test_env_var_sets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AR_SYNC_SANDBOX_REPLAY", "off")
    assert IdempotencyCache().replay == ReplayMode("off")
    assert IdempotencyCache("all").replay == ReplayMode()  # an explicit mode wins


def test_sandbox_serve_rejects_a_bad_mode() -> None:
    from ar_sync.cli import app  # the package registers every command
    from ar_sync.cli.errors import UserError

    result = CliRunner().invoke(app, ["sandbox", "serve", "--replay", "sometimes"])
    assert isinstance(result.exception, UserError)
    assert "key replay mode 'sometimes'" in str(result.exception)


def _fake_invoice() -> Invoice:
    from .test_sync_run import _invoice
    return _invoice(1, 45)


@pytest.mark.parametrize(("mode", "notes", "emails"), [
    ("all", 1, 1), ("email-only", 2, 1), ("off", 2, 2)])
def test_fake_platform_honours_the_switch(mode: str, notes: int, emails: int) -> None:
    inv = _fake_invoice()
    state = FakePlatform(invoices={inv.id: inv})
    conn = FakeConnector(state, Connection(id="fake:1", platform="fake", external_id="1"),
                         FaultPlan(rng=random.Random(0), platform_keys=mode))
    for _ in range(2):
        conn.add_note(inv, "hello", key="arKEY1")
        conn.send_reminder(inv, key="arKEY2")
    assert state.effects() == {"arKEY1": notes, "arKEY2": emails}


@pytest.mark.parametrize("platform", ["quickbooks", "xero"])
@pytest.mark.parametrize(("mode", "notes", "emails"), [("all", 1, 1), ("email-only", 2, 1)])
def test_emulators_honour_the_switch_through_the_sdks(platform: str, mode: str, notes: int,
                                                       emails: int) -> None:
    adapter = EmulatorAdapter(platform, replay=mode)
    try:
        adapter.reset(small_company(random.Random(5)))
        assert adapter.connection is not None
        conn = adapter.connector(adapter.connection, random.Random(0), faulty=False)
        invoice = next(i for i in conn.fetch_open_invoices(None).invoices if i.customer_email)
        for _ in range(2):
            conn.add_note(invoice, "A friendly reminder", key="arNOTEKEY")
            conn.send_reminder(invoice, key="arMAILKEY")
        assert adapter.effects() == {"arNOTEKEY": notes, "arMAILKEY": emails}
    finally:
        adapter.close()


def test_sandbox_serve_starts_when_stderr_is_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a harness that captures stderr (no file descriptor behind it), the stack-dump
    handler is left out instead of failing the command (before: UnsupportedOperation)."""
    import io
    import sys

    from ar_sync.cli import app
    from ar_sync.cli.errors import UserError

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    result = CliRunner().invoke(app, ["sandbox", "serve", "--replay", "sometimes"])
    assert isinstance(result.exception, UserError)
