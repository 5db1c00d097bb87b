"""The admin API on local AWS (moto DynamoDB): a signed-in business sets its company's rules
versions, go-live and pauses; another business's company answers 404; no token, 401."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from aws_helpers import call_http, http_event

from ar_sync.aws import config
from ar_sync.domain.models import Invoice
from ar_sync.sync.connector import Connection

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RULES = "calendar: {send_on: any_day}\nreminders:\n  - {name: overdue, days: 7}\n"


@pytest.fixture
def company(aws: dict[str, str]) -> Connection:
    store = config.store()
    cid = f"quickbooks:{uuid.uuid4().int % 10**10}"
    connection = Connection(id=cid, platform="quickbooks", external_id=cid[11:],
                            business_id="biz-1", created_at=NOW)
    store.save_connection(connection)
    store.save_invoices(cid, [Invoice(
        platform="quickbooks", tenant=cid, id="77", number="INV-77", customer_id="c9",
        customer_name="Globex", issue_date=date(2026, 9, 1), due_date=date(2026, 10, 1),
        currency="USD", total=Decimal(100), balance=Decimal(100), updated_at=NOW)],
        replace_all=True)
    return connection


def admin(method: str, company: Connection, tail: str, body: Any = None, *,
          sub: str | None = "biz-1", content_type: str = "application/json",
          query: dict[str, str] | None = None) -> tuple[int, Any]:
    path = f"/admin/tenants/{company.id}/{tail}"
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    event = http_event(method, path, f"/admin/tenants/{{tenant}}/{tail}", body=text,
                       headers={"content-type": content_type}, query=query,
                       path_params={"tenant": company.id},
                       claims={"sub": sub} if sub else None)
    out = call_http(event)
    return out["statusCode"], json.loads(out["body"]) if out.get("body") else None


def test_rules_versions_through_the_api(company: Connection) -> None:
    status, got = admin("PUT", company, "rules", RULES, content_type="application/yaml")
    assert (status, got) == (201, {"version": 1})
    status, got = admin("PUT", company, "rules", {"rules": RULES + "# v2\n", "note": "why"})
    assert (status, got["version"]) == (201, 2)
    assert admin("PUT", company, "rules", {"rules": RULES + "# v2\n"})[1]["unchanged"]
    status, got = admin("GET", company, "rules")
    assert status == 200 and got["version"] == 2 and got["text"].endswith("# v2\n")
    status, got = admin("POST", company, "rules/rollback", {})
    assert (status, got) == (201, {"version": 3, "same_as": 1})
    history = admin("GET", company, "rules", query={"history": "1"})[1]["versions"]
    assert [v["version"] for v in history] == [1, 2, 3] and history[2]["text"] == RULES
    assert config.store().current_rules(company.id).version == 3


def test_invalid_rules_are_refused_with_their_line(company: Connection) -> None:
    status, got = admin("PUT", company, "rules", "reminders:\n  - {name: x, days: soon}\n",
                        content_type="text/yaml")
    assert status == 400 and any(":2" in issue for issue in got["issues"])
    status, got = admin("PUT", company, "rules", "extends: ../../etc/rules.yaml\n",
                        content_type="text/yaml")
    assert status == 400  # a stored rule set extends only a shipped one
    assert config.store().rules_versions(company.id) == []


def test_go_live_and_pauses_through_the_api(company: Connection) -> None:
    status, got = admin("POST", company, "go-live", {"date": "2026-12-01", "mode": "preview"})
    assert status == 200 and got["mode"] == "preview"
    stored = config.store().get_connection(company.id)
    assert stored.mode == "preview" and stored.go_live == date(2026, 12, 1)
    assert admin("POST", company, "go-live", {"date": "soon"})[0] == 400
    until = (datetime.now(UTC).date() + timedelta(days=10)).isoformat()
    status, got = admin("POST", company, "pauses", {"invoice": "INV-77", "until": until,
                                                     "reason": "promise"})
    assert status == 201 and got["invoice_id"] == "77" and got["reason"] == "promise"
    status, got = admin("POST", company, "pauses", {"customer": "Globex", "reason": "dispute"})
    assert status == 201 and got["customer_id"] == "c9"
    assert admin("POST", company, "pauses", {"invoice": "INV-1"})[0] == 404
    assert admin("POST", company, "pauses", {"customer": "c9", "reason": "maybe"})[0] == 400
    assert len(config.store().list_pauses(company.id)) == 2
    assert admin("POST", company, "resume", {"invoice": "INV-77"}) == (200, {"ended": 1})
    assert admin("POST", company, "resume", {"invoice": "INV-77"})[0] == 404


def test_other_businesses_and_anonymous_callers_get_nothing(company: Connection) -> None:
    assert admin("GET", company, "rules", sub="biz-2")[0] == 404
    assert admin("PUT", company, "rules", RULES, sub="biz-2", content_type="text/yaml")[0] == 404
    assert admin("POST", company, "go-live", {}, sub="biz-2")[0] == 404
    assert admin("POST", company, "go-live", {}, sub=None)[0] == 401
    stored = config.store().get_connection(company.id)
    assert stored.mode == "live" and config.store().rules_versions(company.id) == []


def test_the_admin_role_reads_and_writes_only_its_items() -> None:
    from test_aws_serverless_yml import FUNCTIONS, LOGS, TOKEN_KEY, condition, grants

    assert grants("admin") == LOGS | TOKEN_KEY | {(a, "TenantsTable") for a in (
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem")}
    assert condition("admin", "dynamodb:PutItem") == {"ForAllValues:StringLike": {
        "dynamodb:LeadingKeys": ["rules#*", "pause#*", "inv#*", "mail#*"]}}
    routes = {(e["httpApi"]["method"], e["httpApi"]["path"]) for e in FUNCTIONS["admin"]["events"]}
    assert ("PUT", "/admin/tenants/{tenant}/rules") in routes and len(routes) == 8
    assert ("PUT", "/admin/tenants/{tenant}/mail") in routes


def test_rules_with_an_internal_webhook_are_refused(company: Connection,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20: the admin API stored `http://localhost@169.254.169.254/...` and friends.
    The schema refuses what the URL shows; a name is resolved before it is stored."""
    import ipaddress

    from ar_sync.delivery import webhook_http

    monkeypatch.setattr(webhook_http, "resolve", lambda host, port: [
        ipaddress.ip_address("10.9.8.7" if "attacker" in host else "93.184.215.14")])
    hook = ("escalations:\n  - name: agency\n    when: {days_overdue: 60}\n"
            "    to: {agency: Collectors}\n    notify: {webhook: [\"%s\"]}\n")
    for url in ("http://localhost@169.254.169.254/latest/meta-data/", "https://10.0.0.7/x",
                "http://localhost:9001/2018-06-01/runtime/invocation/next",
                "https://127.0.0.1.nip.io/x", "https://hooks.attacker.example/x"):
        status, got = admin("PUT", company, "rules", RULES + hook % url,
                            content_type="text/yaml")
        assert status == 400 and got["error"] == "invalid rules", url
    assert config.store().rules_versions(company.id) == []
    status, _ = admin("PUT", company, "rules", RULES + hook % "https://hooks.example.com/x",
                      content_type="text/yaml")
    assert status == 201


def test_a_companys_own_sender_through_the_api(company: Connection) -> None:
    """Issue 20: From, SMTP password and webhook secret were process-wide. The admin API
    stores a company's own (sealed); secrets are never answered back."""
    secret = "smtp-" + uuid.uuid4().hex
    status, got = admin("PUT", company, "mail", {"from_address": "Globex AR <ar@globex.example>",
                                                 "smtp_password": secret})
    assert status == 200 and got["from_address"] == "Globex AR <ar@globex.example>"
    assert got["smtp_password_set"] is True and secret not in json.dumps(got)
    stored = config.store().company_mail(company.id)
    assert stored is not None and stored.smtp_password == secret
    status, got = admin("PUT", company, "mail", {"from_address": "a@x.example, b@y.example"})
    assert status == 400 and "from_address" in got["issues"][0]
    status, got = admin("GET", company, "mail")
    assert status == 200 and got["from_address"].startswith("Globex")
    assert admin("GET", company, "mail", sub="biz-other")[0] == 404
