"""`ar-sync` command line: each command group lives in its own module under `commands/` and
registers itself on `app` when imported; this package imports them all."""

from __future__ import annotations

import importlib
import pkgutil
import sys

from ar_sync.cli import commands
from ar_sync.cli.app import app, err_console
from ar_sync.cli.errors import UserError

for _module in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
    importlib.import_module(f"{commands.__name__}.{_module}")

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: user errors become a message and exit code 2, never a traceback."""
    try:
        app()
    except UserError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        if exc.hint:
            err_console.print(f"[yellow]hint:[/] {exc.hint}")
        sys.exit(2)
