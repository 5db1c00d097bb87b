"""The Xero connector through xero-python over real HTTP against the emulator."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from xero_support import FakeClock, Session, connect

from ar_sync.domain.errors import (
    PlatformTimeoutError,
    PlatformValidationError,
    ReauthorizationRequiredError,
)
from ar_sync.domain.models import ActionKind, FeeMode, Invoice, InvoiceStatus, Money
from ar_sync.domain.references import customer_reference, key_marker, reference_text
from ar_sync_emulators.xero.server import XeroEmulator
from ar_sync_xero import effects

FEE_KEY = "ar" + "fee0" * 8  # shaped like an action key: the emulator resolves its reference
D2_KEY = "ar" + "d2" * 16


def _open_count(emu: XeroEmulator) -> int:
    return sum(1 for i in emu.org().invoices.values() if i.status == "AUTHORISED")


def test_exchange_lists_the_organisation(emu: XeroEmulator, session: Session) -> None:
    assert session.connection.external_id == emu.tenant_id
    assert session.connection.name == "Demo Trading Co"


def test_full_fetch_is_one_page_and_maps_fields(emu: XeroEmulator, session: Session) -> None:
    result = session.connector.fetch_open_invoices()
    assert result.full and not result.warnings
    assert len(result.invoices) == _open_count(emu)
    assert emu.counters.calls["GET /api.xro/2.0/Invoices"] == 1
    assert sum(i.disputed for i in result.invoices) == 1
    sample = result.invoices[0]
    raw = emu.invoice(sample.id)
    assert (sample.due_date, sample.issue_date) == (raw.due_date, raw.date)
    assert sample.balance == raw.amount_due and sample.currency == raw.currency
    assert sample.updated_at == raw.updated and sample.updated_at.tzinfo is not None
    assert {i.currency for i in result.invoices} >= {"USD", "GBP", "EUR", "JPY", "BHD"}
    assert result.checkpoint is not None


def test_pagination_walks_every_page(emu: XeroEmulator, clock: FakeClock) -> None:
    s = connect(emu, clock, page_size=50)
    result = s.connector.fetch_open_invoices()
    expected = _open_count(emu)
    assert len({i.id for i in result.invoices}) == expected
    assert emu.counters.calls["GET /api.xro/2.0/Invoices"] == -(-expected // 50)


def test_incremental_returns_changes_including_paid(emu: XeroEmulator, session: Session,
                                                   clock: FakeClock) -> None:
    first = session.connector.fetch_open_invoices()
    clock.advance(60)
    open_ids = [i.id for i in first.invoices]
    emu.pay(open_ids[0], emu.invoice(open_ids[0]).amount_due)  # now PAID
    emu.touch(open_ids[1])
    emu.counters.reset()
    changed = session.connector.fetch_open_invoices(since=first.checkpoint)
    assert not changed.full
    by_id = {i.id: i for i in changed.invoices}
    assert set(by_id) == {open_ids[0], open_ids[1]}
    assert by_id[open_ids[0]].status == InvoiceStatus.PAID
    assert emu.counters.total_calls == 1
    assert first.checkpoint is not None and changed.checkpoint is not None
    assert changed.checkpoint > first.checkpoint
    clock.advance(60)
    nothing = session.connector.fetch_open_invoices(since=changed.checkpoint)
    assert nothing.invoices == [] and emu.counters.total_calls == 2


def _overdue(session: Session, emu: XeroEmulator, *, paid: bool = False,
             email: bool = True) -> Invoice:
    for inv in session.connector.fetch_open_invoices().invoices:
        if (inv.amount_paid > 0) == paid and bool(inv.customer_email) == email \
                and not inv.disputed:
            return inv
    raise AssertionError("no such invoice in the demo company")


def test_note_carries_marker_and_key(emu: XeroEmulator, session: Session) -> None:
    inv = _overdue(session, emu)
    assert session.connector.find_effect(inv, ActionKind.NOTE, "k-note") is None
    ref = session.connector.add_note(inv, "Friendly reminder", key="k-note")
    notes = [e for e in emu.effects() if e.kind == "note"]
    assert [(e.invoice_id, e.key) for e in notes] == [(inv.id, "k-note")]
    assert session.connector.find_effect(inv, ActionKind.NOTE, "k-note") == ref
    details = emu.invoice(inv.id).history[-1].details
    assert details.startswith("Friendly reminder") and key_marker("k-note") in details


def test_payment_link_fetched_only_when_a_note_uses_it(emu: XeroEmulator,
                                                       session: Session) -> None:
    inv = _overdue(session, emu)
    assert inv.payment_link and inv.payment_link.startswith("xero-online-invoice:")
    session.connector.add_note(inv, "No link here", key="k1")
    assert emu.counters.calls["GET /api.xro/2.0/Invoices/{id}/OnlineInvoice"] == 0
    session.connector.add_note(inv, f"Pay at {inv.payment_link} today", key="k2")
    assert emu.counters.calls["GET /api.xro/2.0/Invoices/{id}/OnlineInvoice"] == 1
    text = emu.invoice(inv.id).history[-1].details
    assert f"{emu.url}/online/" in text and "xero-online-invoice:" not in text


def test_reminder_email_uses_idempotency_key(emu: XeroEmulator, session: Session) -> None:
    inv = _overdue(session, emu)
    session.connector.send_reminder(inv, key="k-mail")
    session.connector.send_reminder(inv, key="k-mail")  # a retry: replayed, not sent again
    emails = [e for e in emu.effects() if e.kind == "email"]
    assert [(e.invoice_id, e.key) for e in emails] == [(inv.id, "k-mail")]
    assert emu.counters.writes_replayed == 1


def test_reminder_to_contact_without_email_is_a_validation_error(
        emu: XeroEmulator, session: Session) -> None:
    inv = _overdue(session, emu, email=False)
    with pytest.raises(PlatformValidationError, match="valid email address"):
        session.connector.send_reminder(inv, key="k-x")


@pytest.mark.parametrize("mode", [FeeMode.LINE, FeeMode.INVOICE])
def test_late_fee_in_both_modes(emu: XeroEmulator, session: Session, mode: FeeMode) -> None:
    inv = _overdue(session, emu)
    before = emu.invoice(inv.id).total
    fee = Money.of("25.00", inv.currency)
    assert session.connector.find_effect(inv, ActionKind.LATE_FEE, FEE_KEY) is None
    ref = session.connector.add_late_fee(inv, fee, "Late fee", key=FEE_KEY, mode=mode)
    fees = [e for e in emu.effects() if e.kind == "late_fee"]
    assert [(e.invoice_id, e.key) for e in fees] == [(inv.id, FEE_KEY)]
    if mode == FeeMode.LINE:
        assert ref.startswith("line:") and emu.invoice(inv.id).total == before + fee.amount
    else:
        assert ref.startswith("invoice:") and emu.invoice(inv.id).total == before
        created = emu.invoice(ref.split(":", 1)[1])
        assert created.contact_id == inv.customer_id and created.total == fee.amount
        assert inv.number in created.reference and reference_text(FEE_KEY) in created.reference
    assert session.connector.find_effect(inv, ActionKind.LATE_FEE, FEE_KEY) == ref
    again = {i.id: i for i in session.connector.fetch_open_invoices().invoices}
    assert again[inv.id].late_fees_charged == fee.amount
    assert ref.split(":", 1)[1] not in again  # a fee invoice is not chased itself


def test_fee_line_falls_back_to_fee_invoice_when_paid_part(emu: XeroEmulator,
                                                           session: Session) -> None:
    inv = _overdue(session, emu, paid=True)
    ref = session.connector.add_late_fee(inv, Money.of(10, inv.currency), "Late fee",
                                         key="k-fb", mode=FeeMode.LINE)
    assert ref.startswith("invoice:")
    assert emu.counters.calls["POST /api.xro/2.0/Invoices/{id}"] == 0


def test_fee_line_rejected_by_xero_after_a_payment_falls_back(emu: XeroEmulator,
                                                             session: Session) -> None:
    inv = _overdue(session, emu)  # unpaid when fetched ...
    emu.pay(inv.id, "1.00")  # ... paid in part before the fee is written
    ref = session.connector.add_late_fee(inv, Money.of(10, inv.currency), "Late fee",
                                         key="k-race", mode=FeeMode.LINE)
    assert ref.startswith("invoice:")
    assert emu.counters.calls["POST /api.xro/2.0/Invoices/{id}"] == 1  # the rejected try
    assert [e.key for e in emu.effects() if e.kind == "late_fee"] == ["k-race"]


def test_token_expiry_mid_run_refreshes_once(emu: XeroEmulator, session: Session) -> None:
    session.connector.fetch_open_invoices()
    emu.faults.expire_tokens()
    assert session.connector.fetch_open_invoices().invoices
    assert emu.counters.calls["GET /api.xro/2.0/Invoices"] == 3  # ok, 401, ok
    assert session.connector.tokens.refreshes == 1
    assert emu.identity.refreshes == 1
    stored = session.store.load_tokens(session.connection.id)
    assert stored is not None and stored.version == 1


def test_access_token_expiry_by_clock_refreshes_before_the_call(
        emu: XeroEmulator, session: Session, clock: FakeClock) -> None:
    session.connector.fetch_open_invoices()
    clock.advance(1800)
    session.connector.fetch_open_invoices()
    assert emu.counters.calls.get("GET /api.xro/2.0/Invoices") == 2
    assert session.connector.tokens.refreshes == 1


def test_reused_refresh_token_is_invalid_grant(emu: XeroEmulator, session: Session,
                                               clock: FakeClock) -> None:
    stale = session.store.load_tokens(session.connection.id)
    assert stale is not None
    clock.advance(1800)
    session.connector.fetch_open_invoices()  # rotates the refresh token
    clock.advance(31 * 60)  # past the old token's 30-minute grace
    other = connect(emu, clock)  # a second runner holding the old refresh token
    other.store.save_tokens(other.connection.id, stale.model_copy(update={"version": 0}),
                            expected_version=0)
    with pytest.raises(ReauthorizationRequiredError, match="invalid_grant"):
        other.connector.fetch_open_invoices()


def test_429_storm_honours_retry_after(emu: XeroEmulator, session: Session,
                                       clock: FakeClock) -> None:
    emu.faults.throttle_next(3, retry_after=7)
    result = session.connector.fetch_open_invoices()
    assert len(result.invoices) == _open_count(emu)
    assert clock.slept == [7, 7, 7]


def test_real_minute_limit_waits_for_the_window(clock: FakeClock) -> None:
    from ar_sync_emulators.books import demo_company

    emu = XeroEmulator(clock=clock, per_minute=2)
    emu.seed(demo_company())
    with emu.serve():
        s = connect(emu, clock)
        ids = list(emu.org().invoices)[:3]
        for invoice_id in ids:
            assert s.connector.get_invoice(invoice_id) is not None
            clock.advance(1)
    assert clock.slept and all(1 <= w <= 60 for w in clock.slept)
    assert s.connector.caller.minute_remaining is not None


def test_5xx_is_retried(emu: XeroEmulator, session: Session, clock: FakeClock) -> None:
    emu.faults.fail_next(2, status=503)
    assert len(session.connector.fetch_open_invoices().invoices) == _open_count(emu)
    assert len(clock.slept) == 2


def test_dropped_response_after_write_is_not_duplicated(emu: XeroEmulator,
                                                       session: Session) -> None:
    inv = _overdue(session, emu)
    emu.faults.drop_after_write(1, match="/History")
    session.connector.add_note(inv, "Reminder", key="k-drop")
    assert [e.key for e in emu.effects() if e.kind == "note"] == ["k-drop"]
    # the lost answer is looked for by its key marker before a retry: found, not re-sent
    assert emu.counters.writes_applied == 1 and emu.counters.writes_replayed == 0


@pytest.mark.parametrize("mode", [FeeMode.LINE, FeeMode.INVOICE])
def test_dropped_fee_write_is_not_duplicated(emu: XeroEmulator, session: Session,
                                            mode: FeeMode) -> None:
    inv = _overdue(session, emu)
    emu.faults.drop_after_write(1)
    session.connector.add_late_fee(inv, Money.of(5, inv.currency), "Late fee", key=D2_KEY,
                                   mode=mode)
    assert [e.key for e in emu.effects() if e.kind == "late_fee"] == [D2_KEY]
    assert emu.counters.writes_replayed == 0  # found by its marker, not re-sent


def test_a_call_past_its_deadline_is_not_asked_again(emu: XeroEmulator,
                                                      clock: FakeClock) -> None:
    """No answer within a call's total deadline (or a read timeout): PlatformTimeoutError,
    not retried within the run (a silent platform costs one deadline, not one per attempt)."""
    invoice_id = next(iter(emu.org().invoices))
    for options in ({"deadline": 0.4}, {"timeout": (1.0, 0.3)}):
        s = connect(emu, clock, **options)
        emu.faults.timeout_next(1, seconds=1.0)
        with pytest.raises(PlatformTimeoutError, match="no answer"):
            s.connector.get_invoice(invoice_id)
        assert clock.slept == [] and s.budget.calls == 1
        with pytest.raises(PlatformTimeoutError, match="not asked"):  # silent this run
            s.connector.fetch_open_invoices()
        assert s.budget.calls == 1
        assert connect(emu, clock).connector.get_invoice(invoice_id) is not None  # next run


def test_unknown_tenant_is_refused(emu: XeroEmulator, clock: FakeClock) -> None:
    s = connect(emu, clock, tenant="00000000-0000-0000-0000-000000000000")
    with pytest.raises(ReauthorizationRequiredError, match="AuthenticationUnsuccessful"):
        s.connector.fetch_open_invoices()


def test_malformed_invoices_are_skipped_with_a_warning(emu: XeroEmulator,
                                                       session: Session) -> None:
    bad = [i for i in emu.org().invoices.values() if i.status == "AUTHORISED"][:3]
    emu.corrupt(bad[0].id, DueDate=None, DueDateString=None)
    emu.corrupt(bad[1].id, CurrencyCode="ZWD")
    emu.corrupt(bad[2].id, AmountDue=Decimal("-5.00"))
    result = session.connector.fetch_open_invoices()
    assert len(result.invoices) == _open_count(emu) - 3
    assert len(result.warnings) == 3
    for inv, why in zip(bad, ("DueDate", "currency", "negative"), strict=True):
        assert any(inv.number in w and why in w for w in result.warnings)


def test_budget_reads_day_limit_and_spends(emu: XeroEmulator, session: Session) -> None:
    session.connector.fetch_open_invoices()
    assert session.budget.calls == 1
    assert session.budget.platform_remaining == 5000 - 1


def test_get_invoice_missing_is_none(session: Session) -> None:
    assert session.connector.get_invoice("11111111-2222-3333-4444-555555555555") is None


def test_recheck_before_fee_sees_a_payment_with_one_listing(emu: XeroEmulator,
                                                             clock: FakeClock) -> None:
    ticks = iter(range(0, 10_000, 10))  # every recheck is due
    s = connect(emu, clock, monotonic=lambda: float(next(ticks)))
    fetched = s.connector.fetch_open_invoices()
    clock.advance(5)
    target, other = fetched.invoices[0], fetched.invoices[1]
    emu.pay(target.id, emu.invoice(target.id).amount_due)
    emu.counters.reset()
    fresh = s.connector.get_invoice(target.id)
    assert fresh is not None and fresh.status == InvoiceStatus.PAID
    assert dict(emu.counters.calls) == {"GET /api.xro/2.0/Invoices": 1}
    same = s.connector.get_invoice(other.id)
    assert same == other


def test_recheck_is_rate_limited_by_recheck_seconds(emu: XeroEmulator,
                                                    clock: FakeClock) -> None:
    s = connect(emu, clock, recheck_seconds=3600)
    fetched = s.connector.fetch_open_invoices()
    emu.counters.reset()
    for inv in fetched.invoices[:20]:
        assert s.connector.get_invoice(inv.id) == inv
    assert emu.counters.total_calls == 0
    unknown = s.connector.get_invoice("11111111-2222-3333-4444-555555555555")
    assert unknown is None and emu.counters.total_calls == 1


def test_dropped_email_is_not_sent_twice(emu: XeroEmulator, session: Session) -> None:
    inv = _overdue(session, emu)
    emu.faults.drop_after_write(1, match="/Email")
    session.connector.send_reminder(inv, key="k-mail-drop")
    assert [(e.kind, e.key) for e in emu.effects()] == [("email", "k-mail-drop")]
    # found on the invoice's own history ("Emailed" since the first try), not replayed
    assert len(emu.org().emails) == 1 and emu.counters.writes_replayed == 0
    assert emu.counters.calls["GET /api.xro/2.0/Invoices/{id}/History"] == 1


def test_three_decimal_currency_fee_is_exact(emu: XeroEmulator, session: Session) -> None:
    inv = next(i for i in session.connector.fetch_open_invoices().invoices
               if i.currency == "BHD" and i.amount_paid == 0)
    before = emu.invoice(inv.id).total
    session.connector.add_late_fee(inv, Money.of("1.234", "BHD"), "Late fee", key="k-bhd",
                                   mode=FeeMode.LINE)
    assert emu.invoice(inv.id).total == before + Decimal("1.234")


# ------------------------------------------------------------------ reconciliation's questions
# ar_sync_xero.effects with the answers given by hand (the emulator tests above ask the same
# questions end to end): which invoices it searches, and what an empty history means.


class _Effects:
    """A stand-in for XeroSession with what effects.py uses: the invoice read (Xero has no
    such invoice: None), the caller, and the two SDK calls, whose arguments are recorded."""

    tenant, timeout = "tenant-1", (5.0, 30.0)

    def __init__(self, invoices: list[Any] = (), history: list[Any] = ()) -> None:  # type: ignore[assignment]
        self.invoices, self.history = list(invoices), list(history)
        self.asked: list[dict[str, Any]] = []
        self.caller, self.api = self, self

    def read(self, invoice_id: str) -> None:
        return None

    def call(self, endpoint: str, fn: Any, *, write: bool = False) -> Any:
        return fn()[0]  # the SDK's data, as Caller.call answers

    def get_invoices(self, tenant: str, **kwargs: Any) -> tuple[Any, int, dict[str, str]]:
        self.asked.append({"tenant": tenant, **kwargs})
        return SimpleNamespace(invoices=self.invoices), 200, {}

    def get_invoice_history(self, tenant: str, invoice_id: str,
                            **kwargs: Any) -> tuple[Any, int, dict[str, str]]:
        self.asked.append({"tenant": tenant, "invoice": invoice_id})
        return SimpleNamespace(history_records=self.history), 200, {}


def _invoice() -> Invoice:
    return Invoice(platform="xero", tenant="xero:1", id="inv-9", number="INV-0009",
                   customer_id="contact-3", customer_name="Boom FM", customer_email=None,
                   issue_date=date(2026, 9, 1), due_date=date(2026, 10, 1), currency="USD",
                   total=Decimal("100.00"), balance=Decimal("100.00"),
                   updated_at=datetime(2026, 10, 1, tzinfo=UTC))


def test_a_fee_invoice_is_searched_among_the_customers_by_its_reference() -> None:
    fee_invoice = SimpleNamespace(invoice_id="fee-1",
                                  reference=f"Late fee on INV-0009 {reference_text(FEE_KEY)}")
    other = SimpleNamespace(invoice_id="fee-0", reference="Late fee on INV-0001")
    session = _Effects([other, fee_invoice])
    assert effects.find_fee(session, _invoice(), FEE_KEY) == "invoice:fee-1"  # type: ignore[arg-type]
    (asked,) = session.asked
    assert asked["tenant"] == "tenant-1" and asked["contact_i_ds"] == ["contact-3"]
    assert asked["search_term"] == customer_reference(FEE_KEY).removeprefix("AR-")
    assert asked["page"] == 1  # one page of this customer's matches, not every invoice


def test_no_fee_line_and_no_fee_invoice_means_no_fee() -> None:
    session = _Effects()
    assert effects.find_fee(session, _invoice(), FEE_KEY) is None  # type: ignore[arg-type]


def test_a_note_is_found_in_the_invoices_history() -> None:
    session = _Effects(history=[SimpleNamespace(details=None),
                                SimpleNamespace(details=f"Note added: x {key_marker(D2_KEY)}")])
    assert effects.find_note(session, _invoice(), D2_KEY) == f"history:inv-9:{D2_KEY}"  # type: ignore[arg-type]
    assert session.asked == [{"tenant": "tenant-1", "invoice": "inv-9"}]
    assert effects.find_note(_Effects(), _invoice(), D2_KEY) is None  # type: ignore[arg-type]


def test_no_e_mail_address_reaches_the_log(emu: XeroEmulator, session: Session,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """Personal data stays out of logs: a reminder asked for another address than the
    contact's says so by invoice number, not by address (issue 20)."""
    invoice = next(i for i in session.connector.fetch_open_invoices().invoices
                   if i.is_open and i.customer_email)
    other = "someone.else@elsewhere.example"
    with caplog.at_level(logging.DEBUG):
        session.connector.send_reminder(invoice, key="ar-no-address-in-logs", to=other)
    assert caplog.records, "the redirect is worth a warning"
    assert invoice.number in caplog.text
    assert other not in caplog.text and str(invoice.customer_email) not in caplog.text
    assert "@" not in caplog.text


