"""`ar-sync rules apply|show|history|rollback|diff`: a company's rules, stored as versions.

A run uses the tenant's current version and records its number on every ledger row; `diff`
previews a new file against the current version before it is applied.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape

from ar_sync.cli.app import console, err_console
from ar_sync.cli.commands.rules import rules_app
from ar_sync.cli.common import DbOption, TenantOption, open_connection, parse_day
from ar_sync.cli.errors import UserError
from ar_sync.cli.render.company import diff_table, money_lines, versions_table
from ar_sync.rules.policy import PolicyError, load_policy
from ar_sync.sync.company_rules import (
    choose_rules,
    company_zone,
    read_rules_source,
    stored_versions,
)
from ar_sync.sync.company_settings import SettingsChangeError, apply_rules, rollback_rules
from ar_sync.sync.company_store import planner_pauses
from ar_sync.sync.rules_diff import rules_diff


def _validated(source: str) -> tuple[str, str]:
    try:
        return read_rules_source(source)
    except PolicyError as exc:
        raise UserError(str(exc), hint="check it with `ar-sync rules validate`; a stored rule "
                        "set may extend only a shipped one (extends: default)") from None


@rules_app.command("apply")
def apply_cmd(
    source: Annotated[str, typer.Argument(help="Rules file or shipped rule set name")],
    tenant: TenantOption = None,
    note: Annotated[str, typer.Option("--note", help="Why, for the history")] = "",
    db: DbOption = None,
) -> None:
    """Validate a rules file and store it as the company's next rules version."""
    text, name = _validated(source)
    store, connection = open_connection(db, tenant)
    applied = apply_rules(store, connection.id, text, source=name, now=datetime.now(UTC),
                          note=note)
    if applied.unchanged:
        console.print(f"unchanged: version {applied.version} already has this text")
        return
    console.print(f"{connection.id}: rules version {applied.version} applied from {name}; the "
                  "next run uses it", highlight=False)


@rules_app.command("show")
def show_cmd(
    tenant: TenantOption = None,
    version: Annotated[int | None, typer.Option("--version", help="A past version (default: current)")] = None,
    db: DbOption = None,
) -> None:
    """Print the company's current (or --version N) rules as stored."""
    store, connection = open_connection(db, tenant)
    versions = store.rules_versions(connection.id)
    if not versions:
        console.print(f"{connection.id} has no stored rules: runs use "
                      f"{connection.rules!r} (apply a file with `ar-sync rules apply`)")
        return
    chosen = versions[-1] if version is None else next(
        (v for v in versions if v.version == version), None)
    if chosen is None:
        raise UserError(f"no rules version {version} for {connection.id}",
                        hint="`ar-sync rules history` lists them")
    typer.echo(f"# {connection.id} rules version {chosen.version} from {chosen.source}, "
               f"applied {chosen.created_at:%Y-%m-%d %H:%M} UTC")
    typer.echo(chosen.text, nl=not chosen.text.endswith("\n"))


@rules_app.command("history")
def history_cmd(tenant: TenantOption = None, db: DbOption = None) -> None:
    """Every stored rules version of the company, oldest first."""
    store, connection = open_connection(db, tenant)
    versions = store.rules_versions(connection.id)
    if not versions:
        console.print(f"{connection.id} has no stored rules versions")
        return
    console.print(versions_table(connection.id, versions))


@rules_app.command("rollback")
def rollback_cmd(
    version: Annotated[int | None, typer.Argument(help="Version to return to (default: the one before the current)")] = None,
    tenant: TenantOption = None,
    db: DbOption = None,
) -> None:
    """Return to an earlier version (stored again as a new version: history keeps all)."""
    store, connection = open_connection(db, tenant)
    try:
        new, target = rollback_rules(store, connection.id, version, now=datetime.now(UTC))
    except SettingsChangeError as exc:
        raise UserError(f"{connection.id}: {exc}", hint="`ar-sync rules history` lists the "
                        "versions") from None
    console.print(f"{connection.id}: version {new} = version {target.version} "
                  f"({target.source}); the next run uses it", highlight=False)


@rules_app.command("diff")
def diff_cmd(
    new_file: Annotated[str, typer.Argument(help="The rules file (or shipped set) to compare")],
    tenant: TenantOption = None,
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="Days to simulate from today")] = 30,
    since: Annotated[str | None, typer.Option("--since", help="Backtest: replay from YYYY-MM-DD to today from the stored ledger")] = None,
    today: Annotated[str | None, typer.Option("--today", help="Start (or, with --since, end) on YYYY-MM-DD")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows shown in the table")] = 40,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    db: DbOption = None,
) -> None:
    """Preview a rules change: actions that appear, disappear or change over the next --days
    days (nobody pays), and the money difference per currency."""
    if fmt not in ("table", "json"):
        raise UserError(f"--format {fmt!r} is not supported", hint="use table or json")
    try:
        new = load_policy(new_file)
    except PolicyError as exc:
        raise UserError(str(exc), hint="check it with `ar-sync rules validate`") from None
    store, connection = open_connection(db, tenant)
    choice = choose_rules(store, connection)
    invoices = store.open_invoices(connection.id)
    if not invoices:
        raise UserError(f"no open invoices stored for {connection.id}",
                        hint="fetch them first: `ar-sync run --dry-run`")
    start = parse_day(today) or choice.policy.today(datetime.now(UTC))
    first = parse_day(since) if since else None
    if first is not None and first > start:
        raise UserError(f"--since {first} is after {start}")
    history = store.history(connection.id, [i.id for i in invoices])
    result = rules_diff(invoices, history, choice.policy, new, start=start, days=days,
                        since=first, go_live=connection.live_from(company_zone(choice.policy)),
                        versions=stored_versions(store, connection.id),
                        pauses=planner_pauses(store.list_pauses(connection.id)),
                        plans=store.payment_plans(connection.id))
    if fmt == "json":
        typer.echo(json.dumps({"current": choice.label, "new": new_file,
                               "start": str(result.start), "days": result.days,
                               "counts": result.counts, "fees_before": result.before,
                               "fees_after": result.after,
                               "difference": {k: str(v) for k, v in result.money().items()},
                               "rows": [asdict(r) for r in result.rows],
                               "skipped": list(result.skipped)}, default=str, indent=2))
        return
    for line in result.skipped:
        err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
    console.print(f"current: {escape(choice.label)}; new: {escape(new_file)}", highlight=False)
    console.print(diff_table(result, limit))
    c = result.counts
    console.print(f"{c['new']} new, {c['gone']} gone, {c['changed']} changed, "
                  f"{c['same']} the same", highlight=False)
    if c.get("not repeated"):
        console.print(f"{c['not repeated']} not repeated: fee days or stages already done "
                      "under other rules, a schedule or a channel the change replaces",
                      highlight=False)
    for line in money_lines(result):
        console.print(line, highlight=False)
