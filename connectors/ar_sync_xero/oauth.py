"""Xero's OAuth2 identity calls: consent URL, code exchange, refresh, /connections.

Token requests go through xero-python's own HTTP client (urllib3); endpoints come from
PlatformSettings.endpoints so the local emulator and production use the same code.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from xero_python.exceptions import ApiException
from xero_python.identity import IdentityApi

from ar_sync.domain.errors import ReauthorizationRequiredError, TransientError
from ar_sync.sync.connector import AuthorizedCompany, PlatformSettings, TokenSet
from ar_sync_xero.calls import map_error, new_api_client, sdk_token

AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
TOKEN_URL = "https://identity.xero.com/connect/token"  # noqa: S105 (a URL, not a secret)
IDENTITY_URL = "https://api.xero.com"
API_URL = "https://api.xero.com/api.xro/2.0"
# Xero's granular scopes (required for apps created from 2 March 2026; older apps may keep
# "accounting.transactions" until September 2027 by setting PlatformSettings.scopes).
# accounting.settings.read: GET /Organisation (lock dates) and /TaxRates (fee tax).
DEFAULT_SCOPES = ("openid", "profile", "email", "accounting.invoices",
                  "accounting.contacts.read", "accounting.settings.read", "offline_access")
REFRESH_TOKEN_LIFETIME = timedelta(days=60)  # unused refresh tokens expire after 60 days


def endpoint(settings: PlatformSettings, name: str, default: str) -> str:
    return str(settings.endpoints.get(name, default))


def authorization_url(settings: PlatformSettings, *, state: str,
                      code_challenge: str | None) -> str:
    params = {"response_type": "code", "client_id": settings.client_id,
              "redirect_uri": settings.redirect_uri,
              "scope": " ".join(settings.scopes or DEFAULT_SCOPES), "state": state}
    if code_challenge:
        params.update(code_challenge=code_challenge, code_challenge_method="S256")
    return f"{endpoint(settings, 'authorize', AUTHORIZE_URL)}?{urlencode(params)}"


def _token_request(settings: PlatformSettings, form: dict[str, str],
                   clock: Callable[[], datetime]) -> TokenSet:
    """POST to the token endpoint (client secret in a Basic header, as Xero documents)."""
    client = new_api_client()
    basic = base64.b64encode(f"{settings.client_id}:{settings.client_secret}".encode()).decode()
    now = clock()
    try:
        response, _status, _headers = client.call_api(
            endpoint(settings, "token", TOKEN_URL), "POST",
            header_params={"Accept": "application/json", "Authorization": f"Basic {basic}",
                           "Content-Type": "application/x-www-form-urlencoded"},
            post_params=list(form.items()), auth_settings=None, _preload_content=False,
            _request_timeout=(5, 30))
    except ApiException as exc:
        body: Any = None
        with contextlib.suppress(TypeError, ValueError):
            body = json.loads(exc.body or b"")
        error = body.get("error") if isinstance(body, dict) else None
        if error in ("invalid_grant", "invalid_client", "unauthorized_client"):
            raise ReauthorizationRequiredError(
                f"Xero token endpoint: {error}; connect the organisation again",
                platform_code=str(error)) from exc
        mapped = map_error(exc, "token endpoint")
        raise (mapped if isinstance(mapped, TransientError) else TransientError(str(mapped))
               ) from exc
    except Exception as exc:
        raise map_error(exc, "token endpoint") from exc
    data = json.loads(response.data.decode("utf-8"))
    return TokenSet(access_token=str(data["access_token"]),
                    refresh_token=str(data["refresh_token"]),
                    expires_at=now + timedelta(seconds=int(data.get("expires_in", 1800))),
                    refresh_expires_at=now + REFRESH_TOKEN_LIFETIME)


def exchange_code(settings: PlatformSettings, code: str, code_verifier: str | None,
                  clock: Callable[[], datetime]) -> TokenSet:
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": settings.redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    return _token_request(settings, form, clock)


def refresh(settings: PlatformSettings, refresh_token: str,
            clock: Callable[[], datetime]) -> TokenSet:
    """One refresh: Xero rotates the refresh token; the old one answers invalid_grant after."""
    return _token_request(settings, {"grant_type": "refresh_token",
                                     "refresh_token": refresh_token}, clock)


def auth_event_id(access_token: str) -> str | None:
    """The consent behind an access token: its JWT's `authentication_event_id` claim (read,
    not verified: it only filters /connections, which Xero itself authorises)."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return None
    event = claims.get("authentication_event_id") if isinstance(claims, dict) else None
    return str(event) if event else None


def connections(settings: PlatformSettings, access_token: str) -> Sequence[AuthorizedCompany]:
    """The organisations of this consent (GET /connections?authEventId=...), organisations
    only. Without the filter /connections lists every organisation the user ever connected
    to the app, under other consents (other token sets) too."""
    client = new_api_client(lambda: sdk_token(access_token))
    api = IdentityApi(client, base_url=endpoint(settings, "identity", IDENTITY_URL))
    event = auth_event_id(access_token)
    try:
        rows = (api.get_connections(auth_event_id=event, _request_timeout=(5, 30)) if event
                else api.get_connections(_request_timeout=(5, 30)))
    except Exception as exc:
        raise map_error(exc, "GET /connections") from exc
    return [AuthorizedCompany(external_id=str(row.tenant_id), name=str(row.tenant_name or ""),
                              grant=event)
            for row in rows or []
            if str(row.tenant_type or "ORGANISATION").upper() == "ORGANISATION"
            and (event is None or str(row.auth_event_id or event) == event)]
