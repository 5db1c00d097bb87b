"""What `ar-sync connect` adds for issue 12: the company's rules (`--rules`, stored as its
first version), its mode (`--preview`), and the preview of its first live run."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.markup import escape

from ar_sync.cli.app import console, err_console
from ar_sync.cli.errors import UserError
from ar_sync.cli.render.company import preview_summary, rules_line
from ar_sync.delivery.settings import company_mail_setup
from ar_sync.rules.policy import PolicyError
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.company_rules import read_rules_source
from ar_sync.sync.connector import Connection, PlatformSettings
from ar_sync.sync.run import run_tenant


def read_rules_checked(source: str) -> tuple[str, str]:
    """(text, name) of --rules, validated before the browser opens."""
    try:
        return read_rules_source(source)
    except PolicyError as exc:
        raise UserError(str(exc), hint="check it with `ar-sync rules validate`") from None


def after_connect(store: SQLiteStore, connections: list[Connection],
                  rules: tuple[str, str] | None, *, preview: bool) -> list[Connection]:
    """Store the rules as a new version (unless unchanged) and the mode; a reconnect keeps
    the go-live date it had."""
    now = datetime.now(UTC)
    out = []
    for c in connections:
        if rules is not None:
            current = store.current_rules(c.id)
            if current is None or current.text != rules[0]:
                store.apply_rules(c.id, rules[0], source=rules[1], now=now,
                                  note="ar-sync connect --rules")
        updated = store.update_connection(c.id, {"mode": "preview" if preview else c.mode})
        out.append(updated or c)
    return out


def print_first_run(store: SQLiteStore, connections: list[Connection],
                    settings: PlatformSettings) -> None:
    """A dry run of each company now: what its first live run would do (nothing written)."""
    for c in connections:
        report = run_tenant(store, c.id, settings=settings, dry_run=True,
                            mail=company_mail_setup(store, c.id))
        if report.errors:
            err_console.print(f"[yellow]could not preview {escape(c.id)}:[/] "
                              f"{escape('; '.join(report.errors))}", highlight=False)
            continue
        console.print(rules_line(report), highlight=False)
        for line in preview_summary(report):
            console.print(f"  {escape(line)}", highlight=False)
    console.print("Next: `ar-sync run --dry-run` lists every action; `ar-sync go-live` "
                  "switches a company in preview to live.")
