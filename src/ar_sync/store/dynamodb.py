"""The Store on DynamoDB, for the serverless deployment.

Three tables (the same definitions are in serverless.yml; a test keeps the two in step):

- tenants  (pk, sk): `CONNECTIONS` / <connection id>  a connection (one partition, so listing
           is a strongly consistent query); `inv#<id>` / <invoice id> the open-invoice
           snapshot; `conn#<id>` / `tokens` the Fernet-encrypted token set with a plain
           `version` for versioned writes; `conn#<id>` / `checkpoint`; `conn#<id>` / `report`
           the last run report; `oauth#<sha256(state)>` / `pending` a single-use OAuth state
           (deleted with a condition; DynamoDB TTL sweeps expired ones); `plan#<id>` /
           <invoice> a payment plan (JSON); `rules#<id>` / <version, zero-padded> a rules
           version; `pause#<id>` / <pause id> a pause (store/dynamodb_trust.py).
- ledger   (pk = action key): one row per action. `claim` is a conditional put
           (attribute_not_exists(pk)); every later change is a compare-and-swap on `rev`, a
           counter bumped by every write, so a takeover of an expired lease races safely.
           GSI `tenant-index` (tenant, isk = invoice id + key) serves history and leftovers.
- locks    (pk = lock name): owner + lease as epoch seconds; conditional put, TTL `expires_at`.

Tables have point-in-time recovery; TTL attribute `expires_at` (epoch seconds) where it fits.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from ar_sync.connector import Connection, TokenSet
from ar_sync.ledger import Claim, ClaimOutcome
from ar_sync.messaging.contacts import Contact
from ar_sync.models import (
    TERMINAL_STATES,
    Action,
    ActionKind,
    ApplyLateFee,
    EntryState,
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    WaiveFee,
)
from ar_sync.plans import PaymentPlan
from ar_sync.store.base import (
    PAID_RETENTION_DAYS,
    Checkpoint,
    PendingAuth,
    Snapshot,
    as_paid,
)
from ar_sync.store.dynamodb_trust import DynamoDBTrustMixin
from ar_sync.store.rows import invoices_from

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CONNECTIONS_PK = "CONNECTIONS"
TENANT_INDEX = "tenant-index"
# Sparse: only rows waiting for work (claimed, retry) carry `open_tenant`, so a run finds its
# leftovers with one small query however old and large the tenant's ledger is.
UNFINISHED_INDEX = "unfinished-index"
_UNFINISHED = frozenset({EntryState.CLAIMED, EntryState.RETRY})
TTL_ATTRIBUTE = "expires_at"
MAX_REPORT_BYTES = 300_000  # DynamoDB items stop at 400 KB
_TAKEOVER_ATTEMPTS = 5

_ACTION: TypeAdapter[Action] = TypeAdapter(Action)
_SER = TypeSerializer()
_DESER = TypeDeserializer()

Item = dict[str, Any]


class Cipher(Protocol):
    """What the store needs from ar_sync.crypto.TokenCipher."""

    def encrypt(self, tokens: TokenSet, *, bound_to: str) -> str: ...

    def decrypt(self, blob: str, *, bound_to: str) -> TokenSet: ...


def table_definitions(tenants: str, ledger: str, locks: str) -> list[dict[str, Any]]:
    """CreateTable arguments for the three tables (used by tests, the bench and local setup)."""
    s = "S"
    return [
        {"TableName": tenants,
         "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
         "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": s},
                                  {"AttributeName": "sk", "AttributeType": s}],
         "BillingMode": "PAY_PER_REQUEST"},
        {"TableName": ledger,
         "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
         "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": s},
                                  {"AttributeName": "tenant", "AttributeType": s},
                                  {"AttributeName": "isk", "AttributeType": s},
                                  {"AttributeName": "open_tenant", "AttributeType": s}],
         "GlobalSecondaryIndexes": [{
             "IndexName": TENANT_INDEX,
             "KeySchema": [{"AttributeName": "tenant", "KeyType": "HASH"},
                           {"AttributeName": "isk", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "ALL"}}, {
             "IndexName": UNFINISHED_INDEX,
             "KeySchema": [{"AttributeName": "open_tenant", "KeyType": "HASH"},
                           {"AttributeName": "isk", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "ALL"}}],
         "BillingMode": "PAY_PER_REQUEST"},
        {"TableName": locks,
         "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
         "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": s}],
         "BillingMode": "PAY_PER_REQUEST"},
    ]


def create_tables(client: DynamoDBClient, tenants: str, ledger: str, locks: str) -> None:
    """Create the tables with TTL on (local and test setups; production uses serverless.yml)."""
    for definition in table_definitions(tenants, ledger, locks):
        client.create_table(**definition)
    for name in (tenants, locks):
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE})


# ----------------------------------------------------------------------------- encoding


def _ser(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(v) for k, v in item.items() if v is not None}


def _deser(raw: Mapping[str, Any]) -> Item:
    return {k: _DESER.deserialize(v) for k, v in raw.items()}


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("datetimes must carry a time zone")
    return moment.astimezone(UTC).isoformat()


def _epoch(moment: datetime) -> Decimal:
    return Decimal(str(round(moment.timestamp(), 6)))


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _entry(item: Item) -> LedgerEntry:
    return LedgerEntry(
        key=item["pk"], tenant=item["tenant"], invoice_id=item["invoice_id"],
        kind=ActionKind(item["kind"]), rule=item["rule"], occurrence=item["occurrence"],
        state=EntryState(item["state"]), due_on=date.fromisoformat(item["due_on"]),
        updated_at=datetime.fromisoformat(item["updated_at"]), ref=item.get("ref"),
        reason=item.get("reason"),
        amount=Decimal(item["amount"]) if item.get("amount") is not None else None,
        attempts=int(item.get("attempts", 0)), owner=item.get("owner"),
        lease_until=_when(item.get("lease_until")),
        rules_version=int(item["rules_version"]) if item.get("rules_version") is not None
        else None,
    )


def _new_row(action: Action, state: EntryState, now: datetime,
             rules_version: int | None = None) -> Item:
    amount = (str(action.amount.amount) if isinstance(action, ApplyLateFee | WaiveFee)
              else None)
    return {
        "pk": action.key, "tenant": action.tenant, "isk": f"{action.invoice_id}#{action.key}",
        "invoice_id": action.invoice_id, "kind": str(action.kind), "rule": action.rule,
        "occurrence": action.occurrence, "state": str(state), "due_on": action.due_on.isoformat(),
        "updated_at": _iso(now), "amount": amount, "rev": 1,
        "payload": _ACTION.dump_json(action).decode(), "rules_version": rules_version,
        "open_tenant": action.tenant if state in _UNFINISHED else None,
    }


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


# ----------------------------------------------------------------------------- the store


class DynamoDBStore(DynamoDBTrustMixin):
    """Store protocol on three DynamoDB tables; tokens encrypted with `cipher` before writing."""

    def __init__(
        self,
        *,
        tenants_table: str,
        ledger_table: str,
        locks_table: str,
        cipher: Cipher,
        client: DynamoDBClient | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=region_name)
        self._db = client  # boto3 clients are thread-safe; resources are not
        self._tenants = tenants_table
        self._ledger = ledger_table
        self._locks = locks_table
        self._cipher = cipher

    def __repr__(self) -> str:
        return f"DynamoDBStore(tenants={self._tenants!r}, ledger={self._ledger!r})"

    # low-level helpers ---------------------------------------------------------------
    def _get(self, table: str, key: Mapping[str, str]) -> Item | None:
        raw = self._db.get_item(TableName=table, Key=_ser(key), ConsistentRead=True).get("Item")
        return _deser(raw) if raw else None

    def _put(self, table: str, item: Mapping[str, Any], condition: str | None = None,
             values: Mapping[str, Any] | None = None,
             names: Mapping[str, str] | None = None) -> bool:
        """A (conditional) put; False when the condition does not hold."""
        kwargs: dict[str, Any] = {"TableName": table, "Item": _ser(item)}
        if condition:
            kwargs["ConditionExpression"] = condition
        if values:
            kwargs["ExpressionAttributeValues"] = _ser(values)
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        try:
            self._db.put_item(**kwargs)
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def _update(self, table: str, key: Mapping[str, str], update: str, condition: str,
                values: Mapping[str, Any], names: Mapping[str, str]) -> Item | None:
        """A conditional update; the new item, or None when the condition does not hold."""
        try:
            out = self._db.update_item(
                TableName=table, Key=_ser(key), UpdateExpression=update,
                ConditionExpression=condition, ExpressionAttributeValues=_ser(values),
                ExpressionAttributeNames=dict(names), ReturnValues="ALL_NEW")
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        return _deser(out.get("Attributes", {}))

    def _query(self, **kwargs: Any) -> Iterator[Item]:
        while True:
            page = self._db.query(**kwargs)
            yield from (_deser(raw) for raw in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    # connections -----------------------------------------------------------------------
    def save_connection(self, connection: Connection) -> None:
        self._put(self._tenants, {"pk": CONNECTIONS_PK, "sk": connection.id,
                                  "data": connection.model_dump_json()})

    def get_connection(self, connection_id: str) -> Connection | None:
        item = self._get(self._tenants, {"pk": CONNECTIONS_PK, "sk": connection_id})
        return Connection.model_validate_json(item["data"]) if item else None

    def list_connections(self) -> list[Connection]:
        items = self._query(
            TableName=self._tenants, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=_ser({":pk": CONNECTIONS_PK}), ConsistentRead=True)
        return [Connection.model_validate_json(item["data"]) for item in items]

    # tokens ------------------------------------------------------------------------------
    def load_tokens(self, connection_id: str) -> TokenSet | None:
        item = self._get(self._tenants, {"pk": f"conn#{connection_id}", "sk": "tokens"})
        if item is None:
            return None
        tokens = self._cipher.decrypt(item["blob"], bound_to=connection_id)
        return tokens.model_copy(update={"version": int(item["version"])})

    def save_tokens(self, connection_id: str, tokens: TokenSet, *, expected_version: int) -> bool:
        """Versioned write: absent tokens count as version -1, the stored version becomes
        expected_version + 1; False when another runner wrote first."""
        version = expected_version + 1
        stored = tokens.model_copy(update={"version": version})
        item = {"pk": f"conn#{connection_id}", "sk": "tokens",
                "blob": self._cipher.encrypt(stored, bound_to=connection_id), "version": version}
        if expected_version < 0:
            return self._put(self._tenants, item, "attribute_not_exists(pk)")
        return self._put(self._tenants, item, "version = :v", {":v": expected_version})

    # OAuth state -------------------------------------------------------------------------
    def put_pending_auth(self, pending: PendingAuth, *, now: datetime | None = None,
                         limit_per_business: int | None = None) -> bool:
        """Stored under a hash of the state, so a table dump does not hand out live states.

        With a limit, the flow also takes one of the business's `limit` slots
        (`oauthslot#<sha256(business)>` / <n>), free when absent or expired, in one
        transaction with the state: concurrent starts cannot take more slots than there are.
        """
        digest = _state_hash(pending.state)
        item = {"pk": f"oauth#{digest}", "sk": "pending",
                "platform": pending.platform, "business_id": pending.business_id,
                "code_verifier": pending.code_verifier, "expires": _iso(pending.expires_at),
                TTL_ATTRIBUTE: math.ceil(pending.expires_at.timestamp())}
        if limit_per_business is None:
            return self._put(self._tenants, item, "attribute_not_exists(pk)")
        moment = math.floor((now or datetime.now(UTC)).timestamp())
        owner = _state_hash(pending.business_id)
        for slot in range(limit_per_business):
            slot_key = {"pk": f"oauthslot#{owner}", "sk": str(slot)}
            try:
                self._db.transact_write_items(TransactItems=[
                    {"Put": {"TableName": self._tenants, "Item": _ser({**item, "slot": slot}),
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Put": {"TableName": self._tenants,
                             "Item": _ser({**slot_key, "state": digest,
                                           TTL_ATTRIBUTE: item[TTL_ATTRIBUTE]}),
                             "ConditionExpression": "attribute_not_exists(pk) OR #e <= :now",
                             "ExpressionAttributeNames": {"#e": TTL_ATTRIBUTE},
                             "ExpressionAttributeValues": _ser({":now": moment})}}])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                    continue  # this slot is taken (or, never in practice, the state exists)
                raise
            return True
        return False

    def take_pending_auth(self, state: str, *, now: datetime) -> PendingAuth | None:
        """Delete-with-condition, so of two callbacks racing with one state only one gets it."""
        try:
            out = self._db.delete_item(
                TableName=self._tenants,
                Key=_ser({"pk": f"oauth#{_state_hash(state)}", "sk": "pending"}),
                ConditionExpression="attribute_exists(pk)", ReturnValues="ALL_OLD")
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        item = _deser(out.get("Attributes", {}))
        if "slot" in item:  # free the business's slot, unless a newer flow already took it
            slot_key = {"pk": f"oauthslot#{_state_hash(item['business_id'])}",
                        "sk": str(item["slot"])}
            try:
                self._db.delete_item(TableName=self._tenants, Key=_ser(slot_key),
                                     ConditionExpression="#s = :s",
                                     ExpressionAttributeNames={"#s": "state"},
                                     ExpressionAttributeValues=_ser({":s": _state_hash(state)}))
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
        expires_at = datetime.fromisoformat(item["expires"])
        if expires_at <= now:
            return None
        return PendingAuth(state=state, platform=item["platform"],
                           business_id=item["business_id"],
                           code_verifier=item.get("code_verifier"), expires_at=expires_at)

    # locks -------------------------------------------------------------------------------
    def acquire_lock(self, name: str, *, owner: str, now: datetime, ttl_seconds: float) -> bool:
        until = now + timedelta(seconds=ttl_seconds)
        return self._put(
            self._locks,
            {"pk": name, "owner": owner, "lease_until": _epoch(until),
             TTL_ATTRIBUTE: math.ceil(until.timestamp())},
            "attribute_not_exists(pk) OR lease_until <= :now OR #owner = :owner",
            {":now": _epoch(now), ":owner": owner}, {"#owner": "owner"})

    def release_lock(self, name: str, *, owner: str) -> None:
        try:
            self._db.delete_item(
                TableName=self._locks, Key=_ser({"pk": name}),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues=_ser({":owner": owner}))
        except ClientError as exc:
            if not _conditional_failed(exc):  # not ours (any more): leave it
                raise

    # the open-invoice snapshot -----------------------------------------------------------
    def _invoice_keys(self, connection_id: str) -> list[str]:
        items = self._query(
            TableName=self._tenants, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=_ser({":pk": f"inv#{connection_id}"}),
            ProjectionExpression="sk", ConsistentRead=True)
        return [item["sk"] for item in items]

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        """BatchWriteItem in chunks of 25, re-sending what DynamoDB left unprocessed."""
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self._tenants: requests[start:start + 25]}
            for attempt in range(8):
                out = self._db.batch_write_item(RequestItems=pending)
                pending = dict(out.get("UnprocessedItems") or {})
                if not pending:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 1.0))
            else:
                raise RuntimeError("DynamoDB left invoice snapshot writes unprocessed")

    def save_invoices(
        self, connection_id: str, invoices: Sequence[Invoice], *, replace_all: bool
    ) -> None:
        """One item per open invoice under `inv#<connection>`; closed ones are deleted."""
        pk = f"inv#{connection_id}"
        latest = {inv.id: inv for inv in invoices}  # last one wins, as in a sequence of upserts
        keep = {i for i, inv in latest.items() if inv.is_open}
        drop = set(latest) - keep
        if replace_all:
            drop |= set(self._invoice_keys(connection_id)) - keep
        requests: list[dict[str, Any]] = [
            {"PutRequest": {"Item": _ser({"pk": pk, "sk": i,
                                          "data": latest[i].model_dump_json()})}}
            for i in sorted(keep)]
        requests += [{"DeleteRequest": {"Key": _ser({"pk": pk, "sk": i})}} for i in sorted(drop)]
        # Paid invoices stay for the report, aged out by TTL after PAID_RETENTION_DAYS.
        for i in sorted(drop):
            if i in latest and latest[i].status == InvoiceStatus.PAID:
                paid = as_paid(latest[i])
                expires = datetime.combine(paid.paid_at or date.min, datetime.min.time(),
                                           tzinfo=UTC)
                requests.append({"PutRequest": {"Item": _ser({
                    "pk": f"paid#{connection_id}", "sk": i, "data": paid.model_dump_json(),
                    TTL_ATTRIBUTE: int((expires + timedelta(days=PAID_RETENTION_DAYS))
                                      .timestamp())})}})
        self._batch_write(requests)

    def paid_invoices(self, connection_id: str) -> list[Invoice]:
        items = self._query(
            TableName=self._tenants, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=_ser({":pk": f"paid#{connection_id}"}))
        return invoices_from(item["data"] for item in items)

    def open_invoices(self, connection_id: str) -> list[Invoice]:
        items = self._query(
            TableName=self._tenants, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=_ser({":pk": f"inv#{connection_id}"}), ConsistentRead=True)
        return invoices_from(item["data"] for item in items)

    def active_invoices(self, connection_id: str, *, on: date, stamp: str) -> Snapshot:
        """No quiet index on DynamoDB (yet): every open invoice is planned every run."""
        return Snapshot(self.open_invoices(connection_id))

    def save_quiet(self, connection_id: str, until: Mapping[str, date], *, since: date,
                   stamp: str, versions: Mapping[str, int]) -> int:
        return 0

    # checkpoints and reports -------------------------------------------------------------
    def get_checkpoint(self, connection_id: str) -> Checkpoint:
        item = self._get(self._tenants, {"pk": f"conn#{connection_id}", "sk": "checkpoint"})
        if item is None:
            return Checkpoint(since=None, last_full_at=None)
        return Checkpoint(since=_when(item.get("since")),
                          last_full_at=_when(item.get("last_full_at")))

    def save_checkpoint(self, connection_id: str, checkpoint: Checkpoint) -> None:
        self._put(self._tenants, {
            "pk": f"conn#{connection_id}", "sk": "checkpoint",
            "since": _iso(checkpoint.since) if checkpoint.since else None,
            "last_full_at": _iso(checkpoint.last_full_at) if checkpoint.last_full_at else None,
        })

    def save_report(self, connection_id: str, report: dict[str, Any]) -> None:
        """JSON in one attribute; a huge report loses its per-action list to fit an item."""
        body = json.dumps(report, default=str, sort_keys=True)
        if len(body.encode()) > MAX_REPORT_BYTES:
            slim = {**report, "actions": [],
                    "warnings": [*report.get("warnings", []),
                                 f"{len(report.get('actions', []))} actions left out (size)"]}
            body = json.dumps(slim, default=str, sort_keys=True)[:MAX_REPORT_BYTES]
        self._put(self._tenants, {"pk": f"conn#{connection_id}", "sk": "report", "json": body})

    def last_report(self, connection_id: str) -> dict[str, Any] | None:
        item = self._get(self._tenants, {"pk": f"conn#{connection_id}", "sk": "report"})
        return cast(dict[str, Any], json.loads(item["json"])) if item else None

    # payment plans -----------------------------------------------------------------------
    def save_payment_plan(self, connection_id: str, plan: PaymentPlan) -> None:
        self._put(self._tenants, {"pk": f"plan#{connection_id}", "sk": plan.invoice,
                                  "data": plan.model_dump_json()})

    def payment_plans(self, connection_id: str) -> list[PaymentPlan]:
        items = self._query(
            TableName=self._tenants, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=_ser({":pk": f"plan#{connection_id}"}), ConsistentRead=True)
        return [PaymentPlan.model_validate_json(item["data"]) for item in items]

    def delete_payment_plan(self, connection_id: str, invoice: str) -> bool:
        out = self._db.delete_item(
            TableName=self._tenants, Key=_ser({"pk": f"plan#{connection_id}", "sk": invoice}),
            ReturnValues="ALL_OLD")
        return bool(out.get("Attributes"))

    # contacts (e-mail override, opt-out, bounces) ------------------------------------------
    def save_contact(self, contact: Contact) -> None:
        self._put(self._tenants, {"pk": f"contact#{contact.tenant}", "sk": contact.customer_id,
                                  "data": contact.model_dump_json()})

    def contacts(self, tenant: str) -> dict[str, Contact]:
        items = self._query(
            TableName=self._tenants, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=_ser({":pk": f"contact#{tenant}"}), ConsistentRead=True)
        found = (Contact.model_validate_json(item["data"]) for item in items)
        return {c.customer_id: c for c in found}

    # ledger ------------------------------------------------------------------------------
    def claim(self, action: Action, *, owner: str, now: datetime, lease_seconds: float,
              rules_version: int | None = None) -> Claim:
        lease = _iso(now + timedelta(seconds=lease_seconds))
        row = {**_new_row(action, EntryState.CLAIMED, now, rules_version), "owner": owner,
               "lease_until": lease, "attempts": 1}
        if self._put(self._ledger, row, "attribute_not_exists(pk)"):
            return Claim(ClaimOutcome.ACQUIRED, _entry(row))
        for _ in range(_TAKEOVER_ATTEMPTS):
            current = self._get(self._ledger, {"pk": action.key})
            if current is None:  # vanished (never in practice): try a fresh claim again
                if self._put(self._ledger, row, "attribute_not_exists(pk)"):
                    return Claim(ClaimOutcome.ACQUIRED, _entry(row))
                continue
            entry = _entry(current)
            if entry.state in TERMINAL_STATES:
                return Claim(ClaimOutcome.FINISHED, entry)
            if entry.state == EntryState.CLAIMED and (
                entry.lease_until is not None and entry.lease_until > now
            ):
                return Claim(ClaimOutcome.BUSY, entry)
            # an expired lease or a row waiting for retry: compare-and-swap on rev
            taken = self._update(
                self._ledger, {"pk": action.key},
                "SET #state = :claimed, #owner = :owner, lease_until = :lease, "
                "updated_at = :now, attempts = attempts + :one, rev = rev + :one, "
                "payload = :payload, open_tenant = tenant",
                "rev = :rev",
                {":claimed": str(EntryState.CLAIMED), ":owner": owner, ":lease": lease,
                 ":now": _iso(now), ":one": 1, ":rev": current["rev"],
                 ":payload": row["payload"]},
                {"#state": "state", "#owner": "owner"})
            if taken is not None:
                return Claim(ClaimOutcome.RECONCILE, _entry(taken))
        current = self._get(self._ledger, {"pk": action.key})
        return Claim(ClaimOutcome.BUSY, _entry(current) if current else None)

    def _finish_owned(self, key: str, owner: str, state: EntryState, now: datetime,
                      extra: Mapping[str, str]) -> bool:
        sets = ", ".join(f"#{name} = :{name}" for name in extra)
        # a finished row leaves the sparse unfinished index; a retry row stays in it
        remove = "lease_until" if state in _UNFINISHED else "lease_until, open_tenant"
        done = self._update(
            self._ledger, {"pk": key},
            f"SET #state = :state, updated_at = :now, rev = rev + :one"
            f"{', ' + sets if sets else ''} REMOVE {remove}",
            "#state = :claimed AND #owner = :owner",
            {":state": str(state), ":now": _iso(now), ":one": 1,
             ":claimed": str(EntryState.CLAIMED), ":owner": owner,
             **{f":{name}": value for name, value in extra.items()}},
            {"#state": "state", "#owner": "owner", **{f"#{name}": name for name in extra}})
        return done is not None

    def complete(self, key: str, *, owner: str, ref: str, now: datetime) -> bool:
        return self._finish_owned(key, owner, EntryState.DONE, now, {"ref": ref})

    def fail(self, key: str, *, owner: str, reason: str, now: datetime, permanent: bool) -> bool:
        state = EntryState.FAILED if permanent else EntryState.RETRY
        return self._finish_owned(key, owner, state, now, {"reason": reason})

    def record_skips(
        self, actions: Sequence[Action], *, now: datetime, rules_version: int | None = None,
    ) -> list[bool]:
        """One conditional put each: BatchWriteItem takes no conditions, and a transaction
        would fail whole on one row that exists already."""
        return [self.record_skip(a, reason=a.reason, now=now, rules_version=rules_version)
                for a in actions]

    def record_skip(
        self, action: Action, *, reason: str, now: datetime, owner: str | None = None,
        rules_version: int | None = None,
    ) -> bool:
        row = {**_new_row(action, EntryState.SKIPPED, now, rules_version), "reason": reason}
        if self._put(self._ledger, row, "attribute_not_exists(pk)"):
            return True
        if owner is None:
            return False
        return self._finish_owned(action.key, owner, EntryState.SKIPPED, now, {"reason": reason})

    def _queue_row(self, action: Action, now: datetime, reason: str,
                   rules_version: int | None) -> bool:
        row = {**_new_row(action, EntryState.RETRY, now, rules_version), "reason": reason,
               "attempts": 0}
        return self._put(self._ledger, row, "attribute_not_exists(pk)")

    def get(self, key: str) -> LedgerEntry | None:
        item = self._get(self._ledger, {"pk": key})
        return _entry(item) if item else None

    def action_payload(self, key: str) -> Action | None:
        item = self._get(self._ledger, {"pk": key})
        if item is None or not item.get("payload"):
            return None
        return _ACTION.validate_json(item["payload"])

    def _tenant_rows(self, tenant: str, invoice_id: str | None = None,
                     states: Iterable[EntryState] = ()) -> Iterator[Item]:
        condition = "tenant = :t"
        values: dict[str, Any] = {":t": tenant}
        kwargs: dict[str, Any] = {}
        if invoice_id is not None:
            condition += " AND begins_with(isk, :i)"
            values[":i"] = f"{invoice_id}#"
        wanted = [str(s) for s in states]
        if wanted:
            names = [f":s{n}" for n in range(len(wanted))]
            values.update(zip(names, wanted, strict=True))
            kwargs = {"FilterExpression": f"#state IN ({', '.join(names)})",
                      "ExpressionAttributeNames": {"#state": "state"}}
        return self._query(TableName=self._ledger, IndexName=TENANT_INDEX,
                           KeyConditionExpression=condition,
                           ExpressionAttributeValues=_ser(values), **kwargs)

    def history(
        self, tenant: str, invoice_ids: Iterable[str] | None = None
    ) -> dict[str, list[LedgerEntry]]:
        """One query per invoice for a handful (a webhook re-sync), else one for the tenant."""
        wanted = None if invoice_ids is None else set(invoice_ids)
        if wanted is not None and len(wanted) <= 20:
            rows: Iterable[Item] = (row for i in sorted(wanted)
                                    for row in self._tenant_rows(tenant, i))
        else:
            rows = self._tenant_rows(tenant)
        out: dict[str, list[LedgerEntry]] = {}
        for row in rows:
            if wanted is None or row["invoice_id"] in wanted:
                out.setdefault(row["invoice_id"], []).append(_entry(row))
        return out

    def unfinished(self, tenant: str) -> list[LedgerEntry]:
        """Through the sparse index: the cost follows the leftovers, not the ledger's age."""
        rows = self._query(TableName=self._ledger, IndexName=UNFINISHED_INDEX,
                           KeyConditionExpression="open_tenant = :t",
                           ExpressionAttributeValues=_ser({":t": tenant}))
        found = [_entry(row) for row in rows]
        # an index is eventually consistent: keep only rows still waiting for work
        return sorted((e for e in found if e.state in _UNFINISHED),
                      key=lambda e: (e.due_on, e.key))
