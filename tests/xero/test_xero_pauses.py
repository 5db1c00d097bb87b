"""Pauses set in Xero: a customer in the contact group "ar-sync: paused" or "ar-sync:
disputed" (Xero-OpenAPI ContactGroup: members only when asked for by id). One call a session
when no such group exists, one more per group that does; whatever the number of invoices.
History notes are no longer read (they cost one call per invoice)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from xero_support import FakeClock, Session, connect

from ar_sync.domain.errors import ReauthorizationRequiredError
from ar_sync.domain.models import Invoice
from ar_sync_emulators.xero.model import XHistory
from ar_sync_emulators.xero.server import XeroEmulator

GROUPS = "GET /api.xro/2.0/ContactGroups"
GROUP = "GET /api.xro/2.0/ContactGroups/{id}"
HISTORY = "GET /api.xro/2.0/Invoices/{id}/History"


def _open(session: Session) -> list[Invoice]:
    return [i for i in session.connector.fetch_open_invoices().invoices if i.is_open]


def test_no_group_costs_one_call_for_any_number_of_invoices(
        emu: XeroEmulator, session: Session) -> None:
    invoices = _open(session)
    line = "ar-sync: pause until 2027-01-31 dispute"  # an old History marker: not read
    emu.invoice(invoices[0].id).history.append(XHistory(datetime.now(UTC), "Note", line))
    emu.counters.reset()
    assert session.connector.pause_markers(invoices) == {}
    assert session.connector.pause_markers(invoices[:3]) == {}  # kept for the session
    calls = emu.counters.calls
    assert calls[GROUPS] == 1 and calls.get(GROUP, 0) == 0 and calls.get(HISTORY, 0) == 0
    assert sum(calls.values()) == 1


def test_customers_in_the_groups_are_paused_or_disputed(
        emu: XeroEmulator, clock: FakeClock, session: Session) -> None:
    invoices = _open(session)
    customers = sorted({i.customer_id for i in invoices})
    paused, disputed, both, free = customers[:4]
    emu.group("ar-sync: paused", paused)
    emu.group("AR-SYNC Disputed", disputed)  # case and colon do not matter
    emu.group("ar-sync: paused", both)
    emu.group("AR-SYNC Disputed", both)
    emu.group("VIP customers", free)  # any other group is not ours
    emu.counters.reset()
    found = session.connector.pause_markers(invoices)
    by_customer = {i.customer_id: found.get(i.id) for i in invoices}
    assert by_customer[paused] is not None and by_customer[paused].reason == "other"
    assert by_customer[disputed] is not None and by_customer[disputed].reason == "dispute"
    assert by_customer[both] is not None and by_customer[both].reason == "dispute"
    assert by_customer[free] is None
    pause = by_customer[paused]
    assert pause.source == "platform" and pause.since == clock().date() and pause.until is None
    assert "ar-sync: paused" in pause.note
    assert set(found) == {i.id for i in invoices if i.customer_id in (paused, disputed, both)}
    calls = emu.counters.calls
    assert calls[GROUPS] == 1 and calls[GROUP] == 2  # the list, then our two groups by id
    assert session.connector.pause_markers(invoices) == found
    assert sum(emu.counters.calls.values()) == 3


def test_without_the_contacts_scope_the_run_is_told_to_reconnect(
        emu: XeroEmulator, clock: FakeClock) -> None:
    """Not "nobody is paused": a pause the bookkeeper set must not be missed silently."""
    scopes = ("openid", "profile", "email", "accounting.invoices", "offline_access")
    session = connect(emu, clock, scopes=scopes)
    with pytest.raises(ReauthorizationRequiredError, match="insufficient scope"):
        session.connector.pause_markers(_open(session))
