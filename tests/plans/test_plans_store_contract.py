"""save/list/delete payment plans behave the same on SQLite and on DynamoDB (moto server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.dynamodb.store import DynamoDBStore, create_tables
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync_emulators.aws import moto_server

CIPHER = TokenCipher(TokenCipher.generate_key())


@pytest.fixture(scope="module")
def dynamodb_client() -> Iterator[Any]:
    with moto_server() as endpoint:
        yield boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    client = request.getfixturevalue("dynamodb_client")
    prefix = f"p{uuid.uuid4().hex[:10]}"
    names = (f"{prefix}-tenants", f"{prefix}-ledger", f"{prefix}-locks")
    create_tables(client, *names)
    return DynamoDBStore(tenants_table=names[0], ledger_table=names[1], locks_table=names[2],
                         cipher=CIPHER, client=client)


def test_plans_round_trip_per_connection(store: Any) -> None:
    a = PaymentPlan(invoice="inv-1", instalments=3, every="month", first_due=date(2027, 1, 5),
                    amount=Decimal("100.005"), already_paid=Decimal("1.5"))
    b = PaymentPlan(invoice="inv-2", instalments=2, every="14 days", first_due=date(2027, 2, 1))
    store.save_payment_plan("xero:1", a)
    store.save_payment_plan("xero:1", b)
    store.save_payment_plan("quickbooks:9", b)
    assert sorted(store.payment_plans("xero:1"), key=lambda p: p.invoice) == [a, b]
    replaced = a.model_copy(update={"instalments": 6})
    store.save_payment_plan("xero:1", replaced)  # one plan per invoice: the new one wins
    assert sorted(store.payment_plans("xero:1"), key=lambda p: p.invoice) == [replaced, b]
    assert store.delete_payment_plan("xero:1", "inv-1") is True
    assert store.delete_payment_plan("xero:1", "inv-1") is False
    assert store.payment_plans("xero:1") == [b]
    assert store.payment_plans("quickbooks:9") == [b]
    assert store.open_invoices("xero:1") == []  # plans do not leak into the invoice snapshot
