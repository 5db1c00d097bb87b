"""Pause markers in Xero: an `ar-sync: pause …` note in the invoice's History and Notes
(internal; the `Reference` would be shown to the customer). Reading them costs one call per
invoice, so the sync asks only about invoices that have a write planned (sync_trust)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import partial

from ar_sync.domain.models import Invoice
from ar_sync.domain.pause_markers import from_lines
from ar_sync.domain.pauses import Pause
from ar_sync_xero.session import XeroSession


def _day(value: object, fallback: date) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return fallback


def pause_markers(session: XeroSession, invoices: Sequence[Invoice]) -> dict[str, Pause]:
    """Invoice id -> the pause its history notes leave in force (only those with one)."""
    out: dict[str, Pause] = {}
    for inv in invoices:
        got = session.caller.call("GET Invoices/{id}/History", partial(
            session.api.get_invoice_history, session.tenant, inv.id,
            _return_http_data_only=False, _request_timeout=session.timeout))
        records = list(reversed(got.history_records or []))  # Xero lists newest first
        notes = sorted(((_day(r.date_utc, inv.updated_at.date()), str(r.details or ""))
                        for r in records if str(r.changes or "") == "Note"),
                       key=lambda pair: pair[0])
        pause = from_lines(notes, invoice_id=inv.id)
        if pause is not None:
            out[inv.id] = pause
    return out
