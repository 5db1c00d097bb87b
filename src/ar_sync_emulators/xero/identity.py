"""The emulated Xero identity service: consent codes, rotating refresh tokens, access tokens.

Refresh tokens are single-use: a refresh returns a new pair and the old refresh token answers
`invalid_grant` once its 30-minute grace period is over (within it, it works again, as Xero's
OAuth 2.0 FAQ describes; `grace_refreshes` counts those, so a test can prove nobody refreshed
twice). Unused refresh tokens expire after 60 days. Access tokens are JWT-shaped and carry the
consent's `authentication_event_id` and `xero_userid`, as Xero's do.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ar_sync_emulators.base import Clock

REFRESH_GRACE = timedelta(minutes=30)
REFRESH_LIFETIME = timedelta(days=60)
DEFAULT_USER = "5f9c1e2a-0000-4000-8000-00000000e001"

DEFAULT_SCOPES = ("openid", "profile", "email", "accounting.invoices",
                  "accounting.contacts.read", "accounting.settings.read", "offline_access")


class GrantError(Exception):
    """An OAuth2 error answered as `{"error": code}` with status 400 (or 401 for clients)."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


@dataclass
class Grant:
    """One consent (an auth event): the tenants a user connected and the scopes granted."""

    id: str
    client_id: str
    tenants: tuple[str, ...]
    scopes: tuple[str, ...]
    created: datetime
    user: str = DEFAULT_USER


@dataclass
class _Code:
    grant: Grant
    redirect_uri: str
    challenge: str | None
    expires: datetime
    used: bool = False


@dataclass
class AccessToken:
    grant: Grant
    expires: datetime
    epoch: int


@dataclass
class _Refresh:
    grant: Grant
    issued: datetime
    used_at: datetime | None = None
    revoked: bool = False


@dataclass
class Identity:
    """Codes and tokens of one emulator; thread-safe."""

    clock: Clock
    client_id: str
    client_secret: str
    access_token_ttl: float = 1800
    # Faults.token_epoch: tokens issued in an earlier epoch count as expired (expire_tokens()).
    epoch: Callable[[], int] = field(default=lambda: 0)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _codes: dict[str, _Code] = field(default_factory=dict)
    _access: dict[str, AccessToken] = field(default_factory=dict)
    _refresh: dict[str, _Refresh] = field(default_factory=dict)
    refreshes: int = 0
    grace_refreshes: int = 0  # refreshes with an already used token (inside the grace)

    def consent(self, client_id: str, redirect_uri: str, tenants: tuple[str, ...],
                scopes: tuple[str, ...], challenge: str | None,
                user: str = DEFAULT_USER) -> tuple[str, Grant]:
        """What the browser consent does: a single-use code valid 5 minutes, and its grant."""
        if client_id != self.client_id:
            raise GrantError("unauthorized_client")
        now = self.clock()
        grant = Grant(str(uuid.uuid4()), client_id, tenants, scopes, now, user)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(grant, redirect_uri, challenge, now + timedelta(minutes=5))
        return code, grant

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        if client_id != self.client_id or not secrets.compare_digest(
                client_secret or "", self.client_secret):
            raise GrantError("invalid_client")

    def exchange(self, code: str, redirect_uri: str | None,
                 verifier: str | None) -> dict[str, object]:
        with self._lock:
            entry = self._codes.get(code)
            if entry is None or entry.used or entry.expires <= self.clock():
                raise GrantError("invalid_grant")
            entry.used = True
            if redirect_uri != entry.redirect_uri:
                raise GrantError("invalid_grant")
            if entry.challenge is not None:
                digest = hashlib.sha256((verifier or "").encode()).digest()
                if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != entry.challenge:
                    raise GrantError("invalid_grant")
            return self._issue(entry.grant)

    def refresh(self, refresh_token: str) -> dict[str, object]:
        with self._lock:
            entry = self._refresh.get(refresh_token)
            now = self.clock()
            if entry is None or entry.revoked or now - entry.issued >= REFRESH_LIFETIME:
                raise GrantError("invalid_grant")
            if entry.used_at is not None:
                if now - entry.used_at >= REFRESH_GRACE:
                    raise GrantError("invalid_grant")
                self.grace_refreshes += 1
            else:
                entry.used_at = now  # single use: rotation (the grace runs from here)
            self.refreshes += 1
            return self._issue(entry.grant)

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            entry = self._refresh.get(refresh_token)
            if entry is not None:
                entry.revoked = True

    def _issue(self, grant: Grant) -> dict[str, object]:
        now = self.clock()
        expires = now + timedelta(seconds=self.access_token_ttl)
        access = _jwt({"nbf": int(now.timestamp()), "exp": int(expires.timestamp()),
                       "iss": "https://identity.xero.com",
                       "aud": "https://identity.xero.com/resources",
                       "client_id": grant.client_id, "sub": grant.user,
                       "xero_userid": grant.user, "authentication_event_id": grant.id,
                       "scope": list(grant.scopes), "jti": secrets.token_hex(16)})
        refresh = "xeroemu_rt_" + secrets.token_urlsafe(24)
        self._access[access] = AccessToken(grant, expires, self.epoch())
        self._refresh[refresh] = _Refresh(grant, now)
        return {"id_token": "xeroemu_id_" + secrets.token_urlsafe(12), "access_token": access,
                "expires_in": int(self.access_token_ttl), "token_type": "Bearer",
                "refresh_token": refresh, "scope": " ".join(grant.scopes)}

    def check_access(self, token: str) -> Grant | None:
        """The grant behind a valid bearer token, or None if unknown or expired."""
        with self._lock:
            entry = self._access.get(token)
        if entry is None or entry.epoch < self.epoch() or entry.expires <= self.clock():
            return None
        return entry.grant


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwt(claims: dict[str, object]) -> str:
    """A JWT-shaped token (unsigned: only the emulator checks it, by lookup)."""
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(secrets.token_bytes(32))}"


def connection_rows(connections: Mapping[tuple[str, str], tuple[str, datetime]], user: str,
                    names: Mapping[str, str], wanted: str | None) -> list[dict[str, str]]:
    """GET /connections: the user's organisations, each with the authEventId of the consent
    that connected it; `wanted` keeps one consent's (the `authEventId` query parameter)."""
    return [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{who}/{tenant}")), "authEventId": event,
             "tenantId": tenant, "tenantType": "ORGANISATION", "tenantName": names[tenant],
             "createdDateUtc": at.strftime("%Y-%m-%dT%H:%M:%S.%f"),
             "updatedDateUtc": at.strftime("%Y-%m-%dT%H:%M:%S.%f")}
            for (who, tenant), (event, at) in connections.items()
            if who == user and tenant in names and (wanted is None or wanted == event)]
