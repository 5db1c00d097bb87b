"""serverless.yml against the code and issue 11's rules: every handler resolves; every table,
queue, variable and route a handler uses is declared; no secret in the template or environment;
the JWT authorizer guards every route outside http.PUBLIC_ROUTES; one IAM role per function
granting what its handler uses and nothing more; the operational settings."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ar_sync.aws import config, deliveries, http
from ar_sync.store.dynamodb.store import TTL_ATTRIBUTE, table_definitions

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "serverless.yml").read_text()
SLS: dict[str, Any] = yaml.safe_load(TEXT)
FUNCTIONS: dict[str, Any] = SLS["functions"]
RESOURCES: dict[str, Any] = SLS["resources"]["Resources"]
ENV: dict[str, Any] = SLS["provider"]["environment"]
LAMBDA_MAX_TIMEOUT = 900
SECRET_FIELDS = ("CLIENT_ID", "CLIENT_SECRET", "WEBHOOK_KEY")


def ref(value: Any) -> str:
    assert isinstance(value, dict) and set(value) == {"Ref"}, value
    return str(value["Ref"])


def get_att(value: Any) -> list[str]:
    assert isinstance(value, dict) and "Fn::GetAtt" in value, value
    return list(value["Fn::GetAtt"])


def test_basics_and_packaging() -> None:
    assert SLS["frameworkVersion"] == "3"
    assert SLS["provider"]["runtime"] == "python3.12"
    assert "plugins" not in SLS  # no packaging plugin, no hidden build cache
    assert SLS["provider"]["httpApi"]["payload"] == "2.0"
    # the artifact and its architecture come from the bundle command's manifest
    assert SLS["custom"]["bundle"] == "${file(./.build/bundle.json)}"
    assert SLS["package"] == {"artifact": "${self:custom.bundle.artifact}"}
    assert SLS["provider"]["architecture"] == "${self:custom.bundle.arch}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handler_resolves(name: str) -> None:
    module, _, attr = FUNCTIONS[name]["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module.replace("/", ".")), attr)
    assert callable(handler)


def test_all_issue_functions_exist() -> None:
    assert {"dispatch", "sync_tenant", "connect", "oauth_callback", "webhook_quickbooks",
            "webhook_xero"} <= set(FUNCTIONS)


def _source_env_names() -> set[str]:
    """Every AR_SYNC_* name a handler module or the settings it calls spells out."""
    names: set[str] = set()
    for path in [*(ROOT / "src/ar_sync/aws").glob("*.py"), ROOT / "src/ar_sync/store/crypto.py"]:
        names |= set(re.findall(r"\"(AR_SYNC_[A-Z_]+)\"", path.read_text()))
    names.discard("AR_SYNC_DLQ_URL")  # local.py: for tests only, handlers never read it
    return names


def test_every_variable_a_handler_reads_is_declared() -> None:
    declared = set(ENV)
    assert set(config.REQUIRED) <= declared
    for platform in http.PLATFORMS:
        prefix = f"AR_SYNC_{platform.upper()}_"
        assert prefix + "REDIRECT_URI" in declared
        for field in SECRET_FIELDS:  # a parameter name, never the value
            assert prefix + field + "_PARAMETER" in declared
            assert ENV[prefix + field + "_PARAMETER"].startswith(
                "${self:custom.platformParameters}/")
    undeclared = _source_env_names() - declared - set(config.OPTIONAL)
    assert not undeclared, undeclared
    assert config.MAX_CALLS in declared


def test_no_secret_is_resolved_into_the_template_or_environment() -> None:
    assert "${ssm:" not in TEXT and "resolve:ssm" not in TEXT and "secretsmanager" not in TEXT
    for name in ENV:
        assert not any(name.endswith(f"_{field}") for field in SECRET_FIELDS), name
        assert name != "AR_SYNC_SECRET_KEY"
    for fn in FUNCTIONS.values():
        assert "environment" not in fn  # one place to look


def test_env_references_point_at_the_right_resources() -> None:
    for name in (config.TENANTS_TABLE, config.LEDGER_TABLE, config.LOCKS_TABLE,
                 config.DELIVERIES_TABLE):
        assert RESOURCES[ref(ENV[name])]["Type"] == "AWS::DynamoDB::Table"
    assert RESOURCES[ref(ENV[config.QUEUE_URL])]["Type"] == "AWS::SQS::Queue"
    assert ENV[config.KEY_PARAMETER] == "${self:custom.tokenKeyParameter}"
    assert "token-key" in SLS["custom"]["tokenKeyParameter"]


def test_tables_match_the_code_and_have_ttl() -> None:
    logical = {"tenants": ref(ENV[config.TENANTS_TABLE]),
               "ledger": ref(ENV[config.LEDGER_TABLE]), "locks": ref(ENV[config.LOCKS_TABLE])}
    wanted = dict(zip(logical, table_definitions("tenants", "ledger", "locks"), strict=True))
    logical["deliveries"] = ref(ENV[config.DELIVERIES_TABLE])
    wanted["deliveries"] = deliveries.table_definition("deliveries")
    for role, resource in logical.items():
        props = RESOURCES[resource]["Properties"]
        want = wanted[role]
        assert props["KeySchema"] == want["KeySchema"]
        assert sorted(props["AttributeDefinitions"], key=str) == \
            sorted(want["AttributeDefinitions"], key=str)
        assert props.get("GlobalSecondaryIndexes", []) == want.get("GlobalSecondaryIndexes", [])
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        if role != "deliveries":  # hashes that live 10 minutes need no backups
            assert props["PointInTimeRecoverySpecification"] == \
                {"PointInTimeRecoveryEnabled": True}
        if role in ("tenants", "ledger", "locks", "deliveries"):
            assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE,
                                                        "Enabled": True}
    assert deliveries.TTL_ATTRIBUTE == TTL_ATTRIBUTE


def test_queue_dlq_consumer_and_alarm() -> None:
    queue_name = ref(ENV[config.QUEUE_URL])
    queue = RESOURCES[queue_name]["Properties"]
    dlq = get_att(queue["RedrivePolicy"]["deadLetterTargetArn"])
    assert dlq[1] == "Arn" and RESOURCES[dlq[0]]["Type"] == "AWS::SQS::Queue"
    assert 1 <= int(queue["RedrivePolicy"]["maxReceiveCount"]) <= 10
    sync = FUNCTIONS["sync_tenant"]
    assert sync["timeout"] < LAMBDA_MAX_TIMEOUT
    assert int(queue["VisibilityTimeout"]) >= 6 * sync["timeout"]
    (event,) = sync["events"]
    assert get_att(event["sqs"]["arn"]) == [queue_name, "Arn"]
    assert event["sqs"]["batchSize"] == 1
    assert event["sqs"]["functionResponseType"] == "ReportBatchItemFailures"
    # the poller stays within the reserved instances: no throttled delivery counts to the DLQ
    assert event["sqs"]["maximumConcurrency"] == sync["reservedConcurrency"] == \
        "${param:syncConcurrency}"
    assert "schedule" in FUNCTIONS["dispatch"]["events"][0]
    alarm = RESOURCES["SyncDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dlq[0], "QueueName"]}
    (action,) = alarm["AlarmActions"]
    assert RESOURCES[ref(action)]["Type"] == "AWS::SNS::Topic"


def test_http_api_throttling_and_access_logs() -> None:
    stage = SLS["resources"]["extensions"]["HttpApiStage"]["Properties"]
    assert stage["DefaultRouteSettings"] == {"ThrottlingRateLimit": "${param:httpRateLimit}",
                                             "ThrottlingBurstLimit": "${param:httpBurstLimit}"}
    access = SLS["provider"]["logs"]["httpApi"]["format"]
    assert "$context.requestId" in access and "$context.status" in access
    assert "querystring" not in access.lower() and "path" not in access  # OAuth codes


CONSOLE = "console"  # its own ASGI app (ar_sync.console), not the powertools resolver


def _routes() -> list[tuple[str, dict[str, Any], tuple[str, str]]]:
    out = []
    for name, fn in FUNCTIONS.items():
        if name == CONSOLE:
            continue
        for event in fn.get("events", []):
            if "httpApi" in event:
                api = event["httpApi"]
                path = re.sub(r"\{(\w+)\}", r"<\1>", api["path"])
                out.append((name, api, (api["method"].upper(), path)))
    return out


def test_http_routes_match_the_resolver() -> None:
    declared = set()
    for name, _, route in _routes():
        assert FUNCTIONS[name]["handler"] == "ar_sync/aws/http.handler"
        declared.add(route)
    routes = {(r.method, r.path) for r in [*http.app._static_routes, *http.app._dynamic_routes]}
    assert declared == routes
    assert http.PUBLIC_ROUTES <= routes


def test_every_route_but_the_public_ones_needs_a_verified_token() -> None:
    authorizers = SLS["provider"]["httpApi"]["authorizers"]
    assert set(authorizers) == {"jwt"}
    jwt = authorizers["jwt"]
    assert jwt["type"] == "jwt" and jwt["identitySource"] == "$request.header.Authorization"
    # Cognito by default, any OIDC issuer by parameter; never empty
    assert jwt["issuerUrl"]["Fn::If"][0] == "UseCognito"
    assert jwt["issuerUrl"]["Fn::If"][2] == "${param:jwtIssuer}"
    assert jwt["audience"] == [{"Fn::If": ["UseCognito", {"Ref": "UserPoolClient"},
                                           "${param:jwtAudience}"]}]
    assert SLS["resources"]["Conditions"]["UseCognito"] == \
        {"Fn::Equals": ["${param:jwtIssuer}", ""]}
    for name in ("UserPool", "UserPoolClient"):
        assert RESOURCES[name]["Condition"] == "UseCognito"
    guarded = 0
    for name, api, route in _routes():
        if route in http.PUBLIC_ROUTES:
            assert "authorizer" not in api, name
        else:
            assert api.get("authorizer") == {"name": "jwt"}, f"{name} has no authorizer"
            guarded += 1
    assert guarded >= 1  # /connect


# ----------------------------------------------------------------------------- IAM

def _statements(function: str) -> list[dict[str, Any]]:
    role = RESOURCES[FUNCTIONS[function]["role"]]
    assert role["Type"] == "AWS::IAM::Role"
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]},
                      "Action": ["sts:AssumeRole"]}]
    assert "ManagedPolicyArns" not in role["Properties"]
    (policy,) = role["Properties"]["Policies"]
    return list(policy["PolicyDocument"]["Statement"])


def _target(resource: Any) -> str:
    """A statement's resource as a short name: a logical id, `ssm:<path>`, `logs`, `kms`."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return str(resource["Fn::GetAtt"][0])
    if isinstance(resource, dict) and "Fn::Join" in resource:
        parts = resource["Fn::Join"][1]
        return f"{parts[0]['Fn::GetAtt'][0]}/{'/'.join(parts[1:])}"
    text = resource["Fn::Sub"] if isinstance(resource, dict) else resource
    if text.startswith("${self:custom.ssmArn}"):
        return "ssm:" + text.removeprefix("${self:custom.ssmArn}").replace(
            "${self:custom.platformParameters}", "").replace(
            "${self:custom.tokenKeyParameter}", "token-key")
    if text.startswith("${self:custom.logArn}"):
        return "logs"
    if text == "${param:tokenKeyKmsArn}":
        return "kms"
    raise AssertionError(f"unexpected resource {resource!r}")


