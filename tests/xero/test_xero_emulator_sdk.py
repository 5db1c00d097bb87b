"""The Xero emulator through xero-python's own clients: every endpoint's answer must
deserialize into the SDK's models, and the emulator must refuse what Xero refuses."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from xero_python.accounting import (
    AccountingApi,
    Contact,
    CurrencyCode,
    HistoryRecord,
    HistoryRecords,
    Invoice,
    Invoices,
    LineItem,
    RequestEmpty,
)
from xero_python.exceptions import ApiException
from xero_python.identity import IdentityApi
from xero_support import FakeClock, access_token

from ar_sync_emulators.books import demo_company
from ar_sync_emulators.xero.server import XeroEmulator
from ar_sync_xero.calls import new_api_client, sdk_token


@pytest.fixture
def tokens(emu: XeroEmulator) -> dict[str, Any]:
    s = emu.settings()
    url = emu.authorize(s.client_id, s.redirect_uri, "st")
    code = parse_qs(urlparse(url).query)["code"][0]
    got = requests.post(s.endpoints["token"], data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": s.redirect_uri,
        "client_id": s.client_id, "client_secret": s.client_secret}, timeout=5)
    assert got.status_code == 200
    return dict(got.json())


@pytest.fixture
def api(emu: XeroEmulator, tokens: dict[str, Any]) -> Iterator[AccountingApi]:
    client = new_api_client(lambda: sdk_token(tokens["access_token"]))
    yield AccountingApi(client, base_url=emu.settings().endpoints["api"])


def _status(exc: pytest.ExceptionInfo[ApiException]) -> int:
    return int(exc.value.status if str(exc.value.status).isdigit() else 400)


# ----------------------------------------------------------------------------- identity


def test_authorize_endpoint_redirects_with_code_and_state(emu: XeroEmulator) -> None:
    s = emu.settings()
    got = requests.get(s.endpoints["authorize"], params={
        "response_type": "code", "client_id": s.client_id, "redirect_uri": s.redirect_uri,
        "scope": "openid accounting.invoices offline_access", "state": "abc"},
        allow_redirects=False, timeout=5)
    assert got.status_code == 302
    query = parse_qs(urlparse(got.headers["Location"]).query)
    assert query["state"] == ["abc"] and query["code"][0]


def test_code_is_single_use_and_pkce_checked(emu: XeroEmulator) -> None:
    s = emu.settings()
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    code = parse_qs(urlparse(emu.authorize(s.client_id, s.redirect_uri, "x",
                                           code_challenge=challenge)).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": s.redirect_uri}
    auth = (s.client_id, s.client_secret)
    bad = requests.post(s.endpoints["token"], data={**form, "code_verifier": "wrong"},
                        auth=auth, timeout=5)
    assert bad.status_code == 400 and bad.json() == {"error": "invalid_grant"}
    code = parse_qs(urlparse(emu.authorize(s.client_id, s.redirect_uri, "x",
                                           code_challenge=challenge)).query)["code"][0]
    form["code"] = code
    ok = requests.post(s.endpoints["token"], data={**form, "code_verifier": verifier},
                       auth=auth, timeout=5)
    assert ok.status_code == 200 and ok.json()["expires_in"] == 1800
    again = requests.post(s.endpoints["token"], data={**form, "code_verifier": verifier},
                          auth=auth, timeout=5)
    assert again.json() == {"error": "invalid_grant"}
    wrong_secret = requests.post(s.endpoints["token"], data=form, auth=(s.client_id, "nope"),
                                 timeout=5)
    assert wrong_secret.json() == {"error": "invalid_client"}


def test_refresh_rotates_with_30_minute_grace_then_invalid_grant(
        emu: XeroEmulator, tokens: dict[str, Any], clock: FakeClock) -> None:
    s = emu.settings()
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    auth = (s.client_id, s.client_secret)
    first = requests.post(s.endpoints["token"], data=form, auth=auth, timeout=5)
    assert first.status_code == 200
    assert first.json()["refresh_token"] != tokens["refresh_token"]
    clock.advance(29 * 60)  # the previous token still works inside its grace...
    grace = requests.post(s.endpoints["token"], data=form, auth=auth, timeout=5)
    assert grace.status_code == 200 and emu.identity.grace_refreshes == 1
    clock.advance(60)  # ...and never after it
    reuse = requests.post(s.endpoints["token"], data=form, auth=auth, timeout=5)
    assert reuse.status_code == 400 and reuse.json() == {"error": "invalid_grant"}


def test_unused_refresh_token_expires_after_60_days(emu: XeroEmulator, tokens: dict[str, Any],
                                                    clock: FakeClock) -> None:
    s = emu.settings()
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    clock.advance(timedelta(days=60).total_seconds())
    got = requests.post(s.endpoints["token"], data=form, auth=(s.client_id, s.client_secret),
                        timeout=5)
    assert got.status_code == 400 and got.json() == {"error": "invalid_grant"}


def test_connections_carry_auth_event_and_filter_by_it(emu: XeroEmulator,
                                                       tokens: dict[str, Any]) -> None:
    """A later consent for the same user takes the organisation over; the filter on the
    consent's authEventId (a claim of its access token) shows only its own organisations."""
    claims = json.loads(base64.urlsafe_b64decode(tokens["access_token"].split(".")[1] + "=="))
    first_event = claims["authentication_event_id"]
    second = emu.seed(demo_company(), name="Second Org")
    s = emu.settings()
    emu.authorize(s.client_id, s.redirect_uri, "st2", tenants=[second])
    client = new_api_client(lambda: sdk_token(tokens["access_token"]))
    identity = IdentityApi(client, base_url=emu.url)
    everything = identity.get_connections()
    assert {(str(r.tenant_id), str(r.auth_event_id) == first_event) for r in everything} == {
        (emu.tenant_id, True), (second, False)}
    mine = identity.get_connections(auth_event_id=first_event)
    assert [str(r.tenant_id) for r in mine] == [emu.tenant_id]


