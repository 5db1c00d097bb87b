"""Local AWS (moto server on 127.0.0.1), a QuickBooks emulator, and realistic Lambda events."""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from ar_sync.aws import config, sync_tenant
from ar_sync.aws.local import local_aws
from ar_sync.sandbox.demo import demo_company
from ar_sync.sandbox.quickbooks import QuickBooksEmulator

WEBHOOK_KEY = "qbo-verifier-token"
XERO_WEBHOOK_KEY = "xero-webhook-key"
REDIRECT = "https://api.example.test/oauth/quickbooks/callback"


@dataclass
class FakeContext:
    """What Lambda passes as `context` (the attributes powertools and the handlers read)."""

    remaining_ms: int = 600_000
    function_name: str = "ar-sync-test-fn"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ar-sync-test-fn"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/ar-sync-test-fn"
    log_stream_name: str = "2026/11/27/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, str]]:
    with local_aws(prefix=f"t{uuid.uuid4().hex[:8]}") as env:
        yield env


@pytest.fixture(scope="module")
def qbo(aws: dict[str, str]) -> Iterator[QuickBooksEmulator]:
    emu = QuickBooksEmulator(realm_id=str(9_130_000_000 + uuid.uuid4().int % 1_000_000))
    emu.seed(demo_company(invoices=40, customers=8))
    with emu.serve():
        settings = emu.settings()
        env = {"AR_SYNC_QUICKBOOKS_CLIENT_ID": settings.client_id,
               "AR_SYNC_QUICKBOOKS_CLIENT_SECRET": settings.client_secret,
               "AR_SYNC_QUICKBOOKS_REDIRECT_URI": REDIRECT,
               "AR_SYNC_QUICKBOOKS_WEBHOOK_KEY": WEBHOOK_KEY,
               "AR_SYNC_QUICKBOOKS_ENDPOINTS": json.dumps(dict(settings.endpoints)),
               "AR_SYNC_XERO_CLIENT_ID": "xero-client", "AR_SYNC_XERO_CLIENT_SECRET": "xs",
               "AR_SYNC_XERO_WEBHOOK_KEY": XERO_WEBHOOK_KEY}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        sync_tenant._settings.cache_clear()
        try:
            yield emu
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            sync_tenant._settings.cache_clear()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Everything the handlers log during a test, formatted as CloudWatch would get it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(config.logger.registered_formatter)
    logging.getLogger(config.logger.name).addHandler(handler)
    yield stream
    logging.getLogger(config.logger.name).removeHandler(handler)


@pytest.fixture(scope="module")
def sqs(aws: dict[str, str]) -> Any:
    return boto3.client("sqs")


@pytest.fixture
def queue(aws: dict[str, str], sqs: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty sync queue for this test (the handlers read its URL from the env)."""
    url = sqs.create_queue(QueueName=f"sync-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    monkeypatch.setenv(config.QUEUE_URL, url)
    return str(url)


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
               claims: dict[str, str] | None = None) -> dict[str, Any]:
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
    return {
        "version": "2.0", "routeKey": f"{method} {route}", "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {"host": "a1b2c3.execute-api.us-east-1.amazonaws.com",
                    "user-agent": "pytest", "x-forwarded-proto": "https",
                    **{k.lower(): v for k, v in (headers or {}).items()}},
        "queryStringParameters": query or None, "pathParameters": path_params or None,
        "requestContext": context, "body": body, "isBase64Encoded": b64,
    }


def scheduled_event() -> dict[str, Any]:
    """EventBridge's scheduled event (what `schedule: rate(...)` delivers)."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-27T05:00:00Z",
            "region": "us-east-1", "detail": {},
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/ar-sync-test-dispatch"]}


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The Lambda SQS event for messages received from the queue (attributes included)."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {"ApproximateReceiveCount": "1"}),
        "messageAttributes": {}, "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ar-sync-test-sync",
        "awsRegion": "us-east-1"} for m in messages]}
