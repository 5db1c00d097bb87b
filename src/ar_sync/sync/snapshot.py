"""The run's use of the quiet index (planner.can_act, Store.active_invoices / save_quiet).

A run reads only the open invoices not marked quiet for today under the current rules stamp,
reads their ledger rows only, plans them, and marks every one the plan has nothing for with
the first day anything can be due for it again. What is left out could not have had an action
today (tests/sync/test_sync_quiet.py runs days of a book both ways and compares every write).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from ar_sync.domain.models import Action, Invoice, LedgerEntry
from ar_sync.domain.pauses import Pause
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.planner.can_act import index_applies, quiet_days, quiet_stamp
from ar_sync.rules.policy import Policy
from ar_sync.sync.company_store import planner_pauses
from ar_sync.sync.store import Snapshot, Store


@dataclass(frozen=True)
class QuietRun:
    """One run's snapshot read through the index (stamp None: the index is not used)."""

    snapshot: Snapshot
    stamp: str | None = None
    policy: Policy | None = None
    today: date = date.min
    go_live: date | None = None
    pauses: Sequence[Pause] | None = None  # the tenant's, when read here (None: not read)

    def remember(self, store: Store, tenant: str, invoices: Sequence[Invoice],
                 history: Mapping[str, Sequence[LedgerEntry]], actions: Sequence[Action]) -> int:
        """Mark the invoices today's plan (`actions`, before any filtering) has nothing for.
        `history` must hold the rows of every invoice in `invoices`: a mark computed from
        missing rows could claim too late a day."""
        if self.stamp is None or self.policy is None:
            return 0
        until = quiet_days(invoices, history, self.policy, self.today, actions,
                           go_live=self.go_live)
        if not until:
            return 0
        return store.save_quiet(tenant, until, since=self.today, stamp=self.stamp,
                                versions=self.snapshot.versions)


def read_snapshot(store: Store, tenant: str, policy: Policy, today: date, *,
                  go_live: date | None, plans: Sequence[PaymentPlan],
                  use_index: bool = True) -> QuietRun:
    """The open invoices to plan today: through the index when it applies (no payment
    plans, pauses or risk rules), else all of them."""
    if not use_index:
        return QuietRun(Snapshot(store.open_invoices(tenant)))
    pauses = planner_pauses(store.list_pauses(tenant))
    if index_applies(policy, plans=plans, pauses=pauses):
        stamp = quiet_stamp(policy, go_live)
        return QuietRun(store.active_invoices(tenant, on=today, stamp=stamp), stamp, policy,
                        today, go_live, pauses)
    return QuietRun(Snapshot(store.open_invoices(tenant)), pauses=pauses)


NO_INDEX = QuietRun(Snapshot([]))  # a dry run's: it reads the snapshot itself, marks nothing
