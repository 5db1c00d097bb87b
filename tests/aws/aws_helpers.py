"""Helpers for the AWS tests (a uniquely named module, importable from them)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from ar_sync.aws import http
from ar_sync_emulators.aws import LocalContext
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator

WEBHOOK_KEY = "qbo-verifier-token"
XERO_WEBHOOK_KEY = "xero-webhook-key"
REDIRECT = "https://api.example.test/oauth/quickbooks/callback"


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Receive everything visible now (messages stay in flight: nothing is deleted)."""
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                  WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        out.extend(got)


def http_event(method: str, path: str, route: str, *, query: dict[str, str] | None = None,
               headers: dict[str, str] | None = None, body: str | None = None,
               b64: bool = False, path_params: dict[str, str] | None = None,
               claims: dict[str, str] | None = None,
               cookies: list[str] | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as Lambda receives it."""
    context: dict[str, Any] = {
        "accountId": "123456789012", "apiId": "a1b2c3", "domainName":
        "a1b2c3.execute-api.us-east-1.amazonaws.com", "domainPrefix": "a1b2c3",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                 "sourceIp": "203.0.113.9", "userAgent": "pytest"},
        "requestId": "JKJaXmPLvHcESHA=", "routeKey": f"{method} {route}", "stage": "$default",
        "time": "27/Nov/2026:05:00:00 +0000", "timeEpoch": 1795755600000}
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": f"{method} {route}", "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {"host": "a1b2c3.execute-api.us-east-1.amazonaws.com",
                    "user-agent": "pytest", "x-forwarded-proto": "https",
                    **{k.lower(): v for k, v in (headers or {}).items()}},
        "queryStringParameters": query or None, "pathParameters": path_params or None,
        "requestContext": context, "body": body, "isBase64Encoded": b64,
    }
    if cookies:  # payload 2.0 puts the Cookie header's pairs here
        event["cookies"] = list(cookies)
    return event


def cookie_pair(set_cookie: str) -> str:
    """What a browser sends back for a Set-Cookie line: `name=value`."""
    return set_cookie.split(";", 1)[0].strip()


def call_http(event: dict[str, Any]) -> dict[str, Any]:
    return http.handler(event, LocalContext())


def connect_event(platform: str = "quickbooks", *, sub: str | None = None,
                  **query: str) -> dict[str, Any]:
    """GET /connect; `sub` is what the JWT authorizer verified (None: no token)."""
    return http_event("GET", f"/connect/{platform}", "/connect/{platform}", query=query,
                      path_params={"platform": platform},
                      claims=None if sub is None else {"sub": sub, "iss": "https://idp.test"})


def callback_event(params: dict[str, str], platform: str = "quickbooks",
                   cookies: list[str] | None = None) -> dict[str, Any]:
    return http_event("GET", f"/oauth/{platform}/callback", "/oauth/{platform}/callback",
                      query=params, path_params={"platform": platform}, cookies=cookies)


class Browser:
    """One browser: keeps the cookies the API sets, sends them back on the callback."""

    def __init__(self) -> None:
        self.jar: dict[str, str] = {}

    def call(self, event: dict[str, Any]) -> dict[str, Any]:
        if self.jar:
            event["cookies"] = [f"{k}={v}" for k, v in self.jar.items()]
        answer = call_http(event)
        for line in answer.get("cookies", []):
            name, _, value = cookie_pair(line).partition("=")
            if value:
                self.jar[name] = value
            else:
                self.jar.pop(name, None)
        return answer


def consent(qbo: QuickBooksEmulator, business: str,
            browser: Browser | None = None) -> tuple[dict[str, str], Browser]:
    """connect (signed in as `business`) -> 302 to the emulator's consent -> the callback's
    query parameters, and the browser that started the flow."""
    browser = browser or Browser()
    answer = browser.call(connect_event(sub=business))
    assert answer["statusCode"] == 302
    location = answer["headers"]["Location"]
    assert location.startswith(qbo.url)
    query = parse_qs(urlparse(location).query)
    assert query["redirect_uri"] == [REDIRECT] and query["state"][0]
    consent_answer = requests.get(location, allow_redirects=False, timeout=5)
    assert consent_answer.status_code == 302
    back = urlparse(consent_answer.headers["Location"])
    assert back.path == "/oauth/quickbooks/callback"
    return {k: v[0] for k, v in parse_qs(back.query).items()}, browser


def connect_flow(qbo: QuickBooksEmulator, business: str) -> dict[str, Any]:
    """The whole flow in one browser; the callback's answer."""
    params, browser = consent(qbo, business)
    return browser.call(callback_event(params))
