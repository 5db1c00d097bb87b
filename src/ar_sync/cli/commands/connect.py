"""`ar-sync connect` (the local OAuth flow) and `ar-sync status` (what is connected, and how it
went last time).

`connect` listens on 127.0.0.1 at the port and path of AR_SYNC_<PLATFORM>_REDIRECT_URI (the
redirect URI registered with the platform, default http://127.0.0.1:8765/callback); port 0
there, or `--port 0`, takes a free port and sends that exact URI to the platform (loopback
redirects on any port, RFC 8252 7.3, where the platform allows it).
"""

from __future__ import annotations

import json
import webbrowser
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.markup import escape
from rich.table import Table

from ar_sync.cli.app import app, console
from ar_sync.cli.common import DbOption, open_store, pick_connections, settings_for
from ar_sync.cli.connect_rules import after_connect, print_first_run, read_rules_checked
from ar_sync.cli.errors import UserError, key_hint
from ar_sync.cli.fee_accounts import check_connected
from ar_sync.cli.oauth_callback import CallbackRefused, CallbackServer, Handler, with_port
from ar_sync.connect.onboarding import (
    AuthorizationDeniedError,
    OAuthStateError,
    OnboardingError,
    TenantBindingError,
    finish_connect,
    start_connect,
)
from ar_sync.domain.errors import ConnectorError
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection, PlatformSettings, TokenSet, UnknownConnectorError
from ar_sync.sync.status import UNREADABLE, read_tokens, run_summary

_LOOPBACK = {"127.0.0.1", "localhost"}
_STATUS: dict[type[OnboardingError], int] = {TenantBindingError: 403}


class Platform(StrEnum):
    quickbooks = "quickbooks"
    xero = "xero"


class StatusFormat(StrEnum):
    table = "table"
    json = "json"


def _listen_address(platform: str, settings: PlatformSettings,
                    port: int | None) -> tuple[str, int, str]:
    """(host to bind, port, callback path) from the redirect URI, checked for a local flow."""
    env = f"AR_SYNC_{platform.upper()}_REDIRECT_URI is {settings.redirect_uri}"
    uri = urlsplit(settings.redirect_uri)
    if uri.scheme != "http" or uri.hostname not in _LOOPBACK:
        raise UserError(
            f"the redirect URI must be http://127.0.0.1:PORT/PATH for a local connect: {env}",
            hint="register e.g. http://127.0.0.1:8765/callback with the platform and set it")
    try:
        uri_port = uri.port if uri.port is not None else 80
    except ValueError as exc:
        raise UserError(f"the redirect URI has a bad port: {env}") from exc
    return "127.0.0.1", uri_port if port is None else port, uri.path or "/"


def _callback_handler(store: SQLiteStore, settings: PlatformSettings,
                      business: str) -> Handler:
    def handle(params: dict[str, str]) -> tuple[list[Connection], str]:
        try:
            connections = finish_connect(store, params, settings, now=datetime.now(UTC),
                                         business_id=business)
        except OnboardingError as exc:
            raise CallbackRefused(str(exc), _STATUS.get(type(exc), 400)) from exc
        except ConnectorError as exc:
            raise CallbackRefused(f"the platform refused the code exchange: {exc}") from exc
        names = ", ".join(c.name or c.external_id for c in connections)
        return connections, f"ar-sync is connected to {names}. You can close this tab."
    return handle


def _refusal(exc: BaseException, platform: str) -> UserError:
    """The user-facing error for a refused callback (a hint per cause)."""
    cause = exc.__cause__
    again = f"run `ar-sync connect {platform}` again and finish in the browser it opens"
    if isinstance(cause, OAuthStateError):
        return UserError(f"the browser came back with a state this connect did not issue: "
                         f"{cause}", hint=again)
    if isinstance(cause, AuthorizationDeniedError):
        return UserError(str(cause), hint=f"approve the access in the consent screen; {again}")
    if isinstance(cause, TenantBindingError):
        return UserError(str(cause), hint="connect it with the --business id that owns it, "
                                          "or disconnect it there first")
    if isinstance(cause, ConnectorError):
        return UserError(str(exc), hint=f"check AR_SYNC_{platform.upper()}_CLIENT_ID, "
                                        f"_CLIENT_SECRET and _REDIRECT_URI (it must be exactly the "
                                        f"URI registered with the app)")
    return UserError(str(exc), hint=again)


