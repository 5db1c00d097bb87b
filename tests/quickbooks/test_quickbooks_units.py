"""Pure pieces: the query subset, the rate limiter, fault switches, mapping helpers, and the
requests-based client paths (with `responses`: no server)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import responses
from hypothesis import given
from hypothesis import strategies as st
from qbo_helpers import FakeClock

from ar_sync.domain.errors import (
    PlatformValidationError,
    RateLimitedError,
    ReauthorizationRequiredError,
    StaleObjectError,
    TransientError,
)
from ar_sync.domain.models import InvoiceStatus
from ar_sync.sync.budget import CallBudget
from ar_sync_emulators.base import Counters, Faults, RateLimiter
from ar_sync_emulators.quickbooks.query import QueryError, parse_query, run_query
from ar_sync_quickbooks.client import QuickBooksClient, endpoint_of, run
from ar_sync_quickbooks.mapping import (
    MalformedInvoice,
    checkpoint_from,
    dumps,
    is_fee_line,
    map_invoices,
    note_text,
    parse_retry_after,
    to_invoice,
)

# ------------------------------------------------------------------ query subset


def test_parse_full_statement() -> None:
    q = parse_query("select * from Invoice where Balance > '0' and "
                    "MetaData.LastUpdatedTime >= '2026-11-01T00:00:00+00:00' "
                    "STARTPOSITION 1001 MAXRESULTS 1000")
    assert q.entity == "Invoice" and q.start == 1001 and q.max_results == 1000
    assert [(c.field, c.op) for c in q.where] == [("Balance", ">"),
                                                   ("MetaData.LastUpdatedTime", ">=")]
    assert parse_query("SELECT COUNT(*) FROM Invoice").count


@pytest.mark.parametrize("text", ["select from Invoice", "select * from Invoice where x",
                                  "select * from Invoice MAXRESULTS 1001",
                                  "select * from Invoice STARTPOSITION 0"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(QueryError):
        parse_query(text)


rows_strategy = st.lists(st.tuples(st.integers(0, 500), st.decimals(0, 1000, places=2)),
                         max_size=60)


@given(rows=rows_strategy, size=st.integers(1, 25), floor=st.integers(0, 1000))
def test_pages_cover_every_match_exactly_once(rows: list[tuple[int, Decimal]], size: int,
                                              floor: int) -> None:
    table = [{"Id": str(i + 1), "Balance": float(b), "CustomerRef": {"value": str(c)}}
             for i, (c, b) in enumerate(rows)]
    seen: list[str] = []
    start = 1
    while True:
        page, total = run_query(parse_query(
            f"select * from Invoice where Balance > '{floor}' STARTPOSITION {start} "
            f"MAXRESULTS {size}"), table)
        seen += [r["Id"] for r in page]
        if len(page) < size:
            break
        start += size
    expected = [r["Id"] for r in table if Decimal(str(r["Balance"])) > floor]
    assert seen == expected and total == len(expected)


def test_refs_in_and_like_and_time_comparison() -> None:
    table = [{"Id": "1", "CustomerRef": {"value": "7"}, "Name": "Late fee",
              "MetaData": {"LastUpdatedTime": "2026-11-16T09:00:00-08:00"}},
             {"Id": "2", "CustomerRef": {"value": "8"}, "Name": "Services",
              "MetaData": {"LastUpdatedTime": "2026-11-16T16:59:59+00:00"}}]

    def ids(q: str) -> list[str]:
        return [r["Id"] for r in run_query(parse_query(q), table)[0]]

    assert ids("select * from X where CustomerRef = '7'") == ["1"]
    assert ids("select * from X where Id in ('2', '3')") == ["2"]
    assert ids("select * from X where Name like 'late%'") == ["1"]
    # 09:00 PST is 17:00 UTC: later than 16:59:59 UTC despite the smaller clock digits
    assert ids("select * from X where MetaData.LastUpdatedTime > "
               "'2026-11-16T17:00:00Z'") == []
    assert ids("select * from X where MetaData.LastUpdatedTime >= "
               "'2026-11-16T17:00:00Z'") == ["1"]


# ------------------------------------------------------------------ shared infrastructure


def test_rate_limiter_minute_day_and_concurrency() -> None:
    clock = FakeClock(datetime(2026, 11, 16, tzinfo=UTC))
    limiter = RateLimiter(per_minute=2, per_day=3, concurrent=1, clock=clock)
    first = limiter.acquire("t")
    assert first.allowed and first.minute_remaining == 1 and first.day_remaining == 2
    busy = limiter.acquire("t")
    assert not busy.allowed and busy.problem == "concurrent"
    limiter.release("t")
    assert limiter.acquire("t").allowed
    limiter.release("t")
    over = limiter.acquire("t")
    assert not over.allowed and over.problem == "minute" and over.retry_after == 60
    assert limiter.acquire("other").allowed  # per tenant
    clock.advance(61)
    assert limiter.acquire("t").allowed
    limiter.release("t")
    clock.advance(61)
    day = limiter.acquire("t")
    assert not day.allowed and day.problem == "day" and day.retry_after > 3600


def test_faults_are_consumed_per_matching_path() -> None:
    faults = Faults()
    faults.fail_next(2, status=500, match="/invoice")
    faults.throttle_next(1, retry_after=3)
    assert faults.before_request("/query") is not None  # the throttle (any path)
    assert faults.before_request("/query") is None
    got = [faults.before_request("/v3/company/1/invoice") for _ in range(3)]
    assert [g.value if g else None for g in got] == [500, 500, None]
    faults.drop_after_write(1, match="/send")
    assert not faults.take_drop("/invoice") and faults.take_drop("/invoice/1/send")
    epoch = faults.token_epoch
    faults.expire_tokens()
    assert faults.token_epoch == epoch + 1
    faults.timeout_next(5)
    faults.clear()
    assert faults.pending() == 0


def test_counters_snapshot_and_reset() -> None:
    counters = Counters()
    counters.call("GET /x")
    counters.call("GET /x")
    counters.applied()
    counters.replayed()
    assert counters.snapshot() == {"calls": {"GET /x": 2}, "total_calls": 2,
                                   "writes_applied": 1, "writes_replayed": 1}
    counters.reset()
    assert counters.total_calls == 0 and counters.writes_applied == 0


# ------------------------------------------------------------------ mapping


def _raw(**over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "Id": "5", "SyncToken": "2", "DocNumber": "INV-5", "TxnDate": "2026-10-01",
        "DueDate": "2026-10-31", "CurrencyRef": {"value": "USD"}, "TotalAmt": 110.5,
        "Balance": 60.5, "CustomerRef": {"value": "9", "name": "Acme"},
        "MetaData": {"LastUpdatedTime": "2026-11-10T08:00:00-08:00"},
        "Line": [{"Id": "1", "Amount": 100, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Services"}}},
                 {"Id": "2", "Amount": 10.5, "Description": "Late fee ar-sync:k",
                  "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": "9", "name": "Late fee"}}},
                 {"Amount": 110.5, "DetailType": "SubTotalLineDetail",
                  "SubTotalLineDetail": {}}]}
    raw.update(over)
    return raw


def test_to_invoice_maps_fields_fees_and_status() -> None:
    inv = to_invoice(_raw(PrivateNote="#Disputed by phone"), realm="r", email="a@b.c")
    assert inv.total == Decimal("110.50") and inv.balance == Decimal("60.50")
    assert inv.late_fees_charged == Decimal("10.5") and inv.disputed
    assert inv.updated_at == datetime(2026, 11, 10, 16, tzinfo=UTC)
    assert inv.customer_email == "a@b.c" and inv.version == "2"
    assert to_invoice(_raw(Balance=0), realm="r").status == InvoiceStatus.PAID
    voided = to_invoice(_raw(Balance=0, TotalAmt=0, PrivateNote="Voided"), realm="r")
    assert voided.status == InvoiceStatus.VOIDED
    billed = to_invoice(_raw(BillEmail={"Address": "x@y.z"}), realm="r", email="other@q.r")
    assert billed.customer_email == "x@y.z"


@pytest.mark.parametrize(("change", "reason"), [({"DueDate": ""}, "DueDate"),
                                                 ({"CurrencyRef": {"value": "ZZZ"}}, "currency"),
                                                 ({"Balance": -1}, "negative balance"),
                                                 ({"CustomerRef": None}, "CustomerRef")])
def test_malformed_invoice_reasons(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(MalformedInvoice, match=reason):
        to_invoice(_raw(**change), realm="r")
    good, warnings = map_invoices([_raw(Id="1"), _raw(Id="2", **change)], realm="r", emails={})
    assert [i.id for i in good] == ["1"] and "INV-5 (Id 2)" in warnings[0]


def test_fee_invoice_counts_against_its_invoice() -> None:
    fee = _raw(Id="77", DocNumber="77", TotalAmt=15, Balance=15,
               PrivateNote="Late fee: fee on invoice INV-5 [invoice:5] ar-sync:kk",
               Line=[{"Amount": 15, "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {"ItemRef": {"value": "9", "name": "Late fee"}}}])
    good, _ = map_invoices([_raw(), fee], realm="r", emails={})
    assert {i.id: i.late_fees_charged for i in good}["5"] == Decimal("25.5")


def test_fee_line_detection_and_note_text() -> None:
    assert is_fee_line({"Description": "x ar-sync:abc"})
    assert is_fee_line({"SalesItemLineDetail": {"ItemRef": {"name": "late FEE"}}})
    assert not is_fee_line({"Description": "consulting"})
    text = note_text("x" * 5000, "key1")
    assert len(text) <= 2000 and text.endswith("ar-sync:key1")


@given(st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10**9,
                   max_value=10**9))
def test_dumps_writes_decimals_as_exact_numbers(value: Decimal) -> None:
    text = dumps({"Amount": value, "Note": "ar-sync-decimal"})
    assert json.loads(text, parse_float=Decimal)["Amount"] == value


def test_retry_after_and_checkpoint_parsing() -> None:
    now = datetime(2026, 11, 16, 12, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0 and parse_retry_after(None) is None
    assert parse_retry_after("Mon, 16 Nov 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon") is None
    cp = checkpoint_from("2026-11-16T04:00:00.789-08:00", now)
    assert cp == datetime(2026, 11, 16, 12, tzinfo=UTC) and cp.microsecond == 0


# ------------------------------------------------------------------ client (responses)

API = "https://qbo.test/v3"


class _Tokens:
    def __init__(self) -> None:
        self.current = "t1"
        self.rejected: list[str] = []

    def access_token(self) -> str:
        return self.current

    def after_unauthorized(self, rejected_access_token: str) -> str:
        self.rejected.append(rejected_access_token)
        self.current = "t2"
        return self.current


def _client(budget: CallBudget | None = None) -> tuple[QuickBooksClient, _Tokens]:
    tokens = _Tokens()
    return QuickBooksClient(realm_id="42", api_url=API, tokens=tokens,
                            budget=budget or CallBudget()), tokens


def _fault(code: str, message: str) -> dict[str, Any]:
    return {"Fault": {"Error": [{"Message": message, "Detail": message + " detail",
                                 "code": code}], "type": "ValidationFault"}}


@responses.activate
def test_401_refreshes_once_then_succeeds() -> None:
    url = f"{API}/company/42/invoice/5"
    responses.get(url, status=401, json={"fault": {"error": [{"message": "expired"}]}})
    responses.get(url, status=200, json={"Invoice": _raw()})
    client, tokens = _client()
    answer = client.get_single_object("Invoice", pk="5")
    assert answer["Invoice"]["Id"] == "5" and tokens.rejected == ["t1"]
    assert [c.request.headers["Authorization"] for c in responses.calls] == [
        "Bearer t1", "Bearer t2"]
    assert "minorversion=75" in (responses.calls[0].request.url or "")


@responses.activate
def test_401_twice_needs_reauthorization() -> None:
    responses.get(f"{API}/company/42/invoice/5", status=401, json={})
    client, _ = _client()
    with pytest.raises(ReauthorizationRequiredError):
        client.get_single_object("Invoice", pk="5")


@responses.activate
def test_error_mapping_keeps_the_platform_message() -> None:
    url = f"{API}/company/42/invoice"
    responses.post(url, status=400, json=_fault("5010", "Stale Object Error"))
    responses.post(url, status=400, json=_fault("6000", "A business validation error"))
    responses.post(url, status=503, body="<html>down</html>")
    responses.post(url, status=429, json=_fault("3001", "ThrottleExceeded"),
                   headers={"Retry-After": "4"})
    client, _ = _client()
    sleeps: list[float] = []

    def call() -> Any:
        return run(lambda: client.update_object("Invoice", "{}"), what="t", sleep=sleeps.append,
                   attempts=1)

    with pytest.raises(StaleObjectError, match="Stale Object Error") as stale:
        call()
    assert stale.value.platform_code == "5010"
    with pytest.raises(PlatformValidationError, match="business validation"):
        call()
    with pytest.raises(TransientError, match="503"):
        call()
    with pytest.raises(RateLimitedError) as limited:
        call()
    assert limited.value.retry_after == 4.0


@responses.activate
def test_requestid_is_sent_and_budget_counts_every_http_call() -> None:
    url = f"{API}/company/42/attachable"
    responses.post(url, status=503, body="")
    responses.post(url, status=200, json={"Attachable": {"Id": "9"}})
    budget = CallBudget()
    client, _ = _client(budget)
    run(lambda: client.create_object("Attachable", "{}", request_id="ar123"), what="t",
        sleep=lambda s: None)
    assert all("requestid=ar123" in (c.request.url or "") for c in responses.calls)
    assert budget.calls == 2 and budget.by_endpoint == {"POST attachable": 2}


def test_endpoint_of_strips_ids() -> None:
    assert endpoint_of(f"{API}/company/42/invoice/17/send") == "invoice/{id}/send"
    assert endpoint_of(f"{API}/company/42/query") == "query"


def test_checkpoint_falls_back_to_clock() -> None:
    now = datetime(2026, 11, 16, 12, 0, 0, 500000, tzinfo=UTC)
    assert checkpoint_from(None, now) == now - timedelta(microseconds=500000)
