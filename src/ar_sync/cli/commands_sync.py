"""`ar-sync run` and `ar-sync history`: the sync run, and the ledger of one invoice."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from ar_sync.cli.app import UserError, app, console
from ar_sync.cli.common import as_of, open_store, pick_connections, settings_for
from ar_sync.cli.render import actions_table, history_table, summary_table
from ar_sync.policy import load_policy
from ar_sync.sync import RunReport, run_tenant


class Format(StrEnum):
    table = "table"
    json = "json"


DbOption = Annotated[Path | None, typer.Option("--db", help="SQLite store (default: user data folder)")]


@app.command("run")
def run_cmd(
    tenant: Annotated[list[str] | None, typer.Option("--tenant", "-t", help="Tenant id (repeat)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and print; write nothing")] = False,
    full: Annotated[bool, typer.Option("--full", help="Re-read every open invoice")] = False,
    rules: Annotated[str | None, typer.Option("--rules", help="Override the tenant's rule set")] = None,
    today: Annotated[str | None, typer.Option("--today", help="Run as of YYYY-MM-DD")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
    db: DbOption = None,
) -> None:
    """Fetch, plan and write back for each connected company (or only --tenant)."""
    store = open_store(db)
    policy = load_policy(rules) if rules else None
    reports: list[RunReport] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True, disable=fmt == Format.json) as progress:
        for connection in pick_connections(store, tenant):
            task = progress.add_task(connection.id, total=None)

            def on_progress(done: int, total: int, task: TaskID = task) -> None:
                progress.update(task, completed=done, total=total)

            reports.append(run_tenant(
                store, connection.id, settings=settings_for(connection.platform),
                now=as_of(today), dry_run=dry_run, full=full or None, policy=policy,
                on_progress=on_progress))
    if fmt == Format.json:
        console.print_json(json.dumps([r.to_dict() for r in reports], default=str))
        return
    console.print(summary_table(reports))
    for report in reports:
        if report.actions:
            console.print(actions_table(report, limit=40))
        for line in report.errors:
            console.print(f"[red]error:[/] {line}")
        for line in report.warnings:
            console.print(f"[yellow]warning:[/] {line}")
    if any(r.errors for r in reports):
        raise typer.Exit(1)


@app.command("history")
def history_cmd(
    invoice: Annotated[str, typer.Argument(help="Platform invoice id")],
    tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    db: DbOption = None,
) -> None:
    """Show the ledger for one invoice: every reminder, fee and escalation, and its state."""
    store = open_store(db)
    found = False
    for connection in pick_connections(store, [tenant] if tenant else None):
        entries = store.history(connection.id, [invoice]).get(invoice, [])
        if not entries:
            continue
        found = True
        if fmt == Format.json:
            console.print_json(json.dumps([e.model_dump(mode="json") for e in entries]))
        else:
            console.print(history_table(f"{invoice} ({connection.id})", entries))
    if not found:
        raise UserError(f"no ledger entries for invoice {invoice!r}",
                        hint="ids are the platform's invoice ids; see `ar-sync run --dry-run`")
