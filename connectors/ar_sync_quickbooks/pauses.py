"""Pauses set in QuickBooks: an `ar-sync: pause …` line (ar_sync.domain.pause_markers) in

- the invoice's private note (`PrivateNote`; "Memo on statement" is the customer's): read with
  every fetch at no extra call (mapping.to_invoice), dated by the invoice's last change;
- the customer's notes (`Customer.Notes`, internal, never printed on an invoice): pauses every
  invoice of that customer. Read here, for the customers of the invoices a run is about to
  charge, e-mail or escalate, with `select * from Customer where Id in (...)` in one `/batch`
  request (IDS_PER_QUERY ids a query, up to QUERIES_PER_CALL queries): one call a run for up
  to 3,000 customers, kept for the session. Dated by the customer's last change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ar_sync.domain.models import Invoice
from ar_sync.domain.pause_markers import from_lines
from ar_sync.domain.pauses import Pause
from ar_sync_quickbooks.mapping import parse_time
from ar_sync_quickbooks.payments import IDS_PER_QUERY, QUERIES_PER_CALL
from ar_sync_quickbooks.session import QuickBooksSession, quote, select


def customer_notes(session: QuickBooksSession, customer_ids: Sequence[str]
                   ) -> dict[str, dict[str, Any]]:
    """Customer id -> its JSON (Notes, MetaData), reading only those not read this session."""
    wanted = sorted({c for c in customer_ids if c and c not in session.customers})
    chunks = [wanted[i: i + IDS_PER_QUERY] for i in range(0, len(wanted), IDS_PER_QUERY)]
    for start in range(0, len(chunks), QUERIES_PER_CALL):
        queries = {f"cust{n}": select("Customer", "Id in ({})".format(
            ", ".join(quote(c) for c in chunk)))
            for n, chunk in enumerate(chunks[start: start + QUERIES_PER_CALL])}
        for answer in session.batch_queries(queries).values():
            for row in answer.get("Customer") or []:
                session.customers[str(row.get("Id"))] = row
    for cid in wanted:
        session.customers.setdefault(cid, {})
    return {c: session.customers[c] for c in customer_ids if c in session.customers}


def pause_markers(session: QuickBooksSession, invoices: Sequence[Invoice]) -> dict[str, Pause]:
    """Invoice id -> the pause its customer's notes leave in force (only those with one)."""
    rows = customer_notes(session, [i.customer_id for i in invoices])
    out: dict[str, Pause] = {}
    for inv in invoices:
        row = rows.get(inv.customer_id) or {}
        notes = str(row.get("Notes") or "")
        if "ar-sync" not in notes.lower():
            continue
        stamp = str((row.get("MetaData") or {}).get("LastUpdatedTime") or "")
        day = parse_time(stamp).date() if stamp else session.clock().date()
        pause = from_lines([(day, notes)], invoice_id=inv.id)
        if pause is not None:
            out[inv.id] = pause
    return out
