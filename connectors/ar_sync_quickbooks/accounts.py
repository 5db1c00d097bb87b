"""The income account a QuickBooks late fee books to: the 'Late fee' Item's `IncomeAccountRef`.

A QuickBooks sales line books to the account of its Item (Intuit API reference, Item:
`IncomeAccountRef`, required for a Service item; Account: `AccountType` Income, `Active`), so
a fee rule's `account:` names the account the 'Late fee' item books to: by name, account
number (`AcctNum`) or id. When ar-sync creates the item it uses that account (else the
company's first Income account); when the item exists and books elsewhere, the rule is refused
with the item's account named, rather than booking fees where the rule did not ask. Checked at
connect and by `rules validate --company` (check_fee_accounts), and before each fee.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ar_sync.domain.errors import PlatformValidationError

INCOME_ACCOUNTS = "select * from Account where AccountType = 'Income' MAXRESULTS 1000"


class _Session(Protocol):
    fee_item_ref: tuple[str, str] | None
    fee_item_account: str | None

    def query(self, statement: str) -> dict[str, Any]: ...

    def load_facts(self) -> None: ...


def income_accounts(session: _Session) -> list[dict[str, Any]]:
    """The company's active Income accounts (one query)."""
    rows = session.query(INCOME_ACCOUNTS).get("QueryResponse", {}).get("Account", [])
    return [r for r in rows if r.get("Active", True) is not False]


def describe(row: Mapping[str, Any]) -> str:
    number = str(row.get("AcctNum") or "")
    return f"{row.get('Name')}" + (f" ({number})" if number else "") + f", id {row.get('Id')}"


def resolve(wanted: str, accounts: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The Income account a rule names (id, AcctNum, Name or FullyQualifiedName)."""
    needle = wanted.strip().lower()
    for row in accounts:
        names = {str(row.get(k) or "").strip().lower()
                 for k in ("Id", "AcctNum", "Name", "FullyQualifiedName")}
        if needle in names:
            return dict(row)
    return None


def account_for_new_item(session: _Session, wanted: str | None) -> str:
    """The id of the account a new 'Late fee' item books to (PlatformValidationError: none)."""
    accounts = income_accounts(session)
    if wanted is not None:
        found = resolve(wanted, accounts)
        if found is None:
            raise PlatformValidationError(_unknown(wanted, accounts))
        return str(found["Id"])
    if not accounts:
        raise PlatformValidationError("no Income account to book late fees to: add one in "
                                      "QuickBooks, or name one with `account:` on the fee rule")
    return str(accounts[0]["Id"])


def check_item_books_to(session: _Session, wanted: str) -> None:
    """PlatformValidationError unless the existing 'Late fee' item books to `wanted`."""
    accounts = income_accounts(session)
    found = resolve(wanted, accounts)
    if found is None:
        raise PlatformValidationError(_unknown(wanted, accounts))
    if session.fee_item_account is not None and str(found["Id"]) != session.fee_item_account:
        booked = next((describe(a) for a in accounts
                       if str(a.get("Id")) == session.fee_item_account),
                      f"account id {session.fee_item_account}")
        raise PlatformValidationError(
            f"the 'Late fee' item books to {booked}, but the fee rule's account is "
            f"{describe(found)}: change the item's income account in QuickBooks, or give the "
            "rule that account (every QuickBooks fee books through this one item)")


def check_fee_accounts(session: _Session, wanted: Sequence[str | None]) -> list[str]:
    """What would stop a fee booking where the rules ask, said plainly (empty: fine)."""
    session.load_facts()
    if not wanted:
        return []
    accounts = income_accounts(session)
    problems: list[str] = []
    resolved: dict[str, dict[str, Any]] = {}
    for name in sorted({w for w in wanted if w is not None}):
        found = resolve(name, accounts)
        if found is None:
            problems.append(_unknown(name, accounts))
        else:
            resolved[str(found["Id"])] = found
    if len(resolved) > 1:
        problems.append("QuickBooks books every fee through its one 'Late fee' item, but the "
                        "fee rules name different accounts ("
                        + "; ".join(describe(a) for a in resolved.values())
                        + "): give them one account")
    item_account = session.fee_item_account if session.fee_item_ref is not None else None
    if item_account is not None:
        booked = next((a for a in accounts if str(a.get("Id")) == item_account), None)
        if booked is None:
            problems.append("the 'Late fee' item books to an account that is not an active "
                            "Income account: fix the item in QuickBooks")
        elif len(resolved) == 1 and item_account not in resolved:
            problems.append(f"the 'Late fee' item books to {describe(booked)}, but the fee "
                            f"rules name {describe(next(iter(resolved.values())))}: change "
                            "the item's income account in QuickBooks, or give the rules that "
                            "account")
    elif not accounts:
        problems.append("no Income account to book late fees to: add one in QuickBooks")
    return problems


def _unknown(wanted: str, accounts: Sequence[Mapping[str, Any]]) -> str:
    known = "; ".join(describe(a) for a in accounts[:10]) or "none"
    return (f"fee account {wanted!r} is not an active Income account of this QuickBooks "
            f"company (its Income accounts: {known}): name one of them in the fee rule's "
            "`account:`")
