"""The `xero` entry point: OAuth consent, code exchange with tenant listing, and sessions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import (
    AuthorizedCompany,
    Connection,
    PlatformSettings,
    TokenSet,
    TokenStore,
)
from ar_sync_xero import oauth
from ar_sync_xero.connector import XeroConnector


def _utcnow() -> datetime:
    return datetime.now(UTC)


class XeroPlugin:
    """Implements ar_sync.sync.connector.ConnectorPlugin for Xero (xero-python)."""

    platform = "xero"
    display_name = "Xero"

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or _utcnow  # token expiry times are computed on this clock

    def authorization_url(self, settings: PlatformSettings, *, state: str,
                          code_challenge: str | None) -> str:
        return oauth.authorization_url(settings, state=state, code_challenge=code_challenge)

    def exchange_code(self, settings: PlatformSettings, *, code: str,
                      code_verifier: str | None, callback_params: Mapping[str, str],
                      ) -> tuple[TokenSet, Sequence[AuthorizedCompany]]:
        """Trade the code for tokens, then list the organisations from GET /connections."""
        tokens = oauth.exchange_code(settings, code, code_verifier, self._clock)
        return tokens, oauth.connections(settings, tokens.access_token)

    def open(self, settings: PlatformSettings, connection: Connection, tokens: TokenStore,
             budget: CallBudget, *, clock: Callable[[], datetime] | None = None,
             ) -> XeroConnector:
        return XeroConnector(settings, connection, tokens, budget, clock=clock or self._clock)
