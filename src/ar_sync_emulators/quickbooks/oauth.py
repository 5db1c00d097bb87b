"""OAuth2 of the QuickBooks emulator: the OpenID discovery document, the consent redirect,
the token endpoint with single-use rotating refresh tokens, revocation, bearer checks."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from ar_sync_emulators.base import Clock, Counters, Faults, Request, Response

SCOPE = "com.intuit.quickbooks.accounting"


@dataclass
class AccessGrant:
    realm: str
    expires_at: datetime
    epoch: int
    refresh: str


@dataclass
class RefreshGrant:
    realm: str
    client_id: str
    expires_at: datetime
    spent: bool = False


class QboOAuth:
    """Mixin of QuickBooksEmulator: the attributes below are set by its __init__."""

    clock: Clock
    client_id: str
    client_secret: str
    realm_id: str
    url: str
    access_token_ttl: float
    refresh_token_ttl: float
    faults: Faults
    counters: Counters
    _lock: Any
    _codes: dict[str, tuple[str, str]]
    _access: dict[str, AccessGrant]
    _refresh: dict[str, RefreshGrant]

    def authorize(self, client_id: str, redirect_uri: str, state: str,
                  scope: str = SCOPE) -> str:
        """What the browser consent does: the redirect URL with code, state and realmId."""
        if client_id != self.client_id:
            raise ValueError("unknown client_id")
        if SCOPE not in scope.split():
            raise ValueError(f"scope must include {SCOPE}")
        code = "AB" + secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = (client_id, redirect_uri)
        sep = "&" if "?" in redirect_uri else "?"
        return redirect_uri + sep + urlencode({"code": code, "state": state,
                                               "realmId": self.realm_id})


    def _issue(self, client_id: str) -> dict[str, Any]:
        now = self.clock()
        access = "eyJ" + secrets.token_urlsafe(32)
        refresh = "AB" + secrets.token_urlsafe(32)
        with self._lock:
            self._access[access] = AccessGrant(self.realm_id,
                                           now + timedelta(seconds=self.access_token_ttl),
                                           self.faults.token_epoch, refresh)
            self._refresh[refresh] = RefreshGrant(self.realm_id, client_id,
                                              now + timedelta(seconds=self.refresh_token_ttl))
        return {"token_type": "bearer", "access_token": access, "refresh_token": refresh,
                "expires_in": int(self.access_token_ttl),
                "x_refresh_token_expires_in": int(self.refresh_token_ttl)}


    def grant(self) -> dict[str, Any]:
        """Tokens for this realm without the consent dance (for benchmarks and quick tests)."""
        return self._issue(self.client_id)


    def _discovery(self) -> dict[str, Any]:
        base = self.url
        return {"issuer": f"{base}/op/v1", "authorization_endpoint": f"{base}/connect/oauth2",
                "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
                "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
                "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke",
                "jwks_uri": f"{base}/op/v1/jwks",
                "response_types_supported": ["code"], "scopes_supported": [SCOPE, "openid"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"]}


    def _authorize_endpoint(self, req: Request) -> Response:
        q = req.query
        if q.get("response_type") != "code" or not q.get("redirect_uri"):
            return Response.text(400, "invalid_request")
        try:
            return Response.redirect(self.authorize(q.get("client_id", ""), q["redirect_uri"],
                                                    q.get("state", ""), q.get("scope", "")))
        except ValueError as exc:
            return Response.text(400, f"invalid_request: {exc}")


    def _client_ok(self, req: Request) -> bool:
        import base64

        header = req.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return cid == self.client_id and secrets.compare_digest(secret, self.client_secret)


    def _token_endpoint(self, req: Request) -> Response:
        if not self._client_ok(req):
            return Response.json(401, {"error": "invalid_client"})
        form = req.form()
        grant = form.get("grant_type")
        with self._lock:
            if grant == "authorization_code":
                issued = self._codes.pop(form.get("code", ""), None)
                if issued is None or issued[1] != form.get("redirect_uri"):
                    return Response.json(400, {"error": "invalid_grant"})
                return Response.json(200, self._issue(issued[0]))
            if grant == "refresh_token":
                token = self._refresh.get(form.get("refresh_token", ""))
                if token is None or token.spent or token.expires_at <= self.clock():
                    return Response.json(400, {"error": "invalid_grant"})
                token.spent = True  # rotation: the old refresh token is single-use
                return Response.json(200, self._issue(token.client_id))
        return Response.json(400, {"error": "unsupported_grant_type"})


    def _revoke_endpoint(self, req: Request) -> Response:
        self.counters.call("POST /oauth2/v1/tokens/revoke")
        if not self._client_ok(req):
            return Response.json(401, {"error": "invalid_client"})
        token = str((req.json() or {}).get("token", ""))
        with self._lock:
            if token in self._refresh:
                self._refresh[token].spent = True
                for access, info in list(self._access.items()):
                    if info.refresh == token:
                        del self._access[access]
            self._access.pop(token, None)
        return Response(200)


    def _authorized(self, req: Request, realm: str) -> bool:
        header = req.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._lock:
            info = self._access.get(token)
            return (info is not None and info.realm == realm == self.realm_id
                    and info.expires_at > self.clock()
                    and info.epoch >= self.faults.token_epoch)
