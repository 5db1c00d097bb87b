"""`ar-sync demo` (the quickstart) and `ar-sync sandbox serve` (the emulators on their own)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ar_sync.cli.app import UserError, app, console
from ar_sync.cli.render import summary_table
from ar_sync.crypto import TokenCipher
from ar_sync.store.sqlite import SQLiteStore
from ar_sync.sync import ActionOutcome, RunReport

sandbox_app = typer.Typer(help="Local emulators of QuickBooks Online and Xero.",
                          no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


@app.command("demo")
def demo_cmd(
    db: Annotated[Path | None, typer.Option("--db", help="Keep the store here (default: temp)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Demo company seed")] = 7,
    rules: Annotated[str, typer.Option("--rules", help="Rule set name or file")] = "default",
    show: Annotated[int, typer.Option("--show", help="Writes to list per company")] = 6,
) -> None:
    """Run everything end to end on the local emulators: connect both demo companies through
    OAuth, run the rules as of the demo date, show what was written back, run again (no-op)."""
    from ar_sync.demo import DEMO_TODAY, run_demo

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ar-sync-demo-") as tmp:
        store = SQLiteStore(db or Path(tmp) / "demo.db", cipher=TokenCipher(TokenCipher.generate_key()))
        console.print(f"[bold]ar-sync demo[/] — demo companies on local QuickBooks and Xero "
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
        again = sum(r.done for r in result.second_reports)
        console.print(f"Second run on the same day: {again} new writes "
                      f"(planned again: {sum(r.planned for r in result.second_reports)}); "
                      f"duplicate writes on the platforms: {result.duplicates}.")
        console.print(f"Finished in {time.monotonic() - started:.1f} s.")
        if result.duplicates or again or any(r.errors for r in result.reports):
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


@sandbox_app.command("serve")
def serve_cmd(
    seed: Annotated[int, typer.Option("--seed")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print the settings as JSON")] = False,
    replay: Annotated[str | None, typer.Option(
        "--replay", help="Key replay: all | email-only | window=SECONDS | off "
        "(default $AR_SYNC_SANDBOX_REPLAY, else all)")] = None,
) -> None:
    """Start both emulators with the demo company and print their URLs (Ctrl-C stops)."""
    from ar_sync.demo import running_sandbox
    from ar_sync.sandbox.common import ReplayMode

    try:
        mode = ReplayMode.parse(replay) if replay is not None else ReplayMode.from_env()
    except ValueError as exc:
        raise UserError(str(exc), hint="e.g. --replay email-only") from exc
    with running_sandbox(seed) as sandbox:
        sandbox.quickbooks.idempotency.replay = mode
        sandbox.xero.idempotency.replay = mode
        info: dict[str, dict[str, Any]] = {platform: {"client_id": s.client_id, "client_secret": s.client_secret,
                           "redirect_uri": s.redirect_uri, "endpoints": dict(s.endpoints)}
                for platform, s in sandbox.settings.items()}
        if as_json:
            console.print_json(json.dumps(info))
        else:
            for platform, data in info.items():
                console.print(f"[bold]{platform}[/]")
                for name, url in data["endpoints"].items():
                    console.print(f"  {name:12} {url}")
                prefix = f"AR_SYNC_{platform.upper()}_"
                console.print(f"  export {prefix}CLIENT_ID={data['client_id']} "
                              f"{prefix}CLIENT_SECRET={data['client_secret']} "
                              f"{prefix}ENDPOINTS='{json.dumps(data['endpoints'])}'")
        console.print(f"Key replay: {mode}. Serving; press Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopped")
