"""`ar-sync sending set|show|clear`: one company's own From, Reply-To, SMTP login and webhook
secret, stored encrypted like its tokens; what it leaves unset comes from the environment
(AR_SYNC_MAIL_FROM, ...). Secrets are read from a file or standard input, never from the
command line (which other users of the machine can see)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from ar_sync.cli.app import app, console
from ar_sync.cli.common import DbOption, Format, FormatOption, TenantOption, open_connection
from ar_sync.cli.errors import UserError
from ar_sync.sync.company_store import CompanyMail

sending_app = typer.Typer(help="A company's own sender: From, Reply-To, SMTP login, webhook "
                               "secret (encrypted at rest; the environment is the default).",
                          no_args_is_help=True)
app.add_typer(sending_app, name="sending")

SecretFile = Annotated[Path | None, typer.Option(help="Read it from this file ('-': standard "
                                                      "input)")]


def _secret(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    value = text.strip()
    if not value:
        raise UserError(f"the {what} file is empty")
    return value


@sending_app.command("set")
def set_cmd(
    from_address: Annotated[str | None, typer.Option("--from", help="'Acme Ltd <ar@acme.example>'")] = None,
    reply_to: Annotated[str | None, typer.Option("--reply-to")] = None,
    smtp_username: Annotated[str | None, typer.Option("--smtp-username")] = None,
    smtp_password_file: SecretFile = None,
    webhook_secret_file: SecretFile = None,
    tenant: TenantOption = None,
    db: DbOption = None,
) -> None:
    """Set some of the company's sending settings (the others keep their value)."""
    store, connection = open_connection(db, tenant)
    current = store.company_mail(connection.id) or CompanyMail()
    changes = {k: v for k, v in {
        "from_address": from_address, "reply_to": reply_to, "smtp_username": smtp_username,
        "smtp_password": _secret(smtp_password_file, "SMTP password"),
        "webhook_secret": _secret(webhook_secret_file, "webhook secret")}.items()
        if v is not None}
    if not changes:
        raise UserError("nothing to set", hint="give --from, --reply-to, --smtp-username, "
                                               "--smtp-password-file or --webhook-secret-file")
    try:
        mail = CompanyMail.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise UserError(f"{error['loc'][0]}: {error['msg']}") from None
    store.save_company_mail(connection.id, mail)
    console.print(f"saved for {connection.id}: {', '.join(sorted(changes))}", highlight=False)


@sending_app.command("show")
def show_cmd(tenant: TenantOption = None, fmt: FormatOption = Format.table,
             db: DbOption = None) -> None:
    """What is set for the company (secrets only as set / not set)."""
    store, connection = open_connection(db, tenant)
    shown = (store.company_mail(connection.id) or CompanyMail()).public()
    if fmt == Format.json:
        typer.echo(json.dumps({"tenant": connection.id, **shown}))
        return
    for key, value in shown.items():
        console.print(f"{key:<20} {value if value is not None else '(environment)'}",
                      highlight=False, markup=False)


@sending_app.command("clear")
def clear_cmd(tenant: TenantOption = None, db: DbOption = None) -> None:
    """Forget the company's own settings: the environment's apply again."""
    store, connection = open_connection(db, tenant)
    store.save_company_mail(connection.id, CompanyMail())
    console.print(f"cleared for {connection.id}: the environment's settings apply",
                  highlight=False)
