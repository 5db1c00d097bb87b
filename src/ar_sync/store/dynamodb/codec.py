"""DynamoDBStore's encoding and low-level calls, shared by the store and its ledger half.

Also the per-invoice summary of finished ledger rows (see store/dynamodb/ledger.py): a string
set `done` on the invoice's snapshot item, one compact JSON array per row recorded for good.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from ar_sync.domain.models import (
    Action,
    ActionKind,
    ApplyLateFee,
    EntryState,
    LedgerEntry,
    WaiveFee,
)
from ar_sync.planner.can_act import Finished, finished_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TTL_ATTRIBUTE = "expires_at"
SUMMARY = "done"  # the finished rows of an invoice (string set), on its snapshot/paid item
SUMMARY_COMPLETE = "sv"  # 1: `done` holds every finished row of the invoice
UNFINISHED = frozenset({EntryState.CLAIMED, EntryState.RETRY})

ACTION: TypeAdapter[Action] = TypeAdapter(Action)
_SER = TypeSerializer()
_DESER = TypeDeserializer()

Item = dict[str, Any]


def encode(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(v) for k, v in item.items() if v is not None}


def decode(raw: Mapping[str, Any]) -> Item:
    return {k: _DESER.deserialize(v) for k, v in raw.items()}


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("datetimes must carry a time zone")
    return moment.astimezone(UTC).isoformat()


def epoch_seconds(moment: datetime) -> Decimal:
    return Decimal(str(round(moment.timestamp(), 6)))


def when_of(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def entry_of(item: Item) -> LedgerEntry:
    return LedgerEntry(
        key=item["pk"], tenant=item["tenant"], invoice_id=item["invoice_id"],
        kind=ActionKind(item["kind"]), rule=item["rule"], occurrence=item["occurrence"],
        state=EntryState(item["state"]), due_on=date.fromisoformat(item["due_on"]),
        updated_at=datetime.fromisoformat(item["updated_at"]), ref=item.get("ref"),
        reason=item.get("reason"),
        amount=Decimal(item["amount"]) if item.get("amount") is not None else None,
        attempts=int(item.get("attempts", 0)), owner=item.get("owner"),
        lease_until=when_of(item.get("lease_until")),
        rules_version=int(item["rules_version"]) if item.get("rules_version") is not None
        else None,
    )


def new_row(action: Action, state: EntryState, now: datetime,
             rules_version: int | None = None) -> Item:
    amount = (str(action.amount.amount) if isinstance(action, ApplyLateFee | WaiveFee)
              else None)
    return {
        "pk": action.key, "tenant": action.tenant, "isk": f"{action.invoice_id}#{action.key}",
        "invoice_id": action.invoice_id, "kind": str(action.kind), "rule": action.rule,
        "occurrence": action.occurrence, "state": str(state), "due_on": action.due_on.isoformat(),
        "updated_at": iso(now), "amount": amount, "rev": 1,
        "payload": ACTION.dump_json(action).decode(), "rules_version": rules_version,
        "open_tenant": action.tenant if state in UNFINISHED else None,
    }


def conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


# ------------------------------------------------------------------- the per-invoice summary

_LETTER = {"done": "d", "skipped": "s", "failed": "f"}
_STATE = {v: k for k, v in _LETTER.items()}


def summary_code(row: Item) -> str:
    """The summary's entry for one ledger item in a terminal state: [kind, rule, occurrence,
    state letter, time written (done), amount (done fee), due day (fee)], trailing blanks cut."""
    f = finished_of(entry_of(row))
    parts = [f.kind, f.rule, f.occurrence, _LETTER[f.state], iso(f.at) if f.at else "",
             "" if f.amount is None else str(f.amount),
             f.due_on.isoformat() if f.due_on else ""]
    while not parts[-1]:
        parts.pop()
    return json.dumps(parts, separators=(",", ":"))


def summary_rows(codes: Iterable[str]) -> list[Finished]:
    out = []
    for code in sorted(codes):
        kind, rule, occurrence, letter, *rest = json.loads(code)
        at, amount, due_on = [*rest, "", "", ""][:3]
        out.append(Finished(kind, rule, occurrence, _STATE[letter],
                            Decimal(amount) if amount else None,
                            datetime.fromisoformat(at) if at else None,
                            date.fromisoformat(due_on) if due_on else None))
    return out


# ------------------------------------------------------------------------ low-level calls


class DynamoDBTables:
    """The client, the table names and the calls every part of the store makes."""

    _db: DynamoDBClient
    _tenants: str
    _ledger: str
    _locks: str

    def _get(self, table: str, key: Mapping[str, str]) -> Item | None:
        raw = self._db.get_item(TableName=table, Key=encode(key), ConsistentRead=True).get("Item")
        return decode(raw) if raw else None

    def _put(self, table: str, item: Mapping[str, Any], condition: str | None = None,
             values: Mapping[str, Any] | None = None,
             names: Mapping[str, str] | None = None) -> bool:
        """A (conditional) put; False when the condition does not hold."""
        kwargs: dict[str, Any] = {"TableName": table, "Item": encode(item)}
        if condition:
            kwargs["ConditionExpression"] = condition
        if values:
            kwargs["ExpressionAttributeValues"] = encode(values)
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        try:
            self._db.put_item(**kwargs)
        except ClientError as exc:
            if conditional_failed(exc):
                return False
            raise
        return True

    def _update(self, table: str, key: Mapping[str, str], update: str, condition: str,
                values: Mapping[str, Any], names: Mapping[str, str]) -> Item | None:
        """A conditional update; the new item, or None when the condition does not hold."""
        try:
            kwargs: dict[str, Any] = {"ExpressionAttributeNames": dict(names)} if names else {}
            out = self._db.update_item(
                TableName=table, Key=encode(key), UpdateExpression=update,
                ConditionExpression=condition, ExpressionAttributeValues=encode(values),
                ReturnValues="ALL_NEW", **kwargs)
        except ClientError as exc:
            if conditional_failed(exc):
                return None
            raise
        return decode(out.get("Attributes", {}))

    def _query(self, **kwargs: Any) -> Iterator[Item]:
        while True:
            page = self._db.query(**kwargs)
            yield from (decode(raw) for raw in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        """BatchWriteItem in chunks of 25, re-sending what DynamoDB left unprocessed."""
        for start in range(0, len(requests), 25):
            _until_processed(self._db.batch_write_item,
                             {self._tenants: requests[start:start + 25]},
                             "UnprocessedItems", "invoice snapshot writes")

    def _batch_get(self, keys: list[dict[str, str]]) -> list[Item]:
        """BatchGetItem (strongly consistent) from the tenants table, 100 keys a call."""
        found: list[Item] = []
        for start in range(0, len(keys), 100):
            for out in _until_processed(
                    self._db.batch_get_item,
                    {self._tenants: {"Keys": [encode(k) for k in keys[start:start + 100]],
                                     "ConsistentRead": True}},
                    "UnprocessedKeys", "invoice snapshot reads"):
                found += [decode(raw) for raw in out.get("Responses", {}).get(self._tenants, [])]
        return found


def _until_processed(call: Callable[..., Any], pending: dict[str, Any], leftover: str,
                     what: str) -> list[dict[str, Any]]:
    """Send a batch request, re-sending what DynamoDB left in `leftover` (backing off, up to
    8 tries); every answer, in order; RuntimeError when something is still left."""
    answers: list[dict[str, Any]] = []
    for attempt in range(8):
        out = call(RequestItems=pending)
        answers.append(out)
        pending = dict(out.get(leftover) or {})
        if not pending:
            return answers
        time.sleep(min(0.05 * 2 ** attempt, 1.0))
    raise RuntimeError(f"DynamoDB left {what} unprocessed")
