"""Customers and invoices: each customer's journey (what was sent when, what comes next),
and what a business decides for one customer: pause or resume (a promise to pay with its
date, a dispute), opt-out or an override address, and waiving a charged fee (exactly once,
through the ledger, as `ar-sync fee waive` does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ar_sync.console.pages import company, config, flash, render, today_for
from ar_sync.domain.contacts import changed_contact
from ar_sync.domain.models import Invoice
from ar_sync.domain.pauses import REASONS
from ar_sync.sync.company_settings import SettingsChangeError, new_pause
from ar_sync.sync.connector import Connection
from ar_sync.sync.journey import customer_journey
from ar_sync.sync.waivers import fees_left, request_waiver


@dataclass
class CustomerRow:
    customer_id: str
    name: str
    invoices: int = 0
    balance: dict[str, Decimal] = field(default_factory=dict)
    oldest_due: date | None = None


def customer_rows(invoices: list[Invoice]) -> list[CustomerRow]:
    rows: dict[str, CustomerRow] = {}
    for inv in invoices:
        row = rows.setdefault(inv.customer_id, CustomerRow(inv.customer_id, inv.customer_name))
        row.invoices += 1
        row.balance[inv.currency] = row.balance.get(inv.currency, Decimal(0)) + inv.balance
        row.oldest_due = min(filter(None, (row.oldest_due, inv.due_date)))
    return sorted(rows.values(), key=lambda r: r.name.lower())


async def customer_list(request: Request) -> Response:
    connection = company(request)
    rows = customer_rows(config(request).store.open_invoices(connection.id))
    return render(request, "customers.html", company=connection, rows=rows,
                  today=today_for(request, connection))


def _customer_url(request: Request, connection: Connection, customer_id: str) -> str:
    return f"{config(request).prefix}/c/{connection.id}/customers/{quote(customer_id, safe='')}"


async def customer_page(request: Request) -> Response:
    cfg = config(request)
    connection = company(request)
    customer_id = request.path_params["customer"]
    today = today_for(request, connection)
    journey = customer_journey(cfg.store, connection, customer_id, today)
    if journey is None:
        raise HTTPException(404, "No open invoices for this customer.")
    ids = [i.id for i in journey.invoices]
    pauses = [p for p in cfg.store.list_pauses(connection.id)
              if (p.pause.customer_id == customer_id or p.pause.invoice_id in ids)
              and p.resumed_on is None and (p.pause.until is None or p.pause.until >= today)]
    numbers = {i.id: i.number for i in journey.invoices}
    fees = [(f, numbers.get(f.invoice_id, "")) for f in fees_left(cfg.store, connection.id, ids)]
    return render(request, "customer.html", company=connection, journey=journey, today=today,
                  pauses=pauses, numbers=numbers, fees=fees, reasons=REASONS,
                  contact=cfg.store.contacts(connection.id).get(customer_id),
                  here=_customer_url(request, connection, customer_id))


def _known(request: Request, connection: Connection) -> tuple[str, list[Invoice]]:
    """The route's customer, who must have open invoices in this company."""
    customer_id = request.path_params["customer"]
    invoices = [i for i in config(request).store.open_invoices(connection.id)
                if i.customer_id == customer_id]
    if not invoices:
        raise HTTPException(404, "No open invoices for this customer.")
    return customer_id, invoices


