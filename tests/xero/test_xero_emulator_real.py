"""The Xero emulator as a real organisation through xero-python: tax rates, line tax and
rounding, discounts, tracking, lock dates, batches, history POST, key length, e-mail limit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests
from xero_python.accounting import (
    AccountingApi,
    Contact,
    HistoryRecord,
    HistoryRecords,
    Invoice,
    Invoices,
    LineAmountTypes,
    LineItem,
    LineItemTracking,
    RequestEmpty,
)
from xero_python.exceptions import ApiException
from xero_support import FakeClock, access_token

from ar_sync_emulators.xero.model import XInvoice
from ar_sync_emulators.xero.server import XeroEmulator
from ar_sync_xero.calls import new_api_client, sdk_token


@pytest.fixture
def api(nz: XeroEmulator) -> AccountingApi:
    token = access_token(nz)
    return AccountingApi(new_api_client(lambda: sdk_token(token)),
                         base_url=nz.settings().endpoints["api"])


def _shape(emu: XeroEmulator, test: Any) -> XInvoice:
    return next(i for i in emu.org().invoices.values() if test(i) and not i.payments)


def _update(api: AccountingApi, emu: XeroEmulator, inv_id: str, **fields: Any) -> Invoice:
    if "line_amount_types" in fields:
        fields["line_amount_types"] = LineAmountTypes(fields["line_amount_types"])
    body = Invoices(invoices=[Invoice(invoice_id=inv_id, **fields)])
    return api.update_invoice(emu.tenant_id, inv_id, body, unitdp=4).invoices[0]


def _fresh_unlocked(emu: XeroEmulator, types: str) -> XInvoice:
    lock = emu.org().period_lock
    assert lock is not None
    return _shape(emu, lambda i: i.amount_types == types and i.date > lock)


def test_organisation_and_tax_rates_deserialize(nz: XeroEmulator, api: AccountingApi) -> None:
    org = api.get_organisations(nz.tenant_id).organisations[0]
    assert org.period_lock_date == nz.org().period_lock
    assert str(org.base_currency.value if hasattr(org.base_currency, "value")
               else org.base_currency) == "NZD"
    rates = {r.tax_type: r for r in api.get_tax_rates(nz.tenant_id).tax_rates}
    assert Decimal(str(rates["OUTPUT2"].effective_rate)) == Decimal(15)
    assert rates["NONE"].can_apply_to_revenue


def test_settings_endpoints_need_a_settings_scope(nz: XeroEmulator) -> None:
    token = access_token(nz, scope="openid accounting.invoices offline_access")
    limited = AccountingApi(new_api_client(lambda: sdk_token(token)),
                            base_url=nz.settings().endpoints["api"])
    with pytest.raises(ApiException) as exc:
        limited.get_organisations(nz.tenant_id)
    assert exc.value.status == 401


@pytest.mark.parametrize(("types", "qty", "unit", "disc", "amount", "tax"), [
    ("Exclusive", "1", "100.00", None, "100.00", "15.00"),
    ("Inclusive", "1", "115.00", None, "115.00", "15.00"),
    ("Exclusive", "3", "33.33", "10", "89.99", "13.50"),  # 89.991 -> 89.99; 13.4985 -> 13.50
    ("Inclusive", "7", "10.01", "12.5", "61.31", "8.00"),  # 61.30875; 61.31*15/115 = 7.9969
])
def test_line_tax_and_totals_round_per_line(nz: XeroEmulator, api: AccountingApi, types: str,
                                            qty: str, unit: str, disc: str | None,
                                            amount: str, tax: str) -> None:
    inv = _fresh_unlocked(nz, types)
    line = LineItem(description="Check", quantity=Decimal(qty), unit_amount=Decimal(unit),
                    account_code="200", tax_type="OUTPUT2")
    if disc:
        line.discount_rate = Decimal(disc)
    got = _update(api, nz, inv.id, line_items=[line], line_amount_types=types)
    li = got.line_items[0]
    assert (Decimal(str(li.line_amount)), Decimal(str(li.tax_amount))) == (
        Decimal(amount), Decimal(tax))
    sub = Decimal(amount) - Decimal(tax) if types == "Inclusive" else Decimal(amount)
    assert Decimal(str(got.sub_total)) == sub and Decimal(str(got.total_tax)) == Decimal(tax)
    assert Decimal(str(got.total)) == sub + Decimal(tax)


def test_line_without_tax_type_takes_the_accounts_default(nz: XeroEmulator,
                                                           api: AccountingApi) -> None:
    inv = _fresh_unlocked(nz, "Exclusive")
    got = _update(api, nz, inv.id, line_amount_types="Exclusive", line_items=[LineItem(
        description="Fee", quantity=Decimal(1), unit_amount=Decimal(20), account_code="200")])
    assert got.line_items[0].tax_type == "OUTPUT2"
    assert Decimal(str(got.total)) == Decimal("23.00")


def test_resending_lines_without_their_fields_changes_the_invoice(
        nz: XeroEmulator, api: AccountingApi) -> None:
    """Safe side: a line re-sent without its discount, tracking or item loses them."""
    inv = _shape(nz, lambda i: any(li.discount_rate for li in i.lines)
                 and i.date > (nz.org().period_lock or i.date))
    before = inv.total
    bare = [LineItem(line_item_id=li.id, description=li.description, quantity=li.quantity,
                     unit_amount=li.unit_amount, account_code=li.account_code,
                     tax_type=li.tax_type) for li in inv.lines]
    got = _update(api, nz, inv.id, line_items=bare, line_amount_types=inv.amount_types)
    assert Decimal(str(got.total)) > before
    assert all(li.discount_rate is None for li in nz.invoice(inv.id).lines)


def test_line_amount_must_match_quantity_price_and_discount(nz: XeroEmulator,
                                                             api: AccountingApi) -> None:
    inv = _fresh_unlocked(nz, "Exclusive")
    with pytest.raises(ApiException) as exc:
        _update(api, nz, inv.id, line_items=[LineItem(
            description="x", quantity=Decimal(2), unit_amount=Decimal(10),
            line_amount=Decimal(19), account_code="200")])
    assert "does not match the expected line total 20.00" in exc.value.body.decode()


def test_tracking_is_checked_and_limited_to_two(nz: XeroEmulator, api: AccountingApi) -> None:
    inv = _fresh_unlocked(nz, "Exclusive")
    ok = _update(api, nz, inv.id, line_items=[LineItem(
        description="x", quantity=Decimal(1), unit_amount=Decimal(10), account_code="200",
        tracking=[LineItemTracking(name="Region", option="North")])])
    assert ok.line_items[0].tracking[0].option == "North"
    for tracking in ([LineItemTracking(name="Region", option="East")],
                     [LineItemTracking(name="Region", option="North")] * 3):
        with pytest.raises(ApiException) as exc:
            _update(api, nz, inv.id, line_items=[LineItem(
                description="x", quantity=Decimal(1), unit_amount=Decimal(10),
                account_code="200", tracking=tracking)])
        assert exc.value.status == 400


def test_locked_period_refuses_edits_but_takes_notes(nz: XeroEmulator,
                                                     api: AccountingApi) -> None:
    lock = nz.org().period_lock
    assert lock is not None
    inv = _shape(nz, lambda i: i.date <= lock)
    before = [(li.id, li.amount("NZD")) for li in inv.lines]
    with pytest.raises(ApiException) as exc:
        _update(api, nz, inv.id, reference="changed")
    assert "period lock date" in exc.value.body.decode()
    assert [(li.id, li.amount("NZD")) for li in inv.lines] == before
    records = HistoryRecords(history_records=[HistoryRecord(details="a note")])
    api.create_invoice_history(nz.tenant_id, inv.id, records)


def test_lines_of_a_part_paid_invoice_cannot_change(nz: XeroEmulator,
                                                    api: AccountingApi) -> None:
    lock = nz.org().period_lock
    assert lock is not None
    inv = next(i for i in nz.org().invoices.values() if i.payments and i.date > lock)
    with pytest.raises(ApiException) as exc:
        _update(api, nz, inv.id, line_items=[LineItem(description="x", quantity=Decimal(1),
                                                      unit_amount=Decimal(1))])
    assert "payment or credit note allocated" in exc.value.body.decode()


def _fee_invoice(emu: XeroEmulator, contact_id: str, amount: str) -> Invoice:
    today = emu.clock().date()
    return Invoice(type="ACCREC", contact=Contact(contact_id=contact_id), date=today,
                   due_date=today, status="AUTHORISED", line_items=[LineItem(
                       description="Fee", quantity=Decimal(1), unit_amount=Decimal(amount),
                       account_code="200", tax_type="NONE")])


def test_batch_with_summarize_errors_false_reports_each(nz: XeroEmulator,
                                                        api: AccountingApi) -> None:
    contact = next(iter(nz.org().contacts))
    count = len(nz.org().invoices)
    bad = _fee_invoice(nz, contact, "5")
    bad.line_items[0].account_code = "999"
    body = Invoices(invoices=[_fee_invoice(nz, contact, "5"), bad])
    got = api.create_invoices(nz.tenant_id, body, summarize_errors=False)
    assert [bool(i.has_errors) for i in got.invoices] == [False, True]
    assert "Account code '999'" in got.invoices[1].validation_errors[0].message
    assert len(nz.org().invoices) == count + 1
    with pytest.raises(ApiException):  # summarised: one refusal, nothing saved
        api.create_invoices(nz.tenant_id, body)
    assert len(nz.org().invoices) == count + 1


def test_post_history_behaves_as_put(nz: XeroEmulator, api: AccountingApi) -> None:
    inv = next(iter(nz.org().invoices.values()))
    token = access_token(nz)
    got = requests.post(f"{nz.settings().endpoints['api']}/Invoices/{inv.id}/History",
                        json={"HistoryRecords": [{"Details": "posted note"}]},
                        headers={"Authorization": f"Bearer {token}",
                                 "xero-tenant-id": nz.tenant_id}, timeout=5)
    assert got.status_code == 200 and inv.history[-1].details == "posted note"


def test_idempotency_key_longer_than_128_is_refused(nz: XeroEmulator,
                                                    api: AccountingApi) -> None:
    inv = next(iter(nz.org().invoices.values()))
    records = HistoryRecords(history_records=[HistoryRecord(details="n")])
    api.create_invoice_history(nz.tenant_id, inv.id, records, idempotency_key="k" * 128)
    with pytest.raises(ApiException) as exc:
        api.create_invoice_history(nz.tenant_id, inv.id, records, idempotency_key="k" * 129)
    assert exc.value.status == 400


def test_daily_email_limit_per_organisation(nz: XeroEmulator, api: AccountingApi,
                                            clock: FakeClock) -> None:
    nz.org().email_limit = 1
    mailable = [i for i in nz.org().invoices.values() if nz.org().contacts[i.contact_id].email]
    api.email_invoice(nz.tenant_id, mailable[0].id, RequestEmpty())
    with pytest.raises(ApiException) as exc:
        api.email_invoice(nz.tenant_id, mailable[1].id, RequestEmpty())
    assert "Daily email limit" in exc.value.body.decode()
    clock.advance(86400)  # a new day (and a new access token)
    token = access_token(nz)
    tomorrow = AccountingApi(new_api_client(lambda: sdk_token(token)),
                             base_url=nz.settings().endpoints["api"])
    tomorrow.email_invoice(nz.tenant_id, mailable[1].id, RequestEmpty())
