"""The Lambda handlers, end to end: realistic events, DynamoDB and SQS on a moto server
(real HTTP on 127.0.0.1), and the QuickBooks emulator behind the real connector."""

from __future__ import annotations

import base64
import html
import io
import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_helpers import (
    WEBHOOK_KEY,
    XERO_WEBHOOK_KEY,
    call_http,
    callback_event,
    connect_event,
    connect_flow,
    consent,
    drain,
    http_event,
)
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from ar_sync.aws import config, dispatch, http, sync_tenant
from ar_sync.connect import webhooks
from ar_sync.sync.connector import Connection
from ar_sync_emulators.aws import LocalContext as FakeContext
from ar_sync_emulators.aws import scheduled_event, sqs_event
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator


def table_items(aws: dict[str, str]) -> list[dict[str, Any]]:
    return boto3.client("dynamodb").scan(TableName=aws[config.TENANTS_TABLE])["Items"]


def fresh_realm(qbo: QuickBooksEmulator) -> str:
    qbo.realm_id = str(9_140_000_000 + uuid.uuid4().int % 1_000_000)
    return qbo.realm_id


# ----------------------------------------------------------------------------- OAuth


def test_connect_and_callback_bind_the_company(aws: dict[str, str], qbo: QuickBooksEmulator,
                                               logs: io.StringIO) -> None:
    realm = fresh_realm(qbo)
    params, browser = consent(qbo, "biz-alpha")
    answer = browser.call(callback_event(params))
    assert answer["statusCode"] == 200, answer
    assert not browser.jar  # the state cookie is cleared
    assert html.escape(qbo.company_name) in answer["body"]
    store = config.store()
    connection = store.get_connection(f"quickbooks:{realm}")
    assert connection is not None and connection.business_id == "biz-alpha"
    tokens = store.load_tokens(connection.id)
    assert tokens is not None and tokens.access_token
    raw = json.dumps(table_items(aws))
    assert tokens.access_token not in raw and tokens.refresh_token not in raw
    text = logs.getvalue()
    assert connection.id in text  # tenant ids are logged ...
    assert tokens.access_token not in text and tokens.refresh_token not in text  # no secrets
    assert params["code"] not in text


def test_replayed_and_wrong_state_get_400_and_store_nothing(aws: dict[str, str],
                                                            qbo: QuickBooksEmulator) -> None:
    realm = fresh_realm(qbo)
    params, browser = consent(qbo, "biz-beta")
    kept = dict(browser.jar)
    assert browser.call(callback_event(params))["statusCode"] == 200
    before = table_items(aws)
    browser.jar = kept  # even with the cookie kept, the state is single use
    replay = browser.call(callback_event(params))
    assert replay["statusCode"] == 400 and "state" in json.loads(replay["body"])["error"]
    forged = browser.call(callback_event({**params, "state": "forged-state"}))
    assert forged["statusCode"] == 400
    assert browser.call(callback_event({"code": params["code"]}))["statusCode"] == 400
    assert sorted(map(str, table_items(aws))) == sorted(map(str, before))
    assert config.store().get_connection(f"quickbooks:{realm}").business_id == "biz-beta"


def test_state_of_another_platform_is_refused(aws: dict[str, str],
                                              qbo: QuickBooksEmulator) -> None:
    fresh_realm(qbo)
    params, browser = consent(qbo, "biz-gamma")
    before = len(table_items(aws))
    # the xero cookie is missing: refused, and the state is spent all the same (issue 20)
    assert browser.call(callback_event(params, platform="xero"))["statusCode"] == 400
    assert len(table_items(aws)) == before - 2  # the state and its slot are gone
    assert browser.call(callback_event(params))["statusCode"] == 400  # not usable any more


