"""Waiving a charged late fee, exactly once: which fees are left to waive, and the request.

`ar-sync fee waive`, the console and any other face ask here. A waiver is a `waive_fee` row
queued in the ledger (state `retry`, no attempt yet) whose key is the planner's for the same
fee (the waive kind with the fee's rule and occurrence, as under `waive_on_dispute`), so a
fee is never waived twice however often it is asked; the next run (or an immediate
`execute_action`) writes the credit note through claim -> write -> complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ar_sync.domain.models import (
    ActionKind,
    ApplyLateFee,
    EntryState,
    Invoice,
    LedgerEntry,
    Money,
    WaiveFee,
    action_key,
)
from ar_sync.domain.money import format_money
from ar_sync.sync.store import Store


@dataclass(frozen=True)
class WaiverRequest:
    """A waiver asked for: the action and what the ledger says about it now."""

    waiver: WaiveFee
    queued: bool  # False: the key was known already (asked before, or planned)
    state: str  # "requested", else the ledger row's state


def waiver_for(fee: LedgerEntry, payload: ApplyLateFee | None, currency: str, number: str,
               reason: str, today: date) -> WaiveFee:
    """The WaiveFee for a charged fee; its key is the planner's for the same fee (the fee's
    rule and occurrence under the waive kind), so a waiver is never planned twice."""
    platform = payload.platform if payload else fee.tenant.split(":", 1)[0]
    amount = payload.amount if payload else Money.of(fee.amount or 0, currency)
    shown = format_money(amount.amount, amount.currency)
    return WaiveFee(
        key=action_key(fee.tenant, platform, fee.invoice_id, ActionKind.WAIVE_FEE, fee.rule,
                       fee.occurrence),
        tenant=fee.tenant, platform=platform, invoice_id=fee.invoice_id,
        invoice_number=number, rule=fee.rule, occurrence=fee.occurrence, due_on=today,
        reason=reason, fee_key=fee.key, amount=amount,
        label=f"Late fee {fee.occurrence} waived on invoice {number} ({shown})",
        account=payload.account if payload else None)


def fees_left(store: Store, tenant: str, invoice_ids: list[str]) -> list[LedgerEntry]:
    """The late fees charged (done) on these invoices that no waiver names yet."""
    rows = store.history(tenant, invoice_ids)
    entries = [e for es in rows.values() for e in es]
    waived = {(e.invoice_id, e.rule, e.occurrence) for e in entries
              if e.kind == ActionKind.WAIVE_FEE}
    return [e for e in entries if e.kind == ActionKind.LATE_FEE and e.state == EntryState.DONE
            and (e.invoice_id, e.rule, e.occurrence) not in waived]


def request_waiver(store: Store, fee: LedgerEntry, invoice: Invoice | None, reason: str, *,
                   today: date, now: datetime) -> WaiverRequest:
    """Queue the waiver of one charged fee in the ledger (a no-op when already asked)."""
    payload = store.action_payload(fee.key)
    fee_action = payload if isinstance(payload, ApplyLateFee) else None
    currency = fee_action.amount.currency if fee_action else (invoice.currency if invoice else "")
    number = fee_action.invoice_number if fee_action else (invoice.number if invoice else "")
    waiver = waiver_for(fee, fee_action, currency, number, reason, today)
    queued = store.queue_action(waiver, reason=reason, now=now)
    row = None if queued else store.get(waiver.key)
    state = "requested" if queued else str(row.state) if row is not None else "unknown"
    return WaiverRequest(waiver, queued, state)


__all__ = ["WaiverRequest", "fees_left", "request_waiver", "waiver_for"]
