"""The typer application every command module registers on, and the user-error handling."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="ar-sync",
    help="Automated, exactly-once accounts-receivable follow-up for QuickBooks Online and Xero.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


class UserError(Exception):
    """An error the user can fix: printed as a message with a hint, never a traceback."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
