"""Helpers shared by command modules: opening the store, platform settings, dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ar_sync.cli.errors import UserError
from ar_sync.connect.settings import platform_settings
from ar_sync.domain.errors import SettingsError
from ar_sync.domain.models import Invoice
from ar_sync.store.sqlite.store import SQLiteStore, default_data_dir
from ar_sync.sync.connector import Connection, PlatformSettings


class Format(StrEnum):
    """`--format`, the same choice on every command that prints data."""

    table = "table"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", help="table or json")]
# the older spelling some listings had; kept working, hidden from --help
JsonAlias = Annotated[bool, typer.Option("--json", hidden=True, help="Same as --format json")]
DbOption = Annotated[Path | None, typer.Option("--db", help="SQLite store (default: user data "
                                                             "folder)")]
TenantOption = Annotated[str | None, typer.Option("--tenant", "-t", help="Tenant id (needed "
                                                  "when several companies are connected)")]


def wants_json(fmt: Format, as_json: bool) -> bool:
    """`--format json`, or the hidden `--json` alias."""
    return as_json or fmt == Format.json


def open_store(db: Path | None) -> SQLiteStore:
    """The embedded store: `--db`, else ar-sync.db in the user's data folder."""
    return SQLiteStore(db)


def settings_for(platform: str) -> PlatformSettings:
    try:
        return platform_settings(platform)
    except SettingsError as exc:
        raise UserError(str(exc), hint="or try `ar-sync demo`, which needs no account") from exc


def pick_connections(store: SQLiteStore, tenants: list[str] | None) -> list[Connection]:
    connections = store.list_connections()
    if not connections:
        raise UserError(
            f"no company is connected yet (store: {store.path})",
            hint="connect one with `ar-sync connect quickbooks|xero`, or try `ar-sync demo`",
        )
    if not tenants:
        return connections
    wanted = set(tenants)
    chosen = [c for c in connections if c.id in wanted or c.external_id in wanted]
    missing = wanted - {c.id for c in chosen} - {c.external_id for c in chosen}
    if missing:
        known = ", ".join(c.id for c in connections)
        raise UserError(f"unknown tenant(s): {', '.join(sorted(missing))}",
                        hint=f"connected: {known}")
    return chosen


def one_connection(store: SQLiteStore, tenant: str | None) -> Connection:
    """The company a `--tenant` option names; without one, the only connected company."""
    chosen = pick_connections(store, [tenant] if tenant else None)
    if len(chosen) > 1:
        raise UserError("several companies are connected",
                        hint="say which with --tenant " + " | ".join(c.id for c in chosen))
    return chosen[0]


def open_connection(db: Path | None, tenant: str | None) -> tuple[SQLiteStore, Connection]:
    """`--db` and `--tenant`: the store and the one company a command works on."""
    store = open_store(db)
    return store, one_connection(store, tenant)


def find_invoice(invoices: list[Invoice], wanted: str) -> Invoice | None:
    """An invoice named by its platform id or, failing that, by its number."""
    for inv in invoices:
        if inv.id == wanted:
            return inv
    return next((inv for inv in invoices if inv.number == wanted), None)


def parse_date(text: str, option: str) -> date:
    """A YYYY-MM-DD option's value (`option` names it in the error)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r} is not a date", hint="use YYYY-MM-DD") from None


def parse_day(today: str | None) -> date | None:
    """`--today YYYY-MM-DD`: the company's local date to plan for (None: today there)."""
    return None if today is None else parse_date(today, "--today")


def as_of(today: str | None) -> datetime | None:
    """`--today YYYY-MM-DD` as a moment in the middle of that UTC day (None: now)."""
    day = parse_day(today)
    return None if day is None else datetime.combine(day, time(12, 0), tzinfo=UTC)


__all__ = ["DbOption", "Format", "FormatOption", "JsonAlias", "TenantOption", "as_of",
           "default_data_dir", "find_invoice", "one_connection", "open_connection",
           "open_store", "parse_date", "parse_day", "pick_connections", "settings_for",
           "wants_json"]
