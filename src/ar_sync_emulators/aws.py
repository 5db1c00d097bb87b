"""A local AWS for tests and the fan-out bench: moto in server mode on 127.0.0.1.

Real HTTP, real boto3 clients, nothing leaves the machine. `provision` creates what
serverless.yml would (three tables, the queue with its dead-letter queue, the key parameter)
and returns the environment the handlers read.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ar_sync.aws import config, deliveries
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.dynamodb.store import create_tables

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server app on a free port of 127.0.0.1; yields its endpoint URL.

    Real DynamoDB applies each conditional write atomically. moto's ThreadedMotoServer does
    not: two UpdateItem calls with the same condition, on two threads, can both succeed (the
    ledger's takeover race test caught it). So this serves the same moto WSGI app with one
    DynamoDB request at a time, which restores the guarantee the store relies on. Other
    services are not serialized: an SQS long poll must not stall every table call.
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return list(app(environ, start_response))
        with one_at_a_time:
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", 0, serialized, threaded=True,
                         request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def aws_env(endpoint: str) -> dict[str, str]:
    """Environment that points every boto3 client at `endpoint` with dummy credentials."""
    return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}


def provision(endpoint: str, prefix: str = "ar-sync-local") -> dict[str, str]:
    """Create tables, queue + DLQ and the key parameter; return the handlers' environment."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing",  # noqa: S106
        region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"])
    names = {config.TENANTS_TABLE: f"{prefix}-tenants", config.LEDGER_TABLE: f"{prefix}-ledger",
             config.LOCKS_TABLE: f"{prefix}-locks"}
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    create_tables(dynamodb, names[config.TENANTS_TABLE], names[config.LEDGER_TABLE],
                  names[config.LOCKS_TABLE])
    names[config.DELIVERIES_TABLE] = f"{prefix}-webhook-deliveries"
    dynamodb.create_table(**deliveries.table_definition(names[config.DELIVERIES_TABLE]))
    sqs = session.client("sqs", endpoint_url=endpoint)
    dlq = sqs.create_queue(QueueName=f"{prefix}-sync-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=f"{prefix}-sync", Attributes={
        "VisibilityTimeout": "3600",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
    })["QueueUrl"]
    parameter = f"/{prefix}/token-key"
    session.client("ssm", endpoint_url=endpoint).put_parameter(
        Name=parameter, Type="SecureString", Value=TokenCipher.generate_key().decode())
    return {**aws_env(endpoint), **names, config.QUEUE_URL: queue,
            config.KEY_PARAMETER: parameter, "AR_SYNC_DLQ_URL": dlq}


@contextmanager
def env_vars(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration, restoring what was there before."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def local_aws(prefix: str = "ar-sync-local") -> Iterator[dict[str, str]]:
    """moto server + provisioned resources, with os.environ pointed at them for the duration."""
    with moto_server() as endpoint:
        env = provision(endpoint, prefix)
        with env_vars(env):
            config.reset_caches()
            try:
                yield env
            finally:
                config.reset_caches()


# ----------------------------------------------------------------------------- Lambda's side


@dataclass
class LocalContext:
    """What Lambda passes as `context`: the attributes powertools and the handlers read."""

    remaining_ms: int = 600_000
    function_name: str = "ar-sync-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ar-sync-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/ar-sync-local"
    log_stream_name: str = "2026/11/27/[$LATEST]local"
    _started: float = field(default_factory=time.monotonic, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        """Counts down from `remaining_ms` like the real one."""
        return max(0, self.remaining_ms - int((time.monotonic() - self._started) * 1000))


def scheduled_event() -> dict[str, Any]:
    """EventBridge's scheduled event (what `schedule: rate(...)` delivers)."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-27T05:00:00Z",
            "region": "us-east-1", "detail": {},
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/ar-sync-dispatch"]}


def sqs_event(messages: Sequence[Any]) -> dict[str, Any]:
    """The Lambda SQS event for messages received with ReceiveMessage (AttributeNames=All)."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {"ApproximateReceiveCount": "1"}),
        "messageAttributes": {}, "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ar-sync-local-sync",
        "awsRegion": "us-east-1"} for m in messages]}
