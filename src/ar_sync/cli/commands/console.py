"""`ar-sync console`: the web console on this computer (127.0.0.1 only), on the SQLite store,
or with `--demo` on the demo companies served by the local emulators.

It prints a one-time sign-in link; without it the console shows no company data. The demo
wiring (emulators, a local SMTP sink, the demo date) lives here, on the CLI side: the console
itself never imports the emulators.
"""

from __future__ import annotations

import secrets
import socket
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated

import typer

from ar_sync.cli.app import app, console
from ar_sync.cli.common import DbOption, open_store
from ar_sync.cli.errors import UserError
from ar_sync.connect.settings import platform_settings
from ar_sync.console.app import build_app
from ar_sync.console.config import ConsoleConfig
from ar_sync.console.signin import LocalSignIn
from ar_sync.delivery.settings import mail_setup
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.company_settings import start_in_preview

HOST = "127.0.0.1"
DEMO_RULES = "email"  # as `ar-sync demo`: reminders e-mailed by ar-sync itself


def listen(port: int) -> socket.socket:
    """A socket on 127.0.0.1 (port 0: a free one); never another interface."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}",
                        hint="choose another port with --port N (0: any free port)") from exc
    sock.listen(64)
    return sock


def local_config(store: SQLiteStore, port: int, business: str) -> ConsoleConfig:
    """The console on this computer, with the platforms' app settings from AR_SYNC_*."""
    return ConsoleConfig(store=store, settings_for=platform_settings, mail=mail_setup,
                         public_url=f"http://{HOST}:{port}", session_key=secrets.token_bytes(32),
                         signin=LocalSignIn(business))


@contextmanager
def demo_config(port: int, business: str, *, db: Path | None = None, seed: int = 7,
                connect: bool = True) -> Iterator[ConsoleConfig]:
    """The console on the demo companies: both emulators and an SMTP sink on 127.0.0.1, the
    demo date, and (with `connect`) the demo companies connected through the emulators'
    OAuth consent, in preview."""
    from ar_sync.delivery.transports import SmtpMailer
    from ar_sync.messages.sending import MailSetup
    from ar_sync_emulators.demo import (
        DEMO_SENDER,
        DEMO_TODAY,
        connect_through_oauth,
        running_sandbox,
    )
    from ar_sync_emulators.smtp_sink import SmtpSink

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ar-sync-console-")))
        store = SQLiteStore(db or folder / "console-demo.db",
                            cipher=TokenCipher(TokenCipher.generate_key()))
        sandbox = stack.enter_context(running_sandbox(seed))
        sink = stack.enter_context(SmtpSink().serve())
        settings = sandbox.settings
        if connect:
            for platform in ("quickbooks", "xero"):
                for _ in range(sandbox.consents(platform)):
                    for c in connect_through_oauth(store, platform, settings[platform],
                                                   business_id=business):
                        start_in_preview(store, c, DEMO_RULES)
        mail = MailSetup(sender=DEMO_SENDER, mailer=SmtpMailer(sink.settings()))
        yield ConsoleConfig(store=store, settings_for=lambda p: settings[p],
                            mail=lambda: mail, public_url=f"http://{HOST}:{port}",
                            session_key=secrets.token_bytes(32), signin=LocalSignIn(business),
                            today=DEMO_TODAY, schedule="when you press Run now (demo)",
                            new_company_rules=DEMO_RULES)


def serve(cfg: ConsoleConfig, sock: socket.socket) -> None:
    import uvicorn

    assert isinstance(cfg.signin, LocalSignIn)
    link = cfg.url(f"/login/{cfg.signin.issue()}")
    console.print(f"ar-sync console on [cyan]{cfg.public_url}[/] (this computer only).")
    console.print("Open this link to sign in (it works once, for 10 minutes):")
    typer.echo(link)
    console.print("Press Ctrl-C to stop.")
    server = uvicorn.Server(uvicorn.Config(build_app(cfg), log_level="warning",
                                           access_log=False))
    server.run(sockets=[sock])


@app.command("console")
def console_cmd(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port)")] = 8780,
    demo: Annotated[bool, typer.Option("--demo", help="The demo companies on the local emulators (nothing leaves this computer)")] = False,
    business: Annotated[str, typer.Option("--business", help="The business whose companies the console shows")] = "local",
    db: DbOption = None,
) -> None:
    """The web console: connect, preview, go live, rules, customers, runs and the report.
    Listens on 127.0.0.1 only and prints a one-time sign-in link."""
    sock = listen(port)
    bound = int(sock.getsockname()[1])
    if demo:
        console.print("Starting the emulators and connecting the demo companies …")
        with demo_config(bound, business, db=db) as cfg:
            serve(cfg, sock)
        return
    serve(local_config(open_store(db), bound, business), sock)
