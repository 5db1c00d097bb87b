"""DynamoDBStore's ledger: the exactly-once rows, their retention, and the per-invoice summary.

- Rows (ledger table, pk = action key): `claim` is a conditional put; every later change is a
  compare-and-swap on `rev`. GSI `tenant-index` (tenant, isk = invoice id + key) serves
  history; the sparse `unfinished-index` holds only claimed/retry rows (a run's leftovers).
- Retention: a row recorded for good (done, skipped, failed) carries `expires_at` = the time
  it finished + the retention (LEDGER_RETENTION_DAYS by default), and DynamoDB's TTL deletes it
  some time after. Claimed and retry rows never expire.
- Summary: every row recorded for good is also added to its invoice's summary, a string set
  on the invoice's snapshot item (`inv#<tenant>` / <invoice id>; the `paid#` item once the
  invoice is paid; store/dynamodb/store.py carries it over when the snapshot is rewritten). The
  summary never ages while the invoice is open, so it is the long-term record of what was
  done — the only one for e-mails, which leave no marker on the platform — and it is what a
  run plans from: `open_invoices` reads it with the snapshot (no extra call), `finished_rows`
  hands it to can_act.may_act, and `history` is read only for the invoices that can be due.
  The row is written first, the summary second: a crash in between leaves a summary that
  misses a row; the invoice then looks due, its rows are read, and `history` (or a claim that
  finds the row finished) mends the summary — long before the row ages out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ar_sync.domain.models import TERMINAL_STATES, Action, EntryState, LedgerEntry
from ar_sync.planner.can_act import Finished
from ar_sync.store.dynamodb.codec import (
    ACTION,
    SUMMARY,
    SUMMARY_COMPLETE,
    TTL_ATTRIBUTE,
    UNFINISHED,
    DynamoDBTables,
    Item,
    encode,
    entry_of,
    iso,
    new_row,
    summary_code,
    summary_rows,
)
from ar_sync.sync.ledger import Claim, ClaimOutcome

TENANT_INDEX = "tenant-index"
# Sparse: only rows waiting for work (claimed, retry) carry `open_tenant`, so a run finds its
# leftovers with one small query however old and large the tenant's ledger is.
UNFINISHED_INDEX = "unfinished-index"
# A year and a month: longer than any stage offset or fee period the shipped rules use (so a
# row ages out only after the action it records can no longer be due for the first time), and
# a full year of detail (reason, platform ref, payload) for `ar-sync history` and audits.
LEDGER_RETENTION_DAYS = 400
PER_INVOICE_QUERIES = 100  # history for more invoices than this: one query for the tenant
_TAKEOVER_ATTEMPTS = 5
_TERMINAL_VALUES = frozenset(str(s) for s in TERMINAL_STATES)


class DynamoDBLedgerMixin(DynamoDBTables):
    """The Ledger protocol for DynamoDBStore."""

    _retention: timedelta
    # per tenant, from the last open_invoices: invoice id -> (summary complete?, its codes)
    _summaries: dict[str, dict[str, tuple[bool, frozenset[str]]]]

    def _expiry(self, now: datetime) -> int:
        return int((now + self._retention).timestamp())

    # the per-invoice summary ---------------------------------------------------------------
    def _remember_summaries(self, tenant: str, items: Iterable[Item]) -> None:
        self._summaries[tenant] = {
            item["sk"]: (item.get(SUMMARY_COMPLETE) == 1, frozenset(item.get(SUMMARY, ())))
            for item in items}

    def finished_rows(self, tenant: str) -> dict[str, list[Finished]] | None:
        """The finished rows of each open invoice as its summary keeps them, from the last
        open_invoices(tenant); invoices whose summary is not known to be complete (written by
        an earlier version) are left out. None before open_invoices(tenant)."""
        known = self._summaries.get(tenant)
        if known is None:
            return None
        return {i: summary_rows(codes) for i, (complete, codes) in known.items() if complete}

    def _summarize(self, tenant: str, invoice_id: str, rows: Sequence[Item]) -> None:
        """Add finished rows to their invoice's summary: on the snapshot item while the
        invoice is open, else on its paid item; an invoice in neither is closed for good."""
        codes = {summary_code(r) for r in rows}
        for pk in (f"inv#{tenant}", f"paid#{tenant}"):
            if self._update(self._tenants, {"pk": pk, "sk": invoice_id}, f"ADD {SUMMARY} :c",
                            "attribute_exists(pk)", {":c": codes}, {}) is not None:
                return

    def _mend(self, tenant: str, read: Iterable[str], rows: Mapping[str, list[Item]]) -> None:
        """After reading the rows of `read` invoices: add to their summaries the finished rows
        they miss, and mark them complete (an invoice summarized by an earlier version)."""
        known = self._summaries.get(tenant, {})
        for invoice_id in read:
            if invoice_id not in known:
                continue
            complete, codes = known[invoice_id]
            finished = {summary_code(r) for r in rows.get(invoice_id, ())
                        if r["state"] in _TERMINAL_VALUES}
            missing = finished - codes
            if complete and not missing:
                continue
            update = f"SET {SUMMARY_COMPLETE} = :one" + (f" ADD {SUMMARY} :c" if missing else "")
            values: dict[str, Any] = {":one": 1, ":c": missing or None}
            self._update(self._tenants, {"pk": f"inv#{tenant}", "sk": invoice_id}, update,
                         "attribute_exists(pk)", values, {})
            known[invoice_id] = (True, codes | finished)

    # the ledger ------------------------------------------------------------------------------
    def claim(self, action: Action, *, owner: str, now: datetime, lease_seconds: float,
              rules_version: int | None = None) -> Claim:
        lease = iso(now + timedelta(seconds=lease_seconds))
        row = {**new_row(action, EntryState.CLAIMED, now, rules_version), "owner": owner,
               "lease_until": lease, "attempts": 1}
        if self._put(self._ledger, row, "attribute_not_exists(pk)"):
            return Claim(ClaimOutcome.ACQUIRED, entry_of(row))
        for _ in range(_TAKEOVER_ATTEMPTS):
            current = self._get(self._ledger, {"pk": action.key})
            if current is None:  # vanished (never in practice): try a fresh claim again
                if self._put(self._ledger, row, "attribute_not_exists(pk)"):
                    return Claim(ClaimOutcome.ACQUIRED, entry_of(row))
                continue
            entry = entry_of(current)
            if entry.state in TERMINAL_STATES:
                # planned although finished: the summary must have missed it (a crash between
                # the row's write and the summary's): mend it while the row still exists
                self._summarize(current["tenant"], current["invoice_id"], [current])
                return Claim(ClaimOutcome.FINISHED, entry)
            if entry.state == EntryState.CLAIMED and (
                entry.lease_until is not None and entry.lease_until > now
            ):
                return Claim(ClaimOutcome.BUSY, entry)
            # an expired lease or a row waiting for retry: compare-and-swap on rev
            taken = self._update(
                self._ledger, {"pk": action.key},
                "SET #state = :claimed, #owner = :owner, lease_until = :lease, "
                "updated_at = :now, attempts = attempts + :one, rev = rev + :one, "
                "payload = :payload, open_tenant = tenant",
                "rev = :rev",
                {":claimed": str(EntryState.CLAIMED), ":owner": owner, ":lease": lease,
                 ":now": iso(now), ":one": 1, ":rev": current["rev"],
                 ":payload": row["payload"]},
                {"#state": "state", "#owner": "owner"})
            if taken is not None:
                return Claim(ClaimOutcome.RECONCILE, entry_of(taken))
        current = self._get(self._ledger, {"pk": action.key})
        return Claim(ClaimOutcome.BUSY, entry_of(current) if current else None)

    def _finish_owned(self, key: str, owner: str, state: EntryState, now: datetime,
                      extra: Mapping[str, str]) -> bool:
        sets = "".join(f", #{name} = :{name}" for name in extra)
        values: dict[str, Any] = {f":{name}": value for name, value in extra.items()}
        # a finished row leaves the sparse unfinished index and ages out after the retention;
        # a retry row stays in the index
        remove = "lease_until" if state in UNFINISHED else "lease_until, open_tenant"
        if state not in UNFINISHED:
            sets += f", {TTL_ATTRIBUTE} = :expires"
            values[":expires"] = self._expiry(now)
        done = self._update(
            self._ledger, {"pk": key},
            f"SET #state = :state, updated_at = :now, rev = rev + :one{sets} REMOVE {remove}",
            "#state = :claimed AND #owner = :owner",
            {":state": str(state), ":now": iso(now), ":one": 1,
             ":claimed": str(EntryState.CLAIMED), ":owner": owner, **values},
            {"#state": "state", "#owner": "owner", **{f"#{name}": name for name in extra}})
        if done is not None and state in TERMINAL_STATES:
            self._summarize(done["tenant"], done["invoice_id"], [done])
        return done is not None

    def complete(self, key: str, *, owner: str, ref: str, now: datetime) -> bool:
        return self._finish_owned(key, owner, EntryState.DONE, now, {"ref": ref})

    def fail(self, key: str, *, owner: str, reason: str, now: datetime, permanent: bool) -> bool:
        state = EntryState.FAILED if permanent else EntryState.RETRY
        return self._finish_owned(key, owner, state, now, {"reason": reason})

    def record_skips(
        self, actions: Sequence[Action], *, now: datetime, rules_version: int | None = None,
    ) -> list[bool]:
        """One conditional put each (BatchWriteItem takes no conditions, and a transaction
        would fail whole on one row that exists already), then one summary write per invoice."""
        rows = [self._skip_row(a, a.reason, now, rules_version) for a in actions]
        new = [self._put(self._ledger, row, "attribute_not_exists(pk)") for row in rows]
        by_invoice: dict[tuple[str, str], list[Item]] = {}
        for row, added in zip(rows, new, strict=True):
            if added:
                by_invoice.setdefault((row["tenant"], row["invoice_id"]), []).append(row)
        for (tenant, invoice_id), written in by_invoice.items():
            self._summarize(tenant, invoice_id, written)
        return new

    def _skip_row(self, action: Action, reason: str, now: datetime,
                  rules_version: int | None) -> Item:
        return {**new_row(action, EntryState.SKIPPED, now, rules_version), "reason": reason,
                TTL_ATTRIBUTE: self._expiry(now)}

    def record_skip(
        self, action: Action, *, reason: str, now: datetime, owner: str | None = None,
        rules_version: int | None = None,
    ) -> bool:
        row = self._skip_row(action, reason, now, rules_version)
        if self._put(self._ledger, row, "attribute_not_exists(pk)"):
            self._summarize(action.tenant, action.invoice_id, [row])
            return True
        if owner is None:
            return False
        return self._finish_owned(action.key, owner, EntryState.SKIPPED, now, {"reason": reason})

    def _queue_row(self, action: Action, now: datetime, reason: str,
                   rules_version: int | None) -> bool:
        row = {**new_row(action, EntryState.RETRY, now, rules_version), "reason": reason,
               "attempts": 0}
        return self._put(self._ledger, row, "attribute_not_exists(pk)")

    def get(self, key: str) -> LedgerEntry | None:
        item = self._get(self._ledger, {"pk": key})
        return entry_of(item) if item else None

    def action_payload(self, key: str) -> Action | None:
        item = self._get(self._ledger, {"pk": key})
        if item is None or not item.get("payload"):
            return None
        return ACTION.validate_json(item["payload"])

    def _tenant_rows(self, tenant: str, invoice_id: str | None = None,
                     states: Iterable[EntryState] = ()) -> Iterator[Item]:
        condition = "tenant = :t"
        values: dict[str, Any] = {":t": tenant}
        kwargs: dict[str, Any] = {}
        if invoice_id is not None:
            condition += " AND begins_with(isk, :i)"
            values[":i"] = f"{invoice_id}#"
        wanted = [str(s) for s in states]
        if wanted:
            names = [f":s{n}" for n in range(len(wanted))]
            values.update(zip(names, wanted, strict=True))
            kwargs = {"FilterExpression": f"#state IN ({', '.join(names)})",
                      "ExpressionAttributeNames": {"#state": "state"}}
        return self._query(TableName=self._ledger, IndexName=TENANT_INDEX,
                           KeyConditionExpression=condition,
                           ExpressionAttributeValues=encode(values), **kwargs)

    def history(
        self, tenant: str, invoice_ids: Iterable[str] | None = None
    ) -> dict[str, list[LedgerEntry]]:
        """One query per invoice for up to PER_INVOICE_QUERIES of them (the invoices that can
        be due, a webhook re-sync), else one for the tenant. Mends the summaries of the
        invoices it read where they miss a finished row (see _mend)."""
        wanted = None if invoice_ids is None else set(invoice_ids)
        if wanted is not None and len(wanted) <= PER_INVOICE_QUERIES:
            rows: Iterable[Item] = (row for i in sorted(wanted)
                                    for row in self._tenant_rows(tenant, i))
        else:
            rows = self._tenant_rows(tenant)
        out: dict[str, list[LedgerEntry]] = {}
        items: dict[str, list[Item]] = {}
        for row in rows:
            if wanted is None or row["invoice_id"] in wanted:
                out.setdefault(row["invoice_id"], []).append(entry_of(row))
                items.setdefault(row["invoice_id"], []).append(row)
        self._mend(tenant, wanted if wanted is not None else list(items), items)
        return out

    def unfinished(self, tenant: str) -> list[LedgerEntry]:
        """Through the sparse index: the cost follows the leftovers, not the ledger's age."""
        rows = self._query(TableName=self._ledger, IndexName=UNFINISHED_INDEX,
                           KeyConditionExpression="open_tenant = :t",
                           ExpressionAttributeValues=encode({":t": tenant}))
        found = [entry_of(row) for row in rows]
        # an index is eventually consistent: keep only rows still waiting for work
        return sorted((e for e in found if e.state in UNFINISHED),
                      key=lambda e: (e.due_on, e.key))