@pytest.mark.parametrize(("records", "found"), [
    ([SimpleNamespace(date_utc=datetime(2026, 11, 16, 14, 0, tzinfo=UTC), changes="Emailed")],
     "email:inv-9:history@2026-11-16T14:00:00+00:00"),  # at `since` counts
    ([SimpleNamespace(date_utc=datetime(2026, 11, 16, 15, 0), changes="EMAILED to x")],
     "email:inv-9:history@2026-11-16T15:00:00+00:00"),  # a naive date is UTC
    ([SimpleNamespace(date_utc=datetime(2026, 11, 17), changes="Edited"),  # passed over
      SimpleNamespace(date_utc=datetime(2026, 11, 17, 3, 0, tzinfo=timezone(timedelta(hours=13))),
                      changes="Emailed")],
     "email:inv-9:history@2026-11-17T03:00:00+13:00"),  # its own zone kept
    ([SimpleNamespace(date_utc=datetime(2026, 11, 16, 13, 59), changes="Emailed"),  # before
      SimpleNamespace(date_utc=datetime(2026, 11, 17), changes="Edited"),  # not an e-mail
      SimpleNamespace(date_utc="2026-11-17", changes="Emailed"),  # no date to compare
      SimpleNamespace(date_utc=datetime(2026, 11, 17), changes=None)], None),
])
def test_a_lost_send_is_found_in_the_invoices_history(records: list[Any],
                                                      found: str | None) -> None:
    session = _Effects(history=records)
    since = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)
    assert effects.find_email(session, _invoice(), since) == found  # type: ignore[arg-type]
    assert session.asked == [{"tenant": "tenant-1", "invoice": "inv-9"}]
    via = _Effects(history=records)
    assert effects.find_effect(via, _invoice(), ActionKind.REMINDER_EMAIL,  # type: ignore[arg-type]
                               FEE_KEY, since) == found
    # ar-sync's own e-mails are not Xero's to find
    assert effects.find_effect(via, _invoice(), ActionKind.CUSTOMER_EMAIL,  # type: ignore[arg-type]
                               FEE_KEY, since) is None
