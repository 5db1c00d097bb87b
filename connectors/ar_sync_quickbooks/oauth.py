"""Intuit OAuth2 through intuit-oauth's AuthClient: consent URL, code exchange, refresh.

The AuthClient takes an OpenID discovery URL as its `environment`, so the same code talks to
Intuit or to the local emulator (settings.endpoints['discovery']).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from requests import RequestException

from ar_sync.domain.errors import ReauthorizationRequiredError, TransientError
from ar_sync.sync.connector import PlatformSettings, TokenSet
from ar_sync.sync.retry import call_with_retries

ACCOUNTING_SCOPE = Scopes.ACCOUNTING


def environment_of(settings: PlatformSettings) -> str:
    """A discovery URL (emulator, or a pinned Intuit URL) or 'production' / 'sandbox'."""
    return settings.endpoints.get("discovery") or settings.endpoints.get(
        "environment", "production")


def auth_client(settings: PlatformSettings) -> AuthClient:
    """A fresh AuthClient (fetches the discovery document: one GET, not an API call)."""
    try:
        return AuthClient(settings.client_id, settings.client_secret, settings.redirect_uri,
                          environment_of(settings))
    except RequestException as exc:
        raise TransientError(f"Intuit discovery document unreachable: {type(exc).__name__}") \
            from exc
    except AuthClientError as exc:
        raise TransientError(f"Intuit discovery document: HTTP {exc.status_code}") from exc


def _scopes(settings: PlatformSettings) -> list[Scopes]:
    by_value = {s.value: s for s in Scopes}
    chosen = [by_value[s] for s in settings.scopes if s in by_value]
    return chosen or [ACCOUNTING_SCOPE]


def authorization_url(settings: PlatformSettings, state: str) -> str:
    return str(auth_client(settings).get_authorization_url(_scopes(settings), state_token=state))


def _error_name(exc: AuthClientError) -> str:
    try:
        return str(json.loads(exc.content).get("error", "")) or f"HTTP {exc.status_code}"
    except (ValueError, AttributeError):
        return f"HTTP {exc.status_code}"


def _typed(exc: AuthClientError, what: str) -> Exception:
    """invalid_grant / invalid_client -> a person must reconnect; 5xx -> try again later.
    Only the error name goes into the message: token bodies never reach a log."""
    name = _error_name(exc)
    if exc.status_code >= 500 or exc.status_code == 429:
        return TransientError(f"Intuit {what} failed: {name}")
    return ReauthorizationRequiredError(f"Intuit {what} refused: {name}; connect the company "
                                        "again", platform_code=name)


def token_set(client: AuthClient, now: datetime) -> TokenSet:
    refresh_expires = getattr(client, "x_refresh_token_expires_in", None)
    return TokenSet(
        access_token=str(client.access_token), refresh_token=str(client.refresh_token),
        expires_at=now + timedelta(seconds=float(client.expires_in or 3600)),
        refresh_expires_at=(now + timedelta(seconds=float(refresh_expires))
                            if refresh_expires else None),
    )


def exchange_code(settings: PlatformSettings, code: str, realm_id: str | None,
                  now: datetime) -> TokenSet:
    client = auth_client(settings)
    try:
        client.get_bearer_token(code, realm_id=realm_id)
    except AuthClientError as exc:
        raise _typed(exc, "code exchange") from exc
    except RequestException as exc:
        raise TransientError(f"Intuit code exchange: {type(exc).__name__}") from exc
    return token_set(client, now)


class Refresher:
    """`refresh(refresh_token) -> TokenSet` for the TokenManager; the AuthClient (and its
    discovery GET) is made only when a refresh is actually needed."""

    def __init__(self, settings: PlatformSettings, clock: Callable[[], datetime],
                 sleep: Callable[[float], None]) -> None:
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._client: AuthClient | None = None
        self.calls = 0

    def __call__(self, refresh_token: str) -> TokenSet:
        def attempt() -> TokenSet:
            if self._client is None:
                self._client = auth_client(self._settings)
            self.calls += 1
            try:
                self._client.refresh(refresh_token=refresh_token)
            except AuthClientError as exc:
                raise _typed(exc, "token refresh") from exc
            except RequestException as exc:
                raise TransientError(f"Intuit token refresh: {type(exc).__name__}") from exc
            return token_set(self._client, self._clock())

        return call_with_retries(attempt, what="quickbooks token refresh", attempts=3,
                                 sleep=self._sleep)
