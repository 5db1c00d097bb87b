"""Late fees on real companies through the real SDK: edition (US, UK) x invoice shape x fee
mode, with and without tax on the fee. After each fee, judged from the emulator's own JSON
(not the connector's word): every other line unchanged field by field, totals = before + fee
(+ its tax when the rule charges tax), nothing written twice; a deleted invoice gets nothing."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from qbo_helpers import Session, connect
from quickbooks.exceptions import QuickbooksException

from ar_sync.domain.errors import NotApplicableError
from ar_sync.domain.models import FeeMode, Invoice, Money
from ar_sync.domain.money import to_decimal
from ar_sync.domain.references import mentions_key
from ar_sync.sync.budget import CallBudget
from ar_sync_emulators.quickbooks.companies import SHAPES, real_company
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_quickbooks import QuickBooksPlugin

FEE = Decimal("12.50")
CENT = Decimal("0.01")
# (edition, the rule's tax: None for the default, and the rate it charges)
TAXES = {"US": [(None, Decimal(0)), ("TAX", Decimal("8.625"))],
         "UK": [(None, Decimal(0)), ("20.0% S", Decimal(20))]}


def _session(edition: str) -> Iterator[Session]:
    emu = QuickBooksEmulator(edition=edition)
    emu.seed_rows(*real_company(edition))
    plugin = QuickBooksPlugin(sleep=lambda _s: None)
    with emu.serve():
        settings = emu.settings()
        store, connection = connect(emu, plugin, settings)
        yield Session(emu, settings, plugin, store, connection, CallBudget(), [])


@pytest.fixture(params=["US", "UK"])
def real(request: pytest.FixtureRequest) -> Iterator[Session]:
    yield from _session(request.param)


def _edition(s: Session) -> str:
    return "US" if s.emu.edition.us else "UK"


def _find(s: Session, shape: str) -> Invoice:
    invoices = s.open().fetch_open_invoices().invoices
    return next(i for i in invoices if i.number == f"{shape.upper().replace('_', '-')}-1")


def _money(raw: dict[str, Any], field: str) -> Decimal:
    return to_decimal(raw.get(field) or 0)


def _tax(raw: dict[str, Any]) -> Decimal:
    return to_decimal(raw["TxnTaxDetail"]["TotalTax"])


def _without_trailing_subtotal(raw: dict[str, Any]) -> list[dict[str, Any]]:
    lines = list(raw["Line"])
    while lines and lines[-1]["DetailType"] == "SubTotalLineDetail":
        lines.pop()
    return lines


def _fee_invoices(s: Session, key: str) -> list[dict[str, Any]]:
    return [inv for inv in s.emu.rows["Invoice"].values()
            if mentions_key(inv.get("PrivateNote"), key)]


@pytest.mark.parametrize("mode", [FeeMode.LINE, FeeMode.INVOICE])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("taxed", [False, True])
def test_fee_changes_nothing_but_the_fee(real: Session, shape: str, mode: FeeMode,
                                         taxed: bool) -> None:
    tax, rate = TAXES[_edition(real)][int(taxed)]
    inv = _find(real, shape)
    before = copy.deepcopy(real.emu.invoice(inv.id))
    key = f"armx{shape[:6]}{mode.value[:2]}{int(taxed)}"
    connector = real.open()
    fresh = connector.get_invoice(inv.id)
    assert fresh is not None
    ref = connector.add_late_fee(fresh, Money(amount=FEE, currency=inv.currency), "Late fee",
                                 key=key, mode=mode, tax=tax)
    after = real.emu.invoice(inv.id)
    due_tax = (FEE * rate / 100).quantize(Decimal("0.01"))
    on_invoice = mode == FeeMode.LINE and "discount" not in shape
    if on_invoice:
        assert ref.startswith(f"{inv.id}:line:")
        old, new = _without_trailing_subtotal(before), _without_trailing_subtotal(after)
        fee_lines = [ln for ln in new if mentions_key(ln.get("Description"), key)]
        assert len(fee_lines) == 1 and to_decimal(fee_lines[0]["Amount"]) == FEE
        assert [ln for ln in new if ln is not fee_lines[0]] == old  # field by field
        charged = _tax(after) - _tax(before)
        # QBO rounds tax once per rate over the invoice: the fee's share may be a cent off
        assert charged == due_tax if rate == 0 else abs(charged - due_tax) <= CENT
        assert _money(after, "TotalAmt") - _money(before, "TotalAmt") == FEE + charged
        assert _money(after, "Balance") - _money(before, "Balance") == FEE + charged
        assert _fee_invoices(real, key) == []
    else:  # a separate fee invoice; the original is untouched
        assert ref.startswith("Invoice:")
        assert after == before
        (created,) = _fee_invoices(real, key)
        assert abs(_money(created, "TotalAmt") - FEE - due_tax) <= (CENT if rate else 0)
        assert _money(created, "TotalAmt") == FEE + _tax(created)
        assert created["CustomerRef"]["value"] == before["CustomerRef"]["value"]
        assert created["CurrencyRef"]["value"] == before["CurrencyRef"]["value"]
    writes = real.emu.counters.writes_applied
    again = real.open()
    fresh = again.get_invoice(inv.id)
    assert fresh is not None
    assert again.add_late_fee(fresh, Money(amount=FEE, currency=inv.currency), "Late fee",
                              key=key, mode=mode, tax=tax) == ref
    assert real.emu.counters.writes_applied == writes  # nothing written twice
    keys = [e.key for e in real.emu.effects() if e.kind == "late_fee"]
    assert keys.count(key) == 1


def test_deleted_mid_run_gets_nothing_and_leaves_the_snapshot(real: Session) -> None:
    connector = real.open()
    first = connector.fetch_open_invoices()
    inv = next(i for i in first.invoices if i.number == "TAX-EXCLUSIVE-1")
    real.emu.delete(inv.id)  # a person deletes it between planning and the write
    invoices = copy.deepcopy(real.emu.rows["Invoice"])
    later = real.open()
    assert later.get_invoice(inv.id) is None  # what the sync re-reads before a fee
    with pytest.raises(NotApplicableError, match=r"no longer exists|deleted"):
        later.add_late_fee(inv, Money(amount=FEE, currency=inv.currency), "Late fee",
                           key="armxdel", mode=FeeMode.LINE)
    assert real.emu.rows["Invoice"] == invoices  # nothing written to any invoice
    assert [e for e in real.emu.effects() if e.kind == "late_fee"] == []
    assert first.checkpoint is not None
    changes = later.fetch_open_invoices(since=first.checkpoint)  # incremental: /cdc
    assert changes.removed == [inv.id]
    assert inv.id not in {i.id for i in changes.invoices}


def test_non_us_line_without_tax_code_is_fault_6000() -> None:
    for session in _session("UK"):
        inv = _find(session, "tax_exclusive")
        raw = session.emu.invoice(inv.id)
        line = {"Amount": 5, "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}
        body = {"Id": inv.id, "SyncToken": raw["SyncToken"], "sparse": True,
                "Line": [*raw["Line"], line]}
        client = session.open().client
        with pytest.raises(QuickbooksException, match=r"VAT rate|validation") as caught:
            client.update_object("Invoice", json.dumps(body))
        assert str(caught.value.error_code) == "6000"
        assert session.emu.invoice(inv.id)["TotalAmt"] == raw["TotalAmt"]
