"""`ar-sync demo` (the quickstart) and `ar-sync sandbox serve` (the emulators on their own)."""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.table import Table

from ar_sync.cli.app import app, console
from ar_sync.cli.commands.mail import show_mail
from ar_sync.cli.errors import UserError
from ar_sync.cli.render.runs import summary_table
from ar_sync.cli.signals import interruptible
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import ActionOutcome, RunReport

sandbox_app = typer.Typer(help="Local emulators of QuickBooks Online and Xero.",
                          no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


@app.command("demo")
def demo_cmd(
    db: Annotated[Path | None, typer.Option("--db", help="Keep the store here (default: temp)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Demo company seed")] = 7,
    rules: Annotated[str, typer.Option("--rules", help="Rule set name or file")] = "email",
    show: Annotated[int, typer.Option("--show", help="Writes to list per company")] = 6,
    outbox: Annotated[Path | None, typer.Option("--outbox", help="Write each customer e-mail sent as a .eml file here")] = None,
    days: Annotated[int | None, typer.Option("--days", min=1, max=400, help="Run the demo companies forward this many days from the demo date (customers pay along the way) and show each customer's journey")] = None,
    journal: Annotated[Path | None, typer.Option("--journal", help="With --days: every write as one JSON line in this file")] = None,
) -> None:
    """Run everything end to end on the local emulators: connect the four demo companies
    through OAuth, run the rules as of the demo date, show what was written back, run again
    (no-op). With --days N, run them forward N days instead."""
    from ar_sync_emulators.demo import DEMO_TODAY, run_demo

    if journal is not None and days is None:
        raise UserError("--journal needs --days", hint="e.g. ar-sync demo --days 90 "
                        "--journal journal.jsonl")
    if days is not None:
        _demo_days(db, seed, rules, days, outbox, journal)
        return
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ar-sync-demo-") as tmp:
        store = SQLiteStore(db or Path(tmp) / "demo.db", cipher=TokenCipher(TokenCipher.generate_key()))
        console.print(f"[bold]ar-sync demo[/] — four demo businesses on local QuickBooks and Xero "
                      f"emulators, rules [cyan]{rules}[/], as of [cyan]{DEMO_TODAY}[/]")
        result = run_demo(store, seed=seed, rules=rules)
        console.print(summary_table(result.reports))
        for report in result.reports:
            console.print(written_sample(report, show))
        written = Table(title="Written back, as the platforms' own state shows it")
        for col in ("platform", "notes", "late fees", "e-mails", "duplicate keys"):
            written.add_column(col, justify="right")
        for platform, kinds in result.effects.items():
            written.add_row(platform, str(kinds.get("note", 0)), str(kinds.get("late_fee", 0)),
                            str(kinds.get("email", 0)), "0")
        console.print(written)
        show_mail(result.messages, outbox)
        again = sum(r.done for r in result.second_reports)
        console.print(f"Second run on the same day: {again} new writes "
                      f"(planned again: {sum(r.planned for r in result.second_reports)}); "
                      f"duplicate writes on the platforms: {result.duplicates}.")
        console.print(f"Finished in {time.monotonic() - started:.1f} s.")
        if result.duplicates or again or any(r.errors for r in result.reports):
            raise typer.Exit(1)


def _demo_days(db: Path | None, seed: int, rules: str, days: int, outbox: Path | None,
               journal: Path | None) -> None:
    """`demo --days N`: the journey of every customer over N simulated days."""
    from ar_sync_emulators.demo import DEMO_TODAY
    from ar_sync_emulators.journey import figures, run_days, summary, timeline
    from ar_sync_emulators.smtp_sink import write_eml

    started = time.monotonic()
    end = DEMO_TODAY.fromordinal(DEMO_TODAY.toordinal() + days - 1)
    console.print(f"[bold]ar-sync demo[/] — four demo businesses on local QuickBooks and Xero "
                  f"emulators, rules [cyan]{rules}[/], {days} days from [cyan]{DEMO_TODAY}"
                  f"[/] to [cyan]{end}[/]")
    with tempfile.TemporaryDirectory(prefix="ar-sync-demo-") as tmp:
        store = SQLiteStore(db or Path(tmp) / "demo.db",
                            cipher=TokenCipher(TokenCipher.generate_key()))
        with console.status("running day by day…") as status:
            journey = run_days(store, days=days, seed=seed, rules=rules, journal=journal,
                               on_day=lambda d: status.update(f"ran {d}"))
    console.print("[bold]Timeline[/] (the customers with the most happening; the journal "
                  "has every write)")
    for line in timeline(journey):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print("[bold]Figures[/]")
    for line in summary(figures(journey.lines, journey.payments)):
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    errors = [e for r in journey.reports for e in r.errors]
    console.print(f"{len(journey.lines)} writes, {len(journey.messages)} e-mails, "
                  f"{len(journey.payments)} payments; duplicate writes on the platforms: "
                  f"{journey.duplicates}; run errors: {len(errors)}.")
    if outbox is not None:
        paths = write_eml(journey.messages, outbox)
        console.print(f"Wrote {len(paths)} .eml files to {outbox}.")
    if journal is not None:
        console.print(f"Wrote {len(journey.lines)} journal lines to {journal}.")
    console.print(f"Finished in {time.monotonic() - started:.1f} s.")
    if journey.duplicates or errors:
        raise typer.Exit(1)


def written_sample(report: RunReport, limit: int) -> Table:
    """A few of each kind of write, so the sample shows notes, fees, e-mails and escalations."""
    by_kind: dict[str, list[ActionOutcome]] = {}
    for action in report.actions:
        if action.outcome == "done":
            by_kind.setdefault(action.kind, []).append(action)
    picked: list[ActionOutcome] = []
    while len(picked) < limit and any(by_kind.values()):
        for kind in sorted(by_kind):
            if by_kind[kind] and len(picked) < limit:
                picked.append(by_kind[kind].pop(0))
    table = Table(title=f"Written back to {report.connection_id} (a sample)", show_lines=True)
    table.add_column("invoice", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("what was written", overflow="fold")
    for action in picked:
        table.add_row(action.invoice_number, action.rule, action.what)
    return table


def sandbox_env(settings: dict[str, Any]) -> dict[str, str]:
    """The AR_SYNC_* variables that point ar-sync at the running emulators."""
    env: dict[str, str] = {}
    for platform, s in settings.items():
        prefix = f"AR_SYNC_{platform.upper()}_"
        env[prefix + "CLIENT_ID"] = s.client_id
        env[prefix + "CLIENT_SECRET"] = s.client_secret
        env[prefix + "REDIRECT_URI"] = s.redirect_uri
        env[prefix + "ENDPOINTS"] = json.dumps(dict(s.endpoints), separators=(",", ":"))
    return env


def env_lines(env: dict[str, str], *, export: bool) -> list[str]:
    """One shell-quoted assignment a line: safe to paste, to `source`, or to read as a
    systemd EnvironmentFile."""
    return [f"{'export ' if export else ''}{name}={shlex.quote(value)}"
            for name, value in env.items()]


@sandbox_app.command("serve")
def serve_cmd(
    seed: Annotated[int, typer.Option("--seed")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print the settings as one JSON line")] = False,
    env_file: Annotated[Path | None, typer.Option("--env-file", help="Write the AR_SYNC_* settings to this file (load with: set -a; . FILE; set +a)")] = None,
    state: Annotated[Path | None, typer.Option("--state", help="Keep the emulators' state (and ports) in this folder across restarts")] = None,
    qbo_port: Annotated[int | None, typer.Option("--qbo-port", help="QuickBooks emulator port (default: the saved one, else any free port)")] = None,
    xero_port: Annotated[int | None, typer.Option("--xero-port", help="Xero emulator port (default: the saved one, else any free port)")] = None,
    replay: Annotated[str | None, typer.Option(
        "--replay", help="Key replay: all | email-only | window=SECONDS | off "
        "(default $AR_SYNC_SANDBOX_REPLAY, else all)")] = None,
) -> None:
    """Start both emulators with the demo company and print their settings (Ctrl-C stops)."""
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1`: every thread's stack to stderr, to see a hang
        with contextlib.suppress(ValueError, OSError):  # stderr without a file descriptor
            faulthandler.register(signal.SIGUSR1, all_threads=True)
    from ar_sync_emulators.demo import running_sandbox
    from ar_sync_emulators.persist import save_ports, saved_ports
    from ar_sync_emulators.replay import ReplayMode

    try:
        mode = ReplayMode.parse(replay) if replay is not None else ReplayMode.from_env()
    except ValueError as exc:
        raise UserError(str(exc), hint="e.g. --replay email-only") from exc
    ports = saved_ports(state) if state is not None else {}
    ports.update({k: v for k, v in (("quickbooks", qbo_port), ("xero", xero_port))
                  if v is not None})
    try:
        sandbox_cm = running_sandbox(seed, ports=ports, state=state)
        sandbox = sandbox_cm.__enter__()
    except OSError as exc:
        raise UserError(f"cannot start the emulators: {exc.strerror or exc}",
                        hint="a port is in use: choose others with --qbo-port/--xero-port"
                        ) from exc
    except ValueError as exc:
        raise UserError(str(exc), hint="remove the state folder to start afresh") from exc
    with interruptible():
        try:
            _serve(sandbox, mode, as_json=as_json, env_file=env_file, state=state,
                   save_ports=save_ports)
        except KeyboardInterrupt:
            pass
        finally:
            sandbox_cm.__exit__(None, None, None)
    if not as_json:
        console.print("stopped" + (f"; state saved in {state}" if state else ""))


def _serve(sandbox: Any, mode: Any, *, as_json: bool, env_file: Path | None,
           state: Path | None, save_ports: Callable[[Path, dict[str, int]], None]) -> None:
    sandbox.quickbooks.idempotency.replay = mode
    sandbox.xero.idempotency.replay = mode
    env = sandbox_env(sandbox.settings)
    if state is not None:
        save_ports(state, {"quickbooks": urlsplit(sandbox.quickbooks.url).port or 0,
                           "xero": urlsplit(sandbox.xero.url).port or 0})
    if env_file is not None:
        env_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = env_file.with_suffix(".tmp")
        tmp.write_text("\n".join(env_lines(env, export=False)) + "\n", encoding="utf-8")
        os.replace(tmp, env_file)  # appears complete, or not at all
    if as_json:
        info = {platform: {"client_id": s.client_id, "client_secret": s.client_secret,
                           "redirect_uri": s.redirect_uri, "endpoints": dict(s.endpoints)}
                for platform, s in sandbox.settings.items()}
        typer.echo(json.dumps({**info, "env": env}))
    else:
        for platform, s in sandbox.settings.items():
            console.print(f"[bold]{platform}[/]")
            for name, url in s.endpoints.items():
                console.print(f"  {name:12} {url}", soft_wrap=True)
        console.print("Settings (paste into a shell, or use --env-file / --json):")
        for line in env_lines(env, export=True):
            typer.echo(line)  # never wrapped, whatever the terminal width
        if env_file is not None:
            console.print(f"Wrote {env_file} (load with: set -a; . {env_file}; set +a)",
                          soft_wrap=True)
        console.print(f"Key replay: {mode}. Serving; press Ctrl-C to stop.")
    sys.stdout.flush()
    while True:
        # short sleeps: the kernel may hand SIGTERM to a request thread, and Python runs the
        # handler only when the main thread next runs (a 3600 s sleep once ignored a stop)
        time.sleep(0.5)

