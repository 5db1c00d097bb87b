"""The embedded store: one SQLite file holds the ledger, connections, encrypted tokens, OAuth
states, locks, checkpoints and run reports.

Every instance has its own connection, so two runners (threads or processes) on one file race
through SQLite's own locking exactly as two Lambda containers race through DynamoDB: claims are
`INSERT ... ON CONFLICT DO NOTHING`, takeovers and completions are compare-and-swap updates.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from ar_sync.domain.contacts import Contact
from ar_sync.domain.models import Action, ApplyLateFee, EntryState, LedgerEntry, WaiveFee
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.store.crypto import TokenCipher, local_cipher
from ar_sync.store.rows import ENTRY_COLUMNS, entries_from, ledger_entry
from ar_sync.store.sqlite.company import TRUST_SCHEMA, SQLiteTrustMixin, upgrade_ledger
from ar_sync.store.sqlite.snapshot import SQLiteSnapshotMixin, upgrade_snapshot
from ar_sync.sync.connector import Connection, TokenSet
from ar_sync.sync.ledger import Claim, ClaimOutcome
from ar_sync.sync.store import CAS_ATTEMPTS, Checkpoint, PendingAuth, StoreConflictError

# 2: payment_plans table; 3: rules_versions and pauses tables, ledger.rules_version (created
# or added on open; older files upgrade); 4: invoice versions, quiet marks, ledger triggers
SCHEMA_VERSION = 4
_ACTION = TypeAdapter(Action)
_LOOKUP_AT_MOST = 2000  # invoices whose history is read by lookups rather than a scan
_CHUNK = 500  # invoice ids per IN (...)
_BY_KEY = f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE key = ?"  # noqa: S608

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    key TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    invoice_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    state TEXT NOT NULL,
    due_on TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    ref TEXT,
    reason TEXT,
    amount TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until TEXT,
    payload TEXT,
    rules_version INTEGER
);
CREATE INDEX IF NOT EXISTS ledger_by_invoice ON ledger (tenant, invoice_id);
CREATE INDEX IF NOT EXISTS ledger_by_state ON ledger (tenant, state);
CREATE TABLE IF NOT EXISTS connections (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    connection_id TEXT PRIMARY KEY, version INTEGER NOT NULL, blob TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_auth (state TEXT PRIMARY KEY, body TEXT NOT NULL,
                                         expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL,
                                  expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (connection_id TEXT PRIMARY KEY, since TEXT,
                                        last_full_at TEXT);
CREATE TABLE IF NOT EXISTS invoices (connection_id TEXT NOT NULL, id TEXT NOT NULL,
                                     body TEXT NOT NULL, PRIMARY KEY (connection_id, id));
CREATE TABLE IF NOT EXISTS reports (connection_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS run_reports (connection_id TEXT NOT NULL, n INTEGER NOT NULL,
                                        body TEXT NOT NULL, PRIMARY KEY (connection_id, n));
CREATE TABLE IF NOT EXISTS contacts (connection_id TEXT NOT NULL, customer_id TEXT NOT NULL,
                                     body TEXT NOT NULL, PRIMARY KEY (connection_id, customer_id));
CREATE TABLE IF NOT EXISTS paid_invoices (connection_id TEXT NOT NULL, id TEXT NOT NULL,
    paid_on TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (connection_id, id));
CREATE TABLE IF NOT EXISTS payment_plans (connection_id TEXT NOT NULL, invoice TEXT NOT NULL,
                                          body TEXT NOT NULL, PRIMARY KEY (connection_id, invoice));
"""


KEEP_REPORTS = 50  # run reports kept per company for the console's list of runs


def default_data_dir() -> Path:
    """$AR_SYNC_HOME, else the XDG data folder (~/.local/share/ar-sync)."""
    if home := os.environ.get("AR_SYNC_HOME"):
        return Path(home)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ar-sync"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class SchemaVersionError(RuntimeError):
    pass