def test_state_taken_on_another_platforms_url_is_refused(aws: dict[str, str],
                                                         qbo: QuickBooksEmulator) -> None:
    fresh_realm(qbo)
    params, browser = consent(qbo, "biz-gamma")
    before = len(table_items(aws))
    # with a matching cookie under the xero name, the state is taken and refused
    browser.jar["__Host-ar-sync-oauth-xero"] = browser.jar["__Host-ar-sync-oauth-quickbooks"]
    assert browser.call(callback_event(params, platform="xero"))["statusCode"] == 400
    assert len(table_items(aws)) == before - 2  # the state and its slot are gone
    assert browser.call(callback_event(params))["statusCode"] == 400  # and it was single use


def test_company_of_another_business_is_not_reattached(aws: dict[str, str],
                                                       qbo: QuickBooksEmulator) -> None:
    realm = fresh_realm(qbo)
    assert connect_flow(qbo, "owner-biz")["statusCode"] == 200
    tokens_before = config.store().load_tokens(f"quickbooks:{realm}")
    answer = connect_flow(qbo, "intruder-biz")
    assert answer["statusCode"] == 403
    assert config.store().get_connection(f"quickbooks:{realm}").business_id == "owner-biz"
    assert config.store().load_tokens(f"quickbooks:{realm}") == tokens_before
    # the owner may reconnect: same binding, new tokens
    assert connect_flow(qbo, "owner-biz")["statusCode"] == 200
    assert config.store().load_tokens(f"quickbooks:{realm}").version == tokens_before.version + 1


def test_connect_bad_inputs(aws: dict[str, str], qbo: QuickBooksEmulator) -> None:
    assert call_http(connect_event("sage", sub="b"))["statusCode"] == 404
    assert call_http(connect_event(sub="has space"))["statusCode"] == 401
    assert call_http(connect_event(sub=""))["statusCode"] == 401


# ----------------------------------------------------------------------------- webhooks


def webhook_event(platform: str, body: bytes, signature: str | None, *,
                  b64: bool = False) -> dict[str, Any]:
    header = webhooks.QUICKBOOKS_SIGNATURE if platform == "quickbooks" else \
        webhooks.XERO_SIGNATURE
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers[header] = signature
    payload = base64.b64encode(body).decode() if b64 else body.decode("utf-8", "replace")
    return http_event("POST", f"/webhooks/{platform}", f"/webhooks/{platform}",
                      headers=headers, body=payload, b64=b64)


def qbo_payload(realm: str, *entities: tuple[str, str]) -> bytes:
    return json.dumps({"eventNotifications": [{"realmId": realm, "dataChangeEvent": {
        "entities": [{"name": n, "id": i, "operation": "Update",
                      "lastUpdated": "2026-11-27T05:00:00.000Z"} for n, i in entities]}}]}
                      ).encode()


def known_tenant(platform: str, external: str) -> str:
    cid = f"{platform}:{external}"
    config.store().save_connection(Connection(id=cid, platform=platform, external_id=external,
                                              business_id="biz-hook"))
    return cid


def test_quickbooks_webhook_enqueues_targeted_resync(aws: dict[str, str], qbo: Any,
                                                     queue: str, sqs: Any) -> None:
    realm = str(uuid.uuid4().int % 10**10)
    cid = known_tenant("quickbooks", realm)
    body = qbo_payload(realm, ("Invoice", "130"), ("Invoice", "131"), ("Customer", "9"))
    for b64 in (False, True):
        answer = call_http(webhook_event("quickbooks", body, webhooks.sign(WEBHOOK_KEY, body),
                                         b64=b64))
        assert answer["statusCode"] == 200
    messages = [json.loads(m["Body"]) for m in drain(sqs, queue)]
    # the same bytes again (base64 this time) within 10 minutes: a re-delivery, dropped
    assert messages == [{"connection_id": cid, "only_invoices": ["130", "131"],
                         "reason": "webhook", "requeues": 0}]
    # a payment: the tenant's open invoices; an unknown realm: nothing
    body = qbo_payload(realm, ("Payment", "77"))
    body2 = qbo_payload("555000111", ("Invoice", "1"))
    for b in (body, body2):
        assert call_http(webhook_event("quickbooks", b, webhooks.sign(WEBHOOK_KEY, b))
                         )["statusCode"] == 200
    assert [json.loads(m["Body"])["only_invoices"] for m in drain(sqs, queue)] == [None]


