"""serverless.yml against the code: handlers import, and every table, queue, variable and route
a handler uses is declared, with the settings issue 6 asks for."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ar_sync.aws import config, http
from ar_sync.store.dynamodb import TTL_ATTRIBUTE, table_definitions

ROOT = Path(__file__).resolve().parents[2]
SLS: dict[str, Any] = yaml.safe_load((ROOT / "serverless.yml").read_text())
FUNCTIONS: dict[str, Any] = SLS["functions"]
RESOURCES: dict[str, Any] = SLS["resources"]["Resources"]
ENV: dict[str, Any] = SLS["provider"]["environment"]
LAMBDA_MAX_TIMEOUT = 900


def ref(value: Any) -> str:
    assert isinstance(value, dict) and set(value) == {"Ref"}, value
    return str(value["Ref"])


def get_att(value: Any) -> list[str]:
    assert isinstance(value, dict) and "Fn::GetAtt" in value, value
    return list(value["Fn::GetAtt"])


def test_basics() -> None:
    assert SLS["frameworkVersion"] == "3"
    assert SLS["provider"]["runtime"] == "python3.12"
    assert "serverless-python-requirements" in SLS["plugins"]
    assert SLS["provider"]["httpApi"]["payload"] == "2.0"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handler_imports(name: str) -> None:
    module, _, attr = FUNCTIONS[name]["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module.replace("/", ".")), attr)
    assert callable(handler)


def test_all_issue_functions_exist() -> None:
    assert {"dispatch", "sync_tenant", "connect", "oauth_callback", "webhook_quickbooks",
            "webhook_xero"} <= set(FUNCTIONS)


def _source_env_names() -> set[str]:
    """Every AR_SYNC_* name a handler module or the settings it calls spells out."""
    names: set[str] = set()
    for path in [*(ROOT / "src/ar_sync/aws").glob("*.py"), ROOT / "src/ar_sync/crypto.py"]:
        names |= set(re.findall(r"\"(AR_SYNC_[A-Z_]+)\"", path.read_text()))
    names.discard("AR_SYNC_DLQ_URL")  # local.py: for tests only, handlers never read it
    return names


def test_every_variable_a_handler_reads_is_declared() -> None:
    declared = set(ENV)
    assert set(config.REQUIRED) <= declared
    for platform in http.PLATFORMS:  # what ar_sync.settings.platform_settings reads
        for suffix in ("CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI", "WEBHOOK_KEY"):
            assert f"AR_SYNC_{platform.upper()}_{suffix}" in declared
    undeclared = _source_env_names() - declared - set(config.OPTIONAL)
    assert not undeclared, undeclared
    assert config.MAX_CALLS in declared


def test_env_references_point_at_the_right_resources() -> None:
    for name in (config.TENANTS_TABLE, config.LEDGER_TABLE, config.LOCKS_TABLE):
        assert RESOURCES[ref(ENV[name])]["Type"] == "AWS::DynamoDB::Table"
    assert RESOURCES[ref(ENV[config.QUEUE_URL])]["Type"] == "AWS::SQS::Queue"
    assert ENV[config.KEY_PARAMETER] == "${self:custom.tokenKeyParameter}"
    assert "token-key" in SLS["custom"]["tokenKeyParameter"]


def test_tables_match_the_store_and_have_pitr_and_ttl() -> None:
    logical = {"tenants": ref(ENV[config.TENANTS_TABLE]),
               "ledger": ref(ENV[config.LEDGER_TABLE]), "locks": ref(ENV[config.LOCKS_TABLE])}
    wanted = dict(zip(logical, table_definitions("tenants", "ledger", "locks"), strict=True))
    for role, resource in logical.items():
        props = RESOURCES[resource]["Properties"]
        want = wanted[role]
        assert props["KeySchema"] == want["KeySchema"]
        assert sorted(props["AttributeDefinitions"], key=str) == \
            sorted(want["AttributeDefinitions"], key=str)
        assert props.get("GlobalSecondaryIndexes", []) == want.get("GlobalSecondaryIndexes", [])
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        if role in ("tenants", "locks"):
            assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE,
                                                        "Enabled": True}


def test_queue_dlq_and_consumer_settings() -> None:
    queue_name = ref(ENV[config.QUEUE_URL])
    queue = RESOURCES[queue_name]["Properties"]
    dlq = get_att(queue["RedrivePolicy"]["deadLetterTargetArn"])
    assert dlq[1] == "Arn" and RESOURCES[dlq[0]]["Type"] == "AWS::SQS::Queue"
    assert 1 <= int(queue["RedrivePolicy"]["maxReceiveCount"]) <= 10
    sync = FUNCTIONS["sync_tenant"]
    assert sync["timeout"] < LAMBDA_MAX_TIMEOUT
    assert int(queue["VisibilityTimeout"]) >= 6 * sync["timeout"]
    assert sync["reservedConcurrency"]
    (event,) = sync["events"]
    assert get_att(event["sqs"]["arn"]) == [queue_name, "Arn"]
    assert event["sqs"]["batchSize"] == 1
    assert event["sqs"]["functionResponseType"] == "ReportBatchItemFailures"
    assert "schedule" in FUNCTIONS["dispatch"]["events"][0]


def test_http_routes_match_the_resolver() -> None:
    declared = set()
    for fn in FUNCTIONS.values():
        for event in fn.get("events", []):
            if "httpApi" in event:
                assert fn["handler"] == "ar_sync/aws/http.handler"
                path = re.sub(r"\{(\w+)\}", r"<\1>", event["httpApi"]["path"])
                declared.add((event["httpApi"]["method"].upper(), path))
    routes = {(r.method, r.path) for r in [*http.app._static_routes, *http.app._dynamic_routes]}
    assert declared == routes


def _statements() -> list[dict[str, Any]]:
    return list(SLS["provider"]["iam"]["role"]["statements"])


def test_iam_is_least_privilege() -> None:
    referenced: set[str] = set()
    for st in _statements():
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        assert all("*" not in a for a in actions), actions
        assert "dynamodb:Scan" not in actions
        for res in st["Resource"]:
            if isinstance(res, str):
                assert res.split(":")[-1] != "*", res
            else:
                text = str(res)
                referenced |= {name for name in RESOURCES if f"'{name}'" in text}
    for name, resource in RESOURCES.items():
        if resource["Type"] in ("AWS::DynamoDB::Table",) or name == ref(ENV[config.QUEUE_URL]):
            assert name in referenced, f"{name} is used but not granted"
    ssm = [st for st in _statements() if st["Action"] == ["ssm:GetParameter"]]
    assert ssm, "the Fernet key parameter must be readable"
    assert all("${self:custom.tokenKeyParameter}" in r for r in ssm[0]["Resource"])
    kms = [st for st in _statements() if st["Action"] == ["kms:Decrypt"]]
    assert kms and kms[0]["Condition"]["StringEquals"]["kms:ViaService"].startswith("ssm.")


def test_packaging_is_documented() -> None:
    reqs = SLS["custom"]["pythonRequirements"]
    assert reqs["fileName"]
    doc = (ROOT / "docs/deploy.md").read_text()
    assert "[aws,quickbooks,xero]" in doc and reqs["fileName"] in doc
    assert "```mermaid" in doc
