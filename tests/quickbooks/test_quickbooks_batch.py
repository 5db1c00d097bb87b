"""Batched writes (BatchWriter over `/batch`) through python-quickbooks against the emulator:
mixed batches with a failing item, a stale SyncToken in one item, Fault 6000 on a UK company,
a lost answer (reconciled, and replayed by requestid), a verification mismatch, the 40 batch
requests a minute. Judged from the emulator's own rows and effects, not the connector's word."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from qbo_helpers import FakeClock, Session, connect

from ar_sync.domain.errors import (
    NotApplicableError,
    PlatformValidationError,
    StaleObjectError,
    WriteVerificationError,
)
from ar_sync.domain.models import AddNote, ApplyLateFee, Escalate, FeeMode, Invoice, Money
from ar_sync.domain.money import to_decimal
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import BatchItemResult, BatchWrite, BatchWriter
from ar_sync_emulators.base import RateLimiter
from ar_sync_emulators.quickbooks.companies import real_company
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_quickbooks import QuickBooksConnector, QuickBooksPlugin
from ar_sync_quickbooks.batch import BATCH_REQUEST_ID_MAX, BID_MAX, MAX_BATCH

BATCH_CALLS = "POST /v3/company/{realm}/batch"


def _base(inv: Invoice, key: str) -> dict[str, Any]:
    return {"key": key, "tenant": "t", "platform": "quickbooks", "invoice_id": inv.id,
            "invoice_number": inv.number, "rule": "r", "occurrence": "once",
            "due_on": date(2026, 1, 1), "reason": "test"}


def note(inv: Invoice, key: str, text: str = "Second reminder sent") -> BatchWrite:
    return BatchWrite(AddNote(**_base(inv, key), text=text), inv)


def escalate(inv: Invoice, key: str) -> BatchWrite:
    return BatchWrite(Escalate(**_base(inv, key), to="collections", text="Escalated"), inv)


def fee(inv: Invoice, key: str, amount: str = "12.50", mode: FeeMode = FeeMode.LINE,
        tax: str | None = None) -> BatchWrite:
    return BatchWrite(ApplyLateFee(**_base(inv, key), amount=Money.of(amount, inv.currency),
                                   label="Late fee", mode=mode, tax=tax), inv)


def _open(qbo: Session) -> tuple[QuickBooksConnector, list[Invoice]]:
    connector = qbo.open()
    invoices = [i for i in connector.fetch_open_invoices().invoices if not i.disputed]
    fresh = connector.get_invoices([i.id for i in invoices[:12]])
    return connector, [inv for inv in fresh.values() if inv is not None]


def written(emu: QuickBooksEmulator, connector: QuickBooksConnector,
            writes: list[BatchWrite]) -> list[BatchItemResult]:
    """write_batch, with the keys told to the emulator's effect counters (a batched fee line
    carries only its short reference and travels under a short bId)."""
    emu.learn_keys(w.action.key for w in writes)
    return connector.write_batch(writes)


def _batch_calls(emu: QuickBooksEmulator) -> int:
    return emu.counters.calls.get(BATCH_CALLS, 0)


def _effects(emu: QuickBooksEmulator) -> list[tuple[str, str, str | None]]:
    return sorted((e.kind, e.invoice_id, e.key) for e in emu.effects())


def test_the_connector_is_a_batch_writer_within_the_documented_limits(qbo: Session) -> None:
    connector = qbo.open()
    assert isinstance(connector, BatchWriter)
    assert connector.max_batch == MAX_BATCH == 10


def test_get_invoices_reads_many_in_one_call_and_none_for_a_deleted_one(qbo: Session) -> None:
    connector = qbo.open()
    invoices = connector.fetch_open_invoices().invoices[:5]
    qbo.emu.delete(invoices[0].id)
    qbo.emu.pay(invoices[1].id, str(invoices[1].balance))
    before = sum(qbo.emu.counters.calls.values())
    fresh = connector.get_invoices([i.id for i in invoices])
    assert sum(qbo.emu.counters.calls.values()) - before == 1
    assert fresh[invoices[0].id] is None
    paid = fresh[invoices[1].id]
    assert paid is not None and paid.balance == 0 and not paid.is_open
    assert all(fresh[i.id] is not None for i in invoices[2:])


def test_mixed_batch_one_call_each_item_mapped_back_and_one_failure_alone(
        qbo: Session) -> None:
    connector, invs = _open(qbo)
    connector.fee_item()
    gone = invs[4].model_copy(update={"id": "999999", "number": "GONE"})
    writes = [note(invs[0], "arb-note"), fee(invs[1], "arb-line"),
              fee(invs[2], "arb-inv", "30", FeeMode.INVOICE), escalate(invs[3], "arb-esc"),
              note(gone, "arb-gone")]
    totals = {i.id: to_decimal(qbo.emu.invoice(i.id)["TotalAmt"]) for i in invs[:4]}
    before = _batch_calls(qbo.emu)
    results = written(qbo.emu, connector, writes)
    assert _batch_calls(qbo.emu) - before == 1
    assert [r.key for r in results] == [w.action.key for w in writes]
    by_key = {r.key: r for r in results}
    assert isinstance(by_key["arb-gone"].error, PlatformValidationError)
    assert by_key["arb-gone"].ref is None
    assert all(by_key[k].error is None for k in ("arb-note", "arb-line", "arb-inv", "arb-esc"))
    note_row = qbo.emu.rows["Attachable"][str(by_key["arb-note"].ref).split(":")[1]]
    assert "ar-sync:arb-note" in note_row["Note"]
    assert str(by_key["arb-line"].ref).startswith(f"{invs[1].id}:line:")
    assert to_decimal(qbo.emu.invoice(invs[1].id)["TotalAmt"]) == totals[invs[1].id] + \
        Decimal("12.50")
    fee_invoice = qbo.emu.invoice(str(by_key["arb-inv"].ref).split(":")[1])
    assert to_decimal(fee_invoice["TotalAmt"]) == Decimal(30)
    assert to_decimal(qbo.emu.invoice(invs[2].id)["TotalAmt"]) == totals[invs[2].id]
    assert _effects(qbo.emu) == sorted([
        ("note", invs[0].id, "arb-note"), ("late_fee", invs[1].id, "arb-line"),
        ("late_fee", invs[2].id, "arb-inv"), ("note", invs[3].id, "arb-esc")])
    # find_effect reconciles every batched write by its key, as for a single write
    for write, result in zip(writes[:4], results[:4], strict=True):
        assert connector.find_effect(write.invoice, write.action.kind,
                                     write.action.key) == result.ref


def test_a_long_note_is_cut_to_fit_the_2000_characters_of_an_attachable(qbo: Session) -> None:
    connector, invs = _open(qbo)
    results = connector.write_batch([note(invs[0], "arb-long", "x" * 3000),
                                     note(invs[1], "arb-short", "short")])
    assert all(r.ref and r.error is None for r in results)
    stored = qbo.emu.rows["Attachable"][str(results[0].ref).split(":")[1]]["Note"]
    assert len(stored) == 2000 and stored.endswith("ar-sync:arb-long")
    assert sorted(e.key or "" for e in qbo.emu.effects()) == ["arb-long", "arb-short"]


def test_more_writes_than_a_batch_holds_go_in_several_calls(qbo: Session) -> None:
    connector, invs = _open(qbo)
    writes = [note(inv, f"arb-many-{n}") for n, inv in enumerate(invs[:12])]
    before = _batch_calls(qbo.emu)
    results = connector.write_batch(writes)
    assert _batch_calls(qbo.emu) - before == 2
    assert all(r.ref for r in results)
    assert len([e for e in qbo.emu.effects() if e.kind == "note"]) == 12


def test_stale_synctoken_fails_only_that_item_and_a_later_batch_writes_it(
        qbo: Session) -> None:
    connector, invs = _open(qbo)
    connector.fee_item()
    qbo.emu.edit(invs[1].id, CustomerMemo={"value": "edited by a person"})  # SyncToken moves
    writes = [fee(invs[0], "arb-ok"), fee(invs[1], "arb-stale"), note(invs[2], "arb-n")]
    results = {r.key: r for r in written(qbo.emu, connector, writes)}
    stale = results["arb-stale"].error
    assert isinstance(stale, StaleObjectError) and stale.retryable
    assert results["arb-ok"].ref and results["arb-n"].ref
    assert [e.key for e in qbo.emu.effects() if e.invoice_id == invs[1].id] == []
    # the next run re-reads and batches it again: a different request (the SyncToken moved),
    # so QuickBooks does not answer it with the first batch's recorded stale fault
    fresh = connector.get_invoices([invs[1].id])[invs[1].id]
    assert fresh is not None and fresh.version != invs[1].version
    again = written(qbo.emu, connector, [fee(fresh, "arb-stale")])
    assert again[0].error is None and again[0].ref
    assert qbo.emu.invoice(invs[1].id)["CustomerMemo"] == {"value": "edited by a person"}
    assert [e.key for e in qbo.emu.effects() if e.kind == "late_fee"].count("arb-stale") == 1


def test_the_same_write_retried_on_a_newer_invoice_is_a_new_request(qbo: Session) -> None:
    connector, invs = _open(qbo)
    connector.fee_item()
    qbo.emu.edit(invs[0].id, CustomerMemo={"value": "edited"})
    first = written(qbo.emu, connector, [fee(invs[0], "arb-alone")])
    assert isinstance(first[0].error, StaleObjectError)
    fresh = connector.get_invoices([invs[0].id])[invs[0].id]
    assert fresh is not None
    again = written(qbo.emu, connector, [fee(fresh, "arb-alone")])  # same key, newer SyncToken
    assert again[0].error is None and again[0].ref
    assert [e.key for e in qbo.emu.effects()] == ["arb-alone"]


def test_a_deleted_invoice_is_not_applicable(qbo: Session) -> None:
    connector, invs = _open(qbo)
    connector.fee_item()
    writes = [fee(invs[0], "arb-del"), note(invs[1], "arb-alive")]
    qbo.emu.delete(invs[0].id)
    connector.forget(invs[0].id)
    results = {r.key: r for r in connector.write_batch(writes)}
    assert isinstance(results["arb-del"].error, NotApplicableError)
    assert results["arb-alive"].ref


def test_a_lost_batch_answer_is_reconciled_and_a_replay_writes_nothing_twice(
        qbo: Session) -> None:
    connector, invs = _open(qbo)
    connector.fee_item()
    writes = [note(invs[0], "arb-l1"), fee(invs[1], "arb-l2"),
              fee(invs[2], "arb-l3", "9", FeeMode.INVOICE)]
    qbo.emu.faults.drop_after_write(match="/batch")
    first = written(qbo.emu, connector, writes)
    assert all(r.ref and r.error is None for r in first)
    assert _effects(qbo.emu) == sorted([("note", invs[0].id, "arb-l1"),
                                        ("late_fee", invs[1].id, "arb-l2"),
                                        ("late_fee", invs[2].id, "arb-l3")])
    # a runner that sends the very same batch again (same invoices, same SyncTokens) gets
    # QuickBooks' recorded answer back: the same objects, nothing applied twice
    replayed_before = qbo.emu.counters.writes_replayed
    second = written(qbo.emu, qbo.open(), writes)
    assert qbo.emu.counters.writes_replayed == replayed_before + 1
    assert [r.ref for r in second][0::2] == [r.ref for r in first][0::2]
    assert len(qbo.emu.effects()) == 3


def test_a_lost_batch_answer_without_replay_is_found_by_key_not_resent() -> None:
    emu = QuickBooksEmulator(replay="off").seed_rows(*real_company("US"))
    plugin = QuickBooksPlugin(sleep=lambda _s: None)
    with emu.serve():
        settings = emu.settings()
        store, connection = connect(emu, plugin, settings)
        qbo = Session(emu, settings, plugin, store, connection, CallBudget(), [])
        connector, invs = _open(qbo)
        writes = [note(invs[0], "arb-r1"), fee(invs[1], "arb-r2")]
        emu.faults.drop_after_write(match="/batch")
        results = written(emu, connector, writes)
        assert all(r.ref for r in results)
        assert sorted(e.key or "" for e in emu.effects()) == ["arb-r1", "arb-r2"]
        assert emu.counters.writes_replayed == 0


def test_batch_ids_fit_what_quickbooks_joins_and_are_derived_from_the_writes(
        qbo: Session) -> None:
    """requestid <= 36, every bId <= 10 and the two joined <= 50 (Intuit blog 2015-04-06;
    QuickBooks-V3-Java-SDK #180), with real 34-character action keys: the emulator faults
    every item past it with 6000, so the writes landing proves it too."""
    connector, invs = _open(qbo)
    connector.fee_item()
    seen: list[tuple[str, list[str]]] = []
    original = connector.client.post

    def spy(url: str, body: str, *args: Any, **kwargs: Any) -> Any:
        bids = [str(item["bId"]) for item in json.loads(body)["BatchItemRequest"]]
        seen.append((kwargs.get("request_id") or "", bids))
        return original(url, body, *args, **kwargs)

    connector.client.post = spy  # type: ignore[method-assign]
    keys = ["ar" + hashlib.sha256(str(n).encode()).hexdigest()[:32] for n in range(11)]
    writes = [note(invs[0], keys[0]), fee(invs[1], keys[1]),
              fee(invs[2], keys[2], "7", FeeMode.INVOICE),
              *[note(inv, key) for inv, key in zip(invs[3:11], keys[3:], strict=True)]]
    results = written(qbo.emu, connector, writes)
    assert all(r.ref and r.error is None for r in results)
    assert sorted(e.key or "" for e in qbo.emu.effects()) == sorted(keys)
    connector.write_batch([note(invs[11], "arb-id3")])
    assert len(seen) == 3 and len({rid for rid, _ in seen}) == 3
    for request_id, bids in seen:
        assert 0 < len(request_id) <= BATCH_REQUEST_ID_MAX
        assert all(len(b) <= BID_MAX and len(request_id) + len(b) <= 50 for b in bids)
        assert len(set(bids)) == len(bids)


def test_a_verification_mismatch_is_that_items_error(qbo: Session) -> None:
    connector, invs = _open(qbo)
    connector.fee_item()
    emu = qbo.emu
    original = emu._update
    victim = invs[1].id

    def update_and_touch_another_line(entity: str, body: dict[str, Any]) -> dict[str, Any]:
        row = original(entity, body)
        if entity == "Invoice" and row["Id"] == victim:  # QuickBooks changes a line we sent
            row["Line"][0]["Description"] = "changed by QuickBooks"
        return row

    emu._update = update_and_touch_another_line  # type: ignore[method-assign]
    results = {r.key: r for r in connector.write_batch(
        [fee(invs[0], "arb-v-ok"), fee(invs[1], "arb-v-bad")])}
    assert results["arb-v-ok"].ref and results["arb-v-ok"].error is None
    error = results["arb-v-bad"].error
    assert isinstance(error, WriteVerificationError) and not error.retryable
    assert "line" in str(error) and error.expected and error.actual


def test_a_fee_invoice_that_does_not_total_the_fee_is_that_items_error(qbo: Session) -> None:
    connector, invs = _open(qbo)
    connector.fee_item()
    emu = qbo.emu
    original = emu._create_invoice

    def create_with_a_surcharge(body: dict[str, Any]) -> dict[str, Any]:
        row = original(body)
        row["TotalAmt"] = float(to_decimal(row["TotalAmt"]) + 1)  # QuickBooks added a cost
        return row

    emu._create_invoice = create_with_a_surcharge  # type: ignore[method-assign]
    results = connector.write_batch([fee(invs[0], "arb-fi-bad", "20", FeeMode.INVOICE),
                                     note(invs[1], "arb-fi-note")])
    error = results[0].error
    assert isinstance(error, WriteVerificationError)
    assert "21" in error.actual and "20" in error.expected
    assert results[1].ref


def test_throttled_batches_wait_for_retry_after(qbo: Session) -> None:
    clock = FakeClock(qbo.emu.clock())
    qbo.emu.batch_limiter = RateLimiter(per_minute=40, clock=clock)
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.advance(seconds)

    connector, invs = _open(qbo)
    connector.sleep = sleep
    used = 0  # another process used up this minute's 40 batch requests
    while qbo.emu.batch_limiter.acquire(connector.realm).allowed:
        used += 1
    assert 0 < used <= 40
    results = connector.write_batch([note(invs[0], "arb-throttle")])
    assert results[0].ref
    assert waited and sum(waited) >= 30  # Retry-After honoured (capped at max_wait per try)
    assert len([e for e in qbo.emu.effects() if e.key == "arb-throttle"]) == 1


# ---------------------------------------------------------------------------- UK company


@pytest.fixture
def uk() -> Iterator[Session]:
    emu = QuickBooksEmulator(edition="UK").seed_rows(*real_company("UK"))
    plugin = QuickBooksPlugin(sleep=lambda _s: None)
    with emu.serve():
        settings = emu.settings()
        store, connection = connect(emu, plugin, settings)
        yield Session(emu, settings, plugin, store, connection, CallBudget(), [])


def test_fault_6000_on_a_uk_line_edit_falls_back_to_a_fee_invoice(uk: Session) -> None:
    connector = uk.open()
    invoices = [i for i in connector.fetch_open_invoices().invoices
                if i.is_open and i.currency == "GBP"]
    refused, fine = invoices[0], invoices[1]
    row = uk.emu.rows["Invoice"][refused.id]
    sales = next(ln for ln in row["Line"] if ln["DetailType"] == "SalesItemLineDetail")
    sales["SalesItemLineDetail"].pop("TaxCodeRef")  # a line QuickBooks would now refuse (6000)
    connector.forget(refused.id)
    fresh = connector.get_invoices([refused.id, fine.id])
    a, b = fresh[refused.id], fresh[fine.id]
    assert a is not None and b is not None
    before = {i: to_decimal(uk.emu.invoice(i)["TotalAmt"]) for i in (a.id, b.id)}
    calls = _batch_calls(uk.emu)
    results = {r.key: r for r in written(uk.emu, connector, [fee(a, "arb-uk-1"),
                                                        fee(b, "arb-uk-2")])}
    assert _batch_calls(uk.emu) - calls == 2  # the batch, then the fallback's batch
    assert str(results["arb-uk-1"].ref).startswith("Invoice:")
    assert str(results["arb-uk-2"].ref).startswith(f"{b.id}:line:")
    assert to_decimal(uk.emu.invoice(a.id)["TotalAmt"]) == before[a.id]  # refused: unchanged
    fee_invoice = uk.emu.invoice(str(results["arb-uk-1"].ref).split(":")[1])
    assert fee_invoice["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"]["value"]
    assert sorted(e.key or "" for e in uk.emu.effects() if e.kind == "late_fee") == [
        "arb-uk-1", "arb-uk-2"]


def test_fault_6000_on_a_uk_fee_invoice_is_a_validation_error(uk: Session) -> None:
    connector = uk.open()
    inv = next(i for i in connector.fetch_open_invoices().invoices if i.is_open)
    connector.fee_item()
    facts = connector.session
    facts.tax_codes = [{**c, "Id": ""} for c in facts.tax_codes]  # codes lost
    results = connector.write_batch([fee(inv, "arb-uk-6000", mode=FeeMode.INVOICE),
                                     note(inv, "arb-uk-note")])
    error = results[0].error
    assert isinstance(error, PlatformValidationError) and error.platform_code == "6000"
    assert results[1].ref
    assert [e.key for e in uk.emu.effects()] == ["arb-uk-note"]

