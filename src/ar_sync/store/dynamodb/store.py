"""The Store on DynamoDB, for the serverless deployment.

Three tables (the same definitions are in serverless.yml; a test keeps the two in step):

- tenants  (pk, sk): `CONNECTIONS` / <connection id>  a connection (one partition, so listing
           is a strongly consistent query); `inv#<id>` / <invoice id> the open-invoice
           snapshot (with the invoice's ledger summary); `paid#<id>` / <invoice id> a paid
           invoice for the reports (TTL after PAID_RETENTION_DAYS); `conn#<id>` / `tokens`
           the Fernet-encrypted token set with a plain `version` for versioned writes;
           `conn#<id>` / `checkpoint`; `conn#<id>` / `report` the last run report;
           `oauth#<sha256(state)>` / `pending` a single-use OAuth state (deleted with a
           condition; DynamoDB TTL sweeps expired ones); `plan#<id>` / <invoice> a payment
           plan (JSON); `rules#<id>` / <version, zero-padded> a rules version; `pause#<id>` /
           <pause id> a pause (store/dynamodb/company.py).
- ledger   (pk = action key): one row per action; rows recorded for good age out by TTL
           after the retention, the per-invoice summary (`done` on the snapshot item) being
           the long-term record (store/dynamodb/ledger.py).
- locks    (pk = lock name): owner + lease as epoch seconds; conditional put, TTL `expires_at`.

Tables have point-in-time recovery; TTL attribute `expires_at` (epoch seconds) where it fits.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from ar_sync.domain.contacts import Contact
from ar_sync.domain.models import Invoice, InvoiceStatus
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.store.crypto import SecretCipher
from ar_sync.store.dynamodb.codec import (
    SUMMARY,
    SUMMARY_COMPLETE,
    TTL_ATTRIBUTE,
    Item,
    conditional_failed,
    decode,
    encode,
    epoch_seconds,
    iso,
    when_of,
)
from ar_sync.store.dynamodb.company import DynamoDBTrustMixin
from ar_sync.store.dynamodb.ledger import (
    LEDGER_RETENTION_DAYS,
    TENANT_INDEX,
    UNFINISHED_INDEX,
    DynamoDBLedgerMixin,
)
from ar_sync.store.rows import invoices_from
from ar_sync.sync.connector import Connection, TokenSet
from ar_sync.sync.store import (
    CAS_ATTEMPTS,
    PAID_RETENTION_DAYS,
    Checkpoint,
    PendingAuth,
    Snapshot,
    StoreConflictError,
    as_paid,
    with_kept_link,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CONNECTIONS_PK = "CONNECTIONS"
MAX_REPORT_BYTES = 300_000  # DynamoDB items stop at 400 KB
REPORT_RETENTION_SECONDS = 30 * 86400  # `runs#<id>` items: the console's list of runs


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()




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
    for name in (tenants, ledger, locks):
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE})


# ----------------------------------------------------------------------------- the store


class DynamoDBStore(DynamoDBLedgerMixin, DynamoDBTrustMixin):
    """Store protocol on three DynamoDB tables; tokens encrypted with `cipher` before writing."""

    def __init__(
        self,
        *,
        tenants_table: str,
        ledger_table: str,
        locks_table: str,
        cipher: SecretCipher,
        client: DynamoDBClient | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        retention_days: int = LEDGER_RETENTION_DAYS,
    ) -> None:
        """`retention_days`: how long a ledger row recorded for good is kept (TTL)."""
        if client is None:
            import boto3

            client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=region_name)
        self._db = client  # boto3 clients are thread-safe; resources are not
        self._tenants = tenants_table
        self._ledger = ledger_table
        self._locks = locks_table
        self._cipher = cipher
        self._retention = timedelta(days=retention_days)
        self._summaries = {}

    def __repr__(self) -> str:
        return f"DynamoDBStore(tenants={self._tenants!r}, ledger={self._ledger!r})"

    # connections -----------------------------------------------------------------------
    def save_connection(self, connection: Connection) -> None:
        self._put(self._tenants, {"pk": CONNECTIONS_PK, "sk": connection.id,
                                  "data": connection.model_dump_json()})

    def get_connection(self, connection_id: str) -> Connection | None:
        item = self._get(self._tenants, {"pk": CONNECTIONS_PK, "sk": connection_id})
        return Connection.model_validate_json(item["data"]) if item else None

    def update_connection(self, connection_id: str,
                          changes: Mapping[str, Any]) -> Connection | None:
        key = {"pk": CONNECTIONS_PK, "sk": connection_id}
        for _ in range(CAS_ATTEMPTS):
            current = self.get_connection(connection_id)
            if current is None:
                return None
            updated = current.model_copy(update=dict(changes))
            if self._update(self._tenants, key, "SET #d = :new", "#d = :old",
                            {":new": updated.model_dump_json(),
                             ":old": current.model_dump_json()},
                            {"#d": "data"}) is not None:
                return updated
        raise StoreConflictError(f"{connection_id}: the connection kept changing; try again")

    def list_connections(self) -> list[Connection]:
        items = self._query(
            TableName=self._tenants, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=encode({":pk": CONNECTIONS_PK}), ConsistentRead=True)
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
                "code_verifier": pending.code_verifier, "expires": iso(pending.expires_at),
                TTL_ATTRIBUTE: math.ceil(pending.expires_at.timestamp())}
        if limit_per_business is None:
            return self._put(self._tenants, item, "attribute_not_exists(pk)")
        moment = math.floor((now or datetime.now(UTC)).timestamp())
        owner = _state_hash(pending.business_id)
        for slot in range(limit_per_business):
            slot_key = {"pk": f"oauthslot#{owner}", "sk": str(slot)}
            try:
                self._db.transact_write_items(TransactItems=[
                    {"Put": {"TableName": self._tenants, "Item": encode({**item, "slot": slot}),
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Put": {"TableName": self._tenants,
                             "Item": encode({**slot_key, "state": digest,
                                           TTL_ATTRIBUTE: item[TTL_ATTRIBUTE]}),
                             "ConditionExpression": "attribute_not_exists(pk) OR #e <= :now",
                             "ExpressionAttributeNames": {"#e": TTL_ATTRIBUTE},
                             "ExpressionAttributeValues": encode({":now": moment})}}])
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
                Key=encode({"pk": f"oauth#{_state_hash(state)}", "sk": "pending"}),
                ConditionExpression="attribute_exists(pk)", ReturnValues="ALL_OLD")
        except ClientError as exc:
            if conditional_failed(exc):
                return None
            raise
        item = decode(out.get("Attributes", {}))
        if "slot" in item:  # free the business's slot, unless a newer flow already took it
            slot_key = {"pk": f"oauthslot#{_state_hash(item['business_id'])}",
                        "sk": str(item["slot"])}
            try:
                self._db.delete_item(TableName=self._tenants, Key=encode(slot_key),
                                     ConditionExpression="#s = :s",
                                     ExpressionAttributeNames={"#s": "state"},
                                     ExpressionAttributeValues=encode({":s": _state_hash(state)}))
            except ClientError as exc:
                if not conditional_failed(exc):
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
            {"pk": name, "owner": owner, "lease_until": epoch_seconds(until),
             TTL_ATTRIBUTE: math.ceil(until.timestamp())},
            "attribute_not_exists(pk) OR lease_until <= :now OR #owner = :owner",
            {":now": epoch_seconds(now), ":owner": owner}, {"#owner": "owner"})

    def release_lock(self, name: str, *, owner: str) -> None:
        try:
            self._db.delete_item(
                TableName=self._locks, Key=encode({"pk": name}),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues=encode({":owner": owner}))
        except ClientError as exc:
            if not conditional_failed(exc):  # not ours (any more): leave it
                raise

    # the open-invoice snapshot -----------------------------------------------------------
    def _snapshot(self, connection_id: str) -> Iterator[Item]:
        return self._query(
            TableName=self._tenants, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=encode({":pk": f"inv#{connection_id}"}), ConsistentRead=True)

    def save_invoices(
        self, connection_id: str, invoices: Sequence[Invoice], *, replace_all: bool
    ) -> None:
        """One item per open invoice under `inv#<connection>`; closed ones are deleted, a paid
        one kept under `paid#<connection>` for the reports. An item's ledger summary goes
        with its invoice: onto the rewritten item, onto the paid item, and back from the paid
        item when the invoice reopens. An invoice that did not change is not written again."""
        pk, paid_pk = f"inv#{connection_id}", f"paid#{connection_id}"
        latest = {inv.id: inv for inv in invoices}  # last one wins, as in a sequence of upserts
        keep = {i for i, inv in latest.items() if inv.is_open}
        drop = set(latest) - keep
        if replace_all:
            current = {item["sk"]: item for item in self._snapshot(connection_id)}
            drop |= set(current) - keep
        else:
            current = {item["sk"]: item
                       for item in self._batch_get([{"pk": pk, "sk": i} for i in sorted(latest)])}
        paid = {i for i in drop if i in latest and latest[i].status == InvoiceStatus.PAID}
        elsewhere = sorted((keep | paid) - set(current))  # new, reopened, or paid before
        earlier = {item["sk"]: item for item in
                   self._batch_get([{"pk": paid_pk, "sk": i} for i in elsewhere])}

        def summary(i: str) -> Item:
            old = current.get(i) or earlier.get(i)
            if old is None:  # a new invoice: nothing recorded for it yet
                return {SUMMARY_COMPLETE: 1}
            return {SUMMARY: old.get(SUMMARY), SUMMARY_COMPLETE: old.get(SUMMARY_COMPLETE)}

        requests: list[dict[str, Any]] = []
        for i in sorted(keep):
            old = current.get(i)
            kept = latest[i]
            if old is not None and '"payment_link":"http' in str(old.get("data") or ""):
                kept = with_kept_link(kept, json.loads(old["data"]).get("payment_link"))
            data = kept.model_dump_json()
            if old is not None and old.get("data") == data and SUMMARY_COMPLETE in old:
                continue  # unchanged
            requests.append({"PutRequest": {"Item": encode({"pk": pk, "sk": i, "data": data,
                                                          **summary(i)})}})
        requests += [{"DeleteRequest": {"Key": encode({"pk": pk, "sk": i})}}
                     for i in sorted(drop) if i in current or not replace_all]
        # Paid invoices stay for the report, aged out by TTL after PAID_RETENTION_DAYS.
        for i in sorted(paid):
            closed = as_paid(latest[i])
            expires = datetime.combine(closed.paid_at or date.min, datetime.min.time(),
                                       tzinfo=UTC)
            requests.append({"PutRequest": {"Item": encode({
                "pk": paid_pk, "sk": i, "data": closed.model_dump_json(), **summary(i),
                TTL_ATTRIBUTE: int((expires + timedelta(days=PAID_RETENTION_DAYS))
                                  .timestamp())})}})
        self._batch_write(requests)

    def paid_invoices(self, connection_id: str) -> list[Invoice]:
        items = self._query(
            TableName=self._tenants, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=encode({":pk": f"paid#{connection_id}"}))
        return invoices_from(item["data"] for item in items)

    def open_invoices(self, connection_id: str) -> list[Invoice]:
        """The snapshot; its ledger summaries are kept for finished_rows (no extra call)."""
        items = list(self._snapshot(connection_id))
        self._remember_summaries(connection_id, items)
        return invoices_from(item["data"] for item in items)

    def active_invoices(self, connection_id: str, *, on: date, stamp: str) -> Snapshot:
        """Every open invoice: DynamoDB keeps no quiet marks (each would be a write per invoice
        per run); its per-invoice summaries (finished_rows, read with the snapshot) let a run
        read ledger rows only for the invoices can_act.may_act names instead."""
        return Snapshot(self.open_invoices(connection_id))

    def save_quiet(self, connection_id: str, until: Mapping[str, date], *, since: date,
                   stamp: str, versions: Mapping[str, int]) -> int:
        return 0

    # checkpoints and reports -------------------------------------------------------------
    def get_checkpoint(self, connection_id: str) -> Checkpoint:
        item = self._get(self._tenants, {"pk": f"conn#{connection_id}", "sk": "checkpoint"})
        if item is None:
            return Checkpoint(since=None, last_full_at=None)
        return Checkpoint(since=when_of(item.get("since")),
                          last_full_at=when_of(item.get("last_full_at")))

    def save_checkpoint(self, connection_id: str, checkpoint: Checkpoint) -> None:
        self._put(self._tenants, {
            "pk": f"conn#{connection_id}", "sk": "checkpoint",
            "since": iso(checkpoint.since) if checkpoint.since else None,
            "last_full_at": iso(checkpoint.last_full_at) if checkpoint.last_full_at else None,
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
        started = str(report.get("started_at") or iso(datetime.now(UTC)))
        self._put(self._tenants, {"pk": f"runs#{connection_id}", "sk": started, "json": body,
                                  TTL_ATTRIBUTE: int(time.time()) + REPORT_RETENTION_SECONDS})

    def recent_reports(self, connection_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """Newest first; each kept REPORT_RETENTION_SECONDS (TTL)."""
        page = self._db.query(  # one page: the newest `limit`, never the whole history
            TableName=self._tenants, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=encode({":pk": f"runs#{connection_id}"}),
            ScanIndexForward=False, Limit=limit)
        return [cast(dict[str, Any], json.loads(decode(i)["json"])) for i in page.get("Items", [])]

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
            ExpressionAttributeValues=encode({":pk": f"plan#{connection_id}"}), ConsistentRead=True)
        return [PaymentPlan.model_validate_json(item["data"]) for item in items]

    def delete_payment_plan(self, connection_id: str, invoice: str) -> bool:
        out = self._db.delete_item(
            TableName=self._tenants, Key=encode({"pk": f"plan#{connection_id}", "sk": invoice}),
            ReturnValues="ALL_OLD")
        return bool(out.get("Attributes"))

    # contacts (e-mail override, opt-out, bounces) ------------------------------------------
    def save_contact(self, contact: Contact) -> None:
        self._put(self._tenants, {"pk": f"contact#{contact.tenant}", "sk": contact.customer_id,
                                  "data": contact.model_dump_json()})

    def contacts(self, tenant: str) -> dict[str, Contact]:
        items = self._query(
            TableName=self._tenants, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=encode({":pk": f"contact#{tenant}"}), ConsistentRead=True)
        found = (Contact.model_validate_json(item["data"]) for item in items)
        return {c.customer_id: c for c in found}


__all__ = ["LEDGER_RETENTION_DAYS", "TENANT_INDEX", "TTL_ATTRIBUTE", "UNFINISHED_INDEX",
           "DynamoDBStore", "create_tables", "table_definitions"]
