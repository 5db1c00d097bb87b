"""The action ledger: the record that makes every platform write happen exactly once.

A row goes  (absent) -> claimed -> done | retry | failed | skipped,  or (absent) -> skipped;
a `retry` row goes back to `claimed` when a later run takes it over.
`claim` is a conditional write, so of two runners racing for one key only one wins; a claim
whose lease ran out (its runner crashed) is taken over with a compare-and-swap and must be
reconciled against the platform before the write is tried again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from ar_sync.domain.models import Action, LedgerEntry


class ClaimOutcome(StrEnum):
    ACQUIRED = "acquired"  # new row, ours: do the write
    RECONCILE = "reconcile"  # ours now, but an earlier attempt may have written: check first
    BUSY = "busy"  # another runner holds a live lease: leave it alone
    FINISHED = "finished"  # done, skipped or failed for good: nothing to do


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    entry: LedgerEntry | None = None

    @property
    def ours(self) -> bool:
        return self.outcome in (ClaimOutcome.ACQUIRED, ClaimOutcome.RECONCILE)


class Ledger(Protocol):
    def claim(
        self, action: Action, *, owner: str, now: datetime, lease_seconds: float,
        rules_version: int | None = None,
    ) -> Claim:
        """Take the action's row; a new row records `rules_version`, the stored rules version
        that planned it (None when the rules came from a file)."""
        ...

    def complete(self, key: str, *, owner: str, ref: str, now: datetime) -> bool:
        """Mark done, only if `owner` still holds the claim. False: we lost it (lease ran out)."""
        ...

    def fail(
        self, key: str, *, owner: str, reason: str, now: datetime, permanent: bool
    ) -> bool:
        """Release a claim after an error: `retry` (next run tries again) or `failed` for good."""
        ...

    def record_skip(
        self, action: Action, *, reason: str, now: datetime, owner: str | None = None,
        rules_version: int | None = None,
    ) -> bool:
        """Mark the action `skipped`: insert the row if the key is absent, or, when `owner` is
        given, turn that owner's live claim into `skipped` (e.g. the invoice was paid after
        planning). Any other existing row is left alone and False is returned."""
        ...

    def record_skips(
        self, actions: Sequence[Action], *, now: datetime, rules_version: int | None = None,
    ) -> list[bool]:
        """record_skip for many actions at once (each with its own `reason`), in one write
        where the backend allows it: a first run records thousands of superseded stages."""
        ...

    def get(self, key: str) -> LedgerEntry | None: ...

    def history(
        self, tenant: str, invoice_ids: Iterable[str] | None = None
    ) -> dict[str, list[LedgerEntry]]:
        """Entries per invoice id for one tenant (all invoices when `invoice_ids` is None)."""
        ...

    def unfinished(self, tenant: str) -> list[LedgerEntry]:
        """Rows in `claimed` or `retry`: the leftovers a run must pick up first."""
        ...

    def action_payload(self, key: str) -> Action | None:
        """The full action a row was claimed for (stored with the claim), so a leftover can be
        finished even if the planner would no longer plan it (nothing planned is lost)."""
        ...
