"""The HTTP API (API Gateway v2, payload 2.0): connect, OAuth callback, platform webhooks.

Thin: each route parses the request, calls the core (ar_sync.connect.onboarding,
ar_sync.connect.webhooks) and shapes the answer. serverless.yml gives each route its own
function; all share `handler`.

Who is the business? Only the JWT authorizer's `sub` claim, never a parameter: /connect and
every admin route sit behind the authorizer (serverless.yml; a test checks every route outside
PUBLIC_ROUTES has it), and a handler reads the caller with `caller_business()`, which answers
401 when there is none. Adding an admin route: one `@app.<method>` handler here that calls
`caller_business()`, one function entry in serverless.yml with `authorizer: {name: jwt}`.

The OAuth flow is bound to the browser that started it: /connect sets an HttpOnly, Secure,
SameSite=Lax cookie holding the state's SHA-256, and the callback refuses (400) a state whose
cookie is missing or different, so a consent link sent to someone else cannot complete there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.typing import LambdaContext

from ar_sync.aws import config, deliveries, secrets
from ar_sync.aws.api import UnauthenticatedError, app, caller_business, error_response
from ar_sync.aws.config import logger
from ar_sync.aws.queue import SyncMessage, send_messages
from ar_sync.connect import webhooks
from ar_sync.connect.onboarding import (
    AuthorizationDeniedError,
    OAuthStateError,
    TenantBindingError,
    TooManyPendingError,
    finish_connect,
    start_connect,
)
from ar_sync.connect.tokens import new_state
from ar_sync.domain.errors import SettingsError
from ar_sync.sync.connector import UnknownConnectorError

PLATFORMS = ("quickbooks", "xero")
PUBLIC_ROUTES = frozenset({("GET", "/oauth/<platform>/callback"),  # the browser, back from
                           ("POST", "/webhooks/quickbooks"),        # consent (cookie-bound);
                           ("POST", "/webhooks/xero")})             # signed by the platform
SIGNATURE_HEADERS = {"quickbooks": webhooks.QUICKBOOKS_SIGNATURE, "xero": webhooks.XERO_SIGNATURE}
PARSERS = {"quickbooks": webhooks.parse_quickbooks, "xero": webhooks.parse_xero}
STATE_TTL_SECONDS = 600
MAX_PENDING_PER_BUSINESS = 5


def _now() -> datetime:
    return datetime.now(UTC)


def state_fingerprint(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _state_cookie(platform: str, value: str, max_age: int) -> Cookie:
    """`__Host-` prefix: only this host, Path=/, Secure; a sibling subdomain cannot set it."""
    return Cookie(name=f"__Host-ar-sync-oauth-{platform}", value=value, path="/", secure=True,
                  http_only=True, max_age=max_age, same_site=SameSite.LAX_MODE)


def _cookie_value(name: str) -> str | None:
    for raw in app.current_event.cookies or []:
        key, _, value = raw.partition("=")
        if key.strip() == name:
            return value.strip()
    return None


def _raw_body() -> bytes:
    event = app.current_event
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            return b"\x00invalid"
    return body.encode("utf-8")


# ----------------------------------------------------------------------------- OAuth


@app.get("/connect/<platform>")
def connect(platform: str) -> Response[Any]:
    """302 to the consent screen (or, for `Accept: application/json`, the URL in a JSON body
    for a web app that called with fetch), with the state's cookie."""
    if platform not in PLATFORMS:
        return error_response(404, "unknown platform")
    business = caller_business()
    state = new_state()
    url = start_connect(config.store(), platform, business, secrets.consent_settings(platform),
                        now=_now(), ttl_seconds=STATE_TTL_SECONDS, state=state,
                        max_pending=MAX_PENDING_PER_BUSINESS)
    logger.info("connect started", extra={"platform": platform, "business_id": business})
    cookies = [_state_cookie(platform, state_fingerprint(state), STATE_TTL_SECONDS)]
    if "application/json" in (app.current_event.headers.get("accept") or ""):
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON,
                        body={"authorization_url": url}, cookies=cookies,
                        headers={"Cache-Control": "no-store"})
    return Response(status_code=302, headers={"Location": url, "Cache-Control": "no-store"},
                    cookies=cookies)