def _insert_skip(db: sqlite3.Connection, action: Action, reason: str, now: datetime,
                 rules_version: int | None) -> bool:
    """A `skipped` row for the action unless its key is there already."""
    return bool(db.execute(
        "INSERT INTO ledger (key, tenant, invoice_id, kind, rule, occurrence, state,"
        " due_on, updated_at, reason, payload, rules_version)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(key) DO NOTHING",
        (action.key, action.tenant, action.invoice_id, str(action.kind), action.rule,
         action.occurrence, EntryState.SKIPPED, action.due_on.isoformat(), _iso(now),
         reason, action.model_dump_json(), rules_version),
    ).rowcount)


class SQLiteStore(SQLiteSnapshotMixin, SQLiteTrustMixin):
    """The Store protocol on one SQLite file (WAL mode, safe for several runners)."""

    def __init__(
        self, path: Path | str | None = None, *, cipher: TokenCipher | None = None
    ) -> None:
        data_dir = default_data_dir()
        self.path = Path(path) if path is not None else data_dir / "ar-sync.db"
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cipher = cipher or local_cipher(self.path.parent if path else data_dir)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            str(self.path), timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout = 30000")
        if str(self.path) != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
            # Under WAL, NORMAL syncs at checkpoints, not at every commit: a power cut may
            # lose the last commits but never corrupts the file. A lost claim or completion
            # is recovered like a crash: every write carries its key to the platform
            # (idempotency key + marker), so the next run reconciles instead of rewriting.
            self._db.execute("PRAGMA synchronous = NORMAL")
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ----------------------------------------------------------------------- plumbing

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Cursor]:
        """One read transaction (a consistent snapshot), rows as plain tuples."""
        with self._lock:
            cursor = self._db.cursor()
            cursor.row_factory = None
            cursor.execute("BEGIN")
            try:
                yield cursor
            finally:
                cursor.execute("COMMIT")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken eagerly so compare-and-swap is atomic across runners."""
        with self._lock:
            if self._db.in_transaction:  # Ctrl-C between an earlier BEGIN and its try:
                self._db.execute("ROLLBACK")  # that write never happened; start clean
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._lock:
            self._db.executescript(_SCHEMA + TRUST_SCHEMA)  # idempotent: IF NOT EXISTS
        with self._tx() as db:
            upgrade_ledger(db)
            upgrade_snapshot(db)
            row = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row["value"]) > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{self.path} has schema version {row['value']}, newer than this ar-sync "
                    f"({SCHEMA_VERSION}): upgrade ar-sync"
                )
            elif int(row["value"]) < SCHEMA_VERSION:
                # older files only lack tables, which the script above has just created
                db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'",
                           (str(SCHEMA_VERSION),))

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def _entries(self, where: str, params: Iterable[Any]) -> list[LedgerEntry]:
        """Ledger entries as plain tuples, built without re-validation (store/rows.py)."""
        with self._lock:
            cursor = self._db.cursor()
            cursor.row_factory = None
            rows = cursor.execute(f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE {where}",  # noqa: S608
                                  tuple(params)).fetchall()
        return entries_from(rows)

    # ----------------------------------------------------------------------- ledger

    def claim(self, action: Action, *, owner: str, now: datetime, lease_seconds: float,
              rules_version: int | None = None) -> Claim:
        lease = _iso(now + timedelta(seconds=lease_seconds))
        amount = (str(action.amount.amount) if isinstance(action, ApplyLateFee | WaiveFee)
                  else None)
        with self._tx() as db:
            inserted = db.execute(
                "INSERT INTO ledger (key, tenant, invoice_id, kind, rule, occurrence, state,"
                " due_on, updated_at, amount, attempts, owner, lease_until, payload,"
                " rules_version) VALUES (?,?,?,?,?,?,?,?,?,?,1,?,?,?,?)"
                " ON CONFLICT(key) DO NOTHING",
                (action.key, action.tenant, action.invoice_id, str(action.kind), action.rule,
                 action.occurrence, EntryState.CLAIMED, action.due_on.isoformat(), _iso(now),
                 amount, owner, lease, action.model_dump_json(), rules_version),
            ).rowcount
            row = db.execute(_BY_KEY, (action.key,)).fetchone()
            if inserted:
                return Claim(ClaimOutcome.ACQUIRED, ledger_entry(row))
            entry = ledger_entry(row)
            if entry.state in (EntryState.DONE, EntryState.SKIPPED, EntryState.FAILED):
                return Claim(ClaimOutcome.FINISHED, entry)
            if entry.state == EntryState.CLAIMED and entry.lease_until and entry.lease_until > now:
                return Claim(ClaimOutcome.BUSY, entry)
            took = db.execute(
                "UPDATE ledger SET state = ?, owner = ?, lease_until = ?, updated_at = ?,"
                " attempts = attempts + 1 WHERE key = ? AND state = ? AND owner IS ?"
                " AND lease_until IS ?",
                (EntryState.CLAIMED, owner, lease, _iso(now), action.key, row["state"],
                 row["owner"], row["lease_until"]),
            ).rowcount
            row = db.execute(_BY_KEY, (action.key,)).fetchone()
            return Claim(ClaimOutcome.RECONCILE if took else ClaimOutcome.BUSY,
                         ledger_entry(row))

    def _finish(self, key: str, owner: str, now: datetime, state: EntryState,
                ref: str | None, reason: str | None) -> bool:
        with self._tx() as db:
            return bool(db.execute(
                "UPDATE ledger SET state = ?, ref = COALESCE(?, ref), reason = ?, updated_at = ?,"
                " lease_until = NULL WHERE key = ? AND state = ? AND owner = ?",
                (state, ref, reason, _iso(now), key, EntryState.CLAIMED, owner),
            ).rowcount)

    def complete(self, key: str, *, owner: str, ref: str, now: datetime) -> bool:
        return self._finish(key, owner, now, EntryState.DONE, ref, None)

    def fail(self, key: str, *, owner: str, reason: str, now: datetime, permanent: bool) -> bool:
        state = EntryState.FAILED if permanent else EntryState.RETRY
        return self._finish(key, owner, now, state, None, reason)

    def record_skip(
        self, action: Action, *, reason: str, now: datetime, owner: str | None = None,
        rules_version: int | None = None,
    ) -> bool:
        if owner is not None and self._finish(
            action.key, owner, now, EntryState.SKIPPED, None, reason
        ):
            return True
        with self._tx() as db:
            return _insert_skip(db, action, reason, now, rules_version)

    def record_skips(
        self, actions: Sequence[Action], *, now: datetime, rules_version: int | None = None,
    ) -> list[bool]:
        """All the skips in one transaction (one commit instead of thousands)."""
        with self._tx() as db:
            return [_insert_skip(db, a, a.reason, now, rules_version) for a in actions]

    def get(self, key: str) -> LedgerEntry | None:
        found = self._entries("key = ?", (key,))
        return found[0] if found else None

    def history(
        self, tenant: str, invoice_ids: Iterable[str] | None = None
    ) -> dict[str, list[LedgerEntry]]:
        wanted = None if invoice_ids is None else set(invoice_ids)
        if wanted is not None and len(wanted) <= _LOOKUP_AT_MOST:
            # a few invoices (a quiet run, a webhook): their rows through the invoice index
            ids = sorted(wanted)
            entries = [e for start in range(0, len(ids), _CHUNK) for e in self._entries(
                f"tenant = ? AND invoice_id IN ({','.join('?' * len(ids[start:start + _CHUNK]))})"
                " ORDER BY updated_at, key", (tenant, *ids[start:start + _CHUNK]))]
        else:
            # many: one indexed scan of the tenant beats thousands of lookups
            entries = self._entries("tenant = ? ORDER BY updated_at, key", (tenant,))
            if wanted is not None:
                entries = [e for e in entries if e.invoice_id in wanted]
        out: dict[str, list[LedgerEntry]] = {}
        for entry in entries:
            out.setdefault(entry.invoice_id, []).append(entry)
        return out

    def unfinished(self, tenant: str) -> list[LedgerEntry]:
        return self._entries("tenant = ? AND state IN (?, ?) ORDER BY due_on, key",
                             (tenant, EntryState.CLAIMED, EntryState.RETRY))

    def action_payload(self, key: str) -> Action | None:
        rows = self._query("SELECT payload FROM ledger WHERE key = ?", (key,))
        if not rows or rows[0]["payload"] is None:
            return None
        return _ACTION.validate_json(rows[0]["payload"])

    # ----------------------------------------------------------------------- connections

    def save_connection(self, connection: Connection) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO connections VALUES (?, ?) ON CONFLICT(id) DO UPDATE"
                       " SET body = excluded.body", (connection.id, connection.model_dump_json()))

    def get_connection(self, connection_id: str) -> Connection | None:
        rows = self._query("SELECT body FROM connections WHERE id = ?", (connection_id,))
        return Connection.model_validate_json(rows[0]["body"]) if rows else None

    def update_connection(self, connection_id: str,
                          changes: Mapping[str, Any]) -> Connection | None:
        for _ in range(CAS_ATTEMPTS):
            current = self.get_connection(connection_id)
            if current is None:
                return None
            updated = current.model_copy(update=dict(changes))
            with self._tx() as db:
                if db.execute("UPDATE connections SET body = ? WHERE id = ? AND body = ?",
                              (updated.model_dump_json(), connection_id,
                               current.model_dump_json())).rowcount:
                    return updated
        raise StoreConflictError(f"{connection_id}: the connection kept changing; try again")

    def list_connections(self) -> list[Connection]:
        return [Connection.model_validate_json(r["body"])
                for r in self._query("SELECT body FROM connections ORDER BY id")]

    # ----------------------------------------------------------------------- tokens

    def load_tokens(self, connection_id: str) -> TokenSet | None:
        rows = self._query("SELECT version, blob FROM tokens WHERE connection_id = ?",
                           (connection_id,))
        if not rows:
            return None
        tokens = self._cipher.decrypt(rows[0]["blob"], bound_to=connection_id)
        return tokens.model_copy(update={"version": rows[0]["version"]})

    def save_tokens(self, connection_id: str, tokens: TokenSet, *, expected_version: int) -> bool:
        version = expected_version + 1
        blob = self._cipher.encrypt(tokens.model_copy(update={"version": version}),
                                    bound_to=connection_id)
        with self._tx() as db:
            if expected_version < 0:
                return bool(db.execute(
                    "INSERT INTO tokens VALUES (?, ?, ?) ON CONFLICT(connection_id) DO NOTHING",
                    (connection_id, version, blob)).rowcount)
            return bool(db.execute(
                "UPDATE tokens SET version = ?, blob = ? WHERE connection_id = ? AND version = ?",
                (version, blob, connection_id, expected_version)).rowcount)

    # ----------------------------------------------------------------------- OAuth state

    def put_pending_auth(self, pending: PendingAuth, *, now: datetime | None = None,
                         limit_per_business: int | None = None) -> bool:
        body = json.dumps({"platform": pending.platform, "business_id": pending.business_id,
                           "code_verifier": pending.code_verifier})
        with self._tx() as db:  # BEGIN IMMEDIATE: the count and the insert are one step
            if limit_per_business is not None:
                live = db.execute(
                    "SELECT count(*) FROM pending_auth WHERE expires_at > ? AND "
                    "json_extract(body, '$.business_id') = ?",
                    (_iso(now) if now else "", pending.business_id)).fetchone()[0]
                if live >= limit_per_business:
                    return False
            db.execute("INSERT INTO pending_auth VALUES (?, ?, ?)",
                       (pending.state, body, _iso(pending.expires_at)))
        return True

    def take_pending_auth(self, state: str, *, now: datetime) -> PendingAuth | None:
        with self._tx() as db:
            row = db.execute("DELETE FROM pending_auth WHERE state = ? RETURNING body, expires_at",
                             (state,)).fetchone()
            db.execute("DELETE FROM pending_auth WHERE expires_at < ?", (_iso(now),))
        if row is None:
            return None
        expires_at = datetime.fromisoformat(row["expires_at"])
        if expires_at <= now:
            return None
        body = json.loads(row["body"])
        return PendingAuth(state=state, platform=body["platform"],
                           business_id=body["business_id"],
                           code_verifier=body["code_verifier"], expires_at=expires_at)

    # ----------------------------------------------------------------------- locks

    def acquire_lock(self, name: str, *, owner: str, now: datetime, ttl_seconds: float) -> bool:
        expires = _iso(now + timedelta(seconds=ttl_seconds))
        with self._tx() as db:
            return bool(db.execute(
                "INSERT INTO locks VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE"
                " SET owner = excluded.owner, expires_at = excluded.expires_at"
                " WHERE locks.expires_at <= ? OR locks.owner = excluded.owner",
                (name, owner, expires, _iso(now))).rowcount)

    def release_lock(self, name: str, *, owner: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

    # ----------------------------------------------------------------------- checkpoints

    def get_checkpoint(self, connection_id: str) -> Checkpoint:
        rows = self._query("SELECT since, last_full_at FROM checkpoints WHERE connection_id = ?",
                           (connection_id,))
        if not rows:
            return Checkpoint(since=None, last_full_at=None)
        return Checkpoint(since=_dt(rows[0]["since"]), last_full_at=_dt(rows[0]["last_full_at"]))

    def save_checkpoint(self, connection_id: str, checkpoint: Checkpoint) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?) ON CONFLICT(connection_id) DO UPDATE"
                " SET since = excluded.since, last_full_at = excluded.last_full_at",
                (connection_id, _iso(checkpoint.since), _iso(checkpoint.last_full_at)))

    def save_report(self, connection_id: str, report: dict[str, Any]) -> None:
        """The last report, and the run's place in the recent list (KEEP_REPORTS kept)."""
        body = json.dumps(report, default=str)
        with self._tx() as db:
            db.execute("INSERT INTO reports VALUES (?, ?) ON CONFLICT(connection_id) DO UPDATE"
                       " SET body = excluded.body", (connection_id, body))
            db.execute("INSERT INTO run_reports VALUES (?, (SELECT COALESCE(MAX(n), 0) + 1 FROM"
                       " run_reports WHERE connection_id = ?), ?)",
                       (connection_id, connection_id, body))
            db.execute("DELETE FROM run_reports WHERE connection_id = ? AND n <= (SELECT MAX(n)"
                       " FROM run_reports WHERE connection_id = ?) - ?",
                       (connection_id, connection_id, KEEP_REPORTS))

    def recent_reports(self, connection_id: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._query("SELECT body FROM run_reports WHERE connection_id = ? ORDER BY n DESC"
                           " LIMIT ?", (connection_id, limit))
        return [json.loads(r["body"]) for r in rows]

    def last_report(self, connection_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT body FROM reports WHERE connection_id = ?", (connection_id,))
        if not rows:
            return None
        report: dict[str, Any] = json.loads(rows[0]["body"])
        return report

    # ----------------------------------------------------------------------- payment plans

    def save_payment_plan(self, connection_id: str, plan: PaymentPlan) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO payment_plans VALUES (?, ?, ?) ON CONFLICT(connection_id,"
                       " invoice) DO UPDATE SET body = excluded.body",
                       (connection_id, plan.invoice, plan.model_dump_json()))

    def payment_plans(self, connection_id: str) -> list[PaymentPlan]:
        rows = self._query("SELECT body FROM payment_plans WHERE connection_id = ?"
                           " ORDER BY invoice", (connection_id,))
        return [PaymentPlan.model_validate_json(r["body"]) for r in rows]

    def delete_payment_plan(self, connection_id: str, invoice: str) -> bool:
        with self._tx() as db:
            return bool(db.execute(
                "DELETE FROM payment_plans WHERE connection_id = ? AND invoice = ?",
                (connection_id, invoice)).rowcount)

    # ----------------------------------------------------------------------- contacts

    def save_contact(self, contact: Contact) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO contacts VALUES (?, ?, ?) ON CONFLICT(connection_id,"
                       " customer_id) DO UPDATE SET body = excluded.body",
                       (contact.tenant, contact.customer_id, contact.model_dump_json()))

    def contacts(self, tenant: str) -> dict[str, Contact]:
        rows = self._query("SELECT body FROM contacts WHERE connection_id = ?", (tenant,))
        found = (Contact.model_validate_json(r["body"]) for r in rows)
        return {c.customer_id: c for c in found}