def grants(function: str) -> set[tuple[str, str]]:
    out = set()
    for st in _statements(function):
        assert st["Effect"] == "Allow"
        for action in st["Action"]:
            assert "*" not in action, action
            for resource in st["Resource"]:
                out.add((action, _target(resource)))
    return out


def condition(function: str, action: str) -> dict[str, Any]:
    (st,) = [st for st in _statements(function) if action in st["Action"]
             and any(_target(r) == "TenantsTable" for r in st["Resource"])]
    return dict(st.get("Condition", {}))


def leading_keys(function: str, action: str) -> set[str]:
    """The tenants-table partitions `action` may touch (every grant there is scoped)."""
    cond = condition(function, action)
    (kind,) = cond
    assert kind in ("ForAllValues:StringLike", "ForAllValues:StringEquals")
    return set(cond[kind]["dynamodb:LeadingKeys"])


LOGS = {("logs:CreateLogStream", "logs"), ("logs:PutLogEvents", "logs")}
APP_SECRETS = {("ssm:GetParameter", f"ssm:/{p}/{f}") for p in ("quickbooks", "xero")
               for f in ("client-id", "client-secret")}
TOKEN_KEY = {("ssm:GetParameter", "ssm:token-key"), ("kms:Decrypt", "kms")}


def test_one_role_per_function() -> None:
    roles = [fn["role"] for fn in FUNCTIONS.values()]
    assert len(set(roles)) == len(roles) == len(FUNCTIONS)
    assert "iam" not in SLS["provider"]  # no shared default role
    for name, fn in FUNCTIONS.items():  # each may write only its own log group
        log = [st for st in _statements(name) if "logs:PutLogEvents" in st["Action"]]
        assert log[0]["Resource"] == [{"Fn::Sub": f"${{self:custom.logArn}}-{name}:*"}]


