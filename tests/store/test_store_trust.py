"""Rule versions, pauses, queued waivers and connection go-live/mode behave the same on SQLite
and DynamoDB (issue 12's store part)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ar_sync.domain.models import EntryState, Money, WaiveFee, action_key
from ar_sync.domain.pauses import Pause
from ar_sync.sync.company_store import planner_pauses
from ar_sync.sync.connector import Connection
from ar_sync.sync.ledger import ClaimOutcome

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
D0 = date(2026, 11, 27)


def _tenant() -> str:
    return f"xero:{uuid.uuid4().hex[:8]}"


def waiver(tenant: str, invoice: str = "inv-1") -> WaiveFee:
    fee_key = action_key(tenant, "xero", invoice, "late_fee", "fee", "2026-10")
    return WaiveFee(key=action_key(tenant, "xero", invoice, "waive_fee", "waive", fee_key),
                    tenant=tenant, platform="xero", invoice_id=invoice, invoice_number="INV-1",
                    rule="fee", occurrence="2026-10", due_on=D0, reason="customer disputes",
                    fee_key=fee_key, amount=Money.of("15.00", "GBP"), label="Late fee")


def test_rules_versions_are_numbered_append_only_and_per_tenant(store: Any) -> None:
    a, b = _tenant(), _tenant()
    assert store.current_rules(a) is None and store.rules_versions(a) == []
    assert store.apply_rules(a, "version: 1\n", source="default", now=T0) == 1
    assert store.apply_rules(a, "version: 1\n# two\n", source="firm.yaml", now=T0) == 2
    assert store.apply_rules(b, "version: 1\n", source="gentle", now=T0) == 1
    assert store.apply_rules(a, "version: 1\n", source="default", now=T0 + timedelta(1),
                             note="rollback to version 1") == 3
    history = store.rules_versions(a)
    assert [v.version for v in history] == [1, 2, 3]
    assert [v.source for v in history] == ["default", "firm.yaml", "default"]
    assert history[1].text == "version: 1\n# two\n"
    current = store.current_rules(a)
    assert current.version == 3 and current.note == "rollback to version 1"
    assert current.created_at == T0 + timedelta(1)
    assert store.current_rules(b).source == "gentle"


def test_concurrent_applies_never_share_a_version_number(store: Any) -> None:
    tenant = _tenant()
    got: list[int] = []
    barrier = threading.Barrier(4)

    def apply(i: int) -> None:
        barrier.wait()
        got.append(store.apply_rules(tenant, f"# {i}\n", source=f"f{i}", now=T0))

    threads = [threading.Thread(target=apply, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [1, 2, 3, 4]
    assert sorted(v.text for v in store.rules_versions(tenant)) == [f"# {i}\n" for i in range(4)]


def test_pauses_are_stored_listed_and_resumed_not_deleted(store: Any) -> None:
    tenant = _tenant()
    inv = Pause(invoice_id="inv-1", until=date(2026, 12, 31), reason="dispute", since=D0,
                note="customer says goods damaged")
    cust = Pause(customer_id="c-9", reason="promise", since=D0 - timedelta(3),
                 until=D0 + timedelta(10))
    first = store.add_pause(tenant, inv)
    second = store.add_pause(tenant, cust)
    assert first != second
    listed = store.list_pauses(tenant)
    assert [s.pause for s in listed] == [cust, inv]  # oldest first
    assert all(s.resumed_on is None for s in listed)
    assert store.list_pauses(_tenant()) == []

    later = D0 + timedelta(5)
    assert store.end_pauses(tenant, invoice_id="inv-1", on=later) == 1
    assert store.end_pauses(tenant, invoice_id="inv-1", on=later) == 0  # already resumed
    assert store.end_pauses(tenant, customer_id="nobody", on=later) == 0
    stored = {s.id: s for s in store.list_pauses(tenant)}
    assert stored[first].resumed_on == later and stored[second].resumed_on is None
    # the planner sees the paused period, ended the day before the resume
    effective = {p.invoice_id or p.customer_id: p for p in planner_pauses(stored.values())}
    assert effective["inv-1"].until == later - timedelta(1)
    assert effective["c-9"].until == D0 + timedelta(10)
    assert not stored[first].active_on(later) and stored[first].active_on(later - timedelta(1))


def test_a_pause_resumed_the_day_it_began_pauses_nothing(store: Any) -> None:
    tenant = _tenant()
    store.add_pause(tenant, Pause(invoice_id="inv-2", reason="other", since=D0))
    assert store.end_pauses(tenant, invoice_id="inv-2", on=D0) == 1
    assert planner_pauses(store.list_pauses(tenant)) == []


def test_a_queued_waiver_waits_as_a_leftover_and_is_claimed_once(store: Any) -> None:
    tenant = _tenant()
    w = waiver(tenant)
    assert store.queue_action(w, reason="requested by the bookkeeper", now=T0,
                              rules_version=2) is True
    assert store.queue_action(w, reason="again", now=T0) is False  # one row per key
    [row] = store.unfinished(tenant)
    assert row.key == w.key and row.state == EntryState.RETRY and row.attempts == 0
    assert row.kind == "waive_fee" and str(row.amount) == "15.00" and row.rules_version == 2
    assert store.action_payload(w.key) == w
    # the next run takes it over: RECONCILE, so the connector looks on the platform first
    claim = store.claim(w, owner="run-1", now=T0, lease_seconds=60)
    assert claim.outcome == ClaimOutcome.RECONCILE
    assert store.claim(w, owner="run-2", now=T0, lease_seconds=60).outcome == ClaimOutcome.BUSY
    assert store.complete(w.key, owner="run-1", ref="CreditNote:1", now=T0)
    assert store.claim(w, owner="run-3", now=T0, lease_seconds=60).outcome == \
        ClaimOutcome.FINISHED
    assert store.queue_action(w, reason="third time", now=T0) is False
    assert store.unfinished(tenant) == []


def test_ledger_rows_record_the_rules_version_that_planned_them(store: Any) -> None:
    tenant = _tenant()
    w = waiver(tenant, "inv-7")
    store.claim(w, owner="run-1", now=T0, lease_seconds=60, rules_version=4)
    assert store.get(w.key).rules_version == 4
    other = waiver(tenant, "inv-8")
    store.record_skip(other, reason="superseded", now=T0, rules_version=5)
    assert store.get(other.key).rules_version == 5
    plain = waiver(tenant, "inv-9")
    store.claim(plain, owner="run-1", now=T0, lease_seconds=60)
    assert store.get(plain.key).rules_version is None
    assert store.history(tenant)["inv-7"][0].rules_version == 4


def test_connection_go_live_and_mode_round_trip(store: Any) -> None:
    cid = _tenant()
    conn = Connection(id=cid, platform="xero", external_id=cid[5:], created_at=T0)
    store.save_connection(conn)
    got = store.get_connection(cid)
    assert got.mode == "live" and got.go_live is None and got.live_from() == T0.date()
    store.save_connection(got.model_copy(update={"mode": "preview",
                                                 "go_live": date(2026, 12, 1)}))
    got = store.get_connection(cid)
    assert got.mode == "preview" and got.live_from() == date(2026, 12, 1)


def test_a_schema_2_sqlite_file_gains_the_new_tables_and_column(tmp_path: Any) -> None:
    import sqlite3

    from ar_sync.store.crypto import TokenCipher
    from ar_sync.store.sqlite.store import SCHEMA_VERSION, SQLiteStore

    path = tmp_path / "old.db"
    cipher = TokenCipher(TokenCipher.generate_key())
    tenant = _tenant()
    old = SQLiteStore(path, cipher=cipher)
    old.claim(waiver(tenant), owner="run-0", now=T0, lease_seconds=60)
    old.close()
    raw = sqlite3.connect(path)  # what an ar-sync of schema 2 wrote
    raw.execute("ALTER TABLE ledger DROP COLUMN rules_version")
    raw.execute("DROP TABLE rules_versions")
    raw.execute("DROP TABLE pauses")
    raw.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")
    raw.commit()
    raw.close()
    store = SQLiteStore(path, cipher=cipher)
    assert store.get(waiver(tenant).key).rules_version is None  # old rows kept
    assert store.apply_rules(tenant, "version: 1\n", source="default", now=T0) == 1
    store.add_pause(tenant, Pause(invoice_id="i", reason="other", since=D0))
    assert len(store.list_pauses(tenant)) == 1
    version = store._query("SELECT value FROM meta WHERE name = 'schema_version'")[0]["value"]
    assert int(version) == SCHEMA_VERSION == 4