def test_connections_through_identity_api(emu: XeroEmulator, tokens: dict[str, Any]) -> None:
    client = new_api_client(lambda: sdk_token(tokens["access_token"]))
    rows = IdentityApi(client, base_url=emu.url).get_connections()
    assert [(r.tenant_id, r.tenant_name, r.tenant_type) for r in rows] == [
        (emu.tenant_id, "Demo Trading Co", "ORGANISATION")]
    assert rows[0].created_date_utc.tzinfo is not None


def test_expired_token_gets_401(emu: XeroEmulator, api: AccountingApi,
                                clock: FakeClock) -> None:
    api.get_invoice(emu.tenant_id, next(iter(emu.org().invoices)))
    clock.advance(1801)
    with pytest.raises(ApiException) as exc:
        api.get_invoice(emu.tenant_id, next(iter(emu.org().invoices)))
    assert exc.value.status == 401


# ----------------------------------------------------------------------------- reads


def test_invoices_page_deserializes(emu: XeroEmulator, api: AccountingApi) -> None:
    got = api.get_invoices(emu.tenant_id, where='Type=="ACCREC" AND AmountDue>0',
                           statuses=["AUTHORISED"], page=2, page_size=100)
    open_count = sum(1 for i in emu.org().invoices.values() if i.status == "AUTHORISED")
    assert got.pagination.item_count == open_count and got.pagination.page == 2
    assert len(got.invoices) == min(100, open_count - 100)
    inv = got.invoices[0]
    raw = emu.invoice(inv.invoice_id)
    assert inv.status == "AUTHORISED" and inv.type == "ACCREC"
    assert inv.due_date == raw.due_date and inv.date == raw.date
    assert Decimal(str(inv.amount_due)) == raw.amount_due
    assert inv.updated_date_utc == raw.updated
    assert inv.line_items and inv.line_items[0].line_item_id == raw.lines[0].id
    assert isinstance(inv.currency_code, CurrencyCode)


def test_statuses_where_and_summary(emu: XeroEmulator, api: AccountingApi) -> None:
    paid = api.get_invoices(emu.tenant_id, statuses=["PAID"], page=1, summary_only=True)
    assert paid.invoices and all(i.status == "PAID" for i in paid.invoices)
    assert all(not i.line_items for i in paid.invoices)
    voided = api.get_invoices(emu.tenant_id, where='Status=="VOIDED"')
    assert len(voided.invoices) == 1
    disputed = api.get_invoices(emu.tenant_id, where='Reference.Contains("#disputed")')
    assert len(disputed.invoices) == 1
    one = next(iter(emu.org().invoices.values()))
    by_id = api.get_invoices(emu.tenant_id, i_ds=[one.id])
    assert [i.invoice_number for i in by_id.invoices] == [one.number]


@pytest.mark.parametrize("where", ['Foo=="x"', 'Type=="ACCREC" AND', 'AmountDue>"x"',
                                   'Type~"ACCREC"'])
def test_unsupported_where_is_400(emu: XeroEmulator, api: AccountingApi, where: str) -> None:
    with pytest.raises(ApiException) as exc:
        api.get_invoices(emu.tenant_id, where=where)
    assert _status(exc) == 400


