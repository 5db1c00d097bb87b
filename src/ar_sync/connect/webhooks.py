"""Webhooks from QuickBooks and Xero, reduced to targeted re-sync requests. Pure: no I/O.

Both platforms sign the raw body: base64(HMAC-SHA256(key, body)) in `intuit-signature` or
`x-xero-signature`. Nothing in a body is trusted before its signature checks out, and a body
only ever *asks* for a re-sync: the run then reads the invoice from the platform itself, so a
paid invoice stops being chased minutes after the payment, whatever the webhook claimed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 256 * 1024  # far above a real notification; also SQS's message limit
MAX_EVENTS = 1000
QUICKBOOKS_SIGNATURE = "intuit-signature"
XERO_SIGNATURE = "x-xero-signature"

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


class WebhookError(ValueError):
    """A webhook request that must be refused."""


class PayloadTooLargeError(WebhookError):
    pass


class MalformedPayloadError(WebhookError):
    pass


@dataclass(frozen=True)
class ResyncRequest:
    """Re-sync these invoices of one tenant; `invoice_ids=None` means its open invoices."""

    connection_id: str
    invoice_ids: frozenset[str] | None


def connection_id(platform: str, external_id: str) -> str:
    """ar-sync's tenant id for a platform company (QuickBooks realm, Xero tenant)."""
    return f"{platform}:{external_id}"


# ----------------------------------------------------------------------------- signatures


def sign(key: str, body: bytes) -> str:
    """The signature a platform puts on `body` (for the emulators and tests)."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def verify_signature(key: str | None, body: bytes, signature: str | None) -> bool:
    """Constant-time check; no key configured or no header means refused, never accepted."""
    if not key or not signature:
        return False
    return hmac.compare_digest(sign(key, body).encode(), signature.strip().encode())


def check_size(body: bytes, limit: int = MAX_BODY_BYTES) -> None:
    if len(body) > limit:
        raise PayloadTooLargeError(f"body of {len(body)} bytes is over {limit}")


# ----------------------------------------------------------------------------- parsing


def _json(body: bytes) -> Any:
    check_size(body)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPayloadError("body is not JSON") from exc


def _ident(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise MalformedPayloadError(f"{what} is missing or not an id")
    return value


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPayloadError(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedPayloadError(f"{what} is not a list")
    if len(value) > MAX_EVENTS:
        raise PayloadTooLargeError(f"{len(value)} {what} is over {MAX_EVENTS}")
    return value


def merge(requests: Iterable[ResyncRequest]) -> list[ResyncRequest]:
    """One request per tenant; a whole-tenant request absorbs the targeted ones."""
    wanted: dict[str, set[str] | None] = {}
    for req in requests:
        if req.connection_id in wanted and wanted[req.connection_id] is None:
            continue
        if req.invoice_ids is None:
            wanted[req.connection_id] = None
        else:
            ids = wanted.setdefault(req.connection_id, set())
            assert ids is not None
            ids |= req.invoice_ids
    return [ResyncRequest(cid, None if ids is None else frozenset(ids))
            for cid, ids in sorted(wanted.items())]


def _quickbooks_entity(realm: Any, name: Any, entity_id: Any) -> ResyncRequest | None:
    cid = connection_id("quickbooks", _ident(realm, "realmId"))
    kind = str(name).lower()
    if kind == "invoice":
        return ResyncRequest(cid, frozenset({_ident(entity_id, "entity id")}))
    if kind in ("payment", "creditmemo"):  # which invoices it settled is not in the event
        return ResyncRequest(cid, None)
    return None  # customers, items, ...: nothing to chase


def _each(items: list[Any], read: Callable[[Any], list[ResyncRequest | None]],
          skipped: list[str] | None) -> list[ResyncRequest]:
    """Read every event; a malformed one raises, or with `skipped` is noted there and left out
    (one bad event in a signed delivery must not hold back the others)."""
    found: list[ResyncRequest] = []
    for position, raw in enumerate(items):
        try:
            found.extend(r for r in read(raw) if r is not None)
        except MalformedPayloadError as exc:
            if skipped is None:
                raise
            skipped.append(f"event {position}: {exc}")
    return found


def _quickbooks_cloudevent(raw: Any) -> list[ResyncRequest | None]:
    event = _dict(raw, "event")
    parts = str(event.get("type", "")).split(".")
    if len(parts) < 3 or parts[0] != "qbo":
        raise MalformedPayloadError("event type is not qbo.<entity>.<operation>")
    return [_quickbooks_entity(event.get("intuitaccountid"), parts[1],
                               event.get("intuitentityid"))]


def _quickbooks_notification(raw: Any) -> list[ResyncRequest | None]:
    note = _dict(raw, "notification")
    change = _dict(note.get("dataChangeEvent"), "dataChangeEvent")
    entities = [_dict(entity, "entity") for entity in _list(change.get("entities"), "entities")]
    return [_quickbooks_entity(note.get("realmId"), e.get("name"), e.get("id"))
            for e in entities]


def parse_quickbooks(body: bytes, skipped: list[str] | None = None) -> list[ResyncRequest]:
    """Legacy `eventNotifications` payloads and the CloudEvents array Intuit moved to."""
    data = _json(body)
    if isinstance(data, list):  # CloudEvents 1.0: type "qbo.invoice.updated.v1"
        return merge(_each(_list(data, "events"), _quickbooks_cloudevent, skipped))
    notes = _list(_dict(data, "payload").get("eventNotifications"), "eventNotifications")
    return merge(_each(notes, _quickbooks_notification, skipped))


def _xero_event(raw: Any) -> list[ResyncRequest | None]:
    event = _dict(raw, "event")
    cid = connection_id("xero", _ident(event.get("tenantId"), "tenantId"))
    category = str(event.get("eventCategory", "")).upper()
    if category == "INVOICE":
        return [ResyncRequest(cid, frozenset({_ident(event.get("resourceId"), "resourceId")}))]
    if category == "CONTACT":  # a contact's e-mail or status changed: re-read them all
        return [ResyncRequest(cid, None)]
    return []


def parse_xero(body: bytes, skipped: list[str] | None = None) -> list[ResyncRequest]:
    """Xero events; the intent-to-receive carries an empty list and yields no request."""
    data = _dict(_json(body), "payload")
    return merge(_each(_list(data.get("events"), "events"), _xero_event, skipped))
