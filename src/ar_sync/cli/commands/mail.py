"""`ar-sync contact set|show` (where a customer's e-mail goes) and the demo's e-mail summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from ar_sync.cli.app import app, console
from ar_sync.cli.common import DbOption, Format, FormatOption, TenantOption, open_connection
from ar_sync.cli.errors import UserError
from ar_sync.domain.contacts import Contact, changed_contact
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import RunReport
from ar_sync_emulators.smtp_sink import SinkMessage, write_eml

contact_app = typer.Typer(help="Per-customer e-mail settings: opt-out, override address.",
                          no_args_is_help=True)
app.add_typer(contact_app, name="contact")


def _tenant(db: Path | None, tenant: str | None) -> tuple[SQLiteStore, str]:
    store, connection = open_connection(db, tenant)
    return store, connection.id


@contact_app.command("set")
def set_cmd(
    customer: Annotated[str, typer.Argument(help="The platform's customer id")],
    email: Annotated[str | None, typer.Option("--email", help="Send here instead of the "
                                              "invoice's address")] = None,
    clear_email: Annotated[bool, typer.Option("--clear-email", help="Use the invoice's "
                                              "address again")] = False,
    opt_out: Annotated[bool | None, typer.Option("--opt-out/--opt-in", help="Stop (or resume) "
                                                 "ar-sync's e-mails to this customer")] = None,
    tenant: TenantOption = None,
    db: DbOption = None,
) -> None:
    """Change where (and whether) ar-sync e-mails one customer. Setting an address clears a
    recorded bounce; notes on the invoices are written either way."""
    store, tenant_id = _tenant(db, tenant)
    try:
        contact = changed_contact(store.contacts(tenant_id).get(customer), tenant_id, customer,
                                  now=datetime.now(UTC), source="cli", email=email,
                                  clear_email=clear_email, opted_out=opt_out)
    except ValidationError as exc:
        raise UserError(f"--email {email!r}: not an e-mail address",
                        hint="e.g. --email accounts@customer.example") from exc
    store.save_contact(contact)
    console.print(_table([contact]))


@contact_app.command("show")
def show_cmd(
    customer: Annotated[str | None, typer.Argument(help="One customer id (default: all)")]
        = None,
    tenant: TenantOption = None,
    fmt: FormatOption = Format.table,
    db: DbOption = None,
) -> None:
    """The stored contacts: override address, opt-out, bounce."""
    store, tenant_id = _tenant(db, tenant)
    contacts = store.contacts(tenant_id)
    chosen = [c for k, c in sorted(contacts.items()) if customer in (None, k)]
    if customer is not None and not chosen:
        raise UserError(f"no contact stored for customer {customer!r} in {tenant_id}",
                        hint="the invoice's own address is used; set one with "
                             "`ar-sync contact set`")
    if fmt == Format.json:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in chosen], indent=2))
        return
    console.print(_table(chosen))


def _table(contacts: list[Contact]) -> Table:
    table = Table(title="Contacts")
    for column in ("customer", "e-mail override", "opted out", "bounced", "updated"):
        table.add_column(column)
    for c in contacts:
        table.add_row(c.customer_id, c.email or "(invoice's address)",
                      "yes" if c.opted_out else "no", c.bounced or "",
                      c.updated_at.isoformat(timespec="seconds") if c.updated_at else "")
    return table


def mail_lines(report: RunReport) -> list[str]:
    """What a person must look at after a run: e-mails whose outcome is unknown (never resent
    automatically) and customers who were due an e-mail and got none."""
    lines = [f"[magenta]check by hand:[/] {a.what} — {a.detail}"
             for a in report.actions if a.outcome == "ambiguous"]
    lines += [f"[yellow]not e-mailed:[/] {who}" for who in report.not_emailed]
    return lines


def show_mail(messages: list[SinkMessage], outbox: Path | None) -> None:
    """The demo's customer e-mails: a table, one sample, and the .eml files if asked."""
    table = Table(title="Customer e-mails, as the local SMTP server received them")
    for column in ("to", "subject", "invoices"):
        table.add_column(column, overflow="fold")
    for m in messages[:8]:
        msg = m.message
        text = msg.get_body(("plain",))
        body = text.get_content() if text is not None else ""
        table.add_row(", ".join(m.recipients), str(msg["Subject"]), str(_statement_rows(body)))
    console.print(table)
    customers = {r for m in messages for r in m.recipients}
    console.print(f"{len(messages)} e-mails to {len(customers)} addresses: one per customer "
                  f"of each connected company a day, every invoice due a reminder listed.")
    if messages:
        sample = messages[0].message
        text = sample.get_body(("plain",))
        console.print(f"[bold]Sample[/] — From: {sample['From']}  To: {sample['To']}  "
                      f"Subject: {sample['Subject']}")
        console.print(text.get_content() if text is not None else "", markup=False,
                      highlight=False)
    if outbox is not None:
        paths = write_eml(messages, outbox)
        console.print(f"Wrote {len(paths)} .eml files to {outbox}.")


def _statement_rows(body: str) -> int:
    """Invoices listed in a message's plain text (the rows under the statement header)."""
    lines = body.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Invoice ")), None)
    if start is None:
        return 0
    rows = 0
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows += not line.startswith((" ", "Total due"))
    return rows