def test_page_size_over_1000_is_400(emu: XeroEmulator, api: AccountingApi) -> None:
    with pytest.raises(ApiException) as exc:
        api.get_invoices(emu.tenant_id, page=1, page_size=1001)
    assert _status(exc) == 400


def test_if_modified_since(emu: XeroEmulator, api: AccountingApi, clock: FakeClock) -> None:
    since = clock()
    clock.advance(5)
    target = next(i for i in emu.org().invoices.values() if i.status == "AUTHORISED")
    emu.touch(target.id)
    got = api.get_invoices(emu.tenant_id, if_modified_since=since, page=1)
    assert [i.invoice_id for i in got.invoices] == [target.id]
    assert api.get_invoices(emu.tenant_id, if_modified_since=clock(), page=1).invoices == []


def test_single_invoice_history_online_contacts(emu: XeroEmulator, api: AccountingApi) -> None:
    inv = next(iter(emu.org().invoices.values()))
    assert api.get_invoice(emu.tenant_id, inv.id).invoices[0].invoice_number == inv.number
    history = api.get_invoice_history(emu.tenant_id, inv.id).history_records
    assert history and history[-1].changes == "Created" and history[-1].date_utc.tzinfo
    url = api.get_online_invoice(emu.tenant_id, inv.id).online_invoices[0].online_invoice_url
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and inv.number in page.text
    contacts = api.get_contacts(emu.tenant_id).contacts
    assert len(contacts) == 40 and contacts[0].contact_id
    one = api.get_contact(emu.tenant_id, inv.contact_id).contacts[0]
    assert one.name == emu.org().contacts[inv.contact_id].name
    with pytest.raises(ApiException) as exc:
        api.get_invoice(emu.tenant_id, "11111111-2222-3333-4444-555555555555")
    assert exc.value.status == 404


# ----------------------------------------------------------------------------- writes


def _open(emu: XeroEmulator, *, paid: bool = False) -> Any:
    return next(i for i in emu.org().invoices.values()
                if i.status == "AUTHORISED" and bool(i.payments) == paid
                and emu.org().contacts[i.contact_id].email)


def test_history_note_and_idempotent_replay(emu: XeroEmulator, api: AccountingApi) -> None:
    inv = _open(emu)
    body = HistoryRecords(history_records=[HistoryRecord(details="note ar-sync:k1")])
    first = api.create_invoice_history(emu.tenant_id, inv.id, body, idempotency_key="k1")
    second = api.create_invoice_history(emu.tenant_id, inv.id, body, idempotency_key="k1")
    assert first.history_records[0].details == second.history_records[0].details
    assert [e.key for e in emu.effects()] == ["k1"]
    assert (emu.counters.writes_applied, emu.counters.writes_replayed) == (1, 1)


def test_email_is_204_and_recorded(emu: XeroEmulator, api: AccountingApi) -> None:
    inv = _open(emu)
    assert api.email_invoice(emu.tenant_id, inv.id, RequestEmpty(), idempotency_key="e1") is None
    assert [(e.kind, e.key) for e in emu.effects()] == [("email", "e1")]
    assert emu.invoice(inv.id).sent_to_contact


def test_add_line_to_authorised_invoice(emu: XeroEmulator, api: AccountingApi) -> None:
    inv = _open(emu)
    before_total, before_count = inv.total, len(inv.lines)
    lines = [LineItem(line_item_id=line.id) for line in inv.lines]
    lines.append(LineItem(description="Late fee ar-sync:f1", quantity=1, unit_amount=12.5))
    got = api.update_invoice(emu.tenant_id, inv.id, Invoices(invoices=[
        Invoice(invoice_id=inv.id, line_items=lines)]), idempotency_key="f1")
    assert len(got.invoices[0].line_items) == before_count + 1
    assert Decimal(str(got.invoices[0].total)) == before_total + Decimal("12.50")
    assert [(e.kind, e.key) for e in emu.effects()] == [("late_fee", "f1")]


def test_line_edit_with_payment_is_validation_exception(emu: XeroEmulator,
                                                       api: AccountingApi) -> None:
    inv = _open(emu, paid=True)
    with pytest.raises(ApiException) as exc:
        api.update_invoice(emu.tenant_id, inv.id, Invoices(invoices=[Invoice(
            invoice_id=inv.id, line_items=[LineItem(description="fee", unit_amount=1)])]))
    assert _status(exc) == 400
    assert exc.value.error_data["Type"] == "ValidationException"
    assert "payment" in exc.value.reason
    assert emu.effects() == []


