"""`ar-sync rules apply|show|history|rollback|diff`: a company's rules, stored as versions.

A run uses the tenant's current version and records its number on every ledger row; `diff`
previews a new file against the current version before it is applied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ar_sync.cli.app import UserError, console
from ar_sync.cli.commands_plans import _one_connection
from ar_sync.cli.commands_rules import rules_app
from ar_sync.cli.common import open_store
from ar_sync.cli.render_trust import versions_table
from ar_sync.policy import PolicyError
from ar_sync.tenant_rules import parse_stored, read_rules_source

DbOption = Annotated[Path | None, typer.Option("--db", help="SQLite store (default: user data folder)")]
TenantOption = Annotated[str | None, typer.Option("--tenant", "-t", help="Tenant id (needed when several companies are connected)")]


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
    store = open_store(db)
    connection = _one_connection(store, tenant)
    current = store.current_rules(connection.id)
    if current is not None and current.text == text:
        console.print(f"unchanged: version {current.version} already has this text")
        return
    version = store.apply_rules(connection.id, text, source=name, now=datetime.now(UTC),
                                note=note)
    console.print(f"{connection.id}: rules version {version} applied from {name}; the next "
                  "run uses it", highlight=False)


@rules_app.command("show")
def show_cmd(
    tenant: TenantOption = None,
    version: Annotated[int | None, typer.Option("--version", help="A past version (default: current)")] = None,
    db: DbOption = None,
) -> None:
    """Print the company's current (or --version N) rules as stored."""
    store = open_store(db)
    connection = _one_connection(store, tenant)
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
    store = open_store(db)
    connection = _one_connection(store, tenant)
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
    store = open_store(db)
    connection = _one_connection(store, tenant)
    versions = store.rules_versions(connection.id)
    if len(versions) < (1 if version else 2):
        raise UserError(f"{connection.id} has no earlier rules version to roll back to")
    target = versions[-2] if version is None else next(
        (v for v in versions if v.version == version), None)
    if target is None:
        raise UserError(f"no rules version {version} for {connection.id}",
                        hint="`ar-sync rules history` lists them")
    parse_stored(connection.id, target)  # still valid under this ar-sync?
    new = store.apply_rules(connection.id, target.text, source=target.source,
                            now=datetime.now(UTC), note=f"rollback to version {target.version}")
    console.print(f"{connection.id}: version {new} = version {target.version} "
                  f"({target.source}); the next run uses it", highlight=False)
