"""OAuth2 plumbing shared by every connector: state, PKCE, and rotation-safe token refresh.

Both platforms rotate refresh tokens: each refresh invalidates the old one. Two runners that
refresh with the same old token at once lose the connection (the classic `invalid_grant`). The
TokenManager therefore persists a new token set with a versioned write *before* using it, and a
runner that finds the store moved on (someone else refreshed) re-reads instead of refreshing.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from ar_sync.domain.errors import ReauthorizationRequiredError
from ar_sync.sync.connector import TokenSet, TokenStore


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_state() -> str:
    """An unguessable, single-use OAuth `state`."""
    return secrets.token_urlsafe(32)


def pkce_pair() -> tuple[str, str]:
    """A PKCE (RFC 7636) code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)[:96]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


_ROW_LOCKS: dict[str, threading.Lock] = {}
_ROW_LOCKS_GUARD = threading.Lock()


def _row_lock(token_id: str) -> threading.Lock:
    with _ROW_LOCKS_GUARD:
        return _ROW_LOCKS.setdefault(token_id, threading.Lock())


class TokenManager:
    """Access tokens for one connection: refreshed before expiry and after a 401."""

    def __init__(
        self,
        connection_id: str,
        store: TokenStore,
        refresh: Callable[[str], TokenSet],
        *,
        clock: Callable[[], datetime] = utcnow,
        skew_seconds: float = 120,
        max_races: int = 3,
    ) -> None:
        self._connection_id = connection_id
        self._store = store
        self._refresh = refresh
        self._clock = clock
        self._skew = skew_seconds
        self._max_races = max_races
        # One lock per token row in this process: the companies of one consent share a row
        # (Xero) and must refresh one at a time; across processes the versioned save decides.
        self._lock = _row_lock(connection_id)
        self._tokens: TokenSet | None = None
        self.refreshes = 0  # how many refresh calls this manager made (for tests and reports)

    def _load(self) -> TokenSet:
        tokens = self._store.load_tokens(self._connection_id)
        if tokens is None:
            raise ReauthorizationRequiredError(
                f"no tokens stored for {self._connection_id}: connect it again"
            )
        return tokens

    def access_token(self) -> str:
        """A token valid for at least `skew_seconds` more; refreshes first if needed."""
        with self._lock:
            if self._tokens is None:
                self._tokens = self._load()
            if self._tokens.expires_within(self._skew, self._clock()):
                self._tokens = self._renew(self._tokens)
            return self._tokens.access_token

    def after_unauthorized(self, rejected_access_token: str) -> str:
        """Call on a 401: a newer stored token if another runner refreshed, else refresh now."""
        with self._lock:
            stored = self._load()
            if stored.access_token != rejected_access_token and not stored.expires_within(
                0, self._clock()
            ):
                self._tokens = stored
                return stored.access_token
            self._tokens = self._renew(stored, forced=True)
            return self._tokens.access_token

    def _renew(self, current: TokenSet, *, forced: bool = False) -> TokenSet:
        for _ in range(self._max_races):
            stored = self._load()
            if stored.version > current.version and (
                forced or not stored.expires_within(self._skew, self._clock())
            ) and stored.access_token != current.access_token:
                return stored  # someone else refreshed meanwhile: use theirs
            current = stored
            try:
                fresh = self._refresh(current.refresh_token)
            except ReauthorizationRequiredError:
                # The refresh token may have been rotated away by a concurrent runner whose new
                # tokens are now in the store; only if the store did not move is it really gone.
                again = self._load()
                if again.version > current.version:
                    current = again
                    return again
                raise
            self.refreshes += 1
            fresh = fresh.model_copy(update={"version": current.version + 1})
            if self._store.save_tokens(
                self._connection_id, fresh, expected_version=current.version
            ):
                return fresh
            # Lost the race to save: the stored set is newer than ours; loop and use it.
        raise ReauthorizationRequiredError(
            f"token refresh for {self._connection_id} kept losing races; giving up this run"
        )