def test_create_invoices_put_and_post(emu: XeroEmulator, api: AccountingApi) -> None:
    inv = _open(emu)
    today = date(2026, 11, 16)
    new = Invoice(type="ACCREC", contact=Contact(contact_id=inv.contact_id), date=today,
                  due_date=today + timedelta(days=14), status="AUTHORISED",
                  reference=f"Late fee for {inv.number} | ar-sync:n1",
                  currency_code=CurrencyCode(inv.currency),
                  line_items=[LineItem(description="Late fee ar-sync:n1", unit_amount=7)])
    made = api.create_invoices(emu.tenant_id, Invoices(invoices=[new]), idempotency_key="n1")
    created = made.invoices[0]
    assert created.status == "AUTHORISED" and created.due_date == today + timedelta(days=14)
    assert [(e.invoice_id, e.key) for e in emu.effects()] == [(inv.id, "n1")]
    posted = api.update_or_create_invoices(emu.tenant_id, Invoices(invoices=[Invoice(
        invoice_id=created.invoice_id, reference="changed")]))
    assert posted.invoices[0].reference == "changed"
    with pytest.raises(ApiException) as exc:
        api.create_invoices(emu.tenant_id, Invoices(invoices=[Invoice(type="ACCREC")]))
    assert "Contact" in exc.value.reason


# ----------------------------------------------------------------------------- gateway


def test_tenant_header_rules(emu: XeroEmulator, tokens: dict[str, Any]) -> None:
    url = emu.settings().endpoints["api"] + "/Invoices"
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert requests.get(url, headers=auth, timeout=5).status_code == 403
    assert requests.get(url, headers={**auth, "xero-tenant-id": "nope"},
                        timeout=5).status_code == 400
    other = requests.get(url, headers={**auth, "xero-tenant-id":
                                       "00000000-0000-0000-0000-000000000000"}, timeout=5)
    assert other.status_code == 403 and other.json()["Detail"] == "AuthenticationUnsuccessful"


def test_rate_limits_and_headers(clock: FakeClock) -> None:
    emu = XeroEmulator(clock=clock, per_minute=3, per_day=4)
    emu.seed(demo_company(customers=5, invoices=20))
    with emu.serve():
        headers = {"Authorization": f"Bearer {access_token(emu)}",
                   "xero-tenant-id": emu.tenant_id}
        url = emu.settings().endpoints["api"] + "/Invoices"
        answers = [requests.get(url, headers=headers, timeout=5) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["X-MinLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
        assert answers[0].headers["X-DayLimit-Remaining"] == "3"
        assert "X-AppMinLimit-Remaining" in answers[0].headers
        assert answers[3].headers["X-Rate-Limit-Problem"] == "minute"
        assert 1 <= int(answers[3].headers["Retry-After"]) <= 60
        clock.advance(61)
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        clock.advance(61)
        day = requests.get(url, headers=headers, timeout=5)
        assert day.status_code == 429 and day.headers["X-Rate-Limit-Problem"] == "day"


def test_injected_faults(emu: XeroEmulator, api: AccountingApi) -> None:
    emu.faults.fail_next(1, status=500)
    with pytest.raises(ApiException) as exc:
        api.get_invoices(emu.tenant_id)
    assert exc.value.status == 500
    emu.faults.throttle_next(1, retry_after=3)
    with pytest.raises(ApiException) as exc:
        api.get_invoices(emu.tenant_id)
    assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "3"
    assert len(api.get_invoices(emu.tenant_id).invoices) == 300


def test_token_without_invoice_scope_is_refused(emu: XeroEmulator) -> None:
    token = access_token(emu, scope="openid offline_access")
    got = requests.get(emu.settings().endpoints["api"] + "/Invoices", timeout=5, headers={
        "Authorization": f"Bearer {token}", "xero-tenant-id": emu.tenant_id})
    assert got.status_code == 401 and "scope" in got.json()["Detail"]


def test_concurrent_limit(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    emu = XeroEmulator(clock=clock, concurrent=1)
    emu.seed(demo_company(customers=5, invoices=20))
    inside = threading.Event()
    slow = emu._dispatch

    def dispatch(*args: Any) -> Any:
        inside.set()
        time.sleep(0.3)
        return slow(*args)

    monkeypatch.setattr(emu, "_dispatch", dispatch)
    with emu.serve():
        headers = {"Authorization": f"Bearer {access_token(emu)}",
                   "xero-tenant-id": emu.tenant_id}
        url = emu.settings().endpoints["api"] + "/Invoices"
        first: list[int] = []
        worker = threading.Thread(target=lambda: first.append(
            requests.get(url, headers=headers, timeout=5).status_code))
        worker.start()
        assert inside.wait(5)
        second = requests.get(url, headers=headers, timeout=5)
        worker.join()
    assert first == [200]
    assert second.status_code == 429 and second.headers["X-Rate-Limit-Problem"] == "concurrent"
