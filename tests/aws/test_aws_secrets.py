"""Secrets at run time: SSM SecureStrings named by the environment, key rotation across warm
containers, ciphertexts bound to their row in DynamoDB, `ar-sync keys rotate --aws`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_helpers import WEBHOOK_KEY, call_http, http_event
from aws_lambda_powertools.utilities import parameters
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from ar_sync.aws import config, secrets
from ar_sync.cli import app
from ar_sync.connect import webhooks
from ar_sync.store.crypto import TokenCipher, TokenDecryptError
from ar_sync.store.dynamodb.store import DynamoDBStore
from ar_sync.sync.connector import Connection, TokenSet

TOKENS = TokenSet(access_token="AT-run-time", refresh_token="RT-run-time",
                  expires_at=datetime(2026, 12, 1, tzinfo=UTC))


@pytest.fixture
def ssm(aws: dict[str, str]) -> Any:
    return boto3.client("ssm")


@pytest.fixture
def only_parameter_names(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The deployed shape: no secret values in the environment, only parameter names."""
    prefix = f"/t{uuid.uuid4().hex[:6]}"
    values = {"quickbooks/client-id": "qb-id", "quickbooks/client-secret": "qb-secret",
              "quickbooks/webhook-key": WEBHOOK_KEY, "xero/client-id": "x-id",
              "xero/client-secret": "x-secret"}
    for name, value in values.items():
        ssm.put_parameter(Name=f"{prefix}/{name}", Type="SecureString", Value=value)
    for platform in ("QUICKBOOKS", "XERO"):
        for field in secrets.SECRET_FIELDS:
            monkeypatch.delenv(f"AR_SYNC_{platform}_{field}", raising=False)
            monkeypatch.setenv(f"AR_SYNC_{platform}_{field}_PARAMETER",
                               f"{prefix}/{platform.lower()}/{field.lower().replace('_', '-')}")
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    yield prefix
    parameters.clear_caches()  # type: ignore[no-untyped-call]


def test_platform_secrets_are_read_from_ssm_and_cached(only_parameter_names: str,
                                                       ssm: Any) -> None:
    settings = secrets.platform_settings("quickbooks")
    assert (settings.client_id, settings.client_secret) == ("qb-id", "qb-secret")
    assert settings.webhook_key is None  # only the webhook functions read that one
    assert secrets.webhook_key("quickbooks") == WEBHOOK_KEY
    # cached for the container (MAX_AGE): a changed value is seen once the cache runs out
    ssm.put_parameter(Name=f"{only_parameter_names}/quickbooks/client-secret",
                      Type="SecureString", Value="qb-secret-2", Overwrite=True)
    assert secrets.platform_settings("quickbooks").client_secret == "qb-secret"
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    assert secrets.platform_settings("quickbooks").client_secret == "qb-secret-2"


def test_a_webhook_needs_its_key_and_nothing_else(only_parameter_names: str, ssm: Any,
                                                  queue: str) -> None:
    """xero/webhook-key does not exist and the token key is gone: a QuickBooks webhook
    still verifies and answers, reading only its own parameter."""
    ssm.delete_parameter(Name=config.AwsConfig.from_env().key_parameter)
    for name in ("client-id", "client-secret"):
        ssm.delete_parameter(Name=f"{only_parameter_names}/quickbooks/{name}")
    config.reset_caches()
    try:
        body = json.dumps({"eventNotifications": [{"realmId": "42", "dataChangeEvent": {
            "entities": [{"name": "Invoice", "id": "1", "operation": "Update"}]}}]}).encode()
        event = http_event("POST", "/webhooks/quickbooks", "/webhooks/quickbooks",
                           headers={"intuit-signature": webhooks.sign(WEBHOOK_KEY, body)},
                           body=body.decode())
        assert call_http(event)["statusCode"] == 200
        forged = http_event("POST", "/webhooks/quickbooks", "/webhooks/quickbooks",
                            headers={"intuit-signature": webhooks.sign("nope", body)},
                            body=body.decode())
        assert call_http(forged)["statusCode"] == 401
    finally:
        ssm.put_parameter(Name=config.AwsConfig.from_env().key_parameter, Type="SecureString",
                          Value=TokenCipher.generate_key().decode(), Overwrite=True)
        config.reset_caches()


def _store(aws: dict[str, str], cipher: Any) -> DynamoDBStore:
    return DynamoDBStore(tenants_table=aws[config.TENANTS_TABLE],
                         ledger_table=aws[config.LEDGER_TABLE],
                         locks_table=aws[config.LOCKS_TABLE], cipher=cipher)


def _set_keys(ssm: Any, *keys: bytes) -> str:
    name = config.AwsConfig.from_env().key_parameter
    ssm.put_parameter(Name=name, Type="SecureString", Overwrite=True,
                      Value=",".join(k.decode() for k in keys))
    return str(name)


