"""DynamoDB (moto server, real boto3 over HTTP) for the sync tests of the DynamoDB store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from journey_support import old_journey

from ar_sync.domain.models import Invoice
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.dynamodb.store import DynamoDBStore, create_tables
from ar_sync.sync.connector import Connection
from ar_sync_emulators.aws import moto_server

CONN = Connection(id="fake:1", platform="fake", external_id="1")
POLICY = old_journey("platform-email")  # stages with platform e-mails, fees, escalation
START = datetime(2026, 9, 1, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def dynamodb_client() -> Iterator[Any]:
    with moto_server() as endpoint:
        yield boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")


def invoice(n: int, due: date) -> Invoice:
    return Invoice.model_validate({
        "platform": "fake", "tenant": CONN.id, "id": f"i{n}", "number": f"N{n}",
        "customer_id": f"c{n}", "customer_name": f"Customer {n}",
        "customer_email": f"c{n}@example.com", "issue_date": due - timedelta(days=30),
        "due_date": due, "currency": "USD", "total": Decimal("900.00"),
        "balance": Decimal("900.00"), "status": "open", "updated_at": START})


def new_store(client: Any, retention_days: int) -> DynamoDBStore:
    prefix = f"a{uuid.uuid4().hex[:10]}"
    names = (f"{prefix}-tenants", f"{prefix}-ledger", f"{prefix}-locks")
    create_tables(client, *names)
    store = DynamoDBStore(tenants_table=names[0], ledger_table=names[1], locks_table=names[2],
                          cipher=TokenCipher(TokenCipher.generate_key()), client=client,
                          retention_days=retention_days)
    store.save_connection(CONN)
    return store


