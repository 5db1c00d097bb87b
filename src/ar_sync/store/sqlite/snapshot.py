"""SQLiteStore's open-invoice snapshot, paid invoices and the quiet index (see sync/store.py).

Each snapshot row carries a version (`gen`) and, once a run found nothing to plan for it, a
quiet mark: no action can be due on the days [quiet_since, quiet_until) under the rules
`quiet_stamp` (planner.can_act). Triggers on the ledger bump the version and clear the mark of an
invoice whenever one of its ledger rows is inserted, updated or deleted, whoever writes it; a
new body does the same. So a no-change run reads, and plans, only the invoices that can have
something to do today, and the index can never outlive what it was computed from.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, timedelta
from typing import Any

from ar_sync.domain.models import Invoice, InvoiceStatus
from ar_sync.store.rows import invoices_from
from ar_sync.sync.store import PAID_RETENTION_DAYS, Snapshot, as_paid, with_kept_link

_QUIET_COLUMNS = {"gen": "INTEGER NOT NULL DEFAULT 0", "quiet_since": "TEXT",
                  "quiet_until": "TEXT", "quiet_stamp": "TEXT"}
_WAKE = ("UPDATE invoices SET gen = gen + 1, quiet_until = NULL"
         " WHERE connection_id = {row}.tenant AND id = {row}.invoice_id;")
_TRIGGERS = (
    f"CREATE TRIGGER IF NOT EXISTS ledger_wakes_inserted AFTER INSERT ON ledger"
    f" BEGIN {_WAKE.format(row='NEW')} END",
    f"CREATE TRIGGER IF NOT EXISTS ledger_wakes_updated AFTER UPDATE ON ledger"
    f" BEGIN {_WAKE.format(row='NEW')} {_WAKE.format(row='OLD')} END",
    f"CREATE TRIGGER IF NOT EXISTS ledger_wakes_deleted AFTER DELETE ON ledger"
    f" BEGIN {_WAKE.format(row='OLD')} END",
)
# quiet on `on` under `stamp`: NULL columns (no mark) never match
_QUIET = "quiet_stamp = ? AND quiet_since <= ? AND quiet_until > ?"
_UPSERT = (
    # a new row starts at a random version, so a row deleted and inserted again never
    # matches a version read before; an unchanged body keeps its version and its mark
    "INSERT INTO invoices (connection_id, id, body, gen) VALUES (?, ?, ?, random())"
    " ON CONFLICT(connection_id, id) DO UPDATE SET body = excluded.body,"
    " gen = invoices.gen + 1, quiet_until = NULL WHERE invoices.body IS NOT excluded.body")


_LINKS = ("SELECT id, json_extract(body, '$.payment_link') AS link FROM invoices"
          " WHERE connection_id = ? AND (link LIKE 'https://%' OR link LIKE 'http://%')")


def upgrade_snapshot(db: sqlite3.Connection) -> None:
    """Schema 4: the invoice version and quiet columns, and the ledger triggers."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(invoices)")}
    for name, kind in _QUIET_COLUMNS.items():
        if name not in columns:
            db.execute(f"ALTER TABLE invoices ADD COLUMN {name} {kind}")
    for statement in _TRIGGERS:
        db.execute(statement)


class SQLiteSnapshotMixin:
    """Mixed into SQLiteStore, which provides `_tx`, `_read` and `_query`."""

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - SQLiteStore's

    def _read(self) -> AbstractContextManager[sqlite3.Cursor]:
        raise NotImplementedError  # pragma: no cover - SQLiteStore's

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError  # pragma: no cover - SQLiteStore's

    def save_invoices(
        self, connection_id: str, invoices: Sequence[Invoice], *, replace_all: bool
    ) -> None:
        """Unchanged bodies are left alone (a daily full fetch keeps the quiet marks); a
        payment link resolved earlier is kept (with_kept_link)."""
        with self._tx() as db:
            links = dict(db.execute(_LINKS, (connection_id,)).fetchall())
            kept: set[str] = set()
            for inv in invoices:
                if inv.is_open:
                    kept.add(inv.id)
                    inv = with_kept_link(inv, links.get(inv.id))
                    db.execute(_UPSERT, (connection_id, inv.id, inv.model_dump_json()))
                    continue
                kept.discard(inv.id)
                db.execute("DELETE FROM invoices WHERE connection_id = ? AND id = ?",
                           (connection_id, inv.id))
                if inv.status == InvoiceStatus.PAID:
                    paid = as_paid(inv)
                    db.execute(
                        "INSERT INTO paid_invoices VALUES (?, ?, ?, ?) ON CONFLICT"
                        " (connection_id, id) DO UPDATE SET paid_on = excluded.paid_on,"
                        " body = excluded.body",
                        (connection_id, inv.id, str(paid.paid_at), paid.model_dump_json()))
            if replace_all:
                stored = db.execute("SELECT id FROM invoices WHERE connection_id = ?",
                                    (connection_id,)).fetchall()
                db.executemany("DELETE FROM invoices WHERE connection_id = ? AND id = ?",
                               [(connection_id, r[0]) for r in stored if r[0] not in kept])
            if invoices:  # age paid invoices out, on the platform's clock
                newest = max(i.updated_at for i in invoices).date()
                db.execute("DELETE FROM paid_invoices WHERE connection_id = ? AND paid_on < ?",
                           (connection_id, str(newest - timedelta(days=PAID_RETENTION_DAYS))))

    def paid_invoices(self, connection_id: str) -> list[Invoice]:
        rows = self._query("SELECT body FROM paid_invoices WHERE connection_id = ? ORDER BY id",
                           (connection_id,))
        return invoices_from(r["body"] for r in rows)

    def open_invoices(self, connection_id: str) -> list[Invoice]:
        rows = self._query("SELECT body FROM invoices WHERE connection_id = ? ORDER BY id",
                           (connection_id,))
        return invoices_from(r["body"] for r in rows)

    def active_invoices(self, connection_id: str, *, on: date, stamp: str) -> Snapshot:
        day = on.isoformat()
        with self._read() as db:  # one read transaction: the count matches the rows
            quiet = db.execute(f"SELECT count(*) FROM invoices WHERE connection_id = ?"  # noqa: S608
                               f" AND {_QUIET}", (connection_id, stamp, day, day)).fetchone()[0]
            rows = db.execute(f"SELECT id, body, gen FROM invoices WHERE connection_id = ?"  # noqa: S608
                              f" AND NOT coalesce({_QUIET}, 0) ORDER BY id",
                              (connection_id, stamp, day, day)).fetchall()
        return Snapshot(invoices_from(r[1] for r in rows), quiet, {r[0]: r[2] for r in rows})

    def save_quiet(self, connection_id: str, until: Mapping[str, date], *, since: date,
                   stamp: str, versions: Mapping[str, int]) -> int:
        marks = [(since.isoformat(), day.isoformat(), stamp, connection_id, invoice_id,
                  versions[invoice_id]) for invoice_id, day in until.items()
                 if invoice_id in versions]
        if not marks:
            return 0
        with self._tx() as db:
            return db.executemany(
                "UPDATE invoices SET quiet_since = ?, quiet_until = ?, quiet_stamp = ?"
                " WHERE connection_id = ? AND id = ? AND gen = ?", marks).rowcount