@pytest.mark.parametrize("platform", ["quickbooks", "xero"])
def test_webhooks_get_connections_send_messages_and_nothing_else(platform: str) -> None:
    function = f"webhook_{platform}"
    assert grants(function) == LOGS | {
        ("dynamodb:GetItem", "TenantsTable"),
        ("sqs:SendMessage", "SyncQueue"),
        ("dynamodb:PutItem", "WebhookDeliveriesTable"),  # the 10-minute duplicate check
        ("dynamodb:DeleteItem", "WebhookDeliveriesTable"),
        ("ssm:GetParameter", f"ssm:/{platform}/webhook-key"),  # its own key, nothing more
    }
    assert condition(function, "dynamodb:GetItem") == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["CONNECTIONS"]}}


def test_dispatch_lists_connections_and_sends_messages() -> None:
    assert grants("dispatch") == LOGS | {("dynamodb:Query", "TenantsTable"),
                                         ("sqs:SendMessage", "SyncQueue")}
    assert condition("dispatch", "dynamodb:Query") == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["CONNECTIONS"]}}


def test_connect_writes_pending_states_only() -> None:
    """A consent URL needs the client id; the client secret is not the connect function's
    (issue 20: it could read both)."""
    client_ids = {("ssm:GetParameter", f"ssm:/{p}/client-id") for p in ("quickbooks", "xero")}
    assert grants("connect") == LOGS | client_ids | {("dynamodb:PutItem", "TenantsTable")}
    assert condition("connect", "dynamodb:PutItem") == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["oauth#*", "oauthslot#*"]}}


