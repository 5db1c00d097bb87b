"""The console's session cookie, CSRF tokens and security headers.

The session is a signed cookie (HMAC-SHA256 over a JSON body with an expiry), so the local
server and a Lambda container serve it alike with no session table: HttpOnly, SameSite=Lax,
Secure everywhere but on loopback (a browser drops Secure cookies over plain http there),
and `__Host-` prefixed when Secure. Every form and htmx request carries the session's CSRF
token (a hidden field or the X-CSRF-Token header), compared in constant time. Every answer
carries a Content-Security-Policy without inline script.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_SECONDS = 8 * 3600
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

# No inline or remote script; styles only from us (and inline styles, which a customer's
# e-mail preview uses and which cannot run code); frames only of our own pages.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class SessionCodec:
    """Signs and reads the session cookie; `secure`: Secure flag and `__Host-` name."""

    key: bytes
    secure: bool
    max_age: int = SESSION_SECONDS

    @property
    def cookie_name(self) -> str:
        return "__Host-ar-sync-console" if self.secure else "ar-sync-console"

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())

    def dump(self, data: Mapping[str, Any], *, now: float | None = None) -> str:
        body = _b64(json.dumps({**data, "exp": int((now or time.time()) + self.max_age)},
                               separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._mac(body)}"

    def load(self, cookie: str | None, *, now: float | None = None) -> dict[str, Any]:
        """The session, or {} when missing, tampered with or expired."""
        if not cookie or "." not in cookie:
            return {}
        body, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return {}
        try:
            data = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            return {}
        if not isinstance(data, dict) or int(data.get("exp", 0)) < (now or time.time()):
            return {}
        data.pop("exp", None)
        return data

    def header(self, data: Mapping[str, Any] | None) -> str:
        """The Set-Cookie value: the session, or (None) an expired one that clears it."""
        value, age = (self.dump(data), self.max_age) if data else ("", 0)
        parts = [f"{self.cookie_name}={value}", "Path=/", f"Max-Age={age}", "HttpOnly",
                 "SameSite=Lax"]
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(session: Mapping[str, Any], sent: str | None) -> bool:
    expected = session.get(CSRF_FIELD)
    return bool(expected and sent) and hmac.compare_digest(str(expected), str(sent))


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SecurityHeaders:
    """ASGI middleware: the headers above on every answer that does not set its own CSP."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.decode().lower() for k, _ in headers}
                for name, value in HEADERS.items():
                    if name not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = ["CSP", "CSRF_FIELD", "CSRF_HEADER", "SESSION_SECONDS", "SecurityHeaders",
           "SessionCodec", "csrf_ok", "fingerprint", "new_token"]