@app.get("/oauth/<platform>/callback")
def oauth_callback(platform: str) -> Response[Any]:
    if platform not in PLATFORMS:
        return error_response(404, "unknown platform")
    params = {k: v for k, v in (app.current_event.query_string_parameters or {}).items()
              if isinstance(v, str)}
    state = params.get("state") or ""
    cookie = _cookie_value(_state_cookie(platform, "", 0).name)
    if not state or not cookie or not hmac.compare_digest(cookie, state_fingerprint(state)):
        # refused, and the state is spent all the same: whoever holds this callback URL (the
        # code and state in it) can never finish the flow, in this browser or another
        if state:
            config.store().take_pending_auth(state, now=_now())
        raise OAuthStateError("this connection was started in another browser (or the state "
                              "cookie is missing): start it again from your account")

    def settings_for(flow_platform: str) -> Any:
        if flow_platform != platform:  # a state from one platform's flow on another's URL
            raise OAuthStateError("state does not belong to this platform")
        return secrets.platform_settings(flow_platform)

    connections = finish_connect(config.store(), params, settings_for, now=_now())
    logger.info("connected", extra={"platform": platform,
                                    "connection_ids": [c.id for c in connections]})
    names = "".join(f"<li>{html.escape(c.name or c.external_id)}</li>" for c in connections)
    page = f"<!doctype html><title>Connected</title><h1>Connected</h1><ul>{names}</ul>"
    return Response(status_code=200, content_type=content_types.TEXT_HTML, body=page,
                    headers={"Cache-Control": "no-store"},
                    cookies=[_state_cookie(platform, "", 0)])


def _bad_flow(exc: Exception) -> Response[Any]:
    logger.warning("oauth flow refused", extra={"reason": type(exc).__name__})
    return error_response(400, str(exc))


def _bound_elsewhere(exc: TenantBindingError) -> Response[Any]:
    logger.warning("tenant binding refused")
    return error_response(403, str(exc))


def _not_configured(exc: Exception) -> Response[Any]:
    logger.error("platform not configured", extra={"reason": type(exc).__name__})
    return error_response(503, "this platform is not configured")


def _unauthenticated(exc: UnauthenticatedError) -> Response[Any]:
    logger.warning("unauthenticated request", extra={"route": app.current_event.route_key})
    return error_response(401, str(exc))


def _too_many(exc: TooManyPendingError) -> Response[Any]:
    logger.warning("too many pending connections")
    return error_response(429, str(exc))


app.exception_handler(UnauthenticatedError)(_unauthenticated)
app.exception_handler(TooManyPendingError)(_too_many)
app.exception_handler([OAuthStateError, AuthorizationDeniedError])(_bad_flow)
app.exception_handler(TenantBindingError)(_bound_elsewhere)
app.exception_handler([UnknownConnectorError, SettingsError])(_not_configured)


# ----------------------------------------------------------------------------- webhooks


def _webhook(platform: str) -> Response[Any]:
    """401 unless signed with the platform's key; then 200, whatever is inside: malformed
    events are skipped and logged (a retry would not fix them), a re-delivery of the same
    bytes within 10 minutes is dropped, the rest becomes one re-sync message per tenant."""
    body = _raw_body()
    if len(body) > webhooks.MAX_BODY_BYTES:
        return error_response(413, "body too large")
    key = secrets.webhook_key(platform)
    signature = app.current_event.headers.get(SIGNATURE_HEADERS[platform])  # any case
    if not webhooks.verify_signature(key, body, signature):
        if not key:
            logger.error("webhook key not configured", extra={"platform": platform})
        return error_response(401, "bad signature")
    skipped: list[str] = []
    try:
        requests = PARSERS[platform](body, skipped)
    except webhooks.PayloadTooLargeError:
        return error_response(413, "too many events")
    except webhooks.MalformedPayloadError as exc:
        requests, skipped = [], [f"delivery: {exc}"]
    if skipped:
        logger.warning("malformed webhook events skipped",
                       extra={"platform": platform, "skipped": skipped[:20],
                              "skipped_count": len(skipped)})
    ok = Response(status_code=200, content_type=content_types.TEXT_PLAIN, body="")
    if not requests:
        return ok
    cfg = config.AwsConfig.from_env()
    if not deliveries.first_delivery(config.dynamodb(), cfg.deliveries_table, platform, body,
                                     now=time.time()):
        logger.info("duplicate webhook delivery dropped", extra={"platform": platform})
        return ok
    try:
        store = config.store(cfg)
        known = [r for r in requests if store.get_connection(r.connection_id) is not None]
        messages = [SyncMessage(connection_id=r.connection_id, reason="webhook",
                                only_invoices=None if r.invoice_ids is None
                                else tuple(sorted(r.invoice_ids)))
                    for r in known]
        if messages:
            send_messages(config.sqs(), cfg.queue_url, messages)
    except Exception:
        deliveries.forget(config.dynamodb(), cfg.deliveries_table, platform, body)
        raise
    logger.info("webhook accepted", extra={
        "platform": platform, "enqueued": [m.connection_id for m in messages],
        "unknown_tenants": [r.connection_id for r in requests if r not in known]})
    return ok


@app.post("/webhooks/quickbooks")
def webhook_quickbooks() -> Response[Any]:
    return _webhook("quickbooks")


@app.post("/webhooks/xero")
def webhook_xero() -> Response[Any]:
    return _webhook("xero")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


# Admin routes (rules, go-live, pauses) live in their own module and register on `app`.
from ar_sync.aws import admin  # noqa: E402, F401