def test_callback_gets_the_tenants_table_and_the_token_key() -> None:
    tenants = {(a, "TenantsTable") for a in ("dynamodb:GetItem", "dynamodb:PutItem",
                                            "dynamodb:DeleteItem")}
    assert grants("oauth_callback") == LOGS | APP_SECRETS | TOKEN_KEY | tenants
    keys = condition("oauth_callback", "dynamodb:GetItem")["ForAllValues:StringLike"]
    assert "inv#*" not in keys["dynamodb:LeadingKeys"]  # no invoice snapshots


def test_sync_gets_what_a_run_needs() -> None:
    assert grants("sync_tenant") == LOGS | APP_SECRETS | TOKEN_KEY | {
        *((a, "TenantsTable") for a in ("dynamodb:GetItem", "dynamodb:PutItem",
                                        "dynamodb:UpdateItem", "dynamodb:Query",
                                        "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem")),
        *((a, t) for a in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                           "dynamodb:Query")
          for t in ("LedgerTable", "LedgerTable/index/tenant-index",
                    "LedgerTable/index/unfinished-index")),
        ("dynamodb:PutItem", "LocksTable"), ("dynamodb:DeleteItem", "LocksTable"),
        *((a, "SyncQueue") for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage",
                                     "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes",
                                     "sqs:SendMessage")),
    }