def print_connected(store: SQLiteStore, connections: list[Connection]) -> None:
    for c in connections:
        tokens = _tokens(store, c.token_key)
        expires = (f"access token valid until {tokens.expires_at:%Y-%m-%d %H:%M} UTC"
                   if isinstance(tokens, TokenSet) else f"tokens {tokens}")
        console.print(f"[green]Connected[/] [bold]{escape(c.name or c.external_id)}[/]\n"
                      f"  tenant id {c.id}\n  business {escape(c.business_id)}, rules "
                      f"{escape(c.rules)}; {expires}", highlight=False)


@app.command("connect")
def connect_cmd(
    platform: Annotated[Platform, typer.Argument(help="quickbooks or xero")],
    business: Annotated[str, typer.Option("--business", help="ar-sync business id that owns the company")] = "local",
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL instead of opening a browser")] = False,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Listen here (0: a free port) instead of the redirect URI's port")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for the browser")] = 300.0,
    rules: Annotated[str | None, typer.Option("--rules", help="Rules file or shipped set, stored as the company's version 1")] = None,
    preview: Annotated[bool, typer.Option("--preview/--live", help="Start in preview (runs write nothing until `ar-sync go-live`) or live")] = False,
    show_preview: Annotated[bool, typer.Option("--show-preview/--no-show-preview", help="Print what the first live run would do")] = True,
    db: DbOption = None,
) -> None:
    """Connect a QuickBooks company or Xero organisation: consent in the browser, tokens stored
    encrypted in the local store."""
    settings = settings_for(platform.value)
    rules_text = read_rules_checked(rules) if rules else None
    host, wanted_port, path = _listen_address(platform.value, settings, port)
    store = open_store(db)
    try:
        server = CallbackServer(host, wanted_port, path)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{wanted_port}: {exc.strerror or exc}",
                        hint="free that port, or use --port N (the redirect URI registered "
                             "with the platform must use the same port)") from exc
    if server.port != urlsplit(settings.redirect_uri).port:
        settings = settings.model_copy(update={"redirect_uri": with_port(settings.redirect_uri,
                                                                         server.port)})
    server.handler = _callback_handler(store, settings, business)
    with server.running():
        try:
            url = start_connect(store, platform.value, business, settings, now=datetime.now(UTC))
        except UnknownConnectorError as exc:
            raise UserError(str(exc), hint="`ar-sync connectors` lists what is installed") from exc
        except (OnboardingError, ConnectorError) as exc:
            raise UserError(f"cannot start the {platform.value} consent: {exc}",
                            hint="check the AR_SYNC_* settings and your connection") from exc
        console.print(f"Waiting for {platform.value} on [cyan]{settings.redirect_uri}[/] "
                      f"(up to {timeout:.0f} s).")
        if no_browser or not webbrowser.open(url):
            console.print("Open this address in a browser to approve the connection:")
            console.print(url, soft_wrap=True, highlight=False, markup=False)
        else:
            console.print("Opened the consent page in your browser.")
        if not server.wait(timeout):
            raise UserError(f"no answer from the browser within {timeout:.0f} s",
                            hint="finish the consent in the browser, or use --timeout")
    if server.result.error is not None:
        if isinstance(server.result.error, CallbackRefused):
            raise _refusal(server.result.error, platform.value)
        raise server.result.error
    connections: list[Connection] = server.result.value
    connections = after_connect(store, connections, rules_text, preview=preview)
    print_connected(store, connections)
    if check_connected(store, connections, settings):
        raise UserError("the fee rules book to an account the company does not have "
                        "(above)", hint="set `account:` on the fee rules (`ar-sync rules "
                        "validate FILE --company ID` checks a file), then `ar-sync rules apply`")
    if show_preview:
        print_first_run(store, connections, settings)
    else:
        console.print("Next: `ar-sync run --dry-run` to see what ar-sync would do.")


# ----------------------------------------------------------------------------- status


def _tokens(store: SQLiteStore, connection_id: str) -> TokenSet | str:
    """The stored tokens (only their dates are ever shown), or why there are none."""
    return read_tokens(store, connection_id)


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    delta = (moment - now).total_seconds()
    span = abs(delta)
    text = (f"{span / 86400:.0f} d" if span >= 86400 else f"{span / 3600:.0f} h"
            if span >= 3600 else f"{span / 60:.0f} min")
    return f"{moment:%Y-%m-%d %H:%M} UTC ({'in ' + text if delta >= 0 else text + ' ago'})"


def _run_summary(report: dict[str, Any] | None) -> str:
    return run_summary(report)


