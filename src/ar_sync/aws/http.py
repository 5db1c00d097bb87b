"""The HTTP API (API Gateway v2, payload 2.0): connect, OAuth callback, platform webhooks.

Thin: each route parses the request, calls the core (ar_sync.onboarding, ar_sync.webhooks)
and shapes the answer. serverless.yml gives each route its own function; all share `handler`.

Who is the business? Behind a JWT authorizer the `sub` claim says so and a `business` query
parameter must agree with it; without one (a private deployment) `?business=` is taken as is.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from ar_sync import webhooks
from ar_sync.aws import config
from ar_sync.aws.config import logger
from ar_sync.aws.queue import SyncMessage, send_messages
from ar_sync.connector import UnknownConnectorError
from ar_sync.onboarding import (
    AuthorizationDeniedError,
    OAuthStateError,
    TenantBindingError,
    finish_connect,
    start_connect,
)
from ar_sync.settings import SettingsError, platform_settings

PLATFORMS = ("quickbooks", "xero")
SIGNATURE_HEADERS = {"quickbooks": webhooks.QUICKBOOKS_SIGNATURE, "xero": webhooks.XERO_SIGNATURE}
PARSERS = {"quickbooks": webhooks.parse_quickbooks, "xero": webhooks.parse_xero}
_BUSINESS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")

app = APIGatewayHttpResolver()


def _error(status: int, message: str) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body={"error": message}, headers={"Cache-Control": "no-store"})


def _now() -> datetime:
    return datetime.now(UTC)


def _business() -> str | None:
    """The caller's business: the authorizer's `sub` if there is one, else `?business=`."""
    event = app.current_event
    asked = event.get_query_string_value("business")
    claims = (event.raw_event.get("requestContext", {}).get("authorizer", {})
              .get("jwt", {}).get("claims", {}))
    subject = claims.get("sub") if isinstance(claims, dict) else None
    if subject:
        return str(subject) if asked in (None, subject) else None
    return asked if asked and _BUSINESS.match(asked) else None


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
    if platform not in PLATFORMS:
        return _error(404, "unknown platform")
    business = _business()
    if business is None:
        return _error(400, "a valid business id is required")
    url = start_connect(config.store(), platform, business, platform_settings(platform),
                        now=_now())
    logger.info("connect started", extra={"platform": platform, "business_id": business})
    return Response(status_code=302, headers={"Location": url, "Cache-Control": "no-store"})


@app.get("/oauth/<platform>/callback")
def oauth_callback(platform: str) -> Response[Any]:
    if platform not in PLATFORMS:
        return _error(404, "unknown platform")
    params = {k: v for k, v in (app.current_event.query_string_parameters or {}).items()
              if isinstance(v, str)}

    def settings_for(flow_platform: str) -> Any:
        if flow_platform != platform:  # a state from one platform's flow on another's URL
            raise OAuthStateError("state does not belong to this platform")
        return platform_settings(flow_platform)

    connections = finish_connect(config.store(), params, settings_for, now=_now())
    logger.info("connected", extra={"platform": platform,
                                    "connection_ids": [c.id for c in connections]})
    names = "".join(f"<li>{html.escape(c.name or c.external_id)}</li>" for c in connections)
    page = f"<!doctype html><title>Connected</title><h1>Connected</h1><ul>{names}</ul>"
    return Response(status_code=200, content_type=content_types.TEXT_HTML, body=page,
                    headers={"Cache-Control": "no-store"})


def _bad_flow(exc: Exception) -> Response[Any]:
    logger.warning("oauth flow refused", extra={"reason": type(exc).__name__})
    return _error(400, str(exc))


def _bound_elsewhere(exc: TenantBindingError) -> Response[Any]:
    logger.warning("tenant binding refused")
    return _error(403, str(exc))


def _not_configured(exc: Exception) -> Response[Any]:
    logger.error("platform not configured", extra={"reason": type(exc).__name__})
    return _error(503, "this platform is not configured")


app.exception_handler([OAuthStateError, AuthorizationDeniedError])(_bad_flow)
app.exception_handler(TenantBindingError)(_bound_elsewhere)
app.exception_handler([UnknownConnectorError, SettingsError])(_not_configured)


# ----------------------------------------------------------------------------- webhooks


def _webhook(platform: str) -> Response[Any]:
    body = _raw_body()
    if len(body) > webhooks.MAX_BODY_BYTES:
        return _error(413, "body too large")
    key = platform_settings(platform).webhook_key
    signature = app.current_event.headers.get(SIGNATURE_HEADERS[platform])  # any case
    if not webhooks.verify_signature(key, body, signature):
        if not key:
            logger.error("webhook key not configured", extra={"platform": platform})
        return _error(401, "bad signature")
    try:
        requests = PARSERS[platform](body)
    except webhooks.PayloadTooLargeError:
        return _error(413, "too many events")
    except webhooks.MalformedPayloadError as exc:
        logger.warning("malformed webhook", extra={"platform": platform, "reason": str(exc)})
        return _error(400, "malformed payload")
    store = config.store()
    known = [r for r in requests if store.get_connection(r.connection_id) is not None]
    messages = [SyncMessage(connection_id=r.connection_id, reason="webhook",
                            only_invoices=None if r.invoice_ids is None
                            else tuple(sorted(r.invoice_ids)))
                for r in known]
    if messages:
        send_messages(config.sqs(), config.AwsConfig.from_env().queue_url, messages)
    logger.info("webhook accepted", extra={
        "platform": platform, "enqueued": [m.connection_id for m in messages],
        "unknown_tenants": [r.connection_id for r in requests if r not in known]})
    return Response(status_code=200, content_type=content_types.TEXT_PLAIN, body="")


@app.post("/webhooks/quickbooks")
def webhook_quickbooks() -> Response[Any]:
    return _webhook("quickbooks")


@app.post("/webhooks/xero")
def webhook_xero() -> Response[Any]:
    return _webhook("xero")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