def test_console_signs_in_through_the_pool_the_authorizer_trusts() -> None:
    fn = FUNCTIONS[CONSOLE]
    assert fn["handler"] == "ar_sync/aws/console.handler" and fn["timeout"] < 30
    routes = [(e["httpApi"]["method"], e["httpApi"]["path"]) for e in fn["events"]]
    assert routes == [("GET", "/console"), ("ANY", "/console/{proxy+}")]
    # no authorizer (browsers send a cookie): the console verifies the same issuer and
    # audience itself, and every page but sign-in answers only to a session (tests/console)
    assert all("authorizer" not in e["httpApi"] for e in fn["events"])
    jwt = SLS["provider"]["httpApi"]["authorizers"]["jwt"]
    assert ENV["AR_SYNC_JWT_ISSUER"] == jwt["issuerUrl"]
    assert [ENV["AR_SYNC_JWT_AUDIENCE"]] == jwt["audience"]
    assert ENV["AR_SYNC_CONSOLE_URL"]["Fn::Join"][1][1] == "/console"
    client = RESOURCES["UserPoolClient"]["Properties"]
    assert client["AllowedOAuthFlows"] == ["code"] and client["GenerateSecret"] is False
    assert client["CallbackURLs"][0]["Fn::Join"][1][1] == "/console/auth/callback"
    assert RESOURCES["UserPoolDomain"]["Condition"] == "UseCognito"
    assert ENV["AR_SYNC_CONSOLE_SESSION_KEY_PARAMETER"].endswith("/console/session-key")


def test_console_reads_and_queues_but_takes_no_lock() -> None:
    assert grants(CONSOLE) == LOGS | APP_SECRETS | TOKEN_KEY | {
        ("ssm:GetParameter", "ssm:/console/session-key"),
        *((a, "TenantsTable") for a in ("dynamodb:GetItem", "dynamodb:PutItem",
                                        "dynamodb:DeleteItem", "dynamodb:UpdateItem",
                                        "dynamodb:Query", "dynamodb:BatchGetItem",
                                        "dynamodb:BatchWriteItem")),
        *((a, t) for a in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query")
          for t in ("LedgerTable", "LedgerTable/index/tenant-index")),
        ("sqs:SendMessage", "SyncQueue"),
    }
    reads = leading_keys(CONSOLE, "dynamodb:GetItem")
    writes = leading_keys(CONSOLE, "dynamodb:PutItem")
    assert "runs#*" in reads and "mail#*" not in writes and "plan#*" not in writes
    assert {"oauth#*", "oauthslot#*"} <= writes and not {k for k in reads if "oauth" in k}


def test_sync_writes_only_its_own_partitions_of_the_tenants_table() -> None:
    """Issue 20: the sync role could write anywhere in the tenants table (connection rows,
    rules versions, OAuth states). Writes are scoped to tokens/checkpoint/report and the
    invoice snapshot; a connection row, a rules version, a pause, mail settings stay read."""
    writes = {"conn#*", "runs#*", "inv#*", "paid#*"}
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"):
        assert leading_keys("sync_tenant", action) == writes, action
    reads = leading_keys("sync_tenant", "dynamodb:GetItem")
    assert writes - {"runs#*"} | {"CONNECTIONS", "rules#*", "pause#*", "mail#*"} <= reads
    assert not {k for k in reads if k.startswith("oauth")}
    for action in ("dynamodb:Query", "dynamodb:BatchGetItem"):
        assert leading_keys("sync_tenant", action) == reads


