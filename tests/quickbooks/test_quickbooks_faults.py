"""Token expiry and rotation, throttling, 5xx, timeouts, budgets: the connector against the
emulator's fault switches."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from qbo_helpers import FakeClock, Session, connect

from ar_sync.domain.errors import (
    BudgetExhaustedError,
    RateLimitedError,
    ReauthorizationRequiredError,
    TransientError,
)
from ar_sync.sync.budget import CallBudget
from ar_sync_emulators.books import DemoCompany, demo_company
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_quickbooks import QuickBooksPlugin


def test_expired_token_mid_run_refreshes_once_and_continues(qbo: Session) -> None:
    connector = qbo.open()
    first = connector.fetch_open_invoices()
    old = qbo.store.load_tokens(qbo.connection.id)
    assert old is not None
    qbo.emu.faults.expire_tokens()
    ref = connector.add_note(first.invoices[0], "after expiry", key="arexp")
    assert ref.startswith("Attachable:")
    new = qbo.store.load_tokens(qbo.connection.id)
    assert new is not None and new.version == old.version + 1
    assert new.refresh_token != old.refresh_token  # rotated, and persisted before use
    assert qbo.emu.counters.calls["POST /v3/company/{realm}/attachable"] == 2  # 401, then ok


def test_token_refreshed_before_expiry_by_the_clock() -> None:
    clock = FakeClock(datetime(2026, 11, 16, 17, 0, tzinfo=UTC))
    emu = QuickBooksEmulator(clock=clock, access_token_ttl=600)
    emu.seed(demo_company(invoices=10, customers=3))
    plugin = QuickBooksPlugin(sleep=lambda s: None, clock=clock)
    with emu.serve():
        settings = emu.settings()
        store, connection = connect(emu, plugin, settings)
        connector = plugin.open(settings, connection, store, CallBudget(), clock=clock)
        connector.fetch_open_invoices()
        clock.advance(550)  # within the TokenManager's skew of expiry
        connector.fetch_open_invoices()
        tokens = store.load_tokens(connection.id)
    assert tokens is not None and tokens.version == 1
    assert "GET /v3/company/{realm}/query" not in emu.counters.calls
    assert emu.counters.calls["POST /oauth2/v1/tokens/bearer"] == 2  # exchange + refresh


def test_old_refresh_token_is_invalid_grant_after_rotation(qbo: Session) -> None:
    settings = qbo.settings
    client = AuthClient(settings.client_id, settings.client_secret, settings.redirect_uri,
                        settings.endpoints["discovery"])
    tokens = qbo.store.load_tokens(qbo.connection.id)
    assert tokens is not None
    client.refresh(refresh_token=tokens.refresh_token)
    assert client.refresh_token != tokens.refresh_token
    with pytest.raises(AuthClientError) as err:
        client.refresh(refresh_token=tokens.refresh_token)
    assert err.value.status_code == 400 and b"invalid_grant" in err.value.content
    # the connector's store still holds the spent token: it must ask for reconnection
    qbo.emu.faults.expire_tokens()
    with pytest.raises(ReauthorizationRequiredError, match="invalid_grant"):
        qbo.open().fetch_open_invoices()


def test_revoked_connection_needs_reauthorization(qbo: Session) -> None:
    settings = qbo.settings
    tokens = qbo.store.load_tokens(qbo.connection.id)
    assert tokens is not None
    client = AuthClient(settings.client_id, settings.client_secret, settings.redirect_uri,
                        settings.endpoints["discovery"])
    assert client.revoke(token=tokens.refresh_token)
    with pytest.raises(ReauthorizationRequiredError):
        qbo.open().fetch_open_invoices()


def test_http_authorize_endpoint_and_sdk_consent_flow(qbo: Session) -> None:
    s = qbo.settings
    client = AuthClient(s.client_id, s.client_secret, s.redirect_uri, s.endpoints["discovery"])
    url = client.get_authorization_url([Scopes.ACCOUNTING], state_token="abc")
    answer = requests.get(url, allow_redirects=False, timeout=5)
    params = parse_qs(urlparse(answer.headers["Location"]).query)
    assert params["state"] == ["abc"] and params["realmId"] == [qbo.emu.realm_id]
    client.get_bearer_token(params["code"][0], realm_id=params["realmId"][0])
    assert client.access_token and client.refresh_token and client.expires_in == 3600
    with pytest.raises(AuthClientError):  # a code is single-use
        client.get_bearer_token(params["code"][0])
    bad = requests.post(s.endpoints["token"], data={"grant_type": "refresh_token",
                                                    "refresh_token": "x"},
                        auth=("wrong", "client"), timeout=5)
    assert bad.status_code == 401 and bad.json() == {"error": "invalid_client"}


def test_429_storm_then_success_honours_retry_after(qbo: Session) -> None:
    qbo.emu.faults.throttle_next(3, retry_after=2, match="/query")
    result = qbo.open().fetch_open_invoices()
    assert result.invoices
    assert qbo.sleeps[:3] == [2.0, 2.0, 2.0]
    assert (qbo.emu.counters.calls["POST /v3/company/{realm}/query"]  # pages, and payments
            + qbo.emu.counters.calls["POST /v3/company/{realm}/batch"]) == qbo.budget.calls


def test_429_storm_longer_than_the_retries_raises_rate_limited(qbo: Session) -> None:
    qbo.emu.faults.throttle_next(20, retry_after=1, match="/query")
    with pytest.raises(RateLimitedError) as err:
        qbo.open().fetch_open_invoices()
    assert err.value.retry_after == 1.0 and "ThrottleExceeded" in str(err.value)


def test_per_realm_rate_limit_answers_429(company: DemoCompany) -> None:
    emu = QuickBooksEmulator(rate_per_minute=4).seed(company)
    sleeps: list[float] = []
    plugin = QuickBooksPlugin(sleep=sleeps.append)
    with emu.serve():
        settings = emu.settings()
        store, connection = connect(emu, plugin, settings)  # CompanyInfo spends one call
        connector = plugin.open(settings, connection, store, CallBudget())
        connector.fetch_open_invoices()  # 3 calls (a page, e-mails, payments): limit reached
        with pytest.raises(RateLimitedError) as err:
            connector.get_invoice("1001")
    assert err.value.retry_after is not None and 0 < err.value.retry_after <= 60
    assert len(sleeps) == 5  # backed off between its six attempts


def test_5xx_then_success_and_5xx_storm(qbo: Session) -> None:
    qbo.emu.faults.fail_next(2, status=503)
    assert qbo.open().fetch_open_invoices().invoices
    assert len(qbo.sleeps) == 2
    qbo.emu.faults.fail_next(10, status=500)
    with pytest.raises(TransientError, match="500"):
        qbo.open().get_invoice("1001")


def test_a_call_past_its_deadline_is_not_asked_again(qbo: Session) -> None:
    """A platform that gives no answer within a call's total deadline (sync.deadline) is a
    PlatformTimeoutError: transient (the next run tries again) but not retried within the run,
    so a silent platform costs one deadline, not one per attempt (issue 20)."""
    from ar_sync.domain.errors import PlatformTimeoutError

    connector = qbo.open()
    connector.client._deadline = 0.3
    qbo.emu.faults.timeout_next(1, seconds=1.0, match="/invoice/")
    calls = qbo.emu.counters.total_calls
    with pytest.raises(PlatformTimeoutError, match=r"no answer within 0\.3 s"):
        connector.get_invoice("1001")
    assert qbo.sleeps == [] and qbo.budget.calls == 1
    assert qbo.emu.counters.total_calls - calls <= 1  # asked once
    with pytest.raises(PlatformTimeoutError, match="not asked"):  # silent for this run
        connector.get_invoice("1002")
    assert qbo.budget.calls == 1  # and at once, without a call
    assert qbo.open().get_invoice("1001") is not None  # the next run asks again


def test_budget_is_spent_per_http_call_and_stops_the_run(qbo: Session) -> None:
    budget = CallBudget(max_calls=1)
    connector = qbo.open(budget)
    connector.get_invoice("1001")
    assert budget.calls == 1 and budget.by_endpoint == {"GET invoice/{id}": 1}
    with pytest.raises(BudgetExhaustedError):
        connector.get_invoice("1002")
    assert qbo.emu.counters.total_calls == 1


def test_unknown_invoice_is_none_and_bad_query_is_validation(qbo: Session) -> None:
    from ar_sync.domain.errors import PlatformValidationError

    connector = qbo.open()
    assert connector.get_invoice("999999") is None
    with pytest.raises(PlatformValidationError, match="parsing query"):
        connector.session.query("selec nonsense")
