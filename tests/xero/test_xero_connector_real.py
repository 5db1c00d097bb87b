"""The Xero connector against a real-looking organisation: no settings scope (lock dates
unknown), a lock set after the read, fee tax names, the daily e-mail limit, fee-invoice keys."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from xero_support import FakeClock, connect

from ar_sync.domain.errors import PlatformValidationError, TransientError
from ar_sync.domain.models import FeeMode, Money
from ar_sync_emulators.xero.model import XInvoice
from ar_sync_emulators.xero.server import XeroEmulator
from ar_sync_xero.fee_lines import fee_invoice_key

NO_SETTINGS = ("openid", "profile", "email", "accounting.invoices",
               "accounting.contacts.read", "offline_access")
KEY = "ar" + "1" * 32


def _unpaid(emu: XeroEmulator, *, locked: bool) -> XInvoice:
    lock = emu.org().period_lock
    assert lock is not None
    return next(i for i in emu.org().invoices.values()
                if not i.payments and (i.date <= lock) == locked and i.currency == "NZD")


def test_without_settings_scope_a_lock_refusal_falls_back_to_a_fee_invoice(
        nz: XeroEmulator, clock: FakeClock) -> None:
    session = connect(nz, clock, scopes=NO_SETTINGS)
    target = _unpaid(nz, locked=True)
    invoice = session.connector.get_invoice(target.id)
    assert invoice is not None
    before = len(nz.org().invoices)
    ref = session.connector.add_late_fee(invoice, Money(amount=Decimal(10), currency="NZD"),
                                         "Late fee", key=KEY, mode=FeeMode.LINE)
    assert ref.startswith("invoice:") and len(nz.org().invoices) == before + 1
    assert nz.counters.calls["POST /api.xro/2.0/Invoices/{id}"] == 1  # tried, refused
    assert not session.connector.organisation().known


def test_lock_set_after_the_read_falls_back_and_uses_a_derived_key(
        nz: XeroEmulator, clock: FakeClock) -> None:
    session = connect(nz, clock)
    target = _unpaid(nz, locked=False)
    invoice = session.connector.get_invoice(target.id)
    assert invoice is not None
    session.connector.organisation()  # read before the bookkeeper moves the lock
    nz.org().period_lock = target.date + timedelta(days=1)
    ref = session.connector.add_late_fee(invoice, Money(amount=Decimal(10), currency="NZD"),
                                         "Late fee", key=KEY, mode=FeeMode.LINE)
    assert ref.startswith("invoice:")
    keys = {k for k, _, _ in nz.idempotency._answers}  # the keys Xero was sent
    assert keys == {KEY, fee_invoice_key(KEY)} and fee_invoice_key(KEY) != KEY


def test_unknown_fee_tax_is_refused_by_name(nz: XeroEmulator, clock: FakeClock) -> None:
    session = connect(nz, clock)
    invoice = session.connector.get_invoice(_unpaid(nz, locked=False).id)
    assert invoice is not None
    with pytest.raises(PlatformValidationError, match="'VAT20'"):
        session.connector.add_late_fee(invoice, Money(amount=Decimal(10), currency="NZD"),
                                       "Late fee", key=KEY, mode=FeeMode.LINE, tax="VAT20")
    assert not any(KEY in li.description for i in nz.org().invoices.values() for li in i.lines)


def test_daily_email_limit_is_retried_later_without_more_calls(nz: XeroEmulator,
                                                               clock: FakeClock) -> None:
    nz.org().email_limit = 1
    session = connect(nz, clock)
    mailable = [i for i in nz.org().invoices.values() if nz.org().contacts[i.contact_id].email]
    invoices = [session.connector.get_invoice(i.id) for i in mailable[:3]]
    assert all(invoices)
    session.connector.send_reminder(invoices[0], key="ar" + "a" * 32)  # type: ignore[arg-type]
    for n, inv in enumerate(invoices[1:]):
        with pytest.raises(TransientError, match="later run"):
            session.connector.send_reminder(inv, key=f"ar{n}" + "b" * 31)  # type: ignore[arg-type]
    assert nz.counters.calls["POST /api.xro/2.0/Invoices/{id}/Email"] == 2  # not 3
    assert not clock.slept  # not retried within the run either: no waits for nothing
