"""Webhook deliveries seen lately, so a platform's re-delivery of the same signed body is dropped.

A conditional put of the body's SHA-256 with a TTL: the first delivery wins, the same bytes
within WINDOW_SECONDS are answered 200 and not enqueued again. If enqueueing then fails, the
mark is removed so the platform's retry is not mistaken for a duplicate. The table holds
hashes only (no payload), apart from the tenants table, so the internet-facing webhook
functions never write where tenants live.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WINDOW_SECONDS = 600
TTL_ATTRIBUTE = "expires_at"


def table_definition(name: str) -> dict[str, Any]:
    """CreateTable arguments (serverless.yml declares the same; a test compares them)."""
    return {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}


def _key(platform: str, body: bytes) -> dict[str, Any]:
    return {"pk": {"S": f"{platform}#{hashlib.sha256(body).hexdigest()}"}}


def first_delivery(client: DynamoDBClient, table: str, platform: str, body: bytes, *,
                   now: float) -> bool:
    """True the first time these bytes arrive within the window; False for a re-delivery."""
    moment = math.floor(now)
    try:
        client.put_item(
            TableName=table,
            Item={**_key(platform, body), TTL_ATTRIBUTE: {"N": str(moment + WINDOW_SECONDS)}},
            ConditionExpression="attribute_not_exists(pk) OR #e <= :now",
            ExpressionAttributeNames={"#e": TTL_ATTRIBUTE},
            ExpressionAttributeValues={":now": {"N": str(moment)}})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def forget(client: DynamoDBClient, table: str, platform: str, body: bytes) -> None:
    """Undo `first_delivery` (the delivery could not be enqueued; let its retry through)."""
    client.delete_item(TableName=table, Key=_key(platform, body))
