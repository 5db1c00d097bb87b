"""Every emulator endpoint, driven by python-quickbooks itself over HTTP: each answer must
deserialize through the SDK's own objects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from qbo_helpers import Session
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.exceptions import QuickbooksException, ValidationException
from quickbooks.objects.attachable import Attachable
from quickbooks.objects.base import AttachableRef, Ref
from quickbooks.objects.changedatacapture import CDCResponse  # noqa: F401 - import proves it
from quickbooks.objects.company_info import CompanyInfo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item

from ar_sync.sync.budget import CallBudget
from ar_sync_quickbooks.client import QuickBooksClient


class _Tokens:
    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self) -> str:
        return self.token

    def after_unauthorized(self, rejected_access_token: str) -> str:
        return self.token


@pytest.fixture
def qb(qbo: Session) -> Iterator[QuickBooks]:
    tokens = qbo.store.load_tokens(qbo.connection.id)
    assert tokens is not None
    yield QuickBooksClient(realm_id=qbo.emu.realm_id, api_url=qbo.settings.endpoints["api"],
                           tokens=_Tokens(tokens.access_token), budget=CallBudget())


def test_query_pages_and_count(qb: QuickBooks) -> None:
    total = Invoice.count("Balance > '0'", qb=qb)
    first = Invoice.query("select * from Invoice where Balance > '0' STARTPOSITION 1 "
                          "MAXRESULTS 50", qb=qb)
    rest = Invoice.query("select * from Invoice where Balance > '0' STARTPOSITION 51 "
                         "MAXRESULTS 1000", qb=qb)
    assert len(first) == 50 and len(first) + len(rest) == total
    assert not {i.Id for i in first} & {i.Id for i in rest}
    inv = first[0]
    assert isinstance(inv.CustomerRef, Ref) and inv.CurrencyRef.value
    assert isinstance(inv.Line[0], SalesItemLine)
    assert inv.Line[0].SalesItemLineDetail.ItemRef.value == "1"
    assert inv.Line[-1].DetailType == "SubTotalLineDetail"
    assert inv.MetaData.LastUpdatedTime.endswith("-08:00")
    assert all(Decimal(str(i.Balance)) > 0 for i in first + rest)


def test_filter_by_last_updated_time(qbo: Session, qb: QuickBooks) -> None:
    now = qbo.emu.clock()
    stamp = (now - timedelta(seconds=1)).replace(microsecond=0).isoformat()
    assert Invoice.where(f"MetaData.LastUpdatedTime > '{stamp}'", qb=qb) == []
    qbo.emu.pay("1001", "1")
    changed = Invoice.where(f"MetaData.LastUpdatedTime > '{stamp}'", qb=qb)
    assert [i.Id for i in changed] == ["1001"]


def test_get_create_full_and_sparse_update(qbo: Session, qb: QuickBooks) -> None:
    inv = Invoice.get("1001", qb=qb)
    assert inv.Id == "1001" and inv.SyncToken in ("0", "1")
    line = SalesItemLine()
    line.Amount = 100
    line.Description = "Widgets"
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = Ref()
    line.SalesItemLineDetail.ItemRef.value = "1"
    new = Invoice()
    new.CustomerRef = inv.CustomerRef
    new.Line = [line]
    created = new.save(qb=qb, request_id="create-1")
    assert created.Id and created.TotalAmt == 100 and created.Balance == 100
    assert created.SyncToken == "0" and created.DocNumber
    replay = new.save(qb=qb, request_id="create-1")
    assert replay.Id == created.Id  # requestid replays the first answer
    created.PrivateNote = "full update"
    updated = created.save(qb=qb)
    assert updated.SyncToken == "1" and updated.PrivateNote == "full update"
    sparse = qb.update_object("Invoice", json.dumps(
        {"Id": created.Id, "SyncToken": "1", "sparse": True, "CustomerMemo": {"value": "hi"}}))
    got = Invoice.from_json(sparse["Invoice"])
    assert got.SyncToken == "2" and got.PrivateNote == "full update"
    assert got.CustomerMemo.value == "hi"
    with pytest.raises(QuickbooksException) as err:  # stale: SyncToken 1 is long gone
        created.save(qb=qb)
    assert err.value.error_code == 5010 and "Stale Object" in err.value.message


def test_send_customer_item_attachable_companyinfo(qbo: Session, qb: QuickBooks) -> None:
    inv = Invoice.get("1002", qb=qb)
    answer = inv.send(qb=qb, send_to="someone@example.com")
    sent = Invoice.from_json(answer["Invoice"])
    assert sent.EmailStatus == "EmailSent" and sent.DeliveryInfo.DeliveryType == "Email"
    customers = Customer.all(qb=qb, max_results=1000)
    assert len(customers) == len(qbo.emu.rows["Customer"])
    assert any(c.PrimaryEmailAddr for c in customers)
    item = Item()
    item.Name, item.Type = "Late fee", "Service"
    item.IncomeAccountRef = Ref()
    item.IncomeAccountRef.value = "1"
    saved = item.save(qb=qb)
    assert Item.filter(Name="Late fee", qb=qb)[0].Id == saved.Id
    with pytest.raises(QuickbooksException) as err:
        item.Id = None
        item.save(qb=qb)
    assert err.value.error_code == 6240
    note = Attachable()
    ref = AttachableRef()
    ref.EntityRef = Ref()
    ref.EntityRef.type, ref.EntityRef.value = "Invoice", "1002"
    note.AttachableRef = [ref]
    note.Note = "called the customer ar-sync:k1"
    made = note.save(qb=qb)
    found = Attachable.where("AttachableRef.EntityRef.value = '1002'", qb=qb)
    assert [a.Id for a in found] == [made.Id]
    assert found[0].AttachableRef[0].EntityRef.value == "1002"
    info = CompanyInfo.get(qbo.emu.realm_id, qb=qb)
    assert info.CompanyName == qbo.emu.company_name


def test_cdc_and_batch(qbo: Session, qb: QuickBooks) -> None:
    since = (qbo.emu.clock() - timedelta(seconds=5)).isoformat()
    qbo.emu.pay("1003", "1")
    cdc = qb.change_data_capture("Invoice", since)
    block = cdc["CDCResponse"][0]["QueryResponse"][0]
    assert [Invoice.from_json(i).Id for i in block["Invoice"]] == ["1003"]
    with pytest.raises(QuickbooksException):
        qb.change_data_capture("Invoice", "2020-01-01T00:00:00Z")  # beyond 30 days
    notes = []
    for n in range(3):
        att = Attachable()
        att.Note = f"batch note {n}"
        ref = AttachableRef()
        ref.EntityRef = Ref()
        ref.EntityRef.type, ref.EntityRef.value = "Invoice", "1004"
        att.AttachableRef = [ref]
        notes.append(att)
    result = batch_create(notes, qb=qb)
    assert len(result.successes) == 3 and not result.faults
    assert qbo.emu.counters.calls["POST /v3/company/{realm}/batch"] == 1
    bad = Attachable()
    bad.Note = "to nowhere"
    ref = AttachableRef()
    ref.EntityRef = Ref()
    ref.EntityRef.type, ref.EntityRef.value = "Invoice", "424242"
    bad.AttachableRef = [ref]
    mixed = batch_create([bad], qb=qb)
    assert len(mixed.faults) == 1 and mixed.faults[0].Error[0].code == "2500"
    raw = qb.batch_operation('{"BatchItemRequest": [{"bId": "q", "Query": '
                             '"select count(*) from Invoice"}]}')
    assert raw["BatchItemResponse"][0]["QueryResponse"]["totalCount"] == len(
        qbo.emu.rows["Invoice"])
    too_many = json.dumps({"BatchItemRequest": [
        {"bId": str(i), "Query": "select * from Item"} for i in range(31)]})
    with pytest.raises(QuickbooksException):
        qb.batch_operation(too_many)


def test_expired_token_is_401_through_the_sdk(qbo: Session, qb: QuickBooks) -> None:
    from ar_sync.domain.errors import ReauthorizationRequiredError

    qbo.emu.faults.expire_tokens()
    with pytest.raises(ReauthorizationRequiredError):
        Invoice.get("1001", qb=qb)


def test_batch_operations_independent_faults_inside_and_requestid_replay(
        qbo: Session, qb: QuickBooks) -> None:
    """Intuit's batch reference: each BatchItemRequest answered by its bId, a failing one
    carries its own Fault while the others are applied; the request's requestid (≤ 36
    characters) replays the whole answer."""
    def note(bid: str, invoice: str) -> dict[str, object]:
        return {"bId": bid, "operation": "create", "Attachable": {
            "Note": f"note {bid}", "AttachableRef": [{"EntityRef": {"type": "Invoice",
                                                                    "value": invoice}}]}}

    stale = {"bId": "s", "operation": "update", "Invoice": {
        "Id": "1005", "SyncToken": "7", "sparse": True, "PrivateNote": "x"}}
    body = json.dumps({"BatchItemRequest": [note("a", "1004"), note("bad", "424242"), stale,
                                            note("b", "1006")]})
    url = f"{qb.api_url}/company/{qbo.emu.realm_id}/batch"
    first = qb.post(url, body, request_id="batch-test-1")
    answers = {a["bId"]: a for a in first["BatchItemResponse"]}
    assert answers["a"]["Attachable"]["Id"] and answers["b"]["Attachable"]["Id"]
    assert answers["bad"]["Fault"]["Error"][0]["code"] == "2500"
    assert answers["s"]["Fault"]["Error"][0]["code"] == "5010"
    notes = sorted(a["Note"] for a in qbo.emu.rows["Attachable"].values())
    assert notes == ["note a", "note b"]
    again = qb.post(url, body, request_id="batch-test-1")
    assert again["BatchItemResponse"] == first["BatchItemResponse"]
    assert len(qbo.emu.rows["Attachable"]) == 2 and qbo.emu.counters.writes_replayed == 1
    with pytest.raises(QuickbooksException, match="Max allowed is 36"):
        qb.post(url, body, request_id="x" * 37)
    twice = json.dumps({"BatchItemRequest": [note("d", "1004"), note("d", "1006")]})
    with pytest.raises(QuickbooksException):
        qb.post(url, twice)
    assert len(qbo.emu.rows["Attachable"]) == 2


def test_a_batch_requestid_joined_with_a_bid_past_50_characters_faults_that_item(
        qbo: Session, qb: QuickBooks) -> None:
    """QuickBooks joins the batch's requestid with each item's bId into one id of at most 50
    characters and faults every item past it with 6000, the request itself answered 200
    (QuickBooks-V3-Java-SDK #180: 32 + 36 = 68 characters refused; Intuit blog 2015-04-06:
    at most 10 characters per bId with a requestid)."""
    def note(bid: str) -> dict[str, object]:
        return {"bId": bid, "operation": "create", "Attachable": {
            "Note": f"note {bid}", "AttachableRef": [{"EntityRef": {"type": "Invoice",
                                                                    "value": "1004"}}]}}

    url = f"{qb.api_url}/company/{qbo.emu.realm_id}/batch"
    action_key = "ar" + "0123456789abcdef" * 2  # 34 characters, as ar-sync's keys
    long_ids = json.dumps({"BatchItemRequest": [note(action_key), note(action_key + "-i")]})
    answer = qb.post(url, long_ids, request_id="batch-" + "f" * 30)
    faults = [a["Fault"]["Error"][0] for a in answer["BatchItemResponse"]]
    assert [f["code"] for f in faults] == ["6000", "6000"]
    assert "70 characters" in faults[0]["Detail"] and "72 characters" in faults[1]["Detail"]
    assert qbo.emu.rows["Attachable"] == {}
    fits = json.dumps({"BatchItemRequest": [note("0"), note("1234567890")]})
    answer = qb.post(url, fits, request_id="batch-" + "e" * 30)  # 36 + 10 = 46
    assert all("Attachable" in a for a in answer["BatchItemResponse"])
    at_limit = json.dumps({"BatchItemRequest": [note("x" * 14), note("y" * 15)]})
    answer = qb.post(url, at_limit, request_id="batch-" + "d" * 30)  # 50 fits, 51 does not
    first, second = answer["BatchItemResponse"]
    assert "Attachable" in first and second["Fault"]["Error"][0]["code"] == "6000"
    without = json.dumps({"BatchItemRequest": [note(action_key)]})
    assert "Attachable" in qb.post(url, without)["BatchItemResponse"][0]  # no requestid


def test_a_query_names_its_entity_in_the_case_quickbooks_knows(qb: QuickBooks) -> None:
    """Intuit, Data queries: the entity is "Case sensitive"; the emulator refuses another case
    (so a query of ours that misspells it fails here, as it would on QuickBooks)."""
    assert Invoice.query("select * from Invoice MAXRESULTS 1", qb=qb)
    with pytest.raises(ValidationException, match="4000"):
        Invoice.query("select * from invoice MAXRESULTS 1", qb=qb)
