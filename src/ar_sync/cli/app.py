"""The typer application every command module registers on, and the user-error handling."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from ar_sync.cli.errors import user_error_for


class _Typer(typer.Typer):
    """Typer whose errors a user can fix (cli/errors.py) leave as UserError: no traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            friendly = user_error_for(exc)
            if friendly is None or friendly is exc:
                raise
            raise friendly from exc


app = _Typer(
    name="ar-sync",
    help="Automated, exactly-once accounts-receivable follow-up for QuickBooks Online and Xero.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


