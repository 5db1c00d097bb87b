"""connect.onboarding with a stand-in connector plugin, on the DynamoDB store (moto server)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from ar_sync.aws import config
from ar_sync.connect import onboarding
from ar_sync.connect.onboarding import (
    AuthorizationDeniedError,
    OAuthStateError,
    TenantBindingError,
    finish_connect,
    start_connect,
)
from ar_sync.sync.connector import AuthorizedCompany, Connection, PlatformSettings, TokenSet

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SETTINGS = PlatformSettings(client_id="cid", client_secret="cs",
                            redirect_uri="https://x.test/cb")


class FakePlugin:
    platform = "xero"
    display_name = "Xero"

    def __init__(self, companies: Sequence[AuthorizedCompany]) -> None:
        self.companies = list(companies)
        self.exchanges: list[dict[str, Any]] = []

    def authorization_url(self, settings: PlatformSettings, *, state: str,
                          code_challenge: str | None) -> str:
        return f"https://login.test/authorize?state={state}&code_challenge={code_challenge}"

    def exchange_code(self, settings: PlatformSettings, *, code: str,
                      code_verifier: str | None, callback_params: Mapping[str, str]
                      ) -> tuple[TokenSet, Sequence[AuthorizedCompany]]:
        self.exchanges.append({"code": code, "verifier": code_verifier})
        return TokenSet(access_token="AT-" + code, refresh_token="RT-" + code,
                        expires_at=T0 + timedelta(minutes=30)), self.companies


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> FakePlugin:
    fake = FakePlugin([AuthorizedCompany("org-a", "Org A"), AuthorizedCompany("org-b", "Org B")])
    monkeypatch.setattr(onboarding, "load_plugin", lambda name: fake)
    return fake


def state_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["state"][0]


def test_start_and_finish_bind_every_company(aws: dict[str, str], plugin: FakePlugin) -> None:
    store = config.store()
    url = start_connect(store, "xero", "biz-1", SETTINGS, now=T0)
    assert "code_challenge=" in url and "None" not in url
    got = finish_connect(store, {"state": state_of(url), "code": "c1"}, SETTINGS,
                         now=T0 + timedelta(minutes=1))
    assert [c.id for c in got] == ["xero:org-a", "xero:org-b"]
    assert all(c.business_id == "biz-1" for c in got)
    assert plugin.exchanges[0]["verifier"]  # PKCE verifier went to the token exchange
    assert store.load_tokens("xero:org-a").access_token == "AT-c1"


def test_expired_state(aws: dict[str, str], plugin: FakePlugin) -> None:
    store = config.store()
    url = start_connect(store, "xero", "biz-2", SETTINGS, now=T0, ttl_seconds=60)
    with pytest.raises(OAuthStateError):
        finish_connect(store, {"state": state_of(url), "code": "c"}, SETTINGS,
                       now=T0 + timedelta(seconds=61))
    assert plugin.exchanges == []


def test_denied_consent_consumes_the_state(aws: dict[str, str], plugin: FakePlugin) -> None:
    store = config.store()
    url = start_connect(store, "xero", "biz-3", SETTINGS, now=T0)
    with pytest.raises(AuthorizationDeniedError):
        finish_connect(store, {"state": state_of(url), "error": "access_denied"}, SETTINGS,
                       now=T0)
    with pytest.raises(OAuthStateError):
        finish_connect(store, {"state": state_of(url), "code": "c"}, SETTINGS, now=T0)
    assert plugin.exchanges == []


def test_one_company_bound_elsewhere_stores_nothing(aws: dict[str, str],
                                                    plugin: FakePlugin) -> None:
    store = config.store()
    plugin.companies = [AuthorizedCompany("org-free", "Free"),
                        AuthorizedCompany("org-taken", "Taken")]
    store.save_connection(Connection(id="xero:org-taken", platform="xero",
                                     external_id="org-taken", business_id="owner"))
    url = start_connect(store, "xero", "thief", SETTINGS, now=T0)
    with pytest.raises(TenantBindingError) as info:
        finish_connect(store, {"state": state_of(url), "code": "c9"}, SETTINGS, now=T0)
    assert "org-taken" not in str(info.value)  # no hint about whose company it is
    assert store.get_connection("xero:org-free") is None
    assert store.load_tokens("xero:org-free") is None
    assert store.get_connection("xero:org-taken").business_id == "owner"


def test_callback_for_another_business(aws: dict[str, str], plugin: FakePlugin) -> None:
    store = config.store()
    url = start_connect(store, "xero", "biz-4", SETTINGS, now=T0)
    with pytest.raises(TenantBindingError):
        finish_connect(store, {"state": state_of(url), "code": "c"}, SETTINGS, now=T0,
                       business_id="biz-other")
    assert plugin.exchanges == []
