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
        return "unreadable (different AR_SYNC_SECRET_KEY?)"
    return tokens if tokens is not None else "none stored"


def _aware(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def token_health(store: Store, connection: Connection, now: datetime) -> TokenHealth:
    """Whether the next run can reach the platform, and if not what to do."""
    tokens = read_tokens(store, connection.token_key)
    if not isinstance(tokens, TokenSet):
        state = "unreadable" if tokens.startswith("unreadable") else "missing"
        return TokenHealth(state, f"Tokens {tokens}: connect the company again.")
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
