"""Deliberate breakages of the exactly-once protocol, one at a time, for the meta-tests.

Each breakage patches the real code (monkeypatch, undone after the test) the way a plausible bug
would: the fault suites must then report duplicates, losses or a ledger/platform mismatch.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from ar_sync.domain.models import Action, ActionKind, Invoice
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.ledger import Claim, ClaimOutcome

_claim = SQLiteStore.claim
_finish = SQLiteStore._finish


def never_reconcile(mp: pytest.MonkeyPatch) -> None:
    """(a) run_tenant writes a taken-over claim without looking for the earlier attempt."""
    def claim(self: SQLiteStore, action: Action, **kw: Any) -> Claim:
        got = _claim(self, action, **kw)
        return Claim(ClaimOutcome.ACQUIRED, got.entry) if got.outcome == "reconcile" else got
    mp.setattr(SQLiteStore, "claim", claim)


def ignore_leftovers(mp: pytest.MonkeyPatch) -> None:
    """(b) claims left by earlier runs are never picked up unless planned again."""
    mp.setattr(SQLiteStore, "unfinished", lambda self, tenant: [])


def claim_overwrites(mp: pytest.MonkeyPatch) -> None:
    """(c1) the conditional insert made unconditional: a claim takes back rows already done
    (and live leases) as if the key were new."""
    def claim(self: SQLiteStore, action: Action, **kw: Any) -> Claim:
        with self._tx() as db:
            db.execute("DELETE FROM ledger WHERE key = ?", (action.key,))
        return _claim(self, action, **kw)
    mp.setattr(SQLiteStore, "claim", claim)


def steal_live_lease(mp: pytest.MonkeyPatch) -> None:
    """(c2) a claim whose lease is still running is taken over as if it had run out."""
    def claim(self: SQLiteStore, action: Action, *, now: datetime, **kw: Any) -> Claim:
        got = _claim(self, action, now=now, **kw)
        if got.outcome != ClaimOutcome.BUSY:
            return got
        with self._tx() as db:
            db.execute("UPDATE ledger SET lease_until = ? WHERE key = ?",
                       (now.isoformat(), action.key))
        return _claim(self, action, now=now, **kw)
    mp.setattr(SQLiteStore, "claim", claim)


def ignore_owner(mp: pytest.MonkeyPatch) -> None:
    """(d) complete / fail finish the row whoever holds the claim now."""
    def finish(self: SQLiteStore, key: str, owner: str, *args: Any) -> bool:
        row = self.get(key)
        return _finish(self, key, row.owner or owner if row else owner, *args)
    mp.setattr(SQLiteStore, "_finish", finish)


def _blind(kinds: set[ActionKind]) -> Callable[..., Any]:
    def wrap(find: Callable[..., str | None]) -> Callable[..., str | None]:
        def blind(self: Any, invoice: Invoice, kind: ActionKind, key: str,
                  **kw: Any) -> str | None:
            return None if kind in kinds else find(self, invoice, kind, key, **kw)
        return blind
    return wrap


def xero_blind_to_notes(mp: pytest.MonkeyPatch) -> None:
    """(e) Xero's find_effect does not see its history notes."""
    from ar_sync_xero.connector import XeroConnector
    mp.setattr(XeroConnector, "find_effect",
               _blind({ActionKind.NOTE, ActionKind.ESCALATE})(XeroConnector.find_effect))


def quickbooks_blind_to_fee_lines(mp: pytest.MonkeyPatch) -> None:
    """(e) QuickBooks' search for a fee line by its marker finds nothing (reconciliation and
    the connector's own check before re-adding a line both use it)."""
    import ar_sync_quickbooks.effects as qbo_effects  # find_effect moved here
    import ar_sync_quickbooks.writes as qbo_writes  # the fee-line writes moved here

    mp.setattr(qbo_effects, "find_line_with_marker", lambda raw, key: None)
    mp.setattr(qbo_writes, "find_line_with_marker", lambda raw, key: None)


FAKE_BREAKAGES: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "a-never-reconcile": never_reconcile,
    "b-ignore-leftovers": ignore_leftovers,
    "c1-claim-overwrites-done": claim_overwrites,
    "c2-steal-live-lease": steal_live_lease,
    "d-ignore-owner": ignore_owner,
}
EMULATOR_BREAKAGES: dict[str, tuple[str, Callable[[pytest.MonkeyPatch], None]]] = {
    "e-xero-blind-to-notes": ("xero", xero_blind_to_notes),
    "e-quickbooks-blind-to-fee-lines": ("quickbooks", quickbooks_blind_to_fee_lines),
}
