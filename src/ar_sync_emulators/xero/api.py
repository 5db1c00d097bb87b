"""Xero's answer envelopes and the emulator's read endpoints (invoice and contact lists).

Envelopes follow what xero-python deserialises: the `{"Id", "Status", "ProviderName",
"DateTimeUTC", ...}` wrapper of every 200, the ValidationException (ErrorNumber 10) of a
business-rule refusal, and the gateway's problem body of 401/403/429.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from ar_sync_emulators.base import Request, Response
from ar_sync_emulators.xero.model import (
    CONTACT_WHERE_FIELDS,
    INVOICE_WHERE_FIELDS,
    Organisation,
    XInvoice,
    contact_json,
    contact_record,
    dumps,
    invoice_json,
    invoice_record,
    ms_date,
    stable_id,
)
from ar_sync_emulators.xero.where import WhereError, parse_where

STATUSES = {"DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"}


def problem(status: int, title: str, detail: str) -> Response:
    """Xero's gateway error body (401, 403, 429, 5xx)."""
    return Response.json(status, {"Type": None, "Title": title, "Status": status,
                                  "Detail": detail, "Instance": stable_id(detail, title),
                                  "Extensions": {}})


def validation(messages: Iterable[str], element: dict[str, Any] | None = None) -> Response:
    """Xero's ValidationException envelope (ErrorNumber 10), as the SDK expects it."""
    el = dict(element or {})
    el["ValidationErrors"] = [{"Message": m} for m in messages]
    return Response(400, dumps({"ErrorNumber": 10, "Type": "ValidationException",
                                "Message": "A validation exception occurred",
                                "Elements": [el]}), [("Content-Type", "application/json")])


def bad_request(kind: str, message: str, number: int = 16) -> Response:
    return Response.json(400, {"ErrorNumber": number, "Type": kind, "Message": message})


def not_found() -> Response:
    return Response.text(404, "The resource you're looking for cannot be found")


def xero_ok(payload: dict[str, Any], now: datetime) -> Response:
    body = {"Id": stable_id(str(now.timestamp())), "Status": "OK",
            "ProviderName": "ar-sync Xero emulator", "DateTimeUTC": ms_date(now), **payload}
    return Response(200, dumps(body), [("Content-Type", "application/json")])


def parse_since(value: str) -> datetime:
    """If-Modified-Since as clients send it: ISO 8601 (naive = UTC) or an HTTP date."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        moment = parsedate_to_datetime(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_invoices(req: Request, org: Organisation, now: datetime) -> Response:
    q = {k.lower(): v for k, v in req.query.items()}
    unknown = set(q) - {"where", "order", "ids", "invoicenumbers", "contactids", "statuses",
                        "page", "pagesize", "summaryonly", "includearchived",
                        "createdbymyapp", "unitdp", "searchterm"}
    if unknown:
        return bad_request("QueryParseException",
                            f"unsupported parameter(s): {', '.join(sorted(unknown))}")
    predicate = parse_where(q.get("where", ""), INVOICE_WHERE_FIELDS)
    statuses = {s.strip().upper() for s in q.get("statuses", "").split(",") if s.strip()}
    if statuses - STATUSES:
        return bad_request("ValidationException",
                            f"unknown status {sorted(statuses - STATUSES)[0]}", number=10)
    ids = {s.strip().lower() for s in q.get("ids", "").split(",") if s.strip()}
    numbers = {s.strip() for s in q.get("invoicenumbers", "").split(",") if s.strip()}
    contacts = {s.strip().lower() for s in q.get("contactids", "").split(",") if s.strip()}
    term = q.get("searchterm", "").lower()
    since = None
    if "if-modified-since" in req.headers:
        try:
            since = parse_since(req.headers["if-modified-since"])
        except (TypeError, ValueError):
            return bad_request("ValidationException", "If-Modified-Since is not a date",
                                number=10)
    summary = q.get("summaryonly", "").lower() == "true"
    rows = [inv for inv in org.invoices.values()
            if (not statuses or inv.status in statuses)
            and (inv.status != "DELETED" or "DELETED" in statuses)
            and (not ids or inv.id in ids) and (not numbers or inv.number in numbers)
            and (not contacts or inv.contact_id in contacts)
            and (not term or term in inv.number.lower() or term in inv.reference.lower())
            and (since is None or inv.updated > since)
            and predicate(invoice_record(org, inv))]
    rows = _order(rows, q.get("order", ""))
    payload: dict[str, Any] = {}
    if "page" in q:
        try:
            page, size = int(q["page"]), int(q.get("pagesize", "100"))
        except ValueError:
            return bad_request("ValidationException", "page and pageSize must be numbers",
                                number=10)
        if page < 1 or not 1 <= size <= 1000:
            return bad_request("ValidationException",
                                "page must be >= 1 and pageSize between 1 and 1000",
                                number=10)
        count = len(rows)
        rows = rows[(page - 1) * size: page * size]
        payload["pagination"] = {"page": page, "pageSize": size,
                                 "pageCount": (count + size - 1) // size, "itemCount": count}
        lines = not summary
    else:
        lines = False  # Xero leaves line items out of unpaged lists
    payload["Invoices"] = [invoice_json(org, inv, lines=lines, summary=summary)
                           for inv in rows]
    return xero_ok(payload, now)

def _order(rows: list[XInvoice], order: str) -> list[XInvoice]:
    if not order.strip():
        return rows
    field, _, direction = order.strip().partition(" ")
    keys: dict[str, Callable[[XInvoice], Any]] = {
        "updateddateutc": lambda i: i.updated, "invoicenumber": lambda i: i.number,
        "duedate": lambda i: i.due_date or date.min, "date": lambda i: i.date,
        "amountdue": lambda i: i.amount_due}
    key = keys.get(field.lower())
    if key is None or direction.strip().upper() not in ("", "ASC", "DESC"):
        raise WhereError(f"unsupported order {order!r}")
    return sorted(rows, key=key, reverse=direction.strip().upper() == "DESC")

def list_contacts(req: Request, org: Organisation, now: datetime) -> Response:
    q = {k.lower(): v for k, v in req.query.items()}
    predicate = parse_where(q.get("where", ""), CONTACT_WHERE_FIELDS)
    ids = {s.strip().lower() for s in q.get("ids", "").split(",") if s.strip()}
    rows = [c for c in org.contacts.values()
            if (not ids or c.id in ids) and predicate(contact_record(c))]
    payload: dict[str, Any] = {}
    if "page" in q:
        page, size = int(q["page"]), int(q.get("pagesize", "100"))
        if page < 1 or not 1 <= size <= 1000:
            raise WhereError("page must be >= 1 and pageSize between 1 and 1000")
        count = len(rows)
        rows = rows[(page - 1) * size: page * size]
        payload["pagination"] = {"page": page, "pageSize": size,
                                 "pageCount": (count + size - 1) // size, "itemCount": count}
    summary = q.get("summaryonly", "").lower() == "true"
    payload["Contacts"] = [contact_json(c, summary=summary) for c in rows]
    return xero_ok(payload, now)
