"""What a business changes about one company, the same from every face (the CLI, the admin
API, the console): go-live and preview, rules versions (apply, roll back), pauses.

Each function checks what a person could get wrong and raises SettingsChangeError with a
sentence that says so; the faces only word it their way (a hint, an HTTP status, a form
error). Rules text is validated exactly as a run will parse it before it is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from ar_sync.domain.pauses import Pause, PauseReason
from ar_sync.rules.policy import Policy, PolicyError
from ar_sync.sync.company_rules import parse_stored, parse_text, version_name
from ar_sync.sync.company_store import RulesVersion, TrustStore
from ar_sync.sync.connector import Connection
from ar_sync.sync.store import Store


class SettingsChangeError(ValueError):
    """A change that cannot be made as asked; the message is for the person who asked."""


class RulesRefusedError(SettingsChangeError):
    """Valid rules a face's own check refused (e.g. a webhook into a private network)."""

    def __init__(self, issues: list[str]) -> None:
        super().__init__("; ".join(issues))
        self.issues = issues


@dataclass(frozen=True)
class Applied:
    version: int
    unchanged: bool = False  # the text was already the current version


def go_live(store: Store, connection: Connection, *, on: date | None, preview: bool,
            today: date) -> Connection:
    """Live from `on` (default today), or back to preview (the go-live date kept unless
    given). Fees for periods before the go-live date follow the rules' `backfill`."""
    when = on or (connection.go_live if preview else None) or today
    changes = {"go_live": when, "mode": "preview" if preview else "live"}
    # only these two fields: a reconnect writing the row meanwhile keeps its token row
    return store.update_connection(connection.id, changes) or connection.model_copy(
        update=changes)


def apply_rules(store: TrustStore, tenant: str, text: str, *, source: str, now: datetime,
                note: str = "", vet: Callable[[Policy], list[str]] | None = None) -> Applied:
    """Validate `text` as it will be stored and store it as the next version (unless it is
    the current text already). Raises PolicyError with file:line issues; `vet`: a face's
    further check (I/O the core does not do, e.g. resolving webhook hosts), whose issues
    raise RulesRefusedError."""
    current = store.current_rules(tenant)
    policy = parse_text(text, version_name(tenant, (current.version if current else 0) + 1))
    issues = vet(policy) if vet is not None else []
    if issues:
        raise RulesRefusedError(issues)
    if current is not None and current.text == text:
        return Applied(current.version, unchanged=True)
    return Applied(store.apply_rules(tenant, text, source=source, now=now, note=note))


def rollback_rules(store: TrustStore, tenant: str, version: int | None, *,
                   now: datetime) -> tuple[int, RulesVersion]:
    """Store an earlier version (default: the one before the current) again as the newest;
    history is append-only. Returns (new version number, the version returned to)."""
    versions = store.rules_versions(tenant)
    if len(versions) < (1 if version else 2):
        raise SettingsChangeError("there is no earlier rules version to go back to")
    target = versions[-2] if version is None else next(
        (v for v in versions if v.version == version), None)
    if target is None:
        raise SettingsChangeError(f"there is no rules version {version}")
    try:
        parse_stored(tenant, target)  # still valid under this ar-sync?
    except PolicyError as exc:
        raise SettingsChangeError(f"version {target.version} is no longer valid: {exc}") from None
    new = store.apply_rules(tenant, target.text, source=target.source, now=now,
                            note=f"rollback to version {target.version}")
    return new, target


def new_pause(*, invoice_id: str | None = None, customer_id: str | None = None,
              until: date | None, reason: PauseReason, note: str, today: date) -> Pause:
    """A pause a person asked for, checked: a promise to pay names its date, and no pause
    ends before today."""
    if reason == "promise" and until is None:
        raise SettingsChangeError("a promise to pay needs the date it promises")
    if until is not None and until < today:
        raise SettingsChangeError(f"the pause would end on {until}, which is in the past")
    try:
        return Pause(invoice_id=invoice_id, customer_id=customer_id, until=until,
                     reason=reason, since=today, note=note[:500])
    except ValueError as exc:
        raise SettingsChangeError(str(exc)) from None


def start_in_preview(store: Store, connection: Connection,
                     rules: str | None = None) -> Connection:
    """A newly connected company runs in preview (writes nothing) until someone goes live;
    `rules`: the shipped set it starts with (until a version is stored)."""
    changes = {"mode": "preview", "rules": rules or connection.rules}
    return store.update_connection(connection.id, changes) or connection.model_copy(
        update=changes)


__all__ = ["Applied", "RulesRefusedError", "SettingsChangeError", "apply_rules", "go_live",
           "new_pause", "rollback_rules", "start_in_preview"]
