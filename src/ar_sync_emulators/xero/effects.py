"""What an emulated Xero organisation holds that carries an ar-sync key (exactly-once checks).

Notes in History and Notes, fee lines, fee invoices (their Reference names the parent invoice),
credit notes of waivers, and the e-mails the organisation was asked to send.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ar_sync_emulators.base import Effect
from ar_sync_emulators.effect_keys import keys_in
from ar_sync_emulators.xero import credit as xero_credit
from ar_sync_emulators.xero.model import Organisation

MARKER = re.compile(r"ar-sync:([A-Za-z0-9_\-]+)")  # internal notes: the full key


def org_effects(org: Organisation, known: Iterable[str] = ()) -> list[Effect]:
    """`known`: action keys learnt from the caller (XeroEmulator.learn_keys), besides the
    Idempotency-Keys the organisation received, to resolve short references."""
    keys = org.request_keys | set(known)
    out: list[Effect] = []
    by_number = {i.number: i.id for i in org.invoices.values()}
    for inv in org.invoices.values():
        for n, rec in enumerate(inv.history):
            for key in MARKER.findall(rec.details) if rec.changes == "Note" else ():
                out.append(Effect("note", inv.id, key, f"{inv.id}/history/{n}"))
        fee_invoice_keys = keys_in(inv.reference, keys)
        for line in inv.lines:  # a fee invoice's own line is not a second fee
            for key in keys_in(line.description, keys):
                if key not in fee_invoice_keys:
                    out.append(Effect("late_fee", inv.id, key, line.id))
        for key in fee_invoice_keys:
            target = next((by_number[n] for n in re.findall(r"INV-\d+", inv.reference)
                           if n in by_number and by_number[n] != inv.id), inv.id)
            out.append(Effect("late_fee", target, key, inv.id))
    out.extend(xero_credit.credit_effects(org))
    for n, (invoice_id, key, _) in enumerate(org.emails):
        out.append(Effect("email", invoice_id, key, f"email-{n}"))
    return out
