"""`ar-sync` command line: each command group lives in its own module and registers on `app`."""

from __future__ import annotations

import sys

# Command modules register themselves on import (one line per module).
from ar_sync.cli import commands_core  # noqa: F401
from ar_sync.cli.app import UserError, app, err_console

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
