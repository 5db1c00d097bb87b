"""The quiet index in the store: marks are kept per invoice under a stamp for a range of days,
and anything that changes the invoice or its ledger rows clears them (whoever writes)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ar_sync.domain.models import AddNote, Invoice, InvoiceStatus, action_key

D = date(2026, 12, 1)
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
STAMP = "q1:rules:-"


def note(tenant: str, invoice: str, rule: str = "r1") -> AddNote:
    return AddNote(key=action_key(tenant, "quickbooks", invoice, "note", rule, "once"),
                   tenant=tenant, platform="quickbooks", invoice_id=invoice,
                   invoice_number="1001", rule=rule, occurrence="once", due_on=D,
                   reason="due", text="Friendly reminder")


def _invoice(cid: str, n: int, balance: str = "100.00", status: str = "open") -> Invoice:
    return Invoice(platform="quickbooks", tenant=cid, id=f"inv-{n}", number=f"{1000 + n}",
                   customer_id="c1", customer_name="Acme", issue_date=date(2026, 10, 1),
                   due_date=date(2026, 11, 1), currency="USD", total=Decimal("100.00"),
                   balance=Decimal(balance), status=InvoiceStatus(status), updated_at=NOW)


def _ids(snapshot: Any) -> list[str]:
    return [i.id for i in snapshot.invoices]


def _marked(store: Any, cid: str, n: int = 3) -> Any:
    store.save_invoices(cid, [_invoice(cid, i) for i in range(n)], replace_all=True)
    first = store.active_invoices(cid, on=D, stamp=STAMP)
    until = {i.id: date(2026, 12, 10) for i in first.invoices}
    return first, store.save_quiet(cid, until, since=D, stamp=STAMP, versions=first.versions)


def test_every_open_invoice_is_active_until_marked(store: Any) -> None:
    cid = f"quickbooks:{uuid.uuid4()}"
    first, marked = _marked(store, cid)
    assert _ids(first) == ["inv-0", "inv-1", "inv-2"] and first.quiet == 0
    again = store.active_invoices(cid, on=D, stamp=STAMP)
    if marked == 0:  # a store without the index (DynamoDB, for now): always everything
        assert _ids(again) == _ids(first) and again.quiet == 0
        return
    assert marked == 3
    assert _ids(again) == [] and again.quiet == 3


def test_marks_hold_only_for_their_days_and_stamp(store: Any) -> None:
    cid = f"quickbooks:{uuid.uuid4()}"
    _, marked = _marked(store, cid)
    if marked == 0:
        return
    assert store.active_invoices(cid, on=date(2026, 12, 9), stamp=STAMP).quiet == 3
    for day, stamp in ((date(2026, 12, 10), STAMP), (date(2026, 11, 30), STAMP),
                       (D, "q1:other-rules:-")):
        later = store.active_invoices(cid, on=day, stamp=stamp)
        assert (_ids(later), later.quiet) == (["inv-0", "inv-1", "inv-2"], 0), (day, stamp)


def test_a_ledger_write_or_a_new_body_wakes_the_invoice(store: Any) -> None:
    cid = f"quickbooks:{uuid.uuid4()}"
    _, marked = _marked(store, cid, 4)
    if marked == 0:
        return
    store.record_skip(note(cid, "inv-0"), reason="x", now=NOW)  # a ledger insert
    store.save_invoices(cid, [_invoice(cid, 1, balance="60.00")], replace_all=False)
    store.save_invoices(cid, [_invoice(cid, 2)], replace_all=False)  # same body: stays quiet
    got = store.active_invoices(cid, on=D, stamp=STAMP)
    assert _ids(got) == ["inv-0", "inv-1"] and got.quiet == 2
    # a daily full fetch with the same bodies keeps the marks; a claim's completion wakes
    _, again = _marked(store, cid, 4)
    assert again == 2 and store.active_invoices(cid, on=D, stamp=STAMP).quiet == 4
    claimed = note(cid, "inv-3", rule="r2")
    store.claim(claimed, owner="me", now=NOW, lease_seconds=60)
    _, _ = _marked(store, cid, 4)  # marks inv-3 again after its claim...
    store.complete(claimed.key, owner="me", ref="r", now=NOW)  # ...an update wakes it
    assert _ids(store.active_invoices(cid, on=D, stamp=STAMP)) == ["inv-3"]


def test_a_mark_computed_from_stale_reads_is_refused(store: Any) -> None:
    cid = f"quickbooks:{uuid.uuid4()}"
    store.save_invoices(cid, [_invoice(cid, i) for i in range(2)], replace_all=True)
    read = store.active_invoices(cid, on=D, stamp=STAMP)
    # between the read and the mark: a ledger row for inv-0; inv-1 closed and opened again
    store.record_skip(note(cid, "inv-0"), reason="x", now=NOW)
    store.save_invoices(cid, [_invoice(cid, 1, "0.00", "paid")], replace_all=False)
    store.save_invoices(cid, [_invoice(cid, 1)], replace_all=False)
    until = {i.id: date(2026, 12, 10) for i in read.invoices}
    assert store.save_quiet(cid, until, since=D, stamp=STAMP, versions=read.versions) == 0
    assert _ids(store.active_invoices(cid, on=D, stamp=STAMP)) == ["inv-0", "inv-1"]


def test_replace_all_still_drops_what_the_fetch_no_longer_has(store: Any) -> None:
    cid = f"quickbooks:{uuid.uuid4()}"
    _marked(store, cid, 3)
    store.save_invoices(cid, [_invoice(cid, 0), _invoice(cid, 2, "0.00", "paid")],
                        replace_all=True)
    assert [i.id for i in store.open_invoices(cid)] == ["inv-0"]
    got = store.active_invoices(cid, on=D, stamp=STAMP)
    assert len(got.invoices) + got.quiet == 1


def test_a_schema_3_sqlite_file_gains_the_quiet_columns_and_triggers(tmp_path: Any) -> None:
    import sqlite3

    from ar_sync.store.crypto import TokenCipher
    from ar_sync.store.sqlite.store import SQLiteStore

    path = tmp_path / "old.db"
    cipher = TokenCipher(TokenCipher.generate_key())
    cid = "quickbooks:old"
    old = SQLiteStore(path, cipher=cipher)
    old.save_invoices(cid, [_invoice(cid, 0)], replace_all=True)
    old.close()
    raw = sqlite3.connect(path)  # what an ar-sync of schema 3 wrote
    for trigger in ("inserted", "updated", "deleted"):
        raw.execute(f"DROP TRIGGER ledger_wakes_{trigger}")
    for column in ("gen", "quiet_since", "quiet_until", "quiet_stamp"):
        raw.execute(f"ALTER TABLE invoices DROP COLUMN {column}")
    raw.execute("UPDATE meta SET value = '3' WHERE name = 'schema_version'")
    raw.commit()
    raw.close()
    store = SQLiteStore(path, cipher=cipher)
    _, marked = _marked(store, cid, 1)
    assert marked == 1 and store.active_invoices(cid, on=D, stamp=STAMP).quiet == 1
    store.record_skip(note(cid, "inv-0"), reason="x", now=NOW)
    assert _ids(store.active_invoices(cid, on=D, stamp=STAMP)) == ["inv-0"]
