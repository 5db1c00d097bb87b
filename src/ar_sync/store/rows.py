"""Ledger rows and invoices the store wrote itself, read back without validating them again.

Every ledger entry and invoice was validated before it was written; building each one again
through pydantic on every read was three quarters of a no-change run at 10,000 invoices. The
store reads ledger columns as plain tuples and invoice bodies as JSON, and builds the frozen
models with typed values directly. An invoice with a field this module does not know how to
type (a nested pause, payments, or a field added later) goes through full validation.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ar_sync.domain.construct import construct
from ar_sync.domain.models import ActionKind, EntryState, Invoice, InvoiceStatus, LedgerEntry

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
    entry: LedgerEntry = construct(LedgerEntry, {
        "key": key, "tenant": tenant, "invoice_id": invoice_id, "kind": _KIND[kind],
        "rule": rule, "occurrence": occurrence, "state": _STATE[state],
        "due_on": date.fromisoformat(due_on), "updated_at": _fromiso(updated_at), "ref": ref,
        "reason": reason, "amount": None if amount is None else Decimal(amount),
        "attempts": attempts, "owner": owner,
        "lease_until": None if lease_until is None else _fromiso(lease_until),
        "rules_version": rules_version,
    })
    return entry


@contextmanager
def collector_paused() -> Iterator[None]:
    """Build many objects with the cyclic collector paused: they hold no cycles, and each
    collection would rescan every object the run already holds (a tenth of a no-change run)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def entries_from(rows: Iterable[Sequence[Any]]) -> list[LedgerEntry]:
    with collector_paused():
        return [ledger_entry(r) for r in rows]


# the invoice fields decoded here; any other field with a value means full validation
_INVOICE_PLAIN = frozenset({
    "platform", "tenant", "id", "number", "customer_id", "customer_name", "customer_email",
    "currency", "version", "disputed", "payment_link"})
_INVOICE_TYPED = frozenset({"issue_date", "due_date", "updated_at", "total", "balance",
                            "late_fees_charged", "fee_lines", "status", "paid_at"})
_INVOICE_KNOWN = _INVOICE_PLAIN | _INVOICE_TYPED
_INVOICE_FIELDS = frozenset(Invoice.model_fields)
_INVOICE_STATUS = {s.value: s for s in InvoiceStatus}
_fromdate = date.fromisoformat


def _invoice(data: dict[str, Any]) -> Invoice:
    if data.keys() != _INVOICE_FIELDS or any(
            data[k] is not None for k in _INVOICE_FIELDS - _INVOICE_KNOWN):
        return Invoice.model_validate(data)
    data["issue_date"] = _fromdate(data["issue_date"])
    data["due_date"] = _fromdate(data["due_date"])
    data["updated_at"] = _fromiso(data["updated_at"])
    data["total"] = Decimal(data["total"])
    data["balance"] = Decimal(data["balance"])
    data["late_fees_charged"] = Decimal(data["late_fees_charged"])
    if data["fee_lines"] is not None:
        data["fee_lines"] = Decimal(data["fee_lines"])
    data["status"] = _INVOICE_STATUS[data["status"]]
    if data["paid_at"] is not None:
        data["paid_at"] = _fromdate(data["paid_at"])
    invoice: Invoice = construct(Invoice, data)
    return invoice


def invoices_from(bodies: Iterable[str]) -> list[Invoice]:
    """Invoices from JSON bodies this store wrote with model_dump_json()."""
    with collector_paused():
        return [_invoice(json.loads(body)) for body in bodies]
