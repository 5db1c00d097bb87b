"""Webhook signatures and payload parsing (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ar_sync.connect import webhooks
from ar_sync.connect.webhooks import ResyncRequest

KEY = "verifier-token-123"
IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,20}", fullmatch=True)


def reference_signature(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


@given(body=st.binary(max_size=2000), key=st.text(min_size=1, max_size=40))
def test_signature_round_trip_and_forgery(body: bytes, key: str) -> None:
    good = reference_signature(key, body)
    assert webhooks.sign(key, body) == good
    assert webhooks.verify_signature(key, body, good)
    assert not webhooks.verify_signature(key + "x", body, good)  # another key
    assert not webhooks.verify_signature(key, body + b" ", good)  # another body
    assert not webhooks.verify_signature(key, body, None)
    assert not webhooks.verify_signature(key, body, "")
    assert not webhooks.verify_signature(None, body, good)  # unconfigured: refuse


def test_size_limit() -> None:
    webhooks.check_size(b"x" * webhooks.MAX_BODY_BYTES)
    with pytest.raises(webhooks.PayloadTooLargeError):
        webhooks.check_size(b"x" * (webhooks.MAX_BODY_BYTES + 1))
    with pytest.raises(webhooks.PayloadTooLargeError):
        webhooks.parse_xero(b" " * (webhooks.MAX_BODY_BYTES + 1))


def qbo_body(*notes: tuple[str, list[tuple[str, str]]]) -> bytes:
    return json.dumps({"eventNotifications": [
        {"realmId": realm, "dataChangeEvent": {"entities": [
            {"name": name, "id": eid, "operation": "Update",
             "lastUpdated": "2026-11-27T10:00:00.000Z"} for name, eid in entities]}}
        for realm, entities in notes]}).encode()


def test_quickbooks_invoice_and_payment_events() -> None:
    body = qbo_body(("9130", [("Invoice", "130"), ("Invoice", "131"), ("Customer", "7")]),
                    ("9131", [("Payment", "55"), ("Invoice", "9")]),
                    ("9132", [("Item", "1")]))
    assert webhooks.parse_quickbooks(body) == [
        ResyncRequest("quickbooks:9130", frozenset({"130", "131"})),
        ResyncRequest("quickbooks:9131", None),  # a payment: all its open invoices
    ]


def test_quickbooks_cloudevents_format() -> None:
    body = json.dumps([
        {"specversion": "1.0", "id": "e1", "source": "intuit", "type": "qbo.invoice.updated.v1",
         "time": "2026-11-27T10:00:00Z", "intuitentityid": "130", "intuitaccountid": "9130"},
        {"specversion": "1.0", "id": "e2", "source": "intuit", "type": "qbo.payment.created.v1",
         "time": "2026-11-27T10:00:00Z", "intuitentityid": "77", "intuitaccountid": "9140"},
    ]).encode()
    assert webhooks.parse_quickbooks(body) == [
        ResyncRequest("quickbooks:9130", frozenset({"130"})),
        ResyncRequest("quickbooks:9140", None)]


def xero_event(tenant: str, resource: str, category: str = "INVOICE") -> dict[str, str]:
    return {"resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource}",
            "resourceId": resource, "eventDateUtc": "2026-11-27T10:00:00.000",
            "eventType": "UPDATE", "eventCategory": category, "tenantId": tenant,
            "tenantType": "ORGANISATION"}


def test_xero_intent_to_receive_and_events() -> None:
    intent = {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": "ABC"}
    assert webhooks.parse_xero(json.dumps(intent).encode()) == []
    body = json.dumps({"events": [xero_event("t-1", "i-1"), xero_event("t-1", "i-2"),
                                  xero_event("t-2", "c-9", "CONTACT"),
                                  xero_event("t-2", "i-3")],
                       "firstEventSequence": 1, "lastEventSequence": 4, "entropy": "X"}).encode()
    assert webhooks.parse_xero(body) == [ResyncRequest("xero:t-1", frozenset({"i-1", "i-2"})),
                                         ResyncRequest("xero:t-2", None)]


@given(events=st.lists(st.tuples(IDS, IDS, st.sampled_from(["INVOICE", "CONTACT"])),
                       max_size=30))
def test_xero_merge_property(events: list[tuple[str, str, str]]) -> None:
    body = json.dumps({"events": [xero_event(t, r, c) for t, r, c in events]}).encode()
    got = {r.connection_id: r.invoice_ids for r in webhooks.parse_xero(body)}
    assert set(got) == {f"xero:{t}" for t, _, _ in events}
    for tenant in {t for t, _, _ in events}:
        mine = [(r, c) for t, r, c in events if t == tenant]
        if any(c == "CONTACT" for _, c in mine):
            assert got[f"xero:{tenant}"] is None
        else:
            assert got[f"xero:{tenant}"] == frozenset(r for r, _ in mine)


@pytest.mark.parametrize("body", [
    b"not json", b"[1, 2]", b'{"eventNotifications": 5}', b'{"eventNotifications": [7]}',
    b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": "x"}}]}',
    b'{"eventNotifications": [{"realmId": "../etc", "dataChangeEvent": {"entities":'
    b' [{"name": "Invoice", "id": "1"}]}}]}',
    b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities":'
    b' [{"name": "Invoice", "id": null}]}}]}',
    b'[{"type": "nope"}]', b"\xff\xfe",
])
def test_quickbooks_malformed(body: bytes) -> None:
    with pytest.raises(webhooks.MalformedPayloadError):
        webhooks.parse_quickbooks(body)


@pytest.mark.parametrize("body", [
    b"{", b"[]", b'{"events": {}}', b'{"events": [1]}', b'{}',
    b'{"events": [{"eventCategory": "INVOICE", "resourceId": "r"}]}',
    b'{"events": [{"eventCategory": "INVOICE", "tenantId": "t", "resourceId": ""}]}',
])
def test_xero_malformed(body: bytes) -> None:
    with pytest.raises(webhooks.MalformedPayloadError):
        webhooks.parse_xero(body)


def test_too_many_events() -> None:
    body = json.dumps({"events": [xero_event("t", f"i{i}") for i in range(1001)]}).encode()
    with pytest.raises(webhooks.PayloadTooLargeError):
        webhooks.parse_xero(body)
