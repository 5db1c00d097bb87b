"""The first-run preview: a dry run of the company (the run's own code path, nothing
written), its plan laid out per customer: each message as the customer will read it, and
the notes, fees and escalations that go with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ar_sync.console.pages import company, config, render, today_for
from ar_sync.domain.errors import SettingsError
from ar_sync.domain.models import (
    Action,
    AddNote,
    ApplyLateFee,
    CustomerMessage,
    Escalate,
    EscalationNotice,
    SendReminder,
    SkipStage,
    WaiveFee,
)
from ar_sync.sync.connector import Connection, UnknownConnectorError
from ar_sync.sync.run import RunReport, run_tenant


@dataclass
class CustomerPreview:
    customer_id: str
    name: str
    messages: list[CustomerMessage] = field(default_factory=list)
    notes: list[AddNote] = field(default_factory=list)
    fees: list[ApplyLateFee | WaiveFee] = field(default_factory=list)
    escalations: list[Escalate | EscalationNotice] = field(default_factory=list)
    platform_emails: list[SendReminder] = field(default_factory=list)

    def fee_totals(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for f in self.fees:
            sign = -1 if isinstance(f, WaiveFee) else 1
            out[f.amount.currency] = out.get(f.amount.currency, Decimal(0)) + sign * f.amount.amount
        return out


def by_customer(plan: list[Action], customers: dict[str, tuple[str, str]]) -> list[CustomerPreview]:
    """The plan's actions per customer (`customers`: invoice id -> (customer id, name)),
    customers with a message first, then by name."""
    out: dict[str, CustomerPreview] = {}

    def slot(customer_id: str, name: str) -> CustomerPreview:
        return out.setdefault(customer_id, CustomerPreview(customer_id, name))

    for action in plan:
        if isinstance(action, SkipStage):
            continue
        if isinstance(action, CustomerMessage):
            slot(action.customer_id, action.customer_name).messages.append(action)
            continue
        cid, name = customers.get(action.invoice_id, ("", action.invoice_number))
        target = slot(cid, name)
        if isinstance(action, AddNote):
            target.notes.append(action)
        elif isinstance(action, ApplyLateFee | WaiveFee):
            target.fees.append(action)
        elif isinstance(action, Escalate | EscalationNotice):
            target.escalations.append(action)
        elif isinstance(action, SendReminder):
            target.platform_emails.append(action)
    return sorted(out.values(), key=lambda c: (not c.messages, c.name.lower()))


def dry_run(request: Request, connection: Connection) -> RunReport:
    cfg = config(request)
    return run_tenant(cfg.store, connection.id, settings=cfg.settings_for(connection.platform),
                      dry_run=True, mail=cfg.mail(), today=cfg.today, clock=cfg.run_clock)


async def preview(request: Request) -> Response:
    cfg = config(request)
    connection = company(request)
    today = today_for(request, connection)
    try:
        report = await run_in_threadpool(dry_run, request, connection)
    except (SettingsError, UnknownConnectorError) as exc:
        return render(request, "preview.html", company=connection, today=today, report=None,
                      problem=f"This server cannot reach {connection.platform}: {exc}",
                      customers=[])
    customers = {i.id: (i.customer_id, i.customer_name)
                 for i in cfg.store.open_invoices(connection.id)}
    rows = by_customer(report.plan, customers)
    wanted = request.query_params.get("customer")
    return render(request, "preview.html", company=connection, today=today, report=report,
                  problem="; ".join(report.errors), customers=rows, opened=wanted,
                  messages=sum(len(c.messages) for c in rows))


def routes() -> list[Any]:
    return [Route("/c/{tenant}/preview", preview)]


__all__ = ["CustomerPreview", "by_customer", "routes"]