def test_admin_cannot_list_connections_or_read_tokens() -> None:
    """Issue 20: the admin role could Query the CONNECTIONS partition (every business's
    companies). It reads one connection and changes it in place; its own partitions hold
    rules versions, pauses, the snapshot and the sealed sending settings."""
    tenants = {a for a, t in grants("admin") if t == "TenantsTable"}
    assert tenants == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
                       "dynamodb:UpdateItem"}
    connection_rows = [st for st in _statements("admin") if st.get("Condition", {}).get(
        "ForAllValues:StringEquals", {}).get("dynamodb:LeadingKeys") == ["CONNECTIONS"]]
    assert [st["Action"] for st in connection_rows] == [["dynamodb:GetItem",
                                                         "dynamodb:UpdateItem"]]
    assert leading_keys("admin", "dynamodb:Query") == {"rules#*", "pause#*", "inv#*", "mail#*"}
    assert {g for g in grants("admin") if g[0].startswith(("ssm", "kms"))} == TOKEN_KEY


def test_a_deploy_with_an_issuer_but_no_audience_is_refused() -> None:
    """Issue 20: an empty JWT audience deployed. A CloudFormation rule (evaluated before any
    resource changes) refuses it; Cognito (no issuer) keeps its app client as the audience."""
    resources = SLS["resources"]
    assert resources["Parameters"]["JwtIssuer"]["Default"] == "${param:jwtIssuer}"
    assert resources["Parameters"]["JwtAudience"]["Default"] == "${param:jwtAudience}"
    rule = resources["Rules"]["JwtAudienceRequired"]

    def holds(expr: Any, params: dict[str, str]) -> Any:
        """CloudFormation's rule functions this rule uses, evaluated."""
        (fn, arg), = expr.items()
        if fn == "Ref":
            return params[arg]
        if fn == "Fn::Equals":
            return holds_value(arg[0], params) == holds_value(arg[1], params)
        if fn == "Fn::Not":
            return not holds(arg[0], params)
        if fn == "Fn::And":
            return all(holds(a, params) for a in arg)
        raise AssertionError(f"unexpected rule function {fn}")

    def holds_value(value: Any, params: dict[str, str]) -> Any:
        return holds(value, params) if isinstance(value, dict) else value

    def deployable(issuer: str, audience: str) -> bool:
        params = {"JwtIssuer": issuer, "JwtAudience": audience}
        if not holds(rule["RuleCondition"], params):
            return True
        return all(holds(a["Assert"], params) for a in rule["Assertions"])

    assert deployable("", "")  # Cognito: the user pool's app client is the audience
    assert deployable("https://issuer.example/", "api://ar-sync")
    assert not deployable("https://issuer.example/", "")
    assert "jwtAudience" in rule["Assertions"][0]["AssertDescription"]


def test_token_key_decrypt_only_through_ssm_for_that_parameter() -> None:
    for function in ("sync_tenant", "oauth_callback", CONSOLE):
        (kms,) = [st for st in _statements(function) if st["Action"] == ["kms:Decrypt"]]
        equals = kms["Condition"]["StringEquals"]
        assert equals["kms:ViaService"] == {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"}
        assert equals["kms:EncryptionContext:PARAMETER_ARN"] == {
            "Fn::Sub": "${self:custom.ssmArn}${self:custom.tokenKeyParameter}"}


def test_deploy_doc_covers_the_path() -> None:
    doc = (ROOT / "docs/deploy.md").read_text()
    for needed in ("python -m ar_sync.aws.bundle", "keys rotate", "serverless deploy",
                   "put-parameter", "jwtIssuer", "```mermaid"):
        assert needed in doc, needed
