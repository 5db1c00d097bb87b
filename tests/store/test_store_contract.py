"""One contract for every Store backend: the ledger's exactly-once rules, tokens, OAuth state,
locks, checkpoints and reports behave the same on SQLite and on DynamoDB."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ar_sync.domain.models import (
    AddNote,
    ApplyLateFee,
    EntryState,
    Invoice,
    InvoiceStatus,
    Money,
    action_key,
)
from ar_sync.store.dynamodb.ledger import LEDGER_RETENTION_DAYS
from ar_sync.sync.connector import Connection, TokenSet
from ar_sync.sync.ledger import ClaimOutcome
from ar_sync.sync.store import Checkpoint, PendingAuth

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
T = TypeVar("T")
HYPO = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def note(tenant: str = "quickbooks:1", invoice: str = "inv-1", rule: str | None = None) -> AddNote:
    rule = rule or f"r-{uuid.uuid4().hex[:8]}"
    return AddNote(key=action_key(tenant, "quickbooks", invoice, "note", rule, "once"),
                   tenant=tenant, platform="quickbooks", invoice_id=invoice,
                   invoice_number="1001", rule=rule, occurrence="once", due_on=date(2026, 11, 27),
                   reason="7 days overdue", text="Friendly reminder")


def fee(tenant: str = "quickbooks:1", invoice: str = "inv-1") -> ApplyLateFee:
    return ApplyLateFee(key=action_key(tenant, "quickbooks", invoice, "late_fee", "fee", "2026-11"),
                        tenant=tenant, platform="quickbooks", invoice_id=invoice,
                        invoice_number="1001", rule="fee", occurrence="2026-11",
                        due_on=date(2026, 11, 27), reason="30 days overdue",
                        amount=Money.of("12.345", "USD"), label="Late fee")


def race(n: int, attempt: Callable[[int], T]) -> list[T]:
    """Run `attempt(i)` in n threads released at the same instant; their results."""
    results: list[T] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        results.append(attempt(i))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def tokens(access: str = "acc", refresh: str = "ref") -> TokenSet:
    return TokenSet(access_token=access, refresh_token=refresh, expires_at=T0 + timedelta(hours=1))


# ----------------------------------------------------------------------------- ledger


def test_claim_then_complete(store: Any) -> None:
    action = fee()
    claim = store.claim(action, owner="a", now=T0, lease_seconds=60)
    assert claim.outcome == ClaimOutcome.ACQUIRED and claim.ours
    assert claim.entry.state == EntryState.CLAIMED and claim.entry.owner == "a"
    assert store.complete(action.key, owner="a", ref="note-9", now=T0) is True
    entry = store.get(action.key)
    assert entry.state == EntryState.DONE and entry.ref == "note-9"
    assert entry.amount == Decimal("12.35")
    again = store.claim(action, owner="b", now=T0 + timedelta(days=1), lease_seconds=60)
    assert again.outcome == ClaimOutcome.FINISHED and not again.ours
    assert again.entry.state == EntryState.DONE and again.entry.ref == "note-9"
    assert store.action_payload(action.key) == action


def test_live_claim_is_busy_and_non_owner_cannot_finish(store: Any) -> None:
    action = note()
    store.claim(action, owner="a", now=T0, lease_seconds=60)
    busy = store.claim(action, owner="b", now=T0 + timedelta(seconds=30), lease_seconds=60)
    assert busy.outcome == ClaimOutcome.BUSY and busy.entry.owner == "a"
    assert store.complete(action.key, owner="b", ref="x", now=T0) is False
    assert store.fail(action.key, owner="b", reason="x", now=T0, permanent=True) is False
    assert store.get(action.key).state == EntryState.CLAIMED


def test_expired_lease_is_taken_over_and_old_owner_loses(store: Any) -> None:
    action = note()
    store.claim(action, owner="a", now=T0, lease_seconds=60)
    late = T0 + timedelta(seconds=60)  # the lease runs until, not including, T0 + 60 s
    claim = store.claim(action, owner="b", now=late, lease_seconds=60)
    assert claim.outcome == ClaimOutcome.RECONCILE
    assert claim.entry.owner == "b" and claim.entry.attempts == 2
    assert claim.entry.updated_at == late and claim.entry.lease_until == late + \
        timedelta(seconds=60)
    assert store.complete(action.key, owner="a", ref="late", now=late) is False
    assert store.complete(action.key, owner="b", ref="ok", now=late) is True
    assert store.get(action.key).ref == "ok"


def test_retry_row_is_taken_over_for_reconciliation(store: Any) -> None:
    action = note()
    store.claim(action, owner="a", now=T0, lease_seconds=60)
    assert store.fail(action.key, owner="a", reason="503", now=T0, permanent=False) is True
    waiting = store.get(action.key)
    assert (waiting.state, waiting.reason, waiting.lease_until) == (EntryState.RETRY, "503", None)
    assert [e.key for e in store.unfinished(action.tenant)] == [action.key]
    claim = store.claim(action, owner="b", now=T0 + timedelta(seconds=1), lease_seconds=60)
    assert claim.outcome == ClaimOutcome.RECONCILE and claim.entry.owner == "b"


def test_a_finished_row_ages_out_after_the_retention_and_its_summary_follows_the_invoice(
        store: Any) -> None:
    """DynamoDB: a finished row carries its expiry (TTL) at the retention after it finished;
    finished while the invoice is paid, it goes onto the paid item's summary and comes back
    with the invoice when it reopens."""
    if not hasattr(store, "finished_rows"):  # DynamoDB only
        pytest.skip("SQLite keeps its rows")
    tenant = f"xero:{uuid.uuid4()}"
    store.save_invoices(tenant, [invoice(1, "0.00", "paid")], replace_all=True)
    action = note(tenant, "inv001")
    store.claim(action, owner="a", now=T0, lease_seconds=60)
    assert store.complete(action.key, owner="a", ref="n", now=T0)
    row = store._get(store._ledger, {"pk": action.key})
    assert row["expires_at"] == int((T0 + store._retention).timestamp())
    assert store._retention == timedelta(days=LEDGER_RETENTION_DAYS) > timedelta(0)
    store.save_invoices(tenant, [invoice(1)], replace_all=True)  # reopened
    store.open_invoices(tenant)
    assert [(r.rule, r.state) for r in store.finished_rows(tenant)["inv001"]] == [
        (action.rule, "done")]


def test_a_claim_on_a_finished_row_mends_a_summary_that_missed_it(store: Any,
                                                                  monkeypatch: Any) -> None:
    """DynamoDB: a crash between a row's write and its summary's leaves the summary short;
    the next claim of that row (planned again because of it) adds it."""
    if not hasattr(store, "finished_rows"):  # DynamoDB only
        pytest.skip("SQLite plans from the ledger rows themselves")
    tenant = f"xero:{uuid.uuid4()}"
    store.save_invoices(tenant, [invoice(1)], replace_all=True)
    action = note(tenant, "inv001")
    monkeypatch.setattr(store, "_summarize", lambda *args: None)  # the crash
    assert store.record_skip(action, reason="superseded", now=T0)
    monkeypatch.undo()
    store.open_invoices(tenant)
    assert store.finished_rows(tenant)["inv001"] == []
    assert store.claim(action, owner="a", now=T0, lease_seconds=60).outcome == \
        ClaimOutcome.FINISHED
    store.open_invoices(tenant)
    assert [(r.rule, r.state) for r in store.finished_rows(tenant)["inv001"]] == [
        (action.rule, "skipped")]


def test_a_claim_that_loses_every_takeover_race_is_busy(store: Any, monkeypatch: Any) -> None:
    """DynamoDB: other runners win each compare-and-swap; the claim gives up as busy, with
    the row as it is now."""
    if not hasattr(store, "finished_rows"):  # DynamoDB only
        pytest.skip("SQLite claims in one transaction")
    action = note()
    store.claim(action, owner="a", now=T0, lease_seconds=60)
    monkeypatch.setattr(store, "_update", lambda *args: None)  # someone else was faster
    claim = store.claim(action, owner="b", now=T0 + timedelta(minutes=5), lease_seconds=60)
    assert claim.outcome == ClaimOutcome.BUSY and claim.entry.owner == "a"


def test_a_row_that_vanishes_during_a_claim_is_claimed_afresh(store: Any,
                                                              monkeypatch: Any) -> None:
    """DynamoDB: the put finds the row, the read that follows finds none (a finished row
    aged out in between): the claim tries a fresh put again instead of giving up."""
    if not hasattr(store, "finished_rows"):  # DynamoDB only
        pytest.skip("SQLite claims in one transaction")
    action = note()
    store.record_skip(action, reason="superseded", now=T0)
    real_get = store._get

    def get_after_expiry(table: str, key: Any) -> Any:
        store._db.delete_item(TableName=table, Key={"pk": {"S": key["pk"]}})
        monkeypatch.setattr(store, "_get", real_get)
        return None

    monkeypatch.setattr(store, "_get", get_after_expiry)
    claim = store.claim(action, owner="a", now=T0, lease_seconds=60)
    assert claim.outcome == ClaimOutcome.ACQUIRED and claim.entry.owner == "a"
    assert store.get(action.key).state == EntryState.CLAIMED


def test_permanent_failure_is_finished(store: Any) -> None:
    action = note()
    store.claim(action, owner="a", now=T0, lease_seconds=60)
    assert store.fail(action.key, owner="a", reason="400 bad", now=T0, permanent=True)
    entry = store.get(action.key)
    assert entry.state == EntryState.FAILED and entry.reason == "400 bad"
    assert store.claim(action, owner="a", now=T0, lease_seconds=60).outcome == \
        ClaimOutcome.FINISHED
    assert store.unfinished(action.tenant) == []


@pytest.mark.parametrize(("crashed", "runners", "winner"), [
    (False, 8, ClaimOutcome.ACQUIRED),  # a fresh claim
    (True, 6, ClaimOutcome.RECONCILE),  # a takeover after a crashed owner's lease ran out
], ids=["claim", "takeover"])
def test_claim_race_has_exactly_one_winner(store: Any, crashed: bool, runners: int,
                                           winner: ClaimOutcome) -> None:
    action = note()
    at = T0
    if crashed:
        store.claim(action, owner="crashed", now=T0, lease_seconds=10)
        at = T0 + timedelta(seconds=11)
    outcomes = race(runners, lambda i: store.claim(action, owner=f"o{i}", now=at,
                                                   lease_seconds=60).outcome)
    assert outcomes.count(winner) == 1
    assert outcomes.count(ClaimOutcome.BUSY) == runners - 1


def test_skip_inserts_once_and_converts_only_own_claim(store: Any) -> None:
    skipped = note()
    assert store.record_skip(skipped, reason="superseded", now=T0) is True
    assert store.record_skip(skipped, reason="again", now=T0) is False
    first = store.get(skipped.key)
    assert (first.state, first.reason, first.updated_at) == (EntryState.SKIPPED, "superseded", T0)
    assert store.claim(skipped, owner="a", now=T0, lease_seconds=5).outcome == \
        ClaimOutcome.FINISHED

    claimed = note()
    store.claim(claimed, owner="a", now=T0, lease_seconds=60)
    assert store.record_skip(claimed, reason="paid", now=T0) is False
    assert store.record_skip(claimed, reason="paid", now=T0, owner="b") is False
    assert store.record_skip(claimed, reason="paid", now=T0, owner="a") is True
    entry = store.get(claimed.key)
    assert entry.state == EntryState.SKIPPED and entry.reason == "paid"


def test_skips_in_bulk_keep_each_reason_and_the_rules_version(store: Any) -> None:
    one, two = note(), note(invoice="inv-2")
    assert store.record_skips([one, two], now=T0, rules_version=7) == [True, True]
    claimed = note()
    store.claim(claimed, owner="a", now=T0, lease_seconds=60)
    assert store.record_skips([one, claimed], now=T0) == [False, False]  # no row overwritten
    assert store.get(claimed.key).state == EntryState.CLAIMED
    for action in (one, two):
        entry = store.get(action.key)
        assert (entry.state, entry.reason, entry.rules_version, entry.updated_at) == (
            EntryState.SKIPPED, "7 days overdue", 7, T0)


def test_finished_rows_go_onto_their_open_invoices_summary(store: Any) -> None:
    """DynamoDB plans from each open invoice's summary of its finished rows: a skip recorded
    in bulk, one recorded alone and a completed claim are on it (SQLite reads the rows)."""
    if not hasattr(store, "finished_rows"):
        pytest.skip("SQLite plans from the ledger rows themselves")
    tenant = f"xero:{uuid.uuid4()}"
    store.save_invoices(tenant, [invoice(1)], replace_all=True)
    bulk, alone, done = (note(tenant, "inv001") for _ in range(3))
    assert store.record_skips([bulk], now=T0) == [True]
    assert store.record_skip(alone, reason="superseded", now=T0)
    store.claim(done, owner="a", now=T0, lease_seconds=60)
    assert store.complete(done.key, owner="a", ref="r", now=T0)
    store.open_invoices(tenant)
    rows = store.finished_rows(tenant)["inv001"]
    assert sorted((r.rule, r.state) for r in rows) == sorted(
        [(bulk.rule, "skipped"), (alone.rule, "skipped"), (done.rule, "done")])


def test_action_payload_of_a_row_never_claimed_is_none(store: Any) -> None:
    assert store.action_payload("ar-never-claimed") is None


def test_history_and_unfinished_are_per_tenant_and_invoice(store: Any) -> None:
    tenant, other = f"xero:{uuid.uuid4()}", f"xero:{uuid.uuid4()}"
    a1, a2, b1 = note(tenant, "A"), note(tenant, "A"), note(tenant, "B")
    foreign = note(other, "A")
    for action in (a1, a2, b1, foreign):
        store.claim(action, owner="o", now=T0, lease_seconds=60)
    store.complete(a1.key, owner="o", ref="r", now=T0)
    history = store.history(tenant)
    assert sorted(history) == ["A", "B"]
    assert sorted(e.key for e in history["A"]) == sorted([a1.key, a2.key])
    only_b = store.history(tenant, ["B", "nope"])
    assert list(only_b) == ["B"] and only_b["B"][0].key == b1.key
    assert sorted(e.key for e in store.unfinished(tenant)) == sorted([a2.key, b1.key])
    assert store.history(f"xero:{uuid.uuid4()}") == {}


def test_many_invoices_history_path(store: Any) -> None:
    tenant = f"qb:{uuid.uuid4()}"
    actions = [note(tenant, f"inv{i}") for i in range(30)]
    for action in actions:
        store.record_skip(action, reason="x", now=T0)
    ids = [f"inv{i}" for i in range(0, 30, 1)]
    assert sorted(store.history(tenant, ids)) == sorted(ids)
    assert sorted(store.history(tenant, ids[:3])) == sorted(ids[:3])


# the ledger against a reference model, over random interleavings ----------------------

_OPS = st.lists(st.tuples(
    st.sampled_from(["claim", "complete", "fail", "fail_perm", "skip", "skip_own"]),
    st.sampled_from(["a", "b"]),
    st.integers(min_value=0, max_value=120),  # seconds after T0
), min_size=1, max_size=8)


@HYPO
@given(ops=_OPS)
def test_ledger_follows_the_model(store: Any, ops: list[tuple[str, str, int]]) -> None:
    action = note()
    state: str | None = None
    owner: str | None = None
    lease = T0
    clock = T0
    for op, who, step in ops:
        clock = max(clock, T0 + timedelta(seconds=step))  # time moves forward
        if op == "claim":
            got = store.claim(action, owner=who, now=clock, lease_seconds=30).outcome
            if state is None:
                want = ClaimOutcome.ACQUIRED
            elif state in ("done", "skipped", "failed"):
                want = ClaimOutcome.FINISHED
            elif state == "claimed" and lease > clock:
                want = ClaimOutcome.BUSY
            else:
                want = ClaimOutcome.RECONCILE
            assert got == want, (op, who, state)
            if want in (ClaimOutcome.ACQUIRED, ClaimOutcome.RECONCILE):
                state, owner, lease = "claimed", who, clock + timedelta(seconds=30)
        elif op in ("complete", "fail", "fail_perm", "skip_own"):
            if op == "complete":
                ok = store.complete(action.key, owner=who, ref="r", now=clock)
            elif op == "skip_own":
                ok = store.record_skip(action, reason="paid", now=clock, owner=who)
            else:
                ok = store.fail(action.key, owner=who, reason="e", now=clock,
                                permanent=op == "fail_perm")
            holds = state == "claimed" and owner == who
            if op == "skip_own" and state is None:
                holds = True
            assert ok == holds, (op, who, state, owner)
            if ok:
                state = {"complete": "done", "fail": "retry", "fail_perm": "failed",
                         "skip_own": "skipped"}[op]
        else:
            ok = store.record_skip(action, reason="superseded", now=clock)
            assert ok == (state is None)
            if ok:
                state = "skipped"
        entry = store.get(action.key)
        assert (entry.state if entry else None) == state


# ----------------------------------------------------------------------------- tokens


def test_token_versioned_writes_and_the_loser(store: Any) -> None:
    cid = f"xero:{uuid.uuid4()}"
    assert store.load_tokens(cid) is None
    assert store.save_tokens(cid, tokens("a0", "r0"), expected_version=-1) is True
    assert store.save_tokens(cid, tokens("zz", "zz"), expected_version=-1) is False
    first = store.load_tokens(cid)
    assert first.access_token == "a0" and first.version == 0
    # two runners refreshed from version 0: the second loses and keeps nothing
    assert store.save_tokens(cid, tokens("a1", "r1"), expected_version=first.version) is True
    assert store.save_tokens(cid, tokens("a1b", "r1b"), expected_version=first.version) is False
    now = store.load_tokens(cid)
    assert (now.access_token, now.refresh_token, now.version) == ("a1", "r1", 1)


def test_token_race_in_threads_has_one_winner(store: Any) -> None:
    cid = f"qb:{uuid.uuid4()}"
    store.save_tokens(cid, tokens(), expected_version=-1)
    results = race(6, lambda i: store.save_tokens(cid, tokens(f"a{i}", f"r{i}"),
                                                  expected_version=0))
    assert results.count(True) == 1
    assert store.load_tokens(cid).version == 1


@HYPO
@given(secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=24, max_size=40))
def test_tokens_are_not_readable_at_rest(backend: Any, secret: str) -> None:
    cid = f"qb:{uuid.uuid4()}"
    backend.store.save_tokens(cid, tokens("AT" + secret, "RT" + secret), expected_version=-1)
    raw = backend.raw_dump()
    assert cid in raw or backend.name == "sqlite"  # the row is there ...
    assert "AT" + secret not in raw and "RT" + secret not in raw  # ... but not the secrets
    assert backend.store.load_tokens(cid).access_token == "AT" + secret


def test_tokens_do_not_show_in_repr(store: Any) -> None:
    cid = f"qb:{uuid.uuid4()}"
    store.save_tokens(cid, tokens("SECRET-ACCESS", "SECRET-REFRESH"), expected_version=-1)
    text = repr(store) + repr(store.load_tokens(cid))
    assert "SECRET" not in text


# ----------------------------------------------------------------------------- OAuth state


def pending(state: str, expires: datetime) -> PendingAuth:
    return PendingAuth(state=state, platform="xero", business_id="biz-1",
                       code_verifier="verifier", expires_at=expires)


def test_pending_auth_is_single_use(store: Any) -> None:
    state = uuid.uuid4().hex
    store.put_pending_auth(pending(state, T0 + timedelta(minutes=10)))
    got = store.take_pending_auth(state, now=T0)
    assert got is not None and got.business_id == "biz-1" and got.code_verifier == "verifier"
    assert got.platform == "xero" and got.state == state
    assert store.take_pending_auth(state, now=T0) is None
    assert store.take_pending_auth("never-issued", now=T0) is None


def test_pending_auth_expires(store: Any) -> None:
    state = uuid.uuid4().hex
    store.put_pending_auth(pending(state, T0 + timedelta(minutes=10)))
    assert store.take_pending_auth(state, now=T0 + timedelta(minutes=11)) is None
    assert store.take_pending_auth(state, now=T0) is None  # and it is gone


def test_pending_auth_race_single_winner(store: Any) -> None:
    state = uuid.uuid4().hex
    store.put_pending_auth(pending(state, T0 + timedelta(minutes=10)))
    got = race(5, lambda i: store.take_pending_auth(state, now=T0))
    assert sum(1 for g in got if g is not None) == 1


# ----------------------------------------------------------------------------- locks


def test_lock_held_expired_released(store: Any) -> None:
    name = f"tenant:{uuid.uuid4()}"
    assert store.acquire_lock(name, owner="a", now=T0, ttl_seconds=60) is True
    assert store.acquire_lock(name, owner="b", now=T0 + timedelta(seconds=59),
                              ttl_seconds=60) is False
    assert store.acquire_lock(name, owner="a", now=T0 + timedelta(seconds=10),
                              ttl_seconds=60) is True  # re-entrant renewal by the owner
    assert store.acquire_lock(name, owner="b", now=T0 + timedelta(seconds=71),
                              ttl_seconds=60) is True  # a's renewed lease ran out
    store.release_lock(name, owner="a")  # not a's any more: nothing happens
    assert store.acquire_lock(name, owner="c", now=T0 + timedelta(seconds=72),
                              ttl_seconds=60) is False
    store.release_lock(name, owner="b")
    assert store.acquire_lock(name, owner="c", now=T0 + timedelta(seconds=72),
                              ttl_seconds=60) is True


def test_lock_race_single_winner(store: Any) -> None:
    name = f"tenant:{uuid.uuid4()}"
    wins = race(6, lambda i: store.acquire_lock(name, owner=f"o{i}", now=T0, ttl_seconds=60))
    assert wins.count(True) == 1


# ----------------------------------------------------------------------------- the rest


def test_connections_round_trip(store: Any) -> None:
    ids = [f"quickbooks:{uuid.uuid4()}" for _ in range(3)]
    for i, cid in enumerate(ids):
        store.save_connection(Connection(id=cid, platform="quickbooks", external_id=cid[11:],
                                         name=f"Co {i}", business_id=f"biz{i}", created_at=T0))
    assert store.get_connection(ids[1]).business_id == "biz1"
    assert store.get_connection("quickbooks:nope") is None
    listed = {c.id: c for c in store.list_connections()}
    assert set(ids) <= set(listed)
    assert listed[ids[2]].name == "Co 2"
    store.save_connection(listed[ids[2]].model_copy(update={"rules": "firm"}))
    assert store.get_connection(ids[2]).rules == "firm"


@HYPO
@given(since=st.none() | st.datetimes(timezones=st.just(UTC)),
       full=st.none() | st.datetimes(timezones=st.just(UTC)))
def test_checkpoints_round_trip(store: Any, since: datetime | None,
                                full: datetime | None) -> None:
    cid = f"xero:{uuid.uuid4()}"
    assert store.get_checkpoint(cid) == Checkpoint(since=None, last_full_at=None)
    store.save_checkpoint(cid, Checkpoint(since=since, last_full_at=full))
    assert store.get_checkpoint(cid) == Checkpoint(since=since, last_full_at=full)


def test_reports_keep_the_last(store: Any) -> None:
    cid = f"xero:{uuid.uuid4()}"
    assert store.last_report(cid) is None
    store.save_report(cid, {"done": 1, "errors": [], "actions": [{"key": "k1"}]})
    store.save_report(cid, {"done": 2, "errors": ["x"], "actions": []})
    assert store.last_report(cid) == {"done": 2, "errors": ["x"], "actions": []}


def test_recent_reports_newest_first_and_bounded(store: Any) -> None:
    cid = f"xero:{uuid.uuid4()}"
    assert store.recent_reports(cid) == []
    for n in range(5):
        store.save_report(cid, {"started_at": f"2026-11-1{n}T12:00:00+00:00", "done": n})
    assert [r["done"] for r in store.recent_reports(cid)] == [4, 3, 2, 1, 0]
    assert [r["done"] for r in store.recent_reports(cid, limit=2)] == [4, 3]
    assert store.recent_reports(f"xero:{uuid.uuid4()}") == []  # per company


# ----------------------------------------------------------------------------- invoice snapshot


def invoice(i: int, balance: str = "100.00", status: str = "open") -> Invoice:
    return Invoice(platform="xero", tenant="t", id=f"inv{i:03d}", number=str(1000 + i),
                   customer_id="c1", customer_name="Customer", issue_date=date(2026, 10, 1),
                   due_date=date(2026, 10, 31), currency="GBP", total=Decimal("100.00"),
                   balance=Decimal(balance), status=InvoiceStatus(status),
                   updated_at=T0)


def test_snapshot_incremental_and_full(store: Any) -> None:
    cid = f"xero:{uuid.uuid4()}"
    assert store.open_invoices(cid) == []
    store.save_invoices(cid, [invoice(i) for i in range(40)], replace_all=True)
    assert [inv.id for inv in store.open_invoices(cid)] == [f"inv{i:03d}" for i in range(40)]
    # incremental: one paid, one changed, one new
    store.save_invoices(cid, [invoice(3, "0.00", "paid"), invoice(5, "40.00"), invoice(77)],
                        replace_all=False)
    got = {inv.id: inv for inv in store.open_invoices(cid)}
    assert "inv003" not in got and got["inv005"].balance == Decimal("40.00") and "inv077" in got
    assert len(got) == 40
    # full: only what the platform still has open survives
    store.save_invoices(cid, [invoice(1), invoice(2)], replace_all=True)
    assert [inv.id for inv in store.open_invoices(cid)] == ["inv001", "inv002"]
    assert store.open_invoices(f"xero:{uuid.uuid4()}") == []


def test_a_resolved_payment_link_outlives_the_fetchs_lazy_reference(store: Any) -> None:
    """An invoice's online link is read once in its life: a later fetch's lazy reference
    (or a full fetch) keeps the stored URL; a fetch with no link, or another URL, wins."""
    cid = f"xero:{uuid.uuid4()}"
    lazy = [invoice(i).model_copy(update={"payment_link": f"xero-online-invoice:{i}"})
            for i in range(4)]
    store.save_invoices(cid, lazy, replace_all=True)
    resolved = [inv.model_copy(update={"payment_link": f"https://in.example/{inv.id}"})
                for inv in lazy[:3]]
    store.save_invoices(cid, resolved, replace_all=False)
    again = [lazy[0], lazy[1].model_copy(update={"payment_link": None}),
             lazy[2].model_copy(update={"payment_link": "https://in.example/new"}), lazy[3]]
    for replace_all in (False, True):
        store.save_invoices(cid, again, replace_all=replace_all)
        links = {inv.id: inv.payment_link for inv in store.open_invoices(cid)}
        assert links == {"inv000": "https://in.example/inv000", "inv001": None,
                         "inv002": "https://in.example/new", "inv003": "xero-online-invoice:3"}


def test_an_update_without_attribute_names_sends_none() -> None:
    """DynamoDB refuses an empty ExpressionAttributeNames ("ExpressionAttributeNames must not
    be empty", a ValidationException) where moto accepts it: an update that names no
    attribute (the invoice summary's ADD) leaves the parameter out."""
    from ar_sync.store.dynamodb.codec import DynamoDBTables

    class Client:
        def update_item(self, **kwargs: Any) -> dict[str, Any]:
            self.sent = kwargs
            return {"Attributes": {"pk": {"S": "inv#t"}}}

    tables, client = DynamoDBTables(), Client()
    tables._db = client  # type: ignore[assignment]
    assert tables._update("t", {"pk": "inv#t", "sk": "i1"}, "ADD done :c",
                          "attribute_exists(pk)", {":c": {"x"}}, {}) == {"pk": "inv#t"}
    assert "ExpressionAttributeNames" not in client.sent
    tables._update("t", {"pk": "k"}, "SET #s = :s", "attribute_exists(pk)", {":s": "x"},
                   {"#s": "state"})
    assert client.sent["ExpressionAttributeNames"] == {"#s": "state"}