def status_of(store: SQLiteStore, connection: Connection, now: datetime) -> dict[str, Any]:
    """One connection's status as plain data (dates only for tokens, never their values)."""
    tokens = _tokens(store, connection.token_key)
    report = store.last_report(connection.id)
    checkpoint = store.get_checkpoint(connection.id)
    token_info: dict[str, Any] = (
        {"access_expires_at": tokens.expires_at.isoformat(),
         "access_expired": tokens.expires_at <= now,
         "refresh_expires_at": tokens.refresh_expires_at.isoformat()
         if tokens.refresh_expires_at else None,
         "version": tokens.version}
        if isinstance(tokens, TokenSet) else {"problem": tokens})
    keep = ("started_at", "finished_at", "dry_run", "full_fetch", "invoices_seen",
            "invoices_open", "planned", "done", "reconciled", "skipped", "failed", "retry",
            "deferred", "busy", "api_calls", "stopped_early", "errors", "warnings")
    return {
        "tenant": connection.id, "platform": connection.platform, "name": connection.name,
        "external_id": connection.external_id, "business": connection.business_id,
        "rules": connection.rules, "mode": connection.mode,
        "go_live": str(connection.live_from()) if connection.live_from() else None,
        "connected_at": connection.created_at.isoformat() if connection.created_at else None,
        "tokens": token_info,
        "last_run": {k: report.get(k) for k in keep} if report else None,
        "checkpoint": {"since": checkpoint.since.isoformat() if checkpoint.since else None,
                       "last_full_at": checkpoint.last_full_at.isoformat()
                       if checkpoint.last_full_at else None},
    }


def status_grid(store: SQLiteStore, c: Connection, now: datetime) -> Table:
    """One connection as label: value lines (reads well in an 80-column terminal)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("[bold]company[/]", f"[bold]{escape(c.name or c.external_id)}[/]  ({c.id})")
    grid.add_row("", f"{c.platform}, business {escape(c.business_id)}, rules "
                     f"{escape(c.rules)}, connected {_when(c.created_at, now)}")
    grid.add_row("mode", ("[yellow]preview (writes nothing)[/]" if c.mode == "preview"
                          else "[green]live[/]") + f", go-live {c.live_from() or 'not set'}")
    tokens = _tokens(store, c.token_key)
    if isinstance(tokens, TokenSet):
        expired = " [red]expired: refreshed on the next run[/]" if tokens.expires_at <= now else ""
        grid.add_row("access token", f"expires {_when(tokens.expires_at, now)}{expired}")
        if tokens.refresh_expires_at:
            grid.add_row("refresh token", f"expires {_when(tokens.refresh_expires_at, now)}")
    elif tokens == UNREADABLE:  # the key is wrong, not the company: never "reconnect" first
        grid.add_row("tokens", f"[red]{tokens}[/] — {escape(key_hint(store.path.parent))}")
    else:
        grid.add_row("tokens", f"[red]{tokens}[/] — reconnect with `ar-sync connect "
                               f"{c.platform}`")
    report = store.last_report(c.id)
    started = (datetime.fromisoformat(str(report["started_at"]))
               if report and report.get("started_at") else None)
    grid.add_row("last run", _when(started, now))
    grid.add_row("", escape(_run_summary(report)))
    errors = list((report or {}).get("errors") or [])
    for n, line in enumerate(errors[:3]):
        grid.add_row("[red]errors[/]" if n == 0 else "", f"[red]{escape(str(line))}[/]")
    if len(errors) > 3:
        grid.add_row("", f"… and {len(errors) - 3} more (--format json)")
    checkpoint = store.get_checkpoint(c.id)
    grid.add_row("checkpoint", f"changes since {_when(checkpoint.since, now)}")
    grid.add_row("", f"last full fetch {_when(checkpoint.last_full_at, now)}")
    return grid


@app.command("status")
def status_cmd(
    tenant: Annotated[list[str] | None, typer.Option("--tenant", "-t", help="Tenant id (repeat)")] = None,
    fmt: Annotated[StatusFormat, typer.Option("--format", help="table or json")] = StatusFormat.table,
    db: DbOption = None,
) -> None:
    """Each connected company: token expiry, last run and its report, checkpoint."""
    store = open_store(db)
    connections = pick_connections(store, tenant)
    now = datetime.now(UTC)
    if fmt == StatusFormat.json:
        console.print_json(json.dumps([status_of(store, c, now) for c in connections]))
        return
    console.print(f"[dim]store: {store.path}[/]")
    for connection in connections:
        console.print()
        console.print(status_grid(store, connection, now))
