"""The dated reference-rate tables a policy uses: the bundled ones with the policy's own
added rows (`reference_rates:`), and the warning when one may miss a rate decision."""

from __future__ import annotations

from datetime import date

from ar_sync.domain.reference_rates import RATE_TABLES, RateTable, half_year_start
from ar_sync.rules.fee_rules import Interest, UkStatutoryInterest
from ar_sync.rules.schema import Policy

__all__ = ["UPDATE_DOC", "rate_tables", "stale_rate_warnings", "tables_used"]

UPDATE_DOC = "docs/rules.md#reference-rates"


def rate_tables(policy: Policy) -> dict[str, RateTable]:
    """Every table, with the rows and `checked` day the policy adds."""
    out = dict(RATE_TABLES)
    for name, update in policy.reference_rates.items():
        rows = tuple((c.effective, c.rate) for c in update.changes)
        out[name] = out[name].extended(rows, update.checked)
    return out


def tables_used(policy: Policy) -> list[RateTable]:
    """The tables the policy's fee rules take their rate from, in rule order."""
    tables = rate_tables(policy)
    names: list[str] = []
    for f in policy.late_fees:
        ref = f.reference_rate if isinstance(f, (Interest, UkStatutoryInterest)) else None
        if isinstance(ref, str):
            names.append(ref)
    return [tables[n] for n in dict.fromkeys(names)]


def stale_rate_warnings(policy: Policy, today: date) -> list[str]:
    """One line per table in use that is checked only up to a day before today's half-year:
    a rate decision that fixes this half-year's statutory interest may be missing."""
    out = []
    for table in tables_used(policy):
        if table.stale_on(today):
            out.append(
                f"reference rates: the {table.title} table is checked up to {table.checked}, "
                f"before this half-year (from {half_year_start(today)}); statutory interest "
                f"uses its last rate, {table.changes[-1][1]}% since {table.changes[-1][0]}. "
                f"Add any newer decision under reference_rates: in the rules, or upgrade "
                f"ar-sync ({UPDATE_DOC})")
    return out
