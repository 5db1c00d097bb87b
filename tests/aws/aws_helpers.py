"""Helpers for the AWS tests (a uniquely named module, importable from them)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

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
