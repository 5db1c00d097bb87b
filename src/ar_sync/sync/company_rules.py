"""Which rules a company runs under: its stored version, else a file or the default.

A company's rules are stored as versions (`ar-sync rules apply`); a run uses the current one
and records its number on every ledger row it writes. Only when none is stored does a run
fall back to `--rules` or the connection's rule set name (`default` unless `connect --rules`
said otherwise), and the run report says which it used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ar_sync.domain.calendar import zone
from ar_sync.rules.policy import Policy, PolicyError, load_policy, parse_policy, shipped_rule_sets
from ar_sync.sync.company_store import RulesVersion, TrustStore
from ar_sync.sync.connector import Connection


@dataclass(frozen=True)
class RulesChoice:
    policy: Policy
    version: int | None  # the stored version, None for a file or shipped set
    label: str  # for people: "version 3 (stored 2026-11-30, from firm.yaml)"
    warning: str | None = None


def version_name(connection_id: str, version: int) -> str:
    """How a stored version is named in error messages (file:line)."""
    return f"<{connection_id} rules v{version}>"


# Stored text has no folder: a relative `extends: other.yaml` must not resolve against
# whatever directory a run happens to start in, so it is looked up where nothing is.
_NO_FOLDER = Path("/nonexistent/ar-sync-stored-rules")


def parse_text(text: str, name: str) -> Policy:
    """Rules text as it is (or will be) stored: `extends` may only name a shipped set."""
    return parse_policy(text, name, base_dir=_NO_FOLDER)


def parse_stored(connection_id: str, stored: RulesVersion) -> Policy:
    """A stored version's Policy."""
    return parse_text(stored.text, version_name(connection_id, stored.version))


def company_zone(policy: Policy) -> ZoneInfo:
    """The company's time zone: what "today", a go-live date or a pause's day is."""
    return zone(policy.calendar.timezone)


def company_today(store: TrustStore, connection: Connection,
                  now: datetime | None = None) -> date:
    """The company's date now (or at `now`), in the time zone of the rules it runs: go-live,
    pause, resume and `rules diff --since` count days as the company does, not in UTC."""
    return choose_rules(store, connection).policy.today(now or datetime.now(UTC))


class StoredVersions(Mapping[int, Policy]):
    """Every stored version's Policy by number, read from the store on first use only (a run
    whose plan meets no fee row of an older version reads nothing): the planner reads which
    days an older fee row covered from the version that planned it (planner.fee_days). A
    version that no longer parses is left out (its rows are then judged on the safe side)."""

    def __init__(self, store: TrustStore, connection_id: str) -> None:
        self.store, self.connection_id = store, connection_id
        self.found: dict[int, Policy] | None = None

    def _load(self) -> dict[int, Policy]:
        if self.found is None:
            self.found = {}
            for stored in self.store.rules_versions(self.connection_id):
                try:
                    self.found[stored.version] = parse_stored(self.connection_id, stored)
                except PolicyError:
                    continue
        return self.found

    def __getitem__(self, number: int) -> Policy:
        return self._load()[number]

    def __iter__(self) -> Iterator[int]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def stored_versions(store: TrustStore, connection_id: str) -> Mapping[int, Policy]:
    """The company's stored rules versions by number, read when first asked (StoredVersions)."""
    return StoredVersions(store, connection_id)


def read_rules_source(source: str) -> tuple[str, str]:
    """(text, display name) of a rules file or shipped rule set name, validated as stored.

    The text is stored as is, so a relative `extends: other.yaml` would not resolve later:
    it is refused here; `extends: default` (a shipped set) is fine.
    """
    shipped = shipped_rule_sets()
    path = shipped[source] if source in shipped and not Path(source).is_file() else Path(source)
    load_policy(source)  # file:line errors against the real file first
    text = path.read_text(encoding="utf-8")
    parse_text(text, f"<{path.name} as stored>")
    return text, path.name if source not in shipped else source


def choose_rules(store: TrustStore, connection: Connection, *,
                 override: str | None = None) -> RulesChoice:
    """The stored current version, else `override` (--rules), else the connection's rules."""
    stored = store.current_rules(connection.id)
    if stored is not None:
        warning = (f"--rules {override} ignored: {connection.id} has stored rules version "
                   f"{stored.version} (change them with `ar-sync rules apply`)"
                   if override else None)
        return RulesChoice(parse_stored(connection.id, stored), stored.version,
                           f"version {stored.version} (stored {stored.created_at:%Y-%m-%d}, "
                           f"from {stored.source})", warning)
    name = override or connection.rules
    how = "--rules" if override else "connection rules; no stored version"
    return RulesChoice(load_policy(name), None, f"{name} ({how})")


__all__ = ["RulesChoice", "StoredVersions", "choose_rules", "company_today", "company_zone",
           "parse_stored", "read_rules_source", "stored_versions", "version_name"]
