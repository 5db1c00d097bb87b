"""The income account a Xero fee books to, checked against the chart of accounts.

A fee line (and a fee invoice's line, and a waiver's credit note line) carries an
`AccountCode`; Xero refuses a line whose code is not an active account of the organisation
that a sales document can use ("Account code '200' is not a valid code for this document":
Xero-NetStandard #364; "Account must be valid.": Xero-Java #353; an archived account:
Xero-Java #370). The code is the fee rule's `account:`, else the connector's default "200"
(Sales in Xero's default chart). `check_fee_accounts` reads `GET /Accounts` (one call; Xero
developer docs, Accounts: `Code`, `Name`, `Type`, `Status`, `Class`) and says plainly which
code is missing, archived or not revenue, at connect and by `rules validate --company`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ar_sync.domain.errors import ReauthorizationRequiredError
from ar_sync_xero.session import XeroSession

SALES_CLASS = "REVENUE"  # Account.Class of the revenue types (REVENUE, SALES, OTHERINCOME)


def _text(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def chart(session: XeroSession) -> dict[str, Any]:
    """Account code -> account (SDK model), one GET /Accounts."""
    got = session.caller.call("GET Accounts", lambda: session.api.get_accounts(
        session.tenant, _return_http_data_only=False, _request_timeout=session.timeout))
    return {_text(a.code): a for a in got.accounts or [] if a.code}


def check_fee_accounts(session: XeroSession, wanted: Sequence[str | None]) -> list[str]:
    """What would stop a fee booking to the account its rule names (empty: fine)."""
    codes = sorted({w or session.fee_account for w in wanted})
    if not codes:
        return []
    try:
        accounts = chart(session)
    except ReauthorizationRequiredError as exc:
        return [f"cannot read the chart of accounts to check the fee accounts "
                f"{', '.join(codes)} ({exc}): connect the organisation again to grant "
                "accounting.settings.read"]
    revenue = sorted(f"{code} {_text(a.name)}" for code, a in accounts.items()
                     if _text(a.status) == "ACTIVE"
                     and _text(getattr(a, "_class", None)) == SALES_CLASS)
    problems = []
    for code in codes:
        account = accounts.get(code)
        default = "" if code != session.fee_account else " (the default)"
        if account is None:
            problems.append(f"fee account {code!r}{default} is not in this Xero "
                            "organisation's chart of accounts")
        elif _text(account.status) != "ACTIVE":
            problems.append(f"fee account {code!r}{default} ({_text(account.name)}) is "
                            f"{_text(account.status).lower()} in Xero")
        elif _text(getattr(account, "_class", None)) != SALES_CLASS:
            problems.append(f"fee account {code!r}{default} ({_text(account.name)}) is a "
                            f"{_text(account.type)} account, not revenue")
    if problems:
        problems[-1] += ("; set `account:` on the fee rules to one of its revenue accounts: "
                         + (", ".join(revenue[:12]) or "none found"))
    return problems
