"""Who is using the console: a business, as the session holds it after sign-in.

- Locally (`LocalSignIn`): `ar-sync console` prints a one-time link; opening it signs that
  browser in as the local business. The link works once and for ten minutes; without it no
  page shows company data.
- On AWS (`CognitoSignIn`): the user pool's hosted UI (authorization code with PKCE); the
  ID token is verified against the pool's keys, issuer and audience (the app client), the
  same JWT the HTTP API's authorizer checks, and the business is its `sub`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ar_sync.console.config import SignIn
from ar_sync.console.pages import render
from ar_sync.console.security import CSRF_FIELD, new_token

LINK_SECONDS = 600


def sign_in(request: Request, business: str) -> None:
    """A fresh session for `business` (a new CSRF token: no fixation across sign-ins)."""
    request.session.clear()
    request.session.update({"business": business, CSRF_FIELD: new_token()})


class LocalSignIn:
    """One-time login links for a console on this computer."""

    def __init__(self, business: str, *, clock: Any = time.monotonic) -> None:
        self.business = business
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def issue(self, business: str | None = None) -> str:
        """A new one-time token (the path to open is /login/<token>)."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (business or self.business, self._clock() + LINK_SECONDS)
        return token

    def _take(self, token: str) -> str | None:
        with self._lock:
            found = self._tokens.pop(token, None)
        if found is None or found[1] < self._clock():
            return None
        return found[0]

    def routes(self) -> list[BaseRoute]:
        return [Route("/login/{token}", self._login, name="login")]

    async def _login(self, request: Request) -> Response:
        business = self._take(request.path_params["token"])
        if business is None:
            return render(request, "signin.html", status=403, used=True)
        sign_in(request, business)
        return RedirectResponse(request.scope.get("root_path", "") + "/", 303)

    def anonymous(self, request: Request, prefix: str) -> Response:
        return render(request, "signin.html", status=401, used=False)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


class CognitoSignIn:
    """The Cognito hosted UI. `domain`: the pool's hosted-UI domain (https://…); `issuer`:
    https://cognito-idp.<region>.amazonaws.com/<pool id>; `client_id`: the app client (the
    JWT's audience); `redirect_uri`: <console URL>/auth/callback, registered on the client."""

    def __init__(self, *, domain: str, issuer: str, client_id: str, redirect_uri: str,
                 http: Any = None, jwks: Any = None) -> None:
        self.domain = domain.rstrip("/")
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self._http = http
        self._jwks = jwks

    def routes(self) -> list[BaseRoute]:
        return [Route("/login", self._login, name="login"),
                Route("/auth/callback", self._callback, name="auth_callback"),
                Route("/logout-cognito", self._logout, name="logout_cognito")]

    def anonymous(self, request: Request, prefix: str) -> Response:
        return RedirectResponse(prefix + "/login", 303)

    async def _login(self, request: Request) -> Response:
        state = secrets.token_urlsafe(24)
        verifier, challenge = _pkce()
        request.session["login"] = {"state": state, "verifier": verifier}
        query = urlencode({"response_type": "code", "client_id": self.client_id,
                           "redirect_uri": self.redirect_uri, "scope": "openid email",
                           "state": state, "code_challenge": challenge,
                           "code_challenge_method": "S256"})
        return RedirectResponse(f"{self.domain}/oauth2/authorize?{query}", 303)

    async def _callback(self, request: Request) -> Response:
        pending = request.session.pop("login", None) or {}
        state, code = request.query_params.get("state"), request.query_params.get("code")
        if not code or not pending or not secrets.compare_digest(str(state), pending["state"]):
            return render(request, "signin.html", status=400, used=True)
        try:
            business = self.verify(self._exchange(code, pending["verifier"]))
        except Exception:  # any failure of the exchange or the token: sign in again
            return render(request, "signin.html", status=400, used=True)
        sign_in(request, business)
        return RedirectResponse(request.scope.get("root_path", "") + "/", 303)

    async def _logout(self, request: Request) -> Response:
        query = urlencode({"client_id": self.client_id, "logout_uri": self.redirect_uri.rsplit(
            "/auth/callback", 1)[0] + "/"})
        return RedirectResponse(f"{self.domain}/logout?{query}", 303)

    def _exchange(self, code: str, verifier: str) -> str:
        import requests

        http = self._http or requests
        answer = http.post(f"{self.domain}/oauth2/token", timeout=10, data={
            "grant_type": "authorization_code", "client_id": self.client_id, "code": code,
            "redirect_uri": self.redirect_uri, "code_verifier": verifier})
        answer.raise_for_status()
        return str(answer.json()["id_token"])

    def verify(self, id_token: str) -> str:
        """The business (`sub`) of a valid ID token from this pool and client, or raise."""
        import jwt

        jwks = self._jwks or jwt.PyJWKClient(f"{self.issuer}/.well-known/jwks.json",
                                             cache_keys=True)
        self._jwks = jwks
        key = jwks.get_signing_key_from_jwt(id_token)
        claims = jwt.decode(id_token, key.key, algorithms=["RS256"], audience=self.client_id,
                            issuer=self.issuer, options={"require": ["exp", "sub", "iss"]})
        if claims.get("token_use") not in (None, "id"):
            raise ValueError("not an ID token")
        return str(claims["sub"])


__all__ = ["LINK_SECONDS", "CognitoSignIn", "LocalSignIn", "SignIn", "sign_in"]
