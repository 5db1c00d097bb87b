"""The fee rules' income accounts against a company's chart of accounts, for `ar-sync connect`
and `ar-sync rules validate --company` (the connector's AccountChecker: Xero GET /Accounts,
QuickBooks the 'Late fee' item and its Income accounts). A fee rule's `account:` that the
company does not have would otherwise fail at the first fee, on the platform."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.markup import escape

from ar_sync.cli.app import err_console
from ar_sync.cli.common import settings_for
from ar_sync.cli.errors import UserError
from ar_sync.domain.errors import ConnectorError
from ar_sync.rules.policy import Policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.company_rules import choose_rules
from ar_sync.sync.connector import Connection, PlatformSettings, fee_account_problems
from ar_sync.sync.run import open_connector


def account_problems(store: SQLiteStore, connection: Connection, policy: Policy,
                     settings: PlatformSettings | None = None) -> list[str]:
    """What the company's chart of accounts says about the rules' fee accounts."""
    accounts = [f.account for f in policy.late_fees]
    if not accounts:
        return []
    try:
        connector = open_connector(store, connection,
                                   settings or settings_for(connection.platform), CallBudget(),
                                   clock=lambda: datetime.now(UTC))
        return fee_account_problems(connector, accounts)
    except ConnectorError as exc:
        raise UserError(f"cannot read {connection.id}'s chart of accounts: {exc}",
                        hint="check the connection with `ar-sync status`") from exc


def report_problems(connection: Connection, problems: list[str]) -> None:
    for problem in problems:
        err_console.print(f"[red]{escape(connection.id)}: {escape(problem)}[/]",
                          highlight=False, soft_wrap=True)


def check_connected(store: SQLiteStore, connections: list[Connection],
                    settings: PlatformSettings) -> int:
    """The connections' rules (stored, else their rule set) against their charts of
    accounts; prints each problem and returns how many there were."""
    count = 0
    for c in connections:
        problems = account_problems(store, c, choose_rules(store, c, override=None).policy,
                                    settings)
        report_problems(c, problems)
        count += len(problems)
    return count