def test_warm_container_follows_a_rotation(aws: dict[str, str], ssm: Any) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    name = _set_keys(ssm, old)
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    warm = _store(aws, secrets.RuntimeCipher(name))  # a container that cached [old]
    cid = f"xero:{uuid.uuid4().hex[:8]}"
    assert warm.save_tokens(cid, TOKENS, expected_version=-1)

    _set_keys(ssm, new, old)  # the operator puts a new key in front
    fresh = _store(aws, TokenCipher([new, old]))  # a new container writes with it
    current = warm.load_tokens(cid)
    assert current is not None
    assert fresh.save_tokens(cid, TOKENS.model_copy(update={"access_token": "AT-new"}),
                             expected_version=current.version)
    # the warm container's cached list cannot read that blob: it re-reads the parameter
    loaded = warm.load_tokens(cid)
    assert loaded is not None and loaded.access_token == "AT-new"


def test_a_blob_copied_to_another_connections_row_does_not_decrypt(aws: dict[str, str]
                                                                  ) -> None:
    key = Fernet.generate_key()
    store = _store(aws, TokenCipher(key))
    victim, attacker = f"xero:v-{uuid.uuid4().hex[:6]}", f"xero:a-{uuid.uuid4().hex[:6]}"
    assert store.save_tokens(victim, TOKENS, expected_version=-1)
    assert store.save_tokens(attacker, TOKENS.model_copy(update={"access_token": "mine"}),
                             expected_version=-1)
    db = boto3.client("dynamodb")
    table = aws[config.TENANTS_TABLE]
    blob = db.get_item(TableName=table, Key={"pk": {"S": f"conn#{victim}"},
                                             "sk": {"S": "tokens"}})["Item"]["blob"]
    db.update_item(TableName=table, Key={"pk": {"S": f"conn#{attacker}"}, "sk": {"S": "tokens"}},
                   UpdateExpression="SET #b = :b", ExpressionAttributeNames={"#b": "blob"},
                   ExpressionAttributeValues={":b": blob})
    with pytest.raises(TokenDecryptError, match="another connection"):
        store.load_tokens(attacker)
    assert store.load_tokens(victim) == TOKENS.model_copy(update={"version": 0})


def test_keys_rotate_aws_reencrypts_every_row(aws: dict[str, str], ssm: Any) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    _set_keys(ssm, old)
    config.reset_caches()
    store = config.store()
    cids = [f"quickbooks:{uuid.uuid4().int % 10**9}" for _ in range(3)]
    for cid in cids:
        platform, external = cid.split(":")
        store.save_connection(Connection(id=cid, platform=platform, external_id=external,
                                         business_id="biz-rot"))
        assert store.save_tokens(cid, TOKENS, expected_version=-1)
    _set_keys(ssm, new, old)
    config.reset_caches()
    result = CliRunner().invoke(app, ["keys", "rotate", "--aws"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted" in result.stdout and TOKENS.access_token not in result.stdout
    only_new = _store(aws, TokenCipher(new))
    for cid in cids:
        assert only_new.load_tokens(cid) is not None  # readable without the old key
    with pytest.raises(TokenDecryptError):
        _store(aws, TokenCipher(old)).load_tokens(cids[0])
    _set_keys(ssm, new)
    config.reset_caches()


def test_pending_slot_of_an_expired_flow_is_reused(aws: dict[str, str]) -> None:
    """The store's slot transaction, below the handler: expired slots count as free."""
    from ar_sync.sync.store import PendingAuth

    store = config.store()
    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    business = f"biz-{uuid.uuid4().hex[:6]}"

    def put(at: datetime) -> bool:
        return store.put_pending_auth(PendingAuth(
            state=uuid.uuid4().hex, platform="xero", business_id=business, code_verifier=None,
            expires_at=at + timedelta(minutes=10)), now=at, limit_per_business=2)

    assert put(now) and put(now) and not put(now)
    assert put(now + timedelta(minutes=11)) and put(now + timedelta(minutes=11))
    assert not put(now + timedelta(minutes=11))


def test_the_consent_url_is_built_without_reading_the_client_secret(
        qbo: Any, only_parameter_names: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20: GET /connect read the client secrets it does not need (and its role allowed
    it). It now reads the client id only; the role grants nothing more."""
    from aws_helpers import connect_event

    read: list[str] = []
    real = secrets.parameter_value
    monkeypatch.setattr(secrets, "parameter_value",
                        lambda name, **kw: read.append(name) or real(name, **kw))
    answer = call_http(connect_event(sub="biz-consent"))
    assert answer["statusCode"] == 302, answer
    assert read and all(name.endswith("/client-id") for name in read), read
    import os

    assert "AR_SYNC_QUICKBOOKS_CLIENT_SECRET" not in os.environ  # only the parameter name
