"""Writes of the QuickBooks emulator: create, full and sparse update (SyncToken check 5010),
delete (`operation=delete`, remembered for /cdc), Items, Attachable notes, and /batch."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from ar_sync_emulators.base import Clock, Counters, RateLimiter, Request
from ar_sync_emulators.quickbooks.credit import create_credit_memo, create_payment
from ar_sync_emulators.quickbooks.lines import normalise_lines, price
from ar_sync_emulators.quickbooks.shapes import COMPANY_TZ, QboFault, fault_body, qbo_time, required
from ar_sync_emulators.quickbooks.tax import Edition

NOTE_MAX = 2000  # Attachable.Note (Intuit API reference, Attachable)
BATCH_MAX = 30  # operations per /batch request
REQUEST_ID_MAX = 50  # characters of `requestid` (36 on /batch)
BATCH_REQUEST_ID_MAX = 36
# With a `requestid`, QuickBooks joins it with each item's bId into one request id of at most
# 50 characters: a longer pair faults that item with 6000 (QuickBooks-V3-Java-SDK #180: a
# 32-character requestid and 36-character bIds, every item "You cannot enter more than 50
# characters in the request_id field ... which is 68 characters"; Intuit blog 2015-04-06:
# "For each batch ID, only 10 characters are allowed when RequestID is also specified").
BATCH_ITEM_ID_MAX = 50
WRITABLE = ("Invoice", "Item", "Attachable", "CreditMemo", "Payment")


def too_long(what: str, limit: int, got: int) -> QboFault:
    return QboFault(400, "2050", "String length is either shorter or longer than supported "
                    "by specification", f"{what} is {got} characters; Max allowed is {limit}")


def item_id_too_long(joined: str) -> QboFault:
    """The per-item fault of a batch whose requestid and bId together pass 50 characters."""
    return QboFault(400, "6000", "A business validation error has occurred while processing "
                    "your request", "Business Validation Error: You cannot enter more than "
                    f"{BATCH_ITEM_ID_MAX} characters in the request_id field. You tried "
                    f"entering {joined[:10]}..., which is {len(joined)} characters.")


class QboEntities:
    """Mixin of QuickBooksEmulator: the attributes below are set by its __init__."""

    edition: Edition
    rows: dict[str, dict[str, dict[str, Any]]]
    deleted: dict[str, dict[str, dict[str, Any]]]
    counters: Counters
    batch_limiter: RateLimiter
    realm_id: str
    _paid: dict[str, Decimal]
    _lock: Any

    clock: Clock

    def _new_id(self) -> str:
        raise NotImplementedError

    def _touch(self, row: dict[str, Any], *, bump: bool = True) -> None:
        raise NotImplementedError

    def _query(self, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def _lines(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return normalise_lines(lines, set(self.rows["Item"]))

    def _recompute(self, inv: dict[str, Any]) -> None:
        price(inv, self.edition, self._paid.get(str(inv.get("Id")), Decimal(0)))

    def _write(self, entity: str, body: dict[str, Any], operation: str | None) -> dict[str, Any]:
        if operation not in (None, "update", "delete"):
            raise QboFault(400, "4000", "Unsupported Operation", f"operation={operation}")
        with self._lock:
            if operation == "delete":
                row = self._delete(entity, body)
            elif body.get("Id"):
                row = self._update(entity, body)
            elif entity == "Invoice":
                row = self._create_invoice(body)
            elif entity == "Item":
                row = self._create_item(body)
            elif entity == "Attachable":
                row = self._create_attachable(body)
            elif entity == "CreditMemo":  # waivers: ar_sync_emulators/quickbooks/credit.py
                row = create_credit_memo(cast(Any, self), body, QboFault)
            elif entity == "Payment":
                row = create_payment(cast(Any, self), body, QboFault)
            else:
                raise QboFault(400, "4000", "Unsupported Operation", f"create {entity}")
            self.counters.applied()
            return dict(row)

    def _current(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        row = self.rows[entity].get(str(body["Id"]))
        if row is None:
            raise QboFault(400, "610", "Object Not Found",
                           f"Object Not Found : Something you're trying to use has been made "
                           f"inactive. Check the fields with accounts, customers, items, "
                           f"vendors or employees. ({entity} {body['Id']})")
        if str(body.get("SyncToken")) != str(row.get("SyncToken")):
            raise QboFault(400, "5010", "Stale Object Error",
                           "Stale Object Error : You and Demo User were working on this at the "
                           "same time. Demo User finished before you did, so your work was not "
                           "saved.")
        return row

    def _delete(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """Gone from reads and queries; /cdc reports it with `status: Deleted`."""
        if entity not in ("Invoice", "Attachable"):
            raise QboFault(400, "4000", "Unsupported Operation", f"delete {entity}")
        row = self._current(entity, body)
        del self.rows[entity][row["Id"]]
        gone = {"Id": row["Id"], "status": "Deleted", "domain": "QBO",
                "MetaData": {"LastUpdatedTime": qbo_time(self.clock())}}
        self.deleted.setdefault(entity, {})[row["Id"]] = gone
        return gone

    def _update(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        row = self._current(entity, body)
        kept: dict[str, Any] = {k: row[k] for k in ("Id", "MetaData", "domain") if k in row}
        ignored = {"SyncToken", "TotalAmt", "Balance", "HomeBalance", "HomeTotalAmt",
                   "MetaData", "sparse", "domain"}
        changes = {k: v for k, v in body.items() if k not in ignored and v not in ("", None)}
        if entity == "Invoice" and "Line" in changes:
            changes["Line"] = normalise_lines(changes["Line"], set(self.rows["Item"]))
        if entity == "Attachable" and len(str(changes.get("Note", ""))) > NOTE_MAX:
            raise too_long("Note", NOTE_MAX, len(str(changes["Note"])))
        before = dict(row)
        if body.get("sparse"):
            row.update(changes)
        else:  # a full update replaces every writable field
            row.clear()
            row.update({**changes, **kept, "SyncToken": body["SyncToken"], "sparse": False})
            row.setdefault("CurrencyRef", {"value": self.edition.home_currency})
        if entity == "Invoice":
            try:
                self._check_customer(row)
                self._recompute(row)
            except QboFault:
                row.clear()
                row.update(before)  # a refused update changes nothing
                raise
        self._touch(row)
        return row

    def _check_customer(self, inv: dict[str, Any]) -> dict[str, Any]:
        ref = inv.get("CustomerRef") or {}
        customer = self.rows["Customer"].get(str(ref.get("value", "")))
        if customer is None:
            raise QboFault(400, "2500", "Invalid Reference Id",
                           "Invalid Reference Id : Customer does not exist")
        return customer

    def _create_invoice(self, body: dict[str, Any]) -> dict[str, Any]:
        row = {k: v for k, v in body.items() if v not in ("", None, [], {})}
        for computed in ("TotalAmt", "Balance", "HomeBalance", "HomeTotalAmt", "sparse",
                         "SyncToken"):
            row.pop(computed, None)
        customer = self._check_customer(row)
        row["Line"] = normalise_lines(body.get("Line") or [], set(self.rows["Item"]))
        iid = self._new_id()
        today = self.clock().astimezone(COMPANY_TZ).date()
        row.update({"Id": iid, "SyncToken": "0", "domain": "QBO", "sparse": False})
        row.setdefault("DocNumber", str(int(iid)))
        row.setdefault("TxnDate", today.isoformat())
        row.setdefault("DueDate", row["TxnDate"])
        row.setdefault("CurrencyRef", customer.get("CurrencyRef",
                                                   {"value": self.edition.home_currency}))
        row["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
        if "BillEmail" not in row and "PrimaryEmailAddr" in customer:
            row["BillEmail"] = {"Address": customer["PrimaryEmailAddr"]["Address"]}
        row.setdefault("EmailStatus", "NotSet")
        row.setdefault("PrivateNote", "")
        stamp = qbo_time(self.clock())
        row["MetaData"] = {"CreateTime": stamp, "LastUpdatedTime": stamp}
        self._paid[iid] = Decimal(0)
        self._recompute(row)
        self.rows["Invoice"][iid] = row
        return row

    def _create_item(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("Name") or "").strip()
        if not name:
            raise required("Name")
        if any(i["Name"].lower() == name.lower() for i in self.rows["Item"].values()):
            raise QboFault(400, "6240", "Duplicate Name Exists Error",
                           f"The name supplied already exists. : {name}")
        account = str((body.get("IncomeAccountRef") or {}).get("value", ""))
        if body.get("Type", "Service") == "Service" and account not in self.rows["Account"]:
            raise required("IncomeAccountRef")
        iid = self._new_id()
        stamp = qbo_time(self.clock())
        row = {**{k: v for k, v in body.items() if v not in ("", None)}, "Id": iid,
               "SyncToken": "0", "FullyQualifiedName": name, "Active": True, "domain": "QBO",
               "sparse": False, "Type": body.get("Type", "Service"),
               "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}
        self.rows["Item"][iid] = row
        return row

    def _create_attachable(self, body: dict[str, Any]) -> dict[str, Any]:
        refs = body.get("AttachableRef") or []
        if not body.get("Note") and not body.get("FileName"):
            raise required("Note")
        if len(str(body.get("Note") or "")) > NOTE_MAX:
            raise too_long("Note", NOTE_MAX, len(str(body["Note"])))
        for ref in refs:
            entity = ref.get("EntityRef") or {}
            table = self.rows.get(str(entity.get("type", "")))
            if table is None or str(entity.get("value", "")) not in table:
                raise QboFault(400, "2500", "Invalid Reference Id",
                               f"Invalid Reference Id : {entity.get('type')} "
                               f"{entity.get('value')} does not exist")
        aid = self._new_id()
        stamp = qbo_time(self.clock())
        row = {**{k: v for k, v in body.items() if v not in ("", None)}, "Id": aid,
               "SyncToken": "0", "domain": "QBO", "sparse": False,
               "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}
        self.rows["Attachable"][aid] = row
        return row

    def _batch(self, req: Request) -> dict[str, Any]:
        """Up to 30 operations, each applied and answered on its own (`bId`), in order: a
        Fault in one BatchItemResponse leaves the others applied."""
        items = (req.json() or {}).get("BatchItemRequest") or []
        if len(items) > BATCH_MAX:
            raise QboFault(400, "4000", "Batch size exceeded",
                           f"Batch request may contain at most {BATCH_MAX} operations")
        bids = [str(item.get("bId", "")) for item in items]
        if "" in bids or len(set(bids)) != len(bids):
            raise QboFault(400, "2020", "Required param missing, need to supply the required "
                           "value for the API", "bId: every BatchItemRequest needs its own")
        request_id = req.query.get("requestid") or ""
        answers: list[dict[str, Any]] = []
        for item in items:
            bid = str(item.get("bId", ""))
            try:
                if request_id and len(request_id) + len(bid) > BATCH_ITEM_ID_MAX:
                    raise item_id_too_long(request_id + bid)
                if "Query" in item:
                    answers.append({"bId": bid, "QueryResponse": self._query(item["Query"])})
                    continue
                operation = item.get("operation", "create")
                entity = next((e for e in WRITABLE if e in item), None)
                if entity is None or operation not in ("create", "update", "delete"):
                    raise QboFault(400, "4000", "Unsupported Operation", f"batch {operation}")
                body = dict(item[entity])
                if operation == "create":
                    body.pop("Id", None)
                answers.append({"bId": bid, entity: self._write(
                    entity, body, "delete" if operation == "delete" else None)})
            except QboFault as exc:
                answers.append({"bId": bid, "Fault": fault_body(exc.code, exc.message,
                                                                exc.detail, exc.kind)})
        return {"BatchItemResponse": answers}
