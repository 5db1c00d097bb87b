"""Ledger rows the store wrote itself, read back without validating them again.

Every ledger entry was validated before it was written; building each one again through
pydantic on every read was three quarters of a no-change run at 10,000 invoices. The store
reads the columns below as plain tuples and builds entries with typed values directly.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ar_sync.engine_common import _construct
from ar_sync.models import ActionKind, EntryState, LedgerEntry

# the ledger columns an entry is built from, in this order (never the stored payload)
ENTRY_COLUMNS = ("key, tenant, invoice_id, kind, rule, occurrence, state, due_on, updated_at,"
                 " ref, reason, amount, attempts, owner, lease_until, rules_version")
_KIND = {k.value: k for k in ActionKind}
_STATE = {s.value: s for s in EntryState}
_fromiso = datetime.fromisoformat


def ledger_entry(row: Sequence[Any]) -> LedgerEntry:
    """A LedgerEntry from one row of ENTRY_COLUMNS (ISO text dates, amounts as text)."""
    (key, tenant, invoice_id, kind, rule, occurrence, state, due_on, updated_at, ref, reason,
     amount, attempts, owner, lease_until, rules_version) = row
    entry: LedgerEntry = _construct(LedgerEntry, {
        "key": key, "tenant": tenant, "invoice_id": invoice_id, "kind": _KIND[kind],
        "rule": rule, "occurrence": occurrence, "state": _STATE[state],
        "due_on": date.fromisoformat(due_on), "updated_at": _fromiso(updated_at), "ref": ref,
        "reason": reason, "amount": None if amount is None else Decimal(amount),
        "attempts": attempts, "owner": owner,
        "lease_until": None if lease_until is None else _fromiso(lease_until),
        "rules_version": rules_version,
    })
    return entry


def entries_from(rows: Iterable[Sequence[Any]]) -> list[LedgerEntry]:
    """Many entries at once, with the cyclic collector paused: the rows hold no cycles, and
    each collection would rescan every object the run already holds."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return [ledger_entry(r) for r in rows]
    finally:
        if collecting:
            gc.enable()
