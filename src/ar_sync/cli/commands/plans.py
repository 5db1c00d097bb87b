"""`ar-sync payment-plan create|list|cancel`: agreed instalment schedules for invoices."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from ar_sync.cli.app import app, console
from ar_sync.cli.common import (
    DbOption,
    Format,
    FormatOption,
    JsonAlias,
    TenantOption,
    find_invoice,
    open_connection,
    open_store,
    parse_date,
    pick_connections,
    wants_json,
)
from ar_sync.cli.errors import UserError
from ar_sync.domain.models import Invoice
from ar_sync.domain.money import format_money
from ar_sync.domain.payment_plans import PaymentPlan, instalment_date, parse_every, schedule

plan_app = typer.Typer(help="Record, list and cancel payment plans (instalment schedules).",
                       no_args_is_help=True)
app.add_typer(plan_app, name="payment-plan")

def _schedule_table(title: str, plan: PaymentPlan, inv: Invoice | None) -> Table:
    table = Table(title=title)
    for column in ("#", "due", "amount", "cumulative"):
        table.add_column(column, justify="right" if column != "due" else "left")
    if inv is None or plan.amount is None:
        return table
    for ins in schedule(plan, plan.amount, inv.currency):
        table.add_row(str(ins.number), ins.due.isoformat(),
                      format_money(ins.amount, inv.currency),
                      format_money(ins.cumulative, inv.currency))
    return table


@plan_app.command("create")
def create_cmd(
    invoice: Annotated[str, typer.Argument(help="Invoice number or platform invoice id")],
    instalments: Annotated[int, typer.Option("--instalments", "-n", min=1, max=120,
                                             help="How many instalments")],
    every: Annotated[str, typer.Option("--every", help="'1 month', '2 weeks', '14 days'")]
        = "1 month",
    first: Annotated[str | None, typer.Option("--first", help="First instalment due "
                                              "YYYY-MM-DD (default: one interval from today)")]
        = None,
    tenant: TenantOption = None,
    db: DbOption = None,
) -> None:
    """Agree a schedule for an open invoice: its unpaid balance split evenly (remainder on the
    last instalment). The next run writes the plan as a note on the invoice."""
    try:
        step = parse_every(every)
    except ValueError as exc:
        raise UserError(str(exc), hint="e.g. --every '1 month' or --every '14 days'") from None
    store, connection = open_connection(db, tenant)
    inv = find_invoice(store.open_invoices(connection.id), invoice)
    if inv is None:
        raise UserError(f"no open invoice {invoice!r} in {connection.id}",
                        hint="run `ar-sync run` first so the invoice is in the local snapshot")
    start = (parse_date(first, "--first") if first is not None
             else instalment_date(datetime.now(UTC).date(), step, 1))
    plan = PaymentPlan(invoice=inv.id, instalments=instalments, every=step, first_due=start,
                       amount=inv.balance, already_paid=inv.total - inv.balance)
    store.save_payment_plan(connection.id, plan)
    console.print(_schedule_table(
        f"Payment plan for {inv.number} ({inv.customer_name}), every {step}", plan, inv))


@plan_app.command("list")
def list_cmd(
    tenant: TenantOption = None,
    fmt: FormatOption = Format.table,
    as_json: JsonAlias = False,
    db: DbOption = None,
) -> None:
    """Show recorded payment plans (the rules file's `payment_plans` are not listed here)."""
    store = open_store(db)
    rows = []
    for connection in pick_connections(store, [tenant] if tenant else None):
        invoices = store.open_invoices(connection.id)
        for plan in store.payment_plans(connection.id):
            rows.append((connection, plan, find_invoice(invoices, plan.invoice)))
    if wants_json(fmt, as_json):
        console.print_json(json.dumps([{"tenant": c.id, **p.model_dump(mode="json")}
                                       for c, p, _ in rows]))
        return
    table = Table(title="Payment plans")
    for column in ("tenant", "invoice", "customer", "instalments", "every", "first due",
                   "amount"):
        table.add_column(column)
    for connection, plan, inv in rows:
        amount = format_money(plan.amount, inv.currency) if inv and plan.amount else "-"
        table.add_row(connection.id, inv.number if inv else plan.invoice,
                      inv.customer_name if inv else "(not open)", str(plan.instalments),
                      plan.every, plan.first_due.isoformat(), amount)
    console.print(table)
    if not rows:
        console.print("no payment plans recorded")


@plan_app.command("cancel")
def cancel_cmd(
    invoice: Annotated[str, typer.Argument(help="Invoice number or platform invoice id")],
    tenant: TenantOption = None,
    db: DbOption = None,
) -> None:
    """Drop an invoice's payment plan: the normal rules apply again from the next run."""
    store, connection = open_connection(db, tenant)
    inv = find_invoice(store.open_invoices(connection.id), invoice)
    key = inv.id if inv is not None else invoice
    if not store.delete_payment_plan(connection.id, key):
        raise UserError(f"no payment plan for invoice {invoice!r} in {connection.id}",
                        hint="see `ar-sync payment-plan list`")
    console.print(f"payment plan for {inv.number if inv else invoice} cancelled")