def test_xero_intent_to_receive(aws: dict[str, str], qbo: Any, queue: str, sqs: Any) -> None:
    intent = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0,
                         "entropy": "S0m3r4Nd0mt3xt"}).encode()
    good = call_http(webhook_event("xero", intent, webhooks.sign(XERO_WEBHOOK_KEY, intent)))
    assert good["statusCode"] == 200 and not good["body"]
    bad = call_http(webhook_event("xero", intent, webhooks.sign("wrong-key", intent)))
    assert bad["statusCode"] == 401
    assert drain(sqs, queue) == []


def test_xero_events_enqueue(aws: dict[str, str], qbo: Any, queue: str, sqs: Any) -> None:
    tenant = str(uuid.uuid4())
    cid = known_tenant("xero", tenant)
    body = json.dumps({"events": [{
        "resourceUrl": "https://api.xero.com/api.xro/2.0/Invoices/i-1", "resourceId": "i-1",
        "eventDateUtc": "2026-11-27T05:00:00.000", "eventType": "UPDATE",
        "eventCategory": "INVOICE", "tenantId": tenant, "tenantType": "ORGANISATION"}],
        "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "x"}).encode()
    answer = call_http(webhook_event("xero", body, webhooks.sign(XERO_WEBHOOK_KEY, body)))
    assert answer["statusCode"] == 200
    (message,) = drain(sqs, queue)
    assert json.loads(message["Body"])["connection_id"] == cid
    assert json.loads(message["Body"])["only_invoices"] == ["i-1"]


@pytest.mark.parametrize("platform", ["quickbooks", "xero"])
def test_forged_missing_oversized_malformed(aws: dict[str, str], qbo: Any, queue: str,
                                            sqs: Any, platform: str) -> None:
    key = WEBHOOK_KEY if platform == "quickbooks" else XERO_WEBHOOK_KEY
    realm = str(uuid.uuid4().int % 10**10)
    known_tenant(platform, realm)
    body = qbo_payload(realm, ("Invoice", "1"))
    assert call_http(webhook_event(platform, body, None))["statusCode"] == 401
    assert call_http(webhook_event(platform, body, ""))["statusCode"] == 401
    assert call_http(webhook_event(platform, body, webhooks.sign("forged", body))
                     )["statusCode"] == 401
    tampered = body.replace(b'"1"', b'"2"')
    assert call_http(webhook_event(platform, tampered, webhooks.sign(key, body))
                     )["statusCode"] == 401
    huge = b'{"pad": "' + b"x" * (webhooks.MAX_BODY_BYTES + 10) + b'"}'
    assert call_http(webhook_event(platform, huge, webhooks.sign(key, huge)))["statusCode"] == 413
    for junk in (b"{not json", b'{"events": "x", "eventNotifications": 3}'):
        # correctly signed: 200 (a retry cannot fix it), skipped and logged, nothing enqueued
        assert call_http(webhook_event(platform, junk, webhooks.sign(key, junk))
                         )["statusCode"] == 200
    assert drain(sqs, queue) == []


def test_a_malformed_event_does_not_hold_back_the_others(aws: dict[str, str], qbo: Any,
                                                        queue: str, sqs: Any,
                                                        logs: io.StringIO) -> None:
    tenant = str(uuid.uuid4())
    cid = known_tenant("xero", tenant)
    body = json.dumps({"events": [
        {"resourceId": "i-1", "eventCategory": "INVOICE", "tenantId": tenant},
        {"resourceId": "i-2", "eventCategory": "INVOICE", "tenantId": "../../etc"},
        "not an event",
        {"resourceId": "i-3", "eventCategory": "INVOICE", "tenantId": tenant}],
        "firstEventSequence": 1, "lastEventSequence": 4, "entropy": "y"}).encode()
    answer = call_http(webhook_event("xero", body, webhooks.sign(XERO_WEBHOOK_KEY, body)))
    assert answer["statusCode"] == 200
    (message,) = drain(sqs, queue)
    assert json.loads(message["Body"]) == {"connection_id": cid, "only_invoices": ["i-1", "i-3"],
                                           "reason": "webhook", "requeues": 0}
    text = logs.getvalue()
    assert "malformed webhook events skipped" in text and "event 1" in text and "event 2" in text


def test_redelivery_within_ten_minutes_is_dropped(aws: dict[str, str], qbo: Any, queue: str,
                                                  sqs: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    realm = str(uuid.uuid4().int % 10**10)
    cid = known_tenant("quickbooks", realm)
    body = qbo_payload(realm, ("Invoice", "7"))
    event = webhook_event("quickbooks", body, webhooks.sign(WEBHOOK_KEY, body))
    clock = [1_800_000_000.0]
    monkeypatch.setattr(http.time, "time", lambda: clock[0])
    assert call_http(event)["statusCode"] == 200
    clock[0] += 599
    assert call_http(event)["statusCode"] == 200  # the platform's retry: answered, dropped
    assert [json.loads(m["Body"])["connection_id"] for m in drain(sqs, queue)] == [cid]
    clock[0] += 2  # past the window: a new delivery of the same bytes counts again
    assert call_http(event)["statusCode"] == 200
    assert len(drain(sqs, queue)) == 1


def test_a_delivery_that_could_not_be_enqueued_is_not_taken_for_a_duplicate(
        aws: dict[str, str], qbo: Any, queue: str, sqs: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    realm = str(uuid.uuid4().int % 10**10)
    known_tenant("quickbooks", realm)
    body = qbo_payload(realm, ("Invoice", "8"))
    event = webhook_event("quickbooks", body, webhooks.sign(WEBHOOK_KEY, body))

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("SQS is down")

    working = http.send_messages
    monkeypatch.setattr(http, "send_messages", broken)
    with pytest.raises(RuntimeError):  # API Gateway answers 500; the platform will retry
        call_http(event)
    monkeypatch.setattr(http, "send_messages", working)
    assert call_http(event)["statusCode"] == 200
    assert len(drain(sqs, queue)) == 1


# ----------------------------------------------------------------------------- fan-out


def test_dispatch_sends_one_message_per_tenant(aws: dict[str, str], qbo: Any, queue: str,
                                               sqs: Any) -> None:
    ids = {known_tenant("xero", str(uuid.uuid4())) for _ in range(23)}
    out = dispatch.handler(scheduled_event(), FakeContext())
    everyone = {c.id for c in config.store().list_connections()}
    assert ids <= everyone and out == {"tenants": len(everyone), "sent": len(everyone)}
    bodies = [json.loads(m["Body"]) for m in drain(sqs, queue)]
    assert sorted(b["connection_id"] for b in bodies) == sorted(everyone)
    assert {b["reason"] for b in bodies} == {"schedule"}


def test_sync_tenant_reports_failures(aws: dict[str, str], qbo: Any, queue: str,
                                      sqs: Any) -> None:
    sqs.send_message(QueueUrl=queue, MessageBody="not json")
    (bad,) = drain(sqs, queue)
    with pytest.raises(BatchProcessingError):  # batch of one: the whole invocation fails
        sync_tenant.handler(sqs_event([bad]), FakeContext())
    # the failed message comes back after a short back-off, not the 1-hour visibility
    assert sync_tenant.backoff_seconds(1) == 30 and sync_tenant.backoff_seconds(9) == 900
    # a batch of two: only the bad one is reported
    cid = known_tenant("xero", str(uuid.uuid4()))  # no tokens, no emulator: run reports
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"connection_id": cid}))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"connection_id": 5}))
    got = sorted(drain(sqs, queue), key=lambda m: m["Body"])
    out = sync_tenant.handler(sqs_event(got), FakeContext())
    bad_id = next(m["MessageId"] for m in got if '"connection_id": 5' in m["Body"])
    assert out["batchItemFailures"] == [{"itemIdentifier": bad_id}]


