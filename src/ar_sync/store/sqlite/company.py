"""SQLiteStore's rule versions, pauses and queued requests (see sync/company_store.py)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any

from ar_sync.domain.models import Action, EntryState, WaiveFee
from ar_sync.domain.pauses import Pause
from ar_sync.store.crypto import SecretCipher
from ar_sync.sync.company_store import CompanyMail, RulesVersion, StoredPause, matching_pauses

TRUST_SCHEMA = """
CREATE TABLE IF NOT EXISTS rules_versions (connection_id TEXT NOT NULL, version INTEGER NOT NULL,
    text TEXT NOT NULL, source TEXT NOT NULL, created_at TEXT NOT NULL, note TEXT NOT NULL,
    PRIMARY KEY (connection_id, version));
CREATE TABLE IF NOT EXISTS pauses (connection_id TEXT NOT NULL, id TEXT NOT NULL,
    body TEXT NOT NULL, since TEXT NOT NULL, resumed_on TEXT,
    PRIMARY KEY (connection_id, id));
CREATE TABLE IF NOT EXISTS company_mail (connection_id TEXT PRIMARY KEY, blob TEXT NOT NULL);
"""


def mail_row_id(connection_id: str) -> str:
    """What a company's sealed mail settings are bound to (never a token row's id)."""
    return f"mail:{connection_id}"



def upgrade_ledger(db: sqlite3.Connection) -> None:
    """Schema 3: ledger rows record the rules version that planned them."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(ledger)")}
    if "rules_version" not in columns:
        db.execute("ALTER TABLE ledger ADD COLUMN rules_version INTEGER")


def _version(r: sqlite3.Row) -> RulesVersion:
    return RulesVersion(version=r["version"], text=r["text"], source=r["source"],
                        created_at=datetime.fromisoformat(r["created_at"]), note=r["note"])


class SQLiteTrustMixin:
    """Mixed into SQLiteStore, which provides `_tx`, `_query` and `_cipher`."""

    _cipher: SecretCipher

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - SQLiteStore's

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError  # pragma: no cover - SQLiteStore's

    def apply_rules(self, connection_id: str, text: str, *, source: str, now: datetime,
                    note: str = "") -> int:
        with self._tx() as db:  # BEGIN IMMEDIATE: two applies get distinct numbers
            row = db.execute("SELECT MAX(version) AS v FROM rules_versions WHERE"
                             " connection_id = ?", (connection_id,)).fetchone()
            version = int(row["v"] or 0) + 1
            db.execute("INSERT INTO rules_versions VALUES (?, ?, ?, ?, ?, ?)",
                       (connection_id, version, text, source, now.isoformat(), note))
        return version

    def rules_versions(self, connection_id: str) -> list[RulesVersion]:
        rows = self._query("SELECT * FROM rules_versions WHERE connection_id = ? ORDER BY"
                           " version", (connection_id,))
        return [_version(r) for r in rows]

    def current_rules(self, connection_id: str) -> RulesVersion | None:
        rows = self._query("SELECT * FROM rules_versions WHERE connection_id = ? ORDER BY"
                           " version DESC LIMIT 1", (connection_id,))
        return _version(rows[0]) if rows else None

    def add_pause(self, connection_id: str, pause: Pause) -> str:
        pause_id = uuid.uuid4().hex[:12]
        with self._tx() as db:
            db.execute("INSERT INTO pauses VALUES (?, ?, ?, ?, NULL)",
                       (connection_id, pause_id, pause.model_dump_json(),
                        pause.since.isoformat()))
        return pause_id

    def list_pauses(self, connection_id: str) -> list[StoredPause]:
        rows = self._query("SELECT * FROM pauses WHERE connection_id = ? ORDER BY since, id",
                           (connection_id,))
        return [StoredPause(id=r["id"], pause=Pause.model_validate_json(r["body"]),
                            resumed_on=date.fromisoformat(r["resumed_on"])
                            if r["resumed_on"] else None) for r in rows]

    def end_pauses(self, connection_id: str, *, invoice_id: str | None = None,
                   customer_id: str | None = None, on: date) -> int:
        ended = 0
        for stored in matching_pauses(self.list_pauses(connection_id), invoice_id, customer_id, on):
            with self._tx() as db:
                ended += db.execute(
                    "UPDATE pauses SET resumed_on = ? WHERE connection_id = ? AND id = ?"
                    " AND resumed_on IS NULL", (on.isoformat(), connection_id, stored.id)
                ).rowcount
        return ended

    def save_company_mail(self, connection_id: str, mail: CompanyMail) -> None:
        blob = self._cipher.seal(mail.model_dump(), bound_to=mail_row_id(connection_id))
        with self._tx() as db:
            db.execute("INSERT INTO company_mail VALUES (?, ?) ON CONFLICT(connection_id)"
                       " DO UPDATE SET blob = excluded.blob", (connection_id, blob))

    def company_mail(self, connection_id: str) -> CompanyMail | None:
        rows = self._query("SELECT blob FROM company_mail WHERE connection_id = ?",
                           (connection_id,))
        if not rows:
            return None
        return CompanyMail.model_validate(
            self._cipher.unseal(rows[0]["blob"], bound_to=mail_row_id(connection_id)))

    def queue_action(self, action: Action, *, reason: str, now: datetime,
                     rules_version: int | None = None) -> bool:
        amount = str(action.amount.amount) if isinstance(action, WaiveFee) else None
        with self._tx() as db:
            return bool(db.execute(
                "INSERT INTO ledger (key, tenant, invoice_id, kind, rule, occurrence, state,"
                " due_on, updated_at, reason, amount, attempts, payload, rules_version)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,0,?,?) ON CONFLICT(key) DO NOTHING",
                (action.key, action.tenant, action.invoice_id, str(action.kind), action.rule,
                 action.occurrence, EntryState.RETRY, action.due_on.isoformat(),
                 now.isoformat(), reason, amount, action.model_dump_json(), rules_version),
            ).rowcount)

