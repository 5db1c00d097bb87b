"""Pauses set in QuickBooks: the invoice's private note (read with the fetch, no call) and the
customer's notes (`Customer.Notes`, internal): read for the invoices a run asks about, in one
/batch request whatever their number, kept for the session."""

from __future__ import annotations

from qbo_helpers import Session


def test_customer_notes_pause_all_their_invoices_for_one_call(qbo: Session) -> None:
    connector = qbo.open()
    invoices = [i for i in connector.fetch_open_invoices().invoices if i.is_open]
    customers = sorted({i.customer_id for i in invoices})
    paused, promised, free = customers[:3]
    qbo.emu.rows["Customer"][paused]["Notes"] = (
        "Good payer.\nar-sync: pause until 2027-03-31 dispute hours billed")
    qbo.emu.rows["Customer"][promised]["Notes"] = "ar-sync: pause promise until 2026-12-20"
    qbo.emu.rows["Customer"][free]["Notes"] = "ar-sync: pause\nar-sync: resume"
    qbo.emu.counters.reset()
    found = connector.pause_markers(invoices)
    assert set(found) == {i.id for i in invoices if i.customer_id in (paused, promised)}
    reasons = {i.customer_id: found[i.id].reason for i in invoices if i.id in found}
    assert reasons == {paused: "dispute", promised: "promise"}
    assert all(p.source == "platform" for p in found.values())
    assert sum(qbo.emu.counters.calls.values()) == 1  # one query (or one /batch of them)
    assert connector.pause_markers(invoices[:5]) == {
        i.id: found[i.id] for i in invoices[:5] if i.id in found}
    assert sum(qbo.emu.counters.calls.values()) == 1  # kept for the session
