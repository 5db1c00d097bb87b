"""How a connected company stands, for people: its tokens' health and its last run.

`ar-sync status` and the console both read it; only dates ever leave here, never a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ar_sync.domain.errors import TokensUnreadableError
from ar_sync.sync.connector import Connection, TokenSet
from ar_sync.sync.store import Store

RECONNECT_WARNING = timedelta(days=14)  # a refresh token ending sooner: ask to reconnect
REAUTH_STOP = "authorisation lost"  # run.py's stopped_early for a refused refresh
UNREADABLE = "unreadable with this key"  # the key is wrong (a rotation?), not the company


@dataclass(frozen=True)
class TokenHealth:
    """`state`: ok | reconnect soon | reconnect | unreadable | missing."""

    state: str
    message: str
    tokens: TokenSet | None = None


def read_tokens(store: Store, token_key: str) -> TokenSet | str:
    """The stored tokens (only their dates are ever shown), or why there are none."""
    try:
        tokens = store.load_tokens(token_key)
    except TokensUnreadableError:
        return UNREADABLE
    return tokens if tokens is not None else "none stored"


def _aware(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def token_health(store: Store, connection: Connection, now: datetime) -> TokenHealth:
    """Whether the next run can reach the platform, and if not what to do."""
    tokens = read_tokens(store, connection.token_key)
    if tokens == UNREADABLE:  # set the key; reconnecting is for a key that is lost
        return TokenHealth("unreadable", "Tokens unreadable with this key: set the key they "
                                         "were encrypted with (AR_SYNC_SECRET_KEY or the key "
                                         "file; after `keys rotate`, the new list); connect "
                                         "the company again only if that key is lost.")
    if not isinstance(tokens, TokenSet):
        return TokenHealth("missing", f"Tokens {tokens}: connect the company again.")
    report = store.last_report(connection.id) or {}
    if report.get("stopped_early") == REAUTH_STOP:
        return TokenHealth("reconnect", "The platform refused our access at the last run: "
                                        "connect the company again.", tokens)
    ends = tokens.refresh_expires_at
    if ends is not None and _aware(ends) <= now:
        return TokenHealth("reconnect", f"Access ended on {_aware(ends):%Y-%m-%d}: connect "
                                        "the company again.", tokens)
    if ends is not None and _aware(ends) - now <= RECONNECT_WARNING:
        return TokenHealth("reconnect soon", f"Access ends on {_aware(ends):%Y-%m-%d} unless "
                                             "a run uses it before then.", tokens)
    return TokenHealth("ok", "Connected; access renews itself at every run.", tokens)


def run_summary(report: dict[str, Any] | None) -> str:
    """One line about a stored run report."""
    if not report:
        return "no run yet"
    parts = [f"{report.get(k, 0)} {k}" for k in ("planned", "done", "reconciled", "failed",
                                                  "deferred") if report.get(k)]
    mode = "dry run" if report.get("dry_run") else "full fetch" if report.get(
        "full_fetch") else "incremental"
    text = f"{mode}: {', '.join(parts) or 'nothing to do'}; {report.get('api_calls', 0)} API calls"
    if report.get("stopped_early"):
        text += f"; stopped early: {report['stopped_early']}"
    return text


__all__ = ["RECONNECT_WARNING", "TokenHealth", "read_tokens", "run_summary", "token_health"]
