"""Fixtures: local AWS (moto server on 127.0.0.1) and a QuickBooks emulator behind the env."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_helpers import REDIRECT, WEBHOOK_KEY, XERO_WEBHOOK_KEY

from ar_sync.aws import config
from ar_sync_emulators.aws import env_vars, local_aws
from ar_sync_emulators.books import demo_company
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator


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
        with env_vars(env):
            yield emu


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
