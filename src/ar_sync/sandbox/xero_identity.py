"""The emulated Xero identity service: consent codes, rotating refresh tokens, access tokens.

Refresh tokens are single-use: a refresh returns a new pair and the old refresh token answers
`invalid_grant` from then on, which is exactly what loses real connections when two runners
refresh at once.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ar_sync.sandbox.common import Clock

DEFAULT_SCOPES = ("openid", "profile", "email", "accounting.invoices",
                  "accounting.contacts.read", "offline_access")


class GrantError(Exception):
    """An OAuth2 error answered as `{"error": code}` with status 400 (or 401 for clients)."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


@dataclass
class Grant:
    """One consent: the tenants a user connected and the scopes granted."""

    id: str
    client_id: str
    tenants: tuple[str, ...]
    scopes: tuple[str, ...]
    created: datetime


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
    used: bool = False
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

    def consent(self, client_id: str, redirect_uri: str, tenants: tuple[str, ...],
                scopes: tuple[str, ...], challenge: str | None) -> str:
        """What the browser consent does: a single-use code valid 5 minutes."""
        if client_id != self.client_id:
            raise GrantError("unauthorized_client")
        now = self.clock()
        grant = Grant(secrets.token_hex(16), client_id, tenants, scopes, now)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(grant, redirect_uri, challenge, now + timedelta(minutes=5))
        return code

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
            if entry is None or entry.used or entry.revoked:
                raise GrantError("invalid_grant")
            entry.used = True  # single use: rotation
            self.refreshes += 1
            return self._issue(entry.grant)

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            entry = self._refresh.get(refresh_token)
            if entry is not None:
                entry.revoked = True

    def _issue(self, grant: Grant) -> dict[str, object]:
        access = "xeroemu_at_" + secrets.token_urlsafe(24)
        refresh = "xeroemu_rt_" + secrets.token_urlsafe(24)
        self._access[access] = AccessToken(
            grant, self.clock() + timedelta(seconds=self.access_token_ttl), self.epoch())
        self._refresh[refresh] = _Refresh(grant)
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
