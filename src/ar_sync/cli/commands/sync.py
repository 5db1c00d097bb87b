"""`ar-sync run` and `ar-sync history`: the sync run, and the ledger of one invoice."""

from __future__ import annotations

import json
import logging
import os
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from ar_sync.cli.app import app, console, err_console
from ar_sync.cli.commands.mail import mail_lines
from ar_sync.cli.common import (
    DbOption,
    Format,
    open_store,
    parse_day,
    pick_connections,
    settings_for,
)
from ar_sync.cli.errors import UserError
from ar_sync.cli.render.company import rules_line
from ar_sync.cli.render.runs import actions_table, history_table, summary_table
from ar_sync.cli.signals import EXIT_INTERRUPTED, interruptible
from ar_sync.delivery.settings import company_mail_setup, mail_setup
from ar_sync.domain.models import Invoice
from ar_sync.rules.policy import load_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import INTERRUPTED, LEASE_SECONDS, LOCK_HELD, RunReport, run_tenant

log = logging.getLogger("ar_sync.run")


EXIT_FAILED = 1  # a tenant failed: platform unavailable, authorisation lost, errors
EXIT_LOCKED = 75  # EX_TEMPFAIL: another run holds a tenant's lock; nothing failed


def exit_code(reports: list[RunReport], *, interrupted: bool) -> int:
    """One rule for every output format: interrupted > failed > locked out > success."""
    if interrupted:
        return EXIT_INTERRUPTED
    if any(r.errors for r in reports):
        return EXIT_FAILED
    if any(r.stopped_early == LOCK_HELD for r in reports):
        return EXIT_LOCKED
    return 0


