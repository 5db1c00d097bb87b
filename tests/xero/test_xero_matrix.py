"""The late-fee matrix through xero-python and the emulator: organisation (NZ GST with and
without tax on fees, an organisation without tax) x invoice shape x fee mode.

After each fee: every line that was there is unchanged field by field, the total rose by
exactly the fee (+ its tax when the rules charge one) or a separate fee invoice carries it,
and the write exists once (find_effect sees it, so the sync would never repeat it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from xero_support import FakeClock, Session, connect

from ar_sync.domain.errors import WriteVerificationError
from ar_sync.domain.models import ActionKind, FeeMode, Money, action_key
from ar_sync.domain.money import round_money
from ar_sync.domain.references import mentions_key
from ar_sync_emulators.xero import lines as xero_lines
from ar_sync_emulators.xero.model import Organisation, XInvoice, line_json
from ar_sync_emulators.xero.seed import nz_gst_organisation
from ar_sync_emulators.xero.server import XeroEmulator

FEE = Decimal("25.00")
# (name, region, the rule's tax, the fee's expected TaxType, its rate in percent)
ORGS = [("gst-no-fee-tax", "NZ", None, "NONE", Decimal(0)),
        ("gst-fee-taxed", "NZ", "15% GST on Income", "OUTPUT2", Decimal(15)),
        ("no-tax-org", "GLOBAL", None, "NONE", Decimal(0))]
SHAPES = ["exclusive", "inclusive", "discount_rate", "discount_amount", "tracked", "no_tax",
          "foreign", "part_paid", "locked"]


def _pick(org: Organisation, shape: str) -> XInvoice:
    lock = org.period_lock
    assert lock is not None
    tests: dict[str, Callable[[XInvoice], bool]] = {
        "exclusive": lambda i: i.amount_types == "Exclusive" and i.currency == "NZD",
        "inclusive": lambda i: i.amount_types == "Inclusive",
        "discount_rate": lambda i: any(li.discount_rate for li in i.lines),
        "discount_amount": lambda i: any(li.discount_amount for li in i.lines),
        "tracked": lambda i: any(li.tracking for li in i.lines)
        and any(li.item_code for li in i.lines),
        "no_tax": lambda i: i.amount_types == "NoTax",
        "foreign": lambda i: i.currency == "AUD",
        "part_paid": lambda i: bool(i.payments),
        "locked": lambda i: not i.payments,
    }
    in_lock = shape == "locked"
    return next(i for i in org.invoices.values()
                if tests[shape](i) and (i.date <= lock) == in_lock
                and (shape == "part_paid") == bool(i.payments))


@pytest.fixture(params=ORGS, ids=[o[0] for o in ORGS])
def case(request: pytest.FixtureRequest,
         clock: FakeClock) -> Iterator[tuple[XeroEmulator, Session, tuple[object, ...]]]:
    name, region, *_ = request.param
    emulator = XeroEmulator(clock=clock)
    emulator.add_organisation(nz_gst_organisation(f"1e9f0c3a-0000-4000-8000-{len(name):012d}",
                                                  clock(), region=str(region)))
    with emulator.serve():
        yield emulator, connect(emulator, clock), request.param


@pytest.mark.parametrize("mode", [FeeMode.LINE, FeeMode.INVOICE])
@pytest.mark.parametrize("shape", SHAPES)
def test_fee_changes_nothing_but_the_total(case: tuple[XeroEmulator, Session, tuple[object, ...]],
                                          shape: str, mode: FeeMode) -> None:
    emu, session, (_, _, tax, tax_type, rate) = case
    org = emu.org()
    target = _pick(org, shape)
    lines_before = [line_json(li, target) for li in copy.deepcopy(target.lines)]
    total_before, invoices_before = target.total, set(org.invoices)
    invoice = session.connector.get_invoice(target.id)
    assert invoice is not None
    key = action_key(org.tenant_id, "xero", target.id, ActionKind.LATE_FEE, "late", shape)

    ref = session.connector.add_late_fee(invoice, Money(amount=FEE, currency=target.currency),
                                         "Late fee", key=key, mode=mode,
                                         tax=tax if isinstance(tax, str) else None)

    assert isinstance(rate, Decimal)
    on_line = mode == FeeMode.LINE and shape not in ("part_paid", "locked")
    kept = target.lines[:len(lines_before)]
    assert [line_json(li, target) for li in kept] == lines_before  # field by field, as Xero
    # shows them: amounts, tax, discount, tracking, item, account
    if on_line:
        assert ref.startswith("line:") and set(org.invoices) == invoices_before
        fee_line = target.lines[-1]
        assert len(target.lines) == len(lines_before) + 1
        assert mentions_key(fee_line.description, key)
        assert fee_line.tax_type == tax_type
        tax_due = Decimal(0) if target.amount_types == "NoTax" else round_money(
            FEE * rate / 100, target.currency)
        assert target.total == total_before + FEE + tax_due
    else:
        assert ref.startswith("invoice:")
        assert len(target.lines) == len(lines_before) and target.total == total_before
        (new_id,) = set(org.invoices) - invoices_before
        fee_invoice = org.invoices[new_id]
        assert fee_invoice.date == emu.clock().date() and fee_invoice.currency == target.currency
        assert fee_invoice.lines[0].tax_type == tax_type
        assert fee_invoice.total == FEE + round_money(FEE * rate / 100, target.currency)
        # lock dates and payments are known before writing: no edit is even tried
        assert emu.counters.calls["POST /api.xro/2.0/Invoices/{id}"] == 0
    assert emu.counters.calls["GET /api.xro/2.0/Organisation"] <= 1
    assert [e.key for e in emu.effects()].count(key) == 1
    assert session.connector.find_effect(invoice, ActionKind.LATE_FEE, key) is not None


def test_a_line_changed_by_the_write_is_a_typed_error_with_both_figures(
        case: tuple[XeroEmulator, Session, tuple[object, ...]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Xero dropping a line's tracking on update (as reported in xero-node#592) is caught."""
    emu, session, _ = case
    target = _pick(emu.org(), "tracked")
    invoice = session.connector.get_invoice(target.id)
    assert invoice is not None
    monkeypatch.setattr(xero_lines, "_tracking", lambda org, raw: ())
    with pytest.raises(WriteVerificationError, match="changed with the fee") as exc:
        session.connector.add_late_fee(invoice, Money(amount=FEE, currency=target.currency),
                                       "Late fee", key="ar" + "0" * 32, mode=FeeMode.LINE)
    # both figures: the line as read (with its tracking) and as Xero now has it (without)
    assert exc.value.actual.endswith("())") and not exc.value.expected.endswith("())")