async def pause(request: Request) -> Response:
    cfg = config(request)
    connection = company(request)
    customer_id, invoices = _known(request, connection)
    form = await request.form()
    reason = str(form.get("reason") or "other")
    invoice_id = str(form.get("invoice") or "")
    try:
        if reason not in REASONS:
            raise SettingsChangeError("choose why: promise to pay, dispute or other")
        if invoice_id and invoice_id not in {i.id for i in invoices}:
            raise SettingsChangeError("that invoice is not this customer's")
        until_text = str(form.get("until") or "")
        until = date.fromisoformat(until_text) if until_text else None
        made = new_pause(invoice_id=invoice_id or None,
                         customer_id=None if invoice_id else customer_id, until=until,
                         reason=reason,  # checked against REASONS above
                         note=str(form.get("note") or ""),
                         today=today_for(request, connection))
    except ValueError as exc:
        text = str(exc) if isinstance(exc, SettingsChangeError) else "the date is not valid"
        flash(request, f"Not paused: {text}.", "error")
        return RedirectResponse(_customer_url(request, connection, customer_id), 303)
    cfg.store.add_pause(connection.id, made)
    words = {"promise": "promised to pay", "dispute": "disputed", "other": "paused"}[reason]
    flash(request, f"Follow-up paused ({words}) "
                   f"{f'through {made.until:%d %b %Y}' if made.until else 'until you resume it'}.")
    return RedirectResponse(_customer_url(request, connection, customer_id), 303)


async def resume(request: Request) -> Response:
    cfg = config(request)
    connection = company(request)
    customer_id, invoices = _known(request, connection)
    today = today_for(request, connection)
    ended = cfg.store.end_pauses(connection.id, customer_id=customer_id, on=today)
    for inv in invoices:
        ended += cfg.store.end_pauses(connection.id, invoice_id=inv.id, on=today)
    flash(request, "Follow-up resumed: the rules apply again from the next run." if ended
          else "Nothing was paused.", "ok" if ended else "error")
    return RedirectResponse(_customer_url(request, connection, customer_id), 303)


async def contact(request: Request) -> Response:
    cfg = config(request)
    connection = company(request)
    customer_id, _ = _known(request, connection)
    form = await request.form()
    email = str(form.get("email") or "").strip()
    try:
        saved = changed_contact(cfg.store.contacts(connection.id).get(customer_id),
                                connection.id, customer_id, now=cfg.clock(), source="console",
                                email=email or None, clear_email=not email,
                                opted_out=form.get("opt_out") == "on")
    except ValueError:
        flash(request, f"Not saved: {email!r} is not an e-mail address.", "error")
        return RedirectResponse(_customer_url(request, connection, customer_id), 303)
    cfg.store.save_contact(saved)
    flash(request, "E-mails to this customer are off." if saved.opted_out else
          f"E-mails go to {saved.email or 'the address on the invoice'}.")
    return RedirectResponse(_customer_url(request, connection, customer_id), 303)


async def waive(request: Request) -> Response:
    cfg = config(request)
    connection = company(request)
    customer_id, invoices = _known(request, connection)
    form = await request.form()
    key = str(form.get("fee") or "")
    reason = str(form.get("reason") or "").strip()[:200]
    fee = next((f for f in fees_left(cfg.store, connection.id, [i.id for i in invoices])
                if f.key == key), None)
    if fee is None or not reason:
        flash(request, "Not waived: " + ("say why." if fee is not None else
                                         "that fee is not charged, or already waived."), "error")
        return RedirectResponse(_customer_url(request, connection, customer_id), 303)
    invoice = next(i for i in invoices if i.id == fee.invoice_id)
    asked = request_waiver(cfg.store, fee, invoice, reason,
                           today=today_for(request, connection), now=cfg.run_clock())
    flash(request, f"Waiver of {asked.waiver.amount} on invoice {invoice.number} requested: the "
                   "next run credits it (a credit note on the platform)." if asked.queued else
          f"That fee's waiver was already requested ({asked.state}).")
    return RedirectResponse(_customer_url(request, connection, customer_id), 303)


def routes() -> list[Any]:
    base = "/c/{tenant}/customers"
    return [Route(base, customer_list),
            Route(base + "/{customer}", customer_page),
            Route(base + "/{customer}/pause", pause, methods=["POST"]),
            Route(base + "/{customer}/resume", resume, methods=["POST"]),
            Route(base + "/{customer}/contact", contact, methods=["POST"]),
            Route(base + "/{customer}/waive", waive, methods=["POST"])]


__all__ = ["customer_rows", "routes"]
