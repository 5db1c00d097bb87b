"""`ar-sync version` and `ar-sync connectors`: what is installed."""

from __future__ import annotations

from importlib.metadata import version as dist_version

from rich.table import Table

from ar_sync.cli.app import app, console
from ar_sync.sync.connector import available_plugins


@app.command("version")
def version_cmd() -> None:
    """Print the installed ar-sync version."""
    console.print(dist_version("ar-sync"))


@app.command("connectors")
def connectors_cmd() -> None:
    """List the connector plugins installed (entry-point group ar_sync.connectors)."""
    table = Table("platform", "entry point")
    for name, target in sorted(available_plugins().items()):
        table.add_row(name, target)
    console.print(table)
