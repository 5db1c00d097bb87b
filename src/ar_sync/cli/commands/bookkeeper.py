"""`ar-sync go-live`, `pause`, `resume`, `pauses` and `fee waive`: what a bookkeeper decides
per company, per customer and per invoice (issue 12). Invoices are named by their number
(what a bookkeeper knows) or the platform id; they must be in the local snapshot (a run or a
dry run fetches it)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from ar_sync.cli.app import app, console
from ar_sync.cli.common import (
    DbOption,
    Format,
    FormatOption,
    JsonAlias,
    TenantOption,
    find_invoice,
    one_connection,
    open_connection,
    open_store,
    parse_date,
    settings_for,
    wants_json,
)
from ar_sync.cli.errors import UserError
from ar_sync.cli.render.company import pauses_table
from ar_sync.domain.models import ActionKind, EntryState, Invoice, LedgerEntry
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.company_rules import company_today
from ar_sync.sync.company_settings import SettingsChangeError, go_live, new_pause
from ar_sync.sync.connector import Connection
from ar_sync.sync.run import execute_action, open_connector
from ar_sync.sync.waivers import fees_left, request_waiver


class Reason(StrEnum):
    dispute = "dispute"
    promise = "promise"
    other = "other"


def _today(store: SQLiteStore, connection: Connection) -> date:
    """The company's date now, in its rules' time zone (not UTC)."""
    return company_today(store, connection)


def _invoice(store: SQLiteStore, connection: Connection, wanted: str) -> Invoice:
    inv = find_invoice(store.open_invoices(connection.id), wanted)
    if inv is None:
        raise UserError(f"no open invoice {wanted!r} in {connection.id}",
                        hint="invoices are named by number or platform id; run `ar-sync run "
                             "--dry-run` first so the invoice is in the local snapshot")
    return inv


# ----------------------------------------------------------------------------- go-live


@app.command("go-live")
def go_live_cmd(
    tenant: TenantOption = None,
    day: Annotated[str | None, typer.Option("--date", help="Go-live date YYYY-MM-DD (default: today)")] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Switch back to preview: runs report, write nothing")] = False,
    db: DbOption = None,
) -> None:
    """Switch a company to live (or back to --preview). A date after today (the company's)
    holds every write until that date: the company stays in preview until then."""
    store, connection = open_connection(db, tenant)
    updated = go_live(store, connection, on=parse_date(day, "--date") if day else None,
                      preview=preview, today=_today(store, connection))
    when = updated.go_live
    name = escape(connection.name or connection.id)
    if preview:
        console.print(f"{name} is in [yellow]preview[/]: runs plan and report, and write "
                      f"nothing. Go-live date {when}.", highlight=False)
    else:
        today = _today(store, connection)
        first = "the next run writes back" if when is None or when <= today else (
            "until then runs plan and report, and write nothing (preview)")
        console.print(f"{name} is [green]live[/] from {when}: {first}. Fees wait for their "
                      "terms to be announced (rules: `journey`).", highlight=False)


# ----------------------------------------------------------------------------- pauses


@app.command("pause")
def pause_cmd(
    invoice: Annotated[str | None, typer.Argument(help="Invoice number (or platform id)")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="Pause every invoice of this customer (id or exact name)")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last paused day YYYY-MM-DD (default: until `ar-sync resume`)")] = None,
    reason: Annotated[Reason, typer.Option("--reason", help="dispute, promise (to pay by --until) or other")] = Reason.other,
    note: Annotated[str, typer.Option("--note", help="Why, for the bookkeeper")] = "",
    tenant: TenantOption = None,
    db: DbOption = None,
) -> None:
    """Pause follow-up of one invoice or one customer: no reminder, fee or escalation."""
    if (invoice is None) == (customer is None):
        raise UserError("name one invoice or one --customer", hint="ar-sync pause INV-1001 "
                        "--until 2026-12-31 --reason promise")
    store, connection = open_connection(db, tenant)
    last = parse_date(until, "--until") if until else None
    if invoice is not None:
        inv = _invoice(store, connection, invoice)
        target, what = {"invoice_id": inv.id}, f"invoice {inv.number} ({inv.customer_name})"
    else:
        cid, name = _customer(store, connection, str(customer))
        target, what = {"customer_id": cid}, f"customer {name}"
    try:
        pause = new_pause(**target, until=last, reason=reason.value, note=note,
                          today=_today(store, connection))
    except SettingsChangeError as exc:
        hint = "--until YYYY-MM-DD" if reason == Reason.promise else None
        raise UserError(str(exc), hint=hint) from None
    pause_id = store.add_pause(connection.id, pause)
    console.print(f"paused {escape(what)} ({reason.value}) "
                  f"{f'through {last}' if last else 'until resumed'}; id {pause_id}",
                  highlight=False)


def _customer(store: SQLiteStore, connection: Connection, wanted: str) -> tuple[str, str]:
    invoices = store.open_invoices(connection.id)
    for inv in invoices:
        if wanted in (inv.customer_id, inv.customer_name):
            return inv.customer_id, inv.customer_name
    raise UserError(f"no customer {wanted!r} with open invoices in {connection.id}",
                    hint="customers are named by platform id or exact name")


@app.command("resume")
def resume_cmd(
    invoice: Annotated[str | None, typer.Argument(help="Invoice number (or platform id)")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="Customer id or exact name")] = None,
    tenant: TenantOption = None,
    db: DbOption = None,
) -> None:
    """End the pauses of an invoice or a customer today: the rules apply again from the next
    run (fees for the paused days follow `after_pause`)."""
    if (invoice is None) == (customer is None):
        raise UserError("name one invoice or one --customer")
    store, connection = open_connection(db, tenant)
    if invoice is not None:
        inv = find_invoice(store.open_invoices(connection.id), invoice)
        ended = store.end_pauses(connection.id, invoice_id=inv.id if inv else invoice,
                                 on=_today(store, connection))
    else:
        cid = _customer(store, connection, str(customer))[0]
        ended = store.end_pauses(connection.id, customer_id=cid, on=_today(store, connection))
    if not ended:
        raise UserError(f"nothing paused for {invoice or customer!r} in {connection.id}",
                        hint="see `ar-sync pauses`")
    console.print(f"resumed: {ended} pause(s) ended today")


@app.command("pauses")
def pauses_cmd(
    tenant: TenantOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Include ended and resumed pauses")] = False,
    fmt: FormatOption = Format.table,
    as_json: JsonAlias = False,
    db: DbOption = None,
) -> None:
    """List the stored pauses (markers set on the platform are read by each run)."""
    store = open_store(db)
    rows = []
    today = datetime.now(UTC).date()
    for connection in ([one_connection(store, tenant)] if tenant else store.list_connections()):
        today = _today(store, connection)  # each company's own date
        names = {i.id: f"invoice {i.number}" for i in store.open_invoices(connection.id)}
        names.update({i.customer_id: f"customer {i.customer_name}"
                      for i in store.open_invoices(connection.id)})
        for stored in store.list_pauses(connection.id):
            p = stored.pause
            over = stored.resumed_on is not None or (p.until is not None and p.until < today)
            if all_ or not over:
                target = str(p.invoice_id or p.customer_id)
                rows.append((connection.id, stored, names.get(target, target)))
    if wants_json(fmt, as_json):
        typer.echo(json.dumps([{"tenant": t, "id": s.id, **s.pause.model_dump(mode="json"),
                                "resumed_on": str(s.resumed_on) if s.resumed_on else None}
                               for t, s, _ in rows], indent=2))
        return
    console.print(pauses_table(rows, today))
    if not rows:
        console.print("no pauses" + ("" if all_ else " in force (--all shows past ones)"))


# ----------------------------------------------------------------------------- waivers


fee_app = typer.Typer(help="Waive late fees ar-sync charged.", no_args_is_help=True)
app.add_typer(fee_app, name="fee")


def _fees_to_waive(store: SQLiteStore, connection: Connection, target: str,
                   every: bool) -> tuple[list[LedgerEntry], Invoice | None]:
    if target.startswith("ar") and (entry := store.get(target)) is not None:
        if entry.tenant != connection.id:
            raise UserError(f"{target} belongs to {entry.tenant}", hint=f"--tenant {entry.tenant}")
        if entry.kind != ActionKind.LATE_FEE or entry.state != EntryState.DONE:
            raise UserError(f"{target} is a {entry.kind} in state {entry.state}, not a "
                            "charged fee")
        left = [f for f in fees_left(store, connection.id, [entry.invoice_id])
                if f.key == entry.key]
        inv = next((i for i in store.open_invoices(connection.id)
                    if i.id == entry.invoice_id), None)
    else:
        inv = _invoice(store, connection, target)
        left = fees_left(store, connection.id, [inv.id])
    if not left:
        raise UserError(f"no charged fee left to waive for {target!r}",
                        hint="`ar-sync history INVOICE` shows the fees and waivers")
    if len(left) > 1 and not every:
        keys = ", ".join(f"{f.key} ({f.rule} {f.occurrence}: {f.amount})" for f in left)
        raise UserError(f"{len(left)} fees charged on {target!r}: {keys}",
                        hint="name one fee by its key, or waive them all with --all")
    return left, inv


@fee_app.command("waive")
def waive_cmd(
    target: Annotated[str, typer.Argument(help="The fee's ledger key, or an invoice number / id")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the ledger)")] = "waived by the bookkeeper",
    every: Annotated[bool, typer.Option("--all", help="Waive every fee charged on the invoice")] = False,
    now: Annotated[bool, typer.Option("--now/--next-run", help="Apply it now (needs the platform) or leave it to the next run")] = False,
    tenant: TenantOption = None,
    db: DbOption = None,
) -> None:
    """Reverse a charged late fee with a credit note applied to the invoice, exactly once."""
    store, connection = open_connection(db, tenant)
    fees, inv = _fees_to_waive(store, connection, target, every)
    today = _today(store, connection)
    waivers = []
    for fee in fees:
        asked = request_waiver(store, fee, inv, reason, today=today, now=datetime.now(UTC))
        waiver = asked.waiver
        state = "requested" if asked.queued else f"already {asked.state}"
        console.print(f"waiver of {waiver.amount} ({fee.rule} {fee.occurrence}) on invoice "
                      f"{waiver.invoice_number}: {state}; key {waiver.key}", highlight=False)
        waivers.append(waiver)
    if not now:
        console.print("the next run applies it (a credit note on the platform)")
        return
    clock = lambda: datetime.now(UTC)  # noqa: E731
    connector = open_connector(store, connection, settings_for(connection.platform),
                               CallBudget(), clock)
    owner = f"waive-{secrets.token_hex(4)}"
    for waiver in waivers:
        outcome = execute_action(store, connector, waiver, None, owner=owner, clock=clock)
        console.print(f"{waiver.invoice_number}: {outcome.outcome} {outcome.ref or ''} "
                      f"{outcome.detail}", highlight=False)
        if outcome.outcome in ("failed", "retry"):
            raise typer.Exit(1)
