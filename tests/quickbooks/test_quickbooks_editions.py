"""Editions and companies: the fee's tax code per edition (pure), two realms behind one URL
(the demo's US and UK companies), and CDC reporting deletions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from qbo_helpers import connect

from ar_sync.domain.errors import PlatformValidationError
from ar_sync.sync.budget import CallBudget
from ar_sync_emulators.quickbooks.companies import real_company
from ar_sync_emulators.quickbooks.companies_server import QuickBooksCompanies
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_emulators.quickbooks.tax import AU, CA, UK, tax_rows
from ar_sync_quickbooks import QuickBooksPlugin
from ar_sync_quickbooks.fees import choose_fee_tax


def _codes(edition: object) -> tuple[list[dict[str, object]], dict[str, Decimal]]:
    rows = tax_rows(edition, "2025-01-01T00:00:00-08:00")  # type: ignore[arg-type]
    rates = {k: Decimal(str(v["RateValue"])) for k, v in rows["TaxRate"].items()}
    return list(rows["TaxCode"].values()), rates


@pytest.mark.parametrize(("edition", "name"), [(UK, "No VAT"), (CA, "Out of Scope"),
                                               (AU, "Out of Scope")])
def test_default_fee_tax_is_the_out_of_scope_code(edition: object, name: str) -> None:
    codes, rates = _codes(edition)
    chosen = choose_fee_tax(None, us=False, codes=codes, rates=rates)
    assert chosen.rate == 0
    assert next(c["Name"] for c in codes if c["Id"] == chosen.code) == name


def test_named_fee_tax_and_its_rate() -> None:
    codes, rates = _codes(UK)
    chosen = choose_fee_tax("20.0% s", us=False, codes=codes, rates=rates)
    assert chosen.rate == Decimal(20)
    with pytest.raises(PlatformValidationError, match=r"not found.*No VAT"):
        choose_fee_tax("VAT 17.5%", us=False, codes=codes, rates=rates)
    assert choose_fee_tax(None, us=True, codes=[], rates={}).code == "NON"
    assert choose_fee_tax("tax", us=True, codes=[], rates={}).rate is None
    with pytest.raises(PlatformValidationError, match="TAX or NON"):
        choose_fee_tax("20.0% S", us=True, codes=[], rates={})


def test_two_realms_behind_one_url_each_with_its_own_invoices() -> None:
    us = QuickBooksEmulator(realm_id="9341453000000011")
    uk = QuickBooksEmulator(realm_id="9341453000000022", edition="UK")
    us.seed_rows(*real_company("US"))
    uk.seed_rows(*real_company("UK"))
    plugin = QuickBooksPlugin(sleep=lambda _s: None)
    front = QuickBooksCompanies([us, uk])
    with front.serve():
        settings = front.settings()
        seen = {}
        for _ in range(2):  # one consent per company, as on Intuit's consent screen
            store, connection = connect(us, plugin, settings)
            connector = plugin.open(settings, connection, store, CallBudget())
            invoices = connector.fetch_open_invoices().invoices
            seen[connection.external_id] = {i.currency for i in invoices}
            assert connection.name in ("Bayside Supply Inc", "Thames Joinery Ltd")
        assert seen == {"9341453000000011": {"USD", "EUR"}, "9341453000000022": {"GBP", "EUR"}}