def lease_seconds() -> float:
    """How long a killed run's claims and lock block the next run: AR_SYNC_LEASE_SECONDS,
    else 5 minutes. Longer than any single platform call with its retries."""
    raw = os.environ.get("AR_SYNC_LEASE_SECONDS", "")
    try:
        value = float(raw) if raw else LEASE_SECONDS
    except ValueError:
        raise UserError(f"AR_SYNC_LEASE_SECONDS={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise UserError(f"AR_SYNC_LEASE_SECONDS={raw!r} must be positive")
    return value


def _log_to(path: Path) -> logging.Handler:
    """Append run logs to PATH (for cron/systemd); tokens never reach the log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    return handler


def _log_report(report: RunReport) -> None:
    log.info("run %s: %s", report.connection_id, json.dumps({
        k: getattr(report, k) for k in (
            "stopped_early", "invoices_open", "planned", "done", "reconciled", "skipped",
            "retry", "failed", "deferred", "busy", "api_calls")}))
    for line in report.errors:
        log.error("%s: %s", report.connection_id, line)
    for line in report.warnings:
        log.warning("%s: %s", report.connection_id, line)


@app.command("run")
def run_cmd(
    tenant: Annotated[list[str] | None, typer.Option("--tenant", "-t", help="Tenant id (repeat)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and print; write nothing")] = False,
    full: Annotated[bool, typer.Option("--full", help="Re-read every open invoice")] = False,
    rules: Annotated[str | None, typer.Option("--rules", help="Override the tenant's rule set")] = None,
    today: Annotated[str | None, typer.Option("--today", help="Plan as of YYYY-MM-DD, the company's local date (leases and locks keep the real clock)")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
    log_file: Annotated[Path | None, typer.Option("--log-file", help="Append a log of the run to this file (cron, systemd)")] = None,
    db: DbOption = None,
) -> None:
    """Fetch, plan and write back for each connected company (or only --tenant).

    Exit codes: 0 done, 1 a tenant failed, 2 a user error, 75 another run holds a tenant's
    lock, 130 interrupted (Ctrl-C, SIGTERM) — the same for every --format.
    """
    handler = _log_to(log_file) if log_file else None
    try:
        code = _run_all(tenant, dry_run=dry_run, full=full, rules=rules, day=parse_day(today),
                        fmt=fmt, db=db)
    finally:
        if handler:
            logging.getLogger().removeHandler(handler)
            handler.close()
    if code:
        raise typer.Exit(code)


def _run_all(tenant: list[str] | None, *, dry_run: bool, full: bool, rules: str | None,
             day: date | None, fmt: Format, db: Path | None) -> int:
    store = open_store(db)
    if rules:
        load_policy(rules)  # a broken --rules file stops before any company runs
    connections = pick_connections(store, tenant)
    settings = {c.platform: settings_for(c.platform) for c in connections}
    mail_setup()  # a broken mail setting stops here, before any company runs
    mails = {c.id: company_mail_setup(store, c.id) for c in connections}  # each its own From
    reports: list[RunReport] = []
    with interruptible() as signals, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            console=console, transient=True, disable=fmt == Format.json) as progress:
        try:
            for connection in connections:
                task = progress.add_task(connection.id, total=None)

                def on_progress(done: int, total: int, task: TaskID = task) -> None:
                    progress.update(task, completed=done, total=total)

                report = run_tenant(
                    store, connection.id, settings=settings[connection.platform], today=day,
                    dry_run=dry_run, full=full or None, rules_override=rules,
                    on_progress=on_progress, lease_seconds=lease_seconds(),
                    mail=mails[connection.id])
                reports.append(report)
                _log_report(report)
                if report.stopped_early == INTERRUPTED:
                    break
        except KeyboardInterrupt:
            pass  # between tenants: nothing of ours is held
    interrupted = signals.interrupted
    not_started = [c.id for c in connections[len(reports):]]
    if interrupted:
        left = sum(r.deferred for r in reports)
        message = (f"interrupted: {left} action(s) left for the next run"
                   + (f"; not started: {', '.join(not_started)}" if not_started else ""))
        log.warning(message)
    if fmt == Format.json:
        typer.echo(json.dumps([r.to_dict() for r in reports], default=str, indent=2))
    else:
        console.print(summary_table(reports))
        for report in reports:
            console.print(rules_line(report), highlight=False)
            if report.actions:
                console.print(actions_table(report, limit=40))
            for line in report.errors:
                console.print(f"[red]error:[/] {line}")
            for line in report.warnings:
                console.print(f"[yellow]warning:[/] {line}")
            for line in mail_lines(report):
                console.print(line, highlight=False)
    if interrupted:
        err_console.print(f"[yellow]{message}[/]", highlight=False)
    return exit_code(reports, interrupted=interrupted)


def _currency(store: SQLiteStore, key: str, invoice: Invoice | None) -> str | None:
    """The currency of a ledger row's amount: its invoice's, else the stored action's."""
    if invoice is not None:
        return invoice.currency
    money = getattr(store.action_payload(key), "amount", None)
    return getattr(money, "currency", None)


@app.command("history")
def history_cmd(
    invoice: Annotated[str, typer.Argument(help="Invoice number or platform invoice id")],
    tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    db: DbOption = None,
) -> None:
    """Show the ledger for one invoice: every reminder, fee, waiver and escalation, its state
    and the rules version that planned it."""
    store = open_store(db)
    found = False
    for connection in pick_connections(store, [tenant] if tenant else None):
        stored = next((i for i in [*store.open_invoices(connection.id),
                                   *store.paid_invoices(connection.id)]
                       if invoice in (i.id, i.number)), None)
        known = stored.id if stored is not None else invoice
        entries = store.history(connection.id, [known]).get(known, [])
        if not entries:
            continue
        found = True
        currencies = {e.key: c for e in entries if e.amount is not None
                      and (c := _currency(store, e.key, stored)) is not None}
        if fmt == Format.json:
            console.print_json(json.dumps([{**e.model_dump(mode="json"),
                                            "currency": currencies.get(e.key)}
                                           for e in entries]))
        else:
            console.print(history_table(f"{invoice} ({connection.id})", entries, currencies))
    if not found:
        raise UserError(f"no ledger entries for invoice {invoice!r}",
                        hint="name it by number or platform id; see `ar-sync run --dry-run`")
