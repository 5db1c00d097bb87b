"""What a Lambda container reads from its environment, and the clients it builds once.

serverless.yml declares every variable named here (a test checks it). The Fernet keys are read
from an SSM SecureString at run time (ar_sync.aws.secrets: decrypted by KMS, cached a few
minutes), never from the function's environment, and never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from ar_sync.aws.secrets import RuntimeCipher
from ar_sync.store.crypto import KEY_ENV
from ar_sync.store.dynamodb.store import DynamoDBStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

TENANTS_TABLE = "AR_SYNC_TENANTS_TABLE"
LEDGER_TABLE = "AR_SYNC_LEDGER_TABLE"
LOCKS_TABLE = "AR_SYNC_LOCKS_TABLE"
QUEUE_URL = "AR_SYNC_QUEUE_URL"
DELIVERIES_TABLE = "AR_SYNC_DELIVERIES_TABLE"  # webhook bodies seen in the last 10 minutes
KEY_PARAMETER = "AR_SYNC_KEY_PARAMETER"  # SSM SecureString holding the Fernet key
PUBLIC_URL = "AR_SYNC_PUBLIC_URL"  # where the HTTP API answers (for links in logs/docs)
MAX_CALLS = "AR_SYNC_MAX_CALLS_PER_RUN"  # optional cap on platform calls per tenant run
BOUNCE_TOPICS = "AR_SYNC_BOUNCE_TOPIC_ARNS"  # optional: the SNS topics bounces may come from

# one structured logger for every handler: tenant ids and counts only, never tokens or e-mails
logger = Logger(service="ar-sync")

REQUIRED = (TENANTS_TABLE, LEDGER_TABLE, LOCKS_TABLE, QUEUE_URL, KEY_PARAMETER,
            DELIVERIES_TABLE)
# AR_SYNC_SECRET_KEY: local runs without SSM
OPTIONAL = (PUBLIC_URL, MAX_CALLS, KEY_ENV, BOUNCE_TOPICS)


class ConfigError(RuntimeError):
    """A variable the deployment should have set is missing."""


@dataclass(frozen=True)
class AwsConfig:
    tenants_table: str
    ledger_table: str
    locks_table: str
    queue_url: str
    key_parameter: str
    deliveries_table: str
    max_calls: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AwsConfig:
        env = os.environ if env is None else env
        missing = [name for name in REQUIRED if not env.get(name)]
        if missing:
            raise ConfigError(f"missing environment variables: {', '.join(missing)}")
        max_calls = env.get(MAX_CALLS)
        return cls(tenants_table=env[TENANTS_TABLE], ledger_table=env[LEDGER_TABLE],
                   locks_table=env[LOCKS_TABLE], queue_url=env[QUEUE_URL],
                   key_parameter=env[KEY_PARAMETER], deliveries_table=env[DELIVERIES_TABLE],
                   max_calls=int(max_calls) if max_calls else None)


@lru_cache(maxsize=4)
def _store(config: AwsConfig) -> DynamoDBStore:
    return DynamoDBStore(tenants_table=config.tenants_table, ledger_table=config.ledger_table,
                         locks_table=config.locks_table,
                         cipher=RuntimeCipher(config.key_parameter))


def store(config: AwsConfig | None = None) -> DynamoDBStore:
    """The container's store (one boto3 client, reused across warm invocations)."""
    return _store(config or AwsConfig.from_env())


@lru_cache(maxsize=1)
def sqs() -> SQSClient:
    import boto3

    return boto3.client("sqs")


@lru_cache(maxsize=1)
def dynamodb() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb")


def reset_caches() -> None:
    """Forget cached clients, keys and parameters (tests that switch endpoints or keys)."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]
    _store.cache_clear()
    sqs.cache_clear()
    dynamodb.cache_clear()