def test_full_path_dispatch_queue_sync_writeback(aws: dict[str, str], qbo: QuickBooksEmulator,
                                                 queue: str, sqs: Any,
                                                 logs: io.StringIO) -> None:
    pytest.importorskip("ar_sync_quickbooks")
    store = config.store()
    for c in store.list_connections():  # only the emulator's company takes part
        if not c.id.startswith("quickbooks:") or c.external_id != qbo.realm_id:
            store.save_connection(c.model_copy(update={"id": "zz-" + c.id}))
    realm = fresh_realm(qbo)
    assert connect_flow(qbo, "biz-full")["statusCode"] == 200
    cid = f"quickbooks:{realm}"
    qbo.counters.reset()
    assert qbo.effects() == []

    dispatch.handler(scheduled_event(), FakeContext())
    mine = [m for m in drain(sqs, queue) if json.loads(m["Body"])["connection_id"] == cid]
    assert len(mine) == 1
    out = sync_tenant.handler(sqs_event(mine), FakeContext(remaining_ms=300_000))
    assert out["batchItemFailures"] == []
    qbo.learn_keys(e.key for v in store.history(cid).values() for e in v)  # batched fees
    effects = qbo.effects()
    assert effects, "the run wrote nothing back"
    assert len({e.key for e in effects}) == len(effects)  # one write per key
    report = store.last_report(cid)
    assert report is not None and report["done"] == len(effects)
    rows = {e.key for v in store.history(cid).values() for e in v}
    assert {e.key for e in effects} <= rows

    # the same message again (SQS delivers at least once): no key is written twice (the
    # planner may add what has become due since, e.g. the next month's fee, under a new key)
    sync_tenant.handler(sqs_event(mine), FakeContext())
    qbo.learn_keys(e.key for v in store.history(cid).values() for e in v)
    keys = Counter(e.key for e in qbo.effects())
    assert set(keys) >= {e.key for e in effects} and set(keys.values()) == {1}

    # a payment webhook -> targeted re-sync of that tenant
    paid = effects[0].invoice_id
    qbo.pay(paid, qbo.invoice(paid)["Balance"])
    body = qbo_payload(realm, ("Invoice", paid))
    assert call_http(webhook_event("quickbooks", body, webhooks.sign(WEBHOOK_KEY, body))
                     )["statusCode"] == 200
    (hook,) = drain(sqs, queue)
    assert json.loads(hook["Body"])["only_invoices"] == [paid]
    assert sync_tenant.handler(sqs_event([hook]), FakeContext())["batchItemFailures"] == []
    assert all(inv.id != paid for inv in store.open_invoices(cid))
    tokens = store.load_tokens(cid)
    text = logs.getvalue()
    assert cid in text and tokens.access_token not in text and tokens.refresh_token not in text


def test_locked_tenant_webhook_resync_is_requeued(aws: dict[str, str], qbo: Any, queue: str,
                                                  sqs: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync_tenant, "REQUEUE_DELAY_SECONDS", 0)
    cid = known_tenant("xero", str(uuid.uuid4()))
    store = config.store()
    assert store.acquire_lock(f"tenant:{cid}", owner="other-run", now=datetime.now(UTC),
                              ttl_seconds=300)
    for body in ({"connection_id": cid, "only_invoices": ["i-9"], "reason": "webhook"},
                 {"connection_id": cid, "reason": "schedule"}):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    sent = drain(sqs, queue)
    out = sync_tenant.handler(sqs_event(sent), FakeContext())
    assert out["batchItemFailures"] == []
    (again,) = drain(sqs, queue)  # the scheduled one is dropped: the lock holder does it
    assert json.loads(again["Body"]) == {"connection_id": cid, "only_invoices": ["i-9"],
                                         "reason": "requeue", "requeues": 1}
