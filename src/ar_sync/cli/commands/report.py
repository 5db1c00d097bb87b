"""`ar-sync report`: risk and aging of each connected company (or of a JSON file of invoices)
as rich tables, JSON or a self-contained HTML page."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ar_sync.cli.app import app, console, err_console
from ar_sync.cli.commands.rules import read_invoices
from ar_sync.cli.common import DbOption, as_of, open_store, pick_connections
from ar_sync.cli.errors import UserError
from ar_sync.domain.money import format_money
from ar_sync.report.figures import BUCKETS, ArReport, build_report
from ar_sync.report.html import render_html

_LEVEL_STYLE = {"low": "green", "medium": "yellow", "high": "bold red"}


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    html = "html"


def _report_day(today: str | None) -> date:
    moment = as_of(today)
    return (moment or datetime.now(UTC)).date()


def _reports(invoices_file: Path | None, tenant: list[str] | None, db: Path | None,
             day: date) -> list[ArReport]:
    if invoices_file is not None:  # the format of `ar-sync plan --invoices`
        invoices, warnings = read_invoices(invoices_file)
        for warning in warnings:
            err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
        return [build_report(invoices, {}, as_of=day, title=invoices_file.name)]
    store = open_store(db)
    reports = []
    for connection in pick_connections(store, tenant):
        name = connection.name or connection.external_id
        # paid invoices too: without them DSO drifts up and lateness has no history
        invoices = store.open_invoices(connection.id) + store.paid_invoices(connection.id)
        reports.append(build_report(invoices,
                                    store.history(connection.id), as_of=day,
                                    title=f"{name} ({connection.id})"))
    return reports


def aging_table(report: ArReport) -> Table:
    """Buckets down, currencies across (a company rarely has many currencies), DSO last."""
    table = Table(title=f"Aging — {report.title}, as of {report.as_of}")
    table.add_column("days past due")
    for row in report.aging:
        table.add_column(row.currency, justify="right")
    for n, name in enumerate(BUCKETS):
        table.add_row(name, *(f"{row.buckets[n]:,}" for row in report.aging))
    table.add_row("total", *(f"{row.total:,}" for row in report.aging), style="bold")
    table.add_row("invoices", *(str(row.invoices) for row in report.aging))
    dso = {d.currency: d.days for d in report.dso}
    table.add_row("DSO (days)", *("n/a" if dso.get(row.currency) is None
                                  else str(dso[row.currency]) for row in report.aging))
    table.caption = "DSO = receivables / credit sales of the last 90 days × 90"
    return table


def risk_table(report: ArReport, *, top: int) -> Table:
    table = Table(title=f"Customers by risk — {report.title}")
    table.add_column("customer", overflow="fold")
    table.add_column("risk")
    table.add_column("avg days late", justify="right")
    table.add_column("trend")
    table.add_column("reminders ignored", justify="right")
    table.add_column("open balance", justify="right")
    for c in report.customers[:top]:
        style = _LEVEL_STYLE.get(str(c.level), "")
        table.add_row(c.customer_name, f"[{style}]{c.level} {c.score}[/]",
                      "–" if c.avg_days_late is None else str(c.avg_days_late), str(c.trend),
                      str(c.reminders_ignored),
                      "\n".join(format_money(v, k) for k, v in sorted(c.open_balance.items())))
    if len(report.customers) > top:
        table.caption = f"… and {len(report.customers) - top} more (--top N, or --format json)"
    return table


def _print_tables(out: Console, reports: list[ArReport], top: int) -> None:
    for report in reports:
        out.print(aging_table(report))
        out.print(risk_table(report, top=top))
        out.print("[bold]Why[/]")
        for c in report.customers[:top]:
            out.print(f"  {escape(c.customer_name)} ({c.level} {c.score}): "
                      f"{escape('; '.join(c.reasons))}", highlight=False)
        for note in report.notes:
            out.print(f"[dim]note: {escape(note)}[/]")


@app.command("report")
def report_cmd(
    tenant: Annotated[list[str] | None, typer.Option("--tenant", "-t", help="Tenant id (repeat)")] = None,
    today: Annotated[str | None, typer.Option("--today", help="Report as of YYYY-MM-DD")] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="table, json or html")] = ReportFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file ('-': standard output; html default: ar-sync-report.html in a terminal, standard output when redirected)")] = None,
    invoices: Annotated[Path | None, typer.Option("--invoices", help="Report on a JSON file of invoices instead of the store")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Customers to list in the table")] = 15,
    db: DbOption = None,
) -> None:
    """Risk and aging: buckets per currency, DSO, each customer's lateness, trend, reminders
    ignored and risk score with the reasons."""
    reports = _reports(invoices, tenant, db, _report_day(today))
    to_stdout = output is not None and str(output) == "-"
    if fmt == ReportFormat.html and output is None:
        # redirected or piped (`report --format html > file`): the page goes to stdout
        to_stdout = not sys.stdout.isatty()
        output = None if to_stdout else Path("ar-sync-report.html")
    if to_stdout:
        output = None
    if output is not None and not output.parent.exists():
        raise UserError(f"folder {output.parent} does not exist", hint="create it first")
    if fmt == ReportFormat.html:
        page = render_html(reports)
        if output is None:
            typer.echo(page, nl=False)  # nothing else on stdout: it is the file
            return
        output.write_text(page, encoding="utf-8")
        _wrote(f"{output} ({len(reports)} compan{'y' if len(reports) == 1 else 'ies'})")
        return
    if fmt == ReportFormat.json:
        text = json.dumps([r.to_dict() for r in reports], indent=2)
        if output is None:
            typer.echo(text)
        else:
            output.write_text(text + "\n", encoding="utf-8")
            _wrote(str(output))
        return
    if output is None:
        _print_tables(console, reports, top)
        return
    with output.open("w", encoding="utf-8") as fh:
        _print_tables(Console(file=fh, width=140, no_color=True), reports, top)
    _wrote(str(output))


def _wrote(what: str) -> None:
    """Status goes to stderr: stdout is the report (or nothing), whatever it is sent to."""
    err_console.print(f"wrote {escape(what)}", highlight=False)
