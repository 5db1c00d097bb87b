"""Pauses set in Xero: a customer in the contact group "ar-sync: paused" (or "ar-sync:
disputed") gets no reminder, fee or escalation while it is there. Customers never see contact
groups. An invoice-level pause is made in ar-sync itself (`ar-sync pause INV-1042`).

Cost: one call a run. `GET /ContactGroups` lists the organisation's groups without their
members (Xero-OpenAPI `ContactGroup.Contacts`: "Returned on GETs when the ContactGroupID is
supplied in the URL"), so a group named as above is then read by its id, one more call each:
one call a run when the organisation has no such group, two with one. The answer is kept for
the session, and only asked for when the run has a write a pause must stop (sync/company.py).

Earlier versions read an `ar-sync: pause …` note in each invoice's History and Notes: one call
per invoice (5,617 of a 10,000-invoice first run). Those notes are no longer read; the
migration (an `ar-sync pause` per such invoice, or the customer in the group) is on
docs/going-live.md. The old `#disputed` tag in the Reference is still read (it comes with the
invoice listing, at no cost) but the customer sees the Reference: the group or `ar-sync pause
--reason dispute` replaces it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial

from ar_sync.domain.models import Invoice
from ar_sync.domain.pauses import Pause
from ar_sync_xero.session import XeroSession

PAUSED_GROUP = "ar-sync: paused"
DISPUTED_GROUP = "ar-sync: disputed"
_REASONS = {"ar-sync paused": "other", "ar-sync disputed": "dispute"}
_SPACES = re.compile(r"[\s:]+")


def group_reason(name: str) -> str | None:
    """The pause reason a contact group's name stands for (case, colon and spacing free)."""
    return _REASONS.get(_SPACES.sub(" ", name.strip().lower()).strip())


def paused_customers(session: XeroSession) -> dict[str, str]:
    """ContactID -> pause reason ("dispute" wins over "other"), read once per session."""
    if session.paused_customers is not None:
        return session.paused_customers
    listed = session.caller.call("GET ContactGroups", lambda: session.api.get_contact_groups(
        session.tenant, _return_http_data_only=False, _request_timeout=session.timeout))
    out: dict[str, str] = {}
    for group in listed.contact_groups or []:
        reason = group_reason(str(group.name or ""))
        if reason is None or str(getattr(group.status, "value", group.status)) != "ACTIVE":
            continue
        gid = str(group.contact_group_id)
        got = session.caller.call("GET ContactGroups/{id}", partial(
            session.api.get_contact_group, session.tenant, gid, _return_http_data_only=False,
            _request_timeout=session.timeout))
        for found in got.contact_groups or []:
            for contact in found.contacts or []:
                cid = str(contact.contact_id)
                if out.get(cid) != "dispute":
                    out[cid] = reason
    session.paused_customers = out
    return out


def pause_markers(session: XeroSession, invoices: Sequence[Invoice]) -> dict[str, Pause]:
    """Invoice id -> the pause its customer's contact group puts it under (only those)."""
    if not invoices:
        return {}
    paused = paused_customers(session)
    today = session.today()
    out: dict[str, Pause] = {}
    for inv in invoices:
        reason = paused.get(inv.customer_id)
        if reason is not None:
            group = DISPUTED_GROUP if reason == "dispute" else PAUSED_GROUP
            out[inv.id] = Pause(invoice_id=inv.id, reason=reason, since=today,
                                note=f"customer in the Xero contact group {group!r}",
                                source="platform")
    return out
