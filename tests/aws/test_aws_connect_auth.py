"""Who may connect a company: the verified token's subject only, in the browser that started.

Through the real HTTP handler, the real QuickBooks connector and its emulator's consent screen,
DynamoDB on a moto server. The squatting scenario of issue 11: an attacker starts a flow for
their own account and sends the consent link to a victim; the victim's consent must not bind
the victim's company to the attacker (and the victim's own connect must then still work).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import requests
from aws_helpers import Browser, call_http, callback_event, connect_event, connect_flow

from ar_sync.aws import config, http
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator


def tenants(aws: dict[str, str]) -> list[str]:
    items = boto3.client("dynamodb").scan(TableName=aws[config.TENANTS_TABLE])["Items"]
    return sorted(json.dumps(i, sort_keys=True) for i in items)


def fresh_realm(qbo: QuickBooksEmulator) -> str:
    qbo.realm_id = str(9_150_000_000 + uuid.uuid4().int % 1_000_000)
    return qbo.realm_id


def consent_link(browser: Browser, business: str) -> str:
    """Start a flow signed in as `business`; the platform consent URL it redirects to."""
    answer = browser.call(connect_event(sub=business))
    assert answer["statusCode"] == 302, answer
    return str(answer["headers"]["Location"])


def give_consent(link: str) -> dict[str, str]:
    """Whoever opens the link consents; the platform sends their browser to the callback."""
    back = requests.get(link, allow_redirects=False, timeout=5).headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlparse(back).query).items()}


def test_anonymous_connect_gets_401_and_stores_nothing(aws: dict[str, str],
                                                       qbo: QuickBooksEmulator) -> None:
    before = tenants(aws)
    for query in ({}, {"business": "victim-biz"}):
        answer = call_http(connect_event(**query))
        assert answer["statusCode"] == 401
        assert "Location" not in answer.get("headers", {}) and not answer.get("cookies")
    assert tenants(aws) == before


def test_the_business_is_the_tokens_subject_never_the_query(aws: dict[str, str],
                                                            qbo: QuickBooksEmulator) -> None:
    realm = fresh_realm(qbo)
    browser = Browser()
    answer = browser.call(connect_event(sub="biz-real", business="biz-other"))
    assert answer["statusCode"] == 302
    params = give_consent(answer["headers"]["Location"])
    assert browser.call(callback_event(params))["statusCode"] == 200
    connection = config.store().get_connection(f"quickbooks:{realm}")
    assert connection is not None and connection.business_id == "biz-real"


def test_squatting_a_victims_consent_binds_nothing(aws: dict[str, str],
                                                   qbo: QuickBooksEmulator) -> None:
    realm = fresh_realm(qbo)  # the victim's company, at the platform
    attacker, victim = Browser(), Browser()
    before = tenants(aws)
    link = consent_link(attacker, "attacker-biz")
    assert len(tenants(aws)) == len(before) + 2  # the attacker's state and its slot

    # the victim opens the link and consents; their browser lands on the callback without the
    # attacker's cookie: refused, and the state is spent (issue 20: a refused callback left
    # its state and code usable, so the attacker, handed the callback URL, could finish it)
    params = give_consent(link)
    assert victim.call(callback_event(params))["statusCode"] == 400
    assert attacker.call(callback_event(params))["statusCode"] == 400
    assert tenants(aws) == before  # the attacker's state and its slot are gone, nothing bound
    assert config.store().get_connection(f"quickbooks:{realm}") is None

    # with a cookie of the victim's own flow (another state) it is refused just the same
    consent_link(victim, "victim-biz")
    own_state_rows = tenants(aws)
    answer = victim.call(callback_event(params))
    assert answer["statusCode"] == 400
    assert "another browser" in json.loads(answer["body"])["error"]
    assert tenants(aws) == own_state_rows  # the victim's own state is not touched
    assert len(own_state_rows) == len(before) + 2  # the victim's state and its slot

    # the victim's own connect completes, bound to the victim
    assert connect_flow(qbo, "victim-biz")["statusCode"] == 200
    connection = config.store().get_connection(f"quickbooks:{realm}")
    assert connection is not None and connection.business_id == "victim-biz"


def test_state_cookie_is_httponly_secure_lax_and_holds_a_hash(aws: dict[str, str],
                                                              qbo: QuickBooksEmulator) -> None:
    answer = call_http(connect_event(sub="biz-cookie"))
    state = parse_qs(urlparse(answer["headers"]["Location"]).query)["state"][0]
    (line,) = answer["cookies"]
    parts = [p.strip() for p in line.split(";")]
    name, _, value = parts[0].partition("=")
    assert name == "__Host-ar-sync-oauth-quickbooks"
    assert value == hashlib.sha256(state.encode()).hexdigest() and state not in line
    attributes = {p.split("=")[0].lower(): p for p in parts[1:]}
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= set(attributes)
    assert attributes["samesite"] == "SameSite=Lax" and attributes["path"] == "Path=/"
    assert attributes["max-age"] == f"Max-Age={http.STATE_TTL_SECONDS}"
    assert "domain" not in attributes
    # a web app calling with fetch gets the URL as JSON, with the same cookie
    event = connect_event(sub="biz-cookie")
    event["headers"]["accept"] = "application/json"
    as_json = call_http(event)
    assert as_json["statusCode"] == 200 and as_json["cookies"]
    assert json.loads(as_json["body"])["authorization_url"].startswith(qbo.url)


def test_pending_flows_are_limited_per_business(aws: dict[str, str],
                                                qbo: QuickBooksEmulator) -> None:
    limit = http.MAX_PENDING_PER_BUSINESS
    business = f"biz-{uuid.uuid4().hex[:8]}"

    def start(_: int) -> int:
        return int(call_http(connect_event(sub=business))["statusCode"])

    with ThreadPoolExecutor(max_workers=8) as pool:  # 12 concurrent starts
        codes = sorted(pool.map(start, range(12)))
    assert codes == [302] * limit + [429] * (12 - limit)
    assert start(0) == 429
    assert call_http(connect_event(sub="another-biz"))["statusCode"] == 302  # not shared
    # finishing one flow frees its place
    fresh_realm(qbo)
    browser = Browser()
    params = give_consent(consent_link(browser, "biz-finisher"))
    for _ in range(limit - 1):
        consent_link(Browser(), "biz-finisher")
    assert call_http(connect_event(sub="biz-finisher"))["statusCode"] == 429
    assert browser.call(callback_event(params))["statusCode"] == 200
    assert call_http(connect_event(sub="biz-finisher"))["statusCode"] == 302


def test_limit_counts_only_unexpired_flows(aws: dict[str, str], qbo: QuickBooksEmulator,
                                          monkeypatch: Any) -> None:
    from datetime import timedelta

    business = f"biz-{uuid.uuid4().hex[:8]}"
    for _ in range(http.MAX_PENDING_PER_BUSINESS):
        assert call_http(connect_event(sub=business))["statusCode"] == 302
    later = http._now() + timedelta(seconds=http.STATE_TTL_SECONDS + 1)
    monkeypatch.setattr(http, "_now", lambda: later)
    assert call_http(connect_event(sub=business))["statusCode"] == 302
