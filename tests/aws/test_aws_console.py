"""The console on Lambda: Mangum in front of the same app, the Cognito hosted-UI sign-in
(authorization code with PKCE, the ID token verified against the pool's key, issuer and app
client), a business's own companies only, and "Run now" as a message on the sync queue."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import jwt
import pytest
from aws_helpers import LocalContext, cookie_pair, drain, http_event
from cryptography.hazmat.primitives.asymmetric import rsa

from ar_sync.aws import config
from ar_sync.aws import console as aws_console
from ar_sync.sync.connector import Connection
from ar_sync_emulators.aws import env_vars

URL = "https://a1b2c3.execute-api.us-east-1.amazonaws.com/console"
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"
CLIENT = "console-client"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Jwks:
    """The pool's key set, as PyJWKClient answers."""

    def get_signing_key_from_jwt(self, token: str) -> Any:
        return type("Key", (), {"key": KEY.public_key()})()


class TokenEndpoint:
    def __init__(self, id_token: str) -> None:
        self.id_token, self.sent = id_token, {}

    def post(self, url: str, *, timeout: float, data: dict[str, str]) -> Any:
        self.sent = {"url": url, **data}
        body = {"id_token": self.id_token}
        return type("Answer", (), {"raise_for_status": lambda s: None, "json": lambda s: body})()


def id_token(sub: str, *, audience: str = CLIENT, issuer: str = ISSUER) -> str:
    return jwt.encode({"sub": sub, "aud": audience, "iss": issuer, "token_use": "id",
                       "exp": int(time.time()) + 600}, KEY, algorithm="RS256")


@pytest.fixture
def console(aws: dict[str, str], queue: str) -> Any:
    name = f"/ar-sync/test/{uuid.uuid4().hex[:8]}/console/session-key"
    boto3.client("ssm").put_parameter(Name=name, Value="k" * 48, Type="SecureString")
    env = {aws_console.CONSOLE_URL: URL, aws_console.SESSION_KEY_PARAMETER: name,
           aws_console.COGNITO_DOMAIN: "https://signin.example.test",
           aws_console.JWT_ISSUER: ISSUER, aws_console.JWT_AUDIENCE: CLIENT}
    with env_vars(env):
        aws_console._asgi.cache_clear()
        yield aws_console
        aws_console._asgi.cache_clear()


def call(method: str, path: str, *, query: dict[str, str] | None = None,
         cookies: list[str] | None = None, body: str | None = None) -> dict[str, Any]:
    event = http_event(method, path, "/console/{proxy+}", query=query, cookies=cookies,
                       body=body, headers={"content-type": "application/x-www-form-urlencoded"}
                       if body else None)
    return aws_console.handler(event, LocalContext())


def signed_in(console: Any, sub: str, token: str | None = None) -> list[str]:
    start = call("GET", "/console/login")
    assert start["statusCode"] == 303
    consent = urlsplit(start["headers"]["location"])
    query = parse_qs(consent.query)
    assert consent.netloc == "signin.example.test" and consent.path == "/oauth2/authorize"
    assert query["client_id"] == [CLIENT] and query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [URL + "/auth/callback"]
    signin = aws_console._asgi().app.state.config.signin  # the pool's endpoints, faked
    signin._jwks, signin._http = Jwks(), TokenEndpoint(token or id_token(sub))
    back = call("GET", "/console/auth/callback", query={"code": "c0de", "state":
                                                          query["state"][0]},
                cookies=[cookie_pair(start["cookies"][0])])
    assert signin._http.sent["code_verifier"] and signin._http.sent["code"] == "c0de"
    if back["statusCode"] != 303:
        return []
    (cookie,) = back["cookies"]
    assert cookie.startswith("__Host-ar-sync-console=") and "Secure" in cookie
    return [cookie_pair(cookie)]


def test_sign_in_through_the_hosted_ui_shows_only_the_business_companies(console) -> None:
    store = config.store()
    mine = Connection(id=f"xero:{uuid.uuid4()}", platform="xero", external_id="m",
                      name="Mine Ltd", business_id="biz-1", created_at=datetime.now(UTC))
    theirs = mine.model_copy(update={"id": f"xero:{uuid.uuid4()}", "name": "Theirs Ltd",
                                     "business_id": "biz-2"})
    store.save_connection(mine)
    store.save_connection(theirs)
    anonymous = call("GET", "/console/")
    assert anonymous["statusCode"] == 303 and anonymous["headers"]["location"] == \
        "/console/login"
    cookies = signed_in(console, "biz-1")
    page = call("GET", "/console/", cookies=cookies)
    assert page["statusCode"] == 200 and "Mine Ltd" in page["body"]
    assert "Theirs Ltd" not in page["body"]
    assert "script-src 'self'" in page["headers"]["content-security-policy"]
    assert call("GET", f"/console/c/{theirs.id}/rules", cookies=cookies)["statusCode"] == 404


@pytest.mark.parametrize("token", [id_token("biz-1", audience="another-client"),
                                   id_token("biz-1", issuer="https://evil.example"),
                                   "not-a-jwt"])
def test_a_token_not_from_this_pool_and_client_signs_nobody_in(console, token) -> None:
    assert signed_in(console, "biz-1", token) == []


def test_run_now_puts_one_message_on_the_sync_queue(console, sqs, queue) -> None:
    store = config.store()
    mine = Connection(id=f"xero:{uuid.uuid4()}", platform="xero", external_id="r",
                      name="Runner Ltd", business_id="biz-3", created_at=datetime.now(UTC))
    store.save_connection(mine)
    cookies = signed_in(console, "biz-3")
    page = call("GET", f"/console/c/{mine.id}/runs", cookies=cookies)
    assert "No run yet" in page["body"]
    token = page["body"].split('name="csrf" value="')[1].split('"')[0]
    done = call("POST", f"/console/c/{mine.id}/runs", cookies=cookies, body=f"csrf={token}")
    assert done["statusCode"] == 303
    (message,) = drain(sqs, queue)
    body = json.loads(message["Body"])
    assert body["connection_id"] == mine.id and body["reason"] == "console"
