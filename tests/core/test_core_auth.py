"""TokenManager: refresh before expiry, after a 401, and rotation races between runners."""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import UTC, datetime, timedelta

import pytest

from ar_sync.connect.tokens import TokenManager, new_state, pkce_pair
from ar_sync.domain.errors import ReauthorizationRequiredError
from ar_sync.store.memory import MemoryTokenStore
from ar_sync.sync.connector import TokenSet

NOW = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


class RotatingPlatform:
    """A token endpoint whose refresh tokens are single use, like Xero's and Intuit's."""

    def __init__(self) -> None:
        self.valid_refresh = {"rt-0"}
        self.issued = 0
        self.lock = threading.Lock()

    def refresh(self, refresh_token: str) -> TokenSet:
        with self.lock:
            if refresh_token not in self.valid_refresh:
                raise ReauthorizationRequiredError("invalid_grant")
            self.valid_refresh.discard(refresh_token)
            self.issued += 1
            new_rt = f"rt-{self.issued}"
            self.valid_refresh.add(new_rt)
            return TokenSet(access_token=f"at-{self.issued}", refresh_token=new_rt,
                            expires_at=NOW + timedelta(hours=1))


def _store(expires_at: datetime) -> MemoryTokenStore:
    store = MemoryTokenStore()
    assert store.save_tokens("c1", TokenSet(access_token="at-0", refresh_token="rt-0",
                                            expires_at=expires_at), expected_version=-1)
    return store


def test_valid_token_is_used_without_refresh() -> None:
    platform = RotatingPlatform()
    manager = TokenManager("c1", _store(NOW + timedelta(hours=1)), platform.refresh,
                           clock=lambda: NOW)
    assert manager.access_token() == "at-0"
    assert platform.issued == 0


def test_token_close_to_expiry_is_refreshed_and_persisted_first() -> None:
    platform = RotatingPlatform()
    store = _store(NOW + timedelta(seconds=30))
    manager = TokenManager("c1", store, platform.refresh, clock=lambda: NOW)
    assert manager.access_token() == "at-1"
    stored = store.load_tokens("c1")
    assert stored is not None and stored.refresh_token == "rt-1" and stored.version == 1


def test_after_401_uses_a_token_another_runner_already_stored() -> None:
    platform = RotatingPlatform()
    store = _store(NOW + timedelta(hours=1))
    a = TokenManager("c1", store, platform.refresh, clock=lambda: NOW)
    b = TokenManager("c1", store, platform.refresh, clock=lambda: NOW)
    assert a.access_token() == b.access_token() == "at-0"
    assert a.after_unauthorized("at-0") == "at-1"
    # b sees the 401 for the old token too: it must pick up a's token, not refresh again
    assert b.after_unauthorized("at-0") == "at-1"
    assert platform.issued == 1


def test_concurrent_refreshes_never_lose_the_connection() -> None:
    platform = RotatingPlatform()
    store = _store(NOW - timedelta(seconds=1))  # expired for everyone
    managers = [TokenManager("c1", store, platform.refresh, clock=lambda: NOW) for _ in range(8)]
    results: list[str] = []
    errors: list[BaseException] = []

    def work(m: TokenManager) -> None:
        try:
            results.append(m.access_token())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stored = store.load_tokens("c1")
    assert stored is not None
    # whatever interleaving happened, the stored refresh token is the one the platform accepts
    assert stored.refresh_token in platform.valid_refresh
    assert len(platform.valid_refresh) == 1


def test_revoked_refresh_token_asks_for_reconnection() -> None:
    platform = RotatingPlatform()
    platform.valid_refresh.clear()
    manager = TokenManager("c1", _store(NOW - timedelta(seconds=1)), platform.refresh,
                           clock=lambda: NOW)
    with pytest.raises(ReauthorizationRequiredError):
        manager.access_token()


def test_missing_tokens_ask_for_reconnection() -> None:
    manager = TokenManager("nope", MemoryTokenStore(), RotatingPlatform().refresh)
    with pytest.raises(ReauthorizationRequiredError, match="connect it again"):
        manager.access_token()


def test_state_and_pkce() -> None:
    assert new_state() != new_state()
    assert len(new_state()) >= 40
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == expected.decode()


def test_token_repr_hides_secrets() -> None:
    tokens = TokenSet(access_token="SECRET-AT", refresh_token="SECRET-RT", expires_at=NOW)
    assert "SECRET" not in repr(tokens) and "SECRET" not in str(tokens)
    assert "SECRET" not in f"{[tokens]}"
