"""Fee days are per invoice and per day, whatever rule name, schedule or rules version charged
them. Pure.

A fee row in the ledger covers a window of days: a recurring fee from its date to the next,
interest the period it accrued over. Which window is read from the rules version that planned
the row (`LedgerEntry.rules_version`, the versions a run is given), so a changed schedule
(`every: month` -> `every: 30`), a percent fee turned into interest under its name, or a move
to a statutory set never charges a day a row already covered. A one-off fee (`every: once`)
and statutory compensation cover no window: they never hold a periodic charge back. A row
whose window cannot be read (its rule is in no version given) is taken to cover a month on
either side of the day it was charged: the safe side, never a day twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from ar_sync.planner.compiled import DONE, FEE, TERMINAL, Compiled
from ar_sync.planner.fee_maths import COMPENSATION, Occurrence, due_occurrences
from ar_sync.planner.fee_periods import Window, period_of

if TYPE_CHECKING:
    from ar_sync.planner.state import InvoiceJob as Job

__all__ = ["Covered", "blocked", "covered"]

_MONTH = timedelta(days=31)
_ONE_OFF = frozenset({"once", COMPENSATION})

Covered = tuple[str, str, Window]  # (rule, occurrence label, days covered)


def _window(c: Compiled, rule: str, label: str, due_date: date, on: date) -> Window | None:
    if label in _ONE_OFF:
        return None
    for fee in c.fees:
        if fee.name == rule:
            if fee.terms.every == "once":
                return None
            for o in due_occurrences(fee.terms, due_date, on):
                if o.label == label and o.on == on:
                    return period_of(o)
            break
    return (on - _MONTH, on + _MONTH)


def covered(job: Job) -> list[Covered]:
    """The windows of the fees this invoice carries or has in flight (done, claimed, retry),
    each read from the rules version that planned it."""
    p = job.p
    out: list[Covered] = []
    for e in job.mine():
        if e.kind != FEE or not (e.state == DONE or e.state not in TERMINAL):
            continue
        c = p.version(e.rules_version)
        w = _window(c, e.rule, e.occurrence, job.inv.due_date, e.due_on)
        if w is not None:
            out.append((e.rule, e.occurrence, w))
    return out


def blocked(due: Sequence[Occurrence], rule: str, stack: bool, rows: Iterable[Covered],
            emitted: Iterable[tuple[str, Window]]) -> set[str]:
    """Labels of `rule`'s occurrences that share a day with a window already covered: by the
    same rule under any schedule always; by other rules (rows, or this plan's `emitted`)
    unless the rule says `stack: true`."""
    rows = list(rows)
    others = [] if stack else [w for name, w in emitted if name != rule]
    out: set[str] = set()
    for o in due:
        if o.label == COMPENSATION:
            continue  # a statutory fixed sum, not a period
        a, b = period_of(o)
        for r, label, (ta, tb) in rows:
            if r == rule and label == o.label:
                continue  # its own row: settled by its key
            if (r == rule or not stack) and ta < b and a < tb:
                out.add(o.label)
                break
        else:
            if any(ta < b and a < tb for ta, tb in others):
                out.add(o.label)
    return out
