"""Xero's BatchWriter through xero-python and the emulator (NZ GST organisation): every shape
of invoice in ONE `POST /Invoices?summarizeErrors=false` after ONE `GET /Invoices?IDs=`; each
element checked on its own; a refused line edit falls back to a fee invoice in a second call
with its own key; each element's validation error lands on its own item."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from decimal import Decimal

import pytest
from test_xero_matrix import SHAPES, _pick
from xero_support import FakeClock, Session, connect

from ar_sync.domain.errors import PlatformValidationError, TransientError
from ar_sync.domain.models import ActionKind, ApplyLateFee, FeeMode, Invoice, Money, action_key
from ar_sync.domain.money import round_money
from ar_sync.domain.references import mentions_key
from ar_sync.sync.connector import BatchWrite
from ar_sync_emulators.xero.model import XInvoice, line_json
from ar_sync_emulators.xero.seed import nz_gst_organisation
from ar_sync_emulators.xero.server import XeroEmulator
from ar_sync_xero.batch import MAX_BATCH, batch_key

FEE = Decimal("25.00")
TENANT = "1e9f0c3a-0000-4000-8000-00000000ba7c"
POST = "POST /api.xro/2.0/Invoices"
PUT = "PUT /api.xro/2.0/Invoices"
READ = "GET /api.xro/2.0/Invoices"


@pytest.fixture
def case(clock: FakeClock) -> Iterator[tuple[XeroEmulator, Session]]:
    emulator = XeroEmulator(clock=clock)
    emulator.add_organisation(nz_gst_organisation(TENANT, clock()))
    with emulator.serve():
        yield emulator, connect(emulator, clock)


def _fee(target: XInvoice, shape: str, mode: FeeMode = FeeMode.LINE) -> ApplyLateFee:
    key = action_key(TENANT, "xero", target.id, ActionKind.LATE_FEE, "late", shape)
    return ApplyLateFee(key=key, tenant="xero:t", platform="xero", invoice_id=target.id,
                        invoice_number=target.number, rule="late", occurrence=shape,
                        due_on=target.due_date or target.date, reason="late",
                        amount=Money(amount=FEE, currency=target.currency),
                        label="Late fee", mode=mode)


def _targets(emu: XeroEmulator) -> dict[str, XInvoice]:
    picked: dict[str, XInvoice] = {}
    for shape in SHAPES:
        target = _pick(emu.org(), shape)
        if target.id not in {t.id for t in picked.values()}:
            picked[shape] = target
    return picked


def _read(session: Session, targets: dict[str, XInvoice]) -> dict[str, Invoice]:
    fresh = session.connector.get_invoices([t.id for t in targets.values()])
    assert all(v is not None for v in fresh.values())
    return {k: v for k, v in fresh.items() if v is not None}


def test_every_shape_in_one_read_and_one_batch_call_changes_nothing_but_the_total(
        case: tuple[XeroEmulator, Session]) -> None:
    emu, session = case
    targets = _targets(emu)
    assert len(targets) >= 5
    before = {t.id: ([line_json(li, t) for li in copy.deepcopy(t.lines)], t.total)
              for t in targets.values()}
    invoices_before = set(emu.org().invoices)
    emu.counters.reset()
    fresh = _read(session, targets)
    actions = {shape: _fee(t, shape) for shape, t in targets.items()}
    results = session.connector.write_batch(
        [BatchWrite(a, fresh[a.invoice_id]) for a in actions.values()])

    assert emu.counters.calls[READ] == 1 and emu.counters.calls[POST] == 1
    assert emu.counters.calls.get(PUT, 0) == 0
    assert [r.key for r in results] == [a.key for a in actions.values()]
    assert all(r.error is None and r.ref for r in results), results
    created = set(emu.org().invoices) - invoices_before
    for shape, target in targets.items():
        lines, total = before[target.id]
        assert [line_json(li, target) for li in target.lines[:len(lines)]] == lines
        ref = next(r.ref for r in results if r.key == actions[shape].key)
        assert ref is not None
        if shape in ("part_paid", "locked"):  # known before writing: a fee invoice
            assert ref.startswith("invoice:") and target.total == total
        else:
            assert ref.startswith("line:") and target.total == total + FEE
            assert mentions_key(target.lines[-1].description, actions[shape].key)
    assert len(created) == sum(1 for s in targets if s in ("part_paid", "locked"))
    emu.learn_keys(a.key for a in actions.values())  # one Idempotency-Key per batch call
    keys = [e.key for e in emu.effects()]
    assert all(keys.count(a.key) == 1 for a in actions.values())
    # the batch's Idempotency-Key: derived from the items' keys, <= 128 characters
    sent = [k for k in emu.org().request_keys if k.startswith("ar-batch-")]
    assert len(sent) == 1 and len(sent[0]) <= 128
    assert sent[0] not in {a.key for a in actions.values()}
    for action in actions.values():
        assert session.connector.find_effect(fresh[action.invoice_id], ActionKind.LATE_FEE,
                                             action.key) is not None


def test_a_refused_line_edit_falls_back_to_a_fee_invoice_under_its_own_key(
        case: tuple[XeroEmulator, Session]) -> None:
    emu, session = case
    targets = _targets(emu)
    plain = targets["exclusive"]
    fresh = _read(session, {"exclusive": plain, "tracked": targets["tracked"]})
    session.connector.organisation()  # the lock date as read: before the invoice's date
    org = emu.org()
    org.period_lock = plain.date  # a lock set since: Xero now refuses the edit
    total = plain.total
    actions = [_fee(plain, "exclusive"), _fee(targets["tracked"], "tracked")]
    before = set(org.invoices)
    emu.counters.reset()
    results = session.connector.write_batch([BatchWrite(a, fresh[a.invoice_id])
                                             for a in actions])
    assert all(r.error is None for r in results), results
    assert results[0].ref is not None and results[0].ref.startswith("invoice:")
    assert emu.counters.calls[POST] == 1 and emu.counters.calls[PUT] == 1
    assert plain.total == total  # the edit did not happen
    (new_id,) = set(org.invoices) - before
    assert org.invoices[new_id].total == FEE
    first = batch_key([a.key for a in actions])
    fallback = [k for k in org.request_keys if k.startswith("ar-batch-") and k != first]
    assert len(fallback) == 1  # its own key, never the refused call's
    emu.learn_keys(a.key for a in actions)
    assert [e.key for e in emu.effects()].count(actions[0].key) == 1


def test_each_elements_refusal_lands_on_its_own_item(
        case: tuple[XeroEmulator, Session]) -> None:
    emu, session = case
    targets = _targets(emu)
    good, voided = targets["exclusive"], targets["tracked"]
    fresh = _read(session, {"a": good, "b": voided})
    voided.status = "VOIDED"  # voided on Xero after our read: its edit is refused
    actions = [_fee(good, "exclusive"), _fee(voided, "tracked")]
    results = session.connector.write_batch([BatchWrite(a, fresh[a.invoice_id])
                                             for a in actions])
    assert results[0].error is None and results[0].ref
    assert isinstance(results[1].error, PlatformValidationError)
    assert not isinstance(results[1].error, TransientError)
    assert good.total == fresh[good.id].total + FEE


def test_fresh_reads_page_ids_and_report_deleted_ones(
        case: tuple[XeroEmulator, Session]) -> None:
    emu, session = case
    ids = [i.id for i in emu.org().invoices.values()][:MAX_BATCH + 7]
    gone = ids[3]
    emu.org().invoices[gone].status = "DELETED"
    emu.counters.reset()
    fresh = session.connector.get_invoices(ids)
    assert emu.counters.calls[READ] == 2  # 50 ids per call
    assert fresh[gone] is None
    assert all(fresh[i] is not None for i in ids if i != gone)


def test_a_line_fee_without_a_fresh_read_is_not_written(
        case: tuple[XeroEmulator, Session]) -> None:
    emu, session = case
    target = _targets(emu)["exclusive"]
    invoice = session.connector.get_invoice(target.id)  # not the batch read
    assert invoice is not None
    results = session.connector.write_batch([BatchWrite(_fee(target, "x"), invoice)])
    assert isinstance(results[0].error, TransientError)
    assert target.total == invoice.total
    assert round_money(FEE, "NZD") == FEE
