"""The ConnectorPlugin the core loads: OAuth consent, code exchange, and opening a session."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from ar_sync.connect.tokens import TokenManager
from ar_sync.domain.errors import PlatformValidationError
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import (
    AuthorizedCompany,
    Connection,
    PlatformSettings,
    TokenSet,
    TokenStore,
)
from ar_sync_quickbooks import oauth
from ar_sync_quickbooks.client import QuickBooksClient, api_url_for, run, utcnow
from ar_sync_quickbooks.connector import QuickBooksConnector


class _FixedToken:
    """Token source for the one call made right after the code exchange."""

    def __init__(self, token: str) -> None:
        self._token = token

    def access_token(self) -> str:
        return self._token

    def after_unauthorized(self, rejected_access_token: str) -> str:
        return self._token


class QuickBooksPlugin:
    platform = "quickbooks"
    display_name = "QuickBooks Online"

    def __init__(self, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.sleep = sleep
        self.clock = clock

    def authorization_url(self, settings: PlatformSettings, *, state: str,
                          code_challenge: str | None) -> str:
        # intuit-oauth's AuthClient builds the URL without PKCE parameters (this is a
        # confidential client with a secret); the single-use `state` guards the callback.
        return oauth.authorization_url(settings, state)

    def exchange_code(self, settings: PlatformSettings, *, code: str,
                      code_verifier: str | None,
                      callback_params: Mapping[str, str]) -> tuple[TokenSet,
                                                                   Sequence[AuthorizedCompany]]:
        realm = callback_params.get("realmId")
        if not realm:
            raise PlatformValidationError("the Intuit callback carried no realmId")
        tokens = oauth.exchange_code(settings, code, realm, self.clock())
        client = QuickBooksClient(realm_id=realm, api_url=api_url_for(settings.endpoints),
                                  tokens=_FixedToken(tokens.access_token),
                                  budget=CallBudget())
        info = run(lambda: client.get_single_object("CompanyInfo", pk=realm),
                   what="quickbooks company info", sleep=self.sleep)
        name = str(info.get("CompanyInfo", {}).get("CompanyName") or f"QuickBooks {realm}")
        return tokens, [AuthorizedCompany(external_id=realm, name=name)]

    def open(self, settings: PlatformSettings, connection: Connection, tokens: TokenStore,
             budget: CallBudget, *,
             clock: Callable[[], datetime] | None = None) -> QuickBooksConnector:
        now = clock or self.clock
        manager = TokenManager(connection.id, tokens,
                               oauth.Refresher(settings, now, self.sleep), clock=now)
        client = QuickBooksClient(realm_id=connection.external_id,
                                  api_url=api_url_for(settings.endpoints), tokens=manager,
                                  budget=budget)
        return QuickBooksConnector(connection, client, clock=now, sleep=self.sleep)
